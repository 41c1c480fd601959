"""`vigil demo`, the README's first command, works without Slack and leaks nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from demo.walkthrough import run_demo


async def test_demo_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(directory=tmp_path / "demo", keep_running=False) == 0
    out = capsys.readouterr().out
    assert "New concern #1 from @Chitra Patel · Well-being, Parent conversations" in out
    assert out.count("[Mark as read]") == 6  # four key-holders, the other 4B teacher, the TA
    assert "Concern #1 recorded" in out and "✅ Read" in out
    assert "NONE contains the pupil's name, UPN or the narrative" in out
    assert re.search(r"one-time link\s+http://127\.0\.0\.1:\d+/login/\S+", out)
    assert re.search(r"TOTP secret\s+[A-Z2-7]{32}", out)
    assert (tmp_path / "demo" / "vigil-demo.db").exists()
