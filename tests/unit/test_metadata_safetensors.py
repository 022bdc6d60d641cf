"""safetensors headers: real files written by the safetensors library, and hostile ones."""

from __future__ import annotations

import json
import math
import re
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import save_file as save_torch
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM

from modelyard.metadata.reader import MetadataError, bytes_reader
from modelyard.metadata.safetensors import (
    DTYPE_BITS,
    FIRST_READ,
    MAX_HEADER_LENGTH,
    SafetensorsHeader,
    combine,
    parse_header,
    parse_index,
    parse_sharded,
    select_sources,
    shard_path,
)
from tests.unit.files import MINILM_DIR, CountingReader


def _parse(path: Path) -> SafetensorsHeader:
    reader = CountingReader(path)
    return parse_header(reader, reader.size)


def _independent_counts(path: Path) -> dict[str, int]:
    """Parameter counts per dtype computed by the safetensors library itself."""
    counts: dict[str, int] = {}
    with safetensors.safe_open(str(path), "np") as f:
        for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
            sl = f.get_slice(key)
            counts[sl.get_dtype()] = counts.get(sl.get_dtype(), 0) + math.prod(sl.get_shape())
    return counts


def test_real_minilm_header_counts_match_the_library_and_the_model() -> None:
    path = MINILM_DIR / "model.safetensors"
    reader = CountingReader(path)
    header = parse_header(reader, reader.size)
    assert header.parameters == _independent_counts(path)
    assert header.parameters == {"F32": 22_713_216, "I64": 512}
    assert header.total == 22_713_728
    assert header.as_info() == {"parameters": {"F32": 22_713_216, "I64": 512}, "total": 22_713_728}
    assert reader.bytes_read <= FIRST_READ < reader.size  # the header only: not the 90 MB of weights
    assert header.tensors["embeddings.word_embeddings.weight"].shape == (30522, 384)


def test_tiny_torch_model_counts_equal_num_parameters(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = BertModel(BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37))
    model.save_pretrained(tmp_path)
    header = _parse(tmp_path / "model.safetensors")
    assert header.total == sum(p.numel() for p in model.state_dict().values())
    assert header.parameters.get("F32") == model.num_parameters()
    assert header.metadata == {"format": "pt"}


def test_every_dtype_and_metadata(tmp_path: Path) -> None:
    tensors = {
        "f16": torch.zeros((3, 5), dtype=torch.float16),
        "bf16": torch.zeros((7,), dtype=torch.bfloat16),
        "f64": torch.zeros((2, 2, 2), dtype=torch.float64),
        "i8": torch.zeros((11,), dtype=torch.int8),
        "u8": torch.zeros((4,), dtype=torch.uint8),
        "i64": torch.zeros((6,), dtype=torch.int64),
        "bool": torch.zeros((9,), dtype=torch.bool),
        "f8": torch.zeros((8,), dtype=torch.float8_e4m3fn),
        "scalar": torch.tensor(1.5, dtype=torch.float32),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }
    path = tmp_path / "m.safetensors"
    save_torch(tensors, str(path), metadata={"format": "pt", "note": "ünïcode"})
    header = _parse(path)
    assert header.parameters == _independent_counts(path)
    assert header.parameters == {
        "F16": 15,
        "BF16": 7,
        "F64": 8,
        "I8": 11,
        "U8": 4,
        "I64": 6,
        "BOOL": 9,
        "F8_E4M3": 8,
        "F32": 1,  # the scalar; the (0, 4) tensor holds no element
    }
    assert header.metadata == {"format": "pt", "note": "ünïcode"}
    assert header.tensors["scalar"].shape == ()
    assert header.raw["__metadata__"] == {"format": "pt", "note": "ünïcode"}


def test_numpy_written_file(tmp_path: Path) -> None:
    path = tmp_path / "np.safetensors"
    save_numpy({"a": np.ones((10, 10), dtype=np.float32), "b": np.ones((3,), dtype=np.int32)}, str(path))
    assert _parse(path).parameters == {"F32": 100, "I32": 3}


def test_reads_only_the_header_of_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "big.safetensors"
    save_numpy({"w": np.zeros((3_000_000,), dtype=np.float32)}, str(path))  # 12 MB of weights
    reader = CountingReader(path)
    header = parse_header(reader, reader.size)
    assert header.total == 3_000_000
    assert reader.size > 12_000_000
    assert reader.bytes_read <= FIRST_READ
    assert len(reader.calls) == 1


