# -*- test-case-name: tests.msrp.test_protocol -*-
"""
Tests for L{stoxgw.msrp.protocol}: dispatch, parse errors, the send
scheduler and backpressure.  Also the helpers the session and endpoint
tests share.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from stoxgw.msrp.builders import buildRequest, buildResponse
from stoxgw.msrp.chunks import ChunkedSend, ChunkSource, SingleRequest
from stoxgw.msrp.interfaces import IMSRPConnectionUser, IMSRPSessionRegistry
from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    MSRPRequest,
    MSRPResponse,
    Status,
)
from stoxgw.msrp.parser import MSRPEvent, MSRPParser
from stoxgw.msrp.protocol import MSRPConnection
from stoxgw.msrp.reports import buildReport, responseTo
from stoxgw.msrp.uri import MSRPURI

LOCAL = MSRPURI.fromString("msrp://10.0.0.1:2855/localsession;tcp")
OTHER = MSRPURI.fromString("msrp://10.0.0.1:2855/othersession;tcp")
REMOTE = MSRPURI.fromString("msrp://192.168.1.1:7777/remotesession;tcp")


def written(transport: StringTransport) -> list[MSRPEvent]:
    """
    Parse and clear what was written to a transport.

    @param transport: The transport.
    @return: The messages.
    """
    events = MSRPParser().feed(transport.value())
    transport.clear()
    return events


def peerRequest(
    method: str = "SEND",
    body: bytes | None = b"hello",
    headers: list[tuple[str, str]] | None = None,
    continuation: Continuation = Continuation.END,
    toURI: MSRPURI = LOCAL,
    contentType: str | None = "text/plain",
) -> MSRPRequest:
    """
    Build a request the peer sends to C{toURI}.
    """
    if headers is None:
        headers = [
            ("Message-ID", "msg0001"),
            ("Byte-Range", f"1-{len(body or b'')}/{len(body or b'')}"),
        ]
    return buildRequest(
        method,
        (toURI,),
        (REMOTE,),
        headers,
        body=body,
        contentType=contentType if body is not None else None,
        continuation=continuation,
    )


class PausingTransport(StringTransport):
    """
    A transport whose buffer is "full" after every C{limit} bytes: it
    pauses its producer as a TCP transport does.
    """

    def __init__(self, limit: int = 0) -> None:
        super().__init__()
        self.limit = limit
        self.pending = 0
        self.noDelay: bool | None = None

    def write(self, data: bytes) -> None:
        super().write(data)
        self.pending += len(data)
        if self.pending > self.limit and self.producer is not None:
            self.pending = 0
            self.producer.pauseProducing()

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.noDelay = enabled


@implementer(IMSRPConnectionUser)
class FakeSession:
    """
    A session that records what its connection tells it.
    """

    def __init__(self, localURI: MSRPURI = LOCAL) -> None:
        self.localURI = localURI
        self.connection: MSRPConnection | None = None
        self.requests: list[MSRPRequest] = []
        self.lost: list[Failure] = []
        self.binds: list[bool] = []

    def bind(self, connection: MSRPConnection, active: bool) -> None:
        connection.attach(self)
        self.connection = connection
        self.binds.append(active)

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        self.requests.append(request)

    def connectionLost(self, connection: MSRPConnection, reason: Failure) -> None:
        self.lost.append(reason)


@implementer(IMSRPSessionRegistry)
class FakeRegistry:
    """
    A registry with a fixed set of sessions.
    """

    def __init__(self, *sessions: FakeSession) -> None:
        self.sessions = {session.localURI: session for session in sessions}
        self.opened: list[MSRPConnection] = []
        self.closed: list[MSRPConnection] = []

    def sessionFor(self, uri: MSRPURI) -> FakeSession | None:
        return self.sessions.get(uri)

    def connectionOpened(self, connection: MSRPConnection) -> None:
        self.opened.append(connection)

    def connectionClosed(self, connection: MSRPConnection) -> None:
        self.closed.append(connection)


class Listener:
    """
    A chunk listener that records events.
    """

    def __init__(self) -> None:
        self.writtenChunks: list[tuple[MSRPRequest, bool]] = []
        self.responses: list[tuple[MSRPRequest, MSRPResponse]] = []

    def chunkWritten(self, request: MSRPRequest, last: bool) -> None:
        self.writtenChunks.append((request, last))

    def responseReceived(self, request: MSRPRequest, response: MSRPResponse) -> None:
        self.responses.append((request, response))


def connect(
    registry: Any = None, transport: StringTransport | None = None, **kwargs: Any
) -> tuple[MSRPConnection, StringTransport]:
    """
    Make a connection on a string transport.
    """
    connection = MSRPConnection(registry=registry, **kwargs)
    transport = StringTransport() if transport is None else transport
    connection.makeConnection(transport)
    return connection, transport


class LifecycleTests(SynchronousTestCase):
    """
    Connection set-up and loss.
    """

    def test_interfaces(self) -> None:
        """
        The connection is a push producer; the fakes provide the interfaces
        they claim.
        """
        connection, _ = connect()
        self.assertTrue(verifyObject(IPushProducer, connection))
        self.assertTrue(verifyObject(IMSRPConnectionUser, FakeSession()))
        self.assertTrue(verifyObject(IMSRPSessionRegistry, FakeRegistry()))

    def test_noDelayAndProducer(self) -> None:
        """
        TCP_NODELAY is set where the transport supports it and the
        connection registers as a streaming producer.
        """
        transport = PausingTransport(1 << 20)
        registry = FakeRegistry()
        connection, _ = connect(registry, transport)
        self.assertIs(transport.noDelay, True)
        self.assertIs(transport.producer, connection)
        self.assertTrue(transport.streaming)
        self.assertEqual(registry.opened, [connection])

    def test_connectionLost(self) -> None:
        """
        R-145: every bound session is told, once; the registry too.
        """
        session = FakeSession()
        registry = FakeRegistry()
        connection, _ = connect(registry)
        session.bind(connection, True)
        connection.connectionLost(Failure(ConnectionError("gone")))
        connection.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(len(session.lost), 1)
        self.assertEqual(registry.closed, [connection])
        self.assertFalse(connection.open)

    def test_detachLastClosesIdle(self) -> None:
        """
        RFC 4975 section 5.4: the connection closes once no session uses
        it, not before.
        """
        first, second = FakeSession(LOCAL), FakeSession(OTHER)
        connection, transport = connect()
        first.bind(connection, True)
        second.bind(connection, True)
        connection.detach(first)
        self.assertFalse(transport.disconnecting)
        connection.detach(second)
        self.assertTrue(transport.disconnecting)


class DispatchTests(SynchronousTestCase):
    """
    Requests go to sessions, responses to transactions.
    """

    def test_boundSession(self) -> None:
        """
        A request whose To-Path is a bound session's URI goes to it.
        """
        session = FakeSession()
        connection, transport = connect()
        session.bind(connection, False)
        request = peerRequest()
        connection.dataReceived(request.serialize())
        self.assertEqual(session.requests, [request])
        self.assertEqual(transport.value(), b"")

    def test_firstRequestBinds(self) -> None:
        """
        R-144: the first request over an accepted connection binds the
        session its To-Path names.
        """
        session = FakeSession()
        connection, _ = connect(FakeRegistry(session))
        connection.dataReceived(peerRequest().serialize())
        self.assertIs(session.connection, connection)
        self.assertEqual(session.binds, [False])
        self.assertEqual(len(session.requests), 1)

    def test_unknownSession(self) -> None:
        """
        R-143: an unknown To-Path URI gets 481, addressed back.
        """
        connection, transport = connect(FakeRegistry())
        request = peerRequest()
        with capturedLogs() as logs:
            connection.dataReceived(request.serialize())
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 481)
        self.assertEqual(response.transactionID, request.transactionID)
        self.assertEqual(response.toPath, (REMOTE,))
        self.assertEqual(
            logs[0]["peer"], "IPv4Address(type='TCP', host='192.168.1.1', port=54321)"
        )
        self.assertEqual(logs[-1]["transactionID"], request.transactionID)

    def test_unknownSessionLoggedOnce(self) -> None:
        """
        A peer sending many requests for no session gets a 481 for each,
        but the log gets one warning for the connection, and one line with
        the count of the others when the connection ends (issue 11: a
        flood must not grow the log, or memory where logs are kept).
        """
        connection, transport = connect(FakeRegistry())
        with capturedLogs() as logs:
            for _ in range(50):
                connection.dataReceived(peerRequest().serialize())
            warned = [e for e in logs if e["log_level"].name == "warn"]
            connection.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([r.code for r in written(transport)], [481] * 50)
        self.assertEqual(len(warned), 1)
        [summary] = [e for e in logs if e.get("count") is not None]
        self.assertEqual(summary["count"], 49)

    def test_unknownSessionFailureReportNo(self) -> None:
        """
        R-139: no 481 for a request with C{Failure-Report: no}.
        """
        connection, transport = connect(FakeRegistry())
        request = peerRequest(
            headers=[("Message-ID", "msg0001"), ("Failure-Report", "no")]
        )
        connection.dataReceived(request.serialize())
        self.assertEqual(transport.value(), b"")

    def test_boundElsewhere(self) -> None:
        """
        R-144: a session bound to another connection gets 506.
        """
        session = FakeSession()
        registry = FakeRegistry(session)
        first, _ = connect(registry)
        session.bind(first, False)
        second, transport = connect(registry)
        second.dataReceived(peerRequest().serialize())
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 506)
        self.assertEqual(session.requests, [])

    def test_unknownMethod(self) -> None:
        """
        R-148: an extension method this implementation does not know gets
        501.
        """
        session = FakeSession()
        connection, transport = connect(FakeRegistry(session))
        connection.dataReceived(peerRequest("FROB", body=None).serialize())
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 501)
        self.assertEqual(session.requests, [])

    def test_reportNeverAnswered(self) -> None:
        """
        R-142: a REPORT gets no response, not even 481.
        """
        connection, transport = connect(FakeRegistry())
        report = buildReport(
            (LOCAL,), (REMOTE,), "msg0001", Status(0, 200, "OK"), ByteRange(1, 5, 5)
        )
        connection.dataReceived(report.serialize())
        self.assertEqual(transport.value(), b"")

    def test_twoURIsToPath(self) -> None:
        """
        R-143: at an endpoint the To-Path holds one URI; more is not one of
        our sessions (481).
        """
        session = FakeSession()
        connection, transport = connect(FakeRegistry(session))
        request = buildRequest(
            "SEND", (OTHER, LOCAL), (REMOTE,), [("Message-ID", "m123")]
        )
        connection.dataReceived(request.serialize())
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 481)

    def test_responseToTransaction(self) -> None:
        """
        A response goes to the source of the request with its transaction
        id; unknown ones are dropped.
        """
        session = FakeSession()
        connection, transport = connect()
        session.bind(connection, True)
        listener = Listener()
        request = buildRequest(
            "NICKNAME", (REMOTE,), (LOCAL,), [("Use-Nickname", '"a"')]
        )
        connection.sendStream(session, SingleRequest(request, listener))
        self.assertEqual(listener.writtenChunks, [(request, True)])
        self.assertEqual(connection.pendingTransactions, 1)
        response = buildResponse(request.transactionID, 200, "OK", (LOCAL,), (REMOTE,))
        connection.dataReceived(response.serialize())
        connection.dataReceived(response.serialize())
        self.assertEqual(listener.responses, [(request, response)])
        self.assertEqual(connection.pendingTransactions, 0)


class ParseErrorTests(SynchronousTestCase):
    """
    Recoverable errors are answered, fatal ones close the connection.
    """

    def test_recoverable(self) -> None:
        """
        R-127: a request with a malformed header field gets 400 and the
        connection goes on.
        """
        session = FakeSession()
        connection, transport = connect()
        session.bind(connection, False)
        bad = (
            b"MSRP abcd1234 SEND\r\nTo-Path: " + str(LOCAL).encode() + b"\r\n"
            b"From-Path: " + str(REMOTE).encode() + b"\r\n"
            b"Bad Header\r\n-------abcd1234$\r\n"
        )
        connection.dataReceived(bad + peerRequest().serialize())
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 400)
        self.assertEqual(response.transactionID, "abcd1234")
        self.assertEqual(len(session.requests), 1)

    def test_recoverableFailureReportNo(self) -> None:
        """
        R-139: a malformed request that says C{Failure-Report: no} gets no
        response.
        """
        connection, transport = connect()
        bad = (
            b"MSRP abcd1234 SEND\r\nTo-Path: " + str(LOCAL).encode() + b"\r\n"
            b"From-Path: " + str(REMOTE).encode() + b"\r\n"
            b"Failure-Report: no\r\nBad Header\r\n-------abcd1234$\r\n"
        )
        connection.dataReceived(bad)
        self.assertEqual(transport.value(), b"")
        self.assertFalse(transport.disconnecting)

    def test_fatal(self) -> None:
        """
        Garbage instead of a start line is logged (peer, error) and closes
        the connection.
        """
        connection, transport = connect()
        with capturedLogs() as logs:
            connection.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")
        [event] = [e for e in logs if "error" in e]
        self.assertIn("peer", event)
        self.assertEqual(event["log_level"].name, "warn")


class RespondTests(SynchronousTestCase):
    """
    L{MSRPConnection.respond} applies the report rules.
    """

    def test_partial(self) -> None:
        """
        R-139: C{Failure-Report: partial} gets error responses, never 200.
        """
        connection, transport = connect()
        request = peerRequest(
            headers=[("Message-ID", "msg0001"), ("Failure-Report", "partial")]
        )
        self.assertFalse(connection.respond(request, 200))
        self.assertTrue(connection.respond(request, 415))
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 415)
        self.assertEqual(response.fromPath, (LOCAL,))

    def test_report(self) -> None:
        """
        R-142: nothing answers a REPORT.
        """
        connection, transport = connect()
        report = buildReport((LOCAL,), (REMOTE,), "m123", Status(0, 200), None)
        self.assertFalse(connection.respond(report, 400))
        self.assertEqual(transport.value(), b"")


class SchedulerTests(SynchronousTestCase):
    """
    Chunking, priorities, fairness and backpressure.
    """

    def chunked(
        self, size: int, listener: Listener, uri: MSRPURI = LOCAL
    ) -> ChunkedSend:
        """
        A message of C{size} octets from C{uri}.
        """
        return ChunkedSend(
            (REMOTE,),
            (uri,),
            "msg" + uri.sessionID[:5],
            "text/plain",  # type: ignore[index]
            bytes(range(256)) * (size // 256) + b"x" * (size % 256),
            listener,
        )

    def test_chunked(self) -> None:
        """
        R-134, R-135: 10 kB go as five chunks of at most 2048 octets with
        exact Byte-Ranges, C{+} then C{$}, one Message-ID; the bodies add
        up to the message.
        """
        session = FakeSession()
        connection, transport = connect()
        session.bind(connection, True)
        listener = Listener()
        source = self.chunked(10240, listener)
        connection.sendStream(session, source)
        chunks = written(transport)
        self.assertEqual(len(chunks), 5)
        ranges = []
        body = b""
        for chunk in chunks:
            assert isinstance(chunk, MSRPRequest)
            ranges.append(chunk.header("Byte-Range"))
            self.assertEqual(chunk.messageID, "msglocal")
            self.assertLessEqual(len(chunk.body or b""), 2048)
            body += chunk.body or b""
        self.assertEqual(
            ranges,
            [
                "1-2048/10240",
                "2049-4096/10240",
                "4097-6144/10240",
                "6145-8192/10240",
                "8193-10240/10240",
            ],
        )
        self.assertEqual(
            [c.continuation for c in chunks if isinstance(c, MSRPRequest)],
            [Continuation.MORE] * 4 + [Continuation.END],
        )
        self.assertEqual(body, bytes(range(256)) * 40)
        self.assertEqual(
            [last for _, last in listener.writtenChunks], [False] * 4 + [True]
        )
        self.assertEqual(connection.pendingTransactions, 5)

    def test_unevenAndSmallChunkSize(self) -> None:
        """
        R-134: the last chunk is short; a smaller connection chunk size wins.
        """
        session = FakeSession()
        connection, transport = connect(chunkSize=1000)
        session.bind(connection, True)
        connection.sendStream(session, self.chunked(2500, Listener()))
        ranges = [
            c.header("Byte-Range")
            for c in written(transport)
            if isinstance(c, MSRPRequest)
        ]
        self.assertEqual(ranges, ["1-1000/2500", "1001-2000/2500", "2001-2500/2500"])

    def test_empty(self) -> None:
        """
        R-134: an empty message is one chunk with C{Byte-Range: 1-0/0}.
        """
        session = FakeSession()
        connection, transport = connect()
        session.bind(connection, True)
        connection.sendStream(session, self.chunked(0, Listener()))
        [chunk] = written(transport)
        assert isinstance(chunk, MSRPRequest)
        self.assertEqual(chunk.header("Byte-Range"), "1-0/0")
        self.assertEqual(chunk.body, b"")
        self.assertIs(chunk.continuation, Continuation.END)

    def test_responseBetweenChunks(self) -> None:
        """
        R-135: a response due while a large SEND is going out is written
        before the SEND's next chunk.
        """
        session = FakeSession()
        transport = PausingTransport(0)
        connection, _ = connect(transport=transport)
        session.bind(connection, True)
        connection.sendStream(session, self.chunked(10240, Listener()))
        first = written(transport)
        self.assertEqual(len(first), 1)
        connection.dataReceived(peerRequest().serialize())
        # The SEND arrived for the session; it answers while paused.
        connection.respond(session.requests[0], 200)
        self.assertEqual(transport.value(), b"")
        connection.resumeProducing()
        [response] = written(transport)
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.transactionID, session.requests[0].transactionID)
        connection.resumeProducing()
        [chunk] = written(transport)
        assert isinstance(chunk, MSRPRequest)
        self.assertEqual(chunk.header("Byte-Range"), "2049-4096/10240")

    def test_fairInterleaving(self) -> None:
        """
        Two sessions' messages take turns chunk by chunk; each session's
        chunks stay in order.
        """
        first, second = FakeSession(LOCAL), FakeSession(OTHER)
        connection, transport = connect()
        connection.pauseProducing()
        first.bind(connection, True)
        second.bind(connection, True)
        connection.sendStream(first, self.chunked(6000, Listener(), LOCAL))
        connection.sendStream(second, self.chunked(6000, Listener(), OTHER))
        connection.resumeProducing()
        order = [
            (c.fromPath[0].sessionID, c.header("Byte-Range"))
            for c in written(transport)
            if isinstance(c, MSRPRequest)
        ]
        self.assertEqual(
            order,
            [
                ("localsession", "1-2048/6000"),
                ("othersession", "1-2048/6000"),
                ("localsession", "2049-4096/6000"),
                ("othersession", "2049-4096/6000"),
                ("localsession", "4097-6000/6000"),
                ("othersession", "4097-6000/6000"),
            ],
        )

    def test_backpressure(self) -> None:
        """
        While the transport is paused nothing is serialized: a 100 kB body
        is held once, by its source, and cut as the transport drains.
        """
        session = FakeSession()
        transport = PausingTransport(4096)
        connection, _ = connect(transport=transport)
        session.bind(connection, True)
        source = self.chunked(100000, Listener())
        connection.sendStream(session, source)
        self.assertEqual(source.sentBytes, 2 * 2048)
        total = len(written(transport))
        while not source.done:
            connection.resumeProducing()
            total += len(written(transport))
        self.assertEqual(total, 49)

    def test_abort(self) -> None:
        """
        R-148: an aborted message makes no further chunks.
        """
        session = FakeSession()
        transport = PausingTransport(0)
        connection, _ = connect(transport=transport)
        session.bind(connection, True)
        source = self.chunked(10240, Listener())
        connection.sendStream(session, source)
        written(transport)
        source.abort()
        connection.resumeProducing()
        self.assertEqual(transport.value(), b"")

    def test_failureReportNoNotPending(self) -> None:
        """
        R-139: a chunk with C{Failure-Report: no} leaves no pending
        transaction.
        """
        session = FakeSession()
        connection, _ = connect()
        session.bind(connection, True)
        source = ChunkedSend(
            (REMOTE,),
            (LOCAL,),
            "m1234",
            "text/plain",
            b"hi",
            Listener(),
            headers=[("Failure-Report", "no")],
        )
        connection.sendStream(session, source)
        self.assertEqual(connection.pendingTransactions, 0)


class CountingTransport(StringTransport):
    """
    A string transport that records each write.
    """

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(data)
        super().write(data)

    def loseConnection(self) -> None:
        self.writes.append(b"<closed>")
        super().loseConnection()


class AnsweringSession(FakeSession):
    """
    A session that answers every request with 200 at once and can queue a
    message of its own while doing so.
    """

    sendAlso: ChunkSource | None = None

    def requestReceived(self, connection: MSRPConnection, request: MSRPRequest) -> None:
        super().requestReceived(connection, request)
        connection.respond(request, 200)
        if self.sendAlso is not None:
            source, self.sendAlso = self.sendAlso, None
            connection.sendStream(self, source)


class BatchingTests(SynchronousTestCase):
    """
    The responses due after one read are written with one transport write,
    in order, and never after what is written later.
    """

    def requests(self, count: int) -> list[MSRPRequest]:
        """
        Distinct peer SENDs.
        """
        return [
            peerRequest(
                headers=[("Message-ID", f"msg{n:04d}"), ("Byte-Range", "1-5/5")]
            )
            for n in range(count)
        ]

    def test_oneWritePerRead(self) -> None:
        """
        Three requests in one read: three responses in one write.
        """
        session = AnsweringSession()
        transport = CountingTransport()
        connection, _ = connect(FakeRegistry(session), transport)
        requests = self.requests(3)
        connection.dataReceived(b"".join(r.serialize() for r in requests))
        self.assertEqual(len(transport.writes), 1)
        responses = written(transport)
        self.assertEqual(
            [r.transactionID for r in responses],
            [r.transactionID for r in requests],
        )
        self.assertEqual(responses, [responseTo(r, 200) for r in requests])

    def test_orderWithOtherWrites(self) -> None:
        """
        A message queued while a read is handled is written after the
        responses due before it and before those due after it.
        """
        session = AnsweringSession()
        session.sendAlso = SingleRequest(
            buildRequest("SEND", (REMOTE,), (LOCAL,)), Listener()
        )
        transport = CountingTransport()
        connection, _ = connect(FakeRegistry(session), transport)
        requests = self.requests(2)
        connection.dataReceived(b"".join(r.serialize() for r in requests))
        kinds = [
            "response" if isinstance(e, MSRPResponse) else "request"
            for e in written(transport)
        ]
        self.assertEqual(kinds, ["response", "request", "response"])

    def test_writtenBeforeClosing(self) -> None:
        """
        Responses due before a fatal framing error are written before the
        connection is closed.
        """
        session = AnsweringSession()
        transport = CountingTransport()
        connection, _ = connect(FakeRegistry(session), transport)
        [request] = self.requests(1)
        connection.dataReceived(request.serialize() + b"garbage\r\n")
        self.assertEqual(
            transport.writes, [responseTo(request, 200).serialize(), b"<closed>"]
        )
