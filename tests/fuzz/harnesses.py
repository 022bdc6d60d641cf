"""Fuzz targets: every parser that reads uploaded bytes, with the errors each may answer with.

Each target takes the fuzzer's bytes and calls one parser; the errors it documents for hostile
input (the hub's ``HubError`` family: ``MetadataError``, ``XorbFormatError``, ``ShardFormatError``,
``InvalidInputError``...) are its answers, anything else escaping is a finding. The pickle
scanner runs in a sandboxed child whose contract is "a result for any bytes" (it reports any
exception as the file's error): its target catches exceptions as the child does, so what atheris
looks for there is what the child cannot turn into a result: crashes of native code (h5py, numpy)
and hangs (``-timeout``).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable

from modelyard.errors import HubError
from modelyard.http.routes.commits import CommitParser
from modelyard.metadata import gguf, safetensors
from modelyard.metadata.cards import parse_card
from modelyard.metadata.reader import bytes_reader
from modelyard.metadata.scanner import kind, scan
from modelyard.xet.shard import parse_shard
from modelyard.xet.xorb import iter_chunks, parse_xorb


def fuzz_safetensors(data: bytes) -> None:
    with contextlib.suppress(HubError):
        safetensors.parse_header(bytes_reader(data), len(data))


def fuzz_gguf(data: bytes) -> None:
    with contextlib.suppress(HubError):
        gguf.parse_header(bytes_reader(data), len(data))


def fuzz_card(data: bytes) -> None:
    with contextlib.suppress(HubError):
        parse_card(data.decode("utf-8", "replace"))


def fuzz_xorb(data: bytes) -> None:
    try:
        index = parse_xorb(data)
    except HubError:
        return
    for _ in iter_chunks(data):  # a xorb that parsed decodes chunk by chunk
        pass
    assert index.chunks is not None


def fuzz_shard(data: bytes) -> None:
    with contextlib.suppress(HubError):
        parse_shard(data)


def fuzz_commit(data: bytes) -> None:
    parser = CommitParser(1000)
    with contextlib.suppress(HubError):
        parser.feed([line for line in data.split(b"\n") if line.strip()])
        parser.result()


def fuzz_scanner(data: bytes) -> None:
    for path in ("model.bin", "data.pkl", "arr.npy", "model.h5", "m.keras"):
        scan_kind = kind(path, data[:16])
        if scan_kind is None:
            continue
        with contextlib.suppress(Exception):  # the sandbox turns any exception into the file's error
            scan(io.BufferedReader(io.BytesIO(data)), len(data), scan_kind, path)  # type: ignore[arg-type]


TARGETS: dict[str, Callable[[bytes], None]] = {
    "safetensors": fuzz_safetensors, "gguf": fuzz_gguf, "card": fuzz_card, "xorb": fuzz_xorb,
    "shard": fuzz_shard, "commit": fuzz_commit, "scanner": fuzz_scanner,
}
