"""One AppState: setters emit signals, and the window's panels follow it (the latest request wins)."""
from waits import WAIT_MS

from workbench.ui.qthreading import tasks
from workbench.ui.state import AppState


def test_setters_emit_what_changed(qtbot):
    state = AppState("sample:digits", "/tmp/runs")
    seen = []
    for name in ("modelChanged", "dataChanged", "layerChanged", "snapshotChanged", "runsDirChanged"):
        getattr(state, name).connect(lambda value, n=name: seen.append((n, value)))
    info = {"layers": [{"name": "fc1"}, {"name": "fc2"}]}
    state.set_model("sample:digits_mlp", info)
    assert state.layer_names() == ["fc1", "fc2"] and state.inspect_source == "sample:digits_mlp"
    state.set_layer("fc1")
    state.set_layer("fc1")                    # selecting the same layer again changes nothing
    state.set_snapshot("/tmp/runs/r/01-prune")
    assert state.inspect_source == "/tmp/runs/r/01-prune"
    state.set_snapshot("")
    state.set_data("sample:digits")           # opening the same data again reads it again
    state.set_runs_dir("/tmp/other")
    assert seen == [("modelChanged", "sample:digits_mlp"), ("layerChanged", "fc1"),
                    ("snapshotChanged", "/tmp/runs/r/01-prune"), ("snapshotChanged", ""),
                    ("dataChanged", "sample:digits"), ("runsDirChanged", "/tmp/other")]


def test_the_window_follows_one_state(make_window, qtbot):
    w = make_window()
    assert w.state.model_spec == w.model_spec == "sample:digits_mlp" and w.state.layer == "fc1"
    w.browser.select_layer("fc2")
    assert w.state.layer == "fc2"
    qtbot.waitUntil(lambda: w.inspector.arrays is not None and w.inspector.arrays.name == "fc2", timeout=WAIT_MS)
    opened = []
    w.state.modelChanged.connect(opened.append)
    w.open_model("sample:digits_cnn")
    w.open_model("sample:digits_mlp")         # supersedes the first request: only this one lands
    qtbot.waitUntil(lambda: bool(opened) and not tasks.busy(), timeout=WAIT_MS)   # both loads have ended
    assert opened == ["sample:digits_mlp"] and w.browser.info["model"] == "sample:digits_mlp"
    assert w.state.layer == "fc2"              # the layer stays selected when the new model has it
    assert w.inspector.arrays.name == "fc2"
