# -*- test-case-name: tests.test_robustness -*-
"""
Bad input never crashes the gateway (house rules): every parser that takes
bytes from the network or a peer, fed thousands of seeded mutations of the
real fixtures, either parses or raises its own documented error, and the
stream parsers never raise at all.

The mutations are deterministic (fixed seeds), so a failure is reproducible:
the message names the seed and the input.
"""

from __future__ import annotations

import glob
import os
import random
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.conferenceinfo import ConferenceInfo, ConferenceInfoError
from stoxgw.formats.cpim import CPIMError, CPIMMessage
from stoxgw.formats.iscomposing import IsComposing, IsComposingError
from stoxgw.msrp.parser import MSRPParser
from stoxgw.sip.framing import SIPStreamParser
from stoxgw.sip.message import SIPParseError, parseDatagram
from stoxgw.sip.sdp import SDPError, parseSDP

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

#: Fragments that tend to reach the interesting corners of the grammars.
TOKENS = (
    b"\r\n", b"\r\n\r\n", b":", b";", b",", b"<", b">", b'"', b"%", b"%zz", b"-------",
    b"$", b"#", b"+", b"\x00", b"\xff", b"=", b" ", b"\t", b"Content-Length: 99999\r\n",
    b"Byte-Range: 1-5/3\r\n", b"<!DOCTYPE x>", b"&amp;", b"]]>",
)

#: Mutated inputs per target.
COUNT = 1500

SDP_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=message 2855 TCP/MSRP *\r\na=accept-types:message/cpim text/plain\r\n"
    b"a=path:msrp://127.0.0.1:2855/abc;tcp\r\na=setup:actpass\r\n"
    b"a=chatroom:nickname private-messages\r\na=max-size:1000\r\n"
)


def fixtures(pattern: str) -> list[bytes]:
    """
    @return: the bytes of the fixture files matching C{pattern}.
    """
    paths = sorted(glob.glob(os.path.join(FIXTURES, pattern), recursive=True))
    result = []
    for path in paths:
        with open(path, "rb") as f:
            result.append(f.read())
    return result


def mutate(rnd: random.Random, data: bytes) -> bytes:
    """
    Change, delete, insert or duplicate a few bytes.
    """
    b = bytearray(data or b"x")
    for _ in range(rnd.randint(1, 8)):
        i = rnd.randrange(len(b)) if b else 0
        operation = rnd.randint(0, 4)
        if operation == 0 and b:
            b[i] = rnd.randrange(256)
        elif operation == 1:
            del b[i : i + rnd.randint(1, 20)]
        elif operation == 2:
            b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 10)))
        elif operation == 3:
            b[i:i] = rnd.choice(TOKENS)
        elif b:
            j = rnd.randrange(len(b))
            b[i:i] = b[j : j + rnd.randint(1, 40)]
    return bytes(b)


class RobustnessTests(SynchronousTestCase):
    """
    Seeded mutation of each parser's fixtures.
    """

    def check(
        self,
        seeds: list[bytes],
        parse: Callable[[bytes], object],
        allowed: tuple[type[BaseException], ...],
        seed: int,
    ) -> None:
        """
        Feed C{COUNT} mutations; only C{allowed} errors may come out.
        """
        self.assertTrue(seeds, "no fixtures found")
        rnd = random.Random(seed)
        for n in range(COUNT):
            data = mutate(rnd, rnd.choice(seeds))
            try:
                parse(data)
            except allowed:
                pass
            except Exception as e:
                self.fail(f"seed {seed}, input {n}: {type(e).__name__}: {e}\n{data!r}")

    def test_sipDatagram(self) -> None:
        """
        RFC 4475 messages, mutated: a message or L{SIPParseError} (400/505/513).
        """
        self.check(fixtures("sip/rfc4475/*.dat"), parseDatagram, (SIPParseError,), 1)

    def test_sipStream(self) -> None:
        """
        The stream framer never raises; errors come out as events.
        """
        self.check(
            fixtures("sip/rfc4475/*.dat"),
            lambda data: SIPStreamParser().feed(data + data),
            (),
            2,
        )

    def test_sdp(self) -> None:
        """
        An MSRP offer, mutated: a description or L{SDPError}.
        """
        self.check([SDP_OFFER], parseSDP, (SDPError,), 3)

    def test_msrpStream(self) -> None:
        """
        RFC 4975/4976/7701 messages, mutated and concatenated: the parser
        never raises; errors come out as events.
        """
        self.check(
            fixtures("msrp/*.msrp"),
            lambda data: MSRPParser().feed(data + data),
            (),
            4,
        )

    def test_cpim(self) -> None:
        """
        RFC 3862/7701/7702 CPIM bodies, mutated: a message or L{CPIMError}.
        """
        self.check(fixtures("formats/*.cpim"), CPIMMessage.parse, (CPIMError,), 5)

    def test_isComposing(self) -> None:
        """
        RFC 3994 documents, mutated: a document or L{IsComposingError}.
        """
        seeds = [
            data for data in fixtures("formats/*.xml") if b"im-iscomposing" in data
        ]
        self.check(seeds, IsComposing.parse, (IsComposingError,), 6)

    def test_conferenceInfo(self) -> None:
        """
        RFC 4575/7702 documents, mutated: a document or
        L{ConferenceInfoError}.
        """
        seeds = [
            data for data in fixtures("formats/*.xml") if b"conference-info" in data
        ]
        self.check(seeds, ConferenceInfo.parse, (ConferenceInfoError,), 7)
