# -*- test-case-name: tests.formats.test_hostport -*-
"""
C{host [":" port]} as SIP URIs (RFC 3261 section 25.1, C{hostport}), MSRP
URIs (RFC 4975 section 9, the RFC 3986 C{authority} after its userinfo)
and the configuration's static routes write it: where the host ends and
whether it is an IP address.  One place for it, since C{sip} and C{msrp}
never import each other (docs/design.md "Layers").

What differs stays with each caller: the grammar of host I{names}
(RFC 3261 C{hostname}, RFC 3986 C{reg-name}), which it passes in, the
port's range, and the words of the errors, which it chooses by the
L{HostPortError}'s C{reason}.

Pure, standard library only.
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "AFTER_BRACKET",
    "BAD_IPV4",
    "BAD_IPV6",
    "BAD_NAME",
    "EMPTY",
    "NOT_IPV6",
    "UNCLOSED",
    "HostPortError",
    "checkHost",
    "splitHostPort",
]

#: L{HostPortError.reason}: a C{"["} without its C{"]"}.
UNCLOSED = "unclosed ["
#: L{HostPortError.reason}: text other than C{":" port} after the C{"]"}.
AFTER_BRACKET = "text after ]"
#: L{HostPortError.reason}: the brackets hold no IPv6 address (no C{":"}).
NOT_IPV6 = "no IPv6 address in brackets"
#: L{HostPortError.reason}: the host is empty.
EMPTY = "empty host"
#: L{HostPortError.reason}: a host with a C{":"} is not an IPv6 address.
BAD_IPV6 = "invalid IPv6 address"
#: L{HostPortError.reason}: four groups of digits are not an IPv4 address.
BAD_IPV4 = "invalid IPv4 address"
#: L{HostPortError.reason}: a name outside the caller's grammar.
BAD_NAME = "invalid host name"

#: Text that can only be meant as an IPv4 address (RFC 3261
#: C{IPv4address}: four groups of one to three digits).
_IPV4_LIKE_RE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}\Z")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
#: A valid one: what L{ipaddress.IPv4Address} accepts (decimal octets up to
#: 255, no leading zeros), without building the address.
_IPV4_RE = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}\Z")


class HostPortError(ValueError):
    """
    Text is not C{host [":" port]}, or the host is not a valid one.

    @ivar reason: What is wrong: L{UNCLOSED}, L{AFTER_BRACKET},
        L{NOT_IPV6} or L{EMPTY} from L{splitHostPort}; L{BAD_IPV6},
        L{BAD_IPV4} or L{BAD_NAME} from L{checkHost}.  Each caller puts it
        in its own words.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def splitHostPort(
    text: str, lastColon: bool = False, ipv6InBrackets: bool = True
) -> tuple[str, str | None]:
    """
    Split C{host [":" port]}, the host an C{"[" IPv6 "]"} reference or
    text without brackets.

    Nothing is checked beyond the brackets and an empty host: the host is
    for L{checkHost}, the port text for the caller's port rule.  Checked
    in this order: L{UNCLOSED}, L{AFTER_BRACKET}, L{NOT_IPV6}, L{EMPTY}.

    @param text: The text, e.g. C{"example.com:5060"} or C{"[::1]:2855"}.
    @param lastColon: Whether a host without brackets ends at the last
        C{":"} rather than the first.  No valid host without brackets holds
        a C{":"} (neither RFC 3261 C{hostname} / C{IPv4address} nor RFC 3986
        C{reg-name} / C{IPv4address} has one, nor has a port), so the two
        differ only on invalid text: with the last, C{"::1:2855"} reads as
        host C{"::1"} and port C{"2855"} (MSRP URIs always read it so).
    @param ipv6InBrackets: Whether the brackets must hold an IPv6 address
        (a C{":"}); if not, they may hold any host, for the caller to check
        (the configuration's static routes take C{[192.0.2.1]}).
    @return: The host (without brackets) and the text after the C{":"} that
        ends it (possibly empty), or L{None} when there is no C{":"}.
    @raise HostPortError: The brackets or the host are wrong.
    """
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise HostPortError(UNCLOSED)
        host = text[1:close]
        port: str | None = None
        if close + 1 < len(text):
            if text[close + 1] != ":":
                raise HostPortError(AFTER_BRACKET)
            port = text[close + 2 :]
        if ":" not in host and ipv6InBrackets:
            raise HostPortError(NOT_IPV6)
        if not host:
            raise HostPortError(EMPTY)
        return host, port
    if lastColon:
        host, colon, after = text.rpartition(":")
        if not colon:
            host = after
    else:
        host, colon, after = text.partition(":")
    if not host:
        raise HostPortError(EMPTY)
    return host, after if colon else None


def checkHost(
    host: str, names: re.Pattern[str], compressed: bool = False
) -> str | None:
    """
    Check a host (without brackets): an IP address, or a name.

    A host with a C{":"} is meant as an IPv6 address; one of four
    dot-separated groups of one to three digits as an IPv4 address (RFC
    3261 C{IPv4address}); anything else is a name, which must match the
    caller's grammar.

    @param host: The host.
    @param names: The caller's grammar of host names (RFC 3261 C{hostname},
        RFC 3986 C{reg-name}), which the whole name must match.
    @param compressed: Whether to return an IPv6 address in its RFC 5952
        compressed form (for comparing addresses), rather than as written.
    @return: The address (an IPv4 address has one form only), or L{None}
        for a name.
    @raise HostPortError: L{BAD_IPV6}, L{BAD_IPV4} or L{BAD_NAME}.
    """
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise HostPortError(BAD_IPV6) from None
        return address.compressed if compressed else host
    # Only text ending in a digit can be four groups of digits.
    if not host[-1:].isdigit() or _IPV4_LIKE_RE.match(host) is None:
        if names.fullmatch(host) is None:
            raise HostPortError(BAD_NAME)
        return None
    if _IPV4_RE.match(host) is None:
        raise HostPortError(BAD_IPV4)
    return host
