# -*- test-case-name: tests.sip.test_dns -*-
"""
Locating SIP servers (RFC 3263 section 4): a SIP URI -> the ordered
L{Address}es to try.

L{RFC3263Resolver} is an L{IResolver} for the UA core.  For a URI it
takes the I{target} (the C{maddr} parameter, else the host) and:

 1. a static route configured for the target (C{[sip] static_routes},
    L{StaticRoute}) wins over DNS;
 2. transport (section 4.1): the C{transport} parameter if present (a
    C{sips} URI makes C{tcp} TLS and refuses C{udp}, RFC 3261 26.2.2);
 3. an IP literal target: that address, the URI's port or the
    transport's default (UDP for C{sip}, TLS for C{sips});
 4. an explicit port: A/AAAA of the target with that port (no NAPTR, no
    SRV);
 5. an explicit transport without port: SRV of that transport
    (C{_sip._udp}, C{_sip._tcp}, C{_sips._tcp}), else A/AAAA with the
    default port;
 6. otherwise NAPTR of the target: records with flag C{s} and a service
    we speak (C{SIP+D2U}, C{SIP+D2T}, C{SIPS+D2T}; only C{SIPS+D2T} for a
    C{sips} URI), by order then preference, each replacement looked up as
    SRV; without usable NAPTR records (or when their SRV names give
    nothing), SRV for each transport we speak (C{_sips._tcp} only for
    C{sips}); without SRV records, A/AAAA with UDP (C{sip}) or TLS
    (C{sips}) and the default port.

SRV records are ordered as RFC 2782 says: by priority, and within a
priority by weighted random selection (the random source is injectable).
A target of C{.} means "no service here".  Each SRV target is looked up
as A then AAAA; the result lists every address in that order, without
duplicates.  Only transports the L{SIPTransport} has (its C{transports})
are used.

DNS goes through an injected C{twisted.internet.interfaces.IResolver}
(C{twisted.names.client.Resolver} in the gateway; a fake returning
records in the tests).  NXDOMAIN, empty answers, timeouts and server
failures of NAPTR and SRV queries mean "no records" and resolution goes
on; when nothing is left the Deferred fails with L{ResolutionError}
naming the target and what was tried, which the UA turns into a local
503.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.names import dns
from zope.interface import implementer

from stoxgw.sip.transport import Address, TransportKind
from stoxgw.sip.uri import SIPURI
from stoxgw.sip.useragent import IResolver

__all__ = [
    "ResolutionError",
    "StaticRoute",
    "RFC3263Resolver",
    "orderSRV",
    "NAPTR_SERVICES",
]

#: NAPTR service -> transport (RFC 3263 section 4.1; SIPS+D2T is TLS over
#: TCP, RFC 3261 section 26.2).
NAPTR_SERVICES: Mapping[str, TransportKind] = {
    "SIP+D2U": TransportKind.UDP,
    "SIP+D2T": TransportKind.TCP,
    "SIPS+D2T": TransportKind.TLS,
}

#: SRV service prefix per transport (RFC 3263 section 4.1).
SRV_PREFIXES: Mapping[TransportKind, str] = {
    TransportKind.UDP: "_sip._udp",
    TransportKind.TCP: "_sip._tcp",
    TransportKind.TLS: "_sips._tcp",
}

#: At most this many SRV targets are looked up per resolution.
MAX_TARGETS = 16


class ResolutionError(Exception):
    """
    No address could be found for a SIP URI; the message says what was
    tried.
    """


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """
    Where to send requests for one domain, bypassing NAPTR and SRV.

    @ivar host: An IP address, or a name looked up as A/AAAA.
    @ivar port: The port, or L{None} for the transport's default.
    @ivar transport: The transport, or L{None} to choose as for a URI
        without NAPTR/SRV records (the C{transport} parameter, TLS for
        C{sips}, else UDP).
    """

    host: str
    port: int | None = None
    transport: TransportKind | None = None


def orderSRV(records: Sequence[Any], randomInt: Callable[[int], int]) -> list[Any]:
    """
    Order SRV records as RFC 2782 ("Usage rules") says: lowest priority
    first; within a priority, repeatedly pick by weight: weight-0 records
    go first in the list, the running sums of the weights are computed,
    a number between 0 and their total (inclusive) is drawn, and the
    first record whose running sum reaches it is taken next.

    @param records: Objects with C{priority} and C{weight}
        (C{twisted.names.dns.Record_SRV}).
    @param randomInt: C{randomInt(n)} draws an integer in C{[0, n]}.
    """
    ordered: list[Any] = []
    for priority in sorted({r.priority for r in records}):
        group = [r for r in records if r.priority == priority]
        group.sort(key=lambda r: 0 if r.weight == 0 else 1)
        while group:
            total = sum(r.weight for r in group)
            draw = randomInt(total)
            running = 0
            chosen = group[-1]
            for record in group:
                running += record.weight
                if running >= draw:
                    chosen = record
                    break
            group.remove(chosen)
            ordered.append(chosen)
    return ordered


def _randomInt(total: int) -> int:
    return random.randint(0, total)


def _stripBrackets(host: str) -> str:
    if host.startswith("[") and host.endswith("]"):
        return host[1:-1]
    return host


def _isIP(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@implementer(IResolver)
class RFC3263Resolver:
    """
    RFC 3263 resolution: see the module docstring.

    @ivar dns: The DNS resolver (C{twisted.internet.interfaces.IResolver}).
    @ivar staticRoutes: Routes by lower-case domain, checked first.
    """

    _log = Logger()

    def __init__(
        self,
        dnsResolver: Any,
        transports: Sequence[TransportKind] | Callable[[], Sequence[TransportKind]],
        *,
        staticRoutes: Mapping[str, StaticRoute] | None = None,
        randomInt: Callable[[int], int] = _randomInt,
    ) -> None:
        """
        @param transports: The transports we can send on, preferred first,
            or a callable giving them at each resolution (the transport's
            listeners start after the resolver is built).
        @param randomInt: Draws an integer in C{[0, n]} for the SRV weighted
            selection (tests pass a fixed one).
        """
        self.dns = dnsResolver
        self._transports = transports
        self.staticRoutes = {
            domain.lower().rstrip("."): route
            for domain, route in (staticRoutes or {}).items()
        }
        self.randomInt = randomInt

    @property
    def transports(self) -> tuple[TransportKind, ...]:
        """
        The transports we can send on, preferred first (UDP if none).
        """
        transports = self._transports
        if callable(transports):
            transports = transports()
        return tuple(transports) or (TransportKind.UDP,)

    def resolve(self, uri: SIPURI) -> Deferred[list[Address]]:
        """
        Resolve C{uri}.

        @return: The addresses in order of preference; fails with
            L{ResolutionError} if there are none.
        """
        return Deferred.fromCoroutine(self._resolve(uri))

    # -- the algorithm -----------------------------------------------------

    def _defaultKind(self, uri: SIPURI) -> TransportKind:
        """
        The transport when nothing names one: TLS for C{sips}, else UDP
        (section 4.1), or our first transport if we have no UDP.
        """
        if uri.secure:
            return TransportKind.TLS
        if TransportKind.UDP in self.transports:
            return TransportKind.UDP
        return self.transports[0]

    def _explicitKind(self, uri: SIPURI) -> TransportKind | None:
        param = uri.transport
        if param is None:
            return None
        try:
            kind = TransportKind.fromToken(param)
        except ValueError:
            raise ResolutionError(f"Unsupported transport {param} in {uri}") from None
        if uri.secure:
            if kind is TransportKind.UDP:
                raise ResolutionError(f"{uri}: a sips URI cannot use UDP")
            kind = TransportKind.TLS
        return kind

    async def _resolve(self, uri: SIPURI) -> list[Address]:
        target = _stripBrackets(uri.parameter("maddr") or uri.host).lower()
        route = self.staticRoutes.get(target.rstrip("."))
        if route is not None:
            return await self._static(uri, target, route)
        kind = self._explicitKind(uri)
        if _isIP(target):
            kind = kind or self._defaultKind(uri)
            return [Address(kind, target, uri.port or kind.defaultPort)]
        if uri.port is not None:
            kind = kind or self._defaultKind(uri)
            return await self._addresses(target, kind, uri.port, target)
        tried: list[str] = []
        if kind is not None:
            found = await self._srv(f"{SRV_PREFIXES[kind]}.{target}", kind, tried)
            if found:
                return found
            return await self._addresses(target, kind, kind.defaultPort, target, tried)
        found = await self._naptr(uri, target, tried)
        if found:
            return found
        for kind in self._srvKinds(uri):
            found.extend(await self._srv(f"{SRV_PREFIXES[kind]}.{target}", kind, tried))
        if found:
            return _unique(found)
        kind = self._defaultKind(uri)
        return await self._addresses(target, kind, kind.defaultPort, target, tried)

    async def _static(
        self, uri: SIPURI, target: str, route: StaticRoute
    ) -> list[Address]:
        kind = route.transport or self._explicitKind(uri) or self._defaultKind(uri)
        if uri.secure and kind is not TransportKind.TLS:
            raise ResolutionError(
                f"{uri}: the static route for {target} is not TLS, a sips URI needs it"
            )
        port = route.port or kind.defaultPort
        host = _stripBrackets(route.host)
        if _isIP(host):
            return [Address(kind, host, port)]
        return await self._addresses(host, kind, port, target)

    def _srvKinds(self, uri: SIPURI) -> list[TransportKind]:
        """
        The SRV queries without NAPTR: C{_sips._tcp} for C{sips}, else
        C{_sip._udp} and C{_sip._tcp} in our order of preference.
        """
        if uri.secure:
            return [TransportKind.TLS] if TransportKind.TLS in self.transports else []
        return [k for k in self.transports if k is not TransportKind.TLS]

    async def _naptr(self, uri: SIPURI, target: str, tried: list[str]) -> list[Address]:
        answers = await self._query("lookupNamingAuthorityPointer", target, tried)
        usable = []
        for record in answers:
            if not isinstance(record, dns.Record_NAPTR):
                continue
            if b"s" not in record.flags.string.lower():
                continue
            service = record.service.string.decode("ascii", "replace").upper()
            kind = NAPTR_SERVICES.get(service)
            if kind is None or kind not in self.transports:
                continue
            if uri.secure and kind is not TransportKind.TLS:
                continue
            replacement = record.replacement.name.decode("ascii", "replace")
            if not replacement:
                continue
            usable.append((record.order, record.preference, kind, replacement))
        usable.sort(key=lambda item: (item[0], item[1]))
        found: list[Address] = []
        for _, _, kind, replacement in usable:
            found.extend(await self._srv(replacement, kind, tried))
        return _unique(found)

    async def _srv(
        self, name: str, kind: TransportKind, tried: list[str]
    ) -> list[Address]:
        answers = await self._query("lookupService", name, tried)
        records = [r for r in answers if isinstance(r, dns.Record_SRV)]
        if any(not r.target.name or r.target.name == b"." for r in records):
            # RFC 2782: "." means the service is decidedly not available.
            return []
        found: list[Address] = []
        for record in orderSRV(records, self.randomInt)[:MAX_TARGETS]:
            host = record.target.name.decode("ascii", "replace").rstrip(".")
            found.extend(await self._hostAddresses(host, kind, record.port, tried))
        return found

    async def _addresses(
        self,
        host: str,
        kind: TransportKind,
        port: int,
        target: str,
        tried: list[str] | None = None,
    ) -> list[Address]:
        tried = [] if tried is None else tried
        found = await self._hostAddresses(host, kind, port, tried)
        if not found:
            raise ResolutionError(
                f"No address for SIP target {target} (tried {', '.join(tried)})"
            )
        return found

    async def _hostAddresses(
        self, host: str, kind: TransportKind, port: int, tried: list[str]
    ) -> list[Address]:
        if _isIP(host):
            return [Address(kind, host, port)]
        found: list[Address] = []
        for method in ("lookupAddress", "lookupIPV6Address"):
            for record in await self._query(method, host, tried):
                if isinstance(record, dns.Record_A):
                    family = socket.AF_INET
                elif isinstance(record, dns.Record_AAAA):
                    family = socket.AF_INET6
                else:
                    continue
                packed: bytes = record.address
                found.append(Address(kind, socket.inet_ntop(family, packed), port))
        return _unique(found)

    async def _query(self, method: str, name: str, tried: list[str]) -> list[Any]:
        """
        One DNS query: the payloads of the answer section, or nothing on
        any failure (noted in C{tried}).
        """
        label = {
            "lookupNamingAuthorityPointer": "NAPTR",
            "lookupService": "SRV",
            "lookupAddress": "A",
            "lookupIPV6Address": "AAAA",
        }[method]
        try:
            answers, _, _ = await getattr(self.dns, method)(name)
        except Exception as e:
            tried.append(f"{label} {name}: {type(e).__name__}")
            self._log.debug(
                "DNS {label} {name} failed: {error}",
                label=label,
                name=name,
                error=type(e).__name__,
            )
            return []
        payloads = [answer.payload for answer in answers]
        tried.append(f"{label} {name}: {len(payloads)}")
        return payloads


def _unique(addresses: list[Address]) -> list[Address]:
    seen: set[Address] = set()
    result = []
    for address in addresses:
        if address not in seen:
            seen.add(address)
            result.append(address)
    return result
