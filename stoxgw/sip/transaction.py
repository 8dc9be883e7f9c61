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

The machines live in L{stoxgw.sip.clienttransaction} and
L{stoxgw.sip.servertransaction} (what they share in
L{stoxgw.sip.transactionstate}); this module holds the layer and is where
their names are imported from.

Matching follows sections 17.1.3 and 17.2.3: branch and method for
responses; branch, sent-by and method (ACK as INVITE) for requests with
the magic cookie; the RFC 2543 fallback uses Request-URI, From tag,
Call-ID, CSeq and top Via.

RFC 6026 (the Accepted state for 2xx to INVITE) is not implemented; the
behaviour is RFC 3261's.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Hashable

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.sip.clienttransaction import (
    ClientTransaction,
    InviteClientTransaction,
    NonInviteClientTransaction,
)
from stoxgw.sip.headers import HeaderError
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse
from stoxgw.sip.servertransaction import (
    InviteServerTransaction,
    NonInviteServerTransaction,
    ServerTransaction,
    serverKey,
)
from stoxgw.sip.transactionstate import (
    TRANSITIONS,
    InvalidTransition,
    ITransactionUser,
    ResponseCallback,
    TimerSettings,
    _Transaction,
    TransactionState,
    TransactionTimeout,
)
from stoxgw.sip.transport import Address, Flow, ISIPTransportUser, SIPTransport

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
    "TRANSITIONS",
    "serverKey",
]


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
        return self.startClient(request, destination, onResponse)

    def startClient(
        self,
        request: SIPRequest,
        destination: Address,
        onResponse: ResponseCallback | None,
    ) -> ClientTransaction:
        """
        Start the client transaction of a request that already has our Via
        (L{sendRequest}, and the CANCEL of an INVITE transaction).
        """
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

    def removeClient(self, transaction: ClientTransaction) -> None:
        """
        A client transaction terminated: forget it.
        """
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

    def removeServer(self, transaction: ServerTransaction) -> None:
        """
        A server transaction terminated: forget it.
        """
        if self.servers.get(transaction.key) is transaction:
            del self.servers[transaction.key]

    def serverFailed(self, transaction: ServerTransaction, reason: Failure) -> None:
        """
        A server transaction failed (transport error, timer H): tell the
        transaction user.
        """
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
