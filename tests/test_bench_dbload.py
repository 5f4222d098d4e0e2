"""`python -m bench.dbload`: the scenario written through the migrations and loaded back as the service does.

At the small size, on SQLite and on PostgreSQL (a fresh schema; under CI=true a missing server fails,
never skips): the loaded state must equal the scenario's and answer like the in-memory engine.  A
tampered grant must be caught, so the check is known to bite.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from app.db import make_engine
from app.directory.models import Grant
from bench import dbload
from bench import scenario as sc


@pytest.fixture(scope="module")
def small() -> sc.Scenario:
    return sc.load("small")


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_cold_load_agrees_with_the_scenario(db: str, small: sc.Scenario, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue("sqlite_url" if db == "sqlite" else "postgres_url"))
    result = dbload.run(url, small, repeat=1, sample=500)
    check = result["check"]
    assert result["db"] == db
    assert check["edges"] == len(small.grants) and check["edges_equal"], check
    assert check["wrong_homes"] == 0 and check["compared"] == 500 and check["differ"] == 0, check
    assert 0 < check["allowed"] < 500  # both answers occur among those compared
    assert dbload.agrees(result)
    times = result["median"]
    assert times["total"] > 0 and times["total"] >= times["grant edges load"] > 0
    out = dbload.report(result)
    for label in (*dbload.STEPS, "RSS after", "0 differ"):
        assert label in out

    # A grant moved to another department must show up as a disagreement.
    engine = make_engine(url)
    with engine.begin() as conn:
        gid, dep = conn.execute(select(Grant.id, Grant.department_id).where(Grant.department_id.is_not(None))
                                .order_by(Grant.id).limit(1)).one()
        other = "hq-v1-d10" if dep != "hq-v1-d10" else "hq-v0-d0"
        conn.execute(update(Grant).where(Grant.id == gid).values(department_id=other))
    engine.dispose()
    tampered = dbload.cold_load(url, size="small", seed=small.seed, sample=50)["check"]
    assert not tampered["edges_equal"]


def test_grant_scopes_round_trip() -> None:
    from app.directory.repository import grant_domain

    for dom in ("*", "hq/v3/", "hq/v3/*", "hq/v3/d31/", "hq/v3/d31/*"):
        dep, subtree = dbload.grant_scope(dom)
        path = None if dep is None else dep.replace("-", "/") + "/"
        assert grant_domain(path, subtree) == dom
