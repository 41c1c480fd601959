"""Signing in to the web view, and the session rules around it (OWASP ASVS level 2)."""

from __future__ import annotations

import datetime as dt
import re

import aiohttp
import pyotp
import pytest
from sqlalchemy import select

from store.models import AuditEvent, LoginToken, TotpEnrolment, WebSession
from testing.harness import Harness
from testing.webclient import WebUser, form_field
from tests.support.school import DSL


def session_cookie(user: WebUser) -> str:
    cookies = {c.key: c.value for c in user.http.cookie_jar}
    return cookies.get("vigil_session", "")


async def audit_actions(harness: Harness) -> list[tuple[str, str]]:
    """The audit log's (action, outcome)s, once anonymous noise counted so far is written
    (as the server's job does every few minutes)."""
    await harness.server.noise_job.run()
    async with harness.server.factory() as db:
        rows = await db.execute(
            select(AuditEvent.action, AuditEvent.outcome).order_by(AuditEvent.id)
        )
        return [(a, o) for a, o in rows]


# -- the one-time link --------------------------------------------------------------------


async def test_one_time_link_then_enrolment_then_code(school: Harness) -> None:
    async with WebUser(school.server.url, school.now) as user:
        link = await school.login_link(DSL)
        status, page = await user.get(link)
        assert status == 200 and "Alys Hughes" in page
        status, page = await user.post(link, {"pre": form_field(page, "pre")}, csrf=False)
        assert status == 200 and "Set up your authenticator" in page and "<svg" in page
        status, page = await user.pass_totp()
        assert status == 200 and user.last_url.endswith("/alerts")
    async with school.server.factory() as db:
        enrolment = await db.scalar(select(TotpEnrolment))
        assert enrolment is not None and enrolment.confirmed_at is not None
        assert user.secret and user.secret.encode() not in enrolment.secret_ct
    assert ("totp.enrol", "ok") in await audit_actions(school)


async def test_link_works_once_and_is_stored_hashed(school: Harness) -> None:
    link = await school.login_link(DSL)
    token = link.rsplit("/", 1)[1]
    async with school.server.factory() as db:
        assert (await db.scalars(select(LoginToken.token_hash))).one() != token
    async with WebUser(school.server.url, school.now) as first:
        status, _ = await first.use_login_link(link)
        assert status == 200
    async with WebUser(school.server.url, school.now) as second:
        status, page = await second.get(link)
        assert status == 410 and "used or has expired" in page


async def test_link_expires_after_five_minutes(school: Harness) -> None:
    link = await school.login_link(DSL)
    school.clock_offset += dt.timedelta(minutes=5, seconds=1)
    async with WebUser(school.server.url, school.now) as user:
        status, _ = await user.get(link)
    assert status == 410


async def test_opening_a_link_changes_nothing_until_continue(school: Harness) -> None:
    link = await school.login_link(DSL)
    async with WebUser(school.server.url, school.now) as preview:  # e.g. a link unfurler
        await preview.get(link)
        await preview.get(link)
    async with WebUser(school.server.url, school.now) as user:
        status, page = await user.use_login_link(link)
    assert status == 200 and "authenticator" in page


async def test_continue_from_another_browser_is_refused(school: Harness) -> None:
    link = await school.login_link(DSL)
    async with WebUser(school.server.url, school.now) as victim:
        _, page = await victim.get(link)
        pre = form_field(page, "pre")
    async with WebUser(school.server.url, school.now) as attacker:
        status, _ = await attacker.post(link, {"pre": pre}, csrf=False)
    assert status == 403
    assert ("signin.link", "refused") in await audit_actions(school)


async def test_someone_not_on_the_roster_gets_no_link(school: Harness) -> None:
    school.standin.add_user("U0VISITOR1", email="v@example.org", name="Visitor")
    response = await school.slack.slash_command("U0VISITOR1", "login")
    assert "not on Vigil's staff list" in response.body and "/login/" not in response.body


# -- the second factor --------------------------------------------------------------------


