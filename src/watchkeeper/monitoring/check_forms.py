"""The check editor as a form: one set of labelled fields per check kind, with units and
validation, turned into the check's `config` (the JSON stays an API detail).

`SPECS[kind]` lists the fields a person edits for that kind. A field maps one config key;
`scale` converts what is typed to what is stored (GiB typed, bytes stored). Keys a form does
not show (set through the API, e.g. a script check's exit-code map) are kept on edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms

from .choices import SERVER_KINDS, CheckKind, State

GIB = 2**30


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    type: str = "number"  # number, int, text, bool, choice, script
    unit: str = ""
    scale: float = 1
    required: bool = False
    initial: Any = None
    help: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    minimum: float | None = 0
    maximum: float | None = None
    # For overrides: a field that only makes sense on the check itself (its target).
    target: bool = False


SEVERITY = Field("severity", "Severity when it fails", "choice",
                 choices=((State.CRITICAL, "Critical"), (State.WARNING, "Warning")))
PERCENT_WARN = Field("warning", "Warning at", unit="%", maximum=100)
PERCENT_CRIT = Field("critical", "Critical at", unit="%", maximum=100)

SPECS: dict[str, list[Field]] = {
    CheckKind.DISK: [
        Field("mount", "Mount point or drive", "text", target=True,
              help="e.g. / or C: — empty watches every mount and alerts on the fullest."),
        Field("warning", "Warning at", unit="% used", initial=85, maximum=100),
        Field("critical", "Critical at", unit="% used", initial=95, maximum=100),
        Field("free_warning_bytes", "Also warn below", unit="GiB free", scale=GIB),
        Field("free_critical_bytes", "Also critical below", unit="GiB free", scale=GIB),
    ],
    CheckKind.CPU: [
        Field("warning", "Warning at", unit="% average", initial=90, maximum=100),
        Field("critical", "Critical at", unit="% average", initial=98, maximum=100),
        Field("window_minutes", "Averaged over", "int", unit="minutes", initial=5, minimum=1,
              maximum=120),
    ],
    CheckKind.MEMORY: [
        Field("warning", "Warning at", unit="% used", initial=90, maximum=100),
        Field("critical", "Critical at", unit="% used", initial=98, maximum=100),
        Field("window_minutes", "Averaged over", "int", unit="minutes", initial=5, minimum=1,
              maximum=120),
    ],
    CheckKind.METRIC: [
        Field("metric", "Metric", "metric", required=True, target=True,
              help="A metric the agents report, e.g. load.5 or swap.percent."),
        Field("op", "Alert when the value is", "choice", initial=">=",
              choices=((">=", "at or above"), (">", "above"), ("<=", "at or below"),
                       ("<", "below"))),
        Field("warning", "Warning threshold", minimum=None),
        Field("critical", "Critical threshold", minimum=None),
    ],
    CheckKind.SERVICE: [
        Field("automatic", "Every service set to start automatically", "bool", target=True,
              help="Alert on any enabled / automatic service that is not running."),
        Field("service", "Service name", "text", target=True,
              help="One service, e.g. sshd or Spooler (when not watching every automatic "
                   "service)."),
        Field("ignore", "Ignore these services", "text",
              help="Comma-separated names left out of the automatic check."),
        Field("missing_ok", "A service that is not installed is fine", "bool"),
        SEVERITY,
    ],
    CheckKind.PROCESS: [
        Field("process", "Process name", "text", required=True, target=True,
              help="e.g. nginx or sqlservr.exe"),
        SEVERITY,
    ],
    CheckKind.REBOOT: [
        Field("severity", "Severity while a reboot is pending", "choice", initial="warning",
              choices=((State.WARNING, "Warning"), (State.CRITICAL, "Critical"))),
    ],
    CheckKind.AGENT_OFFLINE: [SEVERITY],
    CheckKind.SCRIPT: [
        Field("script_id", "Script", "script", required=True, target=True,
              help="Its exit code decides: 0 OK, 1 warning, 2 critical."),
    ],
    CheckKind.DISK_FORECAST: [
        Field("mount", "Mount point or drive", "text", target=True,
              help="Empty: every mount."),
        Field("days_warning", "Warning when full within", "int", unit="days", initial=14),
        Field("days_critical", "Critical when full within", "int", unit="days", initial=3),
        Field("lookback_days", "Trend over the last", "int", unit="days", initial=7,
              minimum=1, maximum=90),
    ],
    CheckKind.SMART: [],
    CheckKind.PING: [
        Field("host", "Host or IP address", "text", target=True,
              help="Empty when the check is bound to a device: its primary IP."),
        Field("count", "Pings per run", "int", initial=3, minimum=1, maximum=20),
        Field("loss_warning", "Warning at packet loss", unit="%", maximum=100),
        Field("loss_critical", "Critical at packet loss", unit="%", maximum=100),
        Field("latency_warning", "Warning at round trip", unit="ms"),
        Field("latency_critical", "Critical at round trip", unit="ms"),
    ],
    CheckKind.TCP: [
        Field("host", "Host or IP address", "text", target=True),
        Field("port", "Port", "int", required=True, minimum=1, maximum=65535, target=True),
        Field("banner", "Expected banner text", "text"),
        Field("latency_warning", "Warning at connect time", unit="ms"),
        Field("latency_critical", "Critical at connect time", unit="ms"),
    ],
    CheckKind.HTTP: [
        Field("url", "URL", "text", required=True, target=True,
              help="http:// or https://"),
        Field("keyword", "Page must contain", "text"),
        Field("latency_warning", "Warning at response time", unit="ms"),
        Field("latency_critical", "Critical at response time", unit="ms"),
    ],
    CheckKind.TLS: [
        Field("host", "Host name", "text", target=True,
              help="The site whose certificate is watched, e.g. portal.example.com."),
        Field("port", "Port", "int", initial=443, minimum=1, maximum=65535, target=True),
        Field("days_warning", "Warning when it expires within", "int", unit="days",
              initial=21),
        Field("days_critical", "Critical when it expires within", "int", unit="days",
              initial=7),
    ],
}
# The kinds the policy page edits (DNS and SNMP checks live on the network-check page,
# heartbeats on theirs).
EDITABLE_KINDS = list(SPECS)
KIND_CHOICES = [(k, CheckKind(k).label) for k in EDITABLE_KINDS]


def field_name(kind: str, key: str) -> str:
    return f"{kind}__{key}"


def _shown(value: Any, spec: Field) -> Any:
    if value in (None, ""):
        return None
    if spec.type in ("number", "int") and spec.scale != 1:
        shown = float(value) / spec.scale
        return round(shown, 2)
    return value


def initial_for(kind: str, config: dict) -> dict[str, Any]:
    """The form's initial values for a stored config of `kind`."""
    initial = {}
    for spec in SPECS.get(kind, []):
        value = _shown((config or {}).get(spec.key), spec)
        if spec.key == "ignore" and isinstance(value, list):
            value = ", ".join(value)
        if value is not None:
            initial[field_name(kind, spec.key)] = value
    return initial


