"""Save and restore an agent's whole learning state without pickle: one torch file of tensors and plain data.

SB3's own `save`/`save_replay_buffer` pickle Python objects; we keep only what resuming needs (network and
optimiser state, the replay buffer's arrays, counters, the exploration noise and RNG states) and load it with
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from amc.agents.noise import TruncatedNormalActionNoise
from amc.agents.replay import EpisodeRewardReplayBuffer
from amc.errors import UserError
from amc.io import atomic_torch_save

AGENT_STATE_VERSION = 1
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _optimizers(agent: OffPolicyAlgorithm) -> dict[str, torch.optim.Optimizer]:
    found = {"actor": agent.actor.optimizer, "critic": agent.critic.optimizer}  # type: ignore[attr-defined]
    if getattr(agent, "ent_coef_optimizer", None) is not None:
        found["ent_coef"] = agent.ent_coef_optimizer  # type: ignore[attr-defined]
    return found


def _np_random_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "name": name,
        "keys": torch.from_numpy(np.asarray(keys).astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "gauss": float(gauss),
    }


def save_agent_state(agent: OffPolicyAlgorithm, path: Path, episodes: int) -> None:
    buffer = agent.replay_buffer
    assert isinstance(buffer, EpisodeRewardReplayBuffer)
    filled = buffer.buffer_size if buffer.full else buffer.pos
    noise = agent.action_noise
    state = {
        "version": AGENT_STATE_VERSION,
        "episodes": episodes,
        "algorithm": type(agent).__name__,
        "policy": agent.policy.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in _optimizers(agent).items()},
        "log_ent_coef": getattr(agent, "log_ent_coef", None),
        "buffer": {
            name: torch.from_numpy(np.ascontiguousarray(getattr(buffer, name)[:filled])) for name in _BUFFER_ARRAYS
        },
        "buffer_pos": buffer.pos,
        "buffer_full": buffer.full,
        "baseline": buffer.baseline,
        "num_timesteps": agent.num_timesteps,
        "episode_num": agent._episode_num,
        "n_updates": agent._n_updates,
        "noise": noise.state_dict() if isinstance(noise, TruncatedNormalActionNoise) else None,
        "action_space_rng": agent.action_space.np_random.bit_generator.state,
        "np_random": _np_random_state(),
        "torch_rng": torch.get_rng_state(),
    }
    atomic_torch_save(path, state)


def read_agent_state(path: Path) -> dict[str, Any]:
    """The saved state of save_agent_state; anything else (missing, garbage, another kind of file) is a UserError."""
    fix = (
        "use the agent/agent.pt an `amc search --method amc` run wrote: point --policy (agent.policy) at a finished "
        "run's, or for --resume delete the damaged file to start the agent over."
    )
    if not Path(path).is_file():
        raise UserError(f"agent checkpoint {path} does not exist.", fix=fix)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - garbage, truncated or unsafe: the same user problem
        text = " ".join(str(error).split())[:200]
        raise UserError(
            f"agent checkpoint {path} is not a readable torch file ({type(error).__name__}: {text}).", fix=fix
        ) from None
    if not isinstance(state, dict) or not isinstance(state.get("policy"), dict):
        found = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise UserError(
            f"agent checkpoint {path} is not an amc agent state: expected a dict with 'version', 'policy', "
            f"'optimizers' and the replay buffer, found {found}.",
            fix=fix,
        )
    if int(state.get("version", 0)) > AGENT_STATE_VERSION:
        raise UserError(
            f"agent checkpoint {path} has format version {state['version']}, newer than this amc understands "
            f"({AGENT_STATE_VERSION}).",
            fix="upgrade amc.",
        )
    return state


def read_policy(path: Path) -> dict[str, Any]:
    """The actor-critic weights of an agent checkpoint (checked readable; see read_agent_state)."""
    return read_agent_state(path)["policy"]


def load_agent_state(agent: OffPolicyAlgorithm, state: dict[str, Any]) -> int:
    """Restore `state` (from read_agent_state) into a freshly built agent of the same config; returns episodes."""
    agent.policy.load_state_dict(state["policy"])
    for name, optimizer in _optimizers(agent).items():
        optimizer.load_state_dict(state["optimizers"][name])
    if state.get("log_ent_coef") is not None:
        agent.log_ent_coef.data.copy_(state["log_ent_coef"])  # type: ignore[attr-defined]
    buffer = agent.replay_buffer
    assert isinstance(buffer, EpisodeRewardReplayBuffer)
    for name in _BUFFER_ARRAYS:
        values = state["buffer"][name].numpy()
        getattr(buffer, name)[: len(values)] = values
    buffer.pos, buffer.full, buffer.baseline = state["buffer_pos"], state["buffer_full"], state["baseline"]
    agent.num_timesteps = state["num_timesteps"]
    agent._episode_num = state["episode_num"]
    agent._n_updates = state["n_updates"]
    if isinstance(agent.action_noise, TruncatedNormalActionNoise) and state["noise"] is not None:
        agent.action_noise.load_state_dict(state["noise"])
    agent.action_space.np_random.bit_generator.state = state["action_space_rng"]
    saved = state["np_random"]
    np.random.set_state(
        (saved["name"], saved["keys"].numpy().astype(np.uint32), saved["pos"], saved["has_gauss"], saved["gauss"])
    )
    torch.set_rng_state(state["torch_rng"])
    return int(state["episodes"])


def load_policy_weights(agent: OffPolicyAlgorithm, path: Path) -> None:
    """Only the trained networks (to run a learned policy greedily on a new model or budget)."""
    try:
        agent.policy.load_state_dict(read_policy(path))
    except RuntimeError as error:
        first = " ".join(str(error).split())[:300]
        raise UserError(
            f"agent checkpoint {path} does not fit this agent (agent.algorithm / agent.hidden differ): {first}",
            fix="use the agent section the policy was trained with (its run folder's config.yaml).",
        ) from None
