"""The printed table: a row per scenario beside its floor and target, then each group's
details (the alert runs, the overdue scan's data and plans, the reports' history and
plans, the soak)."""

from __future__ import annotations

from typing import Any

from benchmarks.files_paths import files_lines
from benchmarks.soak import GROWTH_LIMIT_MB, REQUESTS
from benchmarks.trustday import trustday_lines


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    groups = meta["scenarios"]
    parts = [f"Vigil benchmark · {meta['database']} · servers in {meta['servers']}"]
    if not set(groups) & {"slack", "web", "reports", "soak", "files", "trustday"}:
        parts[0] = f"Vigil benchmark · {meta['database']} · no server (database only)"
    if "slack" in groups:
        parts.append(
            f"Slack: {meta['requests']} requests/scenario, {meta['concurrency']} users, "
            f"{meta['pupils']} pupils, warm-up {meta['warmup']}"
        )
    if "web" in groups:
        parts.append(
            f"web: {meta['incidents']} incidents, {meta['web_requests']} pages, "
            f"{meta['web_concurrency']} users, warm-up {meta['web_warmup']}"
        )
    if "reports" in groups:
        parts.append(
            f"reports: {meta['report_incidents']:,} incidents, {meta['report_pupils']:,} pupils, "
            f"{meta['report_requests']} pages/row, {meta['report_concurrency']} users"
        )
    if "referrals" in groups:
        parts.append(f"referrals: {meta['referrals']:,} stored, {meta['referral_runs']} runs")
    parts.append(
        f"{meta['cpus']} CPUs · Python {meta['python']} · load average "
        f"{meta['load_average_start']} → {meta['load_average_end']} · {meta['duration_s']} s"
    )
    lines = [
        " · ".join(parts[:2]),
        " · ".join(parts[2:]),
        "Times in ms; cpu/req = server process CPU ms per request, fl. = floor, × = Vigil / floor.",
        "",
    ]
    header = (
        f"{'scenario':<40} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"{'req/s':>7} {'cpu/req':>7} {'fl.p50':>7} {'fl.p99':>7} {'×p50':>7} {'×p99':>7}  "
        f"{'target (DESIGN §10)':<29} verdict"
    )
    lines += [header, "-" * len(header)]
    for key, entry in report["scenarios"].items():
        if key == "alerts_30_rate_limited":
            runs = entry["runs"]
            ok = sum(r["recipients_with_one_alert"] for r in runs)
            detail = (
                f"{len(runs)} run(s), {entry['rate_limited_answers']} 429s, "
                f"{ok}/{30 * len(runs)} alerted once, dup {sum(r['duplicates'] for r in runs)}"
            )
            lines.append(
                f"{entry['label']:<40} {entry['count']:>5} {_ms(entry['p50_ms']):>7} "
                f"{_ms(entry['p95_ms']):>7} {_ms(entry['p99_ms']):>7} {_ms(entry['max_ms']):>7} "
                f"{'':>7} {'':>7} {detail:<41}  {entry['target']:<29} {entry['verdict']}"
            )
            continue
        lines.append(
            f"{entry['label']:<40} {entry['count']:>5} {_ms(entry['p50_ms']):>7} "
            f"{_ms(entry['p95_ms']):>7} {_ms(entry['p99_ms']):>7} {_ms(entry['max_ms']):>7} "
            f"{_ms(entry['throughput_rps']):>7} {_ms(entry.get('cpu_ms_per_request')):>7} "
            f"{_ms(entry.get('floor_p50_ms')):>7} "
            f"{_ms(entry.get('floor_p99_ms')):>7} {_x(entry.get('ratio_p50')):>7} "
            f"{_x(entry.get('ratio_p99')):>7}  {entry['target']:<29} {entry['verdict']}"
        )
    memory = report["memory"]
    if "peak_mb" in memory:
        lines.append(
            f"{'server resident memory (peak, MB)':<40} {'':>5} {'':>7} {'':>7} {'':>7} "
            f"{memory['peak_mb']:>7.1f} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7}  "
            f"{'< 200 MB':<29} {memory['verdict']}"
        )
    if report["floors"]:
        lines += [
            "",
            "Floors (bare frameworks, same machinery, same load generator):"
            if set(groups) & {"slack", "web", "reports", "files"}
            else "Reference (same table, same connection, alternating with the scan):",
        ]
    for floor in report["floors"].values():
        lines.append(
            f"  {floor['label']:<48} n {floor['count']:>4}  p50 {_ms(floor['p50_ms']):>6}  "
            f"p95 {_ms(floor['p95_ms']):>6}  p99 {_ms(floor['p99_ms']):>6}  "
            f"max {_ms(floor['max_ms']):>6}  {_ms(floor['throughput_rps']):>6} req/s  "
            f"cpu {_ms(floor['cpu_ms_per_request']):>5} ms/req"
        )
    scenarios = report["scenarios"]
    if "alerts_30" in scenarios:
        lines += ["", "Alert runs (ms from sending the submission to the last of 31 deliveries):"]
        for key in ("alerts_30", "alerts_30_rate_limited"):
            for run in scenarios[key]["runs"]:
                lines.append(
                    f"  {'429s ' if key.endswith('limited') else 'plain'} #{run['incident']:<6} "
                    f"all delivered {_ms(run['all_delivered_ms']):>8}  "
                    f"30 alerts {_ms(run['alerts_delivered_ms']):>8}  "
                    f"submission answered {_ms(run['submission_http_ms']):>6}  "
                    f"429s {run['rate_limited_answers']:>3}  delivered {run['delivered']}/31  "
                    f"exactly once: {'yes' if run['exactly_once'] else 'NO'}"
                )
    header_lines = [
        "",
        (
            "Load generator + stand-in (benchmark process)"
            if set(groups) & {"slack", "web", "reports"}
            else "Benchmark process (Vigil's code and the database driver; SQLite too)"
        )
        + ": CPU ms per request and garbage collections during each measured phase:",
    ]
    rows = [
        (
            scenarios[key.removesuffix("_1_user")]["label"] + ", one user"
            if key.endswith("_1_user") and key.removesuffix("_1_user") in scenarios
            else entry["label"],
            entry,
        )
        for key, entry in scenarios.items()
        if entry.get("gc") and key != "concern_command_http"
    ] + [
        (floor["label"], floor)
        for key, floor in report["floors"].items()
        if floor.get("gc") and key != "floor_command_http"
    ]
    if rows:
        lines += header_lines
    for label, entry in rows:
        stats = entry["gc"]
        lines.append(
            f"  {label:<48} cpu {_ms(entry.get('bench_cpu_ms_per_request')):>5} ms/req, "
            f"{stats['collections']:>4} collections, {stats['gen2']:>2} full, "
            f"longest {stats['max_ms']:>6.1f} ms"
        )
    lines.append("")
    if "typeahead" in scenarios:
        typeahead = scenarios["typeahead"]
        backlog = report["outbox_backlog"]
        submission = scenarios["submission"]
        lines += [
            f"Typeahead answers: max {typeahead['max_options']} options, mean "
            f"{typeahead['mean_options']}, {typeahead['non_empty_answers']}/"
            f"{typeahead['count']} non-empty.",
            f"Submissions filed: {submission['incidents_filed']}/"
            f"{submission['incidents_expected']}; the outbox backlog they left "
            f"({backlog['messages_drained']} messages) drained in "
            f"{backlog['drained_after_s']} s ({backlog['messages_per_s']} messages/s, "
            f"{backlog['cpu_ms_per_message']} ms server CPU each).",
        ]
    if "incident_page" in scenarios:
        page = scenarios["incident_page"]
        seeded = report["seeded"] or {}
        lines += [
            f"Seeded before start: {seeded.get('incidents')} incidents, "
            f"{seeded.get('alerts')} alerts, {seeded.get('read_receipts')} read receipts, "
            f"{seeded.get('actions')} actions in {seeded.get('seconds')} s.",
            f"Incident pages: {page['sessions']} signed-in key-holders shared by "
            f"{page['concurrency']} clients, mean page {page['mean_page_bytes']} bytes; "
            f"views audited {page['views_audited']}/{page['views_served']}.",
        ]
    floor_memory = memory.get("floors") or {}
    if "peak_mb" in memory:
        lines.append(
            f"Server memory (MB): peak {memory['peak_mb']}, now {memory['rss_mb']}; "
            + ", ".join(
                f"{k.removeprefix('after_').removesuffix('_mb')} {v}"
                for k, v in memory.items()
                if k.startswith("after_")
            )
            + (
                "; floors' peaks: "
                + ", ".join(f"{kind} {m['peak_mb']}" for kind, m in floor_memory.items())
                if floor_memory
                else ""
            )
        )
    if report.get("referrals"):
        lines += [*referrals_lines(report), ""]
    if report.get("reports"):
        lines += [*reports_lines(report), ""]
    if report.get("soak"):
        lines += [*soak_lines(report["soak"]), ""]
    if report.get("trustday"):
        lines += [*trustday_lines(report["trustday"]), ""]
    if report.get("files"):
        lines += [*files_lines(report), ""]
    lines.append(
        "Checks: "
        + ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in report["checks"].items())
    )
    for key, messages in report["errors"].items():
        lines.append(f"Errors in {key}: " + " | ".join(messages[:5]))
    lines += ["", *(f"Note: {note}" for note in report["notes"])]
    return "\n".join(lines)


