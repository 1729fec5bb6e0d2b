"""Experiment configuration: YAML -> one frozen dataclass per section, validated; CLI overrides on top.

`load_config(path, overrides)` is the only place that reads a config file. Unknown keys and wrong types are
errors that name the file and the key; every run folder gets the resolved config back as `config.yaml`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from amc.errors import UserError


@dataclass(frozen=True)
class ExperimentSection:
    name: str = "experiment"
    """Run name; the default run folder is runs/<name>."""
    seed: int = 0
    """Seed of everything stochastic in the run (agent, exploration, sampling)."""
    threads: int = 2
    """torch CPU threads."""


@dataclass(frozen=True)
class ModelSection:
    name: str = "resnet20"
    """Zoo name (resnet20, resnet56, ...) or torchvision:<name>; `amc list models`."""
    checkpoint: str = "auto"
    """Base model weights: a .pt path, 'auto' (the cached `amc train` result, trained on demand) or 'none'."""


@dataclass(frozen=True)
class DataSection:
    dataset: str = "fashion-mnist"
    """Dataset name; `amc list datasets`."""
    root: str | None = None
    """Folder of the dataset files (default: the dataset's standard place)."""
    search_val_size: int = 5000
    """Training images held out as search-val (what searches score on); fixed by split_seed."""
    split_seed: int = 0
    image_size: int = 0
    """Resize target for imagefolder (0: 224) and synthetic (0: 16) datasets; others keep their native size."""
    batch_size: int = 256
    """Batch size for evaluation."""


@dataclass(frozen=True)
class TrainSection:
    epochs: int = 3
    batch_size: int = 128
    optimizer: str = "sgd"
    """sgd (momentum 0.9, nesterov) or adamw."""
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    seed: int = 0
    """Seed of the base model's training and of its cache name. Separate from experiment.seed, so that searches
    with different seeds prune the same base model (`amc train --seed N` sets both)."""
    augment: bool = False
    """Random 2-pixel shifts and horizontal flips (in-memory datasets); off by default: in a 3-epoch budget it
    costs accuracy (ResNet-20 / Fashion-MNIST: 90.8% with, 92.3% without)."""


@dataclass(frozen=True)
class CostSection:
    model: str = "lut:auto"
    """Cost model: lut:auto (this machine's measured LUT, built on demand), macs, params, lut:<file>,
    roofline:<device>, systolic:<preset>, sparse:<base> or energy:<preset>; `amc list devices`."""
    lut_backend: str = "onnxruntime"
    """Backend of the LUT that lut:auto measures: onnxruntime (how CPU deployments run; PyTorch eager's fixed
    per-op dispatch cost hides most of what pruning saves at batch 1) or torch."""
    allow_foreign_lut: bool = False
    """Accept a LUT measured on another device (with a warning) instead of refusing it."""


@dataclass(frozen=True)
class BudgetSection:
    ratio: float | None = 0.5
    """Budget as a share of the dense model's cost by the cost model (0.5 = half the latency)."""
    value: float | None = None
    """Budget in the cost model's own unit (ms, mJ, MACs, params); overrides ratio."""


@dataclass(frozen=True)
class SearchSection:
    method: str = "amc"
    """amc, netadapt, uniform, sensitivity, random or bayes."""
    episodes: int = 400
    """Episodes (amc, random) or trials (bayes) in all, warm-up included."""
    lbound: float = 0.2
    """Smallest keep ratio of any layer."""
    rbound: float = 1.0
    """Largest keep ratio of any layer."""
    round_to: int = 8
    """Kept channel counts are multiples of this."""
    granularity: str = "channel"
    """channel (filters removed, a thinner network) or element (AMC's fine-grained mode: per-layer weight density,
    magnitude masks; pair it with a zero-skipping `sparse:<base>` cost model)."""
    reward: str = "acc"
    """acc (budget enforced by clipping) or error_log_cost (-error * log(cost))."""
    selection: str = "lstsq"
    """Channel selection: lstsq (L1 ranking + AMC's least-squares refit of the next layer; default: at a 50%
    latency budget on ResNet-20 it scores random strategies at 83-89% search-val vs 23-51% for plain L1),
    l1 or l2 (filter norms only; faster)."""
    eval_images: int = 1000
    """search-val images each candidate is scored on."""
    adaptive_bn: bool = True
    """Re-estimate BatchNorm statistics before scoring a candidate (EagleEye)."""
    bn_images: int = 512
    """Training images used to re-estimate BatchNorm statistics."""
    workers: int = 1
    executor: str = "local"
    """local (processes) or ray."""
    ray_address: str | None = None
    netadapt_step: float = 0.025
    """NetAdapt: cost cut of the first iteration as a share of the dense cost (R0; later cuts shrink by the decay)."""
    netadapt_decay: float = 0.96
    """NetAdapt: each iteration's cost cut is the previous one times this."""
    netadapt_finetune_steps: int = 100
    """NetAdapt: short-term fine-tune SGD steps per candidate (0: none; long-term fine-tune is `amc evaluate`)."""
    netadapt_lr: float = 0.005
    """NetAdapt: learning rate of the short-term fine-tune (SGD, momentum 0.9)."""
    netadapt_max_iterations: int = 0
    """NetAdapt: stop after this many iterations even if the budget is not met yet (0: until it is met)."""
    sensitivity_keeps: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    """sensitivity: keep ratios each group is pruned to, one group at a time (clipped to [lbound, rbound])."""
    study_storage: str | None = None
    """bayes: Optuna storage URL (default sqlite:///<run folder>/study.db); several workers may share one database."""
    trial_batch: int = 1
    """bayes: trials asked at once and scored in parallel (TPE, constant liar); results depend on it, not on workers."""


@dataclass(frozen=True)
class AgentSection:
    algorithm: str = "ddpg"
    """ddpg (AMC), td3 or sac (stable-baselines3)."""
    warmup_episodes: int = 100
    hidden: Sequence[int] = (300, 300)
    lr_actor: float = 1e-4
    lr_critic: float = 1e-3
    tau: float = 0.01
    batch_size: int = 64
    buffer_size: int = 100000
    noise_sigma: float = 0.5
    noise_decay: float = 0.95
    baseline_alpha: float = 0.5
    """Moving-average reward baseline weight (AMC: 0.5)."""
    gradient_steps: int = -1
    """Agent updates after each episode; -1: one per step of the episode (AMC)."""
    policy: str | None = None
    """A trained agent checkpoint to run greedily instead of learning."""


@dataclass(frozen=True)
class FinetuneSection:
    """Fine-tuning of a pruned network by `amc evaluate` (cosine schedule with a short warm-up, as `amc train`)."""

    epochs: int = 2
    optimizer: str = "sgd"
    """sgd (momentum 0.9, nesterov) or adamw."""
    lr: float = 0.01
    weight_decay: float = 5e-4
    batch_size: int = 128
    val_images: int = 1000
    """search-val images scored after each epoch (progress only; the test set is scored once, at the end)."""


@dataclass(frozen=True)
class ExperimentConfig:
    experiment: ExperimentSection = field(default_factory=ExperimentSection)
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    cost: CostSection = field(default_factory=CostSection)
    budget: BudgetSection = field(default_factory=BudgetSection)
    search: SearchSection = field(default_factory=SearchSection)
    agent: AgentSection = field(default_factory=AgentSection)
    finetune: FinetuneSection = field(default_factory=FinetuneSection)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check `value` against a field annotation (int, float, str, bool, X | None, Sequence[int])."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except UserError as error:
                errors.append(error)
        raise errors[0]
    if origin in (Sequence, list, tuple, typing.Sequence):
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be a list, got {value!r}.", fix="write it as a YAML list, e.g. [300, 300].")
        return tuple(_coerce(item, item_type, f"{where}[]") for item in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} must be true or false, got {value!r}.", fix="write true or false.")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise UserError(f"{where} must be an integer, got {value!r}.", fix="write a whole number.")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise UserError(f"{where} must be a number, got {value!r}.", fix="write a number such as 0.5.")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise UserError(f"{where} must be a string, got {value!r}.", fix="quote the value.")
    return value


def _build(cls: type, data: Mapping[str, Any], where: str) -> Any:
    if not isinstance(data, Mapping):
        raise UserError(f"{where} must be a mapping of keys to values, got {data!r}.", fix="indent its keys under it.")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise UserError(
            f"unknown key {where}.{unknown[0]}." if where else f"unknown section {unknown[0]!r}.",
            fix=f"valid keys here are: {', '.join(sorted(names))}.",
        )
    values = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], value or {}, key)
        else:
            values[name] = _coerce(value, hints[name], key)
    return cls(**values)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    section, _, key = dotted.partition(".")
    if not key:
        raise UserError(f"override {dotted!r} must name a section and a key.", fix="write it as section.key=value.")
    tree.setdefault(section, {})
    if not isinstance(tree[section], dict):
        raise UserError(f"override {dotted!r}: {section} is not a section.", fix="see `amc search --help`.")
    tree[section][key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`search.episodes=20` -> ("search.episodes", 20), the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise UserError(f"override {text!r} has no '='.", fix="write it as section.key=value, e.g. search.episodes=20.")
    return key.strip(), yaml.safe_load(raw)


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
    """Read a YAML experiment (or the built-in defaults when `path` is None) and apply dotted overrides."""
    tree: dict[str, Any] = {}
    where = "built-in defaults"
    if path is not None:
        where = str(path)
        try:
            text = Path(path).read_text()
        except OSError as error:
            raise UserError(
                f"cannot read config {path}: {error.strerror}.", fix="check the path (configs/*.yaml)."
            ) from None
        try:
            tree = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error)
            raise UserError(f"{path} is not valid YAML{line}: {problem}.", fix="fix the YAML syntax there.") from None
        if not isinstance(tree, dict):
            raise UserError(
                f"{path} must hold a mapping of sections, got {type(tree).__name__}.",
                fix="start the file with sections such as `model:` and `search:`.",
            )
    for dotted, value in (overrides or {}).items():
        if value is not None:
            _set_path(tree, dotted, value)
    try:
        return _build(ExperimentConfig, tree, "")
    except UserError as error:
        raise UserError(f"{where}: {error.problem}", fix=error.fix) from None


def save_config(config: ExperimentConfig, path: Path) -> None:
    """Write the resolved config (what was actually run) beside a run's outputs."""
    from amc.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
