"""Cost models by name, as a config or flag names them; `amc list devices` prints `list_cost_models()`.

    macs | params | lut:<file> | roofline:<device> | systolic:<preset> | sparse:<base> | energy:<preset>

Options (keyword arguments) tune a model: `lut:` allow_foreign, measure_missing, warmup, repeats, save_every_s;
`systolic:` dataflow; `energy:` array, dataflow, unit_pj; `sparse:` skip_fraction, efficiency,
activation_density (any other option goes to its base model).
"""

from __future__ import annotations

from collections.abc import Callable
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


def _lut(argument: str, options: dict[str, Any]) -> CostModel:
    from hwmodel.lut.model import LutCostModel

    _needs_argument("lut:", argument, "lut:luts/resnet56_torch.json")
    _check_options(
        f"lut:{argument}", options, ("allow_foreign", "measure_missing", "warmup", "repeats", "save_every_s")
    )
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


def _sparse(argument: str, options: dict[str, Any]) -> CostModel:
    _needs_argument("sparse:", argument, "sparse:systolic:scalesim-32x32")
    skip = {key: options[key] for key in SKIP_OPTIONS if key in options}
    base = {key: value for key, value in options.items() if key not in SKIP_OPTIONS}
    return SparseModel(create_cost_model(argument, **base), SkipSettings(**skip))


_FACTORIES: dict[str, Callable[[str, dict[str, Any]], CostModel]] = {
    "lut": _lut,
    "roofline": _roofline,
    "systolic": _systolic,
    "energy": _energy,
    "sparse": _sparse,
}


def create_cost_model(name: str, **options: Any) -> CostModel:
    """The cost model `name` names (see the module docstring), tuned by `options`."""
    if name in ("macs", "params"):
        _check_options(name, options, ())
        return MacsModel() if name == "macs" else ParamsModel()
    kind, _, argument = name.partition(":")
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise HwModelError(
            f"unknown cost model {name!r}.", fix=f"use one of {NAME_FORMS}; `amc list devices` shows what is available."
        )
    return factory(argument.strip(), dict(options))


def list_cost_models() -> list[tuple[str, str]]:
    """(name, description) of every cost model that can be named now, devices and presets included."""
    rows = [
        ("macs", "dense multiply-accumulates of the conv/linear layers (device-free)"),
        ("params", "parameters of the conv/linear layers (device-free)"),
        ("lut:<file>", "latency measured on this machine: a LUT from `amc lut build` (torch or onnxruntime)"),
    ]
    profiles = list_profiles()
    rows += [(f"roofline:{p.name}", p.description) for p in profiles if p.kind == "roofline"]
    rows += [(f"systolic:{p.name}", p.description) for p in profiles if p.kind == "systolic"]
    rows += [(f"energy:{name}", table.description) for name, table in sorted(ENERGY_PRESETS.items())]
    rows.append(("sparse:<base>", "zero-skipping accelerator around any model: t = t_dense*((1-f) + f*rho/eta)"))
    return rows
