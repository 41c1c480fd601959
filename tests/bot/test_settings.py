"""Configuration: validated at start, documented, and written by `vigil init`."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml

from bot.cli import main
from bot.settings import ConfigError, env_names, load_settings
from store.crypto import Cipher, generate_key
from tests.support.paths import REPO as ROOT


def test_defaults_are_the_documented_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in env_names():
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env_file=None)
    assert settings.database_url == "sqlite+aiosqlite:///./vigil.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.slack_api_url == "https://slack.com/api/"
    assert settings.socket_mode is False


def test_env_file_is_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("VIGIL_PORT=4000\nVIGIL_HOST=0.0.0.0\nSLACK_APP_TOKEN=xapp-1\n")
    monkeypatch.setenv("VIGIL_PORT", "5000")
    settings = load_settings(env_file=env)
    assert (settings.host, settings.port, settings.socket_mode) == ("0.0.0.0", 5000, True)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VIGIL_PORT", "abc"),
        ("VIGIL_PORT", "70000"),
        ("VIGIL_DATABASE_URL", "mysql://x"),
        ("VIGIL_SLACK_API_URL", "slack.com/api"),
        ("VIGIL_DATA_KEY", "too-short"),
        ("SLACK_BOT_TOKEN", "xoxp-user-token"),
        ("SLACK_APP_TOKEN", "xoxb-not-app"),
        ("VIGIL_COMMAND", "concern"),
        ("VIGIL_LOG_LEVEL", "LOUD"),
    ],
)
def test_malformed_values_are_named_in_the_error(
    name: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings(env_file=None)


def test_missing_secrets_are_named_together(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "VIGIL_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(env_file=None)
    with pytest.raises(ConfigError) as error:
        settings.require("slack_bot_token", "slack_signing_secret", "data_key")
    assert all(n in str(error.value) for n in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"))


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in env_names() if f"`{name}`" not in readme]
    assert missing == []


def test_readme_starts_with_the_two_commands_in_a_virtual_environment() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```sh") + 3]
    # PEP 668: Debian and Ubuntu refuse `pip install` into the system's Python.
    assert block == [
        "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/vigil demo",
        "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m pytest",
    ]
    ci = (ROOT / ".ci" / "run").read_text()
    # CI runs the README's test command, step by step.
    venv, _install, test = (part.strip() for part in block[1].split("&&"))
    assert venv in ci.splitlines() and test in ci.splitlines()
    assert any(
        line.startswith(".venv/bin/pip install") and "-e '.[dev]'" in line
        for line in ci.splitlines()
    )
    assert "VIGIL_TEST_DATABASE_URL" in ci


def test_vigil_init_writes_a_private_env_with_a_working_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / ".env"
    assert main(["--env-file", str(env), "init"]) == 0
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    key = re.search(r"^VIGIL_DATA_KEY=(.+)$", env.read_text(), re.M)
    assert (
        key and Cipher(key.group(1)).decrypt_legacy(Cipher(key.group(1)).legacy_encrypt("x")) == "x"
    )
    assert main(["--env-file", str(env), "init"]) == 1  # never overwrites by accident
    assert "exists" in capsys.readouterr().err


def test_manifest_declares_what_vigil_uses() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yml").read_text())
    commands = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert commands == ["/concern"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update, conversations.open/history, users.lookupByEmail:
    assert {"commands", "chat:write", "im:write", "im:history", "users:read.email"} <= scopes
    assert {"openid", "email", "profile"} <= set(manifest["oauth_config"]["scopes"]["user"])
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/auth/slack/callback")
    settings = manifest["settings"]
    interactivity = settings["interactivity"]
    assert interactivity["is_enabled"] is True
    for url in (interactivity["request_url"], interactivity["message_menu_options_url"]):
        assert url.endswith("/slack/events")
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert settings["socket_mode_enabled"] is False


def test_generated_keys_differ() -> None:
    assert generate_key() != generate_key()


def test_an_outbox_lease_shorter_than_a_slack_call_is_refused() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env_file=None, VIGIL_OUTBOX_LEASE_SECONDS="5", VIGIL_SLACK_TIMEOUT="8")
    assert "VIGIL_OUTBOX_LEASE_SECONDS (5) must be longer than VIGIL_SLACK_TIMEOUT (8)" in str(
        refused.value
    )
    assert load_settings(env_file=None, VIGIL_OUTBOX_LEASE_SECONDS="11").outbox_lease == 11
