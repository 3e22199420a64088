"""The `distill` stage: teachers, students, feature pairs, snapshots, and settings rejected before a run."""
import pytest
import torch
from prune_helpers import assert_ok, assert_rejected, run_recipe

from workbench.core.events import Metric
from workbench.core.snapshots import load_snapshot


def _metric(events, name):
    return [e.value for e in events if isinstance(e, Metric) and e.name == name]


def test_small_student_learns_from_the_teacher_and_reloads(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
data: sample:digits
stages:
  - kind: distill
    teacher: sample:digits_teacher
    student: arch:mlp:hidden=32
    temperature: 4
    epochs: 6
    lr: 0.003
""", tmp_path)
    assert_ok(events)
    assert _metric(events, "distill/teacher_accuracy")[0] > 0.99
    acc = _metric(events, "distill/accuracy")
    assert len(acc) == 6 and acc[-1] > 0.9                  # a fresh 64-32-10 MLP, six epochs
    rows = run.report.data["snapshots"]
    assert rows[1]["params"] == 64 * 32 + 32 + 32 * 10 + 10   # the student's architecture replaced the input's
    assert rows[1]["compression_ratio"] > 20                  # 2,410 parameters against 50,610
    snap = load_snapshot(tmp_path / "run" / rows[1]["path"])
    assert snap.record["base"] == "arch:mlp:hidden=32"
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(snap.module.eval()(x), run.session.model.eval()(x))


def test_fitnet_attention_and_relational_losses_train_a_resnet_student(tmp_path):
    run, events = run_recipe("""
model: sample:digits_resnet
stages:
  - kind: distill
    teacher: sample:digits_teacher
    student: arch:resnet8:width=8
    losses: {logits: 1, fitnet: 1, attention: 1000, rkd: 1, sp: 3000}
    pairs: [[layer2, layer2], [layer3, layer3]]
    epochs: 3
    lr: 0.003
""", tmp_path)
    assert_ok(events)
    loss = _metric(events, "distill/loss")
    assert len(loss) == 3 and loss[-1] < loss[0]
    assert _metric(events, "distill/accuracy")[-1] > 0.3        # val accuracy after 3 epochs from scratch: 3x chance
    model = run.session.model
    assert model.conv1.out_channels == 8                      # the adapters are not part of the student
    assert not any("adapter" in k for k in model.state_dict())
    assert all(not m._forward_hooks for m in model.modules())  # feature taps removed


def test_teacher_assistant_chain_and_ensemble(tmp_path):
    run, events = run_recipe("""
model: sample:digits_teacher
stages:
  - kind: distill
    student: arch:resnet8:width=8
    epochs: 1
  - kind: distill
    teacher: 1
    student: arch:mlp:hidden=16
    epochs: 1
  - kind: distill
    teacher: [sample:digits_mlp, sample:digits_cnn]
    losses: {logits: 1, sp: 1}
    epochs: 1
""", tmp_path)
    assert_ok(events)
    history = run.session.history
    assert [h["teacher"] for h in history] == [["the run's input model (snapshot 0)"], ["snapshot 1"],
                                               ["sample:digits_mlp", "sample:digits_cnn"]]
    assert history[0]["teacher_val_accuracy"] > 0.99
    # an ensemble's soft targets are the mean of its members'
    assert 0.95 < history[2]["teacher_val_accuracy"] <= 1.0
    assert [r["stage"] for r in run.report.data["snapshots"]] == ["baseline", "distill", "distill", "distill"]


def test_reinit_keeps_the_pruned_structure(tmp_path):
    run, events = run_recipe("""
model: sample:digits_mlp
stages:
  - kind: prune
    sparsity: 0.8
    finetune_epochs: 0
  - kind: distill
    student: reinit
    epochs: 2
""", tmp_path)
    assert_ok(events)
    rows = run.report.data["snapshots"]
    assert rows[2]["nonzero_params"] == rows[1]["nonzero_params"]   # masks kept zero through distillation
    before = load_snapshot(tmp_path / "run" / rows[1]["path"]).module.fc1.weight
    after = run.session.model.fc1.weight
    kept = before != 0
    assert torch.equal(after[~kept], torch.zeros_like(after[~kept]))
    assert not torch.allclose(after[kept], before[kept])            # fresh weights, retrained


@pytest.mark.parametrize("stage,needle", [
    ("{kind: distill, losses: {logit: 1}}", "stages[0].losses: unknown loss 'logit'"),
    ("{kind: distill, losses: {fitnet: 1}}", "stages[0].pairs: the fitnet loss needs"),
    ("{kind: distill, losses: {logits: 0}}", "stages[0].losses: give at least one loss"),
    ("{kind: distill, temperature: 0}", "stages[0].temperature"),
    ("{kind: distill, alpha: 1.5}", "stages[0].alpha"),
    ("{kind: distill, pairs: [[fc1]]}", "stages[0].pairs: item 0"),
    ("{kind: distill, teacher: 3}", "stages[0].teacher: snapshot 3 will not exist yet"),
    ("{kind: distill, teacher: -1}", "stages[0].teacher"),
    ("{kind: distill, teacher: sample:nope}", "stages[0].teacher"),
    ("{kind: distill, student: arch:lenet9}", "stages[0].student"),
    ("{kind: distill, teacher: [a, b], losses: {fitnet: 1}, pairs: [[fc1, fc1]]}", "single teacher"),
    ("{kind: distill, losses: {fitnet: 1}, pairs: [[fc9, fc1]]}", "stages[0].pairs: the teacher has no layer 'fc9'"),
    ("{kind: distill, losses: {attention: 1}, pairs: [[fc1, fc1]]}", "attention transfer needs convolution"),
])
def test_bad_settings_are_rejected_before_the_run(tmp_path, stage, needle):
    assert_rejected(tmp_path, "sample:digits_mlp", stage, needle)
