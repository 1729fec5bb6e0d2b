"""LayerSpec: everything that changes what one conv/linear layer costs, and nothing else.

Torch-free on purpose: cost models price plain descriptions, so `hwmodel` can be used without a network.
MACs and parameter counts live here because every cost model and the layer table must agree on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

SPEC_KEY_VERSION = 1
"""Bump when the meaning of `LayerSpec.key()` changes: keys of an older version never match."""

OPS = ("conv", "dwconv", "gconv", "linear")
"""conv: dense conv; dwconv: depthwise (groups == in_channels); gconv: other grouped conv; linear: fully connected."""

SPARSITY_PATTERNS = ("dense", "element", "vector", "kernel", "filter", "nm")
"""How a layer's zero weights are laid out (Mao et al. 2017's granularities): element (scattered), vector (whole
1 x kw kernel rows), kernel (whole kh x kw kernels), filter (whole output channels, kept as masks), nm (N of every M
consecutive input-channel weights kept). Zero-skipping models price each differently (hwmodel/sparse.py)."""

FULL_PRECISION_BITS = 32
"""Bits of a layer that is not quantized (float32)."""
QUANTIZED_BITS = range(2, 9)
"""Bit-widths a quantized layer may have (HAQ's [2, 8]); anything else is full precision."""


def _pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    first, second = value
    return (int(first), int(second))


@dataclass(frozen=True)
class LayerSpec:
    """One conv or linear layer as a cost model sees it.

    A linear layer is a 1x1 "conv" on a 1x1 feature map: in/out channels are its in/out features.
    `fused` names what runs right after the layer as one unit (e.g. ("bn", "relu")); LUTs time them together.
    `weight_density` < 1 with a `sparsity_pattern` other than "dense" describes masked pruning of that pattern.
    `weight_bits` / `activation_bits` (2-8, or 32 for float) describe a quantized layer for the cost models that
    know bits (size, energy, roofline bytes, bit-serial accelerators); measured LUTs time the layer as `dtype`.
    """

    op: str
    in_channels: int
    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    in_hw: tuple[int, int] = (1, 1)
    batch: int = 1
    bias: bool = False
    dtype: str = "float32"
    fused: tuple[str, ...] = ()
    weight_density: float = 1.0
    sparsity_pattern: str = "dense"
    weight_bits: int = FULL_PRECISION_BITS
    activation_bits: int = FULL_PRECISION_BITS

    def __post_init__(self) -> None:
        for name in ("kernel", "stride", "padding", "dilation", "in_hw"):
            object.__setattr__(self, name, _pair(getattr(self, name)))
        object.__setattr__(self, "fused", tuple(self.fused))
        if self.op not in OPS:
            raise ValueError(f"LayerSpec.op must be one of {OPS}, got {self.op!r}")
        if self.in_channels < 1 or self.out_channels < 1 or self.groups < 1 or self.batch < 1:
            raise ValueError(f"LayerSpec channels, groups and batch must be >= 1: {self}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"LayerSpec channels ({self.in_channels} in, {self.out_channels} out) "
                f"must be divisible by groups={self.groups}"
            )
        if not 0.0 <= self.weight_density <= 1.0:
            raise ValueError(f"LayerSpec.weight_density must be in [0, 1], got {self.weight_density}")
        if self.sparsity_pattern not in SPARSITY_PATTERNS:
            raise ValueError(f"LayerSpec.sparsity_pattern must be one of {SPARSITY_PATTERNS}")
        for name in ("weight_bits", "activation_bits"):
            bits = getattr(self, name)
            if bits != FULL_PRECISION_BITS and bits not in QUANTIZED_BITS:
                raise ValueError(f"LayerSpec.{name} must be 2-8 or {FULL_PRECISION_BITS} (float), got {bits!r}")

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output feature-map size, by PyTorch's conv formula."""
        if self.op == "linear":
            return (1, 1)
        return tuple(  # type: ignore[return-value]
            (size + 2 * pad - dil * (k - 1) - 1) // s + 1
            for size, pad, dil, k, s in zip(self.in_hw, self.padding, self.dilation, self.kernel, self.stride)
        )

    @property
    def weight_count(self) -> int:
        """Weights without bias: C_out * C_in/groups * kh * kw."""
        return self.out_channels * (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]

    @property
    def params(self) -> int:
        """Parameters of the layer itself (weights + bias); BN parameters are counted by the layer table."""
        return self.weight_count + (self.out_channels if self.bias else 0)

    @property
    def macs(self) -> int:
        """Dense MACs for the whole batch: batch * H_out * W_out * C_out * C_in/groups * kh * kw."""
        out_h, out_w = self.out_hw
        return self.batch * out_h * out_w * self.weight_count

    @property
    def ideal_macs(self) -> float:
        """MACs a zero-skipping accelerator performs: dense MACs times weight density."""
        return self.macs * self.weight_density

    @property
    def input_elements(self) -> int:
        return self.batch * self.in_channels * self.in_hw[0] * self.in_hw[1]

    @property
    def output_elements(self) -> int:
        out_h, out_w = self.out_hw
        return self.batch * self.out_channels * out_h * out_w

    @property
    def quantized(self) -> bool:
        return (self.weight_bits, self.activation_bits) != (FULL_PRECISION_BITS, FULL_PRECISION_BITS)

    @property
    def weight_bytes(self) -> float:
        """Storage of the weights (bias at full precision) at `weight_bits`, dense or not."""
        bits = self.weight_bits if self.weight_bits != FULL_PRECISION_BITS else 8 * self.bytes_per_element
        bias = self.out_channels * 4 if self.bias else 0
        return self.weight_count * bits / 8 + bias

    @property
    def bytes_per_element(self) -> int:
        return {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1}.get(self.dtype, 4)

    def key(self) -> str:
        """Stable text key of everything that changes runtime; LUT rows are stored under it."""
        kh, kw = self.kernel
        sh, sw = self.stride
        ph, pw = self.padding
        dh, dw = self.dilation
        h, w = self.in_hw
        fused = "+".join(self.fused) or "none"
        density = f"{self.weight_density:.4f}" if self.sparsity_pattern != "dense" else "1"
        # Full-precision keys stay as they were before bits existed, so every stored LUT still matches.
        bits = f"|w{self.weight_bits}a{self.activation_bits}" if self.quantized else ""
        return (
            f"v{SPEC_KEY_VERSION}|{self.op}|i{self.in_channels}|o{self.out_channels}|k{kh}x{kw}|s{sh}x{sw}"
            f"|p{ph}x{pw}|d{dh}x{dw}|g{self.groups}|hw{h}x{w}|b{self.batch}|bias{int(self.bias)}"
            f"|{self.dtype}|f:{fused}|{self.sparsity_pattern}:{density}{bits}"
        )

    def with_channels(self, in_channels: int, out_channels: int) -> LayerSpec:
        """The same layer with fewer channels; depthwise stays depthwise, grouped keeps its group count."""
        if self.op == "dwconv":
            multiplier = self.out_channels // self.in_channels
            return replace(self, in_channels=in_channels, out_channels=in_channels * multiplier, groups=in_channels)
        return replace(self, in_channels=in_channels, out_channels=out_channels)

    def with_density(self, weight_density: float, pattern: str = "element") -> LayerSpec:
        """The same layer with masked weight sparsity of `pattern` (element-wise unless said otherwise)."""
        if math.isclose(weight_density, 1.0):
            pattern = "dense"
        return replace(self, weight_density=float(weight_density), sparsity_pattern=pattern)

    def with_bits(self, weight_bits: int, activation_bits: int) -> LayerSpec:
        """The same layer quantized to these bit-widths (32: float)."""
        return replace(self, weight_bits=int(weight_bits), activation_bits=int(activation_bits))

    def to_dict(self) -> dict[str, object]:
        bits = {"weight_bits": self.weight_bits, "activation_bits": self.activation_bits} if self.quantized else {}
        return {
            "op": self.op,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel": list(self.kernel),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "dilation": list(self.dilation),
            "groups": self.groups,
            "in_hw": list(self.in_hw),
            "batch": self.batch,
            "bias": self.bias,
            "dtype": self.dtype,
            "fused": list(self.fused),
            "weight_density": self.weight_density,
            "sparsity_pattern": self.sparsity_pattern,
            **bits,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> LayerSpec:
        return cls(**data)  # type: ignore[arg-type]
