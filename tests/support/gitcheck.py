"""What real git says about ignored paths: the reference the ``.gitignore`` tests compare with."""

from __future__ import annotations

import subprocess
from pathlib import Path


def git_ignored(tmp: Path, gitignore: str, paths: list[str]) -> set[str]:
    """The paths ``git check-ignore`` reports for a root ``gitignore``, in a fresh work tree under
    ``tmp`` where each path is created as a file (so git sees which components are folders)."""
    work = tmp / "work"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / ".gitignore").write_bytes(gitignore.encode("utf-8"))
    for path in paths:
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    proc = subprocess.run(
        ["git", "-c", "core.ignorecase=false", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=work, input=b"".join(p.encode("utf-8") + b"\0" for p in paths), capture_output=True,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return {p.decode("utf-8") for p in proc.stdout.split(b"\0") if p}
