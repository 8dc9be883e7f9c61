# -*- test-case-name: tests.test_util -*-
"""
Small helpers every part of the package may use (it imports nothing of
C{stoxgw}, so any layer may import it).
"""

from __future__ import annotations

from typing import Iterable, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

__all__ = ["failureOf", "fireAll"]

_T = TypeVar("_T")


def failureOf(error: BaseException) -> Failure:
    """
    Wrap an exception in a L{Failure} (Twisted's constructor is not
    annotated, so this is the one place that says so to mypy).

    @param error: The exception.
    @return: The failure, whose C{value} is C{error}.
    """
    return Failure(error)  # type: ignore[no-untyped-call]


def fireAll(waiters: Iterable[Deferred[_T]], result: _T | Failure) -> None:
    """
    Fire every waiting L{Deferred} with the same result or failure.

    @param waiters: The deferreds (taken from their owner first, so that a
        callback that waits again waits for the next result).
    @param result: The result, or a L{Failure} to fail them with.
    """
    for d in waiters:
        if isinstance(result, Failure):
            d.errback(result)
        else:
            d.callback(result)
