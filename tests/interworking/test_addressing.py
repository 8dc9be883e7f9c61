# -*- test-case-name: tests.interworking.test_addressing -*-
"""
Tests for L{stoxgw.interworking.addressing}: SPEC B.2 worked examples, the
RFC 7247 section 6.4/6.5 and XEP-0106 examples, round trips, and the errors
with the reply each side sends (R-101..R-107, R-116, R-207, R-223).
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase
from twisted.words.protocols.jabber.jid import JID

from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    encodeGR,
    escapeLocalpart,
    focusURIForRoomJID,
    jidToSIP,
    makeJID,
    occupantJIDFromSIP,
    occupantSIPFromJID,
    occupantSIPIdentity,
    parseJID,
    parseSIPIdentity,
    parseSIPURI,
    realJIDForSIPUser,
    requestURIFromRoomJID,
    roomAndNick,
    roomJIDForFocusURI,
    roomJIDFromRequestURI,
    sipToJID,
    sipUserForRealJID,
    unescapeLocalpart,
    withResource,
)


class ErrorAssertions(SynchronousTestCase):
    """
    A helper for checking an L{AddressError}'s replies.
    """

    def assertAddressError(
        self, sipStatus: int, xmppCondition: str, function: object, *args: object
    ) -> AddressError:
        """
        Calling C{function(*args)} raises L{AddressError} with these replies.
        """
        error: AddressError = self.assertRaises(AddressError, function, *args)
        self.assertEqual(
            (error.sipStatus, error.xmppCondition), (sipStatus, xmppCondition)
        )
        self.assertTrue(error.reason)
        return error


class WorkedExampleTests(ErrorAssertions):
    """
    Every row of SPEC B.2 (and with it the RFC 7247 section 6.4/6.5 and
    RFC 7702 examples it cites).
    """

    def test_percentDecodeUTF8(self) -> None:
        """
        R-105, RFC 7247 section 6.4: C{sip:f%C3%BC@sip.example} ->
        C{fü@sip.example}.
        """
        self.assertEqual(str(sipToJID("sip:f%C3%BC@sip.example")), "fü@sip.example")

    def test_xep0106Escape(self) -> None:
        """
        R-103, RFC 7247 section 6.4: C{sip:o'malley@sip.example} ->
        C{o\\27malley@sip.example}.
        """
        self.assertEqual(
            str(sipToJID("sip:o'malley@sip.example")), "o\\27malley@sip.example"
        )

    def test_grToResource(self) -> None:
        """
        R-104, RFC 7247 section 6.4: C{sip:foo@sip.example;gr=bar} ->
        C{foo@sip.example/bar}.
        """
        self.assertEqual(
            str(sipToJID("sip:foo@sip.example;gr=bar")), "foo@sip.example/bar"
        )

    def test_unescape(self) -> None:
        """
        R-101, RFC 7247 section 6.5: C{m\\26m@xmpp.example} ->
        C{sip:m&m@xmpp.example}.
        """
        self.assertEqual(jidToSIP("m\\26m@xmpp.example").uri(), "sip:m&m@xmpp.example")

    def test_percentEncodeNonASCII(self) -> None:
        """
        R-102, R-107, RFC 7247 section 6.5: C{tschüss@xmpp.example} ->
        C{sip:tsch%C3%BCss@xmpp.example}.
        """
        self.assertEqual(
            jidToSIP("tschüss@xmpp.example").uri(), "sip:tsch%C3%BCss@xmpp.example"
        )

    def test_resourceToGR(self) -> None:
        """
        R-104, RFC 7247 section 6.5: C{baz@xmpp.example/qux} ->
        C{sip:baz@xmpp.example;gr=qux}.
        """
        self.assertEqual(
            jidToSIP("baz@xmpp.example/qux").uri(), "sip:baz@xmpp.example;gr=qux"
        )

    def test_xmppJoinTable1(self) -> None:
        """
        R-004, R-005, RFC 7702 section 5.1 Table 1: a join from
        C{juliet@example.com/yn0cl4bnw0yr3vym} to
        C{montague@chat.example.org/JuliC} gives From
        C{<sip:juliet@example.com>}, Contact
        C{<sip:juliet@example.com;gr=yn0cl4bnw0yr3vym>}, Request-URI/To
        C{sip:montague@chat.example.org} and the nick C{JuliC}.
        """
        sender = jidToSIP("juliet@example.com/yn0cl4bnw0yr3vym")
        self.assertEqual(sender.aor.uri(), "sip:juliet@example.com")
        self.assertEqual(sender.uri(), "sip:juliet@example.com;gr=yn0cl4bnw0yr3vym")
        room, nick = roomAndNick("montague@chat.example.org/JuliC")
        self.assertEqual(nick, "JuliC")
        self.assertEqual(
            focusURIForRoomJID(room, "chat.example.org").uri(),
            "sip:montague@chat.example.org",
        )

    def test_conferenceInfoUser(self) -> None:
        """
        RFC 7702 Tables 2/3: C{<user entity="sip:montague@chat.example.org;gr=Romeo">}
        -> presence from C{montague@chat.example.org/Romeo}.
        """
        self.assertEqual(
            str(occupantJIDFromSIP("sip:montague@chat.example.org;gr=Romeo")),
            "montague@chat.example.org/Romeo",
        )

    def test_nickWithSpaceAndNonASCII(self) -> None:
        """
        R-104, R-207: the nick C{Jüli C} is written
        C{<sip:montague@chat.example.org;gr=J%C3%BCli%20C>}, inside the
        brackets, and reads back.
        """
        identity = occupantSIPIdentity("sip:montague@chat.example.org", "Jüli C")
        self.assertEqual(identity, "<sip:montague@chat.example.org;gr=J%C3%BCli%20C>")
        self.assertEqual(
            str(occupantJIDFromSIP(identity)), "montague@chat.example.org/Jüli C"
        )

    def test_cpimOutOfBracketGR(self) -> None:
        """
        R-207, RFC 7702 example 17 as printed:
        C{<sip:montague@chat.example.org>;gr=Romeo} is accepted and written
        back in the canonical form C{<sip:montague@chat.example.org;gr=Romeo>}.
        """
        printed = "<sip:montague@chat.example.org>;gr=Romeo"
        occupant = occupantJIDFromSIP(printed)
        self.assertEqual(str(occupant), "montague@chat.example.org/Romeo")
        self.assertEqual(
            occupantSIPIdentity(occupantSIPFromJID(occupant), "Romeo"),
            "<sip:montague@chat.example.org;gr=Romeo>",
        )

    def test_sipUserJoinsMUC(self) -> None:
        """
        RFC 7702 section 6.1 (example 30 corrected, SPEC F.3): the SIP user
        C{sip:romeo@example.org;gr=dr4hcr0st3lup4c} inviting
        C{sip:capulet@rooms.example.com} as Romeo joins from
        C{romeo@example.org/dr4hcr0st3lup4c} to
        C{capulet@rooms.example.com/Romeo}.
        """
        real = realJIDForSIPUser(
            "sip:romeo@example.org;gr=dr4hcr0st3lup4c", "example.org"
        )
        self.assertEqual(str(real), "romeo@example.org/dr4hcr0st3lup4c")
        room = roomJIDFromRequestURI(
            "sip:capulet@rooms.example.com", ["rooms.example.com"]
        )
        self.assertEqual(
            str(withResource(room, "Romeo")), "capulet@rooms.example.com/Romeo"
        )


class PlainMappingTests(ErrorAssertions):
    """
    RFC 7247 sections 6.2-6.5 beyond the worked examples.
    """

    def test_reservedInURI(self) -> None:
        """
        R-102: JID localpart C{a#b} -> C{sip:a%23b@...}; every character
        outside RFC 3261 C{user} is percent-encoded.
        """
        self.assertEqual(jidToSIP("a#b@x.example").uri(), "sip:a%23b@x.example")
        self.assertEqual(
            jidToSIP("a%[]^`{|}\\@x.example").uri(),
            "sip:a%25%5B%5D%5E%60%7B%7C%7D%5C@x.example",
        )

    def test_allowedKept(self) -> None:
        """
        R-101: characters a SIP user part allows stay literal.
        """
        self.assertEqual(
            jidToSIP("a!$()*+,-.;=?_~b@x.example").uri(),
            "sip:a!$()*+,-.;=?_~b@x.example",
        )

    def test_allDisallowedEscaped(self) -> None:
        """
        R-103: percent-decoded characters a JID localpart does not allow
        are XEP-0106 escaped, not only C{& ' /}.
        """
        self.assertEqual(
            sipToJID("sip:a%20%22&'/%3A%3C%3E%40b@x.example").user,
            "a\\20\\22\\26\\27\\2f\\3a\\3c\\3e\\40b",
        )

    def test_uriParametersDropped(self) -> None:
        """
        URI parameters other than C{gr}, headers, the port and a password
        are dropped; the scheme and host are case-insensitive.
        """
        self.assertEqual(
            str(
                sipToJID(
                    "SIP:bob:secret@Biloxi.Example:5070;transport=tcp;lr?subject=x"
                )
            ),
            "bob@biloxi.example",
        )

    def test_temporaryGRUUNotMapped(self) -> None:
        """
        R-104: a temporary GRUU (C{gr} without value, RFC 5627) gives no
        resourcepart.
        """
        self.assertEqual(
            str(
                sipToJID(
                    "sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com;gr"
                )
            ),
            "tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.com",
        )

    def test_nonASCIIResource(self) -> None:
        """
        R-104: a non-ASCII resourcepart is percent-encoded in C{gr}.
        """
        uri = jidToSIP("baz@xmpp.example/Ünterwegs 1").uri()
        self.assertEqual(uri, "sip:baz@xmpp.example;gr=%C3%9Cnterwegs%201")
        self.assertEqual(sipToJID(uri).resource, "Ünterwegs 1")

    def test_idnDomain(self) -> None:
        """
        An internationalised domainpart becomes an A-label SIP host.
        """
        self.assertEqual(jidToSIP("a@bücher.example").host, "xn--bcher-kva.example")

    def test_roundTrips(self) -> None:
        """
        SIP -> XMPP -> SIP and XMPP -> SIP -> XMPP give the canonical
        input back.
        """
        for uri in [
            "sip:f%C3%BC@sip.example",
            "sip:o'malley@sip.example",
            "sip:foo@sip.example;gr=bar",
            "sip:a%20b%40c@sip.example",
            "sip:c:%5C5commas@x.example".replace("c:", "c%3A"),
            "sip:%5C27@x.example",
        ]:
            self.assertEqual(jidToSIP(sipToJID(uri)).uri(), uri)
        for jid in [
            "m\\26m@xmpp.example",
            "tschüss@xmpp.example",
            "baz@xmpp.example/qux",
            "a#b@x.example/with/slashes",
            "c\\3a\\5c5commas@x.example",
            "back\\slash@x.example",
        ]:
            self.assertEqual(str(sipToJID(jidToSIP(jid))), jid)

    def test_xep0106Examples(self) -> None:
        """
        XEP-0106 section 5.1 examples 1-8 and 12, and the Wireless Village
        address of section 4.2, escape and unescape as printed.
        """
        for plain, escaped in [
            ("space cadet", "space\\20cadet"),
            ('call me "ishmael"', "call\\20me\\20\\22ishmael\\22"),
            ("at&t guy", "at\\26t\\20guy"),
            ("d'artagnan", "d\\27artagnan"),
            ("/.fanboy", "\\2f.fanboy"),
            ("::foo::", "\\3a\\3afoo\\3a\\3a"),
            ("<foo>", "\\3cfoo\\3e"),
            ("user@host", "user\\40host"),
            ("c:\\5commas", "c\\3a\\5c5commas"),
            ("\\3and\\2is\\5cool", "\\5c3and\\2is\\5c5cool"),
        ]:
            self.assertEqual(escapeLocalpart(plain), escaped)
            self.assertEqual(unescapeLocalpart(escaped), plain)

    def test_xep0106Exceptions(self) -> None:
        """
        XEP-0106 section 4.3: partial and unknown sequences are left alone
        both ways.
        """
        for text in ["\\2plus\\2is\\4", "foo\\bar", "foob\\41r"]:
            self.assertEqual(escapeLocalpart(text), text)
            self.assertEqual(unescapeLocalpart(text), text)

    def test_jidParsing(self) -> None:
        """
        RFC 7622 section 3.2: the resourcepart starts at the first C{/} and
        may hold C{@} and C{/}; domains are lower-cased, a trailing dot
        dropped.  The result is Twisted's L{JID}, the XMPP layer's type,
        with its stringprep: Nodeprep case-folds the localpart (R-106),
        the resourcepart keeps its case.
        """
        jid = parseJID("Room@MUC.Example./a@b/c")
        self.assertIsInstance(jid, JID)
        self.assertEqual(jid, JID("room@muc.example/a@b/c"))
        self.assertEqual(str(withResource(jid, None)), "room@muc.example")
        self.assertEqual(parseJID("muc.example"), JID("muc.example"))
        self.assertEqual(makeJID("Ｒoom", "muc.example", "Nick").full(), "room@muc.example/Nick")

    def test_malformedJIDs(self) -> None:
        """
        Malformed JIDs: 400 / C{jid-malformed}, also the empty parts
        Twisted's parser would drop silently, parts too long (RFC 7622
        section 3.1), what the stringprep profiles prohibit (a non-ASCII
        space in a localpart, a right-to-left mark), and IP-literal
        domainparts, which Twisted's Nameprep does not take.
        """
        for text in [
            "@x.example",
            "a@",
            "a@x.example/",
            "a@b@x.example",
            "a b@x.example",
            "a\x00@x.example",
            "x" * 1024 + "@x.example",
            "a@x.example/" + "r" * 1024,
            "a\u00a0b@x.example",
            "a@x.example/\u200f",
            "a@x..example",
            "room@[2001:db8::1]",
            "",
        ]:
            self.assertAddressError(400, "jid-malformed", parseJID, text)
        self.assertAddressError(
            400, "jid-malformed", sipToJID, "sip:room@[2001:db8::1];gr=x"
        )

    def test_caseFoldedEscapes(self) -> None:
        """
        Nodeprep folds C{\\2F} to C{\\2f}; its backslash is escaped first,
        so the mapping does not turn it into a C{/}.
        """
        jid = sipToJID("sip:A%5C2F@x.example")
        self.assertEqual(str(jid), "a\\5c2f@x.example")
        self.assertEqual(jidToSIP(jid).uri(), "sip:a%5C2f@x.example")

    def test_malformedSIPURIs(self) -> None:
        """
        Malformed SIP URIs: 400 / C{jid-malformed}.
        """
        for text in [
            "nothing",
            "sip:a%ZZ@x.example",
            "sip:a%FF@x.example",
            "sip:a#b@x.example",
            "sip:@x.example",
            "sip:a@",
            "sip:a@x.example:port",
            "sip:a@x.example:99999",
            "sip:a@b@x.example",
            "sip:%20a@x.example",
        ]:
            self.assertAddressError(400, "jid-malformed", sipToJID, text)

    def test_telRejected(self) -> None:
        """
        C{tel:} (and any non-SIP scheme) has no XMPP form: 416 /
        C{not-acceptable} (RFC 3261 section 8.2.2.1).
        """
        self.assertAddressError(416, "not-acceptable", sipToJID, "tel:+1-201-555-0123")
        self.assertAddressError(
            416, "not-acceptable", parseSIPURI, "mailto:a@x.example"
        )

    def test_sipAddressFields(self) -> None:
        """
        L{parseSIPURI} keeps user (decoded), host, C{gr}, scheme and port.
        """
        self.assertEqual(
            parseSIPURI("sips:a%20b@X.example:5061;gr=c%20d"),
            SIPAddress("a b", "x.example", "c d", True, 5061),
        )
        self.assertEqual(encodeGR("a b/c"), "a%20b%2Fc")


class IdentityTests(ErrorAssertions):
    """
    R-207: name-addr forms of occupant identities.
    """

    def test_forms(self) -> None:
        """
        Bare URI, in-bracket and out-of-bracket C{gr}, with or without a
        display name (quoted, holding C{<}) all give the same address.
        """
        expected = SIPAddress("montague", "chat.example.org", "Romeo")
        for text in [
            "sip:montague@chat.example.org;gr=Romeo",
            "<sip:montague@chat.example.org;gr=Romeo>",
            "<sip:montague@chat.example.org>;gr=Romeo",
            '"Romeo <the one>" <sip:montague@chat.example.org>;tag=1;gr=Romeo',
            "Romeo <sip:montague@chat.example.org;gr=Romeo>;tag=1",
        ]:
            self.assertEqual(parseSIPIdentity(text), expected)

    def test_inBracketWins(self) -> None:
        """
        When both forms are present the in-bracket C{gr} is used.
        """
        self.assertEqual(parseSIPIdentity("<sip:r@x.example;gr=In>;gr=Out").gr, "In")

    def test_malformedNameAddr(self) -> None:
        """
        Unterminated brackets or quotes: 400 / C{jid-malformed}.
        """
        self.assertAddressError(
            400, "jid-malformed", parseSIPIdentity, "<sip:a@x.example"
        )
        self.assertAddressError(
            400, "jid-malformed", parseSIPIdentity, '"a <sip:a@x.example>'
        )

    def test_occupantNeedsNick(self) -> None:
        """
        An occupant identity without C{gr}, or an occupant JID without
        resourcepart or localpart: 400 / C{jid-malformed} (XEP-0045 section
        7.2.1 for joins without nick).
        """
        self.assertAddressError(
            400, "jid-malformed", occupantJIDFromSIP, "<sip:montague@chat.example.org>"
        )
        self.assertAddressError(
            400, "jid-malformed", occupantJIDFromSIP, "sip:chat.example.org;gr=x"
        )
        self.assertAddressError(400, "jid-malformed", roomAndNick, "room@muc.example")
        self.assertAddressError(
            400, "jid-malformed", occupantSIPFromJID, "muc.example/x"
        )
        self.assertAddressError(
            400, "jid-malformed", occupantSIPIdentity, "sip:r@muc.example", ""
        )

    def test_occupantRoundTrip(self) -> None:
        """
        R-213: XMPP occupant -> SIP identity -> XMPP occupant.
        """
        for occupant in ["capulet@rooms.example.com/Romeo", "r@m.example/Jüli C/2"]:
            identity = occupantSIPIdentity(*_split(occupantSIPFromJID(occupant)))
            self.assertEqual(str(occupantJIDFromSIP(identity)), occupant)


def _split(address: SIPAddress) -> tuple[SIPAddress, str]:
    assert address.gr is not None
    return address.aor, address.gr


class RoomTests(ErrorAssertions):
    """
    Room addresses for both directions (SPEC B.1 "Room").
    """

    def test_requestURIToRoom(self) -> None:
        """
        Gateway B: the Request-URI names the MUC room; parameters and port
        are dropped; an empty allow-list allows every domain.
        """
        self.assertEqual(
            roomJIDFromRequestURI("sip:Capulet@Rooms.Example.com:5060;transport=tcp"),
            JID("capulet@rooms.example.com"),
        )
        self.assertEqual(
            requestURIFromRoomJID("capulet@rooms.example.com/Romeo").uri(),
            "sip:capulet@rooms.example.com",
        )

    def test_allowList(self) -> None:
        """
        A domain outside C{[gateway] muc_domains}: 403 / C{forbidden}.
        """
        self.assertAddressError(
            403,
            "forbidden",
            roomJIDFromRequestURI,
            "sip:capulet@evil.example",
            ("rooms.example.com", "muc.example"),
        )
        self.assertEqual(
            roomJIDFromRequestURI("sip:a@MUC.example", ["muc.example."]).host,
            "muc.example",
        )

    def test_sipsRejected(self) -> None:
        """
        R-116, R-223: a SIPS Request-URI is refused with a clear 403 /
        C{forbidden}, never translated.
        """
        error = self.assertAddressError(
            403, "forbidden", roomJIDFromRequestURI, "sips:capulet@rooms.example.com"
        )
        self.assertIn("SIPS", error.reason)

    def test_noRoom(self) -> None:
        """
        A Request-URI without user part names no room: 484 /
        C{jid-malformed}; a room JID without localpart, 400.
        """
        self.assertAddressError(
            484, "jid-malformed", roomJIDFromRequestURI, "sip:rooms.example.com"
        )
        self.assertAddressError(
            400, "jid-malformed", requestURIFromRoomJID, "muc.example"
        )

    def test_focusOnRoomDomain(self) -> None:
        """
        Gateway A: a focus on the room domain maps plainly both ways.
        """
        self.assertEqual(
            str(
                roomJIDForFocusURI(
                    "sip:montague@chat.sip.example;gr=x", "chat.sip.example"
                )
            ),
            "montague@chat.sip.example",
        )
        self.assertEqual(
            focusURIForRoomJID("montague@chat.sip.example/JuliC", "chat.sip.example"),
            SIPAddress("montague", "chat.sip.example"),
        )

    def test_foreignFocus(self) -> None:
        """
        Gateway A: a focus on another SIP domain is carried with C{\\40} in
        the localpart, and back.
        """
        room = roomJIDForFocusURI("sip:montague@conf.example.org", "chat.sip.example")
        self.assertEqual(str(room), "montague\\40conf.example.org@chat.sip.example")
        self.assertEqual(
            focusURIForRoomJID(room, "chat.sip.example").uri(),
            "sip:montague@conf.example.org",
        )

    def test_focusErrors(self) -> None:
        """
        A room JID not on the room domain: 404 / C{item-not-found}; a focus
        URI without user part: 484.
        """
        self.assertAddressError(
            404,
            "item-not-found",
            focusURIForRoomJID,
            "a@other.example",
            "chat.sip.example",
        )
        self.assertAddressError(
            404,
            "item-not-found",
            focusURIForRoomJID,
            "chat.sip.example",
            "chat.sip.example",
        )
        self.assertAddressError(
            484,
            "jid-malformed",
            roomJIDForFocusURI,
            "sip:conf.example",
            "chat.sip.example",
        )
        self.assertAddressError(
            400,
            "jid-malformed",
            focusURIForRoomJID,
            "\\40x@chat.sip.example",
            "chat.sip.example",
        )


class RealJIDTests(ErrorAssertions):
    """
    Gateway B: the real JID of a SIP user inside XMPP rooms, on the
    C{[xmpp] user_domain} (docs/design.md, R-206).
    """

    def test_localUser(self) -> None:
        """
        A user of the gateway's domain maps plainly; the GRUU's C{gr} is the
        resource, else the given one.
        """
        self.assertEqual(
            str(realJIDForSIPUser("<sip:alice@sip.example>", "sip.example", "abc")),
            "alice@sip.example/abc",
        )
        self.assertEqual(
            str(realJIDForSIPUser("sip:alice@sip.example;gr=g1", "sip.example", "abc")),
            "alice@sip.example/g1",
        )
        self.assertEqual(
            str(realJIDForSIPUser("sip:alice@sip.example;gr", "sip.example")),
            "alice@sip.example",
        )

    def test_foreignUser(self) -> None:
        """
        A user of another SIP domain keeps the domain in the localpart.
        """
        real = realJIDForSIPUser("sip:alice@atlanta.example;gr=g1", "sip.example")
        self.assertEqual(str(real), "alice\\40atlanta.example@sip.example/g1")
        self.assertEqual(
            sipUserForRealJID(real, "sip.example").uri(),
            "sip:alice@atlanta.example;gr=g1",
        )

    def test_oneToOne(self) -> None:
        """
        A local user part holding C{@} takes the long form, so it cannot be
        mistaken for a foreign user; all round trip.
        """
        for uri in [
            "sip:a%40b@sip.example",
            "sip:a%40b@atlanta.example",
            "sip:a@b.example",
            "sip:alice@sip.example",
            "sip:a%5C40b@sip.example;gr=x",
        ]:
            real = realJIDForSIPUser(uri, "sip.example")
            self.assertEqual(real.host, "sip.example")
            self.assertEqual(sipUserForRealJID(real, "sip.example").uri(), uri)
        self.assertEqual(
            str(realJIDForSIPUser("sip:a%40b@sip.example", "sip.example")),
            "a\\40b\\40sip.example@sip.example",
        )

    def test_notOurs(self) -> None:
        """
        A JID on another domain is not one of the gateway's SIP users: 404 /
        C{item-not-found}; a SIP address without user: 484.
        """
        self.assertAddressError(
            404,
            "item-not-found",
            sipUserForRealJID,
            "alice@xmpp.example",
            "sip.example",
        )
        self.assertAddressError(
            484, "jid-malformed", realJIDForSIPUser, "sip:sip.example", "sip.example"
        )
