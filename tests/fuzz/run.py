"""``python -m tests.fuzz.run TARGET CORPUS SECONDS ARTIFACTS``: coverage-guided fuzzing (atheris)
of one target, starting from (and adding to) the corpus folder given, for a bounded time."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["modelyard", "picklescan", "modelscan"]):
    from tests.fuzz.harnesses import TARGETS


def main() -> None:
    target, corpus, seconds, artifacts = sys.argv[1:5]
    atheris.Setup([sys.argv[0], corpus, f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=3072",
                   "-max_len=65536", f"-artifact_prefix={artifacts}/", "-print_final_stats=1"], TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
