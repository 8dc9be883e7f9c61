# -*- test-case-name: tests.test_config -*-
"""
The values of the stoxgw configuration file: what the text of each key may
be and the typed value it becomes (host names, ports, durations, networks,
files, URIs, static routes, persistent rooms, credentials files), and
L{Secret}, which never shows its value.

Each parser takes the text of one key and returns its value or raises
L{_Invalid} with the reason; L{stoxgw.config} names the parser of every
key in its C{SCHEMA} and turns the reasons into
L{ConfigError<stoxgw.config.ConfigError>} lines.
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from stoxgw.formats.hostport import UNCLOSED, HostPortError, splitHostPort

#: The value the sample configuration puts where a secret must be filled in.
PLACEHOLDER = "CHANGE_ME"

#: The log levels a C{[logging]} key may name.
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


class Secret:
    """
    A configured secret (a password or shared key).

    Its C{str} and C{repr} never reveal the value, so that a logged or printed
    configuration object cannot leak it; L{reveal} gives the value to the one
    place that needs it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """
        @return: the secret itself, for the code that must send it.
        """
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)



class _Invalid(ValueError):
    """
    A value does not fit its key's type; the message says why.
    """


# Value parsers: text from the file -> typed value, or _Invalid.


def _string(text: str) -> str:
    return text


def _hostname(text: str) -> str:
    """
    A DNS name (XMPP domain or SIP host): letters, digits, C{-} and C{.}.
    """
    name = text.lower()
    labels = name.split(".")
    if not name or len(name) > 253 or not all(
        label
        and len(label) <= 63
        and all(c.isalnum() or c == "-" for c in label)
        and label.isascii()
        and not label.startswith("-")
        and not label.endswith("-")
        for label in labels
    ):
        raise _Invalid(f"{text!r} is not a valid domain name")
    return name


def _host(text: str) -> str:
    """
    A host to connect to: an IP address or a domain name.
    """
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return _hostname(text)


