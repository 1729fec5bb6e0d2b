"""The model zoo by name: `create_model("resnet20", in_channels=1)` or `create_model("torchvision:resnet50")`."""

from amc.models.registry import ModelInfo, create_model, default_input_size, list_models, model_info

__all__ = ["ModelInfo", "create_model", "default_input_size", "list_models", "model_info"]
