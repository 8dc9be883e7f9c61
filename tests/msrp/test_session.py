# -*- test-case-name: tests.msrp.test_session -*-
"""
Tests for L{stoxgw.msrp.session}.
"""

from __future__ import annotations

import random
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.msrp.builders import buildRequest
from stoxgw.msrp.incoming import _FIELD_SLOTS, _chunkFields
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    MSRPHeader,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
)
from stoxgw.msrp.parser import MSRPEvent
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.reports import buildReport, responseTo
from stoxgw.msrp.session import (
    LOCAL_FAILURE,
    IMSRPSession,
    IMSRPSessionHandler,
    IncomingMessage,
    MSRPSendError,
    MSRPSession,
    SendResult,
    SessionState,
    mediaTypeMatches,
)
from tests.msrp.test_protocol import LOCAL, REMOTE, PausingTransport, written


@implementer(IMSRPSessionHandler)
class Handler:
    """
    Records what the session reports; answers with preset results.
    """

    def __init__(self) -> None:
        self.messages: list[IncomingMessage] = []
        self.nicknames: list[str] = []
        self.failures: list[Failure] = []
        self.bound = 0
        self.messageResult: Any = None
        self.nicknameResult: Any = 200

    def sessionBound(self) -> None:
        self.bound += 1

    def messageReceived(self, message: IncomingMessage) -> Any:
        self.messages.append(message)
        return self.messageResult

    def nicknameRequested(self, nickname: str) -> Any:
        self.nicknames.append(nickname)
        return self.nicknameResult

    def sessionFailed(self, reason: Failure) -> None:
        self.failures.append(reason)


def chunk(
    body: bytes | None,
    byteRange: str | None,
    messageID: str = "msg0001",
    continuation: Continuation = Continuation.END,
    contentType: str = "text/plain",
    extra: tuple[tuple[str, str], ...] = (),
) -> MSRPRequest:
    """
    A SEND chunk from the peer.
    """
    headers = [("Message-ID", messageID), *extra]
    if byteRange is not None:
        headers.append(("Byte-Range", byteRange))
    return buildRequest(
        "SEND",
        (LOCAL,),
        (REMOTE,),
        headers,
        body=body,
        contentType=None if body is None else contentType,
        continuation=continuation,
    )


class SessionTestCase(SynchronousTestCase):
    """
    A session bound (passively) to a connection on a string transport.
    """

    active = False

    def setUp(self) -> None:
        self.clock = Clock()
        self.handler = Handler()
        self.ended: list[MSRPSession] = []
        self.session = MSRPSession(
            LOCAL,
            self.handler,
            self.clock,
            remotePath=(REMOTE,),
            maxMessageSize=20000,
            onEnd=self.ended.append,
        )
        self.transport = self.makeTransport()
        self.connection = MSRPConnection()
        self.connection.makeConnection(self.transport)
        self.session.bind(self.connection, self.active)

    def makeTransport(self) -> StringTransport:
        """
        @return: The transport for the connection.
        """
        return StringTransport()

    def receive(self, *requests: MSRPRequest) -> None:
        """
        Feed requests from the peer.
        """
        for request in requests:
            self.connection.dataReceived(request.serialize())

    def out(self) -> list[MSRPEvent]:
        """
        What the session wrote since the last call.
        """
        return written(self.transport)

    def responses(self) -> list[MSRPResponse]:
        """
        The responses written since the last call (asserting nothing else
        was).
        """
        events = self.out()
        for event in events:
            assert isinstance(event, MSRPResponse), event
        return events  # type: ignore[return-value]

    def answer(self, events: list[MSRPEvent], code: int = 200) -> None:
        """
        Answer each written request with C{code}.
        """
        for event in events:
            assert isinstance(event, MSRPRequest)
            self.connection.dataReceived(responseTo(event, code).serialize())


