"""The secure web view (DESIGN §4): server-rendered pages behind Slack sign-in and TOTP."""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from handlers.web import pages, reports, signin
from handlers.web.deps import COMMAND, DEPS, WebDeps
from handlers.web.oidc import JWKS, KeySet
from handlers.web.security import build_middleware

HERE = Path(__file__).parent


def register_web(app: web.Application, deps: WebDeps, *, command: str) -> None:
    """Add the web view's routes, templates and middleware to the server's application."""
    app[DEPS] = deps
    app[COMMAND] = command
    app[JWKS] = KeySet(deps.jwks_url)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.middlewares.append(build_middleware(deps))
    app.router.add_routes(signin.routes)
    app.router.add_routes(pages.routes)
    app.router.add_routes(reports.routes)  # pupils, chronologies, reports
    app.router.add_static("/static", HERE / "static")
