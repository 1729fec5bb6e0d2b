"""Nothing silently wrong (issue 19): a bad number in a config, LUT, strategy or output is refused with a message that
names the file or key, the bad value and the fix, instead of giving a wrong result or a traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from amc.cli.main import main
from amc.config import load_config
from amc.costs.latency_tables import Grid, load_network
from amc.costs.registry import bound_to
from amc.deliver.sources import LatencySettings
from amc.errors import UserError
from amc.io import atomic_write_json
from amc.problem.budget import resolve_budget
from amc.pruning.strategy import LayerKeep, Strategy
from hwmodel import create_cost_model
from hwmodel.errors import HwModelError
from hwmodel.lut import LatencyTable, LutCostModel, NetworkOverhead, structure_key
from hwmodel.lut.timing import Measurement

torch.set_num_threads(1)

NAN, INF = float("nan"), float("inf")


def one_line(text: str) -> str:
    """The CLI's error paragraph (or an error's text) as one line."""
    return " ".join(text.replace("-\n  ", "-").split())


def refused(error: UserError | HwModelError, *names: str) -> str:
    """The error's text, after checking that it names everything in `names` and has a fix."""
    text = one_line(str(error))
    assert error.fix, text
    for name in names:
        assert name in text, (name, text)
    return text


@pytest.fixture(scope="module")
def tiny():
    return load_network("tiny")


# ------------------------------------------------------------------------------------------------ 1. budgets


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("budget.ratio", NAN),
        ("budget.ratio", INF),
        ("budget.ratio", -0.5),
        ("budget.ratio", 0.0),
        ("budget.ratio", 1.5),
        ("budget.value", NAN),
        ("budget.value", INF),
        ("budget.value", -1.0),
        ("budget.value", 0.0),
    ],
)
def test_config_refuses_a_budget_no_search_can_mean(key: str, value: float) -> None:
    with pytest.raises(UserError) as caught:
        load_config(None, {key: value})
    refused(caught.value, key, repr(value), f"change {key}")


def test_a_nan_budget_in_a_yaml_file_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "exp.yaml"
    config.write_text("budget:\n  ratio: .nan\n")
    with pytest.raises(UserError) as caught:
        load_config(config)
    refused(caught.value, str(config), "budget.ratio", "nan")


@pytest.mark.parametrize(
    ("value", "ratio", "key"),
    [
        (None, NAN, "budget.ratio"),
        (None, 2.0, "budget.ratio"),
        (-3.0, None, "budget.value"),
        (INF, None, "budget.value"),
    ],
)
def test_resolve_budget_refuses_bad_numbers_for_api_users(value: float | None, ratio: float | None, key: str) -> None:
    model = SimpleNamespace(unit="ms", name="stub", metric="latency")
    accountant: Any = SimpleNamespace(cost_model=model, dense_cost=1.0, cost=lambda kept: 0.1)
    with pytest.raises(UserError) as caught:
        resolve_budget(accountant, {}, value, ratio, lbound=0.2)
    refused(caught.value, key, repr(value if ratio is None else ratio))


@pytest.mark.parametrize(("dense", "smallest"), [(-50.0, -60.0), (NAN, 0.1), (1.0, -0.5), (INF, 0.1)])
def test_a_cost_model_pricing_the_network_at_a_negative_or_nan_cost_is_refused(dense: float, smallest: float) -> None:
    """A LUT with a large negative offset priced dense at -50 ms and searched to 'best = unpruned'."""
    model = SimpleNamespace(unit="ms", name="lut:x.json", metric="latency")
    accountant: Any = SimpleNamespace(cost_model=model, dense_cost=dense, cost=lambda kept: smallest)
    with pytest.raises(UserError) as caught:
        resolve_budget(accountant, {}, None, 0.5, lbound=0.2)
    assert "lut:x.json" in caught.value.problem and "positive and finite" in caught.value.problem
    assert "amc lut build" in caught.value.fix


# ------------------------------------------------------------------------------------------------ 2. LUTs


def write_lut(path: Path, tiny, change=None) -> Path:
    """A LUT of the tiny network (every dense layer 0.01 ms, one calibrated overhead), edited by `change(data)`."""
    table = LatencyTable.create("torch", 1, 1, 3)
    for spec in tiny.table.specs():
        table.add(spec, Measurement(0.01, 0.001, 0.009, 3))
    overhead = NetworkOverhead("tiny", tiny.input_size, 0.02, 5, 5.0, 4.0, 1.1)
    table.overheads[structure_key(tiny.table.specs())] = overhead
    data = table.to_dict()
    if change:
        change(data)
    path.write_text(json.dumps(data))  # the stdlib writes NaN and Infinity, as a hand edit or another tool might
    return path


def first_entry(data: dict[str, Any]) -> dict[str, Any]:
    return next(iter(data["entries"].values()))


def first_overhead(data: dict[str, Any]) -> dict[str, Any]:
    return next(iter(data["overheads"].values()))


