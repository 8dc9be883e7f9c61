# -*- test-case-name: tests.sip.test_transaction -*-
"""
Tests for L{stoxgw.sip.transaction}: the four RFC 3261 section 17 state
machines with every timer on a L{MemoryReactorClock}, matching (17.1.3,
17.2.3), ACK for non-2xx, CANCEL (section 9).
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.testing import (
    FakeDatagramTransport,
    MemoryReactorClock,
    StringTransport,
)
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.sip.headers import Headers
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.transaction import (
    TRANSITIONS,
    InvalidTransition,
    InviteClientTransaction,
    InviteServerTransaction,
    ITransactionUser,
    NonInviteServerTransaction,
    ServerTransaction,
    TimerSettings,
    TransactionLayer,
    TransactionState,
    TransactionTimeout,
    serverKey,
)
from stoxgw.sip.transport import (
    Address,
    Flow,
    SIPStreamConnection,
    TransportError,
    TransportKind,
)
from stoxgw.sip.uri import SIPURI
from tests.sip.test_transport import udpTransport

PEER = ("198.51.100.7", 5070)
UDP_DEST = Address(TransportKind.UDP, "198.51.100.7", 5070)
TCP_DEST = Address(TransportKind.TCP, "198.51.100.7", 5070)


def outgoing(method: str = "INVITE", cseq: int = 1) -> SIPRequest:
    """
    A request as the UA core hands it to the layer (no Via).
    """
    return SIPRequest(
        method,
        SIPURI("sip", "198.51.100.7", user="bob", port=5070),
        Headers.of(
            ("Max-Forwards", "70"),
            ("From", "<sip:gw@192.0.2.1>;tag=ft"),
            ("To", "<sip:bob@198.51.100.7>"),
            ("Call-ID", "call-1@192.0.2.1"),
            ("CSeq", f"{cseq} {method}"),
            ("Route", "<sip:proxy.example.com;lr>"),
            ("Contact", "<sip:gw@192.0.2.1>"),
        ),
    )


def incoming(
    method: str = "INVITE",
    branch: str = "z9hG4bKin1",
    cseq: int = 7,
    toTag: str | None = None,
) -> bytes:
    """
    A request as a peer sends it.
    """
    to = "<sip:room@192.0.2.1>" + (f";tag={toTag}" if toTag else "")
    return (
        f"{method} sip:room@192.0.2.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 198.51.100.7:5070;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: <sip:alice@example.com>;tag=at\r\n"
        "Call-ID: in-call@example.com\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@198.51.100.7:5070>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


@implementer(ITransactionUser)
class RecordingTU:
    """
    Records what the layer reports to the TU; answers nothing by itself.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[SIPRequest, ServerTransaction]] = []
        self.acks: list[SIPRequest] = []
        self.stray: list[SIPResponse] = []
        self.failed: list[tuple[ServerTransaction, Failure]] = []

    def requestReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        self.requests.append((request, transaction))

    def ackReceived(self, request: SIPRequest, flow: Flow) -> None:
        self.acks.append(request)

    def strayResponseReceived(self, response: SIPResponse, flow: Flow) -> None:
        self.stray.append(response)

    def serverTransactionFailed(
        self, transaction: ServerTransaction, reason: Failure
    ) -> None:
        self.failed.append((transaction, reason))


