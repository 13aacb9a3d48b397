"""The business-hours engine (helpdesk/sla/calendars.py), property-tested across time zones and
DST changes: adding then measuring round-trips, monotonicity, additivity, zero outside
hours, and agreement with a brute-force minute walk."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from watchkeeper.helpdesk.sla.calendars import (
    BusinessCalendar,
    CalendarError,
    add_business_seconds,
    add_business_time,
    business_seconds_between,
    business_time_between,
    parse_hours,
)

ZONES = ["Europe/London", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
         "Pacific/Chatham", "America/Santiago", "UTC"]
WEEKDAYS = {str(d): [["08:00", "18:00"]] for d in range(1, 6)}

# Instants around the DST changes of the chosen zones (2024-2026), to the minute.
instants = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31),
                        timezones=st.just(UTC)).map(lambda d: d.replace(second=0,
                                                                         microsecond=0))


def _transitions(zone: str) -> list[datetime]:
    """UTC instants (to the hour) just after which the zone's UTC offset changed."""
    tz, found = ZoneInfo(zone), []
    t = datetime(2024, 1, 1, tzinfo=UTC)
    previous = t.astimezone(tz).utcoffset()
    while t < datetime(2027, 1, 1, tzinfo=UTC):
        t += timedelta(minutes=30)
        offset = t.astimezone(tz).utcoffset()
        if offset != previous:
            found.append(t)
            previous = offset
    return found


TRANSITIONS = {zone: _transitions(zone) for zone in ZONES}


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def day_hours(draw):
    """Zero to two intervals in a day, on quarter hours, sometimes round the clock or
    across the small hours when the clocks change."""
    kind = draw(st.sampled_from(["office", "night", "full", "random", "none"]))
    if kind == "office":
        return [["08:00", "18:00"]]
    if kind == "night":
        return [["00:00", "04:00"], ["22:00", "24:00"]]
    if kind == "full":
        return [["00:00", "24:00"]]
    if kind == "none":
        return []
    points = sorted(draw(st.lists(st.integers(0, 96), min_size=2, max_size=4, unique=True)))
    pairs = [points[i:i + 2] for i in range(0, len(points) - 1, 2)]
    return [[_clock(a * 15), _clock(b * 15)] for a, b in pairs]


@st.composite
def calendars(draw):
    zone = draw(st.sampled_from(ZONES))
    hours = {str(d): draw(day_hours()) for d in range(1, 8)}
    assume(any(hours.values()))
    holidays = draw(st.sets(st.dates(date(2024, 1, 1), date(2027, 1, 31)), max_size=20))
    return BusinessCalendar.build(zone, hours, holidays)


@st.composite
def near_changes(draw, cal: BusinessCalendar):
    """An instant anywhere, or (mostly) within four days before a DST change of the zone."""
    changes = TRANSITIONS[cal.tz.key]
    if not changes or draw(st.integers(0, 3)) == 0:
        return draw(instants)
    change = draw(st.sampled_from(changes))
    return change - timedelta(minutes=draw(st.integers(0, 4 * 24 * 60)))


@st.composite
def cases(draw, extra: int = 1):
    cal = draw(calendars())
    return (cal, *[draw(near_changes(cal)) for _ in range(extra)])


def _naive_business(cal: BusinessCalendar, instant: datetime) -> bool:
    """Independent definition: the instant's local wall clock is inside an interval of its
    local weekday, on a date that is not a holiday."""
    local = instant.astimezone(cal.tz)
    if local.date() in cal.holidays:
        return False
    minute = local.hour * 60 + local.minute
    return any(a <= minute < b for a, b in cal.hours.get(local.isoweekday(), ()))


def _boundaries_clean(cal: BusinessCalendar, start: datetime, end: datetime) -> bool:
    """No interval boundary of a day in range falls on a skipped or repeated local time
    (where wall-clock membership is ambiguous and the engine applies its resolve rule)."""
    day = cal.local_date(start) - timedelta(days=1)
    while day <= cal.local_date(end) + timedelta(days=1):
        for a, b in cal.hours.get(day.isoweekday(), ()):
            for minute in (a, b):
                naive = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
                first = naive.replace(tzinfo=cal.tz)
                second = naive.replace(tzinfo=cal.tz, fold=1)
                if first.utcoffset() != second.utcoffset():
                    return False
        day += timedelta(days=1)
    return True


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SETTINGS
@given(case=cases(), seconds=st.integers(0, 40 * 24 * 3600))
def test_adding_then_measuring_round_trips(case, seconds):
    cal, start = case
    # Given a calendar, a start and an amount of business time
    # When the amount is added and the business time between start and result is measured
    due = add_business_seconds(cal, start, seconds)

    # Then it is exactly that amount, and the result is not before the start
    assert due >= start
    assert business_seconds_between(cal, start, due) == seconds


