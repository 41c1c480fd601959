"""Incident categories and agencies a school offers in the modal.

The default categories are the list from the CPOMS protocol in `shared/seeds/`;
Safeguarding and Child protection are restricted (offered only to key-holders).
Categories are configurable (`VIGIL_CATEGORIES`, `VIGIL_RESTRICTED_CATEGORIES`, each
`;`-separated); agencies come from the school's configuration file (`store.school_config`).
"""

from __future__ import annotations

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
    name: str
    restricted: bool


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
    ) -> Catalogue:
        names = _split(categories) or list(DEFAULT_CATEGORIES)
        restricted_names = {
            n.casefold()
            for n in (_split(restricted) if restricted is not None else DEFAULT_RESTRICTED)
        }
        unknown = restricted_names - {n.casefold() for n in names}
        if unknown:
            raise ValueError(f"restricted categories not in the category list: {sorted(unknown)}")
        return cls(
            categories=tuple(Category(n, n.casefold() in restricted_names) for n in names),
            agencies=tuple(agencies) if agencies is not None else DEFAULT_AGENCIES,
        )

    def categories_for(self, *, keyholder: bool) -> list[Category]:
        """The categories a member of staff may choose."""
        return [c for c in self.categories if keyholder or not c.restricted]

    def category(self, name: str) -> Category | None:
        """The category called `name` exactly, if on offer."""
        return next((c for c in self.categories if c.name == name), None)
