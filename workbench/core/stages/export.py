"""`export`: write the current model in one or more formats; each file is read back and verified, then run on
the test split through its own runtime (onnxruntime, the program or module its loader gives): `accuracy`.

The files go to `<run folder>/<dir>/<name><suffix>`; `dir` and `name` are plain names (no separators, no `..`,
no leading dot, no control characters, not a name the run folder uses itself), and no link in the run folder is
followed (`io.real_folder`), so an export never lands outside the run folder or over the run's own files.
"""
from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, StageError, WorkbenchError
from ..events import Event, ExportWritten, Log, Progress
from ..export import ExportSource, Format, export_model, formats
from ..export.accuracy import file_accuracy_steps
from ..io import real_folder
from ..limits import MAX_NAME_CHARS
from ..params import param
from ..run_folder import OWN_NAMES
from . import INT8, StageKind, register

if TYPE_CHECKING:
    from ..session import Session

DESCRIPTION = "Write the model to files, read each back and compare its outputs with the model's."


def _format_names() -> list[str]:
    return sorted(formats())


def _plain_name(value: str) -> str | None:
    """Why `value` is not a plain name for a file or folder in the run folder; None when it is."""
    if not isinstance(value, str) or not value.strip():
        return "must be a plain name, got an empty one"
    shown = ascii(value[:MAX_NAME_CHARS])
    if len(value) > MAX_NAME_CHARS:
        return f"must be a plain name of at most {MAX_NAME_CHARS} characters, got {len(value):,}: {shown}"
    if any(sep in value for sep in "/\\") or ".." in value:
        return f"must be a plain name (no folders: no '/', '\\' or '..'), got {shown}"
    if value.startswith("."):
        return f"must be a plain name that does not start with a dot (hidden; temporary files start so), got {shown}"
    if not value.isprintable() or value != value.strip():
        return f"must be a plain name without control characters, line breaks or surrounding spaces, got {shown}"
    if value.lower() in {n.lower() for n in OWN_NAMES if n != "exports"}:
        return f"must not be a name the run folder uses itself ({', '.join(OWN_NAMES[:5])}, ...), got {shown}"
    return None


@dataclass
class Params:
    formats: list[str] = param(["safetensors"], "Formats to write.", choices=_format_names())
    dir: str = param("exports", "Folder in the run's output folder for the files (a plain name).", check=_plain_name)
    name: str = param("model", "File name stem (a plain name).", check=_plain_name)


def preflight(session: Session, p: Params) -> None:
    """Refuse a link planted where the files would go: the export would follow it out of the run folder."""
    if session.out_dir is not None and os.path.islink(Path(session.out_dir) / p.dir):
        raise BadInput(f"stages[{session.stage_index}].dir: {Path(session.out_dir) / p.dir} is a symbolic link; "
                       "an export never writes through a link")


def run(session: Session, p: Params) -> Iterator[Event]:
    if not session.writes:          # under torchrun, rank 0 alone writes the files
        return
    root = session.out_dir or Path(".")
    out = real_folder(root, root / p.dir)           # created here; a link planted since the preflight is refused
    source = ExportSource.from_session(session)
    failed = []
    for i, name in enumerate(p.formats):
        yield Progress(i, len(p.formats), f"exporting {name}")
        fmt = formats()[name]
        result = export_model(source, name, out / f"{p.name}{fmt.suffix}")
        entry = result.to_dict()
        entry.pop("details", None)
        if session.out_dir is not None:
            try:
                entry["path"] = str(Path(result.path).relative_to(session.out_dir))
            except ValueError:
                pass
        if result.details:
            entry["breakdown"] = {k: v for k, v in result.details.items() if k != "traceback"}
        if result.verified:
            entry["accuracy"] = yield from _file_accuracy(session, fmt, Path(result.path), source.record,
                                                          result.details or {}, (i, len(p.formats)))
        session.exports.append(entry)
        yield ExportWritten(result)
        if result.verified:
            yield Log("info", f"{name}: {result.bytes:,} bytes, verified (max |diff| {result.max_abs_diff:.3g})"
                              f"{_accuracy_words(session, entry.get('accuracy'))}")
        else:
            failed.append(f"{name} ({result.error})")
            yield Log("error", f"{name}: NOT verified: {result.error}")
    yield Progress(len(p.formats), len(p.formats), "exported")
    if failed:
        raise StageError("export failed for " + "; ".join(failed))


def _file_accuracy(session: Session, fmt: Format, path: Path, record: dict[str, Any], details: dict[str, Any],
                   at: tuple[int, int]) -> Generator[Progress | Log, None, float | None]:
    """Top-1 accuracy on the test split of the file as its own loader runs it (None, with a warning, when it
    cannot run on the data's batches); a Progress per batch, cancellation between batches."""
    try:
        steps = file_accuracy_steps(fmt, path, record, details, session.data.test)
        while True:
            session.check_cancel()
            try:
                done, total = next(steps)
            except StopIteration as end:
                return float(end.value)
            of = total or done + 1
            yield Progress(at[0] + done / of, at[1], f"{fmt.name}: test accuracy of the file, batch {done}/{of}")
    except WorkbenchError:                   # Stop, or a file that no longer loads: as anywhere else
        raise
    except Exception as exc:  # noqa: BLE001 - e.g. a runtime without some operator: the file stays verified
        yield Log("warning", f"{fmt.name}: the file's test accuracy could not be measured "
                             f"({type(exc).__name__}: {str(exc)[:200]})")
        return None


def _accuracy_words(session: Session, acc: float | None) -> str:
    if acc is None:
        return "; its test accuracy could not be measured"
    model = session.snapshots[-1].get("accuracy") if session.snapshots else None
    return f"; test accuracy {acc:.2%}" + (f" (the model's {model:.2%})" if isinstance(model, float) else "")


def takes(p: Params, state: str) -> str | None:
    """The order check: a format that cannot write a torch.ao int8 model, after an int8 stage."""
    if state != INT8:
        return None
    known = formats()
    return next((f"{name}: {known[name].after_int8}" for name in p.formats
                 if name in known and known[name].after_int8), None)


STAGE = register(StageKind(kind="export", title="Export", description=DESCRIPTION, params=Params, run=run,
                           changes_model=False, preflight=preflight, takes=takes))