async def test_replayed_code_is_refused(school: Harness) -> None:
    user = await school.sign_in(DSL)
    code = user.last_code  # the code that was accepted (not one computed later)
    await user.close()
    async with WebUser(school.server.url, school.now) as again:
        await again.use_login_link(await school.login_link(DSL))
        status, page = await again.post("/totp", {"code": code})
    assert status == 400 and "already been used" in page
    assert ("signin.totp", "failed") in await audit_actions(school)


async def test_wrong_codes_are_throttled_without_locking_out_for_good(school: Harness) -> None:
    user = await school.sign_in(DSL)
    secret = user.secret
    await user.close()
    school.clock_offset += dt.timedelta(seconds=30)
    async with WebUser(school.server.url, school.now) as guesser:
        await guesser.use_login_link(await school.login_link(DSL))
        statuses = [(await guesser.post("/totp", {"code": "000000"}))[0] for _ in range(6)]
        assert statuses[:5] == [400] * 5 and statuses[5] == 429
        guesser.secret = secret
        status, page = await guesser.post("/totp", {"code": guesser.code()})
        assert status == 429 and "Wait" in page  # even the right code waits
        school.clock_offset += dt.timedelta(seconds=61)
        status, _ = await guesser.post("/totp", {"code": guesser.code()})
        assert status == 200 and guesser.last_url.endswith("/alerts")


async def test_pages_need_the_second_factor(school: Harness) -> None:
    async with WebUser(school.server.url, school.now) as user:
        await user.use_login_link(await school.login_link(DSL))
        status, _ = await user.get("/alerts")
        assert user.last_url.endswith("/totp")


async def test_session_id_changes_at_sign_in(school: Harness) -> None:
    async with WebUser(school.server.url, school.now) as user:
        await user.use_login_link(await school.login_link(DSL))
        before = session_cookie(user)
        await user.pass_totp()
        after = session_cookie(user)
        assert before and after and before != after
        # The pre-sign-in id is dead: presenting it again gets nowhere.
        async with (
            aiohttp.ClientSession(cookies={"vigil_session": before}) as fixer,
            fixer.get(f"{user.base_url}/totp") as response,
        ):
            assert "/signin" in str(response.url)


# -- sessions -------------------------------------------------------------------------------


async def test_idle_time_out(school: Harness) -> None:
    user = await school.sign_in(DSL)
    school.clock_offset += dt.timedelta(minutes=9)
    assert (await user.get("/alerts"))[0] == 200 and user.last_url.endswith("/alerts")
    school.clock_offset += dt.timedelta(minutes=10, seconds=1)
    await user.get("/alerts")
    assert "/signin?expired=1" in user.last_url
    await user.close()


async def test_absolute_limit_even_when_active(school: Harness) -> None:
    user = await school.sign_in(DSL)
    for _ in range(8 * 6 + 1):  # a request every ten minutes, for over 8 hours
        school.clock_offset += dt.timedelta(minutes=9, seconds=59)
        await user.get("/alerts")
    assert "/signin" in user.last_url
    await user.close()


async def test_sign_out_ends_the_session_on_the_server(school: Harness) -> None:
    user = await school.sign_in(DSL)
    cookie = session_cookie(user)
    await user.get("/alerts")
    async with user.http.post(
        f"{user.base_url}/signout",
        data={"csrf": form_field(user.last_page, "csrf")},
        allow_redirects=False,
    ) as response:
        assert response.status == 303
        assert "cookies" in response.headers["Clear-Site-Data"]
    async with aiohttp.ClientSession(cookies={"vigil_session": cookie}) as thief:
        async with thief.get(f"{user.base_url}/alerts") as response:
            assert "/signin" in str(response.url)
    async with school.server.factory() as db:
        assert all(s.ended_at for s in (await db.scalars(select(WebSession))).all())
    await user.close()


async def test_post_without_csrf_token_is_refused(school: Harness) -> None:
    user = await school.sign_in(DSL)
    status, _ = await user.post("/signout", {"csrf": "forged"})
    assert status == 403
    status, _ = await user.get("/alerts")
    assert status == 200 and user.last_url.endswith("/alerts")  # still signed in
    assert ("csrf.refused", "refused") in await audit_actions(school)
    await user.close()


