"""
Fuzz the SIP URI and header-value parsers one by one (C{stoxgw.sip.uri},
C{stoxgw.sip.headers}, and the REFER values of C{stoxgw.sip.refer}): the
values the dialog, subscription, REFER, session-timer and authentication
code parse lazily from messages that C{parseDatagram} already accepted.

Input: one byte choosing the parser (see L{PARSERS}), then the value,
decoded as C{parseHead} decodes header lines (UTF-8, surrogateescape).

Clean rejection: L{SIPURIError} (L{HeaderError} is one).  The accessors of
a parsed value (C{Via.rport}, C{NameAddr.expires}, C{Reason.cause}...) do
not raise at all, and a parsed value serializes to text that parses again
to an equal value.

Seeds: every header value of the RFC 4475 messages, given to each parser.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.sip import headers as H
    from stoxgw.sip import uri as U
    from stoxgw.sip.refer import parseReferSub, parseSipfrag


def _uri(text: str) -> None:
    uri = U.parseURI(text)
    if isinstance(uri, U.SIPURI):
        uri.secure, uri.numericHost, uri.hostport, uri.transport, uri.looseRouting
        uri.withoutHeaders()
        again = U.parseURI(uri.serialize())
        assert again == uri and again.identical(uri), (uri, again)
        hash(uri)
    else:
        assert U.parseURI(uri.serialize()) == uri


def _checkAddress(address: U.NameAddr) -> None:
    address.tag, address.isFocus, address.instanceID, address.expires
    address.withTag("fuzz1")


def _nameAddr(text: str) -> None:
    address = U.parseNameAddr(text)
    _checkAddress(address)
    again = U.parseNameAddr(address.serialize())
    assert again == address, (address, again)


def _nameAddrList(text: str) -> None:
    addresses = U.parseNameAddrList(text)
    for address in addresses:
        _checkAddress(address)
    again = U.parseNameAddrList(", ".join(a.serialize() for a in addresses))
    assert again == addresses, (addresses, again)


def _via(text: str) -> None:
    vias = H.parseVia(text)
    for via in vias:
        via.branch, via.hasMagicCookie, via.received, via.rport, via.sentBy
        via.withParameter("received", "192.0.2.1")
    again = H.parseVia(", ".join(via.serialize() for via in vias))
    assert again == vias, (vias, again)


def _cseq(text: str) -> None:
    cseq = H.CSeq.parse(text)
    assert H.CSeq.parse(cseq.serialize()) == cseq


def _contact(text: str) -> None:
    contacts = H.parseContact(text)
    for address in contacts.addresses:
        _checkAddress(address)
    again = H.parseContact(contacts.serialize())
    assert again == contacts, (contacts, again)


def _route(text: str) -> None:
    routes = H.parseRoute(text)
    again = H.parseRoute(", ".join(r.serialize() for r in routes))
    assert again == routes, (routes, again)


def _mediaType(text: str) -> None:
    media = H.MediaType.parse(text)
    media.mimeType, media.parameter("charset")
    assert H.MediaType.parse(media.serialize()) == media


def _event(text: str) -> None:
    event = H.Event.parse(text)
    event.id, event.matches(event)
    assert H.Event.parse(event.serialize()) == event


def _subscriptionState(text: str) -> None:
    state = H.SubscriptionState.parse(text)
    state.expires, state.reason, state.retryAfter
    assert H.SubscriptionState.parse(state.serialize()) == state


def _reasons(text: str) -> None:
    reasons = H.parseReasons(text)
    for reason in reasons:
        reason.cause, reason.text
    again = H.parseReasons(", ".join(r.serialize() for r in reasons))
    assert again == reasons, (reasons, again)


def _auth(text: str) -> None:
    header = H.AuthHeader.parse(text)
    header.isDigest, header.parameter("nonce"), header.parameter("realm")
    assert H.AuthHeader.parse(header.serialize()) == header


def _sessionExpires(text: str) -> None:
    value = H.SessionExpires.parse(text)
    value.refresher, value.withRefresher("uac")
    assert H.SessionExpires.parse(value.serialize()) == value


def _split(text: str) -> None:
    H.splitHeaderValues(text)


def _sipfrag(text: str) -> None:
    parseSipfrag(text.encode("utf-8", "surrogateescape"))


def _unquote(text: str) -> None:
    U.unquoteString(text)


def _focus(text: str) -> None:
    U.contactIsFocus(text)


#: What the first input byte chooses from (modulo its length).
PARSERS: list[Callable[[str], object]] = [
    _uri,
    _nameAddr,
    _nameAddrList,
    _via,
    _cseq,
    _contact,
    _route,
    H.parseContentLength,
    H.parseMaxForwards,
    H.parseExpires,
    H.parseCallID,
    H.parseTokenList,
    _mediaType,
    _event,
    _subscriptionState,
    _reasons,
    _auth,
    _sessionExpires,
    H.parseMinSE,
    _split,
    parseReferSub,
    _sipfrag,
    U.SIPURI.fromString,
    _unquote,
    _focus,
]


def testOneInput(data: bytes) -> None:
    """
    Give the value to the parser the first byte names.
    """
    if not data:
        return
    parse = PARSERS[data[0] % len(PARSERS)]
    text = data[1:].decode("utf-8", "surrogateescape")
    try:
        parse(text)
    except U.SIPURIError:
        pass


_HEADER_LINE = re.compile(rb"^[A-Za-z][A-Za-z0-9.!%*_+`'~-]*[ \t]*:(.*)$", re.M)


def seeds() -> list[bytes]:
    """
    Every header value of the RFC 4475 messages, for every parser; and
    their Request-URIs.
    """
    values: set[bytes] = set()
    for message in fixtures("sip/rfc4475/*.dat"):
        head = message.split(b"\r\n\r\n", 1)[0]
        values.update(m.group(1).strip() for m in _HEADER_LINE.finditer(head))
        startLine = head.split(b"\r\n", 1)[0].split(b" ")
        if len(startLine) == 3:
            values.add(startLine[1])
    return [bytes([index]) + value for value in sorted(values) for index in range(len(PARSERS))]


if __name__ == "__main__":
    main(testOneInput, seeds)
