"""Choosing the data and its settings: a spec (a kind from the list or typed, then a folder where it needs one) and
every data setting of a recipe's `data:` mapping (`workbench.core.data.settings`). The result is a `DataSettings`,
validated by the core's own `parse_settings`; an invalid one is said under the fields and OK stays disabled."""
from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QDialog, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox, QLabel, QSizePolicy, QSpinBox, QVBoxLayout

from ...core.data.settings import AUGMENT, RANGES, DataSettings, parse_settings
from ...core.errors import RecipeError
from .common import Buttons, button_box, with_button

DATA_SPECS = ["sample:digits", "fake:3x32x32:10:256", "fake:3x224x224:1000:64", "mnist:", "fashionmnist:", "cifar10:",
              "cifar100:", "svhn:", "imagefolder:"]
AUGMENT_TIP = ("What <b>standard</b> does depends on the data:<br>"
               "• CIFAR-10/100: random 32×32 crops with 4 pixels of padding, horizontal flips<br>"
               "• SVHN: random crops with 4 pixels of padding, no flips (they would change the digits)<br>"
               "• image folders: random-resized crops and horizontal flips<br>"
               "• digits, MNIST, Fashion-MNIST and fake data: nothing<br>"
               "Training batches only; val, test and calibration batches are never augmented.")
# (name, label, special text for None or "", tooltip); None is the spin box's minimum, one below the range
OPTIONAL = (("batch_size", "Batch size", "default",
             "Training batch size (default: 64, or 32 for image folders); a stage's own batch_size overrides it"),
            ("eval_batch_size", "Eval batch size", "", "Batch size for measuring on val and test"),
            ("workers", "Workers", "auto",
             "Loader processes for image folders (auto: one per core, up to 4; 0: load in the run's own process)"),
            ("image_size", "Image size", "model's",
             "Resize images to this many pixels a side (model's: the model's preprocessing, else the data's own size)"),
            ("subset", "Subset", "all",
             "Train on only this many samples, for a quick try (val is carved first, from the whole train split)"))


def _spin(name: str, special: str) -> QSpinBox:
    lo, hi = RANGES[name]
    box = QSpinBox(minimum=lo - 1 if special else lo, maximum=min(hi, 2**31 - 1))
    box.setSpecialValueText(special)
    box.setAccelerated(True)
    return box


class OpenDataDialog(QDialog):
    """A data spec and its settings; `settings()` is the result (None while they are invalid)."""

    def __init__(self, parent=None, current: str | DataSettings = "", recent: list[str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open data")
        self.setMinimumWidth(560)
        self.combo = QComboBox(editable=True)
        self.combo.addItems(list(dict.fromkeys([*(recent or []), *DATA_SPECS])))
        self.combo.setMinimumContentsLength(36)
        form = QFormLayout()
        form.addRow("Data spec", with_button(self.combo, "Folder…", self._browse))
        help_label = QLabel("sample:digits is bundled. mnist:, cifar10:, … read local files (never downloaded): "
                            "add the folder after the colon.")
        help_label.setWordWrap(True)
        self.val_fraction = QDoubleSpinBox(minimum=RANGES["val_fraction"][0], maximum=RANGES["val_fraction"][1],
                                           singleStep=0.05, decimals=2)
        self.val_fraction.setToolTip("The fraction of the train split set aside as val, picked with the recipe's seed; "
                                     "decisions (sensitivity, thresholds, budgets) are taken on val, test is reported")
        self.augment = QComboBox()
        self.augment.addItems(list(AUGMENT))
        self.augment.setToolTip(AUGMENT_TIP)
        self.spins = {name: _spin(name, special) for name, _, special, _ in OPTIONAL}
        group = QGroupBox("Settings")
        group.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        settings_form = QFormLayout(group)
        note = QLabel("ignored when the data has its own val/ split",
                      toolTip="An image folder with train/, val/ and test/ brings its own val split")
        note.setStyleSheet("color: #6b7280;")
        settings_form.addRow("Val fraction", self.val_fraction)
        settings_form.addRow("", note)
        settings_form.addRow("Augment", self.augment)
        for name, label, _, tip in OPTIONAL:
            self.spins[name].setToolTip(tip)
            settings_form.addRow(label, self.spins[name])
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #b91c1c;")
        self.error.hide()
        self.buttons = button_box(self)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(help_label)
        layout.addWidget(group)
        layout.addWidget(self.error)
        layout.addStretch()
        layout.addWidget(self.buttons)
        self.set_settings(current if isinstance(current, DataSettings) else DataSettings(current or "sample:digits"))
        self.combo.currentTextChanged.connect(self._validate)
        self.val_fraction.valueChanged.connect(self._validate)
        self.augment.currentIndexChanged.connect(self._validate)
        for box in self.spins.values():
            box.valueChanged.connect(self._validate)
        self._validate()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder")
        if folder:
            prefix = self.combo.currentText().partition(":")[0] or "imagefolder"
            self.combo.setCurrentText(f"{prefix}:{folder}")

    # --- the settings <-> the fields ---------------------------------------------------------------------
    def set_settings(self, settings: DataSettings) -> None:
        self.combo.setCurrentText(settings.spec)
        self.val_fraction.setValue(settings.val_fraction)
        self.augment.setCurrentText(settings.augment)
        for name, box in self.spins.items():
            value = getattr(settings, name)
            box.setValue(box.minimum() if value is None else value)

    def raw(self) -> dict:
        """The fields as a recipe's `data:` mapping (None for a spin box at its special value)."""
        raw = {"spec": self.spec(), "val_fraction": round(self.val_fraction.value(), 4), "augment": self.augment.currentText()}
        for name, box in self.spins.items():
            raw[name] = None if box.specialValueText() and box.value() == box.minimum() else box.value()
        return raw

    def spec(self) -> str:
        return self.combo.currentText().strip()

    def settings(self) -> DataSettings | None:
        """The validated settings; None (and the reason under the fields) while they are not valid."""
        try:
            settings = parse_settings(self.raw(), "data")
        except RecipeError as exc:
            self.error.setText(exc.message)
            return None
        if ":" not in settings.spec:
            self.error.setText(f"data.spec: {settings.spec!r} should look like PREFIX:VALUE (sample:digits, mnist:/data/mnist)")
            return None
        return settings

    def _validate(self) -> None:
        ok = self.settings() is not None
        self.error.setVisible(not ok)
        self.buttons.button(Buttons.Ok).setEnabled(ok)
