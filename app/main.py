"""The composition root: ``create_app(settings)`` builds the object graph once."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from app.audits.remediation import GrantRemediator
from app.audits.service import AuditService
from app.auth.verifier import CompositeVerifier, DevTokenVerifier, OidcTokenVerifier, TokenVerifier
from app.authz.directory import StateHolder
from app.config import Environment, Settings
from app.console.security import ConsoleSecurityHeaders
from app.db import make_engine, make_sessionmaker
from app.decisions.fastpath import DecisionFastPath
from app.decisions.recorder import DbDecisionRecorder, DecisionRecorder, NullDecisionRecorder
from app.decisions.resolve import RecordInfo
from app.decisions.search import SearchService
from app.decisions.service import DecisionService
from app.directory.models import Record
from app.directory.service import GrantService
from app.errors import InvalidPolicy
from app.errors_http import install_error_handlers
from app.http_guard import BodyGuard
from app.metrics import Metrics
from app.policy.refresher import StateRefresher
from app.policy.service import PolicyService

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.0005


@dataclass
class Services:
    """Everything the handlers use, built once per app."""

    settings: Settings
    factory: sessionmaker[Session]
    holder: StateHolder
    metrics: Metrics
    verifier: TokenVerifier
    recorder: DecisionRecorder
    policy: PolicyService
    grants: GrantService
    decisions: DecisionService
    search: SearchService
    insight: Any
    refresher: StateRefresher
    sync: Any = None
    audit: Any = None


def build_verifier(settings: Settings) -> TokenVerifier:
    """The token verifier the settings ask for."""
    auth = settings.auth
    oidc = None
    if auth.issuer:
        oidc = OidcTokenVerifier(issuer=auth.issuer, audience=auth.audience, algorithms=auth.algorithms,
                                 required_typ=auth.required_typ, min_refetch_seconds=auth.jwks_min_refetch_seconds,
                                 leeway=auth.leeway_seconds)
    dev = None
    if auth.dev_tokens and settings.environment != Environment.production:
        dev = DevTokenVerifier(secret=auth.dev_secret, audience=auth.audience)
    return CompositeVerifier(oidc, dev)


def build_services(settings: Settings) -> Services:
    """Build the object graph (no I/O beyond creating the database engine)."""
    from app.decisions.insight import InsightService

    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    holder, metrics = StateHolder(), Metrics()
    dl = settings.decision_log
    recorder: DecisionRecorder = (
        DbDecisionRecorder(factory, metrics, queue_size=dl.queue_size, batch_size=dl.batch_size,
                           flush_seconds=dl.flush_seconds) if dl.enabled else NullDecisionRecorder()
    )
    policy = PolicyService(factory=factory, holder=holder, policies_dir=settings.policies_dir, metrics=metrics)

    def record_lookup(rtype: str, rid: str) -> RecordInfo | None:
        with factory() as session:
            row = session.get(Record, (rtype, rid))
            return RecordInfo(row.owner_id, row.department_id, dict(row.properties or {})) if row else None

    decisions = DecisionService(holder=holder, recorder=recorder, metrics=metrics, record_lookup=record_lookup,
                                max_batch=settings.max_batch)
    search = SearchService(holder=holder, decisions=decisions, factory=factory, page_size=settings.search_page_size)
    refresher = StateRefresher(factory=factory, holder=holder, policy=policy, interval=settings.refresh_seconds)
    grants = GrantService(factory=factory, policy=policy)
    return Services(settings, factory, holder, metrics, build_verifier(settings), recorder, policy,
                    grants, decisions, search,
                    InsightService(holder=holder, decisions=decisions), refresher,
                    build_sync(settings, factory, holder, policy),
                    AuditService(factory=factory, holder=holder, settings=settings.audit,
                                 policies_dir=settings.policies_dir, remediator=GrantRemediator(grants)))


def build_sync(settings: Settings, factory: sessionmaker[Session], holder: StateHolder, policy: PolicyService) -> Any:
    """The sync service, with the sources of ``policies/sync/sources.yaml``."""
    from app.sync.config import load_sync_config
    from app.sync.pullers import build_pullers
    from app.sync.service import SyncService

    config = load_sync_config(settings.sync.sources_file or settings.policies_dir / "sync" / "sources.yaml")
    return SyncService(factory=factory, holder=holder, policy=policy, config=config, max_rows=settings.sync.max_rows,
                       pullers=build_pullers(config, settings.policies_dir / "sync"))


def _sync_scheduler(services: Services) -> Any:
    """Start the scheduled pulls of this process (None when off or nothing to pull)."""
    from app.sync.scheduler import SyncScheduler

    if services.sync is None or not services.settings.sync.schedule:
        return None
    scheduler = SyncScheduler(services.sync)
    scheduler.start()
    return scheduler


def _audit_scheduler(services: Services) -> Any:
    """Start the audit's schedule in this process (None when off)."""
    from app.audits.scheduler import AuditScheduler

    if services.audit is None or not services.settings.audit.schedule:
        return None
    scheduler = AuditScheduler(services.audit)
    scheduler.start()
    return scheduler


