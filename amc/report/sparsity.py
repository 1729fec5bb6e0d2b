"""What an element-wise result means for a zero-skipping accelerator: per-layer compute and weight reductions."""

from __future__ import annotations

from amc.report.tables import markdown_table
from amc.schedule.summary import ScheduleSummary


def sparsity_totals(summary: ScheduleSummary) -> dict[str, float]:
    """Whole-network figures of an element-wise result: what a zero-skipping accelerator computes and stores."""
    return {
        "dense_macs": summary.dense_macs,
        "ideal_macs": summary.ideal_macs,
        "compute_reduction": summary.dense_macs / summary.ideal_macs,
        "dense_params": summary.dense_params,
        "nonzero_params": summary.ideal_params,
        "param_reduction": summary.dense_params / summary.ideal_params,
    }


def sparsity_table(summary: ScheduleSummary) -> str:
    """Per layer, compute reduction beside parameter reduction (they differ: a 3x3 layer at 8x8 pixels holds many
    weights but few MACs), as DeGirum's pruned-model tables report them."""
    rows = [
        [layer.name, f"{1 - layer.weight_sparsity:.2f}", f"{layer.dense_macs:,}", f"{layer.ideal_macs:,.0f}",
         f"{layer.dense_macs / max(layer.ideal_macs, 1e-9):.2f}x", f"{layer.dense_params:,}",
         f"{layer.ideal_params:,.0f}", f"{layer.dense_params / max(layer.ideal_params, 1e-9):.2f}x"]
        for layer in summary.layers
    ]  # fmt: skip
    totals = sparsity_totals(summary)
    rows.append(["total", "", f"{summary.dense_macs:,}", f"{summary.ideal_macs:,.0f}",
                 f"{totals['compute_reduction']:.2f}x", f"{summary.dense_params:,}", f"{summary.ideal_params:,.0f}",
                 f"{totals['param_reduction']:.2f}x"])  # fmt: skip
    headers = ["layer", "density", "MACs", "ideal MACs", "compute reduction", "params", "non-zero params",
               "param reduction"]  # fmt: skip
    return markdown_table(headers, rows)
