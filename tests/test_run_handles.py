"""The engine's seams: one RunHandle protocol for the three kinds of run, typed options, and errors that cross
threads and processes as typed objects (never a message parsed back); a multi-process run whose processes write
far more than a pipe holds still ends."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import torch

from workbench.core.child_run import ChildRun
from workbench.core.command_run import CommandRun
from workbench.core.errors import BadInput, Cancelled, ErrorInfo, ErrorKind, NeedsTrust, StageError, WorkbenchError
from workbench.core.events import RunError, RunFinished, SnapshotSaved, from_json, to_json
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunHandle, RunOptions, RunState
from workbench.core.runner import Run

TRAIN = "model: sample:digits_mlp\ndata: sample:digits\nstages: [{kind: train, epochs: 1}]\n"


def test_every_run_kind_is_a_run_handle(tmp_path):
    recipe = Recipe.from_text(TRAIN)
    handles = [Run(recipe, RunOptions(out_dir=tmp_path / "a")), ChildRun(recipe, RunOptions(out_dir=tmp_path / "b")),
               CommandRun(recipe, RunOptions(out_dir=tmp_path / "c", nproc=2))]
    for handle in handles:
        assert isinstance(handle, RunHandle) and handle.state is RunState.NEW
    assert handles[1].out_dir == tmp_path / "b" and handles[2].out_dir == tmp_path / "c"
    assert RunOptions(out_dir=tmp_path).out_dir == str(tmp_path)        # a Path is kept as text: it pickles anywhere
    with pytest.raises(TypeError):
        RunOptions(modle="sample:digits_mlp")          # a misspelt option is an error, not a silently ignored keyword
    with pytest.raises(ValueError, match="nproc"):
        RunOptions(nproc=0)


@pytest.mark.parametrize("error", [BadInput("bad spec", "d"), NeedsTrust("x.pt: refused: ...", reason="a program"),
                                   StageError("nan loss"), Cancelled("stopped"), WorkbenchError("boom")])
def test_errors_cross_as_typed_info(error):
    info = error.info()
    for crossed in (pickle.loads(pickle.dumps(info)), ErrorInfo.from_json(json.loads(json.dumps(info.to_json())))):
        assert crossed == info
        again = crossed.exception()
        assert type(again) is type(error) and again.message == error.message and again.kind is error.kind
    assert info.exit_code == (2 if isinstance(error, BadInput) else 1)
    event = RunError(info)
    assert from_json(json.loads(json.dumps(to_json(event)))) == event


def test_any_exception_is_crashed_and_unknown_records_are_not_trusted():
    assert ErrorInfo.of(ValueError("x")).kind is ErrorKind.CRASHED
    assert ErrorInfo.from_json({"kind": "needs_trust_please", "message": "m"}).kind is ErrorKind.CRASHED
    assert ErrorInfo.from_json(["not", "a", "record"]).kind is ErrorKind.CRASHED


def test_a_refused_file_reaches_the_parent_as_needs_trust(tmp_path):
    """The GUI's trust question is asked from the error's kind: a TorchScript model refused in the child process."""
    path = tmp_path / "model.ts"
    torch.jit.script(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))).save(str(path))
    run = ChildRun(Recipe.from_text(TRAIN), RunOptions(model=str(path), out_dir=tmp_path / "run"))
    with pytest.raises(NeedsTrust) as caught:
        list(run.events())
    assert caught.value.kind is ErrorKind.NEEDS_TRUST and "TorchScript" in caught.value.reason
    assert run.state is RunState.FAILED and not (tmp_path / "run" / "report.json").exists()


def test_bad_input_of_a_multi_process_run_arrives_typed(tmp_path):
    run = CommandRun(Recipe.from_text(TRAIN), RunOptions(model="arch:nosuch", out_dir=tmp_path / "run", nproc=2))
    with pytest.raises(BadInput, match="nosuch"):
        list(run.events())
    lines = (tmp_path / "run" / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "RunError" and json.loads(lines[-1])["error"]["kind"] == "bad_input"
    assert run.state is RunState.FAILED


FLOOD = """import os, sys
if os.environ.get("WORKBENCH_TEST_FLOOD"):
    sys.stderr.write(("log line from pid %d, well past what a pipe holds\\n" % os.getpid()) * 30000)
    sys.stderr.flush()
"""


@pytest.mark.slow
def test_a_multi_process_run_writing_megabytes_of_log_ends(tmp_path, monkeypatch):
    """Every process of the run (torchrun and both ranks) writes over 1 MB to stderr as it starts: with a pipe nobody
    reads, rank 0 would block on its first write and rank 1 would wait for it forever."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FLOOD)
    monkeypatch.setenv("PYTHONPATH", f"{site}:{Path(__file__).resolve().parents[1]}")
    monkeypatch.setenv("WORKBENCH_TEST_FLOOD", "1")
    run = CommandRun(Recipe.from_text(TRAIN), RunOptions(out_dir=tmp_path / "run", nproc=2))
    events = list(run.events())
    assert isinstance(events[-1], RunFinished) and events[-1].ok, events[-1]
    assert [e.stage for e in events if isinstance(e, SnapshotSaved)] == ["baseline", "train"]
    assert run.state is RunState.FINISHED
    assert (tmp_path / "run" / "process.log").stat().st_size > 3 * 1024 * 1024     # three processes, ~1.6 MB each


def test_a_run_in_this_process_tracks_its_state(tmp_path):
    run = Run(Recipe.from_text(TRAIN), RunOptions(out_dir=tmp_path / "run"))
    for event in run.events():
        assert run.state is RunState.RUNNING or isinstance(event, RunFinished)
    assert run.state is RunState.FINISHED
    cancelled = Run(Recipe.from_text(TRAIN.replace("epochs: 1", "epochs: 100")), RunOptions(out_dir=tmp_path / "c"))
    for event in cancelled.events():
        if isinstance(event, SnapshotSaved):
            cancelled.cancel()
    assert cancelled.state is RunState.CANCELLED
