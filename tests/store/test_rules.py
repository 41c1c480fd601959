"""Pure rules: who is alerted, what a draft needs, the catalogue, encryption."""

from __future__ import annotations

import datetime as dt

import pytest

from store.access import is_keyholder
from store.alert_rules import Recipient, action_recipients, alert_recipients
from store.catalogue import DEFAULT_CATEGORIES, DISCLOSURE, AlertRule, Catalogue, Category
from store.crypto import Cipher, DecryptionError, generate_key, parse_keys
from store.incidents import NARRATIVE_MAX, ConcernDraft, check_draft

BEHAVIOUR = Category("Behaviour", restricted=False)
SAFEGUARDING = Category("Safeguarding", restricted=True)
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


def recipients(**overrides: object) -> list[Recipient]:
    arguments: dict[str, object] = {
        "author_id": 1,
        "categories": [BEHAVIOUR],
        "staff_by_role": {"keyholder": [10, 11]},
        "class_teacher_ids": [20],
        "added_ids": [],
    }
    arguments.update(overrides)
    return alert_recipients(**arguments)  # type: ignore[arg-type]


def test_keyholders_and_class_teachers_are_alerted() -> None:
    assert recipients() == [
        Recipient(10, "keyholder"),
        Recipient(11, "keyholder"),
        Recipient(20, "class_teacher"),
    ]


def test_restricted_category_alerts_keyholders_only() -> None:
    got = recipients(categories=[BEHAVIOUR, SAFEGUARDING])
    assert [r.staff_id for r in got] == [10, 11]


def test_added_staff_are_alerted_even_for_restricted_categories() -> None:
    got = recipients(categories=[SAFEGUARDING], added_ids=[30])
    assert Recipient(30, "added") in got


def test_author_is_never_alerted() -> None:
    got = recipients(author_id=10, added_ids=[10], class_teacher_ids=[10, 20])
    assert 10 not in [r.staff_id for r in got]


def test_each_person_is_alerted_once_with_the_first_reason() -> None:
    got = recipients(class_teacher_ids=[11, 20], added_ids=[20, 20, 11])
    assert [r.staff_id for r in got] == [10, 11, 20]
    assert got[1].reason == "keyholder"


@pytest.mark.parametrize(
    ("roles", "expected"),
    [({"dsl"}, True), ({"keyholder", "teacher"}, True), ({"head"}, False), ({"teacher"}, False)],
)
def test_keyholders_are_dsls_and_the_keyholder_role(roles: set[str], expected: bool) -> None:
    assert is_keyholder(roles) is expected


def test_default_catalogue_is_the_seed_protocol_list_and_the_disclosure() -> None:
    catalogue = Catalogue.from_config()
    assert [c.name for c in catalogue.categories] == [*DEFAULT_CATEGORIES, DISCLOSURE]
    restricted = {c.name for c in catalogue.categories if c.restricted}
    assert restricted == {"Safeguarding", "Child protection", DISCLOSURE}
    names = {c.name for c in catalogue.categories_for(keyholder=False)}
    assert "Safeguarding" not in names and "Behaviour" in names and DISCLOSURE in names
    disclosure = catalogue.category(DISCLOSURE)
    assert disclosure is not None and disclosure.alert == ("keyholder",)


def test_default_rules_are_todays_rule() -> None:
    for category in Catalogue.from_config().categories:
        if category.restricted:
            assert category.alert == ("keyholder",)
        else:
            assert category.alert == ("keyholder", "class_teacher")
        assert category.on_action == ("keyholder",)
        expected = (
            "anyone" if category.name == DISCLOSURE or not category.restricted else "keyholder"
        )
        assert category.chosen_by == expected


def test_disclosure_alerts_keyholders_only_even_beside_an_open_category() -> None:
    disclosure = Catalogue.from_config().category(DISCLOSURE)
    assert disclosure is not None
    got = recipients(categories=[BEHAVIOUR, disclosure], class_teacher_ids=[20, 21])
    assert [r.staff_id for r in got] == [10, 11]


def test_a_rule_names_roles_in_a_stable_order() -> None:
    rules = [AlertRule("Behaviour", alert=("senco", "head", "class_teacher"))]
    behaviour = Catalogue.from_config(rules=rules).category("Behaviour")
    assert behaviour is not None
    got = recipients(
        categories=[behaviour],
        staff_by_role={"keyholder": [10], "head": [40], "senco": [50, 10]},
        class_teacher_ids=[20],
    )
    assert got == [
        Recipient(40, "head"),
        Recipient(50, "senco"),
        Recipient(10, "senco"),  # a key-holder, but the rule does not name key-holders
        Recipient(20, "class_teacher"),
    ]


