"""Hypothesis strategies for the concern modal: forms as a person fills them in (valid, or
spoiled in one to three fields, with the fields that must be refused worked out by the
modal's documented rules), and the `view` Slack sends on submit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from handlers.concern_modal import concern_view
from store.catalogue import DEFAULT_AGENCIES, Catalogue
from store.crypto import Cipher, generate_key
from store.incidents import (
    MAX_ALSO_ALERT,
    MAX_LINKED_PUPILS,
    NARRATIVE_MAX,
    REASON_MAX,
)
from tests.support.strategies import core_text, pad, wild

CATALOGUE = Catalogue.from_config()
CIPHER = Cipher(generate_key())
TEACHER_CATEGORIES = [c.name for c in CATALOGUE.categories_for(keyholder=False)]
RESTRICTED = [c.name for c in CATALOGUE.categories if c.restricted]
VIEW = concern_view(catalogue=CATALOGUE, keyholder=False)
INPUTS = {b["block_id"]: b["element"] for b in VIEW["blocks"] if b["type"] == "input"}
#: Element type -> the key Slack reports its state under (Block Kit reference).
STATE_KEYS = {
    "plain_text_input": "value",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "multi_users_select": "selected_users",
    "datetimepicker": "selected_date_time",
}
AUTHOR, COLLEAGUE = "U0PROPAUTH", "U0PROPCOLL"
PUPILS = ("<pupil-0>", "<pupil-1>", "<pupil-2>")  # stand for the example's real pupil ids
BIG_IDS = ("0", "-1", "99999999999999999999", str(2**63), str(2**64), str(-(2**63) - 1))
NOW = dt.datetime(2025, 3, 3, 10, 0, tzinfo=dt.UTC)


def _not_an_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return True
    return False


hostile_id = st.one_of(
    st.sampled_from(BIG_IDS),
    st.sampled_from(["1 OR 1=1", "'; DROP TABLE pupils; --", "<script>", "1\x00", "\x00"]),
    # (an empty option value is no choice at all: Slack sends none, the parser drops it)
    wild.filter(lambda s: s != "" and _not_an_int(s) and s not in PUPILS),
)
hostile_user = st.one_of(
    st.sampled_from(["U\x00", "\x00", "<!channel>", "U0PROPAUTH\x00", "'; --", "u0propauth"]),
    wild.filter(lambda s: s not in (AUTHOR, COLLEAGUE)),
)


@dataclass(frozen=True)
class Form:
    """What a person entered (block_id -> value as Slack reports it; a missing block is
    absent) and which fields must be refused because of how it was built."""

    entered: dict[str, Any]
    bad: frozenset[str]
    narrative: str  # what the stored narrative must be if filed
    reason: str  # likewise the parents-not-contacted reason


FIELDS = (
    "pupil",
    "narrative",
    "happened_at",
    "categories",
    "linked_pupils",
    "also_alert",
    "agencies",
    "parents_contacted",
    "parents_reason",
)


@st.composite
def forms(draw: st.DrawFn) -> Form:
    """About half the forms are valid throughout; the others spoil one to three fields.
    `bad` is worked out from the values themselves, by the modal's documented rules."""
    spoil = draw(
        st.one_of(
            st.just(frozenset()), st.frozensets(st.sampled_from(FIELDS), min_size=1, max_size=3)
        )
    )
    entered: dict[str, Any] = {}
    bad: set[str] = set()

    pupil = draw(st.one_of(st.none(), hostile_id)) if "pupil" in spoil else PUPILS[0]
    if pupil is not None:
        entered["pupil"] = pupil
    if pupil != PUPILS[0]:
        bad.add("pupil")

    good_kinds, bad_kinds = ["ok", "ok", "limit"], ["blank", "long"]
    kind = draw(st.sampled_from(bad_kinds if "narrative" in spoil else good_kinds))
    core = draw(core_text())
    if kind == "long":
        core = core * (NARRATIVE_MAX // len(core) + 1)  # 3,001 or more, no end whitespace
    elif kind == "limit":
        core = ("x" * NARRATIVE_MAX + core)[-NARRATIVE_MAX:].strip() or "x"
    elif kind == "blank":
        core = ""
    entered["narrative"] = draw(pad) + core + draw(pad)
    if not core or len(core) > NARRATIVE_MAX:
        bad.add("narrative")

    if "happened_at" in spoil:
        entered["happened_at"] = draw(st.integers(3600, 365 * 86400))  # in the future
        bad.add("happened_at")
    elif draw(st.booleans()):
        entered["happened_at"] = -draw(st.integers(1, 10 * 365 * 86400))

    teacher = st.sampled_from(TEACHER_CATEGORIES)
    if "categories" in spoil:
        refused = st.one_of(
            st.sampled_from(RESTRICTED),
            wild.filter(lambda s: s != "" and s not in TEACHER_CATEGORIES),
        )
        categories = draw(
            st.one_of(
                st.just([]),
                st.tuples(
                    st.lists(teacher, max_size=2), refused, st.lists(teacher, max_size=2)
                ).map(lambda t: [*t[0], t[1], *t[2]]),
            )
        )
    else:
        categories = draw(st.lists(teacher, min_size=1, max_size=4))
    entered["categories"] = categories
    if not categories or any(c not in TEACHER_CATEGORIES for c in categories):
        bad.add("categories")

    if "linked_pupils" in spoil:
        entered["linked_pupils"] = draw(
            st.one_of(
                st.just([PUPILS[1]] * (MAX_LINKED_PUPILS + 1)),
                st.lists(st.sampled_from(PUPILS), max_size=2).map(lambda ps: [*ps, PUPILS[0]]),
                st.lists(st.sampled_from(PUPILS[1:]), max_size=2).flatmap(
                    lambda ps: hostile_id.map(lambda h: [*ps, h])
                ),
            )
        )
    elif draw(st.booleans()):
        entered["linked_pupils"] = draw(st.lists(st.sampled_from(PUPILS[1:]), max_size=3))
    linked = entered.get("linked_pupils", [])
    if len(linked) > MAX_LINKED_PUPILS or any(p not in PUPILS for p in linked) or pupil in linked:
        bad.add("linked_pupils")

    staff = st.sampled_from([AUTHOR, COLLEAGUE])
    if "also_alert" in spoil:
        entered["also_alert"] = draw(
            st.one_of(
                st.just([COLLEAGUE] * (MAX_ALSO_ALERT + 1)),
                st.tuples(st.lists(staff, max_size=2), hostile_user).map(lambda t: [*t[0], t[1]]),
            )
        )
    elif draw(st.booleans()):
        entered["also_alert"] = draw(st.lists(staff, max_size=3))
    users = entered.get("also_alert", [])
    if len(users) > MAX_ALSO_ALERT or any(u not in (AUTHOR, COLLEAGUE) for u in users):
        bad.add("also_alert")

    agency = st.sampled_from(DEFAULT_AGENCIES)
    if "agencies" in spoil:
        entered["agencies"] = draw(
            st.tuples(st.lists(agency, max_size=2), wild.filter(bool)).map(lambda t: [*t[0], t[1]])
        )
    elif draw(st.booleans()):
        entered["agencies"] = draw(st.lists(agency, max_size=3))
    if any(a not in DEFAULT_AGENCIES for a in entered.get("agencies", [])):
        bad.add("agencies")

    if "parents_contacted" in spoil:
        parents = draw(st.one_of(st.none(), wild.filter(lambda s: s not in ("", "yes", "no"))))
    else:
        parents = draw(st.sampled_from(["yes", "no"]))
    if parents is not None:
        entered["parents_contacted"] = parents
    if parents not in ("yes", "no"):
        bad.add("parents_contacted")

    reason = ""
    if "parents_reason" in spoil and (parents != "no" or draw(st.booleans())):
        reason = draw(core_text())
        reason = reason * (REASON_MAX // len(reason) + 1)  # over the limit
    elif "parents_reason" in spoil:
        pass  # "no", and no reason given
    elif parents == "no" or draw(st.booleans()):
        reason = draw(core_text())
        reason = reason[:REASON_MAX].strip() or "x"
    if reason or draw(st.booleans()):
        entered["parents_reason"] = draw(pad) + reason + draw(pad)
    if len(reason) > REASON_MAX or (parents == "no" and not reason):
        bad.add("parents_reason")
    return Form(entered, frozenset(bad), core, reason)


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value[:75] or "?"}, "value": value}


