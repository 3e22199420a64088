"""Stage settings: typed dataclass fields with metadata, and one validator for recipes and forms.

Each stage kind declares `Params` as a dataclass whose fields are made with `param(...)`. The
metadata (help text, range, choices, whether the value names layers) drives both the recipe
validator and the GUI's generated form, so the two can never disagree.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field, fields
from typing import Any

from .errors import RecipeError, clip
from .limits import MAX_ITEMS, MAX_TEXT_CHARS, short


def _at(path: str, key: Any) -> str:
    """`path.key` for an error message, the key one printable line however hostile (a recipe's mapping keys)."""
    return f"{path}.{clip(str(key), 60)}"


def param(default: Any, help: str = "", *, min: float | None = None, max: float | None = None,
          min_exclusive: bool = False, max_exclusive: bool = False, choices: list[Any] | None = None,
          layers: bool = False, check: Callable[[Any], str | None] | None = None,
          step: float | None = None, advanced: bool = False, when: dict[str, Any] | None = None,
          max_items: int = MAX_ITEMS) -> Any:
    """A stage setting. Ranges apply to every number inside the value (dict values, list items).

    `max_items` bounds a list or mapping (default `limits.MAX_ITEMS`): a setting whose cost grows with its
    length (one evaluation per sparsity, one head per width) sets a smaller one. Texts are at most
    `limits.MAX_TEXT_CHARS` characters, with no NUL, and a list of layer names or choices names each once.

    `when` = {other_field: value or [values]}: the setting matters only then (the GUI greys it out
    otherwise, and card summaries leave it out); it is still validated.
    """
    meta = {"help": help, "min": min, "max": max, "min_exclusive": min_exclusive, "max_exclusive": max_exclusive,
            "choices": choices, "layers": layers, "check": check, "step": step, "advanced": advanced, "when": when,
            "max_items": max_items}
    if isinstance(default, (list, dict)):
        def fresh() -> Any:                  # a copy for each instance
            return type(default)(default)
        return field(default_factory=fresh, metadata=meta)
    return field(default=default, metadata=meta)


def param_fields(cls: type) -> list[tuple[dataclasses.Field[Any], Any]]:
    """(field, resolved type) for each field of a Params class."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in fields(cls)]


def applies(meta: Any, values: dict[str, Any]) -> bool:
    """Whether a setting with this metadata matters given the other settings' `values`."""
    when = meta.get("when") or {}
    for name, wanted in when.items():
        options = wanted if isinstance(wanted, (list, tuple, set)) else [wanted]
        if name in values and values[name] not in options:
            return False
    return True


def default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return "list"
    if origin is dict:
        return "mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


class _Mismatch(Exception):
    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path, self.message = path, message


def _finite_everywhere(value: Any, path: str) -> None:
    """_Mismatch at the first NaN or infinity inside a value of any shape."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _Mismatch(path, f"must be a finite number, got {value}")
    if isinstance(value, dict):
        for k, v in value.items():
            _finite_everywhere(v, _at(path, k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _finite_everywhere(v, f"{path}[{i}]")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        _finite_everywhere(value, path)
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, path)
            except _Mismatch as exc:
                errors.append(exc)
                if arg is str and isinstance(value, str):   # text of the right type, wrong content: say why
                    raise
        deepest = max(errors, key=lambda e: len(e.path))
        if deepest.path != path:
            raise deepest
        raise _Mismatch(path, f"expected {type_name(tp)}, got {type(value).__name__} {short(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise _Mismatch(path, "expected null")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch(path, f"expected true or false, got {short(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch(path, f"expected an integer, got {short(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                raise _Mismatch(path, "must be a finite number, got an integer too large for a float") from None
            if not math.isfinite(number):
                raise _Mismatch(path, f"must be a finite number, got {number}")
            return number
        raise _Mismatch(path, f"expected a number, got {short(value)}")
    if tp is str:
        if not isinstance(value, str):
            raise _Mismatch(path, f"expected text, got {short(value)}")
        if len(value) > MAX_TEXT_CHARS:
            raise _Mismatch(path, f"at most {MAX_TEXT_CHARS:,} characters, got {len(value):,}")
        if "\0" in value:
            raise _Mismatch(path, f"contains a NUL character: {short(value)}")
        return value
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise _Mismatch(path, f"expected a list, got {short(value)}")
        return [_coerce(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        if not isinstance(value, dict):
            raise _Mismatch(path, f"expected a mapping, got {short(value)}")
        return {_coerce(k, key_tp, f"{path}"): _coerce(v, val_tp, _at(path, k)) for k, v in value.items()}
    raise _Mismatch(path, f"unsupported type {tp}")


def _check_numbers(value: Any, meta: Mapping[str, Any], path: str) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, meta, _at(path, k))
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_numbers(v, meta, f"{path}[{i}]")
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi = meta.get("min"), meta.get("max")
    bad_lo = lo is not None and (value <= lo if meta.get("min_exclusive") else value < lo)
    bad_hi = hi is not None and (value >= hi if meta.get("max_exclusive") else value > hi)
    if bad_lo or bad_hi:
        if lo is not None and hi is not None:
            lb = "(" if meta.get("min_exclusive") else "["
            rb = ")" if meta.get("max_exclusive") else "]"
            raise _Mismatch(path, f"must be in {lb}{lo}, {hi}{rb}, got {value}")
        if lo is not None:
            raise _Mismatch(path, f"must be {'>' if meta.get('min_exclusive') else '>='} {lo}, got {value}")
        raise _Mismatch(path, f"must be {'<' if meta.get('max_exclusive') else '<='} {hi}, got {value}")


def _check_size(value: Any, meta: Any, path: str) -> None:
    """_Mismatch when a list or mapping is longer than the field allows, or a list of layers or choices
    names one twice (each would be pruned, timed or exported again)."""
    if not isinstance(value, (list, tuple, dict)):
        return
    most = meta.get("max_items", MAX_ITEMS)
    if len(value) > most:
        raise _Mismatch(path, f"at most {most:,} items, got {len(value):,}")
    if isinstance(value, (list, tuple)) and (meta.get("layers") or meta.get("choices")):
        seen: set[str] = set()
        for i, item in enumerate(value):
            if isinstance(item, str):
                if item in seen:
                    raise _Mismatch(f"{path}[{i}]", f"{short(item)} is listed twice")
                seen.add(item)


def check_value(f: dataclasses.Field[Any], tp: Any, value: Any, path: str) -> Any:
    """Coerce and check one field's value; raises RecipeError('path: message')."""
    meta = f.metadata
    try:
        _check_size(value, meta, path)        # before coercing: a million items are refused without a look
        value = _coerce(value, tp, path)
        choices = meta.get("choices")
        if choices is not None:
            for item in (value if isinstance(value, list) else [value]):
                if isinstance(item, str) and item not in choices:
                    raise _Mismatch(path, f"must be one of {', '.join(map(str, choices))}, got {short(item)}")
        _check_numbers(value, meta, path)
        if meta.get("check"):
            problem = meta["check"](value)
            if problem:
                raise _Mismatch(path, problem)
    except _Mismatch as exc:
        raise RecipeError(f"{exc.path}: {exc.message}") from None
    return value


def build(cls: type, raw: dict[str, Any], path: str, kind: str = "") -> Any:
    """Validate a mapping of settings into a Params instance."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of settings")
    known = param_fields(cls)
    names = {f.name for f, _ in known}
    for key in raw:
        if key not in names:
            import difflib
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(names))})"
            raise RecipeError(f"{_at(path, key)}: unknown field for {kind or cls.__qualname__}{hint}")
    values = {}
    for f, tp in known:
        values[f.name] = check_value(f, tp, raw[f.name], f"{path}.{f.name}") if f.name in raw else default_of(f)
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        problem = validate()
        if problem:
            field_name, _, message = problem.partition(": ")
            raise RecipeError(f"{path}.{field_name}: {message}")
    return instance


def to_dict(params: Any) -> dict[str, Any]:
    return {f.name: getattr(params, f.name) for f in fields(params)}
