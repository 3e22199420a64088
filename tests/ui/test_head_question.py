"""Never replace a head silently: the user's own checkpoint whose classifier predicts another number of classes than
the data's is opened only after the user answers "Replace head" (then remembered: recipe, Recent); Cancel changes
nothing; the user's own weights are never called pretrained."""
import torch
import yaml
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.core.specs import load_model

from .test_image_folder_run import image_folder

ARCH = "arch:mlp:hidden=16"


def _head(info: dict) -> list:
    return next(r["shape"] for r in info["layers"] if r["name"] == "fc2")


def _window(qtbot, tmp_path):
    """The window on a 2-class image folder (8x8) with the architecture's own 2-class model open, and a 10-class
    state dict of that architecture saved by the user."""
    from workbench.ui.app import make_app
    from workbench.ui.main_window import MainWindow
    make_app()
    spec = f"imagefolder:{image_folder(tmp_path / 'images')}:8"
    saved = load_model(ARCH, (3, 8, 8), 10, seed=3).module.state_dict()
    torch.save(saved, tmp_path / "mine.pth")
    w = MainWindow(model=ARCH, data=spec, runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.browser.info is not None and w.model_spec == ARCH and not w.runs.loading(), timeout=WAIT_MS)
    assert _head(w.state.model_info) == [2, 16]
    return w, str(tmp_path / "mine.pth"), saved


def test_cancel_leaves_the_previous_model(qtbot, tmp_path, messages):
    w, mine, _ = _window(qtbot, tmp_path)
    before = w.state.model_info
    messages.answer = QMessageBox.StandardButton.No          # Cancel
    w.open_model(mine, ARCH)
    qtbot.waitUntil(lambda: len(messages) == 1, timeout=WAIT_MS)
    title, text, _ = messages[0]
    assert title == "Replace the classifier head?"
    assert text.startswith("mine.pth: its classifier fc2 has 10 classes, the data has 2.")
    assert "Replace the head with a new 2-class layer (your trained head is discarded)" in text
    assert "--replace-head" not in text and "pretrained" not in text
    qtbot.wait(200)
    assert len(messages) == 1                                  # asked once; nothing loaded behind the question
    assert w.model_spec == ARCH and w.state.model_info is before and not w.state.model_options.get("replace_head")
    assert w.browser.info is before and "mine.pth" not in w.status_model.text()


def test_replace_head_opens_it_with_a_new_head_and_remembers_it(qtbot, tmp_path, messages):
    from workbench.ui import settings
    w, mine, saved = _window(qtbot, tmp_path)
    messages.answer = QMessageBox.StandardButton.Yes         # Replace head
    w.open_model(mine, ARCH)
    qtbot.waitUntil(lambda: w.model_spec == mine, timeout=WAIT_MS)
    assert len(messages) == 1 and messages[0][0] == "Replace the classifier head?"
    assert _head(w.state.model_info) == [2, 16]                # 2 outputs: the data's classes
    assert w.state.model_options == {"arch": ARCH, "trust": False, "replace_head": True}
    notes = " ".join(w.state.model_info.get("notes", []))
    assert "fc2 (10 -> 2 classes, as asked)" in notes and "checkpoint's weights" in notes and "pretrained" not in notes
    # every other layer has the user's weights, as loaded for the panel (the same options the runs get)
    from workbench.core.layer_data import CACHE
    module = CACHE.get(mine).module
    assert torch.equal(module.state_dict()["fc1.weight"], saved["fc1.weight"])
    # saved into the recipe's model mapping, and Recent reopens it the same way without asking again
    w._save_to(str(tmp_path / "saved.yaml"))
    model = yaml.safe_load((tmp_path / "saved.yaml").read_text())["model"]
    assert model == {"spec": mine, "arch": ARCH, "replace_head": True}
    assert settings.model_options(mine) == {"arch": ARCH, "replace_head": True}
    w.open_model(ARCH)
    qtbot.waitUntil(lambda: w.model_spec == ARCH, timeout=WAIT_MS)
    w.open_recent_model(mine)
    qtbot.waitUntil(lambda: w.model_spec == mine, timeout=WAIT_MS)
    assert len(messages) == 1 and w.state.model_options["replace_head"] is True
    # a restart reopens the last model as it was opened: with its new head, not asked again
    from workbench.ui.main_window import MainWindow
    again = MainWindow(data=w.data_spec, runs_dir=str(tmp_path / "runs"))
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.model_spec == mine, timeout=WAIT_MS)
    assert len(messages) == 1 and again.state.model_options == {"arch": ARCH, "trust": False, "replace_head": True}


def test_the_question_names_its_buttons(qtbot, monkeypatch):
    from workbench.ui.dialogs.open_model import ask_replace_head
    seen = []

    def answer(box):
        buttons = QMessageBox.StandardButton
        seen.append((box.button(buttons.Yes).text(), box.button(buttons.No).text(), box.defaultButton().text()))
        return buttons.No
    monkeypatch.setattr(QMessageBox, "exec", answer)
    assert ask_replace_head(None, "/x/mine.pth", ("fc", 10, 2)) is False
    assert seen == [("Replace head", "Cancel", "Cancel")]


def test_a_trusted_checkpoint_is_asked_about_its_head_too(qtbot, tmp_path, messages):
    """A checkpoint that needs trust (a pickled object beside its weights) is trial-loaded in a child process: the
    head question still comes (typed across the process), and "Replace head" loads it there and here."""
    import argparse
    w, mine, saved = _window(qtbot, tmp_path)
    torch.save({"state_dict": saved, "args": argparse.Namespace(lr=0.1)}, tmp_path / "trained.pth")
    spec = str(tmp_path / "trained.pth")
    messages.answer = QMessageBox.StandardButton.Yes          # trust it, then replace the head
    w.open_model(spec, ARCH)
    qtbot.waitUntil(lambda: w.model_spec == spec, timeout=WAIT_MS)
    assert [t for t, _, _ in messages] == ["Trust this file?", "Replace the classifier head?"], messages.texts()
    assert w.state.model_options == {"arch": ARCH, "trust": True, "replace_head": True}
    assert _head(w.state.model_info) == [2, 16]