def _django_field(spec: Field, *, for_override: bool = False) -> forms.Field:
    label = f"{spec.label} ({spec.unit})" if spec.unit else spec.label
    common = {"label": label, "required": False, "help_text": spec.help}
    if spec.type == "bool":
        if for_override:
            return forms.NullBooleanField(widget=forms.Select(choices=[
                ("unknown", "As inherited"), ("true", "Yes"), ("false", "No")]), **common)
        return forms.BooleanField(**common)
    if spec.type == "choice":
        choices = list(spec.choices)
        if for_override:
            choices = [("", "As inherited")] + choices
        return forms.ChoiceField(choices=choices, **common)
    if spec.type in ("text", "metric"):
        attrs = {"list": "metric-names"} if spec.type == "metric" else {}
        return forms.CharField(max_length=500, widget=forms.TextInput(attrs=attrs), **common)
    if spec.type == "script":
        return forms.TypedChoiceField(coerce=int, choices=[], empty_value=None, **common)
    cls = forms.IntegerField if spec.type == "int" else forms.FloatField
    return cls(min_value=spec.minimum, max_value=spec.maximum,
               widget=forms.NumberInput(attrs={"step": "any"} if cls is forms.FloatField
                                        else {}), **common)


def _script_choices() -> list[tuple[Any, str]]:
    from watchkeeper.agents.selectors import all_scripts

    return [("", "Choose a script")] + list(all_scripts().values_list("id", "name"))


