"""Experiment configuration: YAML -> one frozen dataclass per section, validated; CLI overrides on top.

`load_config(path, overrides)` is the only place that reads a config file. It checks everything it can without
building anything: unknown keys, wrong types, names that must be one of a fixed set (with a "did you mean"),
cost-model and device names, and cheap ranges; each error names the file (or the override), the key and the fix,
before any data, model, training or LUT work. Every run folder gets the resolved config back as `config.yaml`.

Imports nothing heavy (no torch, SB3, optuna, amc.search): the CLI reads the config before it loads those. The
choice tuples below mirror the registries that own them; tests/test_config.py keeps them equal.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from amc.errors import UserError
from hwmodel.errors import HwModelError, did_you_mean
from hwmodel.registry import check_cost_model

SEARCH_METHODS = ("amc", "netadapt", "uniform", "sensitivity", "random", "bayes", "energy-aware", "slimming")
"""`search.method`: the keys of amc.search.methods.METHODS."""
REWARDS = ("acc", "error_log_cost")
"""`search.reward`: the keys of amc.problem.base.REWARDS."""
GRANULARITIES = ("channel", "element", "bits", "joint", "vector", "kernel", "filter", "nm")
"""`search.granularity`: the keys of amc.problem.factory.PROBLEMS."""
EXECUTORS = ("local", "ray")
"""`search.executor`: local worker processes or Ray actors (amc.search.parallel builds them)."""
SELECTIONS = ("l1", "l2", "lstsq", "lstsq-l2", "bn_scale")
"""`search.selection`: the keys of amc.pruning.selection.SELECTORS."""
ALGORITHMS = ("ddpg", "td3", "sac")
"""`agent.algorithm`: the keys of amc.agents.algorithms.ALGORITHMS."""
MEASURED_TOLERANCE = 0.02
"""How far over the budget a measured latency may be and still meet it (after a search, in `amc evaluate`): timings
of one network wander by a per cent or two from one run to the next on a quiet machine."""
LUT_BACKENDS = ("onnxruntime", "torch", "openvino", "torch-cuda")
"""`cost.lut_backend`: hwmodel.lut.BACKENDS."""
LUT_PRECISIONS = ("fp32", "int8")
"""`cost.precision`: hwmodel.lut.fingerprint.PRECISIONS."""
INT8_LUT_BACKENDS = ("onnxruntime", "openvino")
"""The `cost.lut_backend`s that time INT8 layers: hwmodel.lut.fingerprint.INT8_BACKENDS."""
OPTIMIZERS = ("sgd", "adamw")
"""`train.optimizer` and `finetune.optimizer`: what amc.training.loop.make_optimizer builds."""
DEVICE_PATTERN = re.compile(r"cpu|auto|cuda(:[0-9]+)?")
"""`experiment.device`: what amc.device.resolve_device accepts (whether the GPU exists is checked there)."""
AUTO_ROUND_TO = "auto"
"""`search.round_to` that follows the device: see `resolve_round_to`."""
DEFAULT_ROUND_TO = 8
"""The grid of `search.round_to: auto` when the cost model names no device with a channel alignment."""
AUTO_LUT = "lut:auto"
"""`cost.model` for this machine's measured LUT, built on demand (amc.costs.registry); any other name is hwmodel's."""

CHOICES: dict[str, tuple[str, ...]] = {
    "search.method": SEARCH_METHODS,
    "search.reward": REWARDS,
    "search.granularity": GRANULARITIES,
    "search.executor": EXECUTORS,
    "search.selection": SELECTIONS,
    "agent.algorithm": ALGORITHMS,
    "cost.lut_backend": LUT_BACKENDS,
    "cost.precision": LUT_PRECISIONS,
    "train.optimizer": OPTIMIZERS,
    "finetune.optimizer": OPTIMIZERS,
}
"""Every key whose value must be one of a fixed set of names."""

MOVED_KEYS = {
    "search.netadapt_step": "search.netadapt.step",
    "search.netadapt_decay": "search.netadapt.decay",
    "search.netadapt_finetune_steps": "search.netadapt.finetune_steps",
    "search.netadapt_lr": "search.netadapt.lr",
    "search.netadapt_max_iterations": "search.netadapt.max_iterations",
    "search.sensitivity_keeps": "search.sensitivity.keeps",
    "search.study_storage": "search.bayes.storage",
    "search.trial_batch": "search.bayes.trial_batch",
}
"""Keys that moved into a method's sub-section: the old name is an error that names the new one."""


