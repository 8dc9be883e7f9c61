# -*- test-case-name: tests.chat.test_session -*-
"""
Tests for L{stoxgw.chat.session}: two gateways' chat layers (a real
L{SIPUserAgent} on a fake UDP socket and a real L{MSRPEndpoint} each) wired
together through a L{MemoryReactorClock} and L{StringTransport}s.
"""

from __future__ import annotations

import gc
import weakref

from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.chat.session import (
    AcceptChat,
    ChatAcceptor,
    ChatEnd,
    ChatInitiator,
    ChatOffer,
    ChatSession,
    ChatSessionError,
    ChatSettings,
    ChatState,
    EndCause,
    IncomingChat,
    OutgoingChat,
    IChatOfferHandler,
    IChatSessionHandler,
    IChatUpdateHandler,
    RejectChat,
)
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import (
    IMSRPSessionHandler,
    IncomingMessage,
    MSRPSendError,
    SessionState,
)
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.invitedialog import IDialogHandler
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse, parseDatagram
from stoxgw.sip.msrpmedia import MSRPMedia, Setup
from stoxgw.sip.sdp import parseSDP
from stoxgw.sip.sessiontimer import SessionTimerSettings, SessionTimerTerms
from stoxgw.sip.uri import parseNameAddr
from stoxgw.sip.useragent import (
    IInviteHandler,
    SIPError,
    SIPTrust,
    SIPUserAgent,
    UserAgentSettings,
)
from tests.sip.test_transport import udpTransport

HOST_A = "192.0.2.1"
HOST_B = "192.0.2.2"
ROOM = parseNameAddr("<sip:room@192.0.2.2>")
JULIET = parseNameAddr("<sip:juliet@example.com>;tag=j1")


@implementer(IChatSessionHandler, IChatUpdateHandler)
class Recorder:
    """
    Records what a chat session reports.
    """

    def __init__(self) -> None:
        self.started: list[ChatSession] = []
        self.updates: list[tuple[MSRPMedia, MSRPMedia | None]] = []
        self.messages: list[IncomingMessage] = []
        self.nicknames: list[str] = []
        self.ended: list[ChatEnd] = []
        self.nicknameResult: Any = 200

    def chatStarted(self, session: ChatSession) -> None:
        self.started.append(session)

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        self.messages.append(message)
        return None

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        self.nicknames.append(nickname)
        return self.nicknameResult

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        self.ended.append(reason)

    def chatUpdated(self, session: ChatSession, previous: MSRPMedia) -> None:
        self.updates.append((previous, session.remoteMedia))

    @property
    def session(self) -> ChatSession:
        [session] = self.started
        return session


@implementer(IChatOfferHandler)
class Offers:
    """
    Decides as told; keeps the offers.
    """

    def __init__(self, decide: Callable[[ChatOffer], Any]) -> None:
        self.decide = decide
        self.offers: list[ChatOffer] = []

    def chatOffered(self, offer: ChatOffer) -> Any:
        self.offers.append(offer)
        return self.decide(offer)


class Gateway:
    """
    One side: UA on a fake UDP socket at C{host}:5060, MSRP endpoint on
    C{host}:2855 (chunks of 16 octets), acceptor and initiator.
    """

    def __init__(
        self, clock: MemoryReactorClock, host: str, settings: ChatSettings
    ) -> None:
        self.host = host
        self.transport, self.udp, _ = udpTransport(clock, host)
        self.ua = SIPUserAgent(
            clock, self.transport, admission=SIPTrust.fromStrings(["192.0.2.0/24"])
        )
        self.endpoint = MSRPEndpoint(clock, host, 2855, chunkSize=16)
        self.endpoint.startListening()
        self.handler = Recorder()
        self.offers = Offers(lambda offer: AcceptChat(self.handler))
        self.acceptor = ChatAcceptor(
            self.ua, self.endpoint, clock, self.offers, settings
        )
        self.acceptor.register()
        self.initiator = ChatInitiator(self.ua, self.endpoint, clock, settings)


class Link:
    """
    A TCP connection between the two MSRP endpoints.
    """

    def __init__(
        self,
        client: Protocol,
        clientTransport: StringTransport,
        server: Protocol,
        serverTransport: StringTransport,
    ) -> None:
        self.ends = [(client, clientTransport), (server, serverTransport)]
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for protocol, _ in self.ends:
            protocol.connectionLost(Failure(ConnectionDone()))  # type: ignore[no-untyped-call]


