"""The migrations build exactly the schema the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import app.decisions.models
import app.directory.models
import app.policy.models
import app.scim.models
import app.sync.models  # noqa: F401  (the models register their tables)
import audit.tables
from app.db import Base, make_engine
from app.migrate import upgrade


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), [Base.metadata, audit.tables.metadata])
        assert diff == [], diff
    finally:
        engine.dispose()
