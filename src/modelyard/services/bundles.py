"""Air-gapped bundles: ``modelyard bundle export | have | import``.

A bundle carries repos to a hub with no network path to this one, as one file (its layout:
``services/bundle_format.py``): each repo's git objects as one pack, the LFS objects its history
points at, and each file held through Xet as xorbs and a shard. Dedup is global, so a stored
xorb may hold chunks of other repos' files too: each term of an exported file is cut out of its
stored xorb (a run of whole chunks is a valid xorb of its own, named by its merkle hash), and no
chunk of any other file leaves the hub.

Export covers the whole history (every commit the refs reach, and every large file of each):
the receiving hub cannot fetch anything later. ``have`` (written by the receiving hub) names the
xorbs and LFS objects it holds already, which the bundle then leaves out.

Import checks the whole bundle before it stores anything (format and version; each member
present, listed and hashing to its manifest entry; what ``have`` left out held here), then stores
what it carries as uploads are stored, verified again on the way (git objects by their ids,
xorbs by their merkle hash, each file's sha256), and publishes every repo's refs in one
transaction once every file they reach is stored. A new repo is private until then, and removed
again if the import fails. Imported repos are read-only like mirrors (``repos.upstream`` is
``bundle:<source hub>``); importing the same bundle again changes nothing. No network is used.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from dulwich.objects import Tree

from modelyard.catalog import accounts as accounts_q
from modelyard.catalog import lfs as lfs_q
from modelyard.catalog import lfs_files as lfs_files_q
from modelyard.catalog import objects as objects_q
from modelyard.catalog import redirects as redirects_q
from modelyard.catalog import refs as refs_q
from modelyard.catalog import repos as repos_q
from modelyard.catalog import search as search_q
from modelyard.catalog import xet as xet_q
from modelyard.catalog.repos import Repo
from modelyard.catalog.xet import StoredFile
from modelyard.errors import ConflictError, NotFoundError, RepoNotFoundError
from modelyard.ids import HOSTED_REPO_TYPES, Oid
from modelyard.services.audit import record, repo_subject
from modelyard.services.bundle_format import (
    PIECE,
    Bundle,
    BundleError,
    BundleWriter,
    Entry,
    Held,
    XetFile,
    open_bundle,
    pack_member,
    read_have,
    write_atomically,
)
from modelyard.services.events import new_event, record_and_enqueue
from modelyard.services.git import ingest_pack, whole_pack
from modelyard.services.grants import Grant
from modelyard.services.hub import Hub, utcnow
from modelyard.services.lfs import finish_upload
from modelyard.services.xet import indexes_for, upload_shard, upload_xorb, xorb_key
from modelyard.storage.base import lfs_key
from modelyard.versioning.history import ancestors
from modelyard.versioning.objects import DIR_MODE
from modelyard.versioning.wire import PackError
from modelyard.xet.hashing import hash_to_str, merkle_root, str_to_hash, verification_hash
from modelyard.xet.reconstruction import unpack_terms
from modelyard.xet.shard import FileRecord, Term, build_upload_shard
from modelyard.xet.xorb import XorbFormatError, parse_xorb

log = logging.getLogger("modelyard.bundles")

#: What ``repos.upstream`` of an imported repo starts with (then the source hub's URL).
UPSTREAM_PREFIX = "bundle:"


@dataclass
class Report:
    """What an export wrote or an import stored (an import counts only what was new here)."""

    repos: int = 0
    commits: int = 0
    lfs_objects: int = 0
    xorbs: int = 0
    bytes: int = 0
    refs_moved: int = 0  # import: refs created, moved or deleted
    sha256: str = ""  # export: the bundle file's, to compare on the other side


# -- what a repo's refs reach ----------------------------------------------------------------------


def history(hub: Hub, targets: Iterable[str]) -> tuple[list[str], dict[str, int]]:
    """Every commit ``targets`` reach, and every large file their trees point at (sha256 -> size),
    trees read a level at a time; KeyError names an object this hub does not hold."""
    commits = ancestors(hub.objects, [Oid(t) for t in targets])
    level: set[str] = {c.tree for c in commits}
    seen: set[str] = set()
    blobs: set[str] = set()
    while level:
        seen |= level
        hub.objects.prefetch([Oid(t) for t in sorted(level)])
        below: set[str] = set()
        for oid in level:
            tree = hub.objects.get(Oid(oid))
            if not isinstance(tree, Tree):
                raise KeyError(oid)  # not held as a tree
            for entry in tree.items():
                (below if entry.mode == DIR_MODE else blobs).add(entry.sha.decode())
        level = below - seen
    metas = hub.objects.meta([Oid(b) for b in sorted(blobs)])
    if len(metas) != len(blobs):
        raise KeyError(min(blobs - set(metas)))
    return [c.oid for c in commits], {sha: size for _n, sha, size in metas.values() if sha and size is not None}


# -- export -----------------------------------------------------------------------------------------


def holdings(hub: Hub) -> dict[str, list[str]]:
    """Every xorb and LFS object this hub stores, for another hub's ``bundle export --have``."""
    with hub.db.read() as conn:
        return {"xorbs": xet_q.all_xorb_hashes(conn), "lfs": sorted(sha for sha, _size in lfs_q.all_objects(conn))}


