# --- the installer (the lines above are written by the server that served it) ----------------
#
#   curl -fsSL <server>/agent/v1/install.sh | sudo sh -s -- --token wke_…
#   … | sudo sh -s -- --uninstall [--purge]
#
# Linux (systemd) and macOS (launchd). Puts the agent in a virtual environment of its own
# (/opt/watchkeeper-agent/venv) built from the wheel this server serves, installs the service
# and enrolls with this server. Idempotent: run it again to upgrade; an agent already
# enrolled keeps its identity (--reenroll enrolls it again as a new agent).
#
# Options: --token T        enrollment token (needed unless already enrolled)
#          --reenroll       enroll again even if already enrolled
#          --no-start       install and enroll, do not start the service
#          --uninstall      stop and remove the service and the virtual environment
#          --purge          with --uninstall: remove the state too (the agent's key)
# Environment: WK_PYTHON (the python3 to build the venv with), WK_ROOT (install under another
# root: image builds and tests; no service is started then).
set -eu

say() { printf 'watchkeeper-agent: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

TOKEN="" ACTION=install REENROLL=0 START=1 PURGE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --token) [ $# -ge 2 ] || die "--token needs a value"; TOKEN="$2"; shift 2 ;;
    --token=*) TOKEN="${1#*=}"; shift ;;
    --reenroll) REENROLL=1; shift ;;
    --no-start) START=0; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --purge) PURGE=1; shift ;;
    -h|--help) say "options: --token T | --reenroll | --no-start | --uninstall [--purge]"
               exit 0 ;;
    *) die "unknown option: $1 (try --help)" ;;
  esac
done

ROOT="${WK_ROOT:-}"
OS="${WK_OS:-$(uname -s)}"
PREFIX="$ROOT/opt/watchkeeper-agent"
VENV="$PREFIX/venv"
AGENT="$VENV/bin/watchkeeper-agent"
case "$OS" in
  Linux)
    STATE="$ROOT/var/lib/watchkeeper-agent"
    SERVICE_FILE="$ROOT/etc/systemd/system/watchkeeper-agent.service"
    LINK="$ROOT/usr/local/bin/watchkeeper-agent" ;;
  Darwin)
    STATE="$ROOT/var/db/watchkeeper-agent"
    SERVICE_FILE="$ROOT/Library/LaunchDaemons/$WK_LAUNCHD_LABEL.plist"
    LINK="$ROOT/usr/local/bin/watchkeeper-agent" ;;
  *) die "this installer supports Linux and macOS; on Windows use install.ps1" ;;
esac

if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
  die "run it as root: … | sudo sh -s -- --token …"
fi

# A service manager to talk to: only on the real root, and only if it is running.
systemd_up() { [ -z "$ROOT" ] && [ "$OS" = Linux ] && [ -d /run/systemd/system ] \
  && command -v systemctl >/dev/null 2>&1; }
launchd_up() { [ -z "$ROOT" ] && [ "$OS" = Darwin ] && command -v launchctl >/dev/null 2>&1; }

stop_service() {
  if systemd_up; then
    systemctl disable --now watchkeeper-agent.service >/dev/null 2>&1 || true
  elif launchd_up; then
    launchctl bootout "system/$WK_LAUNCHD_LABEL" >/dev/null 2>&1 || true
  fi
}

if [ "$ACTION" = uninstall ]; then
  stop_service
  rm -f "$SERVICE_FILE"
  systemd_up && systemctl daemon-reload || true
  if [ -L "$LINK" ]; then rm -f "$LINK"; fi
  rm -rf "$PREFIX"
  if [ "$PURGE" = 1 ]; then
    rm -rf "$STATE"
    say "removed, state included"
  else
    say "removed; the agent's key and spool stay in $STATE (--purge removes them)"
  fi
  exit 0
fi

# --- Python ------------------------------------------------------------------------------
PY="${WK_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in /usr/bin/python3 /usr/local/bin/python3 /opt/homebrew/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY="$candidate"; break; fi
  done
fi
[ -n "$PY" ] || die "python3 (3.11 or newer) is required: apt-get install python3 python3-venv"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is $("$PY" -V 2>&1); the agent needs Python 3.11 or newer"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT INT TERM

fetch() {  # fetch URL FILE
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    "$PY" -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], sys.argv[2])' \
      "$1" "$2"
  fi
}

