# -*- test-case-name: tests.interworking.test_xmpptosip -*-
"""
Tests for L{stoxgw.interworking.xmpptosip}: RFC 7702 section 5 (Direction
A), as transcripts "XMPP sends X, SIP gets Y" and back.

The SIP side is the real chat layer of L{tests.chat.test_session}'s
L{Network}: gateway A (192.0.2.1) is the stoxgw under test, its
L{ChatInitiator} driven by L{XMPPToSIP}; gateway B (192.0.2.2) plays the
conference focus (a L{ChatAcceptor} accepting as focus, C{a=chatroom:
nickname private-messages}).  The XMPP side is the real L{MUCService} on
a recording stream manager (as in L{tests.xmpp.test_room}).  Addresses
are SPEC C.1's: C{juliet@example.com/balcony} enters
C{montague@chat.example.org/JuliC}.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber import error
from twisted.words.xish import domish
from zope.interface.verify import verifyObject

from stoxgw.chat.session import (
    AcceptChat,
    ChatSession,
    EndCause,
    IChatSessionHandler,
    RejectChat,
)
from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.interworking.addressing import SIPAddress
from stoxgw.interworking.xmpptosip import IXMPPToSIP, XMPPParticipant, XMPPToSIP
from stoxgw.msrp.session import IncomingMessage
from stoxgw.sip.sdp import parseSDP
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.refer import IncomingRefer, ReferAgent
from stoxgw.sip.subscription import ConferenceNotifier, ConferencePackage, SIPEvents
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.xmpp.room import MUCService
from tests.chat.test_session import HOST_A, HOST_B, Network, Recorder, reoffer
from tests.xmpp.test_room import connect, xml

ROOM_DOMAIN = "chat.example.org"
ROOM = "montague@chat.example.org"
FOCUS = "sip:montague@chat.example.org"
JULIET = "juliet@example.com/balcony"
NOW = datetime(2015, 10, 15, 18, 30, 0, tzinfo=timezone.utc)
OLD = datetime(2015, 10, 15, 18, 0, 0, tzinfo=timezone.utc)
MUC_USER = "http://jabber.org/protocol/muc#user"


class Focus(Recorder):
    """
    The focus's chat handler: records, answers SENDs with L{sendResult}.
    """

    sendResult: Any = 200

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        self.messages.append(message)
        return self.sendResult


class Bridge:
    """
    stoxgw (gateway A with L{XMPPToSIP} and a L{MUCService}) and the focus
    (gateway B).
    """

    def __init__(
        self, test: SynchronousTestCase, conference: ConferenceInfo | None = None
    ) -> None:
        """
        @param conference: With a document, the focus serves the
            conference event package with it (L{notifier}), and the
            gateway subscribes.
        """
        self.test = test
        self.net = Network()
        self.net.clock.advance(NOW.timestamp())
        self.focus = Focus()
        self.decision: Any = AcceptChat(
            self.focus,
            acceptTypes=("message/cpim",),
            requiredTypes=("message/cpim",),
            chatroom=("nickname", "private-messages"),
            isfocus=True,
        )
        self.net.b.offers.decide = lambda offer: self.decision
        ua = self.net.a.ua
        ua.settings = dataclasses.replace(
            ua.settings,
            outboundProxy=SIPURI("sip", HOST_B, port=5060, parameters=(("lr", None),)),
        )
        events = None
        self.notifier: ConferenceNotifier | None = None
        if conference is not None:
            notifier = self.notifier = ConferenceNotifier(conference)
            self.focusEvents = SIPEvents(self.net.b.ua)
            self.focusEvents.addPackage(ConferencePackage(lambda request: notifier))
            events = SIPEvents(self.net.a.ua)
        self.refers: list[IncomingRefer] = []
        self.referStatus = 202
        focusEvents = SIPEvents(self.net.b.ua) if conference is None else self.focusEvents
        ReferAgent(focusEvents, self)
        gatewayEvents = events if events is not None else SIPEvents(self.net.a.ua)
        ids = iter(range(1, 1000))
        self.bridge = XMPPToSIP(
            self.net.clock,
            self.net.a.initiator,
            ROOM_DOMAIN,
            events=events,
            refers=ReferAgent(gatewayEvents),
            rooms=lambda backend: MUCService(
                ROOM_DOMAIN, backend, self.net.clock, idFactory=lambda: f"id{next(ids)}"
            ),
        )
        self.rooms = self.bridge.rooms
        self.manager, self.stub = connect(self.rooms)

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        The focus's L{IReferHandler}: keep it, answer L{referStatus}.
        """
        self.refers.append(refer)
        if self.referStatus < 300:
            refer.accept(self.referStatus)
        else:
            refer.reject(self.referStatus)

    def receive(self, stanza: str) -> list[domish.Element]:
        """
        XMPP sends C{stanza}; the network settles; what the room sent.
        """
        before = len(self.manager.output)
        self.stub.send(xml(stanza))
        self.net.pump()
        return self.manager.output[before:]

    def settle(self) -> list[domish.Element]:
        """
        Let the network settle; what the room sent meanwhile.
        """
        before = len(self.manager.output)
        self.net.pump()
        return self.manager.output[before:]

    def join(self, nick: str = "JuliC", sender: str = JULIET) -> list[domish.Element]:
        return self.receive(
            f"<presence from='{sender}' to='{ROOM}/{nick}' id='j1'>"
            "<x xmlns='http://jabber.org/protocol/muc'/></presence>"
        )

    def session(self) -> ChatSession:
        """
        The focus's side of the chat.
        """
        return self.focus.session

    def fromFocus(
        self,
        body: str,
        sender: str = f"{FOCUS};gr=Romeo",
        to: str = FOCUS,
        when: datetime = NOW,
    ) -> list[domish.Element]:
        """
        The focus SENDs a CPIM message; what the room sent.
        """
        cpim = CPIMMessage.build(
            contentType="text/plain",
            body=body.encode("utf-8"),
            fromAddress=CPIMAddress(sender),
            toAddresses=(CPIMAddress(to),),
            dateTime=when,
        )
        before = len(self.manager.output)
        self.session().sendMessage("message/cpim", cpim.toBytes())
        self.net.pump()
        return self.manager.output[before:]

    def received(self) -> list[CPIMMessage]:
        """
        The CPIM messages the focus received.
        """
        return [CPIMMessage.parse(m.body) for m in self.focus.messages]


