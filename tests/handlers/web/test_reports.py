"""Reports, end to end on both databases, and the pieces they are built from.

- The counts: incidents by current category and month, by the main pupil's year group;
  open referrals with their ages, overdue first; alerts not read within one working day,
  by person (the working-day deadline worked out in SQL, checked against
  `WorkingTime.add_working_days`).
- CSV downloads: UTF-8 with a byte-order mark, and formula-like cells neutralised.
- The governors' report: counts only, no names of pupils or staff, no single concern.
- Every view and download is audited; anyone but a key-holder gets the one 404 page.
- Reports decrypt nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from handlers.web import reports as web_reports
from handlers.web.chart import build_chart
from handlers.web.dates import read_dates
from handlers.web.tables import csv_bytes, spreadsheet_safe
from store import pupil_corrections, pupils, reports
from store.db import transaction
from store.models import (
    Alert,
    Incident,
    IncidentAction,
    IncidentPupilCorrection,
    Pupil,
    ReadReceipt,
    Referral,
    Staff,
)
from store.workdays import WorkingTime
from testing.harness import Harness
from testing.webclient import WebUser
from tests.handlers.web.test_access import other_school
from tests.support.clock import LONDON, WORKING, form_time
from tests.support.clock import at as local
from tests.support.records import (
    add_action,
    audit_events,
    pupil_at_another_school,
    pupil_by_upn,
    staff_member,
)
from tests.support.school import (
    CLASS_TEACHER,
    DEPUTY,
    DSL,
    HEAD,
    PASTORAL,
    PUPIL_3A,
    PUPIL_4B,
    PUPIL_5C,
    SCHOOL_NAME,
    TA,
    TEACHER,
    TEACHER_3A,
)
from tests.support.slack import file_concern
from tests.support.web import People, main_of, shown

# TEACHER (4B) files a behaviour concern about a 4B pupil in Slack (all of it may vary).
report = file_concern


async def download(user: WebUser, path: str, **params: str) -> tuple[bytes, list[list[str]]]:
    """A CSV download: its bytes, and its rows as a spreadsheet would read them."""
    async with user.http.get(user.base_url + path, params=params) as response:
        assert response.status == 200, (path, response.status)
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert response.headers["Content-Disposition"].startswith('attachment; filename="vigil-')
        assert response.headers["Cache-Control"] == "no-store"
        body = await response.read()
    assert body.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte-order mark, for Excel
    return body, list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def month_start(day: dt.date, back: int) -> dt.date:
    """The first day of the month `back` months before `day`'s."""
    year, month = day.year, day.month - back
    while month < 1:
        year, month = year - 1, month + 12
    return dt.date(year, month, 1)


# -- pure pieces -------------------------------------------------------------------------------


def test_terms_follow_the_english_school_year() -> None:
    assert reports.term_of(dt.date(2025, 9, 1)) == reports.DateRange(
        dt.date(2025, 9, 1), dt.date(2025, 12, 31), "Autumn term 2025"
    )
    assert reports.term_of(dt.date(2025, 12, 31)).name == "Autumn term 2025"
    assert reports.term_of(dt.date(2026, 2, 14)).key == "2026-01-01..2026-03-31"
    assert reports.term_of(dt.date(2026, 4, 1)).name == "Summer term 2026"
    assert reports.term_of(dt.date(2026, 8, 31)).key == "2026-04-01..2026-08-31"
    assert reports.previous_term(dt.date(2026, 1, 5)).name == "Autumn term 2025"
    assert reports.previous_term(dt.date(2025, 10, 5)).name == "Summer term 2025"
    assert reports.school_year_of(dt.date(2026, 3, 1)).key == "2025-09-01..2026-08-31"
    term = reports.term_of(dt.date(2025, 10, 1))
    assert [m.month for m in term.months] == [9, 10, 11, 12]
    assert term.describe() == "1 Sep 2025 to 31 Dec 2025"
    # Midnight to midnight in school time: BST in September, GMT in December.
    assert term.bounds(LONDON) == (
        dt.datetime(2025, 8, 31, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 0, tzinfo=dt.UTC),
    )