def config_from(kind: str, data: dict[str, Any], *, add_error=None,
                for_override: bool = False) -> dict[str, Any]:
    """The config of `kind` from cleaned form data: typed values scaled to what is stored;
    required fields checked (not for overrides, where empty means "as inherited")."""
    config: dict[str, Any] = {}
    for spec in SPECS.get(kind, []):
        if for_override and spec.target:
            continue
        name = field_name(kind, spec.key)
        value = data.get(name)
        if value in (None, "") or (spec.type == "bool" and not value and not for_override):
            if spec.required and not for_override and add_error:
                add_error(name, "Required for this kind of check.")
            continue
        if spec.type in ("number", "int") and spec.scale != 1:
            value = int(value * spec.scale)
        if spec.key == "ignore":
            value = [v.strip() for v in str(value).split(",") if v.strip()]
        config[spec.key] = value
    if kind == CheckKind.SERVICE and not for_override and not config.get("automatic") \
            and not config.get("service") and add_error:
        add_error(field_name(kind, "service"),
                  "Name a service, or watch every automatic service.")
    for low, high in (("warning", "critical"), ("days_critical", "days_warning"),
                      ("loss_warning", "loss_critical"),
                      ("latency_warning", "latency_critical")):
        lo, hi = config.get(low), config.get(high)
        op = config.get("op") or ">="
        if lo is not None and hi is not None and add_error:
            if (lo > hi and op.startswith(">")) or (lo < hi and op.startswith("<")):
                add_error(field_name(kind, high if op.startswith(">") else low),
                          "The critical threshold must be beyond the warning one.")
    return config


class CheckForm(forms.Form):
    """Add or edit a check of a policy: common fields, then the chosen kind's fields."""

    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=KIND_CHOICES, label="What to check")
    fail_after = forms.IntegerField(min_value=1, max_value=100, initial=1,
                                    label="Alert after this many failed readings in a row")
    recover_after = forms.IntegerField(min_value=1, max_value=100, initial=1,
                                       label="Recover after this many good readings in a row")
    interval_seconds = forms.IntegerField(
        min_value=10, max_value=86400, initial=60, label="Run every (seconds)",
        help_text="Network checks only; agent checks follow the agent's reports.")
    is_enabled = forms.BooleanField(required=False, initial=True, label="Enabled")

    def __init__(self, *args, check=None, **kwargs):
        if check is not None and "initial" not in kwargs:
            kwargs["initial"] = {"name": check.name, "kind": check.kind,
                                 "fail_after": check.fail_after,
                                 "recover_after": check.recover_after,
                                 "interval_seconds": check.interval_seconds,
                                 "is_enabled": check.is_enabled,
                                 **initial_for(check.kind, _visible_config(check))}
        super().__init__(*args, **kwargs)
        self.check = check
        if check is not None:
            self.fields["kind"].disabled = True
            if check.kind not in SPECS:
                self.fields["kind"].choices = [(check.kind, check.get_kind_display())]
        scripts = None
        for kind, specs in SPECS.items():
            for spec in specs:
                name = field_name(kind, spec.key)
                self.fields[name] = _django_field(spec)
                if spec.initial is not None and check is None:
                    self.fields[name].initial = spec.initial
                if spec.type == "script":
                    scripts = scripts or _script_choices()
                    self.fields[name].choices = scripts

    def kind_groups(self):
        """[(kind, label, [bound fields])] for the template's fieldsets."""
        return [(kind, CheckKind(kind).label,
                 [self[field_name(kind, s.key)] for s in specs])
                for kind, specs in SPECS.items()]

    def common_fields(self):
        return [self[n] for n in ("name", "kind", "fail_after", "recover_after",
                                  "interval_seconds", "is_enabled")]

    def clean(self):
        data = super().clean()
        kind = data.get("kind") or (self.check.kind if self.check else None)
        if kind:
            config = config_from(kind, data, add_error=self.add_error)
            if self.check is not None:
                # Keys the form does not show (API-only settings) are kept.
                shown = {s.key for s in SPECS.get(kind, [])}
                kept = {k: v for k, v in _visible_config(self.check).items()
                        if k not in shown}
                config = {**kept, **config}
            data["config"] = config
            bound = self.check is not None and self.check.device_id
            if kind in SERVER_KINDS and data.get("is_enabled") and not bound and not any(
                    config.get(k) for k in ("host", "url", "name", "target")):
                key = "url" if kind == CheckKind.HTTP else "host"
                self.add_error(field_name(kind, key), "Name what to watch before enabling "
                                                      "the check.")
        return data

    def check_fields(self) -> dict[str, Any]:
        d = self.cleaned_data
        fields = {"name": d["name"], "config": d["config"], "fail_after": d["fail_after"],
                  "recover_after": d["recover_after"], "is_enabled": d["is_enabled"]}
        if (d.get("kind") or self.check.kind) in SERVER_KINDS:
            fields["interval_seconds"] = d["interval_seconds"]
        return fields