def statuses(stanza: domish.Element) -> set[int]:
    return {
        int(status["code"])
        for x in stanza.elements(MUC_USER, "x")
        for status in x.elements(MUC_USER, "status")
    }


def body(stanza: domish.Element) -> str | None:
    for child in stanza.elements():
        if child.name == "body":
            return str(child)
    return None


class InterfaceTests(SynchronousTestCase):
    """
    The providers verify.
    """

    def test_verify(self) -> None:
        """
        L{XMPPToSIP} provides L{IXMPPToSIP} (the room backend);
        L{XMPPParticipant} is a chat session handler.
        """
        bridge = Bridge(self).bridge
        verifyObject(IXMPPToSIP, bridge)
        participant = XMPPParticipant(
            bridge,
            ROOM,
            "juliet@example.com",
            SIPAddress("montague", ROOM_DOMAIN),
            SIPAddress("juliet", "example.com"),
            "JuliC",
        )
        verifyObject(IChatSessionHandler, participant)


class JoinTests(SynchronousTestCase):
    """
    SPEC C.1.1 and C.1.2: entering the room.
    """

    def setUp(self) -> None:
        self.b = Bridge(self)

    def test_enter(self) -> None:
        """
        XMPP sends the join presence to montague@chat.example.org/JuliC;
        SIP gets an INVITE to sip:montague@chat.example.org From
        <sip:juliet@example.com> offering CPIM with C{a=chatroom}, then
        NICKNAME "JuliC"; only then XMPP gets the self-presence (110) and
        the subject.
        """
        out = self.b.join()
        [invite] = self.b.net.requests("INVITE")
        self.assertEqual(str(invite.uri), FOCUS)
        self.assertIn("<sip:juliet@example.com>", invite.header("From") or "")
        self.assertIn("<sip:montague@chat.example.org>", invite.header("To") or "")
        media = parseSDP(invite.body).media[0]
        sdp = invite.body.decode()
        self.assertIn("a=accept-types:message/cpim", sdp)
        self.assertIn("a=accept-wrapped-types:text/plain", sdp)
        self.assertIn("a=chatroom:nickname private-messages", sdp)
        self.assertEqual(media.media, "message")
        self.assertEqual(self.b.focus.nicknames, ["JuliC"])
        [selfPresence, subject] = out
        self.assertEqual(selfPresence["from"], f"{ROOM}/JuliC")
        self.assertEqual(selfPresence["to"], JULIET)
        self.assertEqual(selfPresence.getAttribute("type"), None)
        self.assertIn(110, statuses(selfPresence))
        self.assertEqual(subject["type"], "groupchat")
        room = self.b.rooms.getRoom(ROOM)
        assert room is not None
        self.assertEqual(room.identity, FOCUS)
        self.assertTrue(room.settings.privateMessages)

    def test_historySize(self) -> None:
        """
        A room created for a focus keeps C{[gateway] history_size} messages
        for joining XMPP users.
        """
        self.b.bridge.historySize = 7
        self.b.join()
        room = self.b.rooms.getRoom(ROOM)
        assert room is not None
        self.assertEqual(room.settings.historySize, 7)

    def test_focusRejects(self) -> None:
        """
        The focus answers 486: XMPP gets the E.5 presence error
        C{service-unavailable} (type wait); no room is left behind.
        """
        self.b.decision = RejectChat(486)
        [reply] = self.b.join()
        self.assertEqual(reply["type"], "error")
        e = error.exceptionFromStanza(reply)
        self.assertEqual((e.condition, e.type), ("service-unavailable", "wait"))
        self.assertIsNone(self.b.rooms.getRoom(ROOM))
        self.assertEqual(self.b.bridge.participants, {})

    def test_focusNotFound(self) -> None:
        """
        404 from the focus: C{item-not-found}.
        """
        self.b.decision = RejectChat(404)
        [reply] = self.b.join()
        self.assertEqual(error.exceptionFromStanza(reply).condition, "item-not-found")

    def test_nickConflict(self) -> None:
        """
        The switch answers NICKNAME with 425: XMPP gets C{<conflict/>}
        (type cancel, from the nick asked for, R-013); the dialog stays
        (SPEC C.1.2), and the client's next try is a NICKNAME on
        the same chat, no second INVITE.
        """
        self.b.focus.nicknameResult = 425
        [reply] = self.b.join()
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["from"], f"{ROOM}/JuliC")
        e = error.exceptionFromStanza(reply)
        self.assertEqual((e.condition, e.type), ("conflict", "cancel"))
        self.assertEqual(self.b.net.requests("BYE", "192.0.2.1"), [])
        self.b.focus.nicknameResult = 200
        out = self.b.join(nick="Juliet2")
        self.assertEqual(len(self.b.net.requests("INVITE")), 1)
        self.assertEqual(self.b.focus.nicknames, ["JuliC", "Juliet2"])
        self.assertIn(110, statuses(out[-2]))
        self.assertEqual(out[-2]["from"], f"{ROOM}/Juliet2")

    def test_nickConflictNoRetry(self) -> None:
        """
        No other nick within the wait: BYE, the room goes.
        """
        self.b.focus.nicknameResult = 425
        self.b.join()
        self.b.net.clock.advance(60)
        self.b.net.pump()
        self.assertEqual(len(self.b.net.requests("BYE", "192.0.2.1")), 1)
        self.assertEqual(self.b.bridge.participants, {})
        self.assertIsNone(self.b.rooms.getRoom(ROOM))

    def test_gruuContact(self) -> None:
        """
        R-005: the INVITE's Contact carries the resource as C{gr}, inside
        the brackets; the From has none.
        """
        self.b.join()
        [invite] = self.b.net.requests("INVITE")
        contact = invite.header("Contact") or ""
        self.assertRegex(contact, r"^<sip:juliet@[^>]*;gr=balcony[;>]")
        self.assertNotIn("gr=", invite.header("From") or "")

    def test_notAFocus(self) -> None:
        """
        R-009: a 200 without C{isfocus}: the join fails (item-not-found)
        and the chat is hung up.
        """
        self.b.decision = dataclasses.replace(self.b.decision, isfocus=False)
        [reply] = self.b.join()
        self.assertEqual(error.exceptionFromStanza(reply).condition, "item-not-found")
        self.assertEqual(len(self.b.net.requests("BYE", "192.0.2.1")), 1)

    def test_nicknameNotImplemented(self) -> None:
        """
        NICKNAME answered 501 (a relay that does not know the method): the
        join completes with the nick kept locally.
        """
        self.b.focus.nicknameResult = 501
        out = self.b.join()
        self.assertIn(110, statuses(out[-2]))
        self.assertEqual(out[-2]["from"], f"{ROOM}/JuliC")

    def test_noNicknameToken(self) -> None:
        """
        R-080: a focus without the C{nickname} token gets no NICKNAME; the
        nick stays local.
        """
        self.b.decision = dataclasses.replace(
            self.b.decision, chatroom=("private-messages",)
        )
        out = self.b.join()
        self.assertEqual(self.b.focus.nicknames, [])
        self.assertIn(110, statuses(out[-2]))

    def test_secondSession(self) -> None:
        """
        A second session of the same user shares the chat and the nick:
        no second INVITE.
        """
        self.b.join()
        out = self.b.join(sender="juliet@example.com/phone")
        self.assertEqual(len(self.b.net.requests("INVITE")), 1)
        self.assertIn(110, statuses(out[-2]))
        self.assertEqual(out[-2]["to"], "juliet@example.com/phone")


