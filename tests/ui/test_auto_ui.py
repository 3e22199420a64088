"""The budget stage in the window: its generated form (fields, an invalid target flagged inline) and the live
Budget search plot on the Analysis tab (candidates, Pareto front, the chosen point as a star)."""
from waits import WAIT_MS

from workbench.ui.pipeline.param_form import ParamForm
from workbench.ui.pipeline.value_editors import FloatEditor, IntEditor, MultiChoiceEditor, TextEditor

from .helpers import wait_run

# small enough for the window's run process on a loaded 2-core machine: 10x, few options, 2 candidates
SMALL_AUTO = [{"kind": "auto", "target": {"ratio": 10}, "max_drop": 0.05, "epochs": 6, "finetune_epochs": 2,
               "centroid_epochs": 1, "prune_steps": 1, "sparsities": [0.0, 0.8, 0.9], "bits": [4],
               "max_candidates": 2}]


def edit(form, name, text):
    editor = form.editors[name]
    editor.inner.setText(text)
    editor.inner.textEdited.emit(text)


def test_auto_form_fields_and_an_invalid_target(qtbot, make_window):
    form = ParamForm("auto", ["fc1", "fc2", "fc3"])
    qtbot.addWidget(form)
    assert isinstance(form.editors["target"], TextEditor)
    assert isinstance(form.editors["max_drop"], FloatEditor) and form.editors["max_drop"].inner.maximum() <= 1.0
    assert isinstance(form.editors["methods"], MultiChoiceEditor)
    assert isinstance(form.editors["epochs"], IntEditor)
    assert {"target", "max_drop", "methods", "epochs", "allocation", "push"} <= set(form.editors)
    assert "latency" in form.editors["target"].toolTip()

    w = make_window()
    w.editor.cards.setCurrentRow(0)
    w.editor.add("auto")
    form = w.editor.form
    assert form.kind == "auto"
    edit(form, "target", "{ratio: 0.5}")
    assert "ratio must be greater than 1" in form.error_text("target")
    assert not w.start_run()
    edit(form, "target", "{ratio: 40, latency: 0.5}")
    assert "exactly one of ratio, latency, flops, params" in form.error_text("target")
    edit(form, "target", "{latency: 0.5}")          # valid target, but unstructured methods cannot make it faster
    assert form.error_text("target") == ""
    assert "cannot serve a latency target" in form.error_text("methods")
    edit(form, "target", "{ratio: 20}")
    assert form.error_text("target") == "" and form.error_text("methods") == ""
    assert w.doc.stages[w.editor.current()]["params"]["target"] == {"ratio": 20}


def test_live_budget_search_plot(qtbot, make_window, messages):
    w = make_window(stages=SMALL_AUTO)
    assert w.start_run()
    key = ("compressed bytes", "val accuracy")
    qtbot.waitUntil(lambda: "auto/candidates" in w.plots.series.get(key, {}), timeout=WAIT_MS)
    wait_run(qtbot, w)
    assert not messages, messages.texts()
    qtbot.waitUntil(lambda: not w.plots._dirty, timeout=WAIT_MS)
    curves = w.plots.series[key]
    assert {"auto/candidates", "auto/pareto", "auto/chosen"} <= set(curves)
    (chosen_x,), (chosen_y,) = curves["auto/chosen"]
    assert chosen_x in curves["auto/candidates"][0]
    budget = w.plots.budget
    assert budget.isVisibleTo(w.plots.analysis) and key not in w.plots.analysis.plots   # drawn once, in its own plot
    stars = [item for item in budget.plot.listDataItems() if item.opts.get("symbol") == "star"]
    assert len(stars) == 1
    xs, ys = stars[0].getData()
    assert list(xs) == [chosen_x] and abs(ys[0] - 100 * chosen_y) < 1e-9                # accuracy in %
    assert "chosen" in budget.legend.text() and "candidates" in budget.legend.text()
    assert "budget_search" in w.plots.widgets()
