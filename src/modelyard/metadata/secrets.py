"""Secrets in committed text: tokens and keys with a recognisable shape, never echoed back.

A fixed list of credential formats whose shape is specific enough to mean what it says (a
prefix and a length, or a PEM header), matched in one pass over the text. Entropy detectors
(detect-secrets' ``HexHighEntropyString`` and the like) are left out on purpose: model repos are
full of hex digests (LFS pointers, config hashes, tokenizer merges) that they would flag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: (name shown to the committer, pattern). Each pattern is anchored on a literal prefix, so the
#: whole scan is one linear pass.
PATTERNS: tuple[tuple[str, str], ...] = (
    ("a Hugging Face token", r"\bhf_[A-Za-z0-9]{34,}"),
    ("an AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
    ("an AWS secret access key", r"(?i:aws_secret_access_key)\s*[=:]\s*[\"']?[A-Za-z0-9/+=]{40}\b"),
    ("a GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{60,})"),
    ("a GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("a Google API key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("a Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("an OpenAI API key", r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{40,}"),
    ("an Anthropic API key", r"\bsk-ant-[A-Za-z0-9_-]{40,}"),
    ("a Stripe secret key", r"\b[sr]k_live_[0-9A-Za-z]{24,}"),
    ("a private key", r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY(?: BLOCK)?-----"),
)
_COMBINED = re.compile("|".join(f"(?P<p{i}>{pattern})" for i, (_name, pattern) in enumerate(PATTERNS)))
#: Only the first findings of a file are reported.
MAX_FINDINGS = 20


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def describe(self) -> str:
        return f"{self.path} line {self.line}: {self.what}"


def find_secrets(path: str, content: bytes) -> list[Finding]:
    """The secrets in one file's text (nothing for a file that is not UTF-8 text)."""
    if b"\x00" in content[:8192]:
        return []
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return []
    found: list[Finding] = []
    for match in _COMBINED.finditer(text):
        index = int((match.lastgroup or "p0")[1:])
        found.append(Finding(path, text.count("\n", 0, match.start()) + 1, PATTERNS[index][0]))
        if len(found) >= MAX_FINDINGS:
            break
    return found