def write_have(hub: Hub, out: Path) -> Held:
    """Write ``holdings`` to ``out`` as JSON (a tmp file, then renamed)."""
    found = holdings(hub)
    write_atomically(out, lambda f: f.write(json.dumps(found).encode()))
    return Held(frozenset(found["xorbs"]), frozenset(found["lfs"]))


def export(hub: Hub, repos: list[tuple[str, str]], out: Path, have: Path | None = None) -> Report:
    """Write the bundle of ``repos`` (``(repo_type, repo_id)``) to ``out`` (through ``out.tmp``,
    renamed once whole); what ``have`` lists is left out."""
    held = read_have(have) if have is not None else Held()
    if len({(t, r.lower()) for t, r in repos}) != len(repos):
        raise BundleError("A repo is named twice")
    sources = [_source(hub, repo_type, repo_id) for repo_type, repo_id in repos]
    report = Report(repos=len(sources))

    def write(f: IO[bytes]) -> None:
        bundle = BundleWriter(f, datetime.now(UTC))
        entries = [_export_repo(hub, bundle, repo, refs, held, out.parent, report) for repo, refs in sources]
        report.bytes, report.sha256 = bundle.finish(hub.settings.public_url or "", entries)

    write_atomically(out, write)
    return report


def _source(hub: Hub, repo_type: str, repo_id: str) -> tuple[Repo, dict[str, str]]:
    if repo_type not in HOSTED_REPO_TYPES:
        raise BundleError(f"Repos of type {repo_type!r} are not exported (model, dataset or space)")
    parts = repo_id.split("/")
    with hub.db.read() as conn:
        repo = repos_q.get(conn, repo_type, parts[0], parts[1]) if len(parts) == 2 else None
        refs = refs_q.all_refs(conn, repo.id) if repo is not None else {}
    if repo is None:
        raise RepoNotFoundError(f"There is no {repo_type} {repo_id} on this hub")
    if not refs:
        raise BundleError(f"{repo_type} {repo_id} has no branch or tag: nothing to export")
    return repo, refs


