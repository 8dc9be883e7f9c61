# -*- test-case-name: tests.msrp.test_parser -*-
"""
Tests for L{stoxgw.msrp.parser}.
"""

from __future__ import annotations

import random
from typing import Callable, Iterator

from twisted.python.filepath import FilePath
from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.message import (
    ByteRange,
    Continuation,
    FailureReport,
    MSRPParseError,
    MSRPRequest,
    MSRPResponse,
    Status,
    SuccessReport,
)
from stoxgw.msrp.parser import MSRPEvent, MSRPParser, parseMessage
from stoxgw.msrp.uri import MSRPURI

FIXTURES = FilePath(__file__).parent().parent().child("fixtures").child("msrp")
SEEDS = [0, 1, 2, 3, 4, 42, 4975]

TO = b"To-Path: msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n"
FROM = b"From-Path: msrp://alicepc.example.com:7777/iau39soe2843z;tcp\r\n"
BOB = MSRPURI.fromString("msrp://bob.example.com:8888/9di4eae923wzd;tcp")
ALICE = MSRPURI.fromString("msrp://alicepc.example.com:7777/iau39soe2843z;tcp")


def fixtures(extension: str) -> list[tuple[str, bytes]]:
    """
    Load fixture files.

    @param extension: C{".msrp"} (valid messages) or C{".snippet"}.
    @return: C{(name, bytes)} pairs sorted by name.
    """
    return [
        (child.basename(), child.getContent())
        for child in sorted(FIXTURES.children())
        if child.basename().endswith(extension)
    ]


def fixture(name: str) -> bytes:
    """
    Load one fixture.

    @param name: The file name.
    @return: Its bytes.
    """
    return FIXTURES.child(name).getContent()


def send(tid: bytes, body: bytes, flag: bytes = b"$", extra: bytes = b"") -> bytes:
    """
    Make a SEND on the wire.

    @param tid: The transaction id.
    @param body: The body.
    @param flag: The continuation flag.
    @param extra: Extra header lines (with CRLFs).
    @return: The bytes.
    """
    return (
        b"MSRP " + tid + b" SEND\r\n" + TO + FROM + extra
        + b"Content-Type: text/plain\r\n\r\n" + body + b"\r\n-------" + tid + flag
        + b"\r\n"
    )


def describe(event: MSRPEvent) -> object:
    """
    Make an event comparable (exceptions compare by identity).

    @param event: A parser event.
    @return: The event itself for messages, a tuple of fields for errors.
    """
    if isinstance(event, MSRPParseError):
        return (
            "error",
            event.code,
            event.reason,
            event.fatal,
            event.transactionID,
            event.method,
            event.toPath,
            event.fromPath,
            event.headers,
        )
    return event


def feedAll(data: bytes, sizes: Iterator[int], **limits: int) -> list[object]:
    """
    Feed data in pieces.

    @param data: The stream.
    @param sizes: Piece sizes.
    @param limits: Parser limits.
    @return: The described events.
    """
    parser = MSRPParser(**limits)
    events: list[MSRPEvent] = []
    position = 0
    while position < len(data):
        size = next(sizes)
        events += parser.feed(data[position : position + size])
        position += size
    return [describe(event) for event in events]


def ones() -> Iterator[int]:
    """
    @return: An endless run of 1s (byte-by-byte feeding).
    """
    while True:
        yield 1


def randomSizes(seed: int, largest: int) -> Iterator[int]:
    """
    @param seed: The random seed.
    @param largest: The largest piece.
    @return: Endless random piece sizes.
    """
    rng = random.Random(seed)
    while True:
        yield rng.randint(1, largest)


class SplitInvarianceMixin:
    """
    Check that the events do not depend on how the stream is split.
    """

    assertEqual: Callable[..., None]

    def assertSplitInvariant(self, data: bytes, **limits: int) -> list[object]:
        """
        Feed C{data} whole, byte by byte and in random pieces; all give the
        same events.

        @param data: The stream.
        @param limits: Parser limits.
        @return: The described events.
        """
        whole = feedAll(data, iter([len(data)]), **limits)
        self.assertEqual(feedAll(data, ones(), **limits), whole)
        for seed in SEEDS:
            for largest in (7, 64, 700):
                self.assertEqual(
                    feedAll(data, randomSizes(seed, largest), **limits), whole
                )
        return whole


