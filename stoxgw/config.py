# -*- test-case-name: tests.test_config -*-
"""
The stoxgw configuration file: an INI file parsed into frozen, typed objects.

The file has the sections C{[gateway]}, C{[sip]}, C{[msrp]}, C{[xmpp]},
C{[rooms]} and C{[logging]} (SylkServer's layout).  Every key is declared
once in L{SCHEMA} with its type, default and documentation; the sample
configuration and the manual page are checked against that table by the
tests.

Every problem in a file is reported, not only the first: L{loadConfig}
raises L{ConfigError} whose C{problems} are lines of the form::

    /etc/stoxgw/stoxgw.conf: [xmpp] secret: required, and not set

Secrets are held in L{Secret}, whose C{repr} and C{str} never show the value.
The value types and their parsers are in L{stoxgw.configvalues}; this module
holds the key table, the configuration objects and the loader.
"""

from __future__ import annotations

import configparser
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stoxgw.configvalues import (
    LOG_LEVELS,
    Credentials,
    PersistentRoomSpec,
    Secret as Secret,
    StaticRouteSpec,
    _Invalid,
    _boolean,
    _caFile,
    _choice,
    _creators,
    _credentialsFile,
    _gcThresholds,
    _host,
    _hostname,
    _hostnames,
    _integer,
    _ipAddress,
    _logFile,
    _networks,
    _nicknames,
    _persistentRooms,
    _port,
    _portOrOff,
    _readableFile,
    _realm,
    _seconds,
    _secret,
    _sessionInterval,
    _staticRoutes,
    _string,
    _uri,
)
from stoxgw.configvalues import PLACEHOLDER as PLACEHOLDER  # noqa: F401 (tests, docs)

#: The configuration file used when C{--config} is not given.
DEFAULT_CONFIG_PATH = "/etc/stoxgw/stoxgw.conf"


class ConfigError(Exception):
    """
    A configuration file could not be used.

    @ivar problems: one line per problem, each naming the file, section and
        key and what is wrong.
    """

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))




@dataclass(frozen=True, slots=True)
class Key:
    """
    One configuration key: its section, name, type and documentation.

    @ivar default: the value used when the key is absent, written as it
        would be in the file; L{None} means the key has no value unless set.
    @ivar required: whether the file must set it.
    @ivar secret: whether the value must never be shown.
    """

    section: str
    name: str
    parse: Callable[[str], Any]
    default: str | None
    doc: str
    required: bool = False
    secret: bool = False