def _ipAddress(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise _Invalid(f"{text!r} is not an IP address") from None


def _integer(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise _Invalid(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise _Invalid(f"{value} is out of range ({low} to {high})")
        return value

    return parse


_port = _integer(1, 65535)


def _gcThresholds(text: str) -> tuple[int, int, int]:
    """
    Three whole numbers for C{gc.set_threshold}: allocations before a
    young collection (100 to 10,000,000), then young collections per
    middle one and middle collections per full one (1 to 1000 each).
    """
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 3:
        raise _Invalid(f"{text!r} is not three whole numbers separated by commas")
    young = _integer(100, 10_000_000)(parts[0])
    middle = _integer(1, 1000)(parts[1])
    old = _integer(1, 1000)(parts[2])
    return (young, middle, old)
_portOrOff = _integer(0, 65535)


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _Invalid(f"{text!r} is not a number of seconds") from None
        if not low <= value <= high:
            raise _Invalid(f"{value:g} is out of range ({low:g} to {high:g} seconds)")
        return value

    return parse


_BOOLEANS = {
    "yes": True,
    "true": True,
    "on": True,
    "1": True,
    "no": False,
    "false": False,
    "off": False,
    "0": False,
}


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text.lower()]
    except KeyError:
        raise _Invalid(f"{text!r} is not yes/no/true/false/on/off/1/0") from None


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.lower() not in choices:
            raise _Invalid(f"{text!r} is not one of {', '.join(choices)}")
        return text.lower()

    return parse


def _networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for item in _items(text):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise _Invalid(f"{item!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _hostnames(text: str) -> tuple[str, ...]:
    return tuple(_hostname(item) for item in _items(text))


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


def _readableFile(text: str) -> str:
    path = os.path.expanduser(text)
    if not os.path.isfile(path):
        raise _Invalid(f"{text!r} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise _Invalid(f"{text!r} is not readable")
    return path


def _caFile(text: str) -> str:
    """
    A readable PEM file holding at least one certificate (CA bundle).
    """
    path = _readableFile(text)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError, ValueError):
        raise _Invalid(f"{text!r} is not a PEM file of certificates") from None
    if not context.cert_store_stats()["x509"]:
        raise _Invalid(f"{text!r} holds no certificate")
    return path


def _logFile(text: str) -> str:
    if text == "-":
        return text
    directory = os.path.dirname(os.path.abspath(os.path.expanduser(text)))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
        raise _Invalid(f"directory of {text!r} does not exist or is not writable")
    return os.path.expanduser(text)


def _sessionInterval(text: str) -> int:
    """
    A session interval: 0 (off) or 90 to 86400 seconds (RFC 4028 section
    4: never below 90).
    """
    value = _integer(0, 86400)(text)
    if 0 < value < 90:
        raise _Invalid(f"{value} is below 90 seconds (RFC 4028); use 0 to turn session timers off")
    return value


def _secret(text: str) -> Secret:
    if text == PLACEHOLDER:
        raise _Invalid(f"still the sample's placeholder {PLACEHOLDER}: set the real secret")
    return Secret(text)


def _uri(*schemes: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in schemes or not rest:
            raise _Invalid(f"{text!r} is not a {'/'.join(schemes)} URI")
        return text

    return parse


def _realm(text: str) -> str:
    """
    A digest realm: printable, without quotes or backslashes (it goes into
    a quoted string, RFC 3261 section 22.4).
    """
    if not text.isprintable() or '"' in text or "\\" in text:
        raise _Invalid(f"{text!r} is not a usable realm (no quotes, backslashes or control characters)")
    return text


@dataclass(frozen=True, slots=True)
class Credentials:
    """
    The users of C{[sip] credentials_file}: their C{repr} shows the file and
    the user names, never a password.

    @ivar path: the file they were read from.
    @ivar users: C{(user, password)} pairs in file order.
    """

    path: str
    users: tuple[tuple[str, Secret], ...]

    def reveal(self) -> dict[str, str]:
        """
        @return: the password of each user, for the code that checks them.
        """
        return {user: password.reveal() for user, password in self.users}


def _credentialsFile(text: str) -> Credentials:
    """
    A readable file of C{user:password} lines; blank lines and lines
    starting with C{#} are ignored.  Errors name the line, never its text.
    """
    path = _readableFile(text)
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise _Invalid(f"{text!r} cannot be read: {getattr(e, 'strerror', None) or type(e).__name__}") from None
    users: dict[str, Secret] = {}
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        user, colon, password = stripped.partition(":")
        user = user.strip()
        if not colon or not user or not password or any(c.isspace() for c in user):
            raise _Invalid(f"{text!r} line {number}: not a user:password line")
        if user in users:
            raise _Invalid(f"{text!r} line {number}: user {user!r} appears twice")
        users[user] = Secret(password)
    if not users:
        raise _Invalid(f"{text!r} has no user:password line")
    return Credentials(path, tuple(users.items()))


#: A C{[sip] static_routes} entry: domain, host, port (or L{None}) and
#: transport (C{udp}, C{tcp}, C{tls} or L{None}).
StaticRouteSpec = tuple[str, str, int | None, str | None]


def _staticRoutes(text: str) -> tuple[StaticRouteSpec, ...]:
    """
    Comma-separated C{DOMAIN=HOST[:PORT][/TRANSPORT]}; an IPv6 host in
    brackets.
    """
    routes: list[StaticRouteSpec] = []
    seen: set[str] = set()
    for item in _items(text):
        domain, equals, target = item.partition("=")
        if not equals:
            raise _Invalid(f"{item!r} is not DOMAIN=HOST[:PORT][/TRANSPORT]")
        domain = _hostname(domain.strip())
        if domain in seen:
            raise _Invalid(f"{domain} has two static routes")
        seen.add(domain)
        target, slash, transport = target.strip().partition("/")
        kind = None
        if slash:
            kind = transport.strip().lower()
            if kind not in ("udp", "tcp", "tls"):
                raise _Invalid(f"{item!r}: transport {transport!r} is not udp, tcp or tls")
        try:
            # Brackets may hold an IPv4 address as well (_ipAddress).
            host, portText = splitHostPort(target, ipv6InBrackets=False)
        except HostPortError as e:
            if e.reason == UNCLOSED:
                raise _Invalid(f"{item!r}: unclosed [ in the host") from None
            raise _Invalid(f"{item!r} is not DOMAIN=HOST[:PORT][/TRANSPORT]") from None
        port = None if portText is None else _port(portText)
        host = _ipAddress(host) if target.startswith("[") else _host(host)
        routes.append((domain, host, port, kind))
    return tuple(routes)


#: A C{[rooms] persistent_rooms} entry: the room name and its subject.
PersistentRoomSpec = tuple[str, str | None]

_ROOM_NAME = re.compile(r"[A-Za-z0-9._~-]+")


def _roomName(text: str) -> str:
    """
    A room name: the user part of C{sip:NAME@[rooms] domain} and the
    localpart of its room JID, so letters, digits and C{._~-} only;
    compared in lower case.
    """
    if not _ROOM_NAME.fullmatch(text):
        raise _Invalid(f"{text!r} is not a room name (letters, digits, . _ ~ -)")
    return text.lower()


def _persistentRooms(text: str) -> tuple[PersistentRoomSpec, ...]:
    """
    One room per line: C{NAME}, optionally followed by white space and
    the room's subject.
    """
    rooms: list[PersistentRoomSpec] = []
    seen: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        name, _, subject = line.partition(" ")
        name = _roomName(name.strip())
        if name in seen:
            raise _Invalid(f"room {name} is listed twice")
        seen.add(name)
        rooms.append((name, subject.strip() or None))
    return tuple(rooms)


def _creators(text: str) -> tuple[str, ...]:
    """
    Comma-separated C{*} (anyone), domains (anyone of that domain) and
    addresses C{user@host} (a C{sip:} prefix allowed).
    """
    creators: list[str] = []
    for item in _items(text):
        if item == "*":
            creators.append(item)
            continue
        address = item[4:] if item.lower().startswith("sip:") else item
        user, at, host = address.rpartition("@")
        if at and not user:
            raise _Invalid(f"{item!r} has no user before @")
        creators.append(f"{user}@{_hostname(host)}" if at else _hostname(host))
    return tuple(creators)


def _nicknames(text: str) -> tuple[str, ...]:
    """
    Comma-separated nicknames (RFC 7700).
    """
    from stoxgw.rooms.nicks import InvalidNickname, enforce

    nicks: list[str] = []
    for item in _items(text):
        try:
            nicks.append(enforce(item))
        except InvalidNickname as e:
            raise _Invalid(e.reason) from None
    return tuple(nicks)