def _export_repo(hub: Hub, bundle: BundleWriter, repo: Repo, refs: dict[str, str], held: Held, scratch: Path,
                 report: Report) -> Entry:
    label = f"{repo.type} {repo.repo_id}"
    try:
        commits, pointers = history(hub, refs.values())
    except KeyError as exc:
        raise BundleError(f"{label}: object {exc.args[0]} of its history is missing here: run modelyard fsck") from exc
    with hub.db.read() as conn:
        xet = {f.sha256: f for f in xet_q.repo_files(conn, repo.id) if f.sha256 in pointers}
        lfs = {sha: size for sha, size in lfs_q.repo_objects(conn, repo.id) if sha in pointers and sha not in xet}
        purged = lfs_files_q.purged(conn, repo.id, [s for s in pointers if s not in xet and s not in lfs])
    missing = sorted(set(pointers) - set(xet) - set(lfs) - purged)
    if missing:
        raise BundleError(f"{label}: {len(missing)} large file(s) of its history are not held here (for "
                          f"example {missing[0]}): a mirror's files not fetched yet? Fetch them, then export")
    with tempfile.TemporaryFile(prefix="modelyard-bundle-", dir=scratch) as pack:
        whole_pack(hub, repo, refs, pack)
        size = pack.tell()
        pack.seek(0)
        bundle.add(pack_member(repo.type, repo.namespace, repo.name), size, iter(lambda: pack.read(PIECE), b""))
    report.commits += len(commits)
    for sha, size in sorted(lfs.items()):
        if sha not in held.lfs and f"lfs/{sha}" not in bundle.files:
            bundle.add(f"lfs/{sha}", size, hub.blobs.read(lfs_key(sha)), expect=sha)
            report.lfs_objects += 1
    xet_files = tuple(_export_xet_file(hub, bundle, xet[sha], held, report) for sha in sorted(xet))
    return Entry(repo.type, repo.namespace, repo.name, repo.private, repo.gated, dict(sorted(refs.items())),
                 lfs, xet_files, {sha: pointers[sha] for sha in sorted(purged)})


def _export_xet_file(hub: Hub, bundle: BundleWriter, f: StoredFile, held: Held, report: Report) -> XetFile:
    """The file's terms, each cut out of its stored xorb as a xorb of its own, and its shard."""
    terms = unpack_terms(f.terms)
    with hub.db.read() as conn:
        indexes = indexes_for(conn, terms)
    cut, checks, names = [], [], []
    for term in terms:
        chunks = indexes[term.xorb].chunks[term.start : term.end]
        stored = hash_to_str(term.xorb)
        if not chunks or len(chunks) != term.end - term.start or sum(c.size for c in chunks) != term.size:
            raise BundleError(f"Xet file {f.hash}: a term does not match xorb {stored}: run modelyard fsck")
        raw = merkle_root([(c.hash, c.size) for c in chunks])
        name = hash_to_str(raw)
        if name not in held.xorbs and f"xorbs/{name}" not in bundle.files:
            body = b"".join(hub.blobs.read(xorb_key(stored), chunks[0].start, chunks[-1].end))
            try:
                parse_xorb(body, raw)  # what leaves this hub is whole: exactly those chunks, intact
            except XorbFormatError as exc:
                raise BundleError(f"Xorb {stored} is corrupt on this hub ({exc.message}): run modelyard fsck") from exc
            bundle.add_bytes(f"xorbs/{name}", body)
            report.xorbs += 1
        cut.append(Term(raw, 0, len(chunks), term.size))
        checks.append(verification_hash([c.hash for c in chunks]))
        if name not in names:
            names.append(name)
    if f"shards/{f.hash}" not in bundle.files:
        file_record = FileRecord(str_to_hash(f.hash), tuple(cut), tuple(checks), bytes.fromhex(f.sha256))
        bundle.add_bytes(f"shards/{f.hash}", build_upload_shard([file_record], []))
    return XetFile(f.sha256, f.size, f.hash, tuple(names))


# -- import -----------------------------------------------------------------------------------------


@dataclass
class _Plan:
    """One repo of the bundle on its way in."""

    entry: Entry
    repo: Repo | None  # as found before the import (None: this import creates it)
    pk: int = 0
    commits: list[str] = field(default_factory=list)  # every commit the bundle's refs reach


@dataclass
class _Created:
    """The repos and organizations this import made, removed again if it fails."""

    repos: list[int] = field(default_factory=list)
    orgs: list[int] = field(default_factory=list)