SCHEMA: tuple[Key, ...] = (
    # [gateway]
    Key(
        "gateway",
        "muc_domains",
        _hostnames,
        "",
        "XMPP MUC service domains that SIP users may join (sip:room@DOMAIN), "
        "comma-separated; empty allows any domain the XMPP server can reach.",
    ),
    Key(
        "gateway",
        "instant_rooms",
        _boolean,
        "yes",
        "When a SIP user's join creates a new XMPP room (status 201), accept "
        "the default configuration so the room unlocks for others (XEP-0045 10.1.2).",
    ),
    Key(
        "gateway",
        "history_size",
        _integer(0, 10000),
        "50",
        "Messages kept per room hosted by a SIP focus and replayed to joining "
        "XMPP users with their original timestamps.",
    ),
    Key(
        "gateway",
        "reflection_timeout",
        _seconds(0.1, 25),
        "10",
        "Seconds to wait for the MUC to reflect a SIP user's message before "
        "answering the MSRP SEND; keep it well below the 30 s a SIP client "
        "waits for that answer (RFC 4975 section 7.1.1).",
    ),
    Key(
        "gateway",
        "reflection_timeout_status",
        lambda text: int(_choice("200", "408")(text)),
        "200",
        "MSRP status of a SEND whose reflection did not come within "
        "reflection_timeout: 200 (the message was sent to the room but its "
        "arrival is not proven; a later MUC error still reaches the sender as "
        "a failure REPORT) or 408 (the sender is told delivery is unknown and "
        "may resend, at the risk of a duplicate).",
    ),
    Key(
        "gateway",
        "link_loss_grace",
        _seconds(0, 3600),
        "60",
        "Seconds SIP users stay connected while the XMPP link is down; their "
        "messages meanwhile get MSRP 408, and when the link is back they "
        "rejoin their rooms with their nicks. After this the chats end with "
        "BYE (Reason 503).",
    ),
    Key(
        "gateway",
        "shutdown_grace",
        _seconds(0, 300),
        "5",
        "Seconds a stopping gateway waits for the answers to the BYEs and "
        "final NOTIFYs it sends to SIP users and focuses (their XMPP "
        "occupants leave first), before it closes its connections; 0 does "
        "not wait.",
    ),
    Key(
        "gateway",
        "gc_thresholds",
        _gcThresholds,
        "10000, 10, 100",
        "Python's garbage collector thresholds (gc.set_threshold) for the "
        "gateway process, which also freezes the objects made at start-up "
        "(gc.freeze). The default lets most of a message's short-lived "
        "objects die before a collection sees them, so full collections "
        "(pauses of up to a second with thousands of sessions) stay rare, "
        "while each young collection stays short (tens of milliseconds); "
        "700, 10, 10 is Python's own setting.",
    ),
    Key(
        "gateway",
        "invites_per_user",
        _integer(1, 100000),
        "20",
        "INVITEs to XMPP rooms a SIP identity may send per minute; more get "
        "503 with Retry-After (each INVITE is a visible join in a room).",
    ),
    Key(
        "gateway",
        "invites_per_room",
        _integer(1, 100000),
        "120",
        "INVITEs per minute into one XMPP room, from all SIP users together; "
        "more get 503 with Retry-After.",
    ),
    # [sip]
    Key("sip", "local_ip", _ipAddress, "127.0.0.1", "Address the SIP listeners bind to and advertise."),
    Key("sip", "udp_port", _portOrOff, "5060", "SIP over UDP port; 0 disables UDP."),
    Key("sip", "tcp_port", _portOrOff, "5060", "SIP over TCP port; 0 disables TCP."),
    Key(
        "sip",
        "tls_port",
        _portOrOff,
        "0",
        "SIP over TLS port; 0 disables TLS (needs tls_certificate and tls_private_key).",
    ),
    Key("sip", "tls_certificate", _readableFile, None, "PEM certificate (chain) for SIP over TLS."),
    Key("sip", "tls_private_key", _readableFile, None, "PEM private key for SIP over TLS."),
    Key(
        "sip",
        "tls_ca_file",
        _caFile,
        None,
        "PEM file of CA certificates that SIP TLS peers are verified against: "
        "the TLS listener then asks clients for a certificate (optional; one "
        "that does not verify fails the handshake) and outgoing TLS checks "
        "servers against it; unset: outgoing TLS uses the system trust store "
        "and the listener asks for no client certificate.",
    ),
    Key(
        "sip",
        "trusted_peers",
        _networks,
        "127.0.0.1/32",
        "Addresses or CIDR networks (comma-separated) whose SIP requests are "
        "accepted without authentication: your SIP proxies.",
    ),
    Key(
        "sip",
        "trusted_tls_names",
        _hostnames,
        "",
        "TLS identities (certificate subjectAltName DNS names or SIP URI hosts, "
        "comma-separated) whose SIP requests are accepted without "
        "authentication, over TLS connections either side opened; only "
        "certificates verified against tls_ca_file count (requires it).",
    ),
    Key(
        "sip",
        "auth_realm",
        _realm,
        None,
        "Realm for digest authentication (RFC 3261 section 22) of SIP requests "
        "from untrusted peers; unset: no digest, untrusted peers get 403.",
    ),
    Key(
        "sip",
        "credentials_file",
        _credentialsFile,
        None,
        "File of user:password lines (# comments) for digest authentication; "
        "required with auth_realm; keep it readable only by the gateway.",
    ),
    Key(
        "sip",
        "idle_timeout",
        _seconds(0, 86400),
        "120",
        "Seconds after which a SIP TCP or TLS connection that carries no dialog "
        "or transaction, and on which no SIP message passed (CRLF keep-alives "
        "do not count), is closed; 0: never.",
    ),
    Key(
        "sip",
        "read_timeout",
        _seconds(0, 3600),
        "30",
        "Seconds a SIP message on TCP or TLS may take from its first octet to "
        "its last, and a connection may stay blocked by a peer that reads "
        "nothing; beyond, the connection is closed. 0: no limit.",
    ),
    Key(
        "sip",
        "max_connections_per_address",
        _integer(1, 1000000),
        "50",
        "Most SIP TCP and TLS connections accepted from one source address; "
        "more are closed at once (logged once a minute per address).",
    ),
    Key(
        "sip",
        "max_connections",
        _integer(1, 1000000),
        "2000",
        "Most SIP TCP and TLS connections accepted in all; more are closed at once.",
    ),
    Key(
        "sip",
        "max_output_bytes",
        _integer(1024, 1 << 30),
        "1048576",
        "Octets of SIP output a TCP or TLS connection may hold, beyond 64 KiB, "
        "for a peer that does not read; reading from it stops at 64 KiB, and "
        "beyond this the connection is closed.",
    ),
    Key("sip", "outbound_proxy", _uri("sip", "sips"), None, "SIP URI all outgoing requests are sent through."),
    Key(
        "sip",
        "static_routes",
        _staticRoutes,
        "",
        "Next hops that bypass DNS, comma-separated DOMAIN=HOST[:PORT][/TRANSPORT] "
        "(transport udp, tcp or tls); other domains are resolved with RFC 3263 "
        "(NAPTR, SRV, A/AAAA).",
    ),
    Key("sip", "username", _string, None, "User name for answering digest challenges from the proxy."),
    Key("sip", "password", _secret, None, "Password for answering digest challenges.", secret=True),
    Key(
        "sip",
        "session_expires",
        _sessionInterval,
        "1800",
        "Session interval (RFC 4028) asked for in the gateway's INVITEs and "
        "granted at most to SIP users', in seconds: a dialog whose peer does "
        "not refresh it in time ends with BYE; 0 turns session timers off.",
    ),
    Key(
        "sip",
        "min_se",
        _integer(90, 86400),
        "90",
        "Smallest session interval accepted (RFC 4028 Min-SE); INVITEs from "
        "UAs supporting session timers that ask for less get 422.",
    ),
    # [msrp]
    Key("msrp", "local_ip", _ipAddress, "127.0.0.1", "Address the MSRP listener binds to and puts in a=path."),
    Key("msrp", "port", _port, "2855", "MSRP listening port."),
    Key("msrp", "use_tls", _boolean, "no", "Offer and accept msrps (MSRP over TLS)."),
    Key("msrp", "tls_certificate", _readableFile, None, "PEM certificate for msrps."),
    Key("msrp", "tls_private_key", _readableFile, None, "PEM private key for msrps."),
    Key(
        "msrp",
        "transaction_timeout",
        _seconds(1, 300),
        "30",
        "Seconds to wait for an MSRP response before a send fails (RFC 4975 7.1.1).",
    ),
    Key("msrp", "chunk_size", _integer(64, 65536), "2048", "Largest body of an outgoing MSRP chunk, in octets."),
    Key(
        "msrp",
        "max_message_size",
        _integer(1024, 64 * 1024 * 1024),
        "65536",
        "Largest incoming message (all chunks together), in octets; larger ones get 413. "
        "Announced in SDP as a=max-size; keep it at or below the stanza size the XMPP "
        "server accepts (R-125).",
    ),
    Key("msrp", "relay", _uri("msrp", "msrps"), None, "MSRP relay (RFC 4976) URI to route sessions through."),
    Key("msrp", "relay_username", _string, None, "User name for the relay's AUTH challenge."),
    Key("msrp", "relay_password", _secret, None, "Password for the relay's AUTH challenge.", secret=True),
    Key(
        "msrp",
        "unbound_timeout",
        _seconds(0, 3600),
        "30",
        "Seconds an accepted MSRP connection may stay bound to no session (no "
        "request naming one of the gateway's sessions, RFC 4975 section 5.4); "
        "then it is closed. 0: no limit.",
    ),
    Key(
        "msrp",
        "max_connections_per_address",
        _integer(1, 1000000),
        "50",
        "Most MSRP connections accepted from one source address; more are "
        "closed at once (logged once a minute per address).",
    ),
    Key(
        "msrp",
        "max_connections",
        _integer(1, 1000000),
        "2000",
        "Most MSRP connections accepted in all; more are closed at once.",
    ),
    Key(
        "msrp",
        "max_output_bytes",
        _integer(1024, 1 << 30),
        "1048576",
        "Octets of MSRP responses and REPORTs a connection may queue, beyond "
        "64 KiB, for a peer that sends requests and does not read the answers; "
        "beyond, the connection (and its sessions) is closed.",
    ),
    Key(
        "msrp",
        "keepalive_interval",
        _seconds(0, 3600),
        "30",
        "Seconds without anything received on a chat before the gateway "
        "probes the peer with a bodiless SEND (RFC 4975 section 7.1.1); no "
        "answer within transaction_timeout ends the chat; 0 turns it off.",
    ),
    # [xmpp]
    Key("xmpp", "server", _host, "127.0.0.1", "XMPP server accepting the component connections (XEP-0114)."),
    Key("xmpp", "port", _port, "5347", "Component port of the XMPP server."),
    Key(
        "xmpp",
        "user_domain",
        _hostname,
        None,
        "Component domain for SIP users inside XMPP rooms (their real JIDs).",
        required=True,
    ),
    Key(
        "xmpp",
        "room_domain",
        _hostname,
        None,
        "Component domain for rooms hosted by SIP conference focuses; unset "
        "disables XMPP users joining SIP rooms.",
    ),
    Key("xmpp", "secret", _secret, None, "Component secret shared with the XMPP server.", required=True, secret=True),
    Key(
        "xmpp",
        "queue_size",
        _integer(0, 1000000),
        "1000",
        "Stanzas held per domain while its component link is down; beyond it, senders get an error.",
    ),
    Key(
        "xmpp",
        "reconnect_max_delay",
        _seconds(1, 3600),
        "60",
        "Longest pause, in seconds, between reconnection attempts (exponential backoff with jitter).",
    ),
    Key(
        "xmpp",
        "write_timeout",
        _seconds(0, 3600),
        "60",
        "Seconds the XMPP server may leave the gateway's output unread once the "
        "socket to it is full (and more than 64 KiB wait in the gateway); "
        "meanwhile stanzas wait in the queue (queue_size), and beyond it the "
        "link is dropped and made again. 0: no limit.",
    ),
    # [rooms]
    Key(
        "rooms",
        "domain",
        _hostname,
        None,
        "SIP domain of the chat rooms the gateway hosts itself (RFC 7701): "
        "sip:NAME@DOMAIN is created by its first INVITE. Set it to [xmpp] "
        "room_domain and XMPP users reach the same room as NAME@DOMAIN; "
        "unset: no native rooms.",
    ),
    Key(
        "rooms",
        "allowed_creators",
        _creators,
        "*",
        "Who may create a room by joining one that does not exist yet, "
        "comma-separated: * (anyone), a domain (its users) or user@host; "
        "others get 403.",
    ),
    Key(
        "rooms",
        "persistent_rooms",
        _persistentRooms,
        "",
        "Rooms that exist from the start and stay when empty, one per line: "
        "NAME, then optionally its subject. Other rooms go with their last "
        "participant.",
    ),
    Key(
        "rooms",
        "max_occupants",
        _integer(0, 100000),
        "100",
        "Chat sessions per room; more INVITEs get 486; 0: no limit.",
    ),
    Key(
        "rooms",
        "history_size",
        _integer(0, 10000),
        "50",
        "Text messages kept per room and replayed, with their original "
        "DateTime, to each joining participant; 0 keeps none.",
    ),
    Key(
        "rooms",
        "reserved_nicks",
        _nicknames,
        "",
        "Nicknames no participant may take (RFC 7701 section 7.1: 425), "
        "comma-separated, compared as RFC 7700 says.",
    ),
    # [logging]
    Key("logging", "format", _choice("text", "json"), "text", "text: human-readable lines; json: one JSON object per line."),
    Key("logging", "file", _logFile, "-", "Log file; - is standard output (the journal under systemd)."),
    Key("logging", "level", _choice(*LOG_LEVELS), "info", "Lowest level logged for every subsystem."),
    Key("logging", "sip_level", _choice(*LOG_LEVELS), None, "Level for the SIP stack (debug shows message traces); default: level."),
    Key("logging", "msrp_level", _choice(*LOG_LEVELS), None, "Level for the MSRP stack; default: level."),
    Key("logging", "xmpp_level", _choice(*LOG_LEVELS), None, "Level for the XMPP component; default: level."),
    Key("logging", "interworking_level", _choice(*LOG_LEVELS), None, "Level for the interworking layer; default: level."),
)

