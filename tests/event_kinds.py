"""Event kinds declared for tests only (the generated reference leaves them out)."""

from __future__ import annotations

from watchkeeper.core.catalogue import EventData, declare


@declare("test.happened")
class TestHappened(EventData):
    """Something happened in a test."""

    __test__ = False  # not a pytest test class

    n: int = 0
    note: str = ""


@declare("test.other")
class TestOther(EventData):
    """Something else happened in a test."""

    __test__ = False

    n: int = 0
