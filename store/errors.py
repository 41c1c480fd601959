"""The one exception for a change refused because of what was entered.

`FieldErrors.errors` maps each field (a form input, a modal block) to a message for the
person who entered it; the handler shows each message beside its field and nothing is
stored. Each domain names its own kind (`InvalidConcern`, `InvalidAction`,
`InvalidReferral`), and a handler that records several changes at once catches them all
as `FieldErrors`.
"""

from __future__ import annotations


class FieldErrors(Exception):
    """The change cannot be made; `errors` maps each field to a message for the person."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors
