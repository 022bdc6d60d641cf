"""nginx as a baseline static file server: its own config in a temp folder, on a loopback port."""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.server import free_port, wait_for_port

from bench.common import HOST, require_tool, workspace

CONFIG = """\
daemon off;
master_process on;
worker_processes auto;
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile {sendfile};
    tcp_nopush on;
    keepalive_timeout 30;
    default_type application/octet-stream;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen {host}:{port};
        root {root};
        {locations}
    }}
}}
"""


@contextmanager
def nginx(root: Path, sendfile: bool = True, locations: str = "location / { }") -> Iterator[str]:
    """Serve ``root`` with nginx (one worker per core); yields its base URL.

    ``locations`` replaces the default ``location / { }`` (e.g. to add response headers).

    ``sendfile on`` is what Debian's packaged config sets; ``off`` is nginx's compiled-in default.
    """
    binary = require_tool("nginx", "nginx")
    folder = workspace() / f"nginx-{'sendfile' if sendfile else 'buffered'}"
    folder.mkdir(exist_ok=True)
    port = free_port()
    # As root, nginx would drop its workers to 'nobody', who cannot read our 0700 workspace.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};" if os.geteuid() == 0 else ""
    conf = folder / "nginx.conf"
    conf.write_text(CONFIG.format(user=user, dir=folder, host=HOST, port=port, root=root,
                                   sendfile='on' if sendfile else 'off', locations=locations))
    log = open(folder / "stderr.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(conf), "-e", str(folder / "error.log")],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for_port(proc, port, "nginx", timeout=20)  # on HOST, 127.0.0.1
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {(folder / 'error.log').read_text(errors='replace')}") from None
        yield f"http://{HOST}:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