@SETTINGS
@given(case=cases(), seconds=st.integers(1, 20 * 24 * 3600))
def test_a_due_instant_is_the_earliest_one(case, seconds):
    cal, start = case
    # Given a due instant for a positive amount
    due = add_business_seconds(cal, start, seconds)

    # Then one second less business time is not enough: the due instant is earliest
    assert business_seconds_between(cal, start, due - timedelta(seconds=1)) < seconds


@SETTINGS
@given(case=cases(), a=st.integers(0, 10 * 24 * 3600), b=st.integers(0, 10 * 24 * 3600))
def test_adding_is_monotonic_and_additive(case, a, b):
    cal, start = case
    # Given two amounts
    small, large = sorted((a, b))

    # Then a larger amount is never due earlier, and adding in two steps lands where one
    # step does
    assert add_business_seconds(cal, start, small) <= add_business_seconds(cal, start, large)
    step = add_business_seconds(cal, start, a)
    assert add_business_seconds(cal, step, b) == add_business_seconds(cal, start, a + b)


@SETTINGS
@given(case=cases(extra=3))
def test_measuring_is_additive_and_bounded_by_wall_time(case):
    cal, t1, t2, t3 = case
    # Given three ordered instants
    a, b, c = sorted((t1, t2, t3))

    # Then business time splits at the middle one and never exceeds elapsed time
    ab, bc = business_time_between(cal, a, b), business_time_between(cal, b, c)
    assert ab + bc == business_time_between(cal, a, c)
    assert timedelta(0) <= ab <= b - a
    # and measuring backwards is zero
    assert business_time_between(cal, c, a) == timedelta(0) or a == c


@SETTINGS
@given(case=cases(), minutes=st.integers(1, 4 * 24 * 60))
def test_agrees_with_a_brute_force_minute_walk(case, minutes):
    cal, start = case
    # Given a range of whole minutes whose day boundaries are not on skipped/repeated times
    end = start + timedelta(minutes=minutes)
    assume(_boundaries_clean(cal, start, end))

    # When each minute of the range is checked against the wall clock
    expected = sum(_naive_business(cal, start + timedelta(minutes=m)) for m in range(minutes))

    # Then the engine counts the same number of business minutes
    assert business_seconds_between(cal, start, end) == expected * 60
    for m in range(0, minutes, 97):
        instant = start + timedelta(minutes=m)
        assert cal.is_business_time(instant) == _naive_business(cal, instant)


@SETTINGS
@given(case=cases(), minutes=st.integers(1, 3 * 24 * 60))
def test_zero_outside_business_hours(case, minutes):
    cal, start = case
    # Given a range in which no minute is business time by the wall clock
    end = start + timedelta(minutes=minutes)
    assume(_boundaries_clean(cal, start, end))
    assume(not any(_naive_business(cal, start + timedelta(minutes=m)) for m in range(minutes)))

    # Then it holds no business time, and any amount added from its start lands after it
    assert business_seconds_between(cal, start, end) == 0
    assert add_business_seconds(cal, start, 60) > end


def test_a_full_day_lasts_23_or_25_hours_when_the_clocks_change():
    # Given round-the-clock hours in London
    cal = BusinessCalendar.build("Europe/London",
                                 {str(d): [["00:00", "24:00"]] for d in range(1, 8)})
    tz = ZoneInfo("Europe/London")

    # When the days of the 2025 changes are measured
    def day_length(d: date) -> float:
        start = datetime(d.year, d.month, d.day, tzinfo=tz)
        end = (start + timedelta(days=1)).replace(tzinfo=None).replace(tzinfo=tz)
        return business_seconds_between(cal, start, end) / 3600

    # Then spring forward has 23 business hours and fall back 25
    assert day_length(date(2025, 3, 30)) == 23
    assert day_length(date(2025, 10, 26)) == 25
    assert day_length(date(2025, 6, 1)) == 24


