"""Run a client script in a subprocess with a given environment and parse its JSON result."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def run_client(script: str, args: list[str], env: dict[str, str], timeout: float = 600) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE / script), *args], env=env, capture_output=True, text=True, timeout=timeout,
    )
    if proc.returncode != 0:
        raise AssertionError(f"{script} {args} failed ({proc.returncode}):\n{proc.stderr[-5000:]}")
    last = proc.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
    return result
