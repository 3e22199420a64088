"""benchmarks/bench_deploy.py's table on a tiny CNN (eager and onnxruntime): every cell has its ratio against eager fp32
of the original with a spread, and its agreement with its float model; batch norms are recalibrated. No timings
asserted, only that the figures exist, are consistent and in range."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_deploy  # noqa: E402

pytest.importorskip("onnxruntime")


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()


def test_recalibrate_bn_sets_the_plain_average_of_the_batches() -> None:
    model = tiny()
    gen = torch.Generator().manual_seed(5)
    batches = [torch.randn(4, 3, 16, 16, generator=gen) * 3 + 2 for _ in range(3)]
    bench_deploy.recalibrate_bn(model, batches)
    with torch.no_grad():
        conv_out = torch.cat([model[0](b) for b in batches])
    assert torch.allclose(model[1].running_mean, conv_out.mean((0, 2, 3)), atol=1e-4)
    assert model[1].momentum == 0.1 and not model.training      # put back as it was, in eval
    bench_deploy.recalibrate_bn(nn.Linear(2, 2), batches)         # no batch norm: nothing to do, no error


def test_measure_gives_every_cell_its_ratio_and_agreement() -> None:
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, 3, 32, 32, generator=gen) for _ in range(16)]
    calib = [torch.randn(8, 3, 32, 32, generator=gen) for _ in range(2)]
    rows, facts = bench_deploy.measure(tiny(), ["eager", "onnxruntime"], 5, inputs[0], inputs, calib, calib,
                                       log=lambda _: None)
    assert {(r["variant"], r["runtime"]) for r in rows} == \
        {(v, rt) for v, _, _ in bench_deploy.VARIANTS for rt in ("eager", "onnxruntime")}
    assert rows[0]["variant"] == "original" and rows[0]["runtime"] == "eager"
    assert rows[0]["speedup"] == 1.0                          # the reference against itself, round by round
    for r in rows:
        assert r["repeats"] == 5
        assert 0 < r["speedup_p10"] <= r["speedup"] <= r["speedup_p90"] and math.isfinite(r["speedup_p90"])
        assert 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
        assert 0.0 <= r["top1_agreement"] <= 1.0 and r["rel_error"] >= 0.0
        assert 1 <= r["float_classes"] <= 10
        if not r["int8"]:                                     # a float model on another runtime: the same outputs
            assert r["top1_agreement"] == 1.0 and r["rel_error"] < 1e-4
        else:                                                 # really int8: some error, but a sane one
            assert 0.0 < r["rel_error"] < 0.5
    assert facts["mac_ratio"] > 1.5 and facts["pruned_params_m"] < facts["params_m"]
    assert not facts["skipped"]
    best = bench_deploy.best_pruned_int8(rows)
    assert best is not None and best["variant"] == "pruned+int8"
    assert best["speedup"] == max(r["speedup"] for r in rows if r["variant"] == "pruned+int8")


def test_compile_int8_is_left_out_with_its_reason() -> None:
    with pytest.raises(bench_deploy.Skip, match="torch.compile"):
        bench_deploy.prepare("compile", tiny(), True, torch.zeros(1, 3, 8, 8), [], ROOT)