class BindingTests(SessionTestCase):
    """
    Interfaces and binding.
    """

    def test_interfaces(self) -> None:
        """
        The session provides L{IMSRPSession}, the test handler
        L{IMSRPSessionHandler}.
        """
        self.assertTrue(verifyObject(IMSRPSession, self.session))
        self.assertTrue(verifyObject(IMSRPSessionHandler, self.handler))

    def test_passiveBindSendsNothing(self) -> None:
        """
        R-157: the passive side waits; binding tells the handler.
        """
        self.assertEqual(self.transport.value(), b"")
        self.assertIs(self.session.state, SessionState.BOUND)
        self.assertEqual(self.handler.bound, 1)

    def test_activeBindSendsBodiless(self) -> None:
        """
        R-157: the active side sends a bodiless SEND at once.
        """
        session = MSRPSession(
            LOCAL.__class__.fromString("msrp://10.0.0.1:2855/second;tcp"),
            Handler(),
            self.clock,
            remotePath=(REMOTE,),
        )
        transport = StringTransport()
        connection = MSRPConnection()
        connection.makeConnection(transport)
        session.bind(connection, True)
        [send] = written(transport)
        assert isinstance(send, MSRPRequest)
        self.assertEqual(send.method, "SEND")
        self.assertIsNone(send.body)
        self.assertIsNone(send.contentType)
        self.assertIsNotNone(send.messageID)
        self.assertEqual(send.toPath, (REMOTE,))
        connection.dataReceived(responseTo(send, 200).serialize())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_keepalive(self) -> None:
        """
        RFC 4975 section 7.1.1: L{MSRPSession.sendKeepalive} sends a
        bodiless SEND (Byte-Range 1-0/0) whose 200 fires it; without an
        answer it fails with 408 after the transaction timeout; on an
        ended session it fails at once.
        """
        d = self.session.sendKeepalive()
        [send] = self.out()
        assert isinstance(send, MSRPRequest)
        self.assertEqual((send.method, send.body), ("SEND", None))
        self.assertIn("Byte-Range: 1-0/0", send.serialize().decode())
        self.answer([send])
        self.successResultOf(d)
        silent = self.session.sendKeepalive()
        self.out()
        self.clock.advance(self.session.transactionTimeout)
        self.assertEqual(self.failureResultOf(silent, MSRPSendError).value.code, 408)
        self.session.close()
        self.failureResultOf(self.session.sendKeepalive(), MSRPSendError)
        self.assertEqual(self.handler.messages, [])

    def test_queuedBeforeBind(self) -> None:
        """
        Messages sent before the session is bound go out after the opening
        SEND.
        """
        session = MSRPSession(
            LOCAL.__class__.fromString("msrp://10.0.0.1:2855/third;tcp"),
            Handler(),
            self.clock,
            remotePath=(REMOTE,),
        )
        d = session.sendMessage("text/plain", b"early")
        transport = StringTransport()
        connection = MSRPConnection()
        connection.makeConnection(transport)
        session.bind(connection, True)
        opening, message = written(transport)
        assert isinstance(opening, MSRPRequest) and isinstance(message, MSRPRequest)
        self.assertIsNone(opening.body)
        self.assertEqual(message.body, b"early")
        self.assertNoResult(d)

    def test_bindTwice(self) -> None:
        """
        R-144: a bound session cannot be bound to another connection.
        """
        other = MSRPConnection()
        other.makeConnection(StringTransport())
        self.assertRaises(ValueError, self.session.bind, other, False)

    def test_mediaTypes(self) -> None:
        """
        R-158: C{*} and C{type/*} patterns; parameters and case ignored.
        """
        self.assertTrue(mediaTypeMatches("Text/Plain; charset=utf-8", ["text/plain"]))
        self.assertTrue(mediaTypeMatches("text/html", ["text/*"]))
        self.assertTrue(mediaTypeMatches("image/png", ["*"]))
        self.assertFalse(mediaTypeMatches("text/plain", ["message/cpim"]))


