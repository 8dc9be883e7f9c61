# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
Tests for L{stoxgw.interworking.siptoxmpp}: RFC 7702 section 6 (Direction
B), as transcripts "SIP sends X, XMPP gets Y" and back.

The SIP side is the real chat layer of L{tests.chat.test_session}'s
L{Network}: gateway A (192.0.2.1) plays the SIP user agent, gateway B
(192.0.2.2) is the stoxgw under test, its L{ChatAcceptor} asking
L{SIPToXMPP}.  The XMPP side is the real L{OccupantService} on a
L{ComponentLink} whose stream is a L{StringTransport} (as in
L{tests.xmpp.test_occupant}), on a clock of its own; the MUC's stanzas are
XEP-0045's shapes, addressed as SPEC C.2 addresses them (C{capulet@
rooms.example}, the user C{romeo@example.org}).
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet.defer import Deferred, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import generic
from zope.interface.verify import verifyObject

from stoxgw.chat.session import ChatSession, EndCause, IChatSessionHandler
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking import sipuser
from stoxgw.interworking.addressing import (
    parseSIPIdentity,
    realJIDForSIPUser,
    requestURIFromRoomJID,
)
from stoxgw.interworking.siptoxmpp import ISIPToXMPP, SIPParticipant, SIPToXMPP
from stoxgw.interworking.sipuser import occupantKey
from stoxgw.msrp.message import FailureReport
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import (
    GroupchatMessage,
    OccupantService,
    OccupantState,
    PrivateMessage,
)
from stoxgw.xmpp.stanzas import NS_MUC
from tests.chat.test_session import HOST_B, Network, msrpMedia, reoffer
from tests.xmpp.test_occupant import MUC_USER, SERVER_HEADER, errorPresence, presence

USER_DOMAIN = "sip.example"
ROOM = JID("capulet@rooms.example")
ROOM_URI = "sip:capulet@rooms.example"
ROMEO_URI = "sip:romeo@example.org"
#: realJIDForSIPUser(sip:romeo@example.org, sip.example, "r1").
REAL = JID("romeo\\40example.org@sip.example/r1")
UTC = datetime.timezone.utc
STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


