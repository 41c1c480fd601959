"""Requests from nobody signed in, and the web view's answers when something is odd: a rate
limit per client address (429 with Retry-After), refusals counted rather than audited row
by row, the client's address believed from trusted proxies only, a 500 page with the
security headers, the one 404 for ids out of range, and a plain notice over plain HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from handlers.web.security import SECURITY_HEADERS
from store import alerts
from store.db import create_engine, session_factory
from store.models import AuditEvent
from testing.harness import Harness
from testing.webclient import WebUser, form_field
from tests.support.school import DSL, TEACHER, seeded_school
from tests.support.web import People, shown


@contextlib.asynccontextmanager
async def school_with(db_url: str, tmp_path: Path, **settings: Any) -> AsyncIterator[Harness]:
    async with seeded_school(db_url, tmp_path, overrides=settings) as harness:
        yield harness


async def get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers=headers, allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.text()


async def audit_rows(school: Harness, action: str) -> list[AuditEvent]:
    async with school.server.factory() as db:
        rows = await db.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
        return list(rows.all())


def assert_security_headers(headers: dict[str, str]) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, name


# -- the rate limit ----------------------------------------------------------------------


async def test_an_address_past_its_allowance_gets_429_with_retry_after_and_the_headers(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(
        db_url, tmp_path, VIGIL_ANONYMOUS_BURST=5, VIGIL_ANONYMOUS_RATE=0.1
    ) as school:
        url = school.server.url
        answers = [await get(f"{url}/signin") for _ in range(5)]
        assert [status for status, _, _ in answers] == [200] * 5
        status, headers, page = await get(f"{url}/signin")
        assert status == 429 and "Too many requests" in page
        assert 1 <= int(headers["Retry-After"]) <= 10
        assert_security_headers(headers)
        # Every anonymous route shares the allowance: links, Sign in with Slack, nonsense.
        for path in ("/login/abc", "/auth/slack", "/auth/slack/callback", "/no-such-page"):
            assert (await get(f"{url}{path}"))[0] == 429, path
        # Signed Slack requests and health checks are not anonymous noise: still answered.
        assert (await get(f"{url}/healthz"))[0] == 200
        assert (await school.slack.slash_command(TEACHER, "help")).status == 200
        # Refused requests are counted, and written as one audit row.
        await school.server.noise_job.run()
        (row,) = await audit_rows(school, "web.rate_limited")
        assert row.outcome == "refused" and row.detail.startswith("5 anonymous requests")


async def test_each_client_behind_a_trusted_proxy_has_its_own_allowance(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(
        db_url,
        tmp_path,
        VIGIL_ANONYMOUS_BURST=3,
        VIGIL_ANONYMOUS_RATE=0.1,
        VIGIL_TRUSTED_PROXIES="127.0.0.1",
    ) as school:
        signin = f"{school.server.url}/signin"
        first = [(await get(signin, **{"X-Forwarded-For": "203.0.113.7"}))[0] for _ in range(4)]
        other = (await get(signin, **{"X-Forwarded-For": "198.51.100.2"}))[0]
    assert first == [200, 200, 200, 429] and other == 200


async def test_without_trusted_proxies_x_forwarded_for_buys_no_new_allowance(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(
        db_url, tmp_path, VIGIL_ANONYMOUS_BURST=3, VIGIL_ANONYMOUS_RATE=0.1
    ) as school:
        signin = f"{school.server.url}/signin"
        statuses = [
            (await get(signin, **{"X-Forwarded-For": f"203.0.113.{n}"}))[0] for n in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_signed_in_people_are_not_held_to_the_anonymous_limit(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(
        db_url, tmp_path, VIGIL_ANONYMOUS_BURST=3, VIGIL_ANONYMOUS_RATE=0.1
    ) as school:
        async with People(school).signed_in(DSL) as dsl:  # two anonymous requests
            statuses = [(await dsl.get("/alerts"))[0] for _ in range(10)]
    assert statuses == [200] * 10


# -- anonymous noise: counted, not audited row by row ------------------------------------


async def test_refused_anonymous_requests_are_one_audit_row_per_kind(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(db_url, tmp_path) as school:
        url = school.server.url
        link = await school.login_link(DSL)
        async with WebUser(url, school.now) as victim:
            _, page = await victim.get(link)
            pre = form_field(page, "pre")
        async with WebUser(url, school.now) as attacker:
            for _ in range(12):  # Continue without the browser's own token
                status, _ = await attacker.post(link, {"pre": pre}, csrf=False)
                assert status == 403
            for n in range(7):  # a session cookie nobody was given
                attacker.http.cookie_jar.update_cookies({"vigil_session": f"forged{n}"})
                await attacker.get("/alerts")
                assert attacker.last_url.endswith("/signin?expired=1")
            for _ in range(4):  # Slack's callback with a state never issued
                assert (await attacker.get("/auth/slack/callback?state=x&code=y"))[0] == 400
        # Nothing yet: no audit row per request.
        assert await audit_rows(school, "signin.link") == []
        assert await audit_rows(school, "session.expired") == []
        assert school.server.scheduler is not None
        assert school.server.scheduler.get_job("anonymous-noise") is not None  # runs regularly
        await school.server.noise_job.run()
        counted = {
            action: (await audit_rows(school, action))
            for action in ("signin.link", "session.expired", "signin.slack")
        }
        assert {a: len(rows) for a, rows in counted.items()} == {
            "signin.link": 1,
            "session.expired": 1,
            "signin.slack": 1,
        }
        assert counted["signin.link"][0].detail.startswith("12 anonymous requests since")
        assert counted["session.expired"][0].detail.startswith("7 anonymous requests since")
        assert counted["signin.slack"][0].detail.startswith("4 anonymous requests since")
        async with WebUser(url, school.now) as attacker:
            for _ in range(3):
                assert (await attacker.post(link, {"pre": pre}, csrf=False))[0] == 403
    # Counted since the last run: written as the server stops.
    engine = create_engine(db_url)
    try:
        async with session_factory(engine)() as db:
            details = (
                await db.scalars(
                    select(AuditEvent.detail)
                    .where(AuditEvent.action == "signin.link")
                    .order_by(AuditEvent.id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert len(details) == 2 and details[1].startswith("3 anonymous requests")


async def test_a_known_persons_sign_in_is_still_audited_with_their_address(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(db_url, tmp_path, VIGIL_TRUSTED_PROXIES="127.0.0.1/32") as school:
        link = await school.login_link(DSL)
        async with WebUser(school.server.url, school.now) as user:
            forwarded = {"X-Forwarded-For": "203.0.113.50"}
            _, page = await user.get(link, headers=forwarded)
            status, _ = await user.post(
                link, {"pre": form_field(page, "pre")}, csrf=False, headers=forwarded
            )
            assert status == 200
        (row,) = await audit_rows(school, "signin.link")
    assert row.outcome == "ok" and row.ip == "203.0.113.50"


async def test_x_forwarded_for_from_an_untrusted_address_is_not_believed(
    school: Harness,
) -> None:
    link = await school.login_link(DSL)
    async with WebUser(school.server.url, school.now) as user:
        forged = {"X-Forwarded-For": "203.0.113.50"}
        _, page = await user.get(link, headers=forged)
        await user.post(link, {"pre": form_field(page, "pre")}, csrf=False, headers=forged)
    (row,) = await audit_rows(school, "signin.link")
    assert row.ip == "127.0.0.1"


# -- faults and odd addresses ------------------------------------------------------------


async def test_a_fault_of_ours_is_a_plain_500_page_with_the_security_headers(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> Any:
        raise RuntimeError("something of ours broke")

    async with People(school).signed_in(TEACHER) as teacher:
        monkeypatch.setattr(alerts, "alerts_for", broken)
        async with teacher.http.get(f"{school.server.url}/alerts") as response:
            status, headers, page = response.status, dict(response.headers), await response.text()
    assert status == 500
    assert_security_headers(headers)
    assert "Something went wrong" in page and "something of ours broke" not in page
    assert "Traceback" not in page


OUT_OF_RANGE = "99999999999999999999"  # 20 digits: more than any database integer


async def test_ids_out_of_range_in_addresses_are_the_one_404(school: Harness) -> None:
    async with People(school).signed_in(DSL) as dsl:
        _, missing = await dsl.get("/incidents/999999")
        for path in (
            f"/incidents/{OUT_OF_RANGE}",
            f"/incidents/{OUT_OF_RANGE}0000",
            f"/pupils/{OUT_OF_RANGE}",
            f"/pupils/{OUT_OF_RANGE}/chronology.pdf",
        ):
            status, page = await dsl.get(path)
            assert (status, page) == (404, missing), path
        await dsl.get("/staff")
        for path in (
            f"/staff/{OUT_OF_RANGE}/totp-reset",
            f"/staff/{OUT_OF_RANGE}/totp-unlock",
            f"/incidents/{OUT_OF_RANGE}/read",
        ):
            status, _ = await dsl.post(path, {"csrf": form_field(dsl.last_page, "csrf")})
            assert status == 404, path
        for path in (
            f"/audit?person={OUT_OF_RANGE}",
            f"/audit?incident={OUT_OF_RANGE}",
            f"/staff?reset={OUT_OF_RANGE}",
        ):
            assert (await dsl.get(path))[0] == 200, path


# -- plain HTTP --------------------------------------------------------------------------


async def test_over_plain_http_the_sign_in_page_says_https_is_needed(
    db_url: str, tmp_path: Path
) -> None:
    async with school_with(
        db_url, tmp_path, VIGIL_LOCAL_DEV=False, VIGIL_PUBLIC_URL="http://vigil.school.example"
    ) as school:
        status, _, page = await get(f"{school.server.url}/signin")
    assert status == 200
    assert "must be served over HTTPS" in shown(page) and 'id="plain-http"' in page


async def test_in_local_development_no_such_notice(school: Harness) -> None:
    status, _, page = await get(f"{school.server.url}/signin")
    assert status == 200 and "plain-http" not in page


async def test_over_https_no_such_notice(db_url: str, tmp_path: Path) -> None:
    async with school_with(
        db_url, tmp_path, VIGIL_LOCAL_DEV=False, VIGIL_PUBLIC_URL="https://vigil.example"
    ) as school:
        status, _, page = await get(f"{school.server.url}/signin")
    assert status == 200 and "plain-http" not in page