@pytest.mark.parametrize(
    ("field", "value"),
    [("median_ms", NAN), ("median_ms", INF), ("median_ms", -0.5), ("median_ms", 0.0), ("median_ms", 5e6),
     ("iqr_ms", NAN), ("min_ms", -1.0)],
)  # fmt: skip
def test_a_lut_entry_that_is_not_a_time_is_refused_on_load(tmp_path: Path, tiny, field: str, value: float) -> None:
    path = write_lut(tmp_path / "lut.json", tiny, lambda data: first_entry(data).update({field: value}))
    key = next(iter(json.loads(path.read_text())["entries"]))
    with pytest.raises(HwModelError) as caught:
        LatencyTable.load(path)
    refused(caught.value, str(path), f"entries.{key}.{field}", repr(value), "amc lut build")


@pytest.mark.parametrize(
    ("field", "value"), [("scale", NAN), ("scale", -1.1), ("scale", 0.0), ("offset_ms", NAN), ("offset_ms", -INF)]
)
def test_a_lut_overhead_with_a_bad_scale_or_offset_is_refused_on_load(
    tmp_path: Path, tiny, field: str, value: float
) -> None:
    path = write_lut(tmp_path / "lut.json", tiny, lambda data: first_overhead(data).update({field: value}))
    with pytest.raises(HwModelError) as caught:
        LatencyTable.load(path)
    refused(caught.value, str(path), f".{field}", repr(value), "amc lut calibrate")


def test_a_slightly_negative_fitted_offset_still_loads(tmp_path: Path, tiny) -> None:
    # Theil-Sen fits give small negative offsets when the scale is above 1 (README: ResNet-20 once had -0.14 ms).
    path = write_lut(tmp_path / "lut.json", tiny, lambda data: first_overhead(data).update({"offset_ms": -0.14}))
    assert next(iter(LatencyTable.load(path).overheads.values())).offset_ms == -0.14


def test_the_cli_reports_a_corrupt_lut_as_one_paragraph(tmp_path: Path, tiny, capsys) -> None:
    path = write_lut(tmp_path / "lut.json", tiny, lambda data: first_entry(data).update({"median_ms": NAN}))
    assert main(["lut", "info", "--lut", str(path)]) == 2
    err = one_line(capsys.readouterr().err)
    assert err.startswith("amc: error: LUT file") and "median_ms" in err and "nan" in err and "Traceback" not in err


def other_models_lut(path: Path, tiny) -> Path:
    """A LUT built for another network: the tiny network's first layer at other channel counts only."""
    table = LatencyTable.create("torch", 1, 1, 3)
    spec = tiny.table.specs()[0]
    table.add(spec.with_channels(spec.in_channels, spec.out_channels * 2), Measurement(0.01, 0.001, 0.009, 3))
    table.overheads["0123456789abcdef"] = NetworkOverhead("resnet20", (1, 28, 28), 0.02, 5, 5.0, 4.0, 1.0)
    table.save(path)
    return path


def test_validating_another_models_lut_is_refused_and_writes_nothing(tmp_path: Path, tiny, capsys) -> None:
    path = other_models_lut(tmp_path / "resnet20.json", tiny)
    before = path.read_bytes()
    args = ["lut", "validate", "--lut", str(path), "--model", "tiny", "--samples", "2", "--calibrate", "0"]
    assert main([*args, "--no-progress", "--rounds", "1"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "Traceback" not in err
    for part in (str(path), "no entry for", "of the 5 layers of tiny", "built for resnet20", "amc lut build"):
        assert part in err, (part, err)
    assert path.read_bytes() == before  # no entry measured on demand and written into the other model's LUT


def test_a_search_refuses_to_price_with_another_models_lut(tmp_path: Path, tiny) -> None:
    lut = LutCostModel.open(other_models_lut(tmp_path / "resnet20.json", tiny))
    with pytest.raises(HwModelError) as caught:
        bound_to(lut, tiny.table)
    refused(caught.value, "resnet20.json", "layers of tiny", "built for resnet20")
    assert bound_to(LutCostModel.open(write_lut(tmp_path / "tiny.json", tiny)), tiny.table).scale == 1.1


def test_a_sparse_wrapper_does_not_hide_another_models_lut(tmp_path: Path, tiny) -> None:
    path = other_models_lut(tmp_path / "resnet20.json", tiny)
    with pytest.raises(HwModelError) as caught:
        bound_to(create_cost_model(f"sparse:lut:{path}"), tiny.table)
    refused(caught.value, "resnet20.json", "layers of tiny", "built for resnet20")


# ------------------------------------------------------------------------------------------------ 3. counts


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("experiment.threads", 0),
        ("experiment.threads", -2),
        ("train.epochs", 0),
        ("search.round_to", 0),
        ("search.lbound", 0.0),
        ("search.lbound", 1.5),
        ("search.lbound", NAN),
        ("finetune.epochs", -1),
    ],
)
def test_config_refuses_counts_and_bounds_out_of_range(key: str, value: float) -> None:
    with pytest.raises(UserError) as caught:
        load_config(None, {key: value})
    refused(caught.value, key, repr(value), f"change {key}")


def test_lbound_above_rbound_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        load_config(None, {"search.lbound": 0.8, "search.rbound": 0.5})
    refused(caught.value, "search.lbound", "0.8", "search.rbound", "0.5")


