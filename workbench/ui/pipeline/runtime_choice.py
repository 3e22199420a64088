"""The deploy runtime choice, next to the device: the recipe's `runtime:` (each snapshot is timed in eager and on it).

The combo follows the recipe (opening a recipe with `runtime:` selects it; undo and redo too) and choosing writes it
into the recipe as one undo step, so Save recipe keeps it and runs get it. A runtime that cannot run here is listed
greyed, with the core's reason (`Runtime.missing()`: what to install) as its tooltip; a recipe naming one still shows
it, and the run is refused with that reason."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox

from ...core import runtimes
from .recipe_doc import RecipeDocument

TIP = ("Where the model will run: each snapshot is timed in PyTorch eager and, for another runtime, exported to it, "
       "checked against eager and timed the same way (median of repeats with p10–p90, one thread). Saved in the recipe "
       "as runtime:.")


class RuntimeChoice(QComboBox):
    """eager / compile / onnxruntime / openvino / tensorrt, bound to a recipe document's `runtime:`."""

    def __init__(self, doc: RecipeDocument, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("runtimeCombo")
        self.setAccessibleName("Runtime")
        self.doc = doc
        self.missing: dict[str, str | None] = {}
        model = self.model()
        for i, name in enumerate(runtimes.names()):
            runtime = runtimes.get(name)
            self.missing[name] = why = runtime.missing()
            self.addItem(name)
            self.setItemData(i, f"{name}: {runtime.description}" + (f"\nNot usable here: {why}" if why else ""),
                             Qt.ItemDataRole.ToolTipRole)
            item = model.item(i) if isinstance(model, QStandardItemModel) else None
            if why and item is not None:
                item.setEnabled(False)          # greyed: not chosen from the list; its tooltip says why
        self.activated.connect(self._chosen)
        doc.changed.connect(self.follow)
        self.follow()

    def runtime(self) -> str:
        """The runtime the recipe names (the default when it names none)."""
        value = self.doc.state["top"].get("runtime")
        return value if isinstance(value, str) and value else runtimes.DEFAULT

    def refusal(self) -> str | None:
        """Why a run cannot use the chosen runtime here (the core's words), or None."""
        why = self.missing.get(self.runtime())
        return f"runtime {self.runtime()}: cannot be used here: {why}" if why else None

    def follow(self) -> None:
        """Show the recipe's runtime (an unknown name: none selected; the run says what is wrong)."""
        name = self.runtime()
        self.setCurrentIndex(self.findText(name))
        why = self.missing.get(name)
        self.setToolTip(TIP + (f"\n\n{name} cannot be used here: {why}" if why else ""))

    def _chosen(self, index: int) -> None:
        name = self.itemText(index)
        if name != self.runtime():       # the default is written as no runtime: at all, as the core saves it
            self.doc.set_top("runtime", None if name == runtimes.DEFAULT else name)