class FixtureTests(SplitInvarianceMixin, SynchronousTestCase):
    """
    The RFC 4975 and RFC 7701 examples in C{tests/fixtures/msrp} (R-127).
    """

    def test_fixturesPresent(self) -> None:
        """
        All 25 RFC 4975/7701 example messages and the 2 section 5.1
        snippets are there (the RFC 4976 relay examples are counted in
        L{tests.msrp.test_relay}).
        """
        names = [name for name, _ in fixtures(".msrp") if not name.startswith("rfc4976")]
        self.assertEqual(len(names), 25)
        self.assertEqual(len(fixtures(".snippet")), 2)

    def test_parseAndReserialize(self) -> None:
        """
        R-127: each example parses into exactly one message that
        re-serializes to exactly the same bytes.
        """
        for name, data in fixtures(".msrp"):
            with self.subTest(fixture=name):
                parser = MSRPParser()
                events = parser.feed(data)
                self.assertEqual(len(events), 1)
                message = events[0]
                self.assertIsInstance(message, (MSRPRequest, MSRPResponse))
                assert isinstance(message, (MSRPRequest, MSRPResponse))
                self.assertEqual(message.serialize(), data)
                self.assertEqual(parser.bufferedBytes, 0)
                self.assertFalse(parser.failed)

    def test_splits(self) -> None:
        """
        Each example gives the same message whole, byte by byte and in random
        splits (several seeds).
        """
        for name, data in fixtures(".msrp"):
            with self.subTest(fixture=name):
                events = self.assertSplitInvariant(data)
                self.assertEqual(len(events), 1)

    def test_trailingData(self) -> None:
        """
        A message followed by the start of the next one is returned; the rest
        waits.
        """
        for name, data in fixtures(".msrp"):
            with self.subTest(fixture=name):
                parser = MSRPParser()
                events = parser.feed(data + data[:20])
                self.assertEqual([describe(event) for event in events], [parseMessage(data)])
                self.assertEqual(parser.bufferedBytes, 20)
                self.assertEqual(parser.feed(data[20:]), [parseMessage(data)])

    def test_concatenated(self) -> None:
        """
        All examples (snippets included) in one stream give all messages, and
        the snippets their errors, in order, however the stream is split.
        """
        items = fixtures(".msrp") + fixtures(".snippet")
        random.Random(7975).shuffle(items)
        stream = b"".join(data for _, data in items)
        events = self.assertSplitInvariant(stream)
        self.assertEqual(len(events), len(items))
        for (name, data), event in zip(items, events):
            if name.endswith(".snippet"):
                assert isinstance(event, tuple)
                self.assertEqual(event[:3], ("error", 400, "To-Path must be header field 1"))
            else:
                self.assertEqual(event, parseMessage(data))

    def test_snippets(self) -> None:
        """
        The RFC 4975 section 5.1 fragments lack To-Path and From-Path: 400,
        recoverable, with the transaction id and method known.
        """
        for name, data in fixtures(".snippet"):
            with self.subTest(fixture=name):
                parser = MSRPParser()
                [error] = parser.feed(data)
                assert isinstance(error, MSRPParseError)
                self.assertEqual(error.code, 400)
                self.assertFalse(error.fatal)
                self.assertEqual(error.method, "SEND")
                self.assertIsNone(error.toPath)
                self.assertEqual(error.headers[0].name, "Message-ID")
                self.assertFalse(parser.failed)
                self.assertEqual(parser.bufferedBytes, 0)
                self.assertRaises(MSRPParseError, parseMessage, data)

    def test_send(self) -> None:
        """
        RFC 4975 section 11.6: fields of a SEND.
        """
        request = parseMessage(fixture("rfc4975-11.6-send-html.msrp"))
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.transactionID, "d93kswow")
        self.assertEqual(request.method, "SEND")
        self.assertEqual(request.toPath, (BOB,))
        self.assertEqual(request.fromPath, (ALICE,))
        self.assertEqual(request.messageID, "12339sdqwer")
        self.assertEqual(request.byteRange, ByteRange(1, 106, 106))
        self.assertEqual(request.successReport, SuccessReport.YES)
        self.assertEqual(request.failureReport, FailureReport.NO)
        self.assertEqual(request.contentType, "text/html")
        self.assertEqual(request.continuation, Continuation.END)
        assert request.body is not None
        self.assertTrue(request.body.startswith(b"<html><body>\r\n<p>Here"))
        self.assertTrue(request.body.endswith(b"</body></html>"))

    def test_report(self) -> None:
        """
        RFC 4975 section 11.6: a REPORT is bodiless and has a Status.
        """
        request = parseMessage(fixture("rfc4975-11.6-report.msrp"))
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.method, "REPORT")
        self.assertIsNone(request.body)
        self.assertEqual(request.status, Status(0, 200, "OK"))

    def test_chunks(self) -> None:
        """
        RFC 4975 section 11.4: continuation flags of two chunks.
        """
        first = parseMessage(fixture("rfc4975-11.4-send-cpim-chunk1.msrp"))
        second = parseMessage(fixture("rfc4975-11.4-send-cpim-chunk2.msrp"))
        assert isinstance(first, MSRPRequest) and isinstance(second, MSRPRequest)
        self.assertEqual(first.continuation, Continuation.MORE)
        self.assertEqual(second.continuation, Continuation.END)
        self.assertEqual(second.body, b"1234567890")
        assert first.body is not None
        self.assertEqual(len(first.body), 137)

    def test_nickname(self) -> None:
        """
        RFC 7701 section 9.2: NICKNAME is bodiless and carries Use-Nickname;
        the 425 response keeps its comment.
        """
        request = parseMessage(fixture("rfc7701-9.2-nickname-1.msrp"))
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.method, "NICKNAME")
        self.assertIsNone(request.body)
        self.assertIsNone(request.contentType)
        self.assertEqual(request.useNickname, "Alice the great")
        response = parseMessage(fixture("rfc7701-9.2-425.msrp"))
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.code, 425)
        self.assertEqual(response.comment, "Nickname reserved or already in use")

    def test_response(self) -> None:
        """
        RFC 4975 section 4: a 200 response.
        """
        response = parseMessage(fixture("rfc4975-4-200ok.msrp"))
        assert isinstance(response, MSRPResponse)
        self.assertEqual(response.transactionID, "a786hjs2")
        self.assertEqual((response.code, response.comment), (200, "OK"))


