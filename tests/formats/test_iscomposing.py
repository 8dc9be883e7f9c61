# -*- test-case-name: tests.formats.test_iscomposing -*-
"""
Tests for L{stoxgw.formats.iscomposing}: RFC 3994 isComposing documents
(SPEC R-120, R-225, table E.6), against the RFC 3994 §5 examples in
C{tests/fixtures/formats/}.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.etree import ElementTree

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.formats.iscomposing import (
    DEFAULT_REFRESH,
    ISCOMPOSING_CONTENT_TYPE,
    ISCOMPOSING_NAMESPACE,
    MAX_DOCUMENT_SIZE,
    ComposingState,
    IsComposing,
    IsComposingError,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "formats"


def fixture(name: str) -> bytes:
    """
    @return: the octets of C{tests/fixtures/formats/<name>}.
    """
    return (FIXTURES / name).read_bytes()


def document(*children: str, root: str = "isComposing", namespace: str = ISCOMPOSING_NAMESPACE) -> bytes:
    """
    An isComposing-like document with the given child element markup.
    """
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\r\n<{root} xmlns="{namespace}">'
        + "".join(children)
        + f"</{root}>"
    ).encode("utf-8")


class RFC3994ExampleTests(SynchronousTestCase):
    """
    RFC 3994 §5 examples.
    """

    def test_activeExample(self) -> None:
        """
        R-120: state active, content type and refresh.
        """
        status = IsComposing.parse(fixture("rfc3994-section5-active.xml"))
        self.assertEqual(status, IsComposing(ComposingState.ACTIVE, None, "text/plain", 90))
        self.assertEqual(status.effectiveRefresh, 90)

    def test_idleExample(self) -> None:
        """
        R-120: state idle with lastactive (UTC) and a bare media type.
        """
        status = IsComposing.parse(fixture("rfc3994-section5-idle.xml"))
        self.assertIs(status.state, ComposingState.IDLE)
        self.assertEqual(status.lastActive, datetime(2003, 1, 27, 10, 43, tzinfo=timezone.utc))
        self.assertEqual(status.contentType, "audio")
        self.assertIsNone(status.refresh)
        self.assertEqual(status.effectiveRefresh, DEFAULT_REFRESH)

    def test_examplesRoundTrip(self) -> None:
        """
        Parse, serialize, parse gives the same status; the serialized form
        equals the RFC example once the schema hint and layout are
        canonicalized away.
        """
        for name in ("rfc3994-section5-active.xml", "rfc3994-section5-idle.xml"):
            data = fixture(name)
            status = IsComposing.parse(data)
            self.assertEqual(IsComposing.parse(status.toBytes()), status)
            original = ElementTree.fromstring(data)
            original.attrib.clear()
            self.assertEqual(
                ElementTree.canonicalize(
                    ElementTree.tostring(original, default_namespace=ISCOMPOSING_NAMESPACE),
                    strip_text=True,
                ),
                ElementTree.canonicalize(status.toBytes().decode("utf-8"), strip_text=True),
            )

    def test_insideCPIM(self) -> None:
        """
        R-225: an isComposing document wrapped in CPIM to the room (RFC 3994
        §3.5) goes through both parsers.
        """
        status = IsComposing(ComposingState.ACTIVE, contentType="text", refresh=60)
        wrapper = CPIMMessage.build(
            fromAddress=CPIMAddress("sip:romeo@example.org"),
            toAddresses=[CPIMAddress("sip:capulet@rooms.example.com")],
            contentType=ISCOMPOSING_CONTENT_TYPE,
            body=status.toBytes(),
        )
        parsed = CPIMMessage.parse(wrapper.toBytes())
        self.assertEqual(parsed.contentType.mimeType, ISCOMPOSING_CONTENT_TYPE)
        self.assertEqual(IsComposing.parse(parsed.body), status)


class SerializeTests(SynchronousTestCase):
    """
    L{IsComposing.toBytes} writes the canonical document.
    """

    def test_canonicalActive(self) -> None:
        """
        R-120: the RFC 3994 §5 layout, elements in schema order.
        """
        status = IsComposing(
            ComposingState.ACTIVE,
            lastActive=datetime(2015, 10, 15, 18, 2, 31, tzinfo=timezone.utc),
            contentType="text/plain",
            refresh=90,
        )
        self.assertEqual(
            status.toBytes(),
            b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">\r\n'
            b"  <state>active</state>\r\n"
            b"  <lastactive>2015-10-15T18:02:31Z</lastactive>\r\n"
            b"  <contenttype>text/plain</contenttype>\r\n"
            b"  <refresh>90</refresh>\r\n"
            b"</isComposing>",
        )

    def test_canonicalIdle(self) -> None:
        """
        R-120: only the state when nothing else is known.
        """
        self.assertEqual(
            IsComposing(ComposingState.IDLE).toBytes(),
            b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">\r\n'
            b"  <state>idle</state>\r\n"
            b"</isComposing>",
        )

    def test_escapesText(self) -> None:
        """
        Markup characters in the content type are escaped and read back.
        """
        status = IsComposing(ComposingState.ACTIVE, contentType="a<b>&c")
        self.assertIn(b"<contenttype>a&lt;b&gt;&amp;c</contenttype>", status.toBytes())
        self.assertEqual(IsComposing.parse(status.toBytes()), status)

    def test_offsetKept(self) -> None:
        """
        lastactive keeps the offset it was given.
        """
        when = datetime(2003, 1, 27, 5, 43, tzinfo=timezone(timedelta(hours=-5)))
        status = IsComposing(ComposingState.IDLE, lastActive=when)
        self.assertIn(b"<lastactive>2003-01-27T05:43:00-05:00</lastactive>", status.toBytes())
        self.assertEqual(IsComposing.parse(status.toBytes()).lastActive, when)

    def test_invalidValues(self) -> None:
        """
        A status that can't be written is refused at construction.
        """
        self.assertRaises(ValueError, IsComposing, ComposingState.ACTIVE, refresh=0)
        self.assertRaises(ValueError, IsComposing, ComposingState.ACTIVE, lastActive=datetime(2003, 1, 27))
        self.assertRaises(ValueError, IsComposing, ComposingState.ACTIVE, contentType=" ")


class ParseTests(SynchronousTestCase):
    """
    Lenient where RFC 3994 says so, strict otherwise.
    """

    def assertMalformed(self, data: bytes, reason: str) -> None:
        """
        C{data} fails with an L{IsComposingError} whose reason contains
        C{reason}.
        """
        error = self.assertRaises(IsComposingError, IsComposing.parse, data)
        self.assertIn(reason, error.reason)

    def test_unknownStateIsIdle(self) -> None:
        """
        RFC 3994 §3.5: a state token other than active/idle MUST be treated
        as idle.
        """
        self.assertIs(IsComposing.parse(document("<state>paused</state>")).state, ComposingState.IDLE)
        self.assertIs(IsComposing.parse(document("<state>Active</state>")).state, ComposingState.IDLE)

    def test_wrongState(self) -> None:
        """
        A missing, empty, repeated or non-token state is an error.
        """
        self.assertMalformed(document("<refresh>60</refresh>"), "missing state")
        self.assertMalformed(document("<state></state>"), "invalid state")
        self.assertMalformed(document("<state>not typing</state>"), "invalid state")
        self.assertMalformed(document("<state>active</state><state>idle</state>"), "more than one state")
        self.assertMalformed(document("<state><b>active</b></state>"), "text only")

    def test_whitespaceAroundValues(self) -> None:
        """
        Values are whitespace-collapsed as XML Schema does for these types.
        """
        status = IsComposing.parse(
            document("<state>\r\n  active </state>", "<refresh> 60\r\n</refresh>", "<contenttype> text </contenttype>")
        )
        self.assertEqual(status, IsComposing(ComposingState.ACTIVE, contentType="text", refresh=60))

    def test_anyOrder(self) -> None:
        """
        Elements are accepted in any order (deployed senders put lastactive
        after contenttype).
        """
        status = IsComposing.parse(
            document(
                "<refresh>60</refresh>",
                "<contenttype>text/plain</contenttype>",
                "<lastactive>2012-02-22T17:53:49.000Z</lastactive>",
                "<state>active</state>",
            )
        )
        self.assertEqual(status.lastActive, datetime(2012, 2, 22, 17, 53, 49, tzinfo=timezone.utc))
        self.assertEqual(status.refresh, 60)

    def test_badRefresh(self) -> None:
        """
        refresh is an xs:positiveInteger.
        """
        for value in ("0", "-5", "abc", "1.5", "", "12345678901"):
            self.assertMalformed(
                document("<state>active</state>", f"<refresh>{value}</refresh>"), "positive integer"
            )
        self.assertEqual(IsComposing.parse(document("<state>active</state><refresh>+30</refresh>")).refresh, 30)

    def test_badLastActive(self) -> None:
        """
        lastactive is a date-time with an offset.
        """
        for value in ("yesterday", "2003-01-27T10:43:00", "2003-01-27"):
            self.assertMalformed(
                document("<state>idle</state>", f"<lastactive>{value}</lastactive>"), "invalid lastactive"
            )

    def test_emptyContentType(self) -> None:
        """
        An empty contenttype is an error.
        """
        self.assertMalformed(document("<state>idle</state><contenttype> </contenttype>"), "empty contenttype")

    def test_wrongRootOrNamespace(self) -> None:
        """
        The root must be isComposing in the RFC 3994 namespace.
        """
        self.assertMalformed(document("<state>idle</state>", namespace="urn:ietf:params:xml:ns:im-composing"), "root")
        self.assertMalformed(document("<state>idle</state>", root="composing"), "root")
        self.assertMalformed(b"<isComposing><state>idle</state></isComposing>", "root")

    def test_extensions(self) -> None:
        """
        RFC 3994 §3.5: elements in other namespaces are ignored; new
        elements in the RFC 3994 namespace, or in none, are errors.
        """
        status = IsComposing.parse(
            document('<state>active</state><x:mood xmlns:x="urn:example:x"><x:deep/></x:mood>')
        )
        self.assertIs(status.state, ComposingState.ACTIVE)
        self.assertMalformed(document("<state>active</state><mood>happy</mood>"), "unknown element")
        self.assertMalformed(document('<state>active</state><mood xmlns="">happy</mood>'), "without a namespace")

    def test_textOutsideElements(self) -> None:
        """
        No mixed content.
        """
        self.assertMalformed(document("hello<state>active</state>"), "text directly")
        self.assertMalformed(document("<state>active</state>hello"), "text directly")

    def test_doctypeRefused(self) -> None:
        """
        A DTD is refused before parsing: no entity expansion (billion laughs)
        and no external entities.
        """
        laughs = (
            b'<?xml version="1.0"?>\r\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\r\n'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>&lol2;</state></isComposing>'
        )
        self.assertMalformed(laughs, "DTD")
        external = (
            b'<!DOCTYPE isComposing SYSTEM "file:///etc/passwd">'
            b'<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>idle</state></isComposing>'
        )
        self.assertMalformed(external, "DTD")
        self.assertMalformed(b"<!doctype x>" + document("<state>idle</state>"), "DTD")
        self.assertMalformed(b"<!ENTITY x 'y'>", "DTD")

    def test_undefinedEntity(self) -> None:
        """
        Without a DTD, only the predefined entities exist.
        """
        self.assertMalformed(document("<state>&custom;</state>"), "well-formed")
        self.assertIs(IsComposing.parse(document("<state>&#97;ctive</state>")).state, ComposingState.ACTIVE)

    def test_notWellFormed(self) -> None:
        """
        Broken XML is an error, not an exception from the XML library.
        """
        self.assertMalformed(b"", "well-formed")
        self.assertMalformed(b"<isComposing", "well-formed")
        self.assertMalformed(document("<state>idle</stat>"), "well-formed")
        self.assertMalformed(document("<state>idle</state>") + b"<extra/>", "well-formed")

    def test_encoding(self) -> None:
        """
        RFC 3994 §6: documents MUST be UTF-8.
        """
        latin = b'<?xml version="1.0" encoding="ISO-8859-1"?><isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing"><state>idle</state></isComposing>'
        self.assertMalformed(latin, "UTF-8")
        self.assertMalformed(document("<state>idle</state><contenttype>caf\xe9</contenttype>").replace("é".encode(), b"\xe9"), "UTF-8")
        self.assertMalformed("<isComposing/>".encode("utf-16"), "UTF-8")

    def test_sizeBound(self) -> None:
        """
        Documents are bounded.
        """
        padding = " " * MAX_DOCUMENT_SIZE
        self.assertMalformed(document(f"<state>idle</state>{padding}"), "too large")


class EncodingBypassTests(SynchronousTestCase):
    """
    A DTD cannot be smuggled past the checks in another encoding.
    """

    def test_utf16WithoutBOMRefused(self) -> None:
        """
        UTF-16LE without a byte-order mark (ASCII with NULs between) is
        refused before the XML parser, which would otherwise decode it and
        expand its entities.
        """
        document = (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "active">]>'
            '<isComposing xmlns="urn:ietf:params:xml:ns:im-iscomposing">'
            "<state>&a;</state></isComposing>"
        ).encode("utf-16-le")
        error = self.assertRaises(IsComposingError, IsComposing.parse, document)
        self.assertIn("NUL", error.reason)
