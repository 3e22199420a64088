"""`distill`: train the student (the current model, re-initialised, or a new architecture) to imitate a teacher.

loss = (1 - alpha) * CE(labels) + alpha * w_logits * T^2 * KL(p_teacher || p_student)
       + sum over `pairs` of w_fitnet * FitNet + w_attention * AT + w_rkd * RKD + w_sp * SP

The algorithms live in `core/distill/`; this module holds the settings, the checks made before the run
starts (teacher and student load, the paired layers exist and their shapes suit the chosen losses) and
the loop, which is the shared `training.fit` with a distillation loss and the FitNet adapters as extra
parameters (they are thrown away afterwards: the student keeps its own architecture).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from ..distill import losses as L
from ..distill.teachers import FeatureTap, Teacher, TeacherRef, describe, is_snapshot_index, teacher_specs
from ..errors import BadInput, RecipeError, SpecError, StageError
from ..events import Event, Log, Metric
from ..limits import MAX_SNAPSHOT_INDEX
from ..metrics import accuracy, is_quantized
from ..params import param
from ..specs import check_fits, load_model
from ..training import OPTIMIZERS, SCHEDULES, LossFn, fit
from . import StageKind, get, register

if TYPE_CHECKING:
    from ..models import LoadedModel
    from ..session import Session

DESCRIPTION = ("Knowledge distillation: the student learns from the teacher's softened outputs (temperature T) "
               "and, optionally, from its intermediate features (FitNet hints, attention transfer) and the "
               "relations between samples (RKD, similarity-preserving). Two distill stages in a row make a "
               "teacher-assistant chain.")


def _check_losses(value: dict[str, Any]) -> str | None:
    for name in value:
        if name not in L.LOSSES:
            return f"unknown loss {name!r} (known: {', '.join(L.LOSSES)})"
    return None


@dataclass
class Params:
    teacher: str | int | list[str] = param(
        "input", "input: the model this run started from (snapshot 0). A number N: snapshot N of this run. "
        "A model spec (sample:digits_teacher, a file, a snapshot folder). A list of specs: an ensemble whose "
        "softened outputs are averaged.", min=0, max=MAX_SNAPSHOT_INDEX, max_items=16)
    student: str = param("current", "current: keep training the current model. reinit: the current architecture "
                         "(pruned structure and masks kept) with fresh weights. A model spec (e.g. "
                         "arch:resnet8:width=8): a new, smaller architecture trained from scratch.")
    temperature: float = param(4.0, "Softmax temperature T: p_i = exp(z_i/T) / sum_j exp(z_j/T). Higher T shows "
                               "more of the teacher's 'dark knowledge' about wrong classes.", min=0.0, max=100.0,
                               min_exclusive=True, step=0.5)
    alpha: float = param(0.9, "Weight of the teacher terms against the labels: (1 - alpha) x cross-entropy + "
                         "alpha x w_logits x T^2 x KL.", min=0.0, max=1.0, step=0.05)
    losses: dict[str, float] = param({"logits": 1.0}, "Weight of each loss: logits (soft targets), fitnet (hint "
                                     "regression through a learned adapter), attention (attention transfer), rkd "
                                     "(relational: distances and angles), sp (similarity-preserving). Feature "
                                     "losses use `pairs`; rkd and sp without pairs compare the outputs. The papers' weights: fitnet 1, "
                                     "attention 1000, rkd 1 (25 x distance + 50 x angle inside), sp 3000.",
                                     min=0.0, max=1e5, check=_check_losses)
    pairs: list[list[str]] = param([], "Layers whose outputs are matched: [[teacher_layer, student_layer], ...].",
                                   max_items=100)
    epochs: int = param(10, "Passes over the training data.", min=0, max=1000)
    lr: float = param(1e-3, "Learning rate.", min=0.0, max=10.0, min_exclusive=True, step=1e-4)
    optimizer: str = param("adam", "Optimiser.", choices=OPTIMIZERS)
    batch_size: int = param(64, "Samples per step.", min=2, max=4096)
    weight_decay: float = param(0.0, "L2 weight decay.", min=0.0, max=1.0, step=1e-5, advanced=True)
    schedule: str = param("constant", "Learning-rate schedule.", choices=SCHEDULES, advanced=True)

    def validate(self) -> str | None:
        if not any(w > 0 for w in self.losses.values()):
            return "losses: give at least one loss a positive weight (e.g. {logits: 1})"
        for i, pair in enumerate(self.pairs):
            if len(pair) != 2:
                return f"pairs: item {i} must be [teacher_layer, student_layer], got {pair!r}"
        for name in ("fitnet", "attention"):
            if self.losses.get(name, 0) > 0 and not self.pairs:
                return f"pairs: the {name} loss needs [[teacher_layer, student_layer], ...]"
        if isinstance(self.teacher, list):
            if not self.teacher:
                return "teacher: an ensemble needs at least one model spec"
            if self.pairs and self.feature_weights():
                return "pairs: feature losses need a single teacher, not an ensemble"
        return None

    def feature_weights(self) -> dict[str, float]:
        return {k: w for k, w in self.losses.items() if k in L.FEATURE_LOSSES and w > 0}


def _path(session: Session) -> str:
    return f"stages[{session.stage_index}]"


def _snapshots_before(session: Session) -> int:
    """How many snapshots exist when this stage starts: the baseline plus one per earlier model-changing stage."""
    recipe = session.recipe
    if recipe is None:
        return len(session.snapshot_paths)
    earlier = [s for s in recipe.stages[:session.stage_index] if s.enabled]
    return 1 + sum(1 for s in earlier if get(s.kind).changes_model)


def _load_checked(session: Session, spec: str, path: str) -> LoadedModel:
    """Load a teacher or student spec for the run's data; errors name the field."""
    try:
        loaded = load_model(spec, session.data.input_shape, session.data.num_classes, trust=session.trust)
        check_fits(loaded.module, session.data, spec)
    except BadInput as exc:
        raise RecipeError(f"{path}: {exc.message}") from None
    return loaded


