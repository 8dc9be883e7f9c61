# -*- test-case-name: tests.interop.test_focus -*-
"""
Interop: the RFC 7701 test focus (L{tests.interop.focus}) in its own
process, over real SIP and MSRP sockets on 127.0.0.1, driven by SIP users
made of the project's UA, MSRP endpoint and L{ChatInitiator} in this
process (on the real reactor), and by SIPp as an independent subscriber.

Where RFC 7701 and RFC 7702 show bytes (the answer's SDP attributes, the
CPIM header lines of a distributed message, the Reason of a kick), the
tests compare bytes; conference documents are read with ElementTree, not
with the project's parser.  Every wait is bounded.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections.abc import Generator
from datetime import datetime, timezone
from typing import Any, TypeVar

from twisted.internet import task, reactor
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredQueue,
    inlineCallbacks,
)
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase
from zope.interface import implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatAcceptor,
    ChatEnd,
    ChatInitiator,
    ChatOffer,
    ChatSession,
    ChatSessionError,
    EndCause,
    IChatOfferHandler,
    IChatSessionHandler,
)
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.sdp import parseSDP
from stoxgw.sip.subscription import (
    ClientSubscription,
    ISubscriptionHandler,
    SIPEvents,
    SubscriptionReason,
)
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.focus import FocusProcess, formatLine
from tests.interop.msrpendpoints import disconnect
from tests.interop.peers import PeerUnavailable
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp

T = TypeVar("T")

NS = {"ci": "urn:ietf:params:xml:ns:conference-info"}
XCON_NICKNAME = "{urn:ietf:params:xml:ns:xcon-conference-info}nickname"
ROOM = "sip:room@chat.sip.test"
DATETIME = "2015-10-15T18:02:31Z"


def bounded(d: Deferred[T], timeout: float = 10.0) -> Deferred[T]:
    """
    C{d}, failing with a timeout after C{timeout} seconds.
    """
    return d.addTimeout(timeout, reactor)  # type: ignore[arg-type]


def cpim(
    text: str,
    fromURI: str,
    to: str = f"<{ROOM}>",
    *,
    dateTime: str | None = DATETIME,
    contentType: str = "text/plain",
    extra: str = "",
) -> bytes:
    """
    A C{message/cpim} body as a participant writes it (RFC 3862 section 2,
    RFC 7701 section 6.1), in canonical form.
    """
    lines = [f"From: {fromURI}"]
    lines += [f"To: {value}" for value in to.split("\n")]
    if dateTime is not None:
        lines.append(f"DateTime: {dateTime}")
    if extra:
        lines.append(extra)
    head = "".join(line + "\r\n" for line in lines)
    return f"{head}\r\nContent-Type: {contentType}\r\n\r\n{text}".encode("utf-8")


@implementer(IChatSessionHandler)
class Recorder:
    """
    A participant's chat handler: queues what arrives.
    """

    def __init__(self) -> None:
        self.messages: DeferredQueue[IncomingMessage] = DeferredQueue()
        self.received: list[IncomingMessage] = []
        self.ended: Deferred[ChatEnd] = Deferred()

    def chatStarted(self, session: ChatSession) -> None:
        pass

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        # Waiters resume on a later turn of the reactor, never inside the
        # stack that is still answering the request.
        self.received.append(message)
        reactor.callLater(0, self.messages.put, message)  # type: ignore[attr-defined]
        return 200

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        return 403

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        reactor.callLater(  # type: ignore[attr-defined]
            0, lambda: self.ended.called or self.ended.callback(reason)
        )

    def next(self, timeout: float = 10.0) -> Deferred[IncomingMessage]:
        """
        The next message.
        """
        return bounded(self.messages.get(), timeout)


@implementer(ISubscriptionHandler)
class NotifyRecorder:
    """
    A conference subscriber that keeps every NOTIFY.
    """

    def __init__(self) -> None:
        self.notifies: DeferredQueue[SIPRequest] = DeferredQueue()
        self.ended: Deferred[SubscriptionReason] = Deferred()

    def notifyReceived(
        self, subscription: ClientSubscription, request: SIPRequest
    ) -> None:
        reactor.callLater(0, self.notifies.put, request)  # type: ignore[attr-defined]

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        reactor.callLater(  # type: ignore[attr-defined]
            0, lambda: self.ended.called or self.ended.callback(reason)
        )

    @inlineCallbacks
    def document(
        self, timeout: float = 10.0
    ) -> Generator[Deferred[Any], Any, ElementTree.Element]:
        """
        The conference-info document of the next NOTIFY with a body.
        """
        while True:
            request: SIPRequest = yield bounded(self.notifies.get(), timeout)
            if request.body:
                return ElementTree.fromstring(request.body)


class SIPUser:
    """
    A SIP/MSRP user agent of this process: a UA on 127.0.0.1 (TCP or UDP)
    whose outbound proxy is the focus, an MSRP endpoint, a chat initiator,
    subscriptions.
    """

    def __init__(
        self,
        test: TestCase,
        focus: FocusProcess,
        user: str,
        kind: TransportKind = TransportKind.TCP,
    ) -> None:
        self.aor = f"sip:{user}@example.com"
        self.transport = SIPTransport(reactor, "127.0.0.1")
        # One transport: our Contacts use it.  TCP by default, so requests
        # from a focus that outlives us fail at once instead of timing out.
        if kind is TransportKind.UDP:
            self.transport.listenUDP(0)
        else:
            self.transport.listenTCP(0)
        self.ua = SIPUserAgent(
            reactor,
            self.transport,
            settings=UserAgentSettings(
                contactUser=user, outboundProxy=focus.proxyURI(kind)
            ),
            admission=SIPTrust.fromStrings(["127.0.0.1"]),
        )
        self.endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=10)
        self.endpoint.startListening()
        self.initiator = ChatInitiator(self.ua, self.endpoint, reactor)  # type: ignore[arg-type]
        self.events = SIPEvents(self.ua)
        self.focus = focus
        test.addCleanup(self.close)

    def close(self) -> Deferred[Any]:
        """
        Drop everything (no BYE: the focus sees the connections close).
        """
        self.events.close()
        self.ua.close()
        return DeferredList(
            [
                disconnect(self.endpoint),
                self.endpoint.stopListening(),
                self.transport.stopListening(),
            ]
        )

    def join(
        self,
        room: str = "room",
        *,
        acceptTypes: tuple[str, ...] = ("message/cpim",),
        acceptWrappedTypes: tuple[str, ...] = ("text/plain", "text/html"),
        chatroom: tuple[str, ...] | None = ("nickname", "private-messages"),
    ) -> tuple[Recorder, Deferred[ChatSession]]:
        """
        INVITE the room (RFC 7702 section 5.1), From our AOR.
        """
        recorder = Recorder()
        d = self.initiator.startChat(
            self.focus.roomURI(room),
            NameAddr(SIPURI.fromString(self.aor)),
            recorder,
            acceptTypes=acceptTypes,
            acceptWrappedTypes=acceptWrappedTypes,
            chatroom=chatroom,
        )
        return recorder, bounded(d)

    @property
    def reachable(self) -> SIPURI:
        """
        Where the focus can call us (C{sip:USER@127.0.0.1:PORT;transport=tcp}).
        """
        return SIPURI(
            "sip",
            "127.0.0.1",
            self.aor[4:].split("@")[0],
            port=self.transport.ports[TransportKind.TCP],
            parameters=(("transport", "tcp"),),
        )

    def answer(self) -> tuple[list[ChatOffer], Recorder]:
        """
        Accept chats the focus offers us (dial-out); the offers and the
        session's recorder.
        """
        offers: list[ChatOffer] = []
        recorder = Recorder()

        @implementer(IChatOfferHandler)
        class Callee:
            """
            Accepts every offer (an RFC 7701 participant's answer).
            """

            def chatOffered(self, offer: ChatOffer) -> AcceptChat:
                offers.append(offer)
                return AcceptChat(
                    recorder,
                    acceptTypes=("message/cpim",),
                    chatroom=("nickname", "private-messages"),
                )

        ChatAcceptor(self.ua, self.endpoint, reactor, Callee()).register()  # type: ignore[arg-type]
        return offers, recorder

    def subscribe(self, room: str = "room", dialog: Any = None) -> NotifyRecorder:
        """
        SUBSCRIBE to the room's conference package (out of dialog, or in
        C{dialog}).
        """
        recorder = NotifyRecorder()
        if dialog is None:
            self.events.subscribe(
                self.focus.roomURI(room),
                "conference",
                600,
                ("application/conference-info+xml",),
                handler=recorder,
                fromAddress=NameAddr(SIPURI.fromString(self.aor)),
            )
        else:
            self.events.subscribe(
                None,
                "conference",
                600,
                ("application/conference-info+xml",),
                handler=recorder,
                dialog=dialog,
            )
        return recorder


def users(document: ElementTree.Element) -> dict[str, ElementTree.Element]:
    """
    The C{<user>} elements by entity.
    """
    return {u.get("entity", ""): u for u in document.findall("ci:users/ci:user", NS)}


def failureOf(d: Deferred[Any]) -> Deferred[Failure]:
    """
    Fires with the failure of C{d} (fails if it succeeds).
    """

    def succeeded(result: object) -> Failure:
        raise AssertionError(f"expected a failure, got {result!r}")

    return bounded(d).addCallbacks(succeeded, lambda f: [f])  # type: ignore[arg-type]


def headerBlock(body: bytes) -> bytes:
    """
    The CPIM header lines of a body (up to the first blank line).
    """
    return body.split(b"\r\n\r\n", 1)[0]


class FocusTestsBase(TestCase):
    """
    Starts a focus per test; the users' cleanups run before its stop.
    """

    timeout = 45

    def startFocus(self, *arguments: str) -> FocusProcess:
        """
        A running focus with these options, stopped (by its PID) after the
        test.
        """
        focus = FocusProcess(arguments, directory=self.mktemp())
        focus.start()
        self.addCleanup(focus.stop)
        return focus

    @inlineCallbacks
    def joined(
        self, user: SIPUser, nickname: str | None, room: str = "room", **options: Any
    ) -> Generator[Deferred[Any], Any, tuple[Recorder, ChatSession]]:
        """
        Join and (optionally) take a nickname; wait for the focus's events.
        """
        since = user.focus.mark()
        recorder, d = user.join(room, **options)
        session: ChatSession = yield d
        yield user.focus.whenEvent(
            formatLine("joined", room, None, user.aor), since=since
        )
        if nickname is not None:
            code = yield bounded(session.sendNickname(nickname))
            self.assertEqual(code, 200)
        return recorder, session


class JoinTests(FocusTestsBase):
    """
    RFC 7701 section 5.2 (joining) and 7 (nicknames).
    """

    @inlineCallbacks
    def test_answer(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 7701 sections 5.2, 8 and 9.1: the 200 carries an C{isfocus}
        Contact for the room, and an answer accepting only message/cpim,
        with the wrapped types and the chatroom tokens; an offer without
        message/cpim gets 488.
        """
        focus = self.startFocus()
        juliet = SIPUser(self, focus, "juliet")
        _, d = juliet.join()
        session: ChatSession = yield d
        response = session.dialog.inviteResponse  # type: ignore[union-attr]
        [contact] = response.contact.addresses
        self.assertTrue(contact.isFocus)
        self.assertEqual(contact.uri.user, "room")
        lines = response.body.decode().split("\r\n")
        self.assertIn("a=accept-types:message/cpim", lines)
        self.assertIn(
            "a=accept-wrapped-types:text/plain application/im-iscomposing+xml", lines
        )
        self.assertIn("a=chatroom:nickname private-messages", lines)
        self.assertEqual(parseSDP(response.body).media[0].proto, "TCP/MSRP")
        yield focus.whenEvent("joined room - sip:juliet@example.com")
        code = yield bounded(session.sendNickname("JuliC"))
        self.assertEqual(code, 200)
        yield focus.whenEvent("nickname room - JuliC 200")

        romeo = SIPUser(self, focus, "romeo")
        _, d = romeo.join(acceptTypes=("text/plain",))
        [failure] = yield failureOf(d)
        failure.trap(ChatSessionError)
        self.assertEqual(failure.value.status, 488)
        yield focus.whenEvent("rejected room 488 sip:romeo@example.com")

    @inlineCallbacks
    def test_conferenceUnaware(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{--no-isfocus --no-chatroom}: a server that does not say it is a
        focus (RFC 7701 section 5.2) nor declares chat room support
        (section 8), for testing how a participant copes.
        """
        focus = self.startFocus("--no-isfocus", "--no-chatroom")
        juliet = SIPUser(self, focus, "juliet")
        _, session = yield self.joined(juliet, None)
        response = session.dialog.inviteResponse  # type: ignore[union-attr]
        [contact] = response.contact.addresses
        self.assertFalse(contact.isFocus)
        self.assertNotIn(b"a=chatroom", response.body)

    @inlineCallbacks
    def test_nicknames(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 7701 section 7.1: 425 for a nickname another user holds
        (compared case-insensitively) or a reserved one, 200 otherwise;
        section 7.2: a failed change keeps the old nickname; section 7.3:
        C{""} removes it.
        """
        focus = self.startFocus("--reserved", "Admin")
        romeo = SIPUser(self, focus, "romeo")
        juliet = SIPUser(self, focus, "juliet")
        _, romeoSession = yield self.joined(romeo, "Romeo")
        _, session = yield self.joined(juliet, None)
        for taken in ("romeo", "ADMIN"):
            [failure] = yield failureOf(session.sendNickname(taken))
            failure.trap(MSRPSendError)
            # RFC 7701 section 9.2, F2.
            self.assertEqual(
                (failure.value.code, failure.value.reason),
                (425, "Nickname reserved or already in use"),
            )
        code = yield bounded(session.sendNickname("JuliC"))
        self.assertEqual(code, 200)
        [failure] = yield failureOf(session.sendNickname("Romeo"))
        self.assertEqual(failure.value.code, 425)
        yield focus.whenEvent("nickname room JuliC Romeo 425")
        code = yield bounded(session.sendNickname(""))
        self.assertEqual(code, 200)
        yield focus.whenEvent("nickname room JuliC - 200")
        # The nickname Juliet gave up is free again; Romeo's stays his.
        code = yield bounded(romeoSession.sendNickname("JuliC"))
        self.assertEqual(code, 200)

    @inlineCallbacks
    def test_policyOff(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{--no-nickname --no-private-messages}: a bare C{a=chatroom} (RFC
        7701 section 8), NICKNAME gets 403 (section 7.1), and so does a
        private message; public messages still flow.
        """
        focus = self.startFocus("--no-nickname", "--no-private-messages")
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        _, session = yield self.joined(juliet, None)
        romeoMessages, _ = yield self.joined(romeo, None)
        lines = session.dialog.inviteResponse.body.decode().split("\r\n")  # type: ignore[union-attr]
        self.assertIn("a=chatroom", lines)
        [failure] = yield failureOf(session.sendNickname("JuliC"))
        self.assertEqual(failure.value.code, 403)
        [failure] = yield failureOf(
            session.sendMessage(
                "message/cpim", cpim("psst", f"<{juliet.aor}>", f"<{romeo.aor}>")
            )
        )
        self.assertEqual(failure.value.code, 403)
        yield bounded(
            session.sendMessage("message/cpim", cpim("hi", f"<{juliet.aor}>"))
        )
        message = yield romeoMessages.next()
        # No nickname: the sender's AOR (module docstring).
        self.assertIn(f"From: <{juliet.aor}>\r\n".encode(), message.body)


class MessageTests(FocusTestsBase):
    """
    RFC 7701 section 6: checks and distribution.
    """

    @inlineCallbacks
    def test_publicMessage(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 7701 sections 6.1 and 9.3: a message to the room goes to every
        other participant, not back to its sender, in a fresh CPIM wrapper
        (RFC 7702 section 5.5.2): From the sender's address within the room,
        To the room, the sender's DateTime; a DateTime is added when there
        is none.
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        julietMessages, julietSession = yield self.joined(juliet, "JuliC")
        romeoMessages, romeoSession = yield self.joined(romeo, "Romeo")
        body = cpim("Who knows where Romeo is?", f"<{juliet.aor}>")
        result = yield bounded(julietSession.sendMessage("message/cpim", body))
        self.assertEqual(result.code, 200)
        message = yield romeoMessages.next()
        self.assertEqual(message.contentType, "message/cpim")
        self.assertEqual(
            message.body,
            b'From: "JuliC" <sip:room@chat.sip.test;gr=JuliC>\r\n'
            b"To: <sip:room@chat.sip.test>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z\r\n"
            b"\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"Who knows where Romeo is?",
        )
        yield focus.whenEvent(
            "message room JuliC sip:room@chat.sip.test Who knows where Romeo is?"
        )
        # Romeo answers without a DateTime (and with the RFC 7701 9.3 To).
        reply = cpim(
            "Here.\nIn the garden.",
            f"<{romeo.aor};gr=phone>",
            "<sip:room@chat.sip.test;transport=tcp>",
            dateTime=None,
        )
        yield bounded(romeoSession.sendMessage("message/cpim", reply))
        first = yield julietMessages.next()
        # The first thing Juliet gets is Romeo's answer: no echo of hers.
        self.assertTrue(
            headerBlock(first.body).startswith(
                b'From: "Romeo" <sip:room@chat.sip.test;gr=Romeo>\r\n'
                b"To: <sip:room@chat.sip.test>\r\nDateTime: "
            )
        )
        self.assertTrue(first.body.endswith(b"\r\n\r\nHere.\nIn the garden."))
        stamp = re.search(rb"DateTime: (\S+)\r\n", first.body)
        assert stamp is not None
        when = datetime.fromisoformat(stamp.group(1).decode().replace("Z", "+00:00"))
        self.assertLess(abs((datetime.now(timezone.utc) - when).total_seconds()), 60)
        yield focus.whenEvent(
            "message room Romeo sip:room@chat.sip.test;transport=tcp Here.\\nIn the garden."
        )
        self.assertEqual(len(julietMessages.received), 1)
        self.assertEqual(len(romeoMessages.received), 1)

    @inlineCallbacks
    def test_overUDP(self) -> Generator[Deferred[Any], Any, None]:
        """
        The same over SIP/UDP for one participant: join, public and private
        messages both ways, and its BYE.
        """
        focus = self.startFocus()
        juliet = SIPUser(self, focus, "juliet", TransportKind.UDP)
        romeo = SIPUser(self, focus, "romeo")
        julietMessages, session = yield self.joined(juliet, "JuliC")
        romeoMessages, romeoSession = yield self.joined(romeo, "Romeo")
        yield bounded(
            session.sendMessage("message/cpim", cpim("Ay me!", f"<{juliet.aor}>"))
        )
        message = yield romeoMessages.next()
        self.assertTrue(message.body.endswith(b"\r\n\r\nAy me!"))
        yield bounded(
            romeoSession.sendMessage(
                "message/cpim",
                cpim(
                    "She speaks", f"<{romeo.aor}>", "<sip:room@chat.sip.test;gr=JuliC>"
                ),
            )
        )
        message = yield julietMessages.next()
        self.assertTrue(
            headerBlock(message.body).startswith(
                b'From: "Romeo" <sip:room@chat.sip.test;gr=Romeo>\r\n'
                b"To: <sip:juliet@example.com>\r\n"
            )
        )
        session.end()
        yield focus.whenEvent("left room JuliC")

    @inlineCallbacks
    def test_privateMessages(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 7701 sections 6.2, 6.3 and 9.4: a private message (one CPIM To
        naming a participant by its in-room address or its AOR) reaches
        only that participant, To its AOR; 404 for an unknown target, 403
        for two To headers or a From that is not the sender's, 428 for a
        target without C{private-messages}, 415 without CPIM (or with a
        wrapped type the room does not take).
        """
        focus = self.startFocus()
        juliet = SIPUser(self, focus, "juliet")
        romeo = SIPUser(self, focus, "romeo")
        nurse = SIPUser(self, focus, "nurse")
        julietMessages, session = yield self.joined(juliet, "JuliC")
        romeoMessages, _ = yield self.joined(romeo, "Romeo")
        nurseMessages, _ = yield self.joined(nurse, "Nurse", chatroom=("nickname",))
        me = f"<{juliet.aor};gr=yn0cl4bnw0yr3vym>"
        yield bounded(
            session.sendMessage(
                "message/cpim",
                cpim("O Romeo", me, "<sip:room@chat.sip.test;gr=Romeo>"),
            )
        )
        message = yield romeoMessages.next()
        self.assertEqual(
            headerBlock(message.body),
            b'From: "JuliC" <sip:room@chat.sip.test;gr=JuliC>\r\n'
            b"To: <sip:romeo@example.com>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z",
        )
        yield focus.whenEvent("private room JuliC Romeo O Romeo")
        # By AOR (RFC 7701 9.4), as the sender's in-room address.
        yield bounded(
            session.sendMessage(
                "message/cpim",
                cpim(
                    "Wherefore",
                    '"JuliC" <sip:room@chat.sip.test;gr=JuliC>',
                    f"<{romeo.aor}>",
                ),
            )
        )
        message = yield romeoMessages.next()
        self.assertTrue(message.body.endswith(b"\r\n\r\nWherefore"))
        refusals = [
            (cpim("x", me, "<sip:room@chat.sip.test;gr=Tybalt>"), "message/cpim", 404),
            (cpim("x", me, "<sip:tybalt@example.com>"), "message/cpim", 404),
            (cpim("x", me, f"<{romeo.aor}>\n<{nurse.aor}>"), "message/cpim", 403),
            (cpim("x", f"<{romeo.aor}>"), "message/cpim", 403),
            (cpim("x", "<sip:room@chat.sip.test;gr=Romeo>"), "message/cpim", 403),
            (cpim("x", me, "<sip:room@chat.sip.test;gr=Nurse>"), "message/cpim", 428),
            (cpim("<b>x</b>", me, contentType="text/html"), "message/cpim", 415),
            (b"plain", "text/plain", 415),
        ]
        for body, contentType, status in refusals:
            [failure] = yield failureOf(session.sendMessage(contentType, body))
            failure.trap(MSRPSendError)
            self.assertEqual(failure.value.code, status, body)
        yield focus.whenEvent("refused room JuliC 428")
        # Nothing refused reached anyone: a last public message is the next
        # thing each connection carries (MSRP keeps the order).
        yield bounded(session.sendMessage("message/cpim", cpim("Adieu", me)))
        for recorder in (romeoMessages, nurseMessages):
            last = yield recorder.next()
            self.assertTrue(last.body.endswith(b"\r\n\r\nAdieu"))
        self.assertEqual(len(romeoMessages.received), 3)
        self.assertEqual(len(nurseMessages.received), 1)
        self.assertEqual(julietMessages.received, [])

    @inlineCallbacks
    def test_fromStyleAOR(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{--from-style aor} (RFC 7701 sections 6.1, 9.3, 9.4: the switch
        does not modify the CPIM From): the sender's From as it wrote it;
        a virtual participant's AOR; other CPIM headers copied.
        """
        focus = self.startFocus("--from-style", "aor")
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        _, session = yield self.joined(juliet, "JuliC")
        romeoMessages, _ = yield self.joined(romeo, "Romeo")
        body = cpim(
            "hello",
            f"Juliet <{juliet.aor};gr=dev1>",
            extra="NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
            "MyFeatures.WackyMessageOption: Use-silly-font",
        )
        yield bounded(session.sendMessage("message/cpim", body))
        message = yield romeoMessages.next()
        self.assertEqual(
            headerBlock(message.body),
            b"From: Juliet <sip:juliet@example.com;gr=dev1>\r\n"
            b"To: <sip:room@chat.sip.test>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z\r\n"
            b"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
            b"MyFeatures.WackyMessageOption: Use-silly-font",
        )
        focus.command("say", "room", "Nurse", text="Anon, good nurse!")
        message = yield romeoMessages.next()
        self.assertTrue(
            headerBlock(message.body).startswith(b"From: <sip:Nurse@sip.test>\r\n")
        )

    @inlineCallbacks
    def test_composing(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 3994 inside CPIM (RFC 7701 section 6.1: any wrapped type the
        room accepts): an isComposing document is distributed like a
        message, to those whose SDP accepts it, and is not history.
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        _, session = yield self.joined(juliet, "JuliC")
        romeoMessages, _ = yield self.joined(romeo, "Romeo")
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            "<state>active</state><contenttype>text/plain</contenttype></isComposing>"
        )
        # Romeo's offer (the library's default) lists text/plain and
        # text/html as wrapped types: he gets nothing (SHOULD NOT forward).
        yield bounded(
            session.sendMessage(
                "message/cpim",
                cpim(
                    document,
                    f"<{juliet.aor}>",
                    contentType="application/im-iscomposing+xml",
                ),
            )
        )
        yield focus.whenEvent("composing room JuliC active")
        since = focus.mark()
        nurse = SIPUser(self, focus, "nurse")
        recorder, d = nurse.join(
            acceptWrappedTypes=("text/plain", "application/im-iscomposing+xml")
        )
        yield d
        yield focus.whenEvent("joined room - sip:nurse@example.com", since=since)
        yield bounded(
            session.sendMessage(
                "message/cpim",
                cpim(
                    document,
                    f"<{juliet.aor}>",
                    contentType="application/im-iscomposing+xml",
                ),
            )
        )
        yield focus.whenEvent("composing room JuliC active", since=since)
        message = yield recorder.next()
        self.assertEqual(
            headerBlock(message.body),
            b'From: "JuliC" <sip:room@chat.sip.test;gr=JuliC>\r\n'
            b"To: <sip:room@chat.sip.test>\r\nDateTime: 2015-10-15T18:02:31Z",
        )
        self.assertIn(b"Content-Type: application/im-iscomposing+xml\r\n", message.body)
        # Not history: the first indication did not reach the newcomer;
        # Romeo got none: his next message is a text one.
        self.assertEqual(len(recorder.received), 1)
        yield bounded(
            session.sendMessage("message/cpim", cpim("hi", f"<{juliet.aor}>"))
        )
        message = yield romeoMessages.next()
        self.assertTrue(message.body.endswith(b"\r\n\r\nhi"))
        self.assertEqual(len(romeoMessages.received), 1)


class HistoryTests(FocusTestsBase):
    """
    History, subject and virtual participants (the control protocol).
    """

    @inlineCallbacks
    def test_historyAndVirtualParticipants(self) -> Generator[Deferred[Any], Any, None]:
        """
        The last C{--history} public messages reach a newcomer first, with
        their original DateTime; C{say} makes a virtual participant that
        is in the roster and speaks to everyone; C{leave} removes it.
        """
        focus = self.startFocus("--history", "2")
        romeo, juliet = SIPUser(self, focus, "romeo"), SIPUser(self, focus, "juliet")
        focus.command("say", "room", "Nurse", text="first, forgotten")
        yield focus.whenEvent(
            "message room Nurse sip:room@chat.sip.test first, forgotten"
        )
        _, romeoSession = yield self.joined(romeo, "Romeo")
        yield bounded(
            romeoSession.sendMessage(
                "message/cpim", cpim("But soft!", f"<{romeo.aor}>")
            )
        )
        focus.command("say", "room", "Nurse", text="Madam!")
        yield focus.whenEvent("message room Nurse sip:room@chat.sip.test Madam!")
        recorder, d = juliet.join()
        session: ChatSession = yield d
        first = yield recorder.next()
        second = yield recorder.next()
        self.assertEqual(
            first.body,
            b'From: "Romeo" <sip:room@chat.sip.test;gr=Romeo>\r\n'
            b"To: <sip:room@chat.sip.test>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z\r\n\r\n"
            b"Content-Type: text/plain\r\n\r\nBut soft!",
        )
        self.assertTrue(
            headerBlock(second.body).startswith(
                b'From: "Nurse" <sip:room@chat.sip.test;gr=Nurse>\r\n'
                b"To: <sip:room@chat.sip.test>\r\nDateTime: "
            )
        )
        self.assertTrue(
            second.body.endswith(
                b"Content-Type: text/plain; charset=utf-8\r\n\r\nMadam!"
            )
        )
        subscription = juliet.subscribe()
        document = yield subscription.document()
        self.assertEqual(
            sorted(
                u.findtext("ci:display-text", None, NS) or "-"
                for u in users(document).values()
            ),
            ["-", "Nurse", "Romeo"],
        )
        focus.command("say", "room", "Nurse", text="Anon!")
        live = yield recorder.next()
        self.assertTrue(live.body.endswith(b"\r\n\r\nAnon!"))
        focus.command("leave", "room", "Nurse")
        yield focus.whenEvent("left room Nurse")
        document = yield subscription.document()
        endpoint = users(document)["sip:Nurse@sip.test"].find("ci:endpoint", NS)
        assert endpoint is not None
        self.assertEqual(
            endpoint.findtext("ci:disconnection-method", None, NS), "departed"
        )
        document = yield subscription.document()
        self.assertEqual(
            {entity: u.get("state") for entity, u in users(document).items()},
            {"sip:Nurse@sip.test": "deleted"},
        )
        self.assertIsNotNone(session)

    @inlineCallbacks
    def test_whisper(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{whisper}: a virtual participant's private message (RFC 7701
        section 6.2) reaches only the participant named, CPIM From its
        in-room address and To the recipient's AOR, and is no history; a
        target nobody real holds is an C{error}.
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        julietMessages, _ = yield self.joined(juliet, "JuliC")
        romeoMessages, romeoSession = yield self.joined(romeo, "Romeo")
        since = focus.mark()
        focus.command("whisper", "room", "Nurse", "JuliC", text="Your mother calls")
        yield focus.whenEvent(
            "private room Nurse JuliC Your mother calls", since=since
        )
        message = yield julietMessages.next()
        self.assertTrue(
            headerBlock(message.body).startswith(
                b'From: "Nurse" <sip:room@chat.sip.test;gr=Nurse>\r\n'
                b"To: <sip:juliet@example.com>\r\nDateTime: "
            ),
            message.body,
        )
        self.assertTrue(message.body.endswith(b"\r\n\r\nYour mother calls"))
        focus.command("whisper", "room", "Nurse", "Tybalt", text="x")
        yield focus.whenEvent("error", since=since)
        # Romeo got nothing before this public message (MSRP keeps the order).
        focus.command("say", "room", "Nurse", text="Anon!")
        last = yield romeoMessages.next()
        self.assertTrue(last.body.endswith(b"\r\n\r\nAnon!"))
        self.assertEqual(len(romeoMessages.received), 1)
        self.assertIsNotNone(romeoSession)


class ConferenceTests(FocusTestsBase):
    """
    The conference event package (RFC 4575, RFC 7702 sections 5.3-5.4).
    """

    @inlineCallbacks
    def test_notifications(self) -> Generator[Deferred[Any], Any, None]:
        """
        A full document (version 1) on SUBSCRIBE, out of the INVITE dialog
        or inside it; partial ones, version +1 each, for a join, a nickname,
        the subject and a leave (endpoint disconnected/departed, then the
        user deleted).
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        _, julietSession = yield self.joined(juliet, "JuliC")
        watch = juliet.subscribe()
        yield focus.whenEvent("subscribed room sip:juliet@example.com")
        full = yield watch.document()
        self.assertEqual(
            (full.get("entity"), full.get("state"), full.get("version")),
            (ROOM, "full", "1"),
        )
        self.assertEqual(
            full.findtext("ci:conference-state/ci:user-count", None, NS), "1"
        )
        [user] = users(full).values()
        self.assertEqual(user.get("entity"), juliet.aor)
        self.assertEqual(user.get(XCON_NICKNAME), "JuliC")
        self.assertEqual(user.findtext("ci:display-text", None, NS), "JuliC")
        self.assertEqual(
            [e.text for e in user.findall("ci:associated-aors/ci:entry/ci:uri", NS)],
            [juliet.aor],
        )
        self.assertEqual(
            [e.text for e in user.findall("ci:roles/ci:entry", NS)], ["participant"]
        )
        [endpoint] = user.findall("ci:endpoint", NS)
        self.assertEqual(
            endpoint.get("entity"),
            str(julietSession.dialog.localContact.uri),  # type: ignore[union-attr]
        )
        self.assertEqual(endpoint.findtext("ci:status", None, NS), "connected")
        self.assertEqual(endpoint.findtext("ci:joining-method", None, NS), "dialed-in")
        self.assertEqual(endpoint.findtext("ci:media/ci:type", None, NS), "message")

        romeoMessages, romeoSession = yield self.joined(romeo, None)
        # Romeo subscribes inside his INVITE dialog (RFC 7702 Example 7).
        inDialog = romeo.subscribe(dialog=romeoSession.dialog)
        document = yield watch.document()
        self.assertEqual(
            (document.get("state"), document.get("version")), ("partial", "2")
        )
        self.assertEqual(document.find("ci:users", NS).get("state"), "partial")  # type: ignore[union-attr]
        added = users(document)[romeo.aor]
        self.assertIsNone(added.find("ci:display-text", NS))
        yield bounded(romeoSession.sendNickname("Romeo"))
        document = yield watch.document()
        self.assertEqual(document.get("version"), "3")
        self.assertEqual(
            users(document)[romeo.aor].findtext("ci:display-text", None, NS), "Romeo"
        )
        romeoFull = yield inDialog.document()
        self.assertEqual(romeoFull.get("state"), "full")
        self.assertEqual(sorted(users(romeoFull)), sorted([juliet.aor, romeo.aor]))
        focus.command("subject", "room", text="Today in Verona")
        document = yield watch.document()
        self.assertEqual(document.get("version"), "4")
        self.assertEqual(
            document.findtext("ci:conference-description/ci:subject", None, NS),
            "Today in Verona",
        )
        romeoSession.end()
        yield bounded(romeoMessages.ended)
        yield focus.whenEvent("left room Romeo")
        document = yield watch.document()
        self.assertEqual(document.get("version"), "5")
        endpoint = users(document)[romeo.aor].find("ci:endpoint", NS)  # type: ignore[assignment]
        self.assertEqual(endpoint.findtext("ci:status", None, NS), "disconnected")
        self.assertEqual(
            endpoint.findtext("ci:disconnection-method", None, NS), "departed"
        )
        document = yield watch.document()
        self.assertEqual(document.get("version"), "6")
        self.assertEqual(users(document)[romeo.aor].get("state"), "deleted")

    @inlineCallbacks
    def test_gruuEntities(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{--user-entity gruu} (RFC 7702 Example 9): the user entity is the
        in-room address; a nickname change deletes the old entity and adds
        the new one.
        """
        focus = self.startFocus("--user-entity", "gruu")
        juliet = SIPUser(self, focus, "juliet")
        _, session = yield self.joined(juliet, "JuliC")
        watch = juliet.subscribe()
        full = yield watch.document()
        [user] = users(full).values()
        self.assertEqual(user.get("entity"), "sip:room@chat.sip.test;gr=JuliC")
        self.assertEqual(
            [e.text for e in user.findall("ci:associated-aors/ci:entry/ci:uri", NS)],
            [juliet.aor],
        )
        yield bounded(session.sendNickname("Capulet Girl"))
        document = yield watch.document()
        found = users(document)
        self.assertEqual(
            found["sip:room@chat.sip.test;gr=JuliC"].get("state"), "deleted"
        )
        self.assertEqual(
            found["sip:room@chat.sip.test;gr=Capulet%20Girl"].findtext(
                "ci:display-text", None, NS
            ),
            "Capulet Girl",
        )

    @inlineCallbacks
    def test_kick(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{kick}: a BYE with C{Reason: SIP;cause=403;text="Kicked"} (RFC
        3326), and the endpoint reported C{booted} before the user goes.
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        yield self.joined(juliet, "JuliC")
        romeoMessages, romeoSession = yield self.joined(romeo, "Romeo")
        watch = juliet.subscribe()
        yield watch.document()
        focus.command("kick", "room", "Romeo")
        end: ChatEnd = yield bounded(romeoMessages.ended)
        bye = romeoSession.dialog.remoteBye  # type: ignore[union-attr]
        self.assertEqual(
            bye.headers.getLines("Reason"), ['SIP;cause=403;text="Kicked"']
        )
        self.assertEqual(
            (end.cause, end.status, end.text), (EndCause.REMOTE_BYE, 403, "Kicked")
        )
        yield focus.whenEvent("left room Romeo")
        document = yield watch.document()
        endpoint = users(document)[romeo.aor].find("ci:endpoint", NS)
        assert endpoint is not None
        self.assertEqual(
            endpoint.findtext("ci:disconnection-method", None, NS), "booted"
        )
        self.assertEqual(
            endpoint.findtext("ci:disconnection-info/ci:reason", None, NS),
            'SIP;cause=403;text="Kicked"',
        )
        document = yield watch.document()
        self.assertEqual(users(document)[romeo.aor].get("state"), "deleted")

    def test_subscribeWithSIPp(self) -> Deferred[None]:
        """
        SIPp, an independent SIP stack, subscribes over TCP: a full
        document, then the partial one a virtual participant causes, then
        the terminated NOTIFY after its Expires: 0 (RFC 6665 section 4.2.1.4).
        """
        return self._subscribeWithSIPp("t1")

    def test_subscribeWithSIPpOverUDP(self) -> Deferred[None]:
        """
        The same over UDP.
        """
        return self._subscribeWithSIPp("u1")

    @inlineCallbacks
    def _subscribeWithSIPp(self, transport: str) -> Generator[Deferred[Any], Any, None]:
        focus = self.startFocus()
        juliet = SIPUser(self, focus, "juliet")
        yield self.joined(juliet, "JuliC")
        port = freeUDPAndTCPPort()
        try:
            running = runSIPp(
                reactor,
                "uac_subscribe_focus.xml",
                remote=f"127.0.0.1:{focus.sipPort}",
                localPort=port,
                transport=transport,
                service="room",
                timeout=15,
            )
        except PeerUnavailable as e:
            raise SkipTest(str(e))
        yield focus.whenEvent(f"subscribed room sip:sipp@127.0.0.1:{port}", timeout=10)
        # Let SIPp answer the full NOTIFY before the room changes: a linear
        # SIPp scenario aborts on a NOTIFY that arrives while it is still
        # at its <send> of that 200 (seen once in CI).
        yield task.deferLater(reactor, 0.5, lambda: None)
        focus.command("say", "room", "Nurse", text="Madam!")
        result: SIPpResult = yield bounded(running, 30)
        self.assertEqual(result.exitCode, 0, result.describe())
        yield focus.whenEvent(f"unsubscribed room sip:sipp@127.0.0.1:{port} timeout")
        [log] = [
            text for name, text in result.logs.items() if name.endswith("_messages.log")
        ]
        bodies = re.findall(r"(<\?xml.*?</conference-info>)", log, re.S)
        # The terminated NOTIFY carries the full state again (version 3).
        self.assertEqual(len(bodies), 3, log)
        full, partial, last = (ElementTree.fromstring(b.encode()) for b in bodies)
        self.assertEqual((last.get("state"), last.get("version")), ("full", "3"))
        self.assertEqual((full.get("entity"), full.get("version")), (ROOM, "1"))
        self.assertEqual(list(users(full)), [juliet.aor])
        self.assertEqual(
            (partial.get("state"), partial.get("version")), ("partial", "2")
        )
        self.assertEqual(
            users(partial)["sip:Nurse@sip.test"].findtext("ci:display-text", None, NS),
            "Nurse",
        )


class ControlTests(FocusTestsBase):
    """
    REFER, dial-out and shutdown.
    """

    @inlineCallbacks
    def test_referAndInvite(self) -> Generator[Deferred[Any], Any, None]:
        """
        RFC 7702 section 5.7 / RFC 4579 section 5.5: a REFER to the room is
        answered 202 and its implicit subscription ends with one NOTIFY
        C{100 Trying}; with C{--dial-referred} the room then calls the
        referred user, and C{invite} calls another: INVITEs From the room
        URI with an C{isfocus} Contact (RFC 4579); the callees join the
        roster and get the room's messages.
        """
        focus = self.startFocus("--dial-referred")
        juliet = SIPUser(self, focus, "juliet")
        _, session = yield self.joined(juliet, "JuliC")
        benvolio, mercutio = SIPUser(self, focus, "benvolio"), SIPUser(
            self, focus, "mercutio"
        )
        callees = [(user, user.answer()) for user in (benvolio, mercutio)]
        agent = ReferAgent(juliet.events)
        outgoing = yield bounded(
            agent.refer(session.dialog, NameAddr(benvolio.reachable))  # type: ignore[arg-type]
        )
        self.assertEqual(outgoing.response.status, 202)
        final = yield bounded(outgoing.finished)
        self.assertIsNone(final)
        self.assertEqual(outgoing.statuses, [(100, "Trying")])
        yield focus.whenEvent(f"refer room {benvolio.reachable}")
        focus.command("invite", "room", str(mercutio.reachable))
        for user, (offers, recorder) in callees:
            aor = str(user.reachable).replace(";transport=tcp", "")
            yield focus.whenEvent(f"invited room {aor}")
            [offer] = offers
            request = offer.invite.request
            self.assertEqual(str(request.fromAddress.uri), ROOM)
            [contact] = request.contact.addresses  # type: ignore[union-attr]
            self.assertTrue(contact.isFocus)
            self.assertEqual(contact.uri.user, "room")  # type: ignore[union-attr]
            self.assertEqual(offer.media.acceptTypes, ("message/cpim",))
            self.assertEqual(offer.media.chatroom, ("nickname", "private-messages"))
        yield bounded(
            session.sendMessage("message/cpim", cpim("Welcome", f"<{juliet.aor}>"))
        )
        for user, (offers, recorder) in callees:
            message = yield recorder.next()
            self.assertTrue(message.body.endswith(b"\r\n\r\nWelcome"))

    @inlineCallbacks
    def test_shutdown(self) -> Generator[Deferred[Any], Any, None]:
        """
        C{shutdown}: every participant gets a BYE with C{Reason:
        SIP;cause=503}, every subscription a terminated NOTIFY
        (C{noresource}); the process exits 0.
        """
        focus = self.startFocus()
        juliet, romeo = SIPUser(self, focus, "juliet"), SIPUser(self, focus, "romeo")
        julietMessages, _ = yield self.joined(juliet, "JuliC")
        romeoMessages, _ = yield self.joined(romeo, None)
        watch = juliet.subscribe()
        yield watch.document()
        status = yield focus.shutdown()
        self.assertEqual(status, 0)
        for recorder in (julietMessages, romeoMessages):
            end = yield bounded(recorder.ended)
            self.assertEqual((end.cause, end.status), (EndCause.REMOTE_BYE, 503))
        reason = yield bounded(watch.ended)
        self.assertEqual(reason, SubscriptionReason.NORESOURCE)
        self.assertEqual(focus.events[-1], "shutdown")