@dataclass(frozen=True)
class ExperimentSection:
    name: str = "experiment"
    """Run name; the default run folder is runs/<name>."""
    seed: int = 0
    """Seed of everything stochastic in the run (agent, exploration, sampling)."""
    threads: int = 2
    """torch CPU threads."""
    device: str = "cpu"
    """Where networks run (training, BN re-estimation, refits, scoring, fine-tuning): cpu, cuda, cuda:N, or auto
    (the first GPU when torch sees one, else cpu). Cost models still price the target device, not this one."""
    amp: bool = False
    """bfloat16 autocast on CUDA for training, fine-tuning and scoring (faster on tensor-core GPUs, results not
    bit-identical to float32); refused on the CPU."""
    channels_last: bool = False
    """Channels-last weights on a GPU (often faster with amp); CPU models are always channels-last (oneDNN)."""


@dataclass(frozen=True)
class ModelSection:
    name: str = "resnet20"
    """Zoo name (resnet20, resnet56, ...), torchvision:<name> or timm:<name> (the timm extra); `amc list models`."""
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
    slimming_l1: float = 0.0
    """Network slimming's sparsity term (Liu et al. 2017): lambda * sign(gamma) added to every BatchNorm weight's
    gradient, so unimportant channels' scales shrink towards zero before `search.method: slimming` cuts them (0:
    off; fine-tunes train without it, as the paper's do). A base model trained with it is cached apart. Write
    0.0001, not 1e-4 (YAML reads that as text)."""


@dataclass(frozen=True)
class CostSection:
    model: str = "lut:auto"
    """Cost model: lut:auto (this machine's measured LUT, built on demand), macs, params, size (weight bytes at
    their bits), lut:<file>, roofline:<device>, systolic:<preset>, sparse:<base>, energy:<preset>,
    bitserial:<device> or bitserial-energy:<device>; `amc list devices`."""
    lut_backend: str = "onnxruntime"
    """Backend of the LUT that lut:auto measures: onnxruntime (how CPU deployments run; PyTorch eager's fixed
    per-op dispatch cost hides most of what pruning saves at batch 1), torch, openvino, or torch-cuda (this
    machine's CUDA GPU; refused up front where torch sees none)."""
    allow_foreign_lut: bool = False
    """Accept a LUT measured on another device (with a warning) instead of refusing it."""
    precision: str = "fp32"
    """What a measured LUT times its layers as: fp32, or int8 (QDQ INT8 graphs on onnxruntime or openvino): the
    budget is then an INT8 latency, and lut:auto builds (or a lut:<file> must be) an INT8 LUT."""


@dataclass(frozen=True)
class BudgetSection:
    ratio: float | None = 0.5
    """Budget as a share of the dense model's cost by the cost model (0.5 = half the latency)."""
    value: float | None = None
    """Budget in the cost model's own unit (ms, mJ, MACs, params, bytes); overrides ratio."""


@dataclass(frozen=True)
class NetAdaptSection:
    """NetAdapt (`search.method: netadapt`): step-by-step cost cuts, each the best single-group cut after a short
    fine-tune."""

    step: float = 0.025
    """Cost cut of the first iteration as a share of the dense cost (R0; later cuts shrink by the decay)."""
    decay: float = 0.96
    """Each iteration's cost cut is the previous one times this."""
    finetune_steps: int = 100
    """Short-term fine-tune SGD steps per candidate (0: none; long-term fine-tune is `amc evaluate`)."""
    lr: float = 0.005
    """Learning rate of the short-term fine-tune (SGD, momentum 0.9)."""
    max_iterations: int = 0
    """Stop after this many iterations even if the budget is not met yet (0: until it is met)."""


