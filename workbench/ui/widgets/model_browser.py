"""Model browser: the module tree (lazy model/view) with shapes, parameters, non-zeros, sparsity and FLOPs."""
from __future__ import annotations

import html

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QRect, QSortFilterProxyModel, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QLabel, QLineEdit, QStyledItemDelegate, QStyleOptionViewItem, QTreeView, QVBoxLayout, QWidget

from ...core.data.preprocess import describe as describe_preprocessing
from .. import formatting as F
from ..table_fit import ColumnFitter

COLUMNS = ("Module", "Type", "Shape", "Params", "Non-zeros", "Sparsity", "FLOPs", "Params before", "Channels")
TIPS = ("Module name (qualified)", "Module type", "Shape of its weight", "Parameters (this module and everything in it)",
        "Non-zero parameters", "Zeros among the prunable weights (Linear and convolution weights); – for other layers",
        "FLOPs of one forward pass (batch 1)", "Parameters in the run's baseline snapshot (00-baseline)",
        "Output channels (or neurons): now / in the baseline")
SORT_ROLE = Qt.ItemDataRole.UserRole
NAME_ROLE = Qt.ItemDataRole.UserRole + 1
SPARSITY_COL, BEFORE_COL, CHANNELS_COL = 5, 7, 8
DISPLAY = (str, str, F.shape, F.count, F.count, F.percent, F.human, F.count, str)


class Node:
    __slots__ = ("name", "short", "type", "row", "parent", "children", "layer", "before", "_totals")

    def __init__(self, name: str, short: str, parent: Node | None) -> None:
        self.name, self.short, self.parent = name, short, parent
        self.children: list[Node] = []
        self.type = ""
        self.row: dict | None = None   # the inspect row when this module owns parameters
        self.layer = False
        self.before: dict | None = None   # the same layer in the baseline snapshot: {"params", "shape"}
        self._totals: tuple | None = None

    def totals(self) -> tuple[int, int, int | None, int, int, int]:
        """(params, non-zeros, FLOPs or None when uncountable, prunable weights, their non-zeros, params in the
        baseline) of this module and everything below it, computed once."""
        if self._totals is not None:
            return self._totals
        p = nz = w = nzw = pb = 0
        fl: int | None = 0
        if self.row:
            p, nz, fl = self.row["params"], self.row["nonzero_params"], self.row["flops"]
            w, nzw = self.row.get("weights", 0), self.row.get("nonzero_weights", 0)
            pb = (self.before or {}).get("params") or 0
        for c in self.children:
            cp, cnz, cfl, cw, cnzw, cpb = c.totals()
            p, nz, w, nzw, pb = p + cp, nz + cnz, w + cw, nzw + cnzw, pb + cpb
            fl = None if fl is None or cfl is None else fl + cfl
        self._totals = (p, nz, fl, w, nzw, pb)
        return self._totals

    def channels(self) -> str:
        """"32 / 64" (now / baseline) for a layer whose outputs changed, "64" otherwise, "" for a container."""
        now = (self.row or {}).get("shape") or []
        before = (self.before or {}).get("shape") or []
        if not now:
            return ""
        return f"{now[0]} / {before[0]}" if before and before[0] != now[0] else str(now[0])


def build_tree(info: dict) -> Node:
    """Nodes for every module on the path to a layer that owns parameters."""
    root = Node("", "", None)
    nodes = {"": root}
    types = info.get("module_types", {})
    baseline = info.get("baseline") or {}
    root.type = types.get("", "")
    for row in info["layers"]:
        parts = row["name"].split(".") if row["name"] else []
        for depth in range(1, len(parts) + 1):
            name = ".".join(parts[:depth])
            if name not in nodes:
                parent = nodes[".".join(parts[:depth - 1])]
                node = Node(name, parts[depth - 1], parent)
                node.type = types.get(name, "")
                parent.children.append(node)
                nodes[name] = node
        target = nodes[row["name"]]
        target.row, target.layer = row, True
        target.type = row["type"]
        target.before = baseline.get(row["name"])
    return root


def changed_from_baseline(info: dict) -> bool:
    """Whether any layer's shape or parameter count differs from the run's baseline (structured pruning,
    restructuring, new heads): only then does the browser show the before/after columns."""
    baseline = info.get("baseline")
    if not baseline:
        return False
    now = {r["name"]: r for r in info["layers"]}
    return set(now) != set(baseline) or any(
        (baseline[n].get("params"), list(baseline[n].get("shape") or [])) != (r["params"], list(r.get("shape") or []))
        for n, r in now.items())


