"""Seeded, reproducible synthetic company in accessgov's model, at three sizes, cached on disk.

``python -m bench.scenario --size small`` writes ``bench/data/small/``: ``bundle/`` (the six policy
files, passing ``parse_bundle``), ``grants.json`` (grant edges), ``people.json`` (person ->
home department), ``knobs.json`` (each department's template variations), ``requests.json`` and
``meta.json``.  Same seed and same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.authz.engine import GrantEdge, Request
from bench import template as tpl
from bench.workload import Org, make_probes

SIZES: dict[str, tuple[int, int]] = {"small": (1_000, 50), "medium": (10_000, 300), "large": (100_000, 2_000)}
DEFAULT_SEED = 20261125
N_REQUESTS = 20_000
AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
DATA = Path(__file__).resolve().parent / "data"
COPIED = ("model.conf", "fields.yaml", "resources.yaml", "roles.yaml")
_SOURCES = ("template.py", "scenario.py", "workload.py")


@dataclass(frozen=True, slots=True)
class Probe:
    """One benchmark question: a record request, optionally about one field at a wanted level."""

    req: Request
    field: str = ""  # "" = the record only
    want: str = ""  # "masked" (shown at all) or "visible" (shown in clear) when field is set


@dataclass
class Scenario:
    """A generated company: policy bundle, grants, directory, template knobs and requests."""

    size: str
    seed: int
    at: datetime
    files: dict[str, str]
    grants: list[GrantEdge]
    people: dict[str, str]
    knobs: dict[str, dict[str, Any]]  # leaf department -> its knobs and its division's
    probes: list[Probe] = field(default_factory=list)


def leaf_paths(n_depts: int) -> list[str]:
    """Leaf department paths ``hq/v<j>/d<i>/``, ten per division."""
    return [f"hq/v{i // 10}/d{i}/" for i in range(n_depts)]


def division_of(path: str) -> str:
    """``hq/v3/d31/`` -> ``hq/v3/``."""
    return "/".join(path.split("/")[:2]) + "/"


# -- grants ---------------------------------------------------------------------------------------

def _ordinary_roles(rng: random.Random, home: str) -> list[tuple[str, str, str]]:
    """(role, domain, source) of one ordinary person besides ``employee``."""
    out = []
    r = rng.random()
    if r < 0.35:
        out.append(("sales", home, "crm"))
    elif r < 0.39:
        out.append(("key_account_manager", home, "crm"))
    elif r < 0.42:
        out.append(("cs_agent", "*", "crm"))
    elif r < 0.423:
        out.append(("cs_manager", "*", "crm"))
    elif r < 0.443:
        out.append(("marketing", "*", "crm"))
    elif r < 0.463:
        out.append(("finance", "*", "oa"))
    elif r < 0.478:
        out.append(("hr", rng.choice(["*", division_of(home) + "*"]), "oa"))
    elif r < 0.485:
        out.append(("legal", "*", "oa"))
    if rng.random() < (0.10 if r < 0.39 else 0.025):
        out.append(("contractor", "*", "oa"))
    return out


Assignment = tuple[str, str, str, str]  # sub, role, domain, source


def _people(rng: random.Random, n_people: int, leaves: list[str]) -> tuple[dict[str, str], list[Assignment]]:
    """The directory and (sub, role, domain, source) assignments before time windows."""
    people: dict[str, str] = {}
    raw: list[Assignment] = []
    for k in range(n_people):
        sub, home = f"user:P{k:06d}", leaves[k % len(leaves)]
        people[sub] = home
        raw.append((sub, "employee", "*", "oa"))
        if k < len(leaves):
            raw.append((sub, "sales_manager", home, "crm"))
        elif k < 2 * len(leaves):
            raw.append((sub, "dept_manager", home + "*", "oa"))
        elif k < 2 * len(leaves) + len(leaves) // 10:
            people[sub] = division_of(leaves[(k - 2 * len(leaves)) * 10])  # one division manager each
            raw.append((sub, "dept_manager", people[sub] + "*", "oa"))
        else:
            raw.extend((sub, role, dom, src) for role, dom, src in _ordinary_roles(rng, home))
    central = {"executive": max(3, n_people // 20_000), "auditor": max(3, n_people // 10_000),
               "finance_director": max(1, n_people // 20_000), "crm_admin": 2, "oa_admin": 2, "it_admin": 2}
    subs = sorted(people)
    for role, count in central.items():
        raw.extend((sub, role, "*", "oa") for sub in rng.sample(subs, count))
    return people, raw


def _window(rng: random.Random) -> tuple[datetime | None, datetime | None]:
    """A time window around AT: 40 % expired, 30 % not yet started, 30 % in force."""
    r, days = rng.random(), timedelta(days=1)
    if r < 0.4:
        return AT - rng.randint(30, 90) * days, AT - rng.randint(1, 20) * days
    if r < 0.7:
        return AT + rng.randint(1, 30) * days, rng.choice([None, AT + 90 * days])
    return AT - rng.randint(1, 30) * days, AT + rng.randint(1, 30) * days


def _grants(rng: random.Random, raw: list[Assignment]) -> list[GrantEdge]:
    """Grant edges; 5 % are time-bound (new hires not started yet, leavers, temporary roles)."""
    out = []
    for gid, (sub, role, dom, src) in enumerate(raw, start=1):
        start = until = None
        if rng.random() < 0.05:
            start, until = _window(rng)
        out.append(GrantEdge(sub, role, dom, gid, src, start, until))
    return out


# -- policy bundle --------------------------------------------------------------------------------

def _rules_csv(leaves: list[str], knobs: dict[str, dict[str, Any]], divisions: dict[str, dict[str, Any]]) -> str:
    lines = ["# Generated by bench/scenario.py: company lines, then division lines, then department copies.", ""]
    lines += [", ".join(t) for t in tpl.inheritance_lines()]
    company = tpl.company_rules()
    lines += [_p_line(t, "*") for t in tpl.active_lines(company, {})]
    division_template = tpl.parse_template(tpl.DIVISION_RULES)
    for div, dk in divisions.items():
        lines += [_p_line(t, div + "*") for t in tpl.active_lines(division_template, dk)]
    dept_template = tpl.parse_template(tpl.DEPT_RULES)
    for leaf in leaves:
        lines += [_p_line(t, leaf) for t in tpl.active_lines(dept_template, knobs[leaf])]
    return "\n".join(lines) + "\n"


def _p_line(tokens: tuple[str, ...], dom: str) -> str:
    return ", ".join(("p", tokens[0], dom, *tokens[1:]))


def _field_rules_csv(leaves: list[str], knobs: dict[str, dict[str, Any]]) -> str:
    lines = ["# Generated by bench/scenario.py: company field rules, then department copies.", ""]
    lines += [", ".join(("p2", t[0], "*", *t[1:])) for t in tpl.active_lines(tpl.company_field_rules(), {})]
    dept_template = tpl.parse_template(tpl.DEPT_FIELD_RULES)
    for leaf in leaves:
        lines += [", ".join(("p2", t[0], leaf, *t[1:])) for t in tpl.active_lines(dept_template, knobs[leaf])]
    return "\n".join(lines) + "\n"


def _bundle(leaves: list[str], knobs: dict[str, dict[str, Any]],
            divisions: dict[str, dict[str, Any]]) -> dict[str, str]:
    files = {name: (tpl.POLICIES / name).read_text(encoding="utf-8") for name in COPIED}
    files["rules.csv"] = _rules_csv(leaves, knobs, divisions)
    files["field_rules.csv"] = _field_rules_csv(leaves, knobs)
    return files


# -- generation, cache ----------------------------------------------------------------------------

def generate(size: str, seed: int = DEFAULT_SEED, n_requests: int = N_REQUESTS) -> Scenario:
    """Build a scenario in memory (deterministic in ``size``, ``seed`` and the policies/ inputs)."""
    n_people, n_depts = SIZES[size]
    rng = random.Random(f"{size}:{seed}")
    leaves = leaf_paths(n_depts)
    divisions: dict[str, dict[str, Any]] = {division_of(leaf): {} for leaf in leaves}
    for div in divisions:
        divisions[div] = tpl.draw_division_knobs(rng)
    knobs = {leaf: tpl.draw_dept_knobs(rng) | divisions[division_of(leaf)] for leaf in leaves}
    people, raw = _people(rng, n_people, leaves)
    grants = _grants(rng, raw)
    files = _bundle(leaves, knobs, divisions)
    org = Org(people, leaves, grants, AT)
    probes = [_probe(row, AT) for row in make_probes(rng, org, files, n_requests)]
    return Scenario(size, seed, AT, files, grants, people, knobs, probes)


def _probe(row: list[Any], at: datetime) -> Probe:
    """A probe from its stored row: sub, dom, obj, act, owner, home, attrs, field, want."""
    sub, dom, obj, act, owner, home, attrs, fld, want = row
    return Probe(Request(sub, dom, obj, act, owner, home, attrs, at), fld, want)


def data_dir(size: str, seed: int = DEFAULT_SEED) -> Path:
    """Cache directory of a size (and a non-default seed)."""
    return DATA / (size if seed == DEFAULT_SEED else f"{size}-seed{seed}")


def inputs_digest() -> str:
    """Digest of everything generation depends on: the generator's code and the policies/ inputs."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in [here / s for s in _SOURCES] + [tpl.POLICIES / n for n in (*COPIED, "rules.csv", "field_rules.csv")]:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def save(sc: Scenario, directory: Path) -> None:
    """Write a scenario to its cache directory."""
    (directory / "bundle").mkdir(parents=True, exist_ok=True)
    for name, text in sc.files.items():
        (directory / "bundle" / name).write_text(text, encoding="utf-8")
    grants = [[g.sub, g.role, g.dom, g.grant_id, g.source, _iso(g.valid_from), _iso(g.valid_until)] for g in sc.grants]
    probes = [[p.req.sub, p.req.dom, p.req.obj, p.req.act, p.req.owner, p.req.home, p.req.attrs, p.field, p.want]
              for p in sc.probes]
    for name, obj in (("grants", grants), ("people", sc.people), ("knobs", sc.knobs), ("requests", probes)):
        (directory / f"{name}.json").write_text(json.dumps(obj, separators=(",", ":")), encoding="utf-8")
    meta = {"size": sc.size, "seed": sc.seed, "at": sc.at.isoformat(), "digest": inputs_digest(),
            "people": len(sc.people), "departments": len(sc.knobs), "grants": len(sc.grants),
            "requests": len(sc.probes), "p_lines": sc.files["rules.csv"].count("\np, "),
            "p2_lines": sc.files["field_rules.csv"].count("\np2, ")}
    (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def read(directory: Path) -> Scenario:
    """Read a cached scenario."""
    meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    at = datetime.fromisoformat(meta["at"])
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted((directory / "bundle").iterdir())}

    def load(name: str) -> Any:
        return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))

    grants = [GrantEdge(s, r, d, i, src, _dt(f), _dt(u)) for s, r, d, i, src, f, u in load("grants")]
    probes = [_probe(row, at) for row in load("requests")]
    return Scenario(meta["size"], meta["seed"], at, files, grants, load("people"), load("knobs"), probes)


def load(size: str, seed: int = DEFAULT_SEED, regenerate: bool = False) -> Scenario:
    """The cached scenario, generated first if missing, stale or asked for."""
    directory = data_dir(size, seed)
    meta_path = directory / "meta.json"
    if not regenerate and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("digest") == inputs_digest() and meta.get("seed") == seed:
            return read(directory)
    sc = generate(size, seed)
    save(sc, directory)
    return sc


def main(argv: list[str] | None = None) -> None:
    """CLI: generate (or refresh) the cached scenario of one or more sizes."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="small", help="small, medium, large or a comma list")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--force", action="store_true", help="regenerate even if the cache is current")
    args = ap.parse_args(argv)
    for size in args.size.split(","):
        sc = load(size, args.seed, regenerate=args.force)
        meta = json.loads((data_dir(size, args.seed) / "meta.json").read_text(encoding="utf-8"))
        print(f"{size}: {json.dumps({k: v for k, v in meta.items() if k not in ('at', 'digest')})}")
        del sc


if __name__ == "__main__":
    main()