class Bridge:
    """
    The SIP user (gateway A of L{Network}) and stoxgw (gateway B with
    L{SIPToXMPP} and an L{OccupantService} on a fake component stream).
    """

    def __init__(self, test: SynchronousTestCase, **options: Any) -> None:
        self.test = test
        self.net = Network()
        self.xmppClock = MemoryReactorClock()
        self.link = ComponentLink(
            self.xmppClock,
            USER_DOMAIN,
            "127.0.0.1",
            5347,
            "secret",
            queueSize=10,
            maxDelay=60.0,
            jitter=lambda: 0.0,
        )
        ids = iter(f"m{n}" for n in range(1, 1000))
        self.bridge = SIPToXMPP(
            self.xmppClock,
            USER_DOMAIN,
            ("rooms.example",),
            resourceFactory=lambda: "r1",
            occupants=lambda handler: OccupantService(
                handler,
                self.xmppClock,
                USER_DOMAIN,
                timeout=30.0,
                reflectionTimeout=10.0,
                idFactory=lambda: next(ids),
            ),
            **options,
        )
        self.service = self.bridge.occupants
        self.service.attach(self.link)
        self.link.startService()
        _, _, factory, *_ = self.xmppClock.tcpClients[-1]
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(
            SERVER_HEADER.replace(b"shakespeare.lit", b"sip.example")
        )
        self.protocol.dataReceived(b"<handshake/>")
        test.assertTrue(self.link.up)
        self.transport.clear()
        self.net.b.acceptor.offers = self.bridge
        # The SIP user reaches the gateway (192.0.2.2) through it as proxy.
        ua = self.net.a.ua
        ua.settings = dataclasses.replace(
            ua.settings,
            outboundProxy=SIPURI("sip", HOST_B, port=5060, parameters=(("lr", None),)),
        )

    # -- XMPP ---------------------------------------------------------------

    def reconnect(self) -> None:
        """
        The component link connects again (its backoff on the XMPP clock)
        and completes its handshake on a new stream.
        """
        before = len(self.xmppClock.tcpClients)
        for _ in range(120):
            self.xmppClock.advance(0.5)
            if len(self.xmppClock.tcpClients) > before:
                break
        _, _, factory, *_ = self.xmppClock.tcpClients[-1]
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(
            SERVER_HEADER.replace(b"shakespeare.lit", b"sip.example")
        )
        self.protocol.dataReceived(b"<handshake/>")
        self.test.assertTrue(self.link.up)
        # Keep only the stanzas after the stream header and handshake.
        data = self.transport.value()
        self.transport.clear()
        self.transport.write(data[data.index(b"</handshake>") + len(b"</handshake>") :])
        self.net.pump()

    def receive(self, xml: str) -> None:
        """
        The MUC sends C{xml}; the SIP side then settles.
        """
        self.protocol.dataReceived(xml.encode("utf-8"))
        self.net.pump()

    def sent(self) -> list[domish.Element]:
        """
        The stanzas the gateway sent since the last call.
        """
        data = self.transport.value()
        self.transport.clear()
        root = generic.parseXml(b"<r xmlns='jabber:component:accept'>" + data + b"</r>")
        return list(root.elements())

    # -- SIP ------------------------------------------------------------------

    def invite(
        self,
        target: str = ROOM_URI,
        sender: str = f'"Romeo" <{ROMEO_URI}>;tag=r1',
        chatroom: tuple[str, ...] = ("nickname", "private-messages"),
        wrapped: tuple[str, ...] = ("text/plain",),
    ) -> Deferred[ChatSession]:
        """
        The SIP user INVITEs C{target} (RFC 7702 section 6.1, F35).
        """
        d = self.net.a.initiator.startChat(
            SIPURI.fromString(target),
            parseNameAddr(sender),
            self.net.a.handler,
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=wrapped,
            chatroom=chatroom,
        )
        self.net.pump()
        return d

    def enter(
        self,
        nick: str = "Romeo",
        roster: tuple[str, ...] = ("JuliC",),
        wrapped: tuple[str, ...] = ("text/plain",),
    ) -> ChatSession:
        """
        INVITE, the MUC join (others' presence, then the 110 self-presence),
        the 200, a ready chat.
        """
        d = self.invite(wrapped=wrapped)
        [join] = self.sent()
        self.test.assertEqual(
            (join["to"], join["from"]), (f"{ROOM.full()}/{nick}", REAL.full())
        )
        for other in roster:
            self.receive(
                presence(
                    f"{ROOM.full()}/{other}",
                    REAL.full(),
                    "<item affiliation='member' role='participant'/>",
                )
            )
        self.receive(
            presence(
                f"{ROOM.full()}/{nick}",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        session: ChatSession = self.test.successResultOf(d)
        return session

    def send(
        self,
        session: ChatSession,
        body: str,
        to: str = ROOM_URI,
        sender: str | None = ROMEO_URI,
        contentType: str = "text/plain",
        extraTo: tuple[str, ...] = (),
    ) -> Deferred[Any]:
        """
        The SIP user SENDs a CPIM message (RFC 7702 section 6.3).
        """
        cpim = CPIMMessage.build(
            contentType=contentType,
            body=body.encode("utf-8"),
            fromAddress=None if sender is None else CPIMAddress(sender, "Romeo"),
            toAddresses=[CPIMAddress(to)] + [CPIMAddress(t) for t in extraTo],
        )
        d = session.sendMessage("message/cpim", cpim.toBytes())
        self.net.pump()
        return d

    def received(self) -> list[CPIMMessage]:
        """
        The CPIM messages the SIP user received.
        """
        return [CPIMMessage.parse(m.body) for m in self.net.a.handler.messages]


def element(stanza: domish.Element, name: str) -> domish.Element:
    for child in stanza.elements():
        if child.name == name:
            return child
    raise AssertionError(f"no <{name}/> in {stanza.toXml()}")


class InterfaceTests(SynchronousTestCase):
    """
    The providers verify.
    """

    def test_verify(self) -> None:
        """
        L{SIPToXMPP} provides L{ISIPToXMPP} (an offer handler and an
        occupant handler); L{SIPParticipant} is a chat session handler.
        """
        bridge = SIPToXMPP(MemoryReactorClock(), USER_DOMAIN)
        verifyObject(ISIPToXMPP, bridge)
        participant = SIPParticipant(
            bridge, ROOM, REAL, None, None, "Romeo", True  # type: ignore[arg-type]
        )
        verifyObject(IChatSessionHandler, participant)


class EnterTests(SynchronousTestCase):
    """
    C.2.1: INVITE -> MUC join -> answer (R-209).
    """

    def test_joinBeforeAnswer(self) -> None:
        """
        SIP sends INVITE sip:capulet@rooms.example from "Romeo"; XMPP gets
        a MUC join to capulet@rooms.example/Romeo from the SIP user's real
        JID; no final response until the 110 self-presence; then 200 with
        an C{isfocus} Contact and the focus answer of RFC 7701 5.2.
        """
        b = Bridge(self)
        d = b.invite()
        [join] = b.sent()
        self.assertEqual(join.name, "presence")
        self.assertEqual(
            (join["to"], join["from"]), ("capulet@rooms.example/Romeo", REAL.full())
        )
        self.assertEqual(len(list(join.elements(NS_MUC, "x"))), 1)
        self.assertEqual(
            [r.status for r in b.net.responses("INVITE") if r.status >= 200], []
        )
        self.assertNoResult(d)
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.successResultOf(d)
        [ok] = [r for r in b.net.responses("INVITE") if r.status >= 200]
        self.assertEqual(ok.status, 200)
        contact = ok.header("Contact") or ""
        self.assertIn("isfocus", contact)
        self.assertIn("capulet@", contact)
        media = msrpMedia(ok)
        self.assertEqual(media.acceptTypes, ("message/cpim",))
        self.assertEqual(
            media.acceptWrappedTypes, ("text/plain", "application/im-iscomposing+xml")
        )
        self.assertEqual(media.chatroom, ("nickname", "private-messages"))
        self.assertEqual(b.service.stateOf(ROOM, REAL), OccupantState.JOINED)

    def test_nickFromUserPart(self) -> None:
        """
        Without a display name the temporary nick is the From user part.
        """
        b = Bridge(self)
        b.invite(sender=f"<{ROMEO_URI}>;tag=r1")
        [join] = b.sent()
        self.assertEqual(join["to"], "capulet@rooms.example/romeo")

    def test_contactGRUUIsResource(self) -> None:
        """
        SPEC C.2.1: the Contact's C{gr} becomes the real JID's resource.
        """
        b = Bridge(self)
        b.net.a.initiator.startChat(
            SIPURI.fromString(ROOM_URI),
            parseNameAddr(f'"Romeo" <{ROMEO_URI}>;tag=r1'),
            b.net.a.handler,
            acceptTypes=("message/cpim",),
            contact=parseNameAddr("<sip:romeo@192.0.2.1;gr=dr4hcr0st3lup4c>"),
        )
        b.net.pump()
        [join] = b.sent()
        self.assertEqual(
            join["from"], "romeo\\40example.org@sip.example/dr4hcr0st3lup4c"
        )

    def entryError(self, condition: str, code: str, errorType: str) -> int:
        b = Bridge(self)
        d = b.invite()
        b.sent()
        b.receive(
            errorPresence(
                REAL.full(), code, errorType, condition, sender=f"{ROOM.full()}/Romeo"
            )
        )
        failure = self.failureResultOf(d)
        self.assertEqual(b.bridge.participants, {})
        self.assertEqual(b.net.b.endpoint.sessions, {})
        [final] = [r for r in b.net.responses("INVITE") if r.status >= 200]
        status: int = final.status
        self.assertEqual(failure.value.status, status)  # type: ignore[union-attr]
        return status

    def test_entryErrors(self) -> None:
        """
        SPEC E.5: MUC says registration-required -> SIP 403; forbidden
        (banned) -> 403; item-not-found -> 404.
        """
        self.assertEqual(self.entryError("registration-required", "407", "auth"), 403)
        self.assertEqual(self.entryError("forbidden", "403", "auth"), 403)
        self.assertEqual(self.entryError("item-not-found", "404", "cancel"), 404)

    def test_joinTimeout(self) -> None:
        """
        No answer from the MUC within the occupant timeout: SIP gets the
        E.1 status for remote-server-timeout, not silence.
        """
        b = Bridge(self)
        d = b.invite()
        b.sent()
        b.xmppClock.advance(30)
        b.net.pump()
        failure = self.failureResultOf(d)
        self.assertGreaterEqual(failure.value.status, 400)  # type: ignore[union-attr]

    def test_cancelWhileJoining(self) -> None:
        """
        The SIP user CANCELs while the join is under way: once the join
        completes the gateway leaves the room again; no chat exists.
        """
        b = Bridge(self)
        d = b.invite()
        b.sent()
        d.cancel()
        b.net.pump()
        self.failureResultOf(d)
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        [leave] = b.sent()
        self.assertEqual(
            (leave["type"], leave["to"]), ("unavailable", f"{ROOM.full()}/Romeo")
        )
        self.assertEqual(b.bridge.participants, {})
        self.assertEqual(b.net.b.endpoint.sessions, {})

    def test_notAMUCDomain(self) -> None:
        """
        A Request-URI outside C{muc_domains}: 403, XMPP gets nothing.
        """
        b = Bridge(self)
        d = b.invite(target="sip:capulet@elsewhere.example")
        failure = self.failureResultOf(d)
        self.assertEqual(failure.value.status, 403)  # type: ignore[union-attr]
        self.assertEqual(b.sent(), [])

    def test_noRoomName(self) -> None:
        """
        A Request-URI without user part: 484 (AddressError's status).
        """
        b = Bridge(self)
        d = b.invite(target="sip:rooms.example")
        failure = self.failureResultOf(d)
        self.assertEqual(failure.value.status, 484)  # type: ignore[union-attr]
        self.assertEqual(b.sent(), [])

    def test_roomNameNoJID(self) -> None:
        """
        A room name that decodes to no JID localpart (Nodeprep prohibits a
        non-ASCII space): 400 from the address mapping, the same check the
        XMPP layer's JID makes; XMPP gets nothing.
        """
        b = Bridge(self)
        d = b.invite(target="sip:cap%C2%A0ulet@rooms.example")
        failure = self.failureResultOf(d)
        self.assertEqual(failure.value.status, 400)  # type: ignore[union-attr]
        self.assertEqual(b.sent(), [])


class PublicMessageTests(SynchronousTestCase):
    """
    C.2.2: SEND -> groupchat; 200 after the reflection (R-211).
    """

    def test_sendReflected(self) -> None:
        """
        SIP sends SEND (CPIM To the room, "Romeo is here!"); XMPP gets a
        groupchat message from the real JID to the room; the MSRP 200
        waits for the reflection, which is not echoed back to SIP.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "Romeo is here!")
        [message] = b.sent()
        self.assertEqual(
            (message.name, message["type"], message["to"], message["from"]),
            ("message", "groupchat", ROOM.full(), REAL.full()),
        )
        self.assertEqual(str(element(message, "body")), "Romeo is here!")
        self.assertNoResult(d)
        b.receive(
            f"<message from='{ROOM.full()}/Romeo' to='{REAL.full()}' type='groupchat' "
            f"id='{message['id']}'><body>Romeo is here!</body></message>"
        )
        self.successResultOf(d)
        self.assertEqual(b.net.a.handler.messages, [])

    def test_reflectionTimeout(self) -> None:
        """
        R-211: no reflection within the bounded wait: 200 anyway.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "anyone?")
        b.sent()
        self.assertNoResult(d)
        b.xmppClock.advance(10)
        b.net.pump()
        self.successResultOf(d)

    def test_mucRefuses(self) -> None:
        """
        E.4: the MUC answers forbidden (visitor in a moderated room): MSRP
        403 to the SIP sender.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "may I speak?")
        [message] = b.sent()
        b.receive(
            f"<message from='{ROOM.full()}' to='{REAL.full()}' type='error' id='{message['id']}'>"
            "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></message>"
        )
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, 403)

    def assertRefused(self, d: Deferred[Any], b: Bridge, code: int) -> None:
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, code)
        self.assertEqual(b.sent(), [])

    def test_localChecks(self) -> None:
        """
        RFC 7701 6.1-6.3 (E.4 local rows): two CPIM To -> 403; From not the
        sender -> 403; To another room -> 404; a wrapped type not mapped
        (text/html) -> 415.  Nothing reaches XMPP.
        """
        b = Bridge(self)
        session = b.enter()
        self.assertRefused(
            b.send(session, "x", extraTo=("sip:juliet@example.com",)), b, 403
        )
        self.assertRefused(
            b.send(session, "x", sender="sip:tybalt@example.org"), b, 403
        )
        self.assertRefused(
            b.send(session, "x", to="sip:montague@rooms.example"), b, 404
        )
        self.assertRefused(b.send(session, "<b>x</b>", contentType="text/html"), b, 415)

    def test_notCPIM(self) -> None:
        """
        RFC 7701 6.3 (E.4): a SEND that is not C{message/cpim} (or has no
        usable Content-Type) -> 415; malformed CPIM (also only its To)
        -> 400; no CPIM To -> 400; a C{Require} not understood -> 415.  (The SIP
        user's own MSRP stack would not send these: the gateway accepts
        only CPIM; the handler is called directly.)
        """
        b = Bridge(self)
        session = b.enter()
        [participant] = b.bridge.participants.values()

        def incoming(contentType: str, body: bytes) -> IncomingMessage:
            return IncomingMessage(
                "id1",
                contentType,
                body,
                (),
                len(body),
                (),
                (),
                False,
                FailureReport.YES,
            )

        for contentType in ("text/plain", "", "not a type"):
            self.assertEqual(
                participant.messageReceived(session, incoming(contentType, b"hi")), 415
            )
        self.assertEqual(
            participant.messageReceived(session, incoming("message/cpim", b"garbage")),
            400,
        )
        head = b"From: <sip:romeo@example.com>\r\nTo: <sip:capulet@rooms.example"
        tail = b"\r\n\r\nContent-Type: text/plain\r\n\r\nhi"
        # A malformed To is malformed CPIM too; a Require not understood
        # is 415 (RFC 3862 section 3.5), as in a native room.
        self.assertEqual(
            participant.messageReceived(session, incoming("message/cpim", head + tail)),
            400,
        )
        require = b">\r\nNS: X <urn:x>\r\nRequire: X.Vital\r\nX.Vital: yes"
        self.assertEqual(
            participant.messageReceived(
                session, incoming("message/cpim", head + require + tail)
            ),
            415,
        )
        # No To at all names neither the room nor a participant: 400, as
        # a native room answers (E.4 local rows, no-cpim-to).
        noTo = b"From: <sip:romeo@example.org>\r\n\r\nContent-Type: text/plain\r\n\r\nhi"
        self.assertEqual(
            participant.messageReceived(session, incoming("message/cpim", noTo)), 400
        )
        self.assertEqual(b.sent(), [])

    def test_fromInRoomIdentity(self) -> None:
        """
        A CPIM From with the user's own in-room identity is the sender too.
        """
        b = Bridge(self)
        session = b.enter()
        b.send(session, "hi", sender="sip:capulet@rooms.example;gr=Romeo")
        [message] = b.sent()
        self.assertEqual(message["type"], "groupchat")


class PrivateMessageTests(SynchronousTestCase):
    """
    C.2.3: CPIM To C{;gr=nick} <-> MUC private messages.
    """

    def test_sendPrivate(self) -> None:
        """
        SIP sends SEND To <sip:capulet@rooms.example;gr=JuliC>; XMPP gets a
        type chat message to capulet@rooms.example/JuliC with a muc#user
        C{<x/>}; MSRP 200.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "I am here!!!", to="sip:capulet@rooms.example;gr=JuliC")
        self.successResultOf(d)
        [message] = b.sent()
        self.assertEqual(
            (message["type"], message["to"]), ("chat", f"{ROOM.full()}/JuliC")
        )
        self.assertEqual(str(element(message, "body")), "I am here!!!")
        self.assertEqual(len(list(message.elements(MUC_USER, "x"))), 1)

    def test_unknownNick(self) -> None:
        """
        RFC 7701 6.2: a nick not in the room -> 404, nothing sent.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "hello?", to="sip:capulet@rooms.example;gr=Nobody")
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, 404)
        self.assertEqual(b.sent(), [])

    def test_lateErrorReported(self) -> None:
        """
        RFC 4975 7.1.4: the MUC refuses the private message after the 200
        (PMs disabled): a failure REPORT with the E.4 code (428) goes back.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "psst", to="sip:capulet@rooms.example;gr=JuliC")
        self.successResultOf(d)
        [message] = b.sent()
        b.protocol.dataReceived(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='error' id='{message['id']}'>"
            "<error type='cancel'><not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></message>".encode()
        )
        written = b"".join(t.value() for link in b.net.links for _, t in link.ends)
        self.assertIn(b"REPORT", written)
        self.assertIn(b"Status: 000 428", written)

    def test_receivePrivate(self) -> None:
        """
        XMPP sends a PM from capulet@rooms.example/JuliC; SIP gets a SEND
        with CPIM From <sip:capulet@rooms.example;gr=JuliC> To the user.
        """
        b = Bridge(self)
        b.enter()
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='chat' id='p1'>"
            f"<body>Wherefore?</body><x xmlns='{MUC_USER}'/></message>"
        )
        [cpim] = b.received()
        self.assertEqual(
            cpim.fromAddress, CPIMAddress("sip:capulet@rooms.example;gr=JuliC", "JuliC")
        )
        self.assertEqual(cpim.toAddresses, (CPIMAddress(ROMEO_URI),))
        self.assertEqual(cpim.body, b"Wherefore?")
        [raw] = b.net.a.handler.messages
        self.assertIn(b"\r\nTo: <sip:romeo@example.org>\r\n", raw.body)

    def test_noPrivateMessagesToken(self) -> None:
        """
        R-221, RFC 7701 section 6.2: a UA without C{private-messages} gets
        no PMs; the XMPP sender gets a private notice that it was not
        delivered, never an error stanza (Prosody and ejabberd remove an
        occupant that sends one through the room).
        """
        b = Bridge(self)
        self.enterDeclaring(b, ("nickname",))
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='chat' id='p1'>"
            f"<body>Wherefore?</body><x xmlns='{MUC_USER}'/></message>"
        )
        self.assertEqual(b.received(), [])
        [notice] = b.sent()
        self.assertEqual(
            (notice.name, notice["type"], notice["to"], notice["from"]),
            ("message", "chat", f"{ROOM.full()}/JuliC", REAL.full()),
        )
        self.assertIn("Not delivered", str(element(notice, "body")))
        self.assertEqual([c for c in notice.elements() if c.name == "error"], [])


    def enterDeclaring(self, b: Bridge, chatroom: tuple[str, ...]) -> None:
        """
        The SIP user joins with C{a=chatroom} C{chatroom}.
        """
        d = b.invite(chatroom=chatroom)
        b.sent()
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.successResultOf(d)

    def test_privateMessagesTokenAnyCase(self) -> None:
        """
        RFC 7701 section 8 tokens are read as the native rooms and Gateway
        A read them (C{chatroomTokens}): C{Private-Messages} declares
        private messages too, and a PM is delivered.
        """
        b = Bridge(self)
        self.enterDeclaring(b, ("nickname", "Private-Messages"))
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='chat' id='p1'>"
            f"<body>Wherefore?</body><x xmlns='{MUC_USER}'/></message>"
        )
        [cpim] = b.received()
        self.assertEqual(cpim.body, b"Wherefore?")

    def test_privateMessagesTokenDropped(self) -> None:
        """
        R-094, RFC 7701 section 8: a SIP user that re-offers (RFC 4975
        section 8.4, R-156) without C{a=chatroom} has turned RFC 7701 off:
        the re-offer is answered 200, and from then on private messages
        are not delivered to it, as for a UA that never declared them.
        """
        b = Bridge(self)
        session = b.enter()
        assert session.dialog is not None
        offer = reoffer(
            session.dialog.localBody, (b"a=chatroom:nickname private-messages\r\n", b"")
        )
        d = session.dialog.sendRequest("INVITE", body=offer, contentType="application/sdp")
        b.net.pump()
        self.assertEqual(self.successResultOf(d).status, 200)
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='chat' id='p2'>"
            f"<body>Wherefore?</body><x xmlns='{MUC_USER}'/></message>"
        )
        self.assertEqual(b.received(), [])
        [notice] = b.sent()
        self.assertIn("Not delivered", str(element(notice, "body")))


