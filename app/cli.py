"""The ``accessgov`` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from app.config import Environment, Settings


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise click.ClickException(f"invalid settings: {exc}") from exc


@click.group()
def main() -> None:
    """accessgov: permission decisions and access governance for CRM + OA."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Processes (one per core in production).")
def serve(host: str, port: int, workers: int) -> None:
    """Migrate the database, import the policy baseline if none is loaded, and serve the API."""
    import uvicorn

    from app.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    _prepare(settings, import_if_empty=True)
    uvicorn.run("app.main:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_config=None, access_log=False)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every Alembic migration."""
    from app.db import make_engine
    from app.migrate import upgrade

    upgrade(make_engine(_settings().database_url))
    click.echo("database schema is up to date")


@main.command()
@click.option("--reset", is_flag=True, help="Delete the demo organisation's data first (SQLite file only).")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database already holds people.")
def demo(reset: bool, if_empty: bool) -> None:
    """Load the demo organisation (about 300 people, 90 days of decisions) into the configured database."""
    from sqlalchemy import func, select

    from app.demo.load import load_demo
    from app.directory.models import Person

    settings = _settings()
    if reset:
        _reset_sqlite(settings)
    services = _prepare(settings, import_if_empty=True)
    if if_empty:
        with services.factory() as session:
            if session.scalar(select(func.count()).select_from(Person)):
                click.echo("the database already holds an organisation; demo not loaded again")
                return
    summary = load_demo(services)
    click.echo(json.dumps(summary, ensure_ascii=False, indent=2))


@main.command("demo-officers")
def demo_officers() -> None:
    """Add the console's three officers to the demo, linked to the test IdP's accounts (development only)."""
    from app.demo.officers import add_officers
    from app.errors import AccessGovError

    settings = _settings()
    if settings.environment.value == "production":
        raise click.ClickException("demo officers sign in with the test IdP's public passwords: not in production")
    services = _prepare(settings, import_if_empty=True)
    try:
        officers = add_officers(services)
    except AccessGovError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(officers, ensure_ascii=False, indent=2))


@main.command("dev-token")
@click.option("--client-id", default="demo-crm", show_default=True)
@click.option("--scopes", default="accessgov.decide,accessgov.directory,accessgov.policy,accessgov.audit",
              show_default=True, help="Comma-separated API scopes.")
@click.option("--ttl", default=86_400, show_default=True, type=int, help="Lifetime in seconds.")
def dev_token(client_id: str, scopes: str, ttl: int) -> None:
    """Print a bearer token accepted only in development mode (ACCESSGOV_AUTH__DEV_TOKENS=true)."""
    from app.auth.verifier import make_dev_token

    settings = _settings()
    if settings.environment == Environment.production:
        raise click.ClickException("development tokens are refused when ACCESSGOV_ENVIRONMENT=production")
    click.echo(make_dev_token(secret=settings.auth.dev_secret, audience=settings.auth.audience,
                              client_id=client_id, scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                              ttl_seconds=ttl))


@main.group()
def policy() -> None:
    """Policy as code: test, import, export."""


@policy.command("test")
@click.option("--dir", "directory", type=click.Path(path_type=Path, exists=True, file_okay=False),
              default=None, help="Policy directory (default: ACCESSGOV_POLICIES_DIR or ./policies).")
def policy_test(directory: Path | None) -> None:
    """Validate the policy files and run policies/tests/*.yaml; exit 1 on any failure."""
    from app.authz.policy import parse_bundle, read_bundle
    from app.authz.policytest import load_tables, run_tables
    from app.errors import InvalidPolicy

    directory = directory or _settings().policies_dir
    try:
        policy_obj = parse_bundle(read_bundle(directory))
    except InvalidPolicy as exc:
        click.echo(f"INVALID: {exc.message}", err=True)
        for problem in exc.details or []:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    results = run_tables(policy_obj, load_tables(directory / "tests"))
    for r in results:
        click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.table}: {r.name}" + ("" if r.passed else f"  — {r.message}"))
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed or not results:
        sys.exit(1)