class Network:
    """
    Gateways A (192.0.2.1) and B (192.0.2.2) on one clock; L{pump} moves
    datagrams and stream bytes until nothing moves.

    @ivar sip: Every SIP message moved, as (sender host, message).
    @ivar holdTCP: Do not complete new MSRP connection attempts.
    @ivar drop: Drops the SIP messages it returns C{True} for.
    """

    def __init__(
        self,
        settingsA: ChatSettings = ChatSettings(),
        settingsB: ChatSettings = ChatSettings(),
    ) -> None:
        self.clock = MemoryReactorClock()
        self.a = Gateway(self.clock, HOST_A, settingsA)
        self.b = Gateway(self.clock, HOST_B, settingsB)
        self.sides = {HOST_A: self.a, HOST_B: self.b}
        self.sip: list[tuple[str, SIPMessage]] = []
        self.links: list[Link] = []
        self.connected = 0
        self.holdTCP = False
        self.drop: Callable[[SIPMessage], bool] = lambda message: False

    def connectPending(self) -> bool:
        moved = False
        while not self.holdTCP and self.connected < len(self.clock.tcpClients):
            host, port, factory = self.clock.tcpClients[self.connected][:3]
            self.connected += 1
            [server] = [
                f
                for (p, f, _, interface) in self.clock.tcpServers
                if (interface, p) == (host, port)
            ]
            source = HOST_A if host == HOST_B else HOST_B
            client = factory.buildProtocol(IPv4Address("TCP", host, port))
            serverProtocol = server.buildProtocol(IPv4Address("TCP", source, 40000))
            clientTransport = StringTransport(
                peerAddress=IPv4Address("TCP", host, port)
            )
            serverTransport = StringTransport(
                peerAddress=IPv4Address("TCP", source, 40000)
            )
            client.makeConnection(clientTransport)
            serverProtocol.makeConnection(serverTransport)
            self.links.append(
                Link(client, clientTransport, serverProtocol, serverTransport)
            )
            moved = True
        return moved

    def refusePending(self) -> None:
        """
        Fail every pending connection attempt.
        """
        while self.connected < len(self.clock.tcpClients):
            factory = self.clock.tcpClients[self.connected][2]
            connector = self.clock.connectors[self.connected]
            self.connected += 1
            factory.clientConnectionFailed(
                connector, Failure(ConnectionRefusedError())  # type: ignore[no-untyped-call]
            )

    def pump(self) -> None:
        for _ in range(1000):
            moved = self.connectPending()
            for host, side in self.sides.items():
                written, side.udp.written[:] = list(side.udp.written), []
                for data, (destination, _) in written:
                    message = parseDatagram(data, requireMaxForwards=False)
                    if self.drop(message):
                        continue
                    self.sip.append((host, message))
                    self.sides[destination].transport._udp.datagramReceived(  # type: ignore[union-attr]
                        data, (host, 5060)
                    )
                    moved = True
            for link in self.links:
                if link.closed:
                    continue
                for (_, transport), (peer, _) in (
                    (link.ends[0], link.ends[1]),
                    (link.ends[1], link.ends[0]),
                ):
                    data = transport.value()
                    if data:
                        transport.clear()
                        peer.dataReceived(data)
                        moved = True
                if any(t.disconnecting for _, t in link.ends):
                    link.close()
                    moved = True
            if not moved:
                return
        raise AssertionError("the network does not settle")

    def requests(self, method: str, sender: str | None = None) -> list[SIPRequest]:
        return [
            m
            for host, m in self.sip
            if isinstance(m, SIPRequest)
            and m.method == method
            and (sender is None or host == sender)
        ]

    def responses(self, method: str) -> list[SIPResponse]:
        return [
            m
            for _, m in self.sip
            if isinstance(m, SIPResponse) and m.cseq.method == method
        ]

    def start(self, **options: Any) -> Deferred[ChatSession]:
        d = self.a.initiator.startChat(ROOM, JULIET, self.a.handler, **options)
        self.pump()
        return d


def msrpMedia(message: SIPMessage) -> MSRPMedia:
    """
    The MSRP stream of a message's SDP.
    """
    description = parseSDP(message.body)
    return MSRPMedia.fromMedia(description.media[0], description)


class InterfaceTests(SynchronousTestCase):
    """
    Every provider implements its interfaces.
    """

    def test_verify(self) -> None:
        """
        The acceptor, the session and the test doubles verify.
        """
        net = Network()
        self.assertTrue(verifyObject(IInviteHandler, net.a.acceptor))
        self.assertTrue(verifyObject(IChatOfferHandler, net.a.offers))
        self.assertTrue(verifyObject(IChatSessionHandler, net.a.handler))
        net.start()
        session = net.a.handler.session
        self.assertTrue(verifyObject(IDialogHandler, session))
        self.assertTrue(verifyObject(IMSRPSessionHandler, session))

    def test_kinds(self) -> None:
        """
        The initiator's sessions are L{OutgoingChat}s, the acceptor's
        L{IncomingChat}s: both L{ChatSession}s, each told its direction.
        """
        net = Network()
        d = net.start()
        outgoing = self.successResultOf(d)
        incoming = net.b.handler.session
        self.assertIsInstance(outgoing, OutgoingChat)
        self.assertIsInstance(incoming, IncomingChat)
        self.assertEqual((outgoing.incoming, incoming.incoming), (False, True))
        self.assertEqual(outgoing.callID, incoming.callID)


