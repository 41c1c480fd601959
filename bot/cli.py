"""The `vigil` command."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot import logs
from bot.settings import ConfigError, Settings, load_settings, write_env_file
from bot.startup import StartupError, database_problem, first_line
from store.crypto import generate_key

SCHOOL_HELP = "the school to import into: its Slack team id or its name (one of a trust's)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the `vigil` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except ConfigError as error:
        print(f"vigil: {error}", file=sys.stderr)
        return 2
    except StartupError as error:
        print(f"vigil: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil", description="Record safeguarding concerns from Slack."
    )
    parser.add_argument("--env-file", default=".env", help="settings file (default: .env)")
    parser.add_argument("--version", action="version", version=f"vigil {_version()}")
    commands = parser.add_subparsers(title="commands")

    init = commands.add_parser("init", help="write a .env with fresh secrets")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(run=_init)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(title="db commands")
    db_upgrade = db_commands.add_parser("upgrade", help="create or migrate the schema")
    db_upgrade.set_defaults(run=_db_upgrade)
    db_grant = db_commands.add_parser(
        "grant",
        help="PostgreSQL: the GRANTs that let a runtime role (not the owner) run vigil serve",
        description="Print (or with --apply, run as the owner in VIGIL_DATABASE_URL) the "
        "statements giving ROLE what `vigil serve` needs: rows read and written, but no "
        "TRUNCATE, ALTER or DROP, and no DELETE or UPDATE of the append-only tables. Run "
        "it again after each `vigil db upgrade`.",
    )
    db_grant.add_argument("--runtime-role", required=True, metavar="ROLE")
    db_grant.add_argument("--apply", action="store_true", help="run the statements")
    db_grant.set_defaults(run=_db_grant)

    outbox = commands.add_parser("outbox", help="the Slack messages Vigil sends")
    outbox_commands = outbox.add_subparsers(title="outbox commands")
    outbox_retry = outbox_commands.add_parser(
        "retry",
        help="send again every message Slack refused for good (after fixing the cause)",
    )
    outbox_retry.set_defaults(run=_outbox_retry)

    rotate = commands.add_parser(
        "rotate-key",
        help="re-wrap the data keys under the first key of VIGIL_DATA_KEY, convert older "
        "values, and say when the older keys can be removed (safe while vigil serve runs)",
    )
    rotate.set_defaults(run=_rotate_key)
    search = commands.add_parser("search", help="the key-holders' search of narrative text")
    search_commands = search.add_subparsers(title="search commands")
    search_reindex = search_commands.add_parser(
        "reindex",
        help="index the words of every stored concern and action (keyed hashes, never the "
        "words); safe to run again",
    )
    search_reindex.set_defaults(run=_search_reindex)

    roster = commands.add_parser("import", help="import a roster CSV from the school's MIS")
    roster_kinds = roster.add_subparsers(title="rosters")
    staff = roster_kinds.add_parser("staff", help="email, name, roles, classes[, slack_user_id]")
    staff.add_argument("file", type=Path)
    staff.add_argument(
        "--deactivate-missing",
        action="store_true",
        help="mark staff absent from the file as no longer active",
    )
    staff.add_argument("--team", help="Slack team id (default: the bot token's workspace)")
    staff.add_argument("--school", help=SCHOOL_HELP)
    staff.set_defaults(run=_import_staff)
    pupils = roster_kinds.add_parser(
        "pupils",
        help="upn, forename, surname, date_of_birth, year_group, registration_group"
        "[, preferred_name, CP_Plan, CIN, LAC, Previously_LAC, SEN, Young_Carer, EAL, "
        "Social_Worker]",
    )
    pupils.add_argument("file", type=Path)
    pupils.add_argument(
        "--keep-missing",
        action="store_true",
        help="a partial file: pupils absent from it are left alone (not marked as left)",
    )
    pupils.add_argument("--team", help="Slack team id (default: the bot token's workspace)")
    pupils.add_argument("--school", help=SCHOOL_HELP)
    pupils.set_defaults(run=_import_pupils)

    transfer = commands.add_parser(
        "transfer",
        help="a pupil's record to or from another school (encrypted, signed, receipted)",
        description="Record transfers between schools (docs/transfer-format.md). First "
        "`vigil transfer keys --out CARD` here and at the other school, swap cards and "
        "`vigil transfer trust CARD` each other's (check the fingerprint by phone).",
    )
    transfer_commands = transfer.add_subparsers(title="transfer commands")
    t_keys = transfer_commands.add_parser(
        "keys", help="make this school's transfer keys (once) and write its card"
    )
    t_keys.add_argument("--name", help="the school's name on its card (default: Slack's)")
    t_keys.add_argument("--out", type=Path, help="write the school card to this file")
    t_keys.set_defaults(transfer_command="keys")
    t_trust = transfer_commands.add_parser("trust", help="trust another school's card")
    t_trust.add_argument("card", type=Path)
    t_trust.set_defaults(transfer_command="trust")
    t_export = transfer_commands.add_parser("export", help="a pupil's record, as a pack")
    t_export.add_argument("--upn", required=True)
    t_export.add_argument("--to", required=True, help="the receiving school's name (trusted)")
    t_export.add_argument("--out", required=True, type=Path)
    t_export.add_argument("--by", required=True, metavar="EMAIL", help="the key-holder acting")
    t_export.set_defaults(transfer_command="export")
    t_import = transfer_commands.add_parser(
        "import", help="verify and import a pack; writes the receipt to send back"
    )
    t_import.add_argument("file", type=Path)
    t_import.add_argument("--by", required=True, metavar="EMAIL", help="the key-holder acting")
    t_import.add_argument(
        "--receipt-out", type=Path, help="where to write the receipt (default: FILE.receipt)"
    )
    t_import.set_defaults(transfer_command="import")
    t_receipt = transfer_commands.add_parser(
        "receipt", help="import the receiving school's receipt, closing the transfer"
    )
    t_receipt.add_argument("file", type=Path)
    t_receipt.set_defaults(transfer_command="receipt")
    for command in (t_keys, t_trust, t_export, t_import, t_receipt):
        command.add_argument("--team", help="Slack team id (default: the only workspace)")
        command.set_defaults(run=_transfer)

    serve = commands.add_parser("serve", help="run the Slack endpoint, web view and worker")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="N server processes on one port (PostgreSQL only; default VIGIL_WORKERS, 1)",
    )
    serve.set_defaults(run=_serve)

    jobs = commands.add_parser("jobs", help="list the scheduled jobs `vigil serve` runs")
    jobs.set_defaults(run=_jobs)

    demo = commands.add_parser(
        "demo", help="a fictional school on SQLite, against a local Slack stand-in"
    )
    demo.add_argument("--dir", type=Path, default=Path("vigil-demo"), help="where to put it")
    demo.add_argument(
        "--keep-running",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep serving after the walkthrough (default: yes on a terminal)",
    )
    demo.set_defaults(run=_demo)

    privacy = commands.add_parser(
        "privacy-check",
        help="search the database (and logs) for pupils' names and narratives in plain text",
        description="Without --exercise: read the configured database (never changing it) "
        "and report any pupil's full name outside the pupils table, and any stored "
        "narrative, reason or action text in plain text. With --exercise: run every flow "
        "on a throwaway database with made-up pupils and phrases, then search every Slack "
        "call, log record and table for them. Exit status 0: passed; 1: something found.",
    )
    privacy.add_argument(
        "--exercise",
        action="store_true",
        help="run the drill on a throwaway database (a temporary SQLite file by default)",
    )
    privacy.add_argument(
        "--database",
        metavar="URL",
        help="with --exercise: an EMPTY database to run it on (e.g. postgresql+asyncpg://…)",
    )
    privacy.add_argument(
        "--log",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="also search this log file (repeatable; not with --exercise)",
    )
    privacy.set_defaults(run=_privacy_check)
    _env_file_anywhere(commands)
    return parser


def _env_file_anywhere(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Accept --env-file after the command too (`vigil serve --env-file F`), not only
    before it; the value given last wins."""
    for command in commands.choices.values():
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            _env_file_anywhere(nested[0])
        else:
            command.add_argument(
                "--env-file", default=argparse.SUPPRESS, help="settings file (default: .env)"
            )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("vigil")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    settings = load_settings(args.env_file, **overrides)
    logs.configure(settings.log_level, settings.log_format)
    return settings