@policy.command("import")
@click.option("--reason", default="import reviewed baseline from policies/", show_default=True)
@click.option("--actor", default="cli", show_default=True)
def policy_import(reason: str, actor: str) -> None:
    """Import policies/ as a new policy version (validated and tested first)."""
    services = _prepare(_settings(), import_if_empty=False)
    version = services.policy.import_baseline(actor=actor, reason=reason)
    click.echo("policy unchanged (same contents as the active version)" if version is None
               else f"imported as policy version {version.id}")


@policy.command("export")
@click.option("--version", "version_id", type=int, default=None, help="Version id (default: the active one).")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
def policy_export(version_id: int | None, out: Path) -> None:
    """Write a policy version's files to a directory, for review in version control."""
    from app.policy.service import export_version

    services = _prepare(_settings(), import_if_empty=False)
    with services.factory() as session:
        version = (services.policy.get_version_or_raise(session, version_id) if version_id
                   else services.policy.active_version(session))
        if version is None:
            raise click.ClickException("no policy version in the database")
        for path in export_version(version, out):
            click.echo(str(path))


@policy.command("versions")
def policy_versions() -> None:
    """List policy versions, newest (active) first."""
    services = _prepare(_settings(), import_if_empty=False)
    with services.factory() as session:
        for v in services.policy.list_versions(session):
            click.echo(f"{v.id}\t{v.created_at:%Y-%m-%d %H:%M}\t{v.created_by}\t{v.digest[:12]}\t{v.reason}")


@main.group()
def sync() -> None:
    """Identity sync: pull a source, push a snapshot file, list runs."""


def _sync_services() -> Any:
    services = _prepare(_settings(), import_if_empty=True)
    services.policy.reload()
    return services


def _echo_run(run: dict[str, object]) -> None:
    click.echo(json.dumps(run, ensure_ascii=False, indent=2, default=str))
    if run.get("status") in ("failed", "rejected"):
        sys.exit(1)
    if run.get("status") == "held":
        sys.exit(3)


@sync.command("run")
@click.argument("source")
def sync_run(source: str) -> None:
    """Pull SOURCE now through its connector and apply it (exit 1 failed/rejected, 3 held)."""
    from app.errors import AccessGovError

    services = _sync_services()
    try:
        _echo_run(services.sync.run(source, trigger="cli", actor="cli"))
    except AccessGovError as exc:
        raise click.ClickException(f"{exc.message} {exc.details or ''}".strip()) from exc


