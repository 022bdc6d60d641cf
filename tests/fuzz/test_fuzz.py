"""A short coverage-guided fuzzing run (atheris) of every parser that reads uploaded bytes.

Each target of ``harnesses.py`` starts from its seed corpus (``corpus/<target>/``, kept in the
repo) and runs for ``FUZZ_SECONDS`` in a process of its own; a crash, an escaping exception, a
hang past 20 s or more than 3 GB of memory fails the test with the input that did it (add it to
the corpus once fixed). Longer runs: ``python -m tests.fuzz.run TARGET DIR SECONDS ARTIFACTS``.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.harnesses import TARGETS

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).parent / "corpus"
FUZZ_SECONDS = 8


@pytest.mark.timeout(180)
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_fuzz(target: str, tmp_path: Path) -> None:
    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    shutil.copytree(CORPUS / target, corpus)  # the run adds inputs here, not to the repo's corpus
    artifacts.mkdir()
    run = subprocess.run(
        [sys.executable, "-m", "tests.fuzz.run", target, str(corpus), str(FUZZ_SECONDS), str(artifacts)],
        cwd=ROOT, capture_output=True, text=True, timeout=150,
    )
    found = sorted(artifacts.iterdir())
    detail = "\n".join(f"{p.name}: {base64.b64encode(p.read_bytes()[:4096]).decode()}" for p in found)
    assert run.returncode == 0 and not found, f"{target}: exit {run.returncode}\n{run.stderr[-3000:]}\n{detail}"
    executed = [line for line in run.stderr.splitlines() if "stat::number_of_executed_units" in line]
    assert executed and int(executed[-1].split(":")[-1]) > 100, run.stderr[-2000:]  # it really ran
