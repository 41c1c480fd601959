"""The `/concern` modal (DESIGN §3): building it and reading a submission. Pure functions.

Block ids are the field names `store.incidents.check_draft` reports errors against, so a
field error lands under the right input.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from store.allegations import ABOUT_PUPIL, NAME_PREFIX, STAFF_PREFIX
from store.catalogue import Catalogue, Category
from store.incidents import NARRATIVE_MAX, REASON_MAX, ConcernDraft
from store.messages import URGENT_LABEL

CALLBACK_ID = "concern_submit"
PUPIL_SEARCH = "pupil_search"  # action id of both pupil typeaheads (the options listener)
ADULT_SEARCH = "adult_search"  # action id of the adult typeahead (staff, or a typed name)
ABOUT_OPTIONS = (
    ("A pupil only", ABOUT_PUPIL),
    ("A member of staff", "staff"),
    ("A volunteer", "volunteer"),
    ("A visitor", "visitor"),
)

GUIDANCE = (
    "What are your concerns? What have you observed, been told or heard, and when? "
    "Use the child's exact words. Be clear what is fact and what is opinion. "
    "Use full names for pupils and staff initials. What have you done in response?"
)


def _text(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _text(label[:75]), "value": value[:150]}


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False, hint: str = ""
) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _text(label),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _text(hint)
    return block


def _categories_hint(offered: list[Category]) -> str:
    """What a member of staff who is not a key-holder is told under the categories."""
    private = [c.name for c in offered if c.restricted and c.alert == ("keyholder",)]
    if private:
        return (
            f"For a disclosure, choose {private[0]}: only the safeguarding team is alerted. "
            "Tell a DSL now as well."
        )
    return (
        "Safeguarding categories are for the safeguarding team. If you think this is "
        "a disclosure, tell a DSL now."
    )


def concern_view(
    *,
    catalogue: Catalogue,
    keyholder: bool,
    now: dt.datetime | None = None,
    notice: str | None = None,
) -> dict[str, Any]:
    """The modal. Each category is offered to whom its rule says (`chosen_by`). `notice`, if
    given, is shown above the form (e.g. that Vigil cannot reach its database)."""
    now = now or dt.datetime.now(dt.UTC)
    categories = catalogue.categories_for(keyholder=keyholder)
    blocks: list[dict[str, Any]] = []
    if notice:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": notice}]})
    blocks += [
        _input(
            "pupil",
            "Pupil",
            {
                "type": "external_select",
                "action_id": PUPIL_SEARCH,
                "placeholder": _text("Type a name or UPN"),
                "min_query_length": 2,
            },
            hint="Check it is the right child: an incident cannot be deleted.",
        ),
        _input(
            "about_adult",
            "Is this about the conduct of an adult?",
            {
                "type": "radio_buttons",
                "action_id": "about_adult",
                "options": [_option(label, value) for label, value in ABOUT_OPTIONS],
                "initial_option": _option(*ABOUT_OPTIONS[0]),
            },
            hint="A concern about an adult goes only to the headteacher (or, about the head, "
            "the chair of governors), never to the person it is about.",
        ),
        _input(
            "adult",
            "The adult",
            {
                "type": "external_select",
                "action_id": ADULT_SEARCH,
                "placeholder": _text("Type their name"),
                "min_query_length": 2,
            },
            optional=True,
            hint="Only if the concern is about an adult: choose them, or type a name.",
        ),
        _input(
            "narrative",
            "What happened",
            {
                "type": "plain_text_input",
                "action_id": "narrative",
                "multiline": True,
                "max_length": NARRATIVE_MAX,
            },
            hint=GUIDANCE,
        ),
        _input(
            "happened_at",
            "When it happened",
            {
                "type": "datetimepicker",
                "action_id": "happened_at",
                "initial_date_time": int(now.timestamp()),
            },
        ),
        _input(
            "categories",
            "Categories",
            {
                "type": "multi_static_select",
                "action_id": "categories",
                "placeholder": _text("Choose one or more"),
                "options": [_option(c.name, c.name) for c in categories],
            },
            hint="" if keyholder else _categories_hint(categories),
        ),
        _input(
            "urgent",
            "Immediate risk",
            {
                "type": "checkboxes",
                "action_id": "urgent",
                "options": [_option(URGENT_LABEL, "urgent")],
            },
            optional=True,
            hint="Tick if a child may be at immediate risk: the DSL on duty is alerted at once. "
            "Also tell them now, in person or by phone.",
        ),
        _input(
            "linked_pupils",
            "Linked pupils",
            {
                "type": "multi_external_select",
                "action_id": PUPIL_SEARCH,
                "placeholder": _text("Siblings, friends, others involved"),
                "min_query_length": 2,
            },
            optional=True,
        ),
        _input(
            "also_alert",
            "Also alert",
            {
                "type": "multi_users_select",
                "action_id": "also_alert",
                "placeholder": _text("Staff who need to know"),
            },
            optional=True,
            hint="The safeguarding team and class teachers are alerted automatically.",
        ),
    ]
    if catalogue.agencies:
        blocks.append(
            _input(
                "agencies",
                "Agencies involved",
                {
                    "type": "multi_static_select",
                    "action_id": "agencies",
                    "placeholder": _text("None"),
                    "options": [_option(a, a) for a in catalogue.agencies],
                },
                optional=True,
            )
        )
    blocks += [
        _input(
            "parents_contacted",
            "Parents or carers contacted?",
            {
                "type": "radio_buttons",
                "action_id": "parents_contacted",
                "options": [_option("Yes", "yes"), _option("No", "no")],
            },
        ),
        _input(
            "parents_reason",
            "If not, why not?",
            {
                "type": "plain_text_input",
                "action_id": "parents_reason",
                "multiline": True,
                "max_length": REASON_MAX,
            },
            optional=True,
        ),
    ]
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "title": _text("Record a concern"),
        "submit": _text("Submit"),
        "close": _text("Cancel"),
        "private_metadata": json.dumps({"v": 1, "keyholder": keyholder}),
        "blocks": blocks,
    }


def not_staff_view() -> dict[str, Any]:
    """Shown instead of the form to someone not on the staff roster."""
    return {
        "type": "modal",
        "title": _text("Record a concern"),
        "close": _text("Close"),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "You are not on Vigil's staff list yet, so you cannot record a "
                    "concern here. *If a child is at risk, tell a Designated Safeguarding Lead "
                    "now, in person.* Ask the school office to add you.",
                },
            }
        ],
    }


def _value(values: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = values.get(block_id) or {}
    return next(iter(block.values()), {}) if isinstance(block, dict) else {}


def _selected(element: dict[str, Any]) -> list[str]:
    options = element.get("selected_options") or []
    return [str(o.get("value")) for o in options if isinstance(o, dict) and o.get("value")]


def parse_submission(view: dict[str, Any]) -> ConcernDraft:
    """Read a view_submission's state into a draft (trusting nothing; see check_draft)."""
    values = (view.get("state") or {}).get("values") or {}
    pupil = (_value(values, "pupil").get("selected_option") or {}).get("value")
    stamp = _value(values, "happened_at").get("selected_date_time")
    happened_at = dt.datetime.fromtimestamp(int(stamp), dt.UTC) if stamp else None
    parents = (_value(values, "parents_contacted").get("selected_option") or {}).get("value")
    about = (_value(values, "about_adult").get("selected_option") or {}).get("value")
    adult = (_value(values, "adult").get("selected_option") or {}).get("value")
    return ConcernDraft(
        pupil_id=str(pupil) if pupil else None,
        narrative=str(_value(values, "narrative").get("value") or ""),
        happened_at=happened_at,
        categories=_selected(_value(values, "categories")),
        linked_pupil_ids=_selected(_value(values, "linked_pupils")),
        also_alert_slack_ids=[
            str(u) for u in _value(values, "also_alert").get("selected_users") or []
        ],
        agencies=_selected(_value(values, "agencies")),
        parents_contacted=str(parents) if parents else None,
        parents_reason=str(_value(values, "parents_reason").get("value") or ""),
        about_adult=str(about) if about else None,
        adult=str(adult) if adult else None,
        urgent="urgent" in _selected(_value(values, "urgent")),
    )


def pupil_option(pupil: Any) -> dict[str, Any]:
    """A typeahead option: name, year and class so the right child is chosen."""
    label = f"{pupil.display_name} · {pupil.year_group} · {pupil.registration_group}"
    return _option(label, str(pupil.id))


def adult_options(staff: Any, typed: str) -> list[dict[str, Any]]:
    """The adult typeahead: matching staff, then "someone not on the list: <typed>"."""
    options = [_option(s.name, f"{STAFF_PREFIX}{s.id}") for s in staff]
    name = " ".join(typed.split())[:100]
    if name:
        options.append(_option(f"Someone not on the list: {name}", f"{NAME_PREFIX}{name}"))
    return options
