"""The framework floors (DESIGN §10): what the bare frameworks cost on this machine.

- ``bolt``: a Bolt ``AsyncApp(process_before_response=True)`` on the same aiohttp server
  settings as ``bot.app.VigilServer``, pointed at the same Slack stand-in and receiving
  the same signed requests. It does the least each request type allows: ack (and, for the
  slash command, one ``views.open`` of a constant tiny view).
- ``web``: a bare aiohttp handler that returns a constant HTML page of a given size for
  ``GET /incidents/{number}`` (the web view's incident page without any of its work).
- ``web-db``: the same constant page, after the least a database-backed, audited page
  does: in one transaction on the benchmark's database (SQLAlchemy async, the driver and
  pool settings Vigil uses), one row read by primary key and one row inserted (the
  "who viewed it" entry). Not a DESIGN §10 floor: a reference printed beside them, to show
  what the stack itself costs once a page touches the database.
- ``files``: a plain aiohttp streaming upload (``POST /upload``, the multipart file
  written to a directory 64 KiB at a time) and download (``GET /files/{name}``, streamed
  back 64 KiB at a time): an attachment without sniffing, encryption or a database.

Each runs as a process of its own, like Vigil (``python -m benchmarks.floor bolt|web
--port P …``), and answers ``GET /healthz`` once it is ready. Nothing from Vigil is
imported here, so the floor's process holds only the frameworks.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

SLACK_PATH = "/slack/events"  # bot.app.SLACK_PATH
MAX_BODY = 1024 * 1024  # bot.app.MAX_BODY

TINY_VIEW: dict[str, Any] = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Floor"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "ok"}}],
}
CONSTANT_OPTIONS: list[dict[str, Any]] = [
    {"text": {"type": "plain_text", "text": f"Pupil {i} · 4 · 4B"}, "value": str(i)}
    for i in range(1, 11)
]


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def bolt_app(
    *,
    signing_secret: str,
    token: str,
    api_url: str,
    command: str,
    callback_id: str,
    options_action_id: str,
) -> web.Application:
    """A bare Bolt app that only acks, served at /slack/events."""
    # Imported here: the web floor's process never loads Bolt.
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    client = AsyncWebClient(token=token, base_url=api_url)
    bolt = AsyncApp(
        signing_secret=signing_secret,
        client=client,
        process_before_response=True,
        logger=None,
    )

    @bolt.command(command)
    async def command_floor(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=TINY_VIEW)

    @bolt.options(options_action_id)
    async def options_floor(ack: AsyncAck) -> None:
        await ack(options=CONSTANT_OPTIONS)

    @bolt.view(callback_id)
    async def submission_floor(ack: AsyncAck) -> None:
        await ack()

    async def slack_events(request: web.Request) -> web.Response:
        bolt_response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    async def share_session(app: web.Application) -> Any:
        # As Vigil does: one connection pool for every Slack call.
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        client.session = session
        yield
        await session.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(SLACK_PATH, slack_events)
    app.router.add_get("/healthz", _healthz)
    app.cleanup_ctx.append(share_session)
    return app


def web_page(size: int) -> bytes:
    """A constant HTML page of `size` bytes (at least a minimal document)."""
    head = b"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Floor</title>"
    head += b"</head><body><h1>Concern</h1><p>"
    tail = b"</p></body></html>"
    filler = max(0, size - len(head) - len(tail))
    return (
        head
        + (b"The quick brown fox jumps over the lazy dog. " * (filler // 45 + 1))[:filler]
        + tail
    )


def web_app(*, size: int) -> web.Application:
    """A bare aiohttp handler answering GET /incidents/{number} with a constant page."""
    body = web_page(size)

    async def incident(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/incidents/{number}", incident)
    app.router.add_get("/healthz", _healthz)
    return app


FLOOR_TABLES = (
    "CREATE TABLE IF NOT EXISTS floor_pages (id INTEGER PRIMARY KEY, title VARCHAR(80) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS floor_views (id {serial}, page_id INTEGER NOT NULL,"
    " at TIMESTAMP WITH TIME ZONE NOT NULL)",
)
FLOOR_PAGES = 100


def web_db_app(*, size: int, database_url: str, pool_size: int = 10) -> web.Application:
    """`web_app`'s constant page after one read and one insert in one transaction."""
    import datetime as dt

    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    body = web_page(size)
    sqlite = database_url.startswith("sqlite")
    serial = (
        "INTEGER PRIMARY KEY" if sqlite else "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
    )
    tables = [statement.format(serial=serial) for statement in FLOOR_TABLES]
    read = text("SELECT title FROM floor_pages WHERE id = :id")
    write = text("INSERT INTO floor_views (page_id, at) VALUES (:page_id, :at)")
    engine = create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=False
    )

    async def incident(request: web.Request) -> web.Response:
        page_id = int(request.match_info["number"]) % FLOOR_PAGES
        async with engine.begin() as connection:
            title = (await connection.execute(read, {"id": page_id})).scalar_one()
            await connection.execute(write, {"page_id": page_id, "at": dt.datetime.now(dt.UTC)})
        if not title:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def tables_made(_app: web.Application) -> Any:
        async with engine.begin() as connection:
            for statement in tables:
                await connection.execute(text(statement))
            await connection.execute(text("DELETE FROM floor_pages"))
            await connection.execute(
                text("INSERT INTO floor_pages (id, title) VALUES (:id, :title)"),
                [{"id": i, "title": f"Page {i}"} for i in range(FLOOR_PAGES)],
            )
        yield
        async with engine.begin() as connection:
            for table in ("floor_views", "floor_pages"):
                await connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        await engine.dispose()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/incidents/{number}", incident)
    app.router.add_get("/healthz", _healthz)
    app.cleanup_ctx.append(tables_made)
    return app


