"""Shared by tests/test_auto.py and tests/ui/test_auto_ui.py: small budget-stage recipes and a thread setting."""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# 40x on the sample MLP: the knapsack's and the uniform allocation at the target, then one more candidate (a push
# or a retry with longer fine-tuning; about 10 s with one thread)
MLP_40X = """
model: sample:digits_mlp
data: sample:digits
seed: 0
stages:
  - kind: auto
    target: {ratio: 40}
    max_drop: 0.01
    methods: [prune, kmeans]
    epochs: 75
    finetune_epochs: 21
    centroid_epochs: 3
    max_candidates: 3
  - kind: export
    formats: [packed]
"""

# half the FLOPs of the sample ResNet-8 with structured pruning: the same search as the latency target, with a cost
# that is counted (deterministic) instead of timed
RESNET_HALF_FLOPS = """
model: sample:digits_resnet
data: sample:digits
seed: 0
stages:
  - kind: auto
    target: {flops: 0.5}
    max_drop: 0.01
    methods: [structured]
    epochs: 60
    finetune_epochs: 12
    channels: [0.0, 0.25, 0.5, 0.625, 0.75]
    push: false
"""

# half the latency of the sample ResNet-8 with structured pruning: the knapsack's and the uniform allocation at the
# target, the better retried with twice the fine-tuning if it drops too much (about a minute with one thread)
RESNET_HALF_LATENCY = RESNET_HALF_FLOPS.replace("target: {flops: 0.5}", "target: {latency: 0.5}")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread: on a 2-core machine shared with other jobs two threads make training several times
    slower (they wait on each other), and one thread times latency steadily."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
