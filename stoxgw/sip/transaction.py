# -*- test-case-name: tests.sip.test_transaction -*-
"""
RFC 3261 section 17 transactions: client and server, INVITE and
non-INVITE, with their timers on an injected clock.

L{TransactionLayer} sits between a L{SIPTransport} (it is its
L{ISIPTransportUser}) and the transaction user, the UA core
(L{ITransactionUser}):

 - L{TransactionLayer.sendRequest} starts a client transaction: it puts
   our Via (new branch) on the request, sends it, retransmits it over UDP
   (timers A and E, doubling up to T2 for non-INVITE), and reports every
   response to the callback it was given.  Timeouts (timers B and F) are
   reported as a C{408} response, transport errors as C{503} (section
   8.1.3.1), both made locally.  The ACK for a non-2xx final response to
   an INVITE is built and sent here (section 17.1.1.3); 2xx responses to
   INVITE end the transaction (the UA core ACKs them end to end, section
   13.2.2.4) and their retransmissions reach the TU as stray responses.
 - Received requests that match no server transaction start one
   (L{ServerTransaction}) and go to the TU; retransmissions are absorbed
   (the last response is sent again); ACKs for non-2xx final responses end
   in the INVITE server transaction; other ACKs (for 2xx) go to the TU.
   INVITE server transactions send C{100 Trying} after 200 ms unless the
   TU answered first (section 17.2.1), retransmit non-2xx final responses
   over UDP (timer G) until ACK or timer H.
 - CANCEL: L{InviteClientTransaction.cancel} builds and sends the CANCEL
   (section 9.1) once a provisional response arrived; the server side is
   the TU's (it finds the INVITE with L{TransactionLayer.findInvite}).

Matching follows sections 17.1.3 and 17.2.3: branch and method for
responses; branch, sent-by and method (ACK as INVITE) for requests with
the magic cookie; the RFC 2543 fallback uses Request-URI, From tag,
Call-ID, CSeq and top Via.

RFC 6026 (the Accepted state for 2xx to INVITE) is not implemented; the
behaviour is RFC 3261's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable, Hashable, Mapping

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw.sip.headers import CSeq, HeaderError, Headers
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse
from stoxgw.sip.transport import (
    MAGIC_COOKIE,
    Address,
    Flow,
    ISIPTransportUser,
    SIPTransport,
)

__all__ = [
    "TimerSettings",
    "TransactionState",
    "ITransactionUser",
    "TransactionLayer",
    "ClientTransaction",
    "InviteClientTransaction",
    "NonInviteClientTransaction",
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "InvalidTransition",
    "TransactionTimeout",
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


# --- client transactions ------------------------------------------------


class ClientTransaction(_Transaction):
    """
    A client transaction (RFC 3261 section 17.1).

    @ivar request: The request as sent (with our Via).
    @ivar destination: Where it goes.
    @ivar branch: Our Via branch.
    @ivar finalResponse: Fires with the final response (real, or a local
        408/503).
    """

    def __init__(
        self,
        layer: TransactionLayer,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None = None,
    ) -> None:
        super().__init__(layer)
        self.request = request
        self.destination = destination
        self.branch = request.topVia.branch or ""
        self.onResponse = onResponse
        self.finalResponse: Deferred[SIPResponse] = Deferred()
        self.flow: Flow | None = None

    @property
    def transactionID(self) -> str:
        """
        Our branch.
        """
        return self.branch

    @property
    def key(self) -> tuple[str, str]:
        """
        The matching key: branch and CSeq method (section 17.1.3).
        """
        return (self.branch, self.request.method)

    @property
    def reliable(self) -> bool:
        """
        Whether the destination transport is reliable.
        """
        return self.destination.transport.reliable

    def start(self) -> None:
        """
        Send the request and arm the timers.
        """
        self._send()
        self._armTimers()

    def _armTimers(self) -> None:
        raise NotImplementedError()

    def _send(self) -> None:
        d = self.layer.transport.sendMessage(self.request, self.destination)
        d.addCallbacks(self._sent, self._sendFailed)

    def _sent(self, flow: Flow) -> None:
        self.flow = flow

    def _sendFailed(self, reason: Failure) -> None:
        if self.state is TransactionState.TERMINATED:
            return
        self._log.warn(
            "Could not send {method} to {peer}: {error}",
            method=self.request.method,
            peer=str(self.destination),
            error=reason.getErrorMessage(),
            transactionID=self.branch,
        )
        self._transition(TransactionState.TERMINATED)
        self._report(self._localResponse(503, "Service Unavailable (transport error)"))

    def _timedOut(self) -> None:
        if self.state is TransactionState.TERMINATED:
            return
        self._log.info(
            "{method} to {peer} timed out",
            method=self.request.method,
            peer=str(self.destination),
            transactionID=self.branch,
        )
        self._transition(TransactionState.TERMINATED)
        self._report(self._localResponse(408, "Request Timeout"))

    def _localResponse(self, status: int, reason: str) -> SIPResponse:
        return self.request.makeResponse(status, reason).withHeader(
            "Warning", '399 stoxgw "generated locally"'
        )

    def _report(self, response: SIPResponse) -> None:
        if self.onResponse is not None:
            try:
                self.onResponse(response)
            except Exception as e:
                self._log.failure(
                    "Transaction user failed on a response",
                    error=e,
                    transactionID=self.branch,
                )
        if response.status >= 200 and not self.finalResponse.called:
            self.finalResponse.callback(response)

    def _terminated(self) -> None:
        self.layer._removeClient(self)

    def responseReceived(self, response: SIPResponse, flow: Flow) -> None:
        """
        A response matching this transaction arrived.
        """
        raise NotImplementedError()


class InviteClientTransaction(ClientTransaction):
    """
    The INVITE client transaction (RFC 3261 section 17.1.1, figure 5),
    with CANCEL (section 9.1).

    @ivar cancelRequested: Whether L{cancel} was called.
    """

    machine = "invite-client"
    initialState = TransactionState.CALLING

    def __init__(
        self,
        layer: TransactionLayer,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None = None,
    ) -> None:
        super().__init__(layer, request, destination, onResponse)
        self.cancelRequested = False
        self.cancelTransaction: ClientTransaction | None = None
        self._interval = self.timers.t1
        self._ack: SIPRequest | None = None

    def _armTimers(self) -> None:
        if not self.reliable:
            self._startTimer("A", self._interval, self._timerA)
        self._startTimer("B", self.timers.timeout, self._timedOut)

    def _timerA(self) -> None:
        if self.state is not TransactionState.CALLING:
            return
        self._send()
        self._interval *= 2
        self._startTimer("A", self._interval, self._timerA)

    def responseReceived(self, response: SIPResponse, flow: Flow) -> None:
        """
        Figure 5: 1xx -> Proceeding; 2xx -> Terminated (passed up);
        300-699 -> ACK, Completed, timer D; retransmitted finals re-ACKed.
        """
        state = self.state
        if state is TransactionState.TERMINATED:
            return
        if response.status < 200:
            if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
                self._stopTimer("A")
                self._stopTimer("B")
                self._transition(TransactionState.PROCEEDING)
                if self.cancelRequested and self.cancelTransaction is None:
                    self._sendCancel()
                self._report(response)
            return
        if response.isSuccess:
            if state in (TransactionState.CALLING, TransactionState.PROCEEDING):
                self._transition(TransactionState.TERMINATED)
                self._report(response)
            return
        if state is TransactionState.COMPLETED:
            self._sendAck()
            return
        self._ack = self._buildAck(response)
        self._sendAck()
        self._transition(TransactionState.COMPLETED)
        self._stopTimer("A")
        self._stopTimer("B")
        self._stopTimer("cancel")
        if self.reliable:
            self._transition(TransactionState.TERMINATED)
        else:
            self._startTimer("D", max(32.0, self.timers.timeout), self._terminate)
        # Last: the TU may do anything, even shut the layer down.
        self._report(response)

    def _terminate(self) -> None:
        self._transition(TransactionState.TERMINATED)

    def _buildAck(self, response: SIPResponse) -> SIPRequest:
        """
        The ACK for a non-2xx final response (section 17.1.1.3).
        """
        request = self.request
        headers = Headers()
        headers = headers.add("Via", request.topVia.serialize())
        for name in ("Max-Forwards", "From"):
            value = request.header(name)
            if value is not None:
                headers = headers.add(name, value)
        headers = headers.add("To", response.header("To") or request.header("To") or "")
        headers = headers.add("Call-ID", request.header("Call-ID") or "")
        headers = headers.add("CSeq", CSeq(request.cseq.number, "ACK").serialize())
        for value in request.headers.getLines("Route"):
            headers = headers.add("Route", value)
        headers = headers.add("Content-Length", "0")
        return SIPRequest("ACK", request.uri, headers)

    def _sendAck(self) -> None:
        if self._ack is None:
            return
        self.layer.transport.sendMessage(self._ack, self.destination).addErrback(
            lambda reason: None
        )

    def cancel(self) -> None:
        """
        Cancel the INVITE (section 9.1): send CANCEL now if a provisional
        response arrived, else as soon as one does; nothing once a final
        response arrived.  If no final response follows within 64*T1, the
        transaction ends with a local 487.
        """
        if self.cancelRequested or self.state not in (
            TransactionState.CALLING,
            TransactionState.PROCEEDING,
        ):
            return
        self.cancelRequested = True
        if self.state is TransactionState.PROCEEDING:
            self._sendCancel()

    def _sendCancel(self) -> None:
        request = self.request
        headers = Headers()
        headers = headers.add("Via", request.topVia.serialize())
        for name in ("Max-Forwards", "From", "To", "Call-ID"):
            value = request.header(name)
            if value is not None:
                headers = headers.add(name, value)
        headers = headers.add("CSeq", CSeq(request.cseq.number, "CANCEL").serialize())
        for value in request.headers.getLines("Route"):
            headers = headers.add("Route", value)
        headers = headers.add("Content-Length", "0")
        cancel = SIPRequest("CANCEL", request.uri, headers)
        self.cancelTransaction = self.layer._startClient(cancel, self.destination, None)
        self._startTimer("cancel", self.timers.timeout, self._cancelTimedOut)

    def _cancelTimedOut(self) -> None:
        if self.state is TransactionState.TERMINATED:
            return
        self._transition(TransactionState.TERMINATED)
        self._report(self._localResponse(487, "Request Terminated"))


class NonInviteClientTransaction(ClientTransaction):
    """
    The non-INVITE client transaction (RFC 3261 section 17.1.2, figure 6).
    """

    machine = "non-invite-client"
    initialState = TransactionState.TRYING

    def __init__(
        self,
        layer: TransactionLayer,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None = None,
    ) -> None:
        super().__init__(layer, request, destination, onResponse)
        self._interval = self.timers.t1

    def _armTimers(self) -> None:
        if not self.reliable:
            self._startTimer("E", self._interval, self._timerE)
        self._startTimer("F", self.timers.timeout, self._timedOut)

    def _timerE(self) -> None:
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return
        self._send()
        if self.state is TransactionState.TRYING:
            self._interval = min(2 * self._interval, self.timers.t2)
        else:
            self._interval = self.timers.t2
        self._startTimer("E", self._interval, self._timerE)

    def responseReceived(self, response: SIPResponse, flow: Flow) -> None:
        """
        Figure 6: 1xx -> Proceeding; final -> Completed, timer K.
        """
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            return
        if response.status < 200:
            self._transition(TransactionState.PROCEEDING)
            self._report(response)
            return
        self._stopTimer("E")
        self._stopTimer("F")
        self._transition(TransactionState.COMPLETED)
        if self.reliable:
            self._transition(TransactionState.TERMINATED)
        else:
            self._startTimer("K", self.timers.t4, self._terminate)
        self._report(response)

    def _terminate(self) -> None:
        self._transition(TransactionState.TERMINATED)


# --- server transactions ------------------------------------------------


class ServerTransaction(_Transaction):
    """
    A server transaction (RFC 3261 section 17.2).

    @ivar request: The request that created it (Via stamped by the
        transport).
    @ivar flow: Where it came from (responses go back along it).
    @ivar lastResponse: The last response sent.
    @ivar key: Its matching key.
    @ivar authenticatedUser: The user name the request proved with digest
        authentication (set by the UA core's admission), or L{None}: the
        request's identity for the layers above, never its From header.
    """

    def __init__(
        self,
        layer: TransactionLayer,
        request: SIPRequest,
        flow: Flow,
        key: Hashable,
    ) -> None:
        super().__init__(layer)
        self.request = request
        self.flow = flow
        self.key = key
        self.authenticatedUser: str | None = None
        self.lastResponse: SIPResponse | None = None
        #: Called once when the transaction terminates.
        self.whenTerminated: list[Callable[[ServerTransaction], None]] = []

    @property
    def transactionID(self) -> str:
        """
        The request's branch.
        """
        try:
            return self.request.topVia.branch or ""
        except HeaderError:
            return ""

    @property
    def reliable(self) -> bool:
        """
        Whether the flow is reliable.
        """
        return self.flow.reliable

    @property
    def finalSent(self) -> bool:
        """
        Whether a final response was sent.
        """
        return self.lastResponse is not None and self.lastResponse.status >= 200

    def start(self) -> None:
        """
        Called once the transaction is registered.
        """

    def respond(self, response: SIPResponse) -> None:
        """
        Send a response.

        @raise InvalidTransition: A final response was already sent.
        """
        raise NotImplementedError()

    def _send(self, response: SIPResponse) -> None:
        self.lastResponse = response
        self.layer.transport.sendResponse(response, self.flow).addErrback(
            self._sendFailed
        )

    def _resend(self) -> None:
        if self.lastResponse is not None:
            self.layer.transport.sendResponse(self.lastResponse, self.flow).addErrback(
                self._sendFailed
            )

    def _sendFailed(self, reason: Failure) -> None:
        if self.state is TransactionState.TERMINATED:
            return
        self._log.warn(
            "Could not send response to {peer}: {error}",
            peer=str(self.flow.source),
            error=reason.getErrorMessage(),
            transactionID=self.transactionID,
        )
        self._transition(TransactionState.TERMINATED)
        self.layer._serverFailed(self, reason)

    def _terminated(self) -> None:
        self.layer._removeServer(self)
        callbacks, self.whenTerminated = self.whenTerminated, []
        for callback in callbacks:
            callback(self)

    def requestRetransmitted(self, request: SIPRequest) -> None:
        """
        The same request arrived again (or its ACK, for INVITE).
        """
        raise NotImplementedError()


class InviteServerTransaction(ServerTransaction):
    """
    The INVITE server transaction (RFC 3261 section 17.2.1, figure 7).
    """

    machine = "invite-server"
    initialState = TransactionState.PROCEEDING
    _interval = 0.0

    def start(self) -> None:
        """
        Arm the 100 Trying timer (or send it at once).
        """
        if self.timers.trying <= 0:
            self._sendTrying()
        else:
            self._startTimer("trying", self.timers.trying, self._sendTrying)

    def _sendTrying(self) -> None:
        if self.lastResponse is None and self.state is TransactionState.PROCEEDING:
            self._send(self.request.makeResponse(100))

    def respond(self, response: SIPResponse) -> None:
        """
        1xx: sent, stays in Proceeding; 2xx: sent, Terminated (the TU
        retransmits it); 300-699: sent, Completed with timers G and H.
        """
        if self.state is not TransactionState.PROCEEDING:
            raise InvalidTransition(
                f"INVITE server transaction is {self.state.value}; "
                f"cannot send {response.status}"
            )
        self._stopTimer("trying")
        self._send(response)
        if response.status < 200 or self.terminated:
            return
        if response.isSuccess:
            self._transition(TransactionState.TERMINATED)
            return
        self._transition(TransactionState.COMPLETED)
        if not self.reliable:
            self._interval = self.timers.t1
            self._startTimer("G", self._interval, self._timerG)
        self._startTimer("H", self.timers.timeout, self._timerH)

    def _timerG(self) -> None:
        if self.state is not TransactionState.COMPLETED:
            return
        self._resend()
        self._interval = min(2 * self._interval, self.timers.t2)
        self._startTimer("G", self._interval, self._timerG)

    def _timerH(self) -> None:
        if self.state is not TransactionState.COMPLETED:
            return
        self._log.info(
            "No ACK from {peer} for {status}",
            peer=str(self.flow.source),
            status=self.lastResponse.status if self.lastResponse else 0,
            transactionID=self.transactionID,
        )
        self._transition(TransactionState.TERMINATED)
        self.layer._serverFailed(
            self, Failure(TransactionTimeout("timer H"))  # type: ignore[no-untyped-call]
        )

    def _timerI(self) -> None:
        self._transition(TransactionState.TERMINATED)

    def requestRetransmitted(self, request: SIPRequest) -> None:
        """
        INVITE again: resend the last response (Proceeding, Completed).
        ACK: Completed -> Confirmed, timer I; absorbed otherwise.
        """
        if request.method == "ACK":
            if self.state is TransactionState.COMPLETED:
                self._stopTimer("G")
                self._stopTimer("H")
                self._transition(TransactionState.CONFIRMED)
                if self.reliable:
                    self._transition(TransactionState.TERMINATED)
                else:
                    self._startTimer("I", self.timers.t4, self._timerI)
            return
        if self.state in (TransactionState.PROCEEDING, TransactionState.COMPLETED):
            self._resend()


class NonInviteServerTransaction(ServerTransaction):
    """
    The non-INVITE server transaction (RFC 3261 section 17.2.2, figure 8).
    """

    machine = "non-invite-server"
    initialState = TransactionState.TRYING

    def respond(self, response: SIPResponse) -> None:
        """
        1xx -> Proceeding; final -> Completed, timer J (64*T1 over UDP,
        zero over reliable transports).
        """
        if self.state not in (TransactionState.TRYING, TransactionState.PROCEEDING):
            raise InvalidTransition(
                f"non-INVITE server transaction is {self.state.value}; "
                f"cannot send {response.status}"
            )
        self._send(response)
        if self.terminated:
            return
        if response.status < 200:
            self._transition(TransactionState.PROCEEDING)
            return
        self._transition(TransactionState.COMPLETED)
        if self.reliable:
            self._transition(TransactionState.TERMINATED)
        else:
            self._startTimer("J", self.timers.timeout, self._timerJ)

    def _timerJ(self) -> None:
        self._transition(TransactionState.TERMINATED)

    def requestRetransmitted(self, request: SIPRequest) -> None:
        """
        Trying: absorbed; Proceeding, Completed: last response resent.
        """
        if self.state in (TransactionState.PROCEEDING, TransactionState.COMPLETED):
            self._resend()


# --- the layer ------------------------------------------------------------


def serverKey(request: SIPRequest) -> Hashable:
    """
    The server transaction matching key of a request (section 17.2.3).

    With the magic cookie: (branch, sent-by, method) with ACK counted as
    INVITE.  Without (RFC 2543): Request-URI, From tag, Call-ID, CSeq
    number, top Via and method (ACK as INVITE); the To tag is left out so
    that the ACK of a non-2xx response (which carries it) matches (the
    ACK's Request-URI equals the INVITE's, section 17.1.1.3).

    @raise HeaderError: Via, From, Call-ID or CSeq is unusable.
    """
    via = request.topVia
    method = "INVITE" if request.method == "ACK" else request.method
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ("3261", branch, via.sentBy.lower(), method)
    return (
        "2543",
        request.uri.serialize(),
        request.fromAddress.tag,
        request.callID,
        request.cseq.number,
        via.serialize(),
        method,
    )


@implementer(ISIPTransportUser)
class TransactionLayer:
    """
    The transaction layer: owns every transaction, matches messages to
    them.

    @ivar transport: The transport layer.
    @ivar clock: The clock for the timers.
    @ivar timers: T1, T2, T4 and the 100 Trying delay.
    @ivar user: The transaction user.
    """

    _log = Logger()

    def __init__(
        self,
        transport: SIPTransport,
        clock: IReactorTime,
        user: ITransactionUser | None = None,
        timers: TimerSettings = TimerSettings(),
    ) -> None:
        self.transport = transport
        self.clock = clock
        self.timers = timers
        self.user = user
        self.clients: dict[tuple[str, str], ClientTransaction] = {}
        self.servers: dict[Hashable, ServerTransaction] = {}
        transport.user = self

    def close(self) -> None:
        """
        Abandon every transaction (shutdown; nothing is reported).
        """
        transactions: list[_Transaction] = list(self.clients.values())
        transactions.extend(self.servers.values())
        self.clients.clear()
        self.servers.clear()
        for transaction in transactions:
            transaction.abandon()

    # -- client side -----------------------------------------------------

    def sendRequest(
        self,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None = None,
    ) -> ClientTransaction:
        """
        Start a client transaction: add our Via (new branch) on top of the
        request and send it.

        @param request: The request, without our Via.
        @param onResponse: Gets every response, including the local 408
            (timeout) and 503 (transport error).
        """
        if request.method == "ACK":
            raise ValueError("ACK is sent with sendStateless")
        via = self.transport.makeVia(destination.transport)
        request = replace(
            request, headers=request.headers.addFirst("Via", via.serialize())
        )
        return self._startClient(request, destination, onResponse)

    def _startClient(
        self,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None,
    ) -> ClientTransaction:
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = InviteClientTransaction(
                self, request, destination, onResponse
            )
        else:
            transaction = NonInviteClientTransaction(
                self, request, destination, onResponse
            )
        self.clients[transaction.key] = transaction
        transaction.start()
        return transaction

    def sendStateless(self, request: SIPRequest, destination: Address) -> SIPRequest:
        """
        Send a request outside any transaction (the ACK for a 2xx, section
        13.2.2.4) with our Via and a new branch.

        @return: The request as sent (to retransmit it as is).
        """
        via = self.transport.makeVia(destination.transport)
        request = replace(
            request, headers=request.headers.addFirst("Via", via.serialize())
        )
        self.resend(request, destination)
        return request

    def resend(self, request: SIPRequest, destination: Address) -> None:
        """
        Send an already complete request again (ACK retransmission).
        """
        self.transport.sendMessage(request, destination).addErrback(
            self._statelessFailed, destination
        )

    def _statelessFailed(self, reason: Failure, destination: Address) -> None:
        self._log.warn(
            "Could not send ACK to {peer}: {error}",
            peer=str(destination),
            error=reason.getErrorMessage(),
        )

    def _removeClient(self, transaction: ClientTransaction) -> None:
        if self.clients.get(transaction.key) is transaction:
            del self.clients[transaction.key]

    # -- server side -----------------------------------------------------

    def findInvite(self, cancel: SIPRequest) -> InviteServerTransaction | None:
        """
        The INVITE server transaction a CANCEL (or any request with the
        same branch and sent-by) refers to (section 9.2).
        """
        try:
            key = serverKey(replace(cancel, method="INVITE"))
        except HeaderError:
            return None
        transaction = self.servers.get(key)
        if isinstance(transaction, InviteServerTransaction):
            return transaction
        return None

    def _removeServer(self, transaction: ServerTransaction) -> None:
        if self.servers.get(transaction.key) is transaction:
            del self.servers[transaction.key]

    def _serverFailed(self, transaction: ServerTransaction, reason: Failure) -> None:
        if self.user is not None:
            self.user.serverTransactionFailed(transaction, reason)

    # -- receiving ---------------------------------------------------------

    def messageReceived(self, message: SIPMessage, flow: Flow) -> None:
        """
        Match a message to a transaction or hand it to the TU.
        """
        if isinstance(message, SIPResponse):
            self._responseReceived(message, flow)
        else:
            self._requestReceived(message, flow)

    def _responseReceived(self, response: SIPResponse, flow: Flow) -> None:
        try:
            branch = response.topVia.branch or ""
            method = response.cseq.method
        except HeaderError as e:
            self._log.warn(
                "Dropped response with bad Via/CSeq from {peer}: {error}",
                peer=str(flow.source),
                error=str(e),
            )
            return
        transaction = self.clients.get((branch, method))
        if transaction is not None:
            transaction.responseReceived(response, flow)
            return
        if self.user is not None:
            self.user.strayResponseReceived(response, flow)

    def _requestReceived(self, request: SIPRequest, flow: Flow) -> None:
        try:
            key = serverKey(request)
        except HeaderError as e:
            self._log.warn(
                "Dropped request with bad headers from {peer}: {error}",
                peer=str(flow.source),
                error=str(e),
            )
            return
        transaction = self.servers.get(key)
        if transaction is not None:
            if request.method == "ACK" and not isinstance(
                transaction, InviteServerTransaction
            ):
                transaction = None
            elif (
                request.method == "ACK"
                and transaction.lastResponse is not None
                and (transaction.lastResponse.isSuccess)
            ):
                transaction = None
        if transaction is not None:
            transaction.requestRetransmitted(request)
            return
        if request.method == "ACK":
            if self.user is not None:
                self.user.ackReceived(request, flow)
            return
        server: ServerTransaction
        if request.method == "INVITE":
            server = InviteServerTransaction(self, request, flow, key)
        else:
            server = NonInviteServerTransaction(self, request, flow, key)
        self.servers[key] = server
        server.start()
        if self.user is None:
            server.respond(request.makeResponse(503))
            return
        self.user.requestReceived(request, server)
