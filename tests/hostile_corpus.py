"""A hostile corpus built by class, not by example: every place the command line accepts a path or a spec (a model
file in `inspect`, `export`, `run --model`, a recipe's `model:`, a distillation teacher and student; data in
`--data`; recipes; run folders read by `runs` and `report`; `--out` folders with planted links; odd arguments;
sizes over the memory budget; extreme stage settings) crossed with every way to make such an input hostile.

Each `Case` is a `workbench` command line; `hostile_run.run_cases` runs them under a hang guard and a memory cap
and says what happened. A payload never does harm: it creates its marker file (`Case.markers`), which is how
the runner knows it ran. `build(root)` writes everything under `root`; `fast` cases are cheap enough for
`make test` (tests/test_hostile_corpus.py); `benchmarks/bench_hostile.py` runs them all.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import hostile_inputs as H
import hostile_models as M
from hostile_files import Payload, pickled
from test_data_trust import EPS, IDX, big_png, fake_gs, mnist_root

DIGITS = M.DIGITS
EVAL = DIGITS + "stages:\n  - {kind: evaluate}\n"


@dataclass
class Case:
    cls: str                       # the class (a row of the table)
    name: str                      # unique: names the case in test ids and in the results
    argv: list[str]
    ok: bool = False               # running (exit 0, or a stage that fails saying why) is a correct outcome too
    fast: bool = True              # part of `make test`
    timeout: float = 60.0
    markers: list[str] = field(default_factory=list)   # files a payload would create
    watch: list[str] = field(default_factory=list)     # folders that must not change (outside --out)


class Corpus:
    """The cases and their files under `root`: files/ (inputs), outside/ (what planted links point to), markers/
    (where payloads would leave their mark), cases/NAME/ (each case's recipe and --out), cwd/ (the working folder),
    bin/ (a fake `gs` first on PATH: an image decoder starting Ghostscript leaves a marker)."""

    def __init__(self, root: Path, fast_only: bool = False, dry: bool = False) -> None:
        self.root, self.fast_only, self.dry = root, fast_only, dry     # dry: the case names only, few files
        for sub in ("files", "outside", "markers", "cases", "cwd"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        (root / "outside" / "sentinel.txt").write_text("must stay as it is\n")
        self.ghostscript = root / "markers" / "ghostscript-ran"
        fake_gs(root / "bin", self.ghostscript)
        self.cases: list[Case] = []

    def marker(self, name: str) -> Path:
        return self.root / "markers" / name.replace("/", "_")

    def files(self, name: str) -> Path:
        folder = self.root / "files" / name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def case_dir(self, name: str) -> Path:
        folder = self.root / "cases" / name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def run(self, name: str, recipe: str, *extra) -> list:
        """`run RECIPE --out OUT --quiet EXTRA`, the recipe and OUT in the case's own folder."""
        path = self.case_dir(name) / "recipe.yaml"
        path.write_text(recipe)
        return ["run", path, "--out", self.case_dir(name) / "out", "--quiet", *extra]

    def add(self, cls: str, variant: str, argv: list, *, markers=(), watch=(), **kw) -> None:
        name = f"{cls}/{variant}"
        if kw.get("fast", True) or not self.fast_only:
            self.cases.append(Case(cls, name, [str(a) for a in argv], markers=[str(self.ghostscript), *map(str, markers)],
                                   watch=[str(self.root / "outside"), str(self.root / "cwd"), *map(str, watch)], **kw))


def add_model_files(c: Corpus, g: dict) -> None:
    """Every model file variant at every place a model is accepted; all refused without --trust."""
    distill = DIGITS + "stages:\n  - {{kind: distill, epochs: 1, teacher: '{t}', student: '{s}'}}\n"
    for variant, (make, cheap) in M.model_files(g, c.root / "outside").items():
        if c.fast_only and not cheap:
            continue
        folder, marker = c.files(f"model_{variant}"), c.marker(f"model_{variant}")
        path, n = folder / "m" if c.dry else make(folder, marker), f"model_{variant}"
        places = {"inspect": ["inspect", path],
                  "export": ["export", path, "--format", "safetensors", "--out", c.case_dir(f"{n}/export") / "m.safetensors"],
                  "run_model": c.run(f"{n}/run_model", EVAL, "--model", path),
                  "recipe_model": c.run(f"{n}/recipe_model", f"model: '{path}'\n" + EVAL.split("\n", 1)[1]),
                  "teacher": c.run(f"{n}/teacher", distill.format(t=path, s="current")),
                  "student": c.run(f"{n}/student", distill.format(t="sample:digits_mlp", s=path))}
        for place, argv in places.items():
            c.add("model files", f"{variant}/{place}", argv, markers=[marker], watch=[folder], timeout=90,
                  fast=cheap and place in ("inspect", "recipe_model", "teacher"))


def _images(root: Path, special: dict) -> Path:
    """Three good 12x12 PNGs (a/0, a/1, b/0) and `special` {relative name: maker(path)}."""
    H.image_folder(root, {"a/0.png": None, "a/1.png": None, "b/0.png": None})
    for rel, make in special.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make(root / rel)
    return root


def _many(root: Path, classes: int, files: int) -> Path:
    """`classes` class folders of one image each, and `files` images in the first."""
    png = (H.image_folder(root / "c0", {"0.png": None}) / "0.png").read_bytes()
    for i in range(1, classes):
        (root / f"c{i}").mkdir()
        (root / f"c{i}" / "0.png").write_bytes(png)
    for i in range(1, files):
        (root / "c0" / f"{i}.png").write_bytes(png)
    return root


def _link(target) -> object:
    return lambda p: p.symlink_to(target)


def _bytes(data: bytes) -> object:
    return lambda p: p.write_bytes(data)


def data_sets(c: Corpus, d: Path, marker: Path) -> dict[str, tuple[str, bool]]:
    """variant -> (data spec, cheap); each variant's files are in d/VARIANT (or d/mnist_...)."""
    folders = {"eps_named_png": {"a/2.png": _bytes(EPS)}, "png_9000x9000": {"b/1.png": lambda p: big_png(p, 9000)},
               "png_header_100000": {"b/1.png": lambda p: H.png_header_only(p, 100_000, 100_000)},
               "fifo_image": {"a/2.png": os.mkfifo}, "devzero_image": {"a/2.png": _link("/dev/zero")},
               "image_link_loop": {"a/2.png": _link("2.png")}, "folder_link_loop": {"a/sub": _link("..")},
               "text_named_png": {"a/2.png": _bytes(b"hello " * 100)}, "empty_png": {"a/2.png": _bytes(b"")},
               "outside_image_link": {"a/2.png": _link(c.root / "outside" / "sentinel.txt")}}
    out = {name: (f"imagefolder:{_images(d / name, special)}", True) for name, special in folders.items()}
    if not c.fast_only:
        out["classes_100001"] = (f"imagefolder:{_many(d / 'classes', 100_001, 1)}", False)
        out["files_200001"] = (f"imagefolder:{_many(d / 'files', 2, 200_001)}", False)
    processed = d / "mnist_processed" / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name in ("training.pt", "test.pt"):
        (processed / name).write_bytes(pickled(Payload(str(marker))))
    out["mnist_processed_payload"] = (f"mnist:{d / 'mnist_processed'}", True)
    huge, fifo = mnist_root(d / "mnist_huge"), mnist_root(d / "mnist_fifo")
    (huge / "MNIST/raw" / IDX[0]).write_bytes(bytes([0, 0, 8, 3]) + b"".join(v.to_bytes(4, "big") for v in (60000, 10**5, 10**5)))
    (fifo / "MNIST/raw" / IDX[0]).unlink()
    os.mkfifo(fifo / "MNIST/raw" / IDX[0])
    out["mnist_header_huge"], out["mnist_raw_fifo"] = (f"mnist:{huge}", True), (f"mnist:{fifo}", True)
    for kind, make in (("fifo", os.mkfifo), ("devzero", _link("/dev/zero")), ("file", _bytes(b"x"))):
        (d / f"root_is_{kind}").mkdir()
        make(d / f"root_is_{kind}" / "root")
        out[f"root_is_{kind}"] = (f"imagefolder:{d / f'root_is_{kind}' / 'root'}", True)
    return out


def add_data(c: Corpus) -> None:
    d, marker = c.files("data"), c.marker("data_payload")
    for variant, (spec, cheap) in data_sets(c, d, marker).items():
        places = {"inspect": ["inspect", "arch:lenet5", "--data", spec],
                  "run_data": c.run(f"data_{variant}/run", EVAL, "--data", spec, "--model", "arch:lenet5"),
                  "recipe_data": c.run(f"data_{variant}/recipe", f"model: arch:lenet5\ndata: '{spec}'\nstages: []\n")}
        for place, argv in places.items():
            folder = d / spec.split(":", 1)[1].replace(str(d) + "/", "", 1).split("/")[0]   # its own files
            c.add("data", f"{variant}/{place}", argv, markers=[marker], watch=[folder], fast=cheap and place == "inspect",
                  ok=variant.startswith("outside_"), timeout=120)


def _stage(kind: str, **settings) -> str:
    return DIGITS + "stages:\n  - " + json.dumps({"kind": kind, **settings}) + "\n"


def add_recipes(c: Corpus) -> None:
    marker, d = c.marker("recipe_payload"), c.files("recipes")
    texts = {
        "python_tag_payload": f"model: !!python/object/apply:os.system ['touch {marker}']\nstages: []\n",
        "python_name_tag": "name: !!python/name:os.system\n" + DIGITS + "stages: []\n",
        "billion_laughs": H.billion_laughs(), "nested_10000": DIGITS + "name: " + "[" * 10_000 + "]" * 10_000 + "\nstages: []\n",
        "integer_5000_digits": DIGITS + "seed: " + "9" * 5000 + "\nstages: []\n",
        "nul_in_model": 'model: "sample:digits_mlp\\0.pt"\ndata: sample:digits\nstages: []\n',
        "ansi_in_data": 'model: sample:digits_mlp\ndata: "\\e[31mred\\nx"\nstages: []\n',
        "stages_300": DIGITS + "stages: [" + ", ".join(["{kind: evaluate}"] * 300) + "]\n",
        "unknown_kind": _stage("explode"), "unknown_field": _stage("train", rm_rf=True),
        "max_iter_10001": _stage("quantize", max_iter=10001), "max_iter_1e12": _stage("quantize", max_iter=10**12),
        "epochs_2e63": _stage("train", epochs=2**63), "lr_nan": DIGITS + "stages:\n  - {kind: train, lr: .nan}\n",
        "sparsities_100000": _stage("sensitivity", sparsities=[0.5] * 100_000), "layers_twice": _stage("sensitivity", layers=["fc1", "fc1"]),
        "thresholds_10000": _stage("dynamic", thresholds=[0.5] * 10_000), "teacher_5000_chars": _stage("distill", teacher="x" * 5000),
        "teacher_nul": _stage("distill", teacher="a\0b"), "rewind_2e63": _stage("prune", rewind=2**63),
        "rank_1e400": DIGITS + "stages:\n  - {kind: restructure, rank: 1" + "0" * 400 + "}\n",
        "export_name_newline": _stage("export", name="a\nb"), "export_name_dot": _stage("export", name=".hidden"),
        "export_name_report": _stage("export", name="report.json"), "export_dir_snapshots": _stage("export", dir="snapshots"),
        "export_dir_backslash": _stage("export", dir="..\\..\\x"), "export_dir_absolute": _stage("export", dir=str(c.root / "outside")),
        "data_unknown_setting": "model: sample:digits_mlp\ndata: {spec: sample:digits, evil: 1}\nstages: []\n",
    }
    for name, text in texts.items():
        c.add("recipes", name, c.run(f"recipe_{name}", text), markers=[marker])
    specials = {"latin1": _bytes((DIGITS + "name: caf\xe9\nstages: []\n").encode("latin-1")), "empty": _bytes(b""),
                "fifo": os.mkfifo, "devzero": _link("/dev/zero"), "loop": _link("loop.yaml"), "folder": lambda p: p.mkdir(),
                "huge_50mb": lambda p: M._sparse(p, 50 << 20)}
    for name, make in specials.items():
        path = d / ("loop.yaml" if name == "loop" else f"{name}.yaml")
        make(path)
        c.add("recipes", f"file_{name}", ["run", path, "--out", c.case_dir(f"recipe_file_{name}") / "out", "--quiet"])
    c.add("recipes", "name_with_escapes", c.run("recipe_name", 'name: "\\e[2J../../x\\n"\n' + EVAL), ok=True, fast=False)


def _edit_report(folder: Path) -> None:
    """Names a report must keep inert: HTML, a spreadsheet formula, ANSI escapes."""
    report = json.loads((folder / "report.json").read_text())
    report.update(model="<script>alert(1)</script>", message="=cmd|' /C calc'!A0\n\x1b[2J", status="failed")
    for snap in report.get("snapshots", []):
        snap["stage"] = "=HYPERLINK(\"http://x\")"
    (folder / "report.json").write_text(json.dumps(report))


def run_folders(c: Corpus, good: Path) -> dict[str, tuple]:
    """variant -> (file in the run folder, maker(path)); None: a change of the whole folder."""
    lines = lambda n, line: _bytes(line * n)
    first = sorted(p.name for p in (good / "snapshots").iterdir())[0] if not c.dry else "00"
    out = {f"report_{kind}": ("report.json", M._special(kind)) for kind in ("fifo", "devzero", "loop", "folder")}
    out.update({f"metrics_{kind}": ("metrics.jsonl", M._special(kind)) for kind in ("fifo", "devzero", "loop", "folder")})
    out.update({f"snapshot_meta_{kind}": (f"snapshots/{first}/snapshot.json", M._special(kind)) for kind in ("fifo", "devzero")})
    out.update({
        "report_deep": ("report.json", _bytes(M.DEEP_JSON.encode())), "report_huge": ("report.json", lambda p: M._sparse(p, 65 << 20)),
        "report_nan": ("report.json", _bytes(b'{"status": "finished", "snapshots": [], "model": NaN}')),
        "report_latin1": ("report.json", _bytes(b'{"model": "caf\xe9"}')),
        "report_outside_link": ("report.json", lambda p: _link(c.root / "outside" / "sentinel.txt")(p)),
        "metrics_500k_lines": ("metrics.jsonl", lines(500_000, b'{"step": 1, "name": "loss", "value": 1.0}\n')),
        "metrics_deep_line": ("metrics.jsonl", _bytes(M.DEEP_JSON.encode() + b"\n")),
        "metrics_nan_lines": ("metrics.jsonl", lines(1000, b'{"step": 1, "name": "loss", "value": NaN}\n')),
        "snapshot_meta_deep": (f"snapshots/{first}/snapshot.json", _bytes(M.DEEP_JSON.encode())),
        "snapshot_meta_huge": (f"snapshots/{first}/snapshot.json", lambda p: M._sparse(p, 65 << 20)),
        "injected_names": (None, _edit_report)})
    return out


def add_run_folders(c: Corpus, good: Path) -> None:
    """Each hostile run folder alone in its parent, read by `runs PARENT` and `report RUN`."""
    d = c.files("run_folders")
    variants = run_folders(c, good)
    for variant, (rel, make) in variants.items():
        if c.dry:
            continue
        folder = M._copy(good, d / variant / "run")
        if rel is None:
            make(folder)
        else:
            (folder / rel).unlink(missing_ok=True)
            make(folder / rel)
    for kind in ("fifo", "loop"):
        (d / f"run_is_{kind}").mkdir()
        M._special(kind)(d / f"run_is_{kind}" / "run")
    weird = d / "ansi_name" / "\x1b[31mred\x1b[0m\nrun"
    if not c.dry:
        M._copy(good, weird)
    for variant in [*variants, "run_is_fifo", "run_is_loop", "ansi_name"]:
        run = weird if variant == "ansi_name" else d / variant / "run"
        c.add("run folders", f"{variant}/runs", ["runs", d / variant], ok=True, watch=[d / variant])
        c.add("run folders", f"{variant}/report", ["report", run, "--out", c.case_dir(f"runf_{variant}") / "r.html"],
              ok=True, watch=[d / variant])


def _plant(out: Path, outside: Path, name: str) -> None:
    """`out/name` a link to a file or folder outside with known content."""
    target = outside / f"{out.parent.name}-{name.replace('/', '_')}"
    if "." in name:
        target.write_text("original\n")
    else:
        target.mkdir()
        (target / "keep.txt").write_text("original\n")
    (out / name).parent.mkdir(parents=True, exist_ok=True)
    (out / name).symlink_to(target)


def add_out_links(c: Corpus, good: Path) -> None:
    """--out folders with links planted where a run, a report or an export writes: nothing outside may change."""
    recipe = DIGITS + "stages:\n  - {kind: train, epochs: 1}\n  - {kind: export, formats: [safetensors, onnx]}\n"
    for name in ("exports", "snapshots", "metrics.jsonl", "report.json", "events.jsonl", "recipe.yaml", "exports/model.onnx"):
        argv = c.run(f"outlink_{name}", recipe)
        out = Path(argv[3])
        out.mkdir(parents=True, exist_ok=True)
        _plant(out, c.root / "outside", name)
        c.add("--out links", f"run_{name}", argv, ok=True)
    for name in ("r.md", "snapshots.csv", "r-accuracy.png"):
        folder = c.case_dir(f"outlink_report_{name}")
        _plant(folder, c.root / "outside", name)
        c.add("--out links", f"report_{name}", ["report", good, "--out", folder / "r.html"], ok=True)
    folder = c.case_dir("outlink_export")
    _plant(folder, c.root / "outside", "m.safetensors")
    c.add("--out links", "export_file_is_link", ["export", "sample:digits_mlp", "--format", "safetensors", "--out",
                                                  folder / "m.safetensors"], ok=True)
    events = c.case_dir("outlink_events")
    _plant(events, c.root / "outside", "events.jsonl")
    c.add("--out links", "events_file_is_link", c.run("outlink_events_run", EVAL, "--events", events / "events.jsonl"), ok=True)


ARGUMENTS = {
    "inspect_spec": lambda v, d, g: ["inspect", v], "inspect_data": lambda v, d, g: ["inspect", "arch:lenet5", "--data", f"imagefolder:{v}"],
    "export_spec": lambda v, d, g: ["export", v, "--format", "safetensors", "--out", d / "m.safetensors"],
    "export_out": lambda v, d, g: ["export", "sample:digits_mlp", "--format", "safetensors", "--out", v],
    "run_recipe": lambda v, d, g: ["run", v, "--out", d / "out", "--quiet"],
    "run_model": lambda v, d, g: ["run", g["recipe"], "--model", v, "--out", d / "out", "--quiet"],
    "run_out": lambda v, d, g: ["run", g["recipe"], "--out", v, "--quiet"],
    "run_events": lambda v, d, g: ["run", g["recipe"], "--out", d / "out", "--events", v, "--quiet"],
    "runs_dir": lambda v, d, g: ["runs", v], "report_dir": lambda v, d, g: ["report", v, "--out", d / "r.html"],
    "report_out": lambda v, d, g: ["report", g["run"], "--out", v]}
# where the value is fine: an empty or missing folder to run into or list, an existing file to replace or append to
RUNNABLE = {("run_out", "empty_folder"), ("runs_dir", "empty_folder"), ("run_out", "missing"), ("runs_dir", "missing"),
            ("runs_dir", "ansi_newline"), ("export_out", "file"), ("run_events", "file"), ("report_out", "file")}


def add_arguments(c: Corpus, good: Path) -> None:
    """Odd values at every path argument: too long, NUL, escapes and newlines, a folder for a file and back."""
    g = {"run": good, "recipe": c.files("arguments") / "eval.yaml"}
    g["recipe"].write_text(EVAL)
    for slot, argv in ARGUMENTS.items():
        d = c.case_dir(f"arg_{slot}")
        (d / "empty_folder").mkdir()
        (d / "a_file").write_text("x")
        os.mkfifo(d / "a_fifo")
        values = {"path_5000": "/tmp/" + "a" * 5000, "name_300": d / ("b" * 300), "nul": f"{d}/x\0y",
                  "ansi_newline": f"{d}/\x1b[31mred\x1b[0m\nx", "empty_folder": d / "empty_folder", "file": d / "a_file",
                  "fifo": d / "a_fifo", "missing": d / "missing" / "x"}
        for kind, value in values.items():
            c.add("arguments", f"{slot}/{kind}", argv(value, d, g), ok=(slot, kind) in RUNNABLE, timeout=60)


def add_memory(c: Corpus, good: Path) -> None:
    """Sizes over the budget (WORKBENCH_MEMORY_BUDGET in the runner): refused with the estimate before allocating."""
    folder = str(_images(c.files("memory") / "images", {}))
    data = lambda **kw: "data: " + json.dumps({"spec": f"imagefolder:{folder}", **kw}) + "\n"
    cases = {"mlp_44000": ["inspect", "arch:mlp:hidden=44000-44000", "--data", "sample:digits"],
             "vit_h_14": ["inspect", "torchvision:vit_h_14"], "timm_vit_giant": ["inspect", "timm:vit_giant_patch14_224"],
             "fake_4096": ["inspect", "arch:lenet5", "--data", "fake:3x4096x4096:10:500"],
             "mlp_2e9_recipe": c.run("mem_mlp", "model: arch:mlp:hidden=44721-44721\n" + EVAL.split("\n", 1)[1]),
             "image_size_4096": c.run("mem_size", "model: arch:resnet8\n" + data(image_size=4096) + "stages:\n  - {kind: evaluate}\n"),
             "eval_batch_65536": c.run("mem_batch", "model: arch:resnet8\n" + data(image_size=4096, eval_batch_size=65536)
                                       + "stages:\n  - {kind: evaluate}\n"),
             "train_batch_4096_at_1024": c.run("mem_train", "model: arch:resnet8\n" + data(image_size=1024)
                                               + "stages:\n  - {kind: train, epochs: 1, batch_size: 4096}\n")}
    for name, argv in cases.items():
        c.add("memory budget", name, argv, timeout=120)
    c.add("memory budget", "workers_64", c.run("mem_workers", "model: arch:lenet5\n" + data(workers=64) + "stages:\n  - {kind: evaluate}\n"),
          ok=True, timeout=120)


def add_stage_settings(c: Corpus) -> None:
    """Each setting of each stage kind at the edges its metadata allows (durations kept short): runs to its end."""
    from test_fuzz_stage_params import DURATIONS, FAST, FIELDS, edges
    for kind, name in FIELDS:
        for i, value in enumerate(edges(kind, name)):
            if name not in DURATIONS:
                c.add("stage settings", f"{kind}.{name}/{i}", c.run(f"stage_{kind}_{name}_{i}", _stage(kind, **{
                    **FAST.get(kind, {}), name: value})), ok=True, fast=False, timeout=300)


def build(root: Path, fast_only: bool = False, dry: bool = False) -> list[Case]:
    """Every case (or only the fast ones), with its files under `root`; `dry`: the same cases, their files not
    all made (to name the cases cheaply)."""
    c = Corpus(root, fast_only, dry)
    g = M.good_inputs(c.files("good")) if not dry else dict.fromkeys(("run", "snapshot", "pt2", "ts", "safetensors", "packed"), root)
    add_model_files(c, g)
    add_data(c)
    add_recipes(c)
    add_run_folders(c, g["run"])
    add_out_links(c, g["run"])
    add_arguments(c, g["run"])
    add_memory(c, g["run"])
    if not fast_only:
        add_stage_settings(c)
    names = [case.name for case in c.cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return c.cases