class MessageTests(SynchronousTestCase):
    """
    SPEC C.1.3 and C.1.4: messages both ways.
    """

    def setUp(self) -> None:
        self.b = Bridge(self)
        self.b.join()

    def groupchat(
        self, text: str = "Who knows where Romeo is?"
    ) -> list[domish.Element]:
        return self.b.receive(
            f"<message from='{JULIET}' to='{ROOM}' type='groupchat' id='lzfed24s'>"
            f"<body>{text}</body></message>"
        )

    def test_groupchat(self) -> None:
        """
        XMPP sends groupchat; the focus gets a CPIM SEND From
        <sip:juliet@example.com> To <sip:montague@chat.example.org>; after
        the 200, XMPP gets the reflection with the client's id (R-212).
        """
        [reflection] = self.groupchat()
        [cpim] = self.b.received()
        self.assertEqual(cpim.fromAddress, CPIMAddress("sip:juliet@example.com"))
        self.assertEqual(cpim.toAddresses, (CPIMAddress(FOCUS),))
        self.assertEqual(cpim.dateTime, NOW)
        self.assertEqual(cpim.body, b"Who knows where Romeo is?")
        self.assertEqual(cpim.contentType.mimeType, "text/plain")
        self.assertEqual(
            (reflection["from"], reflection["type"], reflection["id"]),
            (f"{ROOM}/JuliC", "groupchat", "lzfed24s"),
        )
        self.assertEqual(body(reflection), "Who knows where Romeo is?")

    def test_groupchatRefused(self) -> None:
        """
        The switch answers the SEND with 403: XMPP gets a message error
        C{forbidden} (E.3) and no reflection.
        """
        self.b.focus.sendResult = 403
        [reply] = self.groupchat()
        self.assertEqual(reply["type"], "error")
        self.assertEqual(reply["id"], "lzfed24s")
        e = error.exceptionFromStanza(reply)
        self.assertEqual((e.condition, e.type), ("forbidden", "auth"))

    def test_fromFocus(self) -> None:
        """
        The focus SENDs From <sip:montague@chat.example.org;gr=Romeo>: XMPP
        gets Romeo's presence (the sender was not in the roster), then the
        groupchat from montague@chat.example.org/Romeo, without delay.
        """
        presence, message = self.b.fromFocus("Art thou not Romeo?")
        self.assertEqual(
            (presence.name, presence["from"], presence.getAttribute("type")),
            ("presence", f"{ROOM}/Romeo", None),
        )
        self.assertEqual(
            (message["from"], message["to"], message["type"]),
            (f"{ROOM}/Romeo", JULIET, "groupchat"),
        )
        self.assertEqual(body(message), "Art thou not Romeo?")
        self.assertEqual(list(message.elements("urn:xmpp:delay", "delay")), [])
        # known now: no second presence
        [again] = self.b.fromFocus("Neither, fair saint")
        self.assertEqual(again.name, "message")

    def test_history(self) -> None:
        """
        A CPIM DateTime half an hour old becomes a XEP-0203 delay.
        """
        [_, message] = self.b.fromFocus("Earlier", when=OLD)
        [delay] = list(message.elements("urn:xmpp:delay", "delay"))
        self.assertEqual(delay["stamp"], "2015-10-15T18:00:00Z")

    def test_ownNickSkipped(self) -> None:
        """
        A message the focus attributes to JuliC (an XMPP user served
        here, already reflected) is not shown again.
        """
        self.assertEqual(self.b.fromFocus("mine", sender=f"{FOCUS};gr=JuliC"), [])

    def test_notCPIM(self) -> None:
        """
        A SEND that is not CPIM is answered 415 and not shown.
        """
        d = self.b.session().sendMessage("text/plain", b"bare")
        self.assertEqual(self.b.settle(), [])
        self.assertEqual(self.failureResultOf(d).value.code, 415)

    def test_privateFromFocus(self) -> None:
        """
        CPIM To <sip:juliet@example.com>: XMPP gets a private message
        (type chat with the muc#user <x/>) from montague@.../Romeo.
        """
        [message] = self.b.fromFocus("Psst", to="sip:juliet@example.com")
        self.assertEqual(
            (message["from"], message["to"], message["type"]),
            (f"{ROOM}/Romeo", JULIET, "chat"),
        )
        self.assertEqual(body(message), "Psst")
        self.assertEqual(len(list(message.elements(MUC_USER, "x"))), 1)

    def test_privateToFocus(self) -> None:
        """
        XMPP sends a private message to Romeo: the focus gets a SEND with
        CPIM To <sip:montague@chat.example.org;gr=Romeo> (RFC 7702 5.5.2).
        """
        self.b.fromFocus("hi")
        out = self.b.receive(
            f"<message from='{JULIET}' to='{ROOM}/Romeo' type='chat' id='p1'>"
            "<body>Only to you</body></message>"
        )
        self.assertEqual(out, [])
        cpim = self.b.received()[-1]
        self.assertEqual(cpim.toAddresses, (CPIMAddress(f"{FOCUS};gr=Romeo"),))
        self.assertEqual(cpim.body, b"Only to you")

    def test_privateMessagesTokenDropped(self) -> None:
        """
        R-094, RFC 7701 section 8: the focus re-offers (RFC 4975 section
        8.4, R-156) without C{private-messages}: answered 200, and the
        XMPP user's next private message gets an error instead of a SEND.
        """
        self.b.fromFocus("hi")
        session = self.b.focus.session
        assert session.dialog is not None
        offer = reoffer(
            session.dialog.localBody,
            (b"a=chatroom:nickname private-messages", b"a=chatroom:nickname"),
        )
        d = session.dialog.sendRequest("INVITE", body=offer, contentType="application/sdp")
        self.b.settle()
        self.assertEqual(self.successResultOf(d).status, 200)
        sent = len(self.b.focus.messages)
        [error] = self.b.receive(
            f"<message from='{JULIET}' to='{ROOM}/Romeo' type='chat' id='p1'>"
            "<body>Only to you</body></message>"
        )
        self.assertEqual(error["type"], "error")
        self.assertIn("feature-not-implemented", error.toXml())
        self.assertEqual(len(self.b.focus.messages), sent)

    def test_nickChange(self) -> None:
        """
        XMPP asks for a new nick: NICKNAME "CapuletGirl", then the 303
        pair.
        """
        out = self.b.receive(f"<presence from='{JULIET}' to='{ROOM}/CapuletGirl'/>")
        self.assertEqual(self.b.focus.nicknames, ["JuliC", "CapuletGirl"])
        self.assertIn(303, statuses(out[0]))
        self.assertEqual(out[1]["from"], f"{ROOM}/CapuletGirl")


