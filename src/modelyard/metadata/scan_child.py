"""The scanner's sandbox: a child process that scans the files its parent hands it, one at a time.

``python -m modelyard.metadata.scan_child MEMORY_BYTES`` limits its own address space first, then
loops: a request line (JSON: kind, path, size) on standard input; while scanning, each range the
scanners want is asked of the parent (a ``{"read": [offset, length]}`` line on standard output,
answered on standard input by an 8-byte big-endian length and the bytes); at the end a
``{"report": ...}`` or ``{"error": ...}`` line. The child never opens a file, a database or a
socket: what it reads is what the parent chose to send, and the parent kills it when it runs out
of time or asks for more bytes than the file's budget (``services/scans.py``).
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
from typing import IO, Any

from modelyard.metadata.reader import Read

LENGTH_BYTES = 8
BUFFER = 64 * 1024  # a seek drops the buffer: small, as zip members are opened one by one


def parent_reader(requests: IO[bytes], replies: IO[bytes]) -> Read:
    """A ``Read`` whose bytes come from the parent, a range at a time."""

    def read(offset: int, length: int) -> bytes:
        requests.write(json.dumps({"read": [offset, length]}).encode() + b"\n")
        requests.flush()
        header = replies.read(LENGTH_BYTES)
        got = int.from_bytes(header, "big") if len(header) == LENGTH_BYTES else -1
        if got < 0 or got > length:
            raise OSError("the parent did not answer a read")
        data = replies.read(got)
        if len(data) != got:
            raise OSError("the parent's answer was cut short")
        return data

    return read


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    sys.setrecursionlimit(5000)
    from modelyard.metadata.reader import RangeFile
    from modelyard.metadata.scanner import scan

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    for line in stdin:
        request = json.loads(line)
        stream = io.BufferedReader(RangeFile(parent_reader(stdout, stdin), int(request["size"])), BUFFER)
        answer: dict[str, Any]
        try:
            answer = {"report": scan(stream, int(request["size"]), request["kind"], request["path"]).as_dict()}
        except MemoryError:
            answer = {"error": "the scan needed more memory than the scanner may use"}
        except RecursionError:
            answer = {"error": "the file is nested too deeply to scan"}
        except Exception as exc:  # any failure of a scanner on hostile bytes is that file's result
            answer = {"error": f"the scanner failed: {type(exc).__name__}: {str(exc)[:300]}"}
        stdout.write(json.dumps(answer).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
