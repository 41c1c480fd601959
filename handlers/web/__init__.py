"""The secure web view (DESIGN §4): server-rendered pages behind Slack sign-in and TOTP.

Every route is registered here, from the modules by concern:

- `signin`: signing in (Slack or a one-time link), the second factor, signing out;
- `alerts`: my alerts; `incidents`: an incident's page, marking read, actions, sharing;
- `files`: attaching files to an incident, downloading and previewing them;
- `bodymap`: drawing a body map on an incident;
- `referrals`: the referrals board; `pupils`: pupil search and chronologies (`pdf`);
- `subject_access`: subject access requests, their redactions and the PDF pack;
- `paper`: scanned paper records added to a chronology, and their scans;
- `reports`: reports and their CSVs (`tables`, `chart`, `dates`);
- `admin`: the audit log, the staff list, authenticator resets;
- `casework`: a concern's status, the caseload, search and my concerns;
- `tasks`: my tasks, and marking one done;
- `retention`: the retention review, legal holds, destroying a record.

In front of them all: `security` (the one middleware: headers, session, CSRF and the
`@public` / `@first_factor` / `@keyholder_only` markers), with `session` (the signed-in
session and its cookie) and `render` (pages, the one 404). `deps` and `oidc` are what
they need from the application and from Slack.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from handlers.web import (
    admin,
    alerts,
    bodymap,
    casework,
    corrections,
    files,
    incidents,
    paper,
    pupils,
    referrals,
    reports,
    retention,
    schools,
    signin,
    subject_access,
    tasks,
)
from handlers.web.deps import COMMAND, DEPS, WebDeps
from handlers.web.oidc import JWKS, KeySet
from handlers.web.security import build_middleware

HERE = Path(__file__).parent
ROUTES = (
    signin,
    alerts,
    incidents,
    casework,
    tasks,
    corrections,
    files,
    bodymap,
    referrals,
    pupils,
    subject_access,
    paper,
    reports,
    retention,
    admin,
    schools,
)


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
    for module in ROUTES:
        app.router.add_routes(module.routes)
    app.router.add_static("/static", HERE / "static")
