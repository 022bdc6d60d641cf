"""Which worker process of a ``modelyard serve --workers N`` serves a connection.

uvicorn's workers share one listening socket and the kernel hands each new connection to one of
them. A keep-alive connection then stays with that worker, so a client bound to its own loopback
source address (127.0.0.N) can be traced to the worker holding the server side of its socket:
/proc/net/tcp names the socket's inode, /proc/PID/fd shows which process holds it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.server import LiveServer


def _hex_address(address: str, port: int) -> str:
    """An IPv4 address and port as /proc/net/tcp writes them (the address in host byte order)."""
    return f"{socket.inet_aton(address)[::-1].hex().upper()}:{port:04X}"


def socket_inodes(local: str, remote_address: str) -> set[int]:
    """Inodes of the TCP sockets from ``local`` (hex address:port) to any port of ``remote_address``."""
    remote_prefix = socket.inet_aton(remote_address)[::-1].hex().upper() + ":"
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2].startswith(remote_prefix) and fields[3] == "01":  # ESTABLISHED
            found.add(int(fields[9]))
    return found


def holder_of(inodes: set[int], pids: list[int]) -> int | None:
    """The process among ``pids`` that holds one of the sockets ``inodes``."""
    wanted = {f"socket:[{inode}]" for inode in inodes if inode}
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) in wanted:
                    return pid
            except OSError:  # closed while we looked
                continue
    return None


class PinnedClient:
    """An httpx client with one keep-alive connection from its own source address, and the worker
    process that accepted that connection (every request of this client goes to that worker)."""

    def __init__(self, server: LiveServer, source: str) -> None:
        self.server = server
        self.source = source
        # One connection, kept alive: every request goes over it (``max_connections=1``).
        self.http = httpx.Client(
            base_url=server.url, timeout=60,
            transport=httpx.HTTPTransport(local_address=source, limits=httpx.Limits(max_connections=1)),
        )
        r = self.http.get("/api/whoami-v2")  # any request: the connection is accepted now
        assert r.status_code == 401
        inodes = socket_inodes(_hex_address("127.0.0.1", server.port), source)
        self.worker = holder_of(inodes, server.pids())

    def check(self) -> None:
        """The connection is still the one that worker accepted (no reconnect happened)."""
        inodes = socket_inodes(_hex_address("127.0.0.1", self.server.port), self.source)
        assert holder_of(inodes, self.server.pids()) == self.worker, "the pinned connection moved"

    def close(self) -> None:
        self.http.close()


@contextmanager
def one_client_per_worker(server: LiveServer, attempts: int = 250) -> Iterator[list[PinnedClient]]:
    """Open connections (from 127.0.0.2, 127.0.0.3, ...) until every worker holds one; yields one
    pinned client per worker. Bounded: fails after ``attempts`` connections."""
    workers = server.pids()
    chosen: dict[int, PinnedClient] = {}
    spare: list[PinnedClient] = []
    try:
        for n in range(attempts):
            client = PinnedClient(server, f"127.0.0.{2 + n}")
            if client.worker is not None and client.worker not in chosen:
                chosen[client.worker] = client
            else:
                spare.append(client)
            if len(chosen) == len(workers):
                break
        for client in spare:
            client.close()
        spare = []
        assert set(chosen) == set(workers), f"{attempts} connections reached only workers {sorted(chosen)} of {workers}"
        yield [chosen[pid] for pid in workers]
    finally:
        for client in [*spare, *chosen.values()]:
            client.close()
