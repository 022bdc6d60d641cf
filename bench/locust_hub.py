"""Locust users of a hub, for ``bench/bench_load.py`` (run by ``locust -f``, not imported).

Each user, between short pauses, does what the hub's clients do, as huggingface_hub does it on
the wire: loads a model (HEADs of its files, the small files' bodies from the hub, the weights
from wherever the HEAD's redirect points), HEADs files, searches, makes small commits and uploads
LFS files (batch, PUT, verify, commit). Every body downloaded is hashed and compared with the
sha256 the seed recorded; a mismatch is a failure named "wrong bytes" (and counted apart).

Settings come from the environment: ``LOAD_SPEC`` (a JSON file: the token, the model repo, each
file's sha256, the repos each user may commit to).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import random
from typing import Any

from locust import FastHttpUser, between, events, task

SPEC: dict[str, Any] = json.loads(open(os.environ["LOAD_SPEC"]).read())  # noqa: SIM115 - read once
HEADERS = {"Authorization": f"Bearer {SPEC['token']}", "user-agent": "huggingface_hub/locust"}
USER_NUMBERS = itertools.count()
WRONG = {"bytes": 0}


@events.quitting.add_listener
def _report(environment: Any, **_kw: Any) -> None:
    print(json.dumps({"wrong_bytes": WRONG["bytes"]}), flush=True)


class HubUser(FastHttpUser):
    wait_time = between(0.2, 1.0)
    # the balancer and the store are on loopback; give slow answers time rather than fail them
    connection_timeout = 60.0
    network_timeout = 120.0

    def on_start(self) -> None:
        number = next(USER_NUMBERS)
        self.repo = SPEC["user_repos"][number % len(SPEC["user_repos"])]
        self.number = number
        self.commits = 0

    def _check(self, name: str, body: bytes, sha256: str) -> None:
        if hashlib.sha256(body).hexdigest() != sha256:
            WRONG["bytes"] += 1
            events.request.fire(request_type="CHECK", name=f"wrong bytes: {name}", response_time=0,
                                response_length=len(body), exception=AssertionError(f"sha256 of {name}"))

    def _resolve(self, path: str) -> str:
        return f"/{SPEC['model']}/resolve/main/{path}"

    @task(5)
    def model_load(self) -> None:
        for path, sha256 in SPEC["files"].items():
            with self.client.head(self._resolve(path), headers=HEADERS, name="HEAD /resolve",
                                  allow_redirects=False, catch_response=True) as head:
                if head.status_code not in (200, 302):
                    head.failure(f"HEAD {head.status_code}")
                    return
                location = head.headers.get("location")
            if location:  # a large file: its bytes come from the store's presigned URL
                with self.client.get(location, name="GET store (presigned)", catch_response=True) as r:
                    if r.status_code != 200:
                        r.failure(f"store {r.status_code}")
                        return
                    self._check(path, r.content or b"", sha256)
            else:
                with self.client.get(self._resolve(path), headers=HEADERS, name="GET /resolve (hub)",
                                     catch_response=True) as r:
                    if r.status_code != 200:
                        r.failure(f"GET {r.status_code}")
                        return
                    self._check(path, r.content or b"", sha256)

    @task(5)
    def heads(self) -> None:
        path = random.choice(list(SPEC["files"]))
        self.client.head(self._resolve(path), headers=HEADERS, name="HEAD /resolve", allow_redirects=False)

    @task(3)
    def search(self) -> None:
        term = random.choice(["load", "bench", "model", "alice"])
        self.client.get(f"/api/models?search={term}&sort=downloads&direction=-1&limit=20&filter=pytorch",
                        headers=HEADERS, name="GET /api/models (search)")

    def _commit(self, lines: list[dict[str, Any]], name: str) -> None:
        body = "\n".join(json.dumps(line) for line in lines).encode()
        self.client.post(f"/api/models/{self.repo}/commit/main", data=body, name=name,
                         headers={**HEADERS, "Content-Type": "application/x-ndjson"})

    @task(1)
    def small_commit(self) -> None:
        self.commits += 1
        content = f"user {self.number} commit {self.commits}\n".encode()
        self._commit([
            {"key": "header", "value": {"summary": f"load {self.number}-{self.commits}", "description": ""}},
            {"key": "file", "value": {"path": f"notes/{self.number}-{self.commits}.txt",
                                      "content": base64.b64encode(content).decode(), "encoding": "base64"}},
        ], "POST commit (small)")

    @task(1)
    def lfs_upload(self) -> None:
        data = os.urandom(256 * 1024)
        oid = hashlib.sha256(data).hexdigest()
        lfs = {**HEADERS, "Accept": "application/vnd.git-lfs+json", "Content-Type": "application/vnd.git-lfs+json"}
        with self.client.post(f"/{self.repo}.git/info/lfs/objects/batch", name="POST lfs batch", headers=lfs,
                              data=json.dumps({"operation": "upload", "transfers": ["basic"],
                                               "objects": [{"oid": oid, "size": len(data)}]}),
                              catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"batch {r.status_code}")
                return
            actions = (r.json()["objects"][0].get("actions") or {})
        upload, verify = actions.get("upload"), actions.get("verify")
        if upload:
            self.client.put(upload["href"], data=data, headers=upload.get("header") or {}, name="PUT lfs object")
        if verify:
            self.client.post(verify["href"], data=json.dumps({"oid": oid, "size": len(data)}), headers=lfs,
                             name="POST lfs verify")
        self.commits += 1
        self._commit([
            {"key": "header", "value": {"summary": f"lfs {self.number}-{self.commits}", "description": ""}},
            {"key": "lfsFile", "value": {"path": f"weights/{self.number}-{self.commits}.bin", "algo": "sha256",
                                         "oid": oid, "size": len(data)}},
        ], "POST commit (lfs)")
