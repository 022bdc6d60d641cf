"""Hub parity: Space repositories through the real client, and static Spaces served sandboxed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import BadRequestError, RepositoryNotFoundError

from tests.support.clients.run import run_client
from tests.support.server import TOKENS, LiveServer

INDEX = b"<!doctype html><html><head><link rel=stylesheet href=style.css></head><body>hi<script src=app.js></script>"


def _site(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "style.css").write_bytes(b"body { color: red }\n")
    (root / "app.js").write_bytes(b"document.body.append('js');\n")
    (root / "sub" / "index.html").write_bytes(b"<p>sub page</p>")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 3000)  # a binary file, through LFS
    return root


def test_static_space_create_upload_download_info_list_search(
    api: HfApi, server: LiveServer, tmp_path: Path, repo_name: str
) -> None:
    url = api.create_repo(f"acme/{repo_name}", repo_type="space", space_sdk="static")
    assert url == f"{server.url}/spaces/acme/{repo_name}" and url.repo_type == "space"
    repo_id = url.repo_id
    assert api.repo_exists(repo_id, repo_type="space") and not api.repo_exists(repo_id)
    info = api.space_info(repo_id)
    assert info.sdk == "static" and info.card_data is not None and info.card_data.sdk == "static"
    assert sorted(s.rfilename for s in info.siblings) == [".gitattributes", "README.md"]
    [initial] = api.list_repo_commits(repo_id, repo_type="space")
    assert initial.authors == ["system"]

    site = _site(tmp_path / "site")
    api.upload_folder(folder_path=site, repo_id=repo_id, repo_type="space", commit_message="site")
    files = api.list_repo_files(repo_id, repo_type="space")
    assert {"index.html", "style.css", "app.js", "sub/index.html", "logo.png", "README.md"} <= set(files)
    assert api.list_repo_commits(repo_id, repo_type="space")[0].authors == ["alice"]
    for name in ("index.html", "logo.png", "sub/index.html"):
        got = hf_hub_download(repo_id, name, repo_type="space", endpoint=server.url, token=TOKENS["alice"],
                              cache_dir=tmp_path / "cache")
        assert Path(got).read_bytes() == (site / name).read_bytes()
    snap = snapshot_download(repo_id, repo_type="space", endpoint=server.url, token=TOKENS["alice"],
                             cache_dir=tmp_path / "snap")
    assert (Path(snap) / "style.css").read_bytes() == (site / "style.css").read_bytes()
    info = api.space_info(repo_id, files_metadata=True)
    assert info.sdk == "static" and "static" in info.tags
    logo = next(s for s in info.siblings if s.rfilename == "logo.png")
    assert logo.lfs is not None and logo.size == (site / "logo.png").stat().st_size

    server.settle()
    listed = list(api.list_spaces(author="acme", search=repo_name))
    assert [s.id for s in listed] == [repo_id] and listed[0].sdk == "static"
    assert repo_id in {s.id for s in api.list_spaces(search=repo_name, filter="static")}
    assert repo_id not in {m.id for m in api.list_models(search=repo_name)}
    full = next(iter(api.list_spaces(search=repo_name, full=True)))
    assert full.id == repo_id and "index.html" in {s.rfilename for s in full.siblings or []}


def test_spaces_need_a_known_sdk_and_a_refusal_creates_nothing(
    api: HfApi, server: LiveServer, repo_name: str
) -> None:
    with pytest.raises(ValueError, match="No space_sdk provided"):  # the client's own check
        api.create_repo(f"acme/{repo_name}", repo_type="space")
    for body in ({}, {"sdk": "flask"}, {"sdk": 3}):
        r = httpx.post(f"{server.url}/api/repos/create", headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                       json={"name": repo_name, "organization": "acme", "type": "space", **body})
        assert r.status_code == 400 and r.headers["X-Error-Code"] == "BadRequest", r.text
        assert "sdk" in r.json()["error"]
    assert not api.repo_exists(f"acme/{repo_name}", repo_type="space")
    with pytest.raises(BadRequestError, match="sdk"):  # what the client makes of the refusal
        _raw_create(server, repo_name, "nope")
    assert not api.repo_exists(f"acme/{repo_name}", repo_type="space")
    # the same name as a model is another repository
    api.create_repo(f"acme/{repo_name}")
    assert not api.repo_exists(f"acme/{repo_name}", repo_type="space")


def _raw_create(server: LiveServer, name: str, sdk: str) -> None:
    from huggingface_hub.utils import get_session, hf_raise_for_status

    r = get_session().post(f"{server.url}/api/repos/create", headers={"Authorization": f"Bearer {TOKENS['alice']}"},
                   json={"name": name, "organization": "acme", "type": "space", "sdk": sdk})
    hf_raise_for_status(r)


def test_static_space_page_is_served_sandboxed(api: HfApi, server: LiveServer, tmp_path: Path, repo_name: str) -> None:
    repo_id = api.create_repo(f"acme/{repo_name}", repo_type="space", space_sdk="static").repo_id
    site = _site(tmp_path / "site")
    api.upload_folder(folder_path=site, repo_id=repo_id, repo_type="space")
    head = api.space_info(repo_id).sha
    base = f"{server.url}/spaces/{repo_id}"

    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and page.content == INDEX
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp.startswith("sandbox allow-scripts ") and "allow-same-origin" not in csp
    assert "default-src 'self'" in csp and "object-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-repo-commit"] == head
    for path, media, body in (("style.css", "text/css", b"body { color: red }\n"),
                              ("app.js", "text/javascript", b"document.body.append('js');\n"),
                              ("sub/", "text/html", b"<p>sub page</p>"),
                              ("sub/index.html", "text/html", b"<p>sub page</p>"),
                              ("logo.png", "image/png", (site / "logo.png").read_bytes())):
        r = httpx.get(f"{base}/{path}")
        assert r.status_code == 200 and r.content == body, path
        assert r.headers["content-type"].startswith(media), (path, r.headers["content-type"])
        assert r.headers["content-security-policy"] == csp and r.headers["x-content-type-options"] == "nosniff"
    assert httpx.head(f"{base}/logo.png").headers["content-length"] == str((site / "logo.png").stat().st_size)
    ranged = httpx.get(f"{base}/logo.png", headers={"Range": "bytes=0-7"})
    assert ranged.status_code == 206 and ranged.content == b"\x89PNG\r\n\x1a\n"
    # without the slash: redirected to it, so that the page's relative links resolve under it
    bare = httpx.get(base)
    assert bare.status_code == 301 and bare.headers["location"] == f"{base}/"
    missing = httpx.get(f"{base}/nope.html")
    assert missing.status_code == 404 and missing.headers["x-error-code"] == "EntryNotFound"
    assert httpx.get(f"{base}/%2e%2e/%2e%2e/README.md").status_code == 404  # no way out of the repo
    # /resolve under the same prefix stays a download, with its own locked-down policy
    raw = httpx.get(f"{base}/resolve/main/index.html")
    assert raw.status_code == 200 and raw.headers["content-security-policy"] == "default-src 'none'; sandbox"
    assert raw.headers["content-type"].startswith("text/plain")
    # a new commit is served at once
    api.upload_file(path_or_fileobj=b"<p>v2</p>", path_in_repo="index.html", repo_id=repo_id, repo_type="space")
    assert httpx.get(f"{base}/").content == b"<p>v2</p>"


def test_only_static_spaces_are_served_and_private_ones_only_to_readers(
    api: HfApi, api_as: Callable[[str | None], HfApi], server: LiveServer, repo_name: str
) -> None:
    gradio = api.create_repo(f"acme/{repo_name}-g", repo_type="space", space_sdk="gradio").repo_id
    api.upload_file(path_or_fileobj=b"import gradio\n", path_in_repo="app.py", repo_id=gradio, repo_type="space")
    api.upload_file(path_or_fileobj=b"<p>x</p>", path_in_repo="index.html", repo_id=gradio, repo_type="space")
    assert api.space_info(gradio).sdk == "gradio"
    r = httpx.get(f"{server.url}/spaces/{gradio}/")
    assert r.status_code == 404 and "runs no app" in r.json()["error"]
    assert "content-security-policy" not in r.headers

    secret = api.create_repo(f"acme/{repo_name}-p", repo_type="space", space_sdk="static", private=True).repo_id
    api.upload_file(path_or_fileobj=b"<p>secret</p>", path_in_repo="index.html", repo_id=secret, repo_type="space")
    anonymous = httpx.get(f"{server.url}/spaces/{secret}/")
    assert anonymous.status_code == 404 and anonymous.headers["x-error-code"] == "RepoNotFound"
    assert httpx.get(f"{server.url}/spaces/acme/never-was/").headers["x-error-code"] == "RepoNotFound"
    as_alice = httpx.get(f"{server.url}/spaces/{secret}/", headers={"Authorization": f"Bearer {TOKENS['alice']}"})
    assert as_alice.status_code == 200 and as_alice.content == b"<p>secret</p>"
    with pytest.raises(RepositoryNotFoundError):
        api_as("bob").space_info(secret)
    assert secret not in {s.id for s in api_as(None).list_spaces(author="acme")}

    # A card that drops the sdk stops the page; the sdk in the card is what counts, as on the Hub
    api.upload_file(path_or_fileobj=b"---\ntitle: t\nsdk: static\n---\n", path_in_repo="README.md", repo_id=gradio,
                    repo_type="space")
    assert api.space_info(gradio).sdk == "static"
    assert httpx.get(f"{server.url}/spaces/{gradio}/").content == b"<p>x</p>"
    with pytest.raises(ValueError, match=r'"sdk\\?" must be one of \[docker, gradio, static, streamlit\]'):
        api.upload_file(path_or_fileobj=b"---\nsdk: flask\n---\n", path_in_repo="README.md", repo_id=gradio,
                        repo_type="space")
    assert api.space_info(gradio).sdk == "static"


def test_a_static_space_uploaded_through_xet_is_served(
    xet_env: dict[str, str], api: HfApi, server: LiveServer, tmp_path: Path, repo_name: str
) -> None:
    """The default client (hf_xet on) uploads a Space's large files through Xet; the page is
    rebuilt from the xorbs as any download is."""
    site = _site(tmp_path / "site")
    big = bytes(range(256)) * 2048  # 512 KiB: above the client's regular-file limit
    (site / "data.bin").write_bytes(big)
    repo_id = f"acme/{repo_name}"
    run_client("xet_client.py", ["upload_folder", repo_id, str(site), "space"], xet_env)
    info = api.space_info(repo_id, files_metadata=True)
    assert info.sdk == "static"
    assert next(s for s in info.siblings if s.rfilename == "data.bin").lfs is not None
    head = httpx.head(f"{server.url}/spaces/{repo_id}/resolve/main/data.bin")
    assert head.headers["x-xet-hash"] and "/api/spaces/" in head.headers["link"]  # it went through Xet
    r = httpx.get(f"{server.url}/spaces/{repo_id}/data.bin")
    assert r.status_code == 200 and r.content == big and r.headers["content-type"] == "application/octet-stream"
    assert r.headers["content-security-policy"].startswith("sandbox allow-scripts ")
    assert httpx.get(f"{server.url}/spaces/{repo_id}/").content == INDEX