class IncomingGroupchatTests(SynchronousTestCase):
    """
    MUC -> SIP (C.2.2 step 5, R-216).
    """

    def test_live(self) -> None:
        """
        XMPP sends groupchat from capulet@rooms.example/JuliC; SIP gets a
        SEND, CPIM From "JuliC" <sip:capulet@rooms.example;gr=JuliC>, To the
        room URI (RFC 7701 section 6.1: the receiving client tells a room
        message from a private one by the CPIM To), text/plain body, a
        DateTime.
        """
        b = Bridge(self)
        b.enter()
        b.xmppClock.advance(1700000000)
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='groupchat' id='g1'>"
            "<body>Art thou not Romeo?</body></message>"
        )
        [cpim] = b.received()
        self.assertEqual(
            cpim.fromAddress, CPIMAddress("sip:capulet@rooms.example;gr=JuliC", "JuliC")
        )
        self.assertEqual(cpim.toAddresses, (CPIMAddress(ROOM_URI),))
        [raw] = b.net.a.handler.messages
        self.assertIn(b"\r\nTo: <sip:capulet@rooms.example>\r\n", raw.body)
        self.assertEqual(cpim.contentType.mimeType, "text/plain")
        self.assertEqual(cpim.body, "Art thou not Romeo?".encode())
        self.assertEqual(
            cpim.dateTime, datetime.datetime.fromtimestamp(1700000000, UTC)
        )

    def test_history(self) -> None:
        """
        R-216: history (delay stamp) -> CPIM DateTime = the stamp.
        """
        b = Bridge(self)
        b.enter()
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='groupchat' id='h1'>"
            "<body>earlier</body>"
            f"<delay xmlns='urn:xmpp:delay' stamp='2002-10-13T23:58:37Z' from='{ROOM.full()}'/>"
            "</message>"
        )
        [cpim] = b.received()
        self.assertEqual(
            cpim.dateTime, datetime.datetime(2002, 10, 13, 23, 58, 37, tzinfo=UTC)
        )


