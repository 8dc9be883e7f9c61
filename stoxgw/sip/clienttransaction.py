# -*- test-case-name: tests.sip.test_transaction -*-
"""
RFC 3261 section 17.1 client transactions: INVITE (figure 5, with CANCEL,
section 9.1, and the ACK of a non-2xx answer, 17.1.1.3) and non-INVITE
(figure 6).  L{TransactionLayer.sendRequest
<stoxgw.sip.transaction.TransactionLayer.sendRequest>} starts them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from stoxgw.sip.headers import CSeq, Headers
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.transactionstate import (
    ResponseCallback,
    _Transaction,
    TransactionState,
)
from stoxgw.sip.transport import Address, Flow

if TYPE_CHECKING:
    from stoxgw.sip.transaction import TransactionLayer

__all__ = ["ClientTransaction", "InviteClientTransaction", "NonInviteClientTransaction"]


class ClientTransaction(_Transaction):
    """
    A client transaction (RFC 3261 section 17.1).

    @ivar request: The request as sent (with our Via).
    @ivar destination: Where it goes.
    @ivar branch: Our Via branch.
    @ivar finalResponse: Fires with the final response (real, or a local
        408/503).
    """

    #: The retransmission interval (timer A or E), from T1.
    _interval = 0.0

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
        self._interval = self.timers.t1

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
        self.layer.removeClient(self)

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
    cancelRequested = False
    #: The CANCEL's own client transaction, once sent.
    cancelTransaction: ClientTransaction | None = None
    #: The ACK of a non-2xx final response, once built.
    _ack: SIPRequest | None = None

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
        self.cancelTransaction = self.layer.startClient(cancel, self.destination, None)
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
