"""Odd values at every path argument of every command (inspect, export, run, runs, report): paths longer than the
system allows, NUL bytes, ANSI escapes and newlines, a folder where a file is expected and back, a FIFO. Each is
refused with exit 2 and one line that names the argument and escapes control characters (or, where the value is
fine, runs), never a traceback; the run folder named after a recipe stays a plain name under runs/."""
from __future__ import annotations

import subprocess
import sys

import hostile_corpus as HC
import pytest
from cli_helpers import ROOT
from hostile_run import run_cases

from workbench.core.limits import clip
from workbench.core.recipe import Recipe

WORDS = {"path_5000": "bytes long; a path is at most 4,096", "nul": "contains a NUL byte",
         "fifo": ("not a regular file", "not a folder", "FIFO")}


@pytest.fixture(scope="module")
def arguments(tmp_path_factory):
    root = tmp_path_factory.mktemp("arguments")
    corpus = HC.Corpus(root)
    HC.add_arguments(corpus, root / "no-run")         # report_out names a run folder that is not there: refused first
    return {c.name.split("/", 1)[1]: c for c in corpus.cases}, run_cases(corpus.cases, root)


def test_every_command_and_value_is_covered(arguments):
    cases, _ = arguments
    assert {name.split("/")[0] for name in cases} == set(HC.ARGUMENTS)
    assert {name.split("/")[1] for name in cases} == {"path_5000", "name_300", "nul", "ansi_newline", "empty_folder",
                                                       "file", "fifo", "missing"}


def test_odd_arguments_exit_2_with_one_escaped_line(arguments):
    cases, results = arguments
    for name, case in cases.items():
        r = results[case.name]
        lines = r["stderr"].strip().splitlines()
        assert "Traceback" not in r["stderr"] and not any(ch in r["stderr"] + r["stdout"] for ch in "\x1b\x00\r"), name
        if (tuple(name.split("/")) in HC.RUNNABLE and r["rc"] == 0) or (name.startswith("report_out/") and r["rc"] == 2):
            continue
        assert r["rc"] == 2 and len(lines) == 1 and lines[0].startswith("workbench: error: "), (name, r["rc"], r["stderr"])
        kind = name.split("/")[1]
        words = WORDS.get(kind, ())
        assert not words or any(w in lines[0] for w in ([words] if isinstance(words, str) else words)), (name, lines[0])
        if kind == "ansi_newline":
            assert "\\x1b[31mred\\x1b[0m\\nx" in lines[0], (name, lines[0])        # named, escaped
        if kind == "name_300":
            assert any(w in lines[0] for w in ("longer than 255 bytes", "too long")), (name, lines[0])


def test_nothing_is_created_for_a_refused_output(arguments):
    cases, results = arguments
    for slot in ("run_out", "export_out", "run_events"):
        for kind in ("ansi_newline", "name_300", "nul"):
            case = cases[f"{slot}/{kind}"]
            assert results[case.name]["rc"] == 2
            folder = HC.Path(case.argv[case.argv.index("--out" if slot != "run_events" else "--events") + 1]).parent
            assert not [p for p in folder.iterdir() if "red" in p.name or p.name.startswith("bbbb")], (slot, kind)


def test_messages_escape_control_characters_and_keep_text():       # what the CLI prints every message through
    assert clip("caf\xe9 \u65e5\u672c") == "caf\xe9 \u65e5\u672c"
    assert clip("a\x1b[2Jb\nc\rd\x00e\u202ef\x7f") == "a\\x1b[2Jb\\nc\\rd\\x00e\\u202ef\\x7f"
    assert clip("x" * 1000, 50) == "x" * 50 + "..."


def test_through_a_real_process_the_terminal_gets_no_escape(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workbench", "inspect", f"{tmp_path}/\x1b]0;pwned\x07\n.pt"],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "\x1b" not in proc.stderr, proc.stderr
    assert "\\x1b]0;pwned\\x07\\n.pt" in proc.stderr


@pytest.mark.parametrize("name,folder", [("deep compression", "deep_compression"), ("../../x", "_.._x"),
                                         ("\x1b[31m\nred", "_31m_red"), (".hidden", "hidden"), ("", "run"), ("a/b\\c", "a_b_c")])
def test_a_recipe_name_makes_a_plain_folder_name(name, folder):
    assert Recipe(name=name).folder_name == folder


def test_a_run_without_out_stays_under_runs(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text('name: "../../\\e[2Jescape\\n"\n' + HC.EVAL)
    proc = subprocess.run([sys.executable, "-m", "workbench", "run", str(recipe), "--quiet"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    made = [p for p in tmp_path.rglob("report.json")]
    assert len(made) == 1 and made[0].parent.parent == tmp_path / "runs", made
    assert made[0].parent.name.endswith("-_.._2Jescape_") and "\x1b" not in proc.stdout
