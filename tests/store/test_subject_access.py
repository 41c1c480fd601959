"""Subject access (DESIGN §14): which names are proposed for redaction, how a pack's text
is redacted, and the one-month deadline. Pure rules: no database."""

from __future__ import annotations

import datetime as dt

from store.pupils import RosterName
from store.subject_access import (
    ADDED,
    PUPIL,
    REDACTED,
    STAFF,
    Candidate,
    candidates,
    detect,
    due_on,
    pattern,
    redact_text,
)
from store.workdays import WorkingTime

SUBJECT = RosterName(1, "Cerys", "Carrow", None)
ROSTER = [
    SUBJECT,
    RosterName(2, "Osian", "Carrow", None),  # the subject's brother: same surname
    RosterName(3, "Elin", "Larkham", None),
    RosterName(4, "Cerys", "Quarrie", "Bee"),  # the subject's forename
    RosterName(5, "Zoë", "Ashdown", None),
    RosterName(6, "Cerys", "Carrow", None),  # another pupil with the subject's very name
    RosterName(7, "Tomos", "Vellacott", None),  # not in the text
]
TEXT = (
    "Cerys said OSIAN'S friends took her lunch. elin larkham's mum saw it, and Bee "
    "told Mrs Hughes; later Zoe Ashdown cried. The Carrow family were called."
)


def phrases(found: list[Candidate]) -> set[str]:
    return {c.phrase for c in found}


def test_other_pupils_names_are_proposed_whatever_their_case_accents_or_possessive() -> None:
    found = detect([TEXT], candidates(subject_id=1, roster=ROSTER))
    assert phrases(found) == {"Osian", "Elin Larkham", "Bee", "Zoë Ashdown"}
    assert {c.kind for c in found} == {PUPIL}


def test_no_form_of_the_subjects_own_name_is_proposed() -> None:
    offered = phrases(candidates(subject_id=1, roster=ROSTER))
    # Shared by other pupils, but the subject's own: never proposed.
    assert not offered & {"Cerys", "Carrow", "Cerys Carrow"}
    # The other pupils' own forms are.
    assert {"Osian Carrow", "Osian", "Cerys Quarrie", "Quarrie", "Bee", "Tomos"} <= offered


def test_a_first_name_inside_a_full_name_is_one_proposal_not_two() -> None:
    found = detect(["Osian Carrow hit him."], candidates(subject_id=1, roster=ROSTER))
    assert phrases(found) == {"Osian Carrow"}
    both = detect(["Osian Carrow hit him; Osian laughed."], candidates(subject_id=1, roster=ROSTER))
    assert phrases(both) == {"Osian Carrow", "Osian"}


def test_staff_names_are_proposed_only_when_given() -> None:
    assert "Hughes" not in phrases(detect([TEXT], candidates(subject_id=1, roster=ROSTER)))
    with_staff = detect(
        [TEXT], candidates(subject_id=1, roster=ROSTER, staff_names=["Alys Hughes"])
    )
    assert Candidate("Hughes", STAFF) in with_staff


def test_redaction_blacks_out_every_variant_and_keeps_the_rest() -> None:
    compiled = [
        p for p in (pattern(x) for x in ("Osian", "Elin Larkham", "Bee", "Zoë Ashdown")) if p
    ]
    redacted = redact_text(TEXT, compiled)
    for name in ("OSIAN", "Osian", "larkham", "Larkham", "Bee", "Zoe", "Ashdown"):
        assert name not in redacted
    assert redacted.count(REDACTED) == 4
    assert redacted.startswith(f"Cerys said {REDACTED} friends took her lunch. {REDACTED} mum")
    assert "Carrow family" in redacted  # the subject's surname stays
    # A word containing a name is not a name: "Beehive" stays.
    assert redact_text("The Beehive class", compiled) == "The Beehive class"
    assert ADDED == "added"


def test_the_deadline_is_one_calendar_month_moved_past_weekends_and_bank_holidays() -> None:
    working = WorkingTime()  # England and Wales
    assert due_on(dt.date(2027, 3, 3), working) == dt.date(2027, 4, 5)  # 3 Apr is a Saturday
    assert due_on(dt.date(2027, 6, 15), working) == dt.date(2027, 7, 15)  # a Thursday
    assert due_on(dt.date(2027, 1, 31), working) == dt.date(2027, 3, 1)  # 28 Feb: Sunday
    assert due_on(dt.date(2028, 1, 31), working) == dt.date(2028, 2, 29)  # leap year, Tuesday
    assert due_on(dt.date(2026, 12, 15), working) == dt.date(2027, 1, 15)
    # 25 Dec 2026 is a Friday, then the weekend and the Boxing Day holiday (Monday 28th).
    assert due_on(dt.date(2026, 11, 25), working) == dt.date(2026, 12, 29)