def import_(hub: Hub, path: Path, force: bool = False) -> Report:
    """Import a bundle: checked whole first, then stored, then each repo's refs published at once.
    A repo of this hub's own (not imported, not a mirror) of the same name is refused unless
    ``force`` (its refs then become the bundle's, and it becomes read-only)."""
    with open_bundle(path) as bundle:
        bundle.verify()  # nothing is stored before every member is checked
        plans = [_plan(hub, bundle, entry, force) for entry in bundle.manifest.entries]
        report = Report(repos=len(plans))
        created = _Created()
        try:
            for plan in plans:
                _ingest_git(hub, bundle, plan, report)
            for plan in plans:
                _make_row(hub, plan, bundle.manifest.source, created)
            for plan in plans:
                _store_files(hub, bundle, plan, report)
            events = _publish(hub, plans, bundle.manifest.source, report)
        except BaseException:
            _drop(hub, created)
            raise
    for event in events:
        record_and_enqueue(hub, event)
    log.info("imported %s: %s", path, report)
    return report


def _plan(hub: Hub, bundle: Bundle, entry: Entry, force: bool) -> _Plan:
    """Check one repo against this hub before anything is stored."""
    with hub.db.read() as conn:
        repo = repos_q.get(conn, entry.type, entry.namespace, entry.name)
        wanted = {n for x in entry.xet for n in x.xorbs if f"xorbs/{n}" not in bundle.members}
        xorbs = xet_q.xorbs(conn, wanted)
        left_out = {sha: size for sha, size in entry.lfs.items() if f"lfs/{sha}" not in bundle.members}
        objects = lfs_q.sizes(conn, left_out)
    if repo is not None and repo.upstream is None and not force:
        raise ConflictError(f"{entry.label} is a repo of this hub's own: import with --force to replace its "
                            "branches and tags with the bundle's (it then becomes read-only)")
    absent = sorted(f"xorb {n}" for n in wanted - set(xorbs)) + sorted(
        f"LFS object {sha}" for sha, size in left_out.items()
        if objects.get(sha) != size or hub.blobs.size(lfs_key(sha)) != size)
    if absent:
        raise BundleError(f"{entry.label}: {absent[0]} is neither in the bundle nor on this hub (was the bundle "
                          "made with `--have` from another hub?): nothing was imported")
    return _Plan(entry, repo)


def _ingest_git(hub: Hub, bundle: Bundle, plan: _Plan, report: Report) -> None:
    """Store the repo's pack (objects no repo sees until ``_publish``) and check that it holds the
    whole history of the refs, and that every large file of it is in the bundle."""
    entry = plan.entry
    targets = sorted(set(entry.refs.values()))
    held: set[str] = set()
    tips: list[str] = []
    if plan.repo is not None:
        with hub.db.read() as conn:
            held = objects_q.repo_commits_among(conn, plan.repo.id, targets)
            tips = sorted(set(refs_q.all_refs(conn, plan.repo.id).values()))
    if held != set(targets):  # else the repo has these commits and their history already
        if bundle.members[entry.pack].size > hub.settings.git_max_push_size:
            raise BundleError(f"{entry.label}: its pack is over MODELYARD_GIT_MAX_PUSH_SIZE")
        with tempfile.TemporaryFile(prefix="modelyard-bundle-") as spool:
            for piece in bundle.pieces(entry.pack):
                spool.write(piece)
            report.bytes += spool.tell()
            spool.seek(0)
            try:
                ingest_pack(hub, tips, spool)
            except PackError as exc:
                raise BundleError(f"{entry.label}: its pack is refused: {exc.args[0]}") from exc
    try:
        commits, pointers = history(hub, targets)
    except (KeyError, AttributeError) as exc:  # an object missing, or a commit's id naming another kind
        raise BundleError(f"{entry.label}: its pack lacks an object its refs reach, or holds one of the "
                          f"wrong type ({exc})") from exc
    carried = {**entry.lfs, **entry.purged, **{x.sha256: x.size for x in entry.xet}}
    for sha, size in sorted(pointers.items()):
        if carried.get(sha) != size:
            raise BundleError(f"{entry.label}: its history points at large file {sha} ({size} bytes), which "
                              "the bundle does not carry")
    plan.commits = sorted(commits)
    if plan.repo is not None:
        with hub.db.read() as conn:
            report.commits += len(commits) - len(objects_q.repo_commits_among(conn, plan.repo.id, plan.commits))
    else:
        report.commits += len(commits)


