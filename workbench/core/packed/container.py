"""The packed file: a fixed prefix, a zlib-compressed JSON header, then the payload of streams.

    offset 0   b"WBPK"            magic
           4   version            1 byte: 2 (Huffman streams of more than one chunk carry a chunk table,
                                  see chunked.py); version 1 files (no chunk tables) are still read
           5   header length      uint32, little-endian (compressed bytes)
           9   CRC-32             uint32 of header + payload
          13   header             zlib(JSON): {"record": ..., "tensors": [{..., "z": [stream sizes]}]}
               payload            every tensor's streams, in header order

`read_container` checks the magic, the lengths against the file size and the checksum, and that the
stream sizes in the header add up to exactly the payload, before anything is decoded or allocated.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, UnreadableFile
from ..io import parse_json, read_regular
from ..limits import MAX_PARAMS

MAGIC = b"WBPK"
VERSION = 2
READABLE = (1, 2)
PREFIX = struct.Struct("<4sBII")
MAX_HEADER = 64 << 20     # decompressed header bytes at most


def write_container(path: Path, header: dict[str, Any], payload: list[bytes], version: int = VERSION) -> int:
    """Write the file; returns the size of the compressed header."""
    head = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    body = b"".join(payload)
    crc = zlib.crc32(body, zlib.crc32(head))
    with open(path, "wb") as fh:
        fh.write(PREFIX.pack(MAGIC, version, len(head), crc))
        fh.write(head)
        fh.write(body)
    return len(head)


def _fail(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a valid packed file ({why})")


def read_container(path: Path) -> tuple[dict[str, Any], list[list[memoryview]]]:
    """(header, streams per tensor); raises CheckpointError on anything malformed."""
    path = Path(path)
    try:                                     # a regular file (a FIFO or a device is refused, not waited on)
        data = read_regular(path, max_bytes=4 * MAX_PARAMS, follow_links=True)
    except UnreadableFile as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.problem})") from None
    if len(data) < PREFIX.size:
        raise _fail(path, f"truncated: {len(data)} bytes")
    magic, version, head_len, crc = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise _fail(path, "wrong magic bytes")
    if version not in READABLE:
        raise _fail(path, f"format version {version}, this workbench reads {' and '.join(map(str, READABLE))}")
    if head_len > len(data) - PREFIX.size:
        raise _fail(path, f"truncated: header of {head_len} bytes in a {len(data)}-byte file")
    view = memoryview(data)
    head = view[PREFIX.size:PREFIX.size + head_len]
    body = view[PREFIX.size + head_len:]
    if zlib.crc32(body, zlib.crc32(head)) != crc:
        raise _fail(path, "checksum mismatch: the file is corrupt or truncated")
    try:
        inflater = zlib.decompressobj()
        text = inflater.decompress(head, MAX_HEADER)
        if inflater.unconsumed_tail:
            raise ValueError("header too large")
        header = parse_json(text, path)      # bounded depth, no NaN
        tensors = header["tensors"]
        sizes = [[int(z) for z in t["z"]] for t in tensors]
    except UnreadableFile as exc:
        raise _fail(path, f"unreadable header: {exc.problem[:100]}") from None
    except (zlib.error, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise _fail(path, f"unreadable header: {str(exc)[:100]}") from None
    if any(len(z) != 6 or min(z) < 0 for z in sizes) or sum(map(sum, sizes)) != len(body):
        raise _fail(path, f"stream sizes in the header do not add up to the {len(body)}-byte payload")
    streams, offset = [], 0
    for z in sizes:
        parts = []
        for n in z:
            parts.append(body[offset:offset + n])
            offset += n
        streams.append(parts)
    return header, streams
