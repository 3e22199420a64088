"""Helpers shared by the GUI tests."""
import yaml
from waits import WAIT_MS


def write_recipe(path, stages, name="test"):
    path.write_text(yaml.safe_dump({"name": name, "seed": 0, "stages": stages}, sort_keys=False))
    return str(path)


def wait_run(qtbot, window):
    qtbot.waitUntil(lambda: not window.control.running() and window.control.worker is None, timeout=WAIT_MS)
