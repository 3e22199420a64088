"""The model browser shows exactly what `workbench inspect` measures, off the GUI thread."""
from PySide6.QtCore import QModelIndex
from waits import WAIT_MS

from workbench.core.data import load_data
from workbench.core.inspection import inspect_loaded
from workbench.core.specs import load_model
from workbench.ui.widgets.model_browser import NAME_ROLE, SORT_ROLE


def tree_rows(model, parent=QModelIndex()):
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        node = model.node(index)
        if node.layer:
            yield node.name, [model.data(model.index(row, c, parent), SORT_ROLE) for c in range(7)]
        yield from tree_rows(model, index)


def test_tree_numbers_equal_inspect(make_window):
    w = make_window(model="sample:digits_resnet")
    data = load_data("sample:digits")
    expected = inspect_loaded(load_model("sample:digits_resnet", data.input_shape, data.num_classes), data)
    rows = dict(tree_rows(w.browser.model))
    assert list(rows) == [r["name"] for r in expected["layers"]]
    for r in expected["layers"]:
        _, typ, shape, params, nonzero, sparsity, flops = rows[r["name"]]
        assert (typ, params, nonzero, flops) == (r["type"], r["params"], r["nonzero_params"], r["flops"])
        assert shape == "×".join(map(str, r["shape"]))
        assert sparsity == r["sparsity"] if r["sparsity"] is None else abs(sparsity - r["sparsity"]) < 1e-12
    t = expected["total"]
    assert f"{t['params']:,}" in w.browser.totals.text() and f"{t['nonzero_params']:,}" in w.browser.totals.text()
    # root children sum to the totals
    assert sum(w.browser.model.raw(n, 3) for n in w.browser.model.root.children) == t["params"]


def test_filter_and_sort(make_window):
    w = make_window(model="sample:digits_resnet")
    w.browser.filter.setText("conv")
    names = [w.browser.proxy.data(i, NAME_ROLE) for i in w.browser._iter(QModelIndex())]
    assert names and all("conv" in n or any(n2.startswith(n + ".") and "conv" in n2 for n2 in names) for n in names)
    w.browser.filter.clear()
    w.browser.tree.sortByColumn(3, w.browser.tree.header().sortIndicatorOrder().DescendingOrder)
    top = [w.browser.proxy.index(r, 3).data(SORT_ROLE) for r in range(w.browser.proxy.rowCount())]
    assert top == sorted(top, reverse=True)


def test_selecting_a_layer_fills_the_inspector(make_window, qtbot):
    w = make_window()
    w.browser.select_layer("fc2")
    qtbot.waitUntil(lambda: w.inspector.arrays is not None and w.inspector.arrays.name == "fc2", timeout=WAIT_MS)
    assert w.inspector.arrays.hist_counts.sum() + w.inspector.arrays.zeros == 300 * 100
    assert w.inspector.image.image is not None
    w.inspector.log_box.setChecked(True)  # redraw in log scale


def test_large_model_loads_off_the_gui_thread(make_window, qtbot, monkeypatch):
    """A torchvision model is built and measured on a worker thread, never on the GUI thread (no clock involved:
    the test records which thread did the work)."""
    import threading

    from workbench.ui.qthreading import model_control
    w = make_window()
    threads = []
    real_open = model_control.open_model

    def recording_open(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_open(*args, **kwargs)
    monkeypatch.setattr(model_control, "open_model", recording_open)
    w.open_model("torchvision:resnet18")
    assert not threads or threads[0] is not threading.main_thread()    # open_model returned before any work ran here
    qtbot.waitUntil(lambda: w.model_spec == "torchvision:resnet18", timeout=WAIT_MS)
    assert "11,689,512" in w.browser.totals.text()
    assert len(threads) == 1 and threads[0] is not threading.main_thread()


def test_corrupt_file_shows_a_message(make_window, qtbot, messages, tmp_path):
    w = make_window()
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not really a safetensors file")
    w.open_model(str(bad))
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT_MS)
    assert "corrupt" in messages.texts()
    assert w.model_spec == "sample:digits_mlp"   # the previous model stays open
    mismatched = tmp_path / "other.pt"
    import torch
    torch.save({"weight": torch.zeros(3)}, mismatched)
    w.open_model(str(mismatched))
    qtbot.waitUntil(lambda: len(messages) >= 2, timeout=WAIT_MS)
    assert "state dict" in messages[-1][1]
