"""The drill (`vigil privacy-check --exercise`): every flow a school uses, for real.

:class:`Drill` drives the real server through the Slack stand-in, the simulator and the
web client (`testing.harness`), with made-up pupils and texts carrying made-up phrases
(`privacy.seeds`), in the order a school's week would bring them.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from sqlalchemy import func, select, update

from bot.slack_lookup import make_slack_lookup
from handlers.concern_modal import PUPIL_SEARCH
from privacy.matching import TYPEAHEAD
from privacy.report import PrivacyCheckError
from privacy.steps import Steps, at, button_value, database_fails_once, download, expect, form_time
from store import roster
from store.crypto import IntegrityError, bind
from store.messages import MARK_READ_ACTION, OPEN_ACTION, SNOOZE_ACTION
from store.models import Incident, Referral, TotpEnrolment
from testing.school import STAFF, pupils_csv, staff_csv
from testing.webclient import WebUser

TEACHER = "U0TCHPATEL"  # teaches 4B
TEACHER_3A = "U0TCHEVANS"
DSL = "U0DSL0HUGH"
DEPUTY = "U0DDSLOKAF"
HEAD = "U0HEADMORG"
TA = "U0TALEWIS0"
OFFICE = "U0OFFICE00"
VISITOR = "U0VISITOR9"
MASH = "Children's social care (MASH)"
POLICE = "Police"
ALERT_CHANNEL = "C0VIGILDRILL"


class Drill(Steps):
    """Every flow a school uses, driven through the real server and the Slack stand-in."""

    async def run(self) -> None:
        """Every flow, in the order a school's week would bring them."""
        await self.import_rosters()
        monday = self._working_monday()
        zone = self.working.zone
        self._move_clock(at(monday, 9, 5, zone))
        await self.slack_commands()
        await self.refused_submissions()
        await self.file_concerns()
        await self.slack_alerts()
        await self.web_on_monday(monday)
        await self.bound_ciphertexts()
        await self.documents()
        await self.sign_in_with_slack()
        self._move_clock(at(monday + dt.timedelta(days=1), 10, 0, zone))
        await self.overdue_nudges(snooze=True)
        await self.urgent_and_unread()
        self._move_clock(at(monday + dt.timedelta(days=3), 10, 0, zone))
        await self.overdue_nudges(snooze=False)
        await self.web_on_thursday(monday + dt.timedelta(days=3))
        await self.allegation()
        self._move_clock(at(monday + dt.timedelta(days=4), 11, 0, zone))
        await self.overdue_nudges_for_allegations()
        await self.app_home(DSL, HEAD)
        # Last: on PostgreSQL a submission failing after its number was taken leaves that
        # number recorded as lost (`store.incidents.take_number`); the steps above name
        # concerns by number.
        await self.database_outage()
        await self._settle()

    async def import_rosters(self) -> None:
        """The staff and pupil rosters, through the real importer, from CSV."""
        staff_file = self.directory / "staff.csv"
        pupil_file = self.directory / "pupils.csv"
        staff_file.write_text(staff_csv(STAFF), encoding="utf-8")
        # The MIS's context columns, with a social worker's name for the first pupil.
        worker = self.seeds.person("social worker's name (from the roster import)")
        with_context = [
            line
            + (",CP_Plan,SEN,Social_Worker" if n == 0 else (",Y,K," + worker if n == 1 else ",,,"))
            for n, line in enumerate(pupils_csv(self.seeds.pupils).splitlines())
        ]
        pupil_file.write_text("\n".join(with_context) + "\n", encoding="utf-8")
        server = self.harness.server
        workspace_id = self.harness.workspace_id
        staff = await roster.import_staff(
            server.factory,
            workspace_id=workspace_id,
            path=staff_file,
            lookup_slack_id=make_slack_lookup(server.client),
        )
        pupils = await roster.import_pupils(
            server.factory, workspace_id=workspace_id, path=pupil_file, cipher=server.cipher
        )
        if staff.errors or pupils.errors:
            raise PrivacyCheckError("the drill's rosters were not imported cleanly")
        self.flows.append("roster import")

    async def slack_commands(self) -> None:
        """`/concern help`, `/concern login`, and `/concern` from someone not on the roster."""
        slack, command = self.harness.slack, self.harness.settings.command
        self._answered(
            "slash command", await slack.slash_command(TEACHER, "help", command=command), "help"
        )
        self._answered(
            "slash command", await slack.slash_command(TEACHER, "login", command=command), "login"
        )
        self.harness.standin.add_user(VISITOR, email="visitor@example.org", name="A Visitor")
        await self.harness.open_concern(VISITOR)
        self.flows += ["/concern help", "/concern login", "/concern from a non-member"]

    async def database_outage(self) -> None:
        """The database failing under the typeahead and under a submission: what is logged
        then (tracebacks, SQL errors) must name no pupil and quote no narrative."""
        slack, pupil = self.harness.slack, self.seeds.pupils[5]
        engine = self.harness.server.engine
        view = await self.harness.open_concern(TEACHER)
        with database_fails_once(engine, "roster_version"):
            response = await slack.block_suggestion(
                TEACHER,
                view=view,
                action_id=PUPIL_SEARCH,
                block_id="pupil",
                value=f"{pupil.forename} {pupil.surname}",
            )
            self._answered(TYPEAHEAD, response, "the typeahead in an outage")
        values = {
            "pupil": await self._typeahead(TEACHER, view, pupil.surname, "pupil"),
            "narrative": self.seeds.text(
                "narrative of a submission that failed to save", "hid under the stairs again."
            ),
            "categories": ["Well-being"],
            "parents_contacted": "yes",
        }
        with database_fails_once(engine, "INSERT INTO incidents "):
            response = await slack.view_submission(TEACHER, view=view, values=values)
            self._answered("modal submission", response, "a submission in an outage")
        self.flows.append("database outage (typeahead and submission)")

    async def refused_submissions(self) -> None:
        """Submissions refused with field errors: their text must go nowhere."""
        pupil = self.seeds.pupils[4]
        kind = "narrative of a refused submission"
        missing_reason = await self._submit(
            TEACHER,
            query=pupil.forename,
            values={
                "narrative": self.seeds.text(kind, "was seen crying by the gate at lunchtime."),
                "categories": ["Well-being"],
                "parents_contacted": "no",
            },
        )
        too_long = await self._submit(
            TEACHER,
            query=pupil.surname,
            values={
                "narrative": self.seeds.text(kind, "went on and on. " * 200),
                "categories": ["Behaviour"],
                "parents_contacted": "yes",
            },
        )
        for response in (missing_reason, too_long):
            if (response.json or {}).get("response_action") != "errors":
                raise PrivacyCheckError("a submission the drill expected refused was accepted")
        self.flows.append("refused submissions (field errors)")

    async def file_concerns(self) -> None:
        """Three concerns: with linked pupils, agencies and a reason; restricted; plain."""
        seeds, pupils = self.seeds, self.seeds.pupils
        filed = [
            await self._submit(
                TEACHER,
                query=pupils[0].forename,
                linked=[pupils[1].surname],
                values={
                    "narrative": seeds.text(
                        "narrative", "said she had not eaten since Friday; asked to stay late."
                    ),
                    "categories": ["Well-being", "Behaviour"],
                    "also_alert": [TA],
                    "agencies": [MASH],
                    "parents_contacted": "no",
                    "parents_reason": seeds.text("parents' reason", "advice from MASH first."),
                },
            ),
            await self._submit(
                DSL,
                query=pupils[3].upn.lower(),
                values={
                    "narrative": seeds.text("narrative", "disclosed something at home."),
                    "categories": ["Safeguarding"],
                    "parents_contacted": "yes",
                },
            ),
            await self._submit(
                TEACHER_3A,
                query=pupils[2].preferred_name or pupils[2].forename,
                values={
                    "narrative": seeds.text("narrative", "late for the fourth time this week."),
                    "categories": ["Attendance"],
                    "parents_contacted": "yes",
                    # Before the real time, so before the server's (moved-on) clock too.
                    "happened_at": int(time.time()) - 3600,
                    "urgent": ["urgent"],
                },
            ),
        ]
        for response in filed:
            if response.body:
                fields = sorted(((response.json or {}).get("errors") or {}).keys())
                raise PrivacyCheckError(f"a concern the drill filed was refused ({fields})")
        await self._settle()
        self.flows += ["/concern + typeahead + submission (3 concerns)", "alert delivery"]

    async def allegation(self) -> None:
        """A TA reports a visitor (a typed name) about a pupil: the head alone is alerted,
        and reads it on the web."""
        seeds = self.seeds
        response = await self._submit(
            TA,
            query=seeds.pupils[0].surname,
            adult_typed=seeds.adult_name(),
            values={
                "about_adult": "visitor",
                "narrative": seeds.text("narrative", "the visiting coach shouted at her."),
                "categories": ["Behaviour"],
                "parents_contacted": "yes",
            },
        )
        if response.body:
            fields = sorted(((response.json or {}).get("errors") or {}).keys())
            raise PrivacyCheckError(f"the drill's allegation was refused ({fields})")
        await self._settle()
        async with self.harness.server.factory() as db:
            number = await db.scalar(select(func.max(Incident.number)))
        async with self._signed_in(HEAD) as head:
            expect("the allegation's page", (await head.get(f"/incidents/{number}"))[0], 200)
        self.flows.append("an allegation about an adult (typed name) + its page")

    async def overdue_nudges_for_allegations(self) -> None:
        """The allegation's LADO consultation, overdue: nudged to the head."""
        await self.harness.server.overdue_job.run()
        await self._settle()
        self.flows.append("LADO consultation nudge")

    async def slack_alerts(self) -> None:
        """Mark as read and Open from the DM, and the App Home (with Mark as read there)."""
        standin = self.harness.standin
        for user_id in (DSL, TA):
            channel = standin.dm_channel_for(user_id)
            message = next(m for m in standin.messages_for_user(user_id) if "#1 " in m["text"])
            for action in (OPEN_ACTION, MARK_READ_ACTION):
                response = await self.harness.slack.click_button(
                    user_id, message, action, channel_id=channel
                )
                self._answered("button", response, "alert button")
        await self._settle()
        await self.app_home(HEAD, TEACHER)
        home = standin.home_views[HEAD]
        button = next(
            (
                b["accessory"]
                for b in home.get("blocks", [])
                if (b.get("accessory") or {}).get("action_id") == MARK_READ_ACTION
            ),
            None,
        )
        if button is None:
            raise PrivacyCheckError("the head's App Home listed no unread alert")
        response = await self.harness.slack.block_actions(
            HEAD, action_id=MARK_READ_ACTION, value=button["value"], view=home
        )
        self._answered("button", response, "Mark as read on the App Home")
        await self._settle()
        self.flows += ["Mark as read and Open (DM)", "App Home + Mark as read there"]

    async def app_home(self, *user_ids: str) -> None:
        standin = self.harness.standin
        published = len(standin.calls_to("views.publish", ok_only=True))
        for user_id in user_ids:
            event = {"type": "app_home_opened", "user": user_id, "channel": "D0HOME", "tab": "home"}
            self._answered("event", await self.harness.slack.event(event), "App Home")
        await standin.wait_for_calls("views.publish", published + len(user_ids))

    async def web_on_monday(self, monday: dt.date) -> None:
        """Sign-in by link and TOTP; alerts, the incident, actions, referrals, sharing."""
        seeds = self.seeds
        ta, office = await self._staff_id(TA), await self._staff_id(OFFICE)
        async with self._signed_in(TEACHER) as teacher:
            for path in ("/alerts", "/incidents/1"):
                expect(path, (await teacher.get(path))[0], 200)
            status, _ = await teacher.post(
                "/incidents/1/actions",
                {"text": seeds.text("action text", "spoke to her grandmother."), "alert": str(ta)},
            )
            expect("add an action", status, 200)
            expect("a concern not shared", (await teacher.get("/incidents/2"))[0], 404)
        async with self._signed_in(DSL) as dsl:
            expect("/incidents/1", (await dsl.get("/incidents/1"))[0], 200)
            expect("mark read on the web", (await dsl.post("/incidents/1/read"))[0], 200)
            for agency in (MASH, POLICE):
                await dsl.get("/incidents/1")
                status, _ = await dsl.post(
                    "/incidents/1/actions",
                    {
                        "text": seeds.text("referral note", "phoned the duty desk."),
                        "agency": agency,
                        "referred_at": form_time(monday, 9),
                        "reference": "DRILL/1",
                    },
                )
                expect("record a referral", status, 200)
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {
                    "text": seeds.text("text of a refused action", "a mistaken referral."),
                    "agency": "Not an agency",
                },
            )
            expect("a refused action", status, 400)
            await dsl.get("/incidents/2")
            status, _ = await dsl.post(
                "/incidents/2/actions",
                {
                    "text": seeds.text("action text", "re-categorised after a conversation."),
                    "categories": ["Safeguarding", "Medical"],
                },
            )
            expect("re-categorise", status, 200)
            await dsl.get("/incidents/1")
            expect("share", (await dsl.post("/incidents/1/invite", {"staff": str(office)}))[0], 200)
            for path in ("/alerts", "/referrals", "/audit", "/staff"):
                expect(path, (await dsl.get(path))[0], 200)
        async with self._signed_in(OFFICE) as guest:
            expect("a shared concern", (await guest.get("/incidents/1"))[0], 200)
        await self._settle()
        self.flows += [
            "web sign-in (one-time link + TOTP)",
            "incident page, Mark as read, actions, referrals, sharing",
            "refused action",
            "re-categorisation",
            "referrals board, audit log, staff page",
        ]

    async def bound_ciphertexts(self) -> None:
        """Two concerns' narratives swapped in the database (as someone with write access
        could): each page must refuse, showing neither, until they are put back; and an
        authenticator secret under another person's row must not decrypt."""
        server = self.harness.server
        async with server.factory() as db:
            rows = (
                await db.execute(
                    select(Incident.id, Incident.narrative_ct).order_by(Incident.number).limit(2)
                )
            ).all()
            secrets = (
                await db.execute(select(TotpEnrolment.staff_id, TotpEnrolment.secret_ct))
            ).all()
        (first, first_ct), (second, second_ct) = rows
        for where_id, token in ((first, second_ct), (second, first_ct)):
            await self._set_narrative(where_id, token)
        try:
            async with self._signed_in(DSL) as dsl:
                for number in (1, 2):
                    status, _ = await dsl.get(f"/incidents/{number}")
                    if status == 200:
                        raise PrivacyCheckError(
                            "a narrative moved to another concern's row was shown: "
                            "ciphertexts are not bound to their rows"
                        )
                    expect("a swapped narrative refused", status, 500)
        finally:
            await self._set_narrative(first, first_ct)
            await self._set_narrative(second, second_ct)
        (one, one_ct), (other, _) = secrets[:2]
        try:
            server.cipher.decrypt(one_ct, bind(TotpEnrolment.secret_ct, other))
        except IntegrityError:
            pass
        else:
            raise PrivacyCheckError("an authenticator secret decrypted under another's row")
        self.flows.append("ciphertexts bound to their rows (swapped narratives, TOTP secret)")

    async def _set_narrative(self, incident_id: int, token: bytes) -> None:
        async with self.harness.server.engine.begin() as connection:
            await connection.execute(
                update(Incident).where(Incident.id == incident_id).values(narrative_ct=token)
            )

    async def documents(self) -> None:
        """Files attached, refused and downloaded; a body map; a scanned paper record."""
        seeds, first = self.seeds, self.seeds.pupils[0]
        named = f"{first.forename} {first.surname}"
        letter = seeds.text("attached file's content", "the letter from the GP surgery.")
        async with self._signed_in(TEACHER) as teacher:
            await teacher.get("/incidents/1")
            status, _ = await teacher.upload(
                "/incidents/1/files", f"{named} GP letter.txt", letter.encode()
            )
            expect("attach a file", status, 200)
            await teacher.get("/incidents/1")
            status, _ = await teacher.upload(
                "/incidents/1/files", f"{named}.pdf", b"MZ\x90\x00" + b"\x00" * 9000
            )
            expect("a refused file", status, 400)
            await teacher.get("/incidents/1")
            found = re.search(r'href="(/incidents/1/files/\d+)"', teacher.last_page)
            expect("a file listed", 200 if found else 404, 200)
            if found:
                expect("download a file", await download(teacher, found.group(1)), 200)
            await teacher.get("/incidents/1/body-map")
            status, _ = await teacher.post(
                "/incidents/1/body-map",
                {
                    "mark-1-side": "front",
                    "mark-1-region": "left forearm or wrist",
                    "mark-1-type": "bruise",
                    "mark-1-size": "1 to 2 cm",
                    "mark-1-note": seeds.text("body-map note", "she said it was the door."),
                },
            )
            expect("a body map", status, 200)
        pupil_id = await self._pupil_id(first)
        async with self._signed_in(DSL) as dsl:
            await dsl.get(f"/pupils/{pupil_id}")
            scan = b"%PDF-1.4\n" + seeds.text("scanned record", "an old slip.").encode()
            status, _ = await dsl.send_files(
                f"/pupils/{pupil_id}/paper",
                [("files", f"{named} 2019 slip.pdf", scan)],
                {
                    "recorded_on": "2019-03-14",
                    "description": seeds.text("paper record", "a slip from the old files."),
                },
            )
            expect("a paper record", status, 200)
        await self._settle()
        self.flows += [
            "attachments (added, refused, downloaded)",
            "body map",
            "scanned paper record",
        ]

    async def sign_in_with_slack(self) -> None:
        """Sign in with Slack (OpenID Connect through the stand-in), then TOTP."""
        harness = self.harness
        harness.standin.oidc_sign_in_as(DEPUTY)
        async with WebUser(harness.server.url, harness.now) as user:
            await user.get("/signin")
            async with user.http.get(f"{user.base_url}/auth/slack", allow_redirects=False) as r:
                authorize = r.headers["Location"]
            async with user.http.get(authorize, allow_redirects=False) as r:
                callback = r.headers["Location"]
            status, _ = await user.get(callback.replace(harness.settings.public_url, user.base_url))
            expect("Sign in with Slack", status, 200)
            await user.get("/totp")
            status, _ = await user.pass_totp()
            expect("TOTP after Sign in with Slack", status, 200)
            expect("/referrals", (await user.get("/referrals"))[0], 200)
        self.flows.append("Sign in with Slack (OIDC) + TOTP")

    async def urgent_and_unread(self) -> None:
        """The urgent concern nobody has opened, escalated; unopened restricted alerts
        chased once (both checks run as the scheduler runs them)."""
        server = self.harness.server
        if await server.urgent_job.run() == 0:
            raise PrivacyCheckError("the urgent check escalated nothing")
        if await server.unread_job.run() == 0:
            raise PrivacyCheckError("the unread check chased nothing")
        await self._settle()
        await self.app_home(DSL)
        self.flows += ["urgent escalation", "unopened alert chased"]

    async def overdue_nudges(self, *, snooze: bool) -> None:
        """The scheduler's overdue check; the DSL's nudges; Snooze (and a forged one)."""
        harness = self.harness
        if await harness.server.overdue_job.run() == 0:
            raise PrivacyCheckError("the overdue check nudged nothing")
        await self._settle()
        if snooze:
            channel = harness.standin.dm_channel_for(DSL)
            nudge = next(
                m
                for m in harness.standin.messages_for_user(DSL)
                if m.get("text", "").startswith("Referral R")
            )
            response = await harness.slack.click_button(
                DSL, nudge, SNOOZE_ACTION, channel_id=channel
            )
            self._answered("button", response, "Snooze")
            forged = await harness.slack.block_actions(
                TEACHER,
                action_id=SNOOZE_ACTION,
                value=button_value(nudge, SNOOZE_ACTION),
                message=nudge,
                channel_id=channel,
            )
            self._answered("button", forged, "a forged Snooze")
            await self.app_home(DSL)
            await self._settle()
            self.flows += ["overdue nudge", "Snooze (and a refused one)"]
        else:
            self.flows.append("overdue nudge with escalation to the head")

    async def web_on_thursday(self, thursday: dt.date) -> None:
        """Reports and downloads, the agency's response, closing, chronology, PDF."""
        seeds, first = self.seeds, self.seeds.pupils[0]
        pupil_id = await self._pupil_id(first)
        async with self.harness.server.factory() as db:
            referrals = dict(
                (await db.execute(select(Referral.agency, Referral.id).order_by(Referral.id))).all()
            )
        async with self._signed_in(DSL) as dsl:
            for path in ("/reports", "/reports/governors"):
                expect(path, (await dsl.get(path))[0], 200)
            for table_name in ("categories", "referrals", "alerts", "year-groups"):
                expect("CSV", await download(dsl, f"/reports/{table_name}.csv"), 200)
            for table_name in ("categories", "year-groups", "agencies", "alerts"):
                expect("CSV", await download(dsl, f"/reports/governors/{table_name}.csv"), 200)
            await dsl.get("/incidents/1")
            status, _ = await dsl.post(
                "/incidents/1/actions",
                {
                    "text": seeds.text("agency response", "strategy discussion tomorrow."),
                    f"outcome-{referrals[MASH]}": "response",
                    f"responded_at-{referrals[MASH]}": form_time(thursday, 9, 30),
                    f"outcome-{referrals[POLICE]}": "closed",
                },
            )
            expect("record the response and close", status, 200)
            expect("pupil search", (await dsl.get("/pupils", params={"q": first.surname}))[0], 200)
            chronology = f"/pupils/{pupil_id}"
            expect("chronology", (await dsl.get(chronology))[0], 200)
            expect(
                "chronology", (await dsl.get(chronology, params={"category": "Behaviour"}))[0], 200
            )
            status, _ = await dsl.post(
                f"{chronology}/context",
                {
                    "lac": "Y",
                    "sen": "E",
                    "social_worker": seeds.person("social worker's name (a key-holder's edit)"),
                },
            )
            expect("pupil context edit", status, 200)
            await dsl.get("/incidents/2")
            status, _ = await dsl.post(
                "/incidents/2/pupil-correction",
                {
                    "wrong_pupil": str(await self._pupil_id(seeds.pupils[3])),
                    "right_upn": seeds.pupils[4].upn,
                },
            )
            expect("wrong-pupil correction", status, 200)
            # The PDF needs Pango on the server; without it the answer is 503.
            expect("chronology PDF", await download(dsl, f"{chronology}/chronology.pdf"), 200, 503)
            expect("/audit", (await dsl.get("/audit", params={"incident": "1"}))[0], 200)
            await dsl.get("/staff")
            teacher = await self._staff_id(TEACHER)
            expect("TOTP reset", (await dsl.post(f"/staff/{teacher}/totp-reset"))[0], 200)
        await self._settle()
        self.flows += [
            "reports and every CSV download",
            "agency response and closing",
            "pupil search, chronology and its PDF",
            "pupil context edit, wrong-pupil correction",
            "audit log, authenticator reset, sign out",
        ]
