"""bot.replay: a signature is accepted once while its timestamp is within Slack's window."""

from __future__ import annotations

from bot.replay import WINDOW_SECONDS, ReplayCache


def test_a_signature_is_accepted_once_and_forgotten_after_the_window() -> None:
    now = [1_000_000.0]
    cache = ReplayCache(clock=lambda: now[0])
    assert cache.first_time("v0=aa", timestamp=int(now[0])) is True
    assert cache.first_time("v0=aa", timestamp=int(now[0])) is False
    assert cache.first_time("v0=bb", timestamp=int(now[0])) is True
    now[0] += WINDOW_SECONDS - 1
    assert cache.first_time("v0=aa", timestamp=1_000_000) is False  # still in the window
    now[0] += 2
    cache.first_time("v0=cc", timestamp=int(now[0]))
    assert len(cache) == 1  # the old ones are gone: the verifier refuses them anyway
