"""The ``Range`` header: the one parser for downloads, Xet reconstructions and xorb URLs."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelyard.errors import InvalidInputError, RangeNotSatisfiableError

#: At most 18 digits a bound: larger values fit no file and would only cost big-int parsing.
_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})\Z")


@dataclass(frozen=True)
class ByteRange:
    """``bytes=first-last``: ``last`` inclusive, None to the end; ``first`` None is a suffix range
    (the last ``last`` bytes)."""

    first: int | None
    last: int | None

    def window(self, size: int) -> tuple[int, int]:
        """``[start, end)`` within a ``size``-byte file, as RFC 9110 clamps it; 416 when it
        selects nothing."""
        if self.first is None:
            assert self.last is not None
            if self.last == 0 or size == 0:
                raise RangeNotSatisfiableError("Requested range not satisfiable", size)
            return max(0, size - self.last), size
        end = size if self.last is None else min(self.last + 1, size)
        if self.first >= size or end <= self.first:
            raise RangeNotSatisfiableError("Requested range not satisfiable", size)
        return self.first, end


def parse_range(header: str | None) -> ByteRange | None:
    """The single byte range a header asks for; None for no header, or one a server may ignore
    and answer with the whole file (another unit, several ranges). InvalidInputError if it is a
    malformed single ``bytes`` range."""
    if not header:
        return None
    value = header.strip()
    m = _RANGE.match(value)
    if m is None:
        unit, _, spec = value.partition("=")
        if unit.strip().lower() != "bytes" or "," in spec:
            return None
        raise InvalidInputError(f"Malformed Range header {header[:100]!r}")
    first, last = m.group(1), m.group(2)
    if first == "" and last == "":
        raise InvalidInputError(f"Malformed Range header {header[:100]!r}")
    return ByteRange(int(first) if first else None, int(last) if last else None)