def test_report_period_defaults_to_this_term_and_takes_either_end() -> None:
    today = dt.date(2025, 11, 20)
    period = web_reports.report_period(read_dates({}), today=today)
    assert period.name == "Autumn term 2025"
    chosen = read_dates({"from": "2025-10-01", "to": "2025-10-31"})
    assert web_reports.report_period(chosen, today=today).key == "2025-10-01..2025-10-31"
    only_start = read_dates({"from": "2025-10-01"})
    assert web_reports.report_period(only_start, today=today).key == "2025-10-01..2025-11-20"
    wrong = read_dates({"from": "2025-10-31", "to": "2025-10-01"})
    assert wrong.errors and web_reports.report_period(wrong, today=today).name
    nonsense = read_dates({"from": "1/10/2025"})
    assert "from" in nonsense.errors
    far = read_dates({"from": "0001-01-01", "to": "9999-12-31"})
    assert set(far.errors) == {"from", "to"} and far.first is None and far.last is None
    huge = read_dates({"from": "2000-01-01", "to": "2025-01-01"})
    assert web_reports.report_period(huge, today=today).days == reports.LONGEST_RANGE_DAYS


def test_cells_that_could_be_formulas_are_neutralised() -> None:
    safe = spreadsheet_safe
    for risky in ("=1+2", "+44 20 7946 0000", "-3", "@SUM(A1:A2)", "\tx", "\rx"):
        assert safe(risky) == "'" + risky
    for plain in ("Behaviour", "Year 4", "3", 3, "a=b", "", None, "O'Neill"):
        assert safe(plain) == ("" if plain is None else str(plain))
    body = csv_bytes(["A", "=B"], [['=HYPERLINK("http://x")', 1], ["ok", "-1"]])
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [["A", "'=B"], ['\'=HYPERLINK("http://x")', "1"], ["ok", "'-1"]]


WORKING_WITH_CLOSURES = WorkingTime(
    closures=frozenset(
        {dt.date(2026, 2, 16) + dt.timedelta(days=n) for n in range(5)}  # half term
        | {dt.date(2026, 10, 26) + dt.timedelta(days=n) for n in range(5)}
    )
)


@settings(max_examples=300, deadline=None)
@given(
    st.datetimes(
        min_value=dt.datetime(2025, 12, 15),
        max_value=dt.datetime(2026, 11, 15),
        timezones=st.just(dt.UTC),
    ),
    st.sampled_from([WORKING, WORKING_WITH_CLOSURES]),
)
def test_deadline_segments_agree_with_add_working_days(
    sent: dt.datetime, working: WorkingTime
) -> None:
    start = sent - dt.timedelta(days=9, hours=7)
    segments = reports.deadline_segments(working, start, sent + dt.timedelta(days=3))
    # The pieces cover the range without gaps or overlaps.
    assert segments[0].lo == start
    assert all(a.hi == b.lo for a, b in zip(segments, segments[1:], strict=False))
    found = [s for s in segments if s.lo <= sent < s.hi]
    assert len(found) == 1
    assert found[0].deadline(sent) == working.add_working_days(sent, 1)


def test_deadline_segments_around_the_clocks_changing() -> None:
    # The last Sunday of March and of October (BST starts, ends): every minute of the
    # days around them gets the deadline add_working_days gives.
    for day in (dt.date(2026, 3, 27), dt.date(2026, 10, 23)):
        start = local(day, 0)
        segments = reports.deadline_segments(WORKING, start, start + dt.timedelta(days=5))
        at = start
        while at < start + dt.timedelta(days=5):
            piece = next(s for s in segments if s.lo <= at < s.hi)
            assert piece.deadline(at) == WORKING.add_working_days(at, 1), at
            at += dt.timedelta(minutes=7)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 1, 1)),
    st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2027, 1, 1)),
)
def test_working_day_counter_agrees_with_working_days_between(
    a: dt.datetime, b: dt.datetime
) -> None:
    a, b = a.replace(tzinfo=dt.UTC), b.replace(tzinfo=dt.UTC)
    counter = reports.WorkingDayCounter(WORKING_WITH_CLOSURES, [a, b])
    assert counter.between(a, b) == WORKING_WITH_CLOSURES.working_days_between(a, b)


