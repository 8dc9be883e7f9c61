# -*- test-case-name: tests.sip.test_transport -*-
"""
Where SIP messages go and come from (RFC 3261 section 18, RFC 3581): the
transports (L{TransportKind}), peer addresses (L{Address}), the L{Flow} a
message arrived on, the Via stamping of received requests
(L{stampVia}) and the address responses go back to
(L{responseAddress}); fresh branches and tags.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from zope.interface import Interface

from stoxgw.sip.headers import Headers, Via, parseVia
from stoxgw.sip.message import SIPMessage, SIPRequest, SIPResponse

if TYPE_CHECKING:
    from stoxgw.sip.connection import SIPStreamConnection

__all__ = [
    "MAGIC_COOKIE",
    "TransportKind",
    "Address",
    "Flow",
    "ISIPTransportUser",
    "TransportError",
    "newBranch",
    "newTag",
    "stampVia",
    "responseAddress",
]

#: RFC 3261 section 8.1.1.7: every branch we make starts with this.
MAGIC_COOKIE = "z9hG4bK"


def newBranch() -> str:
    """
    @return: A fresh Via branch: the magic cookie and 96 random bits.
    """
    return MAGIC_COOKIE + secrets.token_hex(12)

def newTag() -> str:
    """
    @return: A fresh From/To tag (RFC 3261 section 19.3: 32 random bits at
        least; we use 64).
    """
    return secrets.token_hex(8)



class TransportKind(Enum):
    """
    The SIP transports this stack speaks, by their Via token.
    """

    UDP = "UDP"
    TCP = "TCP"
    TLS = "TLS"

    @property
    def reliable(self) -> bool:
        """
        Whether the transport is reliable (no retransmissions, RFC 3261
        section 17).
        """
        return self is not TransportKind.UDP

    @property
    def defaultPort(self) -> int:
        """
        5060, or 5061 for TLS (RFC 3261 section 19.1.2).
        """
        return 5061 if self is TransportKind.TLS else 5060

    @property
    def uriParameter(self) -> str:
        """
        The C{transport} URI parameter value (C{udp}, C{tcp}, C{tls}).
        """
        return self.value.lower()

    @classmethod
    def fromToken(cls, token: str) -> TransportKind:
        """
        @raise ValueError: Not a transport we speak.
        """
        return cls(token.upper())


@dataclass(frozen=True, slots=True)
class Address:
    """
    Where to send: a transport and an IP address (or host name) and port.

    @ivar transport: The transport.
    @ivar host: IP address literal (or a name the reactor resolves).
    @ivar port: Port.
    """

    transport: TransportKind
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.value}:{host}:{self.port}"


class TransportError(Exception):
    """
    A message could not be sent (connection refused or lost, socket error).
    """


@dataclass(frozen=True, slots=True, eq=False)
class Flow:
    """
    How a message arrived: the peer address, and for streams the
    connection, so that responses go back the same way.

    @ivar source: The peer's address and the transport.
    @ivar connection: The stream connection, or L{None} for UDP.
    """

    source: Address
    connection: SIPStreamConnection | None = None

    @property
    def transport(self) -> TransportKind:
        """
        The transport of the flow.
        """
        return self.source.transport

    @property
    def reliable(self) -> bool:
        """
        Whether the flow's transport is reliable.
        """
        return self.source.transport.reliable


class ISIPTransportUser(Interface):
    """
    Receives the messages a L{SIPTransport} parsed (the transaction layer).
    """

    def messageReceived(message: SIPMessage, flow: Flow) -> None:
        """
        A well-formed message arrived (requests already carry C{received}
        and C{rport} on their top Via).
        """


def _replaceTopVia(headers: Headers, via: Via) -> Headers:
    """
    Replace the first element of the first Via line.
    """
    fields = list(headers.fields)
    for index, f in enumerate(fields):
        if f.canonicalName == "Via":
            rest = parseVia(f.value)[1:]
            value = ", ".join([via.serialize()] + [v.serialize() for v in rest])
            fields[index] = type(f)(f.name, value)
            break
    return Headers(tuple(fields))


def stampVia(request: SIPRequest, host: str, port: int) -> SIPRequest:
    """
    Add C{received} and fill C{rport} on the top Via of a received request
    (RFC 3261 section 18.2.1, RFC 3581 section 4).

    @param host: The source IP address.
    @param port: The source port.
    @raise HeaderError: The Via is malformed.
    """
    top = request.topVia
    updated = top
    if top.rport is not None:
        updated = updated.withParameter("received", host).withParameter(
            "rport", str(port)
        )
    elif top.host.lower() != host.lower():
        updated = updated.withParameter("received", host)
    if updated is top:
        return request
    return SIPRequest(
        method=request.method,
        uri=request.uri,
        headers=_replaceTopVia(request.headers, updated),
        body=request.body,
        version=request.version,
    )


def responseAddress(response: SIPResponse, transport: TransportKind) -> Address:
    """
    Where to send a response when not along the request's connection
    (RFC 3261 section 18.2.2, RFC 3581 section 4): the C{received} address
    (else the sent-by host) and the C{rport} port (else the sent-by port,
    else the transport's default port).

    @raise HeaderError: No usable top Via.
    """
    via = response.topVia
    host = via.received or via.host
    rport = via.rport
    if isinstance(rport, int) and not isinstance(rport, bool):
        port = rport
    else:
        port = via.port or transport.defaultPort
    return Address(transport, host, port)


