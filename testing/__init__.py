"""Vigil's test tools, used by the tests, `vigil demo`, the privacy drill and the benchmarks.

- `standin`: a local Slack Web API and Socket Mode stand-in (records, rate-limits, fails).
- `simulator`: Slack's side of the conversation, correctly signed requests to the app
  (`view_state` builds the modal state values it sends).
- `harness`: the real server wired to the stand-in and the simulator on one database.
- `webclient`: a person using the web view over HTTP.
- `school`: Larkspur Primary, the small fictional school they all use.

Nothing in `bot/` imports this package: `vigil serve` never loads test tools.
"""
