# -*- test-case-name: tests.test_util -*-
"""
Tests for L{stoxgw._util}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from stoxgw._util import failureOf, fireAll


class FailureOfTests(SynchronousTestCase):
    """
    L{failureOf} wraps an exception that was never raised.
    """

    def test_wrapsTheException(self) -> None:
        """
        The failure carries the exception itself, and its type checks.
        """
        error = ValueError("no")
        failure = failureOf(error)
        self.assertIs(failure.value, error)
        self.assertTrue(failure.check(ValueError))
        self.assertEqual(failure.getErrorMessage(), "no")


class FireAllTests(SynchronousTestCase):
    """
    L{fireAll} fires every waiter once with the same outcome.
    """

    def test_result(self) -> None:
        """
        Each L{Deferred} gets the result.
        """
        waiters: list[Deferred[int]] = [Deferred(), Deferred()]
        fireAll(waiters, 7)
        self.assertEqual([self.successResultOf(d) for d in waiters], [7, 7])

    def test_failure(self) -> None:
        """
        Each L{Deferred} fails with the failure.
        """
        waiters: list[Deferred[int]] = [Deferred(), Deferred()]
        fireAll(waiters, failureOf(ValueError("no")))
        for d in waiters:
            self.failureResultOf(d, ValueError)
