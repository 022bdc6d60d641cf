"""Secrets at rest: the signing key and the permissions of the data folder.

The HMAC key that signs upload URLs and Xet tokens lives outside the database (anyone who can
read a database dump could otherwise forge URLs): from ``MODELYARD_SIGNING_KEY``, or a file only
the server's user can read (``<data_dir>/signing.key`` by default). Servers that share one
database must be given the same key (the variable or a copy of the file).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy import delete, select

from modelyard.catalog.database import Database
from modelyard.catalog.tables import server_secrets
from modelyard.config import Settings
from modelyard.errors import InvalidInputError

log = logging.getLogger("modelyard.keys")
MIN_KEY_BYTES = 32
_LEGACY_ROW = "signing_key"  # where versions before 0004 kept the key


def _parse(value: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(value.strip())
    except ValueError as exc:
        raise InvalidInputError(f"The signing key in {where} is not hex") from exc
    if len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(f"The signing key in {where} must be at least {MIN_KEY_BYTES} bytes (64 hex digits)")
    return key


def load_signing_key(settings: Settings, db: Database) -> bytes:
    """The configured key, else the key file (created on first use, or moved out of the database)."""
    if settings.signing_key is not None:
        return _parse(settings.signing_key.get_secret_value(), "MODELYARD_SIGNING_KEY")
    path = settings.resolved_signing_key_file()
    if not path.exists():
        with db.write() as conn:
            legacy = conn.execute(select(server_secrets.c.value).where(server_secrets.c.name == _LEGACY_ROW)).first()
            value = legacy.value if legacy is not None else secrets.token_hex(MIN_KEY_BYTES)
            _create_private_file(path, value)
            conn.execute(delete(server_secrets).where(server_secrets.c.name == _LEGACY_ROW))
    _restrict(path, 0o600)
    return _parse(path.read_text(), str(path))


def _create_private_file(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` readable by this user only, unless another process did first."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # a concurrent server created it first
            os.link(tmp, path)  # atomic: the file appears whole or not at all
    finally:
        tmp.unlink(missing_ok=True)


def _restrict(path: Path, mode: int) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & ~mode:
        path.chmod(stat.S_IMODE(st.st_mode) & mode)


def secure_data_dir(settings: Settings) -> None:
    """Make the data folder, the SQLite files and the blob folder private to the server's user.

    New files are already private (the CLI sets umask 077); this also tightens what an older
    version created with the default umask.
    """
    data = settings.data_dir
    if data.exists():
        _restrict(data, 0o700)
        for name in ("modelyard.db", "modelyard.db-wal", "modelyard.db-shm"):
            _restrict(data / name, 0o600)
        _restrict(data / "blobs", 0o700)