def test_chart_stacks_months_and_keeps_the_rest_together() -> None:
    months = reports.term_of(dt.date(2025, 10, 1)).months
    rows = [reports.CategoryRow(f"Category {n}", [n, 0, 1, 0], n + 1) for n in range(9, 0, -1)]
    data = reports.CategoryMonths(months, rows, [9, 0, 9, 0], 18)
    chart = build_chart(data)
    assert [b.label for b in chart.bars] == ["Sep 2025", "Oct 2025", "Nov 2025", "Dec 2025"]
    assert [b.total for b in chart.bars] == [9, 0, 9, 0]
    assert len(chart.legend) == 7 and chart.legend[-1][1] == "Other categories (3)"
    september = chart.bars[0]
    assert len(september.segments) == 7  # six named, and the other three as one
    assert sum(s.height for s in september.segments) > 0
    assert all(s.y >= 0 and s.height > 0 for b in chart.bars for s in b.segments)
    assert chart.ticks[0] == (chart.base, 0)
    assert "18 incidents" in chart.description


# -- the reports page -------------------------------------------------------------------------


async def test_reports_count_incidents_by_category_month_and_year_group(
    school: Harness,
) -> None:
    people = People(school)
    now = school.now()
    today = now.astimezone(LONDON).date()
    first = month_start(today, 2)
    second = month_start(today, 1)
    await report(school, categories=["Behaviour"], happened_at=local(first + dt.timedelta(3), 10))
    await report(
        school,
        pupil_query=PUPIL_3A,
        categories=["Behaviour", "Medical"],
        happened_at=local(first + dt.timedelta(4), 11),
    )
    await report(school, categories=["Attendance"], happened_at=local(second + dt.timedelta(2), 9))
    await report(school, categories=["Medical"], happened_at=now - dt.timedelta(seconds=2))
    await report(school, categories=["Medical"], happened_at=local(first - dt.timedelta(2), 9))
    period = {"from": first.isoformat(), "to": today.isoformat()}
    async with people.signed_in(DSL) as dsl:
        # #3 is re-categorised: it counts as Well-being now, not Attendance.
        await dsl.get("/incidents/3")
        await dsl.post(
            "/incidents/3/actions", {"text": "Not attendance.", "categories": "Well-being"}
        )
        status, body = await dsl.get("/reports", params=period)
        assert status == 200
        _, categories = await download(dsl, "/reports/categories.csv", **period)
        _, years = await download(dsl, "/reports/year-groups.csv", **period)
    months = [f"{m:%b %Y}" for m in (first, second, month_start(today, 0))]
    assert categories == [
        ["Category", *months, "Total"],
        ["Behaviour", "2", "0", "0", "2"],
        ["Medical", "1", "0", "1", "2"],
        ["Well-being", "0", "1", "0", "1"],
        ["All incidents (each counted once)", "2", "1", "1", "4"],
    ]
    assert years == [["Year group", "Incidents (main pupil)"], ["3", "1"], ["4", "3"]]
    page = shown(body)
    assert SCHOOL_NAME in page and "Attendance" not in main_of(page)
    # The chart: inline SVG with a title, a description and the figures, no script.
    svg = body[body.index("<svg") : body.index("</svg>")]
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert "4 incidents from" in shown(svg) and "Behaviour: 2" in shown(svg)
    assert "<script>" not in body and " style=" not in body and "<style" not in body
    assert 'id="category-table"' in body and 'href="/reports/categories.csv?from=' in body


async def test_reports_default_to_this_term(school: Harness) -> None:
    people = People(school)
    term = reports.term_of(school.now().astimezone(LONDON).date())
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/reports")
        assert status == 200
        assert f"{term.name}: {term.describe()}" in shown(body)
        assert f'value="{term.first.isoformat()}"' in body
        _, rows = await download(dsl, "/reports/categories.csv")
        assert rows[0][1] == f"{term.first:%b %Y}"
    views = await audit_events(school, "report.view")
    assert [v.detail for v in views] == [f"reports; {term.key}"]


