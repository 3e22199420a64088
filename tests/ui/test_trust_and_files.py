"""Files in the GUI: trusting a file that can run code is an explicit choice; a bare state dict opens with a
chosen architecture; a corrupt file is called corrupt."""
import pytest
import torch
from PySide6.QtWidgets import QMessageBox
from waits import WAIT_MS

from workbench.core.export import ExportSource, export_model
from workbench.core.specs import load_model
from workbench.ui.dialogs.open_model import OpenModelDialog


def _program(tmp_path, fmt: str):
    path = tmp_path / ("model.ts" if fmt == "torchscript" else "model.pt2")
    assert export_model(ExportSource.from_loaded(load_model("sample:digits_cnn")), fmt, path).verified
    return path


@pytest.mark.parametrize("fmt,why", [("torchscript", "TorchScript"), ("pt2", "torch.export archive is a program")])
def test_a_program_asks_for_trust_and_loads_only_on_yes(make_window, qtbot, messages, tmp_path, fmt, why):
    w = make_window()
    path = _program(tmp_path, fmt)
    messages.answer = QMessageBox.StandardButton.No
    w.open_model(str(path))
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT_MS)
    title, text, _ = messages[-1]
    assert title == "Trust this file?" and why in text and "with your permissions" in text
    qtbot.wait(300)
    assert w.model_spec == "sample:digits_mlp" and len(messages) == 1     # "No": nothing loaded, no other error
    messages.answer = QMessageBox.StandardButton.Yes
    w.open_model(str(path))
    qtbot.waitUntil(lambda: w.model_spec == str(path), timeout=WAIT_MS)  # trial-loaded in a child, then here
    assert w.state.model_options == {"arch": None, "trust": True}
    assert why in messages[-1][1] and len(messages) == 2


def test_state_dict_opens_with_a_chosen_architecture(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = tmp_path / "weights.pt"
    torch.save(load_model("sample:digits_cnn").module.state_dict(), path)
    dialog = OpenModelDialog(w)
    qtbot.addWidget(dialog)
    dialog.tabs.setCurrentIndex(dialog.tabs.count() - 1)
    dialog.path_edit.setText(str(path))
    dialog.arch_edit.setText("arch:lenet5")
    assert dialog.spec() == str(path) and dialog.options() == {"arch": "arch:lenet5", "trust": False}
    w.open_model(dialog.spec(), **dialog.options())
    qtbot.waitUntil(lambda: w.model_spec == str(path), timeout=WAIT_MS)
    assert not messages and w.browser.info["total"]["params"] == sum(
        p.numel() for p in load_model("sample:digits_cnn").module.parameters())


def test_random_bytes_are_called_corrupt_not_untrusted(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = tmp_path / "noise.pt"
    path.write_bytes(bytes(range(256)) * 16)
    w.open_model(str(path))
    qtbot.waitUntil(lambda: bool(messages), timeout=WAIT_MS)
    title, text, _ = messages[-1]
    assert title == "Cannot open model" and "corrupt" in text and "trust" not in text.lower()


def test_a_trusted_full_pickle_opens_after_the_question(make_window, qtbot, messages, tmp_path):
    w = make_window()
    path = tmp_path / "whole_model.pt"
    torch.save(load_model("sample:digits_mlp").module, path)        # a pickled nn.Module: code, not only tensors
    messages.answer = QMessageBox.StandardButton.Yes
    w.open_model(str(path))
    qtbot.waitUntil(lambda: w.model_spec == str(path), timeout=WAIT_MS)
    title, text, _ = messages[0]
    assert title == "Trust this file?" and "pickled Python objects" in text
    assert w.browser.info["total"]["params"] == 50_610 and w.state.model_options["trust"] is True


def test_the_model_panel_shows_preprocessing_and_a_replaced_head(make_window, qtbot, messages, tmp_path, monkeypatch):
    import timm
    from safetensors.torch import save_file
    path = tmp_path / "convnext.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("convnext_atto").state_dict().items()}, str(path))
    w = make_window()
    w.set_data("fake:3x32x32:10:32")
    qtbot.waitUntil(lambda: w.data_spec == "fake:3x32x32:10:32", timeout=WAIT_MS)
    w.open_model(f"timm:convnext_atto:weights={path}")
    qtbot.waitUntil(lambda: w.model_spec.startswith("timm:"), timeout=WAIT_MS)
    text = w.browser.totals.text()
    assert "<b>preprocessing</b> (the weights' own): resize to 224×224 (bicubic); mean (0.485, 0.456, 0.406)" in text
    assert "replaced the classifier head head.fc (1000 -&gt; 10 classes)" in text
