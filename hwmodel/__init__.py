"""Hardware cost models: price a LayerSpec (or a whole pruned network) in ms, mJ, MACs or parameters.

Depends on nothing else of ours. `create_cost_model("roofline:rpi4-a72")` gives a model by name;
`list_cost_models()` says what can be named. torch and onnxruntime are imported only to measure (LUTs).
"""

from hwmodel.base import METRICS, CachedCostModel, CostModel
from hwmodel.errors import HwModelError
from hwmodel.registry import check_cost_model, create_cost_model, list_cost_models
from hwmodel.spec import LayerSpec

__all__ = [
    "METRICS",
    "CachedCostModel",
    "CostModel",
    "HwModelError",
    "LayerSpec",
    "check_cost_model",
    "create_cost_model",
    "list_cost_models",
]
