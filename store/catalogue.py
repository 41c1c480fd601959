"""Incident categories and agencies a school offers in the modal, with each category's
alert rule (DESIGN §5).

The default categories are the list from the CPOMS protocol in `shared/seeds/`;
Safeguarding and Child protection are restricted (offered only to key-holders), and
"Safeguarding disclosure" is offered to everyone but alerts the key-holders only.
Categories are configurable (`VIGIL_CATEGORIES`, `VIGIL_RESTRICTED_CATEGORIES`, each
`;`-separated); the `[[alert_rules]]` of the school's configuration file
(`store.school_config`) say, per category, who is alerted, who an added action alerts,
who may choose it and whether it is restricted, and may add categories. Agencies come
from the configuration file too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_CATEGORIES = (
    "Attendance",
    "Behaviour",
    "CAF level 2",
    "CAF level 3",
    "Care plan",
    "Child in need",
    "Child protection",
    "Domestic violence",
    "Disability",
    "Looked after child",
    "Medical",
    "Parent conversations",
    "Punctuality",
    "Racial incidents",
    "Safeguarding",
    "Special educational needs",
    "Education health care plans",
    "Team teach incident (restraining a child)",
    "Well-being",
)
DEFAULT_RESTRICTED = ("Safeguarding", "Child protection")
DISCLOSURE = "Safeguarding disclosure"

# Whom a rule can name: staff with a role (`keyholder` is the whole safeguarding team,
# `store.access.is_keyholder`), or the class teachers of the pupils on the concern.
ALERT_ROLES = ("keyholder", "dsl", "head", "slt", "pastoral", "senco", "class_teacher", "chair")
ANYONE, KEYHOLDER = "anyone", "keyholder"
CHOSEN_BY = (ANYONE, KEYHOLDER)


@dataclass(frozen=True)
class AlertRule:
    """One `[[alert_rules]]` entry: what it sets for its category (None: left as it was)."""

    category: str
    alert: tuple[str, ...] | None = None  # who a new concern alerts, by role
    on_action: tuple[str, ...] | None = None  # who an added action alerts (with the author)
    chosen_by: str | None = None  # ANYONE or KEYHOLDER
    restricted: bool | None = None  # key-holder-only sharing; narrows the alert (below)


# Today's rule for the listed categories, plus the disclosure a teacher can send to the
# safeguarding team alone.
DEFAULT_RULES = (AlertRule(DISCLOSURE, alert=("keyholder",), chosen_by=ANYONE, restricted=True),)
DEFAULT_AGENCIES = (
    "Children's social care (MASH)",
    "Police",
    "CAMHS",
    "Early help",
    "School nursing",
    "LADO",
)


@dataclass(frozen=True)
class Category:
    """A category with its rule. Left out, the rule is today's: every category alerts the
    key-holders and the pupils' class teachers and may be chosen by anyone; a restricted
    one alerts the key-holders only and only they may choose it. An action alerts the
    key-holders (and the incident's author)."""

    name: str
    restricted: bool
    alert: tuple[str, ...] = ()
    on_action: tuple[str, ...] = ()
    chosen_by: str = ""

    def __post_init__(self) -> None:
        if not self.alert:
            default = ("keyholder",) if self.restricted else ("keyholder", "class_teacher")
            object.__setattr__(self, "alert", default)
        if not self.on_action:
            object.__setattr__(self, "on_action", ("keyholder",))
        if not self.chosen_by:
            object.__setattr__(self, "chosen_by", KEYHOLDER if self.restricted else ANYONE)

    def with_rule(self, rule: AlertRule) -> Category:
        """This category with what `rule` sets."""
        restricted = self.restricted if rule.restricted is None else rule.restricted
        base = self if restricted == self.restricted else Category(self.name, restricted)
        return Category(
            self.name,
            restricted,
            alert=rule.alert if rule.alert is not None else base.alert,
            on_action=rule.on_action if rule.on_action is not None else base.on_action,
            chosen_by=rule.chosen_by or base.chosen_by,
        )


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(";") if part.strip()]


@dataclass(frozen=True)
class Catalogue:
    """The categories and agencies on offer; pure data, shared by handlers and store."""

    categories: tuple[Category, ...]
    agencies: tuple[str, ...]

    @classmethod
    def from_config(
        cls,
        categories: str | None = None,
        restricted: str | None = None,
        agencies: Sequence[str] | None = None,
        rules: Sequence[AlertRule] = (),
    ) -> Catalogue:
        """The catalogue; `rules` (the file's `[[alert_rules]]`, in order) apply after the
        defaults. A rule naming a category not listed adds it; one naming a listed category
        with different capitals or spaces is a mistake (ValueError naming the rule)."""
        names = _split(categories) or list(DEFAULT_CATEGORIES)
        restricted_names = {
            n.casefold()
            for n in (_split(restricted) if restricted is not None else DEFAULT_RESTRICTED)
        }
        unknown = restricted_names - {n.casefold() for n in names}
        if unknown:
            raise ValueError(f"restricted categories not in the category list: {sorted(unknown)}")
        found = {n: Category(n, n.casefold() in restricted_names) for n in names}
        for number, rule in enumerate((*DEFAULT_RULES, *rules), start=1 - len(DEFAULT_RULES)):
            if rule.category not in found:
                near = [n for n in found if _folded(n) == _folded(rule.category)]
                if near and number > 0:
                    raise ValueError(
                        f"alert_rules[{number}].category: {rule.category!r} is not a category; "
                        f"did you mean {near[0]!r}? (a new category needs a different name)"
                    )
                if near:  # a default rule for a category the school spells its own way
                    rule = dataclasses.replace(rule, category=near[0])
                else:
                    found[rule.category] = Category(rule.category, False)
            found[rule.category] = found[rule.category].with_rule(rule)
        return cls(
            categories=tuple(found.values()),
            agencies=tuple(agencies) if agencies is not None else DEFAULT_AGENCIES,
        )

    def categories_for(self, *, keyholder: bool) -> list[Category]:
        """The categories a member of staff may choose."""
        return [c for c in self.categories if keyholder or c.chosen_by == ANYONE]

    def category(self, name: str) -> Category | None:
        """The category called `name` exactly, if on offer."""
        return next((c for c in self.categories if c.name == name), None)
