"""The report's figures, drawn with matplotlib's Agg canvas (no pyplot, no global state: safe off the GUI thread).

Each function returns a `Plot` (PNG bytes plus a title), or None when there is nothing to draw.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from .collect import RunData, curves, layer_sparsity, structure_changes
from .tables import is_number

DPI = 110
WIDTH = 10.0                  # inches: 1100 px at DPI
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
MAX_BARS = 120                # per-layer charts show at most this many layers
MAX_LEGEND = 16
MAX_POINTS = 2000             # a curve with more points is thinned (every k-th point) before drawing


@dataclass
class Plot:
    key: str                  # file name stem for the Markdown's PNG files
    title: str
    png: bytes


def color(i: int) -> str:
    return COLORS[i % len(COLORS)]


def _figure(height: float, width: float = WIDTH) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _style(ax, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _legend(ax, outside: bool = False) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return
    extra = len(handles) - MAX_LEGEND
    handles, labels = handles[:MAX_LEGEND], labels[:MAX_LEGEND]
    title = f"(+{extra} more)" if extra > 0 else None
    if outside:
        ax.legend(handles, labels, fontsize=8, title=title, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  frameon=False)
    else:
        ax.legend(handles, labels, fontsize=8, title=title, title_fontsize=8, framealpha=0.9)


def _short(text: str, n: int = 28) -> str:
    """Text from a run folder, shortened, with `$` escaped (matplotlib would read it as maths)."""
    text = text if len(text) <= n else text[: n - 1] + "…"
    return text.replace("$", r"\$")


def _thin(points: list[tuple[float, float]], most: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Every k-th point (and the last) of a series longer than `most`."""
    if len(points) <= most:
        return points
    step = -(-len(points) // most)
    return points[::step] + ([points[-1]] if (len(points) - 1) % step else [])


def _shared_labels(points: list[tuple[float, float, str]]) -> dict[tuple[float, float], str]:
    """Points at (nearly) the same place share one label, "a, b", so labels never print over each other."""
    labels: dict[tuple[float, float], list[str]] = {}
    for x, y, text in points:
        near = next((k for k in labels if abs(k[0] - x) <= 0.02 * max(abs(k[0]), abs(x), 1e-12) and abs(k[1] - y) < 0.05),
                    (x, y))
        labels.setdefault(near, []).append(text)
    return {k: ", ".join(v) for k, v in labels.items()}


# --- training curves -------------------------------------------------------------------------------------
def training_curves(runs: list[RunData], key: str = "curves") -> Plot | None:
    """Loss (top) and accuracy in % (bottom) over one continuous x axis across stages; boundaries dashed.
    One run: a colour per series, stages labelled. Several: a colour per run (each run's stage starts in its colour),
    batch losses dotted."""
    data = [(run, curves(run)) for run in runs]
    if not any(c.points for _, c in data):
        return None
    fig = _figure(6.4)
    loss_ax, acc_ax = fig.subplots(2, 1, sharex=True)
    many = len(runs) > 1
    series_colors: dict[str, str] = {}
    labelled: dict = {}                    # axis -> run number -> legend handle (several runs)
    splits: set[str] = set()               # the splits of the accuracy curves drawn
    for r, (run, c) in enumerate(data):
        groups: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for p in c.points:
            groups.setdefault((p["series"], p["name"]), []).append((p["x"], p["value"]))
        for (series, name), pts in groups.items():
            if "loss" in name:
                ax, scale = loss_ax, 1.0
            elif "accuracy" in name:
                ax, scale = acc_ax, 100.0
                splits.add(accuracy_split(name))
            else:
                continue
            pts = _thin(sorted(pts))
            xs, ys = [x for x, _ in pts], [y * scale for _, y in pts]
            batch = name.startswith("batch")
            label = "_nolegend_" if many else _short(f"{series}/{name}" if series else name, 40)
            if many:                       # one legend entry per run and panel; the run sections tell the series apart
                labelled.setdefault(ax, {})[r] = Line2D([], [], color=color(r), linewidth=1.6, marker="o", markersize=3,
                                                        label=_short(run.name, 40))
            col = color(r) if many else series_colors.setdefault(series, color(len(series_colors)))
            ax.plot(xs, ys, color=col, linewidth=0.7 if batch else 1.6, alpha=0.35 if batch else 1.0,
                    linestyle=":" if many and batch else "-", marker=None if batch or len(xs) > 40 else "o",
                    markersize=3, label=label)
        for x, label in c.boundaries:
            for ax in (loss_ax, acc_ax):
                ax.axvline(x, color=color(r) if many else "#6b7280", linestyle="--", linewidth=0.8, alpha=0.6)
            if not many:
                acc_ax.annotate(_short(label, 22), (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -3),
                                textcoords="offset points", fontsize=8, color="#374151", va="top", rotation=0)
    _style(loss_ax, "Loss", "", "loss")
    _style(acc_ax, accuracy_title(splits), "step (epochs or pruning steps, stages one after another)", "accuracy (%)")
    if any(line.get_ydata().size and min(line.get_ydata()) > 0 for line in loss_ax.get_lines()):
        loss_ax.set_yscale("log")
        low, high = loss_ax.get_ylim()
        if high / low < 300:                 # within two decades or so: label 1, 2 and 5 of each
            loss_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        loss_ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
        loss_ax.yaxis.set_minor_formatter(NullFormatter())
    for ax in (loss_ax, acc_ax):
        if many and ax in labelled:
            handles = [labelled[ax][r] for r in sorted(labelled[ax])]
            ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        elif not many:
            _legend(ax, outside=True)
    return Plot(key, "Training curves", _png(fig))


def accuracy_split(name: str) -> str:
    """The split an accuracy curve was measured on: an evaluate stage names it (`eval/test_accuracy`); fine-tuning,
    pruning steps, restructuring and teachers measure on val."""
    found = re.search(r"(train|val|test|calib)_accuracy$", name)
    return found.group(1) if found else "val"


def accuracy_title(splits: set[str]) -> str:
    if len(splits) <= 1:
        return f"Accuracy ({next(iter(splits), 'val')} split)"
    order = ["val", "test", "train", "calib"]
    return f"Accuracy ({' and '.join(sorted(splits, key=order.index))} splits, as labelled)"


# --- snapshots -------------------------------------------------------------------------------------------
def ratio_vs_accuracy(runs: list[RunData], key: str = "ratio_vs_accuracy") -> Plot | None:
    """One point per snapshot (x: compression ratio, y: test accuracy), one colour per run, in snapshot order."""
    fig = _figure(4.6)
    ax = fig.subplots()
    drawn, ratios = False, []
    for r, run in enumerate(runs):
        pts = [(s["compression_ratio"], s["accuracy"] * 100, s) for s in run.snapshots
               if is_number(s.get("compression_ratio")) and s["compression_ratio"] > 0 and is_number(s.get("accuracy"))]
        if not pts:
            continue
        drawn = True
        ratios += [x for x, _, _ in pts]
        ax.plot([x for x, _, _ in pts], [y for _, y, _ in pts], color=color(r), marker="o", markersize=6, linewidth=1,
                alpha=0.9, label=_short(run.name, 40))
        labels = _shared_labels([(x, y, _short(f"{s.get('index', '')} {s.get('stage', '')}", 18)) for x, y, s in pts])
        for (x, y), text in labels.items():
            ax.annotate(text, (x, y), xytext=(5, 4 + 9 * (r % 2)), textcoords="offset points", fontsize=7.5,
                        color=color(r))
    if not drawn:
        return None
    ax.margins(x=0.06, y=0.12)
    low, high = ax.get_ylim()
    ax.set_ylim(max(low, 0.0), min(high, 100.5))             # no axis past 100% accuracy
    if max(ratios) / min(ratios) > 8:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}x"))
    _style(ax, "Compression ratio vs test accuracy (one point per snapshot)", "compression ratio (dense fp32 bytes / compressed bytes)",
           "test accuracy (%)")
    _legend(ax)
    return Plot(key, "Compression ratio vs accuracy", _png(fig))


