"""Every route, listed from the application itself: none is reachable without sign-in
unless it is on the public list below, and every answer carries the security headers."""

from __future__ import annotations

import re

import aiohttp
from aiohttp import web

from handlers.web.security import FIRST_FACTOR, PUBLIC, SECURITY_HEADERS, access_level
from testing.harness import Harness
from tests.support.school import DSL

PUBLIC_ROUTES = {
    ("POST", "/slack/events"),
    ("GET", "/healthz"),
    ("GET", "/signin"),
    ("GET", "/signed-out"),
    ("GET", "/auth/slack"),
    ("GET", "/auth/slack/callback"),
    ("GET", "/login/{token}"),
    ("POST", "/login/{token}"),
}
FIRST_FACTOR_ROUTES = {("GET", "/totp"), ("POST", "/totp"), ("POST", "/signout")}


def routes(app: web.Application) -> list[tuple[str, str, str]]:
    found = []
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource):
            continue
        assert route.resource is not None
        path = route.resource.canonical
        found.append((route.method, path, access_level(route.handler)))
    return found


def sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


async def test_only_the_listed_routes_are_public(harness: Harness) -> None:
    listed = routes(harness.server.web_app)
    assert {(m, p) for m, p, level in listed if level == PUBLIC} == PUBLIC_ROUTES
    assert {(m, p) for m, p, level in listed if level == FIRST_FACTOR} == FIRST_FACTOR_ROUTES
    assert len(listed) > len(PUBLIC_ROUTES | FIRST_FACTOR_ROUTES)  # the rest need full sign-in


async def test_no_protected_route_answers_without_sign_in(harness: Harness) -> None:
    async with aiohttp.ClientSession() as http:
        for method, path, level in routes(harness.server.web_app):
            if level == PUBLIC:
                continue
            async with http.request(
                method, harness.server.url + sample(path), allow_redirects=False, data={}
            ) as response:
                assert response.status == 303, (method, path, response.status)
                assert response.headers["Location"].startswith("/signin"), (method, path)
                for header in SECURITY_HEADERS:
                    assert header in response.headers, (method, path, header)


async def test_first_factor_alone_reaches_only_the_code_pages(school: Harness) -> None:
    from testing.webclient import WebUser

    async with WebUser(school.server.url, school.now) as user:
        await user.use_login_link(await school.login_link(DSL))
        for method, path, level in routes(school.server.web_app):
            if level != "full" or method != "GET":
                continue
            async with user.http.get(
                school.server.url + sample(path), allow_redirects=False
            ) as response:
                assert response.status == 303 and response.headers["Location"] == "/totp", path


async def test_security_headers_on_public_pages_and_unknown_paths(harness: Harness) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/signin", "/signed-out", "/healthz", "/static/vigil.css", "/no/such/page"):
            async with http.get(harness.server.url + path) as response:
                for header, value in SECURITY_HEADERS.items():
                    assert response.headers.get(header) == value, (path, header)
