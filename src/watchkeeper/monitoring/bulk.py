"""Bulk alert actions of the console and the API: which alerts a selection names, and the
result a technician can trust.

A selection is either the ids a person checked, or a filter ("all N alerts matching this
filter"). A filter is applied again on the server at action time, through scoped(), so it
reaches only the tenants of the person acting, whatever the request says. It is applied as
submitted, not as a list of ids captured when the console was shown: the confirmation
states the count, and the result states what the filter matched at action time. To keep
"what I saw" and "what I act on" close, the console submits the moment it was shown
(`opened_before`): an alert opened after that is a new problem nobody looked at, and is
never acknowledged or resolved by a bulk action on an older view.

One action changes at most `BULK_LIMIT` alerts (the first in the console's order, newest
first); the result says how many more match, and running it again continues, because the
alerts already changed no longer qualify.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.db import transaction
from django.db.models import Count, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from watchkeeper.core.converters import parse_id
from watchkeeper.core.tenancy import scoped

from . import actions
from .choices import OPEN_STATUSES, AlertStatus, State
from .models import Alert

BULK_LIMIT = 5000

# verb -> (status it sets, label of the result)
VERBS = {
    "acknowledge": (AlertStatus.ACKNOWLEDGED, "acknowledged"),
    "snooze": (AlertStatus.SNOOZED, "snoozed"),
    "resolve": (AlertStatus.RESOLVED, "resolved"),
}
STATUS_CHOICES = ("active", "any", *AlertStatus.values)
SEVERITIES = tuple(v for v in State.values if v != State.OK)
ORDER = ("-opened_at", "-id")  # the console's order


class BulkError(ValueError):
    """A selection refused for a reason the person can fix."""


def sources(verb: str) -> list[str]:
    """The statuses an alert may be in for `verb` to change it."""
    target = VERBS[verb][0]
    return [s for s in OPEN_STATUSES if s != target]


@dataclass(frozen=True)
class AlertFilter:
    """The console's filter: client, severity, state ("active" = open, acknowledged or
    snoozed; "any"), device, check, and opened at or before a moment."""

    client: int | None = None
    severity: str = ""
    status: str = "active"
    device: int | None = None
    check_template: int | None = None
    opened_before: datetime | None = None

    FIELDS = ("client", "severity", "status", "device", "check_template", "opened_before")

    @classmethod
    def from_console(cls, data: Mapping) -> AlertFilter:
        """The filter of a console URL, lenient as a page is: a value that means nothing
        is ignored (an unknown state shows every state, as the console always did)."""
        client = str(data.get("client") or "")
        severity = data.get("severity") or ""
        status = data.get("status") or "active"
        return cls(client=parse_id(client),
                   severity=severity if severity in SEVERITIES else "",
                   status=status if status in STATUS_CHOICES else "any")

    @classmethod
    def parse(cls, data: Mapping) -> AlertFilter:
        """A filter submitted for an action, strict: a value that means nothing is an
        error, never a wider selection. Raises BulkError naming each bad field."""
        unknown = sorted(set(data) - set(cls.FIELDS))
        errors = [f"unknown filter field {name!r}" for name in unknown]
        values: dict = {}
        for name in ("client", "device", "check_template"):
            raw = data.get(name)
            if raw in (None, ""):
                continue
            if parse_id(raw) is None:
                errors.append(f"{name} must be an id")
            else:
                values[name] = int(raw)
        severity = data.get("severity") or ""
        if severity and severity not in SEVERITIES:
            errors.append(f"severity must be one of {', '.join(SEVERITIES)}")
        values["severity"] = severity
        status = data.get("status") or "active"
        if status not in STATUS_CHOICES:
            errors.append(f"status must be one of {', '.join(STATUS_CHOICES)}")
        values["status"] = status
        raw = data.get("opened_before")
        if raw not in (None, ""):
            when = raw if isinstance(raw, datetime) else _parse_time(str(raw))
            if when is None:
                errors.append("opened_before must be an ISO 8601 date and time")
            else:
                values["opened_before"] = when
        if errors:
            raise BulkError("; ".join(errors) + ".")
        return cls(**values)

    def apply(self, qs: QuerySet) -> QuerySet:
        if self.client is not None:
            qs = qs.filter(client_id=self.client)
        if self.severity:
            qs = qs.filter(severity=self.severity)
        if self.status == "active":
            qs = qs.filter(status__in=OPEN_STATUSES)
        elif self.status != "any":
            qs = qs.filter(status=self.status)
        if self.device is not None:
            qs = qs.filter(device_id=self.device)
        if self.check_template is not None:
            qs = qs.filter(check_template_id=self.check_template)
        if self.opened_before is not None:
            qs = qs.filter(opened_at__lte=self.opened_before)
        return qs

    def as_data(self) -> dict[str, str]:
        """The filter as form or query fields (empty ones left out)."""
        data = {"status": self.status}
        for name in ("client", "severity", "device", "check_template"):
            value = getattr(self, name)
            if value not in (None, ""):
                data[name] = str(value)
        if self.opened_before is not None:
            data["opened_before"] = self.opened_before.isoformat()
        return data

    def describe(self, client_name: str = "") -> str:
        """In words, for the confirmation: "client Acme · severity Critical · state
        Active · opened by 2026-11-25 10:02 UTC"."""
        parts = []
        if self.client is not None:
            parts.append(f"client {client_name or f'#{self.client}'}")
        if self.severity:
            parts.append(f"severity {State(self.severity).label}")
        state = {"active": "Active (open, acknowledged or snoozed)",
                 "any": "any"}.get(self.status) or AlertStatus(self.status).label
        parts.append(f"state {state}")
        if self.device is not None:
            parts.append(f"device #{self.device}")
        if self.check_template is not None:
            parts.append(f"check #{self.check_template}")
        if self.opened_before is not None:
            parts.append("opened by " + self.opened_before.astimezone(
                timezone.get_current_timezone()).strftime("%Y-%m-%d %H:%M %Z"))
        return " · ".join(parts)


