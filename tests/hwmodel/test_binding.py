"""Binding a cost model to a network: a new model for that network, the original untouched; network overheads."""

from __future__ import annotations

import math

import pytest
import torch

from hwmodel.base import CostModel
from hwmodel.counting import MacsModel
from hwmodel.errors import HwModelError
from hwmodel.lut.model import LutCostModel
from hwmodel.lut.table import LatencyTable, NetworkOverhead
from hwmodel.lut.timing import Measurement
from hwmodel.sparse import SkipSettings, SparseModel
from hwmodel.spec import LayerSpec

torch.set_num_threads(1)

TINY = LayerSpec("conv", 4, 8, kernel=3, padding=1, in_hw=8, fused=("bn", "relu"))
TINY_LINEAR = LayerSpec("linear", 8, 4, bias=True)
NETWORK = [TINY, TINY_LINEAR]
OTHER = [TINY]  # another structure: another network


def calibrated_lut(path=None) -> LutCostModel:
    """Entries 0.01 and 0.03 ms; NETWORK calibrated as 1.5 x layer sum + 0.5 ms, OTHER as 2 x sum + 0.1 ms."""
    table = LatencyTable.create("torch", threads=1, warmup=1, repeats=3)
    for spec, ms in {TINY: 0.01, TINY_LINEAR: 0.03}.items():
        table.add(spec, Measurement(ms, ms / 10, ms * 0.9, 3))
    lut = LutCostModel(table, path, repeats=3, warmup=1)
    lut.set_overhead(NETWORK, NetworkOverhead("net", (4, 8, 8), 0.5, 5, 10.0, 1.0, scale=1.5))
    lut.set_overhead(OTHER, NetworkOverhead("other", (4, 8, 8), 0.1, 5, 10.0, 1.0, scale=2.0))
    return lut


def test_binding_returns_a_new_model_and_leaves_the_original_unbound():
    lut = calibrated_lut()
    assert lut.layer_cost(TINY) == 0.01  # cached before binding
    bound = lut.bind(NETWORK)
    assert isinstance(bound, CostModel) and bound is not lut and bound.table is lut.table
    assert bound.layer_cost(TINY) == pytest.approx(0.015)
    assert lut.layer_cost(TINY) == 0.01 and lut.scale == 1.0
    with pytest.raises(HwModelError, match="bind"):
        lut.network_cost(NETWORK)  # still unbound: its layer costs are not NETWORK's


def test_two_networks_bound_from_one_lut_price_independently():
    lut = calibrated_lut()
    network, other = lut.bind(NETWORK), lut.bind(OTHER)
    assert network.layer_cost(TINY) == pytest.approx(0.015) and other.layer_cost(TINY) == pytest.approx(0.02)
    assert network.network_cost(NETWORK) == pytest.approx(1.5 * 0.04 + 0.5)
    assert other.network_cost(OTHER) == pytest.approx(2.0 * 0.01 + 0.1)
    assert network.network_overhead(NETWORK) == 0.5 and other.network_overhead(OTHER) == 0.1
    with pytest.raises(HwModelError, match="bind"):
        other.network_cost(NETWORK)
    assert network.network_cost(NETWORK) == pytest.approx(1.5 * 0.04 + 0.5)  # binding `other` changed nothing


def test_set_overhead_reaches_every_binding_of_that_network():
    lut = calibrated_lut()
    first, second = lut.bind(NETWORK), lut.bind(NETWORK)
    assert first.layer_cost(TINY) == pytest.approx(0.015)
    second.set_overhead(NETWORK, NetworkOverhead("net", (4, 8, 8), 0.2, 5, 10.0, 1.0, scale=3.0))
    assert first.layer_cost(TINY) == pytest.approx(0.03)  # the scale is read from the table, never a stale copy
    assert first.network_cost(NETWORK) == pytest.approx(3.0 * 0.04 + 0.2)
    assert lut.layer_cost(TINY) == 0.01


def test_a_bound_lut_measures_into_the_shared_table_and_file(tmp_path):
    path = tmp_path / "lut.json"
    lut = calibrated_lut(path)
    bound = lut.bind(NETWORK)
    wide = TINY.with_channels(4, 16)
    assert wide.key() not in lut.table.entries
    assert bound.layer_cost(wide) == pytest.approx(1.5 * bound.entry_ms(wide))
    assert wide.key() in lut.table.entries and lut.measured_on_demand == 1
    assert lut.layer_cost(wide) == lut.table.entries[wide.key()].median_ms and lut.measured_on_demand == 1
    lut.flush()  # the original writes what its binding measured: one table, one file
    assert wide.key() in LatencyTable.load(path).entries


def test_sparse_over_a_lut_binds_its_base():
    lut = calibrated_lut()
    sparse = SparseModel(lut, SkipSettings(skip_fraction=0.5))
    bound = sparse.bind(NETWORK)
    assert isinstance(bound, SparseModel) and bound is not sparse and bound.settings == sparse.settings
    assert sparse.base is lut and isinstance(bound.base, LutCostModel) and bound.base.scale == 1.5
    assert bound.network_overhead(NETWORK) == 0.5
    assert bound.network_cost(NETWORK) == pytest.approx(1.5 * 0.04 + 0.5)  # dense layers: nothing skipped
    assert bound.layer_cost(TINY.with_density(0.25)) == pytest.approx(0.015 * (0.5 + 0.5 * 0.25))
    with pytest.raises(HwModelError, match="bind"):
        sparse.network_cost(NETWORK)
    bound.base.set_overhead(NETWORK, NetworkOverhead("net", (4, 8, 8), 0.2, 5, 10.0, 1.0, scale=3.0))
    assert bound.layer_cost(TINY) == pytest.approx(0.03)  # a re-fitted scale reaches the wrapper too


def test_network_overhead_of_each_model_kind():
    lut = calibrated_lut()
    lut.set_overhead([TINY_LINEAR], NetworkOverhead("offset only", (8,), 0.3, 5, 10.0, 1.0))
    assert lut.network_overhead([TINY_LINEAR]) == 0.3  # no scale: the unbound model may price the offset
    assert lut.network_overhead([TINY, TINY]) == 0.0  # never calibrated
    bound = lut.bind(NETWORK)
    assert bound.network_cost(NETWORK) == math.fsum(map(bound.layer_cost, NETWORK)) + 0.5
    macs = MacsModel()
    assert macs.network_overhead(NETWORK) == 0.0 and macs.bind(NETWORK) is macs
    sparse = SparseModel(macs, SkipSettings())
    assert sparse.network_overhead(NETWORK) == 0.0 and sparse.bind(NETWORK) is sparse