def files_app(*, directory: str) -> web.Application:
    """A plain streaming upload and download of files kept in `directory`."""
    root = Path(directory)
    chunk = 64 * 1024

    async def upload(request: web.Request) -> web.Response:
        reader = await request.multipart()
        name = uuid.uuid4().hex
        async for part in reader:
            if isinstance(part, aiohttp.BodyPartReader) and part.filename:
                with (root / name).open("wb") as out:
                    while block := await part.read_chunk(chunk):
                        out.write(block)
        return web.Response(text=name)

    async def download(request: web.Request) -> web.StreamResponse:
        path = root / request.match_info["name"]
        response = web.StreamResponse(headers={"Content-Type": "application/pdf"})
        response.content_length = path.stat().st_size
        await response.prepare(request)
        with path.open("rb") as source:
            while block := source.read(chunk):
                await response.write(block)
        await response.write_eof()
        return response

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/upload", upload)
    app.router.add_get("/files/{name}", download)
    app.router.add_get("/healthz", _healthz)
    return app


async def start_site(app: web.Application, *, port: int) -> web.AppRunner:
    """Serve `app` on 127.0.0.1:`port` with Vigil's server settings (no access log)."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _serve(app: web.Application, port: int) -> None:
    runner = await start_site(app, port=port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    gc.collect()
    gc.freeze()  # as Vigil does once started
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    kinds = parser.add_subparsers(dest="kind", required=True)
    bolt = kinds.add_parser("bolt", help="a bare Bolt app that acks")
    bolt.add_argument("--port", type=int, required=True)
    bolt.add_argument("--signing-secret", required=True)
    bolt.add_argument("--token", required=True)
    bolt.add_argument("--api-url", required=True)
    bolt.add_argument("--command", default="/concern")
    bolt.add_argument("--callback-id", default="concern_submit")
    bolt.add_argument("--options-action-id", default="pupil_search")
    page = kinds.add_parser("web", help="a bare aiohttp handler returning a constant page")
    page.add_argument("--port", type=int, required=True)
    page.add_argument("--size", type=int, default=8000, help="page size in bytes")
    page_db = kinds.add_parser(
        "web-db", help="the constant page after one read and one insert in a transaction"
    )
    page_db.add_argument("--port", type=int, required=True)
    page_db.add_argument("--size", type=int, default=8000, help="page size in bytes")
    page_db.add_argument("--database-url", required=True)
    page_db.add_argument("--pool-size", type=int, default=10)
    files = kinds.add_parser("files", help="a plain streaming upload and download")
    files.add_argument("--port", type=int, required=True)
    files.add_argument("--directory", required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.kind == "bolt":
        app = bolt_app(
            signing_secret=args.signing_secret,
            token=args.token,
            api_url=args.api_url,
            command=args.command,
            callback_id=args.callback_id,
            options_action_id=args.options_action_id,
        )
    elif args.kind == "files":
        app = files_app(directory=args.directory)
    elif args.kind == "web-db":
        app = web_db_app(size=args.size, database_url=args.database_url, pool_size=args.pool_size)
    else:
        app = web_app(size=args.size)
    asyncio.run(_serve(app, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
