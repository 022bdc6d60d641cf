"""The ASGI application: a router over the *raw* path, so that ``%2F`` stays inside segments."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelyard.config import Settings
from modelyard.errors import HubError, NotFoundError
from modelyard.http.errors import error_response
from modelyard.services.auth import Principal, authenticate
from modelyard.services.hub import Hub

log = logging.getLogger("modelyard.http")
T = TypeVar("T")

Handler = Callable[..., Awaitable[Response]]


@dataclass
class Ctx:
    """Per-request context handed to every handler."""

    hub: Hub
    request: Request
    params: dict[str, str]

    @property
    def token(self) -> str | None:
        auth = self.request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if scheme.lower() == "basic" and value.strip():  # git: any user name, the token as password
            import base64

            try:
                decoded = base64.b64decode(value.strip()).decode()
            except ValueError:
                return None
            return decoded.partition(":")[2] or None
        return None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Authenticate and run a service call in the thread pool (one hop per request)."""
        token = self.token

        def run() -> T:
            principal = authenticate(self.hub, token)
            return fn(self.hub, principal, *args, **kwargs)

        return await run_in_threadpool(run)

    async def principal(self) -> Principal | None:
        return await run_in_threadpool(authenticate, self.hub, self.token)

    def base_url(self) -> str:
        settings = self.hub.settings
        if settings.public_url:
            return settings.public_url.rstrip("/")
        headers = self.request.headers
        scheme = self.request.url.scheme
        host = headers.get("host") or f"{settings.host}:{settings.port}"
        if settings.trust_proxy_headers:
            scheme = headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
            host = headers.get("x-forwarded-host", host).split(",")[0].strip()
        root = self.request.scope.get("root_path", "")
        return f"{scheme}://{host}{root}"


class Router:
    """Routes matched against the undecoded path; each named group is percent-decoded."""

    def __init__(self) -> None:
        self._routes: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        self._routes.append((frozenset(methods.split()), re.compile(f"^{pattern}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None | bool:
        """A handler and its params; False if the path matches with another method; else None."""
        other_method = False
        for methods, regex, handler in self._routes:
            m = regex.match(path)
            if m is None:
                continue
            if method not in methods and not (method == "HEAD" and "GET" in methods):
                other_method = True
                continue
            params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
            return handler, params
        return False if other_method else None


class App:
    """The modelyard ASGI app."""

    def __init__(self, hub: Hub) -> None:
        from modelyard.http.routes import register

        self.hub = hub
        self.router = Router()
        register(self.router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        head = request.method == "HEAD"
        host = request.headers.get("host", "")
        if host.startswith("datasets-server."):
            response = error_response(NotFoundError("No datasets-server here"), head)
            await response(scope, receive, send)
            return
        found = self.router.match(request.method, path)
        try:
            if found is None:
                raise NotFoundError(f"Not found: {request.method} {path}")
            if found is False:
                response = Response(
                    b'{"error":"Method not allowed"}', status_code=405, media_type="application/json",
                    headers={"X-Error-Message": "Method not allowed"},
                )
            else:
                handler, params = found  # type: ignore[misc]
                response = await handler(Ctx(self.hub, request, params))
        except HubError as exc:
            response = error_response(exc, head)
        except ClientDisconnect:
            return
        except Exception:
            log.exception("unhandled error on %s %s", request.method, path)
            response = Response(
                b'{"error":"Internal server error"}', status_code=500, media_type="application/json",
                headers={"X-Error-Message": "Internal server error"},
            )
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Few threads: service calls are short, and dozens of threads contending for the
                # GIL cost more in switching than they gain in overlap.
                import anyio.to_thread

                anyio.to_thread.current_default_thread_limiter().total_tokens = self.hub.settings.threads
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.hub.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(settings: Settings) -> App:
    return App(Hub(settings))


def create_app_from_env() -> App:
    """Factory for uvicorn workers: each worker process builds its own Hub from the env."""
    return create_app(Settings())
