"""The scanner's sandbox against files crafted to crash, hang or exhaust it.

The real ``Scanner`` of ``services/scans.py`` with its real child process; the hub it is given
carries only settings (the sandbox reads nothing else). Each hostile file ends as a clear
result (``error`` with the reason, or the verdict), costs the child at most its limits, and the
next scan works.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import time
import zipfile
from types import SimpleNamespace
from typing import Any

import pytest

from modelyard.config import Settings
from modelyard.metadata.reader import bytes_reader
from modelyard.services.scans import Scanner

MiB = 1024 * 1024


class Evil:
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return os.system, ("id",)


@pytest.fixture
def scanner(tmp_path: Any) -> Any:
    settings = Settings(data_dir=tmp_path, scan_timeout=30.0, scan_read_budget=32 * MiB)
    made = Scanner(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    yield made
    made.close()


def scan(scanner: Scanner, data: bytes, kind: str, path: str) -> tuple[str, dict[str, Any]]:
    return scanner.scan(bytes_reader(data), len(data), kind, path)


def still_works(scanner: Scanner) -> None:
    status, report = scan(scanner, pickle.dumps(Evil(), protocol=4), "pickle", "x.pkl")
    assert status == "unsafe" and report["imports"][0]["name"] == "system"


def test_a_pickle_that_never_ends_is_stopped_by_its_limits(tmp_path: Any) -> None:
    # 30 MB of MEMOIZE: every opcode becomes a tuple in picklescan's list (gigabytes). picklescan
    # catches the MemoryError the address-space limit raises and parses on from where it was, so
    # what ends the scan is the time limit (or the child dying): either way an error, in bounds.
    settings = Settings(data_dir=tmp_path, scan_timeout=6.0, scan_memory=256 * MiB)
    bounded = Scanner(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    try:
        bomb = b"\x80\x04" + b"\x94" * (30 * MiB)
        started = time.monotonic()
        status, report = scan(bounded, bomb, "pickle", "memo.pkl")
        assert status == "error", report
        assert any(reason in report["messages"][0] for reason in ("memory", "died", "longer than 6 s")), report
        assert time.monotonic() - started < 8
        still_works(bounded)
    finally:
        bounded.close()


def test_reading_past_the_budget_is_stopped(scanner: Scanner) -> None:
    big = pickle.dumps(b"x" * (40 * MiB), protocol=4)  # one 40 MB string: read whole
    status, report = scan(scanner, big, "pickle", "big.pkl")
    assert status == "error" and "more than" in report["messages"][0]
    still_works(scanner)


def test_slow_reads_end_in_a_timeout(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, scan_timeout=1.0)
    slow_scanner = Scanner(SimpleNamespace(settings=settings))  # type: ignore[arg-type]
    data = pickle.dumps(Evil(), protocol=4)

    def slow(offset: int, length: int) -> bytes:
        time.sleep(3)
        return data[offset : offset + length]

    try:
        started = time.monotonic()
        status, report = slow_scanner.scan(slow, len(data), "pickle", "slow.pkl")
        assert status == "error" and "longer than 1 s" in report["messages"][0]
        assert time.monotonic() - started < 3.5
        still_works(slow_scanner)
    finally:
        slow_scanner.close()


def test_deep_nesting_and_truncation_get_a_verdict(scanner: Scanner) -> None:
    deep = b"\x80\x04" + b"(" * 200_000 + b"c" + b"os\nsystem\n" + b")" * 10
    status, report = scan(scanner, deep, "pickle", "deep.pkl")
    assert status == "unsafe" and {"module": "os", "name": "system", "safety": "dangerous"} in report["imports"]

    whole = io.BytesIO()
    with zipfile.ZipFile(whole, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps(Evil(), protocol=2))
        archive.writestr("archive/data/0", b"\0" * 4096)
    truncated = whole.getvalue()[: len(whole.getvalue()) // 2]
    status, report = scan(scanner, truncated, "zip", "model.bin")
    assert status == "error" and "BadZipFile" in report["messages"][0]
    truncated_pickle = pickle.dumps([Evil(), "x" * 100], protocol=4)[:-20]
    status, report = scan(scanner, truncated_pickle, "pickle", "cut.pkl")
    assert status == "unsafe" and "malformed" in " ".join(report["messages"])
    still_works(scanner)


def test_a_zip_bomb_is_not_inflated(scanner: Scanner) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * (512 * MiB))  # ~0.5 MB compressed
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w", compression=zipfile.ZIP_DEFLATED) as nested:
            nested.writestr("data.pkl", pickle.dumps(Evil(), protocol=2))
        archive.writestr("inner.zip", inner.getvalue())
    assert len(bomb.getvalue()) < 2 * MiB
    started = time.monotonic()
    status, report = scan(scanner, bomb.getvalue(), "zip", "bomb.zip")
    assert time.monotonic() - started < 5
    assert status == "unsafe" and ("posix", "system") in {(i["module"], i["name"]) for i in report["imports"]}


def test_headers_that_disagree_with_their_files_are_flagged(scanner: Scanner) -> None:
    header = b'{"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}'
    good = struct.pack("<Q", len(header)) + header + b"\0" * 64
    assert scan(scanner, good, "safetensors", "model.safetensors") == (
        "safe", {"status": "safe", "imports": [], "messages": [], "codeLayers": [], "kind": "safetensors"})
    short = struct.pack("<Q", len(header)) + header + b"\0" * 60
    status, report = scan(scanner, short, "safetensors", "model.safetensors")
    assert status == "caution" and "inconsistent safetensors header" in report["messages"][0]
    status, report = scan(scanner, b"GGUF\x03\x00\x00\x00" + b"\xff" * 24, "gguf", "m.gguf")
    assert status == "caution" and "gguf header" in report["messages"][0]
