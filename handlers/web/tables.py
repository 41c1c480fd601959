"""The reports' tables as a header and rows (shown on the page, and downloaded), and CSV.

A CSV cell that a spreadsheet could read as a formula is made safe (`spreadsheet_safe`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.web.render import month
from store import reports
from store.flows.reports import Build
from store.models import Staff
from store.reports import CategoryMonths, DateRange
from store.workdays import WorkingTime

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> str:
    """A cell a spreadsheet shows as text: anything that could start a formula (=, +, -,
    @, tab, carriage return) gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_bytes(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a byte-order mark (so Excel reads it as UTF-8), every cell safe."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(v) for v in header])
    for row in rows:
        writer.writerow([spreadsheet_safe(v) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def csv_response(body: bytes, filename: str) -> web.Response:
    """A CSV download."""
    return web.Response(
        body=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _local(value: dt.datetime | None, zone: ZoneInfo) -> str:
    return "" if value is None else value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def category_table(data: CategoryMonths) -> tuple[list[str], list[list[Any]]]:
    header = ["Category", *(month(m) for m in data.months), "Total"]
    rows: list[list[Any]] = [[r.name, *r.counts, r.total] for r in data.rows]
    rows.append(["All incidents (each counted once)", *data.incidents, data.total])
    return header, rows


def year_group_table(found: Sequence[reports.YearGroupRow]) -> tuple[list[str], list[list[Any]]]:
    return ["Year group", "Incidents (main pupil)"], [[r.year_group, r.incidents] for r in found]


def referral_table(
    found: Sequence[reports.OpenReferral], zone: ZoneInfo
) -> tuple[list[str], list[list[Any]]]:
    header = [
        "Concern",
        "Agency",
        "Agency's reference",
        "Referred",
        "Due",
        "Status",
        "Age (days)",
        "Age (working days)",
        "Overdue (working days)",
    ]
    rows = [
        [
            r.number,
            r.agency,
            r.reference or "",
            _local(r.referred_at, zone),
            _local(r.due_at, zone),
            _status(r),
            r.age_days,
            r.age_working_days,
            r.overdue_days if r.overdue else "",
        ]
        for r in found
    ]
    return header, rows


def _status(r: reports.OpenReferral) -> str:
    if r.overdue:
        return "Overdue (no response)"
    return "Responded, not closed" if r.status == "responded" else "Waiting for the agency"


def late_alert_table(found: Sequence[reports.LateAlertsRow]) -> tuple[list[str], list[list[Any]]]:
    header = ["Person", "Alerts received", "Not read within a working day", "Still unread"]
    return header, [[r.name, r.alerts, r.late, r.unread] for r in found]


def agency_table(found: Sequence[reports.AgencyRow]) -> tuple[list[str], list[list[Any]]]:
    header = ["Agency", "Referrals made", "Open now", "Overdue now"]
    return header, [[a.agency, a.made, a.open_now, a.overdue_now] for a in found]


def alert_total_table(totals: reports.AlertTotals) -> tuple[list[str], list[list[Any]]]:
    header = ["Alerts sent", "Not read within a working day", "Still unread after a working day"]
    return header, [[totals.alerts, totals.late, totals.unread]]


def table_rows(table: str, *, governors: bool) -> Build:
    """What one CSV download counts: only that table, not the whole report."""

    async def rows(
        db: AsyncSession,
        *,
        workspace_id: int,
        period: DateRange,
        working: WorkingTime,
        now: dt.datetime,
        viewer: Staff | None = None,
    ) -> tuple[list[str], list[list[Any]]]:
        zone = working.zone
        if table == "categories":
            return category_table(
                await reports.incidents_by_category(
                    db, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
                )
            )
        if table == "year-groups":
            return year_group_table(
                await reports.year_groups(
                    db, workspace_id=workspace_id, period=period, zone=zone, viewer=viewer
                )
            )
        if table == "agencies":
            return agency_table(
                await reports.referrals_by_agency(
                    db, workspace_id=workspace_id, period=period, zone=zone, now=now, viewer=viewer
                )
            )
        if table == "referrals":
            found = await reports.open_referrals(
                db, workspace_id=workspace_id, working=working, now=now, viewer=viewer
            )
            return referral_table(found, zone)
        if governors:  # alerts, added up
            return alert_total_table(
                await reports.alert_totals(
                    db,
                    workspace_id=workspace_id,
                    period=period,
                    working=working,
                    now=now,
                    viewer=viewer,
                )
            )
        return late_alert_table(
            await reports.late_alerts(
                db,
                workspace_id=workspace_id,
                period=period,
                working=working,
                now=now,
                viewer=viewer,
            )
        )

    return rows
