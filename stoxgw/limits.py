# -*- test-case-name: tests.test_limits -*-
"""
Admission limits shared by the SIP and MSRP listeners: at most so many
accepted connections per source address and in all (issue 11, item 2; see
C{docs/limits.md}).

Sans-IO: the caller counts connections in and out and passes the time in;
nothing here owns a socket or a clock, so that the SIP and MSRP transports
(which never import each other) both use it.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from twisted.logger import Logger

__all__ = ["ConnectionLimits", "Refusal", "DEFAULT_LOG_INTERVAL"]

#: Seconds between two log lines about refusals from one address.
DEFAULT_LOG_INTERVAL = 60.0

#: A cap no listener reaches: what a missing one stands for.
_UNLIMITED = 1 << 62

#: The most addresses whose last refusal log time is remembered; beyond it
#: the oldest entries go (a flood from many addresses costs bounded memory).
_MAX_LOGGED = 4096


class Refusal(Enum):
    """
    Why a connection was refused.

    @cvar PER_ADDRESS: Its source address has C{perAddress} connections.
    @cvar TOTAL: The listener has C{total} connections.
    """

    PER_ADDRESS = "per-address"
    TOTAL = "total"


class ConnectionLimits:
    """
    Per-source-address and total caps on the connections a listener
    accepted.

    L{admit} counts a connection in (or refuses it); L{release} counts an
    admitted one out.  L{shouldLog} says whether a refusal from an address
    is worth a log line: one per address per C{logInterval} seconds.
    L{admitOrLog} does both for a listener: count in, or refuse and log.

    @ivar perAddress: The most connections from one source address.
    @ivar total: The most connections in all.
    @ivar logInterval: Seconds between two log lines about one address.
    """

    def __init__(
        self, perAddress: int, total: int, logInterval: float = DEFAULT_LOG_INTERVAL
    ) -> None:
        """
        @raise ValueError: A cap below 1.
        """
        if perAddress < 1 or total < 1:
            raise ValueError("connection caps must be at least 1")
        self.perAddress = perAddress
        self.total = total
        self.logInterval = logInterval
        self._counts: dict[str, int] = {}
        self._count = 0
        self._logged: dict[str, float] = {}

    @classmethod
    def ifAny(
        cls, perAddress: int | None, total: int | None
    ) -> ConnectionLimits | None:
        """
        The limits of a listener whose caps are optional (its configuration
        keys): L{None} without either cap; a missing (or zero) cap is
        unlimited.
        """
        if perAddress is None and total is None:
            return None
        return cls(perAddress or _UNLIMITED, total or _UNLIMITED)

    @property
    def count(self) -> int:
        """
        How many admitted connections are open.
        """
        return self._count

    def countFor(self, host: str) -> int:
        """
        How many admitted connections from C{host} are open.
        """
        return self._counts.get(host, 0)

    def admit(self, host: str) -> Refusal | None:
        """
        Count a new connection from C{host} in, unless a cap is reached.

        @return: L{None} if admitted (call L{release} when it ends), else
            why it is refused (it was not counted).
        """
        if self._count >= self.total:
            return Refusal.TOTAL
        current = self._counts.get(host, 0)
        if current >= self.perAddress:
            return Refusal.PER_ADDRESS
        self._counts[host] = current + 1
        self._count += 1
        return None

    def release(self, host: str) -> None:
        """
        Count an admitted connection from C{host} out.
        """
        current = self._counts.get(host, 0)
        if current <= 0:
            return
        if current == 1:
            del self._counts[host]
        else:
            self._counts[host] = current - 1
        self._count -= 1

    def shouldLog(self, host: str, now: float) -> bool:
        """
        Whether a refusal from C{host} at time C{now} should be logged: the
        first one, then at most one per C{logInterval} seconds.
        """
        last = self._logged.get(host)
        if last is not None and now - last < self.logInterval:
            return False
        self._logged.pop(host, None)
        if len(self._logged) >= _MAX_LOGGED:
            for old in [
                h for h, t in self._logged.items() if now - t >= self.logInterval
            ]:
                del self._logged[old]
            while len(self._logged) >= _MAX_LOGGED:
                del self._logged[next(iter(self._logged))]
        self._logged[host] = now
        return True

    def admitOrLog(
        self, host: str, now: float, log: Logger, refused: str, **fields: Any
    ) -> bool:
        """
        Count a new connection from C{host} in (L{admit}), or refuse it and
        log the refusal when L{shouldLog} says so: one warning per address
        per C{logInterval} seconds.

        @param now: The time (seconds) of the attempt.
        @param log: Where the warning goes.
        @param refused: The start of the warning, which names the listener
            and the peer (C{"Refused MSRP connection from {peer}"}); the
            cap reached and the caps follow it, with the log fields
            C{limit}, C{perAddress} and C{total}.
        @param fields: The log fields C{refused} uses.
        @return: Whether it was admitted (call L{release} when it ends).
        """
        refusal = self.admit(host)
        if refusal is None:
            return True
        if self.shouldLog(host, now):
            log.warn(
                refused + ": {limit} cap ({perAddress} per address, {total} in"
                " all) reached; further refusals from it are not logged for a"
                " minute",
                limit=refusal.value,
                perAddress=self.perAddress,
                total=self.total,
                **fields,
            )
        return False