def test_lord_howe_half_hour_change_and_chatham_offsets():
    # Given 01:00-03:00 hours on Lord Howe, whose clocks go forward 30 minutes at 02:00
    cal = BusinessCalendar.build("Australia/Lord_Howe",
                                 {str(d): [["01:00", "03:00"]] for d in range(1, 8)})
    day = datetime(2025, 10, 5, tzinfo=ZoneInfo("Australia/Lord_Howe"))

    # Then that night has 1.5 business hours, and an ordinary night 2
    assert business_seconds_between(cal, day, day + timedelta(days=1)) == 5400
    ordinary = datetime(2025, 10, 12, tzinfo=ZoneInfo("Australia/Lord_Howe"))
    assert business_seconds_between(cal, ordinary, ordinary + timedelta(days=1)) == 7200

    # And a 08:00-18:00 day on the Chatham Islands (UTC+12:45/+13:45) starts at its local 8
    chatham = BusinessCalendar.build("Pacific/Chatham", WEEKDAYS)
    start = datetime(2025, 7, 6, 12, 0, tzinfo=UTC)  # Monday 00:45 local
    due = add_business_seconds(chatham, start, 3600)
    assert due.astimezone(ZoneInfo("Pacific/Chatham")).strftime("%a %H:%M") == "Mon 09:00"


def test_weekend_and_holidays_are_skipped():
    # Given office hours in New York with Monday 2025-07-07 a holiday
    cal = BusinessCalendar.build("America/New_York", WEEKDAYS, {date(2025, 7, 7)})
    ny = ZoneInfo("America/New_York")
    friday_5pm = datetime(2025, 7, 4, 17, 0, tzinfo=ny)

    # When four business hours are added from Friday 17:00
    due = add_business_time(cal, friday_5pm, timedelta(hours=4))

    # Then one hour is used on Friday, and the rest on Tuesday morning
    assert due == datetime(2025, 7, 8, 11, 0, tzinfo=ny)


def test_an_amount_ending_at_closing_time_is_due_at_closing_time():
    cal = BusinessCalendar.build("Asia/Kolkata", WEEKDAYS)
    monday_8 = datetime(2025, 7, 7, 8, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
    due = add_business_time(cal, monday_8, timedelta(hours=10))
    assert due == datetime(2025, 7, 7, 18, 0, tzinfo=ZoneInfo("Asia/Kolkata"))


def test_invalid_definitions_are_refused():
    with pytest.raises(CalendarError):
        parse_hours({"8": [["08:00", "18:00"]]})
    with pytest.raises(CalendarError):
        parse_hours({"1": [["18:00", "08:00"]]})
    with pytest.raises(CalendarError):
        parse_hours({"1": [["8am", "18:00"]]})
    with pytest.raises(CalendarError):
        BusinessCalendar.build("Mars/Olympus", WEEKDAYS)
    empty = BusinessCalendar.build("UTC", {})
    with pytest.raises(CalendarError):
        add_business_seconds(empty, datetime(2025, 1, 1, tzinfo=UTC), 60)


def test_overlapping_intervals_are_merged():
    assert parse_hours({"1": [["09:00", "12:00"], ["08:00", "10:00"], ["12:00", "13:00"]]}) == {
        1: ((480, 780),)}


def test_a_boundary_in_the_skipped_hour_resolves_to_the_jump():
    # Given hours 01:30-02:30 in London on the Sunday the clocks skip 01:00-02:00
    cal = BusinessCalendar.build("Europe/London", {"7": [["01:30", "02:30"]]})
    sunday = datetime(2025, 3, 30, tzinfo=ZoneInfo("Europe/London"))

    # Then the interval runs from the jump (01:00 UTC) to 02:30 BST: half an hour
    assert cal.day_intervals(sunday.date()) == [
        (datetime(2025, 3, 30, 1, 0, tzinfo=UTC), datetime(2025, 3, 30, 1, 30, tzinfo=UTC))]
    assert business_seconds_between(cal, sunday, sunday + timedelta(days=1)) == 1800


@SETTINGS
@given(zone=st.sampled_from([z for z in ZONES if TRANSITIONS[z]]), data=st.data())
def test_local_to_utc_is_monotonic_through_every_change(zone, data):
    # Given a local date on which the zone's clocks change
    cal = BusinessCalendar.build(zone, {})
    change = data.draw(st.sampled_from(TRANSITIONS[zone]))
    day = cal.local_date(change)

    # Then resolving each quarter hour of the day never goes backwards
    points = [cal.resolve(day, m) for m in range(0, 24 * 60 + 1, 15)]
    assert points == sorted(points)