class NicknameTests(SynchronousTestCase):
    """
    C.2.4: NICKNAME -> nick change (R-210).
    """

    def test_change(self) -> None:
        """
        SIP sends NICKNAME "montecchi"; XMPP gets presence to
        capulet@rooms.example/montecchi; 200 after the 303 and 110.
        """
        b = Bridge(self)
        session = b.enter()
        d = session.sendNickname("montecchi")
        b.net.pump()
        [change] = b.sent()
        self.assertEqual(change["to"], f"{ROOM.full()}/montecchi")
        self.assertNoResult(d)
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' nick='montecchi' role='participant'/>"
                "<status code='303'/><status code='110'/>",
                "unavailable",
            )
        )
        self.assertNoResult(d)
        b.receive(
            presence(
                f"{ROOM.full()}/montecchi",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.assertEqual(self.successResultOf(d), 200)
        [participant] = b.bridge.participants.values()
        self.assertEqual(participant.nick, "montecchi")
        # The chat goes on: the 303 is no exit.
        self.assertEqual(b.net.requests("BYE"), [])

    def test_conflict(self) -> None:
        """
        MUC C{<conflict/>} -> MSRP 425.
        """
        b = Bridge(self)
        session = b.enter()
        d = session.sendNickname("JuliC")
        b.net.pump()
        b.sent()
        b.receive(
            errorPresence(
                REAL.full(), "409", "cancel", "conflict", sender=f"{ROOM.full()}/JuliC"
            )
        )
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, 425)

    def test_empty(self) -> None:
        """
        SPEC F.1 item 3: C{Use-Nickname: ""} (RFC 7701 section 7.3's nick
        removal) -> 403; the MUC is not asked.
        """
        b = Bridge(self)
        session = b.enter()
        d = session.sendNickname("")
        b.net.pump()
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, 403)
        self.assertEqual(b.sent(), [])


