"""Each school's configuration, resolved per workspace: the one resolver.

A deployment may serve many schools (one Slack workspace each). A school's configuration
(`store.school_config.SchoolConfig`, and its `store.catalogue.Catalogue` of categories
and agencies) comes from, in order, the first that applies:

1. its settings page (`school_settings`, the `EDITABLE` sections, edited by its
   key-holders): these sections replace the same sections of 2 or 3;
2. its own file, `VIGIL_SCHOOLS_DIR/<TEAM_ID>.toml` (the same format as `vigil.toml`,
   read by the same loader), if there is one;
3. the deployment's `vigil.toml` (`VIGIL_CONFIG`): with one school, nothing else changes.

`SchoolDirectory.school` answers from memory (no query per request); `SchoolDirectory.reload`
reads the settings rows (at start, every minute in every process, and at once in the process
where a key-holder saved). The scheduler's intervals (`[nudges] check_every_minutes`,
`[urgent] escalate_every_minutes`) are the deployment's (`vigil.toml`), not a school's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store.catalogue import Catalogue
from store.models import SchoolSettings, Workspace
from store.rota import DAYS
from store.school_config import (
    SchoolConfig,
    SchoolConfigError,
    load_school_config,
    parse_school_config,
)
from store.workdays import WorkingTime

# What a school's key-holders may change on the settings page. Who is alerted
# ([[alert_rules]]), who handles allegations ([allegations]) and the scheduler's intervals
# stay in the files the deployment's administrator keeps.
EDITABLE = ("working_time", "agencies", "on_call", "casework")
SETTINGS_SOURCE = "settings page"
MAX_SETTINGS_CHARS = 20_000


@dataclass(frozen=True)
class School:
    """One school's configuration and catalogue, and where they came from."""

    config: SchoolConfig
    catalogue: Catalogue
    source: str  # e.g. "vigil.toml", "schools/T0001.toml + settings page"


def edited_school(base: School, text: str) -> School:
    """`base` with the settings page's sections (TOML `text`) in place of its own.

    Raises `SchoolConfigError` (naming "settings page" and the key) for any mistake: the
    same checks as the file's, and only the `EDITABLE` sections.
    """
    if len(text) > MAX_SETTINGS_CHARS:
        raise SchoolConfigError(SETTINGS_SOURCE, None, "too long")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchoolConfigError(SETTINGS_SOURCE, None, f"not valid TOML: {exc}") from None
    for key in data:
        if key not in EDITABLE:
            raise SchoolConfigError(
                SETTINGS_SOURCE,
                key,
                f"not editable here; the page holds only {', '.join(EDITABLE)}",
            )
    parsed = parse_school_config(data, source=SETTINGS_SOURCE)
    config = base.config
    changes: dict[str, Any] = {}
    if "working_time" in data:
        changes["working_time"] = parsed.working_time
    if "agencies" in data:
        changes["agencies"] = parsed.agencies
        lado = config.allegations.lado_agency
        if lado != config.allegations.lado_default.name and parsed.agency(lado) is None:
            raise SchoolConfigError(
                SETTINGS_SOURCE, "agencies", f"{lado!r} handles allegations: keep it listed"
            )
    if "on_call" in data:
        changes["on_call"] = parsed.on_call
    if "casework" in data:
        changes["school_outcomes"] = parsed.school_outcomes
    config = dataclasses.replace(config, **changes)
    catalogue = dataclasses.replace(base.catalogue, agencies=config.agency_names)
    return School(config, catalogue, f"{base.source} + {SETTINGS_SOURCE}")


def settings_text(config: SchoolConfig) -> str:
    """The `EDITABLE` sections of `config` as TOML, to start the settings page's form."""
    working = config.working_time
    lines = [
        "[working_time]",
        f"timezone = {_quoted(working.timezone)}",
        f'day_starts = "{working.day_starts:%H:%M}"',
        f'day_ends = "{working.day_ends:%H:%M}"',
        f"bank_holidays = {_quoted(working.region)}",
        f"closures = [{', '.join(_quoted(r) for r in _ranges(working.closures))}]",
        "",
    ]
    for agency in config.agencies:
        lines += [
            "[[agencies]]",
            f"name = {_quoted(agency.name)}",
            f"respond_within = {_quoted(agency.timescale.describe())}",
            "",
        ]
    for entry in config.on_call:
        holidays = {"yes": "true", "no": "false", "only": '"only"'}[entry.holidays]
        days = ", ".join(_quoted(d) for d in _day_names(entry.days))
        lines += [
            "[[on_call]]",
            f"staff = {_quoted(entry.staff)}",
            f"days = [{days}]",
            f'from = "{entry.starts:%H:%M}"',
            f'to = "{entry.ends:%H:%M}"',
            f"holidays = {holidays}",
            "",
        ]
    outcomes = ", ".join(_quoted(o) for o in config.school_outcomes)
    lines += ["[casework]", f"outcomes = [{outcomes}]", ""]
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _day_names(days: Iterable[int]) -> list[str]:
    return [DAYS[d] for d in sorted(days)]


