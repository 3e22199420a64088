"""Settings remembered between sessions (QSettings, INI format, so tests can point it at a folder)."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from ..core.data.settings import DataSettings, parse_settings
from ..core.errors import RecipeError

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
MAX_OPTIONS_TEXT = 1_000_000       # a remembered-options value longer than this is not read at all


def _options(key: str) -> dict:
    """The JSON mapping spec -> options kept under `key`; {} when it is missing, too long, or not a mapping."""
    text = value(key, "{}")
    if not isinstance(text, str) or len(text) > MAX_OPTIONS_TEXT:
        return {}
    try:
        known = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return known if isinstance(known, dict) else {}


def data_options(spec: str) -> dict:
    """The data settings `spec` was last used with (workers, image size, preprocessing, ...), so Open data's recent
    list and a restart reopen it the same way (see _checked_data: hostile values are dropped)."""
    return _checked_data(spec, _options("recent/data_options").get(spec))


def _checked_data(spec: str, stored) -> dict:
    """Only known settings, each one the recipe's parser accepts (a wrong type, an out-of-range number or an
    unknown key is dropped), at their non-default values, never the spec itself."""
    if not isinstance(stored, dict):
        return {}
    names = {f for f in DataSettings.__dataclass_fields__ if f != "spec"}
    kept = {}
    for key, val in stored.items():
        try:
            if key in names and val is not None:
                parse_settings({"spec": spec, key: val})
                kept[key] = val
        except (RecipeError, TypeError, ValueError, RecursionError):
            continue
    try:
        checked = parse_settings({"spec": spec, **kept}).to_dict()
    except (RecipeError, TypeError, ValueError):      # settings that do not go together (a crop larger than the size)
        return {}
    return {k: v for k, v in checked.items() if k != "spec"}


def remembered_data(spec: str) -> DataSettings | None:
    """`spec` with its remembered data settings (a DataSettings), or None when none are remembered."""
    options = data_options(spec)
    return parse_settings({"spec": spec, **options}) if options else None


def remember_data(spec: str, options: dict | None = None) -> None:
    """`spec` at the top of the recent data, with the settings the recipe now has for it (see data_options); the
    remembered settings are bounded to the recent list."""
    add_recent("data", spec)
    known = {k: v for k, v in _options("recent/data_options").items() if k in recent("data") and k != spec}
    kept = _checked_data(spec, options or {})
    if kept:
        known[spec] = kept
    set_value("recent/data_options", json.dumps(known))


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
