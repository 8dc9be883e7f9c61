# -*- test-case-name: tests.interop.test_siptoxmpp_prosody -*-
"""
Interop, RFC 7702 section 6 end to end: a SIP/MSRP user enters a room of a
real Prosody MUC through L{SIPToXMPP}, with a slixmpp client in the room.

In one process on the real reactor: the gateway side (a L{ComponentLink}
for C{sip.xmpp.test}, an L{OccupantService}, a L{SIPUserAgent} and
L{MSRPEndpoint} on 127.0.0.1 with a L{ChatAcceptor} asking L{SIPToXMPP}),
and the SIP user (its own UA and MSRP endpoint, a L{ChatInitiator}, routing
every request to the gateway as its outbound proxy).  slixmpp runs in its
own thread (see L{tests.interop.test_occupant_servers}).  Every wait is
bounded; each test starts and stops its own Prosody.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatAcceptor,
    ChatEnd,
    ChatInitiator,
    ChatSession,
    IChatSessionHandler,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.siptoxmpp import SIPToXMPP
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import OccupantService
from tests.interop.msrpendpoints import startEndpoint
from tests.interop.peers import PeerUnavailable, Prosody
from tests.interop.test_occupant_servers import SlixmppUser, bounded, until

USER_DOMAIN = "sip.xmpp.test"


class WatchingUser(SlixmppUser):
    """
    A slixmpp user that also keeps (type, from) of every presence.
    """

    def __init__(self, jid: str, password: str, port: int) -> None:
        super().__init__(jid, password, port)
        self.presences: list[tuple[str, str]] = []
        self._presenceLock = threading.Lock()

    def _onPresence(self, presence: Any) -> None:
        with self._presenceLock:
            self.presences.append((presence["type"], str(presence["from"])))

    def seen(self) -> list[tuple[str, str]]:
        with self._presenceLock:
            return list(self.presences)

    async def _connect(self) -> None:
        await super()._connect()
        self.client.add_event_handler("presence", self._onPresence)
        # slixmpp does not always raise the generic event for MUC presence.
        self.client.add_event_handler("groupchat_presence", self._onPresence)


@implementer(IChatSessionHandler)
class SIPUser:
    """
    The SIP user's chat handler: keeps messages and endings.
    """

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.endings: list[ChatEnd] = []

    def chatStarted(self, session: ChatSession) -> None:
        pass

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        self.messages.append(message)
        return None

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        return 403

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        self.endings.append(reason)


class SIPToXMPPProsodyTests(TestCase):
    """
    SPEC C.2.1, C.2.2, C.2.6 against Prosody's MUC.
    """

    timeout = 120

    def setUp(self) -> defer.Deferred[None]:
        try:
            self.server = Prosody(roomLocking=False)
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)
        self.server.register("carol", "carolpass")
        self.room = f"room@{self.server.mucDomain}"

        # The gateway.
        self.bridge = SIPToXMPP(
            reactor,  # type: ignore[arg-type]
            USER_DOMAIN,
            (self.server.mucDomain,),
            occupants=lambda handler: OccupantService(
                handler, reactor, USER_DOMAIN, timeout=15.0, reflectionTimeout=10.0  # type: ignore[arg-type]
            ),
        )
        self.link = ComponentLink(
            reactor,
            USER_DOMAIN,
            "127.0.0.1",
            self.server.componentPort,
            self.server.secret,
            maxDelay=2.0,
        )
        self.service = self.bridge.occupants
        self.service.attach(self.link)
        self.link.startService()
        self.addCleanup(self.link.stopService)
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(reactor, transport, admission=SIPTrust.fromStrings(["127.0.0.1"]))  # type: ignore[arg-type]
        self.addCleanup(ua.close)
        endpoint = startEndpoint(self, transactionTimeout=10)
        ChatAcceptor(ua, endpoint, reactor, self.bridge).register()  # type: ignore[arg-type]

        # The SIP user, with the gateway as outbound proxy.
        userTransport = SIPTransport(reactor, "127.0.0.1")
        userTransport.listenTCP(0)
        self.addCleanup(userTransport.stopListening)
        proxy = SIPURI(
            "sip",
            "127.0.0.1",
            port=transport.ports[TransportKind.TCP],
            parameters=(("transport", "tcp"), ("lr", None)),
        )
        userUA = SIPUserAgent(
            reactor,
            userTransport,  # type: ignore[arg-type]
            settings=UserAgentSettings(outboundProxy=proxy),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.addCleanup(userUA.close)
        self.initiator = ChatInitiator(userUA, startEndpoint(self, transactionTimeout=10), reactor)  # type: ignore[arg-type]
        return until(lambda: self.link.up, 15, "the component link").addCallback(
            lambda _: None
        )

    @defer.inlineCallbacks
    def test_enterTalkLeave(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        carol (slixmpp) is in room@muc.xmpp.test; the SIP user INVITEs
        sip:room@muc.xmpp.test as "Romeo": the gateway joins before
        answering, carol sees Romeo's presence; Romeo's CPIM SEND is 200'd
        after the reflection and carol gets it as groupchat from
        room@muc.xmpp.test/Romeo; carol's groupchat reaches Romeo as CPIM
        from <sip:room@muc.xmpp.test;gr=carol>, without an echo of his own;
        Romeo hangs up, carol sees Romeo unavailable.
        """
        carol = WatchingUser(
            f"carol@{self.server.domain}/slix", "carolpass", self.server.c2sPort
        )
        self.addCleanup(carol.stop)
        yield carol.connect()
        yield carol.join(self.room, "carol")

        romeo = SIPUser()
        session: ChatSession = yield bounded(
            self.initiator.startChat(
                SIPURI.fromString(f"sip:{self.room}"),
                parseNameAddr('"Romeo" <sip:romeo@example.org>;tag=r1'),
                romeo,
                acceptTypes=("message/cpim",),
                acceptWrappedTypes=("text/plain",),
                chatroom=("nickname", "private-messages"),
            ),
            20,
        )
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(),
            10,
            "carol to see Romeo enter",
        )

        cpim = CPIMMessage.build(
            contentType="text/plain;charset=UTF-8",
            body="Romeo is here!".encode(),
            fromAddress=CPIMAddress("sip:romeo@example.org", "Romeo"),
            toAddresses=(CPIMAddress(f"sip:{self.room}"),),
        )
        yield bounded(session.sendMessage("message/cpim", cpim.toBytes()))
        yield until(
            lambda: ("groupchat", occupant, "Romeo is here!") in carol.messages(),
            10,
            "carol to get Romeo's message",
        )

        yield carol.send(self.room, "Hello, Romeo", "groupchat")
        yield until(lambda: romeo.messages, 10, "Romeo to get carol's message")
        [message] = romeo.messages
        self.assertEqual(message.contentType, "message/cpim")
        received = CPIMMessage.parse(message.body)
        self.assertEqual(
            received.fromAddress, CPIMAddress(f"sip:{self.room};gr=carol", "carol")
        )
        # RFC 7701 section 6.1: a room message is CPIM To the room.
        self.assertEqual(received.toAddresses, (CPIMAddress(f"sip:{self.room}"),))
        self.assertEqual(received.body, b"Hello, Romeo")

        session.end()
        yield until(
            lambda: ("unavailable", occupant) in carol.seen(),
            10,
            "carol to see Romeo leave",
        )
        yield until(
            lambda: not self.service.occupants(), 10, "the gateway to forget Romeo"
        )
        self.assertEqual(self.bridge.participants, {})
