"""Settings remembered between sessions (QSettings, INI format, so tests can point it at a folder)."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

ORG, APP = "workbench", "workbench"
MAX_RECENT = 10


def settings() -> QSettings:
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORG, APP)


def recent(kind: str) -> list[str]:
    value: Any = settings().value(f"recent/{kind}", [])     # a str when one item was saved, a list otherwise
    if isinstance(value, str):
        value = [value]
    return [str(v) for v in (value or [])]


def add_recent(kind: str, item: str) -> list[str]:
    items = [item] + [i for i in recent(kind) if i != item]
    items = items[:MAX_RECENT]
    settings().setValue(f"recent/{kind}", items)
    return items


def model_options(spec: str) -> dict:
    """How a recent model was opened (its architecture, ...) so Recent and a restart reopen it the same way.
    Never the trust choice: a file that can run code is asked about again each time it is opened."""
    try:
        options = json.loads(str(value("recent/model_options", "{}"))).get(spec) or {}
    except (ValueError, AttributeError):
        return {}
    return {k: v for k, v in options.items() if k in REMEMBERED and isinstance(v, (str, bool)) and v}


def remember_model(spec: str, options: dict | None = None) -> None:
    """`spec` at the top of the recent models, with the options it was opened with (see model_options)."""
    add_recent("models", spec)
    try:
        known = json.loads(str(value("recent/model_options", "{}")))
        known = known if isinstance(known, dict) else {}
    except ValueError:
        known = {}
    kept = {k: v for k, v in (options or {}).items() if k in REMEMBERED and isinstance(v, (str, bool)) and v}
    known = {k: v for k, v in known.items() if k in recent("models") and k != spec}
    if kept:
        known[spec] = kept
    set_value("recent/model_options", json.dumps(known))


REMEMBERED = ("arch", "replace_head")


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
