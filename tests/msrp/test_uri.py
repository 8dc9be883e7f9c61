# -*- test-case-name: tests.msrp.test_uri -*-
"""
Tests for L{stoxgw.msrp.uri}.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import pickle

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.msrp.uri import MSRPURI, MSRPURIError, parsePath, serializePath


class ParseTests(SynchronousTestCase):
    """
    Parsing and serializing MSRP URIs (RFC 4975 sections 6 and 9).
    """

    def test_typical(self) -> None:
        """
        The example URI of RFC 4975 section 6 parses into its components and
        serializes back unchanged.
        """
        text = "msrp://host.example.com:8493/asfd34;tcp"
        uri = MSRPURI.fromString(text)
        self.assertEqual(uri.scheme, "msrp")
        self.assertEqual(uri.host, "host.example.com")
        self.assertEqual(uri.port, 8493)
        self.assertEqual(uri.sessionID, "asfd34")
        self.assertEqual(uri.transport, "tcp")
        self.assertIsNone(uri.userinfo)
        self.assertEqual(uri.parameters, ())
        self.assertFalse(uri.secure)
        self.assertFalse(uri.numericHost)
        self.assertEqual(uri.serialize(), text)
        self.assertEqual(str(uri), text)

    def test_allParts(self) -> None:
        """
        Userinfo, an IPv6 literal, a multi-segment session-id and extra
        parameters (with and without value) are parsed and kept as written.
        """
        text = "MSRPS://alice@[2001:DB8::1]:2855/a/b+c=d;TCP;foo=bar;flag"
        uri = MSRPURI.fromString(text)
        self.assertEqual(uri.scheme, "MSRPS")
        self.assertEqual(uri.userinfo, "alice")
        self.assertEqual(uri.host, "2001:DB8::1")
        self.assertEqual(uri.port, 2855)
        self.assertEqual(uri.sessionID, "a/b+c=d")
        self.assertEqual(uri.transport, "TCP")
        self.assertEqual(uri.parameters, (("foo", "bar"), ("flag", None)))
        self.assertTrue(uri.secure)
        self.assertTrue(uri.numericHost)
        self.assertEqual(uri.serialize(), text)

    def test_noSessionID(self) -> None:
        """
        A URI without session-id names a host device (RFC 4975 section 6).
        """
        uri = MSRPURI.fromString("msrp://relay.example.com:2855;tcp")
        self.assertIsNone(uri.sessionID)
        self.assertEqual(uri.serialize(), "msrp://relay.example.com:2855;tcp")

    def test_nameWithoutPort(self) -> None:
        """
        A host name may come without a port.
        """
        uri = MSRPURI.fromString("msrp://example.com/s1;tcp")
        self.assertIsNone(uri.port)

    def test_ipv4(self) -> None:
        """
        An IPv4 address with a port is numeric.
        """
        uri = MSRPURI.fromString("msrp://192.0.2.1:7654/x;tcp")
        self.assertEqual(uri.host, "192.0.2.1")
        self.assertTrue(uri.numericHost)

    def test_construct(self) -> None:
        """
        A URI built from components serializes canonically and equals the
        parsed form.
        """
        uri = MSRPURI("msrp", "2001:db8::2", 7777, "abc")
        self.assertEqual(uri.serialize(), "msrp://[2001:db8::2]:7777/abc;tcp")
        self.assertEqual(uri, MSRPURI.fromString(uri.serialize()))

    def test_path(self) -> None:
        """
        L{parsePath} splits a space-separated list, leftmost first;
        L{serializePath} joins it again.
        """
        text = "msrp://relay.example.com:2855/r1;tcp msrp://b.example.com:7/s;tcp"
        path = parsePath(text)
        self.assertEqual([uri.host for uri in path], ["relay.example.com", "b.example.com"])
        self.assertEqual(serializePath(path), text)

    def test_emptyPath(self) -> None:
        """
        An empty path is invalid.
        """
        self.assertRaises(MSRPURIError, parsePath, "  ")


class ValidationTests(SynchronousTestCase):
    """
    R-150: scheme, transport, numeric hosts, US-ASCII, no password.
    """

    INVALID = [
        ("sip://example.com:5060/x;tcp", "scheme must be msrp or msrps"),
        ("msrp:example.com:5060/x;tcp", "malformed MSRP URI"),
        ("msrp://192.0.2.1/x;tcp", "a numeric IP address requires a port"),
        ("msrp://[2001:db8::1]/x;tcp", "a numeric IP address requires a port"),
        ("msrp://b\u00fccher.example:7/x;tcp", "MSRP URIs must be US-ASCII"),
        ("msrp://example.com:7/s\u00e9ssion;tcp", "MSRP URIs must be US-ASCII"),
        ("msrp://alice:secret@example.com:7/x;tcp", "userinfo must not contain a password"),
        ("msrp://example.com:7/x", "missing transport parameter"),
        ("msrp://example.com:7/x;", "missing transport parameter"),
        ("msrp://example.com:7/x;t-c-p", "invalid transport parameter"),
        ("msrp://example.com:/x;tcp", "invalid port"),
        ("msrp://example.com:99999/x;tcp", "port out of range"),
        ("msrp://example.com:7a/x;tcp", "invalid port"),
        ("msrp://:7/x;tcp", "missing host"),
        ("msrp://exa mple.com:7/x;tcp", "invalid host"),
        ("msrp://example.com:7/;tcp", "empty session-id"),
        ("msrp://example.com:7/a%20b;tcp", "invalid session-id"),
        ("msrp://[2001:db8::zz]:7/x;tcp", "invalid IPv6 address"),
        ("msrp://[2001:db8::1:7/x;tcp", "unterminated IPv6 literal"),
        ("msrp://[2001:db8::1]7/x;tcp", "malformed authority"),
        ("msrp://300.1.1.1:7/x;tcp", "invalid IPv4 address"),
        ("msrp://example.com:7/x;tcp;a b", "invalid URI parameter"),
    ]

    def test_invalid(self) -> None:
        """
        Each invalid URI raises L{MSRPURIError} with the expected reason, and
        the error keeps the offending text.
        """
        for text, reason in self.INVALID:
            with self.subTest(text=text):
                error = self.assertRaises(MSRPURIError, MSRPURI.fromString, text)
                self.assertEqual(error.reason, reason)
                self.assertIn(reason, str(error))

    def test_invalidConstruction(self) -> None:
        """
        Constructing a URI from invalid components also raises.
        """
        self.assertRaises(MSRPURIError, MSRPURI, "msrp", "192.0.2.1", None, "x")
        self.assertRaises(MSRPURIError, MSRPURI, "http", "example.com", 1, "x")
        self.assertRaises(MSRPURIError, MSRPURI, "msrp", "example.com", 1, "x", "t c")

    def test_errorIsValueError(self) -> None:
        """
        L{MSRPURIError} is a L{ValueError} carrying a reason.
        """
        error = MSRPURIError("bad", "text")
        self.assertIsInstance(error, ValueError)
        self.assertEqual((error.reason, error.text), ("bad", "text"))


class ComparisonTests(SynchronousTestCase):
    """
    R-151: RFC 4975 section 6.1 comparison rules.
    """

    BASE = "msrp://host.example.com:8493/asfd34;tcp"

    EQUAL = [
        ("MSRP://host.example.com:8493/asfd34;tcp", "scheme is case-insensitive"),
        ("msrp://HOST.Example.COM:8493/asfd34;tcp", "host is case-insensitive"),
        ("msrp://host.example.com:8493/asfd34;TCP", "transport is case-insensitive"),
        ("msrp://bob@host.example.com:8493/asfd34;tcp", "userinfo is ignored"),
        ("msrp://%68ost.example.com:8493/asfd34;tcp", "unreserved %-decoded"),
        ("msrp://h%6Fst.ex%61mple.com:8493/asfd34;tcp", "unreserved %-decoded"),
        ("msrp://host.example.com:8493/asfd34;tcp;x=y", "other parameters ignored"),
    ]

    UNEQUAL = [
        ("msrps://host.example.com:8493/asfd34;tcp", "different scheme"),
        ("msrp://host.example.com:8494/asfd34;tcp", "different port"),
        ("msrp://host.example.com/asfd34;tcp", "explicit port vs none"),
        ("msrp://host.example.com:8493/ASFD34;tcp", "session-id case-sensitive"),
        ("msrp://host.example.com:8493;tcp", "session-id vs none"),
        ("msrp://host.example.com:8493/asfd34;sctp", "different transport"),
        ("msrp://other.example.com:8493/asfd34;tcp", "different host"),
    ]

    def test_equal(self) -> None:
        """
        URIs that RFC 4975 section 6.1 treats as equivalent compare equal and
        hash alike.
        """
        base = MSRPURI.fromString(self.BASE)
        for text, why in self.EQUAL:
            with self.subTest(why=why):
                other = MSRPURI.fromString(text)
                self.assertTrue(base == other)
                self.assertFalse(base != other)
                self.assertEqual(hash(base), hash(other))

    def test_unequal(self) -> None:
        """
        URIs that differ in a compared component are not equal.
        """
        base = MSRPURI.fromString(self.BASE)
        for text, why in self.UNEQUAL:
            with self.subTest(why=why):
                other = MSRPURI.fromString(text)
                self.assertFalse(base == other)
                self.assertTrue(base != other)

    def test_ipAddressEquivalence(self) -> None:
        """
        IP addresses compare by address: differently written forms of one
        IPv6 address are equal.
        """
        self.assertEqual(
            MSRPURI.fromString("msrp://[2001:DB8:0:0::1]:7/s;tcp"),
            MSRPURI.fromString("msrp://[2001:db8::1]:7/s;tcp"),
        )

    def test_reservedEscapeNotDecoded(self) -> None:
        """
        Percent-escapes of reserved characters are not decoded, but their hex
        digits compare case-insensitively.
        """
        self.assertEqual(
            MSRPURI.fromString("msrp://a%2cb:7/s;tcp"),
            MSRPURI.fromString("msrp://a%2Cb:7/s;tcp"),
        )
        self.assertNotEqual(
            MSRPURI.fromString("msrp://a%2Cb:7/s;tcp"),
            MSRPURI.fromString("msrp://a,b:7/s;tcp"),
        )

    def test_dictionaryKey(self) -> None:
        """
        URIs work as dictionary keys under the comparison rules (session
        lookup by To-Path, R-143).
        """
        sessions = {MSRPURI.fromString(self.BASE): "session"}
        key = MSRPURI.fromString("MSRP://Host.Example.com:8493/asfd34;tcp")
        self.assertEqual(sessions.get(key), "session")

    def test_otherTypes(self) -> None:
        """
        A URI never equals a string.
        """
        self.assertNotEqual(MSRPURI.fromString(self.BASE), self.BASE)

    def test_hostSpellings(self) -> None:
        """
        Spellings of one host are one key: names in any case and with
        unreserved characters escaped, IPv6 addresses in any of their
        forms (zeros, case, an embedded IPv4 address), IPv4 addresses;
        other hosts, and a name that looks like an address, are not.
        """
        groups = [
            ("Host.Example.COM", "host.example.com", "h%6Fst.example.com", "HOST.EX%61MPLE.com"),
            (
                "[2001:db8::1]",
                "[2001:DB8::1]",
                "[2001:0db8:0000:0000:0000:0000:0000:0001]",
                "[2001:db8:0:0::0:1]",
            ),
            ("[::ffff:192.0.2.1]", "[::FFFF:C000:201]", "[0:0:0:0:0:ffff:192.0.2.1]"),
            ("192.0.2.1",),
            ("[2001:db8::2]",),
            ("example.org",),
        ]
        keys = []
        for group in groups:
            uris = [MSRPURI.fromString(f"msrp://{host}:7/s;tcp") for host in group]
            for uri in uris[1:]:
                with self.subTest(host=uri.host):
                    self.assertEqual(uri, uris[0])
                    self.assertEqual(hash(uri), hash(uris[0]))
            keys.append(uris[0])
        self.assertEqual(len(set(keys)), len(groups))

    def test_keyComputedOnce(self) -> None:
        """
        Hashing and comparing a URI normalize nothing: the comparison key
        was computed when the URI was made (a session's URI is hashed for
        every chunk it sends).  The host is one no other test uses, so no
        process-wide memo can have seen it.
        """
        first = MSRPURI.fromString("msrp://[2001:db8::7e57:1]:7/once;tcp")
        second = MSRPURI.fromString("msrp://[2001:DB8:0::7E57:1]:7/once;tcp")
        calls: list[object] = []

        def counting(address: object) -> object:
            calls.append(address)
            raise AssertionError("host parsed again")

        self.patch(ipaddress, "ip_address", counting)
        self.patch(ipaddress, "IPv6Address", counting)
        self.assertEqual(first, second)
        self.assertEqual(hash(first), hash(second))
        self.assertEqual({first: 1}.get(second), 1)
        self.assertEqual(calls, [])

    def test_keyFollowsCopies(self) -> None:
        """
        A copy made by L{dataclasses.replace} gets the key of its own
        components; pickled and copied URIs keep theirs.
        """
        uri = MSRPURI.fromString(self.BASE)
        moved = dataclasses.replace(uri, host="OTHER.example.com")
        self.assertEqual(moved, MSRPURI.fromString("msrp://other.example.com:8493/asfd34;tcp"))
        self.assertNotEqual(moved, uri)
        for clone in (copy.copy(uri), copy.deepcopy(uri), pickle.loads(pickle.dumps(uri))):
            self.assertEqual(clone, uri)
            self.assertEqual(hash(clone), hash(uri))
        self.assertNotIn("_key", repr(uri))
