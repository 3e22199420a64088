"""Latency figures: median of repeats with spread, one thread policy, noisy flag, alternating ratios."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from workbench.core import latency
from workbench.core.auto.timing import latency_ratio


class FakeClock:
    """Each forward pass lasts the next value of `durations` (seconds); reading the clock costs nothing."""

    def __init__(self, durations: list[float]) -> None:
        self.now = 0.0
        self.durations = itertools.cycle(durations)
        self.started = False

    def __call__(self) -> float:
        # _timed reads the clock twice per pass (before, after); alternating_ms reads it once more per round
        return self.now

    def step(self) -> None:
        self.now += next(self.durations)


class Ticking(nn.Module):
    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock, self.calls = clock, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.clock.step()
        return x


def test_stats_shape_repeats_order_and_threads() -> None:
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    before = torch.get_num_threads()
    stats = latency.latency_stats(model, torch.randn(1, 8), repeats=12, warmup=1)
    assert set(stats) >= {"median_ms", "p10_ms", "p90_ms", "repeats", "threads", "batch"}
    assert stats["repeats"] == 12
    assert 0 < stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"]
    assert stats["threads"] == latency.LATENCY_THREADS and stats["batch"] == 1
    assert torch.get_num_threads() == before          # the policy is restored afterwards


def test_threads_set_while_timing() -> None:
    seen: list[int] = []

    class Spy(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.get_num_threads())
            return x
    latency.latency_stats(Spy(), torch.zeros(1, 2), repeats=5, warmup=1)
    assert seen and set(seen) == {latency.LATENCY_THREADS}


def test_steady_fake_clock_not_noisy() -> None:
    clock = FakeClock([0.010, 0.011, 0.010, 0.0105])
    model = Ticking(clock)
    stats = latency.latency_stats(model, torch.zeros(1, 2), repeats=20, warmup=2, clock=clock)
    assert stats["repeats"] == 20 and model.calls == 22           # warm-up runs are not counted
    assert stats["median_ms"] == pytest.approx(10.25, abs=0.3)
    assert "noisy" not in stats


def test_wide_spread_is_flagged_noisy() -> None:
    clock = FakeClock([0.010, 0.050, 0.010, 0.080, 0.012])
    stats = latency.latency_stats(Ticking(clock), torch.zeros(1, 2), repeats=20, warmup=0, clock=clock)
    assert stats["noisy"] is True
    assert stats["p90_ms"] / stats["p10_ms"] > latency.NOISY_SPREAD
    assert stats["p10_ms"] <= stats["median_ms"] <= stats["p90_ms"]


def test_ratio_is_alternating_pairs() -> None:
    clock = FakeClock([0.004, 0.010])     # model then reference, alternately: every pair reads 0.4
    ratio = latency.ratio_stats(Ticking(clock), Ticking(clock), torch.zeros(1, 2), repeats=10, clock=clock)
    assert ratio["runtime"] == "eager" and ratio["repeats"] == 10
    assert ratio["value"] == pytest.approx(0.4) and ratio["p10"] == pytest.approx(0.4)
    assert "noisy" not in ratio


def test_quantile_and_noisy_bound() -> None:
    assert latency.quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert latency.quantile(list(map(float, range(11))), 0.1) == pytest.approx(1.0)
    assert latency.is_noisy(1.0, 1.6) and not latency.is_noisy(1.0, 1.4)


def test_auto_stage_ratio_uses_the_same_policy() -> None:
    a, b = nn.Linear(64, 64), nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))
    ratio, own, ref = latency_ratio(a, b, torch.randn(1, 64), passes=2, repeats=5)
    assert own > 0 and ref > 0 and 0 < ratio < float("inf")


def test_noisy_shown_next_to_the_number() -> None:
    from workbench.commands.run import snapshot_line
    from workbench.commands.runs import _cell
    from workbench.reporting.tables import spread
    eager = {"median_ms": 2.0, "p10_ms": 1.0, "p90_ms": 4.0, "repeats": 30, "threads": 1, "batch": 1, "noisy": True}
    row = {"index": 1, "stage": "prune", "params": 10, "nonzero_params": 5, "latency_ms": 2.0,
           "latency": {"eager": eager}, "agreement": 0.975}
    assert _cell(row, "latency_ms", "{:.3f}") == "2.000 noisy"
    assert spread(row["latency"]) == "1.000-4.000 (30 runs) noisy"
    line = snapshot_line(row)
    assert "latency 2.000 ms (p10-p90 1.000-4.000, 30 runs, 1 thread) noisy" in line and "agreement 0.975" in line
    steady = {**row, "latency": {"eager": {k: v for k, v in eager.items() if k != "noisy"}}}
    assert _cell(steady, "latency_ms", "{:.3f}") == "2.000" and "noisy" not in snapshot_line(steady)
    for hostile in ("x", {"eager": 3}, {"eager": {"p10_ms": "a"}}, None):      # report.json read as found
        assert _cell({"latency_ms": 2.0, "latency": hostile}, "latency_ms", "{:.3f}") == "2.000"
        assert spread(hostile) == "n/a"
