# -*- test-case-name: tests.formats.test_cpim -*-
"""
Tests for L{stoxgw.formats.cpim}: RFC 3862 message/cpim (SPEC R-169..R-175),
against the RFC 3862, RFC 7701 and RFC 7702 examples in
C{tests/fixtures/formats/} (see its README).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.cpim import (
    CPIM_NAMESPACE,
    MAX_HEADER_COUNT,
    MAX_HEADER_LINE_LENGTH,
    CPIMAddress,
    CPIMError,
    CPIMHeader,
    CPIMMessage,
    CPIMNamespace,
    CPIMRequireError,
    CPIMSubject,
    MediaType,
    escapeHeaderValue,
    formatDateTime,
    parseDateTime,
    unescapeHeaderValue,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "formats"

#: The extension header RFC 3862 §5.1/§5.2 require.
MY_FEATURES = ("mid:MessageFeatures@id.foo.com", "VitalMessageOption")

MINUS_3 = timezone(timedelta(hours=-3))


def fixture(name: str) -> bytes:
    """
    @return: the octets of C{tests/fixtures/formats/<name>}.
    """
    return (FIXTURES / name).read_bytes()


def parseFixture(name: str) -> CPIMMessage:
    """
    Parse a fixture, understanding the RFC 3862 example's extension header.
    """
    return CPIMMessage.parse(fixture(name), understood=[MY_FEATURES])


def cpim(*lines: str, body: str = "hi") -> bytes:
    """
    A CPIM body from header lines (CRLF-joined) in canonical form with a
    text/plain part.
    """
    return "".join(line + "\r\n" for line in lines).encode("utf-8") + (
        b"\r\nContent-Type: text/plain\r\n\r\n" + body.encode("utf-8")
    )


class FixtureRoundTripTests(SynchronousTestCase):
    """
    Every fixture parses and serializes back to the same octets (R-171).
    """

    def test_everyFixtureRoundTrips(self) -> None:
        """
        R-169, R-171: each RFC example (as printed and corrected) parses, and
        L{CPIMMessage.toBytes} gives back every octet.
        """
        names = sorted(p.name for p in FIXTURES.glob("*.cpim"))
        self.assertEqual(len(names), 17)
        for name in names:
            data = fixture(name)
            self.assertEqual(parseFixture(name).toBytes(), data, name)

    def test_fixturesUseCRLF(self) -> None:
        """
        The fixtures are wire form: no bare LF anywhere (RFC 3862 §2.2).
        """
        for path in FIXTURES.glob("*.cpim"):
            data = path.read_bytes()
            self.assertEqual(data.count(b"\n"), data.count(b"\r\n"), path.name)

    def test_trailingDataIsBody(self) -> None:
        """
        Whatever follows the content headers' blank line is body, blank lines
        included (RFC 3862 §2: framing ends the body).
        """
        data = fixture("rfc7702-example13-corrected.cpim") + b"\r\n\r\nFrom: <x:y>\r\n"
        message = CPIMMessage.parse(data)
        self.assertEqual(message.body, b"Who knows where Romeo is?\r\n\r\nFrom: <x:y>\r\n")
        self.assertEqual(message.toBytes(), data)


class RFC3862ExampleTests(SynchronousTestCase):
    """
    RFC 3862 §5.1 and §5.2.
    """

    def test_section51Fields(self) -> None:
        """
        R-169, R-174: every header of the §5.1 example, with its namespace.
        """
        message = parseFixture("rfc3862-section5.1.cpim")
        self.assertEqual(
            message.fromAddress, CPIMAddress("im:piglet@100akerwood.com", "MR SANDERS")
        )
        self.assertEqual(
            message.toAddresses,
            (CPIMAddress("im:eeyore@100akerwood.com", "Depressed Donkey"),),
        )
        self.assertEqual(message.ccAddresses, ())
        self.assertEqual(
            message.dateTime,
            datetime(2000, 12, 13, 13, 40, tzinfo=timezone(timedelta(hours=-8))),
        )
        self.assertEqual(
            message.subjects,
            (
                CPIMSubject("the weather will be fine today"),
                CPIMSubject("beau temps prevu pour aujourd'hui", "fr"),
            ),
        )
        self.assertEqual(
            message.namespaces,
            (CPIMNamespace("mid:MessageFeatures@id.foo.com", "MyFeatures"),),
        )
        self.assertEqual(message.required, ("MyFeatures.VitalMessageOption",))
        vital = message.headersNamed(*MY_FEATURES)
        self.assertEqual([h.value for h in vital], ["Confirmation-requested"])
        wacky = message.headersNamed("mid:MessageFeatures@id.foo.com", "WackyMessageOption")
        self.assertEqual(wacky[0].name, "MyFeatures.WackyMessageOption")
        self.assertEqual(wacky[0].prefix, "MyFeatures")
        self.assertEqual(wacky[0].localName, "WackyMessageOption")
        self.assertEqual(wacky[0].value, "Use-silly-font")
        self.assertTrue(message.separated)
        self.assertEqual(message.contentType, MediaType("text", "xml", (("charset", "utf-8"),)))
        self.assertEqual(message.contentType.mimeType, "text/xml")
        self.assertEqual(message.contentType.parameter("Charset"), "utf-8")
        self.assertEqual(message.contentHeader("content-id"), "<1234567890@foo.com>")
        self.assertEqual(message.contentHeaders[0].name, "Content-type")
        self.assertEqual(message.body, b"<body>\r\nHere is the text of my message.\r\n</body>")

    def test_section51RequireNotUnderstood(self) -> None:
        """
        R-174: §5.1 requires MyFeatures.VitalMessageOption; a receiver that
        doesn't understand it can't process the message (MSRP 415).
        """
        error = self.assertRaises(
            CPIMRequireError, CPIMMessage.parse, fixture("rfc3862-section5.1.cpim")
        )
        self.assertEqual(error.unsupported, ("MyFeatures.VitalMessageOption",))
        self.assertEqual(error.msrpStatus, 415)
        self.assertIsInstance(error, CPIMError)

    def test_section51RequireNeedsTheNamespaceNotThePrefix(self) -> None:
        """
        R-174: understanding is by namespace URI: the same local name in
        another namespace doesn't satisfy the Require.
        """
        self.assertRaises(
            CPIMRequireError,
            CPIMMessage.parse,
            fixture("rfc3862-section5.1.cpim"),
            understood=[("mid:Other@id.foo.com", "VitalMessageOption")],
        )

    def test_section52(self) -> None:
        """
        R-169: the Message/CPIM part of the §5.2 multipart/signed example.
        """
        message = parseFixture("rfc3862-section5.2.cpim")
        self.assertEqual(message.toAddresses[0].formalName, "Dopey Donkey")
        self.assertEqual(message.toAddresses[0].uri, "im:eeyore@100akerwood.com")
        self.assertEqual(message.body[-7:], b"</body>")


class RFC3862HeaderExampleTests(SynchronousTestCase):
    """
    The header-line examples of RFC 3862 §2.2, §3.3-§3.5 and §4.
    """

    def test_section22(self) -> None:
        """
        R-170, R-172: §2.2 examples.
        """
        message = CPIMMessage.parse(
            cpim(
                "To: Pooh Bear <im:pooh@100akerwood.com>",
                "From: <im:piglet@100akerwood.com>",
                "DateTime: 2001-02-02T10:48:54-05:00",
            )
        )
        self.assertEqual(message.toAddresses, (CPIMAddress("im:pooh@100akerwood.com", "Pooh Bear"),))
        self.assertEqual(message.fromAddress, CPIMAddress("im:piglet@100akerwood.com"))
        self.assertEqual(
            message.dateTime, datetime(2001, 2, 2, 10, 48, 54, tzinfo=timezone(timedelta(hours=-5)))
        )

    def test_section33LanguageTag(self) -> None:
        """
        §3.3: C{Subject:;lang=fr Objet de message}.
        """
        header = CPIMHeader.parse(b"Subject:;lang=fr Objet de message")
        self.assertEqual(header.name, "Subject")
        self.assertEqual(header.parameters, (("lang", "fr"),))
        self.assertEqual(header.parameter("lang"), "fr")
        self.assertEqual(header.value, "Objet de message")

    def test_section34PrefixedNamespaces(self) -> None:
        """
        R-174: §3.4 C{acme.runner-trap} and C{widget.runner-trap} resolve to
        the same header; a default C{NS} too.
        """
        namespace = "http://id.acme.widgets/wily-headers/"
        for lines in (
            ("NS: acme <http://id.acme.widgets/wily-headers/>", "acme.runner-trap: set"),
            ("NS: widget <http://id.acme.widgets/wily-headers/>", "widget.runner-trap: set"),
            ("NS: <http://id.acme.widgets/wily-headers/>", "runner-trap: set"),
        ):
            message = CPIMMessage.parse(cpim(*lines))
            self.assertEqual([h.value for h in message.headersNamed(namespace, "runner-trap")], ["set"])

    def test_section34UnknownHeadersIgnored(self) -> None:
        """
        R-174: §3.4 / §4.6 extension headers nobody requires are ignored.
        """
        message = CPIMMessage.parse(
            cpim(
                "NS: MyFeatures <mid:MessageFeatures@id.foo.com>",
                "MyFeatures.WackyMessageOption: Use-silly-font",
                "NS: MyAlias <mid:MessageFeatures@id.foo.com>",
                "MyAlias.MyHeader: private-extension-data",
                "X-Unknown: whatever",
            )
        )
        self.assertIsNone(message.fromAddress)
        self.assertEqual(len(message.namespaces), 2)
        self.assertEqual(message.headersNamed(CPIM_NAMESPACE, "X-Unknown")[0].value, "whatever")

    def test_defaultNamespaceHidesCoreHeaders(self) -> None:
        """
        R-174: after C{NS: <other>}, an unprefixed C{From} is in the other
        namespace, not the CPIM From.
        """
        message = CPIMMessage.parse(cpim("NS: <http://example.net/ns/>", "From: <sip:a@b>"))
        self.assertIsNone(message.fromAddress)
        self.assertEqual(len(message.headersNamed("http://example.net/ns/", "From")), 1)

    def test_coreNamespaceByPrefix(self) -> None:
        """
        R-174: a prefix bound to the CPIM namespace names the core headers.
        """
        message = CPIMMessage.parse(cpim("NS: c <urn:ietf:params:cpim-headers:>", "c.From: <sip:a@b>"))
        self.assertEqual(message.fromAddress, CPIMAddress("sip:a@b"))

    def test_section35RequireUndeclaredPrefix(self) -> None:
        """
        R-174: §3.5 C{Require: Locale.MustRenderKanji} names a feature in an
        undeclared namespace: not understood.
        """
        error = self.assertRaises(
            CPIMRequireError, CPIMMessage.parse, cpim("Require: Locale.MustRenderKanji")
        )
        self.assertEqual(error.unsupported, ("Locale.MustRenderKanji",))

    def test_requireCoreHeaders(self) -> None:
        """
        R-174: requiring core headers is always satisfied; several names are
        comma separated (§3.5).
        """
        message = CPIMMessage.parse(cpim("Require: DateTime,From", "From: <sip:a@b>"))
        self.assertEqual(message.required, ("DateTime", "From"))

    def test_requireUnknownUnprefixed(self) -> None:
        """
        R-174: an unknown header in the default namespace, when required,
        makes the message unprocessable, even if it is present.
        """
        error = self.assertRaises(
            CPIMRequireError, CPIMMessage.parse, cpim("Require: Priority", "Priority: high")
        )
        self.assertEqual(error.unsupported, ("Priority",))

    def test_section4Addresses(self) -> None:
        """
        R-172: §4.1-§4.3 examples.
        """
        message = CPIMMessage.parse(
            cpim(
                "From: Winnie the Pooh <im:pooh@100akerwood.com>",
                "To: <im:tigger@100akerwood.com>",
                "To: Winnie the Pooh <im:pooh@100akerwood.com>",
                "cc: Winnie the Pooh <im:pooh@100akerwood.com>",
                "cc: <im:tigger@100akerwood.com>",
            )
        )
        pooh = CPIMAddress("im:pooh@100akerwood.com", "Winnie the Pooh")
        tigger = CPIMAddress("im:tigger@100akerwood.com")
        self.assertEqual(message.fromAddress, pooh)
        self.assertEqual(message.toAddresses, (tigger, pooh))
        self.assertEqual(message.ccAddresses, (pooh, tigger))

    def test_section44To47(self) -> None:
        """
        R-175: §4.4 DateTime, §4.5 Subject, §4.6 NS, §4.7 Require.
        """
        message = CPIMMessage.parse(
            cpim(
                "DateTime: 2001-02-01T12:16:49-05:00",
                "Subject:;lang=en Eeyore's feeling very depressed today",
                "NS: MyAlias <mid:MessageFeatures@id.foo.com>",
                "Require: MyAlias.VitalHeader",
            ),
            understood=[("mid:MessageFeatures@id.foo.com", "VitalHeader")],
        )
        self.assertEqual(
            message.dateTime, datetime(2001, 2, 1, 17, 16, 49, tzinfo=timezone.utc)
        )
        self.assertEqual(message.dateTime.utcoffset(), timedelta(hours=-5))  # type: ignore[union-attr]
        self.assertEqual(message.subjects, (CPIMSubject("Eeyore's feeling very depressed today", "en"),))
        self.assertEqual(message.namespaces, (CPIMNamespace("mid:MessageFeatures@id.foo.com", "MyAlias"),))

    def test_section24Content(self) -> None:
        """
        R-169: §2.4 encapsulated content with Content-ID.
        """
        data = (
            b"From: <im:piglet@100akerwood.com>\r\n\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n"
            b"Content-ID: <1234567890@foo.com>\r\n\r\n"
            b"This is my encapsulated text message content"
        )
        message = CPIMMessage.parse(data)
        self.assertEqual(message.contentType.parameter("charset"), "utf-8")
        self.assertEqual(message.contentHeader("Content-ID"), "<1234567890@foo.com>")
        self.assertEqual(message.body, b"This is my encapsulated text message content")


class RFC7701ExampleTests(SynchronousTestCase):
    """
    RFC 7701 §9.3-§9.5 CPIM bodies (no blank line before Content-Type).
    """

    def test_section93(self) -> None:
        """
        R-169, R-061: a regular message to the room, compact form.
        """
        for name in ("rfc7701-section9.3-F1.cpim", "rfc7701-section9.3-F3.cpim"):
            message = parseFixture(name)
            (to,) = message.toAddresses
            self.assertEqual(to.uri, "sip:chatroom22@chat.example.com;transport=tcp")
            self.assertEqual(to.bareURI, "sip:chatroom22@chat.example.com")
            self.assertEqual(to.uriParameter("transport"), "tcp")
            self.assertIsNone(to.gruu)
            self.assertEqual(message.fromAddress, CPIMAddress("sip:alice@atlanta.example.com"))
            self.assertEqual(message.dateTime, datetime(2009, 3, 2, 15, 2, 31, tzinfo=MINUS_3))
            self.assertFalse(message.separated)
            self.assertEqual(message.contentType.mimeType, "text/plain")
            self.assertEqual(message.body, b"Hello guys, how are you today?")

    def test_section94(self) -> None:
        """
        R-070: the private message, and the From the switch changed (SPEC F.4).
        """
        sent = parseFixture("rfc7701-section9.4-F1.cpim")
        forwarded = parseFixture("rfc7701-section9.4-F3.cpim")
        self.assertEqual(sent.toAddresses, (CPIMAddress("sip:bob@example.com"),))
        self.assertEqual(forwarded.toAddresses, sent.toAddresses)
        self.assertEqual(sent.fromAddress, CPIMAddress("sip:alice@example.com"))
        self.assertEqual(forwarded.fromAddress, CPIMAddress("sip:alice@atlanta.example.com"))
        self.assertEqual(sent.body, b"Hello Bob.")

    def test_section95Reassembled(self) -> None:
        """
        R-169: the two chunks of §9.5 put together (README: corrected).
        """
        message = parseFixture("rfc7701-section9.5-reassembled.cpim")
        self.assertEqual(message.fromAddress, CPIMAddress("sip:alice@example.com"))
        self.assertEqual(len(message.toBytes()), 132)
        self.assertEqual(message.body, b"Hello Bob")


class RFC7702ExampleTests(SynchronousTestCase):
    """
    RFC 7702 CPIM bodies, as printed (tolerated input) and corrected (SPEC
    §F.3).
    """

    def test_example13(self) -> None:
        """
        R-021, R-169: public message, quoted formal name with a space.
        """
        message = parseFixture("rfc7702-example13.cpim")
        self.assertEqual(message.toAddresses, (CPIMAddress("sip:montague@chat.example.org"),))
        self.assertEqual(message.fromAddress, CPIMAddress("sip:juliet@example.com", "Juliet"))
        self.assertEqual(message.dateTime, datetime(2008, 10, 15, 15, 2, 31, tzinfo=MINUS_3))
        self.assertFalse(message.separated)
        self.assertEqual(message.body, b"Who knows where Romeo is?")

    def test_example17ParametersAfterBracket(self) -> None:
        """
        R-172: C{<sip:...>;gr=Romeo} is tolerated; the parameter is folded
        into the URI and the form is flagged.
        """
        message = parseFixture("rfc7702-example17.cpim")
        (to,) = message.toAddresses
        self.assertEqual(to.uri, "sip:montague@chat.example.org;gr=Romeo")
        self.assertEqual(to.gruu, "Romeo")
        self.assertEqual(to.bareURI, "sip:montague@chat.example.org")
        self.assertTrue(to.parametersAfterBracket)
        fromAddress = message.fromAddress
        assert fromAddress is not None
        self.assertEqual(fromAddress.uri, "sip:juliet@example.org;gr=yn0cl4bnw0yr3vym")
        self.assertEqual(fromAddress.gruu, "yn0cl4bnw0yr3vym")

    def test_example18(self) -> None:
        """
        R-024: From is the sender's in-room address.
        """
        message = parseFixture("rfc7702-example18.cpim")
        self.assertEqual(message.toAddresses, (CPIMAddress("sip:romeo@example.org"),))
        fromAddress = message.fromAddress
        assert fromAddress is not None
        self.assertEqual(fromAddress.bareURI, "sip:montague@chat.example.org")
        self.assertEqual(fromAddress.gruu, "JuliC")

    def test_examples33And36(self) -> None:
        """
        R-037, R-040: Romeo's public and private messages.
        """
        public = parseFixture("rfc7702-example33.cpim")
        private = parseFixture("rfc7702-example36.cpim")
        romeo = CPIMAddress("sip:romeo@example.org;gr=dr4hcr0st3lup4c", "Romeo")
        self.assertEqual(public.fromAddress, romeo)
        self.assertEqual(private.fromAddress, romeo)
        self.assertEqual(public.toAddresses, (CPIMAddress("sip:capulet@rooms.example.com"),))
        self.assertEqual(private.toAddresses[0].gruu, "JuliC")
        self.assertEqual(public.body, b"Romeo is here!")
        self.assertEqual(private.body, b"I am here!!!")

    def test_correctedMatchPrinted(self) -> None:
        """
        SPEC §F.3: the corrected fixtures mean the same as the printed ones
        (Example 17's From domain aside), in canonical form.
        """
        for number in ("13", "17", "18", "33", "36"):
            printed = parseFixture(f"rfc7702-example{number}.cpim")
            corrected = parseFixture(f"rfc7702-example{number}-corrected.cpim")
            self.assertTrue(corrected.separated)
            self.assertFalse(any(a.parametersAfterBracket for a in corrected.toAddresses))
            self.assertEqual(corrected.toAddresses, printed.toAddresses)
            self.assertEqual(corrected.dateTime, printed.dateTime)
            self.assertEqual(corrected.body, printed.body)
            if number != "17":
                self.assertEqual(corrected.fromAddress, printed.fromAddress)
        fixed = parseFixture("rfc7702-example17-corrected.cpim").fromAddress
        self.assertEqual(fixed, CPIMAddress("sip:juliet@example.com;gr=yn0cl4bnw0yr3vym"))


class BuildTests(SynchronousTestCase):
    """
    L{CPIMMessage.build} writes canonical CPIM (R-169, R-170, R-172, R-173).
    """

    def buildPublicMessage(self) -> CPIMMessage:
        """
        The SPEC C.1.3 message, built; check its octets.
        """
        message = CPIMMessage.build(
            fromAddress=CPIMAddress("sip:juliet@example.com"),
            toAddresses=[CPIMAddress("sip:montague@chat.example.org")],
            dateTime=datetime(2015, 10, 15, 18, 2, 31, tzinfo=timezone.utc),
            contentType="text/plain",
            body=b"Who knows where Romeo is?",
        )
        self.assertEqual(
            message.toBytes(),
            b"From: <sip:juliet@example.com>\r\n"
            b"To: <sip:montague@chat.example.org>\r\n"
            b"DateTime: 2015-10-15T18:02:31Z\r\n"
            b"\r\n"
            b"Content-Type: text/plain\r\n"
            b"\r\n"
            b"Who knows where Romeo is?",
        )
        return message

    def test_canonicalPublicMessage(self) -> None:
        """
        R-020, R-169, R-170, R-175: the SPEC C.1.3 message, octet for octet.
        """
        message = self.buildPublicMessage()
        self.assertEqual(CPIMMessage.parse(message.toBytes()), message)

    def test_gruuInsideBrackets(self) -> None:
        """
        R-172: C{To: <sip:room@h;gr=Nick>}, never C{>;gr=}; the nick is
        percent-encoded as a URI parameter and read back decoded.
        """
        room = CPIMAddress("sip:capulet@rooms.example.com")
        occupant = room.withURIParameter("gr", "Alice in Wonderland")
        message = CPIMMessage.build(
            fromAddress=room.withURIParameter("gr", "JuliC"),
            toAddresses=[occupant],
            contentType="text/plain;charset=utf-8",
            body=b"x",
        )
        data = message.toBytes()
        self.assertIn(b"From: <sip:capulet@rooms.example.com;gr=JuliC>\r\n", data)
        self.assertIn(b"To: <sip:capulet@rooms.example.com;gr=Alice%20in%20Wonderland>\r\n", data)
        self.assertEqual(CPIMMessage.parse(data).toAddresses[0].gruu, "Alice in Wonderland")
        self.assertEqual(occupant.withURIParameter("gr", "Bob").uri, "sip:capulet@rooms.example.com;gr=Bob")

    def test_formalNameForms(self) -> None:
        """
        R-172, R-173: token names unquoted, others quoted with escapes; a
        quote in a formal name round-trips.
        """
        self.assertEqual(CPIMAddress("sip:a@b", "JuliC").toHeaderValue(), "JuliC <sip:a@b>")
        self.assertEqual(
            CPIMAddress("sip:a@b", "Winnie the Pooh").toHeaderValue(), "Winnie the Pooh <sip:a@b>"
        )
        quoted = CPIMAddress("sip:a@b", 'Romeo "the lover" (M)\\')
        self.assertEqual(quoted.toHeaderValue(), '"Romeo \\"the lover\\" (M)\\\\" <sip:a@b>')
        message = CPIMMessage.build(fromAddress=quoted, contentType="text/plain", body=b"")
        self.assertEqual(CPIMMessage.parse(message.toBytes()).fromAddress, quoted)

    def test_escapesInValues(self) -> None:
        """
        R-173: control characters in a Subject, an extension header and a
        formal name are escaped, never written raw, and decode back.
        """
        message = CPIMMessage.build(
            fromAddress=CPIMAddress("sip:a@b", "two\nlines"),
            subjects=[CPIMSubject("tab\there \\ bell\x07", "en")],
            namespaces=[CPIMNamespace("http://example.net/x/", "x")],
            extensionHeaders=[("x.Note", "a\rb\x7f")],
            contentType="text/plain",
            body=b"",
        )
        data = message.toBytes()
        self.assertIn(b'From: "two\\nlines" <sip:a@b>\r\n', data)
        self.assertIn(b"Subject:;lang=en tab\\there \\\\ bell\\u0007\r\n", data)
        self.assertIn(b"NS: x <http://example.net/x/>\r\n", data)
        self.assertIn(b"x.Note: a\\rb\\u007f\r\n", data)
        parsed = CPIMMessage.parse(data)
        self.assertEqual(parsed.subjects, (CPIMSubject("tab\there \\ bell\x07", "en"),))
        self.assertEqual(parsed.fromAddress, CPIMAddress("sip:a@b", "two\nlines"))
        self.assertEqual(parsed.headersNamed("http://example.net/x/", "Note")[0].decodedValue, "a\rb\x7f")

    def test_fullBuildOrder(self) -> None:
        """
        R-170: From, To, cc, DateTime, Subject, NS, Require, extensions, then
        the content headers.
        """
        message = CPIMMessage.build(
            fromAddress=CPIMAddress("im:piglet@100akerwood.com", "MR SANDERS"),
            toAddresses=[CPIMAddress("im:eeyore@100akerwood.com", "Depressed Donkey")],
            ccAddresses=[CPIMAddress("im:tigger@100akerwood.com")],
            dateTime=datetime(2000, 12, 13, 13, 40, tzinfo=timezone(timedelta(hours=-8))),
            subjects=[CPIMSubject("the weather will be fine today")],
            namespaces=[CPIMNamespace("mid:MessageFeatures@id.foo.com", "MyFeatures")],
            required=["MyFeatures.VitalMessageOption"],
            extensionHeaders=[("MyFeatures.VitalMessageOption", "Confirmation-requested")],
            contentType="text/xml; charset=utf-8",
            contentHeaders=[("Content-ID", "<1234567890@foo.com>")],
            body=b"<body/>",
        )
        self.assertEqual(
            message.toBytes(),
            b"From: MR SANDERS <im:piglet@100akerwood.com>\r\n"
            b"To: Depressed Donkey <im:eeyore@100akerwood.com>\r\n"
            b"cc: <im:tigger@100akerwood.com>\r\n"
            b"DateTime: 2000-12-13T13:40:00-08:00\r\n"
            b"Subject: the weather will be fine today\r\n"
            b"NS: MyFeatures <mid:MessageFeatures@id.foo.com>\r\n"
            b"Require: MyFeatures.VitalMessageOption\r\n"
            b"MyFeatures.VitalMessageOption: Confirmation-requested\r\n"
            b"\r\n"
            b"Content-Type: text/xml; charset=utf-8\r\n"
            b"Content-ID: <1234567890@foo.com>\r\n"
            b"\r\n"
            b"<body/>",
        )
        self.assertEqual(CPIMMessage.parse(message.toBytes(), understood=[MY_FEATURES]), message)

    def test_buildRejectsBadInput(self) -> None:
        """
        R-170: the builder refuses what it can't write canonically.
        """
        naive = datetime(2015, 10, 15, 18, 2, 31)
        self.assertRaises(ValueError, CPIMMessage.build, dateTime=naive, contentType="text/plain", body=b"")
        self.assertRaises(
            ValueError, CPIMMessage.build, subjects=[CPIMSubject(" padded ")], contentType="text/plain", body=b""
        )
        self.assertRaises(
            ValueError,
            CPIMMessage.build,
            toAddresses=[CPIMAddress("not a uri")],
            contentType="text/plain",
            body=b"",
        )
        self.assertRaises(
            ValueError,
            CPIMMessage.build,
            extensionHeaders=[("undeclared.Header", "x")],
            contentType="text/plain",
            body=b"",
        )
        self.assertRaises(ValueError, CPIMMessage.build, contentType="text/plain\r\nX: y", body=b"")
        self.assertRaises(ValueError, CPIMMessage.build, contentType="nonsense", body=b"")
        self.assertRaises(ValueError, CPIMHeader.make, "Bad Name", "x")

    def test_typedHeadersNotParsedAgain(self) -> None:
        """
        From, To and DateTime made from typed values are written without
        parsing them back (neither the line nor the address or date-time
        in it): they are valid by construction.
        """
        import stoxgw.formats.cpim as cpim

        def parsed(*args: object) -> object:
            raise AssertionError(f"parsed again: {args!r}")

        self.patch(CPIMAddress, "parse", parsed)
        self.patch(CPIMHeader, "parse", parsed)
        self.patch(cpim, "_parseDateTimeHeader", parsed)
        self.buildPublicMessage()

    def test_typedHeadersAsParsed(self) -> None:
        """
        What the builder writes for typed values is what the parser reads
        back, header by header, for names in every form (tokens, quoted,
        escapes, non-ASCII) and date-times in any offset.
        """
        addresses = [
            CPIMAddress("sip:a@b"),
            CPIMAddress("sip:a@b", "Winnie the Pooh"),
            CPIMAddress("sip:a@b", "Ren\u00e9e \u0085"),
            CPIMAddress("sip:a@b", 'two "quoted"\nlines\\'),
            CPIMAddress("sip:a@b", " padded  twice "),
            CPIMAddress("sip:room@h;gr=Alice%20in%20Wonderland", "Alice in Wonderland"),
        ]
        stamps = [
            datetime(1, 1, 1, tzinfo=timezone.utc),
            datetime(2000, 12, 13, 13, 40, 0, 120000, tzinfo=timezone(timedelta(hours=-8))),
            datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        ]
        for address in addresses:
            for stamp in stamps:
                with self.subTest(address=address, stamp=stamp):
                    message = CPIMMessage.build(
                        fromAddress=address,
                        toAddresses=[address, address],
                        ccAddresses=[address],
                        dateTime=stamp,
                        contentType="text/plain",
                        body=b"",
                    )
                    parsed = CPIMMessage.parse(message.toBytes())
                    self.assertEqual(parsed, message)
                    self.assertEqual(parsed.fromAddress, address)
                    self.assertEqual(parsed.dateTime, stamp)

    def test_typedHeadersStillChecked(self) -> None:
        """
        What typed values don't guarantee is still refused: a line over
        the limit, a formal name that is not text, a second From or
        DateTime among the caller's extension headers, a second
        Content-Type.
        """
        refused: list[dict[str, Any]] = [
            {"fromAddress": CPIMAddress("sip:a@b", "x" * MAX_HEADER_LINE_LENGTH)},
            {"toAddresses": [CPIMAddress("sip:a@b", "\ud800")]},
            {
                "fromAddress": CPIMAddress("sip:a@b"),
                "extensionHeaders": [("From", "<sip:c@d>")],
            },
            {
                "dateTime": datetime(2015, 10, 15, tzinfo=timezone.utc),
                "extensionHeaders": [("DateTime", "2015-10-15T00:00:00Z")],
            },
            {"contentHeaders": [("Content-Type", "text/html")]},
        ]
        for arguments in refused:
            with self.subTest(arguments=list(arguments)):
                self.assertRaises(
                    ValueError,
                    CPIMMessage.build,
                    contentType="text/plain",
                    body=b"",
                    **arguments,
                )


class DateTimeTests(SynchronousTestCase):
    """
    RFC 3339 DateTime (RFC 3862 §4.4; R-175).
    """

    def test_parseForms(self) -> None:
        """
        R-175: offsets, C{Z}, fractions, lower-case separators, C{-00:00}.
        """
        self.assertEqual(
            parseDateTime("2015-10-15T18:02:31.123456789Z"),
            datetime(2015, 10, 15, 18, 2, 31, 123456, tzinfo=timezone.utc),
        )
        self.assertEqual(parseDateTime("2015-10-15t18:02:31.5z").microsecond, 500000)
        self.assertEqual(parseDateTime("2015-10-15T18:02:31-00:00").utcoffset(), timedelta(0))
        self.assertEqual(
            parseDateTime("2015-10-15T18:02:31+05:30").utcoffset(), timedelta(hours=5, minutes=30)
        )

    def test_parseRejects(self) -> None:
        """
        R-175: no offset, bad fields, leap seconds and other formats fail.
        """
        for text in (
            "2015-10-15T18:02:31",
            "2015-10-15 18:02:31Z",
            "2015-13-15T18:02:31Z",
            "2015-02-30T18:02:31Z",
            "2015-10-15T24:02:31Z",
            "2015-10-15T18:02:60Z",
            "2015-10-15T18:02:31+24:00",
            "2015-10-15T18:02:31+0100",
            "2015-10-15T18:02Z",
            "Thu, 15 Oct 2015 18:02:31 GMT",
            "",
        ):
            self.assertRaises(ValueError, parseDateTime, text)

    def test_format(self) -> None:
        """
        R-175: the offset held is written, UTC as C{Z}; fractions trimmed.
        """
        self.assertEqual(
            formatDateTime(datetime(2015, 10, 15, 18, 2, 31, tzinfo=timezone.utc)), "2015-10-15T18:02:31Z"
        )
        self.assertEqual(
            formatDateTime(datetime(2009, 3, 2, 15, 2, 31, 250000, tzinfo=MINUS_3)),
            "2009-03-02T15:02:31.25-03:00",
        )
        self.assertEqual(
            formatDateTime(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=45)))),
            "0001-01-01T00:00:00+05:45",
        )
        self.assertRaises(ValueError, formatDateTime, datetime(2015, 1, 1))
        self.assertRaises(ValueError, formatDateTime, datetime(2015, 1, 1, tzinfo=timezone(timedelta(seconds=30))))

    def test_roundTrip(self) -> None:
        """
        R-175: format then parse gives the same instant and offset.
        """
        value = datetime(2020, 2, 29, 23, 59, 59, 999999, tzinfo=MINUS_3)
        parsed = parseDateTime(formatDateTime(value))
        self.assertEqual(parsed, value)
        self.assertEqual(parsed.utcoffset(), value.utcoffset())


class EscapeTests(SynchronousTestCase):
    """
    RFC 3862 §2.3 escapes (R-173).
    """

    def test_unescape(self) -> None:
        """
        R-173: every special sequence and C{\\uXXXX} are recognized.
        """
        self.assertEqual(
            unescapeHeaderValue("\\\\ \\\" \\' \\b \\t \\n \\r \\u0041\\u00e9\\u20AC"),
            "\\ \" ' \b \t \n \r Aé€",
        )

    def test_unescapeEdgeCases(self) -> None:
        """
        R-173, §2.3.1: unknown escapes give the next character, a trailing
        backslash is dropped, a bad C{\\u} is a literal C{u}, surrogate pairs
        combine.
        """
        self.assertEqual(unescapeHeaderValue("a\\qb"), "aqb")
        self.assertEqual(unescapeHeaderValue("end\\"), "end")
        self.assertEqual(unescapeHeaderValue("\\u12"), "u12")
        self.assertEqual(unescapeHeaderValue("\\ud83d\\ude00"), "\U0001f600")
        self.assertEqual(unescapeHeaderValue("\\ud83d"), "\ufffd")

    def test_escape(self) -> None:
        """
        R-173: only the required characters are escaped; C{"} only when
        quoted.
        """
        self.assertEqual(escapeHeaderValue('a"b\\c\x00\x1f é'), 'a"b\\\\c\\u0000\\u001f é')
        self.assertEqual(escapeHeaderValue('a"b', quoted=True), 'a\\"b')
        self.assertEqual(escapeHeaderValue("\b\t\n\r'"), "\\b\\t\\n\\r'")

    def test_roundTrip(self) -> None:
        """
        R-173: escape then unescape is the identity.
        """
        text = "".join(chr(c) for c in range(0, 0x80)) + "é€\U0001f600"
        self.assertEqual(unescapeHeaderValue(escapeHeaderValue(text)), text)
        self.assertEqual(unescapeHeaderValue(escapeHeaderValue(text, quoted=True)), text)


class ParseErrorTests(SynchronousTestCase):
    """
    Malformed input raises L{CPIMError} with a reason (R-170, R-172, R-174).
    """

    def assertMalformed(self, data: bytes, reason: str) -> None:
        """
        C{data} fails to parse with a plain L{CPIMError} (MSRP 400) whose
        reason contains C{reason}.
        """
        error = self.assertRaises(CPIMError, CPIMMessage.parse, data)
        self.assertNotIsInstance(error, CPIMRequireError)
        self.assertEqual(error.msrpStatus, 400)
        self.assertIn(reason, error.reason)

    def test_missingColon(self) -> None:
        """
        R-170: a header line without a colon.
        """
        self.assertMalformed(cpim("From <sip:a@b>"), "without a colon")
        self.assertMalformed(cpim("From"), "without a colon")

    def test_spaceAfterColon(self) -> None:
        """
        R-170: exactly one space after the colon.
        """
        self.assertMalformed(cpim("From:<sip:a@b>"), "one space")
        self.assertMalformed(cpim("From:  <sip:a@b>"), "whitespace")
        self.assertMalformed(cpim("From : <sip:a@b>"), "without a colon")

    def test_whitespaceAtLineEdges(self) -> None:
        """
        R-170: no whitespace at the beginning or end of a line.
        """
        self.assertMalformed(cpim(" From: <sip:a@b>"), "invalid header name")
        self.assertMalformed(cpim("From: <sip:a@b> "), "whitespace")
        self.assertMalformed(cpim("Subject: "), "empty header value")

    def test_controlCharacters(self) -> None:
        """
        R-170: no control characters in a header line (tab, NUL, DEL, bare
        CR or LF).
        """
        for line in ("Subject: a\tb", "Subject: a\x00b", "Subject: a\x7fb", "Subject: a\rb"):
            self.assertMalformed(cpim(line), "control character")
        self.assertMalformed(b"From: <sip:a@b>\nTo: <sip:c@d>\r\n\r\nContent-Type: text/plain\r\n\r\n", "control character")

    def test_notUTF8(self) -> None:
        """
        R-170: headers are UTF-8.
        """
        self.assertMalformed(b"Subject: caf\xe9\r\n\r\nContent-Type: text/plain\r\n\r\n", "UTF-8")

    def test_badDateTime(self) -> None:
        """
        R-175: DateTime must be RFC 3339, and appear at most once.
        """
        self.assertMalformed(cpim("DateTime: 2008-10-15 15:02:31"), "invalid DateTime")
        self.assertMalformed(cpim("DateTime: 2008-10-15T15:02:31"), "invalid DateTime")
        self.assertMalformed(cpim("DateTime: 2008-02-30T15:02:31Z"), "invalid DateTime")
        self.assertMalformed(
            cpim("DateTime: 2008-10-15T15:02:31Z", "DateTime: 2008-10-15T15:02:32Z"), "more than one DateTime"
        )

    def test_nothingAfterBracket(self) -> None:
        """
        R-172: only C{;param} may follow C{>} (tolerated); anything else is
        an error.
        """
        self.assertMalformed(cpim("To: <sip:a@b> x"), "nothing may follow")
        self.assertMalformed(cpim("To: <sip:a@b>x"), "nothing may follow")
        self.assertMalformed(cpim("To: <sip:a@b>;"), "nothing may follow")
        self.assertMalformed(cpim("To: <sip:a@b>;gr=x y"), "nothing may follow")
        self.assertMalformed(cpim("To: <sip:a@b>, <sip:c@d>"), "nothing may follow")
        message = CPIMMessage.parse(cpim("To: <sip:a@b>;gr=urn:uuid:f81d4fae;lr"))
        self.assertEqual(message.toAddresses[0].uri, "sip:a@b;gr=urn:uuid:f81d4fae;lr")
        self.assertEqual(message.toAddresses[0].uriParameter("lr"), "")

    def test_badAddresses(self) -> None:
        """
        R-172: C{[Formal-name] "<" URI ">"} and nothing else.
        """
        self.assertMalformed(cpim("From: sip:a@b"), "without '<URI>'")
        self.assertMalformed(cpim("From: <sip:a@b"), "missing '>'")
        self.assertMalformed(cpim('From: "Romeo <sip:a@b>'), "unterminated")
        self.assertMalformed(cpim("From: Romeo (M) <sip:a@b>"), "formal name")
        self.assertMalformed(cpim("From: Romeo<sip:a@b>"), "formal name")
        self.assertMalformed(cpim('From: "Romeo" x <sip:a@b>'), "expected '<'")
        self.assertMalformed(cpim("From: <romeo@example.org>"), "absolute URI")
        self.assertMalformed(cpim("From: <sip:a b@c>"), "absolute URI")
        self.assertMalformed(cpim("From: <sip:a@b>", "From: <sip:c@d>"), "more than one From")

    def test_quotedFormalNameWithoutSpace(self) -> None:
        """
        R-172: the strict ABNF form C{"Name"<uri>} is accepted too.
        """
        message = CPIMMessage.parse(cpim('From: "Ro\\"meo"<sip:a@b>'))
        self.assertEqual(message.fromAddress, CPIMAddress("sip:a@b", 'Ro"meo'))

    def test_caseSensitiveNames(self) -> None:
        """
        R-170: C{from} is not C{From} (and is ignored as unknown).
        """
        message = CPIMMessage.parse(cpim("from: not even an address"))
        self.assertIsNone(message.fromAddress)
        self.assertEqual(message.headers[0].name, "from")

    def test_undeclaredPrefix(self) -> None:
        """
        R-174: a prefix must be declared by an earlier NS header.
        """
        self.assertMalformed(
            cpim("MyFeatures.Option: x", "NS: MyFeatures <mid:x@y>"), "undeclared namespace prefix"
        )

    def test_badNSAndRequire(self) -> None:
        """
        R-174: NS is C{[prefix] <URI>}; Require lists header names.
        """
        self.assertMalformed(cpim("NS: MyFeatures"), "invalid NS")
        self.assertMalformed(cpim("NS: My Features <mid:x@y>"), "invalid NS")
        self.assertMalformed(cpim("Require: a b"), "invalid header name in Require")
        self.assertMalformed(cpim("Require: a,,b"), "invalid header name in Require")

    def test_badHeaderParameters(self) -> None:
        """
        R-170: C{Name:;param=value SP value}.
        """
        self.assertMalformed(cpim("Subject:;lang Objet"), "invalid header parameter")
        self.assertMalformed(cpim("Subject:;lang=\"fr Objet"), "unterminated")
        header = CPIMHeader.parse(b'Subject:;note="a b";lang=fr x')
        self.assertEqual(header.parameters, (("note", '"a b"'), ("lang", "fr")))
        self.assertEqual(header.parameter("note"), "a b")

    def test_contentTypeRequired(self) -> None:
        """
        R-169, RFC 3862 §2.4: the MIME part needs exactly one valid
        Content-Type.
        """
        self.assertMalformed(b"From: <sip:a@b>\r\n\r\nContent-ID: <x@y>\r\n\r\nbody", "Content-Type")
        self.assertMalformed(
            b"From: <sip:a@b>\r\n\r\nContent-Type: text/plain\r\nContent-Type: text/html\r\n\r\n",
            "Content-Type",
        )
        self.assertMalformed(b"From: <sip:a@b>\r\n\r\nContent-Type: text\r\n\r\n", "invalid Content-Type")
        self.assertMalformed(b"From: <sip:a@b>\r\n\r\nContent-Type text/plain\r\n\r\n", "without a colon")
        self.assertMalformed(b"From: <sip:a@b>\r\n\r\n\r\nbody", "no encapsulated MIME headers")

    def test_unterminated(self) -> None:
        """
        R-169: both header blocks end with an empty line.
        """
        self.assertMalformed(b"", "not terminated")
        self.assertMalformed(b"From: <sip:a@b>\r\n", "not terminated")
        self.assertMalformed(b"From: <sip:a@b>\r\n\r\nHello there", "not terminated")
        self.assertMalformed(b"From: <sip:a@b>\r\nContent-Type: text/plain\r\n", "not terminated")

    def test_foldedMIMEHeader(self) -> None:
        """
        RFC 5322 folding is allowed in the MIME part and kept on round trip,
        but not in the CPIM part (R-170: no leading whitespace).
        """
        data = b"From: <sip:a@b>\r\n\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nx"
        message = CPIMMessage.parse(data)
        self.assertEqual(message.contentType.parameter("charset"), "utf-8")
        self.assertEqual(message.toBytes(), data)
        self.assertMalformed(b"\r\n charset=utf-8\r\n\r\nx", "continuation")

    def test_limits(self) -> None:
        """
        Bounded buffers: header count and line length.
        """
        many = cpim(*["X-H: v"] * (MAX_HEADER_COUNT + 1))
        self.assertMalformed(many, "too many header lines")
        self.assertEqual(len(CPIMMessage.parse(cpim(*["X-H: v"] * MAX_HEADER_COUNT)).headers), MAX_HEADER_COUNT)
        long = cpim("Subject: " + "x" * MAX_HEADER_LINE_LENGTH)
        self.assertMalformed(long, "too long")
        self.assertMalformed(b"Subject: " + b"x" * (MAX_HEADER_LINE_LENGTH * 2), "too long")
