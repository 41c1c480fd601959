"""The outbox delivery worker: sends every queued Slack message once, whatever happens.

- Rows are claimed in the database with a lease (`store.outbox.claim`), so replicas share
  the work and a crashed worker's rows come back after the lease.
- 429: the row waits for Slack's `Retry-After`, and so does every other row for the same
  workspace and method (no hammering), in every process: the pause is written to the
  database (`store.slack_limits`) and read with each batch claimed. 5xx, time-outs and
  reset connections: exponential backoff with jitter. A refusal that cannot get better
  (e.g. `user_not_found`) fails the row, logged, without retrying forever.
- Slack refusing the app itself (a revoked or invalid token, a missing scope) cannot be
  fixed by any one message, and is not that message's fault: nothing is failed. Delivery
  pauses (logged, and reported by `/healthz`), one message tries again now and then, and
  once Slack accepts it the backlog goes out and the key-holders are told what happened.
- Woken at once: in-process by `notify()`, and on PostgreSQL by the `NOTIFY` each
  enqueueing transaction sends (`listen()`), so delivery can run in a process of its own,
  out of the request loop; the poll is only the fallback.
- Sent messages are recorded together: whatever has landed while the previous record was
  being written goes in one transaction of one UPDATE (`store.outbox.mark_many_sent`,
  `store.alerts.record_deliveries`), not a transaction per message.
- Exactly once: each message carries its outbox id in Slack message metadata. Before a row
  whose earlier attempt may have reached Slack is sent again, the worker looks for that id
  in the channel's history and, if it is there, records it instead of posting twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import random
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import structlog
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.slack_clients import SlackClients
from store import alerts, notices, outbox, slack_limits
from store.db import DATABASE_ERRORS, SessionFactory, transaction
from store.models import Alert, OutboxMessage, utcnow

log = structlog.get_logger(__name__)

METADATA_TYPE = "vigil_outbox"
# Errors worth trying again: Slack's own trouble, not a problem with the message.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
NETWORK_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# Slack refusing the app (its token, a scope): someone must fix the app; every message
# waits meanwhile.
APP_REFUSED_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "ekm_access_denied",
    }
)
REFUSAL_GRACE = 60.0  # seconds an app refusal stays reported past twice the try interval


@dataclass
class SlackPause:
    """Slack refuses the app: since when, with which error (and scope), for which schools."""

    error: str
    since: dt.datetime
    needed: str | None = None  # the scope Slack asked for (missing_scope)
    workspaces: set[int] = field(default_factory=set)

    def describe(self) -> dict[str, Any]:
        """For /healthz: what Slack said and since when (no message content)."""
        body: dict[str, Any] = {
            "status": "paused",
            "error": self.error,
            "since": self.since.isoformat(timespec="seconds"),
        }
        if self.needed:
            body["needed_scope"] = self.needed
        return body


class DeliveryWorker:
    """Claims due outbox rows and delivers them to Slack, concurrently and with retries."""

    name = "outbox-delivery"

    def __init__(
        self,
        *,
        factory: SessionFactory,
        client: AsyncWebClient | None = None,
        clients: SlackClients | None = None,
        batch_size: int = 50,
        concurrency: int = 10,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        poll_interval: float = 2.0,
        base_backoff: float = 1.0,
        max_backoff: float = 900.0,
        pause_probe: float = 30.0,
        max_pause_probe: float = 300.0,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self._factory = factory
        # Each row goes out with its own workspace's bot token (one client for them all
        # with SLACK_BOT_TOKEN).
        self._clients = clients or SlackClients(single=client)
        self._batch_size = batch_size
        self._semaphore = asyncio.Semaphore(concurrency)
        self._lease = lease
        self._poll_interval = poll_interval
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        # A call given up on (time-out, reset) may still be done by Slack a little later.
        self._settle = 2 * self._clients.timeout
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._paused_until: dict[tuple[int, str], float] = {}  # (workspace, method) → monotonic
        # While Slack refuses the app: one message tries again at `_probe_at` (monotonic),
        # every `_probe_every` seconds, doubling up to `max_pause_probe`.
        self.slack_pause: SlackPause | None = None
        self._pause_probe = pause_probe
        self._max_pause_probe = max_pause_probe
        self._probe_every = pause_probe
        self._probe_at = 0.0
        self.delivered = 0
        # This worker's name on the rows it claims; after a claim whose outcome is unknown
        # (the connection died at COMMIT), rows under it that it does not hold go back.
        self.identity = secrets.token_hex(8)
        self._claim_in_doubt = False
        bind = factory.kw.get("bind")
        self._serialise_writes = bind is not None and bind.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        # Messages Slack accepted, waiting to be recorded together (`_record_sent`).
        self._landed: list[tuple[OutboxMessage, str | None, str | None, asyncio.Future[None]]]
        self._landed = []
        self._recorder: asyncio.Task[None] | None = None
        self.records_written = 0  # transactions that recorded sent messages
        self._listener: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------

    def notify(self) -> None:
        """New rows are waiting: deliver now rather than at the next poll."""
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name=f"vigil-{self.name}")
        return self._task

    def listen(self, url: str, *, retry: float = 2.0) -> None:
        """On PostgreSQL: be woken by every COMMIT that queued a message, in any process
        (`LISTEN vigil_outbox` on a connection of its own, made again if it breaks)."""
        if url.startswith("postgresql"):
            self._listener = asyncio.create_task(
                self._listen(url, retry=retry), name=f"vigil-{self.name}-listen"
            )

    async def _listen(self, url: str, *, retry: float) -> None:

        dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        while not self._stopping:
            connection = None
            try:
                connection = await asyncpg.connect(dsn, timeout=10)
                await connection.add_listener(
                    outbox.NOTIFY_CHANNEL, lambda *_args: self._wake.set()
                )
                closed = asyncio.Event()
                connection.add_termination_listener(functools.partial(_set, closed))
                self._wake.set()  # anything queued while nobody listened
                await closed.wait()
            except (asyncpg.PostgresError, *NETWORK_ERRORS) as error:
                log.warning("outbox.listen_failed", error=type(error).__name__)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            if not self._stopping:
                await asyncio.sleep(retry)

    async def stop(self) -> None:
        """Finish the batch in hand, then stop. Unclaimed rows wait in the database."""
        self._stopping = True
        self._wake.set()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._task is not None:
            # Not `await self._task`: a task cancelled from outside (the loop shutting
            # down, a crash) would raise CancelledError here, in the caller.
            await asyncio.wait([self._task])
            task, self._task = self._task, None
            if not task.cancelled():
                task.result()

    async def run(self) -> None:
        """Deliver until stopped."""
        failures = 0
        while not self._stopping:
            try:
                handled = await self.run_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("outbox.batch_failed", failures=failures)
                handled = 0
                # Short enough that a database back after a restart is used within seconds.
                await asyncio.sleep(min(5.0, 0.25 * 2**failures))
            if handled >= self._batch_size or self._stopping:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._next_wait())
            except TimeoutError:
                pass
            self._wake.clear()

    def _next_wait(self) -> float:
        pauses = [until - time.monotonic() for until in self._paused_until.values()]
        if self.slack_pause is not None:
            pauses.append(self._probe_at - time.monotonic())
        soonest = min([p for p in pauses if p > 0], default=self._poll_interval)
        return max(0.01, min(self._poll_interval, soonest))

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of rows handled."""
        if self._claim_in_doubt:
            async with transaction(self._factory) as session:
                released = await outbox.release_unheld(session, worker=self.identity)
            self._claim_in_doubt = False
            if released:
                log.info("outbox.claims_released", messages=released)
        limit = self._batch_size
        if self.slack_pause is not None:
            if time.monotonic() < self._probe_at:
                return 0  # Slack refuses the app: wait for the next try
            limit = 1  # one message asks whether Slack takes messages again
        try:
            async with transaction(self._factory) as session:
                self._learn_pauses(await slack_limits.in_force(session, now=self._clock()))
                rows = await outbox.claim(
                    session,
                    limit=limit,
                    lease=self._lease,
                    now=self._clock(),
                    worker=self.identity,
                )
        except DATABASE_ERRORS:
            self._claim_in_doubt = True
            raise
        if rows:
            # Every row's outcome is recorded (or its claim has run out) before the next
            # batch: a failure in one does not leave the others running unattended.
            outcomes = await asyncio.gather(
                *(self._deliver(row) for row in rows), return_exceptions=True
            )
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return len(rows)

    def _learn_pauses(self, pauses: dict[tuple[int, str], dt.datetime]) -> None:
        """Pauses other processes were told of (429s), as this worker's own."""
        now = self._clock()
        for gate, until in pauses.items():
            at = time.monotonic() + (until - now).total_seconds()
            if at > self._paused_until.get(gate, 0.0):
                self._paused_until[gate] = at

    async def drain(self, *, timeout: float = 10.0) -> int:
        """Deliver until nothing is due (tests, the demo); the number of rows handled."""
        handled = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await self.run_once()
            handled += batch
            if batch == 0:
                break
        return handled

    # -- one row ---------------------------------------------------------------------

    async def _deliver(self, row: OutboxMessage) -> None:
        updating = row.kind in (outbox.ALERT_UPDATE, outbox.MESSAGE_UPDATE)
        method = "chat.update" if updating else "chat.postMessage"
        gate = (row.workspace_id, method)
        async with self._semaphore:
            client = await self._clients.for_workspace(row.workspace_id)
            if client is None:
                await self._not_installed(row)
                return
            try:
                self._before_call(row, gate)
                if row.uncertain and not updating:
                    found = await self._find_in_slack(client, row)
                    if found is not None:
                        log.info("outbox.found_already_sent", message=row.id, kind=row.kind)
                        await self._record_sent(row, *found)
                        return
                if updating:
                    channel, ts = await self._update(client, row)
                else:
                    channel, ts = await self._post(client, row)
            except _Paused as paused:
                await self._retry(
                    row,
                    delay=paused.wait,
                    error=paused.reason,
                    uncertain=False,
                    attempted=False,
                )
                return
            except _LeaseLost:
                # Past our claim another worker may own the row: leave it to them.
                log.warning("outbox.lease_lost", message=row.id)
                return
            except SlackApiError as error:
                await self._slack_error(row, error, gate)
                return
            except NETWORK_ERRORS as error:
                log.warning("outbox.network_error", message=row.id, error=type(error).__name__)
                # No answer: Slack may still be working on the call. Look for it (and only
                # then send again) once such a straggler would have landed.
                delay = max(self._backoff(row), self._settle)
                await self._retry(row, delay=delay, error="network", uncertain=True)
                return
            await self._record_sent(row, channel, ts)

    async def _post(
        self, client: AsyncWebClient, row: OutboxMessage
    ) -> tuple[str | None, str | None]:
        self._before_call(row, (row.workspace_id, "chat.postMessage"))
        response = await client.chat_postMessage(
            channel=row.channel,
            text=row.payload["text"],
            blocks=row.payload.get("blocks"),
            metadata={"event_type": METADATA_TYPE, "event_payload": {"outbox_id": row.id}},
            unfurl_links=False,
            unfurl_media=False,
        )
        return response.get("channel"), response.get("ts")

    async def _update(
        self, client: AsyncWebClient, row: OutboxMessage
    ) -> tuple[str | None, str | None]:
        if row.kind == outbox.MESSAGE_UPDATE:
            channel, ts = row.channel, str(row.payload["ts"])
        else:
            async with self._factory() as session:
                alert = await session.get(Alert, row.alert_id)
                if alert is not None and alert.slack_ts is None:
                    dm_status = await session.scalar(
                        select(OutboxMessage.status).where(
                            OutboxMessage.alert_id == alert.id, OutboxMessage.kind == outbox.ALERT
                        )
                    )
                    if dm_status == outbox.PENDING:  # the DM is still on its way
                        raise _Paused(self._poll_interval, "waiting for the DM to be sent")
            if alert is None or alert.slack_ts is None or alert.slack_channel is None:
                return None, None  # nothing in Slack to update
            channel, ts = alert.slack_channel, alert.slack_ts
        self._before_call(row, (row.workspace_id, "chat.update"))
        await client.chat_update(
            channel=channel, ts=ts, text=row.payload["text"], blocks=row.payload.get("blocks")
        )
        return channel, ts

    async def _find_in_slack(
        self, client: AsyncWebClient, row: OutboxMessage
    ) -> tuple[str, str] | None:
        """The (channel, ts) of this row's message if an earlier attempt did post it."""
        channel = row.result_channel or row.channel
        if channel[:1] in ("U", "W"):
            opened = await client.conversations_open(users=channel)
            channel = opened["channel"]["id"]
        oldest = f"{row.created_at.timestamp() - 60:.6f}"
        cursor = None
        for _ in range(20):
            page = await client.conversations_history(
                channel=channel, oldest=oldest, limit=200, include_all_metadata=True, cursor=cursor
            )
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                if (
                    metadata.get("event_type") == METADATA_TYPE
                    and (metadata.get("event_payload") or {}).get("outbox_id") == row.id
                ):
                    return channel, message["ts"]
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
        return None

    # -- outcomes --------------------------------------------------------------------

    async def _record_sent(self, row: OutboxMessage, channel: str | None, ts: str | None) -> None:
        """Record the message as sent, with whatever else landed meanwhile (one write)."""
        recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._landed.append((row, channel, ts, recorded))
        if self._recorder is None or self._recorder.done():
            self._recorder = asyncio.create_task(self._record_landed())
        await recorded
        self.delivered += 1
        log.debug("outbox.sent", message=row.id, kind=row.kind, attempts=row.attempts)
        if self.slack_pause is not None:
            await self._resume()

    async def _record_landed(self) -> None:
        """Write what has landed, in turns: each turn takes every message waiting."""
        while self._landed:
            landed, self._landed = self._landed, []
            try:
                await self._persist([row for row, *_ in landed], self._writer(landed))
            except BaseException as error:
                for *_, recorded in landed:
                    if not recorded.done():
                        recorded.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            self.records_written += 1
            for *_, recorded in landed:
                if not recorded.done():
                    recorded.set_result(None)

    def _writer(
        self, landed: list[tuple[OutboxMessage, str | None, str | None, asyncio.Future[None]]]
    ) -> Callable[[AsyncSession], Awaitable[None]]:
        now = self._clock()
        sent = [(row.id, channel, ts) for row, channel, ts, _ in landed]
        delivered = [
            (row.alert_id, channel, ts)
            for row, channel, ts, _ in landed
            if row.kind == outbox.ALERT and row.alert_id and channel and ts
        ]

        async def write(session: AsyncSession) -> None:
            await outbox.mark_many_sent(session, sent=sent, now=now)
            await alerts.record_deliveries(session, delivered=delivered, now=now)

        return write

    async def _pause(self, row: OutboxMessage, code: str, response: Any) -> None:
        """Slack refuses the app: hold every message (this one too) until it accepts one."""
        needed = response.get("needed") if hasattr(response, "get") else None
        if self.slack_pause is None:
            self.slack_pause = SlackPause(
                error=code, since=self._clock(), needed=str(needed) if needed else None
            )
            self._probe_every = self._pause_probe
            log.error(
                "outbox.slack_paused",
                error=code,
                needed_scope=needed,
                advice="Slack refuses Vigil's app: reinstall it with the scopes in manifest.yml "
                "and check SLACK_BOT_TOKEN; messages wait and are sent once Slack accepts them",
            )
            self._probe_at = time.monotonic() + self._probe_every
        elif time.monotonic() >= self._probe_at:  # the try failed: wait longer next time
            self._probe_every = min(self._max_pause_probe, self._probe_every * 2)
            self._probe_at = time.monotonic() + self._probe_every
        self.slack_pause.workspaces.add(row.workspace_id)
        # Told to every process's /healthz until well after the next try (written again
        # then, lifted by `_resume`).
        until = self._clock() + dt.timedelta(seconds=2 * self._probe_every + REFUSAL_GRACE)
        method = slack_limits.refusal_method(self.slack_pause.error, self.slack_pause.needed)
        await self._retry(
            row,
            delay=0,
            error=code,
            uncertain=False,
            attempted=False,
            pause=((row.workspace_id, method), until),
        )

    async def _resume(self) -> None:
        """Slack took a message again: say so, tell the key-holders, send the backlog."""
        pause, self.slack_pause = self.slack_pause, None
        if pause is None:
            return
        paused_for = (self._clock() - pause.since).total_seconds()
        log.warning("outbox.slack_resumed", error=pause.error, paused_seconds=round(paused_for))
        try:
            async with self._writing() as session:
                for workspace_id in sorted(pause.workspaces):
                    await notices.tell_keyholders_slack_restored(
                        session,
                        workspace_id=workspace_id,
                        error=pause.error,
                        since=pause.since,
                        now=self._clock(),
                    )
                await slack_limits.lift_app_refusals(session, workspace_ids=pause.workspaces)
        except DATABASE_ERRORS as error:
            log.warning("outbox.slack_resumed_notice_failed", error=type(error).__name__)
        self.notify()

    async def _slack_error(
        self, row: OutboxMessage, error: SlackApiError, gate: tuple[int, str]
    ) -> None:
        status = error.response.status_code
        code = str(error.response.get("error") or f"http_{status}")
        if status == 429 or code == "ratelimited":
            retry_after = _retry_after(error.response.headers)
            self._paused_until[gate] = max(
                self._paused_until.get(gate, 0.0), time.monotonic() + retry_after
            )
            log.info("outbox.rate_limited", message=row.id, retry_after=retry_after)
            until = self._clock() + dt.timedelta(seconds=retry_after)
            await self._retry(
                row,
                delay=retry_after,
                error="ratelimited",
                uncertain=False,
                pause=(gate, until),
            )
        elif code in APP_REFUSED_ERRORS:
            if await self._clients.for_workspace(row.workspace_id, fresh=True) is None:
                await self._not_installed(row)  # uninstalled meanwhile: not the app's fault
            else:
                await self._pause(row, code, error.response)
        elif status >= 500 or code in TRANSIENT_ERRORS:
            log.warning("outbox.slack_unavailable", message=row.id, status=status, error=code)
            await self._retry(row, delay=self._backoff(row), error=code, uncertain=True)
        else:
            log.error("outbox.refused", message=row.id, kind=row.kind, error=code)

            async def write(session: AsyncSession) -> None:
                await outbox.mark_failed(session, message_id=row.id, error=code[:200])

            await self._persist(row, write)

    async def _not_installed(self, row: OutboxMessage) -> None:
        """Vigil is no longer installed in the row's workspace: the message cannot go."""
        log.warning("outbox.not_installed", message=row.id, workspace=row.workspace_id)

        async def write(session: AsyncSession) -> None:
            await outbox.mark_failed(session, message_id=row.id, error="app_uninstalled")

        await self._persist(row, write)

    async def _retry(
        self,
        row: OutboxMessage,
        *,
        delay: float,
        error: str,
        uncertain: bool,
        attempted: bool = True,
        pause: tuple[tuple[int, str], dt.datetime] | None = None,
    ) -> None:
        """Put the row back for later; with `pause`, Slack's wait for every process too."""
        at = self._clock() + dt.timedelta(seconds=delay)

        async def write(session: AsyncSession) -> None:
            if pause is not None:
                (workspace_id, method), until = pause
                await slack_limits.pause(
                    session, workspace_id=workspace_id, method=method, until=until
                )
            await outbox.retry_later(
                session,
                message_id=row.id,
                at=at,
                error=error[:200],
                uncertain=uncertain,
                attempted=attempted,
            )

        await self._persist(row, write)

    async def _persist(
        self,
        row: OutboxMessage | list[OutboxMessage],
        write: Callable[[AsyncSession], Awaitable[None]],
    ) -> None:
        """Record what happened to `row` (or rows). While the database is unreachable, keep
        the outcome and try again (it is known only here), for as long as the claim lasts;
        after that the row is another worker's, and it looks in Slack before resending."""
        rows = row if isinstance(row, list) else [row]
        leases = [r.claimed_until for r in rows]
        expires = None if None in leases else min(lease for lease in leases if lease)
        delay = 0.1
        while True:
            try:
                async with self._writing() as session:
                    await write(session)
                return
            except DATABASE_ERRORS as error:
                if expires is None or self._clock() + dt.timedelta(seconds=delay) >= expires:
                    raise
                log.warning(
                    "outbox.record_deferred", message=rows[0].id, error=type(error).__name__
                )
                await asyncio.sleep(delay)
                delay = min(2.0, delay * 2)

    def _before_call(self, row: OutboxMessage, gate: tuple[int, str]) -> None:
        """Checked right before each Slack call.

        Raises `_LeaseLost` once our claim on the row has run out (another worker may
        have claimed it since), and `_Paused` while Slack has asked this workspace to wait
        for this method: a 429 for another row may have arrived while this one was
        searching Slack's history or reading the database.
        """
        if row.claimed_until is not None and self._clock() >= row.claimed_until:
            raise _LeaseLost
        if self.slack_pause is not None and time.monotonic() < self._probe_at:
            raise _Paused(self._probe_at - time.monotonic(), self.slack_pause.error)
        wait = self._paused_until.get(gate, 0.0) - time.monotonic()
        if wait > 0:
            raise _Paused(wait)

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction; on SQLite one at a time (it has a single write lock)."""
        if self._serialise_writes:
            async with self._write_lock, transaction(self._factory) as session:
                yield session
        else:
            async with transaction(self._factory) as session:
                yield session

    def _backoff(self, row: OutboxMessage) -> float:
        exponent = max(0, row.attempts - 1)
        delay = min(self._max_backoff, self._base_backoff * 2**exponent)
        return delay * random.uniform(0.5, 1.0)


class _LeaseLost(Exception):
    """Our claim on the row ran out before the call: another worker may own it now."""


class _Paused(Exception):
    """The row must wait `wait` seconds without a call being made: its workspace and
    method are rate-limited, or (an update) the message it changes is not in Slack yet."""

    def __init__(self, wait: float, reason: str = "waiting for rate limit") -> None:
        super().__init__(wait)
        self.wait = wait
        self.reason = reason


def _set(event: asyncio.Event, *_args: Any) -> None:
    event.set()


def _retry_after(headers: Any) -> float:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return 1.0
