# -*- test-case-name: tests.focus.test_focus -*-
"""
Tests for L{stoxgw.focus.focus}: native rooms end to end on the project's
own SIP and MSRP stacks over fake transports (L{tests.chat.test_session}'s
L{Network}: SIP users on 192.0.2.1, the focus on 192.0.2.2, MSRP chunks of
16 octets, one L{MemoryReactorClock}).  Transcripts: "Alice sends X, Bob
gets Y", compared as bytes where RFC 7701 and RFC 7702 show bytes.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import datetime, timezone
from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.chat.session import (
    AcceptChat,
    ChatSession,
    ChatSessionError,
    EndCause,
    IChatOfferHandler,
    RejectChat,
)
from stoxgw.focus.focus import Focus
from stoxgw.focus.room import RoomPolicy
from stoxgw.focus.routing import ConferenceRouter, OfferRouter, ReferRouter
from stoxgw.formats.conferenceinfo import (
    ConferenceInfo,
    DisconnectionMethod,
    ElementState,
    EndpointStatus,
    JoiningMethod,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.formats.iscomposing import ComposingState
from stoxgw.msrp.session import MSRPSendError
from stoxgw.sip.headers import parseReasons
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import IReferHandler, ReferAgent
from stoxgw.sip.subscription import (
    ClientSubscription,
    ConferencePackage,
    ConferenceWatcher,
    SIPEvents,
)
from stoxgw.sip.uri import NameAddr, SIPURI, contactIsFocus, parseNameAddr
from tests.chat.test_session import (
    HOST_A,
    HOST_B,
    Network,
    Offers,
    Recorder,
    msrpMedia,
    reoffer,
)

FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "fixtures", "formats"
)
DOMAIN = "chat.example"
ROOM = f"sip:room@{DOMAIN}"
WHEN = datetime(2015, 10, 15, 18, 2, 31, tzinfo=timezone.utc)


class Refusals:
    """
    The RFC 7702 section 6 bridge's stand-in behind the routers: refuses
    everything, and remembers what it got.
    """

    def __init__(self) -> None:
        self.offers: list[Any] = []
        self.refers: list[Any] = []

    def chatOffered(self, offer: Any) -> RejectChat:
        """
        Refuse (404), and remember the offer.
        """
        self.offers.append(offer)
        return RejectChat(404)

    def referReceived(self, refer: Any) -> None:
        """
        Refuse (404), and remember the REFER.
        """
        self.refers.append(refer)
        refer.reject(404)


class Rooms:
    """
    SIP users (on host A: any number of sessions, one UA) and the native
    rooms of C{chat.example} (host B, the focus behind the routers, as the
    gateway wires it).
    """

    def __init__(
        self, test: SynchronousTestCase, policy: RoomPolicy | None = None
    ) -> None:
        self.test = test
        self.net = Network()
        ua = self.net.a.ua
        ua.settings = dataclasses.replace(
            ua.settings,
            outboundProxy=SIPURI("sip", HOST_B, port=5060, parameters=(("lr", None),)),
        )
        self.focus = Focus(
            self.net.clock,
            self.net.b.ua,
            self.net.b.endpoint,
            policy or RoomPolicy(DOMAIN, reservedNicks=("admin",)),
        )
        self.bridge = Refusals()
        self.net.b.acceptor.offers = OfferRouter(self.focus, self.bridge)
        self.eventsB = SIPEvents(self.net.b.ua)
        self.eventsB.addPackage(
            ConferenceRouter(self.focus, ConferencePackage(lambda request: None))
        )
        self.referB = ReferAgent(self.eventsB, ReferRouter(self.focus, self.bridge))
        self.eventsA = SIPEvents(self.net.a.ua)
        self.referA = ReferAgent(self.eventsA)
        self.handlers: dict[ChatSession, Recorder] = {}

    def invite(
        self,
        user: str,
        room: str = ROOM,
        chatroom: tuple[str, ...] | None = ("nickname", "private-messages"),
        wrapped: tuple[str, ...] = ("text/plain", "application/im-iscomposing+xml"),
        acceptTypes: tuple[str, ...] = ("message/cpim",),
    ) -> tuple[Deferred[ChatSession], Recorder]:
        """
        C{user} (C{sip:user@example.com}) INVITEs C{room}.
        """
        handler = Recorder()
        d = self.net.a.initiator.startChat(
            SIPURI.fromString(room),
            parseNameAddr(
                f'"{user.title()}" <sip:{user}@example.com>;tag={user}{len(self.handlers)}'
            ),
            handler,
            acceptTypes=acceptTypes,
            acceptWrappedTypes=wrapped,
            chatroom=chatroom,
        )
        self.net.pump()
        return d, handler

    def join(self, user: str, **options: Any) -> ChatSession:
        """
        C{user} joins: the session is ready.
        """
        d, handler = self.invite(user, **options)
        session: ChatSession = self.test.successResultOf(d)
        self.handlers[session] = handler
        return session

    def send(
        self,
        session: ChatSession,
        text: str,
        sender: str | None = None,
        to: tuple[str, ...] = (ROOM,),
        contentType: str = "text/plain",
        dateTime: datetime | None = WHEN,
        **options: Any,
    ) -> Deferred[Any]:
        """
        A CPIM SEND (RFC 7701 section 6.1) from C{session}'s user.
        """
        if sender is None:
            assert session.dialog is not None
            sender = str(session.dialog.localURI.uri)
        body = CPIMMessage.build(
            contentType=contentType,
            body=text.encode("utf-8"),
            fromAddress=CPIMAddress(sender),
            toAddresses=[CPIMAddress(t) for t in to],
            dateTime=dateTime,
        ).toBytes()
        return self.raw(session, body, **options)

    def raw(
        self,
        session: ChatSession,
        body: bytes,
        contentType: str = "message/cpim",
        **options: Any,
    ) -> Deferred[Any]:
        """
        SEND C{body} as it is (C{contentType} the outer type).
        """
        d = session.sendMessage(contentType, body, **options)
        self.net.pump()
        return d

    def refused(self, d: Deferred[Any]) -> int:
        """
        The MSRP status a SEND or NICKNAME was refused with.
        """
        code: int = self.test.failureResultOf(d, MSRPSendError).value.code
        return code

    def nick(self, session: ChatSession, nickname: str) -> int:
        """
        NICKNAME; its status.
        """
        d = session.sendNickname(nickname)
        self.net.pump()
        result: list[int] = []
        d.addCallbacks(result.append, lambda f: result.append(f.value.code))
        return result[0]

    def received(self, session: ChatSession) -> list[bytes]:
        """
        The CPIM bodies C{session} got (and forget them).
        """
        handler = self.handlers[session]
        bodies = [m.body for m in handler.messages]
        handler.messages.clear()
        return bodies

    def texts(self, session: ChatSession) -> list[tuple[str, str, str]]:
        """
        What C{session} got: (CPIM From, CPIM To, text) each.
        """
        out = []
        for body in self.received(session):
            cpim = CPIMMessage.parse(body)
            assert cpim.fromAddress is not None
            out.append(
                (cpim.fromAddress.uri, cpim.toAddresses[0].uri, cpim.body.decode())
            )
        return out

    def notifies(self) -> list[ConferenceInfo]:
        """
        The conference documents the focus sent, in order.
        """
        return [
            ConferenceInfo.parse(r.body)
            for r in self.net.requests("NOTIFY", HOST_B)
            if r.header("Event") == "conference" and r.body
        ]

    def subscribe(self, user: str, room: str = ROOM) -> ClientSubscription:
        """
        C{user} subscribes to the room's conference package, out of dialog.
        """
        subscription = self.eventsA.subscribe(
            SIPURI.fromString(room),
            "conference",
            600,
            accept=("application/conference-info+xml",),
            handler=ConferenceWatcher(),
            fromAddress=NameAddr(SIPURI.fromString(f"sip:{user}@example.com")),
        )
        self.net.pump()
        return subscription


class JoiningTests(SynchronousTestCase):
    """
    RFC 7701 section 5: INVITE to a room.
    """

    def test_interfaces(self) -> None:
        """
        L{Focus} and the routers provide their interfaces.
        """
        rooms = Rooms(self)
        self.assertTrue(verifyObject(IChatOfferHandler, rooms.focus))
        self.assertTrue(verifyObject(IReferHandler, rooms.focus))

    def test_answer(self) -> None:
        """
        The first INVITE creates the room; the 200 has an C{isfocus}
        Contact, C{accept-types:message/cpim}, the room's wrapped types and
        C{a=chatroom:nickname private-messages} (RFC 7701 section 5.2).
        """
        rooms = Rooms(self)
        rooms.join("alice")
        [ok] = [r for r in rooms.net.responses("INVITE") if r.status == 200]
        contact = ok.contact
        assert contact is not None
        self.assertTrue(contact.addresses[0].isFocus)
        self.assertEqual(contact.addresses[0].uri.user, "room")  # type: ignore[union-attr]
        media = msrpMedia(ok)
        self.assertEqual(media.acceptTypes, ("message/cpim",))
        self.assertEqual(
            media.acceptWrappedTypes,
            ("text/plain", "application/im-iscomposing+xml", "*"),
        )
        self.assertEqual(media.chatroom, ("nickname", "private-messages"))
        self.assertEqual(list(rooms.focus.rooms), ["room"])

    def test_roomNamesIgnoreCase(self) -> None:
        """
        C{sip:Room@...} is the same room as C{sip:room@...} (its XMPP room
        JID does not tell them apart either).
        """
        rooms = Rooms(self)
        rooms.join("alice")
        rooms.join("bob", room=f"sip:ROOM@{DOMAIN}")
        self.assertEqual(len(rooms.focus.rooms["room"].listed), 2)

    def test_offerWithoutCPIM(self) -> None:
        """
        An offer that does not accept C{message/cpim} gets 488 and creates
        no room (RFC 7701 section 5.2, R-053).
        """
        rooms = Rooms(self)
        d, _ = rooms.invite("alice", acceptTypes=("text/plain",))
        self.assertEqual(self.failureResultOf(d, ChatSessionError).value.status, 488)
        self.assertEqual(rooms.focus.rooms, {})

    def test_otherDomainsGoToTheBridge(self) -> None:
        """
        An INVITE for another domain is the bridge's (its answer stands).
        """
        rooms = Rooms(self)
        d, _ = rooms.invite("alice", room="sip:room@muc.example")
        self.assertEqual(self.failureResultOf(d, ChatSessionError).value.status, 404)
        self.assertEqual(len(rooms.bridge.offers), 1)
        self.assertEqual(rooms.focus.rooms, {})

    def test_allowedCreators(self) -> None:
        """
        Only allowed creators create rooms (403 for others); anyone may
        then join the room.
        """
        rooms = Rooms(self, RoomPolicy(DOMAIN, allowedCreators=("carol@example.com",)))
        d, _ = rooms.invite("alice")
        self.assertEqual(self.failureResultOf(d, ChatSessionError).value.status, 403)
        self.assertEqual(rooms.focus.rooms, {})
        rooms.join("carol")
        rooms.join("alice")
        self.assertEqual(len(rooms.focus.rooms["room"].listed), 2)

    def test_full(self) -> None:
        """
        Beyond C{maxOccupants} sessions, 486.
        """
        rooms = Rooms(self, RoomPolicy(DOMAIN, maxOccupants=1))
        rooms.join("alice")
        d, _ = rooms.invite("bob")
        self.assertEqual(self.failureResultOf(d, ChatSessionError).value.status, 486)

    def test_persistentRoom(self) -> None:
        """
        A persistent room exists before anyone joins, with its subject in
        the conference state, and stays when its last member leaves; other
        rooms go with their last member.
        """
        rooms = Rooms(self, RoomPolicy(DOMAIN, persistentRooms=(("lobby", "Welcome"),)))
        self.assertEqual(list(rooms.focus.rooms), ["lobby"])
        lobby = rooms.join("alice", room=f"sip:lobby@{DOMAIN}")
        other = rooms.join("alice", room=ROOM)
        info = rooms.focus.rooms["lobby"].conferenceInfo()
        assert info.description is not None
        self.assertEqual(info.description.subject, "Welcome")
        lobby.end()
        other.end()
        rooms.net.pump()
        self.assertEqual(list(rooms.focus.rooms), ["lobby"])


class MessageTests(SynchronousTestCase):
    """
    RFC 7701 section 6: regular and private messages.
    """

    def setUp(self) -> None:
        """
        Alice and Bob in the room, as Alice and Bob.
        """
        self.rooms = Rooms(self)
        self.alice = self.rooms.join("alice")
        self.bob = self.rooms.join("bob")
        self.assertEqual(self.rooms.nick(self.alice, "Alice"), 200)
        self.assertEqual(self.rooms.nick(self.bob, "Bob"), 200)

    def test_regularMessage(self) -> None:
        """
        Alice's SEND To the room reaches Bob as a fresh CPIM wrapper: From
        Alice's in-room address, To the room, her DateTime, her other
        headers and content octet for octet; nothing comes back to Alice.
        """
        body = (
            b"From: <sip:alice@example.com>\r\n"
            b"To: <sip:room@chat.example>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z\r\n"
            b"Subject: hi\r\n"
            b"\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-ID: <1234@example.com>\r\n"
            b"\r\n"
            b"Hello guys, how are you today?"
        )
        self.rooms.raw(self.alice, body)
        self.assertEqual(
            self.rooms.received(self.bob),
            [
                b"From: Alice <sip:room@chat.example;gr=Alice>\r\n"
                b"To: <sip:room@chat.example>\r\n"
                b"DateTime: 2015-10-15T18:02:31Z\r\n"
                b"Subject: hi\r\n"
                b"\r\n"
                b"Content-Type: text/plain; charset=utf-8\r\n"
                b"Content-ID: <1234@example.com>\r\n"
                b"\r\n"
                b"Hello guys, how are you today?"
            ],
        )
        self.assertEqual(self.rooms.received(self.alice), [])

    def test_rfc7701Example(self) -> None:
        """
        The SEND of RFC 7701 section 9.3 (F1: no blank line before the
        Content-Type, a C{transport} parameter on the room URI) is taken
        and relayed.
        """
        with open(os.path.join(FIXTURES, "rfc7701-section9.3-F1.cpim"), "rb") as f:
            body = f.read()
        body = body.replace(
            b"chatroom22@chat.example.com;transport=tcp", b"room@chat.example"
        )
        body = body.replace(b"alice@atlanta.example.com", b"alice@example.com")
        self.successResultOf(self.rooms.raw(self.alice, body))
        [(sender, to, text)] = self.rooms.texts(self.bob)
        self.assertEqual(
            (sender, to, text),
            (f"{ROOM};gr=Alice", ROOM, "Hello guys, how are you today?"),
        )

    def test_withoutNickname(self) -> None:
        """
        A sender without a nickname is named by its AOR.
        """
        carol = self.rooms.join("carol")
        self.rooms.send(carol, "hi")
        self.assertEqual(
            self.rooms.texts(self.bob), [("sip:carol@example.com", ROOM, "hi")]
        )

    def test_everySession(self) -> None:
        """
        Each session of a user gets the message (R-069), the sending one
        excepted: Alice's second device sees what she said.
        """
        second = self.rooms.join("alice")
        self.rooms.send(self.alice, "hello")
        self.assertEqual(len(self.rooms.received(second)), 1)
        self.assertEqual(len(self.rooms.received(self.bob)), 1)
        self.assertEqual(self.rooms.received(self.alice), [])

    def test_chunkedRelayedWhole(self) -> None:
        """
        A message sent in many chunks (16 octets each here) reaches the
        others whole (RFC 7701 section 9.5).
        """
        text = "O Romeo, Romeo! wherefore art thou Romeo? " * 10
        self.successResultOf(self.rooms.send(self.alice, text))
        [(_, _, got)] = self.rooms.texts(self.bob)
        self.assertEqual(got, text)

    def test_successReport(self) -> None:
        """
        A sender asking for a success REPORT gets it from the switch, the
        receiving endpoint of its SEND (RFC 7701 section 6.3).
        """
        result = self.successResultOf(
            self.rooms.send(self.alice, "hi", successReport=True)
        )
        self.assertTrue(result.successReported)

    def test_wrappedTypesHonoured(self) -> None:
        """
        A session whose C{accept-wrapped-types} exclude a type does not get
        it (R-066); the others do.
        """
        plain = self.rooms.join("carol", wrapped=("text/plain",))
        self.rooms.send(self.alice, "<b>hi</b>", contentType="text/html")
        self.assertEqual(self.rooms.received(plain), [])
        self.assertEqual(len(self.rooms.received(self.bob)), 0)
        html = self.rooms.join("dave", wrapped=("text/*",))
        self.rooms.send(self.alice, "<b>hi</b>", contentType="text/html")
        # the first one from the history, then the new one
        self.assertEqual(len(self.rooms.received(html)), 2)

    def test_isComposing(self) -> None:
        """
        An isComposing indication (RFC 3994) is relayed like a message, to
        the sessions that take it, and never kept in the history.
        """
        plain = self.rooms.join("carol", wrapped=("text/plain",))
        document = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            b"<state>active</state><contenttype>text/plain</contenttype></isComposing>"
        )
        body = CPIMMessage.build(
            contentType="application/im-iscomposing+xml",
            body=document,
            fromAddress=CPIMAddress("sip:alice@example.com"),
            toAddresses=[CPIMAddress(ROOM)],
            dateTime=WHEN,
        ).toBytes()
        self.successResultOf(self.rooms.raw(self.alice, body))
        [got] = self.rooms.received(self.bob)
        self.assertTrue(got.endswith(document))
        self.assertEqual(self.rooms.received(plain), [])
        self.assertEqual(self.rooms.focus.rooms["room"].model.history, ())
        self.assertEqual(ComposingState.ACTIVE.value, "active")

    def test_privateByNickname(self) -> None:
        """
        A SEND To C{room;gr=Bob} reaches Bob alone, To his AOR, From
        Alice's in-room address (RFC 7702 Example 18).
        """
        carol = self.rooms.join("carol")
        self.successResultOf(
            self.rooms.send(self.alice, "psst", to=(f"{ROOM};gr=Bob",))
        )
        self.assertEqual(
            self.rooms.texts(self.bob),
            [(f"{ROOM};gr=Alice", "sip:bob@example.com", "psst")],
        )
        self.assertEqual(self.rooms.received(carol), [])
        self.assertEqual(self.rooms.focus.rooms["room"].model.history, ())

    def test_privateByAOR(self) -> None:
        """
        A SEND To Bob's AOR (as learnt from the conference package) is
        private to him too.
        """
        self.successResultOf(
            self.rooms.send(self.alice, "psst", to=("sip:bob@example.com",))
        )
        self.assertEqual(len(self.rooms.received(self.bob)), 1)

    def test_notCPIM(self) -> None:
        """
        A SEND that is not C{message/cpim} gets 415 (RFC 7701 section 6.3).
        """
        d = self.rooms.raw(self.alice, b"hello", contentType="text/plain")
        self.assertEqual(self.rooms.refused(d), 415)
        self.assertEqual(self.rooms.received(self.bob), [])

    def test_twoTo(self) -> None:
        """
        Two CPIM To headers: 403 (RFC 7701 sections 6.1, 6.2).
        """
        d = self.rooms.send(self.alice, "hi", to=(ROOM, "sip:bob@example.com"))
        self.assertEqual(self.rooms.refused(d), 403)
        self.assertEqual(self.rooms.received(self.bob), [])

    def test_foreignFrom(self) -> None:
        """
        A CPIM From that is not the sender's: 403 (RFC 7701 section 6.3);
        its own GRUU, or its in-room address, is fine.
        """
        d = self.rooms.send(self.alice, "hi", sender="sip:bob@example.com")
        self.assertEqual(self.rooms.refused(d), 403)
        d = self.rooms.send(self.alice, "hi", sender=f"{ROOM};gr=Bob")
        self.assertEqual(self.rooms.refused(d), 403)
        self.successResultOf(
            self.rooms.send(self.alice, "hi", sender="sip:alice@example.com;gr=dev1")
        )
        self.successResultOf(
            self.rooms.send(self.alice, "hi", sender=f"{ROOM};gr=alice")
        )
        self.assertEqual(len(self.rooms.received(self.bob)), 2)

    def test_unknownRecipient(self) -> None:
        """
        A private message to nobody in the room: 404 (RFC 7701 section 6.2).
        """
        for to in (f"{ROOM};gr=Nobody", "sip:nobody@example.com"):
            d = self.rooms.send(self.alice, "hi", to=(to,))
            self.assertEqual(self.rooms.refused(d), 404)

    def test_recipientWithoutPrivateMessages(self) -> None:
        """
        A private message to a session that did not declare
        C{private-messages}: 428, and it is not forwarded (RFC 7701
        section 6.2).
        """
        carol = self.rooms.join("carol", chatroom=("nickname",))
        self.assertEqual(self.rooms.nick(carol, "Carol"), 200)
        d = self.rooms.send(self.alice, "hi", to=(f"{ROOM};gr=Carol",))
        self.assertEqual(self.rooms.refused(d), 428)
        self.assertEqual(self.rooms.received(carol), [])

    def test_privateMessagesTokenDropped(self) -> None:
        """
        R-094, RFC 7701 section 8: a member that re-offers (RFC 4975
        section 8.4, R-156) without C{a=chatroom} is answered 200 and
        gets no more private messages: 428, as if it had never declared
        them.
        """
        carol = self.rooms.join("carol")
        self.assertEqual(self.rooms.nick(carol, "Carol"), 200)
        assert carol.dialog is not None
        offer = reoffer(
            carol.dialog.localBody, (b"a=chatroom:nickname private-messages\r\n", b"")
        )
        d = carol.dialog.sendRequest("INVITE", body=offer, contentType="application/sdp")
        self.rooms.net.pump()
        self.assertEqual(self.successResultOf(d).status, 200)
        d = self.rooms.send(self.alice, "hi", to=(f"{ROOM};gr=Carol",))
        self.assertEqual(self.rooms.refused(d), 428)
        self.assertEqual(self.rooms.received(carol), [])

    def test_malformedCPIM(self) -> None:
        """
        A CPIM body that does not parse, or without To: 400.
        """
        d = self.rooms.raw(self.alice, b"this is not CPIM")
        self.assertEqual(self.rooms.refused(d), 400)
        d = self.rooms.send(self.alice, "hi", to=())
        self.assertEqual(self.rooms.refused(d), 400)


class NicknameTests(SynchronousTestCase):
    """
    RFC 7701 section 7: NICKNAME.
    """

    def setUp(self) -> None:
        """
        Alice and Bob in the room, as Alice and Bob.
        """
        self.rooms = Rooms(self)
        self.alice = self.rooms.join("alice")
        self.bob = self.rooms.join("bob")

    def test_conflict(self) -> None:
        """
        A nickname another user holds, compared as RFC 7700 says: 425.
        """
        self.assertEqual(self.rooms.nick(self.alice, "Alice"), 200)
        self.assertEqual(self.rooms.nick(self.bob, "alice"), 425)
        self.assertEqual(self.rooms.nick(self.bob, "\uff21lice"), 425)  # fullwidth A

    def test_reserved(self) -> None:
        """
        A reserved word: 425.
        """
        self.assertEqual(self.rooms.nick(self.alice, "Admin"), 425)

    def test_invalid(self) -> None:
        """
        A value RFC 7700 refuses (a private-use character): 424.
        """
        self.assertEqual(self.rooms.nick(self.alice, "al\ue000ice"), 424)

    def test_sameUserOtherDevice(self) -> None:
        """
        The same AOR may use its nickname from a second session (R-085),
        which does not get it without asking (R-089).
        """
        self.assertEqual(self.rooms.nick(self.alice, "Alice"), 200)
        second = self.rooms.join("alice")
        room = self.rooms.focus.rooms["room"]
        [_, member] = room.membersOf("sip:alice@example.com")
        self.assertIsNone(member.nickname)
        self.assertEqual(self.rooms.nick(second, "ALICE"), 200)
        self.assertEqual(member.nickname, "Alice")

    def test_change(self) -> None:
        """
        A new nickname frees the old one once granted (RFC 7701 section
        7.2); a refused one leaves the old one in force.
        """
        self.assertEqual(self.rooms.nick(self.alice, "Alice"), 200)
        self.assertEqual(self.rooms.nick(self.bob, "Bob"), 200)
        self.assertEqual(self.rooms.nick(self.alice, "Bob"), 425)
        self.assertEqual(
            self.rooms.focus.rooms["room"].holderOf("Alice"), "sip:alice@example.com"
        )
        self.assertEqual(self.rooms.nick(self.alice, "Alicia"), 200)
        self.assertEqual(self.rooms.nick(self.bob, "Alice"), 200)

    def test_leavingFreesTheNickname(self) -> None:
        """
        A session that ends frees its nickname.
        """
        self.assertEqual(self.rooms.nick(self.alice, "Alice"), 200)
        self.alice.end()
        self.rooms.net.pump()
        self.assertEqual(self.rooms.nick(self.bob, "Alice"), 200)


class ConferenceTests(SynchronousTestCase):
    """
    The conference event package (RFC 4575): full state, then partial.
    """

    def test_fullThenPartial(self) -> None:
        """
        Alice subscribes: a full document (version 1) with her; Bob joins
        (version 2, partial, his user), takes a nickname (3), leaves in
        two partial documents: his endpoint disconnected as departed (4),
        then his user deleted (5).
        """
        rooms = Rooms(self)
        alice = rooms.join("alice")
        rooms.nick(alice, "Alice")
        subscription = rooms.subscribe("alice")
        self.assertTrue(subscription.established.called)
        # RFC 7702 section 5.3 example 8: the focus's Contact says isfocus.
        [ok] = rooms.net.responses("SUBSCRIBE")
        self.assertTrue(contactIsFocus(ok.header("Contact")))
        bob = rooms.join("bob")
        rooms.nick(bob, "Bob")
        bob.end()
        rooms.net.pump()
        documents = rooms.notifies()
        self.assertEqual([d.version for d in documents], [1, 2, 3, 4, 5])
        self.assertEqual(
            [d.state for d in documents],
            [ElementState.FULL] + [ElementState.PARTIAL] * 4,
        )
        full = documents[0]
        self.assertEqual(full.entity, ROOM)
        [user] = full.userList
        self.assertEqual(
            (user.entity, user.displayText, user.nickname, user.roles),
            ("sip:alice@example.com", "Alice", "Alice", ("participant",)),
        )
        [endpoint] = user.endpoints
        self.assertEqual(endpoint.status, EndpointStatus.CONNECTED)
        self.assertEqual(endpoint.joiningMethod, JoiningMethod.DIALED_IN)
        self.assertEqual([m.type for m in endpoint.media], ["message"])
        [joined] = documents[1].userList
        self.assertEqual(joined.entity, "sip:bob@example.com")
        [named] = documents[2].userList
        self.assertEqual(named.nickname, "Bob")
        [leaving] = documents[3].userList
        [gone] = leaving.endpoints
        self.assertEqual(
            (gone.status, gone.disconnectionMethod),
            (EndpointStatus.DISCONNECTED, DisconnectionMethod.DEPARTED),
        )
        [deleted] = documents[4].userList
        self.assertEqual(
            (deleted.entity, deleted.state),
            ("sip:bob@example.com", ElementState.DELETED),
        )

    def test_insideTheInviteDialog(self) -> None:
        """
        A SUBSCRIBE inside the participant's INVITE dialog is the room's
        too (the focus knows the dialog).
        """
        rooms = Rooms(self)
        alice = rooms.join("alice")
        rooms.eventsA.subscribe(
            None, "conference", 600, dialog=alice.dialog, handler=ConferenceWatcher()
        )
        rooms.net.pump()
        [document] = rooms.notifies()
        self.assertEqual(document.entity, ROOM)

    def test_fetch(self) -> None:
        """
        A fetch (C{Expires: 0}, RFC 6665 section 4.4.3) inside the INVITE
        dialog gets one terminated NOTIFY with the full document.
        """
        rooms = Rooms(self)
        alice = rooms.join("alice")
        rooms.nick(alice, "Alice")
        # (our subscriber side would subscribe again after "timeout": let
        # only the first SUBSCRIBE through)
        subscribes: list[SIPRequest] = []

        def again(message: Any) -> bool:
            if isinstance(message, SIPRequest) and message.method == "SUBSCRIBE":
                subscribes.append(message)
                return len(subscribes) > 1
            return False

        rooms.net.drop = again
        rooms.eventsA.subscribe(
            None, "conference", 0, dialog=alice.dialog, handler=ConferenceWatcher()
        )
        rooms.net.pump()
        [notify] = [
            r
            for r in rooms.net.requests("NOTIFY", HOST_B)
            if r.header("Event") == "conference"
        ]
        self.assertEqual(
            notify.header("Subscription-State"), "terminated;reason=timeout"
        )
        [user] = ConferenceInfo.parse(notify.body).userList
        self.assertEqual(user.nickname, "Alice")

    def test_refused(self) -> None:
        """
        Someone not in the room gets 403, a room that does not exist 404.
        """
        rooms = Rooms(self)
        rooms.join("alice")
        for subscription in (
            rooms.subscribe("mallory"),
            rooms.subscribe("alice", room=f"sip:nothere@{DOMAIN}"),
        ):
            self.failureResultOf(subscription.established)
        self.assertEqual(
            [r.status for r in rooms.net.responses("SUBSCRIBE")], [403, 404]
        )

    def test_roomGoneEndsSubscriptions(self) -> None:
        """
        The last session leaving deletes the room: its subscriptions end
        with C{terminated;reason=noresource}.
        """
        rooms = Rooms(self)
        alice = rooms.join("alice")
        rooms.subscribe("alice")
        alice.end()
        rooms.net.pump()
        last = rooms.net.requests("NOTIFY", HOST_B)[-1]
        self.assertEqual(
            last.header("Subscription-State"), "terminated;reason=noresource"
        )
        self.assertEqual(rooms.focus.rooms, {})


class HistoryTests(SynchronousTestCase):
    """
    History: newcomers get the last messages with their DateTime.
    """

    def test_replay(self) -> None:
        """
        Bob, joining after Alice spoke, gets her last C{historySize}
        messages first, From her in-room address (or AOR), with the
        original DateTime.
        """
        rooms = Rooms(self, RoomPolicy(DOMAIN, historySize=2))
        alice = rooms.join("alice")
        rooms.send(alice, "one", dateTime=WHEN)
        rooms.nick(alice, "Alice")
        rooms.send(alice, "two", dateTime=WHEN)
        rooms.send(alice, "three", dateTime=None)
        bob = rooms.join("bob")
        received = [CPIMMessage.parse(b) for b in rooms.received(bob)]
        self.assertEqual([m.body for m in received], [b"two", b"three"])
        self.assertEqual(received[0].dateTime, WHEN)
        self.assertEqual(
            received[0].fromAddress, CPIMAddress(f"{ROOM};gr=Alice", "Alice")
        )
        self.assertEqual(
            received[1].dateTime, datetime(1970, 1, 1, tzinfo=timezone.utc)
        )

    def test_noHistory(self) -> None:
        """
        C{historySize} 0 keeps nothing.
        """
        rooms = Rooms(self, RoomPolicy(DOMAIN, historySize=0))
        alice = rooms.join("alice")
        rooms.send(alice, "one")
        bob = rooms.join("bob")
        self.assertEqual(rooms.received(bob), [])


class ReferTests(SynchronousTestCase):
    """
    REFER to the room: dial-out (RFC 4579 section 5.5).
    """

    def setUp(self) -> None:
        """
        Alice and Bob in the room, as Alice and Bob.
        """
        self.rooms = Rooms(self)
        self.alice = self.rooms.join("alice")
        self.carol = Recorder()
        self.rooms.net.a.offers.decide = lambda offer: AcceptChat(
            self.carol, acceptTypes=("message/cpim",), chatroom=("nickname",)
        )

    def test_dialOut(self) -> None:
        """
        Alice REFERs (in her dialog) Carol: 202, and the room INVITEs
        Carol From the room URI, with an C{isfocus} Contact, Referred-By
        Alice and the room's offer; Carol is in the room, C{dialed-out},
        and the REFER's subscription ends with C{200 OK}.
        """
        self.rooms.nick(self.alice, "Alice")
        d = self.rooms.referA.refer(
            self.alice.dialog,  # type: ignore[arg-type]
            NameAddr(SIPURI("sip", HOST_A, "carol")),
        )
        self.rooms.net.pump()
        self.successResultOf(d)
        [accepted] = [r for r in self.rooms.net.responses("REFER")]
        self.assertEqual(accepted.status, 202)
        invite = self.rooms.net.requests("INVITE", HOST_B)[-1]
        self.assertEqual(str(invite.uri), f"sip:carol@{HOST_A}")
        self.assertEqual(invite.fromAddress.uri, SIPURI("sip", DOMAIN, "room"))
        assert invite.contact is not None
        self.assertTrue(invite.contact.addresses[0].isFocus)
        self.assertIn("alice@example.com", invite.header("Referred-By") or "")
        self.assertEqual(msrpMedia(invite).chatroom, ("nickname", "private-messages"))
        room = self.rooms.focus.rooms["room"]
        self.assertEqual(
            [m.aor for m in room.listed],
            ["sip:alice@example.com", f"sip:carol@{HOST_A}"],
        )
        [endpoint] = room.conferenceInfo().userList[1].endpoints
        self.assertEqual(endpoint.joiningMethod, JoiningMethod.DIALED_OUT)
        # Carol declared no private-messages in her answer.
        d = self.rooms.send(self.alice, "hi", to=(f"sip:carol@{HOST_A}",))
        self.assertEqual(self.rooms.refused(d), 428)
        self.successResultOf(self.rooms.send(self.alice, "Welcome, Carol"))
        self.assertEqual(
            [m.body.endswith(b"Welcome, Carol") for m in self.carol.messages], [True]
        )
        frags = [
            r.body
            for r in self.rooms.net.requests("NOTIFY", HOST_B)
            if (r.header("Event") or "").startswith("refer")
        ]
        self.assertEqual(frags[-1], b"SIP/2.0 200 OK\r\n")

    def test_dialOutRefused(self) -> None:
        """
        An invitee that refuses: the REFER's subscription ends with its
        status, and nobody was added.
        """
        self.rooms.net.a.offers.decide = lambda offer: RejectChat(486)
        self.rooms.referA.refer(self.alice.dialog, NameAddr(SIPURI("sip", HOST_A, "carol")))  # type: ignore[arg-type]
        self.rooms.net.pump()
        frags = [
            r.body
            for r in self.rooms.net.requests("NOTIFY", HOST_B)
            if (r.header("Event") or "").startswith("refer")
        ]
        self.assertEqual(frags[-1], b"SIP/2.0 486 Busy Here\r\n")
        self.assertEqual(len(self.rooms.focus.rooms["room"].members), 1)

    def test_refused(self) -> None:
        """
        From someone not in the room: 403; method BYE: 403; a URI that is
        not SIP: 416; a room that does not exist: 404.
        """
        refer = self.rooms.referA
        stranger = NameAddr(SIPURI.fromString("sip:mallory@example.com"))
        alice = NameAddr(SIPURI.fromString("sip:alice@example.com"))
        carol = NameAddr(SIPURI("sip", HOST_A, "carol"))
        ds = [
            refer.refer(SIPURI.fromString(ROOM), carol, fromAddress=stranger),
            refer.refer(
                SIPURI.fromString(ROOM),
                NameAddr(SIPURI.fromString(f"sip:carol@{HOST_A};method=BYE")),
                fromAddress=alice,
            ),
            refer.refer(
                SIPURI.fromString(ROOM),
                parseNameAddr("<tel:+15551234>"),
                fromAddress=alice,
            ),
            refer.refer(
                SIPURI.fromString(f"sip:nothere@{DOMAIN}"), carol, fromAddress=alice
            ),
        ]
        self.rooms.net.pump()
        for d in ds:
            d.addErrback(lambda _: None)
        self.assertEqual(
            [r.status for r in self.rooms.net.responses("REFER")], [403, 403, 416, 404]
        )


    def test_outOfDialogFromFocus(self) -> None:
        """
        Alice REFERs Carol outside her dialog, to the room URI: the 202
        comes from the focus (C{isfocus} Contact, RFC 4579 section 5.5,
        RFC 7702 section 5.3 example 8).
        """
        d = self.rooms.referA.refer(
            SIPURI.fromString(ROOM),
            NameAddr(SIPURI("sip", HOST_A, "carol")),
            fromAddress=NameAddr(SIPURI.fromString("sip:alice@example.com")),
        )
        self.rooms.net.pump()
        self.successResultOf(d)
        [accepted] = self.rooms.net.responses("REFER")
        self.assertEqual(accepted.status, 202)
        self.assertTrue(contactIsFocus(accepted.header("Contact")))


class ShutdownTests(SynchronousTestCase):
    """
    L{Focus.shutdown}.
    """

    def test_byeWithReason(self) -> None:
        """
        Every session gets BYE with C{Reason: SIP;cause=503}; the rooms
        are gone; new INVITEs get 503.
        """
        rooms = Rooms(self)
        rooms.join("alice")
        d = rooms.focus.shutdown()
        rooms.net.pump()
        self.successResultOf(d)
        [bye] = rooms.net.requests("BYE", HOST_B)
        [reason] = parseReasons(bye.header("Reason") or "")
        self.assertEqual(reason.cause, 503)
        self.assertEqual(rooms.focus.rooms, {})
        d2, _ = rooms.invite("bob")
        self.assertEqual(self.failureResultOf(d2, ChatSessionError).value.status, 503)

    def test_boundedWait(self) -> None:
        """
        BYEs nobody answers do not hold the shutdown longer than
        L{SHUTDOWN_GRACE}.
        """
        rooms = Rooms(self)
        rooms.join("alice")
        rooms.net.drop = (
            lambda message: isinstance(message, SIPRequest) and message.method == "BYE"
        )
        d = rooms.focus.shutdown()
        rooms.net.pump()
        self.assertNoResult(d)
        rooms.net.clock.advance(3)
        self.successResultOf(d)
        self.assertIs(EndCause.LOCAL, EndCause.LOCAL)
