"""Every snapshot opens in the inspector, int8 included: the browser and the layer inspector load an int8_static
snapshot at the same time (two threads rebuilding it by FX tracing failed: "int8: cannot trace"), and the inspector
shows its dequantized weights and their scales."""
from waits import WAIT_MS

from .helpers import wait_run

INT8 = [{"kind": "quantize", "method": "int8_static", "calib_batches": 1}]


def test_an_int8_snapshot_opens_in_the_browser_and_the_inspector(make_window, qtbot, messages):
    w = make_window(stages=INT8, model="sample:digits_mlp")
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    snapshot = next(p for p, r in w.runs.snapshots.items() if r["stage"] == "quantize")
    w.state.set_layer("fc1")                     # a layer selected: the snapshot and the layer load together
    w.runs.select(snapshot)
    shown = lambda: "from 01-quantize" in w.inspector.title.text() and "loading" not in w.inspector.title.text()
    qtbot.waitUntil(lambda: w.inspector.arrays is not None and shown(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.browser.info is not None and "01-quantize" in w.browser.totals.text(), timeout=WAIT_MS)
    arrays = w.inspector.arrays
    assert arrays.name == "fc1" and arrays.shape == [300, 64] and arrays.hist_counts.sum() + arrays.zeros == 300 * 64
    n = arrays.numbers
    assert n["int8_dtype"] == "qint8" and n["int8_scales"] == 300 and 0 < n["int8_scale_min"] <= n["int8_scale_max"]
    assert n["distinct_values"] <= 300 * 255            # dequantized: at most 255 levels per output channel
    text = w.inspector.numbers.text()
    assert "qint8 weights (dequantized)" in text and "300 per-channel scales" in text
    assert "cannot" not in w.inspector.title.text() and not messages, messages.texts()