def referrals_lines(report: dict[str, Any]) -> list[str]:
    """The referrals section of the printed table: the data, the figures, the plans."""
    detail = report.get("referrals")
    if not detail:
        return []
    seeded = detail["seeded"]
    scenarios, floors = report["scenarios"], report["floors"]
    scan, count = scenarios["overdue_scan"], floors["referrals_count"]
    batch, recheck_ = scenarios["overdue_batch"], scenarios["overdue_scan_recheck"]
    full = detail["full_pass"]
    kinds = seeded["overdue_by_kind"]
    size_note = (
        ""
        if seeded["referrals"] == 1_000_000
        else f" (DESIGN §10 states 1,000,000: {seeded['referrals']:,} here is indicative)"
    )
    lines = [
        "",
        f"Overdue referrals ({detail['database']}): {seeded['referrals']:,} referrals over "
        f"{seeded['incidents']:,} incidents{size_note}, seeded in {seeded['seconds']} s "
        f"({seeded['method']}).",
        f"  {seeded['responded']:,} responded, {seeded['closed']:,} closed, "
        f"{seeded['awaiting']:,} awaiting: {seeded['due_later']:,} due later, "
        f"{seeded['overdue']:,} overdue ({kinds['nudged_today']:,} nudged today, "
        f"{kinds['snoozed']:,} snoozed, {kinds['snooze_expired']:,} snooze over, "
        f"{kinds['nudged_before']:,} nudged before, {kinds['new']:,} never) → "
        f"{seeded['eligible']:,} to nudge ({seeded['escalated']:,} escalated); "
        f"now = {detail['now_local']}.",
        f"  Overdue scan (claim SELECT, batch {detail['batch_size']}): p50 "
        f"{_ms(scan['p50_ms'])} ms, p99 {_ms(scan['p99_ms'])} ms vs SELECT count(*) p50 "
        f"{_ms(count['p50_ms'])} ms, p99 {_ms(count['p99_ms'])} ms, alternating, "
        f"{scan['count']} runs each: scan/count {scan.get('ratio_p50')} (p50), "
        f"{scan.get('ratio_p99')} (p99). DESIGN §10 < {detail['target_ms']:.0f} ms: "
        f"{detail['verdict']}.",
        f"  Batch of {detail['batch_size']} (nudge_overdue, rolled back, no COMMIT): p50 "
        f"{_ms(batch['p50_ms'])} ms, p99 {_ms(batch['p99_ms'])} ms; inside it the claim p50 "
        f"{_ms(batch['claim_in_batch']['p50_ms'])} ms, all SQL p50 "
        f"{_ms(batch['database_time']['p50_ms'])} ms, statements "
        f"{batch['statements_per_batch']}, benchmark-process CPU "
        f"{_ms(batch.get('bench_cpu_ms_per_request'))} ms/batch.",
        f"  Full pass (OverdueReferrals.run, committed): {full['nudged']:,} nudged in "
        f"{full['batches']} batches, {full['seconds']} s; batch ms {full['batch_ms']}; "
        f"claim ms per batch {full['claim_ms_per_batch']}.",
        f"  Re-check after the pass (nothing left today): p50 {_ms(recheck_['p50_ms'])} ms, "
        f"p99 {_ms(recheck_['p99_ms'])} ms, rows {recheck_['rows_returned']}.",
        "",
        "Plan of the overdue scan"
        + (
            " (EXPLAIN (ANALYZE, BUFFERS), custom plan as asyncpg's prepared statement gets it):"
            if detail["database"] == "postgresql"
            else " (EXPLAIN QUERY PLAN):"
        ),
        *(f"  {line}" for line in (detail["plans"]["overdue_scan"] or "").splitlines()),
    ]
    generic = detail["plans"].get("overdue_scan_generic")
    if generic:
        lines += [
            "Generic plan (if the prepared statement switched: status = $1 unknown):",
            *(f"  {line}" for line in generic.splitlines()),
        ]
    lines += [
        "Plan of the re-check after the pass:",
        *(f"  {line}" for line in (detail["plans"]["overdue_scan_recheck"] or "").splitlines()),
        "Plan of SELECT count(*) FROM referrals:",
        *(f"  {line}" for line in (detail["plans"]["count"] or "").splitlines()),
    ]
    return lines