def _init(args: argparse.Namespace) -> int:
    path = Path(args.env_file)
    if path.exists() and not args.force:
        print(f"vigil: {path} exists; use --force to replace it", file=sys.stderr)
        return 1
    if path.exists():
        refusal = asyncio.run(_key_in_use(path))
        if refusal:
            print(f"vigil: {refusal}", file=sys.stderr)
            return 1
    write_env_file(
        path,
        {
            "VIGIL_DATABASE_URL": "sqlite+aiosqlite:///./vigil.db",
            "VIGIL_DATA_KEY": generate_key(),
            "SLACK_BOT_TOKEN": "",
            "SLACK_SIGNING_SECRET": "",
            "VIGIL_PUBLIC_URL": "http://127.0.0.1:3000",
        },
    )
    print(
        f"Wrote {path} (readable only by you) with a fresh VIGIL_DATA_KEY.\n"
        "Keep a copy of the key somewhere safe: without it the narratives cannot be read.\n"
        "Next: fill in SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET, run `vigil db upgrade`, "
        "import the rosters, then `vigil serve`."
    )
    return 0


async def _key_in_use(env_file: Path) -> str | None:
    """Why the data key in `env_file` must not be replaced, or None if nothing needs it."""
    import os

    from dotenv import dotenv_values

    from bot.settings import DEFAULT_DATABASE_URL
    from bot.sqlite_lock import sqlite_path
    from store import encrypted, migrate
    from store.db import DATABASE_ERRORS, create_engine, session_factory

    url = (
        os.environ.get("VIGIL_DATABASE_URL")
        or dotenv_values(env_file).get("VIGIL_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )
    database = sqlite_path(url)
    if database is not None and not database.exists():
        return None
    engine = create_engine(url)
    try:
        if await migrate.current_revision(engine) is None:
            return None
        async with session_factory(engine)() as session:
            if not await encrypted.holds_encrypted_data(session):
                return None
    except DATABASE_ERRORS as error:
        return (
            f"not replacing {env_file}: its VIGIL_DATA_KEY may be needed, and the database "
            f"could not be checked ({database_problem(error, url)})"
        )
    finally:
        await engine.dispose()
    return (
        f"not replacing {env_file}: the database it names holds records encrypted with its "
        "VIGIL_DATA_KEY, and a new key would make every one of them unreadable. To change "
        "the key, put a new one in front of the old (VIGIL_DATA_KEY=new,old; see Key "
        "rotation in the README)"
    )


def _db_upgrade(args: argparse.Namespace) -> int:
    from store import migrate
    from store.crypto import Cipher
    from store.db import DATABASE_ERRORS, create_engine

    settings = _settings(args)
    # Some migrations encrypt what was stored in plain text (0020): they need the key.
    cipher = Cipher(settings.data_key) if settings.data_key else None

    async def run() -> str | None:
        engine = create_engine(settings.database_url)
        try:
            await migrate.upgrade(engine, cipher=cipher)
            return await migrate.current_revision(engine)
        except migrate.KeyNeeded as error:
            raise StartupError(str(error)) from None
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, settings.database_url)) from None
        finally:
            await engine.dispose()

    print(f"Database schema at revision {asyncio.run(run())}.")
    return 0


