"""Screenshots of the real application (offscreen) for the README: docs/screenshots/*_1366.png and *_1920.png.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py

Opens the main window as `make run` does (sample:digits_mlp, sample:digits, the Deep Compression recipe), runs the
recipe, and grabs the window at several moments, each at 1366x768 (a laptop) and at 1920x1080, with the default
layout for that size. Then a shortened structured-channels recipe on the sample ResNet-8 (the Layers tab and the
model browser against the baseline), the early-exits recipe (the Analysis tab) and the auto_40x recipe (the budget
search in the Analysis tab, the Open data dialog).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402
from PySide6.QtCore import QEventLoop, QSettings, QSize, QTimer  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
RECIPES = ROOT / "resources" / "recipes"
SIZES = {"1366": QSize(1366, 768), "1920": QSize(1920, 1080)}


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="wb-shots-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from workbench.core.events import StageStarted
    from workbench.ui.app import make_app
    from workbench.ui.layout import arrange
    from workbench.ui.main_window import MainWindow

    app = make_app()  # noqa: F841 - the QApplication must stay referenced while the windows live
    OUT.mkdir(parents=True, exist_ok=True)
    loop = QEventLoop()

    def process_events(ms: int) -> None:
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def pump(condition, timeout: float = 120.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not condition():
            process_events(5)
            time.sleep(0.005)
        for _ in range(20):   # let coalesced redraws land
            process_events(5)
            time.sleep(0.01)
        return condition()

    def save(widget, name: str) -> None:
        path = OUT / f"{name}.png"
        widget.grab().save(str(path))
        print(f"wrote {path.relative_to(ROOT)}")

    def shots(window, name: str, before=None) -> None:
        """The window at each size, laid out as it would open on that screen."""
        for suffix, size in SIZES.items():
            window.resize(size)
            arrange(window, size)
            if before:
                before()
            pump(lambda: True, 0.4)
            save(window, f"{name}_{suffix}")

    def compare_shot(window, a: str, b: str, height: int, name: str) -> None:
        """The Compare dialog for two snapshots, at 1280 x `height`."""
        dialog = window.compare(a, b)
        if dialog is not None:
            dialog.resize(1280, height)
            pump(lambda: True, 0.3)
            save(dialog, name)
            dialog.close()

    def open_window(model: str, recipe: Path) -> MainWindow:
        window = MainWindow(model=model, data="sample:digits", recipe=str(recipe), runs_dir=str(tmp / "runs"))
        window.resize(SIZES["1920"])
        window.show()
        assert pump(lambda: window.browser.info is not None)
        return window

    window = open_window("sample:digits_mlp", RECIPES / "deep_compression.yaml")
    assert pump(lambda: window.inspector.arrays is not None)
    prune_row = next((i for i, s in enumerate(window.doc.stages) if s["kind"] == "prune"), 0)
    window.editor.cards.setCurrentRow(prune_row)
    shots(window, "pipeline_editor")

    started: list[int] = []
    window.control.listeners.append(lambda ev: started.append(ev.index) if isinstance(ev, StageStarted) else None)
    window.start_run()
    assert pump(lambda: (started and started[-1] >= 1) or not window.control.running(), 600)
    window.plots.tabs.setCurrentIndex(0)
    shots(window, "plots_during_run")
    assert pump(lambda: window.control.worker is None, 900)

    window.plots.tabs.setCurrentIndex(2)
    shots(window, "ratio_vs_accuracy")
    snaps = sorted(window.runs.snapshots)
    quantized = next((p for p in snaps if "quantize" in p), snaps[-1])
    window.runs.select(quantized)
    window.inspector.log_box.setChecked(True)
    window.browser.select_layer("fc2")
    assert pump(lambda: window.inspector.arrays is not None and window.inspector.arrays.name == "fc2"
                and Path(quantized).name in window.inspector.title.text())
    window.plots.tabs.setCurrentIndex(0)
    shots(window, "browser_and_inspector")

    compare_shot(window, snaps[0], quantized, 600, "compare_snapshots")
    export = window.export_dialog(quantized)
    export.select_format("packed" if "packed" in export.formats else "safetensors")
    export.path.setText(str(tmp / "model.packed"))
    export.start()
    pump(lambda: export.result is not None or export.error is not None)
    save(export, "export_dialog")
    export.close()
    window.doc.undo_stack.setClean()
    window.close()

    # structured pruning: the Layers tab and the browser against the baseline (structured_channels, shortened)
    recipe = yaml.safe_load((RECIPES / "structured_channels.yaml").read_text())
    recipe["name"] = "structured channels (short)"
    recipe["stages"][0]["finetune_epochs"] = 2
    recipe["stages"][1]["epochs"] = 3
    short = tmp / "structured_short.yaml"
    short.write_text(yaml.safe_dump(recipe, sort_keys=False))
    chan = open_window("sample:digits_resnet", short)
    chan.start_run()
    assert pump(lambda: chan.control.worker is None, 900)
    own = sorted(p for p in chan.runs.snapshots if Path(p).parent.parent == Path(chan.control.out_dir))
    pruned = next(p for p in own if p.endswith("01-prune"))
    chan.runs.select(pruned)
    chan.browser.select_layer("layer2.0.conv1")
    assert pump(lambda: "01-prune" in chan.browser.totals.text() and chan.plots.layers.rows
                and chan.inspector.arrays is not None and chan.inspector.arrays.name == "layer2.0.conv1")
    chan.plots.tabs.setCurrentIndex(1)
    shots(chan, "structured_layers")
    compare_shot(chan, own[0], pruned, 700, "compare_structured")
    chan.plots.tabs.setCurrentIndex(0)
    shots(chan, "structured_curves")
    chan.close()

    # early exits: the Analysis tab's accuracy against average compute, one point per threshold
    exits = open_window("sample:digits_resnet", RECIPES / "early_exits.yaml")
    exits.start_run()
    assert pump(lambda: exits.control.worker is None, 900)
    exits.plots.tabs.setCurrentIndex(3)
    shots(exits, "early_exit_analysis")
    exits.close()

    # the budget stage: the Analysis tab's live budget search (candidates, Pareto front, the chosen one); the data
    # settings dialog; the runs table with val and test accuracy
    auto = open_window("sample:digits_mlp", RECIPES / "auto_40x.yaml")
    dialog = auto.open_data_dialog()
    pump(lambda: True, 0.3)
    save(dialog, "open_data_dialog")
    dialog.reject()
    auto.start_run()
    assert pump(lambda: auto.control.worker is None, 900)
    auto.plots.tabs.setCurrentIndex(3)
    shots(auto, "budget_search")
    auto.doc.undo_stack.setClean()
    auto.close()
    from workbench.ui.qthreading.tasks import pool
    pool().waitForDone(10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