def test_a_rule_can_add_a_category_or_change_who_may_choose_one() -> None:
    rules = [
        AlertRule("Online safety", alert=("keyholder", "pastoral")),
        AlertRule("Child protection", chosen_by="anyone"),
    ]
    catalogue = Catalogue.from_config(rules=rules)
    names = {c.name for c in catalogue.categories_for(keyholder=False)}
    assert {"Online safety", "Child protection"} <= names
    assert "Safeguarding" not in names


def test_a_rule_misspelling_a_category_is_refused_naming_the_rule() -> None:
    with pytest.raises(ValueError, match=r"alert_rules\[1\].category: 'child protection'"):
        Catalogue.from_config(rules=[AlertRule("child protection", alert=("dsl",))])


def test_an_action_alerts_the_author_and_the_action_roles_once() -> None:
    got = action_recipients(
        action_author_id=10,
        incident_author_id=1,
        categories=[BEHAVIOUR],
        staff_by_role={"keyholder": [10, 11]},
        class_teacher_ids=[20],
        picked_ids=[11, 30, 1],
    )
    assert [r.staff_id for r in got] == [1, 11, 30]
    assert {r.reason for r in got} == {"action"}


def test_catalogue_refuses_restricting_an_unknown_category() -> None:
    with pytest.raises(ValueError, match="not in the category list"):
        Catalogue.from_config("Behaviour;Medical", "Safeguarding")


def draft(**overrides: object) -> ConcernDraft:
    values: dict[str, object] = {
        "pupil_id": "5",
        "narrative": "Arrived with a bruise on the left arm.",
        "categories": ["Medical"],
        "parents_contacted": "yes",
    }
    values.update(overrides)
    return ConcernDraft(**values)  # type: ignore[arg-type]


def errors(d: ConcernDraft, *, keyholder: bool = False) -> dict[str, str]:
    return check_draft(d, catalogue=Catalogue.from_config(), keyholder=keyholder, now=NOW)


def test_a_complete_draft_has_no_errors() -> None:
    assert errors(draft()) == {}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pupil_id": None}, "pupil"),
        ({"narrative": "   "}, "narrative"),
        ({"narrative": "x" * (NARRATIVE_MAX + 1)}, "narrative"),
        ({"categories": []}, "categories"),
        ({"categories": ["Gossip"]}, "categories"),
        ({"categories": ["Safeguarding"]}, "categories"),
        ({"agencies": ["Interpol"]}, "agencies"),
        ({"linked_pupil_ids": ["5"]}, "linked_pupils"),
        ({"parents_contacted": None}, "parents_contacted"),
        ({"parents_contacted": "no", "parents_reason": ""}, "parents_reason"),
        ({"parents_reason": "y" * 501}, "parents_reason"),
        ({"happened_at": NOW + dt.timedelta(hours=2)}, "happened_at"),
    ],
)
def test_each_mistake_is_reported_on_its_field(overrides: dict[str, object], field: str) -> None:
    assert field in errors(draft(**overrides))


def test_keyholders_may_use_restricted_categories() -> None:
    assert errors(draft(categories=["Safeguarding"]), keyholder=True) == {}


def test_cipher_round_trip_and_rotation() -> None:
    old, new = generate_key(), generate_key()
    token = Cipher(old).encrypt("narrative")
    assert b"narrative" not in token
    rotated = Cipher(f"{new},{old}")
    assert rotated.decrypt(token) == "narrative"
    assert Cipher(new).decrypt(rotated.rotate(token)) == "narrative"
    with pytest.raises(DecryptionError):
        Cipher(new).decrypt(token)


def test_malformed_key_is_explained() -> None:
    with pytest.raises(ValueError, match="key 2 is not a valid key"):
        parse_keys(f"{generate_key()},not-a-key")


def test_a_teacher_may_choose_the_disclosure_and_is_pointed_to_it() -> None:
    assert errors(draft(categories=[DISCLOSURE])) == {}
    refused = errors(draft(categories=["Child protection"]))["categories"]
    assert "Only the safeguarding team can use Child protection" in refused
    assert f"Choose {DISCLOSURE} to tell the safeguarding team alone" in refused
