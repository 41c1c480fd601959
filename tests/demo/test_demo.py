"""`vigil demo`, the README's first command, works without Slack and leaks nothing."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import aiohttp
import pytest

from benchmarks.processes import free_port
from bot.startup import StartupError
from demo.walkthrough import run_demo


async def test_demo_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_demo(directory=tmp_path / "demo", keep_running=False) == 0
    out = capsys.readouterr().out
    assert "New concern #1 from @Chitra Patel · Well-being, Parent conversations" in out
    assert out.count("[Mark as read]") == 6  # four key-holders, the other 4B teacher, the TA
    assert "Concern #1 recorded" in out and "✅ Read" in out
    assert "NONE contains the pupil's name, UPN or the narrative" in out
    assert (tmp_path / "demo" / "vigil-demo.db").exists()
    # Not serving on: no link to a server that has gone, but how to keep it running.
    assert "/login/" not in out and "vigil demo --keep-running" in out


async def wait_for(capsys: pytest.CaptureFixture[str], text: str, seen: list[str]) -> str:
    """The demo's output so far, once it holds `text` (within 60 s)."""
    async with asyncio.timeout(60):
        while text not in "".join(seen):
            seen.append(capsys.readouterr().out)
            await asyncio.sleep(0.05)
    return "".join(seen)


async def test_a_demo_kept_running_serves_on_vigil_port_and_says_how_to_reach_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("VIGIL_PORT", str(port))
    stop = asyncio.Event()
    first = asyncio.create_task(run_demo(directory=tmp_path / "demo", keep_running=True, stop=stop))
    seen: list[str] = []
    try:
        out = await wait_for(capsys, "Serving on", seen)
        assert re.search(rf"one-time link\s+http://127\.0\.0\.1:{port}/login/\S+", out)
        assert re.search(r"TOTP secret\s+[A-Z2-7]{32}", out)
        assert f"ssh -N -L {port}:127.0.0.1:{port}" in out
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as health,
        ):
            assert health.status == 200

        # A second demo in the same directory would delete the first one's database.
        with pytest.raises(StartupError, match="vigil demo` .* is already using"):
            await run_demo(directory=tmp_path / "demo", keep_running=False)
        assert (tmp_path / "demo" / "vigil-demo.db").exists()
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as health,
        ):
            assert health.status == 200  # the first one serves on
    finally:
        stop.set()
        assert await first == 0


async def test_a_busy_vigil_port_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("VIGIL_PORT", str(port))
        with pytest.raises(StartupError, match=f"127.0.0.1:{port}: the port is in use"):
            await run_demo(directory=tmp_path / "demo", keep_running=False)
