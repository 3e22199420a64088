"""The packed (Deep Compression) codec: encode and decode speed, the version-1 codec against today's.

torchvision resnet18 (random weights, seed 0), every Conv/Linear weight magnitude-pruned to 90 % and
k-means clustered at 5 bits (`share_weights`, as the quantize stage does). Every tensor of the state
dict is encoded into a file and the file decoded back, by the version-1 codec (per-bit pointer
doubling; its modules taken from git at `OLD`) and by today's (chunked, table-driven), in the same
process, alternately, on one thread. Speed is MB/s of dense fp32 (4 bytes per element of every float
tensor) per second: median of `--repeats` rounds with the min-max spread, and the per-round ratio.

    python benchmarks/bench_packed_codec.py [--repeats 5] [--old 42f009e]
"""
from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from alternating import alternate, ratios, spread
from git_baseline import import_from_git
from prune_bench_common import ROOT, table, write_result

OLD = "42f009e"           # the last commit with the version-1 codec
MODULES = ["huffman", "sparse_index", "tensor_codec"]


def model_state():
    import torch
    import torchvision

    from workbench.core.quantization.sharing import share_weights
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    masks = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                cut = p.abs().flatten().kthvalue(int(0.9 * p.numel())).values
                masks[name] = p.abs() > cut
                p.mul_(masks[name])
    share_weights(model, masks, 5, "linear")
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--old", default=OLD)
    args = ap.parse_args()
    import torch

    from workbench.core.packed import tensor_codec as new
    from workbench.core.packed.container import read_container, write_container
    torch.set_num_threads(1)
    state = model_state()
    dense = sum(t.numel() * 4 for t in state.values() if t.is_floating_point())
    tmp = Path(tempfile.mkdtemp(prefix="bench_packed_"))
    old = import_from_git(args.old, "workbench/core/packed", MODULES, "packed_v1")["tensor_codec"]
    files = {"old": tmp / "old.packed", "new": tmp / "new.packed"}

    def encode(codec, path: Path) -> None:
        encoded = [codec.encode_tensor(name, t) for name, t in state.items()]
        write_container(path, {"tensors": [e.meta for e in encoded]}, [s for e in encoded for s in e.streams])

    def decode(which: str) -> dict:
        header, streams = read_container(files[which])
        items = [(m, parts, state[m["n"]].dtype, state[m["n"]].numel()) for m, parts in zip(header["tensors"], streams)]
        if which == "old":
            return {m["n"]: old.decode_tensor(*item) for m, item in zip(header["tensors"], items)}
        return {m["n"]: t for m, t in zip(header["tensors"], new.decode_tensors(items))}

    times = alternate({"encode old": lambda: encode(old, files["old"]), "encode new": lambda: encode(new, files["new"]),
                       "decode old": lambda: decode("old"), "decode new": lambda: decode("new")}, args.repeats)
    for which in ("old", "new"):
        back = decode(which)
        assert all(torch.equal(back[k].reshape(state[k].shape), state[k]) for k in state), f"{which} round trip"
    rows = []
    for job in ("encode", "decode"):
        for which in ("old", "new"):
            t = spread(times[f"{job} {which}"])
            rows.append({"job": job, "codec": "version 1 (per-bit pointer doubling)" if which == "old" else
                         "version 2 (chunked, table-driven)", "seconds": t,
                         "speed": f"{dense / t['median'] / 1e6:.1f} ({dense / t['high'] / 1e6:.1f}-{dense / t['low'] / 1e6:.1f})",
                         "file": files[which].stat().st_size})
        r = ratios(times[f"{job} old"], times[f"{job} new"])
        rows[-1]["ratio"] = f"{r['median']:.1f}x ({r['low']:.1f}-{r['high']:.1f})"
    for r in rows:
        r["time"] = f"{r['seconds']['median']:.3f}"
    print(f"packed codec, resnet18 90 % pruned, k-means 5 bits: {dense:,} bytes of dense fp32, one thread, "
          f"{args.repeats} alternating rounds\n")
    print(table(rows, [("job", "", ""), ("codec", "codec", ""), ("time", "seconds (median)", ""),
                       ("speed", "MB/s of dense fp32, median (min-max)", ""), ("ratio", "new / old, per round", ""),
                       ("file", "file bytes", ",")]))
    path = write_result("packed_codec", {"dense_bytes": dense, "repeats": args.repeats, "old": args.old, "rows": rows})
    print(f"\nwrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