class SetupTests(SynchronousTestCase):
    """
    Offer/answer and who connects (RFC 4975 section 8, RFC 6135, R-153 to
    R-158, R-164, R-165).
    """

    def assertReady(self, net: Network, d: Deferred[ChatSession]) -> ChatSession:
        session = self.successResultOf(d)
        self.assertIs(session, net.a.handler.session)
        self.assertIs(session.state, ChatState.READY)
        self.assertIs(net.b.handler.session.state, ChatState.READY)
        self.assertIs(
            self.successResultOf(net.b.handler.session.whenReady()),
            net.b.handler.session,
        )
        return session

    def test_actpassAnsweredPassive(self) -> None:
        """
        R-165, R-153, R-154: the offer carries actpass, our path, port and
        c= host, accept-types and chatroom tokens; a reachable answerer
        answers passive with its own path and isfocus Contact, and the
        offerer connects to the answer's first path URI (R-155).
        """
        net = Network()
        net.b.offers.decide = lambda offer: AcceptChat(
            net.b.handler,
            acceptTypes=("message/cpim",),
            requiredTypes=("message/cpim",),
            chatroom=("nickname", "private-messages"),
            isfocus=True,
        )
        d = net.start(chatroom=("nickname", "private-messages"))
        session = self.assertReady(net, d)
        [invite] = net.requests("INVITE")
        offer = msrpMedia(invite)
        self.assertEqual(offer.setup, Setup.ACTPASS)
        self.assertEqual(offer.path, (str(session.msrp.localURI),))  # type: ignore[union-attr]
        self.assertEqual((offer.port, offer.connectionAddress), (2855, HOST_A))
        self.assertEqual(offer.acceptTypes, ("message/cpim", "text/plain"))
        self.assertEqual(offer.chatroom, ("nickname", "private-messages"))
        [ok] = [r for r in net.responses("INVITE") if r.status == 200]
        answer = msrpMedia(ok)
        self.assertEqual(answer.setup, Setup.PASSIVE)
        self.assertEqual(answer.acceptTypes, ("message/cpim",))
        self.assertEqual(answer.chatroom, ("nickname", "private-messages"))
        remote = net.b.handler.session.msrp
        assert remote is not None
        self.assertEqual(answer.path, (str(remote.localURI),))
        contact = ok.contact
        assert contact is not None
        self.assertTrue(contact.addresses[0].hasParameter("isfocus"))
        host, port = net.clock.tcpClients[0][:2]
        self.assertEqual((host, port), (HOST_B, 2855))
        self.assertTrue(session.active)
        self.assertFalse(net.b.handler.session.active)
        self.assertEqual(len(net.requests("ACK")), 1)
        self.assertEqual(net.b.offers.offers[0].media.setup, Setup.ACTPASS)

    def test_maxSizeAnnounced(self) -> None:
        """
        R-125, RFC 4975 section 8.6: offer and answer announce
        C{a=max-size}, each the largest message its MSRP session takes
        (past it the sender would get 413, R-126); each side learns the
        other's (R-159).
        """
        net = Network()
        d = net.start()
        session = self.assertReady(net, d)
        [invite] = net.requests("INVITE")
        [ok] = [r for r in net.responses("INVITE") if r.status == 200]
        local, remote = session.msrp, net.b.handler.session.msrp
        assert local is not None and remote is not None
        self.assertEqual(msrpMedia(invite).maxSize, local.maxMessageSize)
        self.assertEqual(msrpMedia(ok).maxSize, remote.maxMessageSize)
        self.assertIn(b"a=max-size:%d\r\n" % local.maxMessageSize, invite.body)
        self.assertEqual(remote.peerMaxSize, local.maxMessageSize)
        self.assertEqual(local.peerMaxSize, remote.maxMessageSize)

    def test_answeredActive(self) -> None:
        """
        R-165: an answerer that is not reachable answers actpass with
        active and connects to the offerer.
        """
        net = Network(settingsB=ChatSettings(reachable=False))
        d = net.start()
        self.assertReady(net, d)
        [ok] = [r for r in net.responses("INVITE") if r.status == 200]
        self.assertEqual(msrpMedia(ok).setup, Setup.ACTIVE)
        host, port = net.clock.tcpClients[0][:2]
        self.assertEqual((host, port), (HOST_A, 2855))
        self.assertFalse(net.a.handler.session.active)
        self.assertTrue(net.b.handler.session.active)

    def test_offerActive(self) -> None:
        """
        R-165: an unreachable offerer offers active (never passive); the
        answerer answers passive and waits.
        """
        net = Network(settingsA=ChatSettings(reachable=False))
        d = net.start()
        self.assertReady(net, d)
        [invite] = net.requests("INVITE")
        self.assertEqual(msrpMedia(invite).setup, Setup.ACTIVE)
        [ok] = [r for r in net.responses("INVITE") if r.status == 200]
        self.assertEqual(msrpMedia(ok).setup, Setup.PASSIVE)
        self.assertEqual(net.clock.tcpClients[0][:2], (HOST_B, 2855))
        self.assertRaises(
            ValueError,
            net.a.initiator.startChat,
            ROOM,
            JULIET,
            Recorder(),
            setup=Setup.PASSIVE,
        )

    def test_withoutSetup(self) -> None:
        """
        R-157: without RFC 6135 no a=setup is sent and the offerer
        connects.
        """
        settings = ChatSettings(useSetup=False)
        net = Network(settings, settings)
        d = net.start()
        self.assertReady(net, d)
        [invite] = net.requests("INVITE")
        [ok] = [r for r in net.responses("INVITE") if r.status == 200]
        self.assertIsNone(msrpMedia(invite).setup)
        self.assertIsNone(msrpMedia(ok).setup)
        self.assertEqual(net.clock.tcpClients[0][:2], (HOST_B, 2855))

    def test_readyNeedsBoth(self) -> None:
        """
        The session is ready only once the dialog is confirmed and the
        MSRP session bound.
        """
        net = Network()
        net.holdTCP = True
        d = net.start()
        self.assertNoResult(d)
        incoming = net.b.handler.session
        ready = incoming.whenReady()
        self.assertNoResult(ready)
        self.assertIs(incoming.state, ChatState.CONNECTING)
        self.assertIs(net.a.handler.session.state, ChatState.CONNECTING)
        net.holdTCP = False
        net.pump()
        self.assertIs(self.successResultOf(ready), incoming)
        self.assertReady(net, d)

    def test_deferredDecision(self) -> None:
        """
        The layer above may decide later.
        """
        net = Network()
        decision: Deferred[Any] = Deferred()
        net.b.offers.decide = lambda offer: decision
        d = net.start()
        self.assertNoResult(d)
        decision.callback(AcceptChat(net.b.handler))
        net.pump()
        self.assertReady(net, d)

    def test_answeredInviteReleased(self) -> None:
        """
        Once the INVITE is answered the session keeps nothing of it: the
        request and its server transaction go when the transaction ends,
        and the session stays up (memory per idle session, bench/README.md
        W7).
        """
        net = Network()
        self.assertReady(net, net.start())
        [offer] = net.b.offers.offers
        invite = weakref.ref(offer.invite)
        del offer
        net.b.offers.offers.clear()
        # Past the 64*T1 of the INVITE server transaction (RFC 3261 Timer
        # L, RFC 6026) and of the ACK wait: only the session holds on.
        net.clock.advance(33)
        net.pump()
        gc.collect()
        self.assertIsNone(invite())
        self.assertIs(net.b.handler.session.state, ChatState.READY)


class MessageTests(SynchronousTestCase):
    """
    Messages and nicknames both ways, through the chat sessions.
    """

    def test_chunkedBothWays(self) -> None:
        """
        Messages larger than a chunk arrive whole both ways; NICKNAME
        reaches the handler and its answer comes back (RFC 7701 7.1).
        """
        net = Network()
        a = self.successResultOf(net.start())
        b = net.b.handler.session
        body = b"O Romeo, Romeo, wherefore art thou Romeo?" * 3
        sent = a.sendMessage("text/plain", body)
        back = b.sendMessage("text/plain", body[::-1])
        net.pump()
        self.successResultOf(sent)
        self.successResultOf(back)
        [received] = net.b.handler.messages
        self.assertEqual((received.contentType, received.body), ("text/plain", body))
        [received] = net.a.handler.messages
        self.assertEqual(received.body, body[::-1])
        net.b.handler.nicknameResult = 425
        nick = a.sendNickname("JuliC")
        net.pump()
        self.assertEqual(net.b.handler.nicknames, ["JuliC"])
        self.assertEqual(self.failureResultOf(nick, MSRPSendError).value.code, 425)
        net.a.handler.nicknameResult = 200
        self.assertEqual(
            self.successResultOf(self.pumped(net, b.sendNickname("R"))), 200
        )

    def pumped(self, net: Network, d: Deferred[Any]) -> Deferred[Any]:
        net.pump()
        return d

    def test_peerTypes(self) -> None:
        """
        R-158: the answer's accept-types limit what we send.
        """
        net = Network()
        net.b.offers.decide = lambda offer: AcceptChat(
            net.b.handler, acceptTypes=("message/cpim",)
        )
        a = self.successResultOf(net.start())
        self.assertFalse(a.peerAccepts("text/plain"))
        failure = self.failureResultOf(a.sendMessage("text/plain", b"hi"))
        self.assertEqual(failure.value.code, 415)

    def test_sendBeforeSessionOrAfterEnd(self) -> None:
        """
        Sending on an ended session fails at once.
        """
        net = Network()
        a = self.successResultOf(net.start())
        a.end()
        self.failureResultOf(a.sendMessage("text/plain", b"x"), MSRPSendError)
        self.failureResultOf(a.sendNickname("x"), MSRPSendError)