SECTIONS: tuple[str, ...] = ("gateway", "sip", "msrp", "xmpp", "rooms", "logging")


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """
    The C{[gateway]} section: behaviour of the interworking layer.
    """

    muc_domains: tuple[str, ...]
    instant_rooms: bool
    history_size: int
    reflection_timeout: float
    reflection_timeout_status: int
    link_loss_grace: float
    shutdown_grace: float
    gc_thresholds: tuple[int, int, int]
    invites_per_user: int
    invites_per_room: int


@dataclass(frozen=True, slots=True)
class SIPConfig:
    """
    The C{[sip]} section: SIP transports, trust and outgoing credentials.
    """

    local_ip: str
    udp_port: int
    tcp_port: int
    tls_port: int
    tls_certificate: str | None
    tls_private_key: str | None
    tls_ca_file: str | None
    trusted_peers: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    trusted_tls_names: tuple[str, ...]
    auth_realm: str | None
    credentials_file: Credentials | None
    outbound_proxy: str | None
    static_routes: tuple[StaticRouteSpec, ...]
    username: str | None
    password: Secret | None
    session_expires: int
    min_se: int
    idle_timeout: float
    read_timeout: float
    max_connections_per_address: int
    max_connections: int
    max_output_bytes: int


@dataclass(frozen=True, slots=True)
class MSRPConfig:
    """
    The C{[msrp]} section: the MSRP listener, limits and relay.
    """

    local_ip: str
    port: int
    use_tls: bool
    tls_certificate: str | None
    tls_private_key: str | None
    transaction_timeout: float
    chunk_size: int
    max_message_size: int
    relay: str | None
    relay_username: str | None
    relay_password: Secret | None
    keepalive_interval: float
    unbound_timeout: float
    max_connections_per_address: int
    max_connections: int
    max_output_bytes: int


