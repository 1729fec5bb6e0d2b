"""What a resume must not change: the settings a checkpoint was made with, compared key by key.

`amc search --resume`, `amc train` and `amc evaluate` continue a checkpoint only with the settings that made it;
any setting that changes results differs -> a UserError naming each key with its stored and its new value.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from amc.errors import UserError


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; sequences become lists so YAML and dataclass values compare equal."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = list(value) if isinstance(value, tuple | list) else value
    return flat


def changed_settings(
    stored: Mapping[str, Any], new: Mapping[str, Any], ignore: Collection[str] = ()
) -> list[tuple[str, Any, Any]]:
    """(key, stored value, new value) for every dotted key that differs, keys in `ignore` (or under a prefix
    `x.` of one) left out. A key missing on one side reads as `<unset>`."""
    old_flat, new_flat = flatten(stored), flatten(new)
    unset = "<unset>"
    changed = []
    for key in dict.fromkeys([*old_flat, *new_flat]):
        if key in ignore or any(key.startswith(f"{skip}.") for skip in ignore):
            continue
        old, value = old_flat.get(key, unset), new_flat.get(key, unset)
        if old != value:
            changed.append((key, old, value))
    return changed


def describe(changes: list[tuple[str, Any, Any]]) -> str:
    return "; ".join(f"{key}: {old!r} then, {new!r} now" for key, old, new in changes)


def refuse_changed(
    what: str, stored: Mapping[str, Any], new: Mapping[str, Any], fix: str, ignore: Collection[str] = ()
) -> None:
    """Raise a UserError naming every changed setting, if any."""
    changes = changed_settings(stored, new, ignore)
    if changes:
        raise UserError(f"{what} was made with other settings: {describe(changes)}.", fix=fix)
