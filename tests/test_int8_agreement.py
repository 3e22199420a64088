"""Int8 that is right or refused: agreement with the float model on val, min_agreement, per-layer fallback."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from quant_helpers import make_session, run_stage

from workbench.commands.run import snapshot_line
from workbench.core.errors import CheckpointError
from workbench.core.events import RunFinished, StageFailed
from workbench.core.quantization import agreement, int8
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run

RECIPE = ("model: sample:digits_mlp\ndata: sample:digits\nstages:\n"
          "  - {{kind: quantize, method: int8_static{extra}}}\n")


def _run(tmp_path: Path, extra: str = "") -> tuple[list, dict]:
    recipe = Recipe.from_text(RECIPE.format(extra=extra))
    events = list(Run(recipe, RunOptions(out_dir=tmp_path / "run")).events())
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    return events, report


def test_int8_static_agreement_and_latency_in_report(tmp_path: Path) -> None:
    events, report = _run(tmp_path)
    assert isinstance(events[-1], RunFinished) and events[-1].ok
    base, q = report["snapshots"][0], report["snapshots"][-1]
    assert "agreement" not in base
    assert 0.95 <= q["agreement"] <= 1.0
    for row in (base, q):
        lat = row["latency"]["eager"]
        assert lat["p10_ms"] <= lat["median_ms"] <= lat["p90_ms"] and lat["repeats"] >= 5
        assert lat["threads"] == 1 and lat["batch"] == 1
        assert row["latency_ms"] == lat["median_ms"]
    assert f"agreement {q['agreement']:.3f}" in snapshot_line(q)


def _strict_agreement(monkeypatch: pytest.MonkeyPatch, reachable_with: int) -> None:
    """Agreement as measured, but only 0.5 while fewer than `reachable_with` Linear layers stay float: the sample
    model converts perfectly, so this makes a conversion that a min_agreement cannot accept."""
    real = agreement.agreement

    def strict(a: torch.nn.Module, b: torch.nn.Module, batches, limit: int = 8) -> float:
        floats = sum(isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear for m in b.modules())
        return real(a, b, batches, limit) if floats >= reachable_with else 0.5
    monkeypatch.setattr(agreement, "agreement", strict)


def test_min_agreement_out_of_reach_fails_naming_a_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _strict_agreement(monkeypatch, 99)
    events, report = _run(tmp_path, ", min_agreement: 0.95")
    failed = [e for e in events if isinstance(e, StageFailed)]
    assert failed and not events[-1].ok
    msg = failed[0].message
    assert "top-1 agreement with the float model on val is 0.500, below min_agreement 0.95" in msg
    linears = [n for n, m in _float_mlp().named_modules() if isinstance(m, torch.nn.Linear)]
    assert "layers to blame: " in msg and any(f"{n} (adds" in msg for n in linears)
    assert len(report["snapshots"]) == 1          # no int8 snapshot was kept


def test_min_agreement_zero_disables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _strict_agreement(monkeypatch, 99)
    events, report = _run(tmp_path, ", min_agreement: 0")
    assert events[-1].ok and report["snapshots"][-1]["agreement"] == 0.5


def _float_mlp() -> torch.nn.Module:
    from workbench.core.data import load_data
    return make_session(load_data("sample:digits")).model


def test_fallback_keeps_layers_float_and_reloads(digits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _strict_agreement(monkeypatch, 1)
    session = make_session(digits, out_dir=tmp_path)
    source = session.model
    events = run_stage(session, "quantize", method="int8_static", min_agreement=0.95, fallback=True)
    note = session.history[-1]
    kept = note["float_layers"]
    assert len(kept) == 1 and note["agreement"] >= 0.95
    logs = " ".join(getattr(e, "text", "") for e in events)
    assert f"keeping {kept[0]} in float" in logs and "kept in float to reach agreement" in logs
    assert _is_float(dict(session.model.named_modules())[kept[0]])
    transform = session.record["transforms"][-1]
    assert transform["float_layers"] == kept
    replayed = int8._replay_static(copy.deepcopy(source), transform)
    assert _is_float(dict(replayed.named_modules())[kept[0]])
    assert not _is_float(dict(replayed.named_modules())[[n for n in _linears() if n != kept[0]][0]])


def _is_float(module: torch.nn.Module) -> bool:
    """A float Linear (alone or fused with its ReLU), not an int8 one."""
    return any(type(c) is torch.nn.Linear for c in module.modules())


def _linears() -> list[str]:
    return [n for n, m in _float_mlp().named_modules() if isinstance(m, torch.nn.Linear)]


def test_layer_errors_and_blame(digits) -> None:
    session = make_session(digits)
    model = session.model
    prepared = int8.prepare_static(model, session.example_input(1).cpu())
    list(int8.calibrate(prepared, digits.calib, 2))
    q = int8.convert(prepared)
    errors = agreement.layer_errors(model, q, digits.val)
    linears = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert list(errors) == [n for n in linears if n in errors] and errors
    assert all(0 <= e < 1 for e in errors.values())
    assert agreement.blame({"a": 0.1, "b": 0.12, "c": 0.5}) == [("c", pytest.approx(0.38)), ("a", 0.1),
                                                                   ("b", pytest.approx(0.02))]
    assert agreement.agreement(model, model, digits.val) == 1.0


def test_hostile_float_layers_refused() -> None:
    for bad in (5, "fc1", [1], [""], ["x" * 2000]):
        with pytest.raises(CheckpointError, match="float_layers"):
            int8._float_layers({"op": "int8_static", "float_layers": bad})