class ExitTests(SynchronousTestCase):
    """
    C.2.6: BYE -> leave; removal -> BYE with Reason (R-219).
    """

    def test_bye(self) -> None:
        """
        SIP sends BYE; XMPP gets unavailable presence to
        capulet@rooms.example/Romeo.
        """
        b = Bridge(self)
        session = b.enter()
        session.end()
        b.net.pump()
        [leave] = b.sent()
        self.assertEqual(
            (leave["type"], leave["to"], leave["from"]),
            ("unavailable", f"{ROOM.full()}/Romeo", REAL.full()),
        )
        self.assertEqual(b.bridge.participants, {})
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='none'/><status code='110'/>",
                "unavailable",
            )
        )
        self.assertEqual(b.service.stateOf(ROOM, REAL), None)
        self.assertEqual(len(b.net.requests("BYE")), 1)

    def test_kicked(self) -> None:
        """
        XMPP kicks the user (307 + 110): SIP gets BYE with Reason cause 403;
        nothing more goes to XMPP.
        """
        b = Bridge(self)
        b.enter()
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='none'><reason>Avaunt!</reason></item>"
                "<status code='307'/><status code='110'/>",
                "unavailable",
            )
        )
        [bye] = b.net.requests("BYE")
        self.assertIsInstance(bye, SIPRequest)
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 403)
        self.assertIn("kicked", reason.text or "")
        self.assertEqual(
            [e.cause for e in b.net.a.handler.ended], [EndCause.REMOTE_BYE]
        )
        self.assertEqual(b.sent(), [])
        self.assertEqual(b.bridge.participants, {})

    def test_shutdown(self) -> None:
        """
        E.5: room shutdown (332) -> BYE Reason 503.
        """
        b = Bridge(self)
        b.enter()
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='none'/>"
                "<status code='332'/><status code='110'/>",
                "unavailable",
            )
        )
        [bye] = b.net.requests("BYE")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)


def selfPresence(nick: str = "Romeo", extra: str = "") -> str:
    """
    Our occupant's self-presence (110), available.
    """
    return presence(
        f"{ROOM.full()}/{nick}",
        REAL.full(),
        "<item affiliation='none' role='participant'/><status code='110'/>" + extra,
    )


class OfferTests(SynchronousTestCase):
    """
    The offer is checked before anything reaches XMPP.
    """

    def test_noCPIM(self) -> None:
        """
        RFC 7701 section 5.2: an offer whose accept-types lack
        C{message/cpim} gets 488, and the room sees nothing (no join, no
        leave).
        """
        b = Bridge(self)
        d = b.net.a.initiator.startChat(
            SIPURI.fromString(ROOM_URI),
            parseNameAddr(f'"Romeo" <{ROMEO_URI}>;tag=r1'),
            b.net.a.handler,
            acceptTypes=("text/plain",),
            chatroom=("nickname", "private-messages"),
        )
        b.net.pump()
        self.failureResultOf(d)
        [final] = [r for r in b.net.responses("INVITE") if r.status >= 200]
        self.assertEqual(final.status, 488)
        self.assertEqual(b.sent(), [])
        self.assertEqual(b.bridge.participants, {})


