"""The privacy check's report: what was looked for, what was searched, what was found.

Reports name what was found and where, never the value found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from privacy.matching import Needle

MAX_LINES = 60


class PrivacyCheckError(Exception):
    """The check could not run; the message says why (and never holds personal data)."""


@dataclass(frozen=True)
class Finding:
    """One kind of value found in one place: `<where>: <kind> found in <location>`."""

    where: str  # slack, log, log file, database
    kind: str
    location: str


@dataclass
class Searched:
    """How much was searched, for the report (so a pass is seen to mean something)."""

    slack_calls: int = 0
    slack_answers: int = 0
    log_records: int = 0
    log_lines_written: int = 0
    log_files: int = 0
    log_file_lines: int = 0
    tables: int = 0
    rows: int = 0
    files: int = 0  # stored files opened for their names and content samples
    store_files: int = 0  # files of a directory or objects of an S3 store searched


@dataclass
class Report:
    """The outcome of a check: what was looked for, what was searched, what was found."""

    title: str
    looked_for: str
    searched: Searched = field(default_factory=Searched)
    findings: Counter[Finding] = field(default_factory=Counter)
    examples: dict[Finding, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def add(self, finding: Finding, example: str | None = None) -> None:
        self.findings[finding] += 1
        if example is not None:
            shown = self.examples.setdefault(finding, [])
            if len(shown) < 3:
                shown.append(example)

    def found(
        self,
        needles: Iterable[Needle],
        *,
        where: str,
        location: str,
        place: str = "",
        example: str | None = None,
    ) -> None:
        """Record what was found in one item (a call, a record, a row), once per kind,
        leaving out what is allowed at `place`."""
        for kind in sorted({n.kind for n in needles if place not in n.allowed_in}):
            self.add(Finding(where, kind, location), example)

    def render(self) -> str:
        """The report as printed: counts, then "passed" or one line per finding."""
        s = self.searched
        lines = [self.title, f"Looked for: {self.looked_for}", "Searched:"]
        if s.slack_calls or s.slack_answers:
            lines.append(
                f"  Slack     {s.slack_calls} API calls the stand-in received (arguments and "
                f"answers), {s.slack_answers} answers Vigil gave to Slack's requests"
            )
        if s.log_records or s.log_lines_written:
            lines.append(
                f"  logs      {s.log_records} log records at every level Vigil emits with "
                f"VIGIL_LOG_LEVEL=DEBUG ({s.log_lines_written} lines written)"
            )
        if s.log_files:
            lines.append(f"  log files {s.log_files} files, {s.log_file_lines} lines")
        lines.append(f"  database  {s.tables} tables, {s.rows} rows, every column")
        if s.files or s.store_files:
            lines.append(
                f"  files     {s.files} stored files opened for their names and content; "
                f"{s.store_files} files of the file store searched"
            )
        lines += [f"Note: {note}" for note in self.notes]
        if self.passed:
            lines.append(
                "privacy-check passed: no pupil name outside the pupils table, and no "
                "narrative, reason, action text, file name or file content in plain text."
            )
            return "\n".join(lines)
        lines.append(f"privacy-check FAILED: {len(self.findings)} findings")
        ordered = sorted(self.findings.items(), key=lambda item: (item[0].where, item[0].location))
        for finding, count in ordered[:MAX_LINES]:
            times = f" ({count} times)" if count > 1 else ""
            examples = self.examples.get(finding)
            rows = f"; e.g. {', '.join(examples)}" if examples else ""
            lines.append(
                f"  {finding.where}: {finding.kind} found in {finding.location}{times}{rows}"
            )
        if len(ordered) > MAX_LINES:
            lines.append(f"  … and {len(ordered) - MAX_LINES} more")
        return "\n".join(lines)
