"""The benchmark command still runs end to end (quick mode, SQLite) and reports everything."""

from __future__ import annotations

import json
import time
from pathlib import Path

import benchmarks
from benchmarks.report import SCENARIOS


async def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    options = benchmarks.Options.quick_run(database="sqlite", json_path=path, progress=False)

    started = time.perf_counter()
    report = await benchmarks.run(options)
    assert time.perf_counter() - started < 30

    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["checks"] == report["checks"]
    for key, *_ in SCENARIOS:
        figures = written["scenarios"][key]
        assert figures["count"] > 0, key
        assert figures["p50_ms"] > 0 and figures["p99_ms"] > 0, key
        assert figures["p99_ms"] >= figures["p50_ms"], key
    for floor in written["floors"].values():
        assert floor["p50_ms"] > 0 and floor["p99_ms"] > 0

    rate_limited = written["scenarios"]["alerts_30_rate_limited"]
    assert rate_limited["exactly_once"] and rate_limited["all_delivered"]
    assert rate_limited["rate_limited_answers"] > 0
    assert written["scenarios"]["alerts_30"]["exactly_once"]
    assert written["checks"]["all_passed"], written["checks"]
    assert written["memory"]["peak_rss_mb"] > 0
    assert "/concern → views.open sent" in benchmarks.format_table(written)
