"""Error types shared by the core, the CLI and the GUI.

`BadInput` is the user's to fix (a spec, a file, a recipe): the CLI prints its one-line message and
exits 2. `StageError` is a failure inside a running stage (the runner reports it as a `StageFailed`
event): exit 1. Neither ever carries a traceback
to the user; `details` may hold more text for a "show details" button.
"""


class WorkbenchError(Exception):
    """Base class of every error the workbench raises on purpose."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def __str__(self) -> str:
        return self.message


class BadInput(WorkbenchError):
    """Invalid spec, file, recipe or argument. CLI exit status 2."""


class SpecError(BadInput):
    """A model or data spec that cannot be resolved."""


class CheckpointError(BadInput):
    """A checkpoint file that is missing, corrupt, unsafe or does not fit the architecture."""


class UnreadableFile(BadInput):
    """A file that cannot be read safely (missing, a link, a FIFO or device, too large, too deep, not JSON).
    `problem` is the message without the path; `missing` is True when there is simply no such file."""

    def __init__(self, path: object, problem: str, missing: bool = False) -> None:
        from .limits import clip
        super().__init__(f"{clip(path, 200)}: {problem}")
        self.path = path
        self.problem = problem
        self.missing = missing


class RecipeError(BadInput):
    """An invalid recipe; the message starts with the field path."""


class StageError(WorkbenchError):
    """A stage failed while running (NaN loss, unsupported op, ...). CLI exit status 1."""


class Cancelled(WorkbenchError):
    """The user asked to stop."""
