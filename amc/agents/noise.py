"""AMC's exploration: a truncated normal around the actor's action, its sigma decaying once per episode."""

from __future__ import annotations

import numpy as np
from scipy.stats import truncnorm
from stable_baselines3.common.noise import ActionNoise


class TruncatedNormalActionNoise(ActionNoise):
    """Sample actions from N(mu, sigma) truncated to [low, high]; sigma *= decay after each episode past warm-up.

    AMC (official code): sigma 0.5 on a keep ratio in [0, 1], decayed by 0.95 per exploitation episode. Here the
    action lives in [-1, 1] (twice as wide), so sigma is given in keep-ratio units and doubled internally.
    `__call__` (SB3's additive interface) returns the offset from a zero action; `perturb(mu)` is what the AMC
    agents use, since a truncated normal needs its centre.
    """

    def __init__(
        self,
        sigma: float = 0.5,
        decay: float = 0.95,
        warmup_episodes: int = 0,
        low: float = -1.0,
        high: float = 1.0,
        seed: int | None = None,
        action_span: float = 2.0,
    ) -> None:
        super().__init__()
        self.initial_sigma = sigma
        self.decay = decay
        self.warmup_episodes = warmup_episodes
        self.low, self.high = low, high
        self.action_span = action_span
        self.episodes = 0
        self.rng = np.random.default_rng(seed)

    @property
    def sigma(self) -> float:
        """Current sigma in action units."""
        past_warmup = max(0, self.episodes - self.warmup_episodes)
        return self.initial_sigma * self.action_span * self.decay**past_warmup

    def perturb(self, mu: np.ndarray) -> np.ndarray:
        mu = np.clip(np.asarray(mu, dtype=np.float64), self.low, self.high)
        sigma = max(self.sigma, 1e-8)
        a, b = (self.low - mu) / sigma, (self.high - mu) / sigma
        return truncnorm.rvs(a, b, loc=mu, scale=sigma, size=mu.shape, random_state=self.rng).astype(np.float32)

    def __call__(self) -> np.ndarray:
        return self.perturb(np.zeros(1))

    def reset(self) -> None:
        """Called by SB3 at the end of every episode."""
        self.episodes += 1

    def state_dict(self) -> dict:
        return {"episodes": self.episodes, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.episodes = int(state["episodes"])
        self.rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"TruncatedNormalActionNoise(sigma={self.sigma:.4f}, episodes={self.episodes})"
