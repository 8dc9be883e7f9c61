# -*- test-case-name: tests.focus.test_room -*-
"""
Tests for L{stoxgw.focus.room} and L{stoxgw.focus.member}: the room
logic and its members' sessions, with fake chat sessions
and a L{Clock} (what the full-stack tests of L{tests.focus.test_focus}
cannot easily provoke: congestion, failed copies, the nickname removal of
RFC 7701 section 7.3, policies).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.chat.session import ChatEnd, ChatState, EndCause, IChatSessionHandler
from stoxgw.focus.member import (
    CONGESTION_LIMIT,
    Member,
    canonicalAOR,
    reasonText,
)
from stoxgw.focus.room import ChatRoom, RoomPolicy
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.message import FailureReport
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.uri import SIPURI

ROOM = "sip:room@chat.example"


class FakeMSRP:
    """
    The parts of an MSRP session the room looks at.
    """

    def __init__(self) -> None:
        self.pendingSends = 0
        self.failureReports: list[tuple[str, int]] = []

    def sendFailureReport(
        self, message: IncomingMessage, code: int, comment: str | None = None
    ) -> bool:
        """
        Record the failure REPORT.
        """
        self.failureReports.append((message.messageID, code))
        return True


class FakeChat:
    """
    A ready chat session that records what is sent on it.

    @ivar outcome: What L{sendMessage} returns: a status (200 succeeds,
        others fail with L{MSRPSendError}).
    """

    def __init__(self, handler: Member) -> None:
        self.handler = handler
        self.state = ChatState.READY
        self.ended = False
        self.dialog = None
        self.remoteMedia = None
        self.callID = "call"
        self.msrp = FakeMSRP()
        self.sent: list[bytes] = []
        self.outcome = 200
        self.endedWith: tuple[str | None, int | None] | None = None

    def whenReady(self) -> Deferred[Any]:
        """
        Ready at once.
        """
        return succeed(self)

    def sendMessage(
        self, contentType: str, body: bytes, **options: Any
    ) -> Deferred[Any]:
        """
        Record the copy; succeed or fail as L{outcome} says.
        """
        self.sent.append(body)
        if self.outcome == 200:
            return succeed(None)
        return fail(MSRPSendError(self.outcome, "failed"))

    def end(self, text: str | None = None, status: int | None = None) -> None:
        """
        End, as a BYE would: the handler hears it.
        """
        self.endedWith = (text, status)
        self.ended = True
        self.handler.chatEnded(self, ChatEnd(EndCause.LOCAL, status, text or ""))  # type: ignore[arg-type]


def incoming(
    body: bytes, failureReport: FailureReport = FailureReport.YES
) -> IncomingMessage:
    """
    A received SEND.
    """
    message = object.__new__(IncomingMessage)
    for name, value in (
        ("messageID", "m1"),
        ("contentType", "message/cpim"),
        ("body", body),
        ("headers", ()),
        ("size", len(body)),
        ("fromPath", ()),
        ("toPath", ()),
        ("successReport", False),
        ("failureReport", failureReport),
    ):
        object.__setattr__(message, name, value)
    return message


def cpim(sender: str, to: str, text: str = "hi") -> bytes:
    """
    A C{message/cpim} body from C{sender} to C{to}.
    """
    return CPIMMessage.build(
        contentType="text/plain",
        body=text.encode(),
        fromAddress=CPIMAddress(sender),
        toAddresses=[CPIMAddress(to)],
        dateTime=datetime(2015, 10, 15, tzinfo=timezone.utc),
    ).toBytes()


class RoomTestCase(SynchronousTestCase):
    """
    A room C{sip:room@chat.example} on a L{Clock}.
    """

    def setUp(self) -> None:
        """
        The room.
        """
        self.clock = Clock()
        self.empty: list[ChatRoom] = []
        self.room = ChatRoom(
            "room",
            RoomPolicy("chat.example", reservedNicks=("admin",)),
            self.clock,
            onEmpty=self.empty.append,
        )

    def member(
        self,
        user: str,
        tokens: tuple[str, ...] = ("nickname", "private-messages"),
        wrapped: tuple[str, ...] = ("text/plain",),
    ) -> tuple[Member, FakeChat]:
        """
        A listed member C{sip:user@example.com}.
        """
        member = Member(
            self.room,
            f"sip:{user}@example.com",
            f"sip:{user}@192.0.2.1",
            tokens=frozenset(tokens),
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=wrapped,
        )
        self.room.add(member)
        chat = FakeChat(member)
        member.chatStarted(chat)  # type: ignore[arg-type]
        self.assertTrue(member.listed)
        return member, chat


class MemberTests(RoomTestCase):
    """
    L{Member}.
    """

    def test_interface(self) -> None:
        """
        A member is a chat session handler.
        """
        member, _ = self.member("alice")
        self.assertTrue(verifyObject(IChatSessionHandler, member))

    def test_acceptsWrapped(self) -> None:
        """
        C{accept-types} and C{accept-wrapped-types} decide; a peer listing
        neither takes everything.
        """
        member, _ = self.member("alice", wrapped=("text/*",))
        self.assertTrue(member.acceptsWrapped("text/html"))
        self.assertFalse(member.acceptsWrapped("image/png"))
        member.acceptTypes = member.acceptWrappedTypes = ()
        self.assertTrue(member.acceptsWrapped("image/png"))

    def test_hangUpWithReason(self) -> None:
        """
        Hanging up a session that has no dialog ends it with the cause.
        """
        member, chat = self.member("alice")
        self.successResultOf(member.hangUp(403, "Kicked"))
        self.assertEqual(chat.endedWith, ("Kicked", 403))
        self.assertEqual(self.room.members, [])


class NicknameTests(RoomTestCase):
    """
    RFC 7701 section 7 on the room itself.
    """

    def test_removal(self) -> None:
        """
        An empty NICKNAME removes the nickname (section 7.3), which is then
        free for others.
        """
        alice, _ = self.member("alice")
        bob, _ = self.member("bob")
        self.assertEqual(self.room.nicknameRequested(alice, "Alice"), 200)
        self.assertEqual(self.room.nicknameRequested(alice, ""), 200)
        self.assertIsNone(alice.nickname)
        self.assertEqual(self.room.nicknameRequested(bob, "alice"), 200)

    def test_enforced(self) -> None:
        """
        The nickname is stored RFC 7700-enforced (spaces mapped and
        trimmed, NFKC).
        """
        alice, _ = self.member("alice")
        self.assertEqual(self.room.nicknameRequested(alice, "  Al\u00a0 ice "), 200)
        self.assertEqual(alice.nickname, "Al ice")

    def test_invalidAndReserved(self) -> None:
        """
        424 for what RFC 7700 refuses (only spaces), 425 for a reserved
        word.
        """
        alice, _ = self.member("alice")
        self.assertEqual(self.room.nicknameRequested(alice, "   "), 424)
        self.assertEqual(self.room.nicknameRequested(alice, "ADMIN"), 425)

    def test_keptWhileAnotherSessionHoldsIt(self) -> None:
        """
        The nickname stays reserved while one of the user's sessions holds
        it.
        """
        alice, aliceChat = self.member("alice")
        second, _ = self.member("alice")
        bob, _ = self.member("bob")
        self.room.nicknameRequested(alice, "Alice")
        self.room.nicknameRequested(second, "Alice")
        aliceChat.end()
        self.assertEqual(self.room.nicknameRequested(bob, "Alice"), 425)


class DistributionTests(RoomTestCase):
    """
    Distribution details.
    """

    def test_congested(self) -> None:
        """
        A congested session misses regular messages (RFC 7701 section
        6.4), not private ones.
        """
        alice, _ = self.member("alice")
        bob, bobChat = self.member("bob")
        self.room.nicknameRequested(bob, "Bob")
        bobChat.msrp.pendingSends = CONGESTION_LIMIT + 1
        self.assertEqual(
            self.room.sendReceived(alice, incoming(cpim(alice.aor, ROOM))), 200
        )
        self.assertEqual(bobChat.sent, [])
        self.assertEqual(
            self.room.sendReceived(alice, incoming(cpim(alice.aor, f"{ROOM};gr=Bob"))),
            200,
        )
        self.assertEqual(len(bobChat.sent), 1)

    def test_privateFailureReported(self) -> None:
        """
        A private message that reached none of the recipient's sessions
        gets a failure REPORT with the copy's status (RFC 4975 section
        7.1.4).
        """
        alice, aliceChat = self.member("alice")
        bob, bobChat = self.member("bob")
        bobChat.outcome = 481
        self.assertEqual(
            self.room.sendReceived(alice, incoming(cpim(alice.aor, bob.aor))), 200
        )
        self.assertEqual(aliceChat.msrp.failureReports, [("m1", 481)])

    def test_privateRecipientRefusesType(self) -> None:
        """
        A private message of a type the recipient does not take: 415.
        """
        alice, _ = self.member("alice")
        bob, _ = self.member("bob", wrapped=("text/plain",))
        body = CPIMMessage.build(
            contentType="text/html",
            body=b"<b>hi</b>",
            fromAddress=CPIMAddress(alice.aor),
            toAddresses=[CPIMAddress(bob.aor)],
        ).toBytes()
        self.assertEqual(self.room.sendReceived(alice, incoming(body)), 415)

    def test_requireNotUnderstood(self) -> None:
        """
        A CPIM C{Require} naming a header we do not know: 415 (RFC 3862
        section 3.5).
        """
        alice, _ = self.member("alice")
        body = (
            b"From: <sip:alice@example.com>\r\nTo: <sip:room@chat.example>\r\n"
            b"NS: X <urn:x>\r\nRequire: X.Vital\r\nX.Vital: yes\r\n\r\n"
            b"Content-Type: text/plain\r\n\r\nhi"
        )
        self.assertEqual(self.room.sendReceived(alice, incoming(body)), 415)

    def test_notListedGetsNothing(self) -> None:
        """
        A session not ready yet gets no live messages (it gets the history
        once listed).
        """
        alice, _ = self.member("alice")
        waiting = Member(self.room, "sip:bob@example.com", "sip:bob@192.0.2.1")
        self.room.add(waiting)
        self.room.sendReceived(alice, incoming(cpim(alice.aor, ROOM)))
        chat = FakeChat(waiting)
        waiting.chatStarted(chat)  # type: ignore[arg-type]
        self.assertEqual(len(chat.sent), 1)  # the history


class ConferenceStateTests(RoomTestCase):
    """
    L{ChatRoom.conferenceInfo}.
    """

    def test_oneUserPerAOR(self) -> None:
        """
        Two sessions of one AOR are one user with two endpoints.
        """
        self.member("alice")
        second, _ = self.member("alice")
        second.contact = "sip:alice@192.0.2.9"
        [user] = self.room.conferenceInfo().userList
        self.assertEqual(len(user.endpoints), 2)
        state = self.room.conferenceInfo().conferenceState
        assert state is not None
        self.assertEqual(state.userCount, 1)

    def test_subject(self) -> None:
        """
        L{ChatRoom.setSubject} shows in C{<conference-description>}.
        """
        self.room.setSubject("Verona")
        description = self.room.conferenceInfo().description
        assert description is not None
        self.assertEqual(description.subject, "Verona")

    def test_empty(self) -> None:
        """
        The last session leaving tells the owner.
        """
        _, chat = self.member("alice")
        chat.end()
        self.assertEqual(self.empty, [self.room])


class PolicyTests(SynchronousTestCase):
    """
    L{RoomPolicy}.
    """

    def test_mayCreate(self) -> None:
        """
        C{*}, a domain, or an address.
        """
        policy = RoomPolicy(
            "chat.example", allowedCreators=("example.org", "alice@example.com")
        )
        self.assertTrue(policy.mayCreate("sip:bob@EXAMPLE.org"))
        self.assertTrue(policy.mayCreate("sip:alice@example.com"))
        self.assertFalse(policy.mayCreate("sip:bob@example.com"))
        self.assertTrue(RoomPolicy("chat.example").mayCreate("sip:anyone@anywhere"))
        self.assertFalse(
            RoomPolicy("chat.example", allowedCreators=()).mayCreate("sip:a@b")
        )

    def test_reserved(self) -> None:
        """
        Reserved words compare as RFC 7700 says.
        """
        policy = RoomPolicy("chat.example", reservedNicks=("Admin",))
        self.assertTrue(policy.reserved("ADMIN"))
        self.assertFalse(policy.reserved("Admin2"))


class HelperTests(SynchronousTestCase):
    """
    Module helpers.
    """

    def test_canonicalAOR(self) -> None:
        """
        Parameters and headers go, the host is lower case.
        """
        uri = SIPURI.fromString("sip:Alice@EXAMPLE.com;gr=x?Subject=y")
        self.assertEqual(canonicalAOR(uri), "sip:Alice@example.com")

    def test_reasonText(self) -> None:
        """
        An RFC 3326 Reason value, or None.
        """
        self.assertEqual(
            reasonText(ChatEnd(EndCause.LOCAL, 403, "Kicked")),
            'SIP;cause=403;text="Kicked"',
        )
        self.assertIsNone(reasonText(ChatEnd(EndCause.LOCAL, None, "")))
