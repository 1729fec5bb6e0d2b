"""Whole-network prices of zoo models quantized uniformly, by every cost model that knows bits.

    .venv/bin/python bench/bit_costs.py [--models resnet20 mobilenetv2] [--input-size 3,32,32]

Analytic models only (nothing is timed): `size` (weight bytes), the bit-scaled energy models, the roofline (bytes by
bit-width; integer peaks where a profile gives them) and the bit-serial accelerators. w32/a32 is float32; the
bit-serial models run no float and price it at their 8-bit fallback.
"""

from __future__ import annotations

import argparse

from amc.graph.layer_table import build_layer_table
from amc.models import create_model
from hwmodel import create_cost_model

COST_MODELS = (
    "size", "energy:horowitz45", "energy:eyeriss", "roofline:rpi4-a72", "roofline:nvidia-a100", "bitserial:bismo-edge",
    "bitserial:bitfusion", "bitserial-energy:bitfusion",
)  # fmt: skip
WIDTHS = ((32, 32), (8, 8), (4, 4), (2, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20", "mobilenetv2"])
    parser.add_argument("--input-size", default="3,32,32")
    args = parser.parse_args()
    size = tuple(int(part) for part in args.input_size.split(","))
    for name in args.models:
        model = create_model(name, in_channels=size[0], num_classes=10)
        specs = build_layer_table(model, size, name).specs()  # type: ignore[arg-type]
        print(f"\n{name} @ {args.input_size}, uniform bits, whole network")
        print("| cost model | " + " | ".join(f"w{w}/a{a}" for w, a in WIDTHS) + " |")
        print("| --- |" + " --- |" * len(WIDTHS))
        for cost_name in COST_MODELS:
            cost_model = create_cost_model(cost_name)
            costs = [cost_model.network_cost([spec.with_bits(w, a) for spec in specs]) for w, a in WIDTHS]
            print(f"| `{cost_name}` ({cost_model.unit}) | " + " | ".join(f"{cost:.4g}" for cost in costs) + " |")


if __name__ == "__main__":
    main()
