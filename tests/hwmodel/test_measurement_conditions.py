"""How every timing runs: interleaved rounds, freed memory kept in the process, denormals flushed while timing."""

from __future__ import annotations

import platform

import pytest
import torch

from hwmodel.errors import HwModelError
from hwmodel.lut.allocator import retain_freed_memory
from hwmodel.lut.backends import TorchBackend, flushing_denormals
from hwmodel.lut.fingerprint import device_fingerprint
from hwmodel.lut.model import CHUNK, LutCostModel
from hwmodel.lut.table import LatencyTable
from hwmodel.lut.timing import Measurement, interleaved
from hwmodel.spec import LayerSpec


def test_interleaved_runs_round_robin_and_combines_rounds():
    calls: list[tuple[str, int]] = []
    rounds_of = {"a": iter([1.0, 3.0, 2.0]), "b": iter([10.0, 10.0, 40.0])}

    def timer(name: str):
        def run(repeats: int) -> Measurement:
            calls.append((name, repeats))
            value = next(rounds_of[name])
            return Measurement(value, value / 10, value / 2, repeats)

        return run

    first, second = interleaved([timer("a"), timer("b")], repeats=30, rounds=3)
    assert calls == [("a", 10), ("b", 10)] * 3  # each round times every unit once, repeats split over rounds
    assert (first.median_ms, first.min_ms, first.repeats) == (1.0, 0.5, 30)  # the calmest round's median
    assert second.median_ms == 10.0  # a slow round is passed over
    assert second.iqr_ms == pytest.approx(1.0)
    with pytest.raises(ValueError):
        interleaved([timer("a")], repeats=3, rounds=0)


def test_measure_many_measures_only_what_is_missing_in_chunks():
    specs = [LayerSpec("conv", 4, out, kernel=1, in_hw=4) for out in range(1, CHUNK + 6)]
    table = LatencyTable.create("torch", threads=1, warmup=0, repeats=2)
    table.add(specs[0], Measurement(0.5, 0.0, 0.5, 2))
    lut = LutCostModel(table)
    chunks: list[int] = []
    lut.measure_many(specs + specs[:3], rounds=2, done=chunks.append)
    assert chunks == [CHUNK, len(specs) - 1 - CHUNK]
    assert set(table.entries) == {spec.key() for spec in specs}
    assert table.entries[specs[0].key()].median_ms == 0.5  # kept, not re-measured
    assert all(table.entries[spec.key()].repeats == 2 for spec in specs[1:])


def test_measure_many_refuses_a_table_that_may_not_measure():
    lut = LutCostModel(LatencyTable.create("torch", threads=1, warmup=0, repeats=2), measure_missing=False)
    with pytest.raises(HwModelError, match="no entry"):
        lut.measure_many([LayerSpec("conv", 4, 4, kernel=1, in_hw=4)])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")
def test_freed_memory_is_retained_and_recorded_in_the_torch_fingerprint():
    assert retain_freed_memory() == "glibc-retain" == retain_freed_memory()
    fingerprint = device_fingerprint("torch", 1)
    assert fingerprint["allocator"] == "glibc-retain" and fingerprint["denormals"] == "flush-to-zero"


def test_denormals_are_flushed_only_while_timing():
    tiny = torch.tensor([1e-39])  # a float32 denormal
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    with flushing_denormals():
        assert (tiny * 1.0).item() == 0.0
    assert (tiny * 1.0).item() != 0.0


def test_networks_to_compare_are_timed_side_by_side(monkeypatch):
    import hwmodel.lut.backends as backends

    passes: list[int] = []
    monkeypatch.setattr(backends, "interleaved", lambda timers, repeats, rounds: passes.append(len(timers)) or [
        timer(repeats) for timer in timers])  # fmt: skip
    small, large = torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(3, 64, 3)
    timed = TorchBackend(1, warmup=1, repeats=3).measure_networks([small, large], (1, 3, 16, 16), rounds=2)
    assert passes == [2]  # one interleaved pool for both
    assert [m.repeats for m in timed] == [3, 3] and all(m.median_ms > 0 for m in timed)
    assert small.training  # the caller's modules are not touched (copies are timed in eval mode)
