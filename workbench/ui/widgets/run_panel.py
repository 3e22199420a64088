"""Run progress: overall and per-stage progress bars, the current stage, and the run's log."""
from __future__ import annotations

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFormLayout, QLabel, QPlainTextEdit, QProgressBar, QVBoxLayout, QWidget

from ...core.events import ExportWritten, Log, Progress, RunFinished, SnapshotSaved, StageFailed, StageStarted
from .. import formatting as F

SCALE = 1000


class RunPanel(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.stage_count = 0
        self.stages_done = self.started = 0
        self.stage_fraction = 0.0
        self.stage_label = QLabel("Idle")
        self.stage_label.setObjectName("panelTitle")
        self.stage_label.setWordWrap(True)
        self.stage_bar = QProgressBar(maximum=SCALE, textVisible=True)
        self.overall_bar = QProgressBar(maximum=SCALE, textVisible=True)
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        self.log.setObjectName("log")
        self.log.setMinimumHeight(3 * self.log.fontMetrics().lineSpacing() + 10)   # a short dock on a laptop screen
        form = QFormLayout()
        form.addRow("Stage", self.stage_bar)
        form.addRow("Overall", self.overall_bar)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.stage_label)
        layout.addLayout(form)
        layout.addWidget(self.log, 1)

    def start(self, stage_count: int, title: str) -> None:
        self.stage_count, self.stages_done, self.stage_fraction = max(1, stage_count), 0, 0.0
        self.started = 0
        self.stage_label.setText(f"Starting {title}…")
        self.stage_bar.setValue(0)
        self.overall_bar.setValue(0)
        self.append(f"── {title}")

    def reset(self, text: str = "Idle") -> None:
        """Back to idle (a run that did not start), saying why."""
        self.stage_count, self.stages_done, self.started, self.stage_fraction = 0, 0, 0, 0.0
        self.stage_label.setText(text)
        self.stage_bar.setValue(0)
        self.stage_bar.setFormat("%p%")
        self.overall_bar.setValue(0)
        self.append(f"── not started: {text.removeprefix('Not started: ')}")

    def append(self, text: str) -> None:
        self.log.appendPlainText(text)
        self.log.moveCursor(QTextCursor.MoveOperation.End)

    def _overall(self) -> None:
        value = (self.stages_done + self.stage_fraction) / self.stage_count
        self.overall_bar.setValue(int(SCALE * min(1.0, value)))

    def handle(self, ev) -> None:
        if isinstance(ev, StageStarted):
            self.stages_done, self.started = self.started, self.started + 1
            self.stage_fraction = 0.0
            self._overall()
            self.stage_label.setText(f"Stage {ev.index + 1}/{ev.total_stages}: {ev.kind}")
            self.stage_bar.setValue(0)
            self.append(f"stage {ev.index + 1}: {ev.kind}")
        elif isinstance(ev, Progress):
            self.stage_fraction = ev.done / ev.total if ev.total else 0.0
            self.stage_bar.setValue(int(SCALE * min(1.0, self.stage_fraction)))
            self.stage_bar.setFormat(f"{ev.text}  %p%" if ev.text else "%p%")
            self._overall()
        elif isinstance(ev, SnapshotSaved):
            m = ev.metrics
            self.append(f"snapshot {ev.index} ({ev.stage}): val {F.percent(m.get('val_accuracy'), 2)}, "
                        f"test {F.percent(m.get('accuracy'), 2)}, "
                        f"{F.count(m.get('nonzero_params'))} non-zero, {F.size(m.get('compressed_bytes'))}, "
                        f"ratio {F.ratio(m.get('compression_ratio'))}")
        elif isinstance(ev, Log):
            text = F.one_based(ev.text)
            self.append(f"[{ev.level}] {text}" if ev.level != "info" else text)
        elif isinstance(ev, ExportWritten):
            r = ev.result
            state = "verified" if r.verified else f"NOT verified ({r.error})"
            self.append(f"export {r.format}: {F.size(r.bytes)}, {state}")
        elif isinstance(ev, StageFailed):
            self.stage_label.setText(("Stopped" if ev.cancelled else "Failed") + f" in stage {ev.index + 1} ({ev.kind})")
        elif isinstance(ev, RunFinished):
            if ev.ok:
                self.stage_label.setText("Finished")
                self.stage_bar.setValue(SCALE)
                self.stage_bar.setFormat("all stages done  %p%")
                self.overall_bar.setValue(SCALE)
            self.append(f"── {'finished' if ev.ok else 'ended'}: {F.one_based(ev.message)} ({ev.out_dir})")