class LayerMixin:
    """
    A layer on a fake UDP socket and a clock.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.transport, self.udp, _ = udpTransport(self.clock)
        self.tu = RecordingTU()
        self.layer = TransactionLayer(self.transport, self.clock, self.tu)
        self.responses: list[SIPResponse] = []

    def sent(self) -> list[SIPMessage]:
        """
        Parse and clear what went out over UDP.
        """
        messages = [
            parseDatagram(data, requireMaxForwards=False)
            for data, _ in self.udp.written
        ]
        self.udp.written.clear()
        return messages

    def receive(self, data: bytes | SIPMessage) -> None:
        """
        A datagram from the peer.
        """
        if not isinstance(data, bytes):
            data = data.serialize()
        self.transport._udp.datagramReceived(data, PEER)  # type: ignore[union-attr]

    def advance(self, seconds: float, step: float = 0.125) -> None:
        """
        Move the clock in small steps.
        """
        remaining = seconds
        while remaining > 1e-9:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta


class ClientInviteTests(LayerMixin, SynchronousTestCase):
    """
    RFC 3261 17.1.1 (figure 5).
    """

    def start(self, destination: Address = UDP_DEST) -> InviteClientTransaction:
        transaction = self.layer.sendRequest(
            outgoing(), destination, self.responses.append
        )
        assert isinstance(transaction, InviteClientTransaction)
        return transaction

    def test_viaAdded(self) -> None:
        """
        RFC 3261 8.1.1.7 / 18.1.1: the layer puts our Via with a magic
        cookie branch on top.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.assertEqual(request.topVia.branch, transaction.branch)
        self.assertTrue(request.topVia.hasMagicCookie)
        self.assertEqual(transaction.state, TransactionState.CALLING)

    def test_timerARetransmitsAndTimerBTimesOut(self) -> None:
        """
        RFC 3261 17.1.1.2: over UDP the INVITE is resent at T1, 2T1, 4T1,
        ... (0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s) until timer B (64*T1 = 32
        s) reports a 408 and ends the transaction.
        """
        transaction = self.start()
        times = []
        elapsed = 0.0
        self.sent()
        while elapsed < 32.0:
            self.advance(0.25)
            elapsed += 0.25
            if self.sent():
                times.append(elapsed)
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 15.5, 31.5])
        self.assertEqual([r.status for r in self.responses], [408])
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.assertEqual(self.layer.clients, {})
        self.assertEqual(self.successResultOf(transaction.finalResponse).status, 408)

    def test_reliableNoRetransmission(self) -> None:
        """
        RFC 3261 17.1.1.2: no timer A over TCP; timer B still applies.
        """
        transaction = self.start(TCP_DEST)
        self.assertFalse(transaction.timerActive("A"))
        self.assertTrue(transaction.timerActive("B"))

    def test_provisionalStopsRetransmission(self) -> None:
        """
        A 1xx moves to Proceeding, goes to the TU, stops timers A and B.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.receive(request.makeResponse(180, toTag="bt"))
        self.assertEqual(transaction.state, TransactionState.PROCEEDING)
        self.assertEqual([r.status for r in self.responses], [180])
        self.advance(40)
        self.assertEqual(self.sent(), [])
        self.assertEqual(transaction.state, TransactionState.PROCEEDING)

    def test_successTerminates(self) -> None:
        """
        RFC 3261 17.1.1.2: a 2xx goes to the TU and ends the transaction;
        its retransmissions are stray responses for the TU (13.2.2.4).
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        ok = request.makeResponse(200, toTag="bt")
        self.receive(ok)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.assertEqual([r.status for r in self.responses], [200])
        self.assertEqual(self.sent(), [])  # no ACK from the transaction
        self.receive(ok)
        self.assertEqual([r.status for r in self.tu.stray], [200])

    def test_failureAckedInTransaction(self) -> None:
        """
        RFC 3261 17.1.1.3: a 486 is ACKed by the transaction: same
        Request-URI, Call-ID, From, CSeq number, top Via (branch), Route;
        To from the response.  Retransmissions are ACKed again and not
        reported; timer D (32 s) ends the transaction.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        busy = request.makeResponse(486, toTag="bt")
        self.receive(busy)
        [ack] = self.sent()
        assert isinstance(ack, SIPRequest)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual(ack.uri, request.uri)
        self.assertEqual(ack.topVia.branch, transaction.branch)
        self.assertEqual(len(ack.vias), 1)
        self.assertEqual(ack.cseq.number, request.cseq.number)
        self.assertEqual(ack.cseq.method, "ACK")
        self.assertEqual(ack.toAddress.tag, "bt")
        self.assertEqual(ack.header("From"), request.header("From"))
        self.assertEqual(ack.header("Route"), "<sip:proxy.example.com;lr>")
        self.assertEqual(transaction.state, TransactionState.COMPLETED)
        self.receive(busy)
        self.assertEqual([m.method for m in self.sent()], ["ACK"])  # type: ignore[union-attr]
        self.assertEqual([r.status for r in self.responses], [486])
        self.advance(31.875)
        self.assertEqual(transaction.state, TransactionState.COMPLETED)
        self.advance(0.2)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_failureReliableTerminatesAtOnce(self) -> None:
        """
        Timer D is zero over reliable transports.
        """
        transaction = self.start(TCP_DEST)
        transaction.responseReceived(
            transaction.request.makeResponse(404, toTag="x"), Flow(TCP_DEST)
        )
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_transportError503(self) -> None:
        """
        RFC 3261 8.1.3.1 / 17.1.4: a transport error is reported as 503.
        """
        transport = self.transport
        transport._udp = None
        with capturedLogs():
            self.start()
        self.assertEqual([r.status for r in self.responses], [503])
        self.assertEqual(self.layer.clients, {})

    def test_cancelWaitsForProvisional(self) -> None:
        """
        RFC 3261 9.1: no CANCEL before a provisional response; it goes out
        when one arrives, with the INVITE's branch, Call-ID, From, To,
        CSeq number and Route; the 487 is ACKed.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        transaction.cancel()
        self.assertEqual(self.sent(), [])
        self.receive(request.makeResponse(180, toTag="bt"))
        [cancel] = self.sent()
        assert isinstance(cancel, SIPRequest)
        self.assertEqual(cancel.method, "CANCEL")
        self.assertEqual(cancel.topVia.branch, transaction.branch)
        self.assertEqual(cancel.cseq.number, request.cseq.number)
        self.assertEqual(cancel.cseq.method, "CANCEL")
        self.assertEqual(cancel.header("To"), request.header("To"))
        self.assertEqual(cancel.header("Route"), request.header("Route"))
        self.assertEqual(cancel.uri, request.uri)
        # The CANCEL is its own transaction (matched by method).
        self.receive(cancel.makeResponse(200, toTag="bt"))
        self.assertEqual(transaction.state, TransactionState.PROCEEDING)
        self.receive(request.makeResponse(487, toTag="bt"))
        [ack] = self.sent()
        assert isinstance(ack, SIPRequest)
        self.assertEqual(ack.method, "ACK")
        self.assertEqual([r.status for r in self.responses], [180, 487])

    def test_cancelTimesOut(self) -> None:
        """
        RFC 3261 9.1: without a final response 64*T1 after the CANCEL,
        the transaction ends with a local 487.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.receive(request.makeResponse(183, toTag="bt"))
        transaction.cancel()
        self.advance(32.0, step=0.5)
        self.assertEqual([r.status for r in self.responses], [183, 487])
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_cancelAfterFinalIgnored(self) -> None:
        """
        Nothing to cancel once a final response arrived.
        """
        transaction = self.start(TCP_DEST)
        transaction.responseReceived(
            transaction.request.makeResponse(603, toTag="x"), Flow(TCP_DEST)
        )
        transaction.cancel()
        self.assertFalse(transaction.cancelRequested)


class ClientNonInviteTests(LayerMixin, SynchronousTestCase):
    """
    RFC 3261 17.1.2 (figure 6).
    """

    def start(self, destination: Address = UDP_DEST) -> object:
        return self.layer.sendRequest(
            outgoing("OPTIONS"), destination, self.responses.append
        )

    def test_timerEDoublesToT2AndTimerF(self) -> None:
        """
        RFC 3261 17.1.2.2: resent at 0.5, 1.5, 3.5, 7.5 s then every T2
        (4 s) until timer F (32 s) reports 408.
        """
        transaction = self.start()
        self.sent()
        times = []
        elapsed = 0.0
        while elapsed < 32.0:
            self.advance(0.25)
            elapsed += 0.25
            if self.sent():
                times.append(elapsed)
        self.assertEqual(
            times, [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        )
        self.assertEqual([r.status for r in self.responses], [408])
        self.assertEqual(transaction.state, TransactionState.TERMINATED)  # type: ignore[attr-defined]

    def test_proceedingRetransmitsAtT2(self) -> None:
        """
        In Proceeding, timer E fires every T2.
        """
        self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.advance(0.5)  # first retransmission, interval now 1 s
        self.sent()
        self.receive(request.makeResponse(100))
        self.advance(1.0)
        self.assertEqual(len(self.sent()), 1)
        self.advance(3.875)
        self.assertEqual(self.sent(), [])
        self.advance(0.25)
        self.assertEqual(len(self.sent()), 1)
        self.assertEqual([r.status for r in self.responses], [100])

    def test_finalCompletesTimerK(self) -> None:
        """
        A final response moves to Completed; retransmissions of it are
        absorbed; timer K (T4) ends the transaction.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        ok = request.makeResponse(200, toTag="x")
        self.receive(ok)
        self.assertEqual(transaction.state, TransactionState.COMPLETED)  # type: ignore[attr-defined]
        self.receive(ok)
        self.assertEqual([r.status for r in self.responses], [200])
        self.advance(40)
        self.assertEqual(self.sent(), [])
        self.assertEqual(transaction.state, TransactionState.TERMINATED)  # type: ignore[attr-defined]
        self.assertEqual(self.layer.clients, {})

    def test_timerKIsT4(self) -> None:
        """
        Timer K is exactly T4 (5 s) over UDP and zero over TCP.
        """
        transaction = self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.receive(request.makeResponse(404, toTag="x"))
        self.advance(4.875)
        self.assertEqual(transaction.state, TransactionState.COMPLETED)  # type: ignore[attr-defined]
        self.advance(0.25)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)  # type: ignore[attr-defined]
        tcp = self.start(TCP_DEST)
        tcp.responseReceived(tcp.request.makeResponse(200, toTag="x"), Flow(TCP_DEST))  # type: ignore[attr-defined]
        self.assertEqual(tcp.state, TransactionState.TERMINATED)  # type: ignore[attr-defined]

    def test_otherBranchIsStray(self) -> None:
        """
        RFC 3261 17.1.3: a response with another branch matches nothing.
        """
        self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        other = request.makeResponse(200).withHeader(
            "Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKother"
        )
        self.receive(other)
        self.assertEqual(self.responses, [])
        self.assertEqual(len(self.tu.stray), 1)

    def test_sameBranchOtherMethodIsStray(self) -> None:
        """
        RFC 3261 17.1.3: the CSeq method must match too.
        """
        self.start()
        [request] = self.sent()
        assert isinstance(request, SIPRequest)
        self.receive(request.makeResponse(200).withHeader("CSeq", "1 INFO"))
        self.assertEqual(self.responses, [])


