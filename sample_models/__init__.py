"""The sample models and the digits data (see README.md here); installed as the data package
`workbench.sample_models` (pyproject.toml's package-dir), found through `workbench.core.resources.samples_dir()`."""
