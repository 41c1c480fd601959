"""Assembly: one aiohttp server hosting Bolt, the web view, `/healthz` and the outbox worker.

`VigilServer` owns the lifecycle. `start()` checks the database schema, learns which
workspace the bot token belongs to, wires the Bolt listeners and starts serving (HTTP at
`/slack/events`, or Socket Mode when `SLACK_APP_TOKEN` is set). Without `SLACK_BOT_TOKEN`
but with the app's client id, client secret and `SLACK_STATE_SECRET` it runs in OAuth
mode: schools install it from `/slack/install` (`bot.installations`), each request is
authorized with its own workspace's installation, and every outgoing call takes its
workspace's bot token (`scheduler.slack_clients.SlackClients`). `stop()` drains: no new
connections, in-flight requests and listener work finish, the worker finishes its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text

from bot import installations as oauth
from bot.replay import ReplayCache
from bot.settings import DEFAULT_CONFIG, ConfigError, Settings
from bot.slack_body import slack_request
from bot.slack_lookup import SlackLookupError, make_slack_lookup
from bot.slack_shapes import shape_problem
from bot.socket_watchdog import SocketModeWatchdog
from bot.sqlite_lock import DatabaseLock, lock_database
from bot.startup import (
    FILE_STORE_ERRORS,
    NETWORK_ERRORS,
    StartupError,
    database_problem,
    file_store_problem,
    listen_problem,
    slack_problem,
)
from bot.tasks import TaskTracker
from handlers import register_slack
from handlers.deps import Deps
from handlers.errors import request_kind
from handlers.web import register_web
from handlers.web.deps import WebDeps
from handlers.web.install import register_install
from handlers.web.security import not_rate_limited
from scheduler.delivery import DeliveryWorker
from scheduler.jobs import (
    AnonymousNoiseFlush,
    OverdueReferrals,
    OverdueTasks,
    SchoolSettingsReload,
    SubjectAccessDeadlines,
    TransferReceipts,
    UnreadChase,
    UrgentEscalations,
    start_checks,
    start_scheduler,
)
from scheduler.leader import Leadership
from scheduler.slack_clients import SlackClients
from store import encrypted, installations, keyring, migrate, outbox, slack_limits, workspaces
from store.catalogue import Catalogue
from store.crypto import Cipher
from store.db import DATABASE_ERRORS, create_engine, session_factory, transaction
from store.documents.storage import FilesUrlError, open_store
from store.models import utcnow
from store.noise import AnonymousNoise
from store.ratelimit import RateLimiter
from store.roster import slack_links
from store.school_config import SchoolConfig, SchoolConfigError, load_school_config
from store.schools import School, SchoolDirectory, read_school_files

log = structlog.get_logger(__name__)

SLACK_PATH = "/slack/events"
MAX_BODY = 1024 * 1024  # Slack's payloads are far smaller; anything bigger is refused


class VigilServer:
    """The whole running application, for `vigil serve`, the demo and the tests."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker_options: dict[str, Any] | None = None,
        clock: Callable[[], dt.datetime] = utcnow,
        sock: socket.socket | None = None,
        deliver: bool = True,
    ) -> None:
        """`sock`: a listening socket to serve on (a worker of `vigil serve --workers N`)
        instead of binding VIGIL_HOST:VIGIL_PORT; `deliver`: run the outbox worker here
        (False when a delivery process of its own does, `bot.outbox_process`)."""
        self.oauth = settings.oauth_install
        if self.oauth:
            settings.require("slack_signing_secret", "data_key")
        else:
            settings.require("slack_bot_token", "slack_signing_secret", "data_key")
        self.settings = settings
        self.clock = clock
        self._sock = sock
        self._deliver = deliver
        self.engine = create_engine(settings.database_url, pool_size=settings.pool_size)
        self.factory = session_factory(self.engine)
        self.school = load_school(settings)
        self.catalogue = load_catalogue(settings, self.school)
        self.schools = load_schools(settings, self.school, self.catalogue)
        self.cipher = Cipher(settings.data_key or "")
        try:
            self.files = open_store(
                settings.files_url,
                s3_endpoint_url=settings.s3_endpoint_url,
                s3_region=settings.s3_region,
            )
        except FilesUrlError as error:
            raise ConfigError(f"VIGIL_FILES_URL: {error}") from None
        self.teams = workspaces.TeamDirectory(self.factory, installed_by_oauth=self.oauth)
        self.team_id: str | None = None  # single-workspace mode: SLACK_BOT_TOKEN's team
        self.tasks = TaskTracker()
        self.client = AsyncWebClient(
            token=settings.slack_bot_token,
            base_url=settings.slack_api_url,
            timeout=settings.slack_timeout,
        )
        # The worker owns its retries (honouring Retry-After); the SDK must not add its own.
        self.worker_client = AsyncWebClient(
            token=settings.slack_bot_token,
            base_url=settings.slack_api_url,
            timeout=settings.slack_timeout,
            retry_handlers=[],
        )
        # Outgoing calls outside a Slack request: each workspace's own client (in OAuth mode
        # its installation's bot token); the worker's without the SDK's retries.
        if self.oauth:
            options = dict(base_url=settings.slack_api_url, timeout=settings.slack_timeout)
            self.slack_clients = SlackClients(
                factory=self.factory, cipher=self.cipher, client_options=options
            )
            self.worker_clients = SlackClients(
                factory=self.factory,
                cipher=self.cipher,
                client_options={**options, "retry_handlers": []},
            )
        else:
            self.slack_clients = SlackClients(single=self.client)
            self.worker_clients = SlackClients(single=self.worker_client)
        self.worker = DeliveryWorker(
            factory=self.factory,
            clients=self.worker_clients,
            clock=clock,
            **{"lease": dt.timedelta(seconds=settings.outbox_lease), **(worker_options or {})},
        )
        self.overdue_job = OverdueReferrals(
            factory=self.factory,
            config=self.school,
            schools=self.schools,
            public_url=settings.public_url,
            notify_outbox=self.worker.notify,
            clock=clock,
        )
        self.schools_job = SchoolSettingsReload(factory=self.factory, schools=self.schools)
        checks: dict[str, Any] = dict(
            factory=self.factory,
            config=self.school,
            schools=self.schools,
            public_url=settings.public_url,
            notify_outbox=self.worker.notify,
            clock=clock,
        )
        self.urgent_job = UrgentEscalations(**checks)
        self.unread_job = UnreadChase(**checks)
        self.transfer_job = TransferReceipts(**checks)
        self.tasks_job = OverdueTasks(**checks)
        self.sar_job = SubjectAccessDeadlines(**checks)
        # Requests from nobody signed in: limited per address, refusals counted and
        # written to the audit log as counts every few minutes (and at shutdown).
        self.noise = AnonymousNoise()
        self.noise_job = AnonymousNoiseFlush(factory=self.factory, noise=self.noise, clock=clock)
        self.scheduler: AsyncIOScheduler | None = None
        self.checks: AsyncIOScheduler | None = None  # while this process leads
        self.leadership = Leadership(
            settings.database_url, on_elected=self._start_checks, on_deposed=self._stop_checks
        )
        self._verifier = SignatureVerifier(settings.slack_signing_secret or "")
        self._replays = ReplayCache()
        # Bolt turns itself into an OAuth installer when it sees SLACK_CLIENT_ID and
        # SLACK_CLIENT_SECRET in the environment; Vigil uses them only for the web sign-in.
        # It also reads SLACK_BOT_TOKEN, then warns at every start that the token is unused
        # beside the client it is given (which holds the same token).
        self.oauth_flow = None
        oauth_options: dict[str, Any] = {}
        if self.oauth:
            store = oauth.InstallationStore(
                self.factory, self.cipher, clock=clock, on_saved=self._installed
            )
            credentials = dict(
                client_id=settings.slack_client_id or "",
                client_secret=settings.slack_client_secret or "",
            )
            self.oauth_flow = oauth.oauth_flow(
                client=self.client,
                public_url=settings.public_url,
                slack_web_url=settings.slack_web_url,
                installation_store=store,
                state_store=oauth.StateStore(
                    self.factory, secret=settings.slack_state_secret or "", clock=clock
                ),
                **credentials,
            )
            oauth_options = dict(
                installation_store=store,
                authorize=oauth.installation_authorize(store, **credentials),
                oauth_flow=self.oauth_flow,
            )
        with _hidden_from_environment("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET", "SLACK_BOT_TOKEN"):
            self.bolt = AsyncApp(
                # Named, so Bolt does not take its name from inspect.stack(), which reads
                # the source of every frame: ~170 ms per start.
                name="vigil",
                client=self.client,
                signing_secret=settings.slack_signing_secret,
                process_before_response=True,  # no ack polling; slow work is spawned
                logger=None,
                **oauth_options,
            )
        self.deps = Deps(
            factory=self.factory,
            teams=self.teams,
            catalogue=self.catalogue,
            cipher=self.cipher,
            public_url=settings.public_url,
            command=settings.command,
            alert_channel=settings.alert_channel,
            notify_outbox=self.worker.notify,
            spawn=self.tasks.spawn,
            school=self.school,
            clock=clock,
            uninstalled=self._uninstalled,
            schools=self.schools,
        )
        register_slack(self.bolt, self.deps)
        self.web_app = self._web_app()
        self._runner: web.AppRunner | None = None
        self.socket_watchdog: SocketModeWatchdog | None = None
        self._http: aiohttp.ClientSession | None = None
        self._lock: DatabaseLock | None = None
        self.port: int | None = None

    # -- HTTP ------------------------------------------------------------------------

    def _web_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_post(SLACK_PATH, not_rate_limited(self._slack_events))
        app.router.add_get("/healthz", not_rate_limited(self._healthz))
        settings = self.settings
        self.web_deps = WebDeps(
            factory=self.factory,
            cipher=self.cipher,
            catalogue=self.catalogue,
            public_url=settings.public_url,
            idle=dt.timedelta(minutes=settings.session_idle_minutes),
            max_age=dt.timedelta(hours=settings.session_max_hours),
            local_dev=settings.local_dev,
            slack_web_url=settings.slack_web_url,
            oidc_client=AsyncWebClient(base_url=settings.slack_api_url, timeout=10),
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            notify_outbox=self.worker.notify,
            school=self.school,
            clock=self.clock,
            files=self.files,
            max_upload_bytes=settings.max_upload_bytes,
            trusted_proxies=settings.trusted_proxies,
            plain_http=settings.web_view_over_plain_http,
            limiter=RateLimiter(rate=settings.anonymous_rate, burst=settings.anonymous_burst),
            noise=self.noise,
            schools=self.schools,
        )
        register_web(app, self.web_deps, command=settings.command)
        if self.oauth_flow is not None:
            register_install(app, self.oauth_flow)
        return app

    async def _slack_events(self, request: web.Request) -> web.Response:
        # Signature first (401), then shape (400): Bolt would parse before verifying.
        # Nothing of the body is logged: it may hold a pupil's name.
        raw = await request.read()
        try:
            text_body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _malformed("the body is not UTF-8")
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if timestamp and not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) < 16):
            return _malformed("X-Slack-Request-Timestamp is not a number")
        if not (
            timestamp
            and signature
            and self._verifier.is_valid(body=text_body, timestamp=timestamp, signature=signature)
        ):
            return web.Response(status=401, text="invalid request signature")
        try:
            bolt_request = slack_request(
                text_body, query=request.query_string, headers=request.headers
            )
        except (ValueError, AttributeError, TypeError):  # not JSON, or not a Slack shape
            return _malformed("the body is not a Slack payload")
        body = bolt_request.body
        if not isinstance(body, dict) or not body:
            return _malformed("the body is not a Slack payload")
        if problem := shape_problem(body):
            return _malformed(problem)
        # A typeahead is read-only and carries nothing unique, so a person typing the same
        # letters twice within a second sends the same signature: it is answered again.
        if body.get("type") != "block_suggestion" and not self._replays.first_time(
            signature, timestamp=int(timestamp)
        ):
            log.warning("slack.replayed_request", kind=request_kind(body))
            return web.Response(status=401, text="replayed request")
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def _healthz(self, _request: web.Request) -> web.Response:
        try:
            async with self.factory() as session:
                await session.execute(text("SELECT 1"))
                pending = await outbox.pending_count(session)
                refusals = await slack_limits.app_refusals(session, now=self.clock())
        except Exception as error:
            log.warning("healthz.database_unavailable", error=type(error).__name__)
            return web.json_response({"status": "unavailable", "database": "down"}, status=503)
        body: dict[str, Any] = {"status": "ok", "database": "ok", "outbox_pending": pending}
        if self.worker.slack_pause is not None:  # Slack refuses the app: messages wait
            body["slack"] = self.worker.slack_pause.describe()
            body["status"] = "unavailable"
        elif refusals:  # ...as another process's delivery worker met it
            body["slack"] = {"status": "paused", "error": refusals[0].error}
            if refusals[0].needed:
                body["slack"]["needed_scope"] = refusals[0].needed
            body["status"] = "unavailable"
        if self.socket_watchdog is not None:
            socket = await self.socket_watchdog.status()
            body["socket_mode"] = socket
            if not socket["healthy"]:
                body["status"] = "unavailable"
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Check the schema, register the workspace, start serving and delivering."""
        self._lock = lock_database(self.settings.database_url)  # SQLite: one server per file
        try:
            current = await migrate.current_revision(self.engine)
        except DATABASE_ERRORS as error:
            raise StartupError(database_problem(error, self.settings.database_url)) from None
        if current != migrate.head_revision():
            raise ConfigError(
                f"The database schema is at {current or 'nothing'}, not "
                f"{migrate.head_revision()}: run `vigil db upgrade` first."
            )
        try:
            async with transaction(self.factory) as session:
                readable = await encrypted.key_reads_stored_data(session, cipher=self.cipher)
        except keyring.KeyUnavailable as error:
            raise StartupError(str(error)) from None
        if not readable:
            raise StartupError(
                "VIGIL_DATA_KEY cannot decrypt the records already in the database: restore "
                "the key kept when Vigil was set up (a new key goes in front of it: "
                "VIGIL_DATA_KEY=new,old)"
            )
        try:
            await self.files.check()
        except FILE_STORE_ERRORS as error:
            raise StartupError(
                file_store_problem(
                    error,
                    files_url=self.settings.files_url,
                    endpoint_url=self.settings.s3_endpoint_url,
                )
            ) from None
        # One HTTP connection pool for every Slack call (slack_sdk otherwise opens a new
        # session, so a new TLS connection, per call); Bolt's per-request clients share it.
        # With a shared session slack_sdk no longer applies its own timeout: set it here.
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.settings.slack_timeout)
        )
        self.client.session = self._http
        self.worker_client.session = self._http
        self.slack_clients.session = self.worker_clients.session = self._http
        self.web_deps.oidc_client.session = self._http
        workspace_id = await self._single_workspace() if not self.oauth else None
        async with self.factory() as session:
            await self.schools.reload(session)
        if self.settings.socket_mode:
            try:
                await self._start_socket_mode()
            except (SlackApiError, *NETWORK_ERRORS) as error:
                raise StartupError(
                    slack_problem(
                        error, api_url=self.settings.slack_api_url, token_name="SLACK_APP_TOKEN"
                    )
                ) from None
        self._runner = web.AppRunner(
            self.web_app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=self.settings.shutdown_timeout,
        )
        await self._runner.setup()
        site: web.BaseSite = (
            web.TCPSite(self._runner, self.settings.host, self.settings.port)
            if self._sock is None
            else web.SockSite(self._runner, self._sock)
        )
        try:
            await site.start()
        except OSError as error:
            raise StartupError(
                listen_problem(error, host=self.settings.host, port=self.settings.port)
            ) from None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if self._deliver:
            self.worker.start()
            self.worker.listen(self.settings.database_url)  # woken by other processes too
        self.scheduler = start_scheduler(noise=self.noise_job, schools=self.schools_job)
        self.leadership.start()
        # Staff imported before Slack was connected: linked by email, without delaying start
        # (in OAuth mode, in every school Vigil is installed in, each with its own token).
        if workspace_id is not None:
            self.tasks.spawn(self._link_staff(workspace_id))
        else:
            async with self.factory() as session:
                installed = await installations.installed_workspaces(session)
            for each in installed:
                self.tasks.spawn(self._link_staff(each))
        # Objects made at start-up live for ever: keep the garbage collector off them, so
        # full collections (which pause every request) stay short.
        gc.collect()
        gc.freeze()
        if self.settings.web_view_over_plain_http:
            log.warning(
                "web.plain_http",
                public_url=self.settings.public_url,
                advice="the web view's cookies need HTTPS: put Vigil behind a TLS-terminating "
                "reverse proxy and set VIGIL_PUBLIC_URL to its https:// address (sign-in "
                "fails as 'expired' over plain HTTP)",
            )
        log.info(
            "vigil.started",
            host=self.settings.host,
            port=self.port,
            transport="socket_mode" if self.settings.socket_mode else "http",
            workspace=self.team_id or "oauth",
        )

    def _start_checks(self) -> None:
        """This process leads (`scheduler.leader`): run the scheduled checks."""
        self.checks = start_checks(
            self.overdue_job,
            config=self.school,
            more=(
                self.urgent_job,
                self.unread_job,
                self.transfer_job,
                self.tasks_job,
                self.sar_job,
            ),
        )

    def _stop_checks(self) -> None:
        if self.checks is not None:
            self.checks.shutdown(wait=False)
            self.checks = None

    async def _single_workspace(self) -> int:
        """Single-workspace mode: the workspace SLACK_BOT_TOKEN belongs to, registered."""
        try:
            identity = await self.client.auth_test()
        except (SlackApiError, *NETWORK_ERRORS) as error:
            raise StartupError(
                slack_problem(
                    error, api_url=self.settings.slack_api_url, token_name="SLACK_BOT_TOKEN"
                )
            ) from None
        async with transaction(self.factory) as session:
            workspace = await workspaces.ensure(
                session, team_id=identity["team_id"], name=identity.get("team") or ""
            )
            self.teams.remember(workspace.team_id, workspace.id)
        self.team_id = workspace.team_id
        return workspace.id

    def _installed(self, served: dict[int, str]) -> None:
        """OAuth mode: a school installed Vigil (or reinstalled it): serve it at once, and
        link its staff already imported to their Slack accounts."""
        for workspace_id, team_id in served.items():
            self.teams.remember(team_id, workspace_id)
            self.slack_clients.forget(workspace_id)
            self.worker_clients.forget(workspace_id)
            self.tasks.spawn(self._link_staff(workspace_id))

    def _uninstalled(self) -> None:
        """OAuth mode: an installation was removed; no client is kept for it."""
        self.slack_clients.forget()
        self.worker_clients.forget()

    async def _link_staff(self, workspace_id: int) -> None:
        """Find the Slack accounts of staff who have none (`users.lookupByEmail`)."""
        try:
            client = await self.slack_clients.for_workspace(workspace_id)
            if client is None:
                return
            report = await slack_links.link_unlinked_staff(
                self.factory, workspace_id=workspace_id, lookup=make_slack_lookup(client)
            )
        except SlackLookupError as error:
            log.warning("staff.slack_links_failed", error=str(error)[:200])
            return
        except DATABASE_ERRORS as error:
            log.warning("staff.slack_links_failed", error=type(error).__name__)
            return
        if report.linked or report.still_unlinked:
            log.info(
                "staff.slack_links",
                linked=report.linked,
                no_slack_account=report.not_found,
                slack_id_taken=report.taken,
            )

    async def _start_socket_mode(self) -> None:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        def make_handler() -> AsyncSocketModeHandler:
            return AsyncSocketModeHandler(
                self.bolt, self.settings.slack_app_token, web_client=self.client
            )

        self.socket_watchdog = SocketModeWatchdog(
            make_handler, interval=self.settings.socket_watchdog_seconds
        )
        await self.socket_watchdog.start()

    async def stop(self) -> None:
        """Graceful shutdown: stop taking work, let work in hand finish, close."""
        log.info("vigil.stopping")
        await self.close()
        log.info("vigil.stopped")

    async def close(self) -> None:
        """Stop and close whatever `start()` got as far as starting (quietly)."""
        if self.socket_watchdog is not None:
            await self.socket_watchdog.stop()
        if self._runner is not None:
            await self._runner.cleanup()  # waits for in-flight requests
            self._runner = None
        await self.leadership.stop()
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        await self.tasks.drain(timeout=self.settings.shutdown_timeout)
        await self.worker.stop()
        if self.noise.pending:
            await self.noise_job.run()  # what was counted since the last run
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.files.close()
        await self.engine.dispose()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"


def _malformed(problem: str) -> web.Response:
    """A signed (or unsigned) request Slack would never send: 400, logged by its problem."""
    log.warning("slack.malformed_request", problem=problem[:120])
    return web.Response(status=400, text="malformed request")


@contextlib.contextmanager
def _hidden_from_environment(*names: str) -> Iterator[None]:
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def load_catalogue(settings: Settings, school: SchoolConfig) -> Catalogue:
    """The categories (with the school's `[[alert_rules]]`) and agencies on offer."""
    try:
        return Catalogue.from_config(
            settings.categories,
            settings.restricted_categories,
            [agency.name for agency in school.agencies],
            rules=school.alert_rules,
        )
    except ValueError as error:
        where = f"{settings.config_path}: " if str(error).startswith("alert_rules") else ""
        raise ConfigError(f"{where}{error}") from None


def load_schools(settings: Settings, school: SchoolConfig, catalogue: Catalogue) -> SchoolDirectory:
    """Each school's configuration: `VIGIL_SCHOOLS_DIR/<TEAM_ID>.toml` where there is one,
    else `vigil.toml` (`school`), then each school's settings page (`store.schools`)."""
    directory = Path(settings.schools_dir) if settings.schools_dir else None
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"VIGIL_SCHOOLS_DIR names {directory}, which is not a directory")

    def build(config: SchoolConfig, source: str) -> School:
        return School(config, _catalogue(settings, config, source), source)

    try:
        files = read_school_files(directory, build)
    except SchoolConfigError as error:
        raise ConfigError(str(error)) from None
    return SchoolDirectory(School(school, catalogue, settings.config_path), files=files)


