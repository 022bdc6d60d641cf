"""GGUF headers: real files written by the ``gguf`` package, and hostile ones built by hand."""

from __future__ import annotations

import math
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.metadata.gguf import (
    ARRAY,
    FILE_TYPES,
    FLOAT32,
    GGML_TYPES,
    MAX_KEPT_VALUES,
    MAX_KV_COUNT,
    MAX_TENSOR_COUNT,
    STRING,
    UINT8,
    UINT32,
    GgufArray,
    GgufHeader,
    GgufLongString,
    combine,
    parse_header,
    select_files,
)
from modelyard.metadata.reader import MetadataError
from tests.unit.files import CountingReader

Q = gguf.GGMLQuantizationType


def write_gguf(
    path: Path,
    fill: Callable[[gguf.GGUFWriter], None],
    *,
    arch: str = "llama",
    endianess: gguf.GGUFEndian = gguf.GGUFEndian.LITTLE,
) -> Path:
    writer = gguf.GGUFWriter(str(path), arch, endianess=endianess)
    fill(writer)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def parse(path: Path) -> tuple[GgufHeader, CountingReader]:
    reader = CountingReader(path)
    return parse_header(reader, reader.size), reader


def _llama(writer: gguf.GGUFWriter, *, vocab: int = 1000, file_type: int | None = 15) -> None:
    writer.add_name("tiny-llama")
    writer.add_context_length(4096)
    writer.add_embedding_length(256)
    writer.add_block_count(2)
    if file_type is not None:
        writer.add_file_type(file_type)
    writer.add_tokenizer_model("llama")
    writer.add_token_list([f"<tok{i}>" for i in range(vocab)])
    writer.add_token_scores([0.0] * vocab)
    writer.add_token_types([1] * vocab)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(vocab - 1)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}{% endfor %}")
    # F32 norms, a Q4_K matrix (2 rows of 256 elements = 2 x 144 bytes), a Q8_0 and an F16 matrix.
    writer.add_tensor("token_embd.weight", np.zeros((8, 256), dtype=np.float16))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones((256,), dtype=np.float32))
    writer.add_tensor("blk.0.attn_q.weight", np.zeros((4, 144), dtype=np.uint8), raw_dtype=Q.Q4_K)
    writer.add_tensor("blk.0.ffn_up.weight", np.zeros((16, 144), dtype=np.uint8), raw_dtype=Q.Q4_K)
    writer.add_tensor("output.weight", np.zeros((2, 34 * 8), dtype=np.uint8), raw_dtype=Q.Q8_0)


