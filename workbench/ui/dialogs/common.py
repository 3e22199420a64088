"""What the dialogs share: standard buttons wired to accept and reject, and rows of a field or buttons."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QHBoxLayout, QPushButton, QWidget

Buttons = QDialogButtonBox.StandardButton


def button_box(dialog: QDialog, buttons: QDialogButtonBox.StandardButton = Buttons.Ok | Buttons.Cancel) -> QDialogButtonBox:
    box = QDialogButtonBox(buttons)
    box.accepted.connect(dialog.accept)
    box.rejected.connect(dialog.reject)
    return box


def with_button(field: QWidget, text: str, on_click: Callable[[], None]) -> QHBoxLayout:
    """The field takes the width, a button beside it."""
    row = buttons_row((text, on_click), stretch=False)
    row.insertWidget(0, field, 1)
    return row


def buttons_row(*buttons: tuple[str, Callable[[], None]], stretch: bool = True) -> QHBoxLayout:
    """Buttons side by side (then empty space)."""
    row = QHBoxLayout()
    for text, on_click in buttons:
        button = QPushButton(text)
        button.clicked.connect(on_click)
        row.addWidget(button)
    if stretch:
        row.addStretch()
    return row
