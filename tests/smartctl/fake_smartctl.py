"""A stand-in for smartctl (smartmontools 7.x) that replays recorded JSON answers.

This machine has no physical disks, so the agent's SMART collector is tested against this
script, put first on PATH as `smartctl` by tests/smartctl_fake.py. It answers the two calls
the agent makes, exactly as smartctl does: `--scan-open -j` (or `--scan -j`) prints the
scan document, and `-i -H -A -j [-d TYPE] DEVICE` prints the device's document; the process
exits with the document's `smartctl.exit_status`, as the real one does. Every call is
appended to calls.log beside the wrapper so tests can see what the agent ran.

Usage: fake_smartctl.py PAYLOAD_DIR LOG_FILE -- <smartctl arguments>
"""

import json
import os
import sys


def main() -> int:
    payloads, log_file, sep, *args = sys.argv[1:]
    assert sep == "--"
    with open(log_file, "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\n")
    if "-j" not in args and "--json" not in args:
        print("smartctl (fake): only JSON output is recorded", file=sys.stderr)
        return 1
    if "--scan-open" in args or "--scan" in args:
        name = "scan-open.json" if "--scan-open" in args else "scan.json"
        path = os.path.join(payloads, name)
        if not os.path.exists(path):
            path = os.path.join(payloads, "scan.json")
    else:
        device = args[-1]
        path = os.path.join(payloads, os.path.basename(device) + ".json")
        if not os.path.exists(path):
            # What smartctl 7.3 prints for a device node that does not exist.
            doc = {"json_format_version": [1, 0],
                   "smartctl": {"version": [7, 3], "argv": ["smartctl", *args],
                                "messages": [{"string": f"Smartctl open device: {device} "
                                              "failed: No such device", "severity": "error"}],
                                "exit_status": 2}}
            print(json.dumps(doc, indent=2))
            return 2
    with open(path, encoding="utf-8") as handle:
        doc = json.load(handle)
    doc.setdefault("smartctl", {})["argv"] = ["smartctl", *args]
    print(json.dumps(doc, indent=2))
    return int(doc["smartctl"].get("exit_status", 0))


if __name__ == "__main__":
    sys.exit(main())
