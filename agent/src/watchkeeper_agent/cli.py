"""watchkeeper-agent enroll | run [--once] | status"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time

from .service import DEFAULT_SPOOL_BYTES, Agent, NotEnrolled, SignerMismatch
from .state import DEFAULT_STATE_DIR, State
from .transport import Refused, Unreachable


def _setup_logging(state: State, log_file: str | None, verbose: bool) -> None:
    state.ensure()
    handler = logging.handlers.RotatingFileHandler(
        log_file or state.log_path, maxBytes=5 * 1024 * 1024, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    if verbose:
        root.addHandler(logging.StreamHandler(sys.stderr))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watchkeeper-agent")
    parser.add_argument("--state-dir", default=os.environ.get(
        "WATCHKEEPER_AGENT_STATE_DIR", DEFAULT_STATE_DIR),
        help="key, enrollment, spool and log (default %(default)s)")
    parser.add_argument("--log-file", default=os.environ.get("WATCHKEEPER_AGENT_LOG_FILE"))
    parser.add_argument("--spool-bytes", type=int, default=int(os.environ.get(
        "WATCHKEEPER_AGENT_SPOOL_BYTES", DEFAULT_SPOOL_BYTES)))
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    enroll = sub.add_parser("enroll", help="enroll with a one-time enrollment token")
    enroll.add_argument("--server", required=True)
    enroll.add_argument("--token", required=True)
    enroll.add_argument("--signer-fingerprint",
                        help="SHA-256 (hex) of the server's command-signing key, from the "
                             "install command; enrollment fails if the server sends another")
    enroll.add_argument("--insecure", action="store_true",
                        help="allow a plain http:// server (lab or tests only: the token, "
                             "signer key and commands then travel in clear)")
    run = sub.add_parser("run", help="the service loop")
    run.add_argument("--once", action="store_true", help="one check-in, then exit")
    run.add_argument("--inventory", choices=["auto", "always", "never"], default="auto",
                     help="with --once: collect inventory when due (auto), always or never")
    status = sub.add_parser("status", help="show enrollment, spool and last check-in")
    status.add_argument("--offline", action="store_true", help="do not ask the server")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    state = State(args.state_dir)
    _setup_logging(state, args.log_file, args.verbose)
    agent = Agent(state, spool_bytes=args.spool_bytes)
    try:
        if args.command == "enroll":
            enrollment = agent.enroll(args.server, args.token, insecure=args.insecure,
                                      signer_fingerprint=args.signer_fingerprint)
            print(json.dumps({"agent_id": enrollment.agent_id, "status": enrollment.status}))
            return 0
        if args.command == "run":
            if args.once:
                inventory = {"auto": None, "always": True, "never": False}[args.inventory]
                summary = agent.run_once(inventory=inventory)
                print(json.dumps(summary))
                return 0 if summary["outcome"] == "ok" else 3
            stopping = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stopping.set())
            signal.signal(signal.SIGINT, lambda *_: stopping.set())
            agent.run_forever(stop=stopping)
            return 0
        if args.command == "status":
            info = agent.status()
            if info["enrolled"] and not args.offline:
                try:
                    info["server_status"] = agent.server_status()
                except (Unreachable, Refused) as exc:
                    info["server_status"] = {"error": str(exc)}
            if info["last_checkin"]:
                info["last_checkin_ago_s"] = round(time.time() - info["last_checkin"])
            print(json.dumps(info, indent=2))
            return 0
    except NotEnrolled as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except SignerMismatch as exc:
        print(f"signer key mismatch: {exc}", file=sys.stderr)
        return 6
    except ValueError as exc:  # a bad or plain-http server URL, a malformed fingerprint
        print(str(exc), file=sys.stderr)
        return 2
    except Refused as exc:
        print(f"refused by the server: {exc}", file=sys.stderr)
        return 4
    except Unreachable as exc:
        print(f"server unreachable: {exc}", file=sys.stderr)
        return 5
    return 1


if __name__ == "__main__":
    sys.exit(main())