def _make_row(hub: Hub, plan: _Plan, source: str, created: _Created) -> None:
    """The repo's row, for its files to be stored against: private and without refs until
    ``_publish``, so nobody sees it half-imported."""
    entry = plan.entry
    if plan.repo is not None:
        plan.pk = plan.repo.id
        return
    now = utcnow()
    with hub.db.write() as conn:
        owner = accounts_q.by_name(conn, entry.namespace)
        if owner is None:  # the source's namespace, as an org of this hub with no members
            owner = accounts_q.create(conn, name=entry.namespace, kind="org", fullname=entry.namespace, email=None,
                                      is_admin=False, default_private=False, now=now)
            created.orgs.append(owner.id)
        accounts_q.lock_namespace(conn, owner.id)
        if repos_q.get(conn, entry.type, owner.name, entry.name) is not None:
            raise ConflictError(f"{entry.label} was created on this hub during the import: import again")
        plan.pk = repos_q.create(conn, repo_type=entry.type, namespace=owner.name, name=entry.name,
                                 owner_id=owner.id, private=True, now=now, created_seq=search_q.next_seq(conn),
                                 upstream=UPSTREAM_PREFIX + source)
        redirects_q.remove_name(conn, entry.type, owner.name, entry.name)
    created.repos.append(plan.pk)


def _store_files(hub: Hub, bundle: Bundle, plan: _Plan, report: Report) -> None:
    """The repo's large files, each verified as an upload is: Xet files' xorbs (merkle hash) then
    shard (each file's sha256 read back), LFS objects (sha256 while streaming)."""
    entry = plan.entry
    with hub.db.read() as conn:
        repo = repos_q.get_by_id(conn, plan.pk)
        have_xet = xet_q.repo_files_by_sha256(conn, plan.pk, [x.sha256 for x in entry.xet])
        have_lfs = dict(lfs_q.repo_objects(conn, plan.pk))
        stored_lfs = lfs_q.sizes(conn, entry.lfs)
    if repo is None:
        raise NotFoundError(f"{entry.label} was deleted during the import")
    for x in entry.xet:
        if have_xet.get(x.sha256) == (x.xet_hash, x.size):
            continue
        with hub.db.read() as conn:
            stored = set(xet_q.xorbs(conn, x.xorbs))
        for name in x.xorbs:  # in term order: the shard's sha256 check then reads nothing back
            member = f"xorbs/{name}"
            if name not in stored and member in bundle.members:
                body = bundle.read(member)
                if upload_xorb(hub, plan.pk, "default", name, body):
                    report.xorbs += 1
                    report.bytes += len(body)
        upload_shard(hub, Grant(repo, None), bundle.read(f"shards/{x.xet_hash}"))
        with hub.db.read() as conn:
            landed = xet_q.repo_files_by_sha256(conn, plan.pk, [x.sha256]).get(x.sha256)
        if landed != (x.xet_hash, x.size):
            raise BundleError(f"{entry.label}: the shard of Xet file {x.xet_hash} describes another file")
    for sha, size in sorted(entry.lfs.items()):
        if have_lfs.get(sha) == size:
            continue
        if stored_lfs.get(sha) == size and hub.blobs.size(lfs_key(sha)) == size:
            with hub.db.write() as conn:  # this hub holds the object already (another repo's, or `--have`)
                repos_q.add_lfs_object(hub.db, conn, plan.pk, sha, size, utcnow())
            continue
        writer = hub.blobs.writer()
        try:
            for piece in bundle.pieces(f"lfs/{sha}"):
                writer.write(piece)
        except BaseException:
            writer.abort()
            raise
        finish_upload(hub, writer, plan.pk, sha, size)  # checks the sha256 and size
        report.lfs_objects += 1
        report.bytes += size


