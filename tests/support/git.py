"""The real ``git`` and ``git-lfs`` against a live hub, and raw receive-pack requests for the
inputs a real client never sends (built with dulwich, then damaged as each test needs)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import subprocess
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import ShaFile
from dulwich.pack import write_pack_objects

from tests.support.server import TOKENS, LiveServer

ZERO = "0" * 40


@dataclass
class Git:
    """git with a HOME of its own (identity, git-lfs filters), never prompting."""

    home: Path

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.run("config", "--global", "user.name", "Git Tester")
        self.run("config", "--global", "user.email", "tester@example.com")
        self.run("config", "--global", "init.defaultBranch", "main")
        self.run("lfs", "install")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "HF_"))}
        env.update({"HOME": str(self.home), "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
                    "GCM_INTERACTIVE": "never"})
        env.update(extra)
        return env

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, **env: str,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["git", *args], cwd=cwd, env=self.env(**env), capture_output=True, text=True,
                              timeout=600)
        if check and proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def out(self, *args: str, cwd: Path | None = None) -> str:
        return self.run(*args, cwd=cwd).stdout.strip()


def remote(server: LiveServer, repo_id: str, user: str | None = "alice", prefix: str = "") -> str:
    """The clone URL of a repo, with ``user``'s token as the password (None: anonymous)."""
    base = server.url
    if user is not None:
        base = base.replace("http://", f"http://{user}:{TOKENS[user]}@")
    return f"{base}/{prefix}{repo_id}"


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but ``.git``, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and ".git" not in p.relative_to(root).parts}


# -- raw protocol ---------------------------------------------------------------------------------


def pkt(line: bytes | None) -> bytes:
    return b"0000" if line is None else f"{len(line) + 4:04x}".encode() + line


def make_pack(objects: Sequence[ShaFile]) -> bytes:
    out = io.BytesIO()
    write_pack_objects(out.write, [(o, None) for o in objects], object_format=DEFAULT_OBJECT_FORMAT)
    return out.getvalue()


def pack_header(count: int) -> bytes:
    return b"PACK" + (2).to_bytes(4, "big") + count.to_bytes(4, "big")


def object_header(type_num: int, size: int) -> bytes:
    """A pack object's header: type and inflated size, git's variable-length encoding."""
    out = bytearray()
    byte = (type_num << 4) | (size & 15)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte, size = size & 0x7F, size >> 7
    out.append(byte)
    return bytes(out)


def finish_pack(body: bytes) -> bytes:
    """``body`` (header and objects) with the trailing SHA-1 a pack ends with."""
    return body + hashlib.sha1(body).digest()


def deflate(data: bytes) -> bytes:
    return zlib.compress(data, 9)


@dataclass
class PushReport:
    status: int
    unpack: str | None
    refs: dict[str, str]  # ref -> "ok" or the reason it was refused
    text: str


def raw_push(server: LiveServer, repo_id: str, commands: Sequence[tuple[str, str, str]], pack: bytes = b"",
             user: str = "alice", caps: bytes = b"report-status", body: bytes | None = None) -> PushReport:
    """A ``git-receive-pack`` request as the client sends it (``body`` replaces the whole body)."""
    if body is None:
        lines = [pkt(f"{old} {new} {ref}".encode() + (b"\0" + caps if i == 0 else b"") + b"\n")
                 for i, (old, new, ref) in enumerate(commands)]
        body = b"".join(lines) + pkt(None) + pack
    auth = base64.b64encode(f"{user}:{TOKENS[user]}".encode()).decode()
    response = httpx.post(f"{server.url}/{repo_id}/git-receive-pack", content=body, timeout=120, headers={
        "Content-Type": "application/x-git-receive-pack-request", "Authorization": f"Basic {auth}"})
    unpack, refs = None, {}
    data = response.content
    if response.status_code == 200:
        for line in _pkt_lines(data):
            text = line.decode("utf-8", "replace").rstrip("\n")
            if text.startswith("unpack "):
                unpack = text[7:]
            elif text.startswith("ok "):
                refs[text[3:]] = "ok"
            elif text.startswith("ng "):
                ref, _, reason = text[3:].partition(" ")
                refs[ref] = reason
    return PushReport(response.status_code, unpack, refs, data.decode("utf-8", "replace"))


def _pkt_lines(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at + 4 <= len(data):
        size = int(data[at:at + 4], 16)
        if size == 0:
            at += 4
            continue
        out.append(data[at + 4:at + size])
        at += size
    return out