async def test_open_referrals_with_their_age_overdue_first(school: Harness) -> None:
    people = People(school)
    await report(school)
    now = school.now()
    ten_days_ago = (now - dt.timedelta(days=10)).replace(second=0, microsecond=0)
    three_days_ago = (now - dt.timedelta(days=3)).replace(second=0, microsecond=0)
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
        for agency, when in (
            ("Police", ten_days_ago),
            ("Early help", three_days_ago),
            ("CAMHS", now - dt.timedelta(minutes=1)),
            ("LADO", ten_days_ago),
        ):
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {
                    "text": f"Referred to {agency}.",
                    "agency": agency,
                    "referred_at": form_time(when),
                },
            )
            assert status == 200
        async with school.server.factory() as db:
            by_agency = dict((await db.execute(select(Referral.agency, Referral.id))).all())
        # Early help has responded (still open); LADO is closed (gone from the report).
        status, _ = await dsl.post(
            "/incidents/1/actions",
            {
                "text": "Early help called back; LADO not needed.",
                f"outcome-{by_agency['Early help']}": "response",
                f"responded_at-{by_agency['Early help']}": form_time(now - dt.timedelta(hours=1)),
                f"outcome-{by_agency['LADO']}": "closed",
            },
        )
        assert status == 200
        status, body = await dsl.get("/reports")
        _, rows = await download(dsl, "/reports/referrals.csv")
    order = re.findall(r'<tr id="open-referral-(\d+)"( class="overdue")?>', body)
    assert [(int(i), bool(o)) for i, o in order] == [
        (by_agency["Police"], True),
        (by_agency["Early help"], False),
        (by_agency["CAMHS"], False),
    ]
    assert "1 overdue" in shown(body) and "3 open" in shown(body)
    police = next(r for r in rows if r[1] == "Police")
    due = WORKING.add_working_days(ten_days_ago, 1)
    assert police[0] == "1" and police[5] == "Overdue (no response)"
    assert police[6] == str(
        (school.now().astimezone(LONDON).date() - ten_days_ago.astimezone(LONDON).date()).days
    )
    assert police[7] == str(WORKING.working_days_between(ten_days_ago, school.now()))
    assert police[8] == str(WORKING.working_days_between(due, school.now()))
    assert next(r for r in rows if r[1] == "Early help")[5] == "Responded, not closed"
    assert next(r for r in rows if r[1] == "CAMHS")[5] == "Waiting for the agency"
    assert not any(r[1] == "LADO" for r in rows)


async def test_alerts_not_read_within_a_working_day_by_person(school: Harness) -> None:
    """Hana reads at once; Ben reads a fortnight after his alert; the others never do."""
    people = People(school)
    await report(school)  # alerts Alys, Ben, Ffion, Gareth (key-holders) and Hana (4B)
    fortnight_ago = school.now() - dt.timedelta(days=14)
    async with transaction(school.server.factory) as db:
        hana = await db.scalar(select(Staff.id).where(Staff.slack_user_id == CLASS_TEACHER))
        await db.execute(
            update(Alert).where(Alert.recipient_id != hana).values(created_at=fortnight_ago)
        )
    for person in (CLASS_TEACHER, DEPUTY):
        async with people.signed_in(person) as user:
            await user.get("/incidents/1")
            status, _ = await user.post("/incidents/1/read")
            assert status == 200
    period = {
        "from": fortnight_ago.astimezone(LONDON).date().isoformat(),
        "to": school.now().astimezone(LONDON).date().isoformat(),
    }
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/reports", params=period)
        assert status == 200
        _, rows = await download(dsl, "/reports/alerts.csv", **period)
        _, totals = await download(dsl, "/reports/governors/alerts.csv", **period)
    assert rows[0] == ["Person", "Alerts received", "Not read within a working day", "Still unread"]
    assert sorted(rows[1:]) == [
        ["Alys Hughes", "1", "1", "1"],
        ["Ben Okafor", "1", "1", "0"],
        ["Ffion Morgan", "1", "1", "1"],
        ["Gareth Price", "1", "1", "1"],
    ]
    assert 'id="alert-table"' in body and "Hana Jones" not in main_of(body)
    assert totals[1] == ["5", "4", "3"]


