"""safetensors headers: tensor dtypes, shapes and parameter counts, read without the weights.

A safetensors file is an unsigned little-endian 64-bit header length ``n``, ``n`` bytes of JSON
(tensor name -> ``{dtype, shape, data_offsets}``, plus an optional ``__metadata__`` of strings),
then the tensor bytes. ``data_offsets`` are relative to the end of the header; the tensors must
cover that byte buffer exactly, without gaps or overlaps. The checks below are the ones the
``safetensors`` library itself makes when it opens a file, so a header accepted here loads there.

Sharded models add ``model.safetensors.index.json`` (``weight_map``: tensor -> shard file, and
``metadata.total_size``); :func:`combine` adds the shards' counts into the Hub's
``{"parameters": {dtype: n}, "total": n}``.
"""

from __future__ import annotations

import json
import posixpath
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.metadata.reader import MetadataError, Read, read_exact

#: The client refuses larger headers (``huggingface_hub``: ``SAFETENSORS_MAX_HEADER_LENGTH``).
MAX_HEADER_LENGTH = 25_000_000
#: The first read also fetches this much of the header, so most files need a single read.
FIRST_READ = 64 * 1024
#: ``model.safetensors.index.json`` files larger than this are refused.
MAX_INDEX_LENGTH = 25_000_000
METADATA_KEY = "__metadata__"

