# -*- test-case-name: tests.interop.test_xmpptosip_prosody -*-
"""
Interop, RFC 7702 section 5 end to end: an XMPP user (slixmpp, on a real
Prosody) enters a SIP/MSRP chat room through L{XMPPToSIP}.

In one process on the real reactor: the gateway side (a L{ComponentLink}
for the room domain C{chat.sip.xmpp.test} carrying a L{MUCService} with
L{XMPPToSIP} as backend and its disco handlers; a L{SIPUserAgent} on
127.0.0.1 whose outbound proxy is the focus, an L{MSRPEndpoint} and a
L{ChatInitiator}), and the SIP focus (its own UA and MSRP endpoint with a
L{ChatAcceptor}: an echo room that takes every nickname and sends each
message back to the room from C{<sip:room@127.0.0.1;gr=echo>}).  slixmpp
runs in its own thread (see L{tests.interop.test_occupant_servers}).
Every wait is bounded; each test starts and stops its own Prosody.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase

from stoxgw.chat.session import ChatAcceptor, ChatInitiator, ChatSession, EndCause
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.xmpptosip import XMPPToSIP
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.disco import RoomDisco, discoHandlers
from tests.interop.msrpendpoints import startEndpoint
from tests.interop.peers import PeerUnavailable, Prosody
from tests.interop.test_chat_client import ECHO, EchoRoom
from tests.interop.test_occupant_servers import SlixmppUser, bounded, until

ROOM_DOMAIN = "chat.sip.xmpp.test"
ROOM = f"room@{ROOM_DOMAIN}"


class RoomEcho(EchoRoom):
    """
    The echo room of L{tests.interop.test_chat_client}, echoing to the
    room (CPIM To the room URI), as a switch distributes a message.
    """

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        cpim = CPIMMessage.parse(message.body)
        self.received.append(cpim)
        echo = CPIMMessage.build(
            contentType="text/plain; charset=utf-8",
            body=cpim.body,
            fromAddress=ECHO,
            toAddresses=[CPIMAddress("sip:room@127.0.0.1")],
            dateTime=datetime.now(timezone.utc),
        )
        # after the 200 (written when this returns), as a switch would
        reactor.callLater(  # type: ignore[attr-defined]
            0,
            lambda: session.sendMessage("message/cpim", echo.toBytes()).addErrback(
                lambda _: None
            ),
        )
        return 200


class XMPPToSIPProsodyTests(TestCase):
    """
    SPEC C.1.1, C.1.3, C.1.7 with Prosody routing the room domain.
    """

    timeout = 120

    def setUp(self) -> defer.Deferred[None]:
        try:
            self.server = Prosody(components=(ROOM_DOMAIN,))
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        self.server.start()
        self.addCleanup(self.server.stop)
        self.server.register("juliet", "julietpass")

        # The focus.
        focusTransport = SIPTransport(reactor, "127.0.0.1")
        focusTransport.listenTCP(0)
        self.addCleanup(focusTransport.stopListening)
        focusUA = SIPUserAgent(reactor, focusTransport, admission=SIPTrust.fromStrings(["127.0.0.1"]))  # type: ignore[arg-type]
        self.addCleanup(focusUA.close)
        self.focus = RoomEcho()
        ChatAcceptor(focusUA, startEndpoint(self, transactionTimeout=10), reactor, self.focus).register()  # type: ignore[arg-type]

        # The gateway: every SIP request goes to the focus.
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        proxy = SIPURI(
            "sip",
            "127.0.0.1",
            port=focusTransport.ports[TransportKind.TCP],
            parameters=(("transport", "tcp"), ("lr", None)),
        )
        ua = SIPUserAgent(
            reactor,  # type: ignore[arg-type]
            transport,
            settings=UserAgentSettings(outboundProxy=proxy),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.addCleanup(ua.close)
        initiator = ChatInitiator(ua, startEndpoint(self, transactionTimeout=10), reactor)  # type: ignore[arg-type]
        self.bridge = XMPPToSIP(reactor, initiator, ROOM_DOMAIN)  # type: ignore[arg-type]
        self.rooms = self.bridge.rooms
        self.link = ComponentLink(
            reactor,
            ROOM_DOMAIN,
            "127.0.0.1",
            self.server.componentPort,
            self.server.secret,
            maxDelay=2.0,
        )
        self.rooms.setHandlerParent(self.link.streamManager)
        for handler in discoHandlers(RoomDisco(self.rooms)):
            handler.setHandlerParent(self.link.streamManager)
        self.link.startService()
        self.addCleanup(self.link.stopService)
        return until(lambda: self.link.up, 15, "the component link").addCallback(
            lambda _: None
        )

    @defer.inlineCallbacks
    def test_enterTalkLeave(self) -> Generator[defer.Deferred[Any], Any, None]:
        """
        juliet (slixmpp) joins room@chat.sip.xmpp.test/juliet: the focus
        gets the INVITE and NICKNAME "juliet" before the join completes;
        her groupchat reaches the focus as CPIM From <sip:juliet@xmpp.test>
        To the room, she gets its reflection and then the echo from
        room@chat.sip.xmpp.test/echo; she leaves, the focus sees the BYE.
        """
        juliet = SlixmppUser(
            f"juliet@{self.server.domain}/balcony", "julietpass", self.server.c2sPort
        )
        self.addCleanup(juliet.stop)
        yield juliet.connect()
        yield juliet.join(ROOM, "juliet")
        self.assertEqual(self.focus.nicknames, ["juliet"])
        self.assertEqual(self.rooms.occupantNicks(ROOM), ("juliet",))

        yield juliet.send(ROOM, "Who knows where Romeo is?", "groupchat")
        reflection = ("groupchat", f"{ROOM}/juliet", "Who knows where Romeo is?")
        echo = ("groupchat", f"{ROOM}/echo", "Who knows where Romeo is?")
        yield until(lambda: echo in juliet.messages(), 15, "juliet to get the echo")
        # (slixmpp's two message events give each message twice: compare
        # first occurrences)
        messages = juliet.messages()
        self.assertLess(messages.index(reflection), messages.index(echo))
        [cpim] = self.focus.received
        self.assertEqual(
            cpim.fromAddress, CPIMAddress(f"sip:juliet@{self.server.domain}")
        )
        self.assertEqual(cpim.toAddresses, (CPIMAddress(f"sip:{ROOM}"),))

        yield juliet.run(self._leave(juliet))
        ended = yield bounded(self.focus.ended, 15)
        self.assertIs(ended.cause, EndCause.REMOTE_BYE)
        yield until(
            lambda: not self.bridge.participants, 10, "the gateway to forget juliet"
        )
        self.assertIsNone(self.rooms.getRoom(ROOM))

    @staticmethod
    async def _leave(user: SlixmppUser) -> None:
        user.client.plugin["xep_0045"].leave_muc(ROOM, "juliet")
