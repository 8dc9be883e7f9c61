# -*- test-case-name: tests.sip.test_headers -*-
"""
Tests for L{stoxgw.sip.headers}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.headers import (
    COMPACT_FORMS,
    AuthHeader,
    CSeq,
    Event,
    HeaderError,
    Headers,
    MediaType,
    SessionExpires,
    SubscriptionState,
    Via,
    canonicalName,
    parseCallID,
    parseContact,
    parseContentLength,
    parseExpires,
    parseMaxForwards,
    parseMinSE,
    parseReasons,
    parseRoute,
    parseTokenList,
    parseVia,
    splitHeaderValues,
)


class NameTests(SynchronousTestCase):
    """
    Header names and compact forms (RFC 3261 section 7.3.3).
    """

    def test_compactForms(self) -> None:
        """
        Every compact form of RFC 3261 and of the later RFCs expands.
        """
        expected = {
            "i": "Call-ID",
            "m": "Contact",
            "e": "Content-Encoding",
            "l": "Content-Length",
            "c": "Content-Type",
            "f": "From",
            "s": "Subject",
            "k": "Supported",
            "t": "To",
            "v": "Via",
            "o": "Event",
            "u": "Allow-Events",
            "r": "Refer-To",
            "b": "Referred-By",
            "x": "Session-Expires",
            "y": "Identity",
            "a": "Accept-Contact",
            "j": "Reject-Contact",
            "d": "Request-Disposition",
            "n": "Identity-Info",
        }
        self.assertEqual(COMPACT_FORMS, expected)
        for short, long in expected.items():
            self.assertEqual(canonicalName(short.upper()), long)

    def test_canonical(self) -> None:
        """
        Known names get their RFC spelling; unknown ones are unchanged.
        """
        self.assertEqual(canonicalName("cseq"), "CSeq")
        self.assertEqual(canonicalName("CALL-id"), "Call-ID")
        self.assertEqual(canonicalName("www-authenticate"), "WWW-Authenticate")
        self.assertEqual(canonicalName("X-Custom"), "X-Custom")


class HeadersTests(SynchronousTestCase):
    """
    The ordered, case-insensitive L{Headers} collection.
    """

    def test_lookup(self) -> None:
        """
        Lookups ignore case and compact forms; names are kept as written.
        """
        headers = Headers.of(
            ("v", "SIP/2.0/UDP a"),
            ("VIA", "SIP/2.0/UDP b, SIP/2.0/UDP c"),
            ("i", "abc"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
        )
        self.assertEqual(headers.get("call-id"), "abc")
        self.assertEqual(
            headers.getLines("Via"), ["SIP/2.0/UDP a", "SIP/2.0/UDP b, SIP/2.0/UDP c"]
        )
        self.assertEqual(
            headers.getAll("via"), ["SIP/2.0/UDP a", "SIP/2.0/UDP b", "SIP/2.0/UDP c"]
        )
        self.assertEqual(headers.getAll("Date"), ["Sat, 13 Nov 2010 23:29:00 GMT"])
        self.assertIn("CALL-ID", headers)
        self.assertNotIn("To", headers)
        self.assertEqual(headers.count("Via"), 2)
        self.assertEqual(headers.serialize().splitlines()[0], "v: SIP/2.0/UDP a")

    def test_edit(self) -> None:
        """
        The editing methods return new collections.
        """
        headers = Headers.of(("Via", "1"), ("To", "t"), ("Via", "2"))
        self.assertEqual(
            [f.value for f in headers.addFirst("v", "0")], ["0", "1", "t", "2"]
        )
        self.assertEqual([f.value for f in headers.removeFirst("Via")], ["t", "2"])
        self.assertEqual([f.value for f in headers.remove("v")], ["t"])
        self.assertEqual([f.value for f in headers.set("Via", "x")], ["x", "t"])
        self.assertEqual(
            [f.name for f in headers.set("Max-Forwards", "70")][-1], "Max-Forwards"
        )
        self.assertEqual(len(headers), 3)

    def test_split(self) -> None:
        """
        Splitting ignores commas in quotes and angle brackets.
        """
        self.assertEqual(
            splitHeaderValues('"a,b" <sip:x,y@z>;p=1, c ,,d'),
            ['"a,b" <sip:x,y@z>;p=1', "c", "d"],
        )
        self.assertEqual(splitHeaderValues("  "), [])


class ViaTests(SynchronousTestCase):
    """
    Via (RFC 3261 section 20.42, RFC 3581).
    """

    def test_wsinv(self) -> None:
        """
        The whitespace-laden Via list of RFC 4475 wsinv (after unfolding).
        """
        vias = parseVia(
            "SIP  / 2.0  / TCP     spindle.example.com   ;   branch  =   z9hG4bK9ikj8  ,"
            "  SIP  /    2.0   / UDP  192.168.255.111   ; branch= z9hG4bK30239"
        )
        self.assertEqual(
            [(v.transport, v.host, v.branch) for v in vias],
            [
                ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
                ("UDP", "192.168.255.111", "z9hG4bK30239"),
            ],
        )

    def test_params(self) -> None:
        """
        Port, received, rport with and without value, IPv6 sent-by.
        """
        via = Via.parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-;rport")
        self.assertEqual(via.port, 5070)
        self.assertIs(via.rport, True)
        self.assertTrue(via.hasMagicCookie)
        filled = via.withParameter("received", "192.0.2.7").withParameter(
            "rport", "5071"
        )
        self.assertEqual(
            filled.serialize(),
            "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-d87543-;received=192.0.2.7;rport=5071",
        )
        self.assertEqual(filled.rport, 5071)
        v6 = Via.parse(
            "SIP/2.0/TCP [2001:db8::9:1]:5061;received=2001:db8::9:255;branch=z9hG4bKas3"
        )
        self.assertEqual(v6.host, "2001:db8::9:1")
        self.assertEqual(v6.received, "2001:db8::9:255")
        self.assertEqual(v6.sentBy, "[2001:db8::9:1]:5061")
        self.assertIsNone(Via.parse("SIP/2.0/UDP x").rport)

    def test_badbranch(self) -> None:
        """
        A bare magic cookie (RFC 4475 section 3.2.1 badbranch) parses.
        """
        self.assertEqual(
            Via.parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK").branch, "z9hG4bK"
        )

    def test_invalid(self) -> None:
        """
        RFC 4475 badinv01's C{;;,;,,} and other broken values.
        """
        for text in [
            "SIP/2.0/UDP 192.0.2.15;;,;,,",
            "SIP/2.0 host",
            "SIP/2.0/UDP",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host:port",
            "",
        ]:
            self.assertRaises(HeaderError, parseVia, text)


class ScalarTests(SynchronousTestCase):
    """
    CSeq, Content-Length, Max-Forwards, Expires, Call-ID.
    """

    def test_cseq(self) -> None:
        """
        CSeq numbers below 2**31 with a case-sensitive method; LWS between
        (RFC 4475 wsinv C{0009 INVITE}).
        """
        self.assertEqual(CSeq.parse("0009   INVITE"), CSeq(9, "INVITE"))
        self.assertEqual(CSeq.parse("1 invite").method, "invite")
        self.assertEqual(str(CSeq(2**31 - 1, "BYE")), "2147483647 BYE")
        for text in [
            "36893488147419103232 REGISTER",
            "2147483648 INVITE",
            "INVITE",
            "1",
            "-1 BYE",
        ]:
            self.assertRaises(HeaderError, CSeq.parse, text)

    def test_numbers(self) -> None:
        """
        Range checks of RFC 4475 section 3.1.2.3/3.1.2.4.
        """
        self.assertEqual(parseContentLength(" 0150 "), 150)
        self.assertRaises(HeaderError, parseContentLength, "-999")
        self.assertEqual(parseMaxForwards("0068"), 68)
        self.assertRaises(HeaderError, parseMaxForwards, "300")
        self.assertEqual(parseExpires("1" + "0" * 100), 2**32 - 1)
        self.assertRaises(HeaderError, parseExpires, "soon")

    def test_longNumbers(self) -> None:
        """
        Numbers longer than C{int} converts (Python's 4300-digit limit) are
        out of range, not C{ValueError}: C{HeaderError} where the value is
        parsed, the clamp of Expires (RFC 3261 section 10.2.1.1, and of the
        RFC 4028 Session-Expires and Min-SE delta-seconds), L{None}
        from the accessors that answer it for "not a number".  Found while
        writing C{fuzz/fuzz_sip_headers.py}.
        """
        digits = "9" * 5000
        self.assertRaises(HeaderError, CSeq.parse, digits + " INVITE")
        self.assertRaises(HeaderError, parseMaxForwards, digits)
        self.assertEqual(parseExpires(digits), 2**32 - 1)
        self.assertEqual(parseExpires("0" * 5000 + "7"), 7)
        self.assertIsNone(parseVia(f"SIP/2.0/UDP h;rport={digits}")[0].rport)
        state = SubscriptionState.parse(
            f"terminated;expires={digits};retry-after={digits}"
        )
        self.assertEqual((state.expires, state.retryAfter), (2**32 - 1, 2**32 - 1))
        self.assertIsNone(parseReasons(f"SIP;cause={digits}")[0].cause)
        self.assertEqual(SessionExpires.parse(digits + ";refresher=uac").interval, 2**32 - 1)
        self.assertEqual(parseMinSE(digits), 2**32 - 1)

    def test_callID(self) -> None:
        """
        The odd but valid Call-ID of RFC 4475 intmeth.
        """
        weird = "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
        self.assertEqual(parseCallID(weird), weird)
        self.assertRaises(HeaderError, parseCallID, "has space")
        self.assertRaises(HeaderError, parseCallID, "")


class ListTests(SynchronousTestCase):
    """
    Contact, Route, token lists, Reason.
    """

    def test_contact(self) -> None:
        """
        Contact lists across lines, and the REGISTER wildcard.
        """
        contacts = parseContact(
            ["<sip:a@b>;expires=60, sip:c@d", '"x" <sip:e@f>;q=0.5']
        )
        self.assertEqual(
            [str(c.uri) for c in contacts.addresses], ["sip:a@b", "sip:c@d", "sip:e@f"]
        )
        self.assertFalse(contacts.star)
        star = parseContact("*;expires=0")
        self.assertTrue(star.star)
        self.assertEqual(star.serialize(), "*;expires=0")
        self.assertRaises(HeaderError, parseContact, ["*", "<sip:a@b>"])
        self.assertRaises(
            HeaderError,
            parseContact,
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        )

    def test_route(self) -> None:
        """
        Route sets keep order over several lines.
        """
        route = parseRoute(
            [
                "<sip:p1.example.com;lr>",
                "<sip:p2.example.com;lr>,<sip:p3.example.com;lr>",
            ]
        )
        self.assertEqual(
            [r.uri.serialize() for r in route],
            ["sip:p1.example.com;lr", "sip:p2.example.com;lr", "sip:p3.example.com;lr"],
        )

    def test_tokens(self) -> None:
        """
        Allow, Supported, Require are token lists (RFC 4475 bext01).
        """
        self.assertEqual(
            parseTokenList(["nothingSupportsThis, nothingSupportsThisEither", "gruu"]),
            ["nothingSupportsThis", "nothingSupportsThisEither", "gruu"],
        )
        self.assertRaises(HeaderError, parseTokenList, "a b")

    def test_reason(self) -> None:
        """
        Reason (RFC 3326) elements with quoted text.
        """
        reasons = parseReasons(
            'SIP ;cause=200 ;text="Call completed elsewhere", Q.850;cause=16'
        )
        self.assertEqual(
            [(r.protocol, r.cause, r.text) for r in reasons],
            [("SIP", 200, "Call completed elsewhere"), ("Q.850", 16, None)],
        )


class TypedTests(SynchronousTestCase):
    """
    Content-Type, Event, Subscription-State, authentication headers.
    """

    def test_mediaType(self) -> None:
        """
        Media types with parameters; comparison form lower-cased.
        """
        media = MediaType.parse("Multipart/Mixed ; boundary=7a9cbec02ceef655")
        self.assertEqual(media.mimeType, "multipart/mixed")
        self.assertEqual(media.parameter("BOUNDARY"), "7a9cbec02ceef655")
        self.assertEqual(
            str(MediaType.parse('message/cpim;x="a b"')), 'message/cpim;x="a b"'
        )
        self.assertRaises(HeaderError, MediaType.parse, "text")

    def test_event(self) -> None:
        """
        Event with id (RFC 6665 section 8.2.1).
        """
        event = Event.parse("conference ;id=1234")
        self.assertEqual((event.package, event.id), ("conference", "1234"))
        self.assertTrue(event.matches(Event.parse("Conference;id=1234")))
        self.assertFalse(event.matches(Event.parse("conference")))
        self.assertRaises(HeaderError, Event.parse, ";id=1")

    def test_subscriptionState(self) -> None:
        """
        Subscription-State with its parameters.
        """
        state = SubscriptionState.parse("terminated;reason=timeout;retry-after=30")
        self.assertEqual(
            (state.state, state.reason, state.retryAfter, state.expires),
            ("terminated", "timeout", 30, None),
        )
        self.assertEqual(SubscriptionState.parse("Active;expires=600").expires, 600)

    def test_digest(self) -> None:
        """
        Digest challenges and credentials, commas inside quotes included;
        an unknown scheme still parses (RFC 4475 regaut01).
        """
        challenge = AuthHeader.parse(
            'Digest realm="atlanta.com", domain="sip:ss1.carrier.com", qop="auth,auth-int",'
            ' nonce="f84f1cec41e6cbe5aea9c8e88d359", opaque="", stale=FALSE, algorithm=MD5'
        )
        self.assertTrue(challenge.isDigest)
        self.assertEqual(challenge.parameter("qop"), "auth,auth-int")
        self.assertEqual(challenge.parameter("opaque"), "")
        self.assertEqual(challenge.parameter("STALE"), "FALSE")
        self.assertEqual(AuthHeader.parse(challenge.serialize()), challenge)
        odd = AuthHeader.parse("NoOneKnowsThisScheme opaque-data=here")
        self.assertEqual(
            (odd.scheme, odd.parameter("opaque-data")), ("NoOneKnowsThisScheme", "here")
        )
        self.assertRaises(HeaderError, AuthHeader.parse, 'Digest realm="open')
