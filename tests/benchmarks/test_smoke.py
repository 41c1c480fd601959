"""The benchmark command still runs end to end (quick mode, SQLite) and reports everything:
Vigil and the floors in their own processes, every scenario of both groups."""

from __future__ import annotations

import json
from pathlib import Path

import benchmarks
from benchmarks.cli import parse_args
from benchmarks.options import ALL_SCENARIOS
from benchmarks.report import FLOORS, SCENARIOS
from benchmarks.soak import memory_growth


async def test_quick_benchmark_reports_every_scenario(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    options = benchmarks.Options.quick_run(
        database="sqlite", json_path=path, progress=False, scenarios=("slack", "web")
    )

    report = await benchmarks.run(options)

    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["checks"] == report["checks"]
    assert written["meta"]["servers"] == "own processes"
    assert written["meta"]["scenarios"] == ["slack", "web"]
    for key, *_ in SCENARIOS:
        figures = written["scenarios"][key]
        assert figures["count"] > 0, key
        assert figures["p50_ms"] > 0 and figures["p99_ms"] > 0, key
        assert figures["p99_ms"] >= figures["p50_ms"], key
        assert figures["verdict"] in ("PASS", "MISS"), key
    for key, *_ in FLOORS:
        floor = written["floors"][key]
        assert floor["count"] > 0 and floor["p50_ms"] > 0 and floor["p99_ms"] > 0, key
    for key in ("concern_views_open", "typeahead", "submission", "incident_page"):
        # Server CPU, read from /proc/<pid>/stat of the server process (a floor's can be
        # below the clock tick in quick mode).
        assert written["scenarios"][key]["cpu_ms_per_request"] > 0, key
        assert written["scenarios"][key]["ratio_p99"] > 0, key

    rate_limited = written["scenarios"]["alerts_30_rate_limited"]
    assert rate_limited["exactly_once"] and rate_limited["all_delivered"]
    assert rate_limited["rate_limited_answers"] > 0
    assert written["scenarios"]["alerts_30"]["exactly_once"]

    page = written["scenarios"]["incident_page"]
    assert page["all_ok"] and page["views_audited"] == page["views_served"]
    assert written["seeded"]["incidents"] == options.incidents
    assert written["seeded"]["alerts"] > options.incidents

    assert written["checks"]["all_passed"], written["checks"]
    assert written["memory"]["separate_process"] is True
    assert 0 < written["memory"]["rss_mb"] <= written["memory"]["peak_mb"]
    # The floors, and the database reference (the constant page after 1 read + 1 insert).
    assert set(written["memory"]["floors"]) == {"bolt", "web", "web-db"}
    assert any("The reference page that only reads one row" in note for note in written["notes"])
    table = benchmarks.format_table(written)
    assert "/concern → views.open sent" in table and "incident page" in table


async def test_quick_referrals_scan_reports_the_overdue_scan(tmp_path: Path) -> None:
    """`--scenarios referrals --quick` (SQLite): the overdue scan beside count(*), its plan,
    a rolled-back batch, a committed pass and the re-check; no server."""
    path = tmp_path / "referrals.json"
    options = benchmarks.Options.quick_run(
        database="sqlite", scenarios=("referrals",), json_path=path, progress=False
    )

    report = await benchmarks.run(options)

    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["checks"] == report["checks"] and written["checks"]["all_passed"]
    assert written["meta"]["scenarios"] == ["referrals"]
    assert written["meta"]["referrals"] == 20_000
    referrals = written["referrals"]
    assert referrals["seeded"]["referrals"] == 20_000
    assert 0 < referrals["seeded"]["eligible"] < referrals["seeded"]["overdue"]
    assert "ix_referrals_awaiting_due" in referrals["plans"]["overdue_scan"]
    assert referrals["full_pass"]["nudged"] == referrals["seeded"]["eligible"]
    scan = written["scenarios"]["overdue_scan"]
    assert scan["count"] == options.referral_runs and scan["p99_ms"] >= scan["p50_ms"] > 0
    assert scan["rows_returned"] == {"200": options.referral_runs}
    assert scan["ratio_p50"] > 0 and scan["verdict"] in ("PASS", "MISS")
    assert written["floors"]["referrals_count"]["p50_ms"] > 0
    assert written["scenarios"]["overdue_batch"]["nudged_per_batch"] == {"200": 5}
    assert written["scenarios"]["overdue_scan_recheck"]["rows_returned"] == {"0": 10}
    assert "slack" not in written["meta"]["scenarios"] and "peak_mb" not in written["memory"]
    table = benchmarks.format_table(written)
    assert "overdue scan: claim SELECT (20,000)" in table and "QUERY PLAN" in table


async def test_quick_reports_group_measures_chronology_and_term_report(tmp_path: Path) -> None:
    """`--scenarios reports --quick` (SQLite): a skewed history seeded, `vigil serve`, one
    key-holder signed in, chronology and term report pages beside the floor, their plans."""
    from benchmarks.report import REPORTS_FLOORS, REPORTS_SCENARIOS

    path = tmp_path / "reports.json"
    options = benchmarks.Options.quick_run(
        database="sqlite", scenarios=("reports",), json_path=path, progress=False
    )

    report = await benchmarks.run(options)

    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["checks"] == report["checks"] and written["checks"]["all_passed"]
    assert written["meta"]["scenarios"] == ["reports"]
    for key, *_ in REPORTS_SCENARIOS:
        figures = written["scenarios"][key]
        assert figures["count"] > 0 and figures["p99_ms"] >= figures["p50_ms"] > 0, key
        assert figures["all_ok"] and figures["verdict"] in ("PASS", "MISS"), key
    for key, *_ in REPORTS_FLOORS:
        assert written["floors"][key]["p50_ms"] > 0
    assert written["scenarios"]["chronology_page"]["cpu_ms_per_request"] > 0
    detail = written["reports"]
    assert detail["indicative"] and detail["seeded"]["incidents"] == options.report_incidents
    assert detail["seeded"]["referrals"] > 0
    busiest = detail["seeded"]["busiest"]
    assert busiest[0]["incidents"] >= 10 * options.report_incidents / options.report_pupils
    assert detail["views_audited"] == detail["pages_served"]
    plans = detail["plans"]
    # Nine on main (3: context, its history, moves), and the files, body maps, paper records.
    assert len(plans["chronology"]) == 12 and len(plans) == 3
    assert "ix_incident_pupils_pupil_id" in plans["chronology"][1]["plan"]
    assert detail["seq_scans"] == []
    table = benchmarks.format_table(written)
    assert "chronology (3k, 4 users)" in table and "Plans: term_report" in table


def test_all_means_every_group_but_the_soak_and_the_default_covers_design_10() -> None:
    assert parse_args(["--scenarios", "all"]).scenarios == ALL_SCENARIOS
    assert parse_args(["--scenarios", "soak,all"]).scenarios == ("soak", *ALL_SCENARIOS)
    assert set(parse_args([]).scenarios) == {"slack", "web", "referrals"}
    assert parse_args(["--scenarios", "soak", "--soak-think", "0.5-2"]).soak_think == (0.5, 2.0)


def test_memory_growth_ignores_the_warm_up_and_sees_a_leak() -> None:
    flat = [(t * 5.0, 120.0 + (8.0 if t < 10 else 0.0) * t / 10) for t in range(120)]
    settled = memory_growth(flat)
    assert settled["growth_mb"] == 0 and settled["slope_mb_per_min"] == 0
    leaking = [(t * 5.0, 120.0 + 0.05 * t) for t in range(120)]  # 0.6 MB a minute
    grown = memory_growth(leaking)
    assert grown["growth_mb"] > 3 and 0.55 < grown["slope_mb_per_min"] < 0.65


async def test_quick_soak_drives_every_action_and_checks_memory(tmp_path: Path) -> None:
    path = tmp_path / "soak.json"
    options = benchmarks.Options.quick_run(
        database="sqlite",
        json_path=path,
        progress=False,
        scenarios=("soak",),
        soak_minutes=0.25,
        soak_staff=6,
        soak_think=(0.2, 1.0),
    )
    report = await benchmarks.run(options)
    soak = json.loads(path.read_text(encoding="utf-8"))["soak"]
    assert soak["error_count"] == 0, soak["errors"]
    assert {"report", "search", "read_web"} <= set(soak["actions"]), soak["counts"]
    assert soak["concerns_filed"] == soak["counts"]["report"] > 0
    assert len(soak["memory_samples"]) >= 20
    assert soak["checks"]["soak_dms_exactly_once"] and soak["checks"]["soak_outbox_drained"]
    assert "Soak: 6 staff" in benchmarks.format_table(report)


async def test_quick_files_group_uploads_and_downloads_beside_the_floor(tmp_path: Path) -> None:
    """`--scenarios files --quick`: a 20 MB file through `vigil serve` (files in the
    database, then in an S3 bucket on moto) and through a plain aiohttp streaming server,
    intact both ways, with the servers' memory."""
    path = tmp_path / "files.json"
    options = benchmarks.Options.quick_run(
        database="sqlite", scenarios=("files",), json_path=path, progress=False
    )
    report = await benchmarks.run(options)
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["checks"] == report["checks"] and written["checks"]["all_passed"]
    for key in ("file_upload", "file_download", "s3_file_upload", "s3_file_download"):
        figures = written["scenarios"][key]
        assert figures["count"] == 1 and figures["p50_ms"] > 0 and figures["floor_p50_ms"] > 0
    files = written["files"]
    assert files["file_mb"] == 20 and files["vigil_memory"]["after"]["peak_mb"] > 0
    # Streamed: the server's peak does not grow by the file's size.
    assert files["vigil_peak_growth_mb"] < 30  # ~16 MB whatever the size; a held file adds 20
    # With an S3 store: parts of 8 MiB in flight (~30 MB whatever the size; 60 MB: the same).
    assert written["checks"]["files_s3_round_trip_intact"]
    assert files["vigil_s3_peak_growth_mb"] < 45
    assert "attachment upload (20 MB)" in benchmarks.format_table(written)


async def test_quick_trust_day_runs_open_loop_phases_beside_the_floors(tmp_path: Path) -> None:
    """`--scenarios trustday --quick` (SQLite, one run): each of 5 schools installs Vigil in
    its own workspace through the OAuth flow; Poisson arrivals at 1× and 2× the trust's peak
    against `vigil serve`, from every school, the same against the floors; every request
    answered, the outbox drained, no DM twice and none with another school's token; the
    2-worker phases are skipped on SQLite, saying so."""
    from benchmarks.trustday import model

    path = tmp_path / "trustday.json"
    options = benchmarks.Options.quick_run(
        database="sqlite",
        json_path=path,
        progress=False,
        scenarios=("trustday",),
        trust_minutes=0.08,
        trust_actions=50.0,  # 2.5 × the quick rate: enough arrivals in 4.8 seconds
    )
    assert (options.trust_schools, options.trust_staff) == (5, 100)
    report = await benchmarks.run(options)
    trust = json.loads(path.read_text(encoding="utf-8"))["trustday"]
    assert trust["model"] == model(options) and trust["model"]["actions_per_hour"] == 25_000
    assert trust["workspaces_served"] == 5
    assert set(trust["phases"]) == {"vigil_w1_x1", "vigil_w1_x2"}
    assert trust["skipped"] == ["--workers 2 (SQLite serves one worker only)"]
    for phase in trust["phases"].values():
        assert phase["error_count"] == 0 or all(
            "mark as read" in error for error in phase["errors"]
        ), phase["errors"]
        assert phase["outbox_still_pending"] == 0
        assert phase["concerns_filed"] == phase["counts"].get("report", 0)
        assert phase["requests"] > 0 and phase["cpu_ms_per_request"] > 0
        for entry in phase["paths"].values():
            assert entry["p99_ms"] >= entry["p50_ms"] > 0
    assert trust["phases"]["vigil_w1_x2"]["requests"] > trust["phases"]["vigil_w1_x1"]["requests"]
    # Several workspaces acted; every DM went with its recipient's own school's token.
    assert trust["phases"]["vigil_w1_x2"]["schools_acting"] >= 3
    assert trust["dms_by_token"]["own"] > 0 and trust["dms_by_token"]["other"] == 0
    assert trust["checks"]["trustday_no_cross_school_dm"]
    assert set(trust["floors"]) == {"floor_x1", "floor_x2"}
    assert trust["floors"]["floor_x1"]["paths"]["incident_page"]["count"] > 0
    assert trust["checks"]["trustday_dms_exactly_once"]
    table = benchmarks.format_table(report)
    assert "Trust day (open loop): 5 schools (each its own workspace) × 100 staff" in table
    assert "vigil serve --workers 1, 2× peak" in table
    assert "0 with another school's (must be 0)" in table
