"""
Fuzz the MSRP value parsers one by one: URIs and paths
(C{stoxgw.msrp.uri}, RFC 4975 section 6), C{Byte-Range}, C{Status} and the
RFC 4976 digest parameter lists (C{stoxgw.msrp.message}), and a relay's
C{WWW-Authenticate} challenge (L{DigestChallenge.fromParameters}).

Input: one byte choosing the parser (see L{PARSERS}), then the value as
the MSRP parser decodes header values (UTF-8, surrogateescape).

Clean rejection: the documented error of each: L{MSRPURIError} for URIs
and paths, C{ValueError} for the header values (the typed accessors turn
it into a 400), L{RelayChallengeError} for challenges.  A parsed value
serializes to text that parses again to an equal value.

Seeds: the values of the header fields of C{tests/fixtures/msrp}.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.msrp.message import ByteRange, Status, parseAuthParameters
    from stoxgw.msrp.relay import DigestChallenge, RelayChallengeError
    from stoxgw.msrp.uri import MSRPURI, MSRPURIError, parsePath, serializePath


def _uri(text: str) -> None:
    try:
        uri = MSRPURI.fromString(text)
    except MSRPURIError:
        return
    uri.secure, uri.numericHost, hash(uri)
    again = MSRPURI.fromString(uri.serialize())
    assert again == uri and again.comparisonKey() == uri.comparisonKey(), (uri, again)


def _path(text: str) -> None:
    try:
        path = parsePath(text)
    except MSRPURIError:
        return
    assert parsePath(serializePath(path)) == path


def _byteRange(text: str) -> None:
    try:
        value = ByteRange.fromString(text)
    except ValueError:
        return
    assert ByteRange.fromString(value.serialize()) == value, value


def _status(text: str) -> None:
    try:
        value = Status.fromString(text)
    except ValueError:
        return
    assert Status.fromString(value.serialize()) == value, value


def _auth(text: str, hasScheme: bool = True) -> None:
    try:
        parameters = parseAuthParameters(text, hasScheme)
    except ValueError:
        return
    parameters.get("nonce")
    if hasScheme:
        try:
            DigestChallenge.fromParameters(parameters)
        except RelayChallengeError:
            pass


def _authInfo(text: str) -> None:
    _auth(text, False)


#: What the first input byte chooses from (modulo its length).
PARSERS: list[Callable[[str], None]] = [
    _uri,
    _path,
    _byteRange,
    _status,
    _auth,
    _authInfo,
]


def testOneInput(data: bytes) -> None:
    """
    Give the value to the parser the first byte names.
    """
    if not data:
        return
    PARSERS[data[0] % len(PARSERS)](data[1:].decode("utf-8", "surrogateescape"))


_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9-]*:[ \t]*(.*?)\r?$", re.M)


def seeds() -> list[bytes]:
    """
    Every header value of the MSRP fixtures, for every parser.
    """
    values: set[bytes] = set()
    for message in fixtures("msrp/*"):
        head = message.split(b"\r\n\r\n", 1)[0]
        values.update(m.group(1) for m in _HEADER_LINE.finditer(head))
    return [bytes([index]) + value for value in sorted(values) for index in range(len(PARSERS))]


if __name__ == "__main__":
    main(testOneInput, seeds)
