"""The outbox delivered by a process of its own, out of the request loop.

With `vigil serve --workers N` on PostgreSQL (or VIGIL_OUTBOX_DELIVERY=process) the
server processes only queue messages, in the transaction of the change that causes them,
whose COMMIT sends `NOTIFY vigil_outbox`; this process LISTENs, claims and sends them
(`scheduler.delivery.DeliveryWorker`, every delivery guarantee unchanged: claims with a
lease, exactly once after a crash, 429s shared). A burst of concerns then never costs
the page and Slack requests CPU, and their DMs go out as fast as Slack takes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import aiohttp
import structlog
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from scheduler.delivery import DeliveryWorker
from scheduler.slack_clients import SlackClients
from store import keyring
from store.crypto import Cipher
from store.db import create_engine, session_factory, transaction

log = structlog.get_logger(__name__)


async def deliver_forever(settings: Settings, stop: asyncio.Event, *, ready: object = None) -> None:
    """Deliver the outbox until `stop` is set, then finish the batch in hand."""
    engine = create_engine(settings.database_url, pool_size=2)
    factory = session_factory(engine)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.slack_timeout))
    options: dict[str, Any] = dict(
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout,
        retry_handlers=[],  # the worker owns its retries
    )
    if settings.oauth_install:  # each workspace's installation's bot token
        cipher = Cipher(settings.data_key or "")
        async with transaction(factory) as session:
            # Bot tokens only: no record's key is needed here.
            await keyring.load_data_keys(session, cipher, create=False, records=False)
        clients = SlackClients(factory=factory, cipher=cipher, client_options=options)
        clients.session = http
    else:
        settings.require("slack_bot_token")
        clients = SlackClients(
            single=AsyncWebClient(token=settings.slack_bot_token, session=http, **options)
        )
    worker = DeliveryWorker(
        factory=factory,
        clients=clients,
        lease=dt.timedelta(seconds=settings.outbox_lease),
    )
    try:
        worker.start()
        worker.listen(settings.database_url)
        log.info("outbox.process_started", pid=os.getpid())
        if callable(ready):
            ready()
        await stop.wait()
    finally:
        await worker.stop()
        await http.close()
        await engine.dispose()
        log.info("outbox.process_stopped", pid=os.getpid(), delivered=worker.delivered)
