"""Validating a LUT on whole networks: pools of networks timed together, and the fit made alongside."""

from __future__ import annotations

import numpy as np
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


def test_band_variants_land_in_their_band_by_the_share_function():
    network = load_network("resnet20")
    table = network.table
    dense = sum(spec.macs for spec in table.specs())

    def share_of(kept: dict[int, int]) -> float:
        return sum(spec.macs for spec in table.specs(kept)) / dense

    rng = np.random.default_rng(0)
    for band in latency_tables.BUDGET_BANDS:
        drawn = [latency_tables.band_kept(table, Grid(), share_of, band, rng) for _ in range(5)]
        assert all(kept is not None and band[0] <= share_of(kept) <= band[1] for kept in drawn)
        assert len({tuple(sorted(kept.items())) for kept in drawn if kept}) == 5  # random shapes, not one
    assert latency_tables.band_kept(table, Grid(), share_of, (0.0, 0.01), rng) is None  # below the lbound floor


def test_validation_reports_each_budget_band(monkeypatch):
    # the thinnest variant of a network this small costs over half the dense time: bands it can reach
    monkeypatch.setattr(latency_tables, "BUDGET_BANDS", ((0.65, 0.8), (0.8, 0.95)))
    network = load_network("resnet20", (1, 8, 8))
    lut = tiny_lut()
    calibrate_overhead(lut, network, 2, Grid(), progress=False, rounds=1)
    found = validate_lut(lut, network, 3, Grid(), progress=False, rounds=1, calibrate=2, band_samples=2)
    assert found.report.n == 3
    assert found.bands and all(band.report.n == 2 for band in found.bands)
    assert set(found.to_dict()["bands"]) == {band.label for band in found.bands}
    with pytest.raises(UserError, match="--band-samples 1"):
        validate_lut(lut, network, 3, Grid(), progress=False, band_samples=1)


def test_copies_of_one_band_variant_count_once(monkeypatch):
    """Near the grid's thin end most band draws are the same variant: copies must not fill the band's figures."""
    monkeypatch.setattr(latency_tables, "BUDGET_BANDS", ((0.65, 0.8),))
    network = load_network("resnet20", (1, 8, 8))
    thinnest = {index: options[0] for index, options in Grid().choices(network.table).items() if len(options) > 1}
    monkeypatch.setattr(latency_tables, "band_kept", lambda *args: dict(thinnest))
    lut = tiny_lut()
    calibrate_overhead(lut, network, 2, Grid(), progress=False, rounds=1)
    found = validate_lut(lut, network, 3, Grid(), progress=False, rounds=1, calibrate=2, band_samples=4)
    assert found.report.n == 3 and found.bands == ()  # one distinct variant: nothing to judge the band on
