"""Screenshots of the real application (offscreen) for the README: docs/screenshots/*.png.

    QT_QPA_PLATFORM=offscreen python scripts/screenshots.py

Opens the main window as `make run` does (sample:digits_mlp, sample:digits, the Deep Compression
recipe), runs the recipe, and grabs the window at several moments.
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

from PySide6.QtCore import QSettings  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
RECIPE = ROOT / "resources" / "recipes" / "deep_compression.yaml"


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="wb-shots-"))
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    from workbench.core.events import StageStarted
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    from workbench.ui.qthreading.pump import process_events

    app = make_app()  # noqa: F841 - the QApplication must stay referenced while the windows live
    OUT.mkdir(parents=True, exist_ok=True)

    def pump(condition, timeout: float = 120.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and not condition():
            process_events(5)
            time.sleep(0.005)
        for _ in range(20):   # let coalesced redraws land
            process_events(5)
            time.sleep(0.01)
        return condition()

    def shot(widget, name: str) -> None:
        path = OUT / f"{name}.png"
        widget.grab().save(str(path))
        print(f"wrote {path.relative_to(ROOT)}")

    window = MainWindow(model="sample:digits_mlp", data="sample:digits", recipe=str(RECIPE), runs_dir=str(tmp / "runs"))
    window.resize(1600, 1000)
    window.show()
    assert pump(lambda: window.browser.info is not None and window.inspector.arrays is not None)
    prune_row = next((i for i, s in enumerate(window.doc.stages) if s["kind"] == "prune"), 0)
    window.editor.cards.setCurrentRow(prune_row)
    pump(lambda: True, 0.2)
    shot(window, "pipeline_editor")

    started: list[int] = []
    window.control.listeners.append(lambda ev: started.append(ev.index) if isinstance(ev, StageStarted) else None)
    window.start_run()
    assert pump(lambda: len(window.plots.metrics.get("prune/loss", window.plots.metrics.get("train/loss", []))) >= 6
                or (started and started[-1] >= 1) or not window.control.running(), 300)
    window.plots.tabs.setCurrentIndex(0)
    shot(window, "plots_during_run")
    assert pump(lambda: window.control.worker is None, 600)

    window.plots.tabs.setCurrentIndex(2)
    pump(lambda: True, 0.3)
    shot(window, "ratio_vs_accuracy")
    window.plots.tabs.setCurrentIndex(1)
    snaps = sorted(window.runs.snapshots)
    quantized = next((p for p in snaps if "quantize" in p), snaps[-1])
    window.runs.select(quantized)
    window.inspector.log_box.setChecked(True)
    window.browser.select_layer("fc2")
    assert pump(lambda: window.inspector.arrays is not None and window.inspector.arrays.name == "fc2"
                and Path(quantized).name in window.inspector.title.text())
    shot(window, "browser_and_inspector")

    dialog = window.compare(snaps[0], quantized)
    if dialog is not None:
        pump(lambda: True, 0.3)
        shot(dialog, "compare_snapshots")
        dialog.close()
    export = window.export_dialog(quantized)
    export.select_format("packed" if "packed" in export.formats else "safetensors")
    export.path.setText(str(tmp / "model.packed"))
    export.start()
    pump(lambda: export.result is not None or export.error is not None)
    shot(export, "export_dialog")
    export.close()
    window.close()

    # early exits: the Analysis tab's accuracy against average compute, one point per threshold
    exits = MainWindow(model="sample:digits_resnet", data="sample:digits",
                       recipe=str(ROOT / "resources" / "recipes" / "early_exits.yaml"), runs_dir=str(tmp / "runs"))
    exits.resize(1600, 1000)
    exits.show()
    assert pump(lambda: exits.browser.info is not None)
    exits.start_run()
    assert pump(lambda: exits.control.worker is None, 600)
    exits.plots.tabs.setCurrentIndex(3)
    pump(lambda: True, 0.3)
    shot(exits, "early_exit_analysis")
    exits.close()
    from workbench.ui.qthreading.tasks import pool
    pool().waitForDone(10_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
