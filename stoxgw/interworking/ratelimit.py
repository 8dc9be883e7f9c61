# -*- test-case-name: tests.interworking.test_ratelimit -*-
"""
A sliding-window rate limit per key (a SIP identity, a room, an invitee),
on an injected clock, with a bounded number of keys: what protects XMPP
rooms from a flood of INVITEs and SIP phones from a flood of invitations
(issue 11, item 6; docs/limits.md).

What a full table does is the caller's policy (L{WhenFull}): the INVITE
limits forget the key idle the longest, so that a new caller is never
refused for want of room; the invitation limits refuse new keys instead,
so that rotating rooms or invitees cannot make the limiter forget whom it
just let through.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable
from enum import Enum

from twisted.internet.interfaces import IReactorTime


class WhenFull(Enum):
    """
    What L{RateLimiter} does with a new key when it already tracks
    C{maxKeys} keys with events inside the window.

    @cvar FORGET_IDLEST: Forget the key whose last counted event is the
        oldest, and admit the new one.
    @cvar REFUSE: Refuse the new key (L{Admission.FULL}) until keys
        expire.
    """

    FORGET_IDLEST = "forget-idlest"
    REFUSE = "refuse"


class Admission(Enum):
    """
    L{RateLimiter.check}'s answer.

    @cvar ADMITTED: Within the limit.
    @cvar OVER_LIMIT: The key had C{limit} events within the window.
    @cvar FULL: A new key, and the table is full (L{WhenFull.REFUSE}).
    """

    ADMITTED = "admitted"
    OVER_LIMIT = "over-limit"
    FULL = "full"


class RateLimiter:
    """
    At most C{limit} events per C{window} seconds per key.

    Keys are kept in the order of their last counted event, so the keys
    whose events have all left the window are forgotten from the front.

    @ivar maxKeys: How many keys are tracked at once; what happens beyond
        is C{whenFull}.
    @ivar whenFull: The L{WhenFull} policy.
    """

    def __init__(
        self,
        clock: IReactorTime,
        limit: int,
        window: float = 60.0,
        maxKeys: int = 10000,
        whenFull: WhenFull = WhenFull.FORGET_IDLEST,
    ) -> None:
        if limit < 1 or window <= 0 or maxKeys < 1:
            raise ValueError("limit, window and maxKeys must be positive")
        self.clock = clock
        self.limit = limit
        self.window = window
        self.maxKeys = maxKeys
        self.whenFull = whenFull
        self._events: OrderedDict[Hashable, deque[float]] = OrderedDict()

    def _expire(self, now: float) -> None:
        """
        Forget the keys whose last event has left the window.
        """
        events = self._events
        while events:
            key, times = next(iter(events.items()))
            if now - times[-1] < self.window:
                break
            del events[key]

    def check(self, key: Hashable) -> Admission:
        """
        Whether an event for C{key} would be admitted now, without
        counting it (see L{count}).
        """
        now = self.clock.seconds()
        self._expire(now)
        times = self._events.get(key)
        if times is None:
            if len(self._events) >= self.maxKeys and self.whenFull is WhenFull.REFUSE:
                return Admission.FULL
            return Admission.ADMITTED
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return Admission.OVER_LIMIT
        return Admission.ADMITTED

    def count(self, key: Hashable) -> None:
        """
        Count an event for C{key} now; call it only after L{check} said
        L{Admission.ADMITTED}.
        """
        times = self._events.get(key)
        if times is None:
            times = self._events[key] = deque()
            while len(self._events) > self.maxKeys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        times.append(self.clock.seconds())

    def admit(self, key: Hashable) -> bool:
        """
        Count an event for C{key} if it is within the limit.

        @return: whether it is.
        """
        if self.check(key) is not Admission.ADMITTED:
            return False
        self.count(key)
        return True

    def retryAfter(self, key: Hashable) -> int:
        """
        Seconds until C{key} may have an event again (at least 1).
        """
        events = self._events.get(key)
        if not events or len(events) < self.limit:
            return 1
        return max(1, int(events[0] + self.window - self.clock.seconds() + 0.999))
