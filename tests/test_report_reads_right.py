"""Reports that read right: the exported files' own test accuracy in report.json, the HTML and the Markdown;
report.md's tables parse as tables (markdown-it); the accuracy plot's title names the split it plots."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from markdown_it import MarkdownIt
from prune_helpers import assert_ok, run_recipe
from report_helpers import parse, table_with

from workbench.core.export import onnx as onnx_format
from workbench.core.export.accuracy import logits_of as _logits
from workbench.reporting import build_report, plots

FORMATS = ["onnx", "onnx_int8", "safetensors", "state_dict", "pt2", "torchscript", "packed"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """train 1 epoch, evaluate on test, export every runnable format; onnx's runner records what it is given."""
    tmp = tmp_path_factory.mktemp("exports")
    fed: list[int] = []
    original = onnx_format.FORMAT.read

    def read(path, record):
        run = original(path, record)
        return lambda x: (fed.append(len(x)), run(x))[1]
    mp = pytest.MonkeyPatch()
    mp.setattr(onnx_format.FORMAT, "read", read)
    try:
        run, events = run_recipe(f"""
model: sample:digits_mlp
data: {{spec: sample:digits, eval_batch_size: 50}}
stages:
  - {{kind: train, epochs: 1}}
  - {{kind: evaluate, split: test}}
  - {{kind: export, formats: [{', '.join(FORMATS)}]}}
""", tmp)
    finally:
        mp.undo()
    assert_ok(events)
    return tmp / "run", run, fed


def test_every_export_carries_its_files_test_accuracy(exported):
    folder, run, fed = exported
    report = json.loads((folder / "report.json").read_text())
    model = report["snapshots"][-1]["accuracy"]
    exports = {e["format"]: e for e in report["exports"]}
    assert set(exports) == set(FORMATS)
    for name in ("safetensors", "state_dict", "packed", "torchscript", "pt2"):      # the same model, bit for bit
        assert exports[name]["accuracy"] == pytest.approx(model, abs=1e-12), name
    assert abs(exports["onnx"]["accuracy"] - model) <= 1 / report["splits"]["test"]
    assert 0.5 < exports["onnx_int8"]["accuracy"] <= 1.0
    # the onnx accuracy ran through onnxruntime on the whole test split, batch by batch (after verification)
    test = report["splits"]["test"]
    batches = [50] * (test // 50) + ([test % 50] if test % 50 else [])
    assert fed[len(fed) - len(batches):] == batches


def test_a_fixed_batch_program_gets_batches_of_its_size():
    calls = []

    def program(x):
        calls.append(len(x))
        return (x.sum(1, keepdim=True).repeat(1, 3), "aux")
    x = torch.arange(13 * 4, dtype=torch.float32).reshape(13, 4)
    out = _logits(program, 8)(x)
    assert calls == [8, 8] and out.shape == (13, 3) and torch.equal(out[:, 0], x.sum(1))


@pytest.fixture(scope="module")
def report(exported, tmp_path_factory):
    folder, _, _ = exported
    out = tmp_path_factory.mktemp("report") / "report.html"
    titles: list[str] = []
    mp = pytest.MonkeyPatch()
    style = plots._style
    mp.setattr(plots, "_style", lambda ax, title, *a: (titles.append(title), style(ax, title, *a))[1])
    try:
        files = build_report([folder], out)
    finally:
        mp.undo()
    return files, titles


def test_markdown_tables_parse_as_tables(report, exported):
    files, _ = report
    text = Path(files.markdown).read_text(encoding="utf-8")
    delimiters = [line for line in text.splitlines() if re.fullmatch(r"\|( :?---:? \|)+", line)]
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    opened = [t for t in tokens if t.type == "table_open"]
    assert len(opened) == len(delimiters) >= 3                 # summary, snapshots, exports, environment ...
    cells = [t.content for t in tokens if t.type == "inline"]
    assert "test acc (file)" in cells


def test_html_export_table_shows_the_files_accuracy(report, exported):
    files, _ = report
    folder, _, _ = exported
    parser = parse(Path(files.html).read_text(encoding="utf-8"))
    table = table_with(parser, ["format", "path", "bytes"])
    exports = json.loads((folder / "report.json").read_text())["exports"]
    shown = {row["format"]: row["test acc (file)"] for row in table}
    assert shown["onnx_int8"] == f"{exports[1]['accuracy'] * 100:.2f}%" and len(shown) == len(FORMATS)


def test_the_accuracy_plot_names_the_split_it_plots(report):
    _, titles = report
    assert "Accuracy (val and test splits, as labelled)" in titles      # fine-tuning on val, evaluate on test
    assert not any(t == "Accuracy (test split)" for t in titles)
    assert plots.accuracy_title({plots.accuracy_split("finetune/accuracy")}) == "Accuracy (val split)"
    assert plots.accuracy_split("eval/test_accuracy") == "test" and plots.accuracy_split("prune/accuracy") == "val"
