"""The business-hours engine: how much business time lies between two instants, and which
instant lies a given amount of business time after another, on a client's calendar.

A calendar is a time zone, weekly hours in local wall-clock time (ISO weekday -> intervals,
"24:00" allowed as an end) and holidays (local dates with no business hours at all). Every
instant is UTC; a business interval of a local date is turned into a UTC interval, and
business time is the real elapsed time inside those intervals. So a 00:00-24:00 day on
which the clocks go forward lasts 23 hours, and one on which they go back lasts 25.

Local times that do not exist (the hour skipped when clocks go forward) resolve to the
instant of the jump; ambiguous ones (the hour repeated when clocks go back) resolve to their
first occurrence. Both rules keep the local-to-UTC mapping monotonic, so the intervals of a
day never overlap and never run backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

ZERO = timedelta(0)
ONE_DAY = timedelta(days=1)
# A calendar that yields no business time for this many consecutive days is treated as
# having none at all (e.g. every day a holiday): adding time to it cannot terminate.
MAX_EMPTY_DAYS = 3700


class CalendarError(ValueError):
    """The calendar's definition is invalid, or it has no business time to add to."""


def parse_clock(text: str) -> tuple[int, int]:
    """'08:30' -> (8, 30); '24:00' is allowed (end of day)."""
    try:
        hh, mm = text.strip().split(":")
        hour, minute = int(hh), int(mm)
    except (AttributeError, ValueError) as exc:
        raise CalendarError(f"invalid time {text!r} (use HH:MM)") from exc
    if not (0 <= minute < 60 and (0 <= hour < 24 or (hour == 24 and minute == 0))):
        raise CalendarError(f"invalid time {text!r}")
    return hour, minute


