"""Threads for long work that must not slow down request handling.

Long upload work (concatenating multipart parts, checking xorbs and shards, reading a file back
to verify its sha256) and background jobs run in threads of their own at a lower CPU priority:
the kernel then gives the event loop and the request threads the cores first, and request
latency does not depend on what else is uploading (``bench/bench_head_under_load.py``).
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

#: Niceness added to long-work threads (Linux schedules threads by their own nice value).
LONG_WORK_NICE = 10
_lowered = threading.local()


def lower_priority() -> None:
    """Lower the calling thread's CPU priority, once (a no-op where threads cannot be reniced)."""
    if getattr(_lowered, "done", False):
        return
    _lowered.done = True
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + LONG_WORK_NICE)


def long_work_executor(threads: int, name: str) -> ThreadPoolExecutor:
    """A pool of ``threads`` threads at the lower priority."""
    return ThreadPoolExecutor(max(1, threads), thread_name_prefix=name, initializer=lower_priority)
