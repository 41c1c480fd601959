"""Who is who: staff roles and key-holders. The one place these rules live."""

from __future__ import annotations

from collections.abc import Iterable

ROLES = ("keyholder", "head", "dsl", "slt", "pastoral", "teacher", "staff")

# The safeguarding team: they see every incident and may use restricted categories.
# A DSL is always a key-holder; anyone else is one when given the `keyholder` role.
KEYHOLDER_ROLES = frozenset({"keyholder", "dsl"})


def is_keyholder(roles: Iterable[str]) -> bool:
    """True for members of the safeguarding team."""
    return not KEYHOLDER_ROLES.isdisjoint(roles)