class RejectTests(SynchronousTestCase):
    """
    Refused INVITEs and offers.
    """

    def test_rejected(self) -> None:
        """
        A rejection ends the outgoing session once with the SIP status.
        """
        net = Network()
        net.b.offers.decide = lambda offer: RejectChat(486)
        failure = self.failureResultOf(net.start(), ChatSessionError)
        self.assertEqual(failure.value.status, 486)
        self.assertEqual(
            [(e.cause, e.status) for e in net.a.handler.ended],
            [(EndCause.REJECTED, 486)],
        )
        self.assertEqual(net.a.handler.session.msrp.state, SessionState.CLOSED)  # type: ignore[union-attr]
        self.assertEqual(net.a.endpoint.sessions, {})
        self.assertEqual(net.b.handler.started, [])

    def test_requiredTypeMissing488(self) -> None:
        """
        R-158, RFC 7701 5.2: a focus requiring message/cpim answers 488 to
        an offer without it; both sides end once.
        """
        net = Network()
        net.b.offers.decide = lambda offer: AcceptChat(
            net.b.handler, requiredTypes=("message/cpim",)
        )
        failure = self.failureResultOf(
            net.start(acceptTypes=("text/plain",)), ChatSessionError
        )
        self.assertEqual(failure.value.status, 488)
        self.assertEqual(
            [(e.cause, e.status) for e in net.b.handler.ended],
            [(EndCause.NEGOTIATION, 488)],
        )
        self.assertEqual(net.b.endpoint.sessions, {})
        self.assertEqual(len(net.a.handler.ended), 1)

    def test_noMSRPStream488(self) -> None:
        """
        An INVITE without an MSRP stream gets 488 without asking the layer
        above.
        """
        net = Network()
        sdp = (
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\n"
            b"t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
        )
        d = net.a.ua.invite(ROOM, JULIET, sdp)
        net.pump()
        self.assertEqual(self.failureResultOf(d, SIPError).value.status, 488)
        self.assertEqual(net.b.offers.offers, [])

    def test_decisionFails500(self) -> None:
        """
        A failing offer handler means 500.
        """
        net = Network()

        def broken(offer: ChatOffer) -> Any:
            raise RuntimeError("bug")

        net.b.offers.decide = broken
        failure = self.failureResultOf(net.start(), ChatSessionError)
        self.assertEqual(failure.value.status, 500)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_unusableAnswer(self) -> None:
        """
        R-158: an answer without a common accept-type: BYE with Reason
        488, the offerer's session ends once.
        """
        net = Network()
        net.b.ua.removeHandler("INVITE", net.b.acceptor)
        answer = (
            b"v=0\r\no=- 1 1 IN IP4 192.0.2.2\r\ns=-\r\nc=IN IP4 192.0.2.2\r\n"
            b"t=0 0\r\nm=message 2855 TCP/MSRP *\r\n"
            b"a=accept-types:application/x-other\r\n"
            b"a=path:msrp://192.0.2.2:2855/abcd;tcp\r\n"
        )

        @implementer(IInviteHandler)
        class Answerer:
            def inviteReceived(self, invite: Any) -> None:
                invite.accept(answer)

        net.b.ua.addHandler("INVITE", Answerer())
        failure = self.failureResultOf(net.start(), ChatSessionError)
        self.assertEqual(
            (failure.value.end.cause, failure.value.status),
            (EndCause.NEGOTIATION, 488),
        )
        [bye] = net.requests("BYE", HOST_A)
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 488)
        self.assertEqual(len(net.a.handler.ended), 1)
        self.assertEqual(net.a.endpoint.sessions, {})


