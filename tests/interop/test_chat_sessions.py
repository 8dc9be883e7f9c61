# -*- test-case-name: tests.interop.test_chat_sessions -*-
"""
Two gateways' chat layers in one process on the real reactor: each has a
L{SIPUserAgent} on 127.0.0.1 UDP and TCP ports and an L{MSRPEndpoint};
A starts a chat to B (RFC 7702 section 5.1), B's acceptor accepts as a
focus, chunked messages and NICKNAME go both ways, A ends it.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatAcceptor,
    ChatEnd,
    ChatInitiator,
    ChatOffer,
    ChatSession,
    EndCause,
    IChatOfferHandler,
    IChatSessionHandler,
)
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.kamailio_proxy import KamailioProxy
from tests.interop.msrpendpoints import startEndpoint


@implementer(IChatSessionHandler)
class WaitingChatHandler:
    """
    Turns chat events into Deferreds.
    """

    def __init__(self) -> None:
        self.message: Deferred[IncomingMessage] = Deferred()
        self.nickname: Deferred[str] = Deferred()
        self.ended: Deferred[ChatEnd] = Deferred()
        self.endings: list[ChatEnd] = []

    def chatStarted(self, session: ChatSession) -> None:
        pass

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        self.message.callback(message)
        return None

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        self.nickname.callback(nickname)
        return 200

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        self.endings.append(reason)
        self.ended.callback(reason)


@implementer(IChatOfferHandler)
class Focus:
    """
    Accepts every chat as a focus requiring CPIM.
    """

    def __init__(self) -> None:
        self.handler = WaitingChatHandler()
        self.sessions: list[ChatSession] = []

    def chatOffered(self, offer: ChatOffer) -> AcceptChat:
        return AcceptChat(
            self.handler,
            acceptTypes=("message/cpim", "text/plain"),
            requiredTypes=("message/cpim",),
            chatroom=("nickname",),
            isfocus=True,
        )


class ChatSessionsTests(TestCase):
    """
    Real sockets, real reactor, bounded wait.
    """

    timeout = 30

    def gateway(
        self, outboundProxy: SIPURI | None = None
    ) -> tuple[SIPUserAgent, SIPTransport, Any]:
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(outboundProxy=outboundProxy),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.addCleanup(ua.close)
        endpoint = startEndpoint(self, transactionTimeout=10, chunkSize=1024)
        return ua, transport, endpoint

    @inlineCallbacks
    def _chat(self, kind: TransportKind, outboundProxy: SIPURI | None = None) -> Any:
        uaA, _, endpointA = self.gateway(outboundProxy)
        uaB, transportB, endpointB = self.gateway()
        focus = Focus()
        ChatAcceptor(uaB, endpointB, reactor, focus).register()  # type: ignore[arg-type]
        initiator = ChatInitiator(uaA, endpointA, reactor)  # type: ignore[arg-type]
        handlerA = WaitingChatHandler()
        target = SIPURI(
            "sip",
            "127.0.0.1",
            user="room",
            port=transportB.ports[kind],
            parameters=(("transport", kind.uriParameter),),
        )
        session: ChatSession = yield initiator.startChat(
            target,
            parseNameAddr("<sip:juliet@example.com>;tag=j1"),
            handlerA,
            acceptTypes=("message/cpim",),
            chatroom=("nickname",),
        )
        self.assertTrue(session.active)
        payload = b"Wherefore art thou Romeo? " * 400
        cpim = b"Content-Type: text/plain\r\n\r\n" + payload
        yield session.sendMessage("message/cpim", cpim)
        received: IncomingMessage = yield focus.handler.message
        self.assertEqual(received.body, cpim)
        [remote] = [s for s in endpointB.sessions.values() if s.remotePath]
        back = cpim[::-1]
        yield remote.sendMessage("message/cpim", back)
        receivedBack: IncomingMessage = yield handlerA.message
        self.assertEqual(receivedBack.body, back)
        code = yield session.sendNickname("JuliC")
        self.assertEqual(code, 200)
        self.assertEqual((yield focus.handler.nickname), "JuliC")
        session.end()
        ended: ChatEnd = yield focus.handler.ended
        # The close of the MSRP connection may arrive before the BYE
        # (separate sockets); B waits for the BYE (ChatSettings.byeGrace).
        self.assertEqual(ended.cause, EndCause.REMOTE_BYE)
        self.assertEqual([e.cause for e in handlerA.endings], [EndCause.LOCAL])
        self.assertEqual(len(focus.handler.endings), 1)

    def test_udp(self) -> None:
        """
        RFC 7702 5.1 and 6.1 over SIP/UDP and MSRP/TCP.
        """
        return self._chat(TransportKind.UDP)  # type: ignore[no-any-return]

    def test_tcp(self) -> None:
        """
        The same over SIP/TCP.
        """
        return self._chat(TransportKind.TCP)  # type: ignore[no-any-return]

    def test_throughKamailio(self) -> None:
        """
        RFC 3261 16.12, 12.2.1.1: the chat set up through Kamailio as a
        record-routing proxy; the BYE that ends it follows the route set.
        """
        proxy = KamailioProxy(directory=self.mktemp())
        proxy.start()
        self.addCleanup(proxy.stop)
        d = self._chat(
            TransportKind.UDP,
            SIPURI("sip", "127.0.0.1", port=proxy.port, parameters=(("lr", None),)),
        )

        def checkProxy(result: object) -> object:
            log = proxy.log()
            self.assertIn("RELAY INVITE initial", log)
            # One BYE: the answering side waited for it instead of
            # sending its own when the MSRP connection closed.
            self.assertEqual(log.count("RELAY BYE in-dialog"), 1)
            self.assertNotIn("NOROUTE", log)
            return result

        return d.addCallback(checkProxy)  # type: ignore[no-any-return]
