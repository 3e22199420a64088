"""Dialogs: opening a model or data, comparing and exporting snapshots, picking layers, error and info messages."""