def _db_grant(args: argparse.Namespace) -> int:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    from store.db import DATABASE_ERRORS, create_engine
    from store.roles import RoleNameError, runtime_grants

    settings = _settings(args)
    url = make_url(settings.database_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError("vigil db grant is for PostgreSQL (VIGIL_DATABASE_URL is SQLite)")
    try:
        statements = runtime_grants(args.runtime_role, database=str(url.database))
    except RoleNameError as error:
        raise ConfigError(str(error)) from None
    if not args.apply:
        print("\n".join(f"{statement};" for statement in statements))
        return 0

    async def run() -> None:
        engine = create_engine(settings.database_url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, settings.database_url)) from None
        except DBAPIError as error:  # no such role, or not the owner
            raise StartupError(
                f"could not grant to {args.runtime_role}: {first_line(error)} (run this as "
                "the role that owns Vigil's tables, and create the runtime role first)"
            ) from None
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(
        f"Granted {args.runtime_role} what vigil serve needs on {url.database}. Run "
        "`vigil serve` as that role (VIGIL_DATABASE_URL), and this again after each upgrade."
    )
    return 0


def _outbox_retry(args: argparse.Namespace) -> int:
    from store import outbox
    from store.db import DATABASE_ERRORS, create_engine, session_factory, transaction

    settings = _settings(args)

    async def run() -> tuple[dict[str, int], int]:
        engine = create_engine(settings.database_url)
        try:
            async with transaction(session_factory(engine)) as session:
                failed = await outbox.failed_by_error(session)
                return failed, await outbox.requeue_failed(session)
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, settings.database_url)) from None
        finally:
            await engine.dispose()

    failed, requeued = asyncio.run(run())
    if not requeued:
        print("No failed messages: nothing to send again.")
        return 0
    reasons = ", ".join(f"{error} {count}" for error, count in sorted(failed.items()))
    print(
        f"Requeued {requeued} message{'' if requeued == 1 else 's'} Slack had refused "
        f"({reasons}). A running `vigil serve` sends them within seconds; any Slack still "
        "refuses shows as failed again."
    )
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from store import encrypted, keyring, migrate
    from store.crypto import Cipher, DecryptionError
    from store.db import DATABASE_ERRORS, create_engine, session_factory

    settings = _settings(args)
    settings.require("data_key")
    cipher = Cipher(settings.data_key or "")

    async def run() -> encrypted.Rotation:
        engine = create_engine(settings.database_url)
        try:
            current = await migrate.current_revision(engine)
            if current != migrate.head_revision():
                raise ConfigError(
                    f"The database schema is at {current or 'nothing'}, not "
                    f"{migrate.head_revision()}: run `vigil db upgrade` first."
                )
            return await encrypted.rotate(session_factory(engine), cipher)
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, settings.database_url)) from None
        except keyring.KeyUnavailable as error:
            raise StartupError(str(error)) from None
        except DecryptionError as error:
            raise StartupError(
                f"a stored value does not decrypt ({error}): is every older key still in "
                "VIGIL_DATA_KEY, after the new one?"
            ) from None
        finally:
            await engine.dispose()

    result = asyncio.run(run())
    print(
        f"Re-wrapped {result.rewrapped} data key(s) and converted {result.converted} "
        f"value(s) and {result.files_rewrapped} file key(s) to the current format."
    )
    if result.old_key_needed:
        print(
            f"Still needing an older key: {result.old_keks_in_use} data key(s), "
            f"{result.legacy_left} value(s). Run `vigil rotate-key` again; keep the older "
            "keys in VIGIL_DATA_KEY until it says they are no longer used."
        )
        return 1
    if len(cipher.keks) > 1:
        print(
            "The old key is no longer used: remove it from VIGIL_DATA_KEY (keep only the "
            "first key), then restart vigil serve."
        )
    else:
        print("Everything is encrypted under the only key in VIGIL_DATA_KEY.")
    return 0


