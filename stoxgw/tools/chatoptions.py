# -*- test-case-name: tests.tools.test_chat -*-
"""
The command line of C{stoxgw-chat} (L{stoxgw.tools.chat}): its options
(L{argumentParser}), their checks, and L{ClientOptions}, what
L{parseOptions} makes of them.  Exit status 2 for bad options, as
C{argparse} does.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from stoxgw.sip.transport import TransportKind
from stoxgw.sip.uri import SIPURI, SIPURIError
from stoxgw.sip.useragent import SIPTrust

#: The networks trusted without C{--trust}.
DEFAULT_TRUST = ("127.0.0.1/32",)

#: The user part of the default C{--from} address.
DEFAULT_USER = "stoxgw-chat"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """
    The parsed command line.

    @ivar target: The room to join.
    @ivar fromURI: Our address (SIP From, CPIM From).
    @ivar name: Our display name (SIP From, CPIM From formal name), or
        L{None}.
    @ivar nick: A nickname to set once joined, or L{None}.
    @ivar proxy: The outbound proxy as C{(host, port)}, or L{None}.
    @ivar transport: The SIP transport (UDP or TCP).
    @ivar localIP: The address both listeners bind to and advertise.
    @ivar sipPort: The SIP listening port (0: any).
    @ivar msrpPort: The MSRP listening port (0: any).
    @ivar trust: Networks whose SIP requests we accept (the room's BYE).
    @ivar timeout: Seconds joining may take.
    """

    target: SIPURI
    fromURI: SIPURI
    name: str | None = None
    nick: str | None = None
    proxy: tuple[str, int] | None = None
    transport: TransportKind = TransportKind.UDP
    localIP: str = "127.0.0.1"
    sipPort: int = 0
    msrpPort: int = 0
    trust: tuple[str, ...] = DEFAULT_TRUST
    timeout: float = 30.0

    @property
    def inviteTarget(self) -> SIPURI:
        """
        The Request-URI: the target with C{transport=tcp} for TCP (unless
        it names a transport itself).
        """
        if self.transport is TransportKind.UDP or any(
            name.lower() == "transport" for name, _ in self.target.parameters
        ):
            return self.target
        return self.target.withParameter("transport", "tcp")

    @property
    def proxyURI(self) -> SIPURI | None:
        """
        The outbound proxy as a loose-routing SIP URI, or L{None}.
        """
        if self.proxy is None:
            return None
        parameters: tuple[tuple[str, str | None], ...] = (("lr", None),)
        if self.transport is not TransportKind.UDP:
            parameters += (("transport", self.transport.uriParameter),)
        host, port = self.proxy
        return SIPURI("sip", host, port=port, parameters=parameters)


def _sipURI(text: str) -> SIPURI:
    """
    An argparse type: a C{sip:} or C{sips:} URI.
    """
    try:
        return SIPURI.fromString(text)
    except SIPURIError as e:
        raise argparse.ArgumentTypeError(f"not a SIP URI: {text!r} ({e})") from None


def _hostPort(text: str) -> tuple[str, int]:
    """
    An argparse type: C{HOST:PORT} (C{[v6]:PORT} for IPv6), port 5060 if
    left out.
    """
    host, port = text, "5060"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
            port = rest[1:]
    elif ":" in text:
        host, _, port = text.rpartition(":")
        if ":" in host:
            raise argparse.ArgumentTypeError(f"not HOST:PORT ([v6]:PORT): {text!r}")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"not HOST:PORT: {text!r}")
    return host, int(port)


def _port(text: str) -> int:
    """
    An argparse type: a port number, 0 for any.
    """
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port: {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    """
    An argparse type: a positive number of seconds.
    """
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a positive number of seconds: {text!r}")
    return value


def _network(text: str) -> str:
    """
    An argparse type: a network (C{10.0.0.0/8}) or an address.
    """
    try:
        SIPTrust.fromStrings([text])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network: {text!r}") from None
    return text


def _nonEmpty(text: str) -> str:
    """
    An argparse type: a non-empty text without line breaks.
    """
    if not text.strip() or "\r" in text or "\n" in text:
        raise argparse.ArgumentTypeError(f"not a usable name: {text!r}")
    return text


def argumentParser() -> argparse.ArgumentParser:
    """
    The command line of C{stoxgw-chat}.
    """
    parser = argparse.ArgumentParser(
        prog="stoxgw-chat",
        description=(
            "Join a SIP/MSRP chat room (RFC 7701, RFC 7702): send the lines "
            "read from standard input, print what the room sends."
        ),
        epilog="Input commands: /nick NAME, /quit (or end of input).",
    )
    parser.add_argument(
        "target",
        type=_sipURI,
        metavar="ROOM-URI",
        help="the room, e.g. sip:room@host:port",
    )
    parser.add_argument(
        "--from",
        dest="fromURI",
        type=_sipURI,
        metavar="URI",
        help=f"our SIP address (default: sip:{DEFAULT_USER}@LOCAL-IP)",
    )
    parser.add_argument("--name", type=_nonEmpty, help="our display name")
    parser.add_argument("--nick", type=_nonEmpty, help="a nickname to set once joined")
    parser.add_argument(
        "--proxy", type=_hostPort, metavar="HOST:PORT", help="outbound SIP proxy"
    )
    parser.add_argument(
        "--transport", choices=("udp", "tcp"), default="udp", help="SIP transport (udp)"
    )
    parser.add_argument(
        "--local-ip",
        default="127.0.0.1",
        metavar="ADDRESS",
        help="our address (127.0.0.1)",
    )
    parser.add_argument(
        "--sip-port", type=_port, default=0, metavar="PORT", help="(0: any)"
    )
    parser.add_argument(
        "--msrp-port", type=_port, default=0, metavar="PORT", help="(0: any)"
    )
    parser.add_argument(
        "--trust",
        type=_network,
        action="append",
        metavar="CIDR",
        help=(
            "a network whose SIP requests are accepted, repeatable "
            "(default: 127.0.0.1/32)"
        ),
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=30.0,
        metavar="SECONDS",
        help="for joining (30)",
    )
    return parser


def parseOptions(argv: Sequence[str]) -> ClientOptions:
    """
    Parse the command line.

    @raise SystemExit: With status 2 and a message on standard error for
        bad options; with 0 after C{--help}.
    """
    parser = argumentParser()
    arguments = parser.parse_args(list(argv))
    localIP: str = arguments.local_ip
    try:
        SIPTrust.fromStrings([localIP])
    except ValueError:
        parser.error(f"--local-ip: not an IP address: {localIP!r}")
    fromURI: SIPURI | None = arguments.fromURI
    if fromURI is None:
        fromURI = SIPURI("sip", localIP, user=DEFAULT_USER)
    return ClientOptions(
        target=arguments.target,
        fromURI=fromURI,
        name=arguments.name,
        nick=arguments.nick,
        proxy=arguments.proxy,
        transport=TransportKind.fromToken(arguments.transport),
        localIP=localIP,
        sipPort=arguments.sip_port,
        msrpPort=arguments.msrp_port,
        trust=tuple(arguments.trust or DEFAULT_TRUST),
        timeout=arguments.timeout,
    )
