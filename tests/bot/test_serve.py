"""`vigil serve` as an operator runs it: a real process, configured by its environment.

The process talks to a Slack stand-in started by the test, on a SQLite file migrated by
`vigil db upgrade`, from an empty working directory (so no stray `.env` is read). Every
wait is bounded, and the process is always killed at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest

from store.crypto import generate_key
from testing.school import TEAM_ID, TEAM_NAME
from testing.simulator import FORM, SlackSimulator
from testing.standin import SlackStandIn
from tests.support.paths import REPO
from tests.support.school import DSL

SIGNING_SECRET = "serve-test-signing-secret"
START_TIMEOUT = 30.0  # a cold interpreter importing Bolt and SQLAlchemy
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0


def vigil_env(**values: str) -> dict[str, str]:
    """The test's environment without any Vigil or Slack settings, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIL_", "SLACK_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(values)
    return env


def vigil_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot.cli", *args]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once with `vigil db upgrade`, copied for each test."""
    directory = tmp_path_factory.mktemp("serve")
    path = directory / "template.db"
    done = subprocess.run(
        vigil_command("db", "upgrade"),
        cwd=directory,
        env=vigil_env(VIGIL_DATABASE_URL=f"sqlite+aiosqlite:///{path}"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Database schema at revision" in done.stdout
    return path


@pytest.fixture
def database_url(migrated_database: Path, tmp_path: Path) -> str:
    path = tmp_path / "vigil.db"
    shutil.copy(migrated_database, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn(team_id=TEAM_ID, team_name=TEAM_NAME) as running:
        running.add_user(DSL, email="a.hughes@larkspur.example", name="Alys Hughes")
        yield running


@pytest.fixture
def settings(database_url: str, standin: SlackStandIn) -> dict[str, str]:
    """A complete configuration for `vigil serve` against the stand-in."""
    return {
        "VIGIL_DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": standin.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "VIGIL_SLACK_API_URL": standin.api_url,
        "VIGIL_PORT": str(free_port()),
        "VIGIL_DATA_KEY": generate_key(),
    }


class Vigil:
    """A running `vigil serve` and everything it has logged (stdout and stderr)."""

    def __init__(self, process: asyncio.subprocess.Process, port: str) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.lines: list[str] = []
        self.stopped_in: float | None = None
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            async with self._changed:
                self.lines.append(line.decode(errors="replace"))
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def wait_for_log(self, text: str, *, timeout: float) -> None:
        """Wait until `text` is logged; fail at once, with the log, if the process exits."""

        def seen_or_gone() -> bool:
            return text in self.log or self._reader.done()

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(seen_or_gone)
        except TimeoutError:
            pytest.fail(f"no {text!r} after {timeout}s; log:\n{self.log}")
        if text not in self.log:
            pytest.fail(f"vigil exited without logging {text!r}; log:\n{self.log}")

    async def terminate(self) -> int:
        """SIGTERM, as a service manager sends; the exit status (bounded wait)."""
        self.process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        async with asyncio.timeout(STOP_TIMEOUT):
            status = await self.process.wait()
            await self._reader
        self.stopped_in = time.monotonic() - started
        return status


@contextlib.asynccontextmanager
async def vigil_serve(tmp_path: Path, settings: dict[str, str]) -> AsyncIterator[Vigil]:
    """`vigil serve`, ready once it has logged `vigil.started`; killed afterwards."""
    process = await asyncio.create_subprocess_exec(
        *vigil_command("serve"),
        cwd=tmp_path,
        env=vigil_env(**settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    vigil = Vigil(process, settings["VIGIL_PORT"])
    try:
        await vigil.wait_for_log("vigil.started", timeout=START_TIMEOUT)
        yield vigil
    finally:
        if process.returncode is None:
            process.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_TIMEOUT):
                    await process.wait()
        vigil._reader.cancel()


def simulator(
    standin: SlackStandIn, app_url: str | None, secret: str = SIGNING_SECRET
) -> SlackSimulator:
    return SlackSimulator(app_url=app_url, signing_secret=secret, standin=standin, team_id=TEAM_ID)


# -- serving over HTTP --------------------------------------------------------------------


async def test_healthz_reports_the_database_ok(tmp_path: Path, settings: dict[str, str]) -> None:
    async with vigil_serve(tmp_path, settings) as vigil, aiohttp.ClientSession() as http:
        async with http.get(f"{vigil.url}/healthz", timeout=aiohttp.ClientTimeout(5)) as reply:
            assert reply.status == 200
            health = await reply.json()
    assert health["status"] == "ok" and health["database"] == "ok"
    assert health["outbox_pending"] == 0


async def test_a_start_logs_nothing_about_an_unused_token(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    async with vigil_serve(tmp_path, settings) as vigil:
        assert await vigil.terminate() == 0
    assert "will be unused" not in vigil.log, vigil.log


async def test_a_public_address_over_plain_http_is_warned_about_at_start(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    async with vigil_serve(tmp_path, settings) as local:  # http://127.0.0.1 is fine
        assert await local.terminate() == 0
    assert "web.plain_http" not in local.log
    settings["VIGIL_PUBLIC_URL"] = "http://vigil.school.example"
    async with vigil_serve(tmp_path, settings) as remote:
        assert await remote.terminate() == 0
    assert "web.plain_http" in remote.log and "cookies need HTTPS" in remote.log


async def test_a_signed_slash_command_opens_the_modal(
    tmp_path: Path, settings: dict[str, str], standin: SlackStandIn
) -> None:
    async with vigil_serve(tmp_path, settings) as vigil:
        async with simulator(standin, f"{vigil.url}/slack/events") as slack:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                response = await slack.slash_command(DSL)
        assert response.status == 200, response.body
        (opened,) = await standin.wait_for_calls("views.open", 1, timeout=5)
        assert opened.response is not None and opened.response["view"]["type"] == "modal"


async def test_a_wrongly_signed_request_is_refused(
    tmp_path: Path, settings: dict[str, str], standin: SlackStandIn
) -> None:
    async with vigil_serve(tmp_path, settings) as vigil:
        events = f"{vigil.url}/slack/events"
        body = urlencode({"command": "/concern", "user_id": DSL}).encode()
        async with (
            simulator(standin, events, secret="not-the-signing-secret") as forger,
            simulator(standin, events) as slack,
            asyncio.timeout(REQUEST_TIMEOUT),
        ):
            forged = await forger.slash_command(DSL)
            unsigned = await slack.send_raw(body, content_type=FORM, signature="")
        assert (forged.status, unsigned.status) == (401, 401)
        assert standin.calls_to("views.open") == []


async def test_sigterm_stops_promptly_and_says_so(tmp_path: Path, settings: dict[str, str]) -> None:
    async with vigil_serve(tmp_path, settings) as vigil:
        assert await vigil.terminate() == 0
        assert vigil.stopped_in is not None and vigil.stopped_in < STOP_TIMEOUT
        assert "vigil.stopping" in vigil.log and "vigil.stopped" in vigil.log


# -- configuration errors ---------------------------------------------------------------------


def serve_once(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`vigil serve` that is expected to refuse to start."""
    return subprocess.run(
        vigil_command("serve"),
        cwd=tmp_path,
        env=vigil_env(**settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_missing_signing_secret_is_named(tmp_path: Path, database_url: str) -> None:
    done = serve_once(
        tmp_path,
        {
            "VIGIL_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": "xoxb-standin",
            "VIGIL_DATA_KEY": generate_key(),
            "VIGIL_PORT": str(free_port()),
        },
    )
    assert done.returncode != 0
    assert "SLACK_SIGNING_SECRET" in done.stderr, done.stderr


def test_a_malformed_port_is_named(tmp_path: Path, database_url: str) -> None:
    done = serve_once(
        tmp_path,
        {
            "VIGIL_DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": "xoxb-standin",
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "VIGIL_DATA_KEY": generate_key(),
            "VIGIL_PORT": "abc",
        },
    )
    assert done.returncode != 0
    assert "VIGIL_PORT" in done.stderr, done.stderr


# -- what cannot work: one clear line, no traceback ---------------------------------------------


async def serve_refused(
    tmp_path: Path, settings: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`vigil serve` expected to refuse to start, while this loop serves the stand-in."""
    process = await asyncio.create_subprocess_exec(
        *vigil_command("serve"),
        cwd=tmp_path,
        env=vigil_env(**settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(START_TIMEOUT):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *wanted: str) -> None:
    """Refused to start: a non-zero exit, one line on stderr naming `wanted`, no traceback."""
    assert done.returncode not in (0, None), done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vigil: "), done.stderr
    assert "Traceback" not in done.stderr and "Unclosed" not in done.stderr
    for text in wanted:
        assert text in lines[0], lines[0]


async def test_a_postgresql_role_that_does_not_exist_is_one_clear_line(
    tmp_path: Path, settings: dict[str, str], postgres_url: str
) -> None:
    server = postgres_url.rsplit("/", 1)[0].replace("//postgres@", "//vigil_no_such_role@")
    settings["VIGIL_DATABASE_URL"] = f"{server}/postgres"
    done = await serve_refused(tmp_path, settings)
    assert_one_clear_line(done, "refused role 'vigil_no_such_role'", "VIGIL_DATABASE_URL")


async def test_slack_out_of_reach_is_one_clear_line(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    settings["VIGIL_SLACK_API_URL"] = f"http://127.0.0.1:{free_port()}/api/"  # nobody there
    done = await serve_refused(tmp_path, settings)
    assert_one_clear_line(done, "cannot reach Slack", "VIGIL_SLACK_API_URL")


async def test_a_bot_token_slack_refuses_is_one_clear_line(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    settings["SLACK_BOT_TOKEN"] = "xoxb-not-the-apps-token"
    done = await serve_refused(tmp_path, settings)
    assert_one_clear_line(done, "Slack refused SLACK_BOT_TOKEN (invalid_auth)")


async def test_a_port_in_use_is_one_clear_line(tmp_path: Path, settings: dict[str, str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings["VIGIL_PORT"] = str(taken.getsockname()[1])
        done = await serve_refused(tmp_path, settings)
    assert_one_clear_line(done, f"127.0.0.1:{settings['VIGIL_PORT']}", "the port is in use")


async def test_a_second_vigil_serve_on_the_same_sqlite_file_is_refused(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    async with vigil_serve(tmp_path, settings) as first:
        second = await serve_refused(tmp_path, {**settings, "VIGIL_PORT": str(free_port())})
        assert_one_clear_line(second, "is already using", "SQLite allows one server")
        assert f"(process {first.process.pid})" in second.stderr
        assert await first.terminate() == 0
    async with vigil_serve(tmp_path, settings) as again:  # the lock went with the first
        assert await again.terminate() == 0


# -- Socket Mode ------------------------------------------------------------------------------


async def test_socket_mode_receives_a_slash_command_and_opens_the_modal(
    tmp_path: Path, settings: dict[str, str], standin: SlackStandIn
) -> None:
    settings["SLACK_APP_TOKEN"] = standin.app_token
    async with vigil_serve(tmp_path, settings) as vigil:
        await standin.wait_socket_connected(timeout=10)
        async with simulator(standin, app_url=None) as slack:  # over the socket, not HTTP
            response = await slack.slash_command(DSL)
        assert response.status == 200
        (opened,) = await standin.wait_for_calls("views.open", 1, timeout=5)
        assert opened.response is not None and opened.response["view"]["type"] == "modal"
        assert "transport=socket_mode" in vigil.log
        assert await vigil.terminate() == 0
        assert "vigil.stopped" in vigil.log


async def test_an_s3_file_store_out_of_reach_is_one_clear_line(
    tmp_path: Path, settings: dict[str, str]
) -> None:
    settings["VIGIL_FILES_URL"] = "s3://vigil-files/school"
    settings["VIGIL_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{free_port()}"  # nobody there
    settings["VIGIL_S3_REGION"] = "eu-west-2"
    settings |= {"AWS_ACCESS_KEY_ID": "made-up", "AWS_SECRET_ACCESS_KEY": "made-up"}
    settings["AWS_CONFIG_FILE"] = settings["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "no")
    done = await serve_refused(tmp_path, settings)
    assert_one_clear_line(
        done, "cannot reach the file store s3://vigil-files/school", "VIGIL_S3_ENDPOINT_URL"
    )
