"""A session's compression state, kept and put back: each candidate starts from the stage's input.

Works on any object with the session's attributes (`model`, `masks`, `codebooks`, `record`, `history`,
`device`), so this package never imports the session itself.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Protocol, TypedDict, TypeVar

import torch
from torch import nn


class State(TypedDict):
    """What `capture` keeps of a session."""
    model: nn.Module
    masks: dict[str, torch.Tensor]
    codebooks: dict[str, torch.Tensor]
    record: dict[str, Any]
    history: list[dict[str, Any]]


class StatefulSession(Protocol):
    """The session's attributes used here."""
    model: nn.Module
    masks: dict[str, torch.Tensor]
    codebooks: dict[str, torch.Tensor]
    record: dict[str, Any]
    history: list[dict[str, Any]]
    out_dir: Path | None

    @property
    def device(self) -> torch.device: ...


S = TypeVar("S", bound=StatefulSession)


def capture(session: StatefulSession) -> State:
    return {"model": copy.deepcopy(session.model), "masks": {k: v.clone() for k, v in session.masks.items()},
            "codebooks": {k: v.clone() for k, v in session.codebooks.items()}, "record": copy.deepcopy(session.record),
            "history": copy.deepcopy(session.history)}


def restore(session: StatefulSession, state: State) -> None:
    session.model = copy.deepcopy(state["model"]).to(session.device)
    session.masks = {k: v.clone() for k, v in state["masks"].items()}
    session.codebooks = {k: v.clone() for k, v in state["codebooks"].items()}
    session.record, session.history = copy.deepcopy(state["record"]), copy.deepcopy(state["history"])


def fork(session: S, state: State) -> S:
    """A shallow copy of the session (data, settings) holding its own copy of `state`, writing nothing to disk."""
    trial = copy.copy(session)
    trial.out_dir = None
    restore(trial, state)
    return trial
