"""`export`: write the current model in one or more formats; each file is read back and verified."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import StageError
from ..events import ExportWritten, Log, Progress
from ..export import ExportSource, export_model, formats
from ..params import param

KIND = "export"
TITLE = "Export"
DESCRIPTION = "Write the model to files, read each back and compare its outputs with the model's."
CHANGES_MODEL = False


def _format_names() -> list[str]:
    return sorted(formats())


def _inside_run_folder(value: str) -> str | None:
    parts = Path(value).parts
    if Path(value).is_absolute() or value.startswith("~") or ".." in parts:
        return f"must be a folder inside the run's output folder (relative, without '..'), got {value!r}"
    return None


def _plain_name(value: str) -> str | None:
    if not value or value in (".", "..") or any(c in value for c in "/\\\0"):
        return f"must be a plain file name stem (no folders), got {value!r}"
    return None


@dataclass
class Params:
    formats: list[str] = param(["safetensors"], "Formats to write.", choices=_format_names())
    dir: str = param("exports", "Folder (relative to the run's output folder) for the files.", check=_inside_run_folder)
    name: str = param("model", "File name stem.", check=_plain_name)


def run(session, p: Params) -> Iterator:
    if not session.writes:          # under torchrun, rank 0 alone writes the files
        return
    out = (session.out_dir or Path(".")) / p.dir
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
        session.exports.append(entry)
        yield ExportWritten(result)
        if result.verified:
            yield Log("info", f"{name}: {result.bytes:,} bytes, verified (max |diff| {result.max_abs_diff:.3g})")
        else:
            failed.append(f"{name} ({result.error})")
            yield Log("error", f"{name}: NOT verified: {result.error}")
    yield Progress(len(p.formats), len(p.formats), "exported")
    if failed:
        raise StageError("export failed for " + "; ".join(failed))