class FramingTests(SplitInvarianceMixin, SynchronousTestCase):
    """
    End-line detection and unusual but valid framing.
    """

    def test_endLineLookalikesInBody(self) -> None:
        """
        R-130: text resembling the end-line stays in the body unless it is
        exactly CRLF, seven hyphens, this transaction id, a flag and CRLF.
        """
        body = (
            b"lf only\n-------abcd$\r\n"  # not preceded by CRLF
            b"cr only\r-------abcd$\r\n"  # not preceded by CRLF
            b"x-------abcd$\r\n"  # not at line start
            b"\r\n-------abcd!\r\n"  # not a flag
            b"\r\n-------abcd$x"  # flag not followed by CRLF
            b"\r\n-------abcde$\r\n"  # a longer transaction id
            b"\r\n-------wxyz$\r\n"  # another transaction
            b"\r\n------abcd$\r\n"  # six hyphens
            b"\r\n-------abcd"  # at the very end
        )
        data = send(b"abcd", body)
        [request] = self.assertSplitInvariant(data)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.body, body)
        self.assertEqual(request.serialize(), data)

    def test_endLineInBodyEndsIt(self) -> None:
        """
        R-130: why senders must avoid their end-line in the body: the
        receiver ends the message there.
        """
        data = send(b"abcd", b"one\r\n-------abcd+\r\ntwo")
        events = MSRPParser().feed(data)
        assert isinstance(events[0], MSRPRequest)
        self.assertEqual(events[0].body, b"one")
        self.assertEqual(events[0].continuation, Continuation.MORE)
        assert isinstance(events[1], MSRPParseError)
        self.assertTrue(events[1].fatal)

    def test_manyMessages(self) -> None:
        """
        Many messages in one buffer, requests and responses mixed, all
        flags, bodies binary.
        """
        stream = b""
        for index in range(50):
            tid = b"t%04d" % (index,)
            flag = b"$+#"[index % 3 : index % 3 + 1]
            stream += send(tid, bytes(range(256)) * (index % 4), flag)
            stream += b"MSRP " + tid + b" 200 OK\r\n" + TO + FROM + b"-------" + tid + b"$\r\n"
        events = self.assertSplitInvariant(stream)
        self.assertEqual(len(events), 100)
        messages = [e for e in events if isinstance(e, (MSRPRequest, MSRPResponse))]
        self.assertEqual(b"".join(m.serialize() for m in messages), stream)

    def test_bodiless(self) -> None:
        """
        R-129: a bodiless SEND ends right after its last header.
        """
        data = b"MSRP abcd SEND\r\n" + TO + FROM + b"Message-ID: m123\r\n-------abcd$\r\n"
        [request] = self.assertSplitInvariant(data)
        assert isinstance(request, MSRPRequest)
        self.assertIsNone(request.body)
        self.assertEqual(request.serialize(), data)

    def test_emptyBody(self) -> None:
        """
        R-134: an empty body (C{1-0/0}) is kept apart from no body.
        """
        data = send(b"abcd", b"", extra=b"Byte-Range: 1-0/0\r\n")
        [request] = self.assertSplitInvariant(data)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.body, b"")
        self.assertEqual(request.serialize(), data)

    def test_chunkSizes(self) -> None:
        """
        R-136: chunks from 0 octets to the configured maximum are accepted.
        """
        for size in (0, 1, 2048, 65536):
            with self.subTest(size=size):
                data = send(b"abcd", b"\xaa" * size)
                parser = MSRPParser(maxChunkBytes=65536)
                [request] = parser.feed(data)
                assert isinstance(request, MSRPRequest)
                self.assertEqual(request.body, b"\xaa" * size)

    def test_unknownMethod(self) -> None:
        """
        Extension methods parse (the protocol layer answers 501, R-148).
        """
        data = b"MSRP abcd FROBNICATE\r\n" + TO + FROM + b"-------abcd$\r\n"
        [request] = self.assertSplitInvariant(data)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(request.method, "FROBNICATE")
        self.assertIsNone(request.knownMethod)

    def test_relayPaths(self) -> None:
        """
        R-168: paths with several URIs (relays).
        """
        data = (
            b"MSRP abcd SEND\r\n"
            b"To-Path: msrps://relay.example.com:2855/r1;tcp "
            b"msrp://bob.example.com:8888/9di4eae923wzd;tcp\r\n" + FROM
            + b"-------abcd$\r\n"
        )
        [request] = self.assertSplitInvariant(data)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(len(request.toPath), 2)
        self.assertEqual(request.toPath[-1], BOB)

    def test_emptyFeed(self) -> None:
        """
        Feeding nothing gives nothing.
        """
        parser = MSRPParser()
        self.assertEqual(parser.feed(b""), [])
        self.assertEqual(parser.bufferedBytes, 0)


