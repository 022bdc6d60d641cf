"""The ASGI application: a router over the *raw* path, so that ``%2F`` stays inside segments."""

from __future__ import annotations

import asyncio
import base64
import contextvars
import functools
import gc
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote

import anyio.to_thread
from anyio import CapacityLimiter
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from modelyard.config import Settings
from modelyard.errors import HubError, InvalidInputError, NotFoundError, RateLimitedError
from modelyard.http.errors import MethodNotAllowedError, error_response
from modelyard.http.metrics import UPLOAD_ROUTES, Metrics, route_name
from modelyard.http.request_ids import configure_logging, log_request, loggable_path, request_id
from modelyard.services.audit import ADDRESS
from modelyard.services.auth import Principal, authenticate
from modelyard.services.hub import Hub
from modelyard.services.pools import long_work_executor
from modelyard.services.ratelimit import RateLimiter, client_address, key_for

log = logging.getLogger("modelyard.http")

T = TypeVar("T")

Handler = Callable[..., Awaitable[Response]]


_UNSET: Any = object()


@dataclass
class Ctx:
    """Per-request context handed to every handler."""

    hub: Hub
    request: Request
    params: dict[str, str]
    app: App | None = None
    #: The route's match against the raw path (where the repo id sits in it, for redirects).
    match: re.Match[str] | None = None
    _principal: Any = field(default=_UNSET, repr=False)

    @property
    def token(self) -> str | None:
        auth = self.request.headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        if scheme.lower() == "basic" and value.strip():  # git: any user name, the token as password
            try:
                decoded = base64.b64decode(value.strip()).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            return decoded.partition(":")[2] or None
        return None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Authenticate (once per request) and run a service call in the thread pool: one hop."""
        if self._principal is not _UNSET:
            return await run_in_threadpool(fn, self.hub, self._principal, *args, **kwargs)
        token = self.token

        def run() -> T:
            principal = authenticate(self.hub, token)
            self._principal = principal
            return fn(self.hub, principal, *args, **kwargs)

        return await run_in_threadpool(run)

    async def principal(self) -> Principal | None:
        if self._principal is _UNSET:
            self._principal = await run_in_threadpool(authenticate, self.hub, self.token)
        principal: Principal | None = self._principal
        return principal

    async def heavy(self, fn: Callable[..., T], *args: Any) -> T:
        """Run CPU-heavy work (parsing large bodies) in the small pool kept for it, so that it
        can neither block the event loop nor take every request thread."""
        assert self.app is not None
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self.app.limiter("heavy"))

    async def bulk(self, fn: Callable[..., T], *args: Any) -> T:
        """Run long upload work (seconds per GiB: concatenating parts, reading a file back)
        in its own small pool of lower-priority threads (``services/pools.py``): a request's
        latency never depends on what else is uploading."""
        assert self.app is not None
        loop = asyncio.get_running_loop()
        run = contextvars.copy_context().run  # the request's context (its address) goes along
        return await loop.run_in_executor(self.app.bulk_executor(), functools.partial(run, fn, *args))

    def authenticate_as(self, principal: Principal | None) -> None:
        """Who the request acts for, found another way than its token (a page's session)."""
        self._principal = principal

    def client_address(self) -> str:
        """The caller's network address (``services/ratelimit.py: client_address``), found once
        per request by the app."""
        return str(self.request.state.client_address)

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


#: A repo id in a route pattern: ``namespace/name``.
REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"
#: The same route for a repo id without a namespace (``gpt2``: the client sends such ids as they
#: are). Such a repo is looked up like any other (and is never found: every repo here has a
#: namespace), so the caller gets the Hub's 404 ``RepoNotFound`` instead of a routing error.
BARE_REPO = r"(?P<name>[^/]+)"

Route = tuple[frozenset[str], re.Pattern[str], Handler]


class Router:
    """Routes matched against the undecoded path; each named group is percent-decoded.

    A route holding ``REPO`` also answers for a bare repo id, but only once no route has matched
    with a ``namespace/name``: a repo called ``tree`` or ``refs`` keeps every route it had."""

    def __init__(self) -> None:
        self._routes: list[Route] = []
        self._bare: list[Route] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        verbs = frozenset(methods.split())
        self._routes.append((verbs, re.compile(f"^{pattern}$"), handler))
        if REPO in pattern:
            self._bare.append((verbs, re.compile(f"^{pattern.replace(REPO, BARE_REPO)}$"), handler))

    def match(self, method: str, path: str) -> tuple[Handler, re.Match[str]] | None | bool:
        """A handler and its match; False if the path matches with another method; else None."""
        found = self._match(self._routes, method, path)
        if isinstance(found, tuple):
            return found
        bare = self._match(self._bare, method, path)
        if isinstance(bare, tuple):
            return bare
        return False if False in (found, bare) else None

    @staticmethod
    def _match(routes: list[Route], method: str, path: str) -> tuple[Handler, re.Match[str]] | None | bool:
        other_method = False
        for methods, regex, handler in routes:
            m = regex.match(path)
            if m is None:
                continue
            if method not in methods and not (method == "HEAD" and "GET" in methods):
                other_method = True
                continue
            return handler, m
        return False if other_method else None


class App:
    """The modelyard ASGI app."""

    def __init__(self, hub: Hub) -> None:
        from modelyard.http.routes import register

        self.hub = hub
        self.router = Router()
        self._limiters: dict[str, CapacityLimiter] = {}
        self._bulk: ThreadPoolExecutor | None = None
        self._git: ThreadPoolExecutor | None = None
        self.metrics = Metrics(hub)
        self.ratelimiter = RateLimiter(hub.settings)
        register(self.router)

    def limiter(self, pool: str) -> CapacityLimiter:
        """The limiter of a pool of its own (``heavy``), beside the request threads."""
        found = self._limiters.get(pool)
        if found is None:  # created on the event loop (anyio needs a running loop)
            found = self._limiters[pool] = CapacityLimiter(self.hub.settings.heavy_threads)
        return found

    def bulk_executor(self) -> ThreadPoolExecutor:
        if self._bulk is None:
            self._bulk = long_work_executor(self.hub.settings.bulk_threads, "modelyard-bulk")
        return self._bulk

    def git_executor(self) -> ThreadPoolExecutor:
        """Lower-priority threads for git clones, fetches and pushes (one each, for as long as
        the client takes): slow git clients hold these, never the upload or request threads."""
        if self._git is None:
            self._git = long_work_executor(self.hub.settings.git_threads, "modelyard-git")
        return self._git

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = _BodyTracker(receive)
        request = Request(scope, body.receive)
        raw = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("latin-1").split("?", 1)[0]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        head = request.method == "HEAD"
        rid = request_id(request.headers)
        started = time.monotonic()
        route = "none"
        upload = False
        sent = 0

        async def counted(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        metrics = self.metrics
        in_flight: Any = None
        address = client_address(_client(scope), request.headers.get("x-forwarded-for"),
                                 self.hub.settings.trust_proxy_headers)
        request.state.client_address = address
        ADDRESS.set(address)  # what the audit log records as "from where"
        try:
            try:
                self._check_host(request)
                found = self.router.match(request.method, path)
                if found is None:
                    raise NotFoundError(f"Not found: {request.method} {path}")
                if found is False:
                    raise MethodNotAllowedError(f"Method {request.method} is not allowed on {path}")
                handler, m = found  # type: ignore[misc]
                route = route_name(handler)
                in_flight = metrics.in_flight.labels(route)
                in_flight.inc()
                upload = route in UPLOAD_ROUTES and request.method in ("PUT", "POST")
                if upload:
                    metrics.uploads.labels(route).inc()
                group = "uploads" if upload else "resolve" if route == "files.resolve" else (
                    "api" if path.startswith("/api/") or _signs_in(request.method, path) else None)
                if group is not None and self.ratelimiter.enabled:
                    await self._limit(request, address, group)
                params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                response = await handler(Ctx(self.hub, request, params, self, m))
            except HubError as exc:
                response = error_response(exc, head, rid)
            except ClientDisconnect:
                log_request(rid, _client(scope), request.method, path, 499, time.monotonic() - started)
                metrics.observe(route, request.method, 499, time.monotonic() - started, body.received, 0)
                return
            except Exception:
                log.exception("unhandled error on %s %s (request_id=%s)", request.method, loggable_path(path), rid)
                response = error_response(HubError("Internal server error"), head, rid)
            response.headers["X-Request-Id"] = rid
            if not body.complete(request):
                # The body was refused before it was read: do not parse the rest of it on this
                # connection (a client still sending it would hold the server's attention).
                response.headers["Connection"] = "close"
            try:
                await response(scope, receive, counted)
            finally:
                seconds = time.monotonic() - started
                log_request(rid, _client(scope), request.method, path, response.status_code, seconds)
                metrics.observe(route, request.method, response.status_code, seconds, body.received, sent)
        finally:
            if in_flight is not None:
                in_flight.dec()
            if upload:
                metrics.uploads.labels(route).dec()

    async def _limit(self, request: Request, address: str, group: str) -> None:
        """Count the request against its caller's limit; 429 past it (services/ratelimit.py)."""
        refusal = await self.ratelimiter.check(group, key_for(request.headers.get("authorization"), address))
        if refusal is not None:
            raise RateLimitedError(refusal.message, refusal.headers())

    def _check_host(self, request: Request) -> None:
        """Absolute URLs are built from the Host header unless a public URL is set: then only
        the names in ``allowed_hosts`` are answered (no URL pointing elsewhere, no DNS rebinding)."""
        settings = self.hub.settings
        host = request.headers.get("host", "")
        if host.startswith("datasets-server."):
            raise NotFoundError("No datasets-server here")
        if settings.public_url:
            return
        names = [host]
        if settings.trust_proxy_headers and "x-forwarded-host" in request.headers:
            names.append(request.headers["x-forwarded-host"].split(",")[0].strip())
        for name in names:
            if not settings.host_allowed(name):
                raise InvalidInputError(
                    f"Host {name!r} is not served here: set MODELYARD_PUBLIC_URL or MODELYARD_ALLOWED_HOSTS"
                )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Few threads: service calls are short, and dozens of threads contending for the
                # GIL cost more in switching than they gain in overlap.
                anyio.to_thread.current_default_thread_limiter().total_tokens = self.hub.settings.threads
                configure_logging(self.hub.settings.log_format, self.hub.settings.access_log)
                self.hub.tallies.start()
                await run_in_threadpool(self.hub.jobs.start)  # background jobs in this process
                # Everything loaded so far (modules, the app, the hub) lives as long as the
                # process: move it out of the collector's reach. A full collection otherwise
                # walks those ~100,000 objects again and again, a 50-80 ms pause that showed as
                # the p99 of any request allocating much (bench/bench_discussions.py).
                gc.collect()
                gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self._bulk, self._git):
                    if pool is not None:
                        pool.shutdown(wait=True)
                await run_in_threadpool(self.hub.close)
                try:
                    await self.ratelimiter.close()
                except Exception:  # its storage gone already: nothing left to close
                    log.debug("closing the rate limit storage failed", exc_info=True)
                await send({"type": "lifespan.shutdown.complete"})
                return


def _signs_in(method: str, path: str) -> bool:
    """Sign-in attempts count with the API's requests (each failed one is an audit log entry)."""
    return (method == "POST" and path in ("/login", "/join")) or path.startswith("/login/oidc")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"


class _BodyTracker:
    """Wraps ``receive`` to know whether the request body was read to its end."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.done = False
        self.received = 0  # body bytes read so far

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if not message.get("more_body", False):
                self.done = True
        return message

    def complete(self, request: Request) -> bool:
        if self.done:
            return True
        headers = request.headers
        return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers


def create_app(settings: Settings) -> App:
    return App(Hub(settings))


def create_app_from_env() -> App:
    """Factory for uvicorn workers: each worker process builds its own Hub from the env."""
    return create_app(Settings())
