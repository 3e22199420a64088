"""Compression to a budget: the algorithms behind the `auto` stage.

- `options`: per-layer option tables: every sparsity x bit width (or channel fraction) of a layer with its
  predicted loss (divergence from the model's own val outputs, the layer compressed alone) and its cost
  (bytes from the packed format's size model, measured latency, FLOPs or parameters).
- `solver`: one option per layer, least total predicted loss under a budget (a multiple-choice knapsack,
  solved by dynamic programming over the discretised cost; a Lagrangian sweep for comparison).
- `search`: the accuracy-aware loop (bisection on the global strength beyond the target) and the
  calibration of predicted against measured cost.

Like the other algorithm packages it never imports the stages, the runner, the store or spec resolution;
the `auto` stage applies the chosen allocations through the prune and quantize stages.
"""
