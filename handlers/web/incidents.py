"""An incident's page, and what can be done on it: mark its alerts read, add an action
(with any referral it records), share it with a colleague, withdraw someone's access.

Each handler parses the request, calls one flow (`store.flows.incidents`,
`store.flows.actions`) in one transaction, and renders. A flow answers None when the
viewer may not see the incident: the page is then the one 404, whether or not it exists
(the flow has audited the refusal). Logs carry ids only: never a pupil's name, a
narrative or an action's text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import structlog
from aiohttp import web
from markupsafe import Markup, escape
from multidict import MultiDictProxy

from handlers.web.bodymap import context as bodymap_context
from handlers.web.deps import DEPS
from handlers.web.referrals import blank_entries, overdue_text
from handlers.web.render import not_found, page, zone
from handlers.web.security import one_transaction
from handlers.web.session import request_db, visit
from store.actions import ACTION_MAX
from store.db import transaction
from store.flows import actions as action_flows
from store.flows import incidents as flows
from store.flows.incidents import IncidentPage
from store.ids import parse_id, parse_number
from store.referral_changes import REFERENCE_MAX
from store.staff import Pick

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

REASONS = {
    "keyholder": "Safeguarding team",
    "class_teacher": "Class teacher",
    "added": "Added by the author",
    "action": "Alerted on an action",
    "invited": "Shared with them",
    "dsl": "DSL",
    "head": "Head",
    "slt": "Senior leadership",
    "pastoral": "Pastoral",
    "senco": "SENCo",
    "chair": "Chair of governors",
    "urgent": "On duty (urgent)",
}
PARENTS = {"yes": "Yes", "no": "No"}
VIA = {"web": "in the web view", "slack": "in Slack"}
NOTHING_ENTERED: dict[str, Any] = {
    "text": "",
    "alert": [],
    "categories": [],
    "staff": None,
    "assignee": "",
    "due": "",
}


def staff_options(
    people: Iterable[Pick], chosen: Iterable[object], *, me_first: bool = False
) -> Markup:
    """A staff picker's `<option>`s, built in one go rather than by the template's loop:
    a school's hundred staff, in three pickers on every view of the page. Names escaped;
    `chosen` (ids or their text) selected; the first marked "(me)" if `me_first`."""
    wanted = {str(c) for c in chosen if c is not None and c != ""}
    return Markup(
        "\n".join(
            f'<option value="{person.id}"{" selected" if str(person.id) in wanted else ""}>'
            f"{escape(person.name)}{' (me)' if me_first and index == 0 else ''}</option>"
            for index, person in enumerate(people)
        )
    )


def _ids(raw: Iterable[Any]) -> tuple[list[int], bool]:
    """Ids from a multi-value field, each once; the flag is True when some were not ids."""
    ids = [parse_id(str(item)) for item in raw]
    found = [i for i in ids if i is not None]
    return list(dict.fromkeys(found)), len(found) != len(ids)


def _number(request: web.Request) -> int | None:
    return parse_number(request.match_info.get("number"))


def _incident_page(
    request: web.Request,
    shown: IncidentPage,
    *,
    errors: dict[str, str] | None = None,
    invite_errors: dict[str, str] | None = None,
    withdraw_errors: dict[str, str] | None = None,
    entered: dict[str, Any] | None = None,
    referral_typed: dict[str, str] | None = None,
    status_errors: dict[str, str] | None = None,
    status_entered: dict[str, str] | None = None,
    status: int = 200,
    correction_error: str = "",
) -> web.Response:
    setup = visit(request).setup  # the school's, resolved once for the request
    school = setup.school
    open_ids = [r.id for r in shown.open_referrals]
    defaults = blank_entries(open_ids, now=shown.as_of, zone=zone(request))
    parents = shown.parents_contacted
    return page(
        request,
        "incident.html",
        status=status,
        errors=errors or {},
        invite_errors=invite_errors or {},
        withdraw_errors=withdraw_errors or {},
        entered=entered or NOTHING_ENTERED,
        referral_entered={**defaults, **(referral_typed or {})},
        parents=PARENTS.get(parents, parents or "—"),
        categories=setup.catalogue.categories,
        reasons=REASONS,
        via=VIA,
        action_max=ACTION_MAX,
        agency_choices=[(a.name, a.timescale.describe()) for a in school.agencies],
        reference_max=REFERENCE_MAX,
        timezone=school.working_time.timezone,
        overdue_text=overdue_text,
        max_upload_mb=request.app[DEPS].max_upload_bytes // (1024 * 1024),
        body_map_figure=bodymap_context(),
        correction_error=correction_error,
        status_errors=status_errors or {},
        status_entered=status_entered or {},
        outcomes=school.outcomes,
        staff_options=staff_options,
        **{field.name: getattr(shown, field.name) for field in dataclasses.fields(shown)},
    )


@routes.get("/incidents/{number}")
@one_transaction
async def incident_page(request: web.Request) -> web.Response:
    db = request_db(request)  # the session's transaction: read, audited, committed once
    shown = await flows.view_incident(db, visit=visit(request), number=_number(request))
    if shown is None:
        return not_found(request)
    return _incident_page(request, shown)


@routes.post("/incidents/{number}/read")
async def mark_incident_read(request: web.Request) -> web.Response:
    deps = request.app[DEPS]
    asking = visit(request)
    async with transaction(deps.factory) as db:
        read = await flows.mark_read_on_web(db, visit=asking, number=_number(request))
    if read is None:
        return not_found(request)
    if read.alert_ids:
        deps.notify_outbox()
        log.info(
            "web.alert_read",
            staff=asking.staff.id,
            incident=read.incident_id,
            alerts=read.alert_ids,
        )
    raise web.HTTPSeeOther(f"/incidents/{read.number}")


@routes.post("/incidents/{number}/actions")
async def add_action(request: web.Request) -> web.Response:
    """Add an action, with any referral it records, in one transaction (all or nothing)."""
    deps = request.app[DEPS]
    asking = visit(request)
    form: MultiDictProxy[Any] = await request.post()
    alert_ids, unreadable = _ids(form.getall("alert", []))
    assignee = str(form.get("assignee", "")).strip()
    draft = action_flows.ActionDraft(
        text=str(form.get("text", "")),
        alert_staff_ids=alert_ids,
        unreadable_alert_ids=unreadable,
        categories=[str(c) for c in form.getall("categories", []) if str(c)],
        referral_fields={name: str(form.get(name, "")) for name in form},
        assignee_id=parse_id(assignee) if assignee else None,
        unreadable_assignee=bool(assignee) and parse_id(assignee) is None,
        due=str(form.get("due", "")),
    )
    async with transaction(deps.factory) as db:
        result = await action_flows.add_action(
            db, visit=asking, number=_number(request), draft=draft
        )
    if result is None:
        return not_found(request)
    staff = asking.staff.id
    if isinstance(result, action_flows.ActionRefused):
        shown = result.page
        log.info(
            "web.action_invalid",
            staff=staff,
            incident=shown.incident.id,
            fields=sorted(result.errors),
        )
        entered = {
            "text": draft.text,
            "alert": alert_ids,
            "categories": draft.categories,
            "assignee": assignee,
            "due": draft.due,
        }
        return _incident_page(
            request,
            shown,
            errors=result.errors,
            entered={**NOTHING_ENTERED, **entered},
            referral_typed=result.referral_typed,
            status=400,
        )
    deps.notify_outbox()
    log.info(
        "web.action_added",
        staff=staff,
        incident=result.incident_id,
        action=result.action_id,
        referrals=result.referral_ids,
        task=result.task_id,
    )
    raise web.HTTPSeeOther(f"/incidents/{result.number}#action-{result.action_id}")


@routes.post("/incidents/{number}/invite")
async def invite(request: web.Request) -> web.Response:
    form: MultiDictProxy[Any] = await request.post()
    staff_id = parse_id(str(form.get("staff", "")))
    asking = visit(request)
    async with transaction(request.app[DEPS].factory) as db:
        shared = await flows.share(db, visit=asking, number=_number(request), staff_id=staff_id)
    if shared is None:
        return not_found(request)
    if isinstance(shared, flows.ShareRefused):
        entered = {**NOTHING_ENTERED, "staff": staff_id}
        return _incident_page(
            request, shared.page, invite_errors=shared.errors, entered=entered, status=400
        )
    request.app[DEPS].notify_outbox()
    log.info(
        "web.invited", staff=asking.staff.id, incident=shared.incident_id, guest=shared.guest_id
    )
    raise web.HTTPSeeOther(f"/incidents/{shared.number}#invite")


@routes.post("/incidents/{number}/withdraw")
async def withdraw(request: web.Request) -> web.Response:
    """A key-holder withdraws a person's access (anyone else: the one 404, audited)."""
    form: MultiDictProxy[Any] = await request.post()
    staff_id = parse_id(str(form.get("staff", "")))
    asking = visit(request)
    async with transaction(request.app[DEPS].factory) as db:
        done = await flows.withdraw(db, visit=asking, number=_number(request), staff_id=staff_id)
    if done is None:
        return not_found(request)
    if isinstance(done, flows.WithdrawRefused):
        return _incident_page(request, done.page, withdraw_errors=done.errors, status=400)
    request.app[DEPS].notify_outbox()
    log.info(
        "web.withdrawn",
        staff=asking.staff.id,
        incident=done.incident_id,
        person=done.person_id,
        alerts=done.alert_ids,
    )
    raise web.HTTPSeeOther(f"/incidents/{done.number}#receipts-heading")


render_incident = _incident_page  # for the other incident routes (handlers/web/corrections.py)


def incident_page_response(
    request: web.Request, shown: IncidentPage, **shown_with: Any
) -> web.Response:
    """The incident page with what a form on it was refused for (`handlers.web.casework`)."""
    return _incident_page(request, shown, **shown_with)
