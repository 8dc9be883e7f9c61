# -*- test-case-name: tests.sip.test_transaction -*-
"""
What the RFC 3261 section 17 transactions share: their timer settings,
states and transition tables (figures 5 to 8), the errors, the interface
of the transaction user, and C{_Transaction}, the base of the client
(L{stoxgw.sip.clienttransaction}) and server
(L{stoxgw.sip.servertransaction}) machines, whose timers run on the
clock of their L{TransactionLayer <stoxgw.sip.transaction.TransactionLayer>}.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Callable, Mapping

from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.transport import Flow

if TYPE_CHECKING:
    from stoxgw.sip.servertransaction import ServerTransaction
    from stoxgw.sip.transaction import TransactionLayer

__all__ = [
    "TimerSettings",
    "InvalidTransition",
    "TransactionTimeout",
    "TransactionState",
    "TRANSITIONS",
    "ITransactionUser",
    "ResponseCallback",
]


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """
    The RFC 3261 timer base values (section 17.1.1.1, Table 4).

    @ivar t1: RTT estimate (0.5 s).
    @ivar t2: Longest retransmit interval for non-INVITE requests and
        INVITE responses (4 s).
    @ivar t4: Longest time a message stays in the network (5 s).
    @ivar trying: Delay before an INVITE server transaction sends C{100
        Trying} on its own (200 ms, section 17.2.1); 0 sends it at once.
    """

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying: float = 0.2

    @property
    def timeout(self) -> float:
        """
        64*T1: timers B, F, H and J.
        """
        return 64 * self.t1


class InvalidTransition(RuntimeError):
    """
    A transaction was asked to do something its state does not allow.
    """


class TransactionTimeout(Exception):
    """
    A server transaction timed out (timer H: no ACK).
    """


class TransactionState(Enum):
    """
    States of the four transaction machines (RFC 3261 figures 5-8).
    """

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


_S = TransactionState

#: The non-INVITE machine, the same on both sides (RFC 3261 figures 6 and 8).
_NON_INVITE = {
    _S.TRYING: frozenset({_S.PROCEEDING, _S.COMPLETED, _S.TERMINATED}),
    _S.PROCEEDING: frozenset({_S.COMPLETED, _S.TERMINATED}),
    _S.COMPLETED: frozenset({_S.TERMINATED}),
    _S.TERMINATED: frozenset(),
}

#: Allowed transitions per machine (RFC 3261 figures 5, 6, 7 and 8).
TRANSITIONS: Mapping[str, Mapping[TransactionState, frozenset[TransactionState]]] = {
    "invite-client": {
        _S.CALLING: frozenset({_S.PROCEEDING, _S.COMPLETED, _S.TERMINATED}),
        _S.PROCEEDING: frozenset({_S.COMPLETED, _S.TERMINATED}),
        _S.COMPLETED: frozenset({_S.TERMINATED}),
        _S.TERMINATED: frozenset(),
    },
    "non-invite-client": _NON_INVITE,
    "invite-server": {
        _S.PROCEEDING: frozenset({_S.COMPLETED, _S.TERMINATED}),
        _S.COMPLETED: frozenset({_S.CONFIRMED, _S.TERMINATED}),
        _S.CONFIRMED: frozenset({_S.TERMINATED}),
        _S.TERMINATED: frozenset(),
    },
    "non-invite-server": _NON_INVITE,
}


class ITransactionUser(Interface):
    """
    The transaction user (the UA core): what the transaction layer reports
    that belongs to no client transaction.
    """

    def requestReceived(request: SIPRequest, transaction: ServerTransaction) -> None:
        """
        A new request (not ACK) arrived; answer it through C{transaction}.
        """

    def ackReceived(request: SIPRequest, flow: Flow) -> None:
        """
        An ACK matching no server transaction arrived (an ACK for a 2xx).
        """

    def strayResponseReceived(response: SIPResponse, flow: Flow) -> None:
        """
        A response matching no client transaction arrived (2xx
        retransmissions for INVITE, forked 2xx).
        """

    def serverTransactionFailed(
        transaction: ServerTransaction, reason: Failure
    ) -> None:
        """
        A server transaction ended badly: timer H fired (no ACK for a
        non-2xx final response: L{TransactionTimeout}) or its response
        could not be sent (L{stoxgw.sip.transport.TransportError}).
        """


ResponseCallback = Callable[[SIPResponse], None]


class _Transaction:
    """
    What every transaction has: state with a checked transition table,
    named timers on the layer's clock.
    """

    _log = Logger()
    machine = ""
    initialState = TransactionState.TRYING

    def __init__(self, layer: TransactionLayer) -> None:
        self.layer = layer
        self.state = self.initialState
        self._timers: dict[str, IDelayedCall] = {}

    @property
    def timers(self) -> TimerSettings:
        """
        The layer's timer settings.
        """
        return self.layer.timers

    def _transition(self, new: TransactionState) -> None:
        if new is self.state:
            return
        if new not in TRANSITIONS[self.machine][self.state]:
            raise InvalidTransition(
                f"{self.machine} transaction: {self.state.value} -> {new.value}"
            )
        self.state = new
        if new is TransactionState.TERMINATED:
            for call in self._timers.values():
                if call.active():
                    call.cancel()
            self._timers.clear()
            self._terminated()

    def _terminated(self) -> None:
        raise NotImplementedError()

    def _startTimer(self, name: str, delay: float, action: Callable[[], None]) -> None:
        self._stopTimer(name)

        def fire() -> None:
            self._timers.pop(name, None)
            try:
                action()
            except Exception as e:
                self._log.failure(
                    "Timer {timer} failed",
                    timer=name,
                    error=e,
                    transactionID=self.transactionID,
                )

        self._timers[name] = self.layer.clock.callLater(delay, fire)

    def _stopTimer(self, name: str) -> None:
        call = self._timers.pop(name, None)
        if call is not None and call.active():
            call.cancel()

    @property
    def terminated(self) -> bool:
        """
        Whether the transaction is over.
        """
        return self.state is TransactionState.TERMINATED

    def abandon(self) -> None:
        """
        Stop every timer and forget the transaction without telling
        anyone (shutdown).
        """
        for call in self._timers.values():
            if call.active():
                call.cancel()
        self._timers.clear()
        self.state = TransactionState.TERMINATED

    def timerActive(self, name: str) -> bool:
        """
        Whether timer C{name} (C{"A"}, C{"B"}, ...) is running.
        """
        call = self._timers.get(name)
        return call is not None and call.active()

    @property
    def transactionID(self) -> str:
        """
        An identifier for logs (the branch).
        """
        raise NotImplementedError()
