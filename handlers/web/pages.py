"""Signed-in pages: my alerts, incident detail, actions, invitations, referrals, audit, staff.

Every route here needs the full sign-in (the middleware sees to it) and every state
change is a POST whose CSRF token the middleware has already checked. An incident is
only ever found through `store.access.visible_incident`: when it answers None the page
is the same 404 as for a number that does not exist, and the refusal is audited.

Logs carry ids only: never a pupil's name, a narrative or an action's text.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web import referrals as web_referrals
from handlers.web.deps import DEPS, WebDeps
from handlers.web.render import page
from handlers.web.security import client_ip, current
from store import access, actions, alerts, audit, incidents, totp
from store.access import is_keyholder
from store.actions import ACTION_MAX, InvalidAction
from store.enums import ReadVia
from store.errors import FieldErrors
from store.models import Incident, Staff
from store.school_config import SchoolConfig
from store.staff import get_staff, staff_in_workspace, staff_overview

log = structlog.get_logger(__name__)
routes = web.RouteTableDef()

SCHOOL_TIME = ZoneInfo("Europe/London")
NUMBER = re.compile(r"[0-9]{1,9}")  # incident numbers and ids in paths and queries
AUDIT_PAGE = 100

REASONS = {
    "keyholder": "Safeguarding team",
    "class_teacher": "Class teacher",
    "added": "Added by the author",
    "action": "Alerted on an action",
    "invited": "Shared with them",
}
KINDS = {
    alerts.AlertKind.NEW_CONCERN: "New concern",
    alerts.AlertKind.ACTION: "Action",
    alerts.AlertKind.SHARED: "Shared with you",
}
PARENTS = {"yes": "Yes", "no": "No"}
VIA = {"web": "in the web view", "slack": "in Slack"}


def when(value: dt.datetime | None, zone: ZoneInfo = SCHOOL_TIME) -> str:
    """A time as the school reads it: `Tue 4 Mar 2025, 14:05` (the school's time zone)."""
    if value is None:
        return ""
    local = value.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b %Y, %H:%M}"


def _deps(request: web.Request) -> WebDeps:
    return request.app[DEPS]


def _render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    zone = web_referrals.school_zone(request.app)
    return page(
        request, template, status=status, when=functools.partial(when, zone=zone), **context
    )


def not_found(request: web.Request) -> web.Response:
    """The one 404 page: it never says whether the thing exists."""
    return _render(request, "not_found.html", status=404)


def _int(raw: str | None) -> int | None:
    """A positive id or number from a path or form, or None for anything else."""
    if raw is None or not NUMBER.fullmatch(raw):
        return None
    value = int(raw)
    return value if value > 0 else None


def _ints(raw: Iterable[Any]) -> tuple[list[int], bool]:
    """Ids from a multi-value field; the flag is True when some were not ids."""
    found: list[int] = []
    bad = False
    for item in raw:
        value = _int(str(item))
        if value is None:
            bad = True
        else:
            found.append(value)
    return list(dict.fromkeys(found)), bad


async def _visible(
    db: AsyncSession, request: web.Request, *, viewer: Staff, action: str
) -> Incident | None:
    """The incident in the path if the viewer may see it; otherwise audit the refusal."""
    number = _int(request.match_info.get("number"))
    incident = (
        await access.visible_incident(db, viewer=viewer, number=number)
        if number is not None
        else None
    )
    if incident is None:
        # The audit log (key-holders only) names the incident if it exists; the person
        # refused sees the same page either way.
        existing = (
            await incidents.incident_id_by_number(
                db, workspace_id=viewer.workspace_id, number=number
            )
            if number is not None
            else None
        )
        audit.record(
            db,
            action=action,
            outcome=audit.REFUSED,
            actor=viewer,
            incident_id=existing,
            ip=client_ip(request),
            detail=f"#{number}" if number is not None else "not an incident number",
        )
        log.warning("web.incident_refused", staff=viewer.id, number=number, action=action)
    return incident


