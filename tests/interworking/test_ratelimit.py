# -*- test-case-name: tests.interworking.test_ratelimit -*-
"""
Tests for L{stoxgw.interworking.ratelimit}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.interworking.ratelimit import RateLimiter


class RateLimiterTests(SynchronousTestCase):
    """
    A sliding window per key.
    """

    def test_window(self) -> None:
        """
        Three per ten seconds: the fourth is refused until the first is ten
        seconds old; keys are counted apart.
        """
        clock = Clock()
        limiter = RateLimiter(clock, 3, 10.0)
        self.assertEqual([limiter.admit("a") for _ in range(4)], [True, True, True, False])
        self.assertTrue(limiter.admit("b"))
        self.assertEqual(limiter.retryAfter("a"), 10)
        clock.advance(9.5)
        self.assertFalse(limiter.admit("a"))
        clock.advance(0.5)
        self.assertTrue(limiter.admit("a"))

    def test_boundedKeys(self) -> None:
        """
        More keys than tracked: the oldest is forgotten, memory stays
        bounded.
        """
        limiter = RateLimiter(Clock(), 1, 60.0, maxKeys=100)
        for n in range(1000):
            self.assertTrue(limiter.admit(f"k{n}"))
        self.assertEqual(len(limiter._events), 100)

    def test_idleKeysForgotten(self) -> None:
        """
        A key whose events have all left the window limits nothing and is
        forgotten at the next C{admit}: a churn of distinct users leaves
        only the last window's users in the table, not every user ever
        seen (W8).
        """
        clock = Clock()
        limiter = RateLimiter(clock, 2, 60.0)
        limiter.admit("a")
        clock.advance(30)
        limiter.admit("b")
        clock.advance(30)
        limiter.admit("c")
        self.assertEqual(list(limiter._events), ["b", "c"])
        clock.advance(60)
        limiter.admit("d")
        self.assertEqual(list(limiter._events), ["d"])

    def test_limitedKeyKept(self) -> None:
        """
        A key at its limit stays limited while its events are in the
        window, though keys admitted after it have gone idle.
        """
        clock = Clock()
        limiter = RateLimiter(clock, 2, 60.0)
        limiter.admit("a")
        limiter.admit("a")
        clock.advance(59)
        self.assertFalse(limiter.admit("a"))
        self.assertEqual(limiter.retryAfter("a"), 1)
        clock.advance(1)
        self.assertTrue(limiter.admit("a"))

    def test_invalid(self) -> None:
        """
        Nonsense settings are refused.
        """
        self.assertRaises(ValueError, RateLimiter, Clock(), 0)
