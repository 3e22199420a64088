"""A session's compression state, kept and put back: each candidate starts from the stage's input.

Works on any object with the session's attributes (`model`, `masks`, `codebooks`, `record`, `history`,
`device`), so this package never imports the session itself.
"""
from __future__ import annotations

import copy


def capture(session) -> dict:
    return {"model": copy.deepcopy(session.model), "masks": {k: v.clone() for k, v in session.masks.items()},
            "codebooks": {k: v.clone() for k, v in session.codebooks.items()}, "record": copy.deepcopy(session.record),
            "history": copy.deepcopy(session.history)}


def restore(session, state: dict) -> None:
    session.model = copy.deepcopy(state["model"]).to(session.device)
    session.masks = {k: v.clone() for k, v in state["masks"].items()}
    session.codebooks = {k: v.clone() for k, v in state["codebooks"].items()}
    session.record, session.history = copy.deepcopy(state["record"]), copy.deepcopy(state["history"])


def fork(session, state: dict):
    """A shallow copy of the session (data, settings) holding its own copy of `state`, writing nothing to disk."""
    trial = copy.copy(session)
    trial.out_dir = None
    restore(trial, state)
    return trial
