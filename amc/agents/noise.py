"""AMC's exploration: a truncated normal around the actor's action, its sigma decaying once per episode."""

from __future__ import annotations

import numpy as np
from scipy.stats import truncnorm
from stable_baselines3.common.noise import ActionNoise

NOISE_STREAM = 1
"""The exploration draws' stream of the run's seed (SB3 seeds the action space with the seed itself)."""


class TruncatedNormalActionNoise(ActionNoise):
    """Sample actions from N(mu, sigma) truncated to [low, high]; sigma *= decay after each episode past warm-up.

    AMC (official code): sigma 0.5 on a keep ratio in [0, 1], decayed by 0.95 per exploitation episode. Here the
    action lives in [-1, 1] (twice as wide), so sigma is given in keep-ratio units and doubled internally.
    `__call__` (SB3's additive interface) returns the offset from a zero action; `perturb(mu, episode)` is what
    the AMC agents use, since a truncated normal needs its centre. The episode comes from the agent's own count
    (restored on resume), not from `reset()` calls: SB3 also calls `reset()` when `learn()` starts, so counting
    them put a resumed run one decay step ahead. The draws use their own stream of `seed`: SB3 seeds the action
    space (the warm-up draws) with the same number, and one stream made the first learning episodes repeat the
    warm-up's offsets.
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
        self.rng = np.random.default_rng(None if seed is None else [seed, NOISE_STREAM])

    def sigma_at(self, episode: int) -> float:
        """Sigma in action units during the 0-based `episode`: the initial one through the first learning episode
        (as AMC's code), then decayed once per episode."""
        past_warmup = max(0, episode - self.warmup_episodes)
        return self.initial_sigma * self.action_span * self.decay**past_warmup

    def perturb(self, mu: np.ndarray, episode: int) -> np.ndarray:
        """`mu` perturbed with the sigma of the 0-based `episode`."""
        mu = np.clip(np.asarray(mu, dtype=np.float64), self.low, self.high)
        sigma = max(self.sigma_at(episode), 1e-8)
        a, b = (self.low - mu) / sigma, (self.high - mu) / sigma
        return truncnorm.rvs(a, b, loc=mu, scale=sigma, size=mu.shape, random_state=self.rng).astype(np.float32)

    def __call__(self) -> np.ndarray:
        return self.perturb(np.zeros(1), 0)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]

    def __repr__(self) -> str:
        return f"TruncatedNormalActionNoise(sigma={self.initial_sigma}, decay={self.decay})"
