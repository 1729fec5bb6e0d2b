"""The Python API on a user's own model, data and evaluation: no YAML, no model zoo."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

import amc
from amc.pruning import Strategy


class UserNet(nn.Module):
    """A model amc has never seen: a residual block, so coupling matters."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.Conv2d(32, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))  # fmt: skip
        self.head = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.body(x))
        return self.head(x.mean((2, 3)))


def user_data() -> list[tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(128, 1, 12, 12, generator=generator)
    labels = (images[:, 0, :6].mean((1, 2)) > 0).long() + 2 * (images[:, 0, 6:].mean((1, 2)) > 0).long()
    return [(images[i : i + 32], labels[i : i + 32]) for i in range(0, 128, 32)]


def test_search_apply_finetune_export_with_own_objects(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model, loader = UserNet().eval(), user_data()

    def score(candidate: nn.Module) -> float:
        with torch.no_grad():
            hits = sum((candidate(x).argmax(1) == y).sum().item() for x, y in loader)
        return hits / 128

    task = amc.prepare(model, (1, 12, 12), score, method="amc", cost_model="macs", budget=0.5,
                       calibration=loader, calibration_images=64,
                       settings={"search.episodes": 4, "agent.warmup_episodes": 2, "search.round_to": 4})  # fmt: skip
    result = amc.search_strategy(task, tmp_path / "run", progress=False, log=lambda _: None)
    assert isinstance(result.best, Strategy)
    assert result.best_cost <= result.budget.value
    pruned = amc.apply(task, result.best)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    # the residual add couples stem.0 and body.3: one set of kept channels, so the network still runs
    assert pruned.stem[0].out_channels == pruned.body[3].out_channels
    optimizer = torch.optim.SGD(pruned.parameters(), lr=0.01)  # the user's own fine-tuning loop
    pruned.train()
    for x, y in loader:
        optimizer.zero_grad()
        nn.functional.cross_entropy(pruned(x), y).backward()
        optimizer.step()
    exported = amc.export(pruned.eval(), tmp_path / "final", result.best, (1, 12, 12))
    assert exported.onnx is not None and exported.onnx.is_file() and exported.schedule_yaml.is_file()
    assert "L1RankedStructureParameterPruner" in exported.schedule_yaml.read_text()
    rebuilt = amc.load_pruned(UserNet(), tmp_path / "final")
    x = loader[0][0]
    assert torch.allclose(rebuilt(x), pruned.eval()(x), atol=1e-5)


def test_a_params_budget_through_the_api_is_met(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = amc.prepare(UserNet().eval(), (1, 12, 12), lambda m: 0.5, method="amc", cost_model="params", budget=0.6,
                       settings={"search.episodes": 2, "agent.warmup_episodes": 2, "search.round_to": 4})  # fmt: skip
    result = amc.search_strategy(task, tmp_path / "run", progress=False, log=lambda _: None)
    assert result.budget.metric == "params" and result.best_cost <= result.budget.value
