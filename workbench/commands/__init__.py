"""Implementations of the headless commands (`inspect`, `run`, `export`)."""
