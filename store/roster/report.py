"""What a roster import did: counts, and the rows it rejected or warns about."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class RowProblem:
    """A problem with one row: its line in the file (the header is line 1) and why."""

    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did, and which rows it rejected or warns about."""

    kind: Literal["staff", "pupils"]
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    encoding: str = "utf-8"
    left: int = 0  # pupils: missing from the file, marked as left
    rejoined: int = 0  # pupils: back in the file after leaving
    context_changed: int = 0  # pupils: whose context (CP plan, SEN...) changed
    unlinked: int = 0  # staff: active staff left with no Slack user id
    slack_asked: bool = False  # staff: Slack was asked for the missing Slack ids

    @property
    def rejected(self) -> int:
        """How many rows were rejected."""
        return len(self.errors)

    def summary(self) -> str:
        """A human summary: counts, then one line per rejected row and per warning."""
        counts = f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"
        if self.deactivated:
            counts += f", {self.deactivated} deactivated"
        if self.left:
            counts += f", {self.left} left"
        if self.rejoined:
            counts += f", {self.rejoined} back on the roster"
        if self.context_changed:
            counts += f", {plural(self.context_changed, 'context')} changed"
        head = f"{self.kind}: {counts}; {plural(self.rejected, 'row')} rejected"
        if self.warnings:
            head += f", {plural(len(self.warnings), 'warning')}"
        if self.encoding != "utf-8":
            head += f" (file read as {self.encoding})"
        lines = [head]
        lines += [f"  line {p.line}: {p.reason}" for p in sorted(self.errors, key=by_line)]
        lines += [
            f"  line {p.line}: warning: {p.reason}" for p in sorted(self.warnings, key=by_line)
        ]
        if self.unlinked:
            lines.append(self._unlinked_advice())
        return "\n".join(lines)

    def _unlinked_advice(self) -> str:
        """What staff with no Slack account cannot do, and how to link them."""
        who = f"{plural(self.unlinked, 'member')} of staff {'is' if self.unlinked == 1 else 'are'}"
        head = (
            f"{who} not linked to Slack: they get no alerts, and /concern tells them they "
            "are not on Vigil's staff list."
        )
        if self.slack_asked:
            return (
                f"{head} Slack has no account with their email (see the warnings above): "
                "correct the email, or fill in the slack_user_id column, and import again."
            )
        return (
            f"{head} Slack was not asked (SLACK_BOT_TOKEN is not set): `vigil serve` links "
            "them by email when it starts, or set SLACK_BOT_TOKEN and import again."
        )


class RosterFileError(Exception):
    """A problem with the whole file: unreadable, empty, or a required column missing."""


def plural(count: int, noun: str) -> str:
    """`1 row`, `2 rows`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def by_line(problem: RowProblem) -> int:
    """Sort key for problems."""
    return problem.line
