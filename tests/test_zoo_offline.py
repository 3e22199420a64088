"""Pretrained timm weights offline: the Hugging Face cache is read first, and a file that is not there is
refused at once under WORKBENCH_OFFLINE=1 (no connection attempted, so no hub retries), naming the cache and
the download command the installed huggingface_hub ships."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file
from waits import WAIT_S

from workbench.core import zoo
from workbench.core.errors import SpecError
from workbench.core.specs import load_model

HUB_ID = "timm/resnet18.a1_in1k"


def _no_network(*args, **kwargs):
    raise AssertionError(f"a network connection was attempted: {args[:1]}")


@pytest.fixture()
def sealed(monkeypatch, tmp_path):
    """Only WORKBENCH_OFFLINE (not HF_HUB_OFFLINE), an empty Hugging Face cache, sockets that refuse to connect,
    and timm's hub loader recorded."""
    from huggingface_hub import constants
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    hub_calls: list = []
    import timm.models
    monkeypatch.setattr(timm.models, "load_state_dict_from_hf", lambda *a, **k: hub_calls.append(a))
    return cache, hub_calls


def test_workbench_offline_refuses_at_once_without_the_hub(sealed):
    cache, hub_calls = sealed
    assert zoo._timm_cfg(zoo.parse("timm:resnet18:pretrained"))["hf_hub_id"] == HUB_ID
    with pytest.raises(SpecError) as info:
        load_model("timm:resnet18:pretrained")
    message = info.value.message
    assert hub_calls == [] and "\n" not in message
    assert HUB_ID in message and str(cache) in message and "downloads are off" in message
    assert f"hf download {HUB_ID}" in message and "huggingface-cli" not in message


def test_cached_weights_load_without_any_connection(sealed, monkeypatch):
    """The cache is read first, online or not: a cached file never costs a request (or its retries)."""
    cache, hub_calls = sealed
    monkeypatch.delenv("WORKBENCH_OFFLINE")
    import timm
    torch.manual_seed(7)
    source = timm.create_model("resnet18", num_classes=1000).state_dict()
    repo = cache / ("models--" + HUB_ID.replace("/", "--"))
    snap = repo / "snapshots" / ("a" * 40)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    save_file({k: v.contiguous() for k, v in source.items()}, str(snap / "model.safetensors"))
    loaded = load_model("timm:resnet18:pretrained")
    assert hub_calls == []
    assert torch.equal(loaded.module.conv1.weight, source["conv1.weight"])
    assert torch.equal(loaded.module.fc.weight, source["fc.weight"])


def test_the_hint_names_the_cli_the_installed_hub_ships(monkeypatch):
    from importlib import metadata

    class Script:
        def __init__(self, name):
            self.name, self.value = name, "huggingface_hub.cli:main"
    for names, expected in ((["hf"], "hf download x/y"), (["huggingface-cli"], "huggingface-cli download x/y")):
        monkeypatch.setattr(metadata, "entry_points", lambda group, names=names: [Script(n) for n in names])
        assert zoo.hub_download_hint("x/y@rev") == expected


def test_cli_exits_2_with_one_line_and_no_connection(tmp_path):
    """The real command with an empty HF_HOME and only WORKBENCH_OFFLINE=1; sockets refuse in that process."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(WORKBENCH_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"))
    code = ("import socket, sys\n"
            "def refuse(*a, **k): raise SystemExit('network connection attempted')\n"
            "socket.create_connection = refuse; socket.socket.connect = refuse\n"
            "from workbench.cli import main\n"
            "sys.exit(main(['inspect', 'timm:resnet18:pretrained']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=WAIT_S)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and HUB_ID in lines[0] and "hf download" in lines[0], proc.stderr
    assert str(tmp_path / "hf") in lines[0]
