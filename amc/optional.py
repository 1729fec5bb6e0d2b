"""Optional packages: each is imported only where it is used, and a missing one is a UserError naming its extra.

A plain `pip install amc-toolkit` runs every command with its default settings. The extras (pyproject.toml) add:

    bayes        optuna        search.method bayes
    ray          ray           search.executor ray
    tensorboard  tensorboard   TensorBoard curves of AMC's agent in <run>/tensorboard (skipped without it)
    openvino     openvino      cost.lut_backend openvino (`amc lut build --backend openvino`)
    timm         timm          model timm:<name> (amc/models/timm_zoo.py)

cost.lut_backend torch-cuda needs no extra but a CUDA build of torch that sees a GPU; `check_config` refuses it
up front where there is none.

Imports nothing heavy: the CLI checks a config with `check_config` before it loads torch or the search code.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from amc.config import ExperimentConfig
from amc.errors import UserError

EXTRAS = {"optuna": "bayes", "ray": "ray", "tensorboard": "tensorboard", "openvino": "openvino", "timm": "timm"}
"""Optional package -> the extra of amc-toolkit that installs it."""


def installed(package: str) -> bool:
    """Whether `package` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # hidden (None in sys.modules) or a parent that does not import
        return False


def missing(package: str, needed_for: str, detail: str = "") -> UserError:
    """The error for an optional package that is absent (or, with `detail`, installed but broken)."""
    extra = EXTRAS[package]
    problem = (
        f"{needed_for} needs {package}, which is installed but does not import ({detail})."
        if detail
        else f"{needed_for} needs {package}, an optional dependency that is not installed."
    )
    return UserError(problem, fix=f"pip install 'amc-toolkit[{extra}]' (in a checkout: pip install -e '.[{extra}]').")


def require(module: str, needed_for: str) -> ModuleType:
    """Import `module` (e.g. "optuna" or "ray.util") or raise a UserError naming the extra that installs it;
    `needed_for` is what asked for it, as the user wrote it (e.g. "search.method bayes")."""
    package = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] == package:
            raise missing(package, needed_for) from None
        raise missing(package, needed_for, detail=str(error)) from None


def check_config(config: ExperimentConfig) -> None:
    """Fail before anything is loaded, trained or measured if the config asks for an extra that is not installed
    (the search would otherwise find out only after preparing its base model)."""
    if config.search.method == "bayes" and not installed("optuna"):
        raise missing("optuna", "search.method bayes")
    if config.cost.lut_backend == "openvino" and not installed("openvino"):
        raise missing("openvino", "cost.lut_backend openvino")
    if config.search.executor == "ray" and not installed("ray"):
        raise missing("ray", "search.executor ray")
    if config.model.name.startswith("timm:") and not installed("timm"):
        raise missing("timm", f"model {config.model.name}")
    if config.cost.lut_backend == "torch-cuda":
        check_cuda("cost.lut_backend torch-cuda")


def check_cuda(needed_for: str) -> None:
    """A UserError, before any long work, unless torch sees a CUDA GPU (torch is imported only here)."""
    from hwmodel.errors import HwModelError
    from hwmodel.lut.fingerprint import require_cuda

    try:
        require_cuda()
    except HwModelError as error:
        raise UserError(f"{needed_for}: {error.problem}", fix=error.fix) from None
