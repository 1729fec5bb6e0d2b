"""Device profiles: YAML files under configs/devices/, one device or preset each, every number with its source.

A profile names its `kind` (roofline or systolic) and gives each number as `{value, source, derived}`, so a
reader can tell a datasheet figure from one we worked out or measured. `roofline:<name>` and `systolic:<name>`
find `<name>.yaml` here (or take a path to a .yaml file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwmodel.errors import HwModelError, did_you_mean

DEVICES_ENV = "AMC_DEVICES_DIR"
"""Environment variable naming another folder of device profiles (default: the repository's configs/devices)."""

KINDS = ("roofline", "systolic")


@dataclass(frozen=True)
class Quantity:
    """One number of a profile, with where it comes from and whether it was derived (vs. read off a datasheet)."""

    value: float
    source: str
    derived: bool

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "source": self.source, "derived": self.derived}


@dataclass(frozen=True)
class Profile:
    """A parsed profile file: its name (the file stem), kind, description, and the fields its model reads."""

    name: str
    kind: str
    description: str
    path: Path
    fields: dict[str, Any]

    def quantity(self, field: str) -> Quantity:
        """The `{value, source, derived}` field `field`, validated."""
        raw = self.fields.get(field)
        if not isinstance(raw, dict) or not {"value", "source", "derived"} <= set(raw):
            raise HwModelError(
                f"device profile {self.path}: field {field!r} is {raw!r}.",
                fix=f"write it as `{field}: {{value: <number>, source: <text>, derived: <true|false>}}`.",
            )
        value = raw["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise HwModelError(
                f"device profile {self.path}: {field}.value is {value!r}, not a positive number.",
                fix=f"set {field}.value to a positive number.",
            )
        return Quantity(float(value), str(raw["source"]), bool(raw["derived"]))

    def text(self, field: str, choices: tuple[str, ...]) -> str:
        value = self.fields.get(field)
        if value not in choices:
            raise HwModelError(
                f"device profile {self.path}: field {field!r} is {value!r}.", fix=f"use one of {', '.join(choices)}."
            )
        return str(value)


def devices_dir() -> Path:
    """Where named profiles live: $AMC_DEVICES_DIR, else configs/devices beside the package."""
    override = os.environ.get(DEVICES_ENV)
    return Path(override) if override else Path(__file__).resolve().parent.parent / "configs" / "devices"


def read_profile(path: Path) -> Profile:
    """Parse one profile file; any problem names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise HwModelError(
            f"cannot read device profile {path}: {error}.", fix="check the path and the YAML syntax."
        ) from None
    if not isinstance(data, dict):
        raise HwModelError(f"device profile {path} is not a YAML mapping.", fix="see configs/devices/ for examples.")
    kind = data.get("kind")
    if kind not in KINDS:
        raise HwModelError(
            f"device profile {path}: kind is {kind!r}.", fix=f"set `kind:` to one of {', '.join(KINDS)}."
        )
    return Profile(path.stem, kind, str(data.get("description", "")), path, data)


def list_profiles() -> list[Profile]:
    """Every profile in the devices folder, sorted by name (unreadable files raise, naming the file)."""
    folder = devices_dir()
    if not folder.is_dir():
        return []
    return sorted((read_profile(path) for path in folder.glob("*.yaml")), key=lambda profile: profile.name)


def find_profile(name: str, kind: str) -> Profile:
    """The profile `name` (a file stem in the devices folder, or a path to a .yaml file) of kind `kind`."""
    looks_like_path = name.endswith((".yaml", ".yml")) or os.sep in name
    path = Path(name) if looks_like_path else devices_dir() / f"{name}.yaml"
    if not path.is_file():
        known = [profile.name for profile in list_profiles() if profile.kind == kind]
        raise HwModelError(
            f"unknown {kind} device {name!r} (no file {path}).{did_you_mean(name, known)}",
            fix=f"use one of {', '.join(known) or '(none found)'}, a path to a profile .yaml, "
            "or see `amc list devices`.",
        )
    profile = read_profile(path)
    if profile.kind != kind:
        raise HwModelError(
            f"device profile {path} is a {profile.kind} profile, not {kind}.",
            fix=f"name it as `{profile.kind}:{name}`.",
        )
    return profile