class SendTests(SessionTestCase):
    """
    Outgoing messages.
    """

    def test_chunkedSend(self) -> None:
        """
        R-134, R-137: 10 kB go as five chunks; the Deferred fires after the
        fifth 200 and leaves no timer.
        """
        body = b"0123456789" * 1024
        d = self.session.sendMessage("text/plain", body)
        chunks = self.out()
        self.assertEqual(
            [c.header("Byte-Range") for c in chunks if isinstance(c, MSRPRequest)],
            [
                "1-2048/10240",
                "2049-4096/10240",
                "4097-6144/10240",
                "6145-8192/10240",
                "8193-10240/10240",
            ],
        )
        self.assertEqual(len(self.clock.getDelayedCalls()), 5)
        self.answer(chunks[:4])
        self.assertNoResult(d)
        self.answer(chunks[4:])
        result = self.successResultOf(d)
        self.assertEqual(result, SendResult(chunks[0].messageID, 10240, 200, False))  # type: ignore[union-attr]
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.session.pendingSends, 0)

    def test_errorResponseStopsChunks(self) -> None:
        """
        R-148: a 413 for a chunk fails the send with 413 and no further
        chunk of the message is sent.
        """
        transport = PausingTransport(0)
        connection = MSRPConnection()
        session = MSRPSession(
            LOCAL.__class__.fromString("msrp://10.0.0.1:2855/fourth;tcp"),
            Handler(),
            self.clock,
            remotePath=(REMOTE,),
        )
        connection.makeConnection(transport)
        session.bind(connection, False)
        d = session.sendMessage("text/plain", b"x" * 10000)
        [first] = written(transport)
        assert isinstance(first, MSRPRequest)
        connection.dataReceived(responseTo(first, 413).serialize())
        error = self.failureResultOf(d, MSRPSendError).value
        self.assertEqual(error.code, 413)
        connection.resumeProducing()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_transactionTimeout(self) -> None:
        """
        R-137: no response 30 s after the last byte: 408, once; the other
        timers are cancelled.
        """
        d = self.session.sendMessage("text/plain", b"y" * 5000)
        chunks = self.out()
        self.answer(chunks[:1])
        self.clock.advance(29.9)
        self.assertNoResult(d)
        self.clock.advance(0.2)
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 408)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.answer(chunks[1:])
        self.assertEqual(self.connection.pendingTransactions, 0)

    def test_connectionLostFailsOnce(self) -> None:
        """
        R-145: losing the connection fails every pending send once, tells
        the handler once, cancels the timers; late events change nothing.
        """
        first = self.session.sendMessage("text/plain", b"a")
        second = self.session.sendNickname("alice")
        chunks = self.out()
        self.connection.connectionLost(Failure(ConnectionError("reset")))
        for d in (first, second):
            self.assertEqual(
                self.failureResultOf(d, MSRPSendError).value.code, LOCAL_FAILURE
            )
        self.assertEqual(len(self.handler.failures), 1)
        self.assertIs(self.session.state, SessionState.FAILED)
        self.assertEqual(self.ended, [self.session])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.answer(chunks)
        self.clock.advance(60)
        self.failureResultOf(
            self.session.sendMessage("text/plain", b"late"), MSRPSendError
        )

    def test_successReport(self) -> None:
        """
        R-141: with Success-Report: yes the send fires only once REPORTs
        cover every byte.
        """
        d = self.session.sendMessage("text/plain", b"z" * 3000, successReport=True)
        chunks = self.out()
        self.assertEqual(chunks[0].header("Success-Report"), "yes")  # type: ignore[union-attr]
        self.answer(chunks)
        self.assertNoResult(d)
        messageID = chunks[0].messageID  # type: ignore[union-attr]
        assert messageID is not None
        for byteRange in (ByteRange(1, 2048, 3000), ByteRange(2049, 3000, 3000)):
            self.receive(
                buildReport(
                    (LOCAL,), (REMOTE,), messageID, Status(0, 200, "OK"), byteRange
                )
            )
        self.assertTrue(self.successResultOf(d).successReported)
        self.assertEqual(self.out(), [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_successReportTimeout(self) -> None:
        """
        R-137: a success REPORT that never comes fails the send with 408.
        """
        d = self.session.sendMessage("text/plain", b"z", successReport=True)
        self.answer(self.out())
        self.clock.advance(30)
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 408)

    def test_failureReport(self) -> None:
        """
        R-140: a failure REPORT after the 200 fails the send with its code.
        """
        d = self.session.sendMessage("text/plain", b"hello", successReport=True)
        chunks = self.out()
        self.answer(chunks)
        messageID = chunks[0].messageID  # type: ignore[union-attr]
        assert messageID is not None
        self.receive(
            buildReport(
                (LOCAL,),
                (REMOTE,),
                messageID,
                Status(0, 403, "room said no"),
                ByteRange(1, 5, 5),
            )
        )
        error = self.failureResultOf(d, MSRPSendError).value
        self.assertEqual((error.code, error.reason), (403, "room said no"))
        self.assertEqual(self.out(), [])

    def test_reportUnknownMessageIgnored(self) -> None:
        """
        R-142: a REPORT for an unknown Message-ID is ignored, unanswered.
        """
        self.receive(buildReport((LOCAL,), (REMOTE,), "unknown1", Status(0, 200), None))
        self.assertEqual(self.out(), [])

    def test_failureReportNo(self) -> None:
        """
        R-139: with C{Failure-Report: no} the send fires once written; no
        timer runs.
        """
        d = self.session.sendMessage("text/plain", b"hi", failureReport="no")
        [sent] = self.out()
        self.assertEqual(sent.header("Failure-Report"), "no")  # type: ignore[union-attr]
        self.assertEqual(self.successResultOf(d).code, None)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_refusedContentType(self) -> None:
        """
        R-158: a type the peer did not accept is refused locally (415).
        """
        self.session.updatePeer(
            acceptTypes=["message/cpim"], acceptWrappedTypes=["text/plain"]
        )
        d = self.session.sendMessage("text/plain", b"hi")
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 415)
        self.assertEqual(self.transport.value(), b"")
        self.assertTrue(self.session.peerAccepts("text/plain", wrapped=True))
        self.session.sendMessage("Message/CPIM", b"hi")
        self.assertEqual(len(self.out()), 1)

    def test_peerMaxSize(self) -> None:
        """
        R-159: a message above the peer's max-size is refused locally (413).
        """
        self.session.updatePeer(maxSize=100)
        d = self.session.sendMessage("text/plain", b"x" * 101)
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 413)

    def test_cancel(self) -> None:
        """
        Cancelling a send stops its chunks and timers.
        """
        d = self.session.sendMessage("text/plain", b"x")
        d.cancel()
        self.failureResultOf(d)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.session.pendingSends, 0)

    def test_481EndsSession(self) -> None:
        """
        R-148: a 481 fails the send and the session.
        """
        d = self.session.sendMessage("text/plain", b"x")
        self.answer(self.out(), 481)
        self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, 481)
        self.assertIs(self.session.state, SessionState.FAILED)
        self.assertEqual(len(self.handler.failures), 1)

    def test_close(self) -> None:
        """
        Closing fails pending sends and leaves (closes the idle) connection.
        """
        d = self.session.sendMessage("text/plain", b"x")
        self.session.close()
        self.assertEqual(
            self.failureResultOf(d, MSRPSendError).value.code, LOCAL_FAILURE
        )
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.handler.failures, [])
        self.assertEqual(self.ended, [self.session])


