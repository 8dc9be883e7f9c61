# -*- test-case-name: tests.formats.test_hostport -*-
"""
Tests for L{stoxgw.formats.hostport}: C{host [":" port]} and IP address
literals, as SIP URIs, MSRP URIs and the static routes share them.
"""

from __future__ import annotations

import ipaddress
import re

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats import hostport
from stoxgw.formats.hostport import HostPortError, checkHost, splitHostPort


class SplitHostPortTests(SynchronousTestCase):
    """
    L{splitHostPort}.
    """

    def test_split(self) -> None:
        """
        The host without brackets, and the text after the C{":"} that ends
        it (empty if nothing follows), or L{None} when there is none.
        """
        for text, expected in [
            ("example.com", ("example.com", None)),
            ("example.com:5060", ("example.com", "5060")),
            ("example.com:", ("example.com", "")),
            ("192.0.2.1:x", ("192.0.2.1", "x")),
            ("[2001:db8::1]", ("2001:db8::1", None)),
            ("[2001:db8::1]:2855", ("2001:db8::1", "2855")),
            ("[::1]:", ("::1", "")),
            ("[::1]:]:", ("::1", "]:")),
        ]:
            with self.subTest(text=text):
                self.assertEqual(splitHostPort(text), expected)

    def test_firstOrLastColon(self) -> None:
        """
        A host without brackets ends at the first C{":"}, or with
        C{lastColon} at the last; no valid host holds one, so only invalid
        text tells them apart.  Brackets end the host either way.
        """
        self.assertEqual(splitHostPort("a:b:5060"), ("a", "b:5060"))
        self.assertEqual(splitHostPort("a:b:5060", lastColon=True), ("a:b", "5060"))
        self.assertEqual(splitHostPort("::1:2855", lastColon=True), ("::1", "2855"))
        self.assertEqual(splitHostPort("example.com", True), ("example.com", None))
        self.assertEqual(splitHostPort("h:7", lastColon=True), ("h", "7"))
        self.assertEqual(splitHostPort("[::1]:7", lastColon=True), ("::1", "7"))

    def test_unclosedBracket(self) -> None:
        """
        A C{"["} without its C{"]"} is L{hostport.UNCLOSED}.
        """
        for text in ["[", "[::1", "[2001:db8::1:5060", "[::1:"]:
            with self.subTest(text=text):
                error = self.assertRaises(HostPortError, splitHostPort, text)
                self.assertEqual(error.reason, hostport.UNCLOSED)
                self.assertIsInstance(error, ValueError)

    def test_textAfterBracket(self) -> None:
        """
        Anything but C{":" port} after the C{"]"} is
        L{hostport.AFTER_BRACKET}, and is reported before what the brackets
        hold.
        """
        for text in ["[::1]5060", "[::1] :5060", "[::1]]", "[abc]x", "[]x"]:
            for ipv6 in (True, False):
                with self.subTest(text=text, ipv6InBrackets=ipv6):
                    error = self.assertRaises(
                        HostPortError, splitHostPort, text, ipv6InBrackets=ipv6
                    )
                    self.assertEqual(error.reason, hostport.AFTER_BRACKET)

    def test_bracketedNotIPv6(self) -> None:
        """
        Brackets that hold no C{":"} (a name, an IPv4 address, nothing) are
        L{hostport.NOT_IPV6}; with C{ipv6InBrackets=False} they may hold any
        host, but not nothing (L{hostport.EMPTY}).
        """
        for text in ["[example.com]", "[192.0.2.1]:5060", "[]", "[]:5060"]:
            with self.subTest(text=text):
                error = self.assertRaises(HostPortError, splitHostPort, text)
                self.assertEqual(error.reason, hostport.NOT_IPV6)
        self.assertEqual(
            splitHostPort("[192.0.2.1]:5060", ipv6InBrackets=False),
            ("192.0.2.1", "5060"),
        )
        self.assertEqual(splitHostPort("[name]", ipv6InBrackets=False), ("name", None))
        for text in ["[]", "[]:5060"]:
            with self.subTest(text=text):
                error = self.assertRaises(
                    HostPortError, splitHostPort, text, ipv6InBrackets=False
                )
                self.assertEqual(error.reason, hostport.EMPTY)

    def test_emptyHost(self) -> None:
        """
        No host before the C{":"}, or no text at all, is L{hostport.EMPTY}.
        """
        for text in ["", ":", ":5060"]:
            for last in (False, True):
                with self.subTest(text=text, lastColon=last):
                    error = self.assertRaises(HostPortError, splitHostPort, text, last)
                    self.assertEqual(error.reason, hostport.EMPTY)
        error = self.assertRaises(HostPortError, splitHostPort, "::1")
        self.assertEqual(error.reason, hostport.EMPTY)


