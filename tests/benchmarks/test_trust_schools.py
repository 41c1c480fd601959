"""The trust day's schools and its isolation check (`benchmarks.trust_schools`)."""

from __future__ import annotations

from benchmarks.trust_schools import cross_school_calls, make_schools
from testing.standin import SlackStandIn
from testing.standin.calls import RecordedCall
from testing.standin.install import Installation


def test_each_school_has_its_own_workspace_people_and_keyholders() -> None:
    schools = make_schools(3, staff=12, pupils=5)
    assert [s.team_id for s in schools] == ["T0TRUST001", "T0TRUST002", "T0TRUST003"]
    ids = [p.slack_user_id for s in schools for p in s.staff]
    emails = [p.email for s in schools for p in s.staff]
    assert len(set(ids)) == len(ids) == 36 and len(set(emails)) == 36
    for school in schools:
        assert len(school.keyholders) == 4 and len(school.reporters) == 3
        assert all(u.startswith(f"U{school.index:03d}") for u in school.reporters)


def test_a_dm_sent_with_another_schools_token_is_counted_as_cross_school() -> None:
    standin = SlackStandIn()
    schools = make_schools(2, staff=9, pupils=1)
    tokens = {}
    for school in schools:
        team = standin.add_team(school.team_id, school.name)
        for person in school.staff:
            standin.add_user(
                person.slack_user_id, email=person.email, name=person.name, team_id=team.team_id
            )
        tokens[school.team_id] = f"xoxb-{school.team_id}"
        standin.installations[tokens[school.team_id]] = Installation(
            tokens[school.team_id], team, False, school.keyholders[0], "chat:write"
        )

    def dm(token: str, channel: str) -> None:
        standin.calls.append(
            RecordedCall(
                "chat.postMessage", {"channel": channel}, token, 200, {"ok": True, "ts": "1.0"}
            )
        )

    first, second = schools
    dm(tokens[first.team_id], first.keyholders[0])  # by user id
    dm(tokens[first.team_id], standin.dm_channel_for(first.keyholders[1]))  # by DM channel
    dm(tokens[second.team_id], second.keyholders[0])
    assert cross_school_calls(standin) == {"own": 3, "other": 0, "unknown": 0}
    dm(tokens[second.team_id], first.keyholders[2])  # Vigil erring: school 2's token
    dm("xoxb-nobody", first.keyholders[0])
    assert cross_school_calls(standin) == {"own": 3, "other": 1, "unknown": 1}
    assert cross_school_calls(standin, since=4) == {"own": 0, "other": 0, "unknown": 1}
