# -*- test-case-name: tests.sip.test_framing -*-
"""
Tests for L{stoxgw.sip.framing}.
"""

from __future__ import annotations

import os
import random

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.framing import KeepAlive, SIPStreamParser, StreamEvent
from stoxgw.sip.message import SIPParseError, SIPRequest, SIPResponse

FIXTURES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "fixtures",
    "sip",
    "rfc4475",
)


def fixture(name: str) -> bytes:
    """
    The bytes of RFC 4475 message C{name}.dat.
    """
    with open(os.path.join(FIXTURES, name + ".dat"), "rb") as f:
        return f.read()


def describe(events: list[StreamEvent]) -> list[object]:
    """
    Comparable summaries of events.
    """
    out: list[object] = []
    for event in events:
        if isinstance(event, SIPRequest):
            out.append(("request", event.method, event.callID, event.body))
        elif isinstance(event, SIPResponse):
            out.append(("response", event.status, event.callID, event.body))
        elif isinstance(event, SIPParseError):
            out.append(("error", event.status, event.reason, event.fatal))
        else:
            out.append(event)
    return out


def feedAll(
    parser: SIPStreamParser, data: bytes, sizes: list[int]
) -> list[StreamEvent]:
    """
    Feed C{data} cut into pieces of the given sizes (cycled).
    """
    events: list[StreamEvent] = []
    pos = 0
    index = 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        events.extend(parser.feed(data[pos : pos + size]))
        pos += size
        index += 1
    return events


#: A stream: keep-alive ping, three RFC 4475 messages with Content-Length,
#: a stray CRLF, a malformed but framed request, another ping.
STREAM = (
    b"\r\n\r\n"
    + fixture("wsinv")
    + fixture("mpart01")
    + b"\r\n"
    + fixture("noreason")
    + fixture("mismatch01")
    + b"\r\n\r\n"
    + fixture("unreason")
)

EXPECTED = [
    KeepAlive.PING,
    ("request", "INVITE", "wsinv.ndaksdj@192.0.2.1", fixture("wsinv")[-150:]),
    (
        "request",
        "MESSAGE",
        "3d9485ad0c49859b@Zmx1ZmZ5LW1hYy0xNi5sb2NhbA..",
        fixture("mpart01")[-553:],
    ),
    ("response", 100, "noreason.asndj203insdf99223ndf", b""),
    ("error", 400, "CSeq method does not match Request-Line", False),
    KeepAlive.PING,
    ("response", 200, "unreason.1234ksdfak3j2erwedfsASdf", fixture("unreason")[-154:]),
]


class SplitTests(SynchronousTestCase):
    """
    The same events whatever the split of the input (RFC 3261 section
    18.3 framing by Content-Length; RFC 5626 section 3.5.1 keep-alives).
    """

    def test_whole(self) -> None:
        """
        Fed in one piece.
        """
        self.assertEqual(describe(SIPStreamParser().feed(STREAM)), EXPECTED)

    def test_byteByByte(self) -> None:
        """
        Fed one octet at a time.
        """
        self.assertEqual(describe(feedAll(SIPStreamParser(), STREAM, [1])), EXPECTED)

    def test_randomSplits(self) -> None:
        """
        Fed in random pieces (fixed seeds).
        """
        for seed in range(20):
            rng = random.Random(seed)
            sizes = [rng.randint(1, 400) for _ in range(50)]
            self.assertEqual(
                describe(feedAll(SIPStreamParser(), STREAM, sizes)), EXPECTED, seed
            )

    def test_trailingData(self) -> None:
        """
        An incomplete message stays buffered until completed.
        """
        parser = SIPStreamParser()
        data = fixture("wsinv")
        self.assertEqual(parser.feed(data[:-1]), [])
        self.assertEqual(len(parser.feed(data[-1:] + data[:10])), 1)
        self.assertEqual(len(parser.feed(data[10:])), 1)