class IdentityTests(SynchronousTestCase):
    """
    Who the SIP user is: never simply the From it writes.
    """

    def test_assertedIdentity(self) -> None:
        """
        RFC 3325: a trusted peer's P-Asserted-Identity names the user, not
        the From.
        """
        b = Bridge(self)
        b.net.a.initiator.startChat(
            SIPURI.fromString(ROOM_URI),
            parseNameAddr(f'"Romeo" <{ROMEO_URI}>;tag=r1'),
            b.net.a.handler,
            acceptTypes=("message/cpim",),
            headers=[("P-Asserted-Identity", "<sip:montague@example.org>")],
        )
        b.net.pump()
        [join] = b.sent()
        self.assertEqual(join["from"], "montague\\40example.org@sip.example/r1")

    def test_digestUser(self) -> None:
        """
        A request that authenticated as a digest user is that user
        (C{user@realm}), whatever its From says.
        """
        b = Bridge(self, authRealm="example.org")
        from stoxgw.sip.useragent import IncomingInvite

        original = IncomingInvite.__init__

        def authenticated(self: IncomingInvite, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.transaction.authenticatedUser = "benvolio"

        self.patch(IncomingInvite, "__init__", authenticated)
        b.invite(sender=f'"Romeo" <{ROMEO_URI}>;tag=r1')
        [join] = b.sent()
        self.assertEqual(join["from"], "benvolio\\40example.org@sip.example/r1")


class NickVariantTests(SynchronousTestCase):
    """
    A temporary nick the room already has: the next variant (RFC 7702
    section 7).
    """

    def conflict(self, b: Bridge, nick: str) -> None:
        b.receive(
            errorPresence(REAL.full(), "409", "cancel", "conflict", sender=f"{ROOM.full()}/{nick}")
        )

    def test_variant(self) -> None:
        """
        Romeo is taken: the gateway joins as Romeo_2, and the INVITE gets
        200 once that join completes; the user may rename with NICKNAME.
        """
        b = Bridge(self)
        d = b.invite()
        [first] = b.sent()
        self.assertEqual(first["to"], f"{ROOM.full()}/Romeo")
        self.conflict(b, "Romeo")
        [second] = b.sent()
        self.assertEqual(second["to"], f"{ROOM.full()}/Romeo_2")
        self.assertNoResult(d)
        b.receive(selfPresence("Romeo_2"))
        self.successResultOf(d)
        [participant] = b.bridge.participants.values()
        self.assertEqual(participant.nick, "Romeo_2")

    def test_allTaken(self) -> None:
        """
        The nick and its eight variants are all taken: 486 (SPEC E.5).
        """
        b = Bridge(self)
        d = b.invite()
        tried = []
        for _ in range(9):
            [join] = b.sent()
            tried.append(join["to"].split("/", 1)[1])
            self.conflict(b, tried[-1])
        self.assertEqual(b.sent(), [])
        self.assertEqual(tried, ["Romeo"] + [f"Romeo_{n}" for n in range(2, 10)])
        self.failureResultOf(d)
        [final] = [r for r in b.net.responses("INVITE") if r.status >= 200]
        self.assertEqual(final.status, 486)


class LateErrorTests(SynchronousTestCase):
    """
    R-211: the reflection's bounded wait and what comes after it.
    """

    def test_lateGroupchatError(self) -> None:
        """
        No reflection within the timeout: 200 (the default); the MUC's
        error that arrives later becomes a failure REPORT for that
        message (RFC 4975 section 7.1.4), with the E.4 code.
        """
        b = Bridge(self)
        session = b.enter()
        d = b.send(session, "anyone?")
        [message] = b.sent()
        b.xmppClock.advance(10)
        b.net.pump()
        self.successResultOf(d)
        b.protocol.dataReceived(
            f"<message from='{ROOM.full()}' to='{REAL.full()}' type='error' id='{message['id']}'>"
            "<error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
            "</error></message>".encode()
        )
        written = b"".join(t.value() for link in b.net.links for _, t in link.ends)
        self.assertIn(b"REPORT", written)
        self.assertIn(b"Status: 000 403", written)

    def test_timeoutStatusConfigured(self) -> None:
        """
        With C{reflectionTimeoutStatus=408} the sender learns at once that
        delivery is not known.
        """
        b = Bridge(self, reflectionTimeoutStatus=408)
        session = b.enter()
        d = b.send(session, "anyone?")
        b.sent()
        b.xmppClock.advance(10)
        b.net.pump()
        failure = self.failureResultOf(d, MSRPSendError)
        self.assertEqual(failure.value.code, 408)

    def test_badTimeoutStatus(self) -> None:
        """
        Only 200 and 408 make sense after a timeout.
        """
        self.assertRaises(
            ValueError, SIPToXMPP, MemoryReactorClock(), USER_DOMAIN, reflectionTimeoutStatus=500
        )


class _Order(list):  # type: ignore[type-arg]
    """
    A UDP socket's written list that also notes each write in C{log}.
    """

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    def append(self, item: Any) -> None:
        self.log.append("sip")
        super().append(item)


class ByeOrderTests(SynchronousTestCase):
    """
    RFC 7702 section 6.6: F60 BYE, F61 unavailable presence, F62 200.
    """

    def test_presenceBefore200(self) -> None:
        """
        The unavailable presence is written before the 200 to the BYE.
        """
        b = Bridge(self)
        session = b.enter()
        log: list[str] = []
        b.net.b.udp.written = _Order(log)
        write = b.transport.write

        def xmpp(data: bytes) -> None:
            log.append("xmpp")
            write(data)

        b.transport.write = xmpp  # type: ignore[method-assign]
        session.end()
        b.net.pump()
        [leave] = b.sent()
        self.assertEqual(leave["type"], "unavailable")
        [ok] = [r for r in b.net.responses("BYE")]
        self.assertEqual(ok.status, 200)
        self.assertEqual(log[:2], ["xmpp", "sip"])


class ChatStateTests(SynchronousTestCase):
    """
    R-225, SPEC E.6: isComposing <-> XEP-0085, both ways, no repeats.
    """

    WRAPPED = ("text/plain", "application/im-iscomposing+xml")

    def composing(self, b: Bridge, session: ChatSession, state: str, to: str = ROOM_URI) -> None:
        document = (
            "<?xml version='1.0' encoding='UTF-8'?>"
            "<isComposing xmlns='urn:ietf:params:xml:ns:im-iscomposing'>"
            f"<state>{state}</state><contenttype>text/plain</contenttype></isComposing>"
        )
        cpim = CPIMMessage.build(
            contentType="application/im-iscomposing+xml",
            body=document.encode(),
            fromAddress=CPIMAddress(ROMEO_URI),
            toAddresses=[CPIMAddress(to)],
        )
        d = session.sendMessage("message/cpim", cpim.toBytes())
        b.net.pump()
        self.successResultOf(d)

    def states(self, stanzas: list[domish.Element]) -> list[tuple[str, str, str]]:
        return [
            (m["type"], m["to"], child.name)
            for m in stanzas
            for child in m.elements()
            if child.uri == "http://jabber.org/protocol/chatstates"
        ]

    def test_sipToRoom(self) -> None:
        """
        isComposing active -> C{<composing/>} to the room, without a body;
        the same again -> nothing; idle within a second waits, then
        C{<active/>}.
        """
        b = Bridge(self)
        session = b.enter(wrapped=self.WRAPPED)
        self.composing(b, session, "active")
        sent = b.sent()
        self.assertEqual(self.states(sent), [("groupchat", ROOM.full(), "composing")])
        self.assertEqual(list(sent[0].elements(None, "body")), [])
        self.composing(b, session, "active")
        self.assertEqual(b.sent(), [])
        self.composing(b, session, "idle")
        self.assertEqual(b.sent(), [])
        b.xmppClock.advance(1)
        self.assertEqual(self.states(b.sent()), [("groupchat", ROOM.full(), "active")])

    def test_sipToNick(self) -> None:
        """
        isComposing with CPIM To an occupant -> a private chat state.
        """
        b = Bridge(self)
        session = b.enter(wrapped=self.WRAPPED)
        self.composing(b, session, "active", to="sip:capulet@rooms.example;gr=JuliC")
        self.assertEqual(
            self.states(b.sent()), [("chat", f"{ROOM.full()}/JuliC", "composing")]
        )

    def test_messageCarriesActive(self) -> None:
        """
        XEP-0085 5.1: after a chat state, the user's message carries
        C{<active/>}.
        """
        b = Bridge(self)
        session = b.enter(wrapped=self.WRAPPED)
        self.composing(b, session, "active")
        b.sent()
        b.send(session, "done typing")
        [message] = b.sent()
        self.assertEqual(self.states([message]), [("groupchat", ROOM.full(), "active")])

    def received(self, b: Bridge) -> list[tuple[str, str, bytes]]:
        return [
            (str(c.contentType.mimeType), c.toAddresses[0].uri, c.body)
            for c in b.received()
        ]

    def test_xmppToSIP(self) -> None:
        """
        C{<composing/>} from JuliC -> isComposing active, CPIM From JuliC's
        in-room identity, To the room; repeated -> nothing; C{<paused/>}
        -> idle; a private one -> To the user.
        """
        b = Bridge(self)
        b.enter(wrapped=self.WRAPPED)
        state = (
            "<message from='{room}/JuliC' to='{real}' type='{kind}'>"
            "<{name} xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
        for name, kind in (("composing", "groupchat"), ("composing", "groupchat"), ("paused", "groupchat"), ("composing", "chat")):
            b.receive(state.format(room=ROOM.full(), real=REAL.full(), kind=kind, name=name))
        received = self.received(b)
        self.assertEqual(
            [(mime, to) for mime, to, _ in received],
            [
                ("application/im-iscomposing+xml", ROOM_URI),
                ("application/im-iscomposing+xml", ROOM_URI),
                ("application/im-iscomposing+xml", ROMEO_URI),
            ],
        )
        self.assertIn(b"<state>active</state>", received[0][2])
        self.assertIn(b"<state>idle</state>", received[1][2])
        self.assertIn(b"<state>active</state>", received[2][2])
        [first] = b.received()[:1]
        self.assertEqual(first.fromAddress.uri, "sip:capulet@rooms.example;gr=JuliC")

    def test_notAccepted(self) -> None:
        """
        A UA that does not accept isComposing gets none.
        """
        b = Bridge(self)
        b.enter()
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='groupchat'>"
            "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>"
        )
        self.assertEqual(b.received(), [])


class LinkLossTests(SynchronousTestCase):
    """
    The XMPP link drops: the SIP user stays, is told its messages did not
    go, and is back in the room when the link is.
    """

    def lose(self, b: Bridge) -> None:
        b.protocol.connectionLost(None)  # type: ignore[arg-type]
        b.net.pump()

    def test_sessionKept(self) -> None:
        """
        No BYE; a SEND and a NICKNAME meanwhile get 408 (never a silent
        200).
        """
        b = Bridge(self)
        session = b.enter()
        self.lose(b)
        self.assertEqual(b.net.requests("BYE"), [])
        failure = self.failureResultOf(b.send(session, "hello?"), MSRPSendError)
        self.assertEqual(failure.value.code, 408)
        d = session.sendNickname("Montague")
        b.net.pump()
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 408)

    def test_rejoin(self) -> None:
        """
        The link is back: the occupant joins again with its nick, asking
        for the history since the loss; then messages flow again.
        """
        b = Bridge(self)
        session = b.enter()
        self.lose(b)
        b.reconnect()
        [join] = b.sent()
        self.assertEqual((join["to"], join["from"]), (f"{ROOM.full()}/Romeo", REAL.full()))
        [x] = join.elements(NS_MUC, "x")
        [history] = x.elements(NS_MUC, "history")
        self.assertTrue(history.getAttribute("since"))
        b.receive(
            presence(f"{ROOM.full()}/JuliC", REAL.full(), "<item affiliation='member' role='participant'/>")
        )
        b.receive(selfPresence())
        d = b.send(session, "I am back")
        [message] = b.sent()
        self.assertEqual(message["type"], "groupchat")
        b.receive(
            f"<message from='{ROOM.full()}/Romeo' to='{REAL.full()}' type='groupchat' id='{message['id']}'>"
            "<body>I am back</body></message>"
        )
        self.successResultOf(d)
        self.assertEqual(b.net.requests("BYE"), [])

    def test_graceOver(self) -> None:
        """
        The link stays away for the grace period: BYE with Reason 503.
        """
        b = Bridge(self, linkLossGrace=30.0)
        b.enter()
        self.lose(b)
        b.link.stopService()
        b.xmppClock.advance(30)
        b.net.pump()
        [bye] = b.net.requests("BYE")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)
        self.assertEqual(b.bridge.participants, {})

    def test_rejoinRefused(self) -> None:
        """
        The room refuses the rejoin (banned meanwhile): BYE with the entry
        error's status (403).
        """
        b = Bridge(self)
        b.enter()
        self.lose(b)
        b.reconnect()
        b.sent()
        b.receive(
            errorPresence(REAL.full(), "403", "auth", "forbidden", sender=f"{ROOM.full()}/Romeo")
        )
        [bye] = b.net.requests("BYE")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 403)

    def test_noGhost(self) -> None:
        """
        The SIP user hangs up during the outage: when the link is back the
        room gets its unavailable presence (a server may have kept the
        occupant), and no rejoin.
        """
        b = Bridge(self)
        session = b.enter()
        self.lose(b)
        session.end()
        b.net.pump()
        self.assertEqual(len(b.net.requests("BYE")), 1)
        b.reconnect()
        [leave] = b.sent()
        self.assertEqual(
            (leave.name, leave["type"], leave["to"], leave["from"]),
            ("presence", "unavailable", f"{ROOM.full()}/Romeo", REAL.full()),
        )


