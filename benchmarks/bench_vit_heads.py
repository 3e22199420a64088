"""ViTs pruned 50 % by the workbench (whole attention heads go) and by Torch-Pruning alone (its ViT recipe).

For timm vit_small_patch16_224 and torchvision vit_b_16 (random weights, 224 px): structured pruning of 50 % of each
layer's channels, L1, layer scope, the classifier's outputs kept:
- `workbench`: `structured.prune_once`, as the prune stage prunes (timm attention: whole heads, torch-pruning's
  `num_heads=` handling; torchvision: nn.MultiheadAttention narrowed by torch-pruning);
- `torch-pruning alone`: `MetaPruner(num_heads={qkv: heads})` with its defaults (head dims pruned), then each
  attention's `num_heads` / `head_dim` set from the pruned layers, as its timm ViT example does.
Before issue 19 the workbench kept timm's attention inner width (an opaque stand-in): vit_small 7.49 M
parameters, MAC ratio 2.58 (the issue's figures).
Parameters, MACs (`metrics.flops_per_module` / 2) and the MAC ratio; the eager speed-up against the original,
timed alternately in one process (original, workbench, torch-pruning alone), batch 1, one thread, with p10-p90.

    python benchmarks/bench_vit_heads.py [--models vit_small_patch16_224 vit_b_16] [--repeats 15]

Written: benchmarks/results/vit_heads.json.
"""
from __future__ import annotations

import argparse
import copy
import warnings

import torch
import torch_pruning as tp
from alternating import ratios
from prune_bench_common import table, write_result

from workbench.core.latency import alternating_ms
from workbench.core.metrics import flops_per_module
from workbench.core.pruning import structured
from workbench.core.pruning.timm_pruners import heads


def build(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, its classifier)."""
    torch.manual_seed(0)
    if name == "vit_b_16":
        import torchvision
        model = torchvision.models.vit_b_16().eval()
        return model, model.heads.head
    import timm
    model = timm.create_model(name).eval()
    return model, model.head


def torch_pruning_alone(model: torch.nn.Module, classifier: torch.nn.Module, x: torch.Tensor) -> torch.nn.Module:
    num_heads = {a.qkv: a.num_heads for a in heads.attentions(model.modules())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(model, x, importance=tp.importance.GroupMagnitudeImportance(p=1),
                                      pruning_ratio=0.5, ignored_layers=[classifier], num_heads=num_heads)
        pruner.step()
    for a in heads.attentions(model.modules()):
        a.num_heads = pruner.num_heads[a.qkv]
        a.head_dim = a.qkv.out_features // (3 * a.num_heads)
        a.attn_dim = a.num_heads * a.head_dim
    structured.sync_attributes(model)      # torchvision: hidden_dim
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["vit_small_patch16_224", "vit_b_16"])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    x = torch.randn(1, 3, 224, 224)
    rows = []
    for name in args.models:
        original, _ = build(name)
        ours = copy.deepcopy(original)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structured.prune_once(ours, x, 0.5, "l1")
        alone = torch_pruning_alone(*build(name), x)
        macs = flops_per_module(original, x)[0] // 2
        times = alternating_ms([original, ours, alone], x, repeats=args.repeats, max_seconds=300.0)
        for label, m, t in (("workbench", ours, times[1]), ("torch-pruning alone", alone, times[2])):
            speed = ratios(times[0], t)
            pruned_macs = flops_per_module(m, x)[0] // 2
            rows.append({"model": name, "how": label, "params_m": sum(p.numel() for p in m.parameters()) / 1e6,
                         "gmacs": pruned_macs / 1e9, "mac_ratio": macs / pruned_macs, "speedup": speed["median"],
                         "p10": speed["low"], "p90": speed["high"], "n": speed["n"],
                         "heads": sorted({a.num_heads for a in heads.attentions(m.modules())})})
    print(table(rows, [("model", "model", ""), ("how", "", ""), ("params_m", "params M", ".2f"),
                       ("gmacs", "GMACs", ".2f"), ("mac_ratio", "MAC ratio", ".2f"), ("speedup", "eager speed-up", ".2f"),
                       ("p10", "p10", ".2f"), ("p90", "p90", ".2f"), ("n", "n", "d"), ("heads", "timm heads", "")]))
    path = write_result("vit_heads", {"batch": 1, "threads": 1, "image": 224, "sparsity": 0.5, "rows": rows})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
