"""Reports for the safeguarding team (DESIGN §7), counted in the database.

For a date range (by default this term): incidents by category and month, counts by the
main pupil's year group, alerts not read within one working day by person, and the
referrals still open with their ages. The governors' report is built from the same
counts and carries no names at all.

Nothing here decrypts anything or returns a pupil's name: these are counts, staff names
(for the alerts table) and referral facts. Each query is scoped to one workspace and
uses an index (migration 0004 adds the ones these need); none runs per incident.

- `periods`: date ranges, terms and school years;
- `incident_counts`: `incidents_by_category`, `year_groups`;
- `late_alerts`: `late_alerts`, `alert_totals`;
- `agency_referrals`: `open_referrals`, `referrals_by_agency`;
- `pages`: `term_report` (everything the reports page shows, in one call) and
  `governors_report`;
- `sql`: the portable SQL pieces they share.

Entry points (also used by the benchmark) are importable from `store.reports` itself.
"""

from store.reports.agency_referrals import (
    AgencyRow,
    OpenReferral,
    WorkingDayCounter,
    open_referrals,
    referrals_by_agency,
)
from store.reports.incident_counts import (
    CategoryMonths,
    CategoryRow,
    YearGroupRow,
    incidents_by_category,
    year_group_order,
    year_groups,
)
from store.reports.late_alerts import (
    AlertTotals,
    DeadlineSegment,
    LateAlertsRow,
    alert_totals,
    deadline_segments,
    late_alerts,
)
from store.reports.pages import GovernorsReport, TermReport, governors_report, term_report
from store.reports.periods import (
    LONGEST_RANGE_DAYS,
    DateRange,
    local_midnight,
    previous_term,
    school_year_of,
    term_of,
)
from store.reports.sql import epoch_seconds, plan_for_these_dates, recategorised

__all__ = [
    "LONGEST_RANGE_DAYS",
    "AgencyRow",
    "AlertTotals",
    "CategoryMonths",
    "CategoryRow",
    "DateRange",
    "DeadlineSegment",
    "GovernorsReport",
    "LateAlertsRow",
    "OpenReferral",
    "TermReport",
    "WorkingDayCounter",
    "YearGroupRow",
    "alert_totals",
    "deadline_segments",
    "epoch_seconds",
    "governors_report",
    "incidents_by_category",
    "late_alerts",
    "local_midnight",
    "open_referrals",
    "plan_for_these_dates",
    "previous_term",
    "recategorised",
    "referrals_by_agency",
    "school_year_of",
    "term_of",
    "term_report",
    "year_group_order",
    "year_groups",
]
