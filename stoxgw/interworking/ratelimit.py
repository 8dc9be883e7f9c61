# -*- test-case-name: tests.interworking.test_ratelimit -*-
"""
A sliding-window rate limit per key (a SIP identity, a room), on an
injected clock, with a bounded number of keys: what protects XMPP rooms
from a flood of INVITEs (issue 11, item 6; docs/limits.md).
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime


class RateLimiter:
    """
    At most C{limit} events per C{window} seconds per key.

    @ivar maxKeys: How many keys are tracked at once; when full, the key
        idle the longest is forgotten (an attacker rotating keys cannot
        make the table grow).  A key whose events are all older than
        C{window} is forgotten too: it limits nothing any more, and a
        table of every user ever seen would only hold memory (W8,
        bench/README.md).
    """

    def __init__(
        self, clock: IReactorTime, limit: int, window: float = 60.0, maxKeys: int = 10000
    ) -> None:
        if limit < 1 or window <= 0 or maxKeys < 1:
            raise ValueError("limit, window and maxKeys must be positive")
        self.clock = clock
        self.limit = limit
        self.window = window
        self.maxKeys = maxKeys
        # A list per key, not a deque: at most C{limit} (tens of) times,
        # and an empty deque alone takes 760 bytes, a list 56 (W8).
        self._events: OrderedDict[str, list[float]] = OrderedDict()

    def admit(self, key: str) -> bool:
        """
        Count an event for C{key} if it is within the limit.

        @return: whether it is.
        """
        now = self.clock.seconds()
        self._expire(now)
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = []
            while len(self._events) > self.maxKeys:
                self._events.popitem(last=False)
        else:
            self._events.move_to_end(key)
        expired = 0
        while expired < len(events) and now - events[expired] >= self.window:
            expired += 1
        del events[:expired]
        if len(events) >= self.limit:
            return False
        events.append(now)
        return True

    def _expire(self, now: float) -> None:
        """
        Forget the keys idle the longest while all their events are older
        than the window (keys are in the order of their last C{admit}, so
        this stops at the first key still limited).
        """
        while self._events:
            events = next(iter(self._events.values()))
            if events and now - events[-1] < self.window:
                return
            self._events.popitem(last=False)

    def retryAfter(self, key: str) -> int:
        """
        Seconds until C{key} may have an event again (at least 1).
        """
        events = self._events.get(key)
        if not events or len(events) < self.limit:
            return 1
        return max(1, int(events[0] + self.window - self.clock.seconds() + 0.999))
