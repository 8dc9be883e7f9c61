# -*- test-case-name: tests.interworking.test_ratelimit -*-
"""
Tests for L{stoxgw.interworking.ratelimit}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.interworking.ratelimit import Admission, RateLimiter, WhenFull


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

    def test_refuseWhenFull(self) -> None:
        """
        With L{WhenFull.REFUSE} a full table refuses new keys and keeps the
        ones it has, until their events leave the window.
        """
        clock = Clock()
        limiter = RateLimiter(clock, 1, 60.0, maxKeys=2, whenFull=WhenFull.REFUSE)
        self.assertEqual([limiter.admit(k) for k in "abc"], [True, True, False])
        self.assertEqual(limiter.check("c"), Admission.FULL)
        self.assertEqual(limiter.check("a"), Admission.OVER_LIMIT)
        clock.advance(60.0)
        self.assertEqual(limiter.check("a"), Admission.ADMITTED)
        self.assertTrue(limiter.admit("c"))
        self.assertEqual(list(limiter._events), ["c"])

    def test_checkDoesNotCount(self) -> None:
        """
        L{RateLimiter.check} only looks; L{RateLimiter.count} counts.
        """
        limiter = RateLimiter(Clock(), 1, 60.0)
        self.assertEqual(limiter.check("a"), Admission.ADMITTED)
        self.assertEqual(limiter.check("a"), Admission.ADMITTED)
        limiter.count("a")
        self.assertEqual(limiter.check("a"), Admission.OVER_LIMIT)

    def test_idleKeysForgotten(self) -> None:
        """
        Keys whose events have all left the window are forgotten, oldest
        first; a later event moves a key to the back.
        """
        clock = Clock()
        limiter = RateLimiter(clock, 5, 10.0)
        limiter.admit("a")
        clock.advance(5)
        limiter.admit("b")
        limiter.admit("a")
        clock.advance(6)
        limiter.admit("c")
        self.assertEqual(list(limiter._events), ["b", "a", "c"])
        clock.advance(5)
        limiter.admit("d")
        self.assertEqual(list(limiter._events), ["c", "d"])

    def test_invalid(self) -> None:
        """
        Nonsense settings are refused.
        """
        self.assertRaises(ValueError, RateLimiter, Clock(), 0)