def sparsity_per_layer(run: RunData, key: str) -> Plot | None:
    values = layer_sparsity(run)[:MAX_BARS]
    if not values:
        return None
    fig = _figure(max(2.2, 0.6 + 0.24 * len(values)))
    ax = fig.subplots()
    ys = range(len(values))
    ax.barh(ys, [v * 100 for _, v in values], color=color(0), height=0.7)
    ax.barh(ys, [100 - v * 100 for _, v in values], left=[v * 100 for _, v in values], color="#e5e7eb", height=0.7)
    ax.set_yticks(list(ys), [_short(n, 40) for n, _ in values], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    for y, (_, v) in zip(ys, values):
        inside = v > 0.85
        ax.text(v * 100 - 1 if inside else v * 100 + 1, y, f"{v:.1%}", va="center", ha="right" if inside else "left",
                fontsize=7.5, color="white" if inside else "#111827")
    snap = run.final or {}
    _style(ax, _short(f"Sparsity per layer, snapshot {snap.get('index', '?')} ({snap.get('stage', '?')})", 90),
           "weights removed (%)", "")
    ax.grid(False, axis="y")
    return Plot(key, "Sparsity per layer", _png(fig))


def structure(run: RunData, key: str) -> Plot | None:
    """Channels (output features) per layer before and after, for layers whose size changed."""
    rows = [c for c in structure_changes(run) if c["channels_before"] and c["channels_after"]][:MAX_BARS]   # not added ones
    if not rows:
        return None
    fig = _figure(max(2.2, 0.8 + 0.3 * len(rows)))
    ax = fig.subplots()
    ys = list(range(len(rows)))
    ax.barh([y - 0.2 for y in ys], [c["channels_before"] or 0 for c in rows], height=0.4, color="#9ca3af", label="baseline")
    ax.barh([y + 0.2 for y in ys], [c["channels_after"] or 0 for c in rows], height=0.4, color=color(0), label="final")
    ax.set_yticks(ys, [_short(c["layer"], 40) for c in rows], fontsize=8)
    ax.invert_yaxis()
    _style(ax, "Output channels per layer whose size changed", "channels / output features", "")
    ax.grid(False, axis="y")
    _legend(ax)
    return Plot(key, "Channels before and after", _png(fig))


# --- analyses --------------------------------------------------------------------------------------------
def sensitivity(data: dict, key: str) -> Plot | None:
    xs, layers = data.get("sparsities"), data.get("layers")
    if not isinstance(xs, list) or not isinstance(layers, dict) or not layers:
        return None
    fig = _figure(4.8)
    ax = fig.subplots()
    for i, (name, curve) in enumerate(layers.items()):
        pts = [(x * 100, y * 100) for x, y in zip(xs, curve if isinstance(curve, list) else []) if is_number(x) and is_number(y)]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=4, color=color(i),
                linestyle="-" if i < len(COLORS) else "--", label=_short(str(name), 34))
    if is_number(data.get("baseline_accuracy")):
        ax.axhline(data["baseline_accuracy"] * 100, color="#111827", linestyle=":", linewidth=1, label="baseline")
    what = "channels" if data.get("structured") else "weights"
    _style(ax, f"Sensitivity: accuracy with one layer pruned at a time ({what})", f"{what} removed from the layer (%)",
           "test accuracy (%)")
    _legend(ax, outside=True)
    return Plot(key, "Sensitivity per layer", _png(fig))