class EndingTests(SynchronousTestCase):
    """
    Every way a session ends, each exactly once.
    """

    def byeReason(self, net: Network, sender: str) -> tuple[int | None, str | None]:
        [bye] = net.requests("BYE", sender)
        value = bye.header("Reason")
        assert value is not None
        [reason] = parseReasons(value)
        return reason.cause, reason.text

    def test_localEnd(self) -> None:
        """
        end(): BYE, MSRP closed; the peer sees a remote BYE; both end once;
        a second end() does nothing.
        """
        net = Network()
        a = self.successResultOf(net.start())
        b = net.b.handler.session
        a.end()
        a.end()
        net.pump()
        self.assertEqual(len(net.requests("BYE")), 1)
        self.assertIsNone(net.requests("BYE")[0].header("Reason"))
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.LOCAL])
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.REMOTE_BYE])
        self.assertEqual(a.msrp.state, SessionState.CLOSED)  # type: ignore[union-attr]
        self.assertEqual(b.msrp.state, SessionState.CLOSED)  # type: ignore[union-attr]
        self.assertEqual(net.a.endpoint.sessions, {})
        self.assertEqual(net.b.endpoint.sessions, {})
        self.failureResultOf(b.whenReady(), ChatSessionError)

    def test_endByAcceptor(self) -> None:
        """
        The answering side may end too; the offerer sees the remote BYE.
        """
        net = Network()
        self.successResultOf(net.start())
        net.b.handler.session.end("Room destroyed")
        net.pump()
        self.assertEqual(self.byeReason(net, HOST_B), (None, "Room destroyed"))
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.REMOTE_BYE])
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.LOCAL])

    def test_endWithStatus(self) -> None:
        """
        end(text, status): the BYE's Reason carries the cause too (RFC 3326;
        R-219, a kicked SIP user).
        """
        net = Network()
        self.successResultOf(net.start())
        net.b.handler.session.end("Kicked", status=403)
        net.pump()
        self.assertEqual(self.byeReason(net, HOST_B), (403, "Kicked"))
        [end] = net.b.handler.ended
        self.assertEqual((end.cause, end.status), (EndCause.LOCAL, 403))

    def test_msrpTimeout(self) -> None:
        """
        No MSRP connection within the timeout: BYE with Reason 408; the
        offerer's start fails; each side ends once.
        """
        net = Network(settingsB=ChatSettings(connectTimeout=10))
        net.holdTCP = True
        d = net.start()
        with capturedLogs() as events:
            net.clock.advance(10)
        net.pump()
        self.assertEqual(self.byeReason(net, HOST_B), (408, "No MSRP connection"))
        self.assertEqual(
            [e.cause for e in net.b.handler.ended], [EndCause.MSRP_TIMEOUT]
        )
        self.assertEqual(
            self.failureResultOf(d, ChatSessionError).value.end.cause,
            EndCause.REMOTE_BYE,
        )
        self.assertEqual(len(net.a.handler.ended), 1)
        incoming = net.b.handler.session
        [event] = [
            e
            for e in events
            if e.get("msrpSessionID") == incoming.msrpSessionID
            and "ended" in e["log_format"]
        ]
        self.assertEqual(event["callID"], incoming.callID)
        self.assertEqual(event["error"], "no MSRP connection: No MSRP connection")

    def test_connectFailed(self) -> None:
        """
        The active side cannot connect: BYE with Reason 503, each side
        ends once.
        """
        net = Network()
        net.holdTCP = True
        d = net.start()
        net.refusePending()
        net.pump()
        failure = self.failureResultOf(d, ChatSessionError)
        self.assertEqual(failure.value.end.cause, EndCause.MSRP_FAILED)
        cause, _ = self.byeReason(net, HOST_A)
        self.assertEqual(cause, 503)
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.REMOTE_BYE])
        self.assertEqual(len(net.a.handler.ended), 1)

    def test_connectionLost(self) -> None:
        """
        Losing the MSRP connection ends both sessions once, each with a
        BYE carrying a Reason, after the grace period for a peer's BYE.
        """
        net = Network()
        self.successResultOf(net.start())
        net.links[0].close()
        net.pump()
        self.assertEqual((net.a.handler.ended, net.b.handler.ended), ([], []))
        net.clock.advance(ChatSettings().byeGrace)
        net.pump()
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.MSRP_FAILED])
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.MSRP_FAILED])
        self.assertEqual(self.byeReason(net, HOST_A)[0], 503)
        self.assertEqual(self.byeReason(net, HOST_B)[0], 503)

    def test_byeAfterConnectionLost(self) -> None:
        """
        A peer hanging up usually closes its MSRP connection before its BYE
        arrives: within the grace period the BYE wins, the session ends as
        a remote BYE, and no second BYE crosses the first.
        """
        net = Network()
        a = self.successResultOf(net.start())
        net.links[0].close()
        net.pump()
        a.end()
        net.pump()
        net.clock.advance(10)
        net.pump()
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.LOCAL])
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.REMOTE_BYE])
        self.assertEqual(len(net.requests("BYE")), 1)

    def test_noAck(self) -> None:
        """
        No ACK for our 200: the dialog ends itself (BYE) and the session
        ends once as a dialog failure.
        """
        net = Network(
            settingsB=ChatSettings(connectTimeout=120, establishTimeout=120)
        )
        net.drop = lambda m: isinstance(m, SIPRequest) and m.method == "ACK"
        net.start()
        self.assertIs(net.b.handler.session.state, ChatState.CONNECTING)
        for _ in range(70):
            net.clock.advance(1)
            net.pump()
        self.assertEqual(
            [e.cause for e in net.b.handler.ended], [EndCause.DIALOG_FAILED]
        )
        self.assertEqual(len(net.requests("BYE", HOST_B)), 1)
        self.assertEqual(len(net.a.handler.ended), 1)

    def test_byeWaitsForAck(self) -> None:
        """
        RFC 3261 section 15: ended before the ACK, the answerer sends its
        BYE once the ACK arrives.
        """
        net = Network()
        held: list[SIPMessage] = []

        def hold(message: SIPMessage) -> bool:
            if isinstance(message, SIPRequest) and message.method == "ACK":
                held.append(message)
                return True
            return False

        net.drop = hold
        net.holdTCP = True
        d = net.start()
        net.b.handler.session.end()
        net.pump()
        self.assertEqual(net.requests("BYE"), [])
        self.assertEqual([e.cause for e in net.b.handler.ended], [EndCause.LOCAL])
        net.drop = lambda message: False
        [ack] = held
        net.b.transport._udp.datagramReceived(ack.serialize(), (HOST_A, 5060))  # type: ignore[union-attr]
        net.pump()
        self.assertEqual(len(net.requests("BYE", HOST_B)), 1)
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.REMOTE_BYE])
        self.failureResultOf(d, ChatSessionError)

    def test_endWhileInviting(self) -> None:
        """
        Ending an outgoing session before the answer cancels the INVITE;
        a late decision is dropped.
        """
        net = Network()
        decision: Deferred[Any] = Deferred()
        net.b.offers.decide = lambda offer: decision
        d = net.start()
        net.clock.advance(1)
        net.pump()
        net.a.handler.session.end()
        net.pump()
        self.assertEqual(
            self.failureResultOf(d, ChatSessionError).value.end.cause, EndCause.LOCAL
        )
        self.assertEqual(len(net.requests("CANCEL")), 1)
        decision.callback(AcceptChat(net.b.handler))
        net.pump()
        self.assertEqual(net.b.handler.started, [])
        self.assertEqual(len(net.a.handler.ended), 1)
        self.assertEqual(net.a.endpoint.sessions, {})

    def test_cancelStart(self) -> None:
        """
        Cancelling the start ends the session.
        """
        net = Network()
        net.b.offers.decide = lambda offer: Deferred()
        d = net.start()
        d.cancel()
        net.pump()
        self.failureResultOf(d)
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.LOCAL])

    def test_reinviteRefused(self) -> None:
        """
        A re-INVITE whose offer is not SDP is refused with 488; the
        session stays.
        """
        net = Network()
        a = self.successResultOf(net.start())
        assert a.dialog is not None
        d = a.dialog.sendRequest(
            "INVITE", body=b"v=0\r\n", contentType="application/sdp"
        )
        net.pump()
        self.assertEqual(self.successResultOf(d).status, 488)
        self.assertIs(a.state, ChatState.READY)