#: Bits per element of every dtype the ``safetensors`` format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
_MIN_BITS = min(DTYPE_BITS.values())
_LENGTH = struct.Struct("<Q")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor entry of a header."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]

    @property
    def parameters(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: its tensors, ``__metadata__`` and per-dtype parameter counts."""

    header_length: int
    metadata: dict[str, str]
    tensors: dict[str, TensorInfo]
    parameters: dict[str, int]
    #: The header JSON as stored, for answers such as the ``safetensors-metadata`` endpoint.
    raw: dict[str, Any] = field(repr=False)

    @property
    def total(self) -> int:
        return sum(self.parameters.values())

    @property
    def data_size(self) -> int:
        """Bytes of tensor data after the header."""
        return max((info.data_offsets[1] for info in self.tensors.values()), default=0)

    def as_info(self) -> dict[str, Any]:
        """The ``safetensors`` field of ``model_info``."""
        return {"parameters": dict(self.parameters), "total": self.total}


@dataclass(frozen=True)
class SafetensorsIndex:
    """A validated ``model.safetensors.index.json``."""

    weight_map: dict[str, str]
    metadata: dict[str, Any]

    @property
    def shards(self) -> tuple[str, ...]:
        """Shard file names, relative to the index's folder, sorted and without duplicates."""
        return tuple(sorted(set(self.weight_map.values())))

    @property
    def total_size(self) -> int | None:
        value = self.metadata.get("total_size")
        return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_header(read: Read, size: int) -> SafetensorsHeader:
    """Read and validate the header of a safetensors file of ``size`` bytes.

    Reads the 8-byte length and the header only (one read for headers under 64 KiB), never the
    tensor data. Raises MetadataError for anything the ``safetensors`` library would refuse.
    """
    if size < _LENGTH.size:
        raise MetadataError(f"Not a safetensors file: {size} bytes is shorter than the 8-byte header length")
    first = read_exact(read, 0, min(size, FIRST_READ), size)
    (length,) = _LENGTH.unpack_from(first)
    if length > MAX_HEADER_LENGTH:
        raise MetadataError(f"safetensors header length {length} is over the {MAX_HEADER_LENGTH}-byte limit")
    if _LENGTH.size + length > size:
        raise MetadataError(f"safetensors header length {length} lies past the end of the file ({size} bytes)")
    end = _LENGTH.size + length
    if end <= len(first):
        raw_header = first[_LENGTH.size : end]
    else:
        raw_header = first[_LENGTH.size :] + read_exact(read, len(first), end - len(first), size)
    header = _decode_json(raw_header, "safetensors header")
    return _validate(header, length, size - end)


def _decode_json(data: bytes, what: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"The {what} is not valid UTF-8") from exc
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError as exc:
        raise MetadataError(f"The {what} is nested too deeply") from exc
    except (ValueError, _DuplicateKeyError) as exc:
        raise MetadataError(f"The {what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MetadataError(f"The {what} must be a JSON object")
    return value


class _DuplicateKeyError(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _validate(header: dict[str, Any], length: int, buffer_size: int) -> SafetensorsHeader:
    metadata: dict[str, str] = {}
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name == METADATA_KEY:
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise MetadataError("'__metadata__' must map strings to strings")
            metadata = dict(entry)
            continue
        tensors[name] = _tensor(name, entry, buffer_size)
    parameters: dict[str, int] = {}
    position = 0
    for info in sorted(tensors.values(), key=lambda t: t.data_offsets):
        begin, end = info.data_offsets
        if begin != position or end < begin:
            raise MetadataError(f"Tensor {info.name!r}: data_offsets {list(info.data_offsets)} leave a gap or overlap")
        position = end
        count = info.parameters
        bits = count * DTYPE_BITS[info.dtype]
        if bits % 8:
            raise MetadataError(f"Tensor {info.name!r}: {count} x {info.dtype} does not end on a byte boundary")
        if end - begin != bits // 8:
            raise MetadataError(
                f"Tensor {info.name!r}: data_offsets span {end - begin} bytes, "
                f"but {count} x {info.dtype} takes {bits // 8}"
            )
        parameters[info.dtype] = parameters.get(info.dtype, 0) + count
    if position != buffer_size:
        raise MetadataError(f"The tensors cover {position} bytes, but the file holds {buffer_size} after the header")
    return SafetensorsHeader(length, metadata, tensors, parameters, header)


def _tensor(name: str, entry: Any, buffer_size: int) -> TensorInfo:
    if not isinstance(entry, dict):
        raise MetadataError(f"Tensor {name!r}: the entry must be an object")
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise MetadataError(f"Tensor {name!r}: unknown dtype {dtype!r}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise MetadataError(f"Tensor {name!r}: the shape must be a list of non-negative integers")
    offsets = entry.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise MetadataError(f"Tensor {name!r}: data_offsets must be two non-negative integers")
    if offsets[1] > buffer_size:
        raise MetadataError(f"Tensor {name!r}: data_offsets {offsets} lie past the end of the file")
    # Multiply step by step and stop once the count cannot fit in the file: a shape of many
    # huge dimensions must not turn into an enormous integer.
    if 0 not in shape:
        count = 1
        for dim in shape:
            count *= dim
            if count > buffer_size * 8 // _MIN_BITS:
                raise MetadataError(f"Tensor {name!r}: shape {shape[:8]} is larger than the file")
    return TensorInfo(name, dtype, tuple(shape), (offsets[0], offsets[1]))


def parse_index(text: str | bytes) -> SafetensorsIndex:
    """Parse and validate ``model.safetensors.index.json``."""
    if len(text) > MAX_INDEX_LENGTH:
        raise MetadataError(f"safetensors index larger than {MAX_INDEX_LENGTH} bytes")
    data = _decode_json(text.encode("utf-8") if isinstance(text, str) else text, "safetensors index")
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise MetadataError("safetensors index: 'weight_map' must be a non-empty object")
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or not _is_relative_file(shard):
            raise MetadataError(f"safetensors index: tensor {tensor!r} maps to an invalid file {shard!r}")
    metadata = data.get("metadata", {})
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise MetadataError("safetensors index: 'metadata' must be an object")
    total_size = metadata.get("total_size")
    if total_size is not None and not _is_count(total_size):
        raise MetadataError("safetensors index: 'metadata.total_size' must be a non-negative integer")
    return SafetensorsIndex(dict(weight_map), dict(metadata))


def _is_relative_file(path: str) -> bool:
    if not path or path.startswith("/") or "\\" in path or "\x00" in path:
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def select_sources(paths: Iterable[str]) -> tuple[str | None, tuple[str, ...]]:
    """Which files make up a repo's ``safetensors`` field: ``(index path, single files)``.

    As the client's ``get_safetensors_metadata``: the root ``model.safetensors``, else the root
    ``model.safetensors.index.json`` (else another root index); failing both, every root-level
    ``*.safetensors`` (an adapter, a diffusers component saved at the root). Weights in
    subfolders and variants beside ``model.safetensors`` are not counted twice.
    """
    root = {p for p in paths if "/" not in p}
    if "model.safetensors" in root:
        return None, ("model.safetensors",)
    indexes = sorted(p for p in root if p.endswith(".safetensors.index.json"))
    if indexes:
        return ("model.safetensors.index.json" if "model.safetensors.index.json" in root else indexes[0]), ()
    return None, tuple(sorted(p for p in root if p.endswith(".safetensors")))


def shard_path(index_path: str, shard: str) -> str:
    """The repo path of ``shard`` named by the index at ``index_path`` (same folder)."""
    folder = posixpath.dirname(index_path)
    return posixpath.join(folder, shard) if folder else shard


OpenShard = Callable[[str], tuple[Read, int]]
"""``open_shard(file_name)`` returns a ``Read`` and the size of that shard (file names as in the
index); it raises MetadataError (or returns nothing useful) when the shard is missing."""


def parse_sharded(index: SafetensorsIndex, open_shard: OpenShard) -> dict[str, SafetensorsHeader]:
    """Read every shard's header and check it against the index's ``weight_map``.

    A tensor that the index places in a shard whose header lacks it is an error: ``transformers``
    would fail to load such a model.
    """
    headers: dict[str, SafetensorsHeader] = {}
    for shard in index.shards:
        read, size = open_shard(shard)
        try:
            headers[shard] = parse_header(read, size)
        except MetadataError as exc:
            raise MetadataError(f"Shard {shard!r}: {exc.message}") from exc
    for tensor, shard in index.weight_map.items():
        if tensor not in headers[shard].tensors:
            raise MetadataError(f"safetensors index places tensor {tensor!r} in {shard!r}, whose header lacks it")
    return headers


def combine(headers: Mapping[str, SafetensorsHeader]) -> dict[str, Any]:
    """Add per-shard counts into the ``safetensors`` field: ``{"parameters": {...}, "total": n}``."""
    parameters: dict[str, int] = {}
    for header in headers.values():
        for dtype, count in header.parameters.items():
            parameters[dtype] = parameters.get(dtype, 0) + count
    return {"parameters": parameters, "total": sum(parameters.values())}
