"""Multi-row `VALUES` lists for the set-based statements of the check-in path (the nonce
claim in auth.py, the sequence claim in writer.py), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from django.db import connection


def vendor_casts() -> dict[str, str]:
    """PostgreSQL types the parameters of a VALUES list by their first use; SQLite needs
    (and accepts) no casts."""
    if connection.vendor == "postgresql":
        return {"int": "::bigint", "text": "::text", "inet": "::inet",
                "timestamptz": "::timestamptz"}
    return {"int": "", "text": "", "inet": "", "timestamptz": ""}


def values_rows(rows: int, types: tuple[str, ...]) -> str:
    """`(%s, %s), (%s, %s), …` for `rows` rows of the given column types."""
    casts = vendor_casts()
    one = "(" + ", ".join(f"%s{casts[t]}" for t in types) + ")"
    return ", ".join([one] * rows)