def test_header_longer_than_the_first_read_costs_one_more_read(tmp_path: Path) -> None:
    path = tmp_path / "many.safetensors"
    tensors = {f"layer.{i}.weight.with.a.rather.long.name": np.zeros((2,), dtype=np.float16) for i in range(2000)}
    save_numpy(tensors, str(path))
    reader = CountingReader(path)
    header = parse_header(reader, reader.size)
    assert header.header_length > FIRST_READ
    assert header.parameters == {"F16": 4000}
    assert len(reader.calls) == 2
    assert reader.bytes_read == 8 + header.header_length


# --- hostile and corrupt headers --------------------------------------------------------------


def _file(header: Any, body: bytes = b"", *, raw: bytes | None = None) -> bytes:
    data = raw if raw is not None else json.dumps(header).encode()
    return struct.pack("<Q", len(data)) + data + body


def _entry(dtype: str = "F32", shape: Any = (1,), offsets: Any = (0, 4)) -> dict[str, Any]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _library_refuses(data: bytes, tmp_path: Path) -> bool:
    path = tmp_path / "x.safetensors"
    path.write_bytes(data)
    try:
        with safetensors.safe_open(str(path), "np") as f:
            for key in f.keys():  # noqa: SIM118
                f.get_slice(key)
    except Exception:
        return True
    return False


HOSTILE: dict[str, bytes] = {
    "shorter than the length field": b"\x01\x02\x03",
    "length past the end": struct.pack("<Q", 1000) + b"{}",
    "length near 2**64": struct.pack("<Q", 2**64 - 1) + b"{}",
    "not JSON": _file(None, raw=b"{not json"),
    "not UTF-8": _file(None, raw=b'{"\xff": 1}'),
    "a JSON list": _file([1, 2, 3]),
    "a JSON string": _file("hello"),
    "deeply nested": _file(None, raw=b"[" * 200_000 + b"]" * 200_000),
    "deeply nested objects": _file(None, raw=b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
    "unknown dtype": _file({"t": _entry(dtype="F33")}, b"\0" * 4),
    "dtype not a string": _file({"t": _entry(dtype=7)}, b"\0" * 4),  # type: ignore[arg-type]
    "negative dimension": _file({"t": _entry(shape=(-1,))}, b"\0" * 4),
    "float dimension": _file({"t": _entry(shape=(1.0,))}, b"\0" * 4),
    "boolean dimension": _file({"t": _entry(shape=(True,))}, b"\0" * 4),
    "shape not a list": _file({"t": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}}, b"\0" * 4),
    "negative offset": _file({"t": _entry(offsets=(-4, 0))}, b"\0" * 4),
    "offsets past the end": _file({"t": _entry(offsets=(0, 4_000_000))}, b"\0" * 4),
    "offsets reversed": _file({"t": _entry(offsets=(4, 0))}, b"\0" * 4),
    "three offsets": _file({"t": _entry(offsets=(0, 2, 4))}, b"\0" * 4),
    "size mismatch": _file({"t": _entry(shape=(2,), offsets=(0, 4))}, b"\0" * 4),
    "gap between tensors": _file({"a": _entry(offsets=(0, 4)), "b": _entry(offsets=(8, 12))}, b"\0" * 12),
    "overlapping tensors": _file({"a": _entry(shape=(2,), offsets=(0, 8)), "b": _entry(offsets=(4, 8))}, b"\0" * 8),
    "trailing bytes": _file({"t": _entry()}, b"\0" * 8),
    "sub-byte dtype off a byte boundary": _file({"t": _entry(dtype="F4", shape=(3,), offsets=(0, 2))}, b"\0" * 2),
    "metadata not strings": _file({"__metadata__": {"format": 1}}),
    "metadata not an object": _file({"__metadata__": ["pt"]}),
    "tensor entry not an object": _file({"t": [1, 2]}),
    "duplicate tensor names": _file(
        None,
        raw=b'{"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, '
        b'"t": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}',
        body=b"\0",
    ),
    "huge dimensions": _file({"t": _entry(shape=[2**62] * 3, offsets=(0, 4))}, b"\0" * 4),
}


