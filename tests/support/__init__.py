"""What the tests share: database fixtures' workings, the fictional school's people,
signing in, filing a concern through Slack, the browser, and hypothesis strategies."""
