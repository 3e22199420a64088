"""The ready-made recipes (`recipes/`), the GUI's style sheet (`style.qss`) and icons (`icons/`); installed as the
data package `workbench.resources` (pyproject.toml's package-dir), found through `workbench.core.resources`."""
