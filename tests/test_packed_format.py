"""The packed (Deep Compression) format: bit-exact round trips, gap overflow, breakdown, bad files, CLI."""
import json
import struct

import numpy as np
import pytest
import torch
from cli_helpers import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st
from quant_helpers import make_session, run_stage

from workbench.core.errors import CheckpointError
from workbench.core.export import ExportSource, export_model
from workbench.core.packed import chunked, huffman
from workbench.core.packed.container import PREFIX, VERSION, read_container, write_container
from workbench.core.packed.sparse_index import from_gaps, to_gaps
from workbench.core.packed.tensor_codec import TensorError, decode_tensor, encode_tensor, patterns
from workbench.core.specs import load_model

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def round_trip(t: torch.Tensor, huffman_coding: bool = True) -> tuple[torch.Tensor, dict]:
    enc = encode_tensor("t", t, huffman_coding)
    views = [memoryview(s) for s in enc.streams]
    return decode_tensor(enc.meta, views, t.dtype, t.numel()), enc.report


def bits_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Identical bit patterns, except that -0.0 may come back as +0.0 (a zero is a zero)."""
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(patterns(a.where(a != 0, 0)), patterns(b.where(b != 0, 0)))


@settings(max_examples=120, deadline=None)
@given(shape=st.lists(st.integers(0, 40), min_size=1, max_size=3), density=st.floats(0.0, 1.0),
       distinct=st.sampled_from([1, 2, 7, 32, 255, 256, 300, 0]), dtype=st.sampled_from(DTYPES),
       huffman_coding=st.booleans(), seed=st.integers(0, 2**16))
def test_random_sparse_tensors_round_trip_bit_exactly(shape, density, distinct, dtype, huffman_coding, seed):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(shape, generator=g)
    if distinct:                                       # clustered: a few shared values
        book = torch.randn(distinct, generator=g)
        values = book[torch.randint(0, distinct, shape, generator=g)]
    t = (values * (torch.rand(shape, generator=g) < density)).to(dtype)   # masking leaves -0.0 too
    back, report = round_trip(t, huffman_coding)
    assert bits_equal(back, t)
    assert report["nonzero"] == int((t != 0).sum())


@pytest.mark.parametrize("t", [torch.zeros(0, 5), torch.zeros(300, 7), torch.zeros(1), torch.tensor([1.0, 0.0, float("nan"), float("-inf")]),
                               torch.arange(12, dtype=torch.int64).reshape(3, 4), torch.tensor([True, False, True])])
def test_edge_tensors(t):
    back, _ = round_trip(t)
    assert back.dtype == t.dtype and back.shape == t.shape
    assert bytes(back.numpy().tobytes()) == bytes(t.numpy().tobytes())


def test_negative_zeros_count_as_pruned():
    t = torch.randn(1000) * (torch.rand(1000) < 0.05)          # about half the zeros are -0.0
    assert (patterns(t) == 0x80000000).sum() > 100
    back, report = round_trip(t)
    assert torch.equal(back, t) and report["nonzero"] == int((t != 0).sum())


def test_gap_overflow_inserts_filler_entries():
    positions = np.array([0, 3, 3 + 16, 3 + 16 + 17, 1000])
    gaps, real = to_gaps(positions, 4)
    assert gaps.max() <= 15
    skipped = np.diff(positions, prepend=-1) - 1                  # zeros before each entry: 0 2 15 16 963
    assert (~real).sum() == (skipped // 16).sum() == 61
    assert np.array_equal(from_gaps(gaps)[real], positions)
    t = torch.zeros(20000)
    t[[5, 19999]] = torch.tensor([1.5, -2.0])
    back, report = round_trip(t)
    assert torch.equal(back, t) and report["fillers"] > 0 and report["layout"].startswith("sparse")
    for bits in range(4, 9):                                       # gap width fixed by the caller
        enc = encode_tensor("t", t, gap_bits=bits)
        assert enc.meta["p"] == bits and enc.report["fillers"] == (19999 - 5 - 1) // 2 ** bits + 5 // 2 ** bits
        assert torch.equal(decode_tensor(enc.meta, [memoryview(x) for x in enc.streams], t.dtype, t.numel()), t)
    with pytest.raises(ValueError):
        encode_tensor("t", t, gap_bits=9)


@pytest.fixture(scope="module")
def clustered(digits, tmp_path_factory):
    """digits_mlp with 90% of each weight matrix pruned and k-means at 5 bits, as a snapshot."""
    from workbench.core.snapshots import save_snapshot
    session = make_session(digits, "sample:digits_mlp", tmp_path_factory.mktemp("run"))
    for name, p in session.model.named_parameters():
        if name.endswith("weight"):
            session.masks[name] = p.detach().abs() > p.detach().abs().quantile(0.9)
    session.apply_masks()
    run_stage(session, "quantize", 1, method="kmeans", bits=5)
    return session, save_snapshot(session, 1, "quantize", None)


def test_model_round_trip_is_exact_and_breakdown_adds_up(clustered, tmp_path):
    session, _ = clustered
    source = ExportSource.from_session(session, batch=32)
    result = export_model(source, "packed", tmp_path / "m.packed")
    assert result.verified and result.max_abs_diff == 0.0
    details = result.details
    assert details["total"] == result.bytes == (tmp_path / "m.packed").stat().st_size
    layer = details["layers"]["fc2.weight"]
    assert layer["layout"] == "sparse+codebook" and layer["codebook_size"] <= 32 and layer["nonzero"] == 3000
    for stream in ("indices", "gaps"):
        bound = details["entropy_bound"][stream]
        assert bound <= details["streams"][stream] <= bound * 1.1 + 64   # Huffman: within a bit per symbol
    assert sum(row["total"] for row in details["layers"].values()) + details["header"] == result.bytes
    loaded = load_model(str(tmp_path / "m.packed"))
    x = session.example_input(32)
    assert torch.equal(loaded.module(x), session.model.eval()(x))
    assert torch.equal(loaded.state["masks"]["fc1.weight"], session.masks["fc1.weight"])
    assert torch.equal(loaded.state["codebooks"]["fc3.weight"], session.codebooks["fc3.weight"].unique())
    dense = sum(p.numel() for p in session.model.parameters()) * 4
    assert dense / result.bytes > 15


def _rewrite(path, out, edit, version=VERSION):
    header, streams = read_container(path)
    header = json.loads(json.dumps(header))
    payload = [bytes(s) for parts in streams for s in parts]
    edit(header, payload)
    write_container(out, header, payload, version)


def _without_chunk_tables(header, payload):
    """What version 1 wrote: a code-length table alone before each Huffman stream."""
    for i, meta in enumerate(header["tensors"]):
        for k in (1, 3):
            if payload[6 * i + k]:
                _, end = huffman.read_table(payload[6 * i + k])
                payload[6 * i + k] = payload[6 * i + k][:end]
                meta["z"][k] = end


def test_corrupt_and_truncated_files_raise_checkpoint_error(clustered, tmp_path):
    session, _ = clustered
    good = tmp_path / "good.packed"
    assert export_model(ExportSource.from_session(session), "packed", good).verified
    data = good.read_bytes()
    cases = {"empty": b"", "prefix only": data[:PREFIX.size], "half": data[: len(data) // 2],
             "last byte gone": data[:-1], "wrong magic": b"XXXX" + data[4:],
             "flipped payload byte": data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:],
             "huge header length": data[:5] + struct.pack("<I", 2**31) + data[9:]}
    for label, blob in cases.items():
        bad = tmp_path / f"{label.replace(' ', '_')}.packed"
        bad.write_bytes(blob)
        with pytest.raises(CheckpointError, match="packed"):
            load_model(str(bad))

    def huge_entries(header, payload):      # valid checksum, absurd counts: refused before allocating
        header["tensors"][0]["e"] = 10**12

    def wrong_shape(header, payload):
        header["tensors"][2]["s"] = [5, 5]

    def sizes_do_not_add_up(header, payload):
        header["tensors"][0]["z"][2] += 1

    def garbage_indices(header, payload):
        payload[2] = bytes(len(payload[2]))     # fc1.weight's index stream zeroed (checksum recomputed)

    for edit in (huge_entries, wrong_shape, sizes_do_not_add_up):    # each must be refused
        bad = tmp_path / f"{edit.__name__}.packed"
        _rewrite(good, bad, edit)
        with pytest.raises(CheckpointError):
            load_model(str(bad))
    bad = tmp_path / "garbage_indices.packed"
    _rewrite(good, bad, garbage_indices)
    try:       # zeroed indices are a valid stream (every weight takes centroid 0): a well-formed, different model
        loaded = load_model(str(bad))
    except CheckpointError:
        return
    x = session.example_input(4)
    out, original = loaded.module(x), session.model.eval()(x)
    assert out.shape == (4, 10) and not torch.equal(out, original)


def test_version_1_files_still_load(clustered, tmp_path):
    session, _ = clustered
    good = tmp_path / "good.packed"
    assert export_model(ExportSource.from_session(session), "packed", good).verified
    header, streams = read_container(good)
    assert any(parts[1] and len(parts[1]) > huffman.read_table(parts[1])[1] for parts in streams)   # chunk tables
    old = tmp_path / "v1.packed"
    _rewrite(good, old, _without_chunk_tables, version=1)
    assert old.read_bytes()[4] == 1 and old.stat().st_size < good.stat().st_size
    x = session.example_input(16)
    assert torch.equal(load_model(str(old)).module(x), session.model.eval()(x))
    _rewrite(good, tmp_path / "v3.packed", lambda header, payload: None, version=3)
    with pytest.raises(CheckpointError, match="format version 3, this workbench reads 1 and 2"):
        load_model(str(tmp_path / "v3.packed"))


def test_version_1_streams_beyond_a_chunk_decode_the_old_way():
    g = torch.Generator().manual_seed(0)
    t = torch.randn(32, generator=g)[torch.randint(0, 32, (300, 200), generator=g)] * (torch.rand(300, 200, generator=g) < 0.3)
    enc = encode_tensor("t", t)
    assert enc.meta["e"] > chunked.MAX_CHUNK
    header = {"tensors": [enc.meta]}
    payload = list(enc.streams)
    _without_chunk_tables(header, payload)
    assert torch.equal(decode_tensor(enc.meta, [memoryview(p) for p in payload], t.dtype, t.numel()), t)


def test_crafted_chunk_tables_in_a_file_are_refused(clustered, tmp_path):
    session, _ = clustered
    good = tmp_path / "good.packed"
    assert export_model(ExportSource.from_session(session), "packed", good).verified
    header, streams = read_container(good)
    at = next(i for i, parts in enumerate(streams) if parts[1] and len(parts[1]) > huffman.read_table(parts[1])[1])
    name, end = header["tensors"][at]["n"], huffman.read_table(streams[at][1])[1]

    def table(edit):
        def rewrite(header, payload):
            chunk, width, base = chunked.HEAD.unpack_from(payload[6 * at + 1], end)
            payload[6 * at + 1] = payload[6 * at + 1][:end] + edit(chunk, width, base, payload[6 * at + 1][end + chunked.HEAD.size:])
            header["tensors"][at]["z"][1] = len(payload[6 * at + 1])
        return rewrite

    cases = {"offsets out of range": table(lambda c, w, b, v: chunked.HEAD.pack(c, w, b + 10**6) + v),
             "lengths overflowing": table(lambda c, w, b, v: chunked.HEAD.pack(c, 32, 2**32 - 1) + b"\xff" * (4 * len(v))),
             "65535-symbol chunks": table(lambda c, w, b, v: chunked.HEAD.pack(65535, w, b) + v),
             "chunk table cut short": table(lambda c, w, b, v: chunked.HEAD.pack(c, w, b) + v[:-1]),
             "an offset moved": table(lambda c, w, b, v: chunked.HEAD.pack(c, w, b) + bytes([v[0] ^ 0x80]) + v[1:])}
    for label, edit in cases.items():
        bad = tmp_path / f"{label.replace(' ', '_')}.packed"
        _rewrite(good, bad, edit)
        with pytest.raises(CheckpointError, match=f"corrupt data for {name}"):
            load_model(str(bad))
            pytest.fail(f"{label}: loaded")
    with pytest.raises(TensorError, match="t: "):                # the decoder names the tensor
        decode_tensor({"n": "t", "s": [4], "d": "float32", "p": 0, "v": "raw", "w": "f32", "e": 5}, [memoryview(b"")] * 6,
                      torch.float32, 4)


def test_workbench_export_cli_round_trip(clustered, tmp_path):
    _, snapshot = clustered
    out = tmp_path / "cli.packed"
    done = run_cli("export", str(snapshot), "--format", "packed", "--out", str(out), "--data", "sample:digits")
    assert done.returncode == 0 and "verified (max |diff| 0)" in done.stdout, done.stderr
    again = run_cli("export", str(out), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors"),
                    "--data", "sample:digits")
    assert again.returncode == 0 and "verified" in again.stdout, again.stderr
    a, b = load_model(str(out)).module, load_model(str(tmp_path / "m.safetensors")).module
    x = torch.randn(8, 1, 8, 8)
    assert torch.equal(a(x), b(x))
