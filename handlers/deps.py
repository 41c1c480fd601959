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

    @property
    def setup(self) -> Setup:
        """What the store's flows need of the deployment."""
        return Setup(self.cipher, self.catalogue, self.school, self.public_url)