class ErrorTests(SplitInvarianceMixin, SynchronousTestCase):
    """
    Errors carry a status code and what is needed to address a response;
    recoverable ones let parsing continue, fatal ones stop it.
    """

    NEXT = send(b"next1", b"after")

    def assertRecovers(self, events: list[object]) -> None:
        """
        The last event is the well-formed message that followed.

        @param events: Described events.
        """
        self.assertEqual(events[-1], parseMessage(self.NEXT))

    def errorOf(self, data: bytes, **limits: int) -> tuple[object, ...]:
        """
        Parse C{data} then L{NEXT}, split-invariantly; return the error.

        @param data: A rejected message.
        @param limits: Parser limits.
        @return: The described error.
        """
        events = self.assertSplitInvariant(data + self.NEXT, **limits)
        self.assertEqual(len(events), 2)
        self.assertRecovers(events)
        error = events[0]
        assert isinstance(error, tuple)
        return error

    def test_garbage(self) -> None:
        """
        Bytes that are not an MSRP start line are fatal (400): the parser
        fails and ignores further input.
        """
        for data in [b"GET / HTTP/1.1\r\n\r\n", b"\r\n" + self.NEXT, b"msrp abcd SEND\r\n"]:
            with self.subTest(data=data):
                events = self.assertSplitInvariant(data)
                self.assertEqual(events, [("error", 400, "expected an MSRP start line",
                                           True, None, None, None, None, ())])
                parser = MSRPParser()
                parser.feed(data)
                self.assertTrue(parser.failed)
                self.assertEqual(parser.feed(self.NEXT), [])
                self.assertEqual(parser.bufferedBytes, 0)

    def test_badTransactionID(self) -> None:
        """
        A start line without a valid transaction id is fatal.
        """
        for line in [b"MSRP abc SEND", b"MSRP -abcd SEND", b"MSRP " + b"a" * 33 + b" SEND",
                     b"MSRP abcd_ SEND", b"MSRP  abcd SEND"]:
            with self.subTest(line=line):
                [error] = self.assertSplitInvariant(line + b"\r\n" + self.NEXT)
                self.assertEqual(error, ("error", 400, "malformed start line", True,
                                         None, None, None, None, ()))

    def test_startLineTooLong(self) -> None:
        """
        A start line longer than the header limit is fatal, whether or not
        its CRLF has arrived.
        """
        line = b"MSRP abcd 200 " + b"x" * 200
        for data in [line, line + b"\r\n" + FROM + b"-------abcd$\r\n"]:
            with self.subTest(complete=data != line):
                [error] = self.assertSplitInvariant(data, maxHeaderBytes=100)
                assert isinstance(error, tuple)
                self.assertEqual(error[1:4], (400, "start line too long", True))

    def test_malformedStartLineRest(self) -> None:
        """
        A start line with a valid id but no valid method or status is
        rejected (400) with the id, and the transaction is skipped.
        """
        for rest in [b"send", b"SEND extra", b"20 OK", b"", b"2000 OK"]:
            with self.subTest(rest=rest):
                line = b"MSRP abcd " + rest if rest else b"MSRP abcd"
                data = line + b"\r\n" + TO + FROM + b"\r\nbody\r\n-------abcd$\r\n"
                error = self.errorOf(data)
                self.assertEqual(error[1:7], (400, "malformed start line", False, "abcd",
                                              None, None))

    def test_malformedHeader(self) -> None:
        """
        A malformed header field gives 400 with the id, method, paths and the
        fields parsed before it; the body is skipped.
        """
        data = send(b"abcd", b"hello", extra=b"Message-ID: m1234\r\nno colon here\r\n")
        error = self.errorOf(data)
        self.assertEqual(error[1:8], (400, "malformed header field", False, "abcd", "SEND",
                                      (BOB,), (ALICE,)))
        self.assertEqual([field.name for field in error[8]],  # type: ignore[attr-defined]
                         ["To-Path", "From-Path", "Message-ID"])

    def test_headerProblems(self) -> None:
        """
        Each header problem gives a recoverable 400 with its reason.
        """
        cases = [
            (b"MSRP abcd SEND\r\n" + FROM + TO + b"-------abcd$\r\n",
             "To-Path must be header field 1"),
            (b"MSRP abcd SEND\r\n" + TO + b"Message-ID: m1234\r\n-------abcd$\r\n",
             "From-Path must be header field 2"),
            (b"MSRP abcd SEND\r\n" + TO + b"-------abcd$\r\n", "missing From-Path"),
            (b"MSRP abcd SEND\r\n-------abcd$\r\n", "missing To-Path"),
            (b"MSRP abcd SEND\r\nTo-Path: sip:bob@example.com\r\n" + FROM
             + b"-------abcd$\r\n",
             "malformed To-Path: malformed MSRP URI: 'sip:bob@example.com'"),
            (b"MSRP abcd SEND\r\n" + TO + FROM + b"X-A: \xff\r\n-------abcd$\r\n",
             "header field is not UTF-8"),
            (b"MSRP abcd SEND\r\n" + TO + FROM + b"X-A: a\x00b\r\n-------abcd$\r\n",
             "control character in X-A"),
            (b"MSRP abcd SEND\r\n" + TO + FROM + b" X-A: folded\r\n-------abcd$\r\n",
             "malformed header field"),
            (b"MSRP abcd 200 OK\r\n" + TO + FROM + b"\r\nbody\r\n-------abcd$\r\n",
             "a response has no body"),
            (b"MSRP abcd 200 OK\r\n" + TO + FROM + b"-------abcd+\r\n",
             "a response ends with $"),
            (b"MSRP abcd 200 \xffOK\r\n" + TO + FROM + b"-------abcd$\r\n",
             "comment is not UTF-8"),
            (b"MSRP abcd SEND\r\n" + TO + FROM + b"Content-Type: text/plain\r\n\r\n"
             b"-------abcd$\r\n", "missing CRLF between body and end-line"),
        ]
        for data, reason in cases:
            with self.subTest(reason=reason):
                error = self.errorOf(data)
                self.assertEqual(error[1:5], (400, reason, False, "abcd"))

    def test_badToPathAddress(self) -> None:
        """
        When To-Path is malformed but From-Path is fine, the error still
        carries From-Path so that a response can be addressed (R-138).
        """
        data = b"MSRP abcd SEND\r\nTo-Path: msrp://x\r\n" + FROM + b"-------abcd$\r\n"
        [error] = MSRPParser().feed(data)
        assert isinstance(error, MSRPParseError)
        self.assertEqual(error.reason, "malformed To-Path: missing transport parameter: "
                                       "'msrp://x'")
        self.assertIsNone(error.toPath)
        self.assertEqual(error.fromPath, (ALICE,))
        self.assertEqual(error.header("from-path"), str(ALICE))

    def test_headerLimit(self) -> None:
        """
        A header block over the limit gives a recoverable 400 with the id,
        method and the paths seen so far; memory stays bounded while the rest
        of the transaction is skipped.
        """
        big = b"X-Big: " + b"y" * 500 + b"\r\n"
        data = send(b"abcd", b"z" * 3000, extra=big)
        error = self.errorOf(data, maxHeaderBytes=300)
        self.assertEqual(error[1:8], (400, "header block exceeds 300 bytes", False, "abcd",
                                      "SEND", (BOB,), (ALICE,)))
        parser = MSRPParser(maxHeaderBytes=300)
        for offset in range(0, len(data) - 20, 10):
            parser.feed(data[offset : offset + 10])
            self.assertLessEqual(parser.bufferedBytes, 330)

    def test_headerLimitExact(self) -> None:
        """
        A header block of exactly the limit is accepted; one byte more is
        not, however the input is split (the end-line does not count).
        """
        data = b"MSRP abcd SEND\r\n" + TO + FROM + b"-------abcd$\r\n"
        limit = len(data) - len(b"-------abcd$\r\n")
        [request] = self.assertSplitInvariant(data, maxHeaderBytes=limit)
        self.assertIsInstance(request, MSRPRequest)
        [error] = self.assertSplitInvariant(data, maxHeaderBytes=limit - 1)
        assert isinstance(error, tuple)
        self.assertEqual(error[1], 400)

    def test_chunkTooLarge(self) -> None:
        """
        R-126, R-136: a chunk body over the limit gives a recoverable 413 with
        id, method, paths and headers, whether the end-line comes in the same
        read or much later; a body of exactly the limit is accepted.
        """
        limit = 1000
        data = send(b"abcd", b"x" * (limit + 1), extra=b"Message-ID: m1234\r\n")
        error = self.errorOf(data, maxChunkBytes=limit)
        self.assertEqual(error[1:8], (413, "chunk body exceeds 1000 bytes", False, "abcd",
                                      "SEND", (BOB,), (ALICE,)))
        self.assertEqual(len(error[8]), 4)  # type: ignore[arg-type]
        [request] = MSRPParser(maxChunkBytes=limit).feed(send(b"abcd", b"x" * limit))
        self.assertIsInstance(request, MSRPRequest)

    def test_chunkTooLargeBounded(self) -> None:
        """
        R-126: an endless oversized chunk is reported once and then skipped
        with bounded memory.
        """
        parser = MSRPParser(maxChunkBytes=100)
        events = parser.feed(b"MSRP abcd SEND\r\n" + TO + FROM + b"Content-Type: a/b\r\n\r\n")
        self.assertEqual(events, [])
        errors = []
        for _ in range(1000):
            errors += parser.feed(b"x" * 97)
            self.assertLessEqual(parser.bufferedBytes, 400)
        self.assertEqual([describe(e)[1] for e in errors], [413])  # type: ignore[index]
        self.assertEqual(parser.feed(b"\r\n-------abcd#\r\n" + self.NEXT),
                         [parseMessage(self.NEXT)])

    def test_parseMessage(self) -> None:
        """
        L{parseMessage} wants exactly one complete message.
        """
        error = self.assertRaises(MSRPParseError, parseMessage, self.NEXT[:-1])
        self.assertEqual(error.reason, "incomplete message")
        error = self.assertRaises(MSRPParseError, parseMessage, self.NEXT + self.NEXT)
        self.assertEqual(error.reason, "more than one message")
        error = self.assertRaises(MSRPParseError, parseMessage, self.NEXT + b"xx")
        self.assertTrue(error.fatal)
        error = self.assertRaises(MSRPParseError, parseMessage, b"")
        self.assertEqual(error.reason, "incomplete message")


