"""The stage parameter table under extreme values: every field of every stage kind (found from the registry and
each Params' metadata) is given huge and negative integers, NaN, infinities, -0.0, huge floats, empty, very long,
NUL and ANSI texts, wrong types and huge lists. Each value is refused by validation with the field's path, or it
is within the field's declared bounds and a run with it on a tiny model ends (no bare Python exception; a hang
would meet the suite's timeout; tests/hostile_corpus.py runs every edge under a time limit).
"""
from __future__ import annotations

import math
import re
import types
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.core import stages
from workbench.core.errors import BadInput, RecipeError
from workbench.core.events import RunFinished, StageFailed
from workbench.core.limits import MAX_ITEMS, MAX_TEXT_CHARS
from workbench.core.params import param_fields
from workbench.core.recipe import Recipe, parse_stage
from workbench.core.run_handle import RunOptions
from workbench.core.runner import Run

KINDS = stages.available()
FIELDS = [(kind, f.name) for kind in KINDS for f, _ in param_fields(stages.get(kind).params)]
# settings whose value is a duration the user asks for (passes over the data): linear in time, bounded by `max`,
# and kept small in real runs here; every other field runs at its extremes
DURATIONS = {"epochs", "finetune_epochs", "centroid_epochs"}
FAST = {"train": {"epochs": 1}, "prune": {"finetune_epochs": 0}, "distill": {"epochs": 1},
        "quantize": {"finetune_epochs": 0}, "restructure": {"finetune_epochs": 0},
        "dynamic": {"epochs": 1, "latency_samples": 4},
        "auto": {"epochs": 1, "finetune_epochs": 0, "centroid_epochs": 0, "max_candidates": 1, "retries": 0,
                 "latency_passes": 1, "sparsities": [0.0, 0.5], "bits": [4, 8], "channels": [0.0, 0.5]}}
BARE_EXCEPTION = re.compile(r"^(TypeError|KeyError|AttributeError|IndexError|ValueError|RuntimeError|OSError|"
                            r"ZeroDivisionError|AssertionError|OverflowError|MemoryError|RecursionError)\b")

EXTREMES = [0, 1, -1, 10**6, 10**12, 2**63, -(2**63), 10**400, math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308,
            5e-324, 0.5, True, None, "", "x" * 100_000, "a\0b", "\x1b[31mred\x1b[0m\nline", "../../etc/x", "fc1",
            "current", "input", [], [0.5] * 100_000, ["fc1"] * 3, ["fc1", "fc1"], [[1, 2]], [math.nan], [10**12],
            {}, {"fc1": math.nan}, {"fc1": 10**12}, {"conv": 9}, {"ratio": -1.0}, {"x" * 5000: 1.0}, [1] * 20]


def _fields(kind: str) -> dict[str, tuple]:
    return {f.name: (f, tp) for f, tp in param_fields(stages.get(kind).params)}


def _numbers(value) -> list:
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []


def _texts(value) -> list[str]:
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in [str(k), *_texts(v)]]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return [value] if isinstance(value, str) else []


def check_one(kind: str, name: str, value) -> object | None:
    """Validate {kind, name: value}: the accepted value (which must obey the field's metadata), or None when it
    was refused with a one-line message starting at a field of this stage."""
    try:
        spec = parse_stage({"kind": kind, name: value}, "stages[0]")
    except RecipeError as exc:
        message = exc.message
        assert "\n" not in message and "\x1b" not in message and "\0" not in message, repr(message)
        head = re.match(r"^stages\[0\]\.(\w+)", message)
        assert head and head.group(1) in _fields(kind), message
        if head.group(1) != name:            # a cross-field check (validate()) names the other field
            assert not isinstance(value, float) or math.isfinite(value), message
        return None
    accepted = getattr(spec.params, name)
    meta = _fields(kind)[name][0].metadata
    lo, hi = meta.get("min"), meta.get("max")
    for n in _numbers(accepted):
        assert isinstance(n, int) or math.isfinite(n), (kind, name, value)
        assert lo is None or n >= lo, (kind, name, value)
        assert hi is None or n <= hi, (kind, name, value)
    for t in _texts(accepted):
        assert len(t) <= MAX_TEXT_CHARS and "\0" not in t, (kind, name, value)
    if isinstance(accepted, (list, dict)):
        assert len(accepted) <= meta.get("max_items", MAX_ITEMS), (kind, name, len(accepted))
    return accepted


def test_the_table_is_found_from_the_registry():
    assert {"train", "prune", "quantize", "distill", "auto", "export"} <= set(KINDS)
    assert ("quantize", "max_iter") in FIELDS and ("sensitivity", "sparsities") in FIELDS
    assert len(FIELDS) > 100


@pytest.mark.parametrize("kind,name", FIELDS, ids=[f"{k}.{n}" for k, n in FIELDS])
def test_every_field_refuses_extremes_with_its_path_or_keeps_its_bounds(kind, name):
    accepted = [v for v in EXTREMES if check_one(kind, name, v) is not None]
    refused = len(EXTREMES) - len(accepted)
    assert refused >= len(EXTREMES) // 2, (kind, name, accepted)   # most of these are nonsense for any field
    for bad in (math.nan, math.inf, 10**400, "a\0b", "x" * 100_000, [0.5] * 100_000):
        assert check_one(kind, name, bad) is None, (kind, name, repr(bad)[:40])