def load_teacher(session: Session, ref: TeacherRef, path: str) -> nn.Module:
    """One teacher module in eval mode with frozen parameters, on the session's device when it can move."""
    data = session.data
    try:
        if ref == "input" or is_snapshot_index(ref):
            index = ref if is_snapshot_index(ref) else 0
            if index >= len(session.snapshot_paths):
                raise StageError(f"{path}: snapshot {index} does not exist yet (this run has "
                                  f"{len(session.snapshot_paths)} so far)")
            module = load_model(str(session.snapshot_paths[index])).module
        else:
            module = load_model(str(ref), data.input_shape, data.num_classes, trust=session.trust).module
    except SpecError as exc:
        raise BadInput(f"{path}: {exc.message}") from None
    if not is_quantized(module):
        module = module.to(session.device)
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module


def _trainable(model: nn.Module) -> bool:
    return any(p.requires_grad and p.is_floating_point() for p in model.parameters())


def preflight(session: Session, p: Params) -> None:
    path = _path(session)
    available = _snapshots_before(session)
    teachers: list[nn.Module | None] = []
    for i, ref in enumerate(teacher_specs(p.teacher)):
        where = f"{path}.teacher" + (f"[{i}]" if isinstance(p.teacher, list) else "")
        if is_snapshot_index(ref) and ref >= available:
            raise RecipeError(f"{where}: snapshot {ref} will not exist yet: {available} snapshot(s) "
                              f"(0 to {available - 1}) come before this stage")
        if ref == "input" or ref == 0:
            teachers.append(session.model)      # nothing has run yet: the current model is the input
        elif is_snapshot_index(ref):
            teachers.append(None)               # its architecture is known once the snapshot exists
        else:
            teachers.append(_load_checked(session, str(ref), where).module)
    if p.student in ("current", "reinit"):
        student = session.model
    else:
        student = _load_checked(session, p.student, f"{path}.student").module
    if not _trainable(student):
        raise RecipeError(f"{path}.student: the model has no float weights to train (int8 models cannot be "
                          f"distilled into; distill before quantizing)")
    if p.pairs and teachers[0] is not None:
        try:
            _probe(teachers[0], student, session.example_input(2), p)
        except BadInput as exc:
            raise RecipeError(f"{path}.pairs: {exc.message}") from None


def _probe(teacher: nn.Module, student: nn.Module, x: torch.Tensor, p: Params) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Run one batch through both models; check each pair's shapes suit the losses; return them by pair index."""
    t_tap = FeatureTap(teacher, [t for t, _ in p.pairs], "the teacher")
    s_tap = FeatureTap(student, [s for _, s in p.pairs], "the student")
    modes = teacher.training, student.training
    try:
        teacher.eval(), student.eval()
        with torch.no_grad():
            teacher(x), student(x)
        shapes = {}
        for i, (t, s) in enumerate(p.pairs):
            ft, fs = t_tap.outputs.get(t), s_tap.outputs.get(s)
            if not isinstance(ft, torch.Tensor) or not isinstance(fs, torch.Tensor):
                raise BadInput(f"pair {i} ({t}, {s}): the layer's output is not a tensor")
            if p.losses.get("attention", 0) > 0 and (ft.ndim != 4 or fs.ndim != 4):
                raise BadInput(f"pair {i} ({t}, {s}): attention transfer needs convolution features "
                               f"[B, C, H, W]; got {list(ft.shape)} and {list(fs.shape)}")
            shapes[i] = (ft, fs)
        return shapes
    finally:
        t_tap.close()
        s_tap.close()
        teacher.train(modes[0]), student.train(modes[1])


