"""The web view's incident page (DESIGN §10): "100,000 incidents stored: p99 under 50 ms
at 50 concurrent".

Key-holders (who may see every incident) sign in the way staff do: `/concern login` in
Slack (through the simulator) gives a one-time link, and `testing.webclient.WebUser` opens it
and enrols an authenticator by reading the key off the page (a first sign-in needs no
earlier code, and each person's code is checked against their own last step, so several
people can sign in within one 30 s step). Their session cookies are then shared out among
C concurrent clients, which all go through one aiohttp session (a connection limit of C,
no cookie jar: each request carries its client's cookie) and GET
`/incidents/{random seeded number}`; every answer must be a 200 with that concern's page.
The floor answers the same requests with a constant page of the same size.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from benchmarks.load import BenchmarkError, Measured, drive, errors_of
from testing.simulator import SlackSimulator
from testing.webclient import WebUser

LINK = re.compile(r"(https?://\S+/login/\S+)")
COOKIES = ("vigil_session", "__Host-vigil_session")


@dataclass(frozen=True)
class SignedIn:
    slack_user_id: str
    cookie: str  # "name=value" for the Cookie header


async def sign_in(
    sim: SlackSimulator, *, user_id: str, command: str, public_url: str, server_url: str
) -> SignedIn:
    """Sign `user_id` in to the web view (one-time link, then TOTP enrolment)."""
    response = await sim.slash_command(user_id, "login", command=command)
    found = LINK.search(response.body)
    if response.status != 200 or not found:
        raise BenchmarkError(f"no sign-in link for {user_id}: {response.status}")
    link = found.group(1).replace(public_url, server_url)
    async with WebUser(server_url, lambda: dt.datetime.now(dt.UTC)) as user:
        status, _page = await user.use_login_link(link)
        if status != 200:
            raise BenchmarkError(f"the sign-in link answered {status}")
        status, _page = await user.pass_totp()
        if status != 200 or "/alerts" not in user.last_url:
            raise BenchmarkError(f"sign-in of {user_id} failed: {status} {user.last_url}")
        for cookie in user.http.cookie_jar:
            if cookie.key in COOKIES:
                return SignedIn(user_id, f"{cookie.key}={cookie.value}")
    raise BenchmarkError(f"no session cookie after signing in {user_id}")


def page_numbers(first: int, last: int, count: int, rng: random.Random) -> list[int]:
    """Which incidents the clients open: uniformly random among the seeded ones."""
    return [rng.randint(first, last) for _ in range(count)]


class PageClients:
    """C concurrent browsers on one aiohttp session (a connection limit of C)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=concurrency),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self.http.close()

    async def get(self, url: str, *, cookie: str | None = None) -> tuple[int, bytes, float]:
        """GET `url`; (status, body, seconds from sending to the last byte read)."""
        headers = {"Cookie": cookie} if cookie else None
        started = time.perf_counter()
        async with self.http.get(url, headers=headers, allow_redirects=False) as response:
            body = await response.read()
        return response.status, body, time.perf_counter() - started


async def pages(
    clients: PageClients,
    *,
    base_url: str,
    cookies: Sequence[str],
    paths: Sequence[str],
    total: int,
    warmup: int,
    server_cpu: Callable[[], float],
    check: Callable[[str, bytes], bool] | None,
) -> Measured:
    """One closed-loop client per cookie GETs `paths[i]`; HTTP round trips (200s only).

    Client k sends `cookies[k]`. A page must be a 200 and, with `check`, pass it.
    """
    users = [f"client-{k}" for k in range(len(cookies))]
    cookie_of = dict(zip(users, cookies, strict=True))
    sizes: list[int] = []

    async def one(user: str, index: int) -> float:
        path = paths[index % len(paths)]
        status, body, seconds = await clients.get(f"{base_url}{path}", cookie=cookie_of[user])
        if status != 200:
            raise BenchmarkError(f"{path} answered {status}")
        if check is not None and not check(path, body):
            raise BenchmarkError(f"{path} is not the page asked for")
        sizes.append(len(body))
        return seconds

    warm = await drive(users, warmup, one)
    result = await drive(users, total, one, offset=warmup, server_cpu=server_cpu)
    extra = {
        "concurrency": len(users),
        "mean_page_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
        "max_page_bytes": max(sizes, default=0),
        "all_ok": not result.errors and not warm.errors and len(result.samples) == total,
        "served": total + warmup,
    }
    return Measured.of(result, list(result.samples), errors_of(warm, result), extra)


def _is_concern_page(path: str, body: bytes) -> bool:
    return f"Concern #{path.rsplit('/', 1)[1]}<".encode() in body


async def incident_pages(
    clients: PageClients,
    *,
    base_url: str,
    sessions: Sequence[SignedIn],
    numbers: Sequence[int],
    total: int,
    warmup: int,
    concurrency: int,
    server_cpu: Callable[[], float],
    check_page: bool = True,
) -> Measured:
    """`concurrency` clients GET incident pages (`numbers[i]`); HTTP round trips.

    Client k uses session k mod len(sessions). A page must be a 200 naming the concern
    (`check_page`; the floor's constant page is only checked for its status).
    """
    measured = await pages(
        clients,
        base_url=base_url,
        cookies=[sessions[k % len(sessions)].cookie for k in range(concurrency)],
        paths=[f"/incidents/{number}" for number in numbers],
        total=total,
        warmup=warmup,
        server_cpu=server_cpu,
        check=_is_concern_page if check_page else None,
    )
    extra = measured.extra
    measured.extra = {
        "concurrency": concurrency,
        "sessions": len(sessions),
        "mean_page_bytes": extra["mean_page_bytes"],
        "all_ok": extra["all_ok"],
    }
    return measured
