"""Render a workbench report in headless Chromium to a PNG (the README's docs/screenshots/report.png).

    python scripts/render_report.py                       # two small sample runs, one report comparing them, its PNG
    python scripts/render_report.py --html report.html    # screenshot an existing report
    python scripts/render_report.py --runs runs/a runs/b  # report these run folders, then screenshot

Needs `chromium` (`apt-get install -y chromium`). The browser gets no network (--disable-background-networking,
no sync, no component updates), which is also a check that the report needs none.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLE_RECIPES = {
    "unstructured": """name: prune, cluster, pack
model: sample:digits_mlp
data: sample:digits
seed: 0
stages:
  - kind: prune
    sparsity: 0.9
    schedule: iterative
    steps: 3
    finetune_epochs: 3
  - kind: quantize
    method: kmeans
    bits: {conv: 8, linear: 5}
    finetune_epochs: 1
  - kind: sensitivity
    sparsities: [0.5, 0.8, 0.95]
  - kind: export
    formats: [packed, onnx]
""",
    "structured": """name: remove channels
model: sample:digits_mlp
data: sample:digits
seed: 0
stages:
  - kind: prune
    structured: true
    method: l1
    sparsity: 0.5
    schedule: iterative
    steps: 2
    finetune_epochs: 3
  - kind: train
    label: fine-tune
    epochs: 5
  - kind: export
    formats: [safetensors, onnx]
""",
}


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("chromium not found: apt-get install -y chromium")


def screenshot(html: Path, png: Path, width: int = 1366, height: int = 3000) -> Path:
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
               f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size={width},{height}", html.resolve().as_uri()]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return png


def sample_runs(folder: Path) -> list[str]:
    """Two small runs on the sample MLP (a minute or two on 2 cores): unstructured + k-means, and structured."""
    from workbench.commands.run import run_command
    outs = []
    for name, text in SAMPLE_RECIPES.items():
        recipe = folder / f"{name}.yaml"
        recipe.write_text(text)
        out = folder / name
        ns = argparse.Namespace(recipe=str(recipe), model=None, data=None, out=str(out), arch=None, trust=False,
                                device="cpu", seed=None, quiet=True, tensorboard=None)
        if run_command(ns) != 0:
            sys.exit(f"the sample run {name} failed")
        outs.append(str(out))
    return outs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--html", help="an existing report to screenshot")
    ap.add_argument("--runs", nargs="+", help="run folders to report")
    ap.add_argument("--out", default=str(ROOT / "docs" / "screenshots" / "report.png"))
    ap.add_argument("--width", type=int, default=1366)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--keep", help="a folder to keep the sample runs and the report in (default: a temporary one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        html = Path(args.html) if args.html else None
        if html is None:
            from workbench.reporting import build_report
            runs = args.runs or sample_runs(work)
            html = build_report(runs, work / "report.html").html
        png = screenshot(html, Path(args.out), args.width, args.height)
    print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
