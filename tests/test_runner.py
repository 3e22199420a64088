"""The runner: snapshots, report.json, determinism, cancellation, failures that keep the last snapshot."""
import dataclasses
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from workbench.core import events as E
from workbench.core import stages
from workbench.core.errors import BadInput, StageError
from workbench.core.recipe import Recipe, new_stage
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run
from workbench.core.snapshots import load_snapshot

SMALL = "arch:mlp:hidden=32"


def run_all(recipe, **kw):
    job = Run(recipe, RunOptions(**kw))
    return job, list(job.events())


def test_report_matches_interface(tmp_path):
    recipe = Recipe([new_stage("train", epochs=2), new_stage("evaluate"), new_stage("export", formats=["safetensors", "state_dict"])],
                    model=SMALL, data="sample:digits")
    job, evs = run_all(recipe, out_dir=tmp_path)
    assert isinstance(evs[-1], E.RunFinished) and evs[-1].ok
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["model"] == SMALL and report["data"] == "sample:digits" and report["status"] == "finished"
    assert report["splits"] == {"train": 1294, "val": 144, "test": 359} and sum(report["splits"].values()) == 1797
    assert all(0 < s["val_accuracy"] <= 1 for s in report["snapshots"])
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["threads"] == torch.get_num_threads()
    assert env["world_size"] == 1 and env["backend"] is None and env["cpu"] and env["workbench"]
    assert [json.loads(line)["name"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()].count("loss") == 2
    assert [s["stage"] for s in report["snapshots"]] == ["baseline", "train"]
    keys = {"index", "stage", "accuracy", "params", "nonzero_params", "sparsity", "flops", "dense_bytes",
            "compressed_bytes", "compression_ratio", "latency_ms", "seconds", "path"}
    for s in report["snapshots"]:
        assert keys <= set(s)
        folder = tmp_path / s["path"]
        compressed = list(folder.glob("compressed.*"))
        assert len(compressed) == 1 and compressed[0].stat().st_size == s["compressed_bytes"]
        assert s["dense_bytes"] == s["params"] * 4 == report["snapshots"][0]["dense_bytes"]
        assert s["compression_ratio"] == pytest.approx(s["dense_bytes"] / s["compressed_bytes"])
        assert 0 <= s["accuracy"] <= 1 and s["latency_ms"] > 0 and s["flops"] == 2 * (64 * 32 + 32 * 10)
    assert report["snapshots"][1]["accuracy"] > report["snapshots"][0]["accuracy"] + 0.3
    assert [e["format"] for e in report["exports"]] == ["safetensors", "state_dict"]
    assert all(e["verified"] and e["max_abs_diff"] == 0.0 for e in report["exports"])
    for e in report["exports"]:
        assert (tmp_path / e["path"]).stat().st_size == e["bytes"]
    metrics = [e for e in evs if isinstance(e, E.Metric) and e.name == "train/accuracy"]
    assert [m.step for m in metrics] == [1, 2]


def test_same_seed_same_weights(tmp_path):
    recipe = Recipe([new_stage("train", epochs=1)], model=SMALL, data="sample:digits", seed=7)
    run_all(recipe, out_dir=tmp_path / "a")
    run_all(recipe, out_dir=tmp_path / "b")
    run_all(recipe, out_dir=tmp_path / "c", seed=8)
    a, b, c = (load_file(str(tmp_path / x / "snapshots" / "01-train" / "model.safetensors")) for x in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_cancel_at_the_next_event_keeps_previous_snapshot(tmp_path):
    recipe = Recipe([new_stage("train", epochs=1), new_stage("train", epochs=200)], model="sample:digits_resnet",
                    data="sample:digits")
    job = Run(recipe, RunOptions(out_dir=tmp_path))
    after_cancel = None
    evs = []
    for ev in job.events():
        evs.append(ev)
        if after_cancel is not None:
            after_cancel.append(ev)
        elif isinstance(ev, E.Progress) and any(isinstance(e, E.StageStarted) and e.index == 1 for e in evs):
            worker = threading.Thread(target=job.cancel)          # from another thread, as the GUI does
            worker.start()
            worker.join()
            after_cancel = []
    assert isinstance(after_cancel[0], E.StageFailed) and after_cancel[0].cancelled   # the very next event
    assert isinstance(evs[-1], E.RunFinished) and not evs[-1].ok
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "cancelled" and len(report["snapshots"]) == 2
    kept = load_snapshot(tmp_path / "snapshots" / "01-train").module.state_dict()
    now = job.session.model.state_dict()
    assert all(torch.equal(kept[k], now[k]) for k in kept)


def test_failing_stage_restores_last_snapshot(tmp_path, monkeypatch):
    from workbench.core.stages import train

    def broken(session, params):
        with torch.no_grad():
            for p in session.model.parameters():
                p.add_(1.0)
        yield E.Progress(1, 2, "half way")
        raise StageError("loss became nan at epoch 1, step 3")

    recipe = Recipe([new_stage("train", epochs=1), new_stage("train", epochs=1)], model=SMALL, data="sample:digits")
    calls = {"n": 0}
    original = train.run

    def first_ok_then_broken(session, params):
        calls["n"] += 1
        return original(session, params) if calls["n"] == 1 else broken(session, params)

    monkeypatch.setitem(stages._REGISTERED, "train", dataclasses.replace(train.STAGE, run=first_ok_then_broken))
    job, evs = run_all(recipe, out_dir=tmp_path)
    failed = [e for e in evs if isinstance(e, E.StageFailed)]
    assert len(failed) == 1 and "nan" in failed[0].message and not failed[0].cancelled
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["status"] == "failed" and "stage 2 (train)" in report["message"]
    assert report["current_snapshot"] == "01-train"
    kept = load_snapshot(tmp_path / "snapshots" / "01-train").module.state_dict()
    assert all(torch.equal(kept[k], v) for k, v in job.session.model.state_dict().items())


def test_nan_loss_stops_training_with_a_clear_message(digits):
    from workbench.core.session import Session
    from workbench.core.specs import load_model
    from workbench.core.training import fit

    loaded = load_model(SMALL, (1, 8, 8), 10)
    with torch.no_grad():
        loaded.module.fc1.weight[0, 0] = float("nan")
    session = Session(loaded, digits)
    with pytest.raises(StageError, match="loss became nan at epoch 1, step 1"):
        list(fit(session, 1, 1e-3))


def test_masks_stay_zero_through_training(digits):
    from workbench.core.session import Session
    from workbench.core.specs import load_model
    from workbench.core.training import fit

    session = Session(load_model("sample:digits_mlp"), digits)
    w = session.model.fc1.weight
    mask = torch.rand(w.shape, generator=torch.Generator().manual_seed(0)) > 0.8
    session.masks["fc1.weight"] = mask
    list(fit(session, 2, 1e-3, "sgd"))
    assert torch.count_nonzero(session.model.fc1.weight[~mask]) == 0
    assert torch.count_nonzero(session.model.fc1.weight[mask]) == mask.sum()


@pytest.mark.parametrize("kw,needle", [
    ({"model": "sample:digits_mlp", "data": "fake:3x32x32:10:8"}, "does not accept inputs of shape [3, 32, 32]"),
    ({"model": "arch:mlp:hidden=8", "data": None}, "no data given"),
    ({"model": None, "data": "sample:digits"}, "no model given"),
    ({"model": "sample:digits_mlp", "data": "sample:digits", "device": "tpu"}, "--device must be cpu or cuda"),
])
def test_bad_input_is_rejected_before_anything_runs(tmp_path, kw, needle):
    out = tmp_path / "out"
    with pytest.raises(BadInput) as exc:
        list(Run(Recipe([new_stage("train")]), RunOptions(out_dir=out, **kw)).events())
    assert needle in str(exc.value)
    assert not out.exists()


def test_fork_from_a_snapshot_folder(tmp_path):
    recipe = Recipe([new_stage("train", epochs=1)], model=SMALL, data="sample:digits")
    run_all(recipe, out_dir=tmp_path / "a")
    snap = tmp_path / "a" / "snapshots" / "01-train"
    job, evs = run_all(Recipe([new_stage("evaluate")]), model=str(snap), data="sample:digits", out_dir=tmp_path / "b")
    base = json.loads((tmp_path / "b" / "report.json").read_text())["snapshots"][0]
    first = json.loads((tmp_path / "a" / "report.json").read_text())["snapshots"][1]
    assert base["accuracy"] == first["accuracy"]
    assert Path(job.session.loaded.spec) == snap