def test_train_with_zero_epochs_is_refused_before_caching_a_model(tmp_path: Path, capsys) -> None:
    out = tmp_path / "base.pt"
    assert main(["train", "--epochs", "0", "--out", str(out)]) == 2
    err = one_line(capsys.readouterr().err)
    assert "train.epochs is 0" in err and "at least 1" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("round_to", "lbound", "named"),
    [(0, 0.2, "--round-to"), (-8, 0.2, "--round-to"), (8, 0.0, "--lbound"), (8, NAN, "--lbound")],
)
def test_a_lut_grid_refuses_round_to_below_1_and_lbound_outside_0_1(round_to: int, lbound: float, named: str) -> None:
    with pytest.raises(UserError) as caught:
        Grid(round_to, lbound)
    refused(caught.value, named, repr(round_to if named == "--round-to" else lbound))


def test_lut_build_round_to_0_exits_2_and_writes_nothing(tmp_path: Path, capsys) -> None:
    out = tmp_path / "lut.json"
    assert main(["lut", "build", "--model", "tiny", "--out", str(out), "--round-to", "0", "--no-progress"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "--round-to" in err and "is 0" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("field", ["threads", "batch", "repeats"])
def test_latency_settings_refuse_fewer_than_one(field: str) -> None:
    with pytest.raises(UserError) as caught:
        LatencySettings(**{field: 0})
    refused(caught.value, field, "is 0", ">= 1")


# ------------------------------------------------------------------------------------------------ 4. strategies


def strategy_file(path: Path, tiny, change) -> Path:
    data = Strategy.uniform(tiny.table, 0.5).to_dict()
    change(data["layers"][0])
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("ratio", [NAN, INF, -INF, 0.0, -0.5, 1.5])
def test_a_strategy_keep_ratio_outside_0_1_is_refused_on_load(tmp_path: Path, tiny, ratio: float) -> None:
    path = strategy_file(tmp_path / "s.json", tiny, lambda layer: layer.update(keep_ratio=ratio))
    layer = Strategy.uniform(tiny.table, 0.5).layers[0].name
    with pytest.raises(UserError) as caught:
        Strategy.load(path)
    refused(caught.value, str(path), repr(layer), f"keep_ratio {ratio!r}", "(0, 1]")


@pytest.mark.parametrize(("kept", "shown"), [(10_000, "keeps 10000 of"), (0, "keeps 0 of"), (2.5, "kept 2.5")])
def test_a_strategy_keeping_more_channels_than_the_layer_has_is_refused(tmp_path: Path, tiny, kept, shown) -> None:
    path = strategy_file(tmp_path / "s.json", tiny, lambda layer: layer.update(kept=kept))
    with pytest.raises(UserError) as caught:
        Strategy.load(path)
    refused(caught.value, str(path), shown)


def test_from_keep_ratios_refuses_zero_and_nan(tiny) -> None:
    for ratio in (0.0, NAN):
        with pytest.raises(UserError) as caught:
            Strategy.uniform(tiny.table, ratio)
        refused(caught.value, f"keep ratio {ratio!r}", "(0, 1]")


# ------------------------------------------------------------------------------------------------ 5. JSON output


def test_json_files_never_get_nan_or_infinity(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    with pytest.raises(UserError) as caught:
        atomic_write_json(path, {"evaluation": {"accuracy": [0.9, NAN]}})
    refused(caught.value, str(path), "evaluation.accuracy[1]", "nan")
    assert not path.exists() and not list(tmp_path.iterdir())  # no file, no temporary left behind
    atomic_write_json(path, {"accuracy": 0.9})
    assert json.loads(path.read_text()) == {"accuracy": 0.9}


def test_a_strategy_with_a_nan_ratio_is_not_saved(tmp_path: Path) -> None:
    strategy = Strategy((LayerKeep("conv1", 0, 16, 8, NAN),))
    path = tmp_path / "s.json"
    with pytest.raises(UserError) as caught:
        strategy.save(path)
    refused(caught.value, str(path), "layers[0].keep_ratio", "nan")
    assert not path.exists()


def test_a_lut_with_a_nan_entry_is_not_saved(tmp_path: Path, tiny) -> None:
    table = LatencyTable.create("torch", 1, 1, 3)
    table.add(tiny.table.specs()[0], Measurement(math.nan, 0.0, 0.0, 3))
    path = tmp_path / "lut.json"
    with pytest.raises(HwModelError) as caught:
        table.save(path)
    refused(caught.value, str(path), "NaN")
    assert not path.exists()


# ------------------------------------------------------------------------------------------------ 6. schedules


def test_schedule_convert_to_an_unknown_suffix_is_refused(tmp_path: Path, tiny, capsys) -> None:
    source = tmp_path / "s.json"
    Strategy.uniform(tiny.table, 0.5).save(source)
    out = tmp_path / "s.txt"
    assert main(["schedule", "convert", str(source), str(out), "--model", "tiny"]) == 2
    err = one_line(capsys.readouterr().err)
    assert "'.txt'" in err and ".yaml, .yml, .json" in err and str(out) in err and "Traceback" not in err
    assert not out.exists()
