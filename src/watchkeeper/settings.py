"""Watchkeeper settings.

Every setting comes from an environment variable read through the small typed helpers
below (docs/configuration.md lists them all). With no variable set, Watchkeeper runs on
SQLite in ./var with a generated secret key: the embedded default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw not in (None, "") else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env_str("WATCHKEEPER_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _secret_from_file(filename: str, nbytes: int = 48) -> str:
    """Read a secret kept in the data directory, creating it (mode 0600) on first run."""
    path = DATA_DIR / filename
    if not path.exists():
        # O_EXCL: two processes starting at once must not both write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


SECRET_KEY = env_str("WATCHKEEPER_SECRET_KEY") or _secret_from_file("secret_key")
# Master key for encrypting secrets at rest (webhook secrets, TOTP seeds). Kept outside the
# database so a database dump alone reveals nothing.
MASTER_KEY = env_str("WATCHKEEPER_MASTER_KEY") or _secret_from_file("master_key", 32)

DEBUG = env_bool("WATCHKEEPER_DEBUG", False)
ALLOWED_HOSTS = env_list("WATCHKEEPER_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
BASE_URL = env_str("WATCHKEEPER_BASE_URL", "http://127.0.0.1:8000")
CSRF_TRUSTED_ORIGINS = env_list("WATCHKEEPER_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "django_rq",
    "django_tasks_rq",
    "watchkeeper.core",
    "watchkeeper.inventory",
    "watchkeeper.agents",
    "watchkeeper.helpdesk",
    "watchkeeper.monitoring",
    "watchkeeper.patching",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "watchkeeper.core.middleware.SecurityHeadersMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "watchkeeper.core.middleware.RequestContextMiddleware",
    "watchkeeper.core.middleware.PermissionMiddleware",
]

ROOT_URLCONF = "watchkeeper.urls"
WSGI_APPLICATION = "watchkeeper.wsgi.application"
ASGI_APPLICATION = "watchkeeper.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "watchkeeper.core.context_processors.shell",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASE_URL = env_str("WATCHKEEPER_DATABASE_URL", f"sqlite:///{DATA_DIR / 'watchkeeper.db'}")
# Under ASGI every request's sync code runs on a fresh thread and Django connections are
# per thread, so persistent connections (CONN_MAX_AGE > 0) are never reused and pile up until
# PostgreSQL refuses new clients (measured: 99 connections and HTTP 500s at 16 concurrent
# clients). We close per request and, on PostgreSQL, borrow from psycopg's pool instead.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the single writer; IMMEDIATE transactions take the write
    # lock up front so two writers queue on busy_timeout instead of failing with "locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
        ),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Bounded waits (docs/reliability.md): a database that is down or hung costs a request
    # at most DB_CONNECT_TIMEOUT (+ the pool wait) or DB_STATEMENT_TIMEOUT, then the answer
    # is 503 + Retry-After (core/unavailable.py), never a long hang.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # no dead pooled connection after
    # a database restart: each is checked when it is taken from the pool
    _pg = DATABASES["default"].setdefault("OPTIONS", {})
    _pg.setdefault("connect_timeout", env_int("WATCHKEEPER_DB_CONNECT_TIMEOUT", 3))
    _statement_ms = env_int("WATCHKEEPER_DB_STATEMENT_TIMEOUT", 30) * 1000
    if _statement_ms > 0:
        _pg["options"] = (_pg.get("options", "") + f" -c statement_timeout={_statement_ms}"
                          ).strip()
    if env_bool("WATCHKEEPER_DB_POOL", True):
        _pg["pool"] = {
            "min_size": env_int("WATCHKEEPER_DB_POOL_MIN", 2),
            "max_size": env_int("WATCHKEEPER_DB_POOL_MAX", 10),
            # How long a request waits for a pooled connection (all busy, or the database
            # unreachable) before it is answered 503.
            "timeout": env_int("WATCHKEEPER_DB_POOL_TIMEOUT", 5),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Tasks --------------------------------------------------------------------------------
TASKS_URL = env_str("WATCHKEEPER_TASKS_URL", "")
if TASKS_URL.startswith(("redis://", "rediss://")):
    TASKS = {"default": {"BACKEND": "django_tasks_rq.RQBackend", "QUEUES": ["default"]}}
elif TASKS_URL == "immediate":
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
else:
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
RQ_QUEUES = {"default": {"URL": TASKS_URL or "redis://127.0.0.1:6379/0", "DEFAULT_TIMEOUT": 600}}

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "core.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOCKOUT_THRESHOLD = env_int("WATCHKEEPER_LOCKOUT_THRESHOLD", 5)
LOCKOUT_MINUTES = env_int("WATCHKEEPER_LOCKOUT_MINUTES", 15)
LOGIN_IP_LIMIT = env_int("WATCHKEEPER_LOGIN_IP_LIMIT", 20)  # failures per IP per 15 minutes
# Progressive delay (docs/security.md): after LOGIN_DELAY_AFTER failures of an account from
# unknown devices, or from one address, each further attempt waits 2**n seconds (n = the
# failures past the threshold), at most LOGIN_DELAY_MAX_SECONDS.
LOGIN_DELAY_AFTER = env_int("WATCHKEEPER_LOGIN_DELAY_AFTER", 5)
LOGIN_DELAY_MAX_SECONDS = env_int("WATCHKEEPER_LOGIN_DELAY_MAX_SECONDS", 300)
LOGIN_ALERT_AFTER = env_int("WATCHKEEPER_LOGIN_ALERT_AFTER", 5)  # failures, then mail the owner
REAUTH_MINUTES = env_int("WATCHKEEPER_REAUTH_MINUTES", 10)  # "recent" sign-in for new tokens

# --- Security -----------------------------------------------------------------------------
SECURE = env_bool("WATCHKEEPER_SECURE", False)  # set when served behind TLS
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_SSL_REDIRECT = SECURE
SECURE_HSTS_SECONDS = 31536000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool(
    "WATCHKEEPER_BEHIND_PROXY") else None
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("WATCHKEEPER_SESSION_HOURS", 12) * 3600
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
TRUSTED_PROXIES = env_list("WATCHKEEPER_TRUSTED_PROXIES")

# --- Stored files (attachments): one storage layer, local by default -----------------------
# WATCHKEEPER_STORAGE_URL unset: files under DATA_DIR/attachments (Django's file system
# storage). s3://BUCKET[/PREFIX]?endpoint_url=https://...&region_name=...: an S3-compatible
# object store through django-storages (pip install "watchkeeper[s3]"), credentials from
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, so several web and mail-in hosts share the files.
STORAGE_URL = env_str("WATCHKEEPER_STORAGE_URL", "")


def _attachment_storage(url: str) -> dict:
    if not url:
        return {"BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(DATA_DIR / "attachments"),
                            "file_permissions_mode": 0o600,
                            "directory_permissions_mode": 0o700}}
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ImproperlyConfigured("WATCHKEEPER_STORAGE_URL must be s3://BUCKET[/PREFIX]"
                                   "[?endpoint_url=...&region_name=...] or empty (local).")
    options = {"bucket_name": parts.netloc, "location": parts.path.strip("/"),
               "file_overwrite": True, "default_acl": None, "querystring_auth": True}
    options.update(dict(parse_qsl(parts.query)))
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


STORAGES = {
    "default": _attachment_storage(STORAGE_URL),
    "attachments": _attachment_storage(STORAGE_URL),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Static -------------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
# Browser libraries come from the npm registry (package.json + lock) into node_modules; we
# serve them from there, never from a CDN and never copied into the repository.
NODE_MODULES = Path(env_str("WATCHKEEPER_NODE_MODULES", str(BASE_DIR.parent.parent /
                                                            "node_modules")))
# The project's own CSS/JS (src/watchkeeper/static) is not an app's static dir: list it here.
STATICFILES_DIRS = [BASE_DIR / "static"] + (
    [("vendor", NODE_MODULES)] if NODE_MODULES.is_dir() else [])
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- I18N ---------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
# Currency of every amount shown (billing runs, rates, contracts): an ISO 4217 code.
CURRENCY = env_str("WATCHKEEPER_CURRENCY", "USD").upper()[:3]
USE_I18N = True
USE_TZ = True

# --- REST API -----------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "watchkeeper.core.api.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["watchkeeper.core.api.permissions.DeclaredPermission"],
    "DEFAULT_PAGINATION_CLASS": "watchkeeper.core.api.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "watchkeeper.core.api.filters.FilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "watchkeeper.core.api.schema.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "watchkeeper.core.api.problems.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Watchkeeper API",
    "DESCRIPTION": "REST API of Watchkeeper. Authenticate with `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "watchkeeper.core.api.schema.add_links"],
    # `<id:pk>` (core/converters.py): a 64-bit database id.
    "PATH_CONVERTER_OVERRIDES": {
        "id": {"type": "integer", "format": "int64", "minimum": 1,
               "maximum": 9223372036854775807},
    },
    # One name per choice set: several models share field names such as "status"/"source".
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "watchkeeper.core.choices.DeliveryStatus",
        "AuditActionEnum": "watchkeeper.core.choices.AuditAction",
        "RoleEnum": "watchkeeper.core.choices.Role",
        "TokenScopeEnum": "watchkeeper.core.choices.TokenScope",
        "SourceKindEnum": "watchkeeper.inventory.choices.SourceKind",
        "LifecycleStatusEnum": "watchkeeper.inventory.choices.LifecycleStatus",
        "ConflictStatusEnum": "watchkeeper.inventory.choices.ConflictStatus",
        "ImportStatusEnum": "watchkeeper.inventory.choices.ImportStatus",
        "RunStatusEnum": "watchkeeper.inventory.choices.RunStatus",
        "TicketStatusEnum": "watchkeeper.helpdesk.choices.Status",
        "TicketSourceEnum": "watchkeeper.helpdesk.choices.Source",
        "TicketTypeEnum": "watchkeeper.helpdesk.choices.TicketType",
        "TicketLevelEnum": "watchkeeper.helpdesk.choices.Level",
        "TicketPriorityEnum": "watchkeeper.helpdesk.choices.Priority",
        "TicketEntryKindEnum": "watchkeeper.helpdesk.choices.EntryKind",
        "InboundStateEnum": "watchkeeper.helpdesk.choices.InboundState",
        "NotificationKindEnum": "watchkeeper.helpdesk.choices.NotificationKind",
        "CustomFieldTypeEnum": "watchkeeper.helpdesk.choices.FieldType",
        "SlaMetricEnum": "watchkeeper.helpdesk.sla.choices.Metric",
        "SlaClockStateEnum": "watchkeeper.helpdesk.sla.choices.ClockState",
        "ContractKindEnum": "watchkeeper.helpdesk.billing.choices.ContractKind",
        "BillingRunStatusEnum": "watchkeeper.helpdesk.billing.choices.RunStatus",
        "BillingLineKindEnum": "watchkeeper.helpdesk.billing.choices.LineKind",
        "CheckKindEnum": "watchkeeper.monitoring.choices.CheckKind",
        "ServerCheckKindEnum": "watchkeeper.monitoring.choices.SERVER_KIND_VALUES",
        "MonitoringStateEnum": "watchkeeper.monitoring.choices.State",
        "AlertStatusEnum": "watchkeeper.monitoring.choices.AlertStatus",
        "AlertSuppressionEnum": "watchkeeper.monitoring.choices.Suppression",
        "PolicyScopeEnum": "watchkeeper.monitoring.choices.Scope",
        "DependencyKindEnum": "watchkeeper.inventory.relations.choices.RelationKind",
        "RelationSourceEnum": "watchkeeper.inventory.relations.choices.RelationSource",
        "ChannelKindEnum": "watchkeeper.monitoring.choices.ChannelKind",
        "WebhookFormatEnum": "watchkeeper.monitoring.choices.WebhookFormat",
        "NotificationStatusEnum": "watchkeeper.monitoring.choices.NotificationStatus",
    },
}

# --- Events and webhooks ------------------------------------------------------------------
OUTBOX_MAX_ATTEMPTS = env_int("WATCHKEEPER_OUTBOX_MAX_ATTEMPTS", 8)
WEBHOOK_TIMEOUT = env_int("WATCHKEEPER_WEBHOOK_TIMEOUT", 10)
OUTBOX_LEASE_SECONDS = env_int("WATCHKEEPER_OUTBOX_LEASE_SECONDS", 300)
# /readyz counts a worker alive when its heartbeat is at most this old: a few heartbeats,
# so a killed worker shows within seconds.
WORKER_STALE_SECONDS = env_int("WATCHKEEPER_WORKER_STALE_SECONDS", 20)

# --- Processes (worker, scheduler) ----------------------------------------------------------
HEARTBEAT_SECONDS = env_int("WATCHKEEPER_HEARTBEAT_SECONDS", 5)
# /readyz answers 503 when the data directory's file system has less free space than this.
DISK_MIN_FREE_MB = env_int("WATCHKEEPER_DISK_MIN_FREE_MB", 256)
# Seconds a client asked to come back after a 503 (database unavailable, disk full).
RETRY_AFTER_SECONDS = env_int("WATCHKEEPER_RETRY_AFTER_SECONDS", 10)
OUTBOX_SWEEP_SECONDS = env_int("WATCHKEEPER_OUTBOX_SWEEP_SECONDS", 15)
TASK_RESULT_RETENTION_DAYS = env_int("WATCHKEEPER_TASK_RESULT_DAYS", 14)
LOGIN_ATTEMPT_RETENTION_DAYS = env_int("WATCHKEEPER_LOGIN_ATTEMPT_DAYS", 90)

# --- Agents -------------------------------------------------------------------------------
ENROLLMENT_TOKEN_HOURS = env_int("WATCHKEEPER_ENROLLMENT_TOKEN_HOURS", 1)
# The agent packages the server serves (`watchkeeper agent-dist` builds them here).
AGENT_DIST_DIR = Path(env_str("WATCHKEEPER_AGENT_DIST_DIR", str(DATA_DIR / "agent-dist")))
AGENT_INTERVAL = env_int("WATCHKEEPER_AGENT_INTERVAL", 60)  # seconds between check-ins
AGENT_INVENTORY_INTERVAL = env_int("WATCHKEEPER_AGENT_INVENTORY_INTERVAL", 3600)
AGENT_CLOCK_SKEW = env_int("WATCHKEEPER_AGENT_CLOCK_SKEW", 300)  # accepted timestamp drift
AGENT_OFFLINE_AFTER = env_int("WATCHKEEPER_AGENT_OFFLINE_AFTER", 0)  # 0: 2 intervals + 30 s
AGENT_MAX_BODY_BYTES = env_int("WATCHKEEPER_AGENT_MAX_BODY_BYTES", 8 * 1024 * 1024)
# The lean check-in path (agents/checkin/fastpath.py in front of Django in asgi.py) and its batch
# writer: check-ins of many agents written in one transaction. false: every check-in goes
# through the Django view (the benchmark's baseline).
AGENT_LEAN_CHECKIN = env_bool("WATCHKEEPER_AGENT_LEAN_CHECKIN", True)
# Heartbeat pings (/hb/<uid>) answered by the lean ASGI front (monitoring/heartbeat_lean.py).
HEARTBEAT_LEAN = env_bool("WATCHKEEPER_HEARTBEAT_LEAN", True)
AGENT_BATCH_MAX = env_int("WATCHKEEPER_AGENT_BATCH_MAX", 500)  # check-ins per transaction
AGENT_BATCH_WAIT_MS = env_int("WATCHKEEPER_AGENT_BATCH_WAIT_MS", 2)  # wait for more, once one came
AGENT_BATCH_WRITER = env_str("WATCHKEEPER_AGENT_BATCH_WRITER", "thread")  # tests: "inline"
# Back-pressure: check-ins queued or being written per process, their bodies' bytes, and how
# long a request waits for the writer; past any of them the agent gets 503 + Retry-After.
AGENT_BATCH_QUEUE_MAX = env_int("WATCHKEEPER_AGENT_BATCH_QUEUE_MAX", 5000)
AGENT_BATCH_QUEUE_BYTES = env_int("WATCHKEEPER_AGENT_BATCH_QUEUE_BYTES", 64 * 2**20)
AGENT_BATCH_TIMEOUT_S = env_int("WATCHKEEPER_AGENT_BATCH_TIMEOUT_S", 30)
LARGE_JOB_THRESHOLD = env_int("WATCHKEEPER_LARGE_JOB_THRESHOLD", 50)
COMMAND_TTL_MINUTES = env_int("WATCHKEEPER_COMMAND_TTL_MINUTES", 60)
SIGNER_KEY_FILE = env_str("WATCHKEEPER_SIGNER_KEY_FILE", str(DATA_DIR / "signer" /
                                                              "ed25519.key"))
METRIC_RETENTION_DAYS = env_int("WATCHKEEPER_METRIC_RETENTION_DAYS", 30)
# Monitoring, poller side: rollup retention, check-run history, poller limits.
METRIC_ROLLUP_5M_DAYS = env_int("WATCHKEEPER_METRIC_ROLLUP_5M_DAYS", 90)
METRIC_ROLLUP_1H_DAYS = env_int("WATCHKEEPER_METRIC_ROLLUP_1H_DAYS", 730)
# Network check history: raw runs briefly, then 5-minute / hourly rollups of their values and
# states, and the state transitions (monitoring/history/actions.py).
POLL_SAMPLE_DAYS = env_int("WATCHKEEPER_POLL_SAMPLE_DAYS", 2)
POLL_ROLLUP_5M_DAYS = env_int("WATCHKEEPER_POLL_ROLLUP_5M_DAYS", 14)
POLL_ROLLUP_1H_DAYS = env_int("WATCHKEEPER_POLL_ROLLUP_1H_DAYS", 400)
POLL_TRANSITION_DAYS = env_int("WATCHKEEPER_POLL_TRANSITION_DAYS", 400)
for _name in ("POLL_SAMPLE_DAYS", "POLL_ROLLUP_5M_DAYS", "POLL_ROLLUP_1H_DAYS",
              "POLL_TRANSITION_DAYS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"WATCHKEEPER_{_name} must be at least 1 (days), not "
                                   f"{globals()[_name]}.")
del _name
POLLER_CONCURRENCY = env_int("WATCHKEEPER_POLLER_CONCURRENCY", 500)
POLLER_CA_FILE = env_str("WATCHKEEPER_POLLER_CA_FILE", "")
HEARTBEAT_PINGS_KEPT = env_int("WATCHKEEPER_HEARTBEAT_PINGS_KEPT", 100)

# --- Logging ------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"quiet_requests": {"()": "watchkeeper.core.unavailable.QuietRequestLog"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Quiet by default: each role prints one line when it starts, then warnings and errors.
    "root": {"handlers": ["console"], "level": env_str("WATCHKEEPER_LOG_LEVEL", "WARNING")},
    "loggers": {"django.db.backends": {"level": "WARNING"},
                "django.request": {"filters": ["quiet_requests"]}},
}
# One line per HTTP request on the console (uvicorn's access log).
ACCESS_LOG = env_bool("WATCHKEEPER_ACCESS_LOG", False)

# Helpdesk (docs/helpdesk.md): inbound mail, IMAP polling, outgoing notifications.
MAIL_IN_HOST = env_str("WATCHKEEPER_MAIL_IN_HOST", "127.0.0.1")
MAIL_IN_PORT = env_int("WATCHKEEPER_MAIL_IN_PORT", 2525)
MAIL_MAX_BYTES = env_int("WATCHKEEPER_MAIL_MAX_BYTES", 30 * 1024 * 1024)
MAIL_DOMAIN = env_str("WATCHKEEPER_MAIL_DOMAIN", "watchkeeper.localhost")
MAIL_FROM = env_str("WATCHKEEPER_MAIL_FROM", f"helpdesk@{MAIL_DOMAIN}")
MAIL_SENDER_RATE = env_int("WATCHKEEPER_MAIL_SENDER_RATE", 20)  # messages per sender per hour
# Every accepted message is kept (compressed) this many days, then its bytes are dropped
# (the row and content hash stay, so a re-sent message is still recognised); 0 keeps forever.
MAIL_RAW_RETENTION_DAYS = env_int("WATCHKEEPER_MAIL_RAW_RETENTION_DAYS", 365)
# Acknowledge new tickets from senders that match no contact (off: backscatter to forged
# senders); when on, at most MAIL_ACK_UNKNOWN_PER_HOUR acknowledgements per address per hour.
MAIL_ACK_UNKNOWN_SENDERS = env_bool("WATCHKEEPER_MAIL_ACK_UNKNOWN_SENDERS", False)
MAIL_ACK_UNKNOWN_PER_HOUR = env_int("WATCHKEEPER_MAIL_ACK_UNKNOWN_PER_HOUR", 1)
ATTACHMENT_MAX_BYTES = env_int("WATCHKEEPER_ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024)
IMAP_HOST = env_str("WATCHKEEPER_IMAP_HOST", "")
IMAP_PORT = env_int("WATCHKEEPER_IMAP_PORT", 993)
IMAP_SSL = env_bool("WATCHKEEPER_IMAP_SSL", True)
IMAP_USER = env_str("WATCHKEEPER_IMAP_USER", "")
IMAP_PASSWORD = env_str("WATCHKEEPER_IMAP_PASSWORD", "")
IMAP_FOLDER = env_str("WATCHKEEPER_IMAP_FOLDER", "INBOX")
IMAP_INTERVAL = env_int("WATCHKEEPER_IMAP_INTERVAL", 60)
SMTP_HOST = env_str("WATCHKEEPER_SMTP_HOST", "")
SMTP_PORT = env_int("WATCHKEEPER_SMTP_PORT", 25)
SMTP_USER = env_str("WATCHKEEPER_SMTP_USER", "")
SMTP_PASSWORD = env_str("WATCHKEEPER_SMTP_PASSWORD", "")
SMTP_STARTTLS = env_bool("WATCHKEEPER_SMTP_STARTTLS", False)
SMTP_TIMEOUT = env_int("WATCHKEEPER_SMTP_TIMEOUT", 20)
HELPDESK_ALERT_AUTORESOLVE = env_bool("WATCHKEEPER_HELPDESK_ALERT_AUTORESOLVE", True)

# --- Request limits (core/limits.py: checked before a body is read) ------------------------
ENROLL_MAX_BODY_BYTES = env_int("WATCHKEEPER_ENROLL_MAX_BODY_BYTES", 64 * 1024)
# Requests with neither a session cookie nor an Authorization header (sign-in forms,
# heartbeat pings, anything public).
ANON_MAX_BODY_BYTES = env_int("WATCHKEEPER_ANON_MAX_BODY_BYTES", 1024 * 1024)
REQUEST_MAX_BODY_BYTES = env_int("WATCHKEEPER_REQUEST_MAX_BODY_BYTES", 64 * 1024 * 1024)
BODY_IDLE_TIMEOUT = env_int("WATCHKEEPER_BODY_IDLE_TIMEOUT", 30)  # seconds without a byte
BODY_TOTAL_TIMEOUT = env_int("WATCHKEEPER_BODY_TOTAL_TIMEOUT", 600)  # whole body, seconds
HEADER_TIMEOUT = env_int("WATCHKEEPER_HEADER_TIMEOUT", 30)  # request headers, seconds
WEB_MAX_CONNECTIONS = env_int("WATCHKEEPER_WEB_MAX_CONNECTIONS", 1000)  # then 503
