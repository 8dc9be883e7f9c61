# -*- test-case-name: tests.test_util -*-
"""
Small helpers every part of the package may use (it imports nothing of
C{stoxgw}, so any layer may import it).
"""

from __future__ import annotations

from twisted.python.failure import Failure

__all__ = ["failureOf"]


def failureOf(error: BaseException) -> Failure:
    """
    Wrap an exception in a L{Failure} (Twisted's constructor is not
    annotated, so this is the one place that says so to mypy).

    @param error: The exception.
    @return: The failure, whose C{value} is C{error}.
    """
    return Failure(error)  # type: ignore[no-untyped-call]
