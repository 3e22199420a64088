"""The Export dialog's default file: a run's snapshot goes to that run's own `exports/` folder as
`<model name>-<snapshot><suffix>`; the current model to the runs folder's `exports/`; never inside the installed
workbench."""
from pathlib import Path

from waits import WAIT_MS

from workbench.core.resources import in_package, recipes_dir

from .helpers import wait_run


def _default(qtbot, dialog, fmt: str) -> Path:
    qtbot.waitUntil(lambda: bool(dialog.path.text()), timeout=WAIT_MS)   # found off the GUI thread
    dialog.select_format(fmt)
    return Path(dialog.path.text())


def test_a_snapshot_exports_into_its_own_run_folder(make_window, qtbot):
    w = make_window()
    assert w.start_run()
    wait_run(qtbot, w)
    run = Path(w.control.out_dir)
    snap = sorted(w.runs.snapshots)[-1]
    w.runs.select(snap)
    dialog = w.export_dialog()
    path = _default(qtbot, dialog, "onnx")
    assert path == run.resolve() / "exports" / f"digits_mlp-{Path(snap).name}.onnx"
    assert _default(qtbot, dialog, "safetensors") == path.with_suffix(".safetensors")   # the format swaps the suffix
    dialog.start()
    qtbot.waitUntil(lambda: dialog.exported is not None or dialog.error is not None, timeout=WAIT_MS)
    assert dialog.exported is not None and dialog.exported.verified, dialog.error
    assert path.with_suffix(".safetensors").stat().st_size == dialog.exported.bytes
    dialog.close()
    # the run's baseline: the same run's folder too (named by its own snapshot)
    w.runs.select(sorted(w.runs.snapshots)[0])
    other = w.export_dialog()
    assert _default(qtbot, other, "onnx").parent == run.resolve() / "exports"
    other.close()


def test_the_current_model_exports_into_the_runs_folder(make_window, qtbot, tmp_path):
    w = make_window()
    dialog = w.export_dialog("sample:digits_mlp")
    assert _default(qtbot, dialog, "onnx") == tmp_path / "runs" / "exports" / "digits_mlp.onnx"
    dialog.close()


def test_never_inside_the_installed_workbench(make_window, qtbot, tmp_path, monkeypatch):
    from workbench.ui.dialogs.export import open_export
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home" / "Documents").mkdir(parents=True)
    w = make_window()
    dialog = open_export(w, "sample:digits_mlp", None, str(recipes_dir() / "exports"))
    path = _default(qtbot, dialog, "onnx")
    assert path == tmp_path / "home" / "Documents" / "exports" / "digits_mlp.onnx" and not in_package(path)
    dialog.close()


def test_a_path_typed_before_the_default_arrives_is_kept(make_window, qtbot, tmp_path):
    w = make_window()
    dialog = w.export_dialog("sample:digits_mlp")
    dialog.path.setText(str(tmp_path / "mine.onnx"))
    qtbot.waitUntil(lambda: dialog.stem is not None, timeout=WAIT_MS)
    assert dialog.path.text() == str(tmp_path / "mine.onnx")
    dialog.close()


def test_a_hostile_report_cannot_steer_the_default_out_of_the_run(tmp_path):
    """The run's report.json is read bounded (a FIFO is refused, never waited on) and its model spec becomes a
    plain name: the default stays `<run>/exports/`."""
    import json
    import os

    from workbench.core.snapshot_tools import export_stem
    run = tmp_path / "run"
    snap = run / "snapshots" / "01-prune"
    snap.mkdir(parents=True)
    (snap / "snapshot.json").write_text("{}")
    for model, name in (("../../../etc/passwd", "passwd-01-prune"), ("a/b\u202e\n:x" + "y" * 5000, None),
                        (["not", "text"], "model-01-prune"), ("timm:resnet18:pretrained", "resnet18-01-prune")):
        (run / "report.json").write_text(json.dumps({"model": model}))
        stem = export_stem(str(snap), str(tmp_path / "runs" / "exports"))
        assert stem.parent == run / "exports" and "/" not in stem.name and stem.name.isprintable()
        assert len(stem.name) <= 100 and (name is None or stem.name == name), stem.name
    (run / "report.json").unlink()
    os.mkfifo(run / "report.json")
    assert export_stem(str(snap), "") == run / "exports" / "model-01-prune"