def _set_student(session: Session, p: Params) -> Iterator[Event]:
    if p.student == "current":
        return
    if p.student == "reinit":
        for m in session.model.modules():
            reset = getattr(m, "reset_parameters", None)
            if m is not session.model and callable(reset):
                reset()
        session.codebooks = {}
        session.apply_masks()
        yield Log("info", "student: the current architecture with fresh weights")
    else:
        loaded = _load_checked(session, p.student, f"{_path(session)}.student")
        session.replace_model(loaded)
        yield Log("info", f"student: {p.student} ({sum(t.numel() for t in loaded.module.parameters()):,} parameters)")
    session.init_state = {k: v.detach().cpu().clone() for k, v in session.model.state_dict().items()}


def run(session: Session, p: Params) -> Iterator[Event]:
    path = _path(session)
    refs = teacher_specs(p.teacher)
    yield from _set_student(session, p)
    modules = [load_teacher(session, ref, f"{path}.teacher") for ref in refs]
    weights = p.feature_weights()
    teacher = Teacher(modules, [t for t, _ in p.pairs] if weights else [], session.device)
    s_tap = FeatureTap(session.model, [s for _, s in p.pairs], "the student") if weights and p.pairs else None
    try:
        adapters = nn.ModuleList()
        if weights.get("fitnet", 0) > 0:
            shapes = _probe(modules[0], session.model, session.example_input(2), p)
            adapters.extend(L.make_adapter(fs, ft) for ft, fs in shapes.values())
            adapters.to(session.device)
        t_acc = teacher.accuracy(session.data.val)
        yield Metric("distill/teacher_accuracy", t_acc, 0)
        yield Log("info", f"teacher: {', '.join(describe(r) for r in refs)}, val accuracy {t_acc:.4f}; "
                          f"student before: {accuracy(session.model, session.data.val, session.device):.4f}")
        loss_fn = _loss(p, teacher, s_tap, adapters)
        yield from fit(session, p.epochs, p.lr, p.optimizer, p.schedule, p.weight_decay, p.batch_size,
                       loss_fn=loss_fn, extra_params=adapters.parameters(), label="distill")
    finally:
        teacher.close()
        if s_tap:
            s_tap.close()
    acc = accuracy(session.model, session.data.val, session.device)
    session.note(op="distill", teacher=[describe(r) for r in refs], student=p.student, temperature=p.temperature,
                 alpha=p.alpha, losses=dict(p.losses), pairs=[list(x) for x in p.pairs], teacher_val_accuracy=t_acc,
                 val_accuracy=acc)
    yield Log("info", f"distilled: student val accuracy {acc:.4f} (teacher {t_acc:.4f})")


def _loss(p: Params, teacher: Teacher, s_tap: FeatureTap | None, adapters: nn.ModuleList) -> LossFn:
    T, alpha, w = p.temperature, p.alpha, p.losses
    relational = {k: f for k, f in (("rkd", L.rkd_loss), ("sp", L.sp_loss)) if w.get(k, 0) > 0}

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = model(x)
        probs, t_logits, t_features = teacher(x, T)
        loss = (1.0 - alpha) * F.cross_entropy(out, y)
        if w.get("logits", 0) > 0:
            loss = loss + alpha * w["logits"] * L.kd_loss(out, probs, T)
        if not p.pairs:
            for name, fn in relational.items():
                loss = loss + w[name] * fn(out, t_logits)
            return loss
        if s_tap is None:
            return loss
        for i, (t_name, s_name) in enumerate(p.pairs):
            fs, ft = s_tap.outputs[s_name], t_features[t_name]
            if w.get("fitnet", 0) > 0:
                loss = loss + w["fitnet"] * L.fitnet_loss(fs, ft, adapters[i])
            if w.get("attention", 0) > 0:
                loss = loss + w["attention"] * L.attention_loss(fs, ft)
            for name, fn in relational.items():
                loss = loss + w[name] * fn(fs, ft)
        return loss

    return loss_fn


STAGE = register(StageKind(kind="distill", title="Distill",
                           description=DESCRIPTION, params=Params, run=run, preflight=preflight))