class NicknameTests(SessionTestCase):
    """
    NICKNAME both ways (RFC 7701 section 7.1).
    """

    def test_sendAccepted(self) -> None:
        """
        R-081: NICKNAME carries a quoted C{Use-Nickname} and no report
        headers; 200 fires the L{Deferred} with 200.
        """
        d = self.session.sendNickname('Ju"lie')
        [request] = self.out()
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.method, "NICKNAME")
        self.assertEqual(request.header("Use-Nickname"), '"Ju\\"lie"')
        self.assertEqual(request.useNickname, 'Ju"lie')
        self.assertIsNone(request.header("Success-Report"))
        self.assertIsNone(request.header("Failure-Report"))
        self.answer([request])
        self.assertEqual(self.successResultOf(d), 200)

    def test_sendRefused(self) -> None:
        """
        R-087: 425 (and 423 from a relay) fail with L{MSRPSendError}.
        """
        for code in (425, 423):
            d = self.session.sendNickname("bob")
            self.answer(self.out(), code)
            self.assertEqual(self.failureResultOf(d, MSRPSendError).value.code, code)
        self.assertIs(self.session.state, SessionState.BOUND)

    def test_receive(self) -> None:
        """
        R-087, R-088: the handler's code is the response (200, 425, 423,
        also from a L{Deferred}).
        """
        for result, code in ((200, 200), (425, 425), (423, 423), (None, 200)):
            self.handler.nicknameResult = result
            self.receive(
                buildRequest(
                    "NICKNAME", (LOCAL,), (REMOTE,), [("Use-Nickname", '"Alice"')]
                )
            )
            [response] = self.responses()
            self.assertEqual(response.code, code)
        d: Deferred[int] = Deferred()
        self.handler.nicknameResult = d
        self.receive(
            buildRequest("NICKNAME", (LOCAL,), (REMOTE,), [("Use-Nickname", '"A"')])
        )
        self.assertEqual(self.out(), [])
        d.callback(425)
        [response] = self.responses()
        self.assertEqual(response.code, 425)
        self.assertEqual(self.handler.nicknames, ["Alice"] * 4 + ["A"])

    def test_receiveMalformed(self) -> None:
        """
        R-086: an unquoted nickname gets 424, the handler is not asked.
        """
        self.receive(
            buildRequest("NICKNAME", (LOCAL,), (REMOTE,), [("Use-Nickname", "JuliC")])
        )
        [response] = self.responses()
        self.assertEqual(response.code, 424)
        self.assertEqual(self.handler.nicknames, [])