def test_real_llama_header(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny-Q4_K_M.gguf", _llama)
    header, reader = parse(path)
    oracle = gguf.GGUFReader(str(path))
    assert header.version == 3
    assert header.endian == "little"
    assert header.architecture == "llama"
    assert header.context_length == 4096
    assert header.file_type == 15
    assert header.quantization == "Q4_K_M"
    assert header.dominant_type == "Q4_K"
    assert header.chat_template == "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    assert header.bos_token == "<tok1>"
    assert header.eos_token == "<tok999>"
    assert header.fields["general.name"] == "tiny-llama"
    assert header.fields["llama.block_count"] == 2
    # Independent check against the gguf package's own reader.
    assert header.total == sum(int(t.n_elements) for t in oracle.tensors)
    assert header.total == 8 * 256 + 256 + 4 * 256 + 16 * 256 + 2 * 256
    assert [(t.name, t.type_name, t.parameters, t.nbytes) for t in header.tensors] == [
        (t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in oracle.tensors
    ]
    assert [header.data_offset + t.offset for t in header.tensors] == [int(t.data_offset) for t in oracle.tensors]
    assert header.tensors[2].dims == (256, 4)  # ggml order: innermost first
    assert header.parameters == {"F16": 2048, "F32": 256, "Q4_K": 5120, "Q8_0": 512}
    assert header.as_info() == {
        "total": header.total,
        "architecture": "llama",
        "context_length": 4096,
        "chat_template": header.chat_template,
        "bos_token": "<tok1>",
        "eos_token": "<tok999>",
    }
    assert reader.bytes_read <= reader.size


def test_every_value_type_and_arrays(tmp_path: Path) -> None:
    V = gguf.GGUFValueType

    def fill(w: gguf.GGUFWriter) -> None:
        w.add_uint8("t.u8", 250)
        w.add_int8("t.i8", -5)
        w.add_uint16("t.u16", 65000)
        w.add_int16("t.i16", -30000)
        w.add_uint32("t.u32", 4_000_000_000)
        w.add_int32("t.i32", -2_000_000_000)
        w.add_float32("t.f32", 1.5)
        w.add_uint64("t.u64", 2**63 + 5)
        w.add_int64("t.i64", -(2**62))
        w.add_float64("t.f64", 2.25)
        w.add_bool("t.true", True)
        w.add_bool("t.false", False)
        w.add_string("t.str", "héllo")
        w.add_array("t.ints", [1, 2, 3])
        w.add_array("t.strs", ["a", "bc"])
        w.add_array("t.nested", [[1, 2], [3]])
        w.add_key_value("t.u8s", list(range(10)), V.ARRAY, sub_type=V.UINT8)
        w.add_key_value("t.big", [0.5] * 5000, V.ARRAY, sub_type=V.FLOAT32)
        w.add_key_value("t.bigstrs", [f"s{i}" for i in range(1000)], V.ARRAY, sub_type=V.STRING)
        w.add_key_value("t.bignested", [[i] for i in range(300)], V.ARRAY, sub_type=V.ARRAY)
        w.add_tensor("w", np.zeros((3, 4), dtype=np.float32))

    header, _ = parse(write_gguf(tmp_path / "types.gguf", fill, arch="test"))
    f = header.fields
    assert (f["t.u8"], f["t.i8"], f["t.u16"], f["t.i16"]) == (250, -5, 65000, -30000)
    assert (f["t.u32"], f["t.i32"], f["t.u64"], f["t.i64"]) == (4_000_000_000, -2_000_000_000, 2**63 + 5, -(2**62))
    assert (f["t.f32"], f["t.f64"], f["t.true"], f["t.false"]) == (1.5, 2.25, True, False)
    assert f["t.str"] == "héllo"
    assert f["t.ints"] == [1, 2, 3]
    assert f["t.strs"] == ["a", "bc"]
    assert f["t.nested"] == [[1, 2], [3]]
    assert f["t.u8s"] == list(range(10))
    assert f["t.big"] == GgufArray(FLOAT32, 5000, f["t.big"].offset)
    assert f["t.bigstrs"].element_type == STRING and f["t.bigstrs"].count == 1000
    assert len(f["t.bigstrs"].checkpoints) == 4
    assert f["t.bignested"].element_type == ARRAY and f["t.bignested"].count == 300
    assert header.architecture == "test"
    assert header.context_length is None
    assert header.quantization == "F32"  # no general.file_type: the dominant tensor type
    assert header.total == 12
    assert header.as_info() == {"total": 12, "architecture": "test"}


def test_version_2_is_read_like_version_3(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "v3.gguf", _llama)
    data = bytearray(path.read_bytes())
    data[4:8] = struct.pack("<I", 2)
    v2 = tmp_path / "v2.gguf"
    v2.write_bytes(bytes(data))
    three, _ = parse(path)
    two, _ = parse(v2)
    assert two.version == 2
    assert (two.as_info(), two.tensors, two.quantization) == (three.as_info(), three.tensors, three.quantization)


@pytest.mark.parametrize("version", [0, 1, 4, 2**31])
def test_other_versions_are_refused(tmp_path: Path, version: int) -> None:
    data = bytearray(write_gguf(tmp_path / "m.gguf", _llama).read_bytes())
    data[4:8] = struct.pack("<I", version)
    with pytest.raises(MetadataError, match="version"):
        parse_header(CountingReader(bytes(data)), len(data))


def test_big_endian_file(tmp_path: Path) -> None:
    little, _ = parse(write_gguf(tmp_path / "le.gguf", _llama))
    big, _ = parse(write_gguf(tmp_path / "be.gguf", _llama, endianess=gguf.GGUFEndian.BIG))
    assert big.endian == "big"
    assert big.as_info() == little.as_info()
    assert big.tensors == little.tensors
    assert big.quantization == "Q4_K_M"


def test_quantization_without_file_type_is_the_dominant_matrix_type(tmp_path: Path) -> None:
    header, _ = parse(write_gguf(tmp_path / "m.gguf", lambda w: _llama(w, file_type=None)))
    assert header.file_type is None
    assert header.quantization == "Q4_K"  # F32 norms are 1-d and do not count


def test_reads_only_the_header_of_a_large_file(tmp_path: Path) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        _llama(w)
        w.add_tensor("big", np.zeros((2048, 2048), dtype=np.float32))  # 16 MB of data

    header, reader = parse(write_gguf(tmp_path / "big.gguf", fill))
    assert reader.size > 16 * 1024 * 1024
    assert reader.bytes_read < 1024 * 1024
    assert header.total > 2048 * 2048


def test_large_vocabulary_is_walked_not_kept(tmp_path: Path) -> None:
    vocab = 200_000
    path = write_gguf(tmp_path / "vocab.gguf", lambda w: _llama(w, vocab=vocab))
    reader = CountingReader(path)
    tracemalloc.start()
    try:
        header = parse_header(reader, reader.size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tokens = header.fields["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GgufArray) and tokens.count == vocab
    assert header.fields["tokenizer.ggml.scores"].count == vocab
    assert header.eos_token == f"<tok{vocab - 1}>"
    assert header.bos_token == "<tok1>"
    # 200,000 token strings held as Python objects would take well over 10 MB.
    assert peak < 4 * 1024 * 1024
    assert reader.bytes_read < reader.size + 3 * 1024 * 1024


def test_type_tables_agree_with_the_gguf_package() -> None:
    for type_id, (name, block, size) in GGML_TYPES.items():
        assert Q(type_id).name == name
        assert gguf.GGML_QUANT_SIZES[Q(type_id)] == (block, size)
    assert {int(t) for t in Q} == set(GGML_TYPES)
    for file_type, name in FILE_TYPES.items():
        if file_type == 4:
            continue  # removed from the package's enum; still found in old files
        member = gguf.LlamaFileType(file_type).name
        assert member.removeprefix("MOSTLY_").removeprefix("ALL_") == name


def test_select_files_and_combine(tmp_path: Path) -> None:
    assert select_files(["README.md", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-f16.gguf", "sub/x.gguf"]) == (
        "m-Q4_K_M.gguf",
    )
    split = ["m-Q4-00002-of-00002.gguf", "m-Q4-00001-of-00002.gguf", "m-Q8-00001-of-00001.gguf"]
    assert select_files(split) == ("m-Q4-00001-of-00002.gguf", "m-Q4-00002-of-00002.gguf")
    assert select_files(["model.safetensors"]) == ()
    one, _ = parse(write_gguf(tmp_path / "a.gguf", _llama))
    two, _ = parse(write_gguf(tmp_path / "b.gguf", lambda w: w.add_tensor("x", np.zeros((5,), dtype=np.float32))))
    assert combine([one, two]) == {**one.as_info(), "total": one.total + 5}
    assert combine([]) == {}


# --- hostile headers, built byte by byte -------------------------------------------------------


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv(key: str | bytes, value_type: int, payload: bytes) -> bytes:
    return s(key) + struct.pack("<I", value_type) + payload


def ti(name: str, dims: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return (
        s(name)
        + struct.pack("<I", len(dims))
        + b"".join(struct.pack("<Q", d) for d in dims)
        + struct.pack("<IQ", ggml_type, offset)
    )


def build(
    kvs: list[bytes] = (),  # type: ignore[assignment]
    tensors: list[bytes] = (),  # type: ignore[assignment]
    *,
    body: bytes = b"",
    n_tensors: int | None = None,
    n_kv: int | None = None,
    alignment: int = 32,
) -> bytes:
    head = b"GGUF" + struct.pack(
        "<IQQ", 3, len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv
    )
    out = head + b"".join(kvs) + b"".join(tensors)
    out += b"\0" * (-len(out) % alignment)
    return out + body


def test_hand_built_minimal_file_parses() -> None:
    data = build([kv("general.architecture", STRING, s("x"))], [ti("w", (4, 2))], body=b"\0" * 32)
    header = parse_header(CountingReader(data), len(data))
    assert header.architecture == "x" and header.total == 8


HOSTILE: dict[str, bytes] = {
    "empty": b"",
    "bad magic": b"GGML" + b"\0" * 40,
    "only the magic": b"GGUF" + b"\0" * 20,
    "absurd kv count": build(n_kv=2**63),
    "kv count over the limit": build(n_kv=MAX_KV_COUNT + 1),
    "absurd tensor count": build(n_tensors=2**64 - 1),
    "tensor count over the limit": build(n_tensors=MAX_TENSOR_COUNT + 1),
    "declared kvs missing": build(n_kv=3),
    "declared tensors missing": build(n_tensors=3),
    "key length past the end": build([struct.pack("<Q", 2**40) + b"k"]),
    "key over the limit": build([kv("k" * 70_000, UINT8, b"\0")]),
    "key not UTF-8": build([kv(b"\xff\xfe", UINT8, b"\0")]),
    "string length past the end": build([kv("k", STRING, struct.pack("<Q", 2**62))]),
    "unknown value type": build([kv("k", 13, b"\0" * 8)]),
    "unknown array element type": build([kv("k", ARRAY, struct.pack("<IQ", 99, 1) + b"\0" * 8)]),
    "array count past the end": build([kv("k", ARRAY, struct.pack("<IQ", UINT32, 2**61))]),
    "string array count past the end": build([kv("k", ARRAY, struct.pack("<IQ", STRING, 2**40))]),
    "arrays nested too deeply": build(
        [kv("k", ARRAY, struct.pack("<IQ", ARRAY, 1) * 20 + struct.pack("<IQ", UINT8, 0))]
    ),
    "duplicate key": build([kv("k", UINT8, b"\1"), kv("k", UINT8, b"\2")]),
    "alignment not a power of two": build([kv("general.alignment", UINT32, struct.pack("<I", 24))]),
    "alignment zero": build([kv("general.alignment", UINT32, struct.pack("<I", 0))]),
    "alignment of the wrong type": build([kv("general.alignment", STRING, s("32"))]),
    "too many dimensions": build([], [ti("w", (1, 1, 1, 1, 1))], body=b"\0" * 32),
    "unknown ggml type": build([], [ti("w", (4,), ggml_type=4)], body=b"\0" * 32),
    "block size mismatch": build([], [ti("w", (100,), ggml_type=int(Q.Q4_K))], body=b"\0" * 256),
    "element count overflow": build([], [ti("w", (2**40, 2**40))], body=b"\0" * 32),
    "tensor past the end": build([], [ti("w", (1024,))], body=b"\0" * 32),
    "offset past the end": build([], [ti("w", (1,), offset=2**60)], body=b"\0" * 32),
    "misaligned offset": build([], [ti("a", (1,)), ti("b", (1,), offset=4)], body=b"\0" * 64),
    "overlapping tensors": build([], [ti("a", (16,)), ti("b", (8,), offset=32)], body=b"\0" * 128),
    "duplicate tensor name": build([], [ti("a", (1,)), ti("a", (1,), offset=32)], body=b"\0" * 64),
    "tensor name past the end": build([], [struct.pack("<Q", 2**50)]),
}


#: What each hostile header must be refused for (a fragment of the message).
REASONS = {
    "empty": "too short",
    "bad magic": "bad magic",
    "only the magic": "version 0",
    "absurd kv count": "key/value pairs",
    "kv count over the limit": "key/value pairs",
    "absurd tensor count": "tensors",
    "tensor count over the limit": "tensors",
    "declared kvs missing": "Truncated",
    "declared tensors missing": "Truncated",
    "key length past the end": "key of",
    "key over the limit": "key of 70000 bytes",
    "key not UTF-8": "UTF-8",
    "string length past the end": "Truncated",
    "unknown value type": "value type 13",
    "unknown array element type": "element type 99",
    "array count past the end": "past the end",
    "string array count past the end": "past the end",
    "arrays nested too deeply": "nested too deeply",
    "duplicate key": "Duplicate GGUF key",
    "alignment not a power of two": "power of two",
    "alignment zero": "alignment",
    "alignment of the wrong type": "alignment",
    "too many dimensions": "5 dimensions",
    "unknown ggml type": "unknown ggml type 4",
    "block size mismatch": "block size",
    "element count overflow": "64 bits",
    "tensor past the end": "past the end",
    "offset past the end": "past the end",
    "misaligned offset": "not aligned",
    "overlapping tensors": "overlaps",
    "duplicate tensor name": "Duplicate tensor name",
    "tensor name past the end": "tensor name",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_headers_raise_metadata_error(name: str) -> None:
    data = HOSTILE[name]
    reader = CountingReader(data)
    with pytest.raises(MetadataError, match=REASONS[name]):
        parse_header(reader, reader.size)
    assert reader.bytes_read <= len(data)


def test_every_truncation_of_a_real_header_is_an_error(tmp_path: Path) -> None:
    data = write_gguf(tmp_path / "m.gguf", _llama).read_bytes()
    header = parse_header(CountingReader(data), len(data))
    for cut in range(0, header.data_offset + 1, 7):
        with pytest.raises(MetadataError):
            parse_header(CountingReader(data[:cut]), cut)
    with pytest.raises(MetadataError):  # the header is whole, the last tensor's data is not
        parse_header(CountingReader(data[:-1]), len(data) - 1)


def test_the_byte_budget_is_enforced(tmp_path: Path) -> None:
    data = write_gguf(tmp_path / "m.gguf", lambda w: _llama(w, vocab=50_000)).read_bytes()
    reader = CountingReader(data)
    with pytest.raises(MetadataError, match="limit"):
        parse_header(reader, len(data), budget=100_000)
    assert reader.bytes_read <= 100_000


def test_long_strings_are_summarised(tmp_path: Path) -> None:
    long = "x" * (1024 * 1024 + 1)
    header, reader = parse(write_gguf(tmp_path / "m.gguf", lambda w: w.add_string("t.long", long)))
    value = header.fields["t.long"]
    assert isinstance(value, GgufLongString) and value.length == len(long)
    assert reader.bytes_read < 300_000


def test_small_arrays_are_kept_only_up_to_a_total(tmp_path: Path) -> None:
    def fill(w: gguf.GGUFWriter) -> None:
        for i in range(600):
            w.add_key_value(f"t.a{i:03d}", [7] * 200, gguf.GGUFValueType.ARRAY, sub_type=gguf.GGUFValueType.UINT8)

    header, _ = parse(write_gguf(tmp_path / "m.gguf", fill))
    kept = [k for k, v in header.fields.items() if isinstance(v, list)]
    summarised = [k for k, v in header.fields.items() if isinstance(v, GgufArray)]
    assert header.fields["t.a000"] == [7] * 200
    assert len(kept) == MAX_KEPT_VALUES // 200
    assert header.fields["t.a599"] == GgufArray(UINT8, 200, header.fields["t.a599"].offset)
    assert len(kept) + len(summarised) == 600


_SMALL: dict[str, bytes] = {}


def _small_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not _SMALL:
        path = tmp_path_factory.mktemp("gguf") / "small.gguf"
        _SMALL["data"] = write_gguf(path, lambda w: _llama(w, vocab=300)).read_bytes()
    return _SMALL["data"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=6))
def test_corrupted_headers_fail_cleanly(
    tmp_path_factory: pytest.TempPathFactory, flips: list[tuple[float, int]]
) -> None:
    original = _small_file(tmp_path_factory)
    data = bytearray(original)
    header_end = parse_header(CountingReader(original), len(original)).data_offset
    for where, value in flips:
        data[math.floor(where * header_end)] = value
    reader = CountingReader(bytes(data))
    try:
        result: Any = parse_header(reader, len(data))
    except MetadataError:
        result = None
    assert result is None or isinstance(result, GgufHeader)
    assert reader.bytes_read <= len(data) + 3 * 1024 * 1024


def test_values_of_unusual_kinds() -> None:
    data = build(
        [
            kv("general.architecture", UINT8, b"\x07"),  # not a string: no architecture
            kv("general.file_type", UINT32, struct.pack("<I", 999)),  # unknown: fall back to tensors
            kv("tokenizer.ggml.bos_token_id", UINT32, struct.pack("<I", 5)),  # no vocabulary at all
        ],
        [ti("w", (32,), ggml_type=int(Q.Q8_0))],
        body=b"\0" * 64,
    )
    header = parse_header(CountingReader(data), len(data))
    assert header.architecture is None
    assert header.quantization == "Q8_0"
    assert header.bos_token is None
    assert header.as_info() == {"total": 32}