sha256() {
  "$PY" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

# The SHA-256 of the wheel installed last: the same wheel is not installed twice.
MARK="$PREFIX/installed-wheel.sha256"

# --- The virtual environment -------------------------------------------------------------
# (Every command below reads /dev/null: with `curl … | sh` the script itself is on stdin.)
if [ -x "$AGENT" ] && [ "$(cat "$MARK" 2>/dev/null)" = "$WK_WHEEL_SHA256" ]; then
  say "agent $WK_VERSION already installed in $VENV"
else
  say "installing agent $WK_VERSION into $VENV"
  fetch "$WK_SERVER/agent/v1/dist/$WK_WHEEL" "$TMP/$WK_WHEEL" </dev/null
  [ "$(sha256 "$TMP/$WK_WHEEL")" = "$WK_WHEEL_SHA256" ] \
    || die "the downloaded $WK_WHEEL does not match its SHA-256: not installed"
  mkdir -p "$PREFIX"
  # Built afresh at its final path (a venv cannot be moved); the state is elsewhere.
  rm -rf "$VENV"
  "$PY" -m venv "$VENV" </dev/null >"$TMP/venv.log" 2>&1 || {
    cat "$TMP/venv.log" >&2
    rm -rf "$VENV"
    die "$PY cannot create a virtual environment: apt-get install python3-venv (Debian/Ubuntu)"
  }
  PIP="$VENV/bin/python -m pip --disable-pip-version-check --quiet install"
  TRUST=""
  if [ "$WK_INSECURE" = 1 ]; then TRUST="--trusted-host $WK_SERVER_HOST"; fi
  # The server's wheels first (offline when they fit this machine), then PyPI for the rest.
  # shellcheck disable=SC2086
  $PIP --no-index --find-links "$WK_SERVER/agent/v1/dist/" $TRUST "$TMP/$WK_WHEEL" \
    </dev/null 2>"$TMP/pip.log" || {
    say "the server's wheels do not fit this machine: fetching the rest from PyPI"
    # shellcheck disable=SC2086
    $PIP --find-links "$WK_SERVER/agent/v1/dist/" $TRUST "$TMP/$WK_WHEEL" </dev/null || {
      rm -rf "$VENV"
      die "pip could not install the agent; run the installer again"
    }
  }
  echo "$WK_WHEEL_SHA256" >"$MARK"
fi
mkdir -p "$(dirname "$LINK")"
ln -sfn "$AGENT" "$LINK"

# --- The service ---------------------------------------------------------------------------
mkdir -p "$(dirname "$SERVICE_FILE")"
if [ "$OS" = Linux ]; then wk_systemd_unit >"$TMP/service"; else wk_launchd_plist >"$TMP/service"; fi
if ! cmp -s "$TMP/service" "$SERVICE_FILE" 2>/dev/null; then
  install -m 0644 "$TMP/service" "$SERVICE_FILE"
  say "service installed: $SERVICE_FILE"
fi

# --- Enrollment ----------------------------------------------------------------------------
if [ -f "$STATE/enrollment.json" ] && [ "$REENROLL" = 0 ]; then
  say "already enrolled ($STATE/enrollment.json); --reenroll enrolls again as a new agent"
else
  [ -n "$TOKEN" ] || die "an enrollment token is needed: --token wke_… (Agents › Enrollment)"
  set -- --state-dir "$STATE" enroll --server "$WK_SERVER" --token "$TOKEN"
  if [ "$WK_INSECURE" = 1 ]; then set -- "$@" --insecure; fi
  if [ -n "$WK_SIGNER_FINGERPRINT" ]; then
    set -- "$@" --signer-fingerprint "$WK_SIGNER_FINGERPRINT"
  fi
  mkdir -p "$STATE" && chmod 0700 "$STATE"
  "$AGENT" "$@" </dev/null || die "enrollment failed (see above); run the installer again"
  say "enrolled with $WK_SERVER"
fi

# --- Start ---------------------------------------------------------------------------------
if [ "$START" = 0 ]; then
  say "not started (--no-start)"
elif systemd_up; then
  systemctl daemon-reload </dev/null
  systemctl enable watchkeeper-agent.service </dev/null >/dev/null 2>&1
  systemctl restart watchkeeper-agent.service </dev/null
  say "running: systemctl status watchkeeper-agent"
elif launchd_up; then
  launchctl bootout "system/$WK_LAUNCHD_LABEL" </dev/null >/dev/null 2>&1 || true
  launchctl bootstrap system "$SERVICE_FILE" </dev/null
  say "running: launchctl print system/$WK_LAUNCHD_LABEL"
else
  say "no running service manager here: start it with  $AGENT --state-dir $STATE run"
fi