class ReceiveTests(SessionTestCase):
    """
    Incoming messages.
    """

    def test_single(self) -> None:
        """
        A one-chunk message is delivered with its headers and answered 200.
        """
        self.receive(chunk(b"hello", "1-5/5"))
        [response] = self.responses()
        self.assertEqual(response.code, 200)
        self.assertEqual(response.toPath, (REMOTE,))
        [message] = self.handler.messages
        self.assertEqual(
            (message.messageID, message.body, message.size), ("msg0001", b"hello", 5)
        )
        self.assertEqual(message.contentType, "text/plain")
        self.assertEqual(message.header("byte-range"), "1-5/5")
        self.assertEqual(message.fromPath, (REMOTE,))

    def test_chunked(self) -> None:
        """
        R-136, R-146: three chunks of different sizes make one message.
        """
        self.receive(
            chunk(b"a", "1-1/6", continuation=Continuation.MORE),
            chunk(b"bcd", "2-4/6", continuation=Continuation.MORE),
        )
        self.assertEqual(self.handler.messages, [])
        self.receive(chunk(b"ef", "5-6/6"))
        self.assertEqual([r.code for r in self.responses()], [200, 200, 200])
        [message] = self.handler.messages
        self.assertEqual(message.body, b"abcdef")

    def test_interleaved(self) -> None:
        """
        R-146: chunks of two messages interleaved are kept apart.
        """
        self.receive(
            chunk(b"AA", "1-2/4", "first01", Continuation.MORE),
            chunk(b"bb", "1-2/4", "second1", Continuation.MORE),
            chunk(b"AA", "3-4/4", "first01"),
            chunk(b"bb", "3-4/4", "second1"),
        )
        self.assertEqual(
            [(m.messageID, m.body) for m in self.handler.messages],
            [("first01", b"AAAA"), ("second1", b"bbbb")],
        )

    def test_outOfOrder(self) -> None:
        """
        R-146: the last chunk first; the message is complete when the gap
        is filled, and the completing chunk gets the final response.
        """
        self.receive(chunk(b"world", "7-11/11"))
        self.assertEqual(self.handler.messages, [])
        self.receive(chunk(b"hello ", "1-6/11", continuation=Continuation.MORE))
        [message] = self.handler.messages
        self.assertEqual(message.body, b"hello world")
        self.assertEqual(message.header("Byte-Range"), "1-6/11")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unknownTotal(self) -> None:
        """
        R-146: with total C{*} the C{$} chunk defines the length.
        """
        self.receive(
            chunk(b"abc", "1-3/*", continuation=Continuation.MORE),
            chunk(b"de", "4-5/*"),
        )
        self.assertEqual(self.handler.messages[0].body, b"abcde")

    def test_aborted(self) -> None:
        """
        A message ended with C{#} is dropped.
        """
        self.receive(
            chunk(b"abc", "1-3/10", continuation=Continuation.MORE),
            chunk(b"", "4-3/10", continuation=Continuation.ABORT),
        )
        self.assertEqual(self.handler.messages, [])
        self.assertEqual([r.code for r in self.responses()], [200, 200])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_reassemblyTimeout(self) -> None:
        """
        R-067: a partial message whose next chunk does not come is dropped.
        """
        self.receive(chunk(b"abc", "1-3/10", continuation=Continuation.MORE))
        self.clock.advance(self.session.reassemblyTimeout)
        self.receive(chunk(b"defghij", "4-10/10"))
        self.assertEqual(self.handler.messages, [])

    def test_tooLarge(self) -> None:
        """
        R-126, R-136: a declared total above the limit gets 413, and so do
        later chunks of that message.
        """
        self.receive(
            chunk(b"a" * 100, "1-100/999999", continuation=Continuation.MORE),
            chunk(b"a" * 100, "101-200/999999", continuation=Continuation.MORE),
        )
        self.assertEqual([r.code for r in self.responses()], [413, 413])

    def test_refusalsLogged(self) -> None:
        """
        Each refusal of a received SEND (413, 415) is one warning naming the
        transaction, the session, the status and why; later chunks of an
        already refused message add no line.
        """
        self.session.acceptTypes = ("message/cpim",)
        with capturedLogs() as logs:
            self.receive(
                chunk(
                    b"a" * 100, "1-100/999999",
                    continuation=Continuation.MORE, contentType="message/cpim",
                ),
                chunk(
                    b"a" * 100, "101-200/999999",
                    continuation=Continuation.MORE, contentType="message/cpim",
                ),
                chunk(b"x", "1-1/1", "msg0002", contentType="image/png"),
            )
        refusals = [e for e in logs if "refused with" in e.get("log_format", "")]
        self.assertEqual([e["code"] for e in refusals], [413, 415])
        self.assertIn("max_message_size", refusals[0]["reason"])
        self.assertIn("image/png", refusals[1]["reason"])
        self.assertEqual(refusals[1]["msrpSessionID"], str(self.session.localURI))

    def test_tooLargeUndeclared(self) -> None:
        """
        R-126: chunks growing past the limit without a total get 413.
        """
        self.receive(chunk(b"a" * 100, "19950-20049/*", continuation=Continuation.MORE))
        self.assertEqual([r.code for r in self.responses()], [413])

    def test_unsupportedType(self) -> None:
        """
        R-147: a type outside accept-types gets 415; multipart/mixed and
        multipart/alternative are always accepted.
        """
        self.session.acceptTypes = ("message/cpim",)
        self.receive(
            chunk(b"x", "1-1/1", "msg0001", contentType="image/png"),
            chunk(b"x", "1-1/1", "msg0002", contentType="multipart/mixed; boundary=b"),
            chunk(
                b"x",
                "1-1/1",
                "msg0003",
                contentType="multipart/alternative; boundary=b",
            ),
            chunk(b"x", "1-1/1", "msg0004", contentType="message/CPIM"),
        )
        self.assertEqual([r.code for r in self.responses()], [415, 200, 200, 200])

    def test_failureReportNo(self) -> None:
        """
        R-139: C{Failure-Report: no}: neither 200 nor an error response.
        """
        self.session.acceptTypes = ("message/cpim",)
        no = (("Failure-Report", "no"),)
        self.receive(
            chunk(b"x", "1-1/1", "msg0001", extra=no),
            chunk(b"x", "1-1/1", "msg0002", contentType="message/cpim", extra=no),
        )
        self.assertEqual(self.out(), [])
        self.assertEqual(len(self.handler.messages), 1)

    def test_failureReportPartial(self) -> None:
        """
        R-139: C{Failure-Report: partial}: errors are answered, success is
        not.
        """
        self.session.acceptTypes = ("message/cpim",)
        partial = (("Failure-Report", "partial"),)
        self.receive(
            chunk(b"x", "1-1/1", "msg0001", contentType="message/cpim", extra=partial),
            chunk(b"x", "1-1/1", "msg0002", extra=partial),
        )
        self.assertEqual([r.code for r in self.responses()], [415])

    def test_badRequests(self) -> None:
        """
        Missing Message-ID or malformed Byte-Range: 400.
        """
        noID = buildRequest(
            "SEND", (LOCAL,), (REMOTE,), [], body=b"x", contentType="text/plain"
        )
        self.receive(noID, chunk(b"x", "0-1/1"), chunk(b"xyz", "1-3/2"))
        self.assertEqual([r.code for r in self.responses()], [400, 400, 400])

    def test_bodilessSend(self) -> None:
        """
        R-157: the peer's opening bodiless SEND gets 200 and no delivery.
        """
        self.receive(chunk(None, "1-0/0"))
        self.assertEqual([r.code for r in self.responses()], [200])
        self.assertEqual(self.handler.messages, [])

    def test_successReportGenerated(self) -> None:
        """
        R-141: C{Success-Report: yes}: after the 200 a REPORT with the
        Message-ID, C{Status: 000 200} and the whole range goes to the
        sender's From-Path; it is never answered.
        """
        self.receive(
            chunk(
                b"abc",
                "1-3/5",
                continuation=Continuation.MORE,
                extra=(("Success-Report", "yes"),),
            ),
            chunk(b"de", "4-5/5", extra=(("Success-Report", "yes"),)),
        )
        first, second, report = self.out()
        assert isinstance(report, MSRPRequest)
        self.assertEqual([first.code, second.code], [200, 200])  # type: ignore[union-attr]
        self.assertEqual(report.method, "REPORT")
        self.assertEqual(report.messageID, "msg0001")
        self.assertEqual(report.status, Status(0, 200, "OK"))
        self.assertEqual(report.byteRange, ByteRange(1, 5, 5))
        self.assertEqual(report.toPath, (REMOTE,))
        self.assertIsNone(report.header("Success-Report"))

    def test_noSuccessReportByDefault(self) -> None:
        """
        R-141: no success REPORT when Success-Report is absent.
        """
        self.receive(chunk(b"abc", "1-3/3"))
        self.assertEqual(len(self.out()), 1)

    def test_handlerStatus(self) -> None:
        """
        The handler's status (here from a L{Deferred}) answers the final
        chunk; an error means no success REPORT.
        """
        d: Deferred[int] = Deferred()
        self.handler.messageResult = d
        self.receive(chunk(b"abc", "1-3/3", extra=(("Success-Report", "yes"),)))
        self.assertEqual(self.out(), [])
        d.callback(403)
        [response] = self.responses()
        self.assertEqual(response.code, 403)

    def test_handlerRaises(self) -> None:
        """
        A handler exception is logged and answered 403.
        """
        self.handler.messageResult = None
        self.handler.messageReceived = lambda message: 1 / 0  # type: ignore[method-assign]
        self.receive(chunk(b"abc", "1-3/3"))
        [response] = self.responses()
        self.assertEqual(response.code, 403)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_sendFailureReport(self) -> None:
        """
        R-140: a gateway answers 200 first and reports a later failure with
        C{Status: 000 403} and the whole range.
        """
        self.receive(chunk(b"abc", "1-3/3"))
        self.responses()
        [message] = self.handler.messages
        self.assertTrue(self.session.sendFailureReport(message, 403, "room refused"))
        [report] = self.out()
        assert isinstance(report, MSRPRequest)
        self.assertEqual(report.method, "REPORT")
        self.assertEqual(report.status, Status(0, 403, "room refused"))
        self.assertEqual(report.byteRange, ByteRange(1, 3, 3))
        self.assertEqual(report.messageID, "msg0001")

    def test_sendFailureReportNo(self) -> None:
        """
        R-139: no failure REPORT when the sender said Failure-Report: no.
        """
        self.receive(chunk(b"abc", "1-3/3", extra=(("Failure-Report", "no"),)))
        [message] = self.handler.messages
        self.assertFalse(self.session.sendFailureReport(message, 403))
        self.assertEqual(self.out(), [])

    def test_responseInterleavedWithOwnSend(self) -> None:
        """
        R-135: while a large SEND of the session waits for the transport,
        the response to an incoming chunk goes first.
        """
        self.connection.pauseProducing()
        self.session.sendMessage("text/plain", b"q" * 8000)
        self.receive(chunk(b"abc", "1-3/3"))
        self.connection.resumeProducing()
        events = self.out()
        self.assertIsInstance(events[0], MSRPResponse)
        self.assertEqual(len(events), 5)


