"""`workbench report`: one self-contained HTML file (plus report.md and snapshots.csv) from real run folders,
and `workbench run --tensorboard`."""
from __future__ import annotations

import base64
import csv
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
from cli_helpers import run_cli
from report_helpers import QUICK_RECIPE, STRUCTURED_RECIPE, external_references, number, parse, table_with
from waits import WAIT_MS

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None
SNAPSHOT_HEADERS = ["#", "stage", "val acc", "test acc", "params", "non-zero", "sparsity", "FLOPs", "compressed B", "format",
                    "ratio", "latency ms", "p10-p90 ms", "int8 agreement"]
KEYS = {"val acc": ("val_accuracy", 100), "test acc": ("accuracy", 100), "params": ("params", 1),
        "non-zero": ("nonzero_params", 1), "sparsity": ("sparsity", 100), "FLOPs": ("flops", 1),
        "compressed B": ("compressed_bytes", 1), "ratio": ("compression_ratio", 1), "latency ms": ("latency_ms", 1),
        "int8 agreement": ("agreement", 100)}


def _run(folder: Path, recipe: str, name: str, *extra: str) -> Path:
    (folder / f"{name}.yaml").write_text(recipe)
    proc = run_cli("run", str(folder / f"{name}.yaml"), "--out", str(folder / name), "--quiet", *extra)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return folder / name


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> Path:
    """train 1 epoch, prune (fine-tune 1 epoch), k-means, sensitivity, export packed + onnx; TensorBoard when installed."""
    folder = tmp_path_factory.mktemp("report")
    extra = ("--tensorboard", str(folder / "tb")) if HAS_TENSORBOARD else ()
    return _run(folder, QUICK_RECIPE, "quick", *extra)


