# -*- test-case-name: tests.sip.test_uri -*-
"""
Tests for L{stoxgw.sip.uri}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.sip.uri import (
    AbsoluteURI,
    NameAddr,
    SIPURI,
    SIPURIError,
    parseNameAddr,
    parseNameAddrList,
    parseURI,
    quoteString,
    unquoteString,
)


class SIPURIParseTests(SynchronousTestCase):
    """
    Parsing and serializing SIP/SIPS URIs (RFC 3261 sections 19.1, 25.1).
    """

    def test_allComponents(self) -> None:
        """
        User, password, host, port, flag and valued parameters and headers
        are all read; serialization gives the text back.
        """
        text = "sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr?subject=project%20x&priority=urgent"
        uri = SIPURI.fromString(text)
        self.assertEqual(uri.scheme, "sips")
        self.assertTrue(uri.secure)
        self.assertEqual(uri.user, "alice")
        self.assertEqual(uri.password, "secret")
        self.assertEqual(uri.host, "atlanta.example.com")
        self.assertEqual(uri.port, 5061)
        self.assertEqual(uri.parameters, (("transport", "tcp"), ("lr", None)))
        self.assertEqual(
            uri.headers, (("subject", "project x"), ("priority", "urgent"))
        )
        self.assertEqual(uri.transport, "tcp")
        self.assertTrue(uri.looseRouting)
        self.assertEqual(uri.serialize(), text)

    def test_ipv6(self) -> None:
        """
        IPv6 references keep their brackets on output only.
        """
        uri = SIPURI.fromString("sip:[2001:db8::10]:5070;maddr=[2001:db8::1]")
        self.assertEqual(uri.host, "2001:db8::10")
        self.assertEqual(uri.port, 5070)
        self.assertTrue(uri.numericHost)
        self.assertEqual(uri.parameter("MADDR"), "[2001:db8::1]")
        self.assertEqual(str(uri), "sip:[2001:db8::10]:5070;maddr=[2001:db8::1]")

    def test_escaping(self) -> None:
        """
        Escapes are decoded (RFC 4475 esc01 Request-URI) and characters not
        allowed in a component are escaped again on output.
        """
        uri = SIPURI.fromString("sip:sips%3Auser%40example.com@example.net")
        self.assertEqual(uri.user, "sips:user@example.com")
        self.assertEqual(uri.serialize(), "sip:sips%3Auser%40example.com@example.net")
        built = SIPURI("sip", "example.com", user="I have spaces")
        self.assertEqual(built.serialize(), "sip:I%20have%20spaces@example.com")
        self.assertEqual(
            SIPURI.fromString("sip:null-%00-null@example.com").user, "null-\x00-null"
        )

    def test_semicolonInUser(self) -> None:
        """
        The user part may hold C{;} and C{?} (RFC 4475 semiuri, intmeth):
        the userinfo ends at C{@}.
        """
        uri = SIPURI.fromString("sip:user;par=u%40example.net@example.com")
        self.assertEqual(uri.user, "user;par=u@example.net")
        self.assertEqual(uri.parameters, ())
        odd = parseURI(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,"
            "weird!*pas$wo~d_too.(doesn't-it)@example.com"
        )
        assert isinstance(odd, SIPURI)
        self.assertEqual(odd.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
        self.assertEqual(odd.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
        self.assertEqual(odd.host, "example.com")

    def test_otherSchemes(self) -> None:
        """
        Other schemes (tel, http, urn, RFC 4475 unkscm/novelsc) are kept as
        opaque L{AbsoluteURI}s.
        """
        for text in [
            "tel:+1-201-555-0123",
            "nobodyKnowsThisScheme:totallyopaquecontent",
            "soap.beep://192.0.2.103:3002",
            "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        ]:
            uri = parseURI(text)
            self.assertIsInstance(uri, AbsoluteURI)
            self.assertEqual(uri.serialize(), text)
        self.assertEqual(parseURI("TEL:+123").scheme, "tel")
        self.assertRaises(SIPURIError, SIPURI.fromString, "tel:+123")

    def test_invalid(self) -> None:
        """
        Malformed URIs raise L{SIPURIError} with a reason and status 400.
        """
        for text in [
            "sip:",
            "sip:user@",
            "sip:a@b@c",
            "sip:host:99999",
            "sip:[::1",
            "sip:ex ample.com",
            "sip:host;=x",
            "sip:host?a",
            "sip:%zz@host",
            "no-scheme",
            "sip:host_name.example.com",
            "sip:300.1.1.1",
        ]:
            with self.assertRaises(SIPURIError, msg=text) as caught:
                parseURI(text)
            self.assertEqual(caught.exception.status, 400)
            self.assertTrue(caught.exception.reason)

    def test_withParameter(self) -> None:
        """
        L{SIPURI.withParameter} replaces case-insensitively;
        L{SIPURI.withoutParameter} and L{SIPURI.withoutHeaders} remove.
        """
        uri = SIPURI.fromString("sip:a@b;Transport=udp?x=y")
        changed = uri.withParameter("transport", "tcp").withParameter("lr")
        self.assertEqual(changed.serialize(), "sip:a@b;transport=tcp;lr?x=y")
        self.assertEqual(
            changed.withoutParameter("LR").withoutHeaders().serialize(),
            "sip:a@b;transport=tcp",
        )


class SIPURIComparisonTests(SynchronousTestCase):
    """
    RFC 3261 section 19.1.4 comparison rules, with the section's examples.
    """

    def assertURIsEqual(self, a: str, b: str) -> None:
        ua, ub = SIPURI.fromString(a), SIPURI.fromString(b)
        self.assertEqual(ua, ub)
        self.assertEqual(hash(ua), hash(ub))

    def test_equivalent(self) -> None:
        """
        The equivalent pairs of section 19.1.4.
        """
        self.assertURIsEqual(
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        )
        self.assertURIsEqual(
            "sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"
        )
        self.assertURIsEqual(
            "sip:carol@chicago.com;security=on", "sip:carol@chicago.com;newparam=5"
        )
        self.assertURIsEqual(
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        )
        self.assertURIsEqual(
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        )

    def test_notEquivalent(self) -> None:
        """
        The non-equivalent pairs of section 19.1.4.
        """
        pairs = [
            (
                "SIP:ALICE@AtLanTa.CoM;Transport=udp",
                "sip:alice@AtLanTa.CoM;Transport=UDP",
            ),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
            ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
            ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
            ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
            ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
            ("sip:alice@example.com", "sips:alice@example.com"),
            ("sip:alice@example.com", "sip:alice@example.com;maddr=239.255.255.1"),
        ]
        for a, b in pairs:
            self.assertNotEqual(SIPURI.fromString(a), SIPURI.fromString(b), (a, b))

    def test_identical(self) -> None:
        """
        L{SIPURI.identical} compares every component strictly.
        """
        a = SIPURI.fromString("sip:carol@chicago.com")
        b = SIPURI.fromString("sip:carol@chicago.com;newparam=5")
        self.assertEqual(a, b)
        self.assertFalse(a.identical(b))
        self.assertTrue(a.identical(SIPURI.fromString("sip:carol@chicago.com")))


class NameAddrTests(SynchronousTestCase):
    """
    name-addr / addr-spec with header parameters (RFC 3261 section 20.10).
    """

    def test_quotedDisplayName(self) -> None:
        """
        A quoted display name is unescaped; parameters may be surrounded
        by whitespace (RFC 4475 wsinv From).
        """
        addr = parseNameAddr(
            '"J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\t ;  tag = 98asjd8'
        )
        self.assertEqual(addr.displayName, 'J Rosenberg \\"')
        self.assertEqual(addr.tag, "98asjd8")
        self.assertEqual(str(addr.uri), "sip:jdrosen@example.com")

    def test_tokenDisplayName(self) -> None:
        """
        Token display names, with or without space before C{<} (RFC 4475
        lwsdisp, intmeth).
        """
        self.assertEqual(
            parseNameAddr("caller<sip:caller@example.com>;tag=323").displayName,
            "caller",
        )
        addr = parseNameAddr(
            "token1~` token2'+_ token3*%!.- <sip:mundane@example.com>;tag=_token~1'+`*%!-."
        )
        self.assertEqual(addr.displayName, "token1~` token2'+_ token3*%!.-")
        self.assertEqual(addr.tag, "_token~1'+`*%!-.")

    def test_addrSpecParameters(self) -> None:
        """
        Without angle brackets, parameters after the URI belong to the
        header (RFC 4475 cparam01); inside them, to the URI (cparam02).
        """
        outside = parseNameAddr("sip:+19725552222@gw1.example.net;unknownparam")
        self.assertEqual(outside.parameters, (("unknownparam", None),))
        assert isinstance(outside.uri, SIPURI)
        self.assertEqual(outside.uri.parameters, ())
        inside = parseNameAddr("<sip:+19725552222@gw1.example.net;unknownparam>")
        self.assertEqual(inside.parameters, ())
        assert isinstance(inside.uri, SIPURI)
        self.assertEqual(inside.uri.parameters, (("unknownparam", None),))

    def test_longExpires(self) -> None:
        """
        An C{expires} parameter longer than C{int} converts is clamped like
        any large one (RFC 3261 section 10.2.1.1), not a C{ValueError}.
        """
        address = parseNameAddr("<sip:a@b>;expires=" + "9" * 5000)
        self.assertEqual(address.expires, 2**32 - 1)

    def test_focusContact(self) -> None:
        """
        The focus Contact of RFC 7702 (isfocus flag), GRUU C{gr} URI
        parameter and a quoted C{+sip.instance}.
        """
        addr = parseNameAddr("<sip:montague@chat.example.org;transport=tcp>;isfocus")
        self.assertTrue(addr.isFocus)
        gruu = parseNameAddr(
            '<sip:juliet@example.com;gr=yn0cl4bnw0yr3vym>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";expires=3600'
        )
        assert isinstance(gruu.uri, SIPURI)
        self.assertEqual(gruu.uri.parameter("gr"), "yn0cl4bnw0yr3vym")
        self.assertEqual(
            gruu.instanceID, "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"
        )
        self.assertEqual(gruu.expires, 3600)
        self.assertFalse(gruu.isFocus)

    def test_serialize(self) -> None:
        """
        Output always uses angle brackets and a quoted display name;
        L{NameAddr.withTag} adds a tag; values that are not tokens get
        quoted.
        """
        addr = NameAddr(SIPURI("sip", "example.com", user="bob"), 'Bob "B"')
        self.assertEqual(
            addr.withTag("a6c85cf").serialize(),
            '"Bob \\"B\\"" <sip:bob@example.com>;tag=a6c85cf',
        )
        self.assertEqual(
            addr.withParameter("reason", "two words").parameters,
            (("reason", '"two words"'),),
        )
        self.assertEqual(parseNameAddr(addr.serialize()), addr)

    def test_list(self) -> None:
        """
        Lists split on commas outside quotes and brackets.
        """
        items = parseNameAddrList('"a, b" <sip:a@x;lr>, <sip:b@y>;p="1,2" , sip:c@z')
        self.assertEqual(
            [str(i.uri) for i in items], ["sip:a@x;lr", "sip:b@y", "sip:c@z"]
        )
        self.assertEqual(items[0].displayName, "a, b")
        self.assertEqual(items[1].parameter("p"), "1,2")

    def test_invalid(self) -> None:
        """
        The RFC 4475 invalid forms: unterminated quote (quotbal), spaces
        inside C{<>} (badaspec), non-token display name (baddn), escaped
        headers in an addr-spec (regbadct), empty parameters (badinv01).
        """
        for text in [
            '"Mr. J. User <sip:j.user@example.com>',
            '"Watson, Thomas" < sip:t.watson@example.org >',
            "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
            "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
            '"Joe" <sip:joe@example.org>;;;;',
            "<sip:a@b",
            "",
        ]:
            self.assertRaises(SIPURIError, parseNameAddr, text)

    def test_quoteString(self) -> None:
        """
        L{quoteString} and L{unquoteString} round-trip.
        """
        for text in ["", "plain", 'with "quotes" and \\', "BEL:\x07"]:
            self.assertEqual(unquoteString(quoteString(text)), text)
        self.assertEqual(unquoteString("token"), "token")
        self.assertRaises(SIPURIError, unquoteString, '"open')
