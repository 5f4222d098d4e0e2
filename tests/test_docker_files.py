"""The container files (docker/Dockerfile, docker/compose.yaml, .dockerignore), checked without Docker.

No Docker engine runs where these tests run, and the docker CLI here has no compose plugin, so the
compose file is read with PyYAML (after Compose-style ${VAR:-default} interpolation) and the
Dockerfile with a small parser. What is checked is what can go wrong without an engine noticing
first: paths, the build context, the user, the command, the settings names and the wheel contents.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from fastapi.testclient import TestClient

from app.cli import main as cli_main
from app.config import Environment, Settings
from app.main import create_app
from app.migrate import upgrade
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCKER_README = ROOT / "docker" / "README.md"

BASE_IMAGE = "python:3.11-slim-bookworm"
COMPOSE_DB_URL = "postgresql+psycopg://accessgov:accessgov@postgres:5432/accessgov"
# Environment variables the compose file may set before the service reads them.
NOT_READ_YET = {"ACCESSGOV_REDIS_URL"}  # used from the multi-replica issue on


# -- the Dockerfile -----------------------------------------------------------------------------


@dataclass
class Stage:
    """One FROM ... stage: its image, name and instructions (keyword upper-cased, arguments)."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def _logical_lines(text: str) -> Iterator[str]:
    """Dockerfile lines with continuations joined and comment lines dropped (as the parser does)."""
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        buffer += line
        if buffer.strip():
            yield buffer.strip()
        buffer = ""
    if buffer.strip():
        yield buffer.strip()


def parse_dockerfile(path: Path = DOCKERFILE) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults (before the first FROM) and the stages, with ${ARG} in FROM resolved."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--platform=")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages:
            if keyword == "ARG":
                arg_name, _, default = args.partition("=")
                global_args[arg_name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def exec_form(args: str) -> list[str]:
    """The JSON (exec) form of CMD/ENTRYPOINT/HEALTHCHECK CMD/COPY; a shell form fails the test."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        pytest.fail(f"expected the exec (JSON) form, got: {args}")
    assert isinstance(value, list)
    assert all(isinstance(v, str) for v in value)
    return value


def copy_parts(args: str) -> tuple[dict[str, str], list[str], str]:
    """COPY's flags (--from=..., --chown=...), sources and destination."""
    words = shlex.split(args) if not args.startswith("[") else exec_form(args)
    flags = {}
    while words and words[0].startswith("--"):
        key, _, value = words.pop(0)[2:].partition("=")
        flags[key] = value
    assert len(words) >= 2, f"COPY needs sources and a destination: {args}"
    return flags, words[:-1], words[-1]


def runtime_stage() -> Stage:
    return parse_dockerfile()[1][-1]


# -- .dockerignore (moby patternmatcher semantics: anchored at the context root) ---------------


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            i += 2
            if pattern.startswith("/", i):
                out, i = out + "(?:.*/)?", i + 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[" and "]" in pattern[i:]:
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body[:1] in "^!" and body else body) + "]"
            i = end
        else:
            out += re.escape(char)
        i += 1
    return re.compile(out)


def dockerignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(is an exception "!...", pattern) in file order; the last matching rule wins."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        line = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negated, _pattern_regex(line)))
    return rules


def excluded(relpath: str, rules: list[tuple[bool, re.Pattern[str]]] | None = None) -> bool:
    """Whether the build context leaves this path out (a pattern matching a parent excludes it too)."""
    rules = dockerignore_rules() if rules is None else rules
    parts = relpath.split("/")
    result = False
    for negated, regex in rules:
        if any(regex.fullmatch("/".join(parts[:k])) for k in range(1, len(parts) + 1)):
            result = not negated
    return result


def build_context_files() -> list[str]:
    """Every file of the repository that `docker build -f docker/Dockerfile .` sends (relative paths)."""
    rules = dockerignore_rules()
    can_prune = not any(negated for negated, _ in rules)
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        rel_dir = Path(dirpath).relative_to(ROOT).as_posix()
        prefix = "" if rel_dir == "." else rel_dir + "/"
        if can_prune:
            dirnames[:] = [d for d in dirnames if not excluded(prefix + d, rules)]
        files.extend(prefix + f for f in filenames if not excluded(prefix + f, rules))
    return sorted(files)