async def test_late_alerts_use_the_working_day_deadline(school: Harness) -> None:
    """Alerts written with known times either side of their deadlines, counted in SQL."""
    friday = school.now().astimezone(LONDON).date() - dt.timedelta(days=21)
    while not (
        friday.weekday() == 4
        and all(WORKING.is_working_day(friday + dt.timedelta(days=n)) for n in (0, 3, 4))
    ):
        friday -= dt.timedelta(days=1)
    monday, tuesday = friday + dt.timedelta(days=3), friday + dt.timedelta(days=4)
    cases = {  # who: (sent, read or None), and whether that is late
        DSL: (local(friday, 15), local(monday, 14, 59), False),
        DEPUTY: (local(friday, 15), local(monday, 15, 1), True),
        HEAD: (local(friday, 19), local(tuesday, 7, 59), False),
        PASTORAL: (local(friday + dt.timedelta(days=1), 10), local(tuesday, 8, 1), True),
        TEACHER_3A: (local(friday, 15), None, True),
        TA: (school.now() - dt.timedelta(minutes=1), None, False),
    }
    await report(school, happened_at=local(friday, 9))
    async with transaction(school.server.factory) as db:
        incident = await db.scalar(select(Incident))
        assert incident is not None
        staff = {s.slack_user_id: s for s in await db.scalars(select(Staff))}
        await db.execute(update(Alert).values(created_at=local(friday, 8)))  # the real ones
        for who, (sent, read, late) in cases.items():
            assert (WORKING.add_working_days(sent, 1) < (read or school.now())) == late, who
            existing = await db.scalar(select(Alert).where(Alert.recipient_id == staff[who].id))
            alert = existing or Alert(
                workspace_id=incident.workspace_id,
                incident_id=incident.id,
                recipient_id=staff[who].id,
                reason="added",
            )
            alert.created_at = sent
            db.add(alert)
            await db.flush()
            if read is not None:
                db.add(
                    ReadReceipt(alert_id=alert.id, staff_id=staff[who].id, read_at=read, via="web")
                )
    period = reports.DateRange(
        friday - dt.timedelta(days=1), school.now().astimezone(LONDON).date()
    )
    async with school.server.factory() as db:
        rows = await reports.late_alerts(
            db, workspace_id=incident.workspace_id, period=period, working=WORKING, now=school.now()
        )
    late = {r.name: (r.late, r.unread) for r in rows}
    expected = {
        staff[who].name: (1, 1 if read is None else 0)
        for who, (_, read, is_late) in cases.items()
        if is_late
    }
    expected["Hana Jones"] = (1, 1)  # the real concern's alert to her: Friday 08:00, unread
    assert late == expected


# -- CSV safety -------------------------------------------------------------------------------


async def test_csv_downloads_neutralise_formulas(school: Harness) -> None:
    people = People(school)
    async with transaction(school.server.factory) as db:
        await db.execute(
            update(Staff).where(Staff.slack_user_id == DEPUTY).values(name="=cmd|' /C calc'!A0")
        )
    await report(school)
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
        for agency, reference in (("Police", "@SUM(1+1)*cmd|' /C calc'!A0"), ("CAMHS", "-2+3")):
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {"text": "Referred.", "agency": agency, "reference": reference},
            )
            assert status == 200
    school.clock_offset += dt.timedelta(days=14)
    sent = (school.now() - dt.timedelta(days=14)).astimezone(LONDON).date().isoformat()
    async with people.signed_in(DSL) as dsl:
        downloads = {
            path: await download(dsl, path, **{"from": sent, "to": sent})
            for path in (
                "/reports/referrals.csv",
                "/reports/alerts.csv",
                "/reports/categories.csv",
                "/reports/year-groups.csv",
                "/reports/governors/categories.csv",
                "/reports/governors/year-groups.csv",
                "/reports/governors/agencies.csv",
                "/reports/governors/alerts.csv",
            )
        }
    cells = {path: [c for row in rows for c in row] for path, (_, rows) in downloads.items()}
    assert "'=cmd|' /C calc'!A0" in cells["/reports/alerts.csv"]
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in cells["/reports/referrals.csv"]
    assert "'-2+3" in cells["/reports/referrals.csv"]
    for path, found in cells.items():
        for cell in found:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (path, cell)


# -- the governors' report ----------------------------------------------------------------------