class ChunkFieldsTests(SynchronousTestCase):
    """
    The one-pass reading of a SEND's headers gives what the accessors give.
    """

    NAMES = [
        "Message-ID",
        "message-id",
        "Byte-Range",
        "BYTE-RANGE",
        "Success-Report",
        "success-report",
        "Failure-Report",
        "failure-REPORT",
        "Content-Type",
        "content-type",
        "X-Other",
    ]
    VALUES = {
        "message-id": ["abcd1234", "ab", "a b", "abcd-.=%", ""],
        "byte-range": ["1-5/5", "1-*/*", "0-1/1", "3-1/5", "1-6/5", "x", "3-4/*"],
        "success-report": ["yes", "no", "Yes", "maybe"],
        "failure-report": ["yes", "no", "partial", "NO", ""],
        "content-type": ["text/plain", "", "a/b;c=d"],
        "x-other": ["v"],
    }

    def outcome(self, read: Any) -> tuple[Any, ...]:
        """
        What a reading returns or raises.
        """
        try:
            return ("values", read())
        except MSRPParseError as e:
            return ("error", e.code, e.reason)

    def test_sameAsAccessors(self) -> None:
        """
        Random header sets, with case variants, duplicates and malformed
        values: the same values, or the same error.
        """
        rng = random.Random(4975)
        # The caches of one session, filled as the readings go.
        slots = dict(_FIELD_SLOTS)
        byteRanges: dict[str, ByteRange] = {}
        for _ in range(3000):
            names = rng.sample(self.NAMES, rng.randint(0, 7))
            names += rng.sample(self.NAMES, rng.randint(0, 2))
            headers = tuple(
                MSRPHeader(name, rng.choice(self.VALUES[name.lower()]))
                for name in names
            )
            request = MSRPRequest(
                "abcd1234", "SEND", (LOCAL,), (REMOTE,), headers, b"x"
            )
            self.assertEqual(
                self.outcome(lambda: _chunkFields(request, slots, byteRanges)),
                self.outcome(
                    lambda: (
                        request.messageID,
                        request.byteRange,
                        request.successReport,
                        request.failureReport,
                        request.contentType,
                    )
                ),
                headers,
            )
