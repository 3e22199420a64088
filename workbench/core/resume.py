"""Run from here: continue a run's pipeline from one of its snapshots (a snapshot folder is a model spec).

The stages still to run are the run's own recipe (its report.json) after the stages the snapshot's recipe
records as done; the new run records where it came from in its report.json (`resumed_from`)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from .errors import BadInput, CheckpointError
from .recipe import Recipe
from .snapshots import read_meta

MAX_REPORT_BYTES = 64 << 20


@dataclasses.dataclass(frozen=True)
class ResumePlan:
    recipe: Recipe                   # the stages after the snapshot's (disabled ones dropped)
    resumed_from: dict[str, str]     # {"run": run folder, "snapshot": snapshot folder}
    index: int                       # the snapshot's index in its run
    stage: str                       # the stage that made it ("baseline" for snapshot 0)


def resume_plan(snapshot: str | Path) -> ResumePlan:
    """What running from `snapshot` runs; BadInput naming the folder when it is not a snapshot of a run."""
    folder = Path(snapshot)
    run = folder.parent.parent
    report_path = run / "report.json"
    if folder.parent.name != "snapshots" or not report_path.is_file():
        raise BadInput(f"{folder}: not a snapshot of a run folder (no {report_path.name} two folders up)")
    if report_path.stat().st_size > MAX_REPORT_BYTES:
        raise BadInput(f"{report_path}: larger than {MAX_REPORT_BYTES >> 20} MiB; not a workbench report")
    try:
        report = json.loads(report_path.read_text(encoding="utf-8"))
        raw = report["recipe"]
        meta: dict[str, Any] = read_meta(folder)
        done = len((meta.get("recipe") or {}).get("stages") or [])
        planned = [s for s in raw["stages"] if s.get("enabled", True) is not False]
    except CheckpointError as exc:
        raise BadInput(exc.message) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"{folder}: cannot read its run's recipe ({type(exc).__name__}: {exc})") from None
    if not planned[done:]:
        raise BadInput(f"{folder}: made by the run's last stage; there is nothing left to run from it")
    recipe = Recipe.from_dict({**{k: v for k, v in raw.items() if k not in ("stages", "model")}, "stages": planned[done:]})
    return ResumePlan(recipe, {"run": str(run), "snapshot": str(folder)}, int(meta.get("index", 0)),
                      str(meta.get("stage", "")))
