"""Cost models by name, as a config or flag names them; `amc list devices` prints `list_cost_models()`.

    macs | params | lut:<file> | roofline:<device> | systolic:<preset> | sparse:<base> | energy:<preset>

Options (keyword arguments) tune a model: `lut:` allow_foreign, measure_missing, warmup, repeats, save_every_s;
`systolic:` dataflow; `energy:` array, dataflow, unit_pj; `sparse:` skip_fraction, efficiency,
activation_density (any other option goes to its base model).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwmodel.base import CostModel
from hwmodel.counting import MacsModel, ParamsModel
from hwmodel.energy import DEFAULT_ARRAY, ENERGY_PRESETS, EnergyModel, energy_table
from hwmodel.errors import HwModelError
from hwmodel.profiles import list_profiles
from hwmodel.roofline import RooflineDevice, RooflineModel
from hwmodel.sparse import SkipSettings, SparseModel
from hwmodel.systolic import SystolicArray, SystolicModel

SKIP_OPTIONS = ("skip_fraction", "efficiency", "activation_density")
COUNT_MODELS = ("macs", "params")
NAME_FORMS = "macs, params, lut:<file>, roofline:<device>, systolic:<preset>, sparse:<base>, energy:<preset>"


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


def _split_sparse(argument: str, options: dict[str, Any]) -> tuple[SkipSettings, dict[str, Any]]:
    """The skip settings (validated) and the options left for the base model."""
    _needs_argument("sparse:", argument, "sparse:systolic:scalesim-32x32")
    skip = {key: options[key] for key in SKIP_OPTIONS if key in options}
    base = {key: value for key, value in options.items() if key not in SKIP_OPTIONS}
    return SkipSettings(**skip), base


def _sparse(argument: str, options: dict[str, Any]) -> CostModel:
    skip, base = _split_sparse(argument, options)
    return SparseModel(create_cost_model(argument, **base), skip)


_FACTORIES: dict[str, Callable[[str, dict[str, Any]], CostModel]] = {
    "lut": _lut,
    "roofline": _roofline,
    "systolic": _systolic,
    "energy": _energy,
    "sparse": _sparse,
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
        return MacsModel() if name == "macs" else ParamsModel()
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
    kind, argument = _kind(name)
    if kind == "lut":
        _check_lut(argument, dict(options))
        if not Path(argument).is_file():
            raise HwModelError(
                f"cost model 'lut:{argument}': the LUT file {argument} does not exist.",
                fix="check the path, or build the table with `amc lut build --model M --out FILE`.",
            )
    elif kind == "sparse":
        _, base = _split_sparse(argument, dict(options))
        check_cost_model(argument, **base)
    else:
        _FACTORIES[kind](argument, dict(options))  # roofline, systolic, energy: a profile or preset, nothing more


def list_cost_models() -> list[tuple[str, str]]:
    """(name, description) of every cost model that can be named now, devices and presets included."""
    rows = [
        ("macs", "dense multiply-accumulates of the conv/linear layers (device-free)"),
        ("params", "parameters of the conv/linear layers (device-free)"),
        (
            "lut:<file>",
            "latency measured on this machine: a LUT from `amc lut build` (torch, onnxruntime, openvino, torch-cuda)",
        ),
    ]
    profiles = list_profiles()
    rows += [(f"roofline:{p.name}", p.description) for p in profiles if p.kind == "roofline"]
    rows += [(f"systolic:{p.name}", p.description) for p in profiles if p.kind == "systolic"]
    rows += [(f"energy:{name}", table.description) for name, table in sorted(ENERGY_PRESETS.items())]
    rows.append(("sparse:<base>", "zero-skipping accelerator around any model: t = t_dense*((1-f) + f*rho/eta)"))
    return rows
