"""Bit-widths (LayerBits) as a Distiller `quantizers:` section, and Distiller's quantizer settings read back.

Semantics, from Distiller's source (IntelLabs/distiller, distiller/quantization/quantizer.py and range_linear.py):
- Every quantizer takes default bit-widths and per-module `overrides`. PostTrainLinearQuantizer names its defaults
  `bits_activations`, `bits_parameters`, `bits_accum` (defaults 8, 8, 32); QuantAwareTrainRangeLinearQuantizer,
  PACTQuantizer and DorefaQuantizer `bits_activations`, `bits_weights`, `bits_bias` (defaults 32). An override
  entry sets `bits_activations`, `bits_weights`, `bits_bias`; a key it leaves out takes the default, not another
  override. `null` means "not quantized": amc reads it, and 32, as full precision.
- Override keys are regular expressions matched against the whole module name (DataParallel's first `module.`
  removed); an entry under the exact module name wins, else the first pattern in the file's order that matches.
- A quantize-aware-training quantizer acts only through a `- quantizer:` policy; PostTrainLinearQuantizer is
  applied at evaluation (`--quantize-eval --qe-config-file FILE`) and needs none.
amc's layers are the conv/linear modules: a layer's `bits_activations` is read as its input activations' bits (what
PostTrainLinearQuantizer quantizes a layer's inputs to). Keys matching no conv/linear layer (ReLUs, adds) are
Distiller's business and named in a note. amc's bit-widths are 2-8, or full precision.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from amc.errors import UserError
from amc.quantize.bits import BITS_FIX, LayerBits
from hwmodel.spec import FULL_PRECISION_BITS, QUANTIZED_BITS

PTQ_CLASS = "PostTrainLinearQuantizer"
QAT_CLASS = "QuantAwareTrainRangeLinearQuantizer"
QUANTIZER_NAME = "linear_quantizer"
MODES = ("SYMMETRIC", "ASYMMETRIC_UNSIGNED", "ASYMMETRIC_SIGNED")
DEFAULT_MODE = "ASYMMETRIC_UNSIGNED"
QAT_EPOCHS = 200
"""ending_epoch of the written quantize-aware-training policy (as Distiller's examples): set it to your run's."""
# Top-level keys (activations, weights, bias) and their defaults, by class (their __init__ signatures).
DEFAULT_KEYS = ("bits_activations", "bits_weights", "bits_bias")
CLASS_KEYS: dict[str, tuple[str, str, str]] = {
    PTQ_CLASS: ("bits_activations", "bits_parameters", "bits_accum"),
    QAT_CLASS: DEFAULT_KEYS,
    "PACTQuantizer": DEFAULT_KEYS,
    "DorefaQuantizer": DEFAULT_KEYS,
}
CLASS_DEFAULTS: dict[str, tuple[int, int]] = {PTQ_CLASS: (8, 8)}
"""(activations, weights) a class uses when its file leaves a key out; the others default to 32."""
METHOD_NOTES = {
    "PACTQuantizer": "learns each activation's clipping value while training (PACT)",
    "DorefaQuantizer": "quantizes weights through tanh (DoReFa) while training",
}
UNMAPPED_CLASSES = {
    "WRPNQuantizer": "also widens the layers it quantizes (WRPN), which changes their shapes",
    "NCFQuantAwareTrainQuantizer": "quantizes the NCF recommender's embedding layers",
}


class Reporter(Protocol):
    """What reads the rest of the file: errors that name the key's line, and notes."""

    source: str

    def fail(self, problem: str, path: Sequence[Any] = (), fix: str = "") -> UserError: ...

    def note(self, text: str) -> None: ...


def bits_to_quantizer(
    bits: LayerBits, layers: Sequence[str] = (), cls: str = QAT_CLASS, mode: str = DEFAULT_MODE
) -> dict[str, Any]:
    """The settings of one Distiller quantizer that gives each layer its bit-widths.

    With `layers` (every conv/linear layer of the network), the defaults are the most common bit-widths and only
    the other layers get overrides (null for full precision); without, the defaults are null (Distiller quantizes
    nothing else) and every layer `bits` names gets an override."""
    if cls not in (PTQ_CLASS, QAT_CLASS):
        raise UserError(f"cannot write quantizer class {cls!r}.", fix=f"use {PTQ_CLASS} or {QAT_CLASS}.")
    if mode not in MODES:
        raise UserError(f"quantization mode {mode!r} is not one of Distiller's.", fix=f"use one of {', '.join(MODES)}.")
    named = list(dict.fromkeys((*bits.weights, *bits.activations)))
    missing = [name for name in named if layers and name not in layers]
    if missing:
        raise UserError(
            f"bit-widths name layer(s) {', '.join(missing)}, which the network does not have.",
            fix="pass bit-widths of this network.",
        )
    pairs = {name: (_null(bits.weight_bits(name)), _null(bits.activation_bits(name))) for name in layers or named}
    default: tuple[int | None, int | None] = (None, None)
    if layers:
        default = Counter(pairs.values()).most_common(1)[0][0]
    acts_key, weights_key, bias_key = CLASS_KEYS[cls]
    overrides = {
        name: {"bits_weights": weights, "bits_activations": acts}
        for name, (weights, acts) in pairs.items()
        if (weights, acts) != default
    }
    settings: dict[str, Any] = {
        "class": cls,
        acts_key: default[1],
        weights_key: default[0],
        bias_key: FULL_PRECISION_BITS,
        "mode": mode,
    }
    if overrides:
        settings["overrides"] = overrides
    return settings


def quantizer_policy(cls: str, name: str = QUANTIZER_NAME) -> list[dict[str, Any]]:
    """The policy that applies a quantize-aware-training quantizer (none for post-training quantization)."""
    if cls == PTQ_CLASS:
        return []
    return [{"quantizer": {"instance_name": name}, "starting_epoch": 0, "ending_epoch": QAT_EPOCHS, "frequency": 1}]


def _null(bits: int) -> int | None:
    return None if bits == FULL_PRECISION_BITS else bits


def read_quantizers(
    section: Mapping[str, Any],
    scheduled: Mapping[str, int],
    layers: Sequence[str],
    model: str,
    report: Reporter,
) -> LayerBits | None:
    """The bit-widths the file's active quantizer gives amc's `layers` (None: nothing quantized or not mappable).

    `scheduled` maps each quantizer a policy names to that policy's index."""
    for name, index in scheduled.items():
        if name not in section:
            raise report.fail(
                f"policies: quantizer instance_name {name!r} is not defined under 'quantizers'.",
                ["policies", index, "quantizer", "instance_name"],
                fix=f"use one of {', '.join(map(str, section)) or '(none defined)'}.",
            )
    active = []
    for name, config in section.items():
        path = ["quantizers", name]
        cls = config.get("class") if isinstance(config, dict) else None
        if not isinstance(cls, str):
            raise report.fail(
                f"quantizers.{name} must be a mapping with a 'class'.", path, fix=f"add e.g. 'class: {QAT_CLASS}'."
            )
        if name in scheduled or cls == PTQ_CLASS:
            active.append((str(name), cls, config))
        else:
            report.note(
                f"{report.source}: quantizers.{name} ({cls}) appears in no policy, so Distiller never applies it; "
                "amc ignores it."
            )
    if len(active) > 1:
        names = ", ".join(name for name, _, _ in active)
        raise report.fail(
            f"quantizers {names} would all quantize the network; Distiller prepares one quantizer per model.",
            ["quantizers"],
            fix="keep one quantizer (or one quantizer policy).",
        )
    if not active:
        return None
    name, cls, config = active[0]
    if cls not in CLASS_KEYS:
        why = UNMAPPED_CLASSES.get(cls, "is not a Distiller quantizer amc knows")
        report.note(
            f"{report.source}: quantizers.{name}: class {cls} {why}; amc does not map it and reports full-precision "
            f"weights and activations (amc reads {', '.join(CLASS_KEYS)})."
        )
        return None
    if cls in METHOD_NOTES:
        report.note(
            f"{report.source}: quantizers.{name} ({cls}) {METHOD_NOTES[cls]}; amc takes its bit-widths, not its method."
        )
    _check_mode(config.get("mode"), ["quantizers", name, "mode"], report)
    return _layer_bits(name, cls, config, layers, model, report)


def _layer_bits(
    name: str, cls: str, config: Mapping[str, Any], layers: Sequence[str], model: str, report: Reporter
) -> LayerBits | None:
    path = ["quantizers", name]
    acts_key, weights_key, _ = CLASS_KEYS[cls]
    for wrong in DEFAULT_KEYS[:2]:
        if wrong in config and wrong not in CLASS_KEYS[cls]:
            right = weights_key if wrong == "bits_weights" else acts_key
            raise report.fail(
                f"quantizers.{name}: {cls} takes no '{wrong}' (Distiller refuses unknown arguments).",
                [*path, wrong],
                fix=f"write '{right}' for the default, or '{wrong}' inside an override.",
            )
    acts_default, weights_default = CLASS_DEFAULTS.get(cls, (FULL_PRECISION_BITS, FULL_PRECISION_BITS))
    default_acts = _bits(config, acts_key, acts_default, [*path, acts_key], report)
    default_weights = _bits(config, weights_key, weights_default, [*path, weights_key], report)
    overrides = config.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise report.fail(
            f"quantizers.{name}.overrides must map module names (or regular expressions) to bit-widths.",
            [*path, "overrides"],
            fix="write e.g. 'overrides: {conv1: {bits_weights: null, bits_activations: null}}'.",
        )
    patterns = []
    for key, entry in overrides.items():
        where = [*path, "overrides", str(key)]
        if not isinstance(entry, dict):
            raise report.fail(
                f"quantizers.{name}.overrides.{key} must be a mapping of bit-widths.",
                where,
                fix="write e.g. '{bits_weights: 4, bits_activations: 8}'.",
            )
        try:
            pattern = re.compile(str(key))
        except re.error as error:
            raise report.fail(
                f"quantizers.{name}.overrides key {key!r} is not a regular expression: {error}.",
                where,
                fix="escape special characters (layer1\\.0\\..*) or use a module name.",
            ) from None
        entry_bits = {
            field: _bits(entry, field, None, [*where, field], report)
            for field in ("bits_weights", "bits_activations")
            if field in entry
        }
        patterns.append((str(key), pattern, entry_bits))
    weights: dict[str, int] = {}
    activations: dict[str, int] = {}
    entries = {key: entry for key, _, entry in patterns}
    matched: set[str] = set()
    for layer in layers:
        key = layer if entries.get(layer) else next((k for k, pattern, _ in patterns if pattern.fullmatch(layer)), None)
        entry = entries[key] if key is not None else {}
        if key is not None:
            matched.add(key)
        layer_weights = entry.get("bits_weights", default_weights)
        layer_acts = entry.get("bits_activations", default_acts)
        if layer_weights != FULL_PRECISION_BITS:
            weights[layer] = layer_weights
        if layer_acts != FULL_PRECISION_BITS:
            activations[layer] = layer_acts
    unmatched = [key for key, _, _ in patterns if key not in matched]
    if unmatched:
        report.note(
            f"{report.source}: quantizers.{name}.overrides {', '.join(unmatched)} match(es) no conv/linear layer of "
            f"{model}; Distiller applies such entries to other modules (activations, adds), which amc does not count."
        )
    if not weights and not activations:
        return None
    return LayerBits(weights, activations, model)


def _bits(config: Mapping[str, Any], key: str, default: Any, path: Sequence[Any], report: Reporter) -> Any:
    """A bit-width from the file: null and 32 are full precision; amc's quantized widths are 2-8."""
    if key not in config:
        return default
    value = config[key]
    if value is None:
        return FULL_PRECISION_BITS
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (value != FULL_PRECISION_BITS and value not in QUANTIZED_BITS)
    ):
        raise report.fail(
            f"{'.'.join(map(str, path))} = {value!r} is not a bit-width amc uses.",
            path,
            fix=BITS_FIX.replace("for float.", "(or null) for full precision."),
        )
    return value


def _check_mode(mode: Any, path: Sequence[Any], report: Reporter) -> None:
    values = list(mode.values()) if isinstance(mode, dict) else [mode]
    if mode is not None and not all(value in MODES for value in values):
        raise report.fail(
            f"{'.'.join(map(str, path))} = {mode!r} is not a Distiller quantization mode.",
            path,
            fix=f"use one of {', '.join(MODES)} (or a mapping of activations/weights to them).",
        )
