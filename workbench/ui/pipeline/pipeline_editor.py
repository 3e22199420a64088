"""Pipeline editor: the recipe as a list of stage cards plus the selected stage's generated form.

Add from the palette (every registered stage kind), remove, duplicate, drag to reorder, enable or
disable; every edit goes through the document's undo stack.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QStyle,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ...core import params as P
from ...core import stages
from .param_form import ParamForm
from .recipe_doc import RecipeDocument

FIRST = ("method", "structured", "sparsity", "sparsities", "epochs", "bits", "formats", "teacher", "student", "target",
         "rank", "energy", "exits", "widths", "thresholds", "finetune_epochs", "steps")   # what a card shows first


def summary(params: dict, limit: int = 60, kind: str | None = None) -> str:
    """The settings that matter most (see `param(when=...)`; FIRST first, settings that are off left out), short
    enough for a card's line."""
    metas, full = {}, dict(params)
    if kind:
        try:
            fields = [f for f, _ in P.param_fields(stages.get(kind).params)]
        except Exception:  # noqa: BLE001 - an unknown kind is shown as it is; the validator reports it
            fields = []
        metas = {f.name: f.metadata for f in fields}
        full = {**{f.name: P.default_of(f) for f in fields}, **params}
    order = sorted(params, key=lambda k: FIRST.index(k) if k in FIRST else len(FIRST))
    parts: list[str] = []
    for k in order:
        v = params[k]
        if (k in metas and not P.applies(metas[k], full)) or v is False or v in ([], {}, None, ""):
            continue
        if isinstance(v, dict):
            text = ", ".join(f"{a}: {b}" for a, b in v.items())
        else:
            text = ", ".join(map(str, v)) if isinstance(v, list) else f"{v:g}" if isinstance(v, float) \
                else str(v).lower() if isinstance(v, bool) else str(v)
        part = k if v is True else f"{k} {text if len(text) < 20 else text[:18] + '…'}"
        if parts and len(" · ".join(parts + [part])) > limit:
            break
        parts.append(part)
    return " · ".join(parts)


AFTER_EXPORT = "⚠ after Export: not in the exported files"
AFTER_EXPORT_ROLE = Qt.ItemDataRole.UserRole + 1


class StageList(QListWidget):
    """Cards; a drop asks the document to move the stage instead of moving the item itself."""

    moveRequested = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("stageList")
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.setSpacing(2)
        self.setWordWrap(True)
        self.setIconSize(QSize(16, 16))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setResizeMode(QListWidget.ResizeMode.Adjust)

    def dropEvent(self, event) -> None:
        src = self.currentRow()
        index = self.indexAt(event.position().toPoint())
        dst = index.row() if index.isValid() else self.count() - 1
        if index.isValid() and self.dropIndicatorPosition() == QAbstractItemView.DropIndicatorPosition.BelowItem:
            dst += 1
        if dst > src and index.isValid():
            dst -= 1
        event.setDropAction(Qt.DropAction.IgnoreAction)
        event.accept()
        if src >= 0 and dst != src:
            self.moveRequested.emit(src, max(0, min(dst, self.count() - 1)))


