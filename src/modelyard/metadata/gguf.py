"""GGUF headers: architecture, context length, quantization and parameter count.

A GGUF file (versions 2 and 3) starts with the magic ``GGUF``, a u32 version, a u64 tensor
count and a u64 key/value count; then the key/value pairs (a length-prefixed UTF-8 key, a u32
value type, the value), then one info per tensor (name, u32 dimension count, u64 dimensions,
u32 ggml type, u64 offset into the data section), then the tensor data aligned to
``general.alignment`` (default 32). Version 3 files may be big-endian.

Only the header is read, through the caller's ``read`` callable, in bounded chunks. Large
arrays (a tokenizer vocabulary can hold hundreds of thousands of strings) are walked, never
kept: only their length, and for string arrays a checkpoint every few hundred elements, so that
the BOS/EOS token strings can be looked up afterwards without holding the vocabulary.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.metadata.reader import HeaderReader, MetadataError, Read

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
#: Bytes that may be read through the callable for one header.
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_KV_COUNT = 65_536
MAX_TENSOR_COUNT = 262_144
MAX_KEY_LENGTH = 65_535
MAX_TENSOR_NAME_LENGTH = 256
#: ``GGML_MAX_DIMS``.
MAX_DIMS = 4
MAX_ARRAY_DEPTH = 8
#: Longer string arrays than this are refused (the largest vocabularies hold ~10^6 entries).
MAX_ARRAY_LENGTH = 4_000_000
#: Strings and arrays up to these sizes are kept in ``fields``; larger ones are summarised.
MAX_KEPT_STRING = 1024 * 1024
MAX_KEPT_ARRAY = 256
#: Array elements kept as Python values over the whole header: nested small arrays must not
#: turn a 64 MB header into hundreds of MB of Python objects.
MAX_KEPT_VALUES = 100_000
CHECKPOINT_EVERY = 256
#: Extra bytes that looking up the BOS and EOS token strings may read.
TOKEN_LOOKUP_BYTES = 2 * 1024 * 1024
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 20

# GGUF value types.
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
_SCALAR_FORMATS = {
    UINT8: "B",
    INT8: "b",
    UINT16: "H",
    INT16: "h",
    UINT32: "I",
    INT32: "i",
    FLOAT32: "f",
    BOOL: "?",
    UINT64: "Q",
    INT64: "q",
    FLOAT64: "d",
}

#: ggml tensor types: id -> (name, elements per block, bytes per block).
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
}

#: ``general.file_type`` (llama.cpp's ``llama_ftype``) -> the quantization name the Hub shows.
FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
}

_INT_TYPES = (UINT8, INT8, UINT16, INT16, UINT32, INT32, UINT64, INT64)
_INT64_MAX = (1 << 63) - 1


@dataclass(frozen=True)
class GgufArray:
    """A large array kept only as a summary: its element type, length and where it starts."""

    element_type: int
    count: int
    offset: int
    #: For string arrays: the file offset of every ``CHECKPOINT_EVERY``-th element.
    checkpoints: tuple[int, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class GgufLongString:
    """A string value too long to keep: its length and offset."""

    length: int
    offset: int


@dataclass(frozen=True)
class GgufTensor:
    name: str
    #: ggml order: ``dims[0]`` is the innermost (fastest-varying) dimension.
    dims: tuple[int, ...]
    type: int
    offset: int

    @property
    def n_dims(self) -> int:
        return len(self.dims)

    @property
    def type_name(self) -> str:
        return GGML_TYPES[self.type][0]

    @property
    def parameters(self) -> int:
        count = 1
        for dim in self.dims:
            count *= dim
        return count

    @property
    def nbytes(self) -> int:
        _, block, block_bytes = GGML_TYPES[self.type]
        return self.parameters // block * block_bytes


@dataclass(frozen=True)
class GgufHeader:
    """The facts of a validated GGUF header."""

    version: int
    endian: Literal["little", "big"]
    #: Key/value fields; large arrays and very long strings appear as summaries.
    fields: dict[str, Any]
    tensors: tuple[GgufTensor, ...]
    alignment: int
    #: Absolute file offset where the tensor data starts.
    data_offset: int
    bos_token: str | None = None
    eos_token: str | None = None
    bytes_read: int = 0

    @property
    def architecture(self) -> str | None:
        value = self.fields.get("general.architecture")
        return value if isinstance(value, str) else None

    @property
    def context_length(self) -> int | None:
        arch = self.architecture
        value = self.fields.get(f"{arch}.context_length") if arch else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def chat_template(self) -> str | None:
        value = self.fields.get("tokenizer.chat_template")
        return value if isinstance(value, str) else None

    @property
    def file_type(self) -> int | None:
        value = self.fields.get("general.file_type")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def total(self) -> int:
        """Parameter count: the sum of the element counts of all tensors."""
        return sum(t.parameters for t in self.tensors)

    @property
    def parameters(self) -> dict[str, int]:
        """Element counts per ggml tensor type name."""
        counts: dict[str, int] = {}
        for tensor in self.tensors:
            counts[tensor.type_name] = counts.get(tensor.type_name, 0) + tensor.parameters
        return counts

    @property
    def dominant_type(self) -> str | None:
        """The tensor type holding the most elements among matrices (1-d tensors stay F32 in
        quantized files, so they are counted only when there is nothing else)."""
        matrices = [t for t in self.tensors if t.n_dims >= 2] or list(self.tensors)
        counts: dict[str, int] = {}
        for tensor in matrices:
            counts[tensor.type_name] = counts.get(tensor.type_name, 0) + tensor.parameters
        return max(counts, key=lambda name: counts[name]) if counts else None

    @property
    def quantization(self) -> str | None:
        """``general.file_type`` by its llama.cpp name (Q4_K_M, ...), else the dominant type."""
        file_type = self.file_type
        if file_type is not None and file_type in FILE_TYPES:
            return FILE_TYPES[file_type]
        return self.dominant_type

    def as_info(self) -> dict[str, Any]:
        """The ``gguf`` field of ``model_info``: only the keys that are known."""
        info: dict[str, Any] = {
            "total": self.total,
            "architecture": self.architecture,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
        }
        return {k: v for k, v in info.items() if v is not None}


_SPLIT = re.compile(r"^(?P<stem>.*)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf\Z")


def select_files(paths: Iterable[str]) -> tuple[str, ...]:
    """The GGUF file(s) of one model in a repo: the first root-level ``.gguf`` by name that is not
    a multimodal projector (``mmproj``), with all its parts when it is split (``-00001-of-00003``).

    Repos often hold one model in several quantizations; any one gives the architecture,
    context length and parameter count.
    """
    candidates = sorted(p for p in paths if "/" not in p and p.lower().endswith(".gguf") and "mmproj" not in p.lower())
    if not candidates:
        return ()
    first = candidates[0]
    match = _SPLIT.match(first)
    if match is None:
        return (first,)
    stem, count = match["stem"], match["count"]
    return tuple(p for p in candidates if (m := _SPLIT.match(p)) and m["stem"] == stem and m["count"] == count)


def combine(headers: Sequence[GgufHeader]) -> dict[str, Any]:
    """The ``gguf`` field of a model split into several files: the first file's fields, and the
    parameter count of all of them."""
    if not headers:
        return {}
    info = headers[0].as_info()
    info["total"] = sum(h.total for h in headers)
    return info


def parse_header(read: Read, size: int, *, budget: int = MAX_HEADER_BYTES) -> GgufHeader:
    """Read and validate a GGUF header through ``read``; raises MetadataError if it is bad.

    At most ``min(budget, size)`` bytes go through ``read``; counts, lengths and nesting are
    capped, so a hostile header costs bounded time and memory.
    """
    return _Parser(HeaderReader(read, size, budget=min(budget, size))).parse()


class _Parser:
    def __init__(self, reader: HeaderReader) -> None:
        self.r = reader
        self.endian = "<"
        self._kept = 0
        self._u32 = struct.Struct("<I")
        self._u64 = struct.Struct("<Q")

    def _use_endian(self, prefix: str) -> None:
        self.endian = prefix
        self._u32 = struct.Struct(prefix + "I")
        self._u64 = struct.Struct(prefix + "Q")

    def u32(self) -> int:
        return int(self._u32.unpack(self.r.take(4))[0])

    def u64(self) -> int:
        return int(self._u64.unpack(self.r.take(8))[0])

    def parse(self) -> GgufHeader:
        if self.r.size < 24:
            raise MetadataError("Not a GGUF file: too short")
        if self.r.take(4) != MAGIC:
            raise MetadataError("Not a GGUF file: bad magic")
        raw_version = self.r.take(4)
        version = struct.unpack("<I", raw_version)[0]
        if version not in SUPPORTED_VERSIONS and struct.unpack(">I", raw_version)[0] in SUPPORTED_VERSIONS:
            self._use_endian(">")
            version = struct.unpack(">I", raw_version)[0]
        if version not in SUPPORTED_VERSIONS:
            raise MetadataError(f"Unsupported GGUF version {version}: versions 2 and 3 are read")
        tensor_count = self.u64()
        kv_count = self.u64()
        if kv_count > MAX_KV_COUNT:
            raise MetadataError(f"GGUF header declares {kv_count} key/value pairs (limit {MAX_KV_COUNT})")
        if tensor_count > MAX_TENSOR_COUNT:
            raise MetadataError(f"GGUF header declares {tensor_count} tensors (limit {MAX_TENSOR_COUNT})")
        fields: dict[str, Any] = {}
        for _ in range(kv_count):
            key = self._string(MAX_KEY_LENGTH, "key", strict=True)
            if key in fields:
                raise MetadataError(f"Duplicate GGUF key {key!r}")
            fields[key] = self._value(self.u32(), 0)
        alignment = self._alignment(fields)
        tensors = [self._tensor_info() for _ in range(tensor_count)]
        infos_end = self.r.pos
        data_offset = -(-infos_end // alignment) * alignment
        self._check_layout(tensors, alignment, data_offset)
        # Looking the BOS/EOS strings up re-reads a little of the vocabulary: a small extra budget.
        self.r.budget += TOKEN_LOOKUP_BYTES
        bos = self._token(fields, "tokenizer.ggml.bos_token_id")
        eos = self._token(fields, "tokenizer.ggml.eos_token_id")
        return GgufHeader(
            version=version,
            endian="big" if self.endian == ">" else "little",
            fields=fields,
            tensors=tuple(tensors),
            alignment=alignment,
            data_offset=data_offset,
            bos_token=bos,
            eos_token=eos,
            bytes_read=self.r.bytes_read,
        )

    def _string(self, limit: int, what: str, *, strict: bool = False) -> str:
        length = self.u64()
        if length > limit:
            raise MetadataError(f"GGUF {what} of {length} bytes is over the {limit}-byte limit")
        raw = self.r.take(length)
        try:
            return raw.decode("utf-8", "strict" if strict else "replace")
        except UnicodeDecodeError as exc:
            raise MetadataError(f"GGUF {what} is not valid UTF-8") from exc

    def _value(self, value_type: int, depth: int) -> Any:
        fmt = _SCALAR_FORMATS.get(value_type)
        if fmt is not None:
            return struct.unpack(self.endian + fmt, self.r.take(struct.calcsize("<" + fmt)))[0]
        if value_type == STRING:
            length = self.u64()
            if length > MAX_KEPT_STRING:
                offset = self.r.pos
                self.r.skip(length)
                return GgufLongString(length, offset)
            return self.r.take(length).decode("utf-8", "replace")
        if value_type == ARRAY:
            return self._array(depth)
        raise MetadataError(f"Unknown GGUF value type {value_type}")

    def _array(self, depth: int) -> Any:
        if depth >= MAX_ARRAY_DEPTH:
            raise MetadataError("GGUF arrays nested too deeply")
        element_type = self.u32()
        count = self.u64()
        offset = self.r.pos
        fmt = _SCALAR_FORMATS.get(element_type)
        element_size = struct.calcsize("<" + fmt) if fmt else 8  # strings and arrays: at least a u64 each
        if element_type not in _SCALAR_FORMATS and element_type not in (STRING, ARRAY):
            raise MetadataError(f"Unknown GGUF array element type {element_type}")
        if count * element_size > self.r.size - offset:
            raise MetadataError(f"GGUF array of {count} elements runs past the end of the file")
        if count <= MAX_KEPT_ARRAY and self._kept + count <= MAX_KEPT_VALUES:
            self._kept += count
            return [self._value(element_type, depth + 1) for _ in range(count)]
        if fmt is not None:
            self.r.skip(count * element_size)
            return GgufArray(element_type, count, offset)
        if count > MAX_ARRAY_LENGTH:
            raise MetadataError(f"GGUF array of {count} elements is over the {MAX_ARRAY_LENGTH} limit")
        if element_type == ARRAY:
            for _ in range(count):
                self._array(depth + 1)
            return GgufArray(element_type, count, offset)
        return GgufArray(element_type, count, offset, self._walk_strings(count))

    def _walk_strings(self, count: int) -> tuple[int, ...]:
        """Move past ``count`` strings, noting a checkpoint every CHECKPOINT_EVERY elements."""
        checkpoints: list[int] = []
        r, u64 = self.r, self._u64
        for i in range(count):
            if i % CHECKPOINT_EVERY == 0:
                checkpoints.append(r.pos)
            (length,) = u64.unpack(r.take(8))
            r.skip(length)
        return tuple(checkpoints)

    def _string_at(self, array: GgufArray, index: int) -> str:
        """Element ``index`` of a summarised string array, walking from its checkpoint."""
        back = self.r.pos
        self.r.seek(array.checkpoints[index // CHECKPOINT_EVERY])
        for _ in range(index % CHECKPOINT_EVERY):
            self.r.skip(self.u64())
        value = self._string(MAX_KEPT_STRING, "token")
        self.r.seek(back)
        return value

    def _token(self, fields: dict[str, Any], id_key: str) -> str | None:
        token_id = fields.get(id_key)
        tokens = fields.get("tokenizer.ggml.tokens")
        if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
            return None
        if isinstance(tokens, list) and token_id < len(tokens):
            token = tokens[token_id]
            return token if isinstance(token, str) else None
        if isinstance(tokens, GgufArray) and tokens.element_type == STRING and token_id < tokens.count:
            try:
                return self._string_at(tokens, token_id)
            except MetadataError:  # an absurd token: the header is still good without it
                return None
        return None

    def _alignment(self, fields: dict[str, Any]) -> int:
        value = fields.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0 or value > MAX_ALIGNMENT:
            raise MetadataError(f"Invalid general.alignment {value!r}")
        if value & (value - 1):
            raise MetadataError(f"general.alignment {value} is not a power of two")
        return value

    def _tensor_info(self) -> GgufTensor:
        name = self._string(MAX_TENSOR_NAME_LENGTH, "tensor name")
        n_dims = self.u32()
        if n_dims > MAX_DIMS:
            raise MetadataError(f"Tensor {name!r} has {n_dims} dimensions (at most {MAX_DIMS})")
        dims = tuple(self.u64() for _ in range(n_dims))
        tensor_type = self.u32()
        offset = self.u64()
        if tensor_type not in GGML_TYPES:
            raise MetadataError(f"Tensor {name!r} has unknown ggml type {tensor_type}")
        count = 1
        for dim in dims:
            count *= dim
        if count > _INT64_MAX:
            raise MetadataError(f"Tensor {name!r} has more elements than fit in 64 bits")
        block = GGML_TYPES[tensor_type][1]
        if dims and dims[0] % block:
            raise MetadataError(
                f"Tensor {name!r}: its first dimension {dims[0]} is not a multiple of the "
                f"{GGML_TYPES[tensor_type][0]} block size {block}"
            )
        return GgufTensor(name, dims, tensor_type, offset)

    def _check_layout(self, tensors: list[GgufTensor], alignment: int, data_offset: int) -> None:
        data_size = self.r.size - data_offset
        names: set[str] = set()
        previous_end, previous_name = 0, ""
        for tensor in sorted(tensors, key=lambda t: t.offset):
            if tensor.name in names:
                raise MetadataError(f"Duplicate tensor name {tensor.name!r}")
            names.add(tensor.name)
            if tensor.offset % alignment:
                raise MetadataError(f"Tensor {tensor.name!r}: offset {tensor.offset} is not aligned to {alignment}")
            if tensor.offset < previous_end:
                raise MetadataError(f"Tensor {tensor.name!r} overlaps tensor {previous_name!r}")
            end = tensor.offset + tensor.nbytes
            if end > data_size:
                raise MetadataError(f"Tensor {tensor.name!r}: its data lies past the end of the file")
            previous_end, previous_name = end, tensor.name