@dataclass(frozen=True)
class EnergyAwareSection:
    """Energy-aware pruning (`search.method: energy-aware`, Yang, Chen & Sze 2017): the most energy-hungry group
    first, cut step by step while the search-val accuracy drop stays within a tolerance that grows each pass."""

    max_drop: float = 0.01
    """Search-val accuracy drop from the dense network allowed in the first pass (0.01: one point)."""
    growth: float = 2.0
    """Each later pass allows this many times the previous pass's drop (> 1, so the budget is always met)."""


@dataclass(frozen=True)
class SensitivitySection:
    """Sensitivity analysis (`search.method: sensitivity`, Distiller style)."""

    keeps: tuple[float, ...] = (0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)
    """Keep ratios each group is pruned to, one group at a time (clipped to [lbound, rbound])."""


@dataclass(frozen=True)
class BayesSection:
    """Bayesian optimisation (`search.method: bayes`, Optuna TPE)."""

    storage: str | None = None
    """Optuna storage URL (default sqlite:///<run folder>/study.db); several workers may share one database."""
    trial_batch: int = 1
    """Trials asked at once and scored in parallel (TPE, constant liar); results depend on it, not on workers."""


@dataclass(frozen=True)
class SearchSection:
    method: str = "amc"
    """amc, netadapt, uniform, sensitivity, random, bayes, energy-aware or slimming; `amc list methods`."""
    episodes: int = 400
    """Episodes (amc, random) or trials (bayes) in all, warm-up included."""
    lbound: float = 0.2
    """Smallest keep ratio of any layer."""
    rbound: float = 1.0
    """Largest keep ratio of any layer."""
    round_to: int | str = 8
    """Kept channel counts are multiples of this; `auto`: the channel alignment of the device the cost model
    names (`channel_alignment` of a roofline:/systolic: profile, e.g. 8 for fp16 tensor cores), else 8. load_config
    writes the resolved number back, so a run's config.yaml records the grid it searched."""
    granularity: str = "channel"
    """channel (filters removed, a thinner network) or element (AMC's fine-grained mode: per-layer weight density,
    magnitude masks; pair it with a zero-skipping `sparse:<base>` cost model), bits (HAQ's mixed precision: weight
    and activation bits per layer, fake-quantized) or joint (per group a keep ratio and bits); bits and joint need
    a cost model that prices bit-widths. Masked like element, in coarser groups of smallest L1 (Mao et al. 2017;
    pair them with a `sparse@<profile>:<base>` cost model): vector (1 x k kernel rows), kernel (k x k kernels),
    filter (whole output channels, as masks) or nm (`search.nm`; a per-layer choice: N:M or dense)."""
    stages: int = 1
    """Iterative pruning (Han et al. 2015; AMC's multi-stage search): K > 1 searches K times, each stage on the
    previous stage's thinned network fine-tuned by the `finetune:` section, stage k to ratio^(k/K) of the dense cost
    (geometric: every stage removes the same share of what it is given); channel granularity only."""
    nm: tuple[int, ...] = (2, 4)
    """[N, M] of `granularity: nm`: keep the N largest of every M consecutive input-channel weights (0 < N < M)."""
    bits_range: tuple[int, ...] = (2, 8)
    """[b_min, b_max]: bit-widths of weights and activations the `bits` and `joint` granularities search (HAQ)."""
    reward: str = "acc"
    """acc (budget enforced by clipping) or error_log_cost (-error * log(cost))."""
    selection: str = "lstsq"
    """Channel selection: lstsq (L1 ranking + AMC's least-squares refit of the next layer; default: at a 50%
    latency budget on ResNet-20 it scores random strategies at 83-89% search-val vs 23-51% for plain L1),
    lstsq-l2 (the same on L2 ranking), l1 or l2 (filter norms only; faster), or bn_scale (network slimming: the
    |gamma| of the BatchNorm after each member layer, summed over a coupled group's members; refused when a
    prunable layer has no BatchNorm right after it)."""
    eval_images: int = 1000
    """search-val images each candidate is scored on."""
    adaptive_bn: bool = True
    """Re-estimate BatchNorm statistics before scoring a candidate (EagleEye)."""
    bn_images: int = 512
    """Training images used to re-estimate BatchNorm statistics."""
    rerank_top: int = 5
    """The best this many candidates within the budget (by reward) are re-scored on the whole search-val split
    before the result is picked: the max of many noisy slice scores is biased upward (0: no re-ranking)."""
    verify_top: int = 5
    """When the budget is a latency measured by a LUT on this machine: the best this many candidates within the
    budget are timed end to end after the search, and the best that meets the budget when measured is returned
    (0: no check)."""
    workers: int = 1
    """Processes (or Ray tasks) scoring independent candidates at once; for AMC, episodes in flight (1: SB3's serial
    learn loop in this process, whatever the executor)."""
    executor: str = "local"
    """local (processes) or ray."""
    ray_address: str | None = None
    """A Ray cluster to join (executor ray), e.g. ray://head:10001; default: a local Ray."""
    netadapt: NetAdaptSection = field(default_factory=NetAdaptSection)
    energy_aware: EnergyAwareSection = field(default_factory=EnergyAwareSection)
    sensitivity: SensitivitySection = field(default_factory=SensitivitySection)
    bayes: BayesSection = field(default_factory=BayesSection)


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
    budget_range: Sequence[float] | None = None
    """[lo, hi]: each episode draws its budget ratio uniformly from it (seeded by experiment.seed and the episode)
    and observes it, so one search learns a policy for every budget (`amc pareto`); null: budget.ratio only."""


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
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        if key in MOVED_KEYS:
            raise _moved(key)
        raise UserError(
            f"unknown key {key}.{did_you_mean(unknown[0], names)}" if where else f"unknown section {key!r}.",
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


def _moved(old: str) -> UserError:
    new = MOVED_KEYS[old]
    section, sub, key = new.split(".")
    return UserError(
        f"{old} moved to {new}.",
        fix=f"in YAML write it under `{section}:` as `{sub}: {{{key}: ...}}`; on the command line --set {new}=VALUE.",
    )


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    """Set `value` at `dotted` (section.key, section.sub.key, ...), creating the sections on the way."""
    *parents, key = dotted.split(".")
    if not parents or not all(parents) or not key:
        raise UserError(f"override {dotted!r} must name a section and a key.", fix="write it as section.key=value.")
    node = tree
    for depth, name in enumerate(parents):
        if node.get(name) is None:
            node[name] = {}
        if not isinstance(node[name], dict):
            parent = ".".join(parents[: depth + 1])
            raise UserError(f"override {dotted!r}: {parent} is not a section.", fix="see `amc search --help`.")
        node = node[name]
    node[key] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`search.episodes=20` -> ("search.episodes", 20), the value parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise UserError(f"override {text!r} has no '='.", fix="write it as section.key=value, e.g. search.episodes=20.")
    return key.strip(), yaml.safe_load(raw)


BITS_RANGE_TEXT = "two whole bit-widths [b_min, b_max] with 2 <= b_min <= b_max <= 8"


def bits_range_ok(value: Any) -> bool:
    """Whether `value` is a [b_min, b_max] pair of whole bit-widths within HAQ's 2..8."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(bits, int) and not isinstance(bits, bool) for bits in value)
        and 2 <= value[0] <= value[1] <= 8
    )


NM_TEXT = "two whole numbers [N, M] with 0 < N < M (N kept of every M weights), e.g. [2, 4]"


def nm_ok(value: Any) -> bool:
    """Whether `value` is an [N, M] pair of whole numbers with 0 < N < M."""
    return (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(count, int) and not isinstance(count, bool) for count in value)
        and 0 < value[0] < value[1]
    )


class _Range(NamedTuple):
    """A cheap check of one value; NaN fails every comparison, so it is refused wherever a range is asked for."""

    ok: Callable[[Any], bool]
    text: str


def _at_least(low: int) -> _Range:
    return _Range(lambda value: value >= low, f"at least {low}")


_POSITIVE = _Range(lambda value: 0 < value < math.inf, "a positive finite number")
_NON_NEGATIVE = _Range(lambda value: 0 <= value < math.inf, "a finite number >= 0")
_SHARE = _Range(lambda value: 0 < value <= 1, "in (0, 1]")
_OPTIONAL_SHARE = _Range(lambda value: value is None or 0 < value <= 1, "in (0, 1] (or unset)")
_OPTIONAL_POSITIVE = _Range(lambda value: value is None or 0 < value < math.inf, "a positive finite number (or unset)")

RANGES: dict[str, _Range] = {
    "experiment.threads": _at_least(1),
    "data.batch_size": _at_least(1),
    "data.image_size": _at_least(0),
    "train.epochs": _at_least(1),
    "train.batch_size": _at_least(1),
    "train.lr": _POSITIVE,
    "train.weight_decay": _NON_NEGATIVE,
    "train.label_smoothing": _Range(lambda value: 0 <= value < 1, "in [0, 1)"),
    "train.slimming_l1": _NON_NEGATIVE,
    "budget.ratio": _OPTIONAL_SHARE,
    "budget.value": _OPTIONAL_POSITIVE,
    "search.episodes": _at_least(1),
    "search.stages": _Range(lambda value: isinstance(value, int) and 1 <= value <= 10, "a whole number in 1..10"),
    "search.lbound": _SHARE,
    "search.rbound": _SHARE,
    "search.bits_range": _Range(bits_range_ok, BITS_RANGE_TEXT),
    "search.nm": _Range(nm_ok, NM_TEXT),
    "search.round_to": _Range(
        lambda value: value == AUTO_ROUND_TO or (isinstance(value, int) and value >= 1), "a whole number >= 1 or auto"
    ),
    "search.verify_top": _at_least(0),
    "search.rerank_top": _at_least(0),
    "search.eval_images": _at_least(1),
    "search.bn_images": _at_least(0),
    "search.workers": _at_least(1),
    "search.netadapt.step": _Range(lambda value: 0 < value < 1, "in (0, 1), a share of the dense cost"),
    "search.netadapt.decay": _SHARE,
    "search.netadapt.finetune_steps": _at_least(0),
    "search.netadapt.lr": _POSITIVE,
    "search.netadapt.max_iterations": _at_least(0),
    "search.energy_aware.max_drop": _Range(lambda value: 0 < value <= 1, "in (0, 1], a share of accuracy"),
    "search.energy_aware.growth": _Range(lambda value: 1 < value < math.inf, "a finite number > 1"),
    "search.sensitivity.keeps": _Range(
        lambda value: len(value) > 0 and all(0 < keep <= 1 for keep in value), "a non-empty list of ratios in (0, 1]"
    ),
    "search.bayes.trial_batch": _at_least(1),
    "agent.warmup_episodes": _at_least(0),
    "agent.hidden": _Range(
        lambda value: len(value) > 0 and all(width >= 1 for width in value), "a list of widths >= 1"
    ),
    "agent.lr_actor": _POSITIVE,
    "agent.lr_critic": _POSITIVE,
    "agent.tau": _SHARE,
    "agent.batch_size": _at_least(1),
    "agent.buffer_size": _at_least(1),
    "agent.noise_sigma": _NON_NEGATIVE,
    "agent.noise_decay": _SHARE,
    "agent.baseline_alpha": _Range(lambda value: 0 <= value <= 1, "in [0, 1]"),
    "agent.gradient_steps": _at_least(-1),
    "agent.budget_range": _Range(
        lambda value: value is None or (len(value) == 2 and 0 < value[0] <= value[1] <= 1),
        "[lo, hi] with 0 < lo <= hi <= 1 (or null)",
    ),
    "finetune.epochs": _at_least(0),
    "finetune.lr": _POSITIVE,
    "finetune.weight_decay": _NON_NEGATIVE,
    "finetune.batch_size": _at_least(1),
    "finetune.val_images": _at_least(0),
}
"""Cheap, obvious bounds of numeric keys (agent.gradient_steps -1: one update per step of the episode)."""


def _value(config: ExperimentConfig, dotted: str) -> Any:
    return reduce(getattr, dotted.split("."), config)


def validate_config(
    config: ExperimentConfig, where: Callable[[str], str] = lambda key: "", cost_model: bool = True
) -> None:
    """Raise UserError for the first value no run could use: a name outside its choices, an unknown cost model or
    device, a number out of range. `where(key)` says where the key was set (prefixed to the message);
    `cost_model=False` skips the cost-model name (a caller that hands its own cost model object)."""

    def fail(key: str, problem: str, fix: str) -> UserError:
        prefix = where(key)
        return UserError(f"{prefix}: {problem}" if prefix else problem, fix=fix)

    for key, choices in CHOICES.items():
        value = _value(config, key)
        if value not in choices:
            raise fail(
                key,
                f"{key} is {value!r}, which is not one of {', '.join(choices)}.{did_you_mean(value, choices)}",
                f"set {key} to one of those names.",
            )
    for key, bound in RANGES.items():
        value = _value(config, key)
        if not bound.ok(value):
            raise fail(
                key, f"{key} is {value!r}; it must be {bound.text}.", f"change {key} so that it is {bound.text}."
            )
    device = config.experiment.device
    if not DEVICE_PATTERN.fullmatch(device):
        raise fail(
            "experiment.device",
            f"experiment.device is {device!r}, which is not cpu, cuda, cuda:N (N = 0, 1, ...) or auto.",
            "set experiment.device (--device) to cpu, cuda, cuda:0 or auto.",
        )
    search = config.search
    if search.lbound > search.rbound:
        raise fail(
            "search.lbound",
            f"search.lbound {search.lbound} is above search.rbound {search.rbound}.",
            "use 0 < search.lbound <= search.rbound <= 1.",
        )
    if search.stages > 1 and search.granularity != "channel":
        raise fail(
            "search.stages",
            f"search.stages is {search.stages}, but search.granularity is {search.granularity!r}: a stage searches "
            "the previous stage's thinned network, and only channel pruning thins one.",
            "set search.stages: 1, or search.granularity: channel.",
        )
    if search.method == "slimming" and search.selection != "bn_scale":
        raise fail(
            "search.selection",
            f"search.method slimming cuts the channels of smallest |gamma|, but search.selection is "
            f"{search.selection!r}.",
            "set search.selection: bn_scale (configs/methods/slimming.yaml does).",
        )
    if cost_model and search.method == "energy-aware" and not prices_energy(config.cost.model):
        raise fail(
            "cost.model",
            f"search.method energy-aware ranks layers by their energy, but cost.model {config.cost.model!r} does not "
            "price energy.",
            "set cost.model to an energy model: energy:<preset> or bitserial-energy:<device> (`amc list devices`).",
        )
    if cost_model:
        _check_cost_model(config.cost.model, lambda problem, fix: fail("cost.model", problem, fix))
        _check_precision(config, fail)


def prices_energy(name: str) -> bool:
    """Whether the cost model `name` prices energy (mJ): energy:, bitserial-energy:, or a sparse: wrapper of one."""
    while name.startswith("sparse"):
        name = name.partition(":")[2]
    return name.partition(":")[0] in ("energy", "bitserial-energy")


def _check_precision(config: ExperimentConfig, fail: Callable[[str, str, str], UserError]) -> None:
    """cost.precision int8 needs a measured LUT (nothing else reads it) on a backend that times INT8."""
    cost = config.cost
    if cost.precision != "int8":
        return
    if "lut:" not in cost.model:
        raise fail(
            "cost.precision",
            f"cost.precision is int8, but cost.model {cost.model!r} is not a measured LUT: only lut:auto and "
            "lut:<file> time INT8 layers.",
            "set cost.model to lut:auto (or an INT8 lut:<file>), or cost.precision to fp32.",
        )
    if cost.model == AUTO_LUT and cost.lut_backend not in INT8_LUT_BACKENDS:
        raise fail(
            "cost.precision",
            f"cost.precision is int8, but cost.lut_backend {cost.lut_backend!r} cannot time INT8 layers (INT8 "
            "units are QDQ ONNX graphs).",
            f"set cost.lut_backend to {' or '.join(INT8_LUT_BACKENDS)}, or cost.precision to fp32.",
        )


def _check_cost_model(name: str, fail: Callable[[str, str], UserError]) -> None:
    """A cost-model name that would build: devices and presets read (small YAML files), LUT files found, not read."""
    if name == AUTO_LUT:
        return
    if AUTO_LUT in name:
        raise fail(
            f"cost.model is {name!r}, but {AUTO_LUT} can only be the whole cost model.",
            "build the table once (`amc lut build --model M --out FILE`) and name it, e.g. sparse:lut:FILE.",
        )
    try:
        check_cost_model(name)
    except HwModelError as error:
        raise fail(f"cost.model is {name!r}: {error.problem}", error.fix) from None


def _read_tree(path: str | Path) -> dict[str, Any]:
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
    return tree


def load_config(
    path: str | Path | None = None, overrides: Mapping[str, Any] | None = None, *, check_cost_model: bool = True
) -> ExperimentConfig:
    """Read a YAML experiment (or the built-in defaults when `path` is None), apply dotted overrides (any depth:
    `search.netadapt.step`; None values are skipped) and validate the result.

    `check_cost_model=False` skips checking that cost.model names a cost model that exists (for a caller that
    brings its own cost model object, or only reads a finished run's results); everything else is always checked.
    """
    source = "built-in defaults" if path is None else str(path)
    tree = {} if path is None else _read_tree(path)
    overridden = [dotted for dotted, value in (overrides or {}).items() if value is not None]
    for dotted in overridden:
        if dotted in MOVED_KEYS:
            error = _moved(dotted)
            raise UserError(f"{source}, override {dotted}: {error.problem}", fix=error.fix)
        _set_path(tree, dotted, (overrides or {})[dotted])
    try:
        config: ExperimentConfig = _build(ExperimentConfig, tree, "")
    except UserError as error:
        raise UserError(f"{source}: {error.problem}", fix=error.fix) from None

    def where(key: str) -> str:
        by = [dotted for dotted in overridden if key == dotted or key.startswith(f"{dotted}.")]
        return f"{source}, override {by[0]}" if by else source

    validate_config(config, where, cost_model=check_cost_model)
    if config.search.round_to == AUTO_ROUND_TO:
        search = dataclasses.replace(config.search, round_to=resolve_round_to(config))
        config = dataclasses.replace(config, search=search)
    return config


def resolve_round_to(config: ExperimentConfig) -> int:
    """`search.round_to` as a number: itself, or for `auto` the channel alignment of the device the cost model
    names (through sparse: wrappers), else DEFAULT_ROUND_TO; a LUT or a count model names no device profile."""
    value = config.search.round_to
    if value != AUTO_ROUND_TO:
        return int(value)
    from hwmodel.profiles import device_alignment

    return device_alignment(config.cost.model) or DEFAULT_ROUND_TO


def save_config(config: ExperimentConfig, path: Path) -> None:
    """Write the resolved config (what was actually run) beside a run's outputs."""
    from amc.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