def slack_view(
    entered: dict[str, Any],
    *,
    now: dt.datetime,
    pupil_ids: dict[str, str] | None = None,
    view_id: str = "V0PROP",
    junk: bool = False,
) -> dict[str, Any]:
    """The `view` of a view_submission as Slack sends it (see testing/simulator.py): every
    input block's state under its action id, by element type. Blocks not in `entered`
    are left out entirely; `junk` adds keys and blocks Vigil does not know."""
    ids = pupil_ids or {}
    values: dict[str, Any] = {}
    for block_id, element in INPUTS.items():
        if block_id not in entered:
            continue
        given = entered[block_id]
        key = STATE_KEYS[element["type"]]
        if key == "selected_option":
            state: Any = _option(ids.get(given, given))
        elif key == "selected_options":
            state = [_option(ids.get(v, v)) for v in given]
        elif key == "selected_date_time":
            state = int((now + dt.timedelta(seconds=given)).timestamp())
        else:
            state = given
        values[block_id] = {element["action_id"]: {"type": element["type"], key: state}}
        if junk:
            values[block_id][element["action_id"]]["unexpected"] = {"nested": ["x"]}
    if junk:
        values["not_a_block"] = {"x": {"type": "plain_text_input", "value": "<script>"}}
        values["narrative_extra"] = {}
    return {
        **VIEW,
        "id": view_id,
        "team_id": "T0PROP",
        "hash": "1.abc",
        "state": {"values": values},
        **({"unknown_top_level": [1, 2, 3]} if junk else {}),
    }
