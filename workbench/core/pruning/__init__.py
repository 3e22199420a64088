"""Pruning algorithms used by the `prune` and `sensitivity` stages.

- `layers`: which layers can be pruned, the final classifier, per-layer statistics.
- `schedule`: sparsity targets per step (one-shot, iterative, Zhu & Gupta's gradual cubic schedule).
- `importance`: weight scores (unstructured) and torch-pruning importance criteria (structured).
- `unstructured`: masks from layer-wise or global thresholds, with overrides and exclusions.
- `structured`: physical removal of channels with torch-pruning's dependency graph, and its replay.
- `lottery`: rewinding surviving weights to their initial (or an early snapshot's) values.
"""