class FastPathTests(SplitInvarianceMixin, SynchronousTestCase):
    """
    Complete requests fed whole take a shortcut past the state machine;
    whatever it does not take goes through the state machine, so the events
    stay those of byte-by-byte feeding.
    """

    def test_shortcutDeclines(self) -> None:
        """
        Messages the shortcut must leave to the state machine, between
        messages it takes, give the same events however the stream is
        split; the parser's caches do not change the results.
        """
        lines = [
            b"Message-ID: abcd1234\r\n",
            b"Message-ID:  abcd1234\r\n",
            b"Message-ID:\tabcd1234\r\n",
            b"Message-ID:abcd1234\r\n",
            b"Message-ID: \r\n",
            b"message-id: ab\xc3\xa9cd\r\n",
            b"Message-ID: ab\x01cd\r\n",
            b"Message-ID: ab\xffcd\r\n",
            b"-------abcd$\r\n",
            b"X Bad: 1\r\n",
            b"Byte-Range: 1-5/5\r\n",
        ]
        messages = [send(b"good1", b"hello", extra=b"Message-ID: abcd1234\r\n")]
        for index, line in enumerate(lines):
            tid = b"tid%03d" % index
            messages.append(send(tid, b"body", extra=line))
            messages.append(send(b"ok%03d" % index, b"x", extra=line))
        messages += [
            b"MSRP abcd SEND\r\n" + FROM + TO + b"\r\nx\r\n-------abcd$\r\n",
            b"MSRP abcd SEND\r\n" + TO + b"\r\nx\r\n-------abcd$\r\n",
            b"MSRP abcd SEND\r\n\r\nx\r\n-------abcd$\r\n",
            b"MSRP abcd SEND\r\n" + TO + FROM + b"\r\n-------abcd$\r\n",
            b"MSRP abcd SEND \r\n" + TO + FROM + b"\r\nx\r\n-------abcd$\r\n",
            b"MSRP abcd 200 OK\r\n" + TO + FROM + b"-------abcd$\r\n",
            send(b"last1", b"\r\n-------last1x\r\n-------last"),
        ]
        data = b"".join(messages)
        events = self.assertSplitInvariant(data)
        self.assertEqual(events[0], parseMessage(messages[0]))
        self.assertEqual(events[-1], parseMessage(messages[-1]))
        self.assertSplitInvariant(data, maxHeaderBytes=150, maxChunkBytes=3)

    def test_sameParserTwice(self) -> None:
        """
        A parser that has seen a stream (and cached its lines) parses it
        again to the same messages.
        """
        messages = [
            send(b"tid%03d" % n, b"x" * n, extra=b"Message-ID: m%07d\r\n" % n)
            for n in range(40)
        ]
        data = b"".join(messages)
        parser = MSRPParser()
        first = parser.feed(data)
        self.assertEqual(first, [parseMessage(message) for message in messages])
        self.assertEqual(parser.feed(data), first)
        self.assertEqual([event.serialize() for event in first], messages)  # type: ignore[union-attr]