class ExitTests(SynchronousTestCase):
    """
    SPEC C.1.7: leaving and being removed.
    """

    def setUp(self) -> None:
        self.b = Bridge(self)
        self.b.join()

    def test_leave(self) -> None:
        """
        XMPP sends unavailable: the gateway sends BYE, XMPP gets the
        unavailable self-presence with 110, the room is no longer hosted.
        """
        [out] = self.b.receive(
            f"<presence from='{JULIET}' to='{ROOM}/JuliC' type='unavailable'/>"
        )
        self.assertEqual(out["type"], "unavailable")
        self.assertIn(110, statuses(out))
        self.assertEqual(len(self.b.net.requests("BYE", "192.0.2.1")), 1)
        [ended] = self.b.focus.ended
        self.assertIs(ended.cause, EndCause.REMOTE_BYE)
        self.assertEqual(self.b.bridge.participants, {})
        self.assertIsNone(self.b.rooms.getRoom(ROOM))

    def test_leaveStatusIsReason(self) -> None:
        """
        The exit C{<status/>} text travels as the BYE's Reason text (RFC
        3326), so the focus can show why the user left.
        """
        self.b.receive(
            f"<presence from='{JULIET}' to='{ROOM}/JuliC' type='unavailable'>"
            "<status>Good night, good night!</status></presence>"
        )
        [bye] = self.b.net.requests("BYE", "192.0.2.1")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.text, "Good night, good night!")

    def test_focusBye(self) -> None:
        """
        The focus sends BYE: XMPP gets an unavailable self-presence with
        110 and 307 (E.5, R-218).
        """
        self.b.session().end()
        [out] = self.b.settle()
        self.assertEqual((out["type"], out["to"]), ("unavailable", JULIET))
        self.assertEqual(statuses(out), {110, 307})
        self.assertEqual(self.b.bridge.participants, {})

    def test_focusByeReason(self) -> None:
        """
        The focus's BYE Reason decides the status (SPEC E.5, R-218):
        cause 503 (shut down) -> 332, 500 (failed) -> 333.
        """
        for cause, code in ((503, 332), (500, 333)):
            b = Bridge(self)
            b.join()
            b.session().end("Bye", status=cause)
            [out] = b.settle()
            self.assertEqual(statuses(out), {110, code})

    def test_msrpFailure(self) -> None:
        """
        The MSRP connection fails: after the BYE grace, 110 and 333.
        """
        for link in self.b.net.links:
            link.close()
        self.b.net.clock.advance(3)
        self.b.net.pump()
        presences = [
            s for s in self.b.manager.output if s.getAttribute("type") == "unavailable"
        ]
        [out] = presences
        self.assertEqual(statuses(out), {110, 333})