def create_app(settings: Settings | None = None, services: Services | None = None, *,
               fast_path: bool = True) -> FastAPI:
    """The FastAPI application.

    ``fast_path`` puts the decision endpoints' ASGI fast path (``app.decisions.fastpath``) in front of
    everything; without it every request goes through FastAPI (the tests compare the two).
    """
    settings = settings or Settings()
    services = services or build_services(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from audit import trail

        trail.start(services.factory.kw["bind"])  # adopt a pre-trail database; append-only triggers (PostgreSQL)
        services.recorder.start()
        try:
            services.policy.reload()
        except InvalidPolicy as exc:
            log.error("policy not loaded, decisions are refused: %s", exc.message)
        services.refresher.start()
        schedulers = [s for s in (_sync_scheduler(services), _audit_scheduler(services)) if s is not None]
        yield
        for scheduler in schedulers:
            scheduler.stop()
        services.refresher.stop()
        services.recorder.stop()
        services.factory.kw["bind"].dispose()

    app = FastAPI(
        title="accessgov", version="0.1.0", lifespan=lifespan,
        description="Central permission and access-audit governance for CRM + OA: the AuthZEN Authorization "
        "API 1.0, field visibility, list filters, explanations and effective permissions.",
    )
    app.state.services = services
    app.add_middleware(ConsoleSecurityHeaders)  # inside the body guard: only /console/ responses get its headers
    app.add_middleware(BodyGuard, large_paths=("/v1/sync/sources/",), large_bytes=settings.sync.max_body_mb << 20)
    if fast_path:  # added last: the outermost of the middleware (only FastAPI's error and telemetry layers outside)
        app.add_middleware(DecisionFastPath)
    install_error_handlers(app)
    _include_routers(app)
    _document_bodies(app)
    return app


def _document_bodies(app: FastAPI) -> None:
    """Put the schemas of the bodies the decision endpoints read themselves into the OpenAPI document."""
    from pydantic.json_schema import models_json_schema

    from app.decisions.router import BODY_MODELS

    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            _, defs = models_json_schema([(m, "validation") for m in BODY_MODELS],
                                         ref_template="#/components/schemas/{model}")
            known = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in defs.get("$defs", {}).items():
                known.setdefault(name, definition)
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _include_routers(app: FastAPI) -> None:
    from app.audits.router import router as audit_router
    from app.console.router import router as console_router
    from app.decisions.ext_router import router as ext_router
    from app.decisions.router import router as authzen_router
    from app.directory.router import router as directory_router
    from app.ops import router as ops_router
    from app.policy.router import router as policy_router
    from app.scim.router import router as scim_router
    from app.sync.router import router as sync_router

    for r in (authzen_router, ext_router, directory_router, policy_router, sync_router, scim_router, audit_router,
              ops_router, console_router):
        app.include_router(r)


def app_from_env() -> FastAPI:
    """Uvicorn factory for ``accessgov serve`` (each worker builds its own graph from the environment)."""
    from app.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    # The event loop decides on its own thread and the decision-log writer runs beside it; a thread
    # that gave up the interpreter lock for I/O waits up to this interval to get it back while the
    # loop is busy.  The SQLite writer gives it up for every statement of a transaction, and waits
    # again, while it holds the database's one write lock (the other workers' writers queue behind
    # it): measured in the HTTP benchmark's batch phase, the lock was held ~10 µs per row with 1 ms
    # (5 of them waiting), and backpressure slowed the answers; 0.5 ms: 88,000-94,000 decisions/s
    # against 78,000-84,000, the log keeping up.
    sys.setswitchinterval(SWITCH_INTERVAL)
    return create_app(settings)