def _search_reindex(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from store import textsearch
    from store.crypto import Cipher
    from store.db import DATABASE_ERRORS, create_engine, session_factory, transaction
    from store.models import Workspace

    settings = _settings(args)
    settings.require("data_key")
    cipher = Cipher(settings.data_key or "")

    async def run() -> int:
        engine = create_engine(settings.database_url)
        factory = session_factory(engine)
        indexed = 0
        try:
            async with transaction(factory) as session:
                workspaces = list(await session.scalars(select(Workspace.id)))
            for workspace_id in workspaces:
                last: int | None = 0
                while last is not None:  # a batch per transaction
                    async with transaction(factory) as session:
                        count, last = await textsearch.reindex(
                            session, workspace_id=workspace_id, cipher=cipher, after_id=last
                        )
                    indexed += count
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, settings.database_url)) from None
        finally:
            await engine.dispose()
        return indexed

    indexed = asyncio.run(run())
    print(f"Indexed the words of {indexed} concern{'' if indexed == 1 else 's'} for search.")
    return 0


def _import(args: argparse.Namespace, kind: str) -> int:
    from bot.roster_cli import run_import

    settings = _settings(args)
    return asyncio.run(run_import(settings, kind=kind, args=args))


def _import_staff(args: argparse.Namespace) -> int:
    return _import(args, "staff")