# -- my alerts ---------------------------------------------------------------------------


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    raise web.HTTPSeeOther("/alerts")


@routes.get("/alerts")
async def my_alerts(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    async with deps.factory() as db:
        rows, more = await alerts.alerts_for(
            db, workspace_id=viewer.workspace_id, staff_id=viewer.id
        )
    return _render(
        request,
        "alerts.html",
        rows=rows,
        more=more,
        unread_count=sum(1 for r in rows if r.read_at is None),
        kinds=KINDS,
    )


# -- an incident -------------------------------------------------------------------------


async def _incident_context(
    db: AsyncSession,
    deps: WebDeps,
    *,
    incident: Incident,
    viewer: Staff,
    school: SchoolConfig,
    now: dt.datetime,
) -> dict[str, Any]:
    """Everything the incident page shows, decrypted here and nowhere else."""
    action_views = await actions.list_actions(db, incident=incident, cipher=deps.cipher)
    original = incident.category_names
    timeline = []
    categories = original
    for item in action_views:
        previous = categories
        if item.categories:
            categories = list(item.categories)
        timeline.append({"action": item, "previous": previous})
    receipt_rows = await alerts.receipts(db, incident_id=incident.id)
    colleagues = [
        s
        for s in await staff_in_workspace(db, workspace_id=incident.workspace_id)
        if s.id != viewer.id
    ]
    referral_rows = await web_referrals.incident_rows(db, incident=incident, school=school, now=now)
    open_referrals = {r.id: r.referral for r in referral_rows if r.state != "closed"}
    return {
        "incident": incident,
        "pupils": [(p.pupil, p.is_main) for p in incident.pupils],
        "narrative": deps.cipher.decrypt(incident.narrative_ct),
        "parents": PARENTS.get(incident.parents_contacted, incident.parents_contacted or "—"),
        "parents_reason": (
            deps.cipher.decrypt(incident.parents_reason_ct) if incident.parents_reason_ct else ""
        ),
        "original_categories": original,
        "current_categories": categories,
        "recategorised": categories != original,
        "agencies": [a.name for a in incident.agencies],
        "receipts": receipt_rows,
        "my_unread": [r for r in receipt_rows if r.recipient_id == viewer.id and not r.read_at],
        "timeline": timeline,
        "colleagues": colleagues,
        "invitable": [s for s in colleagues if s.id != incident.author_id],
        "categories": deps.catalogue.categories,
        "reasons": REASONS,
        "via": VIA,
        "action_max": ACTION_MAX,
        "referrals": referral_rows,
        "open_referrals": [r for r in referral_rows if r.state != "closed"],
        "agency_choices": [(a.name, a.timescale.describe()) for a in school.agencies],
        "referral_defaults": web_referrals.blank_entries(
            open_referrals, now=now, zone=school.working_time.zone
        ),
        "reference_max": web_referrals.REFERENCE_MAX,
        "timezone": school.working_time.timezone,
        "overdue_text": web_referrals.overdue_text,
    }


def _incident_page(
    request: web.Request,
    context: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    invite_errors: dict[str, str] | None = None,
    entered: dict[str, Any] | None = None,
    referral_entered: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    return _render(
        request,
        "incident.html",
        status=status,
        errors=errors or {},
        invite_errors=invite_errors or {},
        entered=entered or {"text": "", "alert": [], "categories": [], "staff": None},
        referral_entered={**context["referral_defaults"], **(referral_entered or {})},
        **context,
    )


@routes.get("/incidents/{number}")
async def incident_page(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    async with deps.factory() as db, db.begin():
        incident = await _visible(db, request, viewer=viewer, action="incident.view")
        if incident is not None:
            context = await _incident_context(
                db,
                deps,
                incident=incident,
                viewer=viewer,
                school=web_referrals.school_of(request.app),
                now=deps.clock(),
            )
            # Recorded after the reads, in the same transaction: on SQLite the first write
            # takes the database's write lock, and it should not be held through them.
            audit.record(
                db,
                action="incident.view",
                actor=viewer,
                incident_id=incident.id,
                ip=client_ip(request),
            )
    if incident is None:
        return not_found(request)
    return _incident_page(request, context)


@routes.post("/incidents/{number}/read")
async def mark_incident_read(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    read: list[int] = []
    async with deps.factory() as db, db.begin():
        incident = await _visible(db, request, viewer=viewer, action="alert.read")
        if incident is not None:
            for alert_id in await alerts.unread_alert_ids(
                db, incident_id=incident.id, staff_id=viewer.id
            ):
                try:
                    result = await alerts.mark_read(
                        db,
                        alert_id=alert_id,
                        workspace_id=viewer.workspace_id,
                        slack_user_id=viewer.slack_user_id or "",
                        public_url=deps.public_url,
                        via=ReadVia.WEB,
                    )
                except alerts.AlertNotFound:
                    continue
                if result.newly_read:
                    read.append(result.alert_id)
            if read:
                audit.record(
                    db,
                    action="alert.read",
                    actor=viewer,
                    incident_id=incident.id,
                    ip=client_ip(request),
                    detail="via web; alerts " + ",".join(map(str, read)),
                )
    if incident is None:
        return not_found(request)
    if read:
        deps.notify_outbox()
        log.info("web.alert_read", staff=viewer.id, incident=incident.id, alerts=read)
    raise web.HTTPSeeOther(f"/incidents/{incident.number}")


@routes.post("/incidents/{number}/actions")
async def add_action(request: web.Request) -> web.Response:
    """Add an action, with any referral it records, in one transaction (all or nothing)."""
    deps = _deps(request)
    viewer = current(request).staff
    school = web_referrals.school_of(request.app)
    now = deps.clock()
    ip = client_ip(request)
    form: MultiDictProxy[Any] = await request.post()
    text = str(form.get("text", ""))
    alert_ids, bad_ids = _ints(form.getall("alert", []))
    chosen = [str(c) for c in form.getall("categories", []) if str(c)]
    entered = {"text": text, "alert": alert_ids, "categories": chosen, "staff": None}
    referral_entered: dict[str, Any] | None = None
    errors: dict[str, str] = {}
    changed: list[int] = []
    try:
        async with deps.factory() as db, db.begin():
            incident = await _visible(db, request, viewer=viewer, action="action.add")
            if incident is not None:
                open_referrals = await web_referrals.open_referrals(
                    db, incident=incident, lock=True
                )
                parsed = web_referrals.read_form(
                    form, school=school, now=now, open_referrals=open_referrals
                )
                referral_entered = parsed.entered
                problems = dict(parsed.errors)
                try:
                    if bad_ids:
                        raise InvalidAction(
                            {"alert": "Some of the people chosen are not current staff."}
                        )
                    action = await actions.add_action(
                        db,
                        author=viewer,
                        incident=incident,
                        text=text,
                        alert_staff_ids=alert_ids,
                        recategorise=chosen or None,
                        catalogue=deps.catalogue,
                        cipher=deps.cipher,
                        public_url=deps.public_url,
                        now=now,
                    )
                except InvalidAction as invalid:
                    problems = {**invalid.errors, **problems}
                if problems:
                    # Raised inside the transaction: the action is rolled back with it.
                    raise FieldErrors(problems)
                changed = await web_referrals.apply(  # InvalidReferral is FieldErrors too
                    db,
                    parsed,
                    incident=incident,
                    action=action,
                    author=viewer,
                    open_referrals=open_referrals,
                    school=school,
                    now=now,
                    ip=ip,
                )
                audit.record(
                    db,
                    action="action.add",
                    actor=viewer,
                    incident_id=incident.id,
                    ip=ip,
                    detail=f"action {action.id}; alerted {len(alert_ids)}",
                    now=now,
                )
                if action.categories:
                    audit.record(
                        db,
                        action="incident.recategorise",
                        actor=viewer,
                        incident_id=incident.id,
                        ip=ip,
                        detail=f"action {action.id}; to " + "; ".join(action.categories),
                        now=now,
                    )
    except FieldErrors as refused:
        # Nothing of the attempt was kept; record the failure and show the form again.
        errors = refused.errors
        async with deps.factory() as db, db.begin():
            number = _int(request.match_info.get("number"))
            found = (
                await access.visible_incident(db, viewer=viewer, number=number)
                if number is not None
                else None
            )
            if found is None:  # gone in between (e.g. access removed): the usual 404
                return not_found(request)
            incident = found
            audit.record(
                db,
                action="action.add",
                outcome=audit.FAILED,
                actor=viewer,
                incident_id=incident.id,
                ip=ip,
                detail="invalid: " + ", ".join(sorted(errors)),
                now=now,
            )
            context = await _incident_context(
                db, deps, incident=incident, viewer=viewer, school=school, now=now
            )
    if incident is None:
        return not_found(request)
    if errors:
        log.info("web.action_invalid", staff=viewer.id, incident=incident.id, fields=sorted(errors))
        return _incident_page(
            request,
            context,
            errors=errors,
            entered=entered,
            referral_entered=referral_entered,
            status=400,
        )
    deps.notify_outbox()
    log.info(
        "web.action_added",
        staff=viewer.id,
        incident=incident.id,
        action=action.id,
        referrals=changed,
    )
    raise web.HTTPSeeOther(f"/incidents/{incident.number}#action-{action.id}")


@routes.post("/incidents/{number}/invite")
async def invite(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    form: MultiDictProxy[Any] = await request.post()
    staff_id = _int(str(form.get("staff", "")))
    errors: dict[str, str] = {}
    async with deps.factory() as db, db.begin():
        incident = await _visible(db, request, viewer=viewer, action="incident.invite")
        if incident is not None:
            try:
                if staff_id is None:
                    raise InvalidAction({"staff": "Choose a current member of staff."})
                guest = await actions.invite(
                    db,
                    inviter=viewer,
                    incident=incident,
                    staff_id=staff_id,
                    public_url=deps.public_url,
                )
            except InvalidAction as invalid:
                errors = invalid.errors
                audit.record(
                    db,
                    action="incident.invite",
                    outcome=audit.FAILED,
                    actor=viewer,
                    incident_id=incident.id,
                    ip=client_ip(request),
                    detail="invalid: " + ", ".join(sorted(errors)),
                )
                context = await _incident_context(
                    db,
                    deps,
                    incident=incident,
                    viewer=viewer,
                    school=web_referrals.school_of(request.app),
                    now=deps.clock(),
                )
            else:
                audit.record(
                    db,
                    action="incident.invite",
                    actor=viewer,
                    incident_id=incident.id,
                    subject_id=guest.id,
                    ip=client_ip(request),
                )
    if incident is None:
        return not_found(request)
    if errors:
        entered = {"text": "", "alert": [], "categories": [], "staff": staff_id}
        return _incident_page(request, context, invite_errors=errors, entered=entered, status=400)
    deps.notify_outbox()
    log.info("web.invited", staff=viewer.id, incident=incident.id, guest=guest.id)
    raise web.HTTPSeeOther(f"/incidents/{incident.number}#invite")


# -- key-holders only: the audit log and the staff list -----------------------------------


async def _refuse_non_keyholder(request: web.Request, *, action: str) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    async with deps.factory() as db, db.begin():
        audit.record(
            db,
            action=action,
            outcome=audit.REFUSED,
            actor=viewer,
            ip=client_ip(request),
            detail="not a key-holder",
        )
    log.warning("web.keyholder_only", staff=viewer.id, action=action)
    return not_found(request)


@routes.get("/audit")
async def audit_log(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    if not is_keyholder(viewer.role_set):
        return await _refuse_non_keyholder(request, action="audit.view")
    person = _int(request.query.get("person"))
    number = _int(request.query.get("incident"))
    before = _int(request.query.get("before"))
    unknown_incident = False
    async with deps.factory() as db, db.begin():
        incident_id = None
        if number is not None:
            incident_id = await incidents.incident_id_by_number(
                db, workspace_id=viewer.workspace_id, number=number
            )
            unknown_incident = incident_id is None
        rows = (
            []
            if unknown_incident
            else await audit.audit_rows(
                db,
                workspace_id=viewer.workspace_id,
                person_id=person,
                incident_id=incident_id,
                before_id=before,
                limit=AUDIT_PAGE,
            )
        )
        people = await staff_in_workspace(db, workspace_id=viewer.workspace_id, active_only=False)
        filters = " ".join(
            f"{name}={value}"
            for name, value in (("person", person), ("incident", number), ("before", before))
            if value is not None
        )
        audit.record(
            db,
            action="audit.view",
            actor=viewer,
            incident_id=incident_id,
            subject_id=person if person in {p.id for p in people} else None,
            ip=client_ip(request),
            detail=filters or None,
        )
    older = None
    if len(rows) == AUDIT_PAGE:
        query = {"person": person, "incident": number, "before": rows[-1].id}
        older = "/audit?" + "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    return _render(
        request,
        "audit.html",
        rows=rows,
        people=people,
        person=person,
        number=number,
        before=before,
        unknown_incident=unknown_incident,
        older=older,
    )


@routes.get("/referrals")
async def referrals_board(request: web.Request) -> web.Response:
    """Referrals waiting for an agency: overdue first (most overdue first), then soonest due."""
    deps = _deps(request)
    viewer = current(request).staff
    if not is_keyholder(viewer.role_set):
        return await _refuse_non_keyholder(request, action="referrals.view")
    now = deps.clock()
    async with deps.factory() as db, db.begin():
        rows = await web_referrals.board_rows(
            db,
            workspace_id=viewer.workspace_id,
            school=web_referrals.school_of(request.app),
            now=now,
        )
        audit.record(
            db,
            action="referrals.view",
            actor=viewer,
            ip=client_ip(request),
            detail=f"{len(rows)} waiting",
        )
    log.info("web.referrals_board", staff=viewer.id, waiting=len(rows))
    return _render(
        request,
        "referrals.html",
        rows=rows,
        overdue_count=sum(1 for r in rows if r.state == "overdue"),
        overdue_text=web_referrals.overdue_text,
    )


@routes.get("/staff")
async def staff_list(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    if not is_keyholder(viewer.role_set):
        return await _refuse_non_keyholder(request, action="staff.view")
    reset_id = _int(request.query.get("reset"))
    async with deps.factory() as db:
        rows = await staff_overview(db, workspace_id=viewer.workspace_id)
    reset = next((r.staff for r in rows if r.staff.id == reset_id), None)
    return _render(request, "staff.html", rows=rows, reset=reset)


@routes.post("/staff/{staff_id}/totp-reset")
async def totp_reset(request: web.Request) -> web.Response:
    deps = _deps(request)
    viewer = current(request).staff
    if not is_keyholder(viewer.role_set):
        return await _refuse_non_keyholder(request, action="totp.reset")
    staff_id = _int(request.match_info.get("staff_id"))
    async with deps.factory() as db, db.begin():
        target = (
            await get_staff(db, workspace_id=viewer.workspace_id, staff_id=staff_id)
            if staff_id is not None
            else None
        )
        if target is None:
            audit.record(
                db,
                action="totp.reset",
                outcome=audit.REFUSED,
                actor=viewer,
                ip=client_ip(request),
                detail=f"no staff {staff_id} here" if staff_id else "not a staff id",
            )
        else:
            removed = await totp.reset(db, staff_id=target.id)
            audit.record(
                db,
                action="totp.reset",
                actor=viewer,
                subject_id=target.id,
                ip=client_ip(request),
                detail=None if removed else "had no authenticator",
            )
    if target is None:
        log.warning("web.totp_reset_refused", staff=viewer.id, target=staff_id)
        return not_found(request)
    log.info("web.totp_reset", staff=viewer.id, target=target.id)
    raise web.HTTPSeeOther(f"/staff?reset={target.id}#staff-{target.id}")
