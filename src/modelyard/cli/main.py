"""``modelyard serve | users | orgs | tokens | seed | import | fsck | gc | storage | reindex | rescan | audit | db``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from modelyard.config import Settings
from modelyard.errors import HubError, InvalidInputError
from modelyard.services.hub import Hub


class State:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        self._hub: Hub | None = None

    def settings(self, **extra: Any) -> Settings:
        return Settings(**{**self.overrides, **extra})

    def hub(self) -> Hub:
        if self._hub is None:
            self._hub = Hub(self.settings())
            self._hub.upgrade_schema()
        return self._hub


pass_state = click.make_pass_decorator(State)


def fail(exc: HubError) -> None:
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(1)


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help="Folder for SQLite and blobs [MODELYARD_DATA_DIR]")
@click.option("--database-url", help="SQLAlchemy URL [MODELYARD_DATABASE_URL]")
@click.option("--storage-url", help="Blob store URL: file:///path or s3://bucket/prefix [MODELYARD_STORAGE_URL]")
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None, database_url: str | None, storage_url: str | None) -> None:
    """modelyard: a self-hosted model hub that speaks the Hugging Face Hub API."""
    ctx.obj = State({"data_dir": data_dir, "database_url": database_url, "storage_url": storage_url})


@cli.command()
@click.option("--host", default=None, help="Address to listen on [127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port [8000]")
@click.option("--workers", type=int, default=None, help="Worker processes [1]")
@pass_state
def serve(state: State, host: str | None, port: int | None, workers: int | None) -> None:
    """Migrate the database, create the admin account on first start, and serve the API."""
    import uvicorn

    from modelyard.services.keys import secure_data_dir

    extra = {k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None}
    settings = state.settings(**extra)
    secure_data_dir(settings)
    hub = state.hub()
    token = None
    try:
        from modelyard.services.accounts import ensure_admin
        from modelyard.services.ratelimit import RateLimiter

        RateLimiter(settings)  # a malformed MODELYARD_RATE_LIMIT_* stops the start, not each request
        hub.signing_key()  # created (or moved out of the database) before any worker needs it
        token = ensure_admin(hub)
    except HubError as exc:
        fail(exc)
    base = f"http://{settings.host}:{settings.port}"
    if token:
        _show_admin_token(settings, token)
    click.echo(f"  export HF_ENDPOINT={base}")
    if not settings.public_url and not settings.allowed_hosts and settings.host in ("0.0.0.0", "::"):
        click.echo("warning: only localhost names are answered; set MODELYARD_PUBLIC_URL or "
                   "MODELYARD_ALLOWED_HOSTS for the names clients use", err=True)
    click.echo(f"Serving modelyard on {base}", err=True)
    sys.stdout.flush()
    hub.close()
    # Workers rebuild Settings from the environment, so hand every setting over through it.
    os.environ.update(settings_environment(settings))
    from modelyard.http.protocol import HttpLimits, limited_protocol

    # The limits travel inside the protocol factory, which uvicorn pickles into each worker.
    uvicorn.run(
        "modelyard.http.app:create_app_from_env", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level="warning", http=limited_protocol(HttpLimits.from_settings(settings)),
        loop="uvloop", timeout_keep_alive=30, access_log=False, timeout_graceful_shutdown=settings.shutdown_timeout,
        # The client's address is the peer's; X-Forwarded-* are read by the app, and only with
        # MODELYARD_TRUST_PROXY_HEADERS (uvicorn would believe any loopback peer's by default).
        proxy_headers=False,
    )


def settings_environment(settings: Settings) -> dict[str, str]:
    """``MODELYARD_*`` variables that rebuild ``settings`` (lists as JSON, secrets in clear)."""
    env = {}
    for key, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        secret = getattr(settings, key)
        if hasattr(secret, "get_secret_value"):  # SecretStr: the workers need the value itself
            value = secret.get_secret_value()
        env[f"MODELYARD_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def _show_admin_token(settings: Settings, token: str) -> None:
    """Show the new admin token once, on the terminal only: never into a log file or journal."""
    if sys.stdout.isatty():
        click.echo("Created the admin account. Its token (shown once):")
        click.echo(f"  export HF_TOKEN={token}")
        return
    path = settings.data_dir / "admin-token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    click.echo(f"Created the admin account. Its token is in {path} (readable only by this user; "
               "it is not printed because this output is not a terminal). Delete the file once read.")


@cli.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@click.argument("name")
@click.option("--fullname", default="")
@click.option("--email", default=None)
@click.option("--admin", is_flag=True)
@click.option("--password-stdin", is_flag=True, help="Read the password for signing in to the web pages from stdin")
@pass_state
def users_create(state: State, name: str, fullname: str, email: str | None, admin: bool, password_stdin: bool) -> None:
    from modelyard.services.accounts import create_user
    from modelyard.services.sessions import check_password_rules, set_password

    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    try:
        if password is not None:
            check_password_rules(password)  # before the account exists: a refusal creates nothing
        create_user(state.hub(), name, fullname, email, admin)
        if password is not None:
            set_password(state.hub(), name, password)
    except HubError as exc:
        fail(exc)
    click.echo(f"Created user {name}")


@cli.group()
def orgs() -> None:
    """Manage organizations."""


@orgs.command("create")
@click.argument("name")
@click.option("--fullname", default="")
@click.option("--default-private", is_flag=True, help="New repos of this org are private")
@pass_state
def orgs_create(state: State, name: str, fullname: str, default_private: bool) -> None:
    from modelyard.services.accounts import create_org

    try:
        create_org(state.hub(), name, fullname, default_private)
    except HubError as exc:
        fail(exc)
    click.echo(f"Created organization {name}")


@orgs.command("add-member")
@click.argument("org")
@click.argument("user")
@click.option("--role", type=click.Choice(["read", "write", "admin"]), required=True)
@pass_state
def orgs_add_member(state: State, org: str, user: str, role: str) -> None:
    from modelyard.services.accounts import add_member

    try:
        add_member(state.hub(), org, user, role)
    except HubError as exc:
        fail(exc)
    click.echo(f"{user} is now {role} in {org}")


@cli.group()
def tokens() -> None:
    """Manage access tokens."""


@tokens.command("create")
@click.argument("user")
@click.option("--name", default="token")
@click.option("--role", type=click.Choice(["read", "write", "fineGrained"]), required=True)
@click.option("--value", default=None, help="Provision a known token value (hf_...)")
@click.option("--scope", "scopes", multiple=True, metavar="TYPE:NAME=PERM[,PERM]",
              help="fineGrained: e.g. model:acme/bert=repo.content.read,repo.write or org:acme=repo.write")
@click.option("--global", "global_perms", default="", metavar="PERM[,PERM]",
              help="fineGrained: permissions on everything (repo.content.read, repo.write, discussion.write, "
                   "webhooks.write)")
@click.option("--expires", type=click.DateTime(), default=None, help="UTC time from which the token is refused")
@pass_state
def tokens_create(state: State, user: str, name: str, role: str, value: str | None, scopes: tuple[str, ...],
                  global_perms: str, expires: Any) -> None:
    from modelyard.services.accounts import create_token
    from modelyard.services.auth import FINE_GRAINED, parse_scopes

    try:
        parsed = None
        if role == FINE_GRAINED:
            scoped = []
            for item in scopes:
                entity, _, perms = item.partition("=")
                kind, _, target = entity.partition(":")
                scoped.append({"entity": {"type": kind, "name": target}, "permissions": perms.split(",")})
            parsed = parse_scopes(scoped, [p for p in global_perms.split(",") if p])
        elif scopes or global_perms:
            raise InvalidInputError("--scope and --global are for --role fineGrained")
        click.echo(create_token(state.hub(), user, name, role, value, scopes=parsed, expires_at=expires))
    except HubError as exc:
        fail(exc)


@tokens.command("revoke")
@click.argument("user")
@click.option("--name", default=None, help="Revoke only the tokens with this name")
@pass_state
def tokens_revoke(state: State, user: str, name: str | None) -> None:
    from modelyard.services.accounts import revoke_tokens

    try:
        count = revoke_tokens(state.hub(), user, name)
    except HubError as exc:
        fail(exc)
    click.echo(f"Revoked {count} token(s)")


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_state
def seed(state: State, file: Path) -> None:
    """Provision users, tokens and orgs from a JSON file (idempotent)."""
    from modelyard.services.accounts import seed as seed_svc

    try:
        spec = json.loads(file.read_text())
    except ValueError as exc:
        click.echo(f"error: {file} is not valid JSON: {exc}", err=True)
        sys.exit(1)
    try:
        seed_svc(state.hub(), spec)
    except (HubError, KeyError, TypeError) as exc:
        click.echo(f"error: {getattr(exc, 'message', exc)}", err=True)
        sys.exit(1)
    click.echo("Seeded")


@cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("repo_id")
@click.option("--repo-type", type=click.Choice(["model", "dataset"]), default="model")
@click.option("--private", is_flag=True)
@click.option("--message", default=None)
@click.option("--as-user", default="admin", help="Account the commit is made as")
@pass_state
def import_(state: State, directory: Path, repo_id: str, repo_type: str, private: bool,
            message: str | None, as_user: str) -> None:
    """Commit a local folder to a repo (created if missing); large files go to LFS storage."""
    from modelyard.services.importer import import_folder

    try:
        oid = import_folder(state.hub(), directory, repo_id, repo_type, private, message, as_user)
    except HubError as exc:
        fail(exc)
    click.echo(f"Committed {oid}")


@cli.group()
def bundle() -> None:
    """Carry repos to a hub with no network path to this one (an air gap), as one file."""


@bundle.command("export")
@click.argument("repo_ids", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The bundle file to write")
@click.option("--repo-type", type=click.Choice(["model", "dataset", "space"]), default="model")
@click.option("--have", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="What the receiving hub holds (`modelyard bundle have` there): left out of the bundle")
@pass_state
def bundle_export(state: State, repo_ids: tuple[str, ...], output: Path, repo_type: str, have: Path | None) -> None:
    """Write the repos (every branch, tag and commit, and their large files) into one file."""
    from modelyard.services.bundles import export

    try:
        report = export(state.hub(), [(repo_type, r) for r in repo_ids], output, have)
    except HubError as exc:
        fail(exc)
    click.echo(f"Exported {report.repos} repo(s), {report.commits} commit(s), {report.lfs_objects} LFS object(s), "
               f"{report.xorbs} xorb(s) to {output}: {report.bytes} bytes, sha256 {report.sha256}")


@bundle.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the refs of a repo of this hub's own of the same name "
              "(it then becomes read-only, like every imported repo)")
@pass_state
def bundle_import(state: State, file: Path, force: bool) -> None:
    """Check a bundle whole, then store its repos (read-only here); importing it again changes nothing."""
    from modelyard.services.bundles import import_

    try:
        report = import_(state.hub(), file, force)
    except HubError as exc:
        fail(exc)
    click.echo(f"Imported {report.repos} repo(s): {report.commits} new commit(s), {report.refs_moved} ref(s) "
               f"changed, {report.lfs_objects} LFS object(s), {report.xorbs} xorb(s), {report.bytes} bytes stored")


@bundle.command("have")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="The file to write, for `modelyard bundle export --have` on the other hub")
@pass_state
def bundle_have(state: State, output: Path) -> None:
    """List the xorbs and LFS objects this hub holds, so that bundles made for it leave them out."""
    from modelyard.services.bundles import write_have

    try:
        held = write_have(state.hub(), output)
    except HubError as exc:
        fail(exc)
    click.echo(f"Wrote {output}: {len(held.xorbs)} xorb(s), {len(held.lfs)} LFS object(s)")


@cli.command()
@pass_state
def fsck(state: State) -> None:
    """Check refs, commits, trees, blobs and LFS objects; exit 1 naming what is broken."""
    from modelyard.services.fsck import check

    problems = check(state.hub())
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"{len(problems)} problem(s) found", err=True)
        sys.exit(1)
    click.echo("fsck: no problems found")


@cli.command()
@click.option("--grace", type=int, default=None,
              help="Keep unreferenced uploads younger than this many seconds [MODELYARD_GC_GRACE_PERIOD, 86400]")
@click.option("--dry-run", is_flag=True, help="Only count the files repositories would let go of")
@pass_state
def gc(state: State, grace: int | None, dry_run: bool) -> None:
    """Reclaim LFS objects, Xet xorbs and shards that no ref of any repository needs."""
    from modelyard.services.gc import collect

    report = collect(state.hub(), grace, dry_run)
    for line in report.skipped:
        click.echo(f"skipped {line}", err=True)
    click.echo(json.dumps({
        "dry_run": dry_run, "repo_files_released": report.repo_files_released,
        "lfs_objects": report.lfs_objects, "lfs_bytes": report.lfs_bytes, "xet_files": report.xet_files,
        "xorbs": report.xorbs, "xorb_bytes": report.xorb_bytes, "shards": report.shards,
        "shard_bytes": report.shard_bytes, "freed_bytes": report.freed_bytes,
        "uploads_abandoned": report.uploads_abandoned, "upload_files": report.upload_files,
        "clone_packs": report.clone_packs, "staged_files": report.staged_files, "file_scans": report.file_scans,
    }))


@cli.command()
@pass_state
def storage(state: State) -> None:
    """Print storage accounting as JSON: per repo logical and physical bytes, hub totals."""
    from modelyard.services.gc import usage

    click.echo(json.dumps(usage(state.hub()), indent=1))


@cli.command()
@click.argument("repo_id", required=False)
@click.option("--repo-type", type=click.Choice(["model", "dataset"]), default=None)
@pass_state
def reindex(state: State, repo_id: str | None, repo_type: str | None) -> None:
    """Rebuild the catalog (cards, tags, parameters, lineage, search) from the repositories."""
    from modelyard.services.indexer import reindex as reindex_svc

    try:
        count = reindex_svc(state.hub(), repo_id, repo_type)
    except HubError as exc:
        fail(exc)
    click.echo(f"Reindexed {count} repositor{'y' if count == 1 else 'ies'}")


@cli.command()
@click.option("--account", help="Only the entries in this org's (or user's) log")
@click.option("--action", "actions", multiple=True, help="Only these actions (repeatable), e.g. repo.deleted")
@click.option("--actor", help="Only what this user did")
@click.option("--since", type=click.DateTime(), help="Only entries at or after this UTC time")
@click.option("--limit", type=int, default=100_000, show_default=True)
@pass_state
def audit(state: State, account: str | None, actions: tuple[str, ...], actor: str | None, since: Any,
          limit: int) -> None:
    """Print the audit log as JSON lines, newest first (who did what, when, from where)."""
    from modelyard.services.audit import operator_log

    try:
        entries = operator_log(state.hub(), account, list(actions) or None, actor, since, limit)
    except HubError as exc:
        fail(exc)
    for entry in entries:
        click.echo(json.dumps(entry, sort_keys=True))


@cli.command()
@click.option("--all", "everything", is_flag=True, help="Scan every file again, not only those scanned by older rules")
@click.option("--backfill", is_flag=True, help="Also queue every file of every repo that was never scanned")
@pass_state
def rescan(state: State, everything: bool, backfill: bool) -> None:
    """Queue scans again after the scanners or their rules changed (the servers' jobs run them)."""
    from modelyard.services.scans import backfill as backfill_svc
    from modelyard.services.scans import rescan as rescan_svc

    hub = state.hub()
    count = rescan_svc(hub, everything)
    click.echo(f"Queued {count} scan{'' if count == 1 else 's'} again")
    if backfill:
        fresh = backfill_svc(hub)
        click.echo(f"Queued {fresh} file{'' if fresh == 1 else 's'} never scanned")


@cli.command()
@click.option("--threads", type=int, default=None, help="Threads running jobs [MODELYARD_JOB_THREADS, 1]")
@pass_state
def worker(state: State, threads: int | None) -> None:
    """Run background jobs (catalog, storage accounting) until interrupted, beside or instead of
    the ones every `serve` process runs (set MODELYARD_JOB_THREADS=0 there to leave them here)."""
    from modelyard.services.hub import Hub

    hub = Hub(state.settings(**({"job_threads": threads} if threads is not None else {})))
    try:
        hub.jobs.run_forever()
    finally:
        hub.close()


@cli.command()
@click.argument("repo_id")
@click.option("--repo-type", type=click.Choice(["model", "dataset", "space"]), default="model")
@click.option("--revision", "revisions", multiple=True,
              help="A branch, tag or commit whose files to fetch now and at every sync [main]; repeat for more")
@click.option("--all-revisions", is_flag=True, help="Fetch the files of every branch and tag")
@click.option("--lazy", is_flag=True, help="Only the history and refs: files are fetched when first asked for")
@pass_state
def mirror(state: State, repo_id: str, repo_type: str, revisions: tuple[str, ...], all_revisions: bool,
           lazy: bool) -> None:
    """Copy a repo from the upstream hub (MODELYARD_UPSTREAM_URL) with its commit ids, or bring a
    mirror up to date; resumable (files already here are not fetched again)."""
    from modelyard.services import mirror as mirror_svc

    wanted = None if lazy else ["*"] if all_revisions else list(revisions) or ["main"]

    def progress(file: mirror_svc.UpstreamFile) -> None:
        click.echo(f"fetching {file.path} ({file.size} bytes)", err=True)

    hub = state.hub()
    try:
        found, landed = mirror_svc.copy(hub, repo_type, repo_id, wanted, progress)
    except HubError as exc:
        fail(exc)
    finally:
        hub.close()
    click.echo(f"Mirrored {repo_type} {found.repo_id} from {found.upstream_id}: {landed.fetched} file(s) "
               f"fetched ({landed.bytes} bytes)")
    if landed.failed:
        for line in landed.failed:
            click.echo(f"error: {line}", err=True)
        sys.exit(1)


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_state
def db_upgrade(state: State) -> None:
    """Apply migrations up to the newest schema."""
    state.hub()
    click.echo("Database is up to date")


def main() -> None:
    os.umask(0o077)  # the database, the blobs and the key file: readable by this user only
    cli(auto_envvar_prefix=None)
