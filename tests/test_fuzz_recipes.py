"""Hypothesis-generated recipes against the sample models: each one runs to its end or is refused with a
field path before anything runs; random tensors round-trip through every export format."""
from __future__ import annotations

import math
import re
import types
import typing

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core import stages
from workbench.core.errors import BadInput, RecipeError
from workbench.core.events import RunFinished, StageFailed
from workbench.core.export import ExportSource, export_model, formats
from workbench.core.params import param_fields
from workbench.core.recipe import Recipe
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run
from workbench.core.specs import load_model

SLOW_FIELDS = {"epochs", "finetune_epochs", "steps", "calib_batches", "max_iter", "latency_samples"}
FIELD_PATH = re.compile(r"^(stages\[\d+\](\.[\w\[\]\.]+)?|seed|model|data|name|description|stages|recipe)\b")


def _valid_value(f, tp) -> st.SearchStrategy:
    """A value the field's metadata allows, kept small where it costs time."""
    meta = f.metadata
    origin = typing.get_origin(tp)
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        tp = args[0]
        origin = typing.get_origin(tp)
    if meta.get("choices") and tp is str:
        return st.sampled_from(list(meta["choices"]))
    if meta.get("choices") and origin is list:
        return st.lists(st.sampled_from(list(meta["choices"])), min_size=1, max_size=2, unique=True)
    lo, hi = meta.get("min"), meta.get("max")
    if tp is bool:
        return st.booleans()
    if tp is int:
        lo = int(lo) + (1 if meta.get("min_exclusive") else 0) if lo is not None else 0
        hi = int(hi) if hi is not None else lo + 3
        if f.name in SLOW_FIELDS:
            hi = min(hi, lo + 1)
        return st.integers(lo, min(hi, lo + 8))
    if tp is float:
        lo = float(lo) if lo is not None else 0.0
        hi = float(hi) if hi is not None else lo + 1.0
        return st.floats(lo, min(hi, lo + 1.0), exclude_min=bool(meta.get("min_exclusive")),
                         exclude_max=bool(meta.get("max_exclusive")), allow_nan=False)
    return st.nothing()


@st.composite
def stage_dicts(draw, valid: bool = True) -> dict:
    kind = draw(st.sampled_from([k for k in stages.available() if k != "distill"]))
    module = stages.get(kind)
    out: dict = {"kind": kind}
    for f, tp in param_fields(module.params):
        if f.metadata.get("layers") or typing.get_origin(tp) is dict:
            continue
        strategy = _valid_value(f, tp)
        if strategy.is_empty or not draw(st.booleans()):
            continue
        out[f.name] = draw(strategy)
    if not valid:
        target = draw(st.sampled_from(["unknown", "nan", "type", "range"]))
        numeric = [k for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if target == "unknown" or not numeric:
            out["no_such_setting"] = 1
        elif target == "nan":
            out[draw(st.sampled_from(numeric))] = math.nan
        elif target == "type":
            out[draw(st.sampled_from(numeric))] = "abc"
        else:
            out[draw(st.sampled_from(numeric))] = -10**9
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(stage_dicts(valid=False), min_size=1, max_size=3), seed=st.integers(-5, 2**33))
def test_invalid_recipes_are_refused_with_a_field_path(items, seed):
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict({"model": "sample:digits_mlp", "seed": seed, "stages": items})
    assert FIELD_PATH.match(exc.value.message), exc.value.message


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(items=st.lists(stage_dicts(valid=True), min_size=1, max_size=2))
def test_valid_random_recipes_run_to_their_end_or_are_refused(items, tmp_path_factory):
    try:
        recipe = Recipe.from_dict({"model": "arch:mlp:hidden=24", "data": "sample:digits", "stages": items})
        events = list(Run(recipe, RunOptions(out_dir=tmp_path_factory.mktemp("fuzz") / "run")).events())
    except BadInput as exc:           # refused before the run: the message names the field
        assert FIELD_PATH.match(exc.message) or exc.message.startswith(("arch:", "sample:")), exc.message
        return
    assert isinstance(events[-1], RunFinished)
    for failed in (e for e in events if isinstance(e, StageFailed)):
        # a stage may fail for a reason it states; a bare Python exception is a bug
        assert not re.match(r"^(TypeError|KeyError|AttributeError|IndexError|ValueError|RuntimeError|"
                            r"ZeroDivisionError|AssertionError)\b", failed.message), failed.message


@pytest.mark.parametrize("fmt", sorted(f for f in formats() if f != "onnx_int8"))   # int8 is lossy: tested on data
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_random_weights_round_trip_through_every_format(fmt, seed, tmp_path_factory):
    torch.manual_seed(seed)
    loaded = load_model("arch:mlp:hidden=12", (1, 8, 8), 10)
    with torch.no_grad():
        for p in loaded.module.parameters():
            p.copy_(torch.randn_like(p) * torch.rand(1))
    result = export_model(ExportSource.from_loaded(loaded), fmt, tmp_path_factory.mktemp(fmt) / f"m{formats()[fmt].suffix}")
    assert result.verified, result.error
