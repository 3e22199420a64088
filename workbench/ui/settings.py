"""Settings remembered between sessions (QSettings, INI format, so tests can point it at a folder)."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

ORG, APP = "workbench", "workbench"
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def recent(kind: str) -> list[str]:
    value = settings().value(f"recent/{kind}", [])
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(kind: str, item: str) -> list[str]:
    items = [item] + [i for i in recent(kind) if i != item]
    items = items[:MAX_RECENT]
    settings().setValue(f"recent/{kind}", items)
    return items


def value(key: str, default=None):
    return settings().value(key, default)


def set_value(key: str, val) -> None:
    settings().setValue(key, val)


def restore_window(window, version: int) -> None:
    """The main window's size, position and dock layout as they were when it last closed."""
    geometry, state = value("window/geometry"), value("window/state")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    if isinstance(state, QByteArray):
        window.restoreState(state, version)


def save_window(window, version: int) -> None:
    set_value("window/geometry", window.saveGeometry())
    set_value("window/state", window.saveState(version))