def _catalogue(settings: Settings, school: SchoolConfig, source: str) -> Catalogue:
    try:
        return Catalogue.from_config(
            settings.categories,
            settings.restricted_categories,
            [agency.name for agency in school.agencies],
            rules=school.alert_rules,
        )
    except ValueError as error:
        raise ConfigError(f"{source}: {error}") from None


def load_school(settings: Settings) -> SchoolConfig:
    """The school's configuration file; a missing file is an error only if one was named."""
    path = Path(settings.config_path)
    if not path.exists():
        if settings.config_path != DEFAULT_CONFIG:
            raise ConfigError(f"VIGIL_CONFIG names {path}, which does not exist")
        return load_school_config(None)
    try:
        return load_school_config(path)
    except SchoolConfigError as error:
        raise ConfigError(str(error)) from None


async def serve_forever(
    settings: Settings,
    stop: asyncio.Event,
    *,
    sock: socket.socket | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Run until `stop` is set (SIGTERM/SIGINT in the CLI), then shut down gracefully.

    `sock` and `ready`: a worker of `vigil serve --workers N` (`bot.workers`) serves on the
    parent's socket and says when it has started."""
    server = VigilServer(settings, sock=sock, deliver=not settings.delivery_process)
    try:
        await server.start()
    except BaseException:
        await server.close()  # nothing left open behind the one-line error
        raise
    if ready is not None:
        ready()
    try:
        await stop.wait()
    finally:
        await server.stop()