class FramingHelperTests(SynchronousTestCase):
    """
    The parser's framing helpers for whoever frames messages between reads
    (the receive fast path): L{MSRPParser.messageEnd},
    L{MSRPParser.wouldWait}, L{MSRPParser.headerField} and
    L{MSRPParser.pathField} say what the parser itself would do.
    """

    SEND = (
        b"MSRP a786hjs2 SEND\r\n"
        b"To-Path: msrp://10.0.0.1:2855/local;tcp\r\n"
        b"From-Path: msrp://192.168.1.1:7777/remote;tcp\r\n"
        b"Message-ID: 87652491\r\n"
        b"\r\n"
        b"hi\r\n-------a786hjs2x\r\n"
        b"-------a786hjs2$\r\n"
    )

    def test_messageEnd(self) -> None:
        """
        The end is after the first complete end-line of the message's
        transaction (not after a near miss in the body), at any offset;
        -1 while it is not all there; -2 for a start line the parser cannot
        frame on.
        """
        parser = MSRPParser()
        data = b"junk" + self.SEND + self.SEND
        self.assertEqual(parser.messageEnd(data, 4), 4 + len(self.SEND))
        self.assertEqual(parser.messageEnd(data, 4 + len(self.SEND)), len(data))
        for cut in (10, len(self.SEND) - 1, len(self.SEND) - 3):
            self.assertEqual(parser.messageEnd(self.SEND[:cut], 0), -1)
        self.assertEqual(parser.messageEnd(b"HTTP/1.1 200 OK\r\n", 0), -2)
        self.assertEqual(MSRPParser(maxHeaderBytes=10).messageEnd(self.SEND, 0), -2)

    def test_wouldWait(self) -> None:
        """
        The parser waits on the start of a start line and on header lines
        without an empty line or a possible end-line; not on anything else.
        """
        parser = MSRPParser()
        head = self.SEND[: self.SEND.index(b"\r\n\r\n") + 2]
        for data in (b"", b"MS", b"MSRP a7", head):
            self.assertTrue(parser.wouldWait(data, 0), data)
            events = MSRPParser().feed(data)
            self.assertEqual(events, [])
        for data in (b"HTTP", b"MSRP a786hjs2 200 OK\r\n", head + b"\r\n", head + b"-"):
            self.assertFalse(parser.wouldWait(data, 0), data)
        self.assertFalse(MSRPParser(maxHeaderBytes=20).wouldWait(head, 0))

    def test_fields(self) -> None:
        """
        C{headerField} and C{pathField} parse lines as the parser does and
        refuse what it refuses.
        """
        parser = MSRPParser()
        [request] = MSRPParser().feed(self.SEND)
        assert isinstance(request, MSRPRequest)
        self.assertEqual(parser.headerField(b"Message-ID: 87652491"), request.headers[2])
        self.assertIsNone(parser.headerField(b"Bad header line"))
        self.assertIsNone(parser.headerField(b"X: \x01"))
        to = parser.pathField(b"To-Path: msrp://10.0.0.1:2855/local;tcp")
        assert to is not None
        self.assertEqual((to[0], to[1], to[2]), ("to-path", request.headers[0], request.toPath))
        self.assertIsNone(parser.pathField(b"Message-ID: 87652491"))
        self.assertIsNone(parser.pathField(b"To-Path: msrp://bad uri"))