def _trade_off(rows: list[dict], xkey: str, labelkey: str, label_fmt: str, title: str, xlabel: str, key: str,
               name: str) -> Plot | None:
    pts = [(r[xkey], r["accuracy"] * 100, r.get(labelkey)) for r in rows if isinstance(r, dict)
           and is_number(r.get(xkey)) and is_number(r.get("accuracy"))]
    if not pts:
        return None
    fig = _figure(4.2, 8.0)
    ax = fig.subplots()
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color(0))
    ax.margins(x=0.1, y=0.1)
    for (x, y), text in _shared_labels([(x, y, label_fmt.format(lab)) for x, y, lab in pts if is_number(lab)]).items():
        ax.annotate(text, (x, y), xytext=(5, -10), textcoords="offset points", fontsize=8)
    _style(ax, title, xlabel, "test accuracy (%)")
    return Plot(key, name, _png(fig))


def early_exit(data: dict, key: str) -> Plot | None:
    return _trade_off(data.get("thresholds") or [], "expected_mflops", "threshold", "t={:g}",
                      "Early exits: accuracy vs expected MFLOPs per confidence threshold",
                      "expected MFLOPs per sample", key, "Early-exit trade-off")


def slimmable(data: dict, key: str) -> Plot | None:
    return _trade_off(data.get("widths") or [], "mflops", "width", "width {:g}", "Slimmable widths: accuracy vs MFLOPs per width",
                      "MFLOPs per sample", key, "Slimmable widths")