async def test_governors_report_has_counts_and_no_names(school: Harness) -> None:
    people = People(school)
    async with school.server.factory() as db:
        pupils = list(await db.scalars(select(Pupil)))
        staff = list(await db.scalars(select(Staff)))
    await report(school, categories=["Behaviour"])
    await report(school, pupil_query=PUPIL_3A, categories=["Medical", "Well-being"])
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/incidents/1")
        await dsl.post(
            "/incidents/1/actions",
            {"text": "Referred to the police.", "agency": "Police", "reference": "PC-2291"},
        )
    school.clock_offset += dt.timedelta(days=14)
    sent = (school.now() - dt.timedelta(days=14)).astimezone(LONDON).date().isoformat()
    period = {"from": sent, "to": sent}
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/reports/governors", params=period)
        assert status == 200
        files = {
            table: (await download(dsl, f"/reports/governors/{table}.csv", **period))[0]
            for table in web_reports.GOVERNORS_TABLES
        }
    page = shown(body)
    # It says what it is, and has the counts.
    words = " ".join(page.split())
    assert "Counts only." in words and "names no pupil and no member of staff" in words
    assert re.search(r'id="stat-incidents">2<', body) and re.search(r'id="stat-referrals">1<', body)
    # Five people alerted on each concern; the DSL's action alerts the author and the
    # three other key-holders.
    assert re.search(r'id="stat-alerts">14<', body)
    assert "Police" in page and "Behaviour" in page and "Year group" in page
    # ...and no names: no pupil (name, surname or UPN), no member of staff (but the person
    # signed in, in the bar at the top), no concern number, no referral reference.
    texts = {"page": page, **{name: data.decode("utf-8-sig") for name, data in files.items()}}
    for name, text in texts.items():
        content = main_of(text) if name == "page" else text
        for p in pupils:
            assert p.display_name not in text and p.upn not in text, (name, p.upn)
            assert not re.search(rf"\b{re.escape(p.surname)}\b", text), (name, p.surname)
            assert not re.search(rf"\b{re.escape(p.forename)}\b", content), (name, p.forename)
        for s in staff:
            assert s.name not in content and s.email not in text, (name, s.name)
        assert "/incidents/" not in text and "PC-2291" not in text
        assert "Concern #" not in content and not re.search(r">#\d+<", content)
    header = page[: page.index("</header>")]
    assert page.count("Alys Hughes") == header.count("Alys Hughes") == 1


# -- who may see reports, and the audit trail ------------------------------------------------


async def test_only_keyholders_reach_reports(school: Harness) -> None:
    people = People(school)
    await report(school)
    paths = [
        "/reports",
        "/reports?from=2020-01-01&to=2030-01-01",
        "/reports/governors",
        *(f"/reports/{t}.csv" for t in web_reports.REPORT_TABLES),
        *(f"/reports/governors/{t}.csv" for t in web_reports.GOVERNORS_TABLES),
    ]
    for person in (TEACHER, TA):  # the concern's author, and someone who never saw it
        async with people.signed_in(person) as user:
            _, missing = await user.get("/incidents/999999")  # the one 404 page
            for path in paths:
                status, body = await user.get(path)
                assert status == 404 and body == missing, (person, path)
    refused = [
        e
        for action in ("report.view", "report.download")
        for e in await audit_events(school, action)
        if e.outcome == "refused"
    ]
    assert len(refused) == 2 * len(paths)
    assert all(e.detail and e.detail.endswith("not a key-holder") for e in refused)
    async with people.signed_in(DSL) as dsl:
        _, missing = await dsl.get("/incidents/999999")
        for path in ("/reports/secrets.csv", "/reports/governors/referrals.csv"):
            status, body = await dsl.get(path)
            assert status == 404 and body == missing, path


async def test_every_view_and_download_is_audited_with_report_and_range(school: Harness) -> None:
    people = People(school)
    period = {"from": "2026-01-05", "to": "2026-02-06"}
    async with people.signed_in(DSL) as dsl:
        await dsl.get("/reports", params=period)
        await dsl.get("/reports/governors", params=period)
        for table in web_reports.REPORT_TABLES:
            await download(dsl, f"/reports/{table}.csv", **period)
        for table in web_reports.GOVERNORS_TABLES:
            await download(dsl, f"/reports/governors/{table}.csv", **period)
    key = "2026-01-05..2026-02-06"
    views = await audit_events(school, "report.view")
    downloads = await audit_events(school, "report.download")
    assert [v.detail for v in views] == [f"reports; {key}", f"governors; {key}"]
    assert [d.detail for d in downloads] == [
        *(f"reports/{t}.csv; {key}" for t in web_reports.REPORT_TABLES),
        *(f"governors/{t}.csv; {key}" for t in web_reports.GOVERNORS_TABLES),
    ]
    async with school.server.factory() as db:
        alys = await db.scalar(select(Staff.id).where(Staff.slack_user_id == DSL))
    assert {e.actor_id for e in views + downloads} == {alys}
    assert all(e.outcome == "ok" and e.ip for e in views + downloads)