class ServerInviteTests(LayerMixin, SynchronousTestCase):
    """
    RFC 3261 17.2.1 (figure 7).
    """

    def start(self, branch: str = "z9hG4bKin1") -> InviteServerTransaction:
        self.receive(incoming("INVITE", branch))
        request, transaction = self.tu.requests[-1]
        assert isinstance(transaction, InviteServerTransaction)
        return transaction

    def test_verifyTU(self) -> None:
        """
        The recording TU provides the interface.
        """
        self.assertTrue(verifyObject(ITransactionUser, self.tu))

    def test_tryingAfter200ms(self) -> None:
        """
        RFC 3261 17.2.1: 100 Trying if the TU has not answered in 200 ms.
        """
        self.start()
        self.advance(0.125)
        self.assertEqual(self.sent(), [])
        self.advance(0.125)
        [trying] = self.sent()
        assert isinstance(trying, SIPResponse)
        self.assertEqual(trying.status, 100)
        self.assertIsNone(trying.toAddress.tag)

    def test_noTryingWhenAnswered(self) -> None:
        """
        No 100 when the TU answers within 200 ms.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(180, toTag="t"))
        self.advance(1)
        self.assertEqual([m.status for m in self.sent()], [180])  # type: ignore[union-attr]

    def test_tryingAtOnce(self) -> None:
        """
        With a zero delay, 100 goes out at once.
        """
        self.layer.timers = TimerSettings(trying=0)
        self.start()
        self.assertEqual([m.status for m in self.sent()], [100])  # type: ignore[union-attr]

    def test_retransmissionAbsorbed(self) -> None:
        """
        RFC 3261 17.2.1: a retransmitted INVITE is not passed up; the last
        provisional response is sent again.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(180, toTag="t"))
        self.sent()
        self.receive(incoming("INVITE"))
        self.assertEqual(len(self.tu.requests), 1)
        self.assertEqual([m.status for m in self.sent()], [180])  # type: ignore[union-attr]

    def test_failureTimerGUntilAck(self) -> None:
        """
        RFC 3261 17.2.1: a 486 over UDP is resent at 0.5, 1.5, 3.5, 7.5,
        11.5 s (doubling to T2) until the ACK (same branch), which moves
        to Confirmed, is not passed up, and starts timer I (T4).
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(486, toTag="t"))
        self.sent()
        times = []
        elapsed = 0.0
        while elapsed < 12.0:
            self.advance(0.25)
            elapsed += 0.25
            if self.sent():
                times.append(elapsed)
        self.assertEqual(times, [0.5, 1.5, 3.5, 7.5, 11.5])
        self.receive(incoming("ACK", cseq=7, toTag="t"))
        self.assertEqual(transaction.state, TransactionState.CONFIRMED)
        self.assertEqual(self.tu.acks, [])
        self.advance(10)
        self.assertEqual(self.sent(), [])
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.assertEqual(self.layer.servers, {})

    def test_timerIIsT4(self) -> None:
        """
        Timer I is T4 (5 s) over UDP.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(486, toTag="t"))
        self.receive(incoming("ACK", toTag="t"))
        self.advance(4.875)
        self.assertEqual(transaction.state, TransactionState.CONFIRMED)
        self.receive(incoming("ACK", toTag="t"))  # absorbed
        self.advance(0.25)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_timerH(self) -> None:
        """
        RFC 3261 17.2.1: without ACK, timer H (64*T1) ends the transaction
        and the TU hears of it.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(480, toTag="t"))
        with capturedLogs():
            self.advance(32.1, step=0.5)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        [(failed, reason)] = self.tu.failed
        self.assertIs(failed, transaction)
        reason.trap(TransactionTimeout)

    def test_successTerminatesAndAckGoesToTU(self) -> None:
        """
        RFC 3261 17.2.1: a 2xx ends the transaction (the TU retransmits
        it); the ACK for it (new branch) goes to the TU.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(200, toTag="t"))
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.assertFalse(transaction.timerActive("G"))
        self.receive(incoming("ACK", branch="z9hG4bKack", toTag="t"))
        self.assertEqual(len(self.tu.acks), 1)

    def test_reliableNoTimerG(self) -> None:
        """
        Over TCP: no timer G; timer I is zero.
        """
        connection = SIPStreamConnection(self.transport, TransportKind.TCP)
        string = StringTransport(peerAddress=IPv4Address("TCP", *PEER))
        connection.makeConnection(string)
        connection.dataReceived(incoming("INVITE", "z9hG4bKtcp"))
        _, transaction = self.tu.requests[-1]
        transaction.respond(transaction.request.makeResponse(486, toTag="t"))
        self.assertFalse(transaction.timerActive("G"))
        self.assertTrue(transaction.timerActive("H"))
        connection.dataReceived(incoming("ACK", "z9hG4bKtcp", toTag="t"))
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_respondTwiceRefused(self) -> None:
        """
        A second final response is a bug: L{InvalidTransition}.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(486, toTag="t"))
        self.assertRaises(
            InvalidTransition,
            transaction.respond,
            transaction.request.makeResponse(200, toTag="t"),
        )

    def test_findInviteForCancel(self) -> None:
        """
        RFC 3261 9.2: the CANCEL's branch and sent-by find the INVITE
        transaction; the CANCEL has a server transaction of its own.
        """
        transaction = self.start()
        self.receive(incoming("CANCEL"))
        cancel, cancelTransaction = self.tu.requests[-1]
        self.assertIsInstance(cancelTransaction, NonInviteServerTransaction)
        self.assertIs(self.layer.findInvite(cancel), transaction)
        other = parseDatagram(incoming("CANCEL", branch="z9hG4bKzzz"))
        assert isinstance(other, SIPRequest)
        self.assertIsNone(self.layer.findInvite(other))

    def test_sendFailureTerminates(self) -> None:
        """
        RFC 3261 17.2.4: a response that cannot be sent ends the
        transaction and the TU is told.
        """
        transaction = self.start()
        self.transport._udp = None
        with capturedLogs():
            transaction.respond(transaction.request.makeResponse(486, toTag="t"))
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.tu.failed[0][1].trap(TransportError)


class ServerNonInviteTests(LayerMixin, SynchronousTestCase):
    """
    RFC 3261 17.2.2 (figure 8).
    """

    def start(self) -> ServerTransaction:
        self.receive(incoming("OPTIONS"))
        return self.tu.requests[-1][1]

    def test_tryingAbsorbs(self) -> None:
        """
        A retransmission in Trying is absorbed silently.
        """
        transaction = self.start()
        self.receive(incoming("OPTIONS"))
        self.assertEqual(len(self.tu.requests), 1)
        self.assertEqual(self.sent(), [])
        self.assertEqual(transaction.state, TransactionState.TRYING)

    def test_proceedingResends(self) -> None:
        """
        In Proceeding a retransmission gets the last provisional again.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(100))
        self.assertEqual(transaction.state, TransactionState.PROCEEDING)
        self.sent()
        self.receive(incoming("OPTIONS"))
        self.assertEqual([m.status for m in self.sent()], [100])  # type: ignore[union-attr]

    def test_completedResendsUntilTimerJ(self) -> None:
        """
        After the final response, retransmissions get it again until
        timer J (64*T1); then a retransmission is a new request.
        """
        transaction = self.start()
        transaction.respond(transaction.request.makeResponse(200, toTag="t"))
        self.sent()
        self.receive(incoming("OPTIONS"))
        self.assertEqual([m.status for m in self.sent()], [200])  # type: ignore[union-attr]
        self.advance(31.875)
        self.assertEqual(transaction.state, TransactionState.COMPLETED)
        self.advance(0.2)
        self.assertEqual(transaction.state, TransactionState.TERMINATED)
        self.receive(incoming("OPTIONS"))
        self.assertEqual(len(self.tu.requests), 2)

    def test_reliableTimerJZero(self) -> None:
        """
        Over TCP, timer J is zero.
        """
        connection = SIPStreamConnection(self.transport, TransportKind.TCP)
        connection.makeConnection(
            StringTransport(peerAddress=IPv4Address("TCP", *PEER))
        )
        connection.dataReceived(incoming("OPTIONS", "z9hG4bKtcp"))
        transaction = self.tu.requests[-1][1]
        transaction.respond(transaction.request.makeResponse(200, toTag="t"))
        self.assertEqual(transaction.state, TransactionState.TERMINATED)

    def test_ackWithoutInviteGoesToTU(self) -> None:
        """
        An ACK matching no INVITE transaction goes to the TU.
        """
        self.receive(incoming("ACK", toTag="t"))
        self.assertEqual(len(self.tu.acks), 1)
        self.assertEqual(self.tu.requests, [])