class PipelineEditor(QWidget):
    """Shows a RecipeDocument; `layer_names` fill the layer pickers of every form."""

    statusChanged = Signal(str)

    def __init__(self, doc: RecipeDocument, parent=None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.layer_names: list[str] = []
        self.form: ParamForm | None = None
        self.form_index = -1
        self._filling = False
        self._shown_error: str | None = None
        self.toolbar = self._make_toolbar()
        self.cards = StageList()
        self.cards.currentRowChanged.connect(lambda _row: self._show_form())
        self.cards.itemChanged.connect(self._item_changed)
        self.cards.moveRequested.connect(self._move)
        self.cards.itemDoubleClicked.connect(lambda item: self.rename(self.cards.row(item)))
        self.name_edit = QLineEdit(placeholderText="recipe name")
        self.name_edit.textEdited.connect(lambda text: self.doc.set_top("name", text))
        self.seed_box = QSpinBox(minimum=0, maximum=2**31 - 1)
        self.seed_box.setToolTip("Random seed of the run (data order, initialisation of new layers)")
        self.seed_box.valueChanged.connect(lambda value: self.doc.set_top("seed", value))
        top = QHBoxLayout()
        top.addWidget(QLabel("Name"))
        top.addWidget(self.name_edit, 1)
        top.addWidget(QLabel("Seed"))
        top.addWidget(self.seed_box)
        self.title = QLabel()
        self.title.setObjectName("panelTitle")
        self.title.setWordWrap(True)
        self.scroll_area = QScrollArea()
        self.scroll_area.setWidgetResizable(True)
        self.status = QLabel()
        self.status.setObjectName("recipeStatus")
        self.status.setWordWrap(True)
        lower = QWidget()
        col = QVBoxLayout(lower)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.title)
        col.addWidget(self.scroll_area, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.cards)
        split.addWidget(lower)
        split.setStretchFactor(0, 2)   # the cards get 2/5 of the height, the settings form 3/5
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.toolbar)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)
        doc.changed.connect(self.refresh)
        self.refresh()

    def _make_toolbar(self) -> QToolBar:
        bar = QToolBar()
        bar.setIconSize(QSize(16, 16))
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.palette_menu = QMenu("Add stage", self)
        for stage in stages.all_kinds():
            act = self.palette_menu.addAction(f"{stage.title}  ({stage.kind})")
            act.setToolTip(stage.description)
            act.setData(stage.kind)
            act.triggered.connect(lambda _checked=False, k=stage.kind: self.add(k))
        self.palette_menu.setToolTipsVisible(True)
        add = QToolButton(popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        add.setText("Add stage")
        add.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder))
        add.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        add.setMenu(self.palette_menu)
        bar.addWidget(add)
        sp = QStyle.StandardPixmap
        self.actions_by_name: dict[str, QAction] = {}
        for name, icon, tip, slot, key in (
                ("Duplicate", sp.SP_FileDialogDetailedView, "Duplicate the selected stage", self.duplicate, "Ctrl+D"),
                ("Remove", sp.SP_TrashIcon, "Remove the selected stage", self.remove, QKeySequence.StandardKey.Delete),
                ("Up", sp.SP_ArrowUp, "Move the selected stage up", lambda: self.shift(-1), "Ctrl+Up"),
                ("Down", sp.SP_ArrowDown, "Move the selected stage down", lambda: self.shift(1), "Ctrl+Down")):
            act = QAction(self.style().standardIcon(icon), name, self)
            act.setToolTip(tip)
            act.setShortcut(QKeySequence(key))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(slot)
            bar.addAction(act)
            self.addAction(act)
            self.actions_by_name[name] = act
        return bar

    # --- commands --------------------------------------------------------------------------------
    def current(self) -> int:
        return self.cards.currentRow()

    def add(self, kind: str) -> int:
        at = self.current() + 1 if self.current() >= 0 else len(self.doc.stages)
        self.doc.add_stage(kind, at)
        self.cards.setCurrentRow(at)
        return at

    def remove(self) -> None:
        i = self.current()
        if i >= 0:
            self.doc.remove_stage(i)
            self.cards.setCurrentRow(min(i, len(self.doc.stages) - 1))

    def duplicate(self) -> None:
        i = self.current()
        if i >= 0:
            self.doc.duplicate_stage(i)
            self.cards.setCurrentRow(i + 1)

    def shift(self, delta: int) -> None:
        self._move(self.current(), self.current() + delta)

    def _move(self, src: int, dst: int) -> None:
        if 0 <= src < len(self.doc.stages) and 0 <= dst < len(self.doc.stages) and src != dst:
            self.doc.move_stage(src, dst)
            self.cards.setCurrentRow(dst)

    def rename(self, i: int) -> None:
        """A stage's label (shown on its card instead of the kind's title)."""
        if not 0 <= i < len(self.doc.stages):
            return
        text, ok = QInputDialog.getText(self, "Stage label", "Label (empty: the kind's title):",
                                        text=self.doc.stages[i].get("label", ""))
        if ok:
            self.doc.edit("rename stage", lambda s: s["stages"][i].__setitem__("label", text.strip()))

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        i = self.cards.row(item)
        enabled = item.checkState() == Qt.CheckState.Checked
        if 0 <= i < len(self.doc.stages) and self.doc.stages[i].get("enabled", True) != enabled:
            self.doc.set_enabled(i, enabled)

    # --- showing the document ------------------------------------------------------------------------
    def set_layer_names(self, names: list[str]) -> None:
        self.layer_names = list(names)
        if self.form:
            self.form.set_layer_names(self.layer_names)
        self.doc.set_layer_names(self.layer_names)

    def refresh(self) -> None:
        row = self.current()
        self._filling = True
        self.cards.blockSignals(True)
        try:
            self.cards.clear()
            warn = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            exported = False
            for i, s in enumerate(self.doc.stages):
                stage = stages.get(s["kind"]) if s["kind"] in stages.available() else None
                title = s.get("label") or (stage.title if stage else s["kind"])
                late = exported and s.get("enabled", True) and (stage is None or stage.changes_model)
                exported = exported or (s["kind"] == "export" and s.get("enabled", True))
                text = f"{i + 1}. {title}\n{summary(s['params'], kind=s['kind'])}"
                item = QListWidgetItem(text + (f"\n{AFTER_EXPORT}" if late else ""))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsDragEnabled)
                item.setCheckState(Qt.CheckState.Checked if s.get("enabled", True) else Qt.CheckState.Unchecked)
                item.setData(AFTER_EXPORT_ROLE, bool(late))
                errors = self.doc.stage_errors(i)
                if errors:
                    item.setIcon(warn)
                    item.setToolTip("\n".join(f"{k or s['kind']}: {v}" for k, v in errors.items()))
                elif late:
                    item.setIcon(warn)
                    item.setToolTip(f"{AFTER_EXPORT}: this stage runs after the Export stage, so the exported files do "
                                    "not include what it does. Move it above Export, or add another Export after it.")
                else:
                    item.setToolTip(stage.description if stage else "")
                if not s.get("enabled", True):
                    item.setForeground(Qt.GlobalColor.gray)
                self.cards.addItem(item)
            if self.doc.stages:
                self.cards.setCurrentRow(min(max(row, 0), len(self.doc.stages) - 1))
        finally:
            self.cards.blockSignals(False)
            self._filling = False
        self._show_form()
        top = self.doc.state["top"]
        if self.name_edit.text() != str(top.get("name") or ""):
            self.name_edit.setText(str(top.get("name") or ""))
        if self.seed_box.value() != int(top.get("seed") or 0):
            self.seed_box.blockSignals(True)
            self.seed_box.setValue(int(top.get("seed") or 0))
            self.seed_box.blockSignals(False)
        problems = self.doc.all_errors()
        if not self.doc.stages:
            text = "Empty recipe: add a stage."
        elif problems:
            text = f"⚠ {len(problems)} problem(s): " + "; ".join(problems[:3])
        else:
            text = f"✓ {len(self.doc.stages)} stage(s), ready to run."
        self.status.setText(text)
        self.status.setProperty("invalid", bool(problems))
        self.status.style().unpolish(self.status)
        self.status.style().polish(self.status)
        self.statusChanged.emit(text)

    def _show_form(self) -> None:
        i = self.current()
        if i < 0 or i >= len(self.doc.stages):
            self.title.setText("Select a stage to edit its settings." if self.doc.stages else "")
            self.scroll_area.takeWidget()
            self.form, self.form_index = None, -1
            return
        s = self.doc.stages[i]
        if self.form is None or self.form_index != i or self.form.kind != s["kind"]:
            stage = stages.get(s["kind"])
            self.title.setText(f"<b>{i + 1}. {stage.title}</b> ({s['kind']})")
            self.title.setToolTip(stage.description)
            self.form = ParamForm(s["kind"], self.layer_names, description=stage.description)
            self.form.edited.connect(lambda name, value, idx=i: self.doc.set_value(idx, name, value))
            self.form_index = i
            self.scroll_area.setWidget(self.form)
        self.form.set_values(s["params"])
        self.form.set_errors(self.doc.stage_errors(i))
        self._scroll_to_error()

    def _scroll_to_error(self) -> None:
        """A field that newly shows an error is scrolled into view (with its message), wherever the form was."""
        first = self.form.first_error() if self.form else None
        if first and first != self._shown_error and self.form:
            self.scroll_area.ensureWidgetVisible(self.form.field_box(first), 0, 24)
        self._shown_error = first
