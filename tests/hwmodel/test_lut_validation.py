"""Validating a LUT on whole networks: pools of networks timed together, and the fit made alongside."""

from __future__ import annotations

import pytest
import torch

import amc.costs.latency_tables as latency_tables
from amc.costs.latency_tables import (
    Grid,
    calibrate_overhead,
    calibration_variants,
    load_network,
    measure_variants,
    network_pools,
    validate_lut,
)
from amc.errors import UserError
from hwmodel.lut import LatencyTable, LutCostModel

torch.set_num_threads(1)


def tiny_lut() -> LutCostModel:
    return LutCostModel(LatencyTable.create("torch", 1, 1, 3))


def test_pools_are_cut_where_the_weight_budget_runs_out():
    sizes = [{"n": 3}, {"n": 3}, {"n": 3}, {"n": 10}, {"n": 1}]
    assert network_pools(sizes, lambda kept: kept["n"], budget=6) == [2, 3, 4]
    assert network_pools(sizes, lambda kept: kept["n"], budget=100) == []
    assert network_pools([], lambda kept: 1, budget=1) == []


def test_measure_variants_times_each_pool_together(monkeypatch):
    network = load_network("tiny")
    variants = calibration_variants(network.table, Grid(), 4)
    pools: list[int] = []
    monkeypatch.setattr(latency_tables, "POOL_BYTES", 1 << 30)
    assert len(measure_variants(tiny_lut(), network, variants, rounds=1, done=pools.append)) == 4
    assert pools == [4]
    pools.clear()
    monkeypatch.setattr(latency_tables, "POOL_BYTES", 1)  # every network over budget: one pool each
    assert len(measure_variants(tiny_lut(), network, variants, rounds=1, done=pools.append)) == 4
    assert pools == [1, 1, 1, 1]


def test_calibration_runs_start_with_the_two_ends():
    network = load_network("tiny")
    dense, smallest, *rest = calibration_variants(network.table, Grid(8, 0.2), 4, seed=3)
    assert dense == {} and smallest == {0: 8, 1: 8, 2: 8} and len(rest) == 2
    assert calibration_variants(network.table, Grid(8, 0.2), 4, seed=3)[2:] == rest  # seeded


def test_validation_fits_alongside_and_scores_the_stored_fit():
    network = load_network("tiny")
    lut = tiny_lut()
    stored = calibrate_overhead(lut, network, 3, Grid(), progress=False, rounds=1)
    found = validate_lut(lut, network, 4, Grid(), progress=False, rounds=1, calibrate=3)
    assert found.fitted_alongside and found.fit is not None and found.fit.samples == 3
    assert found.stored is not None and found.stored.n == found.report.n == 4
    assert found.to_dict()["fit"] == "alongside" and "stored_fit_mape" in found.to_dict()

    judged = validate_lut(lut, network, 4, Grid(), progress=False, rounds=1, calibrate=0)
    assert not judged.fitted_alongside and judged.fit == stored and judged.stored is None
    assert judged.to_dict()["scale"] == stored.scale


def test_one_calibration_run_cannot_fit_two_numbers():
    with pytest.raises(UserError, match="--calibrate 1"):
        validate_lut(tiny_lut(), load_network("tiny"), 4, Grid(), progress=False, calibrate=1)