def _visible_config(check) -> dict:
    from .actions import masked_config

    return masked_config(check.kind, check.config)


class OverrideForm(forms.Form):
    """A per-level change of one check: run it or not there, other thresholds there."""

    target = forms.ChoiceField(label="Where")
    enabled = forms.ChoiceField(label="Run the check there", initial="inherit", choices=[
        ("inherit", "As the check says"), ("yes", "Yes"), ("no", "No, skip it there")])

    def __init__(self, *args, check, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.check = check
        self.fields["target"].choices = targets
        self.specs = [s for s in SPECS.get(check.kind, []) if not s.target]
        for spec in self.specs:
            field = _django_field(spec, for_override=True)
            field.help_text = "Empty: as the check says."
            self.fields[field_name(check.kind, spec.key)] = field

    def kind_fields(self):
        return [self[field_name(self.check.kind, s.key)] for s in self.specs]

    def clean(self):
        data = super().clean()
        data["config"] = config_from(self.check.kind, data, for_override=True)
        data["is_enabled"] = {"yes": True, "no": False}.get(data.get("enabled"))
        if data["is_enabled"] is None and not data["config"]:
            raise forms.ValidationError("Change something: skip the check there, or give "
                                        "other thresholds.")
        return data


def summary(kind: str, config: dict) -> str:
    """A check's settings in words, from its kind's fields (secrets masked)."""
    from .actions import masked_config

    config = masked_config(kind, config)
    parts = []
    for spec in SPECS.get(kind, []):
        value = config.get(spec.key)
        if value in (None, "", [], False):
            continue
        if spec.type == "bool":
            parts.append(spec.label.lower())
        elif spec.type == "choice":
            parts.append(f"{spec.label.lower()}: {dict(spec.choices).get(value, value)}")
        elif spec.type == "script":
            from watchkeeper.agents.selectors import all_scripts

            name = all_scripts().filter(pk=value).values_list("name", flat=True).first()
            parts.append(f"script {name or value}")
        elif spec.type in ("number", "int"):
            try:
                shown = float(value) / spec.scale
            except (TypeError, ValueError):
                shown = value
            shown = f"{shown:g}" if isinstance(shown, float) else shown
            parts.append(f"{spec.label.lower()} {shown} {spec.unit}".strip())
        elif spec.key == "ignore" and isinstance(value, list):
            parts.append(f"ignoring {', '.join(value)}")
        else:
            parts.append(f"{spec.label.lower()} {value}")
    return ", ".join(parts) or "defaults"


METRIC_LABELS = {
    "cpu.percent": "CPU used (%)", "mem.percent": "Memory used (%)",
    "mem.used_bytes": "Memory used (bytes)", "swap.percent": "Swap used (%)",
    "load.1": "Load average, 1 minute", "load.5": "Load average, 5 minutes",
    "load.15": "Load average, 15 minutes", "net.rx_bps": "Network received (bytes/s)",
    "net.tx_bps": "Network sent (bytes/s)", "uptime.seconds": "Uptime (seconds)",
    "proc.count": "Processes running",
}
METRIC_PREFIXES = {"disk.used_percent:": "Disk used (%) of {}",
                   "disk.free_bytes:": "Disk free (bytes) of {}",
                   "disk.used_bytes:": "Disk used (bytes) of {}"}


def metric_label(name: str) -> str:
    """A person's name for a metric the agents report ("Disk used (%) of C:")."""
    if name in METRIC_LABELS:
        return METRIC_LABELS[name]
    for prefix, label in METRIC_PREFIXES.items():
        if name.startswith(prefix):
            return label.format(name[len(prefix):])
    return name
