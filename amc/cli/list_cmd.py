"""`amc list models|datasets|devices|methods`: what can be named in a config."""

from __future__ import annotations

import argparse

from amc.data import list_datasets
from amc.models import list_models
from hwmodel.profiles import list_profiles
from hwmodel.registry import list_cost_models


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "list",
        help="list models, datasets, cost models/devices or search methods",
        description="List what a config or flag can name: models, datasets, devices (cost models), methods.",
    )
    parser.add_argument("what", choices=sorted(LISTERS), help="what to list")
    parser.set_defaults(func=run)


def _models() -> list[tuple[str, str]]:
    return [(info.name, info.description) for info in list_models()]


def _datasets() -> list[tuple[str, str]]:
    return [(info.name, info.description) for info in list_datasets()]


def _devices() -> list[tuple[str, str]]:
    """Cost models and the devices/presets they can name (configs/devices/*.yaml, energy tables), a device profile
    with how it is deployed (kind, runtime, precision, batch, channel alignment) before its description."""
    profiles = {f"{profile.kind}:{profile.name}": profile for profile in list_profiles()}
    columns: dict[str, tuple[str, ...]] = {}
    for name, profile in profiles.items():
        found = profile.deployment()
        alignment = str(found.alignment) if found.alignment else "-"
        columns[name] = (
            profile.kind,
            found.runtime.value,
            found.precision.value,
            str(int(found.batch.value)),
            alignment,
        )
    header = ("kind", "runtime", "precision", "batch", "align")
    widths = [max(len(row[i]) for row in [header, *columns.values()]) for i in range(len(header))]

    def line(cells: tuple[str, ...], description: str) -> str:
        return "  ".join(f"{cell:<{width}}" for cell, width in zip(cells, widths)) + "  " + description

    blank = ("-",) * len(header)
    rows = [("name", line(header, "description"))]
    rows += [(name, line(columns.get(name, blank), description)) for name, description in list_cost_models()]
    return rows


def _methods() -> list[tuple[str, str]]:
    from amc.search.methods import METHODS

    return [(name, description) for name, (_, description) in METHODS.items()]


LISTERS = {"devices": _devices, "models": _models, "datasets": _datasets, "methods": _methods}


def run(args: argparse.Namespace) -> int:
    rows = LISTERS[args.what]()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0
