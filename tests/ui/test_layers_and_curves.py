"""Structured compression shows per layer; curves of a run outlive the run and the window; tables fit their content."""
import json
from pathlib import Path

from waits import WAIT_MS

from workbench.ui.widgets.curves import lay_out
from workbench.ui.widgets.model_browser import BEFORE_COL, CHANNELS_COL, SORT_ROLE

from .helpers import wait_run

STRUCTURED = [{"kind": "prune", "method": "l1", "structured": True, "sparsity": 0.5, "finetune_epochs": 0}]


def layer_cell(browser, name, column):
    index = next(i for i in browser._iter(browser.proxy.index(-1, 0)) if browser.model.node(browser.proxy.mapToSource(i)).name == name)
    return browser.proxy.index(index.row(), column, index.parent()).data(SORT_ROLE)


def test_structured_prune_shows_channels_and_parameters_before_and_after(make_window, qtbot, messages):
    w = make_window(stages=STRUCTURED, model="sample:digits_resnet")
    live = []
    w.control.listeners.append(lambda ev: type(ev).__name__ == "LayerStats" and live.append(w.plots.layers.rows))
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    assert live and any(r["params_before"] and r["params"] < r["params_before"] for r in live[-1])   # live, during the stage
    pruned = next(p for p, r in w.runs.snapshots.items() if r["stage"] == "prune")
    w.runs.select(pruned)
    qtbot.waitUntil(lambda: w.browser.info is not None and "01-prune" in w.browser.totals.text(), timeout=WAIT_MS)
    info = w.browser.info
    assert info["baseline"]["layer1.0.conv1"]["shape"][0] == 16
    # the browser: before/after columns appear for a snapshot with a baseline
    assert not w.browser.tree.isColumnHidden(BEFORE_COL) and not w.browser.tree.isColumnHidden(CHANNELS_COL)
    now = next(r for r in info["layers"] if r["name"] == "layer1.0.conv1")
    channels = now["shape"][0]
    assert channels < 16
    assert layer_cell(w.browser, "layer1.0.conv1", CHANNELS_COL) == f"{channels} / 16"
    assert layer_cell(w.browser, "layer1.0.conv1", BEFORE_COL) == 16 * 16 * 9 > now["params"]
    assert "kept" in w.browser.totals.text() and "baseline" in w.browser.totals.text()
    # the Layers tab: parameters and channels before and after; sparsity bars only for prunable weights
    rows = {r["name"]: r for r in w.plots.layers.rows}
    assert rows["layer1.0.conv1"]["channels"] == channels and rows["layer1.0.conv1"]["channels_before"] == 16
    assert rows["layer1.0.conv1"]["params"] < rows["layer1.0.conv1"]["params_before"]
    assert rows["layer1.0.bn1"]["sparsity"] is None and rows["layer1.0.bn1"]["params"] == 2 * channels  # weight + bias
    assert not w.plots.layers.kept.isHidden()
    assert "bn1" not in "".join(w.plots.sparsity) and "layer1.0.conv1" in w.plots.sparsity
    assert w.plots.tabs.tabText(1) == "Layers"
    # Compare: sparsity over prunable weights; batch norm has none
    baseline = next(p for p, r in w.runs.snapshots.items() if r["stage"] == "baseline")
    dialog = w.compare(baseline, pruned)
    headers = [dialog.layers_table.horizontalHeaderItem(c).text() for c in range(dialog.layers_table.columnCount())]
    table = {dialog.layers_table.item(r, 0).text(): [dialog.layers_table.item(r, c).text() for c in range(len(headers))]
             for r in range(dialog.layers_table.rowCount())}
    bn = dict(zip(headers, table["layer1.0.bn1"]))
    conv = dict(zip(headers, table["layer1.0.conv1"]))
    assert bn["sparsity B"] == "–" and bn["Δ non-zero weights"] == "–"
    assert conv["shape A"] == "16×16×3×3" and conv["shape B"].startswith(f"{channels}×")
    assert conv["params B"] == f"{now['params']:,}"
    dialog.close()


def test_curves_of_a_finished_run_come_back_after_the_window_is_recreated(make_window, qtbot, messages):
    stages = [{"kind": "train", "epochs": 2}, {"kind": "train", "label": "second", "epochs": 1},
              {"kind": "sensitivity", "sparsities": [0.5, 0.9]}]
    w = make_window(stages=stages)
    assert w.start_run()
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    run_dir = w.control.out_dir
    qtbot.waitUntil(lambda: not w.plots._dirty, timeout=WAIT_MS)
    live_metrics, live_series = dict(w.plots.metrics), dict(w.plots.series)
    assert len(live_metrics["train/accuracy"]) == 3 and live_series[("sparsity", "accuracy")]
    w.close()

    w2 = make_window(stages=stages)
    assert not w2.plots.metrics                      # nothing selected yet: nothing drawn
    snapshot = next(p for p, r in w2.runs.snapshots.items() if r["stage"] == "train" and Path(p).parent.parent == Path(run_dir))
    w2.runs.select(snapshot)
    qtbot.waitUntil(lambda: bool(w2.plots.metrics) and not w2.plots._dirty, timeout=WAIT_MS)
    assert w2.plots.metrics == live_metrics
    assert w2.plots.series[("sparsity", "accuracy")] == live_series[("sparsity", "accuracy")]
    # one continuous x-axis: the second stage starts where the first ended; stages named as their cards
    layout = lay_out(w2.plots.store[str(Path(run_dir).resolve())].points, w2.plots.store[str(Path(run_dir).resolve())].stages)
    acc = [c for c in layout.curves if c.kind == "accuracy"]
    assert [c.xs for c in acc] == [[1.0, 2.0], [3.0]] and [c.label for c in acc] == ["1. Train / fine-tune", "2. second"]
    assert [b[1] for b in layout.boundaries] == ["1. Train / fine-tune", "2. second"]
    assert w2.plots.acc.legend.isVisibleTo(w2.plots.acc) and "2. second" in w2.plots.acc.legend.text()
    low, high = w2.plots.acc.plot.getPlotItem().getViewBox().viewRange()[1]
    assert 0 <= low < high <= 100.5                  # accuracy in %, never past 100
    assert len(w2.plots.analysis.plots) == 1


