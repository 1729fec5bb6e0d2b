"""`amc list models|datasets|devices|methods`: what can be named in a config."""

from __future__ import annotations

import argparse

from amc.models import list_models


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


LISTERS = {"models": _models}


def run(args: argparse.Namespace) -> int:
    rows = LISTERS[args.what]()
    width = max(len(name) for name, _ in rows)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0
