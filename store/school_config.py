"""The school's configuration file: working time, overdue nudges, agency timescales and
the school's own outcomes for closing a concern.

A TOML file (`vigil.example.toml` documents every key) read with the standard library's
`tomllib`; the settings module passes its path (`VIGIL_CONFIG`). No path, or no file at
that path, means the defaults below. Every mistake raises `SchoolConfigError` naming the
file, the key and the problem. Agencies listed in the file replace the defaults.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from store.access import ROLES
from store.catalogue import ALERT_ROLES, CHOSEN_BY, AlertRule
from store.rota import DAYS, Holidays, OnCall
from store.workdays import WorkingTime, normalise_region, zone_of

Unit = Literal["days", "hours"]

_TIMESCALE = re.compile(r"(\d+(?:\.\d+)?)\s+working\s+(day|hour)s?", re.IGNORECASE)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_LONGEST_CLOSURE_DAYS = 366
_TIMESCALE_FORMS = '"N working day(s)" or "N working hour(s)"'


@dataclass(frozen=True)
class Timescale:
    """How long an agency has to respond: a whole number of working days, or working hours."""

    amount: float
    unit: Unit

    def __post_init__(self) -> None:
        if self.unit not in ("days", "hours"):
            raise ValueError(f'unit must be "days" or "hours", got {self.unit!r}')
        if isinstance(self.amount, bool) or not (math.isfinite(self.amount) and self.amount > 0):
            raise ValueError(f"the amount must be a positive number, got {self.amount!r}")
        if self.unit == "days" and not float(self.amount).is_integer():
            raise ValueError(f"working days must be a whole number, got {self.amount:g}")

    @classmethod
    def parse(cls, text: str) -> Timescale:
        """A timescale from text such as "1 working day" or "4 working hours"."""
        match = _TIMESCALE.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"expected {_TIMESCALE_FORMS}, got {text!r}")
        return cls(float(match[1]), "days" if match[2].lower() == "day" else "hours")

    def due(self, referred_at: dt.datetime, working: WorkingTime) -> dt.datetime:
        """When a response to a referral made at `referred_at` is due (aware UTC)."""
        if self.unit == "days":
            return working.add_working_days(referred_at, int(self.amount))
        return working.add_working_hours(referred_at, self.amount)

    def describe(self) -> str:
        """The timescale as people write it: "1 working day", "4 working hours"."""
        amount = float(self.amount)
        number = str(int(amount)) if amount.is_integer() else str(amount)
        unit = self.unit.removesuffix("s") if amount == 1 else self.unit
        return f"{number} working {unit}"


@dataclass(frozen=True)
class Agency:
    """An agency a referral can go to, and how soon it should respond."""

    name: str
    timescale: Timescale


# Starting points only: each DSL sets their local safeguarding partnership's timescales.
DEFAULT_AGENCIES: tuple[Agency, ...] = (
    Agency("Children's social care (MASH)", Timescale(1, "days")),
    Agency("Police", Timescale(1, "days")),
    Agency("CAMHS", Timescale(20, "days")),
    Agency("Early help", Timescale(5, "days")),
    Agency("School nursing", Timescale(5, "days")),
    Agency("LADO", Timescale(1, "days")),
)


# How a concern can be closed (DESIGN §12); a school adds its own in [casework] outcomes.
DEFAULT_OUTCOMES: tuple[str, ...] = (
    "no further action",
    "referred",
    "early help",
    "resolved in school",
)
_OUTCOME_MAX = 100


@dataclass(frozen=True)
class Allegations:
    """Who handles an allegation about an adult ([allegations]): the roles alerted, those
    alerted instead when the adult named is a head, and the agency consulted (the LADO)."""

    manager: tuple[str, ...] = ("head",)
    manager_when_head: tuple[str, ...] = ("chair",)
    lado_agency: str = "LADO"
    # The LADO's timescale when the file lists agencies without it and does not name one
    # (a school's file from before [allegations] existed): the consultation is still due.
    lado_default: Agency = Agency("LADO", Timescale(1, "days"))


@dataclass(frozen=True)
class Retention:
    """How long records are kept ([retention]): a pupil's record until their date of birth
    plus `pupil_years` (a record naming several pupils, until the youngest's); an
    allegation about an adult `allegation_years` after the allegation's date (KCSIE and the
    IRMS toolkit: ten years, or to the adult's normal retirement age if that is later: a
    school that knows it sets a longer number). Past it, a record is listed for review
    (`store.retention`); nothing is destroyed without a key-holder."""

    pupil_years: int = 25
    allegation_years: int = 10


@dataclass(frozen=True)
class SchoolConfig:
    """Everything a school sets in its configuration file, defaulted where it does not."""

    working_time: WorkingTime = WorkingTime()
    agencies: tuple[Agency, ...] = DEFAULT_AGENCIES
    check_every_minutes: float = 5.0
    escalate_after_working_days: int = 2
    alert_rules: tuple[AlertRule, ...] = ()  # the file's [[alert_rules]], in order
    allegations: Allegations = Allegations()
    on_call: tuple[OnCall, ...] = ()
    escalate_every_minutes: float = 10.0
    chase_after_working_hours: float = 4.0
    school_outcomes: tuple[str, ...] = ()  # [casework] outcomes, after the defaults
    retention: Retention = Retention()

    @property
    def outcomes(self) -> tuple[str, ...]:
        """How a concern can be closed: the standard outcomes, then the school's own."""
        return DEFAULT_OUTCOMES + self.school_outcomes

    def agency(self, name: str) -> Agency | None:
        """The agency called `name` (ignoring case), if configured."""
        wanted = name.strip().casefold()
        return next((a for a in self.agencies if a.name.casefold() == wanted), None)

    @property
    def agency_names(self) -> tuple[str, ...]:
        """The configured agencies' names, in file order."""
        return tuple(a.name for a in self.agencies)

    def should_escalate(self, due: dt.datetime, now: dt.datetime) -> bool:
        """Whether an overdue nudge also goes to the head: enough working days overdue."""
        overdue = self.working_time.working_days_between(due, now)
        return overdue >= self.escalate_after_working_days