@dataclass(frozen=True, slots=True)
class XMPPConfig:
    """
    The C{[xmpp]} section: the XEP-0114 component links.
    """

    server: str
    port: int
    user_domain: str
    room_domain: str | None
    secret: Secret
    queue_size: int
    reconnect_max_delay: float
    write_timeout: float

    @property
    def domains(self) -> tuple[str, ...]:
        """
        The component domains served, one link each.
        """
        if self.room_domain is None:
            return (self.user_domain,)
        return (self.user_domain, self.room_domain)


@dataclass(frozen=True, slots=True)
class RoomsConfig:
    """
    The C{[rooms]} section: chat rooms the gateway hosts itself
    (docs/native-rooms.md); off while C{domain} is unset.
    """

    domain: str | None
    allowed_creators: tuple[str, ...]
    persistent_rooms: tuple[PersistentRoomSpec, ...]
    max_occupants: int
    history_size: int
    reserved_nicks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """
    The C{[logging]} section.

    @ivar levels: the level of each subsystem (C{sip}, C{msrp}, C{xmpp},
        C{interworking}), the default level filled in.
    """

    format: str
    file: str
    level: str
    levels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Config:
    """
    A whole, validated configuration.

    @ivar path: the file it was read from.
    """

    path: str
    gateway: GatewayConfig
    sip: SIPConfig
    msrp: MSRPConfig
    xmpp: XMPPConfig
    logging: LoggingConfig
    rooms: RoomsConfig


