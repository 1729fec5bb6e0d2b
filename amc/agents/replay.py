"""AMC's credit assignment in a stable-baselines3 replay buffer.

AMC gives every transition of an episode the episode's final reward (only the last step has one), and
subtracts a moving-average baseline from each sampled batch's rewards (alpha 0.5) to reduce variance. The
transitions of the episode in flight are held back until it ends, then written with the final reward. The
action stored is the one the env executed after its budget clipping (info["executed_action"]) when given.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples


class EpisodeRewardReplayBuffer(ReplayBuffer):
    def __init__(self, *args: Any, baseline_alpha: float = 0.5, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.n_envs != 1:
            raise ValueError("EpisodeRewardReplayBuffer holds one episode at a time: use a single environment")
        self.baseline_alpha = baseline_alpha
        self.baseline: float | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]] = []

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        executed = infos[0].get("executed_action") if infos else None
        if executed is not None:
            action = np.asarray(executed, dtype=np.float32).reshape(action.shape)
        self._pending.append((np.copy(obs), np.copy(next_obs), np.copy(action), np.copy(done), infos))
        if not bool(np.asarray(done).reshape(-1)[0]):
            return
        final = np.asarray(reward, dtype=np.float32).reshape(-1)
        for obs_, next_obs_, action_, done_, infos_ in self._pending:
            super().add(obs_, next_obs_, action_, final.copy(), done_, infos_)
        self._pending = []

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> ReplayBufferSamples:
        samples = super()._get_samples(batch_inds, env)
        mean = float(samples.rewards.mean())
        if self.baseline is None:
            self.baseline = mean
        else:
            self.baseline += self.baseline_alpha * (mean - self.baseline)
        return samples._replace(rewards=samples.rewards - self.baseline)