class EstablishTimeoutTests(SynchronousTestCase):
    """
    RFC 7702 R-209 puts the SIP user in the room before the 200: an
    incoming session whose ACK or MSRP connection does not come within
    L{ChatSettings.establishTimeout} (10 s by default) ends then, not
    after the 32 s of the ACK timer or the 30 s of the MSRP one.
    """

    def test_noMSRPConnection(self) -> None:
        """
        ACK but no MSRP connection: ended after 10 s as an MSRP timeout
        (BYE with Reason 408).
        """
        net = Network()
        net.holdTCP = True
        d = net.start()
        incoming = net.b.handler.session
        net.clock.advance(9.9)
        self.assertIs(incoming.state, ChatState.CONNECTING)
        with capturedLogs():
            net.clock.advance(0.1)
        net.pump()
        self.assertEqual(
            [(e.cause, e.status) for e in net.b.handler.ended],
            [(EndCause.MSRP_TIMEOUT, 408)],
        )
        self.assertEqual(len(net.requests("BYE", HOST_B)), 1)
        self.failureResultOf(d, ChatSessionError)

    def test_noAck(self) -> None:
        """
        MSRP connection but no ACK: the layer above hears the end after
        10 s; the BYE still waits for the ACK or the ACK timer (RFC 3261
        section 15), which sends it at 32 s.
        """
        net = Network()
        net.drop = lambda m: isinstance(m, SIPRequest) and m.method == "ACK"
        net.start()
        incoming = net.b.handler.session
        self.assertTrue(incoming._bound)
        for _ in range(9):
            net.clock.advance(1)
            net.pump()
        self.assertEqual(net.b.handler.ended, [])
        with capturedLogs():
            net.clock.advance(1)
            net.pump()
        [end] = net.b.handler.ended
        self.assertEqual((end.cause, end.text), (EndCause.DIALOG_FAILED, "No ACK"))
        self.assertEqual(net.requests("BYE", HOST_B), [])

    def test_neither(self) -> None:
        """
        Neither ACK nor MSRP: ended after 10 s.
        """
        net = Network()
        net.holdTCP = True
        net.drop = lambda m: isinstance(m, SIPRequest) and m.method == "ACK"
        net.start()
        with capturedLogs():
            net.clock.advance(10)
        self.assertEqual(
            [e.cause for e in net.b.handler.ended], [EndCause.MSRP_TIMEOUT]
        )

    def test_configurable(self) -> None:
        """
        The bound is a L{ChatSettings} field; C{connectTimeout} still
        applies when smaller.
        """
        net = Network(settingsB=ChatSettings(establishTimeout=3))
        net.holdTCP = True
        net.start()
        with capturedLogs():
            net.clock.advance(3)
        self.assertEqual(len(net.b.handler.ended), 1)
        net = Network(settingsB=ChatSettings(establishTimeout=60, connectTimeout=5))
        net.holdTCP = True
        net.start()
        with capturedLogs():
            net.clock.advance(5)
        self.assertEqual(len(net.b.handler.ended), 1)


class KeepaliveTests(SynchronousTestCase):
    """
    Dead MSRP peers: a bodiless SEND (RFC 4975 section 7.1.1) after 30 s
    without anything received; no answer within 30 s ends the session.
    """

    def silence(self, net: Network) -> None:
        """
        B's MSRP stack stops reading (a stopped process: its kernel still
        takes the bytes).
        """
        protocol = net.links[0].ends[1][0]
        protocol.dataReceived = lambda data: None  # type: ignore[method-assign]

    def test_answeredProbe(self) -> None:
        """
        The probe is a SEND without a body, Byte-Range 1-0/0; answered,
        nothing ends and the next comes after another quiet 30 s.
        """
        net = Network()
        a = self.successResultOf(net.start())
        [(_, transport), _] = net.links[0].ends
        net.clock.advance(29)
        self.assertEqual(transport.value(), b"")
        net.clock.advance(1)
        probe = transport.value()
        self.assertTrue(probe.startswith(b"MSRP "), probe)
        self.assertIn(b" SEND\r\n", probe)
        self.assertIn(b"Byte-Range: 1-0/0\r\n", probe)
        self.assertNotIn(b"Content-Type", probe)
        net.pump()
        net.clock.advance(30)
        net.pump()
        self.assertIs(a.state, ChatState.READY)
        self.assertIs(net.b.handler.session.state, ChatState.READY)
        self.assertEqual((net.a.handler.ended, net.b.handler.ended), ([], []))

    def test_silentPeerEnds(self) -> None:
        """
        A peer that stops answering: 30 s of silence, a probe, 30 s
        without its answer: the session fails with a BYE (Reason 503) and
        the layer above hears it (its XMPP occupant would leave) within
        60 s.
        """
        net = Network()
        a = self.successResultOf(net.start())
        self.silence(net)
        net.clock.advance(30)
        net.pump()
        net.clock.advance(29.9)
        net.pump()
        self.assertIs(a.state, ChatState.READY)
        with capturedLogs() as events:
            net.clock.advance(0.1)
            net.pump()
        [end] = net.a.handler.ended
        self.assertEqual(end.cause, EndCause.MSRP_FAILED)
        self.assertIn("keepalive", end.text)
        [bye] = net.requests("BYE", HOST_A)
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)
        self.assertTrue(
            any(
                e.get("callID") == a.callID and "keepalive" in e["log_format"]
                for e in events
            )
        )

    def test_trafficPostponesProbe(self) -> None:
        """
        Anything received (a message) restarts the 30 s.
        """
        net = Network()
        a = self.successResultOf(net.start())
        b = net.b.handler.session
        [(_, transport), _] = net.links[0].ends
        net.clock.advance(20)
        b.sendMessage("text/plain", b"still here")
        net.pump()
        net.clock.advance(20)
        self.assertEqual(transport.value(), b"")
        net.clock.advance(10)
        self.assertIn(b"Byte-Range: 1-0/0", transport.value())
        self.assertIs(a.state, ChatState.READY)

    def test_off(self) -> None:
        """
        C{keepaliveInterval=0}: no probe.
        """
        settings = ChatSettings(keepaliveInterval=0)
        net = Network(settings, settings)
        self.successResultOf(net.start())
        [(_, transport), _] = net.links[0].ends
        net.clock.advance(600)
        self.assertEqual(transport.value(), b"")