def _parse_time(raw: str) -> datetime | None:
    try:
        when = parse_datetime(raw)
    except ValueError:
        return None
    if when is not None and timezone.is_naive(when):
        when = timezone.make_aware(when, UTC)
    return when


@dataclass
class Preview:
    """What a filter selects now, before anything changes (the confirmation)."""

    matched: int                    # alerts the filter matches, visible to the person
    actionable: int                 # of them, in a state the verb changes
    will_change: int                # min(actionable, BULK_LIMIT)
    skipped: dict[str, int]         # status -> matched alerts the verb leaves alone
    first: list[Alert]              # the first targets, in the console's order
    limit: int = BULK_LIMIT

    @property
    def capped(self) -> bool:
        return self.actionable > self.will_change

    @property
    def remaining(self) -> int:
        return self.actionable - self.will_change


@dataclass
class BulkResult:
    """What a bulk action did. changed + sum(skipped) + remaining == matched."""

    verb: str
    mode: str                        # "ids" or "filter"
    matched: int                     # visible alerts the selection named at action time
    changed: list[Alert]
    skipped: dict[str, int]          # status -> alerts left alone (already there, resolved)
    remaining: int = 0               # alerts that qualified beyond the limit (filter mode)
    not_found: list[int] = field(default_factory=list)  # ids unknown or not visible
    unchanged: list[int] = field(default_factory=list)  # ids mode: the skipped ids
    limit: int = BULK_LIMIT

    @property
    def capped(self) -> bool:
        return self.remaining > 0

    def summary(self) -> str:
        """One sentence for the console's message."""
        label = VERBS[self.verb][1]
        n = len(self.changed)
        text = f"{n} of {self.matched} alert(s) {label}."
        if self.skipped:
            reasons = ", ".join(f"{count} {skip_reason(self.verb, status)}"
                                for status, count in sorted(self.skipped.items()))
            text += f" Skipped {sum(self.skipped.values())}: {reasons}."
        if self.remaining:
            text += (f" Stopped at the limit of {self.limit} alerts per action: "
                     f"{self.remaining} more match — run it again to continue.")
        return text

    def as_data(self) -> dict:
        return {"verb": self.verb, "mode": self.mode, "matched": self.matched,
                "changed": sorted(a.pk for a in self.changed),
                "changed_count": len(self.changed), "skipped": dict(sorted(
                    self.skipped.items())), "remaining": self.remaining,
                "capped": self.capped, "limit": self.limit,
                "unchanged": sorted(self.unchanged), "not_found": sorted(self.not_found)}


