"""Dynamic computation: early exits (the `dynamic` stage uses them)."""
