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
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID
from twisted.words.xish import domish
from wokkel import generic
from zope.interface.verify import verifyObject

from stoxgw.chat.session import ChatSession, EndCause, IChatSessionHandler
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.siptoxmpp import ISIPToXMPP, SIPParticipant, SIPToXMPP
from stoxgw.msrp.message import FailureReport
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.xmpp.component import ComponentLink
from stoxgw.xmpp.occupant import NS_MUC, OccupantService, OccupantState
from tests.chat.test_session import HOST_B, Network, msrpMedia
from tests.xmpp.test_occupant import MUC_USER, SERVER_HEADER, errorPresence, presence

USER_DOMAIN = "sip.example"
ROOM = JID("capulet@rooms.example")
ROOM_URI = "sip:capulet@rooms.example"
ROMEO_URI = "sip:romeo@example.org"
#: realJIDForSIPUser(sip:romeo@example.org, sip.example, "r1").
REAL = JID("romeo\\40example.org@sip.example/r1")
UTC = datetime.timezone.utc


class Bridge:
    """
    The SIP user (gateway A of L{Network}) and stoxgw (gateway B with
    L{SIPToXMPP} and an L{OccupantService} on a fake component stream).
    """

    def __init__(self, test: SynchronousTestCase) -> None:
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
        self.bridge = SIPToXMPP(
            self.xmppClock,
            USER_DOMAIN,
            ("rooms.example",),
            resourceFactory=lambda: "r1",
        )
        ids = iter(f"m{n}" for n in range(1, 1000))
        self.service = OccupantService(
            self.bridge,
            self.xmppClock,
            USER_DOMAIN,
            timeout=30.0,
            reflectionTimeout=10.0,
            idFactory=lambda: next(ids),
        )
        self.bridge.useOccupants(self.service)
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
    ) -> Deferred[ChatSession]:
        """
        The SIP user INVITEs C{target} (RFC 7702 section 6.1, F35).
        """
        d = self.net.a.initiator.startChat(
            SIPURI.fromString(target),
            parseNameAddr(sender),
            self.net.a.handler,
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=("text/plain",),
            chatroom=chatroom,
        )
        self.net.pump()
        return d

    def enter(
        self, nick: str = "Romeo", roster: tuple[str, ...] = ("JuliC",)
    ) -> ChatSession:
        """
        INVITE, the MUC join (others' presence, then the 110 self-presence),
        the 200, a ready chat.
        """
        d = self.invite()
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
        self.assertEqual(media.acceptWrappedTypes, ("text/plain",))
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
        (banned) -> 403; conflict -> 486; item-not-found -> 404.
        """
        self.assertEqual(self.entryError("registration-required", "407", "auth"), 403)
        self.assertEqual(self.entryError("forbidden", "403", "auth"), 403)
        self.assertEqual(self.entryError("conflict", "409", "cancel"), 486)
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
        usable Content-Type) -> 415; malformed CPIM -> 400.  (The SIP
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

    def test_noPrivateMessagesToken(self) -> None:
        """
        R-221: a UA without C{private-messages} gets no PMs.
        """
        b = Bridge(self)
        d = b.invite(chatroom=("nickname",))
        b.sent()
        b.receive(
            presence(
                f"{ROOM.full()}/Romeo",
                REAL.full(),
                "<item affiliation='none' role='participant'/><status code='110'/>",
            )
        )
        self.successResultOf(d)
        b.receive(
            f"<message from='{ROOM.full()}/JuliC' to='{REAL.full()}' type='chat' id='p1'>"
            f"<body>Wherefore?</body><x xmlns='{MUC_USER}'/></message>"
        )
        self.assertEqual(b.received(), [])


class IncomingGroupchatTests(SynchronousTestCase):
    """
    MUC -> SIP (C.2.2 step 5, R-216).
    """

    def test_live(self) -> None:
        """
        XMPP sends groupchat from capulet@rooms.example/JuliC; SIP gets a
        SEND, CPIM From "JuliC" <sip:capulet@rooms.example;gr=JuliC>, To the
        user, text/plain body, a DateTime.
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
        self.assertEqual(cpim.toAddresses, (CPIMAddress(ROMEO_URI),))
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

    def test_linkLost(self) -> None:
        """
        The XMPP link goes down: BYE with Reason 503.
        """
        b = Bridge(self)
        b.enter()
        b.protocol.connectionLost(None)  # type: ignore[arg-type]
        b.net.pump()
        [bye] = b.net.requests("BYE")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)
        self.assertEqual(b.bridge.participants, {})
        self.assertEqual(b.service.occupants(), [])
