"""Pieces for anonymous requests: a rate limit per address, noise counted into one audit
row per kind, and the client's address believed from trusted proxies only."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from bot.settings import ConfigError, load_settings
from store import audit, websessions
from store.client_address import client_address, parse_trusted_proxies
from store.db import SessionFactory
from store.models import AuditEvent, OidcRequest
from store.noise import AnonymousNoise
from store.ratelimit import RateLimiter

# -- the rate limit ---------------------------------------------------------------------


def test_an_address_gets_its_burst_then_waits_while_another_is_served() -> None:
    now = [100.0]
    limiter = RateLimiter(rate=1.0, burst=5, clock=lambda: now[0])
    assert [limiter.allow("203.0.113.9") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limiter.retry_after("203.0.113.9") == 1
    assert limiter.allow("198.51.100.4")  # someone else is not held up
    now[0] += 2.0
    assert [limiter.allow("203.0.113.9") for _ in range(3)] == [True, True, False]


def test_a_thousand_requests_from_one_address_mostly_refused() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=10, clock=lambda: now[0])
    allowed = 0
    for _ in range(1000):  # 1000 requests in 4.5 s, as in the issue
        now[0] += 4.5 / 1000
        allowed += limiter.allow("203.0.113.9")
    assert allowed <= 10 + 2 * 4.5 + 1


def test_the_limiter_remembers_a_bounded_number_of_addresses() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=100)
    for i in range(1000):
        limiter.allow(f"10.0.{i // 250}.{i % 250}")
    assert len(limiter) == 100


# -- anonymous noise --------------------------------------------------------------------


async def test_anonymous_noise_is_one_audit_row_per_kind(factory: SessionFactory) -> None:
    noise = AnonymousNoise()
    start = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)
    for _ in range(800):
        noise.count("signin.link", now=start)
    for _ in range(200):
        noise.count("signin.oidc_state", now=start)
    assert noise.pending == 1000
    async with factory() as session, session.begin():
        assert noise.flush(session, now=start + dt.timedelta(minutes=1)) == 2
    assert noise.pending == 0
    async with factory() as session:
        rows = (await session.scalars(select(AuditEvent).order_by(AuditEvent.action))).all()
    assert [(r.action, r.outcome, r.detail) for r in rows] == [
        ("signin.link", audit.REFUSED, "800 anonymous requests since 2026-11-03 09:00:00 UTC"),
        (
            "signin.oidc_state",
            audit.REFUSED,
            "200 anonymous requests since 2026-11-03 09:00:00 UTC",
        ),
    ]
    async with factory() as session, session.begin():
        assert noise.flush(session) == 0  # nothing new, nothing written


# -- Sign in with Slack attempts ---------------------------------------------------------


async def test_sign_in_with_slack_attempts_never_pile_up(
    factory: SessionFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websessions, "MAX_OIDC_PENDING", 25)
    start = dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC)
    states = []
    for n in range(60):  # anonymous: anyone may start as many as the rate limit allows
        async with factory() as session, session.begin():
            state, _nonce = await websessions.begin_oidc(
                session, browser=f"b{n}", now=start + dt.timedelta(seconds=n)
            )
            states.append(state)
    assert await pending_oidc(factory) == 25
    # The newest still work; the oldest were forgotten.
    async with factory() as session, session.begin():
        now = start + dt.timedelta(seconds=61)
        assert await websessions.finish_oidc(session, state=states[-1], browser="b59", now=now)
        assert not await websessions.finish_oidc(session, state=states[0], browser="b0", now=now)
    # Expired ones go when the job runs, even if nobody starts another.
    async with factory() as session, session.begin():
        later = start + websessions.OIDC_TTL + dt.timedelta(minutes=2)
        assert await websessions.purge_oidc(session, now=later) == 24
    assert await pending_oidc(factory) == 0


async def pending_oidc(factory: SessionFactory) -> int:
    async with factory() as session:
        return int(await session.scalar(select(func.count()).select_from(OidcRequest)) or 0)


# -- the client's address ---------------------------------------------------------------

PROXIES = parse_trusted_proxies("127.0.0.1, 10.0.0.0/24, ::1")


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        ("127.0.0.1", ["203.0.113.9"], "203.0.113.9"),  # through the proxy
        ("127.0.0.1", [], "127.0.0.1"),  # the proxy itself
        ("198.51.100.4", ["203.0.113.9"], "198.51.100.4"),  # not a proxy: header ignored
        ("127.0.0.1", ["6.6.6.6, 203.0.113.9"], "203.0.113.9"),  # a forged left part
        ("127.0.0.1", ["203.0.113.9, 10.0.0.7"], "203.0.113.9"),  # two proxies deep
        ("127.0.0.1", ["203.0.113.9", "10.0.0.7"], "203.0.113.9"),  # two headers
        ("127.0.0.1", ["not-an-address"], "127.0.0.1"),  # garbage: the last good hop
        ("127.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("::1", ["203.0.113.9:5555"], "203.0.113.9"),
        ("::ffff:127.0.0.1", ["203.0.113.9"], "203.0.113.9"),  # v4 mapped into v6
    ],
)
def test_the_client_address_is_believed_from_trusted_proxies_only(
    remote: str, forwarded: list[str], client: str
) -> None:
    assert client_address(remote, forwarded, PROXIES) == client


def test_no_trusted_proxies_means_the_connection_s_own_address() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"


def test_trusted_proxies_are_a_setting_checked_at_start() -> None:
    settings = load_settings(env_file=None, VIGIL_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/24")
    assert [str(n) for n in settings.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/24"]
    assert load_settings(env_file=None).trusted_proxies == ()
    with pytest.raises(ConfigError, match="VIGIL_TRUSTED_PROXIES: 'nginx' is not an IP"):
        load_settings(env_file=None, VIGIL_TRUSTED_PROXIES="nginx")