#: A name grammar for the tests: letters, digits, "." and "-".
NAMES = re.compile(r"[A-Za-z0-9.\-]+")
#: A name grammar that takes any text.
ANYTHING = re.compile(".*")


class CheckHostTests(SynchronousTestCase):
    """
    L{checkHost}.
    """

    def test_names(self) -> None:
        """
        A host without C{":"} that is not four groups of one to three digits
        is a name (L{None}) if the caller's grammar takes all of it.
        """
        for host in ["example.com", "a", "1und1.de", "1.2.3", "1.2.3.4.5", "1234.1.1.1",
                     "1.2.3.4."]:
            with self.subTest(host=host):
                self.assertIsNone(checkHost(host, NAMES))
                self.assertIsNone(checkHost(host, NAMES, True))

    def test_badNames(self) -> None:
        """
        A name the grammar does not take, whole, is L{hostport.BAD_NAME}.
        """
        for host in ["a b", "", "%31.2.3.4", "1.2.3.4\n", "example.com/"]:
            with self.subTest(host=host):
                error = self.assertRaises(HostPortError, checkHost, host, NAMES)
                self.assertEqual(error.reason, hostport.BAD_NAME)
                self.assertIsInstance(error, ValueError)

    def test_ipv4(self) -> None:
        """
        An IPv4 address is returned as it is (its one form), also when asked
        for the compressed form; the name grammar plays no part.
        """
        for host in ["192.0.2.1", "0.0.0.0", "255.255.255.255", "10.0.0.10"]:
            with self.subTest(host=host):
                self.assertEqual(checkHost(host, re.compile("x")), host)
                self.assertEqual(checkHost(host, re.compile("x"), True), host)

    def test_invalidIPv4(self) -> None:
        """
        Four groups of one to three digits that are not an IPv4 address
        (an octet over 255, a leading zero) are L{hostport.BAD_IPV4}, even if
        the name grammar would take them.
        """
        for host in ["300.1.1.1", "256.0.0.0", "1.2.3.999", "01.2.3.4", "1.2.3.00"]:
            with self.subTest(host=host):
                error = self.assertRaises(HostPortError, checkHost, host, NAMES)
                self.assertEqual(error.reason, hostport.BAD_IPV4)

    def test_ipv4AsIPAddress(self) -> None:
        """
        For every octet text of one to three digits, in every position, a
        dotted quad is an address exactly when L{ipaddress.IPv4Address}
        takes it.
        """
        octets = [str(n) for n in range(1000)]
        octets += [f"0{n}" for n in range(100)] + [f"00{n}" for n in range(10)]
        wrong = []
        for octet in octets:
            for position in range(4):
                parts = ["1", "22", "133", "244"]
                parts[position] = octet
                host = ".".join(parts)
                try:
                    ipaddress.IPv4Address(host)
                except ValueError:
                    expected: str | None = hostport.BAD_IPV4
                else:
                    expected = host
                try:
                    result = checkHost(host, NAMES)
                except HostPortError as e:
                    result = e.reason
                if result != expected:
                    wrong.append((host, result, expected))
        self.assertEqual(wrong, [])

    def test_ipv6(self) -> None:
        """
        A host with a C{":"} is an IPv6 address: returned as written, or
        compressed (RFC 5952) when asked.
        """
        self.assertEqual(checkHost("2001:DB8:0:0::1", NAMES), "2001:DB8:0:0::1")
        self.assertEqual(checkHost("2001:DB8:0:0::1", NAMES, True), "2001:db8::1")
        self.assertEqual(checkHost("::FFFF:C000:201", NAMES, True), "::ffff:c000:201")
        self.assertEqual(checkHost("::ffff:192.0.2.1", NAMES), "::ffff:192.0.2.1")

    def test_invalidIPv6(self) -> None:
        """
        A host with a C{":"} that is not an IPv6 address is
        L{hostport.BAD_IPV6}, even if the name grammar would take it.
        """
        for host in ["2001:db8::zz", ":", "1:2", "a:b", "1::2::3", "[::1]", "::1:"]:
            with self.subTest(host=host):
                error = self.assertRaises(HostPortError, checkHost, host, ANYTHING)
                self.assertEqual(error.reason, hostport.BAD_IPV6)