class KeepAliveTests(SynchronousTestCase):
    """
    CRLF keep-alives (RFC 5626 section 3.5.1).
    """

    def test_pings(self) -> None:
        """
        Each double CRLF is one ping; a single CRLF before a message is
        skipped (RFC 3261 section 7.5).
        """
        parser = SIPStreamParser()
        self.assertEqual(
            parser.feed(b"\r\n\r\n\r\n\r\n"), [KeepAlive.PING, KeepAlive.PING]
        )
        self.assertEqual(parser.feed(b"\r\n"), [])
        self.assertEqual(describe(parser.feed(fixture("noreason")))[0][0], "response")  # type: ignore[index]

    def test_pongs(self) -> None:
        """
        With C{expectPongs}, each single CRLF is a pong.
        """
        parser = SIPStreamParser(expectPongs=True)
        self.assertEqual(parser.feed(b"\r"), [])
        self.assertEqual(parser.feed(b"\n"), [KeepAlive.PONG])
        self.assertEqual(parser.feed(b"\r\n" + fixture("noreason"))[0], KeepAlive.PONG)


class ErrorTests(SynchronousTestCase):
    """
    Errors are events, never exceptions; the buffer stays bounded.
    """

    def test_tooLarge(self) -> None:
        """
        A message over the limit with a usable Content-Length gives a 513
        (RFC 3261 section 21.5.14) and the stream goes on after its body.
        """
        parser = SIPStreamParser(maxMessageBytes=600)
        events = describe(parser.feed(fixture("wsinv") + fixture("noreason")))
        self.assertEqual(events[0], ("error", 513, "Message Too Large", False))
        self.assertEqual(events[1][0], "response")  # type: ignore[index]

    def test_headerTooLarge(self) -> None:
        """
        A header section over the limit is fatal; later input is ignored.
        """
        parser = SIPStreamParser(maxMessageBytes=100)
        events: list[StreamEvent] = []
        for _ in range(10):
            events.extend(parser.feed(b"X" * 30))
        self.assertEqual(describe(events), [("error", 513, "Message Too Large", True)])
        self.assertTrue(parser.failed)
        self.assertEqual(parser.feed(fixture("noreason")), [])
        self.assertLessEqual(len(parser._buffer), 100)

    def test_missingContentLength(self) -> None:
        """
        Content-Length is mandatory on streams: its absence is fatal, with a
        400 that can still be answered.
        """
        parser = SIPStreamParser()
        data = fixture("wsinv").replace(b"Content-Length   : 150\r\n", b"")
        events = parser.feed(data)
        error = events[0]
        assert isinstance(error, SIPParseError)
        self.assertEqual((error.status, error.fatal), (400, True))
        self.assertIn("Content-Length", error.reason)
        self.assertIsNotNone(error.makeResponse("t"))
        self.assertTrue(parser.failed)

    def test_torture(self) -> None:
        """
        Every RFC 4475 message, one after the other, byte by byte: only
        messages, errors and keep-alives come out, and a fatal error stops
        the parser.
        """
        for name in sorted(os.listdir(FIXTURES)):
            if not name.endswith(".dat"):
                continue
            parser = SIPStreamParser()
            events = feedAll(parser, fixture(name[:-4]), [1])
            for event in events:
                self.assertIsInstance(
                    event, (SIPRequest, SIPResponse, SIPParseError, KeepAlive)
                )
            if any(isinstance(e, SIPParseError) and e.fatal for e in events):
                self.assertTrue(parser.failed, name)

    def test_badHeaderSkipsBody(self) -> None:
        """
        A malformed request with a valid Content-Length is reported and
        its body skipped.
        """
        parser = SIPStreamParser()
        events = describe(parser.feed(fixture("quotbal") + fixture("noreason")))
        self.assertEqual(events[0][:2], ("error", 400))  # type: ignore[index]
        self.assertEqual(events[1][0], "response")  # type: ignore[index]

    def test_ambiguousLength(self) -> None:
        """
        Two Content-Length values (RFC 4475 mcl01) lose the framing.
        """
        parser = SIPStreamParser()
        events = parser.feed(fixture("mcl01") + fixture("noreason"))
        self.assertEqual(len(events), 1)
        error = events[0]
        assert isinstance(error, SIPParseError)
        self.assertTrue(error.fatal)
