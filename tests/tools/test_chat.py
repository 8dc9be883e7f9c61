# -*- test-case-name: tests.tools.test_chat -*-
"""
Tests for L{stoxgw.tools.chat} and L{stoxgw.tools.chatoptions}: the
command line and the formats of what the client sends and prints.  The
client process itself runs against a room in
L{tests.interop.test_chat_client}.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from io import StringIO

from twisted.internet.defer import CancelledError, Deferred, TimeoutError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.chat.session import (
    ChatEnd,
    ChatSessionError,
    EndCause,
    IChatSessionHandler,
)
from stoxgw.formats.cpim import CPIMAddress, CPIMError, CPIMMessage
from stoxgw.msrp.message import FailureReport
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.transport import TransportKind
from stoxgw.sip.uri import SIPURI
from stoxgw.tools import chat, chatoptions

#: The moment the client started joining, in the tests below.
SINCE = datetime(2024, 5, 6, 12, 0, 0, tzinfo=timezone.utc)


def cpim(
    text: bytes,
    sender: str | None = "sip:room@chat.example.org;gr=Romeo",
    when: datetime | None = None,
    contentType: str = "text/plain",
) -> bytes:
    """
    A CPIM body as a room sends it.
    """
    return CPIMMessage.build(
        contentType=contentType,
        body=text,
        fromAddress=None if sender is None else CPIMAddress(sender),
        dateTime=when,
    ).toBytes()


class OptionsTests(SynchronousTestCase):
    """
    L{chatoptions.parseOptions}.
    """

    def parseError(self, *argv: str) -> str:
        """
        Parse options that must fail; return what went to standard error.
        """
        stderr = StringIO()
        self.patch(chat.sys, "stderr", stderr)
        error = self.assertRaises(SystemExit, chatoptions.parseOptions, list(argv))
        self.assertEqual(error.code, 2)
        return stderr.getvalue()

    def test_defaults(self) -> None:
        """
        Only the room is required: UDP, 127.0.0.1, any ports, trust of
        127.0.0.1, 30 seconds to join, a From made from the local address.
        """
        options = chatoptions.parseOptions(["sip:room@chat.example.org"])
        self.assertEqual(
            options,
            chatoptions.ClientOptions(
                target=SIPURI("sip", "chat.example.org", user="room"),
                fromURI=SIPURI("sip", "127.0.0.1", user="stoxgw-chat"),
            ),
        )
        self.assertEqual(options.transport, TransportKind.UDP)
        self.assertEqual(options.trust, ("127.0.0.1/32",))
        self.assertEqual(options.timeout, 30.0)
        self.assertIsNone(options.proxyURI)
        self.assertEqual(options.inviteTarget, options.target)

    def test_everything(self) -> None:
        """
        Every option, C{--trust} repeated.
        """
        options = chatoptions.parseOptions(
            [
                "--from",
                "sip:alice@example.com",
                "--name",
                "Alice Liddell",
                "--nick",
                "Alice",
                "--proxy",
                "proxy.example.com:5070",
                "--transport",
                "tcp",
                "--local-ip",
                "192.0.2.1",
                "--sip-port",
                "5080",
                "--msrp-port",
                "2856",
                "--trust",
                "10.0.0.0/8",
                "--trust",
                "192.0.2.7",
                "--timeout",
                "2.5",
                "sip:room@chat.example.org:5062",
            ]
        )
        self.assertEqual(
            options,
            chatoptions.ClientOptions(
                target=SIPURI("sip", "chat.example.org", user="room", port=5062),
                fromURI=SIPURI("sip", "example.com", user="alice"),
                name="Alice Liddell",
                nick="Alice",
                proxy=("proxy.example.com", 5070),
                transport=TransportKind.TCP,
                localIP="192.0.2.1",
                sipPort=5080,
                msrpPort=2856,
                trust=("10.0.0.0/8", "192.0.2.7"),
                timeout=2.5,
            ),
        )

    def test_tcpURIs(self) -> None:
        """
        With C{--transport tcp}, the Request-URI and the proxy URI say
        C{transport=tcp}; the proxy is a loose router (RFC 3261 16.12).
        """
        options = chatoptions.parseOptions(
            ["--transport", "tcp", "--proxy", "127.0.0.1:5070", "sip:room@h"]
        )
        self.assertEqual(str(options.inviteTarget), "sip:room@h;transport=tcp")
        self.assertEqual(str(options.proxyURI), "sip:127.0.0.1:5070;lr;transport=tcp")

    def test_transportKept(self) -> None:
        """
        A target that names its transport keeps it.
        """
        options = chatoptions.parseOptions(
            ["--transport", "tcp", "sip:room@h;transport=TCP"]
        )
        self.assertEqual(options.inviteTarget, options.target)

    def test_proxyForms(self) -> None:
        """
        C{--proxy} takes C{HOST:PORT}, C{HOST} (port 5060) and
        C{[IPv6]:PORT}.
        """
        for text, expected in [
            ("p.example.com:5070", ("p.example.com", 5070)),
            ("p.example.com", ("p.example.com", 5060)),
            ("[::1]:5070", ("::1", 5070)),
            ("[::1]", ("::1", 5060)),
        ]:
            options = chatoptions.parseOptions(["--proxy", text, "sip:room@h"])
            self.assertEqual(options.proxy, expected, text)

    def test_badOptions(self) -> None:
        """
        Bad values exit with status 2 and say which option is wrong.
        """
        for argv, word in [
            ([], "ROOM-URI"),
            (["http://example.com/"], "not a SIP URI"),
            (["--from", "alice", "sip:room@h"], "not a SIP URI"),
            (["--proxy", "h:0", "sip:room@h"], "--proxy"),
            (["--proxy", "h:x", "sip:room@h"], "--proxy"),
            (["--proxy", "::1:5060", "sip:room@h"], "--proxy"),
            (["--transport", "tls", "sip:room@h"], "--transport"),
            (["--sip-port", "70000", "sip:room@h"], "--sip-port"),
            (["--msrp-port", "-1", "sip:room@h"], "--msrp-port"),
            (["--trust", "10.0.0.0/33", "sip:room@h"], "--trust"),
            (["--timeout", "0", "sip:room@h"], "--timeout"),
            (["--timeout", "nan", "sip:room@h"], "--timeout"),
            (["--local-ip", "localhost", "sip:room@h"], "--local-ip"),
            (["--nick", " ", "sip:room@h"], "--nick"),
        ]:
            self.assertIn(word, self.parseError(*argv), argv)


class SendFormatTests(SynchronousTestCase):
    """
    L{chat.buildMessage} and L{chat.parseCommand}.
    """

    def test_message(self) -> None:
        """
        A line becomes CPIM From us, To the room, DateTime now (to the
        second), wrapping UTF-8 text/plain (RFC 3862, RFC 7701 5.2).
        """
        body = chat.buildMessage(
            "Wherefore art thou, Roméo?",
            CPIMAddress("sip:alice@example.com", "Alice"),
            CPIMAddress("sip:room@chat.example.org"),
            datetime(2024, 5, 6, 12, 0, 1, 123456, tzinfo=timezone.utc),
        )
        self.assertEqual(
            body,
            b"From: Alice <sip:alice@example.com>\r\n"
            b"To: <sip:room@chat.example.org>\r\n"
            b"DateTime: 2024-05-06T12:00:01Z\r\n"
            b"\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"\r\n" + "Wherefore art thou, Roméo?".encode("utf-8"),
        )
        parsed = CPIMMessage.parse(body)
        self.assertEqual(
            parsed.fromAddress, CPIMAddress("sip:alice@example.com", "Alice")
        )

    def test_commands(self) -> None:
        """
        C{/nick NAME}, C{/quit}; anything else is said, C{//} escaping a
        leading slash.
        """
        self.assertEqual(chat.parseCommand("/nick Bob"), ("nick", "Bob"))
        self.assertEqual(
            chat.parseCommand("/nick  Bob the Builder "), ("nick", "Bob the Builder")
        )
        self.assertEqual(chat.parseCommand("/quit"), ("quit", ""))
        self.assertEqual(chat.parseCommand("hello"), ("say", "hello"))
        self.assertEqual(chat.parseCommand("//quit"), ("say", "/quit"))
        self.assertEqual(chat.parseCommand("/nick "), ("say", "/nick "))
        self.assertEqual(chat.parseCommand(""), ("say", ""))


class PrintFormatTests(SynchronousTestCase):
    """
    L{chat.formatMessage}, L{chat.formatFailure}, L{chat.formatEnd}.
    """

    def format(self, contentType: str, body: bytes) -> str | None:
        return chat.formatMessage(
            contentType,
            body,
            defaultSender="sip:room@chat.example.org",
            since=SINCE,
            zone=timezone.utc,
        )

    def test_nickFromGruu(self) -> None:
        """
        The sender is the C{gr} nick of the CPIM From (RFC 7702 section 6).
        """
        self.assertEqual(
            self.format("message/cpim", cpim(b"hello", when=SINCE)), "Romeo hello"
        )

    def test_uriWithoutGruu(self) -> None:
        """
        Without C{gr}, the From URI.
        """
        line = self.format("message/cpim", cpim(b"hi", "sip:romeo@example.org"))
        self.assertEqual(line, "sip:romeo@example.org hi")

    def test_plainText(self) -> None:
        """
        Plain text (or CPIM without From) comes from the room.
        """
        self.assertEqual(
            self.format("text/plain", b"hi"), "sip:room@chat.example.org hi"
        )
        self.assertEqual(
            self.format("message/cpim", cpim(b"hi", None)),
            "sip:room@chat.example.org hi",
        )

    def test_history(self) -> None:
        """
        A DateTime before we started marks history: its time of day comes
        first, in the given zone.
        """
        when = datetime(2024, 5, 6, 13, 4, 5, tzinfo=timezone(timedelta(hours=2)))
        self.assertEqual(
            self.format("message/cpim", cpim(b"old news", when=when)),
            "[11:04:05] Romeo old news",
        )

    def test_liveWithinSlack(self) -> None:
        """
        A live message whose DateTime is whole seconds (so a little before
        the start of joining) is not taken for history.
        """
        when = SINCE.replace(microsecond=0) - timedelta(seconds=1)
        self.assertEqual(self.format("message/cpim", cpim(b"hello", when=when)), "Romeo hello")

    def test_charsetAndLines(self) -> None:
        """
        The charset is honoured; CRLF becomes LF, trailing newlines go.
        """
        body = cpim(
            "é\r\nà\r\n".encode("latin-1"), contentType="text/plain; charset=latin-1"
        )
        self.assertEqual(self.format("message/cpim", body), "Romeo é\nà")

    def test_notText(self) -> None:
        """
        Messages without text (isComposing, RFC 3994) print nothing.
        """
        body = cpim(b"<isComposing/>", contentType="application/im-iscomposing+xml")
        self.assertIsNone(self.format("message/cpim", body))
        self.assertIsNone(self.format("application/im-iscomposing+xml", b"<x/>"))

    def test_malformed(self) -> None:
        """
        Malformed CPIM raises L{CPIMError} (the client answers 400).
        """
        self.assertRaises(CPIMError, self.format, "message/cpim", b"From: nobody\r\n")

    def test_failures(self) -> None:
        """
        C{failed: <status> <reason>}: a rejection's status and reason, 408
        for our own timeout, the cause when there is no status.
        """
        rejected = ChatSessionError(ChatEnd(EndCause.REJECTED, 486, "Busy Here"))
        self.assertEqual(chat.formatFailure(Failure(rejected)), "failed: 486 Busy Here")
        timedOut = TimeoutError(30, "Deferred")
        self.assertEqual(
            chat.formatFailure(Failure(timedOut)), "failed: 408 Request Timeout"
        )
        local = ChatSessionError(ChatEnd(EndCause.MSRP_FAILED, None, "refused"))
        self.assertEqual(
            chat.formatFailure(Failure(local)), "failed: MSRP session failed: refused"
        )
        self.assertEqual(
            chat.formatFailure(Failure(CancelledError())), "failed: CancelledError"
        )

    def test_ends(self) -> None:
        """
        C{ended: <cause>}, with the status and a detail if any.
        """
        self.assertEqual(
            chat.formatEnd(ChatEnd(EndCause.REMOTE_BYE, None, "remote BYE")),
            "ended: remote BYE",
        )
        self.assertEqual(
            chat.formatEnd(ChatEnd(EndCause.MSRP_FAILED, 503, "connection lost")),
            "ended: MSRP session failed 503: connection lost",
        )


class FakeDialog:
    """
    An INVITE dialog whose BYE is answered when the test says.
    """

    def __init__(self) -> None:
        self.byes: list[Deferred[object]] = []

    def bye(self) -> Deferred[object]:
        d: Deferred[object] = Deferred()
        self.byes.append(d)
        return d


class FakeSession:
    """
    A ready chat session recording what is sent; each send waits for
    the test to answer it.
    """

    def __init__(self) -> None:
        self.dialog = FakeDialog()
        self.ended = False
        self.sent: list[tuple[str, bytes, Deferred[object]]] = []
        self.nicknames: list[tuple[str, Deferred[int]]] = []

    def sendMessage(self, contentType: str, body: bytes) -> Deferred[object]:
        d: Deferred[object] = Deferred()
        self.sent.append((contentType, body, d))
        return d

    def sendNickname(self, nickname: str) -> Deferred[int]:
        d: Deferred[int] = Deferred()
        self.nicknames.append((nickname, d))
        return d


class ChatClientTests(SynchronousTestCase):
    """
    L{chat.ChatClient} once joined, with a fake session.
    """

    def setUp(self) -> None:
        self.lines: list[str] = []
        self.clock = Clock()
        options = chatoptions.parseOptions(
            ["--from", "sip:alice@example.com", "sip:room@chat.example.org"]
        )
        self.client = chat.ChatClient(
            options, self.lines.append, self.clock, now=lambda: SINCE
        )
        self.session = FakeSession()
        self.client.session = self.session  # type: ignore[assignment]
        self.client._joined = True

    def test_interfaces(self) -> None:
        """
        The client is an L{IChatSessionHandler}; its standard I/O protocol
        an L{IHalfCloseableProtocol}.
        """
        self.assertTrue(verifyObject(IChatSessionHandler, self.client))
        self.assertTrue(verifyObject(IHalfCloseableProtocol, chat.InputLines()))

    def test_inOrder(self) -> None:
        """
        Lines are sent one after the other, each once the previous one is
        answered; a refusal prints C{not sent:}; C{/nick} prints its code.
        """
        self.client.lineReceived("one")
        self.client.lineReceived("/nick Bob")
        self.client.lineReceived("two")
        [(contentType, body, d)] = self.session.sent
        self.assertEqual(contentType, "message/cpim")
        self.assertEqual(CPIMMessage.parse(body).body, b"one")
        d.errback(MSRPSendError(413, "Too big"))
        self.assertEqual(self.lines, ["not sent: 413 Too big"])
        [(nickname, n)] = self.session.nicknames
        self.assertEqual(nickname, "Bob")
        self.assertEqual(len(self.session.sent), 1)
        n.errback(MSRPSendError(425, "Taken"))
        self.assertEqual(self.lines[1:], ["nickname Bob: 425"])
        self.assertEqual(CPIMMessage.parse(self.session.sent[1][1]).body, b"two")

    def test_endOfInput(self) -> None:
        """
        End of input: after the queued messages, BYE; exit 0 once it is
        answered.
        """
        self.client.lineReceived("last words")
        self.client.inputEnded()
        self.assertEqual(self.session.dialog.byes, [])
        self.session.sent[0][2].callback(None)
        [bye] = self.session.dialog.byes
        self.assertNoResult(self.client.done)
        bye.callback(None)
        self.assertEqual(self.successResultOf(self.client.done), 0)
        self.client.lineReceived("too late")
        self.assertEqual(len(self.session.sent), 1)

    def test_quitUnanswered(self) -> None:
        """
        C{/quit}: BYE; exit 0 after at most L{chat.LEAVE_TIMEOUT} without
        an answer.
        """
        self.client.lineReceived("/quit")
        self.assertEqual(len(self.session.dialog.byes), 1)
        self.clock.advance(chat.LEAVE_TIMEOUT)
        self.assertEqual(self.successResultOf(self.client.done), 0)

    def test_remoteEnd(self) -> None:
        """
        The room's BYE prints C{ended:} and exits 0; a failure exits 1.
        """
        self.client.chatEnded(
            self.session,  # type: ignore[arg-type]
            ChatEnd(EndCause.REMOTE_BYE, None, "remote BYE"),
        )
        self.assertEqual(self.lines, ["ended: remote BYE"])
        self.assertEqual(self.successResultOf(self.client.done), 0)

    def test_failedEnd(self) -> None:
        """
        An MSRP failure exits 1.
        """
        self.client.chatEnded(
            self.session,  # type: ignore[arg-type]
            ChatEnd(EndCause.MSRP_FAILED, 503, "lost"),
        )
        self.assertEqual(self.lines, ["ended: MSRP session failed 503: lost"])
        self.assertEqual(self.successResultOf(self.client.done), 1)

    def test_received(self) -> None:
        """
        Messages print and get 200; malformed CPIM gets 400; NICKNAME
        requests get 501 (we are no focus).
        """
        message = IncomingMessage(
            "m1",
            "message/cpim",
            cpim(b"hi", when=SINCE),
            (),
            0,
            (),
            (),
            False,
            FailureReport.YES,
        )
        self.assertEqual(self.client.messageReceived(self.session, message), 200)  # type: ignore[arg-type]
        self.assertEqual(self.lines, ["Romeo hi"])
        bad = IncomingMessage(
            "m2",
            "message/cpim",
            b"From: x\r\n",
            (),
            0,
            (),
            (),
            False,
            FailureReport.YES,
        )
        self.assertEqual(self.client.messageReceived(self.session, bad), 400)  # type: ignore[arg-type]
        self.assertEqual(self.client.nicknameRequested(self.session, "x"), 501)  # type: ignore[arg-type]
