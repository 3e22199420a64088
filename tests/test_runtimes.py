"""Deploy runtimes (`runtime:`): each snapshot exported to the run's runtime, verified against eager, timed with spread;
a runtime missing here refused before anything runs (exit 2, naming the extra)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from workbench.cli import main
from workbench.core import runtimes
from workbench.core.command_run import run_args
from workbench.core.errors import BadInput, RecipeError
from workbench.core.events import Log, RunFinished
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run
from workbench.core.runtimes import base

FIGURE = {"median_ms", "p10_ms", "p90_ms", "repeats", "threads", "batch"}
RECIPE = ("model: sample:digits_mlp\ndata: sample:digits\nseed: 0\n{runtime}stages:\n"
          "  - {{kind: train, epochs: 1}}\n"
          "  - {{kind: quantize, method: int8_static}}\n")
BASELINE_ONLY = "model: sample:digits_mlp\ndata: sample:digits\n{runtime}stages: []\n"


def _figure_ok(fig: dict) -> None:
    assert FIGURE <= set(fig), fig
    assert 0 < fig["p10_ms"] <= fig["median_ms"] <= fig["p90_ms"]
    assert fig["repeats"] >= 5 and fig["threads"] == 1 and fig["batch"] == 1


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    out = tmp_path_factory.mktemp("runtimes") / "run"
    events = list(Run(Recipe.from_text(RECIPE.format(runtime="runtime: onnxruntime\n")), RunOptions(out_dir=out)).events())
    assert isinstance(events[-1], RunFinished) and events[-1].ok, events[-1]
    return out, events


def test_onnxruntime_run_measures_each_snapshot_on_it(onnx_run: tuple[Path, list]) -> None:
    out, events = onnx_run
    report = _report(out)
    assert report["runtime"] == "onnxruntime" and report["recipe"]["runtime"] == "onnxruntime"
    base_row, trained, int8 = report["snapshots"]
    for row in (base_row, trained):          # float snapshots: exported, verified and timed on onnxruntime
        _figure_ok(row["latency"]["eager"])
        _figure_ok(row["latency"]["onnxruntime"])
        assert row["latency_ms"] == row["latency"]["eager"]["median_ms"] and "latency_why" not in row
    # a torch.ao int8 snapshot does not export to ONNX: null, with the reason, in the row and the log
    _figure_ok(int8["latency"]["eager"])
    assert int8["latency"]["onnxruntime"] is None
    assert "torch.ao int8" in int8["latency_why"]["onnxruntime"]
    warnings = [e.text for e in events if isinstance(e, Log) and "no onnxruntime latency" in e.text]
    assert len(warnings) == 1 and warnings[0].startswith("snapshot 2:")


def test_cli_runtime_overrides_the_recipe_and_reaches_the_command_line(tmp_path: Path) -> None:
    recipe = Recipe.from_text(BASELINE_ONLY.format(runtime="runtime: onnxruntime\n"))
    assert recipe.runtime == "onnxruntime" and Recipe.from_dict(recipe.to_dict()).runtime == "onnxruntime"
    assert "runtime" not in Recipe.from_text(BASELINE_ONLY.format(runtime="")).to_dict()
    args = run_args("r.yaml", RunOptions(runtime="compile"))
    assert args[args.index("--runtime") + 1] == "compile"
    out = tmp_path / "run"
    events = list(Run(recipe, RunOptions(out_dir=out, runtime="eager")).events())
    assert events[-1].ok
    report = _report(out)
    assert report["runtime"] == "eager" and list(report["snapshots"][0]["latency"]) == ["eager"]


def _cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], recipe_text: str, *extra: str) -> tuple[int, str, Path]:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(recipe_text)
    out = tmp_path / "out"
    code = main(["run", str(recipe), "--out", str(out), "--quiet", *extra])
    return code, capsys.readouterr().err, out


def test_missing_openvino_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    real = base.importable
    monkeypatch.setattr(base, "importable", lambda m: m != "openvino" and real(m))
    code, err, out = _cli(tmp_path, capsys, BASELINE_ONLY.format(runtime=""), "--runtime", "openvino")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--runtime openvino" in err and "pip install 'workbench[openvino]'" in err and "Traceback" not in err
    assert not out.exists()                  # refused before the run folder was made


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: tensorrt is refused only for want of TensorRT")
def test_tensorrt_refused_without_a_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err, out = _cli(tmp_path, capsys, BASELINE_ONLY.format(runtime="runtime: tensorrt\n"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "runtime tensorrt" in err and "CUDA GPU" in err and not out.exists()
    stats, why = runtimes.measure_on("tensorrt", nn.Linear(4, 2), torch.zeros(1, 4))
    assert stats is None and why is not None and "CUDA GPU" in why


def test_unknown_runtime_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RecipeError, match=r"^runtime: unknown runtime 'fastest' \(known: eager, compile, onnxruntime"):
        Recipe.from_text(BASELINE_ONLY.format(runtime="runtime: fastest\n"))
    code, err, out = _cli(tmp_path, capsys, BASELINE_ONLY.format(runtime="runtime: [1, 2]\n"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "runtime: unknown runtime" in err and not out.exists()
    code, err, out = _cli(tmp_path, capsys, BASELINE_ONLY.format(runtime=""), "--runtime", "tflite")
    assert code == 2 and "--runtime: unknown runtime 'tflite'" in err and "openvino" in err and not out.exists()
    with pytest.raises(BadInput):
        runtimes.usable("nope")


def _mlp() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval(), torch.randn(1, 16)


def test_compile_gives_a_verified_latency() -> None:
    rt = runtimes.get("compile")
    if rt.missing():
        pytest.skip(f"compile cannot run here: {rt.missing()}")
    model, x = _mlp()
    calls: list[torch.Tensor] = []
    real_prepare = rt.prepare

    def spy(m: nn.Module, e: torch.Tensor) -> base.RuntimeFn:
        fn = real_prepare(m, e)
        return lambda t: calls.append(t) or fn(t)
    stats, why = runtimes.measure_on(dataclasses.replace(rt, prepare=spy), model, x, repeats=8)
    assert why is None and stats is not None, why
    _figure_ok(stats)
    assert len(calls) >= 1 + 5 + 8             # verified once, warmed up, then timed through the compiled callable


def test_outputs_that_differ_give_null_and_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = __import__("workbench.core.runtimes.onnxruntime", fromlist=["RUNTIME"])
    wrong = dataclasses.replace(module.RUNTIME, prepare=lambda m, e: (lambda x: m(x) + 0.5))
    monkeypatch.setattr(module, "RUNTIME", wrong)
    model, x = _mlp()
    assert runtimes.measure_on("onnxruntime", model, x) == \
        (None, "onnxruntime's outputs differ from eager by 0.5 (tolerance 0.0001 x max(1, max |output|))")
    shaped = dataclasses.replace(wrong, prepare=lambda m, e: (lambda t: m(t)[:, :2]))
    stats, why = runtimes.measure_on(shaped, model, x)
    assert stats is None and why == "onnxruntime gives outputs of shape [1, 2], the model [1, 4]"
    out = tmp_path / "run"
    events = list(Run(Recipe.from_text(BASELINE_ONLY.format(runtime="runtime: onnxruntime\n")),
                      RunOptions(out_dir=out)).events())
    row = _report(out)["snapshots"][0]
    assert events[-1].ok and row["latency"]["onnxruntime"] is None and "differ from eager" in row["latency_why"]["onnxruntime"]
    _figure_ok(row["latency"]["eager"])


def test_runtime_that_fails_to_export_gives_null_and_why() -> None:
    def broken(m: nn.Module, e: torch.Tensor) -> base.RuntimeFn:
        raise RuntimeError("no kernel for this op")
    rt = dataclasses.replace(runtimes.get("onnxruntime"), prepare=broken)
    model, x = _mlp()
    assert runtimes.measure_on(rt, model, x) == (None, "exporting to onnxruntime failed: RuntimeError: no kernel for this op")


def test_registry_names_extras_and_thread_policy() -> None:
    assert runtimes.names() == ["eager", "compile", "onnxruntime", "openvino", "tensorrt"]
    assert [runtimes.get(n).name for n in runtimes.names()] == runtimes.names()
    assert runtimes.get("openvino").install_hint() == "pip install 'workbench[openvino]'"
    assert runtimes.get("tensorrt").needs_gpu and runtimes.get("eager").missing() is None
    from workbench.core.latency import LATENCY_THREADS
    from workbench.core.runtimes.onnxruntime import session
    model, x = _mlp()
    with base.onnx_file(model, x) as path:
        sess = session(str(path))
    assert sess.get_session_options().intra_op_num_threads == LATENCY_THREADS
    assert sess.get_providers() == ["CPUExecutionProvider"]


def test_report_md_shows_the_runtime_next_to_eager(onnx_run: tuple[Path, list], tmp_path: Path) -> None:
    from workbench.reporting import build_report
    out, _ = onnx_run
    files = build_report([out], tmp_path / "r.html")
    lines = files.markdown.read_text(encoding="utf-8").splitlines()
    header = next(line for line in lines if "onnxruntime ms" in line)
    titles = [c.strip() for c in header.strip("|").split("|")]
    at = titles.index("p10-p90 ms")
    assert titles[at - 1:at + 3] == ["latency ms", "p10-p90 ms", "onnxruntime ms", "onnxruntime p10-p90 ms"]
    body = lines[lines.index(header) + 2:][:3]
    snapshots = _report(out)["snapshots"]
    for line, snap in zip(body, snapshots):
        cells = [c.strip() for c in line.strip("|").split("|")]
        fig = snap["latency"]["onnxruntime"]
        if fig is None:                                    # the int8 snapshot: n/a, never 0
            assert cells[at + 1:at + 3] == ["n/a", "n/a"]
        else:
            assert cells[at + 1] == f"{fig['median_ms']:.3f}"
            assert cells[at + 2].startswith(f"{fig['p10_ms']:.3f}-{fig['p90_ms']:.3f} ({fig['repeats']} runs)")


def test_report_tables_with_runtimes_and_hostile_values() -> None:
    from workbench.reporting.collect import RunData
    from workbench.reporting.tables import all_snapshots_table, snapshot_table
    fig = {"median_ms": 2.0, "p10_ms": 1.5, "p90_ms": 2.5, "repeats": 30, "threads": 1, "batch": 1}
    snap = {"index": 0, "stage": "baseline", "latency_ms": 3.0, "latency": {"eager": {**fig, "median_ms": 3.0},
                                                                            "openvino": fig}}
    ov = RunData(Path("a"), "a", "finished", {"runtime": "openvino", "snapshots": [snap]})
    eager = RunData(Path("b"), "b", "finished", {"snapshots": [snap]})
    table = snapshot_table(ov)
    row = dict(zip(table.headers, table.rows[0]))
    assert row["openvino ms"] == "2.000" and row["openvino p10-p90 ms"] == "1.500-2.500 (30 runs)"
    assert "openvino ms" not in snapshot_table(eager).headers
    both = all_snapshots_table([ov, eager])
    rows = [dict(zip(both.headers, r)) for r in both.rows]
    assert [(r["run"], r["runtime"], r["runtime ms"]) for r in rows] == [("a", "openvino", "2.000"), ("b", "eager", "n/a")]
    for hostile in ("<script>", 3, ["x"], "eager"):           # not a runtime: the table stays eager's
        run = RunData(Path("c"), "c", "finished", {"runtime": hostile, "snapshots": [snap]})
        assert snapshot_table(run).headers == snapshot_table(eager).headers
    odd = RunData(Path("d"), "d", "finished", {"runtime": "openvino", "snapshots": [{**snap, "latency": {"openvino": "x"}}]})
    assert dict(zip(snapshot_table(odd).headers, snapshot_table(odd).rows[0]))["openvino ms"] == "n/a"
