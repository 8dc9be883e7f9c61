# -*- test-case-name: tests.sip.test_dns -*-
"""
Tests for L{stoxgw.sip.dns}: RFC 3263 section 4 resolution over a fake
DNS resolver (NAPTR -> SRV -> A/AAAA, explicit port and transport, IP
literals, maddr, sips rules), RFC 2782 SRV ordering, static routes and
failures (R-002: a SIP server does RFC 3263 to find the next hop).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred, fail, succeed
from twisted.names import dns
from twisted.names.error import DNSNameError, DNSServerError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from stoxgw.sip.dns import (
    ResolutionError,
    RFC3263Resolver,
    StaticRoute,
    orderSRV,
)
from stoxgw.sip.transport import Address, TransportKind
from stoxgw.sip.uri import SIPURI
from stoxgw.sip.useragent import IResolver

UDP, TCP, TLS = TransportKind.UDP, TransportKind.TCP, TransportKind.TLS
ALL = (UDP, TCP, TLS)

_TYPES = {
    "lookupNamingAuthorityPointer": dns.NAPTR,
    "lookupService": dns.SRV,
    "lookupAddress": dns.A,
    "lookupIPV6Address": dns.AAAA,
}


class FakeDNS:
    """
    Answers from a table C{(method, name) -> records or exception}; every
    other query is NXDOMAIN.  Keeps the queries asked.
    """

    def __init__(self, table: dict[tuple[str, str], Any]) -> None:
        self.table = table
        self.queries: list[tuple[str, str]] = []

    def _answer(self, method: str, name: str) -> Deferred[Any]:
        self.queries.append((method, name))
        records = self.table.get((method, name))
        if records is None:
            return fail(DNSNameError(name))
        if isinstance(records, Exception):
            return fail(records)
        answers = [
            dns.RRHeader(name, _TYPES[method], payload=record) for record in records
        ]
        return succeed((answers, [], []))

    def __getattr__(self, method: str) -> Callable[[str], Deferred[Any]]:
        if method not in _TYPES:
            raise AttributeError(method)
        return lambda name, timeout=None: self._answer(method, name)


def naptr(order: int, pref: int, service: bytes, replacement: bytes) -> Any:
    return dns.Record_NAPTR(order, pref, b"s", service, b"", replacement)


def srv(priority: int, weight: int, port: int, target: bytes) -> Any:
    return dns.Record_SRV(priority, weight, port, target)


def uri(text: str) -> SIPURI:
    return SIPURI.fromString(text)


#: The example of RFC 3263 section 4.1 / 4.2, with addresses.
EXAMPLE = {
    ("lookupNamingAuthorityPointer", "example.com"): [
        naptr(50, 50, b"SIPS+D2T", b"_sips._tcp.example.com"),
        naptr(90, 50, b"SIP+D2T", b"_sip._tcp.example.com"),
        naptr(100, 50, b"SIP+D2U", b"_sip._udp.example.com"),
    ],
    ("lookupService", "_sips._tcp.example.com"): [srv(0, 0, 5061, b"tls.example.com")],
    ("lookupService", "_sip._tcp.example.com"): [srv(0, 0, 5060, b"tcp.example.com")],
    ("lookupService", "_sip._udp.example.com"): [
        srv(10, 0, 5060, b"backup.example.com"),
        srv(0, 0, 5070, b"udp.example.com"),
    ],
    ("lookupAddress", "tls.example.com"): [dns.Record_A("192.0.2.1")],
    ("lookupAddress", "tcp.example.com"): [dns.Record_A("192.0.2.2")],
    ("lookupAddress", "udp.example.com"): [dns.Record_A("192.0.2.3")],
    ("lookupIPV6Address", "udp.example.com"): [dns.Record_AAAA("2001:db8::3")],
    ("lookupAddress", "backup.example.com"): [dns.Record_A("192.0.2.4")],
    ("lookupAddress", "example.com"): [dns.Record_A("192.0.2.99")],
}


class ResolverTests(SynchronousTestCase):
    """
    L{RFC3263Resolver}.
    """

    def resolve(
        self,
        table: dict[tuple[str, str], Any],
        target: str,
        transports: tuple[TransportKind, ...] = ALL,
        **kwargs: Any,
    ) -> list[Address]:
        self.dns = FakeDNS(table)
        resolver = RFC3263Resolver(
            self.dns, transports, randomInt=lambda n: 0, **kwargs
        )
        return self.successResultOf(resolver.resolve(uri(target)))

    def failure(
        self,
        table: dict[tuple[str, str], Any],
        target: str,
        transports: tuple[TransportKind, ...] = ALL,
    ) -> str:
        self.dns = FakeDNS(table)
        resolver = RFC3263Resolver(self.dns, transports)
        return str(
            self.failureResultOf(resolver.resolve(uri(target)), ResolutionError).value
        )

    def test_interface(self) -> None:
        """
        It is an L{IResolver} for the UA core.
        """
        self.assertTrue(verifyObject(IResolver, RFC3263Resolver(FakeDNS({}), ALL)))

    def test_naptrOrder(self) -> None:
        """
        RFC 3263 4.1: NAPTR records by order (TLS first here), each
        replacement an SRV name; SRV by priority (RFC 2782); A before AAAA
        (4.2).  The list keeps every fallback.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@example.com"),
            [
                Address(TLS, "192.0.2.1", 5061),
                Address(TCP, "192.0.2.2", 5060),
                Address(UDP, "192.0.2.3", 5070),
                Address(UDP, "2001:db8::3", 5070),
                Address(UDP, "192.0.2.4", 5060),
            ],
        )

    def test_naptrPreferenceWithinOrder(self) -> None:
        """
        RFC 3263 4.1 (RFC 3403): equal order, lower preference first.
        """
        table = dict(EXAMPLE)
        table["lookupNamingAuthorityPointer", "example.com"] = [
            naptr(10, 20, b"SIP+D2T", b"_sip._tcp.example.com"),
            naptr(10, 10, b"SIP+D2U", b"_sip._udp.example.com"),
        ]
        self.assertEqual(
            [a.transport for a in self.resolve(table, "sip:example.com")],
            [UDP, UDP, UDP, TCP],
        )

    def test_naptrOnlyTransportsWeSpeak(self) -> None:
        """
        RFC 3263 4.1: services for transports the client lacks are
        discarded (no TLS listener: SIPS+D2T skipped), as are services we
        do not know and records without the C{s} flag.
        """
        table = dict(EXAMPLE)
        table["lookupNamingAuthorityPointer", "example.com"] = EXAMPLE[
            "lookupNamingAuthorityPointer", "example.com"
        ] + [
            naptr(1, 1, b"SIP+D2S", b"_sip._sctp.example.com"),
            dns.Record_NAPTR(2, 1, b"a", b"SIP+D2T", b"", b"tcp.example.com"),
        ]
        addresses = self.resolve(table, "sip:example.com", transports=(UDP, TCP))
        self.assertEqual(addresses[0], Address(TCP, "192.0.2.2", 5060))
        self.assertNotIn(TLS, [a.transport for a in addresses])
        self.assertNotIn(("lookupService", "_sip._sctp.example.com"), self.dns.queries)

    def test_sipsOnlyTLS(self) -> None:
        """
        RFC 3263 4.1: for a sips URI only SIPS+D2T is used.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sips:room@example.com"),
            [Address(TLS, "192.0.2.1", 5061)],
        )

    def test_srvWithoutNAPTR(self) -> None:
        """
        RFC 3263 4.1: no NAPTR records: SRV for each transport we speak
        (UDP then TCP; no _sips._tcp for a sip URI).
        """
        table = {
            k: v for k, v in EXAMPLE.items() if k[0] != "lookupNamingAuthorityPointer"
        }
        self.assertEqual(
            self.resolve(table, "sip:example.com", transports=(TCP, UDP)),
            [
                Address(TCP, "192.0.2.2", 5060),
                Address(UDP, "192.0.2.3", 5070),
                Address(UDP, "2001:db8::3", 5070),
                Address(UDP, "192.0.2.4", 5060),
            ],
        )
        self.assertNotIn(("lookupService", "_sips._tcp.example.com"), self.dns.queries)

    def test_naptrWithoutSRVFallsBack(self) -> None:
        """
        NAPTR records whose SRV names give nothing (server failure): the
        SRV queries per transport are tried next.
        """
        table = {
            ("lookupNamingAuthorityPointer", "example.com"): [
                naptr(1, 1, b"SIP+D2T", b"_sip._tcp.broken.example.com"),
            ],
            ("lookupService", "_sip._tcp.broken.example.com"): DNSServerError("x"),
            ("lookupService", "_sip._udp.example.com"): [
                srv(0, 0, 5062, b"udp.example.com")
            ],
            ("lookupAddress", "udp.example.com"): [dns.Record_A("192.0.2.3")],
        }
        self.assertEqual(
            self.resolve(table, "sip:example.com"), [Address(UDP, "192.0.2.3", 5062)]
        )

    def test_aWithoutSRV(self) -> None:
        """
        RFC 3263 4.2: no NAPTR, no SRV: A/AAAA of the host, UDP (sip) or
        TLS (sips), default port.
        """
        table = {("lookupAddress", "example.com"): [dns.Record_A("192.0.2.99")]}
        self.assertEqual(
            self.resolve(table, "sip:room@example.com"),
            [Address(UDP, "192.0.2.99", 5060)],
        )
        self.assertEqual(
            self.resolve(table, "sips:room@example.com"),
            [Address(TLS, "192.0.2.99", 5061)],
        )

    def test_noUDPDefaultsToOurTransport(self) -> None:
        """
        Without a UDP listener, the default transport is our first one.
        """
        table = {("lookupAddress", "example.com"): [dns.Record_A("192.0.2.99")]}
        self.assertEqual(
            self.resolve(table, "sip:example.com", transports=(TCP,)),
            [Address(TCP, "192.0.2.99", 5060)],
        )

    def test_explicitPortSkipsNAPTRAndSRV(self) -> None:
        """
        RFC 3263 4.1, 4.2: a port in the URI: A/AAAA only, with that port.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@example.com:5080"),
            [Address(UDP, "192.0.2.99", 5080)],
        )
        self.assertEqual(
            [m for m, _ in self.dns.queries], ["lookupAddress", "lookupIPV6Address"]
        )

    def test_ipLiteral(self) -> None:
        """
        RFC 3263 4.1, 4.2: an IP address is used as is: no DNS at all.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@192.0.2.7"),
            [Address(UDP, "192.0.2.7", 5060)],
        )
        self.assertEqual(
            self.resolve(EXAMPLE, "sips:room@[2001:db8::7]:5071"),
            [Address(TLS, "2001:db8::7", 5071)],
        )
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:192.0.2.7;transport=tcp"),
            [Address(TCP, "192.0.2.7", 5060)],
        )
        self.assertEqual(self.dns.queries, [])

    def test_explicitTransport(self) -> None:
        """
        RFC 3263 4.1, 4.2: a transport parameter without port: SRV of that
        transport only, no NAPTR.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:example.com;transport=tcp"),
            [Address(TCP, "192.0.2.2", 5060)],
        )
        self.assertEqual(
            self.dns.queries[0], ("lookupService", "_sip._tcp.example.com")
        )
        self.assertNotIn(
            "lookupNamingAuthorityPointer", [m for m, _ in self.dns.queries]
        )

    def test_explicitTransportWithoutSRV(self) -> None:
        """
        RFC 3263 4.2: no SRV for the named transport: A with its default
        port.
        """
        table = {("lookupAddress", "example.com"): [dns.Record_A("192.0.2.99")]}
        self.assertEqual(
            self.resolve(table, "sip:example.com;transport=tls"),
            [Address(TLS, "192.0.2.99", 5061)],
        )

    def test_sipsTransportRules(self) -> None:
        """
        RFC 3261 26.2.2: sips with transport=tcp means TLS; sips with UDP
        is refused.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sips:192.0.2.7;transport=tcp"),
            [Address(TLS, "192.0.2.7", 5061)],
        )
        message = self.failure(EXAMPLE, "sips:192.0.2.7;transport=udp")
        self.assertIn("cannot use UDP", message)
        self.assertIn(
            "Unsupported transport sctp",
            self.failure(EXAMPLE, "sip:a.example;transport=sctp"),
        )

    def test_maddr(self) -> None:
        """
        RFC 3263 4: the maddr parameter, when present, is the target.
        """
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@other.example;maddr=192.0.2.8"),
            [Address(UDP, "192.0.2.8", 5060)],
        )
        self.assertEqual(
            self.resolve(
                EXAMPLE, "sip:room@other.example;maddr=example.com;transport=tcp"
            ),
            [Address(TCP, "192.0.2.2", 5060)],
        )

    def test_srvDotTarget(self) -> None:
        """
        RFC 2782: a target of "." means no service; A is the fallback.
        """
        table = {
            ("lookupService", "_sip._udp.example.com"): [srv(0, 0, 0, b".")],
            ("lookupAddress", "example.com"): [dns.Record_A("192.0.2.99")],
        }
        self.assertEqual(
            self.resolve(table, "sip:example.com", transports=(UDP,)),
            [Address(UDP, "192.0.2.99", 5060)],
        )

    def test_noRecords(self) -> None:
        """
        Nothing anywhere: a clear L{ResolutionError} naming the target and
        what was tried.
        """
        message = self.failure({}, "sip:room@nowhere.example")
        self.assertIn("No address for SIP target nowhere.example", message)
        self.assertIn("NAPTR nowhere.example: DNSNameError", message)
        self.assertIn("A nowhere.example: DNSNameError", message)

    def test_staticRouteFirst(self) -> None:
        """
        C{[sip] static_routes}: a route for the domain wins over DNS; its
        transport and port are used (default port of the transport).
        """
        routes = {
            "Example.com": StaticRoute("127.0.0.1", 5070, TCP),
            "other.example": StaticRoute("127.0.0.2"),
            "named.example": StaticRoute("tcp.example.com", None, TCP),
        }
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@example.com", staticRoutes=routes),
            [Address(TCP, "127.0.0.1", 5070)],
        )
        self.assertEqual(self.dns.queries, [])
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@other.example", staticRoutes=routes),
            [Address(UDP, "127.0.0.2", 5060)],
        )
        self.assertEqual(
            self.resolve(EXAMPLE, "sip:room@named.example", staticRoutes=routes),
            [Address(TCP, "192.0.2.2", 5060)],
        )

    def test_staticRouteSips(self) -> None:
        """
        A sips URI is never sent over a static route that is not TLS.
        """
        self.dns = FakeDNS({})
        resolver = RFC3263Resolver(
            self.dns,
            ALL,
            staticRoutes={"example.com": StaticRoute("127.0.0.1", 5070, TCP)},
        )
        failure = self.failureResultOf(
            resolver.resolve(uri("sips:room@example.com")), ResolutionError
        )
        self.assertIn("not TLS", str(failure.value))


class OrderSRVTests(SynchronousTestCase):
    """
    L{orderSRV}: RFC 2782 "Usage rules".
    """

    def test_priorityFirst(self) -> None:
        """
        Lower priority values come first whatever the weights.
        """
        records = [srv(20, 100, 1, b"c"), srv(10, 0, 2, b"a"), srv(10, 0, 3, b"b")]
        self.assertEqual([r.port for r in orderSRV(records, lambda n: 0)], [2, 3, 1])

    def test_weightedSelection(self) -> None:
        """
        Within a priority: zero-weight records first in the list, running
        sums, the first record whose sum reaches the drawn number is next.
        """
        records = [srv(0, 60, 1, b"a"), srv(0, 0, 2, b"z"), srv(0, 40, 3, b"b")]
        draws: list[int] = []

        def draw(total: int) -> int:
            draws.append(total)
            return total  # always the last running sum

        self.assertEqual([r.port for r in orderSRV(records, draw)], [3, 1, 2])
        self.assertEqual(draws, [100, 60, 0])
        # Drawing 0 takes the zero-weight record first.
        self.assertEqual([r.port for r in orderSRV(records, lambda n: 0)], [2, 1, 3])
        # Drawing 61 of 100 skips a (sum 60) and takes b (sum 100).
        picks = iter([61, 0, 0])
        self.assertEqual(
            [r.port for r in orderSRV(records, lambda n: next(picks))], [3, 2, 1]
        )

    def test_distribution(self) -> None:
        """
        With the real random source the heavier record is first more often.
        """
        import random

        rng = random.Random(4)
        records = [srv(0, 90, 1, b"a"), srv(0, 10, 2, b"b")]
        first = [
            orderSRV(records, lambda n: rng.randint(0, n))[0].port for _ in range(500)
        ]
        self.assertGreater(first.count(1), 350)