def reports_lines(report: dict[str, Any]) -> list[str]:
    """Seeded history, the periods, and every plan (for the table)."""
    detail = report["reports"]
    seeded = detail["seeded"]
    busiest = seeded["busiest"]
    lines = [
        "",
        f"Reports history ({detail['backend']}"
        + (", indicative sizes" if detail["indicative"] else "")
        + f"): {seeded['pupils']:,} pupils ({seeded['pupils_named']:,} named on a concern), "
        f"{seeded['incidents']:,} incidents over two years, {seeded['alerts']:,} alerts, "
        f"{seeded['read_receipts']:,} receipts, {seeded['actions']:,} actions, "
        f"{seeded['referrals']:,} referrals, seeded in {seeded['seconds']} s; busiest pupils: "
        + ", ".join(str(b["incidents"]) for b in busiest[:10])
        + " incidents.",
        "Periods: "
        + "; ".join(
            f"{p['name']} ({p['key']}): {detail['periods']['incidents'][p['key']]:,} incidents"
            for p in (detail["periods"]["this_term"], detail["periods"]["last_term"])
        )
        + f". Views audited {detail['views_audited']}/{detail['pages_served']}.",
        "Sequential scans of big tables in these plans: "
        + (", ".join(detail["seq_scans"]) if detail["seq_scans"] else "none"),
    ]
    for key, group in detail["plans"].items():
        lines += ["", f"Plans: {key}"]
        for entry in group:
            took = entry["execution_ms"]
            lines.append(
                f"-- {entry['label']}"
                + (f" (execution {took:.2f} ms)" if took is not None else "")
                + (f" seq scans: {', '.join(entry['seq_scans'])}" if entry["seq_scans"] else "")
            )
            lines += [f"   {line}" for line in entry["plan"].splitlines()]
    return lines


