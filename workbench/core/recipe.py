"""Recipes: an ordered list of stages with their settings, as YAML or JSON, validated field by field."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import limits, runtimes, stages
from . import params as P
from .data.settings import parse_settings
from .errors import RecipeError
from .io import atomic_write_text
from .limits import clip, short
from .precision import PRECISIONS
from .resources import recipe_path

MODEL_FIELDS = {"spec", "arch", "trust", "replace_head"}   # `model:` as a mapping
TOP_FIELDS = {"model", "data", "seed", "stages", "name", "description", "keep_head", "precision", "channels_last",
              "runtime"}
STAGE_KEYS = {"kind", "enabled", "label"}


def parse_model(raw: Any) -> dict[str, Any]:
    """`model:` as text (a spec) or a mapping {spec, arch, trust, replace_head}; errors name the field."""
    if raw is None or isinstance(raw, str):
        return {"spec": raw, "arch": None, "trust": False, "replace_head": False}
    if not isinstance(raw, dict):
        raise RecipeError(f"model: expected a spec or a mapping with spec (and arch, trust, replace_head), got {short(raw)}")
    for key in raw:
        if key not in MODEL_FIELDS:
            raise RecipeError(f"model.{clip(str(key), 60)}: unknown field (known: {', '.join(sorted(MODEL_FIELDS))})")
    for key in ("spec", "arch"):
        if raw.get(key) is not None and not (isinstance(raw[key], str) and raw[key]):
            raise RecipeError(f"model.{key}: expected text, got {short(raw[key])}")
    if raw.get("spec") is None:
        raise RecipeError("model.spec: missing (the model's path or spec)")
    for key in ("trust", "replace_head"):
        if not isinstance(raw.get(key, False), bool):
            raise RecipeError(f"model.{key}: expected true or false, got {short(raw[key])}")
    return {"spec": raw["spec"], "arch": raw.get("arch"), "trust": raw.get("trust", False),
            "replace_head": raw.get("replace_head", False)}


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
    data: str | dict[str, Any] | None = None    # a data spec, or a mapping of data settings (`data.settings`)
    seed: int = 0
    name: str = ""
    description: str = ""
    keep_head: bool = False      # pretrained weights for another number of classes: refuse instead of a new head
    precision: str = "fp32"      # training loops: fp32 | bf16 | fp16 (autocast; fp16 with a gradient scaler)
    channels_last: bool = False  # training loops: NHWC memory format (faster convolutions on recent GPUs)
    arch: str | None = None      # model: {spec, arch, trust, replace_head}: the architecture of a bare state dict,
    trust: bool = False          # ... whether its file may be unpickled,
    replace_head: bool = False   # ... and whether a checkpoint's head for another class count may be replaced
    runtime: str = runtimes.DEFAULT   # the deploy runtime each snapshot is measured on besides eager (core/runtimes)

    @property
    def folder_name(self) -> str:
        """The recipe's name as the last part of a default run folder: letters, digits, `.`, `_` and `-` only
        (a name holding `/`, `..`, control characters or a leading dot cannot leave `runs/` or hide there)."""
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name or "run")[:80].lstrip(".")
        return name or "run"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("name", "description", "model", "data"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.model and (self.arch or self.trust or self.replace_head):
            out["model"] = {"spec": self.model, **({"arch": self.arch} if self.arch else {}),
                            **{k: True for k in ("trust", "replace_head") if getattr(self, k)}}
        out["seed"] = self.seed
        if self.keep_head:
            out["keep_head"] = True
        if self.precision != "fp32":
            out["precision"] = self.precision
        if self.channels_last:
            out["channels_last"] = True
        if self.runtime != runtimes.DEFAULT:
            out["runtime"] = self.runtime
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
        if not limits.int_in(seed, 0, limits.MAX_SEED):
            raise RecipeError(f"seed: must be a non-negative integer below 2**32 (0 to {limits.MAX_SEED}), got {short(seed)}")
        model = parse_model(raw.get("model"))
        for key in ("name", "description"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise RecipeError(f"{key}: expected text, got {short(raw[key])}")
        if raw.get("data") is not None:
            parse_settings(raw["data"], "data")          # a spec string or a mapping of settings
        for key in ("keep_head", "channels_last"):
            if not isinstance(raw.get(key, False), bool):
                raise RecipeError(f"{key}: expected true or false, got {short(raw[key])}")
        if raw.get("precision", "fp32") not in PRECISIONS:
            raise RecipeError(f"precision: must be one of {', '.join(PRECISIONS)}, got {short(raw['precision'])}")
        runtime = runtimes.get(raw.get("runtime", runtimes.DEFAULT), error=RecipeError).name   # known name; installed: checked at run
        items = raw.get("stages")
        if not isinstance(items, list):
            raise RecipeError("stages: expected a list of stages")
        if len(items) > limits.MAX_STAGES:
            raise RecipeError(f"stages: at most {limits.MAX_STAGES} stages, got {len(items):,}")
        return cls([parse_stage(item, f"stages[{i}]") for i, item in enumerate(items)],
                   model["spec"], raw.get("data"), seed, raw.get("name") or "", raw.get("description") or "",
                   raw.get("keep_head", False), raw.get("precision", "fp32"), raw.get("channels_last", False),
                   model["arch"], model["trust"], model["replace_head"], runtime)

    @classmethod
    def from_text(cls, text: str, source: str = "recipe") -> Recipe:
        if len(text) > limits.MAX_RECIPE_BYTES:
            raise RecipeError(f"{source}: {len(text):,} characters; a recipe is at most {limits.MAX_RECIPE_BYTES:,}")
        try:
            raw = yaml.load(text, Loader=BoundedLoader)   # a SafeLoader with bounds
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise RecipeError(f"{source}: not valid YAML{where} ({getattr(exc, 'problem', None) or exc})") from None
        except _TooBig as exc:
            raise RecipeError(f"{source}: {exc}") from None
        except (ValueError, RecursionError) as exc:
            raise RecipeError(f"{source}: not valid YAML ({short(str(exc), 100)})") from None
        return cls.from_dict(raw)

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """A recipe file, or a ready-made recipe by name (`deep_compression`, see `resources/recipes/`)."""
        path = recipe_path(path)
        try:
            if path.exists() and not path.is_file():     # a FIFO or /dev/zero would block or never end
                raise RecipeError(f"{clip(path)}: cannot read recipe (a folder, FIFO or device, not a regular file)")
            size = path.stat().st_size
            if size > limits.MAX_RECIPE_BYTES:
                raise RecipeError(f"{clip(path)}: {size:,} bytes; a recipe is at most {limits.MAX_RECIPE_BYTES:,}")
            with open(path, "rb") as fh:
                data = fh.read(limits.MAX_RECIPE_BYTES + 1)   # a file growing while it is read stops here
        except OSError as exc:
            raise RecipeError(f"{path}: cannot read recipe ({exc.strerror or type(exc).__name__})") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise RecipeError(f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
        return cls.from_text(text, str(path))


class _TooBig(Exception):
    pass


MAX_INT_DIGITS = 100      # digits of an integer in a recipe (seeds and counts have at most 20)


class BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader with bounds: nesting depth, and the number of nodes counting every alias as the
    whole node it stands for, so a "billion laughs" document is refused before anything is expanded."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}     # id(node) -> nodes it stands for, for aliases to it

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self._sizes.get(id(node), 1))
            return node
        self._depth += 1
        if self._depth > limits.MAX_YAML_DEPTH:
            raise _TooBig(f"nested more than {limits.MAX_YAML_DEPTH} levels deep")
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._count(1)
        self._sizes[id(node)] = self._nodes - before
        return node

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """An integer, refused before conversion when it has more digits than any setting can use (Python refuses
        to convert more than 4300 of them anyway)."""
        if len(str(node.value)) > MAX_INT_DIGITS:
            raise _TooBig(f"an integer with more than {MAX_INT_DIGITS} digits")
        value: int = super().construct_yaml_int(node)
        return value

    def _count(self, n: int) -> None:
        self._nodes += n
        if self._nodes > limits.MAX_YAML_NODES:
            raise _TooBig(f"more than {limits.MAX_YAML_NODES:,} values once its aliases (*name) are expanded")


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)


def parse_stage(item: Any, path: str) -> StageSpec:
    if not isinstance(item, dict) or "kind" not in item:
        raise RecipeError(f"{path}: expected a mapping with a 'kind'")
    if not isinstance(item["kind"], str):
        raise RecipeError(f"{path}.kind: expected text, got {short(item['kind'])}")
    stage = stages.get(item["kind"], f"{path}.kind")
    enabled = item.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RecipeError(f"{path}.enabled: expected true or false")
    settings = {k: v for k, v in item.items() if k not in STAGE_KEYS}
    return StageSpec(item["kind"], P.build(stage.params, settings, path, stage.kind), enabled, str(item.get("label") or ""))


def new_stage(kind: str, **settings: Any) -> StageSpec:
    """A stage with default settings (plus overrides), validated."""
    return parse_stage({"kind": kind, **settings}, "stage")
