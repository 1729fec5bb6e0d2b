"""stable-baselines3 off-policy agents configured as AMC, extended at SB3's seams rather than forked.

Two seams: `_sample_action` (warm-up episodes of uniform random actions, then AMC's truncated-normal noise
around the actor's action instead of SB3's additive clipped noise) and `_update_learning_rate` (AMC trains the
actor at 1e-4 and the critic at 1e-3; SB3 has one learning rate for both).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import DDPG, SAC, TD3
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import update_learning_rate

from amc.agents.noise import TruncatedNormalActionNoise


class AMCExploration:
    """Mixin for an OffPolicyAlgorithm: AMC's warm-up and exploration, and separate actor/critic rates."""

    critic_learning_rate: float | None = None

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        algorithm: OffPolicyAlgorithm = self  # type: ignore[assignment]
        if algorithm.num_timesteps < learning_starts:
            action = np.array([algorithm.action_space.sample() for _ in range(n_envs)], dtype=np.float32)
            return action, action
        if not isinstance(action_noise, TruncatedNormalActionNoise):
            return super()._sample_action(learning_starts, action_noise, n_envs)  # type: ignore[misc]
        mean, _ = algorithm.predict(algorithm._last_obs, deterministic=True)  # type: ignore[arg-type]
        action = action_noise.perturb(algorithm.policy.scale_action(mean), algorithm._episode_num)
        return algorithm.policy.unscale_action(action), action

    def _update_learning_rate(self, optimizers: Any) -> None:
        super()._update_learning_rate(optimizers)  # type: ignore[misc]
        if self.critic_learning_rate is not None:
            update_learning_rate(self.critic.optimizer, self.critic_learning_rate)  # type: ignore[attr-defined]


class AMCDDPG(AMCExploration, DDPG):
    pass


class AMCTD3(AMCExploration, TD3):
    pass


class AMCSAC(AMCExploration, SAC):
    pass


ALGORITHMS: dict[str, type[OffPolicyAlgorithm]] = {"ddpg": AMCDDPG, "td3": AMCTD3, "sac": AMCSAC}
