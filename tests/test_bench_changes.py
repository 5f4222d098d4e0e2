"""`python -m bench.changes` runs and shows each change taking effect (small size, a few seconds)."""

from __future__ import annotations

import pytest

from bench.changes import main


def test_changes_benchmark_prints_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--size", "small", "--repeat", "1"])
    out = capsys.readouterr().out
    for label in ("add one grant, live", "revoke one grant, live", "apply to live engine", "effective permissions"):
        assert label in out
    assert "(0 entries)" not in out