def parse_hours(raw: dict | None) -> dict[int, tuple[tuple[int, int], ...]]:
    """Client.business_hours JSON -> {iso weekday: ((start_minute, end_minute), ...)}.

    Intervals are sorted and overlapping or touching ones merged; empty ones are dropped.
    """
    hours: dict[int, tuple[tuple[int, int], ...]] = {}
    for key, intervals in (raw or {}).items():
        try:
            weekday = int(key)
        except (TypeError, ValueError) as exc:
            raise CalendarError(f"invalid weekday {key!r} (use 1 = Monday .. 7)") from exc
        if not 1 <= weekday <= 7:
            raise CalendarError(f"invalid weekday {key!r} (use 1 = Monday .. 7)")
        spans = []
        for interval in intervals or []:
            if not isinstance(interval, list | tuple) or len(interval) != 2:
                raise CalendarError(f"invalid interval {interval!r} (use [start, end])")
            sh, sm = parse_clock(interval[0])
            eh, em = parse_clock(interval[1])
            start, end = sh * 60 + sm, eh * 60 + em
            if start == 24 * 60:
                raise CalendarError(f"interval {interval!r} starts at 24:00")
            if end < start:
                raise CalendarError(f"interval {interval!r} ends before it starts")
            if end > start:
                spans.append((start, end))
        merged: list[list[int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        if merged:
            hours[weekday] = tuple((s, e) for s, e in merged)
    return hours


@dataclass(frozen=True)
class BusinessCalendar:
    """A time zone, weekly hours (minutes after local midnight) and holiday dates."""

    tz: ZoneInfo
    hours: dict[int, tuple[tuple[int, int], ...]]
    holidays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def build(cls, timezone: str, business_hours: dict | None,
              holidays: Iterable[date] = ()) -> BusinessCalendar:
        try:
            tz = ZoneInfo(timezone or "UTC")
        except (KeyError, ValueError) as exc:
            raise CalendarError(f"unknown time zone {timezone!r}") from exc
        return cls(tz=tz, hours=parse_hours(business_hours), holidays=frozenset(holidays))

    @property
    def has_hours(self) -> bool:
        return any(self.hours.values())

    # -- local <-> UTC ------------------------------------------------------------------

    def resolve(self, day: date, minute: int) -> datetime:
        """The UTC instant of local wall-clock `minute` after midnight of `day`.

        Ambiguous times take their first occurrence (fold=0); a time in a gap resolves to
        the instant of the jump, which keeps the mapping monotonic."""
        naive = datetime.combine(day, time()) + timedelta(minutes=minute)
        local = naive.replace(tzinfo=self.tz)
        utc = local.astimezone(UTC)
        if utc.astimezone(self.tz).replace(tzinfo=None) == naive:
            return utc
        # Nonexistent: fold=0 uses the offset before the jump, so `utc` is past the jump by
        # the time `naive` lies into the gap. The jump is the last instant whose offset
        # differs from utc's; find it by bisection (offsets change on whole seconds).
        earlier = naive.replace(tzinfo=self.tz, fold=1).astimezone(UTC)
        lo, hi = min(earlier, utc), max(earlier, utc)
        target = hi.astimezone(self.tz).utcoffset()
        while hi - lo > timedelta(seconds=1):
            mid = lo + (hi - lo) / 2
            mid = mid.replace(microsecond=0)
            if mid <= lo:
                break
            if mid.astimezone(self.tz).utcoffset() == target:
                hi = mid
            else:
                lo = mid
        return hi

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    # -- business intervals -------------------------------------------------------------

    def day_intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The UTC business intervals of local date `day` (empty on a holiday)."""
        if day in self.holidays:
            return []
        result = []
        for start, end in self.hours.get(day.isoweekday(), ()):
            a, b = self.resolve(day, start), self.resolve(day, end)
            if b > a:
                result.append((a, b))
        return result

    def intervals(self, start: datetime, end: datetime | None = None
                  ) -> Iterator[tuple[datetime, datetime]]:
        """Business intervals clipped to [start, end) (unbounded when end is None), in order.

        Starts a day early: a day's intervals are local, so one can reach into the next
        UTC day (and "24:00" ends on the next local date)."""
        day = self.local_date(start) - ONE_DAY
        last = self.local_date(end) + ONE_DAY if end is not None else None
        empty_days = 0
        while last is None or day <= last:
            found = False
            for a, b in self.day_intervals(day):
                found = True
                if end is not None and a >= end:
                    return
                a, b = max(a, start), b if end is None else min(b, end)
                if b > a:
                    yield a, b
            if end is None:
                empty_days = 0 if found else empty_days + 1
                if empty_days > MAX_EMPTY_DAYS:
                    raise CalendarError("the calendar has no business hours to count")
            day += ONE_DAY

    def is_business_time(self, instant: datetime) -> bool:
        day = self.local_date(instant)
        for candidate in (day - ONE_DAY, day):
            for a, b in self.day_intervals(candidate):
                if a <= instant < b:
                    return True
        return False


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("business time needs aware datetimes")
    return value.astimezone(UTC)


def business_time_between(calendar: BusinessCalendar, start: datetime,
                          end: datetime) -> timedelta:
    """Business time in [start, end); zero when end <= start."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return ZERO
    total = ZERO
    for a, b in calendar.intervals(start, end):
        total += b - a
    return total


def business_seconds_between(calendar: BusinessCalendar, start: datetime,
                             end: datetime) -> float:
    return business_time_between(calendar, start, end).total_seconds()


def add_business_time(calendar: BusinessCalendar, start: datetime,
                      amount: timedelta) -> datetime:
    """The earliest instant t >= start with business_time_between(start, t) == amount.

    Zero returns `start` itself. An amount that ends exactly at the close of an interval
    returns that close (not the next opening)."""
    start = _utc(start)
    if amount < ZERO:
        raise ValueError("cannot add a negative amount of business time")
    if amount == ZERO:
        return start
    if not calendar.has_hours:
        raise CalendarError("the calendar has no business hours to count")
    remaining = amount
    for a, b in calendar.intervals(start):
        span = b - a
        if remaining <= span:
            return a + remaining
        remaining -= span
    raise CalendarError("the calendar has no business hours to count")  # pragma: no cover


def add_business_seconds(calendar: BusinessCalendar, start: datetime,
                         seconds: float) -> datetime:
    return add_business_time(calendar, start, timedelta(seconds=seconds))


# --- Calendars of clients -------------------------------------------------------------------

def holidays_for_client(client_id: int) -> frozenset[date]:
    """The client's own holidays plus those of every shared calendar it follows."""
    from django.db.models import Q

    from .models import Holiday

    rows = Holiday.objects.filter(
        Q(client_id=client_id) | Q(calendar__clients__id=client_id)
    ).values_list("date", flat=True)
    return frozenset(rows)


def calendar_for_client(client) -> BusinessCalendar:
    """The business calendar of a core.Client (time zone, business_hours, holidays)."""
    return BusinessCalendar.build(client.timezone, client.business_hours,
                                  holidays_for_client(client.pk))


# Used for tickets that have no client yet (triage): round the clock, UTC.
ALWAYS = BusinessCalendar.build("UTC", {str(d): [["00:00", "24:00"]] for d in range(1, 8)})
