"""Crontab schedules: the 5-field syntax of ``cron(8)``, parsed and searched, no dependency.

``minute hour day-of-month month day-of-week``, each field ``*``, a number, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma-separated list of these; months and week
days also by their English three-letter names (``jan``, ``mon``); day of week 0 and 7 are
both Sunday. The macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly``
and ``@yearly`` (``@annually``) stand for their usual expansions. As in Vixie cron, when
both day fields are restricted (neither is ``*``), a day matches if either matches.

Times are wall-clock times of a time zone (UTC unless told otherwise). This module only
answers "when is the next matching minute"; it never sleeps and never runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from active_labeling.errors import InputError

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, lowest, highest, names for lowest..)
_FIELDS = [
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
]
#: How far ahead :meth:`CronSchedule.next_after` looks before giving up (``31 2 30 2 *``,
#: February 30th, never comes).
_HORIZON = timedelta(days=366 * 5)


def _value(text: str, field: str, low: int, high: int, names, expression: str) -> int:
    token = text.strip().lower()
    if names and token in names:
        return names.index(token) + (1 if field == "month" else 0)
    if not token.isdigit():
        raise InputError(
            f"cron {expression!r}: {field} {text!r} is not a number"
            + (f" or a name ({', '.join(names[:3])}...)" if names else "")
        )
    number = int(token)
    if not low <= number <= high:
        raise InputError(f"cron {expression!r}: {field} {number} is outside {low}-{high}")
    return number


def _parse_field(text: str, field: str, low: int, high: int, names, expression: str):
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise InputError(f"cron {expression!r}: {field} has an empty list item")
        span, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise InputError(
                    f"cron {expression!r}: {field} step {step_text!r} must be a positive number"
                )
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            first, _, last = span.partition("-")
            start = _value(first, field, low, high, names, expression)
            end = _value(last, field, low, high, names, expression)
            if start > end:
                raise InputError(f"cron {expression!r}: {field} range {span!r} runs backwards")
        else:
            start = _value(span, field, low, high, names, expression)
            # "5/15" means from 5 to the end, every 15 (as in Vixie cron).
            end = high if slash else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed crontab expression. Build one with :meth:`parse`.

    Examples
    --------
    >>> schedule = CronSchedule.parse("*/15 9-17 * * mon-fri")
    >>> schedule.next_after(datetime(2024, 1, 5, 17, 50, tzinfo=timezone.utc))  # a Friday
    datetime.datetime(2024, 1, 8, 9, 0, tzinfo=datetime.timezone.utc)
    >>> schedule.matches(datetime(2024, 1, 8, 9, 30, tzinfo=timezone.utc))
    True
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    day_restricted: bool
    weekday_restricted: bool
    zone: str = "UTC"

    @classmethod
    def parse(cls, expression: str, zone: str = "UTC") -> CronSchedule:
        """Parse ``expression``; an ``InputError`` names the field at fault.

        Examples
        --------
        >>> sorted(CronSchedule.parse("0 0 1,15 * *").days)
        [1, 15]
        >>> CronSchedule.parse("0 25 * * *")
        Traceback (most recent call last):
        ...
        active_labeling.errors.InputError: cron '0 25 * * *': hour 25 is outside 0-23
        """
        if not isinstance(expression, str):
            raise InputError(f"cron must be a string such as '0 * * * *', got {expression!r}")
        text = _MACROS.get(expression.strip().lower(), expression)
        fields = text.split()
        if len(fields) != 5:
            raise InputError(
                f"cron {expression!r}: expected 5 fields (minute hour day-of-month month "
                f"day-of-week) or a macro such as @daily, got {len(fields)}"
            )
        parsed = [
            _parse_field(value, name, low, high, names, expression)
            for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True)
        ]
        weekdays = frozenset(d % 7 for d in parsed[4])
        _zone(zone)
        return cls(
            expression=expression,
            minutes=parsed[0],
            hours=parsed[1],
            days=parsed[2],
            months=parsed[3],
            weekdays=weekdays,
            day_restricted=not fields[2].startswith("*"),
            weekday_restricted=not fields[4].startswith("*"),
            zone=zone,
        )

    def _day_matches(self, moment: datetime) -> bool:
        day = moment.day in self.days
        weekday = (moment.isoweekday() % 7) in self.weekdays
        if self.day_restricted and self.weekday_restricted:
            return day or weekday
        return day and weekday

    def matches(self, moment: datetime) -> bool:
        """Whether the minute of ``moment`` (aware, any zone) is one of the schedule's."""
        local = _as_aware(moment).astimezone(_zone(self.zone))
        return (
            local.month in self.months
            and self._day_matches(local)
            and local.hour in self.hours
            and local.minute in self.minutes
        )

    def next_after(self, moment: datetime) -> datetime | None:
        """The first scheduled minute strictly after ``moment``, in ``moment``'s zone.

        Searched field by field (a month, day or hour that does not match is skipped
        whole), on the wall clock of the schedule's zone. None when no date matches
        within five years (February 30th).
        """
        moment = _as_aware(moment)
        zone = _zone(self.zone)
        local = moment.astimezone(zone).replace(tzinfo=None)
        candidate = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = local + _HORIZON
        while candidate <= limit:
            if candidate.month not in self.months:
                year = candidate.year + (candidate.month == 12)
                month = candidate.month % 12 + 1
                candidate = datetime(year, month, 1)
                continue
            if not self._day_matches(candidate):
                candidate = datetime(candidate.year, candidate.month, candidate.day) + timedelta(
                    days=1
                )
                continue
            if candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
                continue
            if candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
                continue
            return candidate.replace(tzinfo=zone).astimezone(moment.tzinfo)
        return None

    def due(self, since: datetime, now: datetime) -> datetime | None:
        """The first scheduled minute in ``(since, now]``, or None if none passed.

        Several missed minutes give one answer: a scheduler catches up once, not once per
        missed minute.

        Examples
        --------
        >>> hourly = CronSchedule.parse("@hourly")
        >>> t = datetime(2024, 1, 1, 10, 59, tzinfo=timezone.utc)
        >>> hourly.due(t, t + timedelta(minutes=1))
        datetime.datetime(2024, 1, 1, 11, 0, tzinfo=datetime.timezone.utc)
        >>> hourly.due(t, t + timedelta(seconds=30)) is None
        True
        """
        upcoming = self.next_after(since)
        if upcoming is None or upcoming > _as_aware(now):
            return None
        return upcoming


def _as_aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime):
        raise InputError(f"expected a datetime, got {type(moment).__name__}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _zone(name: str):
    if name in ("UTC", "utc"):
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"time zone {name!r} is unknown; use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None
