"""What the Slack listeners need from the assembled application."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from store.catalogue import Catalogue
from store.crypto import Cipher
from store.db import SessionFactory
from store.flows import Setup
from store.school_config import SchoolConfig
from store.schools import School, SchoolDirectory, single
from store.workspaces import TeamDirectory


@dataclass(frozen=True)
class Deps:
    factory: SessionFactory
    teams: TeamDirectory
    catalogue: Catalogue
    cipher: Cipher
    public_url: str
    command: str
    alert_channel: str | None
    notify_outbox: Callable[[], None]
    spawn: Callable[[Coroutine[Any, Any, Any]], None]
    school: SchoolConfig
    clock: Callable[[], dt.datetime]
    # OAuth mode: an installation was removed (outgoing clients cached for it go).
    uninstalled: Callable[[], None] = lambda: None
    # Each school's configuration (`store.schools`); without one, every school has
    # `school` and `catalogue` (the deployment's `vigil.toml`).
    schools: SchoolDirectory | None = None

    def __post_init__(self) -> None:
        if self.schools is None:
            object.__setattr__(self, "schools", single(self.school, self.catalogue))

    def school_of(self, workspace_id: int) -> School:
        """The school's configuration and catalogue (`store.schools.SchoolDirectory`)."""
        assert self.schools is not None
        return self.schools.school(workspace_id)

    def setup_for(self, workspace_id: int) -> Setup:
        """What the store's flows need of the deployment, for this school."""
        school = self.school_of(workspace_id)
        return Setup(self.cipher, school.catalogue, school.config, self.public_url)
