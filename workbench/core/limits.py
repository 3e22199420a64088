"""Bounds on what an input may ask for, checked before anything is allocated.

A spec, a recipe or a file is untrusted text: a few bytes can name a model of a trillion parameters,
an image of 10^10 pixels or a YAML document that expands to gigabytes. Every reader checks these
bounds first and raises a one-line `BadInput` naming the input and the size it asked for.
"""
from __future__ import annotations

import math
import os
from typing import Any

from .errors import clip as clip  # re-exported: one function cuts and escapes the texts in messages

MAX_PARAMS = 2_000_000_000        # parameters + buffers of one model (8 GB as float32)
MAX_LAYER_SIZE = 1_000_000        # one hidden size / width of an `arch:` model
MAX_HIDDEN_LAYERS = 64            # hidden layers of `arch:mlp`
MAX_CLASSES = 100_000             # classes of a data set or a model record (ImageNet-21k has 21,841)
MAX_IMAGE_SIDE = 4096             # height / width of an image input
MAX_CHANNELS = 1024               # channels of an input
MAX_INPUT_ELEMENTS = 3 * 4096 * 4096   # C x H x W of one input sample
MAX_FAKE_SAMPLES = 50_000         # `fake:` samples (about 1.3 ms each to generate on one core)
MAX_FAKE_BYTES = 256 << 20        # `fake:` pixels held in memory (uint8)
MAX_IMAGE_PIXELS = 8192 * 8192    # one image file, read from its header before decoding (Image.MAX_IMAGE_PIXELS)
MAX_IMAGE_FILE_BYTES = 1 << 30    # one image file on disk
IMAGES_CHECKED = 8                # image files opened and decoded when an image folder is loaded
MAX_IMAGE_FILES = 5_000_000       # images in one image folder (about 1 GB of paths held in memory)
MAX_FOLDER_ENTRIES = 10_000_000   # directory entries listed while scanning one image folder
MAX_FOLDER_DEPTH = 32             # nested folders inside a class folder
MAX_DATASET_FILE_BYTES = 4 << 30  # one file of a data set (an IDX file, a CIFAR batch, an SVHN .mat)
MAX_IDX_BYTES = 1 << 30           # values in one IDX file (MNIST's training images: 47 MB)
MAX_SEED = 2**32 - 1              # numpy's seed takes 32 bits
MAX_RECIPE_BYTES = 1 << 20        # a recipe file
MAX_STAGES = 200                  # stages in one recipe
MAX_YAML_DEPTH = 32               # nesting of lists / mappings in a recipe
MAX_YAML_NODES = 100_000          # YAML nodes after alias expansion (a "billion laughs" document)
MAX_TRANSFORMS = 256              # transforms in a model record
MAX_META_BYTES = 64 << 20         # a snapshot folder's snapshot.json
MAX_ITEMS = 10_000                # items of a list or mapping in one stage setting (a layer per item at most)
MAX_TEXT_CHARS = 4096             # one text in a stage setting (a spec, a path, a layer name)
MAX_SNAPSHOT_INDEX = 1_000_000    # a snapshot named by number in a recipe (prune rewind, distill teacher)
MAX_REPORT_BYTES = 64 << 20       # a run's report.json (a real one is a few KB to a few MB)
MAX_JSON_BYTES = 64 << 20         # any other JSON file read back: analysis files, package data
MAX_JSON_DEPTH = 100              # nesting of lists / objects in any JSON read (a recipe is at most 32 deep)
MAX_METRICS_BYTES = 64 << 20      # a run's metrics.jsonl (about 120 bytes a point)
MAX_METRICS_LINES = 300_000       # its points (at most 4 a second while training: 20 hours; about 200 MB parsed)
MAX_EVENTS_CHUNK = 16 << 20       # what a follower of an events file reads at one poll
MAX_NAME_CHARS = 100              # an export stage's file name stem or folder
# Memory estimates (core/memory_budget.py), checked against the budget: the available memory, or
# `--memory-budget SIZE` / WORKBENCH_MEMORY_BUDGET.
MIN_MEMORY_BUDGET = 10**6          # 1 MB: a smaller budget is a typo
MAX_MEMORY_BUDGET = 10**15         # 1 PB
TRAIN_STATE_COPIES = 4            # copies of the weights while training: weights, gradients, Adam's two moments
BATCH_COPIES = 3                  # a batch as float32 while transformed (slice, resize, normalise)
WORKER_BYTES = 200_000_000        # one DataLoader worker process of an image folder, before its batches
LOADER_PREFETCH = 4               # batches each worker process prefetches (image_folder's prefetch_factor)
# A record whose transforms cannot be replayed on the meta device (int8) is bounded instead by the
# file: the model up to that transform may hold at most this many times the file's bytes, plus a slack.
FILE_EXPANSION = 64
FILE_SLACK_BYTES = 256 << 20


def memory_bytes() -> int | None:
    """Physical memory of this machine, or None where it cannot be read."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def human_bytes(n: float) -> str:
    for unit, div in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} bytes"


def model_size_problem(params: int, nbytes: int) -> str | None:
    """Why a model of `params` parameters and buffers taking `nbytes` cannot be built here; None when it can."""
    if params > MAX_PARAMS:
        return (f"the model would have {params:,} parameters ({human_bytes(nbytes)}); "
                f"the limit is {MAX_PARAMS:,}")
    return None        # the memory it needs is checked against the memory budget (memory_budget.model_problem)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_in(value: Any, lo: int, hi: int) -> bool:
    return is_int(value) and lo <= value <= hi


def shape_problem(shape: Any) -> str | None:
    """Why `shape` is not a valid C x H x W input shape; None when it is."""
    if not isinstance(shape, (list, tuple)) or len(shape) != 3 or not all(is_int(v) for v in shape):
        return f"expected [channels, height, width] (3 positive integers), got {short(shape)}"
    c, h, w = shape
    if not int_in(c, 1, MAX_CHANNELS):
        return f"channels must be in [1, {MAX_CHANNELS}], got {c}"
    if not (int_in(h, 1, MAX_IMAGE_SIDE) and int_in(w, 1, MAX_IMAGE_SIDE)):
        return f"height and width must be in [1, {MAX_IMAGE_SIDE}], got {h}x{w}"
    if c * h * w > MAX_INPUT_ELEMENTS:
        return f"{c}x{h}x{w} is more than {MAX_INPUT_ELEMENTS:,} values per sample"
    return None


def short(value: Any, limit: int = 60) -> str:
    """A repr for an error message: one line, at most about `limit` characters, whatever `value` holds."""
    import reprlib
    r = reprlib.Repr()
    r.maxstring, r.maxother, r.maxlist, r.maxtuple, r.maxdict, r.maxlevel = limit, limit, 6, 6, 4, 3
    text = r.repr(value).replace("\n", "\\n")
    return text if len(text) <= limit + 10 else text[:limit] + "..."


def finite(value: float) -> bool:
    return math.isfinite(value)