def test_the_messages_name_the_problem():
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.max_iter: must be in \[1, 10000\], got 10001$"):
        parse_stage({"kind": "quantize", "max_iter": 10001}, "stages[0]")
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.sparsities: at most 100 items, got 101$"):
        parse_stage({"kind": "sensitivity", "sparsities": [0.5] * 101}, "stages[0]")
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.layers\[1\]: 'fc1' is listed twice$"):
        parse_stage({"kind": "sensitivity", "layers": ["fc1", "fc1"]}, "stages[0]")
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.student: contains a NUL character"):
        parse_stage({"kind": "distill", "student": "a\0b"}, "stages[0]")
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.teacher: at most 4,096 characters, got 100,000$"):
        parse_stage({"kind": "distill", "teacher": "x" * 100_000}, "stages[0]")


ANY = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70),
                             st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
                             st.sampled_from(["\0", "\x1b[2J", "x" * 5000, "fc1", "logits", "ratio"])),
                   lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                   max_leaves=10)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=ANY)
def test_random_values_are_refused_with_the_path_or_obey_the_metadata(field, value):
    check_one(*field, value)


def edges(kind: str, name: str) -> list:
    """The values at the edges a field's metadata allows: its integer and float bounds, its longest list of
    numbers (tests/hostile_corpus.py runs each of them; choices and switches are not edges)."""
    f, tp = _fields(kind)[name]
    meta, out = f.metadata, []
    lo, hi = meta.get("min"), meta.get("max")
    members = [a for a in typing.get_args(tp) if a is not type(None)] \
        if typing.get_origin(tp) in (typing.Union, types.UnionType) else [tp]
    for t in members:
        if t is int and hi is not None:
            out += [int(lo or 0) + bool(meta.get("min_exclusive")), int(hi) - bool(meta.get("max_exclusive"))]
        elif t is float and lo is not None and hi is not None:
            ends = [(-0.0 if lo == 0 else float(lo), "min_exclusive"), (float(hi), "max_exclusive")]
            out += [v for v, ex in ends if not meta.get(ex)] or [(lo + hi) / 2]
        elif typing.get_origin(t) is list and typing.get_args(t)[0] in (int, float) and hi is not None:
            most = meta.get("max_items", MAX_ITEMS)
            if typing.get_args(t)[0] is int:
                out.append((list(range(int(lo), int(hi) + 1)) * most)[:most])
            else:
                top = float(hi) - (1e-6 if meta.get("max_exclusive") else 0.0)
                out.append([top if meta.get("min_exclusive") else float(lo)] + [top] * (most - 1))
    return out


@st.composite
def extreme_stages(draw) -> dict:
    """A stage with some settings at their edges, the others at a random choice or switch, durations short."""
    kind = draw(st.sampled_from([k for k in KINDS if k != "export"]))
    out: dict = {"kind": kind}
    for name, (f, tp) in _fields(kind).items():
        options = edges(kind, name) or list(f.metadata.get("choices") or []) * (tp is str) or [True, False] * (tp is bool)
        if name not in DURATIONS and options and draw(st.booleans()):
            out[name] = draw(st.sampled_from(options))
    return {**out, **FAST.get(kind, {})}


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(stage=extreme_stages())
def test_extreme_valid_settings_run_to_their_end(stage, tmp_path_factory):
    try:
        recipe = Recipe.from_dict({"model": "sample:digits_mlp", "data": "sample:digits", "stages": [stage]})
        events = list(Run(recipe, RunOptions(out_dir=tmp_path_factory.mktemp("extreme") / "run")).events())
    except BadInput as exc:       # refused before the run (a cross-field check, a layer the model lacks)
        assert re.match(r"^stages\[0\]\.\w+", exc.message), exc.message
        return
    assert isinstance(events[-1], RunFinished)
    for failed in (e for e in events if isinstance(e, StageFailed)):
        assert not BARE_EXCEPTION.match(failed.message), (stage, failed.message)


def test_what_this_fuzzer_found_stays_fixed():
    from workbench.core.pruning import schedule
    assert schedule.targets("iterative", 0.0, 5) == [0.0] * 5          # was [0.0]: step 2 of 5 had no target
    assert schedule.targets("gradual", -0.0, 3) == [0.0] * 3
    with pytest.raises(RecipeError, match=r"^stages\[0\]\.sparsities: include 0\.0"):    # was a bare ValueError
        parse_stage({"kind": "auto", "sparsities": []}, "stages[0]")
    for kind, name, value in (("prune", "rewind", 2**63), ("distill", "teacher", 10**12), ("restructure", "rank", 10**400)):
        with pytest.raises(RecipeError, match=rf"^stages\[0\]\.{name}: must be"):             # were accepted
            parse_stage({"kind": kind, name: value}, "stages[0]")


def test_a_hostile_mapping_key_is_escaped_in_the_message():
    """Found by the fuzzer above: a key of a mapping field went into the error's path as it was (an ANSI escape)."""
    from workbench.core.errors import RecipeError
    from workbench.core.recipe import Recipe
    with pytest.raises(RecipeError) as exc:
        Recipe.from_dict({"stages": [{"kind": "distill", "teacher": "input", "losses": {"\x1b[2J\n": None}}]})
    assert exc.value.message == "stages[0].losses.\\x1b[2J\\n: expected a number, got None"