class LoopTests(SynchronousTestCase):
    """
    An INVITE for a room of the gateway's own room domain is refused.
    """

    def test_ownRoomDomain(self) -> None:
        """
        482 (Loop Detected), whatever the MUC domains allow; XMPP sees
        nothing.
        """
        b = Bridge(self)
        b.bridge.ownRoomDomains = ("rooms.example",)
        d = b.invite()
        self.failureResultOf(d)
        [final] = [r for r in b.net.responses("INVITE") if r.status >= 200]
        self.assertEqual(final.status, 482)
        self.assertEqual(b.sent(), [])


class InviteRateTests(SynchronousTestCase):
    """
    Issue 11 item 6: INVITEs are rate-limited per SIP identity and per
    room, before anything reaches XMPP.
    """

    def test_perUser(self) -> None:
        """
        A user's third INVITE within the minute (limit 2): 503 with
        Retry-After, no join presence; a minute later it goes through.
        """
        b = Bridge(self, invitesPerUser=2)
        for _ in range(2):
            d = b.invite()
            [join] = b.sent()
            b.receive(
                errorPresence(REAL.full(), "403", "auth", "forbidden", sender=f"{ROOM.full()}/Romeo")
            )
            self.failureResultOf(d)
        d = b.invite()
        self.failureResultOf(d)
        self.assertEqual(b.sent(), [])
        final = [r for r in b.net.responses("INVITE") if r.status >= 200][-1]
        self.assertEqual(final.status, 503)
        self.assertEqual(final.header("Retry-After"), "60")
        b.xmppClock.advance(60)
        b.invite()
        self.assertEqual(len(b.sent()), 1)

    def test_perRoom(self) -> None:
        """
        Different users, one room (limit 1): the second gets 503.
        """
        b = Bridge(self, invitesPerRoom=1)
        b.invite()
        self.assertEqual(len(b.sent()), 1)
        d = b.invite(sender='"Mercutio" <sip:mercutio@example.org>;tag=m1')
        self.failureResultOf(d)
        self.assertEqual(b.sent(), [])
        final = [r for r in b.net.responses("INVITE") if r.status >= 200][-1]
        self.assertEqual(final.status, 503)