@pytest.fixture(scope="module")
def quick_report(quick_run: Path):
    out = quick_run.parent / "out" / "report.html"
    out.parent.mkdir()
    proc = run_cli("report", str(quick_run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    return out, html, parse(html), json.loads((quick_run / "report.json").read_text())


def test_html_is_valid_and_balanced(quick_report):
    _, html, parser, _ = quick_report
    assert html.startswith("<!DOCTYPE html>")
    assert parser.errors == []
    assert parser.stack == [], f"unclosed: {parser.stack}"


def test_html_makes_no_external_request(quick_report):
    _, html, parser, _ = quick_report
    assert external_references(html, parser) == []
    assert parser.imgs, "no plot at all"
    for img in parser.imgs:
        src = img["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img.get("alt")


def test_every_plot_is_embedded(quick_report):
    _, _, parser, _ = quick_report
    expected = {"plot-curves", "plot-ratio_vs_accuracy", "plot-sparsity", "plot-sensitivity"}
    assert set(parser.figure_ids) == expected
    assert len(parser.imgs) == len(expected)


def _check_snapshot_rows(rows: list[dict[str, str]], snapshots: list[dict]) -> None:
    assert len(rows) == len(snapshots)
    for row, snap in zip(rows, snapshots):
        assert row["#"] == str(snap["index"]) and row["stage"] == snap["stage"]
        assert row["format"] == (snap.get("compressed_format") or "n/a")
        for header, (key, scale) in KEYS.items():
            value = snap.get(key)
            if value is None:                       # missing in older runs, or null: "n/a", never 0
                assert row[header] == "n/a", (header, row)
                continue
            shown, tolerance = number(row[header])
            assert abs(shown - value * scale) <= tolerance, (header, row[header], value)


def test_snapshot_table_equals_report_json(quick_report):
    _, _, parser, report = quick_report
    assert len(report["snapshots"]) == 4
    _check_snapshot_rows(table_with(parser, SNAPSHOT_HEADERS), report["snapshots"])


def test_sections_status_recipe_environment_exports(quick_report):
    _, html, parser, report = quick_report
    for heading in ("Snapshots", "Training curves", "Compression ratio vs accuracy", "Sensitivity analysis", "Exports",
                    "Environment", "Recipe"):
        assert heading in parser.headings, heading
    assert any(h.startswith("Per layer: snapshot 3 (quantize)") for h in parser.headings)
    assert "Status: finished" in parser.paragraphs
    recipe = parser.pre[0]
    assert "kind: quantize" in recipe and "formats:" in recipe and "- onnx" in recipe
    env = {r[""]: r["value"] for r in table_with(parser, ["", "value"])}
    for key, title in (("torch", "torch"), ("workbench", "workbench"), ("device", "device"), ("cpu", "CPU"),
                       ("threads", "threads"), ("world_size", "world size")):
        assert env[title] == str(report["environment"][key])
    assert env["GPU"] == "n/a"
    exports = table_with(parser, ["format", "path", "bytes", "verified"])
    assert [e["format"] for e in exports] == ["packed", "onnx"]
    for row, e in zip(exports, report["exports"]):
        assert row["bytes"] == f"{e['bytes']:,}" and row["verified"] == "yes" and row["check"] == e["check"]
    layers = table_with(parser, ["layer", "params", "non-zero", "sparsity"])
    assert [r["layer"] for r in layers] == ["fc1", "fc2", "fc3"]
    sens = table_with(parser, ["layer", "50.0% removed", "90.0% removed"])
    assert len(sens) == 3


def test_markdown_and_csv_agree_with_report_json(quick_report):
    out, _, _, report = quick_report
    md = out.with_suffix(".md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)
    assert len(images) == 4
    for name in images:
        assert "/" not in name and (out.parent / name).read_bytes()[:4] == b"\x89PNG"
    header = "| " + " | ".join(SNAPSHOT_HEADERS) + " |"
    lines = md.splitlines()
    start = lines.index(header) + 2
    md_rows = [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[start:start + len(report["snapshots"])]]
    _check_snapshot_rows([dict(zip(SNAPSHOT_HEADERS, r)) for r in md_rows], report["snapshots"])
    assert "```yaml" in md and "kind: sensitivity" in md
    with open(out.parent / "snapshots.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(report["snapshots"])
    for row, snap in zip(rows, report["snapshots"]):
        assert row["run"] == "quick" and row["stage"] == snap["stage"]
        for key in ("index", "accuracy", "params", "nonzero_params", "sparsity", "flops", "compressed_bytes",
                    "compression_ratio", "latency_ms", "val_accuracy"):
            value = snap.get(key)
            assert (row[key] == "") if value is None else float(row[key]) == value, (key, row[key], value)


@pytest.fixture(scope="module")
def structured_run(quick_run: Path) -> Path:
    return _run(quick_run.parent, STRUCTURED_RECIPE, "structured")


def test_two_runs_give_one_report_comparing_them(quick_run, structured_run, tmp_path):
    out = tmp_path / "both.html"
    proc = run_cli("report", str(quick_run), str(structured_run), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text(encoding="utf-8")
    parser = parse(html)
    assert parser.errors == [] and parser.stack == []
    assert external_references(html, parser) == []
    assert {"Comparison", "Run 1: quick", "Run 2: structured"} <= set(parser.headings)
    summary = table_with(parser, ["run", "status", "model", "data"])
    assert [r["run"] for r in summary] == ["quick", "structured"] and {r["status"] for r in summary} == {"finished"}
    assert {"plot-compare-curves", "plot-compare-ratio_vs_accuracy", "plot-run1-curves", "plot-run2-curves",
            "plot-run2-channels", "plot-run1-sensitivity"} <= set(parser.figure_ids)
    assert len(parser.imgs) == len(parser.figure_ids)
    every = table_with(parser, ["run", *SNAPSHOT_HEADERS])
    for name, folder in (("quick", quick_run), ("structured", structured_run)):
        snaps = json.loads((folder / "report.json").read_text())["snapshots"]
        _check_snapshot_rows([{k: v for k, v in r.items() if k != "run"} for r in every if r["run"] == name], snaps)
    changed = table_with(parser, ["layer", "shape before", "shape after", "channels before", "channels after"])
    fc1 = next(r for r in changed if r["layer"] == "fc1")
    assert int(fc1["channels after"].replace(",", "")) < int(fc1["channels before"].replace(",", "")) == 300
    with open(tmp_path / "snapshots.csv", newline="", encoding="utf-8") as fh:
        runs = [r["run"] for r in csv.DictReader(fh)]
    assert runs.count("quick") == 4 and runs.count("structured") == 2


def _one_line_error(proc, *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_input_exits_2_with_one_line(quick_run, tmp_path):
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    _one_line_error(run_cli("report", str(empty), "--out", str(tmp_path / "r.html")), "not a run folder")
    broken = tmp_path / "broken"
    shutil.copytree(quick_run, broken, ignore=shutil.ignore_patterns("snapshots", "exports"))
    (broken / "report.json").write_text("{not json")
    _one_line_error(run_cli("report", str(broken), "--out", str(tmp_path / "r.html")), "unreadable report.json")
    _one_line_error(run_cli("report", str(quick_run), "--out", str(tmp_path / "missing" / "r.html")), "does not exist")
    assert not list(tmp_path.glob("r.*"))


def test_old_runs_without_val_accuracy_and_with_nulls_show_na(quick_run, tmp_path):
    from workbench.reporting import build_report
    old = tmp_path / "old $a_b$ <i>"                    # text from files: escaped in HTML, not maths in matplotlib
    shutil.copytree(quick_run, old)
    report = json.loads((old / "report.json").read_text())
    report["snapshots"][2]["stage"] = "<script>alert(1)</script> $\\frac{"
    for snap in report["snapshots"]:
        snap.pop("val_accuracy", None)
        snap["flops"] = None
    report["snapshots"][1]["latency_ms"] = None
    report.pop("environment")
    (old / "report.json").write_text(json.dumps(report))
    (old / "auto.json").write_text(json.dumps({"target": {"ratio": 40}, "allocation": {"fc1": {"sparsity": 0.9, "bits": 5}},
                                               "candidates": [{"ratio": 12.5, "accuracy": 0.97}, "odd entry"]}))
    files = build_report([old], tmp_path / "old.html")
    html = files.html.read_text(encoding="utf-8")
    parser = parse(html)
    assert parser.errors == [] and parser.stack == [] and external_references(html, parser) == []
    assert "Run: old $a_b$ <i>" in parser.headings
    rows = table_with(parser, SNAPSHOT_HEADERS)
    assert {r["FLOPs"] for r in rows} == {"n/a"} and rows[1]["latency ms"] == "n/a" and rows[0]["val acc"] == "n/a"
    _check_snapshot_rows(rows, report["snapshots"])
    assert "Automatic compression" in parser.headings
    assert table_with(parser, ["name", "sparsity", "bits"])[0]["name"] == "fc1"


def test_tensorboard(quick_run, tmp_path):
    if not HAS_TENSORBOARD:
        proc = run_cli("run", str(quick_run.parent / "quick.yaml"), "--out", str(tmp_path / "x"), "--tensorboard", str(tmp_path / "tb"))
        _one_line_error(proc, "pip install 'workbench[tensorboard]'")
        return
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(quick_run.parent / "tb"), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    points = [json.loads(line) for line in (quick_run / "metrics.jsonl").read_text().splitlines()]
    names = {f"{p['series']}/{p['name']}" for p in points}
    assert names | {"snapshot/accuracy", "snapshot/compression_ratio"} <= set(tags["scalars"])
    assert {"train/loss", "finetune/accuracy", "prune/sparsity"} <= names
    for name in names:
        assert len(acc.Scalars(name)) == sum(1 for p in points if f"{p['series']}/{p['name']}" == name)
    train_end = max(e.step for e in acc.Scalars("train/loss"))
    assert min(e.step for e in acc.Scalars("finetune/loss")) > train_end     # one continuous axis across stages
    assert len(acc.Histograms("sparsity/layers")) == 4
    assert "snapshots/text_summary" in tags["tensors"]


def test_tensorboard_missing_is_bad_input(monkeypatch, tmp_path, capsys):
    """Without the tensorboard package: exit 2, one line saying what to install, before anything runs."""
    from workbench import cli
    recipe = tmp_path / "r.yaml"
    recipe.write_text(QUICK_RECIPE)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)    # makes the import fail as if not installed
    code = cli.main(["run", str(recipe), "--out", str(tmp_path / "out"), "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install 'workbench[tensorboard]'" in err[0]
    assert not (tmp_path / "out").exists()


def test_gui_file_export_report(quick_run, tmp_path, monkeypatch, qtbot):
    """File ▸ Export report… writes the report of the latest run when no run is selected, then of the selected one."""
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QFileDialog
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    make_app()
    runs = tmp_path / "runs"
    shutil.copytree(quick_run, runs / "quick", ignore=shutil.ignore_patterns("exports"))
    w = MainWindow(model="sample:digits_mlp", data="sample:digits", runs_dir=str(runs))
    qtbot.addWidget(w)
    shown: list = []
    monkeypatch.setattr(w, "show_error", lambda *args: shown.append(args))     # no modal box in a test
    assert w.acts["export_report"] in w.menus["file"].actions()
    qtbot.waitUntil(lambda: not w.runs.loading(), timeout=WAIT_MS)     # the runs folder is read off the GUI thread
    assert w.report_runs() == [str((runs / "quick").resolve())]
    out = tmp_path / "gui" / "report.html"
    out.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(out), "HTML report (*.html)"))
    w.acts["export_report"].trigger()
    qtbot.waitUntil(lambda: (tmp_path / "gui" / "snapshots.csv").exists() and "Wrote" in w.statusBar().currentMessage(),
                    timeout=WAIT_MS)
    assert shown == [] and "Run: quick" in parse(out.read_text(encoding="utf-8")).headings
    w.runs.tree.clearSelection()
    w.runs.runs[str((runs / "quick").resolve())].child(2).setSelected(True)     # a snapshot row selects its run
    assert w.report_runs() == [str((runs / "quick").resolve())]
