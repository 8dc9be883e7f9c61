# -*- test-case-name: tests.test_util -*-
"""
Tests for L{stoxgw._util}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw._util import failureOf


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
