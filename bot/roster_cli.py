"""`vigil import staff|pupils FILE`: which workspace, a progress bar, and the report."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tqdm import tqdm

from bot.settings import ConfigError, Settings
from bot.slack_lookup import SlackLookupError, make_slack_lookup
from bot.startup import NETWORK_ERRORS, StartupError, database_problem, slack_problem
from store import roster, workspaces
from store.crypto import Cipher
from store.db import (
    DATABASE_ERRORS,
    SessionFactory,
    create_engine,
    session_factory,
    transaction,
)


async def run_import(settings: Settings, *, kind: str, args: argparse.Namespace) -> int:
    """Import one roster file; exit status 1 when any row was rejected."""
    path = args.file
    if not path.is_file():
        raise ConfigError(f"no such file: {path}")
    engine = create_engine(settings.database_url)
    factory = session_factory(engine)
    client = (
        AsyncWebClient(token=settings.slack_bot_token, base_url=settings.slack_api_url)
        if settings.slack_bot_token
        else None
    )
    try:
        identity = None
        school = getattr(args, "school", None)
        if client is not None and not args.team:
            try:
                identity = await client.auth_test()
            except (SlackApiError, *NETWORK_ERRORS) as error:
                raise StartupError(
                    slack_problem(
                        error, api_url=settings.slack_api_url, token_name="SLACK_BOT_TOKEN"
                    )
                ) from None
        if school:
            workspace_id, team_id = await _school_workspace(factory, school)
            if identity is None or identity["team_id"] != team_id:
                client = None  # the bot token is another school's: no Slack lookups here
        else:
            workspace_id = await _workspace_id(factory, identity, team=args.team)
        try:
            report = await _import_file(
                settings, factory, workspace_id, client, kind=kind, args=args
            )
        except roster.RosterFileError as error:
            print(f"vigil: {path}: {error} (nothing imported)", file=sys.stderr)
            return 1
        except SlackLookupError as error:
            raise StartupError(f"{error} (nothing imported); try again later") from None
    except DATABASE_ERRORS as error:
        raise StartupError(database_problem(error, settings.database_url)) from None
    finally:
        await engine.dispose()
    print(report.summary())
    return 1 if report.errors else 0


async def _import_file(
    settings: Settings,
    factory: SessionFactory,
    workspace_id: int,
    client: AsyncWebClient | None,
    *,
    kind: str,
    args: argparse.Namespace,
) -> roster.ImportReport:
    """Import the file with a progress bar on a terminal (RosterFileError if unreadable)."""
    with tqdm(
        total=roster.count_rows(args.file),
        unit=" rows",
        desc=f"Importing {kind}",
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
    ) as bar:
        if kind == "staff":
            return await roster.import_staff(
                factory,
                workspace_id=workspace_id,
                path=args.file,
                lookup_slack_id=make_slack_lookup(client) if client else None,
                deactivate_missing=args.deactivate_missing,
                progress=bar.update,
            )
        return await roster.import_pupils(
            factory,
            workspace_id=workspace_id,
            path=args.file,
            progress=bar.update,
            cipher=Cipher(settings.data_key) if settings.data_key else None,
            keep_missing=args.keep_missing,
        )


async def _school_workspace(factory: SessionFactory, school: str) -> tuple[int, str]:
    """The workspace `--school` names (its Slack team id, or its name ignoring case) and
    its team id; never a new one."""
    async with factory() as session:
        found = await workspaces.find_school(session, school)
    if isinstance(found, list):
        names = ", ".join(f"{name} ({team})" for team, name in found) or "none yet"
        raise ConfigError(f"no single school called {school!r}; the schools are: {names}")
    return found.id, found.team_id


async def _workspace_id(factory: object, identity: Any, *, team: str | None) -> int:
    """The workspace to import into: --team, else the bot token's (`identity`, Slack's
    auth.test answer), else the only one."""
    async with transaction(factory) as session:  # type: ignore[arg-type]
        if team:
            workspace = await workspaces.get_by_team(session, team_id=team)
            workspace = workspace or await workspaces.ensure(session, team_id=team, name=team)
            return workspace.id
        if identity is not None:
            workspace = await workspaces.ensure(
                session, team_id=identity["team_id"], name=identity.get("team") or ""
            )
            return workspace.id
        known = await workspaces.all_teams(session)
    if len(known) == 1:
        return next(iter(known.values()))
    raise ConfigError("which workspace? Set SLACK_BOT_TOKEN (Vigil asks Slack) or pass --team T…")
