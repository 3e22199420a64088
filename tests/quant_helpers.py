"""Shared helpers for the quantization and packed-format tests."""
from __future__ import annotations

from workbench.core import stages
from workbench.core.recipe import parse_stage
from workbench.core.session import Session
from workbench.core.specs import load_model


def make_session(digits, spec: str = "sample:digits_mlp", out_dir=None) -> Session:
    loaded = load_model(spec, digits.input_shape, digits.num_classes)
    return Session(loaded, digits, "cpu", 0, out_dir)


def run_stage(session: Session, kind: str, index: int = 0, **settings) -> list:
    """Validate settings like a recipe would, preflight, run; returns the events."""
    spec = parse_stage({"kind": kind, **settings}, f"stages[{index}]")
    stage = stages.get(kind)
    session.stage_index = index
    if stage.preflight is not None:
        stage.preflight(session, spec.params)
    return list(stage.run(session, spec.params))
