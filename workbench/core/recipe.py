"""Recipes: an ordered list of stages with their settings, as YAML or JSON, validated field by field."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import params as P
from . import stages
from .errors import RecipeError
from .io import atomic_write_text

TOP_FIELDS = {"model", "data", "seed", "stages", "name", "description"}
STAGE_KEYS = {"kind", "enabled", "label"}


@dataclass
class StageSpec:
    kind: str
    params: Any
    enabled: bool = True
    label: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if not self.enabled:
            out["enabled"] = False
        if self.label:
            out["label"] = self.label
        out.update(P.to_dict(self.params))
        return out

    @property
    def title(self) -> str:
        return self.label or self.kind


@dataclass
class Recipe:
    stages: list[StageSpec] = field(default_factory=list)
    model: str | None = None
    data: str | None = None
    seed: int = 0
    name: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("name", "description", "model", "data"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        out["seed"] = self.seed
        out["stages"] = [s.to_dict() for s in self.stages]
        return out

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=2) if path.suffix == ".json" else self.to_yaml()
        atomic_write_text(path, text)

    @classmethod
    def from_dict(cls, raw: Any) -> Recipe:
        if not isinstance(raw, dict):
            raise RecipeError("recipe: expected a mapping with a 'stages' list")
        for key in raw:
            if key not in TOP_FIELDS:
                raise RecipeError(f"{key}: unknown recipe field (known: {', '.join(sorted(TOP_FIELDS))})")
        seed = raw.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise RecipeError(f"seed: must be a non-negative integer, got {seed!r}")
        for key in ("model", "data", "name", "description"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise RecipeError(f"{key}: expected text, got {raw[key]!r}")
        items = raw.get("stages")
        if not isinstance(items, list):
            raise RecipeError("stages: expected a list of stages")
        return cls([parse_stage(item, f"stages[{i}]") for i, item in enumerate(items)],
                   raw.get("model"), raw.get("data"), seed, raw.get("name") or "", raw.get("description") or "")

    @classmethod
    def from_text(cls, text: str, source: str = "recipe") -> Recipe:
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise RecipeError(f"{source}: not valid YAML{where} ({getattr(exc, 'problem', exc)})") from None
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise RecipeError(f"{path}: cannot read recipe ({exc.strerror})") from None
        return cls.from_text(text, str(path))


def parse_stage(item: Any, path: str) -> StageSpec:
    if not isinstance(item, dict) or "kind" not in item:
        raise RecipeError(f"{path}: expected a mapping with a 'kind'")
    module = stages.get(item["kind"], f"{path}.kind")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RecipeError(f"{path}.enabled: expected true or false")
    settings = {k: v for k, v in item.items() if k not in STAGE_KEYS}
    return StageSpec(item["kind"], P.build(module.Params, settings, path, item["kind"]), enabled, str(item.get("label") or ""))


def new_stage(kind: str, **settings: Any) -> StageSpec:
    """A stage with default settings (plus overrides), validated."""
    return parse_stage({"kind": kind, **settings}, "stage")