class RefreshTests(SynchronousTestCase):
    """
    Session refreshes (RFC 4028 sections 7.4 and 9) reach the chat
    session as re-INVITEs or UPDATEs with the unchanged session.
    """

    def test_refreshReinviteAccepted(self) -> None:
        """
        A re-INVITE with the same SDP (same o= line) is answered 200 with
        the current SDP; the session stays.
        """
        net = Network()
        a = self.successResultOf(net.start())
        assert a.dialog is not None
        d = a.dialog.sendRequest(
            "INVITE", body=a.dialog.localBody, contentType="application/sdp"
        )
        net.pump()
        response = self.successResultOf(d)
        self.assertEqual(response.status, 200)
        b = net.b.handler.session
        assert b.dialog is not None
        self.assertEqual(response.body, b.dialog.localBody)
        self.assertEqual(len(net.requests("ACK", HOST_A)), 2)
        self.assertIs(a.state, ChatState.READY)
        self.assertIs(b.state, ChatState.READY)

    def test_offerlessReinvite(self) -> None:
        """
        A re-INVITE without an offer gets our current SDP as the offer.
        """
        net = Network()
        a = self.successResultOf(net.start())
        assert a.dialog is not None
        d = a.dialog.sendRequest("INVITE")
        net.pump()
        response = self.successResultOf(d)
        self.assertEqual(response.status, 200)
        assert a.remoteMedia is not None
        self.assertEqual(msrpMedia(response).path, a.remoteMedia.path)

    def test_changedOffer488(self) -> None:
        """
        An offer for another MSRP session is a change: 488, the session
        stays as it is.
        """
        net = Network()
        a = self.successResultOf(net.start())
        assert a.dialog is not None
        changed = a.dialog.localBody.replace(b"o=- ", b"o=other ").replace(
            b"a=path:msrp://", b"a=path:msrp://x"
        )
        d = a.dialog.sendRequest("INVITE", body=changed, contentType="application/sdp")
        net.pump()
        self.assertEqual(self.successResultOf(d).status, 488)
        self.assertIs(a.state, ChatState.READY)


class SessionTimerTests(SynchronousTestCase):
    """
    RFC 4028 end to end through two chat layers: a SIP user whose
    refreshes no longer arrive is ended with a BYE and the layer above
    hears C{SESSION_EXPIRED}.
    """

    def test_silentRefresher(self) -> None:
        """
        Both support timers (90 s), A refreshes: its UPDATE at 45 s
        refreshes; the next one (90 s) is lost, and B ends the session 60 s
        after the last refresh (RFC 4028 section 10: 90 - min(32, 90/3))
        with Reason 408, before A's own UPDATE would time out; A sees the
        remote BYE.
        """
        net = Network()
        timers = UserAgentSettings(sessionTimer=SessionTimerSettings(90, 90))
        net.a.ua.settings = net.b.ua.settings = timers
        a = self.successResultOf(net.start())
        b = net.b.handler.session
        assert b.dialog is not None and a.dialog is not None
        self.assertEqual(b.dialog.sessionTimer, SessionTimerTerms(90, False, 90))
        self.assertEqual(a.dialog.sessionTimer, SessionTimerTerms(90, True, 90))
        for _ in range(45):
            net.clock.advance(1)
            net.pump()
        [update] = net.requests("UPDATE", HOST_A)
        self.assertEqual(update.header("Session-Expires"), "90;refresher=uac")
        self.assertEqual(b.state, ChatState.READY)
        net.drop = lambda m: isinstance(m, SIPRequest) and m.method == "UPDATE"
        with capturedLogs():
            for _ in range(60):
                net.clock.advance(1)
                net.pump()
        [end] = net.b.handler.ended
        self.assertEqual(end.cause, EndCause.SESSION_EXPIRED)
        [bye] = net.requests("BYE", HOST_B)
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 408)
        self.assertEqual([e.cause for e in net.a.handler.ended], [EndCause.REMOTE_BYE])


def reoffer(body: bytes, *changes: tuple[bytes, bytes]) -> bytes:
    """
    A description sent again with C{changes} (old, new) made and its
    C{o=} version counted up (RFC 3264 section 8).
    """
    description = parseSDP(body)
    origin = description.origin
    for old, new in changes:
        assert old in body, old
        body = body.replace(old, new)
    line = f"o={origin.username} {origin.sessionID} {origin.sessionVersion} ".encode()
    bumped = f"o={origin.username} {origin.sessionID} {origin.sessionVersion + 1} ".encode()
    return body.replace(line, bumped)


