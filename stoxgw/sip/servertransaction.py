# -*- test-case-name: tests.sip.test_transaction -*-
"""
RFC 3261 section 17.2 server transactions: INVITE (figure 7: 100 Trying
after 200 ms, timers G, H, I) and non-INVITE (figure 8), and their
matching key (section 17.2.3, L{serverKey}).  The L{TransactionLayer
<stoxgw.sip.transaction.TransactionLayer>} starts them for requests that
match none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable

from twisted.python.failure import Failure

from stoxgw.sip.headers import HeaderError
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.transactionstate import (
    InvalidTransition,
    _Transaction,
    TransactionState,
    TransactionTimeout,
)
from stoxgw.sip.transport import MAGIC_COOKIE, Flow

if TYPE_CHECKING:
    from stoxgw.sip.transaction import TransactionLayer

__all__ = [
    "ServerTransaction",
    "InviteServerTransaction",
    "NonInviteServerTransaction",
    "serverKey",
]


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
        self.layer.serverFailed(self, reason)

    def _terminated(self) -> None:
        self.layer.removeServer(self)
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
        self.layer.serverFailed(
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