def soak_lines(soak: dict[str, Any]) -> list[str]:
    """The soak's lines for the printed table."""
    memory = soak["memory"]
    lines = [
        "",
        f"Soak: {soak['staff']} staff for {soak['minutes']:g} min (think "
        f"{soak['think_s'][0]:g}-{soak['think_s'][1]:g} s): {soak['actions_per_s']} actions/s, "
        f"server CPU {soak['server_cpu_share'] * 100:.0f}% of one core, "
        f"{soak['concerns_filed']} concerns filed (on top of "
        f"{soak.get('concerns_stored_at_start', 0):,} stored), {soak['error_count']} errors",
        f"  {'action':<12} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}",
    ]
    for name, entry in soak["actions"].items():
        lines.append(
            f"  {name:<12} {entry['count']:>6} {entry['p50_ms']:>7.1f} {entry['p95_ms']:>7.1f} "
            f"{entry['p99_ms']:>7.1f} {entry['max_ms']:>7.1f}"
        )
    if soak.get("requests"):
        lines.append(f"  {'request':<30} {'n':>6} {'p50':>7} {'p95':>7} {'p99':>7}  target")
        for name, entry in soak["requests"].items():
            label, target = REQUESTS[name]
            lines.append(
                f"  {label:<30} {entry['count']:>6} {entry['p50_ms']:>7.1f} "
                f"{entry['p95_ms']:>7.1f} {entry['p99_ms']:>7.1f}  {target}"
            )
    samples = soak["memory_samples"]
    if memory.get("growth_mb") is not None:
        lines.append(
            f"  memory (RSS, MB): start {samples[0][1]}, end {samples[-1][1]}, peak "
            f"{max(mb for _, mb in samples)}; after warm-up first fifth {memory['first_fifth_mb']}"
            f" → last fifth {memory['last_fifth_mb']} (growth {memory['growth_mb']:+} MB, "
            f"slope {memory['slope_mb_per_min']:+} MB/min; limit {GROWTH_LIMIT_MB:g} MB)"
        )
    lines.append(
        f"  outbox drained {soak['outbox_drained_s']} s after the load stopped; "
        f"DMs exactly once: {'yes' if soak['dms_exactly_once'] else 'NO'}"
    )
    for error in soak["errors"][:5]:
        lines.append(f"  error: {error}")
    verdict = "PASS" if all(soak["checks"].values()) else "FAIL"
    lines.append(f"  verdict: {verdict} ({', '.join(k for k, v in soak['checks'].items() if v)})")
    return lines
