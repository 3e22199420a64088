"""Hostile run folders and output folders: `workbench runs` and `workbench report` read only regular files, bounded
(a FIFO, a /dev/zero link, 100k-deep JSON, a huge metrics.jsonl, NaN, a report.json linked outside: each run skipped
with one line, never a hang or a traceback); a run never writes through a link planted in --out; export names are
plain names; report.md and snapshots.csv carry no live HTML or spreadsheet formula."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run_cli
from prune_helpers import assert_ok, run_recipe

from workbench.core import io, limits
from workbench.core.errors import BadInput, RecipeError, UnreadableFile
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run

RECIPE = """model: sample:digits_mlp
data: sample:digits
stages:
  - kind: train
    epochs: 1
"""
EXPORT_RECIPE = "model: sample:digits_mlp\ndata: sample:digits\nstages:\n  - kind: export\n    formats: [safetensors]\n"
DEEP = "[" * 100_000 + "]" * 100_000


def cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    """`workbench ARGS` in a process of its own; a hang fails the test at `timeout` instead of blocking the suite."""
    return run_cli(*args, timeout=timeout)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    run, events = run_recipe(RECIPE, tmp_path_factory.mktemp("good"))
    assert_ok(events)
    assert (run.out_dir / "metrics.jsonl").stat().st_size > 0
    return run.out_dir


def _copy(good: Path, folder: Path) -> Path:
    shutil.copytree(good, folder)
    return folder


def _hostile(good: Path, root: Path, outside: Path) -> dict[str, str]:
    """Run folders under `root` whose report.json is hostile -> the words `runs` must give as the reason."""
    cases = {"fifo": "FIFO", "devzero": "symbolic link", "deep": "nested more than", "nan": "NaN",
             "outside": "symbolic link", "loop": "symbolic link", "huge": "at most", "folder": "a folder",
             "latin1": "not UTF-8"}
    for name in cases:
        folder = _copy(good, root / name)
        (folder / "report.json").unlink()
    os.mkfifo(root / "fifo" / "report.json")
    os.symlink("/dev/zero", root / "devzero" / "report.json")
    (root / "deep" / "report.json").write_text(DEEP)
    (root / "nan" / "report.json").write_text('{"status": "finished", "snapshots": [], "model": NaN}')
    (outside / "report.json").write_text(json.dumps({"status": "finished", "model": "SECRET-OUTSIDE"}))
    os.symlink(outside / "report.json", root / "outside" / "report.json")
    os.symlink("report.json", root / "loop" / "report.json")
    with open(root / "huge" / "report.json", "wb") as fh:         # sparse: over the bound without writing it
        fh.truncate(limits.MAX_REPORT_BYTES + 1)
    (root / "folder" / "report.json").mkdir()
    (root / "latin1" / "report.json").write_bytes(b'{"model": "caf\xe9"}')
    return cases


def test_runs_lists_readable_runs_and_one_line_per_unreadable_one(good_run, tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _copy(good_run, root / "good")
    cases = _hostile(good_run, root, outside)
    weird = _copy(good_run, root / ("\x1b[31mred\x1b[0m " + "x" * 200))      # ANSI escapes and a long name
    report = json.loads((weird / "report.json").read_text())
    report["model"] = "\x1b]0;pwned\x07\x00" + "m" * 100_000
    report["message"] = "line one\nline two\r\x1b[2J"
    report["status"] = "failed"
    report["snapshots"][0]["accuracy"] = "=1+1"            # not a number: shown as n/a, never formatted
    report["snapshots"][0]["params"] = 10 ** 400
    (weird / "report.json").write_text(json.dumps(report))
    proc = cli("runs", str(root))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and proc.stderr == ""
    assert "\x1b" not in proc.stdout and "\x00" not in proc.stdout and "\r" not in proc.stdout
    assert "SECRET-OUTSIDE" not in proc.stdout                  # the link was not followed
    lines = proc.stdout.splitlines()
    assert max(len(line) for line in lines) < 1000
    assert any(line.startswith("good  [finished]  model sample:digits_mlp") for line in lines)
    for name, words in cases.items():
        mine = [line for line in lines if line.startswith(f"{name}  ")]
        assert len(mine) == 1 and "[skipped]  unreadable report.json (" in mine[0] and words in mine[0], (name, mine)
    head = next(line for line in lines if "red" in line and "[failed]" in line)
    assert "\\x1b[31mred" in head and "mmm..." in head
    listed = json.loads(cli("runs", str(root), "--json").stdout)
    by_name = {Path(r["path"]).name: r for r in listed}
    assert by_name["good"]["status"] == "finished" and by_name["good"]["error"] is None
    assert all(by_name[name]["status"] == "unknown" and by_name[name]["error"] for name in cases)


def test_report_skips_unreadable_runs_with_one_line_each(good_run, tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    good = _copy(good_run, root / "good")
    cases = _hostile(good_run, root, outside)
    bad_metrics = {"metrics-fifo": "FIFO", "metrics-huge": "at most", "metrics-link": "symbolic link"}
    for name in bad_metrics:
        (_copy(good_run, root / name) / "metrics.jsonl").unlink()
    os.mkfifo(root / "metrics-fifo" / "metrics.jsonl")
    with open(root / "metrics-huge" / "metrics.jsonl", "wb") as fh:
        fh.truncate(limits.MAX_METRICS_BYTES + 1)
    (outside / "metrics.jsonl").write_text("")
    os.symlink(outside / "metrics.jsonl", root / "metrics-link" / "metrics.jsonl")
    names = [*cases, *bad_metrics]
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    proc = cli("report", str(good), *(str(root / n) for n in names), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    skipped = proc.stderr.strip().splitlines()
    assert len(skipped) == len(names) and all(line.startswith("workbench: skipped ") for line in skipped)
    for name, words in {**cases, **bad_metrics}.items():
        assert sum(f"/{name}: " in line and words in line for line in skipped) == 1, (name, skipped)
    html = out.read_text(encoding="utf-8")
    assert "Run: good" in html and "SECRET-OUTSIDE" not in html
    # the only folder named is bad: exit 2, one line naming it
    proc = cli("report", str(root / "fifo"), "--out", str(tmp_path / "one.html"))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "fifo: unreadable report.json" in lines[0], proc.stderr
    assert not (tmp_path / "one.html").exists()


def test_a_metrics_file_over_the_line_bound_skips_its_run(good_run, tmp_path, monkeypatch):
    from workbench.core import run_folder
    from workbench.reporting import build_report
    long = _copy(good_run, tmp_path / "long")
    with open(long / "metrics.jsonl", "a") as fh:
        fh.writelines('{"stage": 1, "label": "x", "series": "s", "name": "n", "step": 1, "value": 0.5}\n'
                      for _ in range(500))
    monkeypatch.setattr(run_folder, "MAX_METRICS_LINES", 400)     # 500k lines, scaled down
    files = build_report([good_run, long], tmp_path / "r.html")
    assert len(files.skipped) == 1 and "long: unreadable metrics.jsonl" in files.skipped[0]
    assert "lines; at most 400 are read" in files.skipped[0]
    with pytest.raises(BadInput, match="unreadable metrics.jsonl"):
        build_report([long], tmp_path / "r2.html")


def test_bounded_json_reader(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(UnreadableFile, match="nested more than 100 levels"):
        io.read_json(deep, max_bytes=1 << 20)
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"a": ["[[[[{{{" * 50, {"b": "\\\"]]]"}], "n": -0.5}))    # brackets in strings: fine
    assert io.read_json(ok, max_bytes=1 << 20)["n"] == -0.5
    ok.write_text('{"x": [1e999]}')
    with pytest.raises(UnreadableFile, match="finite"):
        io.read_json(ok, max_bytes=1 << 20)
    ok.write_text('{"x": NaN}')
    assert io.read_json(ok, max_bytes=1 << 20, allow_nan=True)["x"] != 0
    with pytest.raises(UnreadableFile, match="NaN is not a number"):
        io.read_json(ok, max_bytes=1 << 20)
    os.symlink("/dev/zero", tmp_path / "zero")
    with pytest.raises(UnreadableFile, match="a character device"):
        io.read_json(tmp_path / "zero", max_bytes=1 << 20, follow_links=True)
    os.symlink("loop", tmp_path / "loop")
    with pytest.raises(UnreadableFile, match="loop of symbolic links"):
        io.read_json(tmp_path / "loop", max_bytes=1 << 20, follow_links=True)
    with pytest.raises(UnreadableFile) as missing:
        io.read_json(tmp_path / "none.json", max_bytes=10)
    assert missing.value.missing and str(tmp_path / "none.json") in str(missing.value)
    lines = tmp_path / "m.jsonl"
    lines.write_text('{"a": 1}\n{"a": 2, "cut": [\n' + "[" * 500 + "]" * 500 + '\n{"a": NaN}\n{"a": 3}\n')
    assert io.read_jsonl(lines, max_bytes=1 << 20, max_lines=10) == [{"a": 1}, {"a": 3}]


# --- writes stay inside --out -------------------------------------------------------------------------------
def _plant(out: Path, outside: Path, name: str) -> Path:
    """`out/name` -> a file or folder outside holding known content; returns what it points to."""
    out.mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    target = outside / name
    if name in ("exports", "snapshots"):
        target.mkdir(parents=True)
        (target / "keep.txt").write_text("original")
    else:
        target.write_text("original")
    os.symlink(target, out / name)
    return target


def _unchanged(outside: Path) -> dict[str, str]:
    return {str(p.relative_to(outside)): p.read_text() for p in sorted(outside.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["exports", "snapshots", "metrics.jsonl", "report.json", "events.jsonl"])
def test_a_run_never_writes_through_a_link_planted_in_out(tmp_path, name):
    out, outside = tmp_path / "out", tmp_path / "outside"
    _plant(out, outside, name)
    before = _unchanged(outside)
    with pytest.raises(BadInput, match=f"{name}.* symbolic link"):
        list(Run(Recipe.from_text(EXPORT_RECIPE.replace("export\n", "train\n    epochs: 1\n  - kind: export\n")), RunOptions(out_dir=out)).events())
    assert _unchanged(outside) == before


def test_run_cli_refuses_planted_links_with_exit_2(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    _plant(out, outside, "exports")
    _plant(out, outside, "events.jsonl")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(EXPORT_RECIPE)
    proc = cli("run", str(recipe), "--out", str(out), "--quiet")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "exports" in proc.stderr, proc.stderr
    os.unlink(out / "exports")
    proc = cli("run", str(recipe), "--out", str(out), "--quiet", "--events", str(out / "events.jsonl"))
    assert proc.returncode == 2 and "events.jsonl" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert _unchanged(outside) == {"events.jsonl": "original", "exports/keep.txt": "original"}


def test_atomic_writes_replace_links_and_refuse_linked_folders(tmp_path):
    root, outside = tmp_path / "run", tmp_path / "outside"
    (root / "snapshots").mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_text("original")
    os.symlink(outside, root / "snapshots" / "00-baseline")      # a link as the final name: replaced, not followed
    with io.atomic_dir(root / "snapshots" / "00-baseline", root=root) as tmp:
        (tmp / "snapshot.json").write_text("{}")
    assert not (root / "snapshots" / "00-baseline").is_symlink() and (outside / "victim").read_text() == "original"
    os.symlink(outside, root / "linked")
    with pytest.raises(BadInput, match="linked: a symbolic link inside the run folder"):
        io.atomic_write_text(root / "linked" / "a.txt", "x", root=root)
    os.symlink(outside / "victim", root / "metrics.jsonl")
    with pytest.raises(UnreadableFile, match="symbolic link"):
        io.append_file(root / "metrics.jsonl")
    os.mkfifo(root / "fifo")
    with pytest.raises(UnreadableFile, match="FIFO"):
        io.append_file(root / "fifo")                    # refused at once, not blocked waiting for a reader
    assert sorted(p.name for p in outside.iterdir()) == ["victim"] and (outside / "victim").read_text() == "original"


@pytest.mark.parametrize("field", ["dir", "name"])
@pytest.mark.parametrize("value", ['"a\\nb"', ".hidden", "report.json", "snapshots", '"..\\\\..\\\\x"', "metrics.jsonl",
                                   '"a\\tb"', "' x'", '"\\u202eexe"', "x" * 200])
def test_export_names_are_plain_names(field, value, tmp_path):
    with pytest.raises(RecipeError, match=rf"stages\[0\]\.{field}: must"):
        list(Run(Recipe.from_text(f"{EXPORT_RECIPE}    {field}: {value}\n"), RunOptions(out_dir=tmp_path / "run")).events())
    assert not (tmp_path / "run").exists()


# --- reports are inert ---------------------------------------------------------------------------------------
def test_markdown_and_csv_carry_no_live_html_or_formula(good_run, tmp_path):
    from workbench.reporting import build_report
    run = _copy(good_run, tmp_path / "evil <img src=x onerror=alert(1)>")
    report = json.loads((run / "report.json").read_text())
    report["model"] = "<script>alert('model')</script> ![x](http://example.invalid/t.png)"
    report["recipe"]["stages"][0]["label"] = "<script>alert('label')</script>"
    report["snapshots"][0]["stage"] = "=HYPERLINK(\"http://example.invalid\")"
    report["snapshots"][0]["accuracy"] = -0.5
    report["snapshots"][0]["path"] = "@SUM(A1)"
    report["snapshots"][1]["stage"] = "a|b"                          # a pipe must not split the table's row
    (run / "report.json").write_text(json.dumps(report))
    files = build_report([run], tmp_path / "r.html")
    md = files.markdown.read_text(encoding="utf-8")
    assert "<script" not in md.lower() and "&lt;script&gt;alert('model')&lt;/script&gt;" in md
    assert "<img" not in md and "# Workbench report: evil &lt;img src=x onerror=alert(1)&gt;" in md
    assert "&lt;script&gt;alert('label')" in md                      # the recipe's code block too
    assert "![x](http" not in md and "!\\[x\\](http" in md                  # shown, not fetched
    row = next(line for line in md.splitlines() if "a\\|b" in line)
    header = next(line for line in md.splitlines() if line.startswith("| #") or line.startswith("| index"))
    assert len(row.replace("\\|", "").split("|")) == len(header.split("|"))      # as many cells as the header
    with open(files.csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["stage"] == "'=HYPERLINK(\"http://example.invalid\")" and rows[0]["path"] == "'@SUM(A1)"
    assert rows[0]["accuracy"] == "-0.5" and rows[0]["run"].startswith("evil")
    assert all(not v.startswith(("=", "+", "@", "\t", "\r")) for row in rows for v in row.values())
