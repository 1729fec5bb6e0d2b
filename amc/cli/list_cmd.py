"""`amc list models|datasets|devices|methods`: what can be named in a config."""

from __future__ import annotations

import argparse

from amc.data import list_datasets
from amc.models import list_models
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
    """Cost models and the devices/presets they can name (configs/devices/*.yaml, energy tables)."""
    return list_cost_models()


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