def test_several_runs_overlay_in_their_own_colours(make_window, qtbot, messages):
    w = make_window(stages=[{"kind": "train", "epochs": 1}])
    for _ in range(2):
        assert w.start_run()
        wait_run(qtbot, w)
    runs = list(w.runs.runs.values())
    for item in runs:
        item.setSelected(True)
    qtbot.waitUntil(lambda: len(w.plots.shown) == 2 and not w.plots._dirty, timeout=WAIT_MS)
    legend = w.plots.acc.legend.text()
    assert all(Path(k).name in legend for k in w.plots.shown)
    pens = {w.plots.curves[k].opts["pen"].color().name() for k in w.plots.curves if k[3] == "accuracy"}
    assert len(pens) == 2
    assert len({p["run"] for p in w.plots.points}) == 2
    brushes = {s.brush().color().name() for s in w.plots.scatter.points()}
    assert len(brushes) == 2


def test_a_run_refused_before_it_starts_leaves_no_row(make_window, qtbot, messages):
    w = make_window()
    before = len(w.runs.runs)
    w.data_spec = "sample:nope"
    w.start_run()
    wait_run(qtbot, w)
    assert "Cannot run" in messages.texts()
    assert len(w.runs.runs) == before and w.control.out_dir not in w.plots.store
    assert w.run_panel.stage_label.text().startswith("Not started") and w.run_panel.overall_bar.value() == 0


def test_tables_fit_their_content(make_window, qtbot):
    w = make_window(model="sample:digits_resnet")
    w.docks["browser"].setFloating(True)
    w.docks["browser"].resize(1200, 500)
    tree = w.browser.tree
    qtbot.waitUntil(lambda: tree.columnWidth(0) >= tree.sizeHintForColumn(0), timeout=WAIT_MS)
    index = w.browser.proxy.index(0, 0)
    assert w.browser.proxy.data(index, 3).startswith(w.browser.proxy.data(index, 0))   # full name in the tooltip
    assert all(tree.columnWidth(c) >= tree.header().sectionSizeHint(c) for c in range(1, 7))


def test_exported_pngs_are_drawn_at_twice_the_size(make_window, qtbot, tmp_path):
    from PySide6.QtGui import QImage
    w = make_window()
    paths = w.plots.export_all(str(tmp_path))
    image = QImage(paths[0])
    assert image.width() >= 1200 and image.width() >= 2 * w.plots.loss.width() - 1
    assert json.dumps(sorted(Path(p).name for p in paths))


def test_coupled_layers_with_identical_sensitivity_curves_are_one_curve():
    from workbench.ui.widgets.curves import group_identical
    same = ((0.5, 0.9), (0.8, 0.2))
    grouped = group_identical({"sensitivity/conv1": same, "sensitivity/layer1.0.conv2": same,
                               "sensitivity/layer1.0.conv1": ((0.5, 0.9), (0.9, 0.5))})
    assert grouped == {"sensitivity/conv1 = layer1.0.conv2": same, "sensitivity/layer1.0.conv1": ((0.5, 0.9), (0.9, 0.5))}


def test_ratio_plot_labels_never_overprint(qtbot):
    from workbench.ui.widgets.ratio_plot import RatioPlot
    plot = RatioPlot()
    qtbot.addWidget(plot)
    plot.resize(700, 450)
    plot.show()
    points = [{"key": f"/runs/r{r}/snapshots/{i:02d}-stage", "ratio": 1 + i * 0.05 + r * 0.02, "accuracy": 0.95 + 0.001 * i,
               "label": f"r{r} / {i:02d}-stage", "run": f"/runs/r{r}"} for r in range(2) for i in range(6)]
    plot.set_points(points)
    qtbot.waitUntil(lambda: not plot._place_timer.isActive(), timeout=WAIT_MS)
    plot.place_labels()
    boxes = [item.mapRectToScene(item.boundingRect()) for item, _, _ in plot.labels if item.isVisible()]
    assert boxes and all(not a.intersects(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    assert len({s.brush().color().name() for s in plot.scatter.points()}) == 2
