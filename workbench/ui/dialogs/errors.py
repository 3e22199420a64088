"""Readable error messages: a dialog with the one-line message and the details on demand.

`install_excepthook()` turns any unexpected exception on the GUI thread into such a dialog
instead of killing the application.
"""
from __future__ import annotations

import sys
import traceback

from PySide6.QtCore import Qt, QThread, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from ..formatting import one_based


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    """`message` with stage numbers as the cards show them ("stages[0].lr" reads "stage 1 lr")."""
    message = one_based(message)
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("errorBox")
    if details and details.strip() != message.strip():
        box.setDetailedText(details)
    box.exec()


def show_info(parent: QWidget | None, title: str, message: str, details: str = "") -> None:
    box = QMessageBox(QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok, parent)
    if details:
        box.setDetailedText(details)
    box.exec()


def ask(parent: QWidget | None, title: str, question: str, yes: str = "", no: str = "") -> bool:
    """A yes/no question (No is the default); `yes` and `no` name the buttons when Yes and No would be unclear."""
    box = QMessageBox(QMessageBox.Icon.Question, title, question,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, parent)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    for which, text in ((QMessageBox.StandardButton.Yes, yes), (QMessageBox.StandardButton.No, no)):
        if text:
            _label(box.button(which), text)
    return box.exec() == QMessageBox.StandardButton.Yes


BUTTON_TEXT_PX = 300     # a button naming a long path is elided in the middle (the whole text in its tooltip)


def _label(button, text: str) -> None:
    """`text` on a button, never wider than BUTTON_TEXT_PX: two long ones side by side were cut off the screen."""
    shown = button.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, BUTTON_TEXT_PX)
    button.setText(shown)
    if shown != text:
        button.setToolTip(text)


def ask_save(parent: QWidget | None, title: str, question: str) -> str:
    """Save / Don't save / Cancel: returns "save", "discard" or "cancel"."""
    buttons = QMessageBox.StandardButton
    box = QMessageBox(QMessageBox.Icon.Question, title, question, buttons.Yes | buttons.No | buttons.Cancel, parent)
    box.button(buttons.Yes).setText("Save")
    box.button(buttons.No).setText("Don't save")
    box.setDefaultButton(buttons.Yes)
    box.setEscapeButton(buttons.Cancel)
    answer = box.exec()
    return "save" if answer == buttons.Yes else "discard" if answer == buttons.No else "cancel"


_showing = False


def _excepthook(kind, value, tb) -> None:
    global _showing
    text = "".join(traceback.format_exception(kind, value, tb))
    sys.stderr.write(text)
    app = QApplication.instance()
    if app is None or _showing or issubclass(kind, KeyboardInterrupt):
        return

    def show() -> None:
        global _showing
        _showing = True
        try:
            show_error(QApplication.activeWindow(), "Unexpected error",
                       f"Something went wrong: {kind.__name__}: {value}\n\nThe window stays usable; "
                       "details below can help a bug report.", text)
        finally:
            _showing = False

    if QThread.currentThread() is app.thread():
        show()
    else:
        QTimer.singleShot(0, app, show)


def install_excepthook() -> None:
    sys.excepthook = _excepthook
