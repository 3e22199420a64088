"""Image-folder loading: workbench's loader against a plain torchvision ImageFolder + DataLoader loop.

Generates a folder of N small JPEGs (default 20,000 of 64x64 in 10 classes, once, under /tmp), then reads one
epoch of the training split with each loader, alternately, with the same settings (batch size, workers,
transforms: random-resized-crop to 56 + flip + normalise): images per second, and the growth of resident
memory (this process and its workers) over the epoch. Targets: at least 0.9 of the plain loop's images
per second, under 200 MB of growth.

    python benchmarks/bench_imagefolder_loader.py [--images 20000] [--workers 2] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from prune_bench_common import table, write_result


def make_folder(root: Path, images: int, classes: int = 10, side: int = 64) -> Path:
    """A class-per-folder JPEG data set (kept between runs)."""
    import numpy as np
    from PIL import Image
    marker = root / f".complete-{images}"
    if marker.exists():
        return root
    rng = np.random.default_rng(0)
    for i in range(images):
        folder = root / f"c{i % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)            # smooth-ish images compress like photos
        Image.fromarray(base).resize((side, side), Image.BILINEAR).save(folder / f"{i:06d}.jpg", quality=85)
    marker.write_text("ok")
    return root


def rss_mb(pids: list[int]) -> float:
    """Resident memory of the given processes, in MB (from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as fh:
                total += next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def family() -> list[int]:
    """This process and its children (the loader workers)."""
    me = os.getpid()
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().split()[3]) == me:
                    kids.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                pass
    return [me, *kids]


def epoch(loader) -> tuple[float, float, float]:
    """(images per second, peak RSS growth in MB, seconds) of one pass."""
    it = iter(loader)
    first = next(it)                      # workers started, first batch ready
    base, peak, n = rss_mb(family()), 0.0, len(first[1])
    t0 = time.perf_counter()
    for k, (_x, y) in enumerate(it):
        n += len(y)
        if k % 20 == 0:
            peak = max(peak, rss_mb(family()) - base)
    seconds = time.perf_counter() - t0
    return n / seconds, max(peak, rss_mb(family()) - base), seconds


def plain_loader(root: Path, batch: int, workers: int, size: int):
    import torch
    import torchvision.datasets as D
    import torchvision.transforms as T
    from torch.utils.data import DataLoader
    tf = T.Compose([T.RandomResizedCrop(size), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return DataLoader(D.ImageFolder(str(root), tf), batch, shuffle=True, num_workers=workers,
                      persistent_workers=workers > 0, generator=torch.Generator().manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--root", default="/tmp/workbench-bench-images")
    args = ap.parse_args()
    from workbench.core.data import load_data
    root = make_folder(Path(args.root), args.images)
    size = 56
    ours = load_data({"spec": f"imagefolder:{root}", "augment": "standard", "batch_size": args.batch,
                      "workers": args.workers, "image_size": size, "val_fraction": 0.0}).train
    theirs = plain_loader(root, args.batch, args.workers, size)
    results = {"workbench": [], "torchvision": []}
    for _ in range(args.rounds):
        for name, loader in (("torchvision", theirs), ("workbench", ours)):
            results[name].append(epoch(loader))
    rows = []
    for name in ("torchvision", "workbench"):
        runs = results[name]
        rows.append({"loader": name, "images_per_s": statistics.median(r[0] for r in runs),
                     "rss_growth_mb": max(r[1] for r in runs), "epoch_s": statistics.median(r[2] for r in runs)})
    for row in rows:                                   # against the plain torchvision loop
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
    print(f"\n{args.images:,} JPEGs of 64x64 (training split: {len(ours.dataset):,}), batch {args.batch}, "
          f"{args.workers} workers, random-resized-crop 56 + flip; median of {args.rounds} epochs each, alternating\n")
    print(table(rows, [("loader", "loader", ""), ("images_per_s", "images/s", ".0f"), ("ratio", "ratio", ".2f"),
                       ("epoch_s", "epoch s", ".1f"), ("rss_growth_mb", "peak RSS growth MB", ".0f")]))
    write_result("imagefolder_loader", {"images": args.images, "workers": args.workers, "batch": args.batch,
                                        "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
