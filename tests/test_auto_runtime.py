"""The `auto` stage's latency target on the run's deploy runtime (issue 19 item 3): candidates prepared on the runtime
(onnxruntime: exported, verified; with int8: quantized by the `onnx_int8` export) and timed against the stage input
prepared there; the snapshot's `latency_ratio` names the runtime. The clock is replaced by a deterministic cost (the
prepared models' weights, int8 a quarter) so that nothing here depends on how loaded the machine is; the real export,
quantization and val scoring run. The real timing is `benchmarks/bench_auto_runtime.py`."""
from __future__ import annotations

import json

import pytest
import torch
from auto_helpers import one_thread
from prune_helpers import assert_ok, run_recipe

from workbench.core.auto.options import Reference
from workbench.core.errors import RecipeError
from workbench.core.events import Log
from workbench.core.export import calibration_inputs
from workbench.core.stages import _auto_runtime

RECIPE = """
model: sample:digits_mlp
data: sample:digits
seed: 0
runtime: {runtime}
stages:
  - kind: auto
    target: {{latency: {target}}}
    max_drop: 0.03
    methods: [{methods}]
    epochs: 8
    finetune_epochs: 4
    channels: [0.0, 0.25, 0.5, 0.75]
    allocation: knapsack
    push: false
    retries: 0
    max_candidates: 2
"""


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with one_thread():
        yield


def _weights(fn) -> float:
    """A prepared model's cost: its float weights, a torch.ao int8 weight a quarter each."""
    if not isinstance(fn, torch.nn.Module):
        return 0.0
    total = 0.0
    for m in fn.modules():
        w = getattr(m, "weight", None)
        w = w() if callable(w) else w
        if isinstance(w, torch.Tensor):
            total += w.numel() * (0.25 if w.is_quantized else 1.0)
    return total


@pytest.fixture
def cost_model(monkeypatch):
    """Every prepared model remembered with its cost (computed from the model given to `prepare`); the ratio timer
    runs both callables on the example (so a broken runtime callable fails) and returns the ratio of costs."""
    costs: dict[int, float] = {}
    prepared: list[tuple[object, bool, str]] = []       # (callable, int8, its type), strong refs keep ids unique
    original = _auto_runtime.DeployTimer.prepare

    def prepare(self, model, int8):
        fn = original(self, model, int8)
        costs[id(fn)] = _weights(model) * (0.25 if int8 and not self.ao_int8 else 1.0)
        prepared.append((fn, int8, type(fn).__name__))
        return fn

    def latency_ratio(model, reference, example, passes=5, threads=1, repeats=20):
        with torch.inference_mode():
            assert model(example).shape == reference(example).shape == (1, 10)
        own, ref = costs[id(model)] / 1e5, costs[id(reference)] / 1e5
        return own / ref, own, ref

    monkeypatch.setattr(_auto_runtime.DeployTimer, "prepare", prepare)
    monkeypatch.setattr(_auto_runtime, "latency_ratio", latency_ratio)
    return prepared


def test_onnxruntime_structured_int8_meets_the_target_on_onnxruntime(tmp_path, cost_model):
    run, events = run_recipe(RECIPE.format(runtime="onnxruntime", target=0.2, methods="structured, int8"), tmp_path)
    assert_ok(events)
    snaps = run.report.data["snapshots"]
    claim = snaps[-1]["latency_ratio"]
    assert claim["runtime"] == "onnxruntime" and claim["int8"] == "onnx_int8"       # timed there, the int8 flavour
    assert {"value", "p10", "p90", "repeats"} <= set(claim) and claim["p10"] <= claim["value"] <= claim["p90"]
    assert claim["repeats"] >= 5
    result = json.loads((tmp_path / "run" / "auto.json").read_text())
    chosen = result["candidates"][result["chosen"]]
    assert result["int8"] is True and result["runtime"] == "onnxruntime"
    assert chosen["measured"] <= result["target_cost"] and chosen["meets_drop"]     # the cost model's, met
    assert chosen["drop"] <= 0.03 + 1e-9
    assert any(a["channels"] > 0 for a in result["allocation"].values())          # int8 alone (0.25) is not 0.2
    # the candidates were quantized by onnxruntime (closures over an ORT session), never torch.ao: the snapshot
    # stays a float model that exports as onnx_int8
    assert any(int8 and kind == "function" for _, int8, kind in cost_model)
    assert not any(".quantized" in type(m).__module__ for m in run.session.model.modules())
    assert all(kind == "function" for _, _, kind in cost_model)                   # nothing timed in eager
    logs = [e.text for e in events if isinstance(e, Log)]
    assert any("on onnxruntime" in t and "target: 0.20" in t for t in logs)
    line = next(t for t in logs if t.startswith("latency on onnxruntime: "))
    assert "p10-p90" in line and "alternating pairs" in line and "quantized by onnxruntime at export" in line
    assert "int8 (onnx_int8) alone: 0.25 of the latency" in "\n".join(logs)
    # the val accuracy decided on is the int8 file's: the chosen float model quantized again the same way and scored
    s = run.session
    fn = _auto_runtime.onnx_int8_session(s.model.cpu().eval(), s.example_input(1).cpu(), calibration_inputs(s.data))
    int8_val = Reference(s.model, s.data.val).score(_auto_runtime._Runs(fn))[1]
    assert chosen["val_accuracy"] == pytest.approx(int8_val, abs=1e-9)


def test_eager_keeps_torch_ao_int8(tmp_path, cost_model):
    run, events = run_recipe(RECIPE.format(runtime="eager", target=0.3, methods="structured, int8"), tmp_path)
    assert_ok(events)
    claim = run.report.data["snapshots"][-1]["latency_ratio"]
    assert claim["runtime"] == "eager" and claim["int8"] == "torch.ao int8_static"
    assert all(isinstance(fn, torch.nn.Module) for fn, _, _ in cost_model)       # eager: the modules themselves
    assert any(".quantized" in type(m).__module__ for m in run.session.model.modules())   # torch.ao int8 layers


def test_int8_on_a_runtime_without_a_flavour_is_refused_before_the_run(tmp_path):
    text = RECIPE.format(runtime="compile", target=0.5, methods="structured, int8")
    with pytest.raises(RecipeError) as exc:
        run_recipe(text, tmp_path)
    assert "stages[0].methods: int8 has no flavour on the runtime compile" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "run" / "report.json").exists()


def test_a_runtime_that_gives_other_outputs_fails_the_stage_before_anything_is_timed(tmp_path, monkeypatch):
    from workbench.core import runtimes
    from workbench.core.events import StageFailed
    timed = []
    monkeypatch.setattr(runtimes, "verify", lambda name, *a: f"{name}'s outputs differ from eager by 3 (tolerance 0.0001)")
    monkeypatch.setattr(_auto_runtime, "latency_ratio", lambda *a, **k: timed.append(a) or (1.0, 1.0, 1.0))
    run, events = run_recipe(RECIPE.format(runtime="onnxruntime", target=0.5, methods="structured"), tmp_path)
    failed = [e.message for e in events if isinstance(e, StageFailed)]
    assert len(failed) == 1 and "\n" not in failed[0].strip()
    assert failed[0].startswith("auto: onnxruntime's outputs differ from eager by 3")
    assert timed == [] and run.report.data["status"] == "failed"
    assert len(run.report.data["snapshots"]) == 1          # the baseline only: nothing unverified became a snapshot
