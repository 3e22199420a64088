"""Run from here (a mixin of the main window): Run continues a run's pipeline from a snapshot — the one selected
in the runs view, or after Stop the stopped run's last — when the user says so; "Start over" runs the recipe."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import BadInput
from ..core.resume import ResumePlan, resume_plan
from ..core.run_handle import RunOptions
from .dialogs import errors
from .widgets.curves import stage_names

if TYPE_CHECKING:                      # the main window this mixin is part of, as the type checker sees it
    from PySide6.QtWidgets import QComboBox, QDockWidget, QMainWindow, QSpinBox

    from .pipeline.runtime_choice import RuntimeChoice
    from .qthreading.run_control import RunControl
    from .state import AppState
    from .widgets.plots import PlotsPanel
    from .widgets.run_panel import RunPanel
    from .widgets.runs_view import RunsView
    _Window = QMainWindow
else:
    _Window = object


class RunFrom(_Window):
    """The main window's Run from here (a mixin: the window sets the attributes below)."""

    state: AppState
    control: RunControl
    run_panel: RunPanel
    plots: PlotsPanel
    runs: RunsView
    docks: dict[str, QDockWidget]
    device_combo: QComboBox
    runtime_combo: RuntimeChoice
    process_count: QSpinBox
    titles: dict[str, str]
    _stopped_at: str | None = None      # the last snapshot of a run ended by Stop

    def resume_candidate(self) -> ResumePlan | None:
        """The snapshot Run may continue from (selected, else the stopped run's last), when stages follow it."""
        for path in (self.state.snapshot, self._stopped_at):
            if path:
                try:
                    return resume_plan(path)
                except BadInput:
                    continue
        return None

    def ask_run_from(self) -> bool | None:
        """None: no snapshot to run from; True: run from it (started or not), False: start over."""
        plan = self.resume_candidate()
        if plan is None:
            return None
        later = ", ".join(s.kind for s in plan.recipe.stages)
        if not errors.ask(self, "Run from a snapshot?", f"Continue from snapshot {plan.index} ({plan.stage}) of "
                          f"{Path(plan.resumed_from['run']).name}, with the stages after it ({later})? Start over "
                          "runs the whole recipe on the open model.", yes=f"Run from snapshot {plan.index}",
                          no="Start over"):
            self._stopped_at = None
            return False
        self.run_from(plan)
        return True

    def run_from(self, plan: ResumePlan) -> bool:
        """Run the stages after the snapshot, with the snapshot folder as the model; report.json says where from."""
        if self.control.running():
            return False
        self._stopped_at = None
        recipe = plan.recipe
        self.run_panel.start(len(recipe.stages), f"{recipe.name or 'run'} from snapshot {plan.index}")
        self.docks["progress"].raise_()
        options = RunOptions(model=plan.resumed_from["snapshot"], data=self.state.data_spec,
                             device=self.device_combo.currentText(), nproc=self.process_count.value(),
                             runtime=self.runtime_combo.runtime(),
                             resumed_from=plan.resumed_from)
        started = self.control.start(recipe, options, self.state.runs_dir)
        if started:
            self.plots.begin_run(self.control.out_dir, stage_names(recipe.to_dict(), self.titles))
        return started

    def note_run_end(self, run_dir: str, status: str) -> None:
        """After Stop, Run offers to continue from the run's last snapshot."""
        mine = [(r.get("index", 0), p) for p, r in self.runs.snapshots.items() if Path(p).parents[1] == Path(run_dir)]
        self._stopped_at = max(mine)[1] if status == "stopped" and mine else None
