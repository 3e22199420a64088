"""Error types shared by the core, the CLI and the GUI.

`BadInput` is the user's to fix (a spec, a file, a recipe): the CLI prints its one-line message and
exits 2. `StageError` is a failure inside a running stage (the runner reports it as a `StageFailed`
event): exit 1. Neither ever carries a traceback
to the user; `details` may hold more text for a "show details" button.

Errors cross threads and processes as `ErrorInfo` (a frozen dataclass: a `kind`, the message, the details), never
as text to be parsed back: `error.info()` on one side, `info.exception()` (or `info.kind`) on the other.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, ClassVar


class ErrorKind(enum.StrEnum):
    """What went wrong, as the receiving side must act on it."""
    BAD_INPUT = "bad_input"          # the user's to fix; exit 2; nothing ran
    NEEDS_TRUST = "needs_trust"      # a file that can run code, refused until the user trusts it; exit 2
    STAGE_FAILED = "stage_failed"    # a stage failed; exit 1; the last snapshot stays
    CANCELLED = "cancelled"          # the user stopped it
    CRASHED = "crashed"              # anything else (a bug, a dead process); exit 1


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""

    kind: ClassVar[ErrorKind] = ErrorKind.CRASHED

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.reason = ""            # NeedsTrust: what in the file would run
        self.agreed = False         # under torchrun: raised on every rank at once (the ranks agreed), not on one

    def __str__(self) -> str:
        return self.message

    def info(self) -> ErrorInfo:
        return ErrorInfo(self.kind, self.message, self.details, self.reason)


class BadInput(WorkbenchError):
    """Invalid spec, file, recipe or argument. CLI exit status 2."""

    kind = ErrorKind.BAD_INPUT


class SpecError(BadInput):
    """A model or data spec that cannot be resolved."""


class CheckpointError(BadInput):
    """A checkpoint file that is missing, corrupt, unsafe or does not fit the architecture."""


class NeedsTrust(CheckpointError):
    """A file that can run code (a pickled model, TorchScript, a .pt2 program), refused because the user has not
    said they trust it. `reason`: what in the file would run, for the GUI's "Trust this file?" question."""

    kind = ErrorKind.NEEDS_TRUST

    def __init__(self, message: str, details: str = "", reason: str = "") -> None:
        super().__init__(message, details)
        self.reason = reason or message


def clip(text: object, limit: int = 100) -> str:
    """`text` (a spec, a path, a name read from a file) cut to about `limit` characters, on one line: control
    characters (newlines, ANSI escapes, NUL, bidi overrides) escaped as in repr, so it never moves a cursor.
    (Here, at the bottom of the core, so that every error message can use it; `limits.clip` is the same function.)"""
    text = str(text)
    text = text if len(text) <= 4 * limit else text[:4 * limit]
    text = "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit] + "..."


class HeadMismatch(CheckpointError):
    """The user's own checkpoint's classifier `layer` predicts `have` classes, the data has `want`: refused unless
    the head is replaced (CLI: --replace-head; GUI: asked). Carried across threads as `ErrorInfo.head`."""

    def __init__(self, message: str, layer: str, have: int, want: int, details: str = "") -> None:
        super().__init__(message, details)
        self.layer, self.have, self.want = layer, int(have), int(want)

    def info(self) -> ErrorInfo:
        return ErrorInfo(self.kind, self.message, self.details, self.reason, (self.layer, self.have, self.want))


class UnreadableFile(BadInput):
    """A file that cannot be read safely (missing, a link, a FIFO or device, too large, too deep, not JSON).
    `problem` is the message without the path; `missing` is True when there is simply no such file."""

    def __init__(self, path: object, problem: str, missing: bool = False) -> None:
        super().__init__(f"{clip(path, 200)}: {problem}")
        self.path = path
        self.problem = problem
        self.missing = missing


class RecipeError(BadInput):
    """An invalid recipe; the message starts with the field path."""


class StageError(WorkbenchError):
    """A stage failed while running (NaN loss, unsupported op, ...). CLI exit status 1."""

    kind = ErrorKind.STAGE_FAILED


class Cancelled(WorkbenchError):
    """The user asked to stop."""

    kind = ErrorKind.CANCELLED


@dataclasses.dataclass(frozen=True)
class ErrorInfo:
    """An error as it crosses a thread or process boundary (picklable, JSON-able). `reason`: for NEEDS_TRUST,
    what in the file would run."""

    kind: ErrorKind
    message: str
    details: str = ""
    reason: str = ""
    head: tuple[str, int, int] | None = None    # HeadMismatch: (classifier layer, its classes, the data's classes)

    @property
    def exit_code(self) -> int:
        return 2 if self.kind in (ErrorKind.BAD_INPUT, ErrorKind.NEEDS_TRUST) else 1

    def exception(self) -> WorkbenchError:
        """The error to raise again on this side of the boundary."""
        if self.kind is ErrorKind.NEEDS_TRUST:
            return NeedsTrust(self.message, self.details, self.reason)
        if self.head is not None:
            return HeadMismatch(self.message, *self.head, details=self.details)
        cls = {ErrorKind.BAD_INPUT: BadInput, ErrorKind.STAGE_FAILED: StageError,
               ErrorKind.CANCELLED: Cancelled}.get(self.kind, WorkbenchError)
        return cls(self.message, self.details)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value, "message": self.message, "details": self.details, "reason": self.reason}
        return {**data, "head": list(self.head)} if self.head is not None else data

    @classmethod
    def from_json(cls, data: Any) -> ErrorInfo:
        if not isinstance(data, dict) or not isinstance(data.get("message"), str):
            return cls(ErrorKind.CRASHED, f"unreadable error record: {str(data)[:200]}")
        try:
            kind = ErrorKind(str(data.get("kind")))
        except ValueError:
            kind = ErrorKind.CRASHED
        head = data.get("head")
        typed = (kind is ErrorKind.BAD_INPUT and isinstance(head, list) and len(head) == 3 and isinstance(head[0], str)
                 and all(type(n) is int and 0 < n < 2**31 for n in head[1:]))
        return cls(kind, data["message"], str(data.get("details", "")), str(data.get("reason", "")),
                   (str(head[0]), int(head[1]), int(head[2])) if typed and isinstance(head, list) else None)

    @classmethod
    def of(cls, exc: BaseException, details: str = "") -> ErrorInfo:
        """Any exception as an ErrorInfo: a WorkbenchError keeps its kind, anything else is CRASHED."""
        if isinstance(exc, WorkbenchError):
            info = exc.info()
            return dataclasses.replace(info, details=info.details or details)
        return cls(ErrorKind.CRASHED, f"{type(exc).__name__}: {exc}", details)