class _Session:
    """
    A started chat session that keeps what is sent on it.
    """

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendMessage(self, contentType: str, payload: bytes) -> Deferred[None]:
        assert contentType == "message/cpim"
        self.sent.append(payload)
        return succeed(None)


class RoomFanOutTests(SynchronousTestCase):
    """
    The MUC sends a room message once per occupant: the SIP occupants of
    one room get one CPIM body, built once; private messages are built
    per user.
    """

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        self.clock.advance(1700000000)
        self.bridge = SIPToXMPP(self.clock, USER_DOMAIN, ("rooms.example",))
        self.builds: list[tuple[str, CPIMAddress]] = []
        wrap = sipuser.wrapText

        def counting(
            text: str, sender: CPIMAddress, recipient: CPIMAddress, stamp: datetime.datetime
        ) -> bytes:
            self.builds.append((text, recipient))
            return wrap(text, sender, recipient, stamp)

        self.patch(sipuser, "wrapText", counting)

    def occupants(self, room: JID, count: int) -> list[tuple[JID, _Session]]:
        """
        C{count} SIP users in C{room}, their chats started.
        """
        made = []
        for n in range(count):
            user = parseSIPIdentity(f"sip:user{n}@example.org").aor
            real = JID(str(realJIDForSIPUser(user, USER_DOMAIN, "r1")))
            participant = SIPParticipant(
                self.bridge,
                room,
                real,
                requestURIFromRoomJID(room.full()),
                user,
                f"user{n}",
                True,
            )
            self.bridge.participants[occupantKey(room, real)] = participant
            session = _Session()
            participant.chatStarted(session)  # type: ignore[arg-type]
            made.append((real, session))
        return made

    def test_roomMessageBuiltOnce(self) -> None:
        """
        One room message to 5 SIP occupants: one CPIM build, one body (the
        same object) sent to all, To the room; the next message is built
        once again.
        """
        occupants = self.occupants(ROOM, 5)
        for text in ("Art thou not Romeo?", "and a Montague?"):
            self.builds.clear()
            for real, _ in occupants:
                self.bridge.groupchatReceived(ROOM, real, GroupchatMessage("JuliC", text))
            self.assertEqual(self.builds, [(text, CPIMAddress(ROOM_URI))])
        first = occupants[0][1].sent
        self.assertEqual(len(first), 2)
        for _, session in occupants:
            self.assertEqual(len(session.sent), 2)
            for mine, theirs in zip(session.sent, first):
                self.assertIs(mine, theirs)
        self.assertIn(b"\r\nTo: <sip:capulet@rooms.example>\r\n", first[0])
        self.assertIn(b'From: JuliC <sip:capulet@rooms.example;gr=JuliC>\r\n', first[0])

    def test_whatMakesAnotherBody(self) -> None:
        """
        Another sender, another DateTime (a later second, or a history
        stamp) or another room is another body.
        """
        [(real, session)] = self.occupants(ROOM, 1)
        [(otherReal, otherSession)] = self.occupants(JID("montague@rooms.example"), 1)
        stamp = datetime.datetime(2002, 10, 13, 23, 58, 37, tzinfo=UTC)
        for message in (
            GroupchatMessage("JuliC", "hi"),
            GroupchatMessage("Nurse", "hi"),
            GroupchatMessage("Nurse", "hi", stamp=stamp),
        ):
            self.bridge.groupchatReceived(ROOM, real, message)
        self.clock.advance(1)
        self.bridge.groupchatReceived(ROOM, real, GroupchatMessage("Nurse", "hi"))
        self.bridge.groupchatReceived(
            JID("montague@rooms.example"), otherReal, GroupchatMessage("Nurse", "hi")
        )
        self.assertEqual(len(self.builds), 5)
        self.assertEqual(len(set(session.sent)), 4)
        [elsewhere] = otherSession.sent
        self.assertIn(b"\r\nTo: <sip:montague@rooms.example>\r\n", elsewhere)

    def test_privateMessagesPerUser(self) -> None:
        """
        A private message is To the user: built for each, never the room's
        body, even with the same sender, text and time.
        """
        occupants = self.occupants(ROOM, 2)
        for real, _ in occupants:
            self.bridge.groupchatReceived(ROOM, real, GroupchatMessage("JuliC", "hi"))
            self.bridge.privateMessageReceived(ROOM, real, PrivateMessage("JuliC", "hi"))
        self.assertEqual(
            self.builds,
            [
                ("hi", CPIMAddress(ROOM_URI)),
                ("hi", CPIMAddress("sip:user0@example.org")),
                ("hi", CPIMAddress("sip:user1@example.org")),
            ],
        )
        for n, (_, session) in enumerate(occupants):
            public, private = session.sent
            self.assertIn(b"\r\nTo: <sip:capulet@rooms.example>\r\n", public)
            self.assertIn(f"\r\nTo: <sip:user{n}@example.org>\r\n".encode(), private)

    def test_sharedWhileInUse(self) -> None:
        """
        A room's shared body lives as long as a participant of the room
        does.
        """
        [(real, _)] = self.occupants(ROOM, 1)
        self.bridge.groupchatReceived(ROOM, real, GroupchatMessage("JuliC", "hi"))
        self.assertEqual(len(self.bridge.roomCopies), 1)
        self.bridge.participants.clear()
        gc.collect()
        self.assertEqual(len(self.bridge.roomCopies), 0)
