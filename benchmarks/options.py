"""What a benchmark run measures: the scenario groups and every number (`Options`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_JSON = Path(__file__).parent / "results" / "latest.json"
SCENARIO_GROUPS = ("slack", "web", "referrals", "reports", "soak", "files", "trustday")
# Every DESIGN §10 row: the Slack paths, the incident page, the overdue scan, memory.
DEFAULT_SCENARIOS = ("slack", "web", "referrals")
ALL_SCENARIOS = ("slack", "web", "referrals", "reports")  # `--scenarios all` (not the soak)
SERVER_GROUPS = (
    "slack",
    "web",
    "soak",
)  # the groups that share one `vigil serve` and stand-in (the trust day has its own)
#: Referrals the overdue scan runs over, by database (DESIGN §10 states 1,000,000), and
#: with --quick.
REFERRALS = {"postgresql": 1_000_000, "sqlite": 100_000}
REFERRALS_QUICK = 20_000


@dataclass
class Options:
    """What to run. `quick_run()` gives small numbers for a smoke run."""

    database: str = "sqlite"
    scenarios: tuple[str, ...] = DEFAULT_SCENARIOS
    requests: int = 400
    concurrency: int = 20
    pupils: int = 2000
    warmup: int = 20
    alert_runs: int = 3
    rate_limited_runs: int = 2
    incidents: int = 100_000
    web_requests: int = 2000
    web_concurrency: int = 50
    web_warmup: int = 100
    referrals: int | None = None  # None: 1,000,000 on PostgreSQL, 100,000 on SQLite
    referral_runs: int = 50
    # The reports group (chronology and term report; its own database and server).
    report_pupils: int = 20_000
    report_incidents: int = 100_000
    report_requests: int = 300
    report_concurrency: int = 10
    report_warmup: int = 20
    # The soak (`benchmarks.soak`): staff working at once, think time, duration.
    soak_minutes: float = 10.0
    soak_staff: int = 50
    soak_think: tuple[float, float] = (1.0, 4.0)
    # The trust day (`benchmarks.trustday`): schools × staff × actions at the busiest hour,
    # Poisson arrivals at 1× and 2× that, each phase this long; each school its own
    # workspace (installed through OAuth) with this many pupils.
    trust_schools: int = 50
    trust_staff: int = 100
    trust_actions: float = 2.0
    trust_minutes: float = 2.0
    trust_pupils: int = 300
    # The files group: a file of this size uploaded and downloaded, this many times.
    file_mb: float = 20.0
    file_runs: int = 5
    seed: int = 20260901
    json_path: Path | None = DEFAULT_JSON
    quick: bool = False
    in_process: bool = False  # servers in the benchmark process (the old arrangement)
    workers: int = 1  # vigil serve --workers N (VIGIL_WORKERS)
    outbox_delivery: str = "auto"  # VIGIL_OUTBOX_DELIVERY: inline, process or auto
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def quick_run(cls, **overrides: Any) -> Options:
        values: dict[str, Any] = {
            "requests": 30,
            "concurrency": 5,
            "pupils": 200,
            "warmup": 5,
            "alert_runs": 1,
            "rate_limited_runs": 1,
            "incidents": 2000,
            "web_requests": 100,
            "web_concurrency": 10,
            "web_warmup": 20,
            "referrals": REFERRALS_QUICK,
            "referral_runs": 10,
            "report_pupils": 1000,
            "report_incidents": 3000,
            "report_requests": 30,
            "report_concurrency": 4,
            "report_warmup": 5,
            "soak_minutes": 0.5,
            "soak_staff": 10,
            "file_runs": 1,
            # 5 workspaces at the full trust's rate (5 × 100 × 20 = 50 × 100 × 2 an hour)
            "trust_schools": 5,
            "trust_actions": 20.0,
            "trust_minutes": 0.2,
            "trust_pupils": 40,
            "quick": True,
        }
        values.update(overrides)
        return cls(**values)

    def check(self) -> None:
        unknown = set(self.scenarios) - set(SCENARIO_GROUPS)
        if unknown or not self.scenarios:
            raise ValueError(f"--scenarios takes {','.join(SCENARIO_GROUPS)} (got {unknown})")
        for name in ("requests", "concurrency", "pupils", "incidents", "web_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be positive")
        if self.web_concurrency < 1 or min(self.warmup, self.web_warmup) < 0:
            raise ValueError("--web-concurrency must be positive, warm-ups not negative")
        if min(self.report_pupils, self.report_incidents, self.report_requests) < 1 or (
            self.report_concurrency < 1 or self.report_warmup < 0
        ):
            raise ValueError("--report-* numbers must be positive")
        if (
            "reports" in self.scenarios
            and len(self.scenarios) > 1
            and (self.database not in ("sqlite", "postgresql"))
        ):
            raise ValueError(
                "--database URL: run --scenarios reports on its own (it needs an empty "
                "database of its own)"
            )
        if min(self.trust_schools, self.trust_staff, self.trust_pupils) < 1 or (
            self.trust_schools > 999 or self.trust_actions <= 0 or self.trust_minutes <= 0
        ):
            raise ValueError("--trust-* numbers must be positive (at most 999 schools)")
        if (
            "trustday" in self.scenarios
            and len(self.scenarios) > 1
            and self.database not in ("sqlite", "postgresql")
        ):
            raise ValueError(
                "--database URL: run --scenarios trustday on its own (it needs an empty "
                "database of its own)"
            )
        if (self.referrals is not None and self.referrals < 1) or self.referral_runs < 1:
            raise ValueError("--referrals and --referral-runs must be positive")
        if (
            "referrals" in self.scenarios
            and set(self.scenarios) & set(SERVER_GROUPS)
            and self.database not in ("sqlite", "postgresql")
        ):
            raise ValueError(
                "--database URL: run --scenarios referrals on its own (it needs an empty "
                "database of its own)"
            )


def single_user_requests(requests: int) -> int:
    """How many requests the one-user-at-a-time rows send, for `requests` per scenario."""
    return max(10, requests // 8)
