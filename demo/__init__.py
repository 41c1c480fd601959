"""`vigil demo`: a fictional school on SQLite, a real server, the Slack stand-in.

`demo.walkthrough.run_demo` is the walkthrough; the school itself (Larkspur Primary) is
`testing.school`, shared with the tests, the privacy drill and the benchmarks.
"""
