# -*- test-case-name: tests.sip.test_message -*-
"""
Tests for L{stoxgw.sip.message}, including the RFC 4475 torture tests that
apply to a user agent (fixtures in C{tests/fixtures/sip/rfc4475/}).
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.headers import CSeq, Headers
from stoxgw.sip.message import (
    SIPParseError,
    SIPRequest,
    SIPResponse,
    parseDatagram,
    reasonPhrase,
)
from stoxgw.sip.uri import AbsoluteURI, SIPURI

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


def parse(name: str) -> SIPRequest | SIPResponse:
    """
    Parse an RFC 4475 fixture as a datagram.
    """
    return parseDatagram(fixture(name))


class FixtureArchiveTests(SynchronousTestCase):
    """
    The fixtures are the bit-exact messages of RFC 4475 Appendix A.1.
    """

    def test_archive(self) -> None:
        """
        Every C{.dat} fixture equals its member of the RFC 4475 Appendix A.1
        archive (kept, base64 as printed, in C{archive.tar.gz.b64}).
        """
        with open(os.path.join(FIXTURES, "archive.tar.gz.b64"), "rb") as f:
            archive = gzip.decompress(base64.b64decode(f.read()))
        members = {}
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                extracted = tar.extractfile(member)
                if extracted is not None:
                    members[os.path.basename(member.name)] = extracted.read()
        names = sorted(n for n in os.listdir(FIXTURES) if n.endswith(".dat"))
        self.assertEqual(sorted(members), names)
        self.assertEqual(len(names), 50)
        for name in names:
            with open(os.path.join(FIXTURES, name), "rb") as f:
                self.assertEqual(f.read(), members[name], name)


class ValidTortureTests(SynchronousTestCase):
    """
    RFC 4475 section 3.1.1 (valid messages): each parses, key fields as the
    RFC describes them.
    """

    def test_wsinv(self) -> None:
        """
        R-4475 3.1.1.1 wsinv: odd whitespace, folding, case, compact forms.
        """
        msg = parse("wsinv")
        assert isinstance(msg, SIPRequest)
        self.assertEqual(msg.method, "INVITE")
        assert isinstance(msg.uri, SIPURI)
        self.assertEqual(msg.uri.parameters, (("unknownparam", None),))
        self.assertEqual(msg.toAddress.tag, "1918181833n")
        self.assertEqual(msg.fromAddress.displayName, 'J Rosenberg \\"')
        self.assertEqual(msg.fromAddress.tag, "98asjd8")
        self.assertEqual(msg.header("max-forwards"), "0068")
        self.assertEqual(msg.cseq, CSeq(9, "INVITE"))
        self.assertEqual(
            [v.host for v in msg.vias],
            ["192.0.2.2", "spindle.example.com", "192.168.255.111"],
        )
        self.assertEqual(msg.vias[2].branch, "z9hG4bK30239")
        self.assertEqual(msg.header("Subject"), "")
        self.assertEqual(
            msg.header("NewFangledHeader"),
            "newfangled value continued newfangled value",
        )
        self.assertEqual(msg.header("UnknownHeaderWithUnusualValue"), ";;,,;;,;")
        self.assertTrue(msg.route[0].uri.looseRouting)  # type: ignore[union-attr]
        contact = msg.contact
        assert contact is not None
        self.assertEqual(contact.addresses[0].displayName, 'Quoted string ""')
        self.assertEqual(contact.addresses[0].parameter("newparam"), "newvalue")
        self.assertEqual(contact.addresses[0].parameter("q"), "0.33")
        self.assertTrue(contact.addresses[0].hasParameter("secondparam"))
        self.assertEqual(len(msg.body), 150)

    def test_intmeth(self) -> None:
        """
        R-4475 3.1.1.2 intmeth: every token character in the method,
        quoted-pairs of control characters, UTF-8 parameter values.
        """
        msg = parse("intmeth")
        assert isinstance(msg, SIPRequest)
        self.assertEqual(msg.method, "!interesting-Method0123456789_*+`.%indeed'~")
        self.assertEqual(msg.cseq.method, msg.method)
        self.assertEqual(msg.toAddress.displayName, "BEL:\x07 NUL:\x00 DEL:\x7f")
        self.assertEqual(
            msg.fromAddress.parameter("fromParam''~+*_!.-%"),
            "\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439",
        )
        self.assertEqual(msg.callID, "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{")
        self.assertEqual(
            msg.header("extensionHeader-!.%*+_`'~"), "\ufeff\u5927\u505c\u96fb"
        )

    def test_esc01(self) -> None:
        """
        R-4475 3.1.1.3 esc01: escapes decoded, folded Contact.
        """
        msg = parse("esc01")
        assert isinstance(msg, SIPRequest) and isinstance(msg.uri, SIPURI)
        self.assertEqual(msg.uri.user, "sips:user@example.com")
        to = msg.toAddress.uri
        assert isinstance(to, SIPURI)
        self.assertEqual(to.user, "user")
        self.assertEqual(msg.fromAddress.uri.user, "I have spaces")  # type: ignore[union-attr]
        contact = msg.contact
        assert contact is not None
        uri = contact.addresses[0].uri
        assert isinstance(uri, SIPURI)
        self.assertEqual(uri.user, "caller")
        self.assertEqual(uri.parameters, (("lr", None), ("name", "value%41")))
        self.assertEqual(msg.contentType.mimeType, "application/sdp")  # type: ignore[union-attr]

    def test_escnull(self) -> None:
        """
        R-4475 3.1.1.4 escnull: escaped NULs in user parts.
        """
        msg = parse("escnull")
        self.assertEqual(msg.toAddress.uri.user, "null-\x00-null")  # type: ignore[union-attr]
        contact = msg.contact
        assert contact is not None
        self.assertEqual([a.uri.user for a in contact.addresses], ["\x00", "\x00\x00"])  # type: ignore[union-attr]

    def test_esc02(self) -> None:
        """
        R-4475 3.1.1.5 esc02: C{%} that is not an escape; the method is the
        literal token C{RE%47IST%45R}, not REGISTER; C{C%6Fntact} is an
        unknown header, not Contact.
        """
        msg = parse("esc02")
        assert isinstance(msg, SIPRequest)
        self.assertEqual(msg.method, "RE%47IST%45R")
        self.assertEqual(msg.toAddress.displayName, "%Z%45")
        self.assertEqual(msg.topVia.branch, "z9hG4bK209%fzsnel234")
        self.assertEqual(msg.headers.count("Contact"), 2)
        self.assertEqual(msg.header("C%6Fntact"), "<sip:alias2@host2.example.com>")

    def test_lwsdisp(self) -> None:
        """
        R-4475 3.1.1.6 lwsdisp: no LWS between display name and C{<}.
        """
        self.assertEqual(parse("lwsdisp").fromAddress.displayName, "caller")

    def test_longreq(self) -> None:
        """
        R-4475 3.1.1.7 longreq: long values, 34 Via lines in many spellings.
        """
        msg = parse("longreq")
        self.assertEqual(len(msg.vias), 34)
        self.assertEqual(msg.vias[-1].received, "192.0.2.5")
        self.assertEqual(msg.toAddress.uri.port, 6000)  # type: ignore[union-attr]
        self.assertEqual(len(msg.body), 150)

    def test_dblreq(self) -> None:
        """
        R-4475 3.1.1.8 dblreq: octets after Content-Length are ignored.
        """
        msg = parse("dblreq")
        assert isinstance(msg, SIPRequest)
        self.assertEqual(msg.method, "REGISTER")
        self.assertEqual(msg.body, b"")
        self.assertEqual(msg.callID, "dblreq.0ha0isndaksdj99sdfafnl3lk233412")

    def test_semiuri(self) -> None:
        """
        R-4475 3.1.1.9 semiuri: C{;} in the user part; a folded Accept.
        """
        msg = parse("semiuri")
        assert isinstance(msg, SIPRequest) and isinstance(msg.uri, SIPURI)
        self.assertEqual(msg.uri.user, "user;par=u@example.net")
        self.assertEqual(msg.uri.host, "example.com")
        self.assertEqual(len(msg.headers.getAll("Accept")), 6)

    def test_transports(self) -> None:
        """
        R-4475 3.1.1.10 transports: known and unknown transports.
        """
        self.assertEqual(
            [v.transport for v in parse("transports").vias],
            ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"],
        )

    def test_mpart01(self) -> None:
        """
        R-4475 3.1.1.11 mpart01: a binary multipart body kept octet-exact.
        """
        data = fixture("mpart01")
        msg = parseDatagram(data)
        self.assertEqual(len(msg.body), 553)
        self.assertTrue(data.endswith(msg.body))
        self.assertEqual(msg.contentType.parameter("boundary"), "7a9cbec02ceef655")  # type: ignore[union-attr]
        self.assertEqual(msg.topVia.rport, True)

    def test_unreason(self) -> None:
        """
        R-4475 3.1.1.12 unreason: a UTF-8 reason phrase.
        """
        msg = parse("unreason")
        assert isinstance(msg, SIPResponse)
        self.assertEqual(msg.status, 200)
        self.assertTrue(msg.reason.startswith("= 2**3 * 5**2 \u043d\u043e"))

    def test_noreason(self) -> None:
        """
        R-4475 3.1.1.13 noreason: an empty reason phrase.
        """
        msg = parse("noreason")
        assert isinstance(msg, SIPResponse)
        self.assertEqual((msg.status, msg.reason), (100, ""))


#: RFC 4475 section 3.1.2 (and the C{test} member of the archive): name ->
#: (status, words of the reason, whether a reply can be built).
INVALID = {
    "badinv01": (400, "Via", False),  # 3.1.2.1: Via ;;,;,, -> no reply route
    "clerr": (400, "Content-Length", True),  # 3.1.2.2
    "ncl": (400, "Content-Length", True),  # 3.1.2.3
    "scalar02": (400, "CSeq", True),  # 3.1.2.4
    "scalarlg": (400, "CSeq", False),  # 3.1.2.5: a response, dropped
    "quotbal": (400, "To", True),  # 3.1.2.6
    "ltgtruri": (400, "Request-URI", True),  # 3.1.2.7
    "lwsruri": (400, "Request-Line", True),  # 3.1.2.8
    "lwsstart": (400, "Request-Line", True),  # 3.1.2.9
    "trws": (400, "Request-Line", True),  # 3.1.2.10
    "escruri": (400, "Request-URI", True),  # 3.1.2.11
    "regbadct": (400, "Contact", True),  # 3.1.2.13
    "badaspec": (400, "To", True),  # 3.1.2.14
    "baddn": (400, "From", True),  # 3.1.2.15
    "badvers": (505, "version", True),  # 3.1.2.16
    "mismatch01": (400, "CSeq", True),  # 3.1.2.17
    "mismatch02": (400, "CSeq", True),  # 3.1.2.18
    "bigcode": (400, "Status-Line", False),  # 3.1.2.19: a response, dropped
    "insuf": (400, "Missing", False),  # 3.3.1: no To/From to answer with
    "multi01": (400, "Multiple", True),  # 3.3.8
    "mcl01": (400, "Content-Length", True),  # 3.3.9
    "inv2543": (400, "Max-Forwards", True),  # 3.4.1 (strict mode)
    "test": (400, "Request-Line", False),  # archive extra: no version, no Via
}


class InvalidTortureTests(SynchronousTestCase):
    """
    RFC 4475 section 3.1.2 and the 3.3 cases that are syntax errors at the
    wire layer: each raises L{SIPParseError} (never anything else) with
    the status and reason the RFC asks for.
    """

    def test_invalid(self) -> None:
        """
        R-4475 3.1.2.x: the expected error for every invalid message.
        """
        for name, (status, words, canReply) in INVALID.items():
            try:
                parse(name)
            except SIPParseError as error:
                self.assertEqual(error.status, status, name)
                self.assertIn(words.lower(), error.reason.lower(), name)
                self.assertEqual(error.canReply, canReply, name)
            else:
                self.fail(f"{name} parsed")

    def test_responses(self) -> None:
        """
        For requests the error builds the 400/505 response: the received
        Via/From/To/Call-ID/CSeq, a To tag, the reason in the phrase.
        """
        with self.assertRaises(SIPParseError) as caught:
            parse("mismatch01")
        response = caught.exception.makeResponse(toTag="xyz")
        assert response is not None
        self.assertEqual(response.status, 400)
        self.assertEqual(
            response.reason, "Bad Request (CSeq method does not match Request-Line)"
        )
        self.assertEqual(response.toAddress.tag, "xyz")
        self.assertEqual(response.callID, "mismatch01.dj0234sxdfl3")
        self.assertEqual(response.header("CSeq"), "8 INVITE")
        self.assertIn(b"Content-Length: 0\r\n\r\n", response.serialize())
        with self.assertRaises(SIPParseError) as caught:
            parse("badvers")
        self.assertEqual(caught.exception.makeResponse().status, 505)  # type: ignore[union-attr]
        with self.assertRaises(SIPParseError) as caught:
            parse("bigcode")
        self.assertIsNone(caught.exception.makeResponse())

    def test_baddate(self) -> None:
        """
        R-4475 3.1.2.12 baddate: the Date header is not interpreted by the
        wire layer, so the request parses (the RFC lets an element ignore
        the Date header instead of rejecting).
        """
        self.assertEqual(
            parse("baddate").header("Date"), "Fri, 01 Jan 2010 16:00:00 EST"
        )

    def test_rfc2543(self) -> None:
        """
        R-4475 3.4.1 inv2543: accepted when Max-Forwards is not required.
        """
        msg = parseDatagram(fixture("inv2543"), requireMaxForwards=False)
        self.assertFalse(msg.topVia.hasMagicCookie)
        self.assertIsNone(msg.fromAddress.tag)

    def test_garbage(self) -> None:
        """
        Random octets give a L{SIPParseError}, never another exception.
        """
        for data in [
            b"",
            b"\r\n\r\n",
            b"\x00\xff\xfe",
            b"SIP/2.0",
            b"INVITE\r\n\r\n",
            b"SIP/2.0 200\r\n\r\n",
            b"A B C\r\n:\r\n\r\n",
            b"\xc3(" * 50,
        ]:
            self.assertRaises(SIPParseError, parseDatagram, data)


class LongNumberTests(SynchronousTestCase):
    """
    Numbers too long for C{int} (Python's 4300-digit limit) in the headers
    that every message must have (found while writing
    C{fuzz/fuzz_sip_headers.py}).
    """

    def test_longNumbers(self) -> None:
        """
        A CSeq number or Max-Forwards of 5000 digits is a 400, as any out
        of range value (RFC 4475 section 3.1.2.4), not a C{ValueError}
        that nothing in the transport expects.
        """
        digits = b"9" * 5000
        for cseq, maxForwards in [(digits, b"70"), (b"1", digits)]:
            data = (
                b"OPTIONS sip:gw.example.com SIP/2.0\r\n"
                b"Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
                b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:gw.example.com>\r\n"
                b"Call-ID: long1\r\nCSeq: " + cseq + b" OPTIONS\r\n"
                b"Max-Forwards: " + maxForwards + b"\r\n\r\n"
            )
            with self.assertRaises(SIPParseError) as caught:
                parseDatagram(data)
            self.assertEqual(caught.exception.status, 400)
            self.assertIsNotNone(caught.exception.makeResponse(toTag="t"))


#: RFC 4475 sections 3.2 and 3.3: semantic tests the wire layer accepts,
#: leaving the decision to the transaction layer or UA core.
SEMANTIC = [
    "badbranch",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
]


class SemanticTortureTests(SynchronousTestCase):
    """
    RFC 4475 sections 3.2 and 3.3 messages parse; the fields the UA core
    needs for its answer (416, 420, 415, 483, ...) are reachable.
    """

    def test_parse(self) -> None:
        """
        R-4475 3.2/3.3: every semantic test message parses.
        """
        for name in SEMANTIC:
            parse(name)

    def test_fields(self) -> None:
        """
        The fields behind each expected UA decision.
        """
        self.assertIsInstance(parse("unkscm").uri, AbsoluteURI)  # type: ignore[union-attr]
        self.assertEqual(parse("novelsc").uri.scheme, "soap.beep")  # type: ignore[union-attr]
        unksm2 = parse("unksm2")
        self.assertEqual(unksm2.toAddress.uri.scheme, "isbn")
        self.assertEqual(unksm2.fromAddress.uri.scheme, "http")
        self.assertEqual(
            parse("bext01").headers.getAll("Require"),
            ["nothingSupportsThis", "nothingSupportsThisEither"],
        )
        self.assertEqual(parse("invut").contentType.mimeType, "application/unknownformat")  # type: ignore[union-attr]
        self.assertEqual(parse("zeromf").header("Max-Forwards"), "0")
        self.assertEqual(parse("bcast").vias[1].host, "255.255.255.255")
        regescrt = parse("regescrt").contact
        assert regescrt is not None
        self.assertEqual(regescrt.addresses[0].uri.headers, (("Route", "<sip:sip.example.com>"),))  # type: ignore[union-attr]


class BuildTests(SynchronousTestCase):
    """
    Building and serializing messages.
    """

    def request(self) -> SIPRequest:
        return SIPRequest(
            method="INVITE",
            uri=SIPURI.fromString("sip:room@muc.xmpp.example"),
            headers=Headers.of(
                ("Via", "SIP/2.0/TCP ua.example.org;branch=z9hG4bK776asdhds"),
                ("Via", "SIP/2.0/UDP proxy.example.org;branch=z9hG4bK1"),
                ("Max-Forwards", "70"),
                ("To", "<sip:room@muc.xmpp.example>"),
                ("From", '"Romeo" <sip:romeo@example.org>;tag=43524545'),
                ("Call-ID", "a84b4c76e66710"),
                ("CSeq", "314159 INVITE"),
                ("Record-Route", "<sip:proxy.example.org;lr>"),
                ("Timestamp", "54"),
                ("Contact", "<sip:romeo@example.org;gr=dr4hcr0st3lup4c>"),
            ),
        ).withBody(b"v=0\r\n", "application/sdp")

    def test_serializeRoundTrip(self) -> None:
        """
        Serialization writes Content-Length and parses back to the same
        message.
        """
        request = self.request()
        data = request.serialize()
        self.assertTrue(
            data.startswith(b"INVITE sip:room@muc.xmpp.example SIP/2.0\r\n")
        )
        self.assertIn(b"\r\nContent-Length: 5\r\n\r\nv=0\r\n", data)
        parsed = parseDatagram(data)
        self.assertEqual(parsed.headers.set("Content-Length", "5"), parsed.headers)
        self.assertEqual(parsed.body, request.body)
        self.assertEqual(
            parseDatagram(request.withHeader("l", "999").serialize()).header(
                "Content-Length"
            ),
            "5",
        )

    def test_makeResponse(self) -> None:
        """
        RFC 3261 section 8.2.6: Vias, From, To (+ tag), Call-ID, CSeq
        copied; Record-Route in 2xx; Timestamp in 100 only.
        """
        request = self.request()
        ok = request.makeResponse(200, toTag="a6c85cf")
        self.assertEqual((ok.status, ok.reason), (200, "OK"))
        self.assertEqual(
            [f.canonicalName for f in ok.headers],
            ["Via", "Via", "To", "From", "Call-ID", "CSeq", "Record-Route"],
        )
        self.assertEqual(ok.toAddress.tag, "a6c85cf")
        self.assertEqual(ok.method, "INVITE")
        trying = request.makeResponse(100, toTag="a6c85cf")
        self.assertIsNone(trying.toAddress.tag)
        self.assertEqual(trying.header("Timestamp"), "54")
        self.assertNotIn("Record-Route", trying.headers)
        busy = request.makeResponse(486, "Nick In Use", "t1", [("Retry-After", "60")])
        self.assertEqual(busy.reason, "Nick In Use")
        self.assertEqual(busy.header("Retry-After"), "60")
        self.assertNotIn("Record-Route", busy.headers)
        tagged = request.withHeader("To", "<sip:room@muc.xmpp.example>;tag=old")
        self.assertEqual(tagged.makeResponse(200, toTag="new").toAddress.tag, "old")
        self.assertEqual(
            parseDatagram(ok.serialize()).headers.get("To"),
            "<sip:room@muc.xmpp.example>;tag=a6c85cf",
        )

    def test_editing(self) -> None:
        """
        The C{with*} helpers return modified copies.
        """
        request = self.request()
        self.assertEqual(request.addHeader("Supported", "gruu").header("k"), "gruu")
        self.assertNotIn("Contact", request.withoutHeader("m").headers)
        self.assertNotIn("Content-Type", request.withBody(b"").headers)
        self.assertEqual(reasonPhrase(513), "Message Too Large")
        self.assertEqual(reasonPhrase(499), "Client Error")

    def test_version(self) -> None:
        """
        A request for another SIP version is answered with 505, the
        method is case-sensitive (C{invite} is an extension method).
        """
        data = self.request().serialize()
        with self.assertRaises(SIPParseError) as caught:
            parseDatagram(data.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1))
        self.assertEqual(caught.exception.status, 505)
        lower = data.replace(b"INVITE sip", b"invite sip", 1)
        with self.assertRaises(SIPParseError) as caught:
            parseDatagram(lower)
        self.assertIn("CSeq", caught.exception.reason)
        ok = parseDatagram(lower.replace(b"314159 INVITE", b"314159 invite"))
        self.assertEqual(ok.method, "invite")  # type: ignore[union-attr]
