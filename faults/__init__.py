"""Fault-injection suite (issue 19): `python -m faults` (see faults/README.md)."""