async def test_cookie_flags_outside_local_development(school: Harness) -> None:
    school.settings = school.settings.model_copy(update={"local_dev": False})
    await school.restart()
    link = await school.login_link(DSL)
    async with aiohttp.ClientSession() as http:
        async with http.get(link) as response:
            page = await response.text()
            pre_cookie = response.headers.getall("Set-Cookie")
        async with http.post(
            link,
            data={"pre": form_field(page, "pre")},
            allow_redirects=False,
            cookies={"vigil_pre": re.search(r"vigil_pre=([^;]+)", pre_cookie[0]).group(1)},  # type: ignore[union-attr]
        ) as response:
            cookie = response.headers["Set-Cookie"]
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert cookie.startswith("__Host-vigil_session=")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in cookie


# -- Sign in with Slack (OpenID Connect) -----------------------------------------------------


async def slack_sign_in(harness: Harness, user: WebUser) -> tuple[int, str]:
    """Press "Sign in with Slack"; the stand-in plays Slack's authorize page."""
    status, page = await user.get("/signin")
    assert 'id="sign-in-with-slack"' in page
    async with user.http.get(f"{user.base_url}/auth/slack", allow_redirects=False) as response:
        assert response.status == 303
        authorize = response.headers["Location"]
    assert authorize.startswith(harness.standin.authorize_url)
    async with user.http.get(authorize, allow_redirects=False) as response:
        callback = response.headers["Location"]
    assert callback.startswith(f"{harness.settings.public_url}/auth/slack/callback?")
    return await user.get(callback.replace(harness.settings.public_url, harness.server.url))


async def test_sign_in_with_slack_then_totp(school: Harness) -> None:
    school.standin.oidc_sign_in_as(DSL)
    async with WebUser(school.server.url, school.now) as user:
        status, page = await slack_sign_in(school, user)
        assert status == 200 and 'href="/totp"' in page
        status, page = await user.get("/totp")
        assert "Set up your authenticator" in page
        status, _ = await user.pass_totp()
        assert status == 200 and user.last_url.endswith("/alerts")
    calls = [c.method for c in school.standin.calls]
    assert "openid.connect.token" in calls and "openid.connect.userInfo" in calls
    assert ("signin.slack", "ok") in await audit_actions(school)


@pytest.mark.parametrize(
    "tamper", ["wrong_audience", "wrong_issuer", "bad_signature", "wrong_nonce", "expired"]
)
async def test_forged_id_tokens_are_refused(school: Harness, tamper: str) -> None:
    school.standin.oidc_sign_in_as(DSL)
    school.standin.oidc_tamper(tamper)
    async with WebUser(school.server.url, school.now) as user:
        status, page = await slack_sign_in(school, user)
        assert status == 400 and "could not confirm" in page
        await user.get("/alerts")
        assert "/signin" in user.last_url
    assert ("signin.slack", "failed") in await audit_actions(school)


async def test_state_must_come_back_to_the_same_browser(school: Harness) -> None:
    school.standin.oidc_sign_in_as(DSL)
    async with WebUser(school.server.url, school.now) as victim:
        async with victim.http.get(f"{victim.base_url}/auth/slack", allow_redirects=False) as r:
            authorize = r.headers["Location"]
        async with victim.http.get(authorize, allow_redirects=False) as r:
            callback = r.headers["Location"].replace(school.settings.public_url, school.server.url)
    async with WebUser(school.server.url, school.now) as attacker:
        status, _ = await attacker.get(callback)
    assert status == 400
    assert ("signin.slack", "refused") in await audit_actions(school)


async def test_slack_user_not_on_the_roster_is_refused(school: Harness) -> None:
    school.standin.add_user("U0VISITOR1", email="v@example.org", name="Visitor")
    school.standin.oidc_sign_in_as("U0VISITOR1")
    async with WebUser(school.server.url, school.now) as user:
        status, page = await slack_sign_in(school, user)
    assert status == 403 and "staff list" in page


def test_codes_are_six_digits() -> None:
    assert len(pyotp.TOTP(pyotp.random_base32()).now()) == 6