async def test_reports_decrypt_nothing(school: Harness, monkeypatch: object) -> None:
    people = People(school)
    await report(school)
    async with people.signed_in(DSL) as dsl:

        def refuse(_token: bytes) -> str:
            raise AssertionError("a report decrypted something")

        monkeypatch.setattr(school.server.cipher, "decrypt", refuse)  # type: ignore[attr-defined]
        for path in ("/reports", "/reports/governors"):
            status, _ = await dsl.get(path)
            assert status == 200, path
        for table in web_reports.REPORT_TABLES:
            await download(dsl, f"/reports/{table}.csv")
        for table in web_reports.GOVERNORS_TABLES:
            await download(dsl, f"/reports/governors/{table}.csv")


def counting_spied(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry for each time the reports page counts its categories (not kept)."""
    counted: list[int] = []
    counting = reports.pages.incidents_by_category

    async def counted_once(*args: object, **kwargs: object) -> reports.CategoryMonths:
        counted.append(1)
        return await counting(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(reports.pages, "incidents_by_category", counted_once)
    return counted


def past_range(school: Harness) -> tuple[dt.date, dict[str, str]]:
    """A range of three months ago to the end of last month (ended): its first day, and
    the page's query."""
    today = school.now().astimezone(LONDON).date()
    first = month_start(today, 3)
    last = month_start(today, 1) - dt.timedelta(days=1)
    return first, {"from": first.isoformat(), "to": last.isoformat()}


def year_rows(body: str) -> list[tuple[str, str]]:
    """The reports page's incidents by year group, as shown."""
    table = body[body.index('id="year-table"') :]
    table = table[: table.index("</table>")]
    return re.findall(r'<th scope="row">([^<]*)</th><td>(\d+)</td>', table)


async def test_a_range_that_has_ended_is_counted_once_until_something_changes(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last term's figures are kept in memory (`store.reports.cache`) and counted again
    when a concern, an action or a read changes them (in any process: the database's
    stamp says so); this term's are counted on each request."""
    counted = counting_spied(monkeypatch)
    people = People(school)
    first, past = past_range(school)
    await report(school, categories=["Behaviour"], happened_at=local(first + dt.timedelta(3), 10))
    async with people.signed_in(DSL) as dsl:
        for _ in range(3):
            status, body = await dsl.get("/reports", params=past)
            assert status == 200 and "Behaviour: 1" in shown(body)
        assert len(counted) == 1
        _, rows = await download(dsl, "/reports/categories.csv", **past)
        assert rows[1][0] == "Behaviour" and rows[1][-1] == "1"
        # A concern filed today about a day in that range: counted again.
        await report(
            school, categories=["Behaviour"], happened_at=local(first + dt.timedelta(5), 10)
        )
        before = len(counted)
        for _ in range(2):
            status, body = await dsl.get("/reports", params=past)
            assert "Behaviour: 2" in shown(body)
        assert len(counted) == before + 1
        # Re-categorised: counted again, as it is now.
        await dsl.get("/incidents/2")
        await dsl.post("/incidents/2/actions", {"text": "Not behaviour.", "categories": "Medical"})
        status, body = await dsl.get("/reports", params=past)
        assert "Behaviour: 1" in shown(body) and "Medical: 1" in shown(body)
        assert len(counted) == before + 2
        # This term is never kept.
        before = len(counted)
        await dsl.get("/reports")
        await dsl.get("/reports")
        assert len(counted) == before + 2


async def test_a_kept_report_shows_who_is_still_unread_now(school: Harness) -> None:
    """Last term's late alerts are kept, but an old alert read since is no longer
    "still unread" on the next view (while it stays late)."""
    people = People(school)
    await report(school)  # alerts Alys, Ben, Ffion, Gareth (key-holders) and Hana (4B)
    day = school.now().astimezone(LONDON).date().isoformat()
    school.clock_offset += dt.timedelta(days=200)  # that day's term is long over
    past = {"from": day, "to": day}

    def late_row(body: str, name: str) -> str:
        found = re.search(rf"<th scope=\"row\">{name}</th>(.*?)</tr>", body)
        assert found, name
        return " ".join(re.findall(r"<td>(\d+)</td>", found.group(1)))

    async with people.signed_in(DSL) as dsl:
        for _ in range(2):
            status, body = await dsl.get("/reports", params=past)
            assert status == 200 and late_row(body, "Ben Okafor") == "1 1 1"
    async with people.signed_in(DEPUTY) as ben:
        await ben.get("/incidents/1")
        status, _ = await ben.post("/incidents/1/read")
        assert status == 200
    async with people.signed_in(DSL) as dsl:
        status, body = await dsl.get("/reports", params=past)
        assert late_row(body, "Ben Okafor") == "1 1 0"
        assert late_row(body, "Alys Hughes") == "1 1 1"


async def test_a_kept_report_is_counted_again_for_its_own_schools_changes_only(
    school: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trust's schools share one database: another school's new concern, action, alert
    or pupil correction leaves this school's kept past-term figures alone (the stamp is
    the school's own), while this school's correction or alert counts them again."""
    counted = counting_spied(monkeypatch)
    people = People(school)
    first, past = past_range(school)
    await report(school, categories=["Behaviour"], happened_at=local(first + dt.timedelta(3), 10))
    async with people.signed_in(DSL) as dsl:
        for _ in range(2):
            status, body = await dsl.get("/reports", params=past)
            assert status == 200 and "Behaviour: 1" in shown(body)
            assert year_rows(body) == [("4", "1")]
        assert len(counted) == 1
        # At another school: a concern (alerting its key-holder), an action on it (alerting
        # its author) and a correction of its pupil, each newer than anything here.
        other = await other_school(school)
        async with school.server.factory() as db, db.begin():
            theirs = await db.scalar(
                select(Incident).where(
                    Incident.workspace_id == other.keyholder.workspace_id,
                    Incident.number == other.number,
                )
            )
            assert theirs is not None
            await add_action(school, db, author=other.keyholder, incident=theirs, text="Seen.")
            right = await pupil_at_another_school(
                db, upn="Y00000000002B", cipher=school.server.cipher
            )
            await pupil_corrections.correct(
                db,
                incident=theirs,
                wrong_pupil_id=theirs.pupils[0].pupil_id,
                right_upn="Y00000000002B",
                upn_key=await pupils.upn_key(
                    db, workspace_id=theirs.workspace_id, cipher=school.server.cipher
                ),
                author=other.keyholder,
                at=school.now(),
            )
        assert right.workspace_id == theirs.workspace_id
        async with school.server.factory() as db:
            for model in (Incident, IncidentAction, Alert, IncidentPupilCorrection):
                newest = await db.scalar(select(model.workspace_id).order_by(model.id.desc()))
                assert newest == theirs.workspace_id, model.__tablename__
        for _ in range(2):
            status, body = await dsl.get("/reports", params=past)
            assert "Behaviour: 1" in shown(body) and year_rows(body) == [("4", "1")]
        assert len(counted) == 1  # still the figures kept
        # Here: the concern was about the wrong pupil (4B), corrected to a pupil in 5C.
        wrong = await pupil_by_upn(school, PUPIL_4B)
        await dsl.get("/incidents/1")
        status, _ = await dsl.post(
            "/incidents/1/pupil-correction", {"wrong_pupil": str(wrong.id), "right_upn": PUPIL_5C}
        )
        assert status == 200
        status, body = await dsl.get("/reports", params=past)
        assert year_rows(body) == [("5", "1")]
        assert len(counted) == 2
        # Here: an invitation, an alert alone (nothing else of the stamp changes).
        ta = await staff_member(school, TA)
        status, _ = await dsl.post("/incidents/1/invite", {"staff": str(ta.id)})
        assert status == 200
        await dsl.get("/reports", params=past)
        assert len(counted) == 3
        await dsl.get("/reports", params=past)
        assert len(counted) == 3