class MatchingTests(SynchronousTestCase):
    """
    RFC 3261 17.2.3 keys.
    """

    def parse(self, data: bytes) -> SIPRequest:
        request = parseDatagram(data)
        assert isinstance(request, SIPRequest)
        return request

    def test_ackMatchesInvite(self) -> None:
        """
        ACK and INVITE with the same branch and sent-by share a key;
        other methods do not.
        """
        invite = self.parse(incoming("INVITE"))
        ack = self.parse(incoming("ACK", toTag="t"))
        cancel = self.parse(incoming("CANCEL"))
        self.assertEqual(serverKey(invite), serverKey(ack))
        self.assertNotEqual(serverKey(invite), serverKey(cancel))

    def test_sentByMatters(self) -> None:
        """
        The same branch from another sent-by is another transaction.
        """
        a = self.parse(incoming("OPTIONS"))
        b = self.parse(
            incoming("OPTIONS").replace(b"198.51.100.7:5070", b"198.51.100.8:5070", 1)
        )
        self.assertNotEqual(serverKey(a), serverKey(b))

    def test_rfc2543Fallback(self) -> None:
        """
        RFC 3261 17.2.3: without the magic cookie, the ACK of a non-2xx
        still matches its INVITE (To tag aside), other requests do not.
        """
        invite = self.parse(incoming("INVITE", branch="old1"))
        ack = self.parse(incoming("ACK", branch="old1", toTag="t"))
        bye = self.parse(incoming("BYE", branch="old1", cseq=8, toTag="t"))
        self.assertEqual(serverKey(invite), serverKey(ack))
        self.assertNotEqual(serverKey(invite), serverKey(bye))

    def test_transitionTablesClosed(self) -> None:
        """
        Every machine's table ends in Terminated with no way out.
        """
        for machine, table in TRANSITIONS.items():
            self.assertEqual(table[TransactionState.TERMINATED], frozenset(), machine)
            for state, targets in table.items():
                for target in targets:
                    self.assertIn(target, table, machine)

    def test_layerNeedsTU(self) -> None:
        """
        Without a TU, requests are refused with 503.
        """
        clock = MemoryReactorClock()
        transport, udp, _ = udpTransport(clock)
        TransactionLayer(transport, clock)
        transport._udp.datagramReceived(incoming("OPTIONS"), PEER)  # type: ignore[union-attr]
        response = parseDatagram(udp.written[0][0], requireMaxForwards=False)
        assert isinstance(response, SIPResponse)
        self.assertEqual(response.status, 503)
        self.assertIsInstance(udp, FakeDatagramTransport)
