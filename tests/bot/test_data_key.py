"""The data key and the records it reads: never replaced by accident, never silently wrong.

`vigil init --force` used to write a fresh `VIGIL_DATA_KEY` over the one a database's
records were encrypted with, making every concern unreadable.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from bot.app import VigilServer
from bot.cli import main
from bot.settings import ConfigError, load_settings
from bot.startup import StartupError
from store.crypto import generate_key
from testing.harness import Harness
from tests.support.slack import file_concern


def write_env(path: Path, *, database_url: str, key: str) -> str:
    text = f"VIGIL_DATABASE_URL={database_url}\nVIGIL_DATA_KEY={key}\n"
    path.write_text(text)
    return text


@pytest.fixture(autouse=True)
def no_database_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_DATABASE_URL", raising=False)
    monkeypatch.delenv("VIGIL_DATA_KEY", raising=False)


async def test_init_force_refuses_to_replace_the_key_of_a_database_with_concerns(
    school: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await file_concern(school)
    env = tmp_path / ".env"
    before = write_env(env, database_url=school.database_url, key=school.data_key)
    status = await asyncio.to_thread(main, ["--env-file", str(env), "init", "--force"])
    assert status == 1
    assert env.read_text() == before  # the key is still there
    err = capsys.readouterr().err
    assert "holds records encrypted with its VIGIL_DATA_KEY" in err
    assert "VIGIL_DATA_KEY=new,old" in err


async def test_init_force_replaces_the_env_of_a_database_with_no_records_yet(
    db_url: str, tmp_path: Path
) -> None:
    env = tmp_path / ".env"
    old_key = generate_key()
    write_env(env, database_url=db_url, key=old_key)
    status = await asyncio.to_thread(main, ["--env-file", str(env), "init", "--force"])
    assert status == 0
    new_key = re.search(r"^VIGIL_DATA_KEY=(.+)$", env.read_text(), re.M)
    assert new_key and new_key.group(1) != old_key


def test_init_force_without_a_database_yet_writes_a_fresh_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    env = tmp_path / ".env"
    write_env(env, database_url="sqlite+aiosqlite:///./vigil.db", key=generate_key())
    assert main(["--env-file", str(env), "init", "--force"]) == 0
    assert not (tmp_path / "vigil.db").exists()  # checking did not create one


def test_a_malformed_key_is_not_answered_with_advice_to_run_vigil_init(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VIGIL_DATA_KEY", "not-the-key-the-records-need")
    with pytest.raises(ConfigError) as refused:
        load_settings(env_file=None)
    message = str(refused.value)
    assert "VIGIL_DATA_KEY" in message and "Restore it" in message
    assert "vigil init" not in message


async def test_a_server_started_with_another_key_than_its_records_refuses_to_start(
    school: Harness,
) -> None:
    await file_concern(school)
    await school.server.stop()  # the school's own server lets go of the database
    settings = school.settings.model_copy(update={"data_key": generate_key()})
    stranger = VigilServer(settings)
    try:
        with pytest.raises(StartupError, match="VIGIL_DATA_KEY cannot decrypt"):
            await stranger.start()
    finally:
        await stranger.close()