#: What each hostile header must be refused for (a fragment of the message).
REASONS = {
    "shorter than the length field": "shorter than",
    "length past the end": "past the end",
    "length near 2**64": "limit",
    "not JSON": "not valid JSON",
    "not UTF-8": "UTF-8",
    "a JSON list": "JSON object",
    "a JSON string": "JSON object",
    "deeply nested": "nested too deeply",
    "deeply nested objects": "nested too deeply",
    "unknown dtype": "unknown dtype 'F33'",
    "dtype not a string": "unknown dtype",
    "negative dimension": "non-negative",
    "float dimension": "non-negative integers",
    "boolean dimension": "non-negative integers",
    "shape not a list": "shape must be a list",
    "negative offset": "data_offsets",
    "offsets past the end": "past the end",
    "offsets reversed": "gap or overlap",
    "three offsets": "two non-negative",
    "size mismatch": "takes 8",
    "gap between tensors": "gap",
    "overlapping tensors": "overlap",
    "trailing bytes": "cover 4 bytes",
    "sub-byte dtype off a byte boundary": "byte boundary",
    "metadata not strings": "__metadata__",
    "metadata not an object": "__metadata__",
    "tensor entry not an object": "must be an object",
    "duplicate tensor names": "duplicate key",
    "huge dimensions": "larger than the file",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_headers_raise_metadata_error(name: str, tmp_path: Path) -> None:
    data = HOSTILE[name]
    reader = CountingReader(data)
    with pytest.raises(MetadataError, match=re.escape(REASONS[name])):
        parse_header(reader, reader.size)
    assert reader.bytes_read <= len(data)
    # The safetensors library refuses every one of them too: the two agree on what is valid.
    if name != "duplicate tensor names":  # serde keeps the last duplicate; we refuse the file
        assert _library_refuses(data, tmp_path)


def test_valid_edge_cases_that_the_library_accepts(tmp_path: Path) -> None:
    cases = {
        "empty": (_file({}), {}),
        "metadata only": (_file({"__metadata__": {"format": "pt"}}), {}),
        "zero-size tensor first": (
            _file(
                {"a": _entry(shape=(0,), offsets=(0, 0)), "b": _entry(dtype="U8", shape=(2,), offsets=(0, 2))},
                b"ab",
            ),
            {"F32": 0, "U8": 2},
        ),
        "sub-byte dtype": (_file({"t": _entry(dtype="F4", shape=(4,), offsets=(0, 2))}, b"\0\0"), {"F4": 4}),
        "six-bit dtype": (_file({"t": _entry(dtype="F6_E2M3", shape=(4,), offsets=(0, 3))}, b"\0" * 3), {"F6_E2M3": 4}),
        "extra keys in an entry": (_file({"t": {**_entry(), "extra": True}}, b"\0" * 4), {"F32": 1}),
        "space-padded header": (
            _file(None, raw=b'{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}   ', body=b"\0" * 4),
            {"F32": 1},
        ),
    }
    for name, (data, expected) in cases.items():
        assert not _library_refuses(data, tmp_path), name
        header = parse_header(bytes_reader(data), len(data))
        assert header.parameters == expected, name


def test_declared_length_over_the_limit_is_refused_without_reading_it() -> None:
    prefix = struct.pack("<Q", MAX_HEADER_LENGTH + 1) + b"{"
    size = 10**9  # a 1 GB file, so only the 25 MB limit stops the header
    requested: list[int] = []

    def sparse(offset: int, length: int) -> bytes:
        requested.append(length)
        return (prefix[offset : offset + length]).ljust(min(length, size - offset), b" ")

    with pytest.raises(MetadataError, match="limit"):
        parse_header(sparse, size)
    assert requested == [FIRST_READ]


def test_huge_shapes_fail_fast() -> None:
    data = _file({"t": _entry(shape=[10**18] * 50_000, offsets=(0, 4))}, b"\0" * 4)
    started = time.monotonic()
    with pytest.raises(MetadataError, match="larger than the file"):
        parse_header(bytes_reader(data), len(data))
    assert time.monotonic() - started < 2


def test_a_read_callable_that_returns_too_little_is_a_truncated_file() -> None:
    data = _file({"t": _entry()}, b"\0" * 4)

    def short(offset: int, length: int) -> bytes:
        return data[offset : offset + length][:-1]

    with pytest.raises(MetadataError, match="Truncated"):
        parse_header(short, len(data))


def test_every_dtype_the_library_knows_is_accepted(tmp_path: Path) -> None:
    for dtype, bits in DTYPE_BITS.items():
        count = 8
        nbytes = count * bits // 8
        data = _file({"t": _entry(dtype=dtype, shape=(count,), offsets=(0, nbytes))}, b"\0" * nbytes)
        assert not _library_refuses(data, tmp_path), dtype
        assert parse_header(bytes_reader(data), len(data)).parameters == {dtype: count}


# --- sharded models ---------------------------------------------------------------------------


def _tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(config)


def _open_shards(folder: Path, readers: dict[str, CountingReader]) -> Any:
    def open_shard(name: str) -> tuple[CountingReader, int]:
        reader = CountingReader(folder / name)
        readers[name] = reader
        return reader, reader.size

    return open_shard


def test_sharded_model_written_by_transformers(tmp_path: Path) -> None:
    model = _tiny_llama()
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    index = parse_index((tmp_path / "model.safetensors.index.json").read_text())
    assert len(index.shards) > 3
    readers: dict[str, CountingReader] = {}
    headers = parse_sharded(index, _open_shards(tmp_path, readers))
    info = combine(headers)
    expected_total = sum(p.numel() for p in model.state_dict().values())
    assert info == {"parameters": {"F32": expected_total}, "total": expected_total}
    # Independent check: the safetensors library's own view of every shard.
    independent = [_independent_counts(tmp_path / s) for s in index.shards]
    assert info["total"] == sum(sum(c.values()) for c in independent)
    for name, reader in readers.items():
        assert reader.bytes_read < 1_000_000, name
        assert reader.bytes_read < reader.size, name
    assert index.total_size == sum(h.data_size for h in headers.values())


def test_index_that_names_a_tensor_its_shard_lacks(tmp_path: Path) -> None:
    model = _tiny_llama()
    model.save_pretrained(tmp_path, max_shard_size="200KB")
    raw = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    first_shard = sorted(set(raw["weight_map"].values()))[0]
    raw["weight_map"]["no.such.tensor"] = first_shard
    index = parse_index(json.dumps(raw))
    with pytest.raises(MetadataError, match="no.such.tensor"):
        parse_sharded(index, _open_shards(tmp_path, {}))


def test_a_corrupt_shard_names_the_shard(tmp_path: Path) -> None:
    model = _tiny_llama()
    model.save_pretrained(tmp_path, max_shard_size="200KB")
    index = parse_index((tmp_path / "model.safetensors.index.json").read_bytes())
    broken = index.shards[-1]
    (tmp_path / broken).write_bytes(struct.pack("<Q", 10**9) + b"{}")
    with pytest.raises(MetadataError, match=broken):
        parse_sharded(index, _open_shards(tmp_path, {}))


@pytest.mark.parametrize(
    "index",
    [
        "not json",
        "[]",
        "{}",
        '{"weight_map": {}}',
        '{"weight_map": []}',
        '{"weight_map": {"a": 3}}',
        '{"weight_map": {"a": "../outside.safetensors"}}',
        '{"weight_map": {"a": "/abs.safetensors"}}',
        '{"weight_map": {"a": "dir//x.safetensors"}}',
        '{"weight_map": {"a": "x.safetensors"}, "metadata": []}',
        '{"weight_map": {"a": "x.safetensors"}, "metadata": {"total_size": -1}}',
        '{"weight_map": {"a": "x.safetensors"}, "metadata": {"total_size": "12"}}',
        '{"weight_map": {"a": "x.safetensors"}, "weight_map": {"b": "y.safetensors"}}',
    ],
)
def test_bad_indexes(index: str) -> None:
    with pytest.raises(MetadataError):
        parse_index(index)


def test_index_accessors() -> None:
    index = parse_index(
        '{"metadata": {"total_size": 12}, "weight_map": {"b": "2.safetensors", "a": "1.safetensors",'
        ' "c": "1.safetensors"}}'
    )
    assert index.shards == ("1.safetensors", "2.safetensors")
    assert index.total_size == 12
    assert parse_index('{"weight_map": {"a": "x.safetensors"}}').total_size is None
    assert shard_path("text_encoder/model.safetensors.index.json", "model-00001-of-00002.safetensors") == (
        "text_encoder/model-00001-of-00002.safetensors"
    )
    assert shard_path("model.safetensors.index.json", "a.safetensors") == "a.safetensors"


def test_select_sources() -> None:
    assert select_sources(["model.safetensors", "model.fp16.safetensors", "config.json"]) == (
        None,
        ("model.safetensors",),
    )
    assert select_sources(["model.safetensors.index.json", "model-00001-of-00002.safetensors"]) == (
        "model.safetensors.index.json",
        (),
    )
    assert select_sources(["adapter_model.safetensors", "unet/diffusion_pytorch_model.safetensors"]) == (
        None,
        ("adapter_model.safetensors",),
    )
    assert select_sources(["pytorch_model.bin", "sub/model.safetensors"]) == (None, ())