def _ranges(dates: Iterable[dt.date]) -> list[str]:
    """Dates as "start..end" ranges of consecutive days (a single day alone)."""
    found: list[str] = []
    ordered = sorted(dates)
    start = previous = None
    for day in [*ordered, None]:
        if start is not None and (day is None or previous is None or (day - previous).days != 1):
            found.append(str(start) if start == previous else f"{start}..{previous}")
            start = None
        if day is not None:
            start = start or day
            previous = day
    return found


def read_school_files(directory: Path | None, build: Any) -> dict[str, School]:
    """Every `<TEAM_ID>.toml` in `directory`, each made a `School` by `build(config,
    source)`; a mistake in any raises `SchoolConfigError` naming the file."""
    if directory is None:
        return {}
    found: dict[str, School] = {}
    for path in sorted(Path(directory).glob("*.toml")):
        config = load_school_config(path)
        found[path.stem] = build(config, f"{directory.name}/{path.name}")
    return found


class SchoolDirectory:
    """Workspace id → its `School`, from memory; see the module's docstring."""

    def __init__(self, default: School, *, files: Mapping[str, School] | None = None) -> None:
        self.default = default
        self._files = dict(files or {})
        self._teams: dict[int, str] = {}
        self._edits: dict[int, tuple[int, str]] = {}  # workspace id → (version, text)
        self._cache: dict[int, School] = {}

    @property
    def varies(self) -> bool:
        """Whether any school's configuration may differ from the deployment's."""
        return bool(self._files or self._edits)

    def learn(self, workspace_id: int, team_id: str) -> None:
        """Note a workspace's Slack team (its file is named after it)."""
        if self._teams.get(workspace_id) != team_id:
            self._teams[workspace_id] = team_id
            self._cache.pop(workspace_id, None)

    def workspaces(self) -> list[int]:
        """The workspaces known to the directory."""
        return sorted(self._teams)

    def base(self, workspace_id: int) -> School:
        """The school's configuration before its settings page: its file, else the default."""
        return self._files.get(self._teams.get(workspace_id, ""), self.default)

    def school(self, workspace_id: int) -> School:
        """The school's configuration (cached)."""
        found = self._cache.get(workspace_id)
        if found is None:
            found = self.base(workspace_id)
            edit = self._edits.get(workspace_id)
            if edit is not None:
                try:
                    found = edited_school(found, edit[1])
                except SchoolConfigError:
                    pass  # checked when saved; a file changed since: the file's own
            self._cache[workspace_id] = found
        return found

    def config(self, workspace_id: int) -> SchoolConfig:
        return self.school(workspace_id).config

    def working_time(self, workspace_id: int) -> WorkingTime:
        return self.school(workspace_id).config.working_time

    def edited(self, workspace_id: int, *, version: int, text: str) -> None:
        """A settings page's save (after its commit): used from now on in this process."""
        current = self._edits.get(workspace_id)
        if current is None or current[0] <= version:
            self._edits[workspace_id] = (version, text)
            self._cache.pop(workspace_id, None)

    async def reload(self, session: AsyncSession) -> None:
        """Read every workspace and its settings page's row (at start, then every minute)."""
        teams = dict((await session.execute(select(Workspace.id, Workspace.team_id))).all())
        rows = (
            await session.execute(
                select(SchoolSettings.workspace_id, SchoolSettings.version, SchoolSettings.settings)
            )
        ).all()
        edits = {workspace_id: (version, text) for workspace_id, version, text in rows}
        if teams != self._teams or edits != self._edits:
            self._teams, self._edits, self._cache = teams, edits, {}


def single(
    config: SchoolConfig, catalogue: Catalogue, source: str = "vigil.toml"
) -> SchoolDirectory:
    """A directory where every school has this configuration (until a settings page)."""
    return SchoolDirectory(School(config, catalogue, source))


async def stored_settings(session: AsyncSession, *, workspace_id: int) -> SchoolSettings | None:
    """The school's settings page row, if it was ever saved."""
    return await session.get(SchoolSettings, workspace_id)