@sync.command("push")
@click.argument("source")
@click.argument("snapshot", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--confirm", is_flag=True, help="Apply even past the source's disable threshold.")
def sync_push(source: str, snapshot: Path, confirm: bool) -> None:
    """Apply a snapshot file (the JSON body of PUT /v1/sync/sources/SOURCE/snapshot) for SOURCE."""
    from pydantic import ValidationError

    from app.errors import AccessGovError
    from app.sync.schemas import SnapshotIn

    try:
        body = SnapshotIn.model_validate_json(snapshot.read_bytes())
    except ValidationError as exc:
        raise click.ClickException(f"{snapshot}: not a valid snapshot: {exc}") from exc
    services = _sync_services()
    try:
        _echo_run(services.sync.push(body.to_snapshot(source), actor="cli", confirm=confirm))
    except AccessGovError as exc:
        raise click.ClickException(f"{exc.message} {exc.details or ''}".strip()) from exc


@sync.command("runs")
@click.option("--source", default=None)
@click.option("--limit", default=20, show_default=True, type=int)
def sync_runs(source: str | None, limit: int) -> None:
    """The newest runs: id, source, trigger, status, counts."""
    services = _prepare(_settings(), import_if_empty=False)
    for r in services.sync.list_runs(source, limit):
        click.echo(f"{r['id']}\t{r['started_at'][:19]}\t{r['source']}\t{r['trigger']}\t{r['status']}\t"
                   f"{json.dumps(r['counts'], ensure_ascii=False)}")


@main.group("audit")
def audit_group() -> None:
    """The access audit and its tamper-evident trail."""


class _CannotRun(click.ClickException):
    """The command could not do its work at all (exit 2: not the same as problems found, exit 1)."""

    exit_code = 2


def _trail_engine() -> Any:
    from app.db import make_engine

    return make_engine(_settings().database_url)


@audit_group.command("run")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
def audit_run(as_json: bool) -> None:
    """Run the access audit now over the whole population; print the findings by kind and severity."""
    import orjson

    services = _prepare(_settings(), import_if_empty=True)
    services.policy.reload()
    run = services.audit.run(trigger="cli", actor="accessgov audit run")
    if as_json:
        click.echo(orjson.dumps(run, option=orjson.OPT_INDENT_2, default=str).decode())
        return
    counts = run["counts"]
    click.echo(f"audit run {run['id']} ({run['quarter']}): {run['status']}, {counts.get('total', 0)} findings "
               f"({counts.get('new', 0)} new, {counts.get('seen_again', 0)} seen again, "
               f"{counts.get('resolved', 0)} resolved)")
    for kind, n in sorted(counts.get("by_kind", {}).items()):
        click.echo(f"  {kind:<28} {n}")
    for severity in ("critical", "high", "medium", "low"):
        if counts.get("by_severity", {}).get(severity):
            click.echo(f"  severity {severity:<19} {counts['by_severity'][severity]}")


@audit_group.command("verify")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit_verify(as_json: bool) -> None:
    """Check the trail's hash chain and re-hash every sealed record: exit 0 intact, 1 problems found, 2 not run.

    Each problem names the table and the record's id (or the trail entry's seq) and what is wrong:
    edited, deleted (with its neighbours), inserted, reordered, unsealed.  Keep the printed head hash
    somewhere else (a log, a ticket): a chain rewritten whole from an old entry on is caught only by
    comparing it with such an anchor.
    """
    from audit.trail import verify

    engine = _trail_engine()
    try:
        with engine.connect() as conn:
            report = verify(conn)
    except Exception as exc:
        raise _CannotRun(f"the audit trail could not be verified: {exc}") from exc
    finally:
        engine.dispose()
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        status = "OK" if report.ok else f"{len(report.problems) + report.more_problems} PROBLEM(S)"
        click.echo(f"audit trail: {status}: {report.entries:,} entries from seq {report.retained_from},"
                   f" {report.records:,} records re-hashed in {report.seconds:.1f} s")
        click.echo(f"head: seq {report.head_seq} hash {report.head_hash}")
        for p in report.problems:
            click.echo(f"  {p.where()}: {p.what}")
        if report.more_problems:
            click.echo(f"  ... and {report.more_problems} more")
        for note in report.notes:
            click.echo(f"note: {note}")
    if not report.ok:
        sys.exit(1)


@audit_group.command("purge")
@click.option("--before", default=None, metavar="ISO-DATE",
              help="Purge what was sealed before this time (default and latest: the retention, in days, ago).")
def audit_purge(before: str | None) -> None:
    """Delete decision records and their trail entries older than the retention (at least 180 days).

    The purge is itself recorded in the trail (a retention entry), so verify still passes.
    """
    from datetime import UTC, datetime, timedelta

    from audit.trail import purge

    settings = _settings()
    days = settings.audit.retention_days
    now = datetime.now(UTC)
    try:
        cutoff = datetime.fromisoformat(before) if before else now - timedelta(days=days)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO date or time: {before}", param_hint="--before") from exc
    if cutoff.tzinfo is None:
        cutoff = cutoff.replace(tzinfo=UTC)
    engine = _trail_engine()
    try:
        with engine.begin() as conn:
            result = purge(conn, before=cutoff, retention_days=days, now=now, actor="cli")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:
        raise _CannotRun(f"the purge failed, nothing was deleted: {exc}") from exc
    finally:
        engine.dispose()
    click.echo(json.dumps(result.as_dict(), indent=2))


def _prepare(settings: Settings, *, import_if_empty: bool):  # type: ignore[no-untyped-def]
    from app.main import build_services
    from app.migrate import upgrade
    from audit import trail

    services = build_services(settings)
    upgrade(services.factory.kw["bind"])
    trail.start(services.factory.kw["bind"])  # before anything is sealed: adopt a pre-trail database, protect
    if import_if_empty:
        with services.factory() as session:
            empty = services.policy.active_version(session) is None
        if empty:
            services.policy.import_baseline(actor="cli", reason="initial import of policies/")
    return services


def _reset_sqlite(settings: Settings) -> None:
    if not settings.database_url.startswith("sqlite"):
        raise click.ClickException("--reset only deletes an SQLite file; empty a PostgreSQL database yourself")
    path = Path(settings.database_url.split("///", 1)[-1])
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
