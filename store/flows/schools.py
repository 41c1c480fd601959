"""A school's settings page (its key-holders) and the trust page (trust leads).

Both ask `store.access` (`may_edit_settings`, `may_see_trust`); anyone else is refused,
audited, and shown the one 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from store import access, audit, schools, trust
from store.flows import Visit
from store.models import SchoolSettings
from store.school_config import SchoolConfig, SchoolConfigError


@dataclass(frozen=True)
class SettingsPage:
    text: str  # the editable sections, as TOML
    source: str  # where the rest comes from (the school's file, or vigil.toml)
    saved: SchoolSettings | None  # the last save, if any


@dataclass(frozen=True)
class Saved:
    version: int = 0
    text: str = ""
    error: str = ""  # the loader's message, naming the key

    @property
    def ok(self) -> bool:
        return not self.error


async def view_settings(
    session: AsyncSession, *, visit: Visit, base: schools.School
) -> SettingsPage | None:
    """The settings page: the school's editable sections (saved, else from its file)."""
    if not access.may_edit_settings(visit.staff):
        visit.trail(session).add("settings.view", audit.REFUSED)
        return None
    saved = await schools.stored_settings(session, workspace_id=visit.staff.workspace_id)
    text = saved.settings if saved is not None else schools.settings_text(base.config)
    visit.trail(session).add("settings.view")
    return SettingsPage(text, base.source, saved)


async def save_settings(
    session: AsyncSession, *, visit: Visit, base: schools.School, text: str
) -> Saved | None:
    """Save the school's editable sections, checked by the configuration's own loader;
    audited (a mistake too, with its key). None (refusal audited) for anyone but its
    key-holders. The caller tells the `store.schools.SchoolDirectory` once committed."""
    trail = visit.trail(session)
    if not access.may_edit_settings(visit.staff):
        trail.add("settings.edit", audit.REFUSED)
        return None
    text = text.replace("\r\n", "\n")
    try:
        edited = schools.edited_school(base, text)
    except SchoolConfigError as error:
        trail.add("settings.edit", audit.FAILED, detail=f"invalid: {error.key or 'file'}")
        return Saved(error=str(error))
    workspace_id = visit.staff.workspace_id
    row = await schools.stored_settings(session, workspace_id=workspace_id)
    if row is None:
        row = SchoolSettings(workspace_id=workspace_id, settings=text, version=1)
        session.add(row)
    else:
        row.settings, row.version = text, row.version + 1
    row.updated_at, row.updated_by_id = visit.now, visit.staff.id
    await session.flush()
    changed = _changed(base.config, edited.config)
    trail.add("settings.edit", detail=f"v{row.version}: {', '.join(changed) or 'no change'}")
    return Saved(row.version, text)


def _changed(before: SchoolConfig, after: SchoolConfig) -> list[str]:
    """Which sections differ from the school's file (for the audit row; never values)."""
    pairs = {
        "working_time": (before.working_time, after.working_time),
        "agencies": (before.agencies, after.agencies),
        "on_call": (before.on_call, after.on_call),
        "casework": (before.school_outcomes, after.school_outcomes),
    }
    return [name for name, (old, new) in pairs.items() if old != new]


async def trust_page(
    session: AsyncSession, *, visit: Visit, config_of: Callable[[int], SchoolConfig]
) -> trust.TrustFigures | None:
    """The trust's counts per school, for a trust lead; None (refusal audited) otherwise."""
    trail = visit.trail(session)
    if not access.may_see_trust(visit.staff):
        trail.add("trust.view", audit.REFUSED)
        return None
    figures = await trust.trust_figures(session, now=visit.now, config_of=config_of)
    trail.add("trust.view", detail=f"{len(figures.schools)} schools")
    return figures
