"""Several ``modelyard serve`` processes behind nginx, sharing one PostgreSQL database, one S3
bucket (moto's server, reached by clients through the signature-checking gateway) and one
signing key: what a team runs when one process is not enough.

nginx (Debian's) balances round robin with one worker process, so consecutive requests go to
consecutive servers; its access log names the server that answered each request
(``$upstream_addr``), which is how the tests prove a flow crossed servers.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.s3 import AWS_ENV, MotoServer
from tests.support.s3_gateway import Gateway
from tests.support.server import LiveServer, free_port, postgres_database, wait_for_port

NGINX = """\
daemon off;
master_process on;
worker_processes 1;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format lb '$upstream_addr $status $request_method $request_uri';
    access_log {dir}/access.log lb;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream hub {{
{servers}
        keepalive 64;  # reuse connections to the servers (below their 30 s idle timeout)
        keepalive_timeout 20s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;
        location / {{
            proxy_pass http://hub;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_request_buffering off;
            proxy_buffering off;
            proxy_read_timeout 600s;
            proxy_send_timeout 600s;
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}
}}
"""


@dataclass
class Cluster:
    url: str
    servers: list[LiveServer]
    folder: Path
    gateway: Gateway  # the store's front door: presigned URLs name it

    def upstream(self, server: LiveServer) -> str:
        return f"127.0.0.1:{server.port}"

    def mark(self) -> int:
        """The number of balancer log lines so far (a flow's lines are those after it)."""
        return len(self._lines())

    def served_since(self, mark: int) -> list[tuple[str, int, str, str]]:
        """(server, status, method, URI) of each request the balancer passed on since ``mark``:
        the server that answered (nginx logs ``a, b`` when it tried ``a`` first and then ``b``).

        nginx logs a request when it has finished with it, which can be just after the client
        has its answer: the log is read once it has not grown for half a second."""
        lines, quiet_since, deadline = self._lines(), time.monotonic(), time.monotonic() + 10
        while time.monotonic() - quiet_since < 0.5 and time.monotonic() < deadline:
            time.sleep(0.05)
            now = self._lines()
            if len(now) != len(lines):
                lines, quiet_since = now, time.monotonic()
        out = []
        for line in lines[mark:]:
            upstream, status, method, uri = line.rsplit(" ", 3)
            out.append((upstream.split(", ")[-1], int(status), method, uri))
        return out

    def _lines(self) -> list[str]:
        path = self.folder / "access.log"
        return path.read_text().splitlines() if path.exists() else []


def _nginx(folder: Path, ports: list[int], port: int) -> subprocess.Popen[bytes]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=0;" for p in ports)
    conf = folder / "nginx.conf"
    conf.write_text(NGINX.format(user=user, dir=folder, servers=servers, port=port))
    proc = subprocess.Popen([binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(proc, port, "nginx", timeout=20)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"nginx did not start: {(folder / 'error.log').read_text(errors='replace')}") from None
    return proc


@contextmanager
def cluster(folder: Path, moto: MotoServer, gateway: Gateway, size: int = 3,
            extra_env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """``size`` servers on a new PostgreSQL database and bucket, behind nginx."""
    bucket = moto.new_bucket()
    env = {
        "MODELYARD_STORAGE_URL": f"s3://{bucket}/hub",
        "MODELYARD_S3_ENDPOINT_URL": moto.url,
        "MODELYARD_S3_PUBLIC_ENDPOINT_URL": gateway.url,
        "MODELYARD_SIGNING_KEY": secrets.token_hex(32),
        "MODELYARD_WORKERS": "1",
        **AWS_ENV,
        **(extra_env or {}),
    }
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database())
        servers = [LiveServer(folder / f"server-{i}", url, "postgresql", extra_env=dict(env)) for i in range(size)]
        for server in servers:
            server.data_dir.mkdir(parents=True, exist_ok=True)
        servers[0].prepare()  # migrate and seed once: the others share the database
        for server in servers:
            server.start()
            stack.callback(server.stop)
        lb_folder = folder / "nginx"
        lb_folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        proc = _nginx(lb_folder, [s.port for s in servers], port)
        try:
            lb = Cluster(f"http://127.0.0.1:{port}", servers, lb_folder, gateway)
            httpx.get(f"{lb.url}/healthz", timeout=10).raise_for_status()
            yield lb
        finally:
            proc.terminate()
            proc.wait(10)