class SchoolConfigError(ValueError):
    """A mistake in the school's configuration file, naming the file and the key."""

    def __init__(self, source: str, key: str | None, problem: str) -> None:
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {problem}")
        self.source, self.key, self.problem = source, key, problem


class _Invalid(Exception):
    """A problem with one key, before the file name is known to the message."""

    def __init__(self, key: str | None, problem: str) -> None:
        super().__init__(problem)
        self.key, self.problem = key, problem


def load_school_config(path: Path | None) -> SchoolConfig:
    """The school's configuration from the TOML file at `path`; defaults if none or missing."""
    if path is None:
        return SchoolConfig()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return SchoolConfig()
    except OSError as exc:
        raise SchoolConfigError(str(path), None, f"cannot read the file: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SchoolConfigError(str(path), None, "not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SchoolConfigError(str(path), None, f"not valid TOML: {exc}") from exc
    return parse_school_config(data, source=str(path))


def parse_school_config(data: Mapping[str, Any], *, source: str = "<config>") -> SchoolConfig:
    """The school's configuration from parsed TOML; `source` names it in error messages."""
    try:
        _only_keys(
            data,
            None,
            {
                "working_time",
                "nudges",
                "agencies",
                "allegations",
                "on_call",
                "urgent",
                "unread",
                "alert_rules",
                "casework",
                "retention",
            },
        )
        casework = _table(data, "casework")
        _only_keys(casework, "casework", {"outcomes"})
        nudges = _table(data, "nudges")
        _only_keys(nudges, "nudges", {"check_every_minutes", "escalate_after_working_days"})
        urgent = _table(data, "urgent")
        _only_keys(urgent, "urgent", {"escalate_every_minutes"})
        unread = _table(data, "unread")
        _only_keys(unread, "unread", {"chase_after_working_hours"})
        defaults = SchoolConfig()
        agencies = _agencies(data["agencies"]) if "agencies" in data else DEFAULT_AGENCIES
        return SchoolConfig(
            working_time=_working_time(_table(data, "working_time")),
            agencies=agencies,
            allegations=_allegations(_table(data, "allegations"), agencies),
            check_every_minutes=_positive_number(
                nudges, "nudges.check_every_minutes", defaults.check_every_minutes
            ),
            escalate_after_working_days=_positive_whole(
                nudges, "nudges.escalate_after_working_days", defaults.escalate_after_working_days
            ),
            on_call=_on_call(data["on_call"]) if "on_call" in data else (),
            escalate_every_minutes=_positive_number(
                urgent, "urgent.escalate_every_minutes", defaults.escalate_every_minutes
            ),
            chase_after_working_hours=_positive_number(
                unread, "unread.chase_after_working_hours", defaults.chase_after_working_hours
            ),
            school_outcomes=_outcomes(casework.get("outcomes", [])),
            alert_rules=_alert_rules(data.get("alert_rules", [])),
            retention=_retention(_table(data, "retention")),
        )
    except _Invalid as problem:
        raise SchoolConfigError(source, problem.key, problem.problem) from None


def _name(section: str | None, key: str) -> str:
    """The dotted name of `key` inside `section`."""
    return f"{section}.{key}" if section else key


def _only_keys(table: Mapping[str, Any], section: str | None, known: set[str]) -> None:
    """Refuse keys the configuration does not have (most likely misspelt)."""
    for key in table:
        if key not in known:
            raise _Invalid(
                _name(section, key), f"unknown key; expected one of {', '.join(sorted(known))}"
            )


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """The sub-table `key` ([key] in the file), empty if absent."""
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise _Invalid(key, f"expected a table ([{key}]), got {value!r}")
    return value


def _string(value: Any, key: str) -> str:
    """`value` if it is text, else a problem with `key`."""
    if not isinstance(value, str):
        raise _Invalid(key, f"expected text in quotes, got {value!r}")
    return value


def _time(value: Any, key: str) -> dt.time:
    """A local time of day: "HH:MM" text or a TOML local time."""
    if isinstance(value, dt.time) and value.tzinfo is None:
        return value
    match = _TIME.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise _Invalid(key, f'expected a 24-hour time like "08:00", got {value!r}')
    return dt.time(int(match[1]), int(match[2]))


def _date(value: Any, key: str) -> dt.date:
    """A date: "YYYY-MM-DD" text or a TOML local date."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    text = value.strip() if isinstance(value, str) else ""
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    raise _Invalid(key, f'expected a date like "2027-02-16", got {value!r}')


def _closure_dates(value: Any, key: str) -> set[dt.date]:
    """The dates of one closure entry: a single date or an inclusive "start..end" range."""
    if isinstance(value, str) and ".." in value:
        first_text, _, last_text = value.partition("..")
        first, last = _date(first_text, key), _date(last_text, key)
        if last < first:
            raise _Invalid(key, f"range {value!r} ends before it starts")
        length = (last - first).days + 1
        if length > _LONGEST_CLOSURE_DAYS:
            raise _Invalid(key, f"range {value!r} is {length} days long; is a year mistyped?")
        return {first + dt.timedelta(days=n) for n in range(length)}
    if not isinstance(value, str | dt.date):
        raise _Invalid(key, f'expected a date "YYYY-MM-DD" or range "start..end", got {value!r}')
    return {_date(value, key)}


def _working_time(table: Mapping[str, Any]) -> WorkingTime:
    """The [working_time] table, each key defaulted."""
    section = "working_time"
    _only_keys(table, section, {"timezone", "day_starts", "day_ends", "bank_holidays", "closures"})
    defaults = WorkingTime()
    timezone = _string(table.get("timezone", defaults.timezone), f"{section}.timezone")
    try:
        zone_of(timezone)
    except ValueError as exc:
        raise _Invalid(f"{section}.timezone", str(exc)) from None
    starts = _time(table.get("day_starts", defaults.day_starts), f"{section}.day_starts")
    ends = _time(table.get("day_ends", defaults.day_ends), f"{section}.day_ends")
    if ends <= starts:
        problem = f"the working day must end after it starts ({starts:%H:%M}), got {ends:%H:%M}"
        raise _Invalid(f"{section}.day_ends", problem)
    region_text = _string(table.get("bank_holidays", defaults.region), f"{section}.bank_holidays")
    try:
        region = normalise_region(region_text)
    except ValueError as exc:
        raise _Invalid(f"{section}.bank_holidays", str(exc)) from None
    entries = table.get("closures", [])
    if not isinstance(entries, list):
        raise _Invalid(f"{section}.closures", f"expected a list [...], got {entries!r}")
    closures: set[dt.date] = set()
    for number, entry in enumerate(entries, start=1):
        closures |= _closure_dates(entry, f"{section}.closures[{number}]")
    return WorkingTime(timezone, starts, ends, region, frozenset(closures))


def _agencies(entries: Any) -> tuple[Agency, ...]:
    """The [[agencies]] tables, in file order; `agencies[N]` counts them from 1."""
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise _Invalid(
            "agencies", "expected [[agencies]] tables, each with name and respond_within"
        )
    if not entries:
        raise _Invalid("agencies", "no agencies listed; leave the key out to use the defaults")
    agencies: list[Agency] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        section = f"agencies[{number}]"
        _only_keys(entry, section, {"name", "respond_within"})
        for required in ("name", "respond_within"):
            if required not in entry:
                raise _Invalid(f"{section}.{required}", "missing")
        name = _string(entry["name"], f"{section}.name").strip()
        if not name:
            raise _Invalid(f"{section}.name", "must not be empty")
        if name.casefold() in seen:
            problem = f"{name!r} is listed twice (also agencies[{seen[name.casefold()]}])"
            raise _Invalid(f"{section}.name", problem)
        seen[name.casefold()] = number
        text = _string(entry["respond_within"], f"{section}.respond_within")
        try:
            timescale = Timescale.parse(text)
        except ValueError as exc:
            raise _Invalid(f"{section}.respond_within", f"{name!r}: {exc}") from None
        agencies.append(Agency(name, timescale))
    return tuple(agencies)


def _alert_rules(entries: Any) -> tuple[AlertRule, ...]:
    """The [[alert_rules]] tables, in file order; `alert_rules[N]` counts them from 1."""
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise _Invalid("alert_rules", "expected [[alert_rules]] tables, each with a category")
    rules: list[AlertRule] = []
    seen: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        section = f"alert_rules[{number}]"
        _only_keys(entry, section, {"category", "alert", "on_action", "chosen_by", "restricted"})
        if "category" not in entry:
            raise _Invalid(f"{section}.category", "missing")
        category = " ".join(_string(entry["category"], f"{section}.category").split())
        if not category:
            raise _Invalid(f"{section}.category", "must not be empty")
        if len(category) > 100:
            raise _Invalid(f"{section}.category", "keep a category name under 100 characters")
        if category.casefold() in seen:
            problem = f"{category!r} has a rule already (alert_rules[{seen[category.casefold()]}])"
            raise _Invalid(f"{section}.category", problem)
        seen[category.casefold()] = number
        chosen_by = entry.get("chosen_by")
        if chosen_by is not None and chosen_by not in CHOSEN_BY:
            raise _Invalid(
                f"{section}.chosen_by", f'expected "anyone" or "keyholder", got {chosen_by!r}'
            )
        restricted = entry.get("restricted")
        if restricted is not None and not isinstance(restricted, bool):
            raise _Invalid(f"{section}.restricted", f"expected true or false, got {restricted!r}")
        rules.append(
            AlertRule(
                category,
                alert=_rule_roles(entry, section, "alert"),
                on_action=_rule_roles(entry, section, "on_action"),
                chosen_by=chosen_by,
                restricted=restricted,
            )
        )
    return tuple(rules)


def _rule_roles(entry: Mapping[str, Any], section: str, key: str) -> tuple[str, ...] | None:
    """A list of roles to alert (None when the key is absent); at least one, each known."""
    if key not in entry:
        return None
    value, name = entry[key], f"{section}.{key}"
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(name, f'expected a list of roles like ["keyholder"], got {value!r}')
    if not value:
        raise _Invalid(name, f"name at least one role ({', '.join(ALERT_ROLES)})")
    for role in value:
        if role.strip().lower() not in ALERT_ROLES:
            known = ", ".join(ALERT_ROLES)
            raise _Invalid(name, f'unknown role "{role}"; expected one of {known}')
    return tuple(dict.fromkeys(r.strip().lower() for r in value))


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")


def _on_call(entries: Any) -> tuple[OnCall, ...]:
    """The [[on_call]] tables, in file order (the rota's order); `on_call[N]` counts from 1."""
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise _Invalid("on_call", "expected [[on_call]] tables, each with staff, days, from, to")
    rota: list[OnCall] = []
    for number, entry in enumerate(entries, start=1):
        section = f"on_call[{number}]"
        _only_keys(entry, section, {"staff", "days", "from", "to", "holidays"})
        if "staff" not in entry:
            raise _Invalid(f"{section}.staff", "missing: the email of the member of staff")
        email = _string(entry["staff"], f"{section}.staff").strip()
        if not _EMAIL.fullmatch(email):
            raise _Invalid(f"{section}.staff", f"expected an email address, got {email!r}")
        days = entry.get("days", list(DAYS))
        if not isinstance(days, list) or not days:
            raise _Invalid(f"{section}.days", f'expected a list like ["mon", "tue"], got {days!r}')
        numbers: set[int] = set()
        for day in days:
            text = day.strip().lower()[:3] if isinstance(day, str) else ""
            if text not in DAYS:
                problem = f"unknown day {day!r}; expected one of {', '.join(DAYS)}"
                raise _Invalid(f"{section}.days", problem)
            numbers.add(DAYS.index(text))
        holidays = entry.get("holidays", False)
        if not (isinstance(holidays, bool) or holidays == "only"):
            problem = f'expected true, false or "only", got {holidays!r}'
            raise _Invalid(f"{section}.holidays", problem)
        covers: Holidays = "only" if holidays == "only" else "yes" if holidays else "no"
        rota.append(
            OnCall(
                staff=email,
                days=frozenset(numbers),
                starts=_time(entry.get("from", "00:00"), f"{section}.from"),
                ends=_time(entry.get("to", "00:00"), f"{section}.to"),
                holidays=covers,
            )
        )
    return tuple(rota)


def _positive_number(table: Mapping[str, Any], key: str, default: float) -> float:
    """A number greater than zero, from the table's last dotted part of `key`."""
    value = table.get(key.rpartition(".")[2], default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise _Invalid(key, f"expected a number greater than 0, got {value!r}")
    return float(value)


def _positive_whole(table: Mapping[str, Any], key: str, default: int) -> int:
    """A whole number of at least 1, from the table's last dotted part of `key`."""
    value = table.get(key.rpartition(".")[2], default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _Invalid(key, f"expected a whole number of at least 1, got {value!r}")
    return value


def _roles(table: Mapping[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A non-empty list of staff roles (`store.access.ROLES`), from the table's `key`."""
    value = table.get(key.rpartition(".")[2], list(default))
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _Invalid(key, f'expected a list of roles like ["head"], got {value!r}')
    roles = tuple(dict.fromkeys(v.strip().lower() for v in value))
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise _Invalid(key, f"unknown role {unknown[0]!r}; expected one of {', '.join(ROLES)}")
    return roles


_RETENTION_YEARS_MAX = 100


def _retention(table: Mapping[str, Any]) -> Retention:
    """The [retention] table: whole numbers of years, at least 1 and at most 100."""
    _only_keys(table, "retention", {"pupil_years", "allegation_years"})
    defaults = Retention()
    years = {}
    for key in ("pupil_years", "allegation_years"):
        name = f"retention.{key}"
        value = _positive_whole(table, name, getattr(defaults, key))
        if value > _RETENTION_YEARS_MAX:
            raise _Invalid(name, f"expected at most {_RETENTION_YEARS_MAX} years, got {value}")
        years[key] = value
    return Retention(**years)


def _allegations(table: Mapping[str, Any], agencies: tuple[Agency, ...]) -> Allegations:
    """The [allegations] table: its lado_agency must be one of the configured agencies."""
    section = "allegations"
    _only_keys(table, section, {"manager", "manager_when_head", "lado_agency"})
    defaults = Allegations()
    key = f"{section}.lado_agency"
    lado = _string(table.get("lado_agency", defaults.lado_agency), key).strip()
    agency = next((a for a in agencies if a.name.casefold() == lado.casefold()), None)
    if agency is None and "lado_agency" not in table:
        agency = defaults.lado_default
    if agency is None:
        names = ", ".join(repr(a.name) for a in agencies)
        raise _Invalid(key, f"{lado!r} is not a configured agency; expected one of {names}")
    return Allegations(
        manager=_roles(table, f"{section}.manager", defaults.manager),
        manager_when_head=_roles(table, f"{section}.manager_when_head", defaults.manager_when_head),
        lado_agency=agency.name,
    )


def _outcomes(entries: Any) -> tuple[str, ...]:
    """[casework] outcomes: the school's own ways to close a concern, after the standard ones."""
    key = "casework.outcomes"
    if not isinstance(entries, list):
        raise _Invalid(key, f"expected a list of text [...], got {entries!r}")
    found: list[str] = []
    seen = {o.casefold() for o in DEFAULT_OUTCOMES}
    for number, entry in enumerate(entries, start=1):
        name = _string(entry, f"{key}[{number}]").strip()
        if not name:
            raise _Invalid(f"{key}[{number}]", "must not be empty")
        if len(name) > _OUTCOME_MAX:
            raise _Invalid(f"{key}[{number}]", f"longer than {_OUTCOME_MAX} characters")
        if name.casefold() in seen:
            raise _Invalid(f"{key}[{number}]", f"{name!r} is listed twice or is a standard outcome")
        seen.add(name.casefold())
        found.append(name)
    return tuple(found)
