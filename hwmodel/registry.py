"""Cost models by name, as a config or flag names them; `amc list devices` prints `list_cost_models()`.

    macs | params | size | lut:<file> | roofline:<device> | systolic:<preset> | sparse:<base> | energy:<preset>
    | bitserial:<device> | bitserial-energy:<device>

`macs` and `params` are bit-blind on purpose; `size` (bytes), `energy:`, `roofline:` and `bitserial*:` read the
weight/activation bits of a quantized LayerSpec.
    sparse@<profile>:<base>   (sparse:<base> with profile=<profile>: per-pattern zero skipping, configs/devices/sparse)

Options (keyword arguments) tune a model: `lut:` allow_foreign, measure_missing, warmup, repeats, save_every_s;
`systolic:` dataflow; `energy:` array, dataflow, unit_pj; `sparse:` skip_fraction, efficiency,
activation_density, profile (these override the profile's; any other option goes to its base model).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwmodel.base import CostModel
from hwmodel.bitserial import BitSerialArray, BitSerialEnergyModel, BitSerialModel
from hwmodel.counting import MacsModel, ParamsModel
from hwmodel.energy import DEFAULT_ARRAY, ENERGY_PRESETS, EnergyModel, energy_table
from hwmodel.errors import HwModelError
from hwmodel.profiles import list_profiles
from hwmodel.roofline import RooflineDevice, RooflineModel
from hwmodel.size import SizeModel
from hwmodel.sparse import SkipSettings, SparseModel, list_skip_profiles, read_skip_profile
from hwmodel.systolic import SystolicArray, SystolicModel

SKIP_OPTIONS = ("skip_fraction", "efficiency", "activation_density", "profile")
PROFILED_SPARSE = "sparse@"
COUNT_MODELS: dict[str, Callable[[], CostModel]] = {"macs": MacsModel, "params": ParamsModel, "size": SizeModel}
NAME_FORMS = (
    "macs, params, size, lut:<file>, roofline:<device>, systolic:<preset>, sparse:<base>, sparse@<profile>:<base>, "
    "energy:<preset>, bitserial:<device>, bitserial-energy:<device>"
)


def _check_options(name: str, options: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise HwModelError(
            f"cost model {name!r} takes no option(s) {', '.join(unknown)}.",
            fix=f"its options are: {', '.join(allowed) or '(none)'}.",
        )


def _needs_argument(kind: str, argument: str, example: str) -> None:
    if not argument:
        raise HwModelError(f"cost model {kind!r} needs a name after the colon.", fix=f"write it as e.g. {example}.")


LUT_OPTIONS = ("allow_foreign", "measure_missing", "warmup", "repeats", "save_every_s")


def _check_lut(argument: str, options: dict[str, Any]) -> None:
    _needs_argument("lut:", argument, "lut:luts/resnet56_torch.json")
    _check_options(f"lut:{argument}", options, LUT_OPTIONS)


def _lut(argument: str, options: dict[str, Any]) -> CostModel:
    from hwmodel.lut.model import LutCostModel

    _check_lut(argument, options)
    return LutCostModel.open(argument, **options)


def _roofline(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("roofline:", argument, "roofline:rpi4-a72")
    _check_options(f"roofline:{argument}", options, ())
    return RooflineModel(RooflineDevice.named(argument))


def _systolic(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("systolic:", argument, "systolic:scalesim-32x32")
    _check_options(f"systolic:{argument}", options, ("dataflow",))
    return SystolicModel(SystolicArray.named(argument, options.get("dataflow")))


def _energy(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("energy:", argument, "energy:eyeriss")
    _check_options(f"energy:{argument}", options, ("array", "dataflow", "unit_pj"))
    array = SystolicArray.named(options.get("array", DEFAULT_ARRAY), options.get("dataflow"))
    return EnergyModel(energy_table(argument, options.get("unit_pj")), array)


def _bitserial(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("bitserial:", argument, "bitserial:bitfusion-asic")
    _check_options(f"bitserial:{argument}", options, ())
    return BitSerialModel(BitSerialArray.named(argument))


def _bitserial_energy(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("bitserial-energy:", argument, "bitserial-energy:bitfusion-asic")
    _check_options(f"bitserial-energy:{argument}", options, ())
    return BitSerialEnergyModel(BitSerialArray.named(argument))


def _split_sparse(argument: str, options: dict[str, Any]) -> tuple[SkipSettings, dict[str, Any]]:
    """The skip settings (validated) and the options left for the base model."""
    _needs_argument("sparse:", argument, "sparse:systolic:scalesim-32x32")
    skip = {key: options[key] for key in SKIP_OPTIONS if key in options}
    base = {key: value for key, value in options.items() if key not in SKIP_OPTIONS}
    profile = skip.pop("profile", None)
    if profile is None:
        return SkipSettings(**skip), base
    return dataclasses.replace(read_skip_profile(str(profile)), **skip), base


def _profiled(name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`sparse@<profile>:<base>` as `sparse:<base>` with the option profile=<profile>; other names unchanged."""
    if not name.startswith(PROFILED_SPARSE):
        return name, options
    head, _, base = name.partition(":")
    return f"sparse:{base}", {**options, "profile": head.removeprefix(PROFILED_SPARSE)}


