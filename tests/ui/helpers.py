"""Helpers shared by the GUI tests."""
import yaml


def write_recipe(path, stages, name="test"):
    path.write_text(yaml.safe_dump({"name": name, "seed": 0, "stages": stages}, sort_keys=False))
    return str(path)


def wait_run(qtbot, window, timeout=90_000):
    qtbot.waitUntil(lambda: not window.control.running() and window.control.worker is None, timeout=timeout)