def _import_pupils(args: argparse.Namespace) -> int:
    return _import(args, "pupils")


def _transfer(args: argparse.Namespace) -> int:
    from bot.transfer_cli import run_transfer

    settings = _settings(args)
    return asyncio.run(run_transfer(settings, args=args))


def _serve(args: argparse.Namespace) -> int:
    from bot.app import serve_forever

    overrides = {"workers": args.workers} if args.workers is not None else {}
    settings = _settings(args, **overrides)
    if settings.workers > 1 or settings.delivery_process:
        from bot.workers import serve_workers

        return serve_workers(settings)
    run_until_signal(lambda stop: serve_forever(settings, stop))
    return 0


def _jobs(args: argparse.Namespace) -> int:
    from bot.app import load_school
    from scheduler.jobs import describe_jobs

    settings = _settings(args)
    school = load_school(settings)
    for job in describe_jobs(school):
        print(f"{job.id:<20} {job.every}\n{'':<20} {job.name}")
    print(
        f"\nOverdue nudges go out in working hours ({school.working_time.day_starts:%H:%M}–"
        f"{school.working_time.day_ends:%H:%M} {school.working_time.timezone}), at most once "
        f"a working day per referral; the head is told after "
        f"{school.escalate_after_working_days} overdue working days."
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from demo.walkthrough import run_demo

    logs.configure("WARNING")
    keep = sys.stdin.isatty() if args.keep_running is None else args.keep_running
    return asyncio.run(run_demo(directory=args.dir, keep_running=keep))


def _privacy_check(args: argparse.Namespace) -> int:
    from privacy.report import PrivacyCheckError

    if args.exercise and args.log:
        print("vigil: --log is for checking the school's database, not --exercise", file=sys.stderr)
        return 2
    if args.database and not args.exercise:
        print(
            "vigil: --database is for --exercise; the school's database is VIGIL_DATABASE_URL",
            file=sys.stderr,
        )
        return 2
    try:
        if args.exercise:
            from privacy.exercise import run_exercise  # the drill: loads the test tools

            report = asyncio.run(run_exercise(database_url=args.database))
        else:
            from privacy.school import check_school

            settings = _settings(args)
            report = asyncio.run(check_school(settings, log_files=args.log))
    except PrivacyCheckError as error:
        print(f"vigil: privacy-check could not run: {error}", file=sys.stderr)
        return 2
    print(report.render())
    return report.exit_code


def run_until_signal(start: Callable[[asyncio.Event], Any]) -> None:
    """Run `start(stop_event)` until SIGTERM or SIGINT sets the event."""

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await start(stop)

    asyncio.run(runner())


if __name__ == "__main__":
    raise SystemExit(main())