class SessionUpdateTests(SynchronousTestCase):
    """
    The peer's re-offers (RFC 4975 section 8.4, R-156; RFC 7701 section 8,
    R-094): a change that keeps the MSRP connection is answered and taken,
    one that would need another connection gets 488 and the session stays
    as negotiated.
    """

    def established(self, timers: bool = False) -> tuple[Network, ChatSession, ChatSession]:
        """
        A session from A to B, both offering and answering C{a=chatroom};
        with C{timers}, both UAs support RFC 4028 (and so UPDATE).
        """
        net = Network()
        if timers:
            settings = UserAgentSettings(sessionTimer=SessionTimerSettings(1800, 90))
            net.a.ua.settings = net.b.ua.settings = settings
        net.b.offers.decide = lambda offer: AcceptChat(
            net.b.handler, chatroom=("nickname", "private-messages")
        )
        a = self.successResultOf(net.start(chatroom=("nickname", "private-messages")))
        b = net.b.handler.session
        self.assertIs(b.state, ChatState.READY)
        return net, a, b

    def send(
        self, net: Network, session: ChatSession, body: bytes, method: str = "INVITE"
    ) -> SIPResponse:
        assert session.dialog is not None
        d = session.dialog.sendRequest(method, body=body, contentType="application/sdp")
        net.pump()
        response = self.successResultOf(d)
        assert isinstance(response, SIPResponse)
        return response

    def test_offererChangesTypesAndChatroom(self) -> None:
        """
        The offerer sends new accept-types, max-size and no a=chatroom:
        the answerer answers 200 with its own path, terms and role again,
        its o= version counted up, and from then on sends only what the
        new offer accepts, with the new size limit; its handler hears of
        the change.
        """
        net, a, b = self.established()
        assert a.dialog is not None and b.dialog is not None and b.msrp is not None
        before = parseSDP(b.dialog.localBody)
        offer = reoffer(
            a.dialog.localBody,
            (b"a=accept-types:message/cpim text/plain", b"a=accept-types:text/plain"),
            (b"a=max-size:1048576", b"a=max-size:2000"),
            (b"a=chatroom:nickname private-messages\r\n", b""),
        )
        ok = self.send(net, a, offer)
        self.assertEqual(ok.status, 200)
        answer = msrpMedia(ok)
        self.assertEqual(answer.path, (str(b.msrp.localURI),))
        self.assertEqual(answer.acceptTypes, ("text/plain",))
        self.assertEqual(answer.setup, Setup.PASSIVE)
        self.assertEqual(answer.chatroom, ("nickname", "private-messages"))
        self.assertEqual(answer.maxSize, b.msrp.maxMessageSize)
        origin = parseSDP(ok.body).origin
        self.assertEqual(
            (origin.sessionID, origin.sessionVersion),
            (before.origin.sessionID, before.origin.sessionVersion + 1),
        )
        self.assertEqual(b.msrp.peerAcceptTypes, ("text/plain",))
        self.assertEqual(b.msrp.peerMaxSize, 2000)
        self.assertFalse(b.msrp.peerAccepts("message/cpim"))
        [(previous, now)] = net.b.handler.updates
        self.assertEqual(previous.chatroom, ("nickname", "private-messages"))
        assert now is not None
        self.assertIsNone(now.chatroom)
        self.assertIs(b.remoteMedia, now)
        self.assertEqual(b.dialog.localBody, ok.body)
        self.assertEqual(len(net.requests("ACK")), 2)
        self.assertIs(a.state, ChatState.READY)
        self.assertIs(b.state, ChatState.READY)

    def test_refreshAfterUpdate(self) -> None:
        """
        Once a re-offer is taken, the same description again (same o=) is
        a session refresh: answered with the new answer unchanged.
        """
        net, a, b = self.established()
        assert a.dialog is not None
        offer = reoffer(a.dialog.localBody, (b"a=max-size:1048576", b"a=max-size:2000"))
        first = self.send(net, a, offer)
        again = self.send(net, a, offer)
        self.assertEqual((first.status, again.status), (200, 200))
        self.assertEqual(again.body, first.body)
        self.assertEqual(len(net.b.handler.updates), 1)

    def test_maxSizeDropped(self) -> None:
        """
        A re-offer without C{a=max-size} leaves the peer without a limit
        (RFC 4975 section 8.6): the one of the first offer no longer holds.
        """
        net, a, b = self.established()
        assert a.dialog is not None and b.msrp is not None
        self.assertEqual(b.msrp.peerMaxSize, 1048576)
        offer = reoffer(a.dialog.localBody, (b"a=max-size:1048576\r\n", b""))
        self.assertEqual(self.send(net, a, offer).status, 200)
        self.assertIsNone(b.msrp.peerMaxSize)

    def test_answererChangesChatroom(self) -> None:
        """
        The first answerer may re-offer too (RFC 4975 section 8.4: the
        sender of the new offer is the offerer): the first offerer, the
        active side, answers active and takes the dropped a=chatroom.
        """
        net, a, b = self.established()
        assert b.dialog is not None and a.msrp is not None
        offer = reoffer(b.dialog.localBody, (b"a=chatroom:nickname private-messages\r\n", b""))
        ok = self.send(net, b, offer)
        self.assertEqual(ok.status, 200)
        answer = msrpMedia(ok)
        self.assertEqual(answer.setup, Setup.ACTIVE)
        self.assertEqual(answer.path, (str(a.msrp.localURI),))
        assert a.remoteMedia is not None
        self.assertIsNone(a.remoteMedia.chatroom)
        self.assertEqual(len(net.a.handler.updates), 1)

    def test_updateWithOffer(self) -> None:
        """
        An UPDATE with a changed offer (RFC 3311 section 5.2) is answered
        in its 200 the same way, and the dialog keeps both descriptions.
        """
        net, a, b = self.established(timers=True)
        assert a.dialog is not None and b.dialog is not None and b.msrp is not None
        offer = reoffer(
            a.dialog.localBody,
            (b"a=accept-types:message/cpim text/plain", b"a=accept-types:message/cpim"),
        )
        ok = self.send(net, a, offer, "UPDATE")
        self.assertEqual(ok.status, 200)
        self.assertEqual(msrpMedia(ok).acceptTypes, ("message/cpim",))
        self.assertEqual(b.msrp.peerAcceptTypes, ("message/cpim",))
        self.assertEqual(b.dialog.localBody, ok.body)
        self.assertEqual(b.dialog.remoteBody, offer)

    def assertRefused(self, net: Network, sender: ChatSession, offer: bytes, reason: str) -> None:
        receiver = net.b.handler.session if sender is net.a.handler.session else net.a.handler.session
        remote, local = receiver.remoteMedia, receiver.localMedia
        assert receiver.dialog is not None
        body = receiver.dialog.localBody
        refused = self.send(net, sender, offer)
        self.assertEqual((refused.status, refused.reason), (488, f"Not Acceptable Here ({reason})"))
        self.assertEqual((receiver.remoteMedia, receiver.localMedia), (remote, local))
        self.assertEqual(receiver.dialog.localBody, body)
        self.assertIs(receiver.state, ChatState.READY)
        self.assertEqual(net.b.handler.updates + net.a.handler.updates, [])

    def test_pathChangeRefused(self) -> None:
        """
        Another MSRP path would need another connection: 488, and the
        session stays as negotiated.
        """
        net, a, _ = self.established()
        assert a.dialog is not None and a.msrp is not None
        path = str(a.msrp.localURI).encode()
        offer = reoffer(a.dialog.localBody, (path, path.replace(b":2855/", b":2856/")))
        self.assertRefused(net, a, offer, "MSRP path changes not supported")

    def test_roleChangeRefused(self) -> None:
        """
        The active offerer now asking to be passive would turn the
        connection around: 488.
        """
        net, a, _ = self.established()
        assert a.dialog is not None
        offer = reoffer(a.dialog.localBody, (b"a=setup:actpass", b"a=setup:passive"))
        self.assertRefused(net, a, offer, "The offer changes who connects")

    def test_noCommonTypeRefused(self) -> None:
        """
        A re-offer with no type we take is refused like a first offer
        would be (R-158).
        """
        net, a, _ = self.established()
        assert a.dialog is not None
        offer = reoffer(
            a.dialog.localBody,
            (b"a=accept-types:message/cpim text/plain", b"a=accept-types:image/png"),
        )
        self.assertRefused(net, a, offer, "No acceptable accept-types")

