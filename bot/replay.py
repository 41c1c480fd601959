"""Signed Slack requests are accepted once: a replay cache of their signatures.

Slack signs each request over its timestamp and body, and Vigil accepts a timestamp up
to five minutes old. Within those five minutes a captured request could be sent again,
signature and all: a replayed `/concern login` used to answer with a fresh sign-in link.
Slack itself never sends the same signature twice (a retry is signed anew), so a
signature seen within the window is refused.

The cache is per process; it holds each signature until its timestamp leaves the window.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

#: How old a signed request may be (slack_sdk's SignatureVerifier allows five minutes),
#: plus a little for clocks that disagree.
WINDOW_SECONDS = 5 * 60 + 30


class ReplayCache:
    """Remembers request signatures until their timestamp is out of Slack's window."""

    def __init__(
        self, *, window: float = WINDOW_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._window = window
        self._clock = clock
        self._seen: set[str] = set()
        self._expiry: deque[tuple[float, str]] = deque()

    def first_time(self, signature: str, *, timestamp: int) -> bool:
        """True the first time `signature` is offered (and remembers it); False after."""
        self._forget_expired()
        if signature in self._seen:
            return False
        self._seen.add(signature)
        self._expiry.append((max(timestamp + self._window, self._clock()), signature))
        return True

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiry and self._expiry[0][0] < now:
            _, signature = self._expiry.popleft()
            self._seen.discard(signature)

    def __len__(self) -> int:
        return len(self._seen)