def _publish(hub: Hub, plans: list[_Plan], source: str, report: Report) -> list[int]:
    """Every repo's commits and refs (each ref by compare-and-swap, to the bundle's), in one
    transaction; a new repo takes the source's visibility. The events to queue after it."""
    now = utcnow()
    events: list[int] = []
    with hub.db.write() as conn:
        for plan in plans:
            entry = plan.entry
            refs_q.lock(conn, plan.pk)
            repo = repos_q.get_by_id(conn, plan.pk)
            if repo is None:
                raise NotFoundError(f"{entry.label} was deleted during the import")
            for oid in plan.commits:
                objects_q.add_repo_commit(hub.db, conn, plan.pk, oid, now)
            current = refs_q.all_refs(conn, plan.pk)
            changes = {ref: (current.get(ref), entry.refs.get(ref)) for ref in sorted(set(current) | set(entry.refs))
                       if current.get(ref) != entry.refs.get(ref)}
            for ref, (old, new) in changes.items():
                if not refs_q.compare_and_swap(conn, plan.pk, ref, old, new):
                    raise ConflictError(f"{entry.label}: {ref} moved during the import: import again")
            for sha, size in entry.purged.items():
                lfs_files_q.mark_purged(hub.db, conn, plan.pk, sha, size, now)
            report.refs_moved += len(changes)
            subject = repo_subject(entry.type, entry.repo_id)
            if plan.repo is None:
                repos_q.update_repo(conn, plan.pk, private=entry.private, gated=entry.gated)
                events.append(new_event(hub, conn, plan.pk, "repo"))
                record(conn, "repo.mirrored", repo.owner_id, None, subject,
                       {"bundle": source, "private": entry.private}, actor_name="bundle")
                continue
            if repo.upstream is None:  # forced: the bundle is its source from now on
                repos_q.update_repo(conn, plan.pk, upstream=UPSTREAM_PREFIX + source)
                record(conn, "repo.mirrored", repo.owner_id, None, subject, {"bundle": source, "forced": True},
                       actor_name="bundle")
            # What the source keeps private (or gated) is never opened up here; the rest of this
            # hub's settings of the repo stay as they are.
            if entry.private and not repo.private:
                repos_q.update_repo(conn, plan.pk, private=True)
                record(conn, "repo.visibility_changed", repo.owner_id, None, subject, {"private": True},
                       actor_name="bundle")
            if entry.gated and not repo.gated:
                repos_q.update_repo(conn, plan.pk, gated=entry.gated)
                record(conn, "repo.gating_changed", repo.owner_id, None, subject, {"gated": entry.gated},
                       actor_name="bundle")
            if "refs/heads/main" in changes:
                search_q.change_sort_keys(conn, plan.pk, last_modified=now)
            events.extend(new_event(hub, conn, plan.pk, "ref", ref, old, new) for ref, (old, new) in changes.items())
    return events


def _drop(hub: Hub, created: _Created) -> None:
    """After a failed import: the rows it created go (what was stored is unreferenced: gc's)."""
    if not created.repos and not created.orgs:
        return
    try:
        with hub.db.write() as conn:
            for pk in created.repos:
                search_q.delete_search_text(hub.db, conn, pk)
                redirects_q.remove_repo(conn, pk)
                repos_q.delete_repo(conn, pk)
            for org in created.orgs:
                accounts_q.delete_empty_org(conn, org)
    except Exception:
        log.exception("removing the repos of a failed import failed: %s", created)