SUBSYSTEMS = ("sip", "msrp", "xmpp", "interworking")


def loadConfig(path: str) -> Config:
    """
    Read and validate a configuration file.

    @param path: the file to read.
    @return: the configuration.
    @raise ConfigError: listing every problem found, each naming file,
        section and key.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {getattr(e, 'strerror', None) or e}"]) from None
    return parseConfig(text, path)


def parseConfig(text: str, path: str) -> Config:
    """
    Validate configuration text.

    @param text: the INI text.
    @param path: the file name to use in error lines.
    @return: the configuration.
    @raise ConfigError: listing every problem found.
    """
    parser = configparser.ConfigParser(
        interpolation=None, strict=True, empty_lines_in_values=False,
        inline_comment_prefixes=None,
    )
    try:
        parser.read_string(text, source=path)
    except configparser.DuplicateOptionError as e:
        raise ConfigError(
            [f"{path}: [{e.section}] {e.option}: set twice (line {e.lineno})"]
        ) from None
    except configparser.DuplicateSectionError as e:
        raise ConfigError([f"{path}: [{e.section}]: section appears twice (line {e.lineno})"]) from None
    except configparser.Error as e:
        message = " ".join(str(e).split())
        raise ConfigError([f"{path}: not an INI file: {message}"]) from None

    problems: list[str] = []
    known = {(key.section, key.name): key for key in SCHEMA}
    for sectionName in parser.sections():
        if sectionName not in SECTIONS:
            problems.append(
                f"{path}: [{sectionName}]: unknown section (known: {', '.join(SECTIONS)})"
            )
            continue
        for name in parser[sectionName]:
            if (sectionName, name) not in known:
                problems.append(f"{path}: [{sectionName}] {name}: unknown key")

    values: dict[tuple[str, str], Any] = {}
    for key in SCHEMA:
        raw = parser.get(key.section, key.name, fallback=None)
        if raw is not None:
            raw = raw.strip()
        if raw is None or raw == "":
            if key.required:
                problems.append(f"{path}: [{key.section}] {key.name}: required, and not set")
                continue
            raw = key.default
        if raw is None:
            values[key.section, key.name] = None
            continue
        try:
            values[key.section, key.name] = key.parse(raw)
        except _Invalid as e:
            # The parsers of secret keys never put the value in their message.
            problems.append(f"{path}: [{key.section}] {key.name}: {e}")

    problems.extend(_crossCheck(values, path))
    if problems:
        raise ConfigError(problems)

    def section(name: str) -> dict[str, Any]:
        return {k: v for (s, k), v in values.items() if s == name}

    logging = section("logging")
    levels = {
        subsystem: logging.pop(f"{subsystem}_level") or logging["level"]
        for subsystem in SUBSYSTEMS
    }
    return Config(
        path=path,
        gateway=GatewayConfig(**section("gateway")),
        sip=SIPConfig(**section("sip")),
        msrp=MSRPConfig(**section("msrp")),
        xmpp=XMPPConfig(**section("xmpp")),
        logging=LoggingConfig(levels=levels, **logging),
        rooms=RoomsConfig(**section("rooms")),
    )


def _crossCheck(values: Mapping[tuple[str, str], Any], path: str) -> list[str]:
    """
    Rules that join several keys.
    """
    problems = []

    def missing(section: str, name: str, because: str) -> None:
        if values.get((section, name)) is None and (section, name) in values:
            problems.append(f"{path}: [{section}] {name}: required when {because}")

    if values.get(("sip", "tls_port")):
        missing("sip", "tls_certificate", "tls_port is set")
        missing("sip", "tls_private_key", "tls_port is set")
    if values.get(("sip", "trusted_tls_names")):
        missing("sip", "tls_ca_file", "trusted_tls_names is set")
    if values.get(("msrp", "use_tls")):
        missing("msrp", "tls_certificate", "use_tls is on")
        missing("msrp", "tls_private_key", "use_tls is on")
    if values.get(("sip", "password")) is not None:
        missing("sip", "username", "password is set")
    if values.get(("sip", "auth_realm")) is not None:
        missing("sip", "credentials_file", "auth_realm is set")
    if values.get(("sip", "credentials_file")) is not None:
        missing("sip", "auth_realm", "credentials_file is set")
    if values.get(("msrp", "relay_password")) is not None:
        missing("msrp", "relay_username", "relay_password is set")
    expires, minimum = values.get(("sip", "session_expires")), values.get(("sip", "min_se"))
    if expires and minimum is not None and expires < minimum:
        problems.append(
            f"{path}: [sip] session_expires: {expires} is below min_se ({minimum})"
        )
    if (
        values.get(("sip", "udp_port")) == 0
        and values.get(("sip", "tcp_port")) == 0
        and values.get(("sip", "tls_port")) == 0
    ):
        problems.append(f"{path}: [sip] udp_port: every SIP transport is off (udp_port, tcp_port, tls_port are 0)")
    user, room = values.get(("xmpp", "user_domain")), values.get(("xmpp", "room_domain"))
    if user is not None and user == room:
        problems.append(f"{path}: [xmpp] room_domain: must differ from user_domain ({user})")
    rooms = values.get(("rooms", "domain"))
    if rooms is not None and rooms == user:
        problems.append(f"{path}: [rooms] domain: must differ from [xmpp] user_domain ({user})")
    if rooms is not None and rooms in (values.get(("gateway", "muc_domains")) or ()):
        problems.append(
            f"{path}: [rooms] domain: {rooms} is also in [gateway] muc_domains"
        )
    return problems