def skip_reason(verb: str, status: str) -> str:
    target = VERBS[verb][0]
    if status == target:
        return f"already {VERBS[verb][1]}"
    if status == "gone":
        return "deleted meanwhile"
    return f"{AlertStatus(status).label.lower()}"


def visible_alerts(user) -> QuerySet:
    return scoped(Alert.objects.all(), user)


def _status_counts(qs: QuerySet) -> Counter:
    return Counter(dict(qs.order_by().values_list("status").annotate(n=Count("id"))
                        .values_list("status", "n")))


def preview(user, verb: str, flt: AlertFilter, *, first: int = 20,
            limit: int = BULK_LIMIT) -> Preview:
    """What running `verb` on `flt` would do now: two queries (counts by status, the first
    targets)."""
    qs = flt.apply(visible_alerts(user))
    counts = _status_counts(qs)
    ok = sources(verb)
    actionable = sum(counts[s] for s in ok)
    targets = list(qs.filter(status__in=ok).select_related("client", "device")
                   .order_by(*ORDER)[:first])
    return Preview(matched=sum(counts.values()), actionable=actionable,
                   will_change=min(actionable, limit),
                   skipped={s: n for s, n in counts.items() if s not in ok and n},
                   first=targets, limit=limit)


def _apply(actor, verb: str, ids: list[int], minutes: int | None) -> list[Alert]:
    if verb == "acknowledge":
        return actions.acknowledge_alerts(actor=actor, alerts=ids)
    if verb == "snooze":
        return actions.snooze_alerts(actor=actor, alerts=ids, minutes=minutes or 60)
    return actions.resolve_alerts(actor=actor, alerts=ids)


def run(actor, verb: str, *, ids: Iterable[int] | None = None,
        flt: AlertFilter | None = None, minutes: int | None = None,
        limit: int = BULK_LIMIT) -> BulkResult:
    """Run `verb` on the alerts `ids` or `flt` names among those `actor` may see. The state
    change itself is set-based (actions._set_alert_status); this adds the reading that
    makes the result exact: one count by status, one read of the target ids."""
    if verb not in VERBS:
        raise BulkError(f"Unknown action {verb!r}: use acknowledge, snooze or resolve.")
    if (ids is None) == (flt is None):
        raise BulkError("Name the alerts either by ids or by a filter.")
    ok = sources(verb)
    with transaction.atomic():
        if ids is not None:
            wanted = sorted(set(ids))
            if not wanted:
                raise BulkError("Select at least one alert.")
            if len(wanted) > limit:
                raise BulkError(f"At most {limit} alerts per action; select all matching "
                                "a filter instead.")
            rows = dict(visible_alerts(actor).filter(pk__in=wanted)
                        .values_list("id", "status"))
            targets = sorted(pk for pk, status in rows.items() if status in ok)
            matched, remaining = len(rows), 0
            not_found = [pk for pk in wanted if pk not in rows]
            skipped = Counter(status for status in rows.values() if status not in ok)
        else:
            qs = flt.apply(visible_alerts(actor))
            counts = _status_counts(qs)
            matched = sum(counts.values())
            targets = list(qs.filter(status__in=ok).order_by(*ORDER)
                           .values_list("id", flat=True)[:limit])
            remaining = max(sum(counts[s] for s in ok) - len(targets), 0)
            not_found = []
            skipped = Counter({s: n for s, n in counts.items() if s not in ok and n})
        done = _apply(actor, verb, targets, minutes) if targets else []
        missed = sorted(set(targets) - {a.pk for a in done})
        if missed:  # changed by someone else between our read and the lock
            now = dict(Alert.objects.filter(pk__in=missed).values_list("id", "status"))
            skipped.update(now.get(pk, "gone") for pk in missed)
    unchanged = ([pk for pk in rows if pk not in {a.pk for a in done}]
                 if ids is not None else [])
    return BulkResult(verb=verb, mode="ids" if ids is not None else "filter",
                      matched=matched, changed=done, skipped=dict(skipped),
                      remaining=remaining, not_found=not_found, unchanged=unchanged,
                      limit=limit)
