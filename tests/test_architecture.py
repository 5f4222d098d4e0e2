"""Structure the code must keep: the engine is plain Python, audit never imports app, no enforce switch."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

from app.logs import JsonFormatter

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_casbins_enforcement_switch_is_never_reachable() -> None:
    offenders = [str(p) for p in (ROOT / "app").rglob("*.py") if "enable_enforce" in p.read_text(encoding="utf-8")]
    assert offenders == []


def test_logs_are_json_lines_carrying_extra_fields() -> None:
    record = logging.LogRecord("app.decisions", logging.INFO, __file__, 1, "decision", (), None)
    record.decision_id = "abc-123"
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["message"] == "decision"
    assert data["decision_id"] == "abc-123"
    assert data["level"] == "INFO"