def _sparse(argument: str, options: dict[str, Any]) -> CostModel:
    skip, base = _split_sparse(argument, options)
    return SparseModel(create_cost_model(argument, **base), skip)


_FACTORIES: dict[str, Callable[[str, dict[str, Any]], CostModel]] = {
    "lut": _lut,
    "roofline": _roofline,
    "systolic": _systolic,
    "energy": _energy,
    "sparse": _sparse,
    "bitserial": _bitserial,
    "bitserial-energy": _bitserial_energy,
}


def _kind(name: str) -> tuple[str, str]:
    """(kind, argument) of a name such as roofline:rpi4-a72; an unknown kind is an error with a suggestion."""
    kind, _, argument = name.partition(":")
    argument = argument.strip()
    if kind not in _FACTORIES:
        close = difflib.get_close_matches(kind, [*COUNT_MODELS, *_FACTORIES], n=1)
        hint = ""
        if close:
            hint = f" Did you mean {close[0] if close[0] in COUNT_MODELS else f'{close[0]}:{argument}'!r}?"
        raise HwModelError(
            f"unknown cost model {name!r}.{hint}",
            fix=f"use one of {NAME_FORMS}; `amc list devices` shows what is available.",
        )
    return kind, argument


def create_cost_model(name: str, **options: Any) -> CostModel:
    """The cost model `name` names (see the module docstring), tuned by `options`."""
    if name in COUNT_MODELS:
        _check_options(name, options, ())
        return COUNT_MODELS[name]()
    name, options = _profiled(name, options)
    kind, argument = _kind(name)
    return _FACTORIES[kind](argument, dict(options))


def check_cost_model(name: str, **options: Any) -> None:
    """Raise HwModelError, as `create_cost_model` would, if `name` with `options` names no cost model.

    Builds nothing expensive: a LUT file is checked to exist (not read: no torch, no measuring); device profiles
    and presets are read and checked (small YAML files), options are checked against what each model takes.
    """
    if name in COUNT_MODELS:
        _check_options(name, options, ())
        return
    name, options = _profiled(name, options)
    kind, argument = _kind(name)
    if kind == "lut":
        _check_lut(argument, dict(options))
        if not Path(argument).is_file():
            raise HwModelError(
                f"cost model 'lut:{argument}': the LUT file {argument} does not exist.",
                fix="check the path, or build the table with `amc lut build --model M --out FILE`.",
            )
    elif kind == "sparse":
        _, base = _split_sparse(argument, dict(options))  # a named profile is read and checked here
        check_cost_model(argument, **base)
    else:
        _FACTORIES[kind](argument, dict(options))  # the others: a profile or preset, nothing more


def list_cost_models() -> list[tuple[str, str]]:
    """(name, description) of every cost model that can be named now, devices and presets included."""
    rows = [
        ("macs", "dense multiply-accumulates of the conv/linear layers (device-free, bit-blind)"),
        ("params", "parameters of the conv/linear layers (device-free, bit-blind)"),
        ("size", "bytes of the conv/linear weights at their bits, biases 32-bit (device-free)"),
        (
            "lut:<file>",
            "latency measured on this machine: a LUT from `amc lut build` (torch, onnxruntime, openvino, torch-cuda)",
        ),
    ]
    profiles = list_profiles()
    rows += [(f"roofline:{p.name}", p.description) for p in profiles if p.kind == "roofline"]
    rows += [(f"systolic:{p.name}", p.description) for p in profiles if p.kind == "systolic"]
    rows += [(f"energy:{name}", table.description) for name, table in sorted(ENERGY_PRESETS.items())]
    bitserial = [p for p in profiles if p.kind == "bitserial"]
    rows += [(f"bitserial:{p.name}", p.description) for p in bitserial]
    rows += [
        (f"bitserial-energy:{p.name}", f"energy, mJ, of bitserial:{p.name}: MAC bricks + bits moved, per-op energies")
        for p in bitserial
        if BitSerialArray.from_profile(p).energy is not None
    ]
    rows.append(("sparse:<base>", "zero-skipping accelerator around any model: t = t_dense*((1-f) + f*rho/eta)"))
    rows += [(f"sparse@{name}:<base>", description) for name, description in list_skip_profiles()]
    return rows