# -- compose ------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$(?:(\$)|\{(\w+)(?:(:?-)([^}]*))?\}|\{([^}]*)\}|(\w+))")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}; anything else fails."""

    def replace(m: re.Match[str]) -> str:
        escaped, name, operator, default, unsupported, bare = m.groups()
        if escaped:
            return "$"
        if unsupported is not None:
            pytest.fail(f"interpolation not understood by this test: ${{{unsupported}}}")
        if bare:
            return env.get(bare, "")
        value = env.get(name)
        if operator == ":-" and not value:
            return default
        if operator == "-" and value is None:
            return default
        return value or ""

    return _VARIABLE.sub(replace, text)


def load_compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose reads it: YAML first, then interpolation of every string value."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return interpolate(node, env or {}) if isinstance(node, str) else node

    data = walk(yaml.safe_load(COMPOSE.read_text(encoding="utf-8")))
    assert isinstance(data, dict)
    return data


def container_env(service: Mapping[str, Any], shell: Mapping[str, str]) -> dict[str, str]:
    """The environment Compose gives the container; a variable without a value passes the shell's."""
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) if "=" in item else (item, None) for item in environment)
    result = {}
    for name, value in environment.items():
        if value is None:
            if name in shell:
                result[name] = shell[name]
        else:
            result[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Mapping[str, str]], Settings]:
    """Settings read from exactly the given ACCESSGOV_* variables (any others removed first)."""

    def settings_from(env: Mapping[str, str]) -> Settings:
        for name in list(os.environ):
            if name.startswith("ACCESSGOV_"):
                monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return Settings()

    return settings_from


# -- tests: compose -----------------------------------------------------------------------------


def test_compose_has_the_three_services_with_healthchecks() -> None:
    compose = load_compose()
    services = compose["services"]
    assert set(services) == {"accessgov", "postgres", "redis"}
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), name
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"


def test_compose_accessgov_waits_for_healthy_postgres_and_redis() -> None:
    depends = load_compose()["services"]["accessgov"]["depends_on"]
    assert isinstance(depends, dict), "the long form is needed to wait for health"
    assert depends["postgres"]["condition"] == "service_healthy"
    assert "redis" in depends


