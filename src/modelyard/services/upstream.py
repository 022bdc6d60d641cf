"""Talking to the upstream hub a mirror serves (``MODELYARD_UPSTREAM_URL``): its API, its git
over HTTP, its file downloads and its Xet CAS; only ever with the upstream token, never a
client's. Every failure to reach it, or a 5xx from it, is ``UpstreamUnavailableError`` (503 to
the clients, who then try their own caches); after one, the upstream is not asked again for
``upstream_retry_after`` seconds (a circuit breaker), so an offline upstream costs a request no
wait at all. What the rules of mirroring are lives in ``services/mirror.py``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx

from modelyard.errors import UpstreamUnavailableError
from modelyard.ids import URL_PREFIXES

log = logging.getLogger("modelyard.upstream")

#: The refs a mirror keeps: branches, tags and the Hub's conversion branches (pull requests'
#: refs need discussions here, which a mirror does not have).
MIRRORED_REFS = ("refs/heads/", "refs/tags/", "refs/convert/")


class UpstreamNotFound(Exception):
    """The upstream has no such repo, revision or file, or the token may not read it."""


@dataclass(frozen=True)
class Fetched:
    """A fetch's outcome: the upstream's refs (the mirrored kinds, tags peeled) and the pack
    (None when the mirror held everything already)."""

    refs: dict[str, str]
    pack: IO[bytes] | None


class Upstream:
    """One upstream hub, shared by the threads of a process."""

    def __init__(self, url: str, token: str | None, connect_timeout: float, timeout: float,
                 retry_after: float) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._retry_after = retry_after
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._down_until = 0.0
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=self._timeout, follow_redirects=False,
                                    limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))
        import urllib3

        self._pool = urllib3.PoolManager(maxsize=16, retries=False,
                                         timeout=urllib3.Timeout(connect=connect_timeout, read=timeout))

    def close(self) -> None:
        self._client.close()
        self._pool.clear()

    # -- the circuit breaker -----------------------------------------------------------------

    def _check_up(self) -> None:
        if time.monotonic() < self._down_until:
            raise UpstreamUnavailableError(f"The upstream hub {self.url} is unreachable; retrying later")

    def _failed(self, what: str, exc: BaseException | str) -> UpstreamUnavailableError:
        with self._lock:
            self._down_until = time.monotonic() + self._retry_after
        log.warning("upstream %s: %s failed: %s", self.url, what, exc)
        return UpstreamUnavailableError(f"The upstream hub could not be reached ({what})")

    @property
    def reachable(self) -> bool:
        """False while the breaker is open (the upstream failed a moment ago)."""
        return time.monotonic() >= self._down_until

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # -- requests ---------------------------------------------------------------------------

    def _request(self, method: str, url: str, what: str, *, auth: bool = True, **kwargs: Any) -> httpx.Response:
        """One request; redirects followed by hand, the token only ever sent to the upstream's origin."""
        self._check_up()
        headers = {**(self._headers() if auth else {}), **kwargs.pop("headers", {})}
        try:
            for _hop in range(5):
                response = self._client.request(method, url, headers=headers, **kwargs)
                if response.status_code not in (301, 302, 303, 307, 308):
                    break
                url = str(response.url.join(response.headers["location"]))
                if not url.startswith(self.url + "/"):
                    headers.pop("Authorization", None)
        except httpx.HTTPError as exc:
            raise self._failed(what, exc) from exc
        if response.status_code >= 500:
            raise self._failed(what, f"HTTP {response.status_code}")
        return response

    def _api(self, repo_type: str, repo_id: str) -> str:
        plural = {"model": "models", "dataset": "datasets", "space": "spaces"}[repo_type]
        return f"{self.url}/api/{plural}/{repo_id}"

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{URL_PREFIXES[repo_type]}{repo_id}"  # type: ignore[index]

    def info(self, repo_type: str, repo_id: str) -> dict[str, Any]:
        """The repo's info as the token sees it; UpstreamNotFound when it sees none."""
        response = self._request("GET", self._api(repo_type, repo_id), "repo info")
        if response.status_code in (401, 403, 404):
            raise UpstreamNotFound(repo_id)
        if response.status_code != 200:
            raise self._failed("repo info", f"HTTP {response.status_code}")
        data = response.json()
        if not isinstance(data, dict):
            raise self._failed("repo info", "not a JSON object")
        return data

    def file_meta(self, repo_type: str, repo_id: str, commit: str, path: str) -> dict[str, str]:
        """The headers of ``HEAD /resolve/{commit}/{path}`` (the first hop: no redirect followed)."""
        url = f"{self.repo_url(repo_type, repo_id)}/resolve/{commit}/{path}"
        self._check_up()
        try:
            response = self._client.head(url, headers={**self._headers(), "Accept-Encoding": "identity"})
        except httpx.HTTPError as exc:
            raise self._failed("file metadata", exc) from exc
        if response.status_code >= 500:
            raise self._failed("file metadata", f"HTTP {response.status_code}")
        if response.status_code >= 400:
            raise UpstreamNotFound(path)
        return {k.lower(): v for k, v in response.headers.items()}

    def stream_file(self, repo_type: str, repo_id: str, commit: str, path: str) -> Iterator[bytes]:
        """The bytes of a file, as the upstream's ``/resolve`` sends them."""
        url = f"{self.repo_url(repo_type, repo_id)}/resolve/{commit}/{path}"
        yield from self._stream(url, {"Accept-Encoding": "identity"}, "file download")

    def read_range(self, repo_type: str, repo_id: str, commit: str, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of a file from ``offset`` (fewer at its end)."""
        if length <= 0:
            return b""
        url = f"{self.repo_url(repo_type, repo_id)}/resolve/{commit}/{path}"
        headers = {"Accept-Encoding": "identity", "Range": f"bytes={offset}-{offset + length - 1}"}
        response = self._request("GET", url, "file range", headers=headers)
        if response.status_code == 416:
            return b""
        if response.status_code >= 400:
            raise UpstreamNotFound(path)
        data = response.content
        return data if response.status_code == 206 else data[offset : offset + length]

    def _stream(self, url: str, headers: dict[str, str], what: str) -> Iterator[bytes]:
        self._check_up()
        sent = {**self._headers(), **headers}
        try:
            for _hop in range(5):
                with self._client.stream("GET", url, headers=sent) as response:
                    if response.status_code in (301, 302, 303, 307, 308):
                        url = str(response.url.join(response.headers["location"]))
                        if not url.startswith(self.url + "/"):
                            sent.pop("Authorization", None)
                        continue
                    if response.status_code >= 500:
                        raise self._failed(what, f"HTTP {response.status_code}")
                    if response.status_code >= 400:
                        raise UpstreamNotFound(url)
                    yield from response.iter_bytes(1024 * 1024)
                    return
        except httpx.HTTPError as exc:
            raise self._failed(what, exc) from exc
        raise self._failed(what, "too many redirects")

    def xet_read_token(self, repo_type: str, repo_id: str, commit: str) -> tuple[str, str]:
        """``(CAS URL, access token)`` for reading the repo's Xet files at ``commit``."""
        response = self._request("GET", f"{self._api(repo_type, repo_id)}/xet-read-token/{commit}", "Xet token")
        if response.status_code >= 400:
            raise UpstreamNotFound(repo_id)
        cas, token = response.headers.get("x-xet-cas-url"), response.headers.get("x-xet-access-token")
        if not cas or not token:
            raise self._failed("Xet token", "no CAS URL or token in the answer")
        return cas.rstrip("/"), token

    def reconstruction(self, cas: str, token: str, file_hash: str) -> dict[str, Any]:
        response = self._request("GET", f"{cas}/v1/reconstructions/{file_hash}", "Xet reconstruction",
                                 auth=False, headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 400:
            raise UpstreamNotFound(file_hash)
        data = response.json()
        if not isinstance(data, dict):
            raise self._failed("Xet reconstruction", "not a JSON object")
        return data

    def xorb_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end]`` (inclusive, as a reconstruction names them) of a signed xorb URL
        (no token: the URL is signed). Read whole by urllib3, whose one read of a sized body costs
        a few Python calls where httpx parses it 64 KiB at a time: these ranges are the bulk of
        a cold fetch."""
        import urllib3

        self._check_up()
        headers = {"Range": f"bytes={start}-{end}"}
        try:
            for _hop in range(5):
                response = self._pool.request("GET", url, headers=headers, redirect=False, preload_content=False)
                try:
                    if response.status in (301, 302, 303, 307, 308):
                        url = urllib.parse.urljoin(url, response.headers["location"])
                        continue
                    if response.status >= 500:
                        raise self._failed("xorb download", f"HTTP {response.status}")
                    if response.status >= 400:
                        raise UpstreamNotFound(url)
                    data = response.read()
                    if response.status == 200:  # a server that ignored the Range
                        data = data[start : end + 1]
                    if len(data) != end - start + 1:
                        raise self._failed("xorb download", f"{len(data)} bytes, not {end - start + 1}")
                    return bytes(data)
                finally:
                    response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise self._failed("xorb download", exc) from exc
        raise self._failed("xorb download", "too many redirects")

    # -- git ----------------------------------------------------------------------------------

    def fetch(self, repo_type: str, repo_id: str, have: list[str], get_parents: Any,
              max_size: int) -> Fetched:
        """The upstream's refs, and a pack of what the mirror lacks (``have``: its own tips;
        ``get_parents``: a held commit's parents) spooled to a temporary file of at most
        ``max_size`` bytes."""
        from dulwich.client import HttpGitClient, HTTPUnauthorized
        from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
        from dulwich.object_store import ObjectStoreGraphWalker

        self._check_up()
        # The pool bounds the connect apart from the reads: a dropped connection fails in seconds.
        client = HttpGitClient(self.url + "/", username="modelyard" if self._token else None, password=self._token,
                               pool_manager=self._pool)
        wanted: dict[str, str] = {}

        def determine_wants(refs: dict[bytes, bytes | None], depth: int | None = None) -> list[bytes]:
            peeled = {k[:-3]: v for k, v in refs.items() if k.endswith(b"^{}") and v is not None}
            for name, target in refs.items():
                ref = name.decode("utf-8", "replace")
                if target is None or name.endswith(b"^{}") or not ref.startswith(MIRRORED_REFS):
                    continue
                wanted[ref] = peeled.get(name, target).decode()
            return sorted({v.encode() for v in wanted.values()} - {h.encode() for h in have})

        spool = tempfile.TemporaryFile(prefix="modelyard-mirror-")  # noqa: SIM115 (returned to the caller)
        size = 0

        def take(data: bytes) -> int:
            nonlocal size
            size += len(data)
            if size > max_size:
                raise UpstreamTooLarge(f"The upstream's pack passes {max_size} bytes")
            spool.write(data)
            return len(data)

        walker = ObjectStoreGraphWalker([h.encode() for h in have], get_parents)  # type: ignore[misc]
        try:
            client.fetch_pack(f"{URL_PREFIXES[repo_type]}{repo_id}", determine_wants, walker, take)  # type: ignore[arg-type,index]
        except (NotGitRepository, HTTPUnauthorized) as exc:
            spool.close()
            raise UpstreamNotFound(repo_id) from exc
        except (GitProtocolError, HangupException, OSError) as exc:
            spool.close()
            if "401" in str(exc) or "403" in str(exc) or "404" in str(exc) or "not found" in str(exc).lower():
                raise UpstreamNotFound(repo_id) from exc
            raise self._failed("git fetch", exc) from exc
        except UpstreamTooLarge:
            spool.close()
            raise
        except Exception as exc:  # urllib3's own errors (timeouts, refused connections)
            spool.close()
            raise self._failed("git fetch", exc) from exc
        if size == 0:
            spool.close()
            return Fetched(wanted, None)
        spool.seek(0)
        return Fetched(wanted, spool)


class UpstreamTooLarge(UpstreamUnavailableError):
    """The upstream sent more than a mirror takes in one fetch."""