class LayerTreeModel(QAbstractItemModel):
    """Serves rows from the node tree on demand; numbers are computed when a cell is asked for."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.root = Node("", "", None)

    def set_info(self, info: dict | None) -> None:
        self.beginResetModel()
        self.root = build_tree(info) if info else Node("", "", None)
        self.endResetModel()

    def node(self, index: QModelIndex) -> Node:
        return index.internalPointer() if index.isValid() else self.root

    def index(self, row, column, parent=QModelIndex()):
        node = self.node(parent)
        if 0 <= row < len(node.children) and 0 <= column < len(COLUMNS):
            return self.createIndex(row, column, node.children[row])
        return QModelIndex()

    def parent(self, index=QModelIndex()):
        if not index.isValid():
            return QModelIndex()
        parent = index.internalPointer().parent
        if parent is None or parent is self.root:
            return QModelIndex()
        return self.createIndex(parent.parent.children.index(parent), 0, parent)

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.column() > 0 else len(self.node(parent).children)

    def hasChildren(self, parent=QModelIndex()):
        return bool(self.node(parent).children)

    def columnCount(self, parent=QModelIndex()):
        return len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return TIPS[section]
        return None

    def raw(self, node: Node, column: int):
        params, nonzero, flops, weights, nz_weights, before = node.totals()
        sparsity = 1.0 - nz_weights / weights if weights else None     # prunable weights only
        values = (node.short, node.type, node.row["shape"] if node.row else None, params, nonzero, sparsity, flops,
                  before or None, node.channels())
        return values[column]

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        try:
            return self._data(index, role)
        except Exception:  # noqa: BLE001 - a failing cell must never take the view down
            import traceback
            traceback.print_exc()
            return None

    def _data(self, index, role):
        node, col = index.internalPointer(), index.column()
        if role == NAME_ROLE:
            return node.name
        if role == SORT_ROLE:
            value = self.raw(node, col)
            return F.shape(value) if col == 2 else value
        if role == Qt.ItemDataRole.DisplayRole:
            return DISPLAY[col](self.raw(node, col))
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(node)
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and not node.layer and col >= 3:
            return QColor("#6b7280")
        return None


    def tooltip(self, node: Node) -> str:
        text = f"{node.name or '(model)'} ({node.type}): {self.raw(node, 3):,} parameters"
        if node.row and node.row.get("shape"):
            text += f", weight {F.shape(node.row['shape'])}"
        before = self.raw(node, 7)
        if before:
            text += f"; baseline {before:,} parameters"
            if "/" in node.channels():
                text += f", output channels {node.channels()}"
        sparsity = self.raw(node, 5)
        text += f"; sparsity {F.percent(sparsity)}" if sparsity is not None else "; no prunable weights"
        return text + f"; {F.human(self.raw(node, 6))} FLOPs"


class SparsityDelegate(QStyledItemDelegate):
    """Draws sparsity as a horizontal bar with the percentage on top."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index) -> None:
        value = index.data(SORT_ROLE)
        if not isinstance(value, float):
            return super().paint(painter, option, index)
        self.initStyleOption(option, index)
        painter.save()
        if option.state & option.state.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        rect = option.rect.adjusted(3, 2, -3, -2)
        bar = rect.adjusted(0, 0, -42, 0)
        painter.fillRect(bar, QColor("#e5e7eb"))
        painter.fillRect(QRect(bar.left(), bar.top(), int(bar.width() * min(1.0, max(0.0, value))), bar.height()),
                         QColor("#f59e0b") if value < 0.5 else QColor("#dc2626"))
        painter.setPen(QColor("#111827"))
        painter.drawText(rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, F.percent(value))
        painter.restore()