def test_compose_builds_from_the_repository_root_with_the_dockerfile() -> None:
    compose = load_compose()
    build = compose["services"]["accessgov"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert "8000:8000" in compose["services"]["accessgov"]["ports"]


def test_compose_postgres_keeps_its_data_in_a_named_volume() -> None:
    compose = load_compose()
    volumes = compose["services"]["postgres"]["volumes"]
    named = [v.split(":", 1)[0] for v in volumes if v.endswith(":/var/lib/postgresql/data")]
    assert named, volumes
    assert named[0] in (compose.get("volumes") or {}), "the volume must be declared at the top level"


def test_compose_env_names_are_real_settings() -> None:
    """Settings ignore unknown ACCESSGOV_* variables, so a misspelt name would be silently dropped."""
    env = load_compose()["services"]["accessgov"]["environment"]

    def is_setting(name: str) -> bool:
        model: Any = Settings
        for part in name.removeprefix("ACCESSGOV_").lower().split("__"):
            if part not in model.model_fields:
                return False
            model = model.model_fields[part].annotation
        return True

    names = [n for n in env if n.startswith("ACCESSGOV_")]
    assert names
    unknown = [n for n in names if n not in NOT_READ_YET and not is_setting(n)]
    assert not unknown, f"not settings of app.config.Settings: {unknown}"


def test_compose_development_defaults_land_in_settings(clean_env: Callable[..., Settings]) -> None:
    compose = load_compose()
    env = container_env(compose["services"]["accessgov"], shell={})
    assert "ACCESSGOV_AUTH__ISSUER" not in env, "an unset issuer must not reach the container as ''"
    settings = clean_env(env)
    assert settings.database_url == COMPOSE_DB_URL
    assert settings.environment == Environment.development
    assert settings.auth.dev_tokens is True
    assert settings.auth.issuer is None
    assert settings.auth.audience == "accessgov"
    assert settings.policies_dir == Path("policies")
    assert settings.base_url == "http://localhost:8000"
    assert settings.log_level == "INFO"
    assert env["ACCESSGOV_REDIS_URL"] == "redis://redis:6379/0"


def test_compose_database_url_matches_the_postgres_service() -> None:
    shell = {"POSTGRES_USER": "svc", "POSTGRES_PASSWORD": "s3cret", "POSTGRES_DB": "gov"}
    for env in ({}, shell):
        services = load_compose(env)["services"]
        pg = container_env(services["postgres"], env)
        url = container_env(services["accessgov"], env)["ACCESSGOV_DATABASE_URL"]
        expected = (f"postgresql+psycopg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                    f"@postgres:5432/{pg['POSTGRES_DB']}")
        assert url == expected
    assert url.endswith("svc:s3cret@postgres:5432/gov")


def test_compose_production_switch_as_documented(clean_env: Callable[..., Settings]) -> None:
    """The README's production env file works, and leaving out a part of it is refused."""
    production = {
        "ACCESSGOV_ENVIRONMENT": "production",
        "ACCESSGOV_AUTH__DEV_TOKENS": "false",
        "ACCESSGOV_AUTH__ISSUER": "https://idp.example.com/realms/company",
        "ACCESSGOV_BASE_URL": "https://accessgov.example.com",
        "ACCESSGOV_CONSOLE__SECRET_KEY": "a-real-console-secret-of-32-chars-or-more",
        "POSTGRES_PASSWORD": "a-real-secret",
    }
    compose = load_compose(production)
    settings = clean_env(container_env(compose["services"]["accessgov"], production))
    assert settings.environment == Environment.production
    assert settings.auth.dev_tokens is False
    assert settings.auth.issuer == "https://idp.example.com/realms/company"
    assert settings.base_url == "https://accessgov.example.com"
    assert settings.database_url == "postgresql+psycopg://accessgov:a-real-secret@postgres:5432/accessgov"
    readme = DOCKER_README.read_text(encoding="utf-8")
    for name in production:
        assert f"{name}=" in readme, f"docker/README.md does not show {name}"

    assert settings.console.secret_key == production["ACCESSGOV_CONSOLE__SECRET_KEY"]
    for left_out in ("ACCESSGOV_AUTH__DEV_TOKENS", "ACCESSGOV_AUTH__ISSUER", "ACCESSGOV_CONSOLE__SECRET_KEY"):
        partial = {k: v for k, v in production.items() if k != left_out}
        env = container_env(load_compose(partial)["services"]["accessgov"], partial)
        with pytest.raises(ValueError, match="production"):
            clean_env(env)


# -- tests: Dockerfile --------------------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_the_pinned_slim_image() -> None:
    _, stages = parse_dockerfile()
    assert len(stages) >= 2
    assert [s.image for s in stages] == [BASE_IMAGE] * len(stages)
    assert stages[0].name == "builder"


def test_every_copy_source_exists_and_is_in_the_build_context() -> None:
    _, stages = parse_dockerfile()
    context = set(build_context_files())
    seen_stages: set[str] = set()
    copies = 0
    for stage in stages:
        for args in stage.all("COPY") + stage.all("ADD"):
            flags, sources, _ = copy_parts(args)
            copies += 1
            if "from" in flags:
                assert flags["from"] in seen_stages, f"COPY --from an unknown or later stage: {args}"
                continue
            for source in sources:
                path = (ROOT / source).resolve()
                assert path.exists(), f"COPY source missing from the repository: {source}"
                rel = path.relative_to(ROOT).as_posix()
                if path.is_file():
                    assert rel in context, f"{source} is left out by .dockerignore"
                elif rel != ".":
                    inside = [f for f in context if f.startswith(rel + "/")]
                    wanted = [p.relative_to(ROOT).as_posix() for p in path.rglob("*")
                              if p.is_file() and "__pycache__" not in p.parts]
                    assert sorted(inside) == sorted(wanted), f"{source}: .dockerignore drops files"
        if stage.name:
            seen_stages.add(stage.name)
    assert copies


def test_build_context_has_what_the_wheel_and_the_image_need() -> None:
    context = set(build_context_files())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = ["pyproject.toml", "app/migrations/env.py", "app/migrations/script.py.mako",
              "policies/model.conf", "policies/tests/oa.yaml"]
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str) and (ROOT / readme).exists():
        needed.append(readme)
    needed += [p.relative_to(ROOT).as_posix() for package in ("app", "audit", "policies")
               for p in (ROOT / package).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    missing = [n for n in needed if n not in context]
    assert not missing, f"left out of the build context: {missing}"
    assert not [f for f in context if f.startswith(("tests/", ".venv/", ".git/"))]


@pytest.mark.parametrize("path", [
    ".venv/bin/python", ".git/HEAD", "tests/idp/node_modules/jose/package.json",
    "web/node_modules/x/index.js", "var/accessgov.db", "bench/data/people.csv", "accessgov.db",
    "app/__pycache__/cli.cpython-311.pyc", ".pytest_cache/v/cache/nodeids", ".ruff_cache/x",
    ".mypy_cache/3.11/x.json", "accessgov.egg-info/PKG-INFO", ".env",
])
def test_dockerignore_excludes(path: str) -> None:
    assert excluded(path)


@pytest.mark.parametrize("path", [
    "pyproject.toml", "app/cli.py", "app/migrations/env.py", "app/migrations/versions/0001_initial.py",
    "policies/rules.csv", "policies/tests/sales.yaml", "README.md",
])
def test_dockerignore_keeps(path: str) -> None:
    assert not excluded(path)


def test_dockerignore_excludes_whatever_git_ignores() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = subprocess.run(["git", "ls-files", "--others", "--ignored", "--exclude-standard", "--directory"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    sent = [p.rstrip("/") for p in listed if not excluded(p.rstrip("/"))]
    assert not sent, f"git-ignored but sent to the Docker build: {sent}"


def test_runtime_stage_runs_as_a_non_root_user() -> None:
    stage = runtime_stage()
    users = stage.all("USER")
    assert users, "the runtime stage sets no USER (it would run as root)"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0", "")
    last_user_at = max(i for i, (kw, _) in enumerate(stage.instructions) if kw == "USER")
    assert all(kw != "USER" for kw, _ in stage.instructions[last_user_at + 1:])
    created = " ".join(stage.all("RUN"))
    if user.isdigit():
        assert re.search(rf"useradd\b.*--uid {user}\b", created), f"no useradd creates uid {user}"
    else:
        assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", created), f"no useradd creates {user}"


def test_runtime_stage_environment_port_and_no_build_leftovers() -> None:
    stage = runtime_stage()
    env = " ".join(stage.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "PYTHONUNBUFFERED=1" in env
    assert "8000" in " ".join(stage.all("EXPOSE")).split()
    runs = " ".join(stage.all("RUN"))
    for tool in ("gcc", "build-essential", "pip install", "pip wheel", "apt-get install"):
        assert tool not in runs, f"runtime stage installs or builds: {tool}"
    for args in stage.all("COPY"):
        flags, sources, _ = copy_parts(args)
        if "from" in flags:
            assert sources == ["/opt/venv"], f"the runtime takes only the venv from the builder: {args}"
        else:
            assert sources == ["policies"], f"the runtime stage copies only policies/ from the context: {args}"


def test_image_command_is_a_real_cli_command() -> None:
    stage = runtime_stage()
    assert not stage.all("ENTRYPOINT"), "update this test if an entrypoint is added"
    argv = exec_form(stage.all("CMD")[-1])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts.get(argv[0]) == "app.cli:main"
    params = resolve_cli(argv[1:])
    assert params["host"] == "0.0.0.0"  # noqa: S104 - all interfaces is the point inside a container
    assert params["port"] == 8000
    assert params["workers"] >= 1
    # Several workers are safe only because each polls the change log for changes made by the others.
    assert "refresh_seconds" in Settings.model_fields


def resolve_cli(args: list[str]) -> dict[str, Any]:
    """Parse args against app.cli.main as click would, without running the command."""
    command: click.Command = cli_main
    while isinstance(command, click.Group):
        assert args, "a group needs a sub-command"
        name, args = args[0], args[1:]
        assert name in command.commands, f"`accessgov` has no command {name!r}"
        command = command.commands[name]
    with command.make_context("accessgov", list(args)) as ctx:
        return dict(ctx.params)


def test_commands_in_the_docker_readme_are_real_cli_commands() -> None:
    commands = re.findall(r"accessgov accessgov ([^`)#\n]+)", DOCKER_README.read_text(encoding="utf-8"))
    assert any(c.startswith("demo --if-empty") for c in commands)
    for command in commands:
        resolve_cli(shlex.split(command))


# -- tests: healthchecks, run against the app ----------------------------------------------------


class _FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status


def run_healthcheck(argv: list[str], client: TestClient, monkeypatch: pytest.MonkeyPatch) -> int:
    """Run a `python -c ...` healthcheck with urllib routed to the app; its exit status."""
    assert argv[:2] == ["python", "-c"], argv
    code = argv[2]
    assert "http://127.0.0.1:8000/" in code

    def urlopen(url: str, timeout: float | None = None) -> _FakeResponse:
        assert timeout is not None, "a healthcheck request needs a timeout"
        response = client.get(url.removeprefix("http://127.0.0.1:8000"))
        if response.status_code >= 400:
            raise urllib.error.HTTPError(url, response.status_code, "error", Message(), None)
        return _FakeResponse(response.status_code)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    try:
        exec(compile(code, "<healthcheck>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own file
    except SystemExit as exc:
        return int(exc.code or 0)
    except urllib.error.URLError:
        return 1
    return 0


def dockerfile_healthcheck() -> list[str]:
    checks = runtime_stage().all("HEALTHCHECK")
    assert len(checks) == 1
    args = checks[0]
    assert "CMD" in args.split(), args
    return exec_form(args[args.index("CMD") + 3:].strip())


def compose_healthcheck() -> list[str]:
    test = load_compose()["services"]["accessgov"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return list(test[1:])


@pytest.mark.parametrize("healthcheck", [dockerfile_healthcheck, compose_healthcheck])
def test_healthcheck_passes_on_a_serving_app(healthcheck: Callable[[], list[str]], client: TestClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_healthcheck(healthcheck(), client, monkeypatch) == 0


def test_dockerfile_healthcheck_is_liveness_and_compose_one_is_readiness(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no policy loaded the process is alive (/healthz) but not ready (/readyz 503)."""
    assert "/healthz" in dockerfile_healthcheck()[2]
    settings = make_settings(sqlite_url)
    app = create_app(settings)
    upgrade(app.state.services.factory.kw["bind"])  # schema only: no policy version imported
    with TestClient(app) as client:
        assert run_healthcheck(dockerfile_healthcheck(), client, monkeypatch) == 0
        assert run_healthcheck(compose_healthcheck(), client, monkeypatch) == 1


# -- tests: the wheel the image installs ----------------------------------------------------------


@pytest.mark.slow
def test_wheel_built_from_the_build_context_ships_the_migrations(tmp_path: Path) -> None:
    """The builder stage builds the wheel from the .dockerignore'd context; `serve` needs migrations."""
    context = tmp_path / "context"
    for rel in build_context_files():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, context / rel)
    wheels = tmp_path / "wheels"
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels),
                             str(context)], capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    [wheel] = wheels.glob("accessgov-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    versions = [f"app/migrations/versions/{p.name}" for p in (ROOT / "app/migrations/versions").glob("*.py")]
    assert "app/migrations/versions/0001_initial.py" in versions
    for needed in ["app/migrations/env.py", "app/migrations/script.py.mako", "app/cli.py", *versions]:
        assert needed in names, f"the wheel lacks {needed} (pyproject package-data)"
    assert re.search(r"^accessgov\s*=\s*app\.cli:main$", entry_points, re.M)
    assert not [n for n in names if n.startswith("tests/")]
