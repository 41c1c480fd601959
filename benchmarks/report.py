"""The report: figures per scenario, ratios to the Bolt floor, DESIGN §10 targets, a table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.stats import ratio, summarize

# key: (label, floor key, statistic the target applies to, target, target text)
SCENARIOS: tuple[tuple[str, str, str | None, str, float, str], ...] = (
    (
        "concern_views_open",
        "/concern → views.open sent",
        "floor_command_views_open",
        "p99_ms",
        50.0,
        "p99 < 50 ms @ 20 users",
    ),
    (
        "concern_command_http",
        "/concern → HTTP answered",
        "floor_command_http",
        "p99_ms",
        3000.0,
        "ack < 3 s (Slack)",
    ),
    (
        "typeahead",
        "pupil typeahead ({pupils} pupils)",
        "floor_options",
        "p99_ms",
        30.0,
        "p99 < 30 ms, 2,000 pupils",
    ),
    (
        "typeahead_1_user",
        "  … one user at a time",
        None,
        "p99_ms",
        30.0,
        "p99 < 30 ms (no queueing)",
    ),
    (
        "submission",
        "modal submission → answered",
        "floor_submission",
        "p99_ms",
        100.0,
        "p99 < 100 ms",
    ),
    (
        "submission_1_user",
        "  … one user at a time",
        None,
        "p99_ms",
        100.0,
        "p99 < 100 ms (no queueing)",
    ),
    (
        "alerts_30",
        "submission → all 30 alerts delivered",
        None,
        "max_ms",
        1000.0,
        "< 1 s",
    ),
    (
        "alerts_30_rate_limited",
        "  … under Slack-style 429s",
        None,
        "exactly_once",
        0.0,
        "all delivered, none twice",
    ),
)
FLOORS = (
    ("floor_command_views_open", "floor: slash command → views.open (tiny view)"),
    ("floor_command_http", "floor: slash command → HTTP answered"),
    ("floor_options", "floor: block_suggestion → constant options"),
    ("floor_submission", "floor: view_submission → ack"),
)
MEMORY_TARGET_MB = 200.0


def _cpu_per_request(measured: Any) -> float | None:
    """Process CPU (every thread: server, stand-in, simulator, worker) per measured request."""
    if not measured.latencies or not measured.cpu_s:
        return None
    return round(measured.cpu_s * 1000 / len(measured.latencies), 2)


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "MISS")


def _alert_summary(runs: Sequence[dict[str, Any]], *, wall_hint: str) -> dict[str, Any]:
    times = [r["all_delivered_ms"] / 1000 for r in runs if r["all_delivered_ms"] is not None]
    summary = summarize(times)
    summary["throughput_rps"] = None
    summary["runs_ms"] = [r["all_delivered_ms"] for r in runs]
    summary["runs"] = list(runs)
    summary["all_delivered"] = bool(runs) and all(r["delivered"] == r["alerts"] + 1 for r in runs)
    summary["exactly_once"] = bool(runs) and all(r["exactly_once"] for r in runs)
    summary["rate_limited_answers"] = sum(r["rate_limited_answers"] for r in runs)
    summary["note"] = wall_hint
    return summary


def build_report(raw: dict[str, Any], meta: dict[str, Any]) -> dict[str, Any]:
    """Turn raw samples into the JSON report (see README-style notes in `notes`)."""
    scenarios: dict[str, Any] = {}
    floors: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for key, _label in FLOORS:
        measured = raw[key]
        floors[key] = summarize(measured.latencies, wall_s=measured.wall_s)
        floors[key]["gc"] = measured.gc
        floors[key]["cpu_ms_per_request"] = _cpu_per_request(measured)
        if measured.errors:
            errors[key] = measured.errors

    conditions_match = meta["concurrency"] == 20 and meta["pupils"] == 2000
    for key, label, floor_key, statistic, target, target_text in SCENARIOS:
        if key.startswith("alerts_30"):
            hint = (
                "one concern alerting 30 staff (key-holders + also_alert) and the "
                "reporter's receipt; time from sending the view_submission to the stand-in "
                "receiving the last of the 31 successful chat.postMessage calls"
            )
            entry = _alert_summary(raw[key], wall_hint=hint)
        else:
            measured = raw[key]
            entry = summarize(measured.latencies, wall_s=measured.wall_s)
            entry.update(measured.extra)
            entry["gc"] = measured.gc
            entry["cpu_ms_per_request"] = _cpu_per_request(measured)
            if measured.errors:
                errors[key] = measured.errors
        entry["label"] = label.format(pupils=meta["pupils"])
        entry["target"] = target_text
        if statistic == "exactly_once":
            entry["verdict"] = _verdict(entry["exactly_once"] and entry["all_delivered"])
        else:
            value = entry.get(statistic)
            entry["verdict"] = _verdict(None if value is None else value < target)
            entry["target_ms"] = target
            entry["target_statistic"] = statistic.removesuffix("_ms")
        if floor_key is not None:
            floor = floors[floor_key]
            entry["floor"] = floor_key
            entry["floor_p50_ms"] = floor["p50_ms"]
            entry["floor_p99_ms"] = floor["p99_ms"]
            entry["ratio_p50"] = ratio(entry["p50_ms"], floor["p50_ms"])
            entry["ratio_p99"] = ratio(entry["p99_ms"], floor["p99_ms"])
        scenarios[key] = entry

    typeahead = scenarios["typeahead"]
    submission = scenarios["submission"]
    memory = dict(raw["memory"])
    memory["target_mb"] = MEMORY_TARGET_MB
    memory["verdict"] = _verdict(memory["peak_rss_mb"] < MEMORY_TARGET_MB)
    checks = {
        "no_request_errors": not errors,
        "typeahead_at_most_100_options": bool(typeahead.get("all_within_100_options")),
        "typeahead_some_non_empty": typeahead.get("non_empty_answers", 0) > 0,
        "every_submission_filed": submission.get("incidents_filed")
        == submission.get("incidents_expected"),
        "alerts_all_delivered": scenarios["alerts_30"]["all_delivered"],
        "alerts_exactly_once": scenarios["alerts_30"]["exactly_once"],
        "rate_limited_all_delivered": scenarios["alerts_30_rate_limited"]["all_delivered"],
        "rate_limited_exactly_once": scenarios["alerts_30_rate_limited"]["exactly_once"],
        "rate_limits_were_hit": scenarios["alerts_30_rate_limited"]["rate_limited_answers"] > 0
        or not scenarios["alerts_30_rate_limited"]["runs"],
        "outbox_drained": raw["outbox_backlog"]["still_pending"] == 0,
    }
    checks["all_passed"] = all(checks.values())
    return {
        "meta": meta,
        "scenarios": scenarios,
        "floors": floors,
        "memory": memory,
        "outbox_backlog": raw["outbox_backlog"],
        "checks": checks,
        "errors": errors,
        "notes": [
            "Latencies are in milliseconds, measured with time.perf_counter() around the "
            "HTTP request; '→ views.open sent' and the alert times use the stand-in's "
            "RecordedCall.at (time.monotonic() at receipt) against time.monotonic() taken "
            "when the request was sent.",
            "Load generator, Slack stand-in, Vigil and the Bolt floor share one process and "
            "one event loop, so every figure includes the simulator's and the stand-in's own "
            "CPU time (and, at C users, queueing behind the other C-1 requests); the floor "
            "ratios cancel that out. cpu/req is less sensitive to other load on the machine "
            "than the latencies (see the load average).",
            "Resident memory is the whole process (server, stand-in, simulator, floor): "
            "an upper bound for the server alone.",
            "Targets are DESIGN §10's; they are stated for 20 concurrent users and 2,000 "
            "pupils" + ("." if conditions_match else " (this run used other numbers: indicative)."),
            "Not measured here: the web view's incident page and the overdue scan "
            "(DESIGN §10 rows 5-6).",
        ],
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(report: dict[str, Any]) -> str:
    meta = report["meta"]
    lines = [
        f"Vigil benchmark · {meta['database']} · {meta['requests']} requests/scenario · "
        f"{meta['concurrency']} concurrent users · {meta['pupils']} pupils · "
        f"warm-up {meta['warmup']} · {meta['cpus']} CPUs · Python {meta['python']} · "
        f"load average {meta['load_average_start']} → {meta['load_average_end']}"
        + (" · gc.freeze() experiment" if meta.get("gc_freeze") else ""),
        "Times in ms; cpu/req = process CPU ms per request (all threads), fl. = Bolt floor, "
        "× = Vigil / floor.",
        "",
    ]
    header = (
        f"{'scenario':<40} {'n':>5} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7} "
        f"{'req/s':>7} {'cpu/req':>7} {'fl.p50':>7} {'fl.p99':>7} {'×p50':>7} {'×p99':>7}  "
        f"{'target (DESIGN §10)':<26} verdict"
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
                f"{'':>7} {'':>7} {detail:<41}  {entry['target']:<26} {entry['verdict']}"
            )
            continue
        lines.append(
            f"{entry['label']:<40} {entry['count']:>5} {_ms(entry['p50_ms']):>7} "
            f"{_ms(entry['p95_ms']):>7} {_ms(entry['p99_ms']):>7} {_ms(entry['max_ms']):>7} "
            f"{_ms(entry['throughput_rps']):>7} {_ms(entry.get('cpu_ms_per_request')):>7} "
            f"{_ms(entry.get('floor_p50_ms')):>7} "
            f"{_ms(entry.get('floor_p99_ms')):>7} {_x(entry.get('ratio_p50')):>7} "
            f"{_x(entry.get('ratio_p99')):>7}  {entry['target']:<26} {entry['verdict']}"
        )
    memory = report["memory"]
    lines.append(
        f"{'server resident memory (peak RSS, MB)':<40} {'':>5} {'':>7} {'':>7} {'':>7} "
        f"{memory['peak_rss_mb']:>7.1f} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7} {'':>7}  "
        f"{'< 200 MB':<26} {memory['verdict']}"
    )
    lines += ["", "Floors (bare Bolt AsyncApp on the same aiohttp setup, same simulator):"]
    for key, label in FLOORS:
        floor = report["floors"][key]
        lines.append(
            f"  {label:<48} n {floor['count']:>4}  p50 {_ms(floor['p50_ms']):>6}  "
            f"p95 {_ms(floor['p95_ms']):>6}  p99 {_ms(floor['p99_ms']):>6}  "
            f"max {_ms(floor['max_ms']):>6}  {_ms(floor['throughput_rps']):>6} req/s  "
            f"cpu {_ms(floor['cpu_ms_per_request']):>5} ms/req"
        )
    lines += ["", "Alert runs (ms from sending the submission to the last of 31 deliveries):"]
    for key in ("alerts_30", "alerts_30_rate_limited"):
        for run in report["scenarios"][key]["runs"]:
            lines.append(
                f"  {'429s ' if key.endswith('limited') else 'plain'} #{run['incident']:<5} "
                f"all delivered {_ms(run['all_delivered_ms']):>8}  "
                f"30 alerts {_ms(run['alerts_delivered_ms']):>8}  "
                f"submission answered {_ms(run['submission_http_ms']):>6}  "
                f"429s {run['rate_limited_answers']:>3}  delivered {run['delivered']}/31  "
                f"exactly once: {'yes' if run['exactly_once'] else 'NO'}"
            )
    lines += ["", "Garbage collections during the measured phases:"]
    scenarios = report["scenarios"]
    gc_rows = [
        (
            scenarios[key.removesuffix("_1_user")]["label"] + ", one user"
            if key.endswith("_1_user")
            else entry["label"],
            entry["gc"],
        )
        for key, entry in scenarios.items()
        if entry.get("gc") and key != "concern_command_http"
    ] + [
        (label, report["floors"][key]["gc"]) for key, label in FLOORS if key != "floor_command_http"
    ]
    for label, stats in gc_rows:
        lines.append(
            f"  {label:<48} {stats['collections']:>4} collections, {stats['gen2']:>2} full, "
            f"longest {stats['max_ms']:>6.1f} ms, total {stats['total_ms']:>7.1f} ms"
        )
    typeahead = report["scenarios"]["typeahead"]
    backlog = report["outbox_backlog"]
    lines += [
        "",
        f"Typeahead answers: max {typeahead['max_options']} options, mean "
        f"{typeahead['mean_options']}, {typeahead['non_empty_answers']}/{typeahead['count']} "
        "non-empty.",
        f"Submissions filed: {report['scenarios']['submission']['incidents_filed']}/"
        f"{report['scenarios']['submission']['incidents_expected']}; the outbox backlog they "
        f"left ({backlog['messages_drained']} messages) drained in {backlog['drained_after_s']} s "
        f"({backlog['messages_per_s']} messages/s, {backlog['cpu_ms_per_message']} ms CPU "
        "each).",
        "Memory (MB, current RSS): "
        + ", ".join(
            f"{k.removeprefix('after_').removesuffix('_mb')} {v}"
            for k, v in memory.items()
            if k.startswith("after_")
        ),
        "Checks: "
        + ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in report["checks"].items()),
    ]
    for key, messages in report["errors"].items():
        lines.append(f"Errors in {key}: " + " | ".join(messages[:5]))
    lines += ["", *(f"Note: {note}" for note in report["notes"])]
    return "\n".join(lines)