def conference(users: list[tuple[str, str]], subject: str | None = None) -> ConferenceInfo:
    """
    A focus's full document: (entity, display-text) per user (RFC 7702
    section 5.4, Example 9's shape).
    """
    return ConferenceInfo(
        entity=FOCUS,
        description=ConferenceDescription(subject=subject),
        users=Users(tuple(User(entity=e, displayText=d) for e, d in users)),
    )


ROMEO = ("sip:romeo@example.org", "Romeo")
SELF = ("sip:juliet@example.com", "JuliC")


class RosterTests(SynchronousTestCase):
    """
    RFC 7702 sections 5.3-5.4 (F9-F15): the focus's conference-info is
    the MUC roster, before the self-presence; partial changes follow.
    """

    def presences(self, out: list[domish.Element]) -> list[tuple[str, str, str | None]]:
        return [
            (p["from"].split("/", 1)[1], p.getAttribute("type") or "available", None)
            for p in out
            if p.name == "presence"
        ]

    def test_rosterBeforeSelf(self) -> None:
        """
        Joining: SUBSCRIBE Event conference to the focus; Romeo's presence
        (role participant, affiliation none, R-017), then the self-presence
        with 110 (R-184), then the subject as a message without body
        (R-019); the user itself is not shown twice.
        """
        b = Bridge(self, conference([ROMEO, SELF], subject="Today in Verona"))
        out = b.join()
        [subscribe] = b.net.requests("SUBSCRIBE", "192.0.2.1")
        self.assertEqual(subscribe.header("Event"), "conference")
        self.assertEqual(str(subscribe.uri), FOCUS)
        names = [(s.name, s["from"]) for s in out]
        self.assertEqual(
            names,
            [
                ("presence", f"{ROOM}/Romeo"),
                ("presence", f"{ROOM}/JuliC"),
                ("message", ROOM),
            ],
        )
        [x] = out[0].elements(MUC_USER, "x")
        [item] = x.elements(MUC_USER, "item")
        self.assertEqual((item["role"], item["affiliation"]), ("participant", "none"))
        self.assertIn(110, statuses(out[1]))
        [subject] = [c for c in out[2].elements() if c.name == "subject"]
        self.assertEqual(str(subject), "Today in Verona")

    def test_partial(self) -> None:
        """
        Later documents: a newcomer -> its presence; a leaver ->
        unavailable; a new display-text for the same entity -> the 303
        pair (R-193).
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        b.join()
        assert b.notifier is not None
        b.notifier.update(conference([ROMEO, SELF, ("sip:mercutio@example.org", "Mercutio")]))
        out = b.settle()
        self.assertEqual([(p.name, p["from"], p.getAttribute("type")) for p in out],
                         [("presence", f"{ROOM}/Mercutio", None)])
        b.notifier.update(conference([("sip:romeo@example.org", "Montague"), SELF]))
        out = b.settle()
        shown = [(p["from"], p.getAttribute("type"), statuses(p)) for p in out]
        self.assertIn((f"{ROOM}/Romeo", "unavailable", {303}), shown)
        self.assertIn((f"{ROOM}/Montague", None, set()), shown)
        self.assertIn((f"{ROOM}/Mercutio", "unavailable", set()), shown)

    def removed(self, method: DisconnectionMethod | None) -> ConferenceInfo:
        """
        The room with Romeo and, as the focus shows a user it is removing
        (RFC 4575 section 5.7.3), Mercutio's endpoint disconnected with
        C{method}.
        """
        gone = User(
            entity="sip:mercutio@example.org",
            displayText="Mercutio",
            endpoints=(
                Endpoint(
                    "sip:mercutio@192.0.2.9",
                    status=EndpointStatus.DISCONNECTED,
                    disconnectionMethod=method,
                ),
            ),
        )
        return ConferenceInfo(
            entity=FOCUS,
            description=ConferenceDescription(),
            users=Users((User(entity=ROMEO[0], displayText=ROMEO[1]), gone,
                         User(entity=SELF[0], displayText=SELF[1]))),
        )

    def test_removedByFocus(self) -> None:
        """
        SPEC E.5 (Gateway A): the focus kicks Mercutio (his endpoint
        C{disconnected}, disconnection-method C{booted}, then his user
        deleted): the XMPP user sees him leave with 307 at once, and the
        deletion shows nothing more; C{failed} is 333; C{departed} a plain
        leave.
        """
        for method, codes in (
            (DisconnectionMethod.BOOTED, {307}),
            (DisconnectionMethod.FAILED, {333}),
            (DisconnectionMethod.DEPARTED, set()),
        ):
            b = Bridge(self, conference([ROMEO, ("sip:mercutio@example.org", "Mercutio"), SELF]))
            b.join()
            assert b.notifier is not None
            b.notifier.update(self.removed(method))
            out = b.settle()
            shown = [(p["from"], p.getAttribute("type"), statuses(p)) for p in out]
            self.assertEqual(shown, [(f"{ROOM}/Mercutio", "unavailable", codes)], method)
            b.notifier.update(conference([ROMEO, SELF]))
            self.assertEqual(
                [p for p in b.settle() if p.name == "presence"], [], method
            )

    def test_deletedAfterBooted(self) -> None:
        """
        A focus that sends the disconnection-method and the deletion in one
        change still gets 307: the method is read from the state before.
        """
        b = Bridge(self, conference([ROMEO, ("sip:mercutio@example.org", "Mercutio"), SELF]))
        b.join()
        mirror = next(iter(b.bridge.mirrors.values()))
        state = self.removed(DisconnectionMethod.BOOTED)
        mirror.state = state
        before = len(b.manager.output)
        mirror._stateReceived(conference([ROMEO, SELF]), None)
        out = b.manager.output[before:]
        shown = [(p["from"], p.getAttribute("type"), statuses(p)) for p in out]
        self.assertEqual(shown, [(f"{ROOM}/Mercutio", "unavailable", {307})])

    def test_caseOnlyNickChange(self) -> None:
        """
        A display-text that changes only in case (Romeo -> ROMEO) is a nick
        change (303 pair), not ignored.
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        b.join()
        assert b.notifier is not None
        b.notifier.update(conference([("sip:romeo@example.org", "ROMEO"), SELF]))
        out = b.settle()
        shown = [(p["from"], p.getAttribute("type"), statuses(p)) for p in out]
        self.assertIn((f"{ROOM}/Romeo", "unavailable", {303}), shown)
        self.assertIn((f"{ROOM}/ROMEO", None, set()), shown)

    def test_aorFrom(self) -> None:
        """
        A switch that forwards the sender's AOR as CPIM From (RFC 7701
        section 6.1): the nick comes from the roster, so Romeo is not
        shown twice.
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        b.join()
        out = b.fromFocus("Hello", sender="sip:romeo@example.org")
        [message] = out
        self.assertEqual(message["from"], f"{ROOM}/Romeo")
        self.assertEqual([p for p in out if p.name == "presence"], [])

    def test_aorFromOwnUser(self) -> None:
        """
        A switch forwarding AORs sends the nurse's message (From
        <sip:nurse@example.com>, our XMPP user Angelica) on juliet's leg:
        it is not shown again, and no occupant "nurse" is invented.
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        b.join()
        b.join(nick="Angelica", sender="nurse@example.com/kitchen")
        cpim = CPIMMessage.build(
            contentType="text/plain",
            body=b"Madam!",
            fromAddress=CPIMAddress("sip:nurse@example.com"),
            toAddresses=(CPIMAddress(FOCUS),),
            dateTime=NOW,
        )
        before = len(b.manager.output)
        b.focus.started[0].sendMessage("message/cpim", cpim.toBytes())
        b.net.pump()
        out = b.manager.output[before:]
        self.assertEqual(out, [])
        room = b.rooms.getRoom(ROOM)
        assert room is not None
        self.assertNotIn("nurse", room)

    def test_realAddress(self) -> None:
        """
        R-016, R-187: associated-aors give the real JID; the room becomes
        non-anonymous (status 100 on joining) and shows it.
        """
        document = ConferenceInfo(
            entity=FOCUS,
            description=ConferenceDescription(),
            users=Users(
                (
                    User(
                        entity="sip:montague@chat.example.org;gr=Romeo",
                        displayText="Romeo",
                        associatedAORs=URIs((URIEntry("sip:romeo@example.org"),)),
                    ),
                    User(entity="sip:juliet@example.com", displayText="JuliC"),
                )
            ),
        )
        b = Bridge(self, document)
        out = b.join()
        [x] = out[0].elements(MUC_USER, "x")
        [item] = x.elements(MUC_USER, "item")
        self.assertEqual(item.getAttribute("jid"), "romeo@example.org")
        self.assertIn(100, statuses(out[1]))

    def test_twoUsersOneCopy(self) -> None:
        """
        Two XMPP users in one SIP room: one conference subscription; the
        focus sends a message on both chats; each XMPP session gets it
        once.
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        b.join()
        b.join(nick="Nurse", sender="nurse@example.com/kitchen")
        self.assertEqual(len(b.net.requests("INVITE")), 2)
        self.assertEqual(len(b.net.requests("SUBSCRIBE", "192.0.2.1")), 1)
        cpim = CPIMMessage.build(
            contentType="text/plain",
            body=b"Good morrow",
            fromAddress=CPIMAddress(f"{FOCUS};gr=Romeo"),
            toAddresses=(CPIMAddress(FOCUS),),
            dateTime=NOW,
        )
        before = len(b.manager.output)
        for session in b.focus.started:
            session.sendMessage("message/cpim", cpim.toBytes())
        b.net.pump()
        out = [m for m in b.manager.output[before:] if m.name == "message"]
        self.assertEqual(
            sorted(m["to"] for m in out), ["juliet@example.com/balcony", "nurse@example.com/kitchen"]
        )


class InvitationTests(SynchronousTestCase):
    """
    RFC 7702 section 5.7 (F27-F30): a mediated invitation becomes a REFER
    to the focus.
    """

    def invite(self, b: Bridge, to: str = "benvolio@example.org") -> list[domish.Element]:
        return b.receive(
            f"<message from='{JULIET}' to='{ROOM}'><x xmlns='{MUC_USER}'>"
            f"<invite to='{to}'/></x></message>"
        )

    def test_refer(self) -> None:
        """
        Juliet invites benvolio@example.org: REFER in her INVITE dialog
        (same Call-ID), Refer-To <sip:benvolio@example.org> (RFC 7247
        section 6.5), Refer-Sub false; nothing goes back to Juliet.
        """
        b = Bridge(self)
        b.join()
        out = self.invite(b)
        self.assertEqual(out, [])
        [refer] = b.net.requests("REFER", "192.0.2.1")
        [invite] = b.net.requests("INVITE", "192.0.2.1")
        self.assertEqual(refer.header("Call-ID"), invite.header("Call-ID"))
        self.assertEqual(refer.header("Refer-To"), "<sip:benvolio@example.org>")
        self.assertEqual(refer.header("Refer-Sub"), "false")
        [incoming] = b.refers
        self.assertEqual(str(incoming.referTo.uri), "sip:benvolio@example.org")

    def test_refused(self) -> None:
        """
        The focus refuses the REFER with 403: Juliet gets forbidden (E.2).
        """
        b = Bridge(self)
        b.join()
        b.referStatus = 403
        [reply] = self.invite(b)
        self.assertEqual(reply["type"], "error")
        self.assertEqual(error.exceptionFromStanza(reply).condition, "forbidden")

    def test_notAnOccupant(self) -> None:
        """
        An invitation from someone not in the room: not-acceptable, no
        REFER.
        """
        b = Bridge(self)
        [reply] = b.receive(
            f"<message from='{JULIET}' to='{ROOM}'><x xmlns='{MUC_USER}'>"
            "<invite to='benvolio@example.org'/></x></message>"
        )
        self.assertEqual(reply["type"], "error")
        self.assertEqual(b.net.requests("REFER"), [])


class LinkLossTests(SynchronousTestCase):
    """
    The room domain's XMPP link is lost: no SIP leg is left behind.
    """

    def test_legsEnded(self) -> None:
        """
        Every chat ends with BYE, Reason cause 503; the rooms go.
        """
        b = Bridge(self)
        b.join()
        b.bridge.linkDown(ROOM_DOMAIN, Failure(ConnectionDone()))
        b.net.pump()
        [bye] = b.net.requests("BYE", "192.0.2.1")
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)
        self.assertEqual(b.bridge.participants, {})
        self.assertIsNone(b.rooms.getRoom(ROOM))

    def test_otherDomain(self) -> None:
        """
        Another link's loss changes nothing here.
        """
        b = Bridge(self)
        b.join()
        b.bridge.linkDown("sip.example", Failure(ConnectionDone()))
        b.net.pump()
        self.assertEqual(b.net.requests("BYE"), [])


class HistoryTests(SynchronousTestCase):
    """
    SPEC C.1.3: what the focus sends before the join completed is history.
    """

    def test_beforeSelfPresence(self) -> None:
        """
        The focus replays a message while the gateway still waits for its
        conference-info: the XMPP user gets it after the 110
        self-presence, with a XEP-0203 delay of the CPIM DateTime, even
        though it is recent.
        """
        b = Bridge(self, conference([ROMEO, SELF]))
        pending: list[Deferred[int | None]] = []

        def authorize(request: object) -> Deferred[int | None]:
            d: Deferred[int | None] = Deferred()
            pending.append(d)
            return d

        [package] = b.focusEvents.packages.values()
        package.authorize = authorize  # type: ignore[method-assign]
        out = b.join()
        self.assertEqual(out, [])
        self.assertEqual(len(pending), 1)
        cpim = CPIMMessage.build(
            contentType="text/plain",
            body=b"Earlier words",
            fromAddress=CPIMAddress(f"{FOCUS};gr=Romeo"),
            toAddresses=(CPIMAddress(FOCUS),),
            dateTime=NOW,
        )
        b.session().sendMessage("message/cpim", cpim.toBytes())
        b.net.pump()
        pending[0].callback(None)
        out = b.settle()
        kinds = [(s.name, statuses(s)) for s in out]
        self.assertEqual(kinds[1], ("presence", {110}))
        [history] = [s for s in out if s.name == "message" and body(s) == "Earlier words"]
        self.assertGreater(out.index(history), 1)
        [delay] = [c for c in history.elements() if c.name == "delay"]
        self.assertEqual(delay["stamp"], "2015-10-15T18:30:00Z")


class DialOutTests(SynchronousTestCase):
    """
    RFC 4579 section 5.5 seen from the gateway: the focus INVITEs an XMPP
    user (after someone's REFER); the user gets a MUC invitation and its
    join answers that INVITE.
    """

    def setUp(self) -> None:
        self.b = Bridge(self)
        self.b.net.a.acceptor.offers = self.b.bridge
        ua = self.b.net.b.ua
        ua.settings = dataclasses.replace(
            ua.settings,
            outboundProxy=SIPURI("sip", HOST_A, port=5060, parameters=(("lr", None),)),
        )

    def dialOut(self) -> Deferred[ChatSession]:
        """
        The focus INVITEs sip:juliet@example.com, Referred-By Romeo.
        """
        d = self.b.net.b.initiator.startChat(
            SIPURI.fromString("sip:juliet@example.com"),
            parseNameAddr(f"<{FOCUS}>"),
            self.b.focus,
            acceptTypes=("message/cpim",),
            chatroom=("nickname", "private-messages"),
            contact=parseNameAddr("<sip:montague@192.0.2.2>;isfocus"),
            headers=[("Referred-By", "<sip:romeo@example.org>")],
        )
        d.addErrback(lambda reason: reason.value)
        return d

    def finals(self) -> list[int]:
        return [r.status for r in self.b.net.responses("INVITE") if r.status >= 200]

    def test_invitationThenJoin(self) -> None:
        """
        The XMPP user gets a mediated invitation from the room JID naming
        romeo@example.org; the INVITE rings (180); the user's join
        answers it (200, no INVITE of our own) and completes with 110.
        """
        before = len(self.b.manager.output)
        d = self.dialOut()
        self.b.net.pump()
        [invitation] = self.b.manager.output[before:]
        self.assertEqual((invitation["from"], invitation["to"]), (ROOM, "juliet@example.com"))
        [x] = invitation.elements(MUC_USER, "x")
        [invite] = x.elements(MUC_USER, "invite")
        self.assertEqual(invite["from"], "romeo@example.org")
        self.assertEqual(self.finals(), [])
        self.assertIn(180, [r.status for r in self.b.net.responses("INVITE")])
        out = self.b.join()
        self.assertEqual(self.finals(), [200])
        self.assertEqual(len(self.b.net.requests("INVITE")), 1)
        self.assertIn(110, statuses(out[-2]))
        self.assertIsInstance(self.successResultOf(d), ChatSession)

    def test_declined(self) -> None:
        """
        The invitee declines: 603.
        """
        d = self.dialOut()
        self.b.net.pump()
        self.b.receive(
            f"<message from='{JULIET}' to='{ROOM}'><x xmlns='{MUC_USER}'>"
            "<decline><reason>Not now</reason></decline></x></message>"
        )
        self.assertEqual(self.finals(), [603])
        self.successResultOf(d)

    def test_noJoin(self) -> None:
        """
        No join within the wait: 480.
        """
        d = self.dialOut()
        self.b.net.pump()
        self.b.net.clock.advance(60)
        self.b.net.pump()
        self.assertEqual(self.finals(), [480])
        self.successResultOf(d)


class FiftyUsersTests(SynchronousTestCase):
    """
    Fifty XMPP users in one SIP room: fifty legs, one subscription, every
    message of the focus once per session.
    """

    def test_fifty(self) -> None:
        """
        50 users join (50 INVITEs, one SUBSCRIBE); the focus sends one
        message on each of the 50 chats; every user gets it exactly once,
        and a second message likewise.
        """
        b = Bridge(self, conference([ROMEO]))
        users = [f"user{n}@example.com/r" for n in range(50)]
        for n, user in enumerate(users):
            out = b.join(nick=f"U{n}", sender=user)
            self.assertIn(110, statuses([s for s in out if s["to"] == user][-2]))
        self.assertEqual(len(b.net.requests("INVITE")), 50)
        self.assertEqual(len(b.net.requests("SUBSCRIBE", "192.0.2.1")), 1)
        for text in ("first", "second"):
            cpim = CPIMMessage.build(
                contentType="text/plain",
                body=text.encode(),
                fromAddress=CPIMAddress(f"{FOCUS};gr=Romeo"),
                toAddresses=(CPIMAddress(FOCUS),),
                dateTime=NOW,
            )
            before = len(b.manager.output)
            for session in b.focus.started:
                session.sendMessage("message/cpim", cpim.toBytes())
            b.net.pump()
            out = [m for m in b.manager.output[before:] if m.name == "message"]
            self.assertEqual(sorted(m["to"] for m in out), sorted(users))
            self.assertEqual({body(m) for m in out}, {text})
