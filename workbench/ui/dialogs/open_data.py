"""Choosing the data and its settings: a spec (a kind from the list or typed, then a folder where it needs one) and
every data setting of a recipe's `data:` mapping (`workbench.core.data.settings`), its preprocessing included (the
model's own or the default, set here, or none). The result is a `DataSettings`, validated by the core's own
`parse_settings` (the recipe's parser); an invalid one is said under the fields and OK stays disabled."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
)

from ...core import limits
from ...core.data.preprocess import NONE, PreprocessSettings
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


PRE_MODES = (("auto", "the model's own, else the default"), ("set", "set here"), (NONE, "none: my tensors are ready"))
PRE_TIP = ("<b>the model's own, else the default</b>: what the weights were trained with (torchvision's weights, "
           "timm's config, a snapshot's record); without them, image folders get ImageNet's mean and std with a resize "
           "to size / 0.875 and a centre crop, the built-in data sets their own mean and std.<br>"
           "<b>set here</b>: resize, crop, mean and std as given (what is left at auto comes from the above).<br>"
           "<b>none</b>: the images are used as they are, pixels scaled to [0, 1]: no resize, crop or normalisation "
           "(every image must then have the same size).")


def _spin(name: str, special: str) -> QSpinBox:
    lo, hi = RANGES[name]
    box = QSpinBox(minimum=int(lo) - 1 if special else int(lo), maximum=int(min(hi, 2**31 - 1)))   # whole-number settings
    box.setSpecialValueText(special)
    box.setAccelerated(True)
    return box


class OpenDataDialog(QDialog):
    """A data spec and its settings; `settings()` is the result (None while they are invalid)."""

    def __init__(self, parent=None, current: str | DataSettings = "", recent: list[str] | None = None,
                 remembered: Callable[[str], DataSettings | None] | None = None) -> None:
        super().__init__(parent)
        self.remembered = remembered       # a recent spec picked from the list -> the settings it was last used with
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
        pre_group = self._preprocess_group()
        group = QGroupBox("Settings")
        group.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        settings_form = QFormLayout(group)
        note = QLabel("ignored when the data has its own val/ split")
        note.setToolTip("An image folder with train/, val/ and test/ brings its own val split")
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
        groups = QHBoxLayout()
        groups.addWidget(group, 1, Qt.AlignmentFlag.AlignTop)
        groups.addWidget(pre_group, 1, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(groups)
        layout.addWidget(self.error)
        layout.addStretch()
        layout.addWidget(self.buttons)
        self.set_settings(current if isinstance(current, DataSettings) else DataSettings(current or "sample:digits"))
        self.combo.currentTextChanged.connect(self._validate)
        self.combo.textActivated.connect(self._picked)
        self.val_fraction.valueChanged.connect(self._validate)
        self.augment.currentIndexChanged.connect(self._validate)
        for box in (*self.spins.values(), self.resize_side, self.crop):
            box.valueChanged.connect(self._validate)
        self.pre_mode.currentIndexChanged.connect(self._validate)
        self.mean.textChanged.connect(self._validate)
        self.std.textChanged.connect(self._validate)
        self._validate()

    def _preprocess_group(self) -> QGroupBox:
        """Preprocessing: the model's own (else the default), set here (resize, crop, mean, std), or none."""
        self.pre_mode = QComboBox()
        for key, text in PRE_MODES:
            self.pre_mode.addItem(text, key)
        self.pre_mode.setToolTip(PRE_TIP)
        self.resize_side, self.crop = (QSpinBox(minimum=0, maximum=limits.MAX_IMAGE_SIDE) for _ in range(2))
        for side in (self.resize_side, self.crop):
            side.setSpecialValueText("auto")
        self.resize_side.setToolTip("Resize the shorter side to this many pixels first (auto: size / the crop fraction, "
                               "0.875 unless the weights say)")
        self.crop.setToolTip("Then cut a centre crop of this many pixels a side: the model's input size (auto: the "
                             "image size above, else the model's)")
        self.mean, self.std = QLineEdit(placeholderText="auto, e.g. 0.485, 0.456, 0.406"), QLineEdit(placeholderText="auto, e.g. 0.229, 0.224, 0.225")
        self.mean.setToolTip("Per channel (one value for all), on pixels scaled to [0, 1]; give mean and std together")
        self.std.setToolTip(self.mean.toolTip())
        group = QGroupBox("Preprocessing")
        group.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        pre_form = QFormLayout(group)
        pre_form.addRow("Use", self.pre_mode)
        for label, box in (("Resize", self.resize_side), ("Crop", self.crop), ("Mean", self.mean), ("Std", self.std)):
            pre_form.addRow(label, box)
        self.pre_note = QLabel("The Model panel shows the preprocessing in use and where it came from.")
        self.pre_note.setWordWrap(True)
        self.pre_note.setStyleSheet("color: #6b7280;")
        pre_form.addRow(self.pre_note)
        return group

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Data folder")
        if folder:
            prefix = self.combo.currentText().partition(":")[0] or "imagefolder"
            self.combo.setCurrentText(f"{prefix}:{folder}")

    def _picked(self, spec: str) -> None:
        """A spec picked from the list: the fields take the settings it was last used with, when remembered."""
        chosen = self.remembered(spec) if self.remembered else None
        if chosen is not None:
            self.set_settings(chosen)

    # --- the settings <-> the fields ---------------------------------------------------------------------
    def set_settings(self, settings: DataSettings) -> None:
        self.combo.setCurrentText(settings.spec)
        self.val_fraction.setValue(settings.val_fraction)
        self.augment.setCurrentText(settings.augment)
        for name, box in self.spins.items():
            value = getattr(settings, name)
            box.setValue(box.minimum() if value is None else value)
        pre = settings.preprocess
        mode = NONE if pre == NONE else "set" if isinstance(pre, PreprocessSettings) else "auto"
        self.pre_mode.setCurrentIndex(self.pre_mode.findData(mode))
        given = pre if isinstance(pre, PreprocessSettings) else PreprocessSettings()
        self.resize_side.setValue(given.resize or 0)
        self.crop.setValue(given.crop or 0)
        self.mean.setText(", ".join(f"{v:g}" for v in given.mean or ()))
        self.std.setText(", ".join(f"{v:g}" for v in given.std or ()))

    def raw(self) -> dict:
        """The fields as a recipe's `data:` mapping (None for a spin box at its special value)."""
        raw = {"spec": self.spec(), "val_fraction": round(self.val_fraction.value(), 4), "augment": self.augment.currentText()}
        for name, box in self.spins.items():
            raw[name] = None if box.specialValueText() and box.value() == box.minimum() else box.value()
        raw["preprocess"] = self.raw_preprocess()
        return raw

    def raw_preprocess(self) -> dict | str | None:
        """The preprocessing fields as the recipe writes them: None (the model's own or the default), "none", or a
        mapping of what is set (mean and std as numbers where they read as numbers, else as typed, for the parser to
        name the field)."""
        mode = self.pre_mode.currentData()
        if mode != "set":
            return NONE if mode == NONE else None
        out: dict = {name: box.value() for name, box in (("resize", self.resize_side), ("crop", self.crop)) if box.value()}
        for name, edit in (("mean", self.mean), ("std", self.std)):
            if edit.text().strip():
                out[name] = _numbers(edit.text())
        return out

    def _enable_preprocess_fields(self) -> None:
        custom = self.pre_mode.currentData() == "set"
        for box in (self.resize_side, self.crop, self.mean, self.std):
            box.setEnabled(custom)

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
        self._enable_preprocess_fields()
        ok = self.settings() is not None
        self.error.setVisible(not ok)
        self.buttons.button(Buttons.Ok).setEnabled(ok)


def _numbers(text: str) -> list[float] | str:
    """"0.485, 0.456 0.406" -> [0.485, 0.456, 0.406]; text that does not read as numbers is returned as it is."""
    try:
        return [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        return text.strip()
