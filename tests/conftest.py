"""Shared fixtures: databases (SQLite file and a PostgreSQL schema per test), the app, tokens."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.auth.verifier import make_dev_token
from app.config import AuditSettings, AuthSettings, Settings
from app.db import make_engine, make_sessionmaker, transaction
from app.main import build_services, create_app
from app.migrate import upgrade
from tests.factories import seed_org
from tests.support.idp_fixture import idp  # noqa: F401 - the session-wide test IdP

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("ACCESSGOV_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEV_SECRET = "test-secret-" + "x" * 20
AUDIENCE = "accessgov"
ALL_SCOPES = ["accessgov.decide", "accessgov.directory", "accessgov.policy", "accessgov.audit"]


def in_ci() -> bool:
    """True when running under CI, where no required service may be skipped."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _postgres_or_skip() -> None:
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        if in_ci():
            pytest.fail(f"PostgreSQL is required under CI and not reachable at {POSTGRES_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file."""
    return f"sqlite:///{tmp_path / 'accessgov.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the real PostgreSQL server, dropped afterwards."""
    _postgres_or_skip()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with admin.connect() as conn:
        # A test that leaked an open transaction must fail loudly here, not hang the suite.
        conn.execute(text("SET lock_timeout = '20s'"))
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each store test runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


def make_settings(db_url: str, **overrides: object) -> Settings:
    """Test settings: dev tokens on, the repository's policies."""
    auth = overrides.pop("auth", AuthSettings(dev_tokens=True, dev_secret=DEV_SECRET, audience=AUDIENCE))
    audit = overrides.pop("audit", AuditSettings(schedule=False))  # tests run the audit when they mean to
    return Settings(environment="test", database_url=db_url, policies_dir=ROOT / "policies", auth=auth,
                    audit=audit, **overrides)


def prepare_database(settings: Settings, seed: Callable[..., None] | None = seed_org) -> None:
    """Migrate, import the policy baseline, seed the mini organisation."""
    services = build_services(settings)
    engine = services.factory.kw["bind"]
    upgrade(engine)
    services.policy.import_baseline(actor="test", reason="baseline")
    if seed is not None:
        with transaction(services.factory) as session:
            seed(session)
    engine.dispose()


@pytest.fixture
def app_factory() -> Iterator[Callable[..., TestClient]]:
    """Build a started app (lifespan run) on a prepared database; closed after the test."""
    clients: list[TestClient] = []

    def make(db_url: str, seed: Callable[..., None] | None = seed_org, **overrides: object) -> TestClient:
        settings = make_settings(db_url, **overrides)
        prepare_database(settings, seed)
        client = TestClient(create_app(settings))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(app_factory: Callable[..., TestClient], sqlite_url: str) -> TestClient:
    """The app on SQLite with the mini organisation."""
    return app_factory(sqlite_url)


def dev_token(client_id: str = "crm-backend", scopes: list[str] | None = None, ttl: int = 3600) -> str:
    """A development token for tests."""
    return make_dev_token(secret=DEV_SECRET, audience=AUDIENCE, client_id=client_id,
                          scopes=ALL_SCOPES if scopes is None else scopes, ttl_seconds=ttl)


def auth(client_id: str = "crm-backend", scopes: list[str] | None = None) -> dict[str, str]:
    """Authorization header with a development token."""
    return {"Authorization": f"Bearer {dev_token(client_id, scopes)}"}


@pytest.fixture
def session_factory(db_url: str) -> Iterator[object]:
    """A migrated database with the baseline policy and mini org, and its session factory."""
    settings = make_settings(db_url)
    prepare_database(settings)
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


# -- the console (app/console): its own test IdP client, people with duties, a reserved socket ------

CONSOLE_CLIENT = "accessgov-console"
CONSOLE_TEST_BASE = "http://testserver"  # TestClient's origin: the console's redirect URI for TestClient tests
CONSOLE_SECRET_KEY = "console-test-key-" + "k" * 24
# person id, IdP login, sub, name, employee no., duties, linked by ("account": an idp account, "subject": idp_subject)
CONSOLE_PEOPLE = [
    ("P901", "sunli", "u-console-secadmin", "孙丽", "C9001", ["console_security_admin"], "account"),
    ("P902", "zhouqiang", "u-console-auditor", "周强", "C9002", ["console_auditor"], "subject"),
    ("P903", "wugang", "u-console-sysadmin", "吴刚", "C9003", ["console_system_admin"], "account"),
    ("P904", "zhengjie", "u-console-noduty", "郑洁", "C9004", [], "account"),
    ("P905", "fengtao", "u-console-twoduties", "冯涛", "C9005", ["console_security_admin", "console_auditor"],
     "account"),
]


def seed_console_people(session: object) -> None:
    """The console's people in the root department, with their duties granted company-wide (the two-duty
    person's second grant is written directly, as a source mapping would: the grant service refuses it)."""
    from sqlalchemy import select as _select

    from app.directory.models import Account, Department, Grant, Person

    root = min(session.scalars(_select(Department)), key=lambda d: (d.path.count("/"), d.path))  # type: ignore[attr-defined]
    for pid, _login, sub, name, employee_no, duties, link in CONSOLE_PEOPLE:
        session.add(Person(id=pid, name=name, employee_no=employee_no, department_id=root.id, status="active",  # type: ignore[attr-defined]
                           idp_subject=sub if link == "subject" else None))
        session.flush()  # type: ignore[attr-defined]
        if link == "account":
            session.add(Account(system="idp", local_id=sub, person_id=pid, status="active", display_name=name,  # type: ignore[attr-defined]
                                employee_no=employee_no, link_method="admin"))
        for role in ["employee", *duties]:
            session.add(Grant(person_id=pid, role=role, department_id=None, include_subtree=False,  # type: ignore[attr-defined]
                              source_system="manual", granted_by="test", reason="console test duty"))


@pytest.fixture(scope="session")
def console_socket() -> Iterator[object]:
    """A socket bound now (port 0) so the IdP can learn the browser tests' exact redirect URI first."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def console_idp(console_socket: object) -> Iterator[object]:
    """A test IdP whose console clients redirect to TestClient's origin and to the reserved socket."""
    from tests.support.idp_fixture import serve_idp

    port = console_socket.getsockname()[1]  # type: ignore[attr-defined]
    yield from serve_idp([f"{CONSOLE_TEST_BASE}/console/auth/callback", f"http://127.0.0.1:{port}/console/auth/callback"])


def seed_console_org(session: object) -> None:
    """The mini organisation and the console's people."""
    seed_org(session)
    seed_console_people(session)


def services_of(client: TestClient) -> Any:
    """The app's services behind a test client."""
    return client.app.state.services  # type: ignore[attr-defined]


@pytest.fixture
def audited_console(app_factory: Callable[..., TestClient], sqlite_url: str, console_idp: Any,
                    monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """The mini organisation with the console's people, the console on (the test IdP), after an audit run."""
    return console_app(app_factory, sqlite_url, console_idp.issuer, monkeypatch)


def console_app(app_factory: Callable[..., TestClient], db_url: str, issuer: str,
                monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """``audited_console`` on any database."""
    console_env(monkeypatch, issuer)
    client = app_factory(db_url, seed=seed_console_org)
    services_of(client).audit.run(trigger="manual", actor="test")
    return client


def console_env(monkeypatch: pytest.MonkeyPatch, issuer: str, **extra: str) -> None:
    """ACCESSGOV_CONSOLE__* for one IdP named `test` (read by the Settings made after this)."""
    import json

    idps = [{"name": "test", "display_name": "测试 IdP", "issuer": issuer, "client_id": CONSOLE_CLIENT,
             "client_secret": "accessgov-console-test-secret", "scopes": ["openid", "profile", "email"]}]
    monkeypatch.setenv("ACCESSGOV_CONSOLE__IDPS", json.dumps(idps))
    monkeypatch.setenv("ACCESSGOV_CONSOLE__SECRET_KEY", CONSOLE_SECRET_KEY)
    monkeypatch.setenv("ACCESSGOV_CONSOLE__BASE_URL", extra.pop("base_url", CONSOLE_TEST_BASE))
    for key, value in extra.items():
        monkeypatch.setenv(f"ACCESSGOV_CONSOLE__{key.upper()}", value)