class NameFilter(QSortFilterProxyModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setRecursiveFilteringEnabled(True)
        self.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setFilterRole(NAME_ROLE)
        self.setSortRole(SORT_ROLE)


class ModelBrowser(QWidget):
    """Totals on top, a filter box, and the module tree. Emits `layerSelected(name)` for layers with weights."""

    layerSelected = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.info: dict | None = None
        self.model = LayerTreeModel(self)
        self.proxy = NameFilter(self)
        self.proxy.setSourceModel(self.model)
        self.totals = QLabel("No model open. Use File ▸ Open model… or drop a file here.")
        self.totals.setObjectName("totals")
        self.totals.setWordWrap(True)
        self.totals.setToolTip("Totals over every layer, as `workbench inspect` reports them")
        self.filter = QLineEdit(placeholderText="Filter modules by name…", clearButtonEnabled=True)
        self.filter.textChanged.connect(self._filter)
        self.tree = QTreeView()
        self.tree.setModel(self.proxy)
        self.tree.setSortingEnabled(True)
        self.tree.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        self.tree.setItemDelegateForColumn(SPARSITY_COL, SparsityDelegate(self.tree))
        header = self.tree.header()
        header.moveSection(BEFORE_COL, 4)        # shown beside Params: "Params · Params before · Channels · Non-zeros"
        header.moveSection(CHANNELS_COL, 5)
        self.fitter = ColumnFitter(self.tree)
        self._show_baseline(False)
        self.tree.selectionModel().currentRowChanged.connect(self._current_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.totals)
        layout.addWidget(self.filter)
        layout.addWidget(self.tree)

    def set_loading(self, spec: str) -> None:
        self.totals.setText(f"Loading and measuring <b>{spec}</b>…")

    def set_failed(self, spec: str, message: str) -> None:
        self.totals.setText(f"<span style='color:#b91c1c'>Could not open {spec}: {message}</span>")

    def show_info(self, info: dict, label: str = "") -> None:
        """Show a model's measurements; `label` names a snapshot shown instead of the current model."""
        self.info = info
        self.model.set_info(info)
        self.totals.setToolTip(info.get("warning") or "Totals over every layer, as `workbench inspect` reports them")
        t = info["total"]
        acc = f" · test accuracy <b>{F.percent(info['accuracy'], 2)}</b>" if info.get("accuracy") is not None else ""
        warning = info.get("warning") or ""
        warn = f"<br><span style='color:#b45309'>{warning[:140] + ('…' if len(warning) > 140 else '')}</span>" if warning else ""
        self.totals.setText(
            f"<b>{label or info['model']}</b> · input {F.shape(info['input_shape'])}<br>"
            f"<b>{t['params']:,}</b> params · <b>{t['nonzero_params']:,}</b> non-zero · sparsity "
            f"<b>{F.percent(t['sparsity'])}</b> · <b>{F.human(t['flops'])}</b> FLOPs · {F.size(t['dense_bytes'])} fp32"
            f"{acc}{self._against_baseline(info)}{self._preprocessing(info)}{warn}")
        self.tree.expandToDepth(1 if len(info["layers"]) < 60 else 0)
        self._show_baseline(changed_from_baseline(info))
        self.fitter.fit()

    @staticmethod
    def _preprocessing(info: dict) -> str:
        """The preprocessing the data's loaders apply (and where it came from: yours, the weights' own or the
        default), else what the weights expect; their class names, and what loading them did (a new head)."""
        parts, used = [], info.get("preprocessing")
        pre = info.get("preprocess")
        if used:
            origin, steps = describe_preprocessing(used)
            parts.append(f"<b>preprocessing</b> ({html.escape(origin, False)}): {html.escape(steps, False)}")
        elif pre:
            numbers = lambda v: ", ".join(f"{x:.3g}" for x in v)
            parts.append(html.escape(f"the weights' preprocessing: input {F.shape(pre['input_size'])}, resize "
                                     f"{pre.get('resize')}, center crop {pre.get('crop_pct')}, {pre.get('interpolation')}; "
                                     f"mean ({numbers(pre['mean'])}), std ({numbers(pre['std'])})"))
        classes = info.get("classes")
        if classes:
            parts.append(html.escape(f"{len(classes):,} classes: {', '.join(classes[:4])}{', …' if len(classes) > 4 else ''}"))
        parts += [html.escape(text) for text in info.get("notes") or []]
        return "".join(f"<br><span style='color:#374151'>{text}</span>" for text in parts)

    @staticmethod
    def _against_baseline(info: dict) -> str:
        baseline = info.get("baseline") or {}
        before = sum(int(v.get("params") or 0) for v in baseline.values())
        if not before or not changed_from_baseline(info):
            return ""
        now = info["total"]["params"] / before
        return f"<br>against the baseline's <b>{before:,}</b> params: <b>{F.percent(now)}</b> " + \
            ("kept" if now <= 1 else "(layers added)")

    def _show_baseline(self, shown: bool) -> None:
        """The before/after columns, for a snapshot whose run has a baseline to compare with."""
        self.tree.setColumnHidden(BEFORE_COL, not shown)
        self.tree.setColumnHidden(CHANNELS_COL, not shown)

    def layer_names(self) -> list[str]:
        return [r["name"] for r in self.info["layers"]] if self.info else []

    def select_layer(self, name: str) -> None:
        for index in self._iter(QModelIndex()):
            if index.data(NAME_ROLE) == name:
                self.tree.setCurrentIndex(index)
                self.tree.scrollTo(index)
                return

    def _iter(self, parent):
        for row in range(self.proxy.rowCount(parent)):
            index = self.proxy.index(row, 0, parent)
            yield index
            yield from self._iter(index)

    def _filter(self, text: str) -> None:
        self.proxy.setFilterFixedString(text)
        if text:
            self.tree.expandAll()

    def _current_changed(self, current, _previous) -> None:
        node = self.model.node(self.proxy.mapToSource(current.siblingAtColumn(0)))
        if node.layer:
            self.layerSelected.emit(node.name)
