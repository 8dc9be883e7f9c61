# -*- test-case-name: tests.interworking.test_addressing -*-
"""
Address mapping between SIP URIs and XMPP addresses (JIDs).

Implements SPEC section B: RFC 7247 section 6 (local parts, GRUU C{gr}
versus resourcepart), XEP-0106 JID escaping, and the room and occupant
conventions of RFC 7702 (Tables 1-3, examples 9, 17, 18, 32, 36).

Plain mapping (R-101..R-107; SPEC B.1 rows "Room", "User", "User device"):

  - L{sipToJID}: RFC 7247 section 6.4.  Drop the scheme, split at C{@},
    percent-decode, read as UTF-8, XEP-0106-escape what a JID localpart
    does not allow, append an AOR-bound GRUU's C{gr} as resourcepart.
  - L{jidToSIP}: RFC 7247 section 6.5.  XEP-0106-unescape, percent-encode
    what a SIP user part does not allow (RFC 3261 section 25.1 C{user}),
    resourcepart as C{gr} URI parameter.  Always C{sip:} (R-107: no SRV
    look-up for im/pres here, and C{sips:} is never produced, R-116).

Gateway conventions built on it:

  - Rooms, SIP user joins an XMPP MUC (RFC 7702 section 6, Gateway B):
    L{roomJIDFromRequestURI} checks the C{[gateway] muc_domains}
    allow-list and refuses C{sips:} (R-116, R-223).
  - Rooms, XMPP user joins a SIP room (RFC 7702 section 5, Gateway A):
    L{focusURIForRoomJID} / L{roomJIDForFocusURI} between the gateway's
    C{[xmpp] room_domain} and the focus URI.
  - Occupants (R-207): L{parseSIPIdentity} accepts C{;gr=} inside or
    after the angle brackets; L{occupantSIPIdentity} writes the canonical
    in-bracket form; L{occupantJIDFromSIP} / L{occupantSIPFromJID} map
    C{sip:room@domain;gr=nick} and C{room@domain/nick}.
  - Real JIDs of SIP users (docs/design.md, "real JID lives on the gateway's
    domain"; SPEC B.2 last row): L{realJIDForSIPUser} /
    L{sipUserForRealJID} under C{[xmpp] user_domain}.

Addresses on a gateway domain (rooms on C{room_domain}, users on
C{user_domain}) use the plain mapping when the SIP host I{is} that domain
(SPEC B.2: C{sip:romeo@example.org} -> C{romeo@example.org}).  Any other SIP
host is carried inside the localpart with XEP-0106 C{\\40} for C{@}
(XEP-0106 section 5.1, example 8: C{user\\40host@example.com}), so
C{sip:alice@atlanta.example} is C{alice\\40atlanta.example@sip.example}.
A SIP user part that itself contains C{@} (only possible percent-encoded)
always takes the second form, so the mapping stays one-to-one.

JIDs are Twisted's L{JID}, the type the XMPP layer uses (one JID type
throughout): L{makeJID} and L{parseJID} build them, so every JID made
here went through the RFC 6122 stringprep profiles (Nodeprep for
localparts, R-106: C{sip:Romeo@example.org} is C{romeo@example.org}; SIP
user parts are case-sensitive, RFC 3261 section 19.1.4, but the XMPP side
always folded them, and now the mapping says so itself) and the structure
and length checks of RFC 7622 section 3.  Not done: the PRECIS profiles of
RFC 7622 (Twisted implements the RFC 6122 ones); IP-literal domainparts
(C{[2001:db8::1]}), which Twisted's Nameprep refuses, are refused here
too (400 / C{jid-malformed}).

Sans-IO: standard library and Twisted's JID only.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from twisted.words.protocols.jabber.jid import JID, InvalidFormat

#: RFC 7622 section 3.1: each part of a JID is at most 1023 octets.
MAX_PART_OCTETS = 1023


class AddressError(ValueError):
    """
    An address that cannot be mapped, with the reply for each side.

    @ivar reason: human-readable explanation (for a SIP Warning or reason
        phrase, or an XMPP error C{<text/>}).
    @ivar sipStatus: the SIP final response code to send.
    @ivar xmppCondition: the RFC 6120 stanza error condition to send.
    """

    def __init__(self, reason: str, sipStatus: int, xmppCondition: str) -> None:
        super().__init__(reason, sipStatus, xmppCondition)
        self.reason = reason
        self.sipStatus = sipStatus
        self.xmppCondition = xmppCondition

    def __str__(self) -> str:
        return f"{self.reason} (SIP {self.sipStatus}, XMPP {self.xmppCondition})"


def _malformed(reason: str) -> AddressError:
    return AddressError(reason, 400, "jid-malformed")


# --- XEP-0106 -------------------------------------------------------------

#: XEP-0106 section 3.2: characters a localpart must not hold, and escapes.
_ESCAPES = {
    " ": "\\20",
    '"': "\\22",
    "&": "\\26",
    "'": "\\27",
    "/": "\\2f",
    ":": "\\3a",
    "<": "\\3c",
    ">": "\\3e",
    "@": "\\40",
}
_UNESCAPES = {v: k for k, v in _ESCAPES.items()}
_UNESCAPES["\\5c"] = "\\"
_ESCAPE_SEQUENCE = re.compile(r"\\(20|22|26|27|2f|3a|3c|3e|40|5c)")
#: The same in any case: Nodeprep case-folds a localpart, so C{\\2F} would
#: become the escape C{\\2f} if its backslash were left alone.
_ESCAPE_SEQUENCE_ANY_CASE = re.compile(_ESCAPE_SEQUENCE.pattern, re.IGNORECASE)


def escapeLocalpart(text: str) -> str:
    """
    XEP-0106 escaping of an unescaped localpart.

    The disallowed characters become C{\\hexhex}; a backslash is escaped
    (C{\\5c}) only where it would otherwise start one of the ten escape
    sequences (XEP-0106 section 4.1 rule 7, section 4.2 step 3, section
    4.3), so a plain C{\\} survives unchanged as RFC 7247 section 6.2
    expects.  (The table of section 5.1 escapes every backslash, e.g.
    C{c:\\net} -> C{c\\3a\\5cnet}; section 4.3 says C{foo\\bar} is left
    alone.  This follows section 4.3.)  A backslash before an upper-case
    variant (C{\\2F}) is escaped too, since Nodeprep (L{makeJID}) folds
    it to lower case: C{A\\2F} -> C{A\\5c2F}, prepared C{a\\5c2f}, which
    unescapes to C{a\\2f}, not C{a/}.

    @raise AddressError: leading or trailing space (XEP-0106 section 4.1 rule 6:
        C{\\20} must not start or end a localpart), 400 / C{jid-malformed}.
    """
    if text.startswith(" ") or text.endswith(" "):
        raise _malformed(f"localpart {text!r} starts or ends with a space")
    out = []
    for index, char in enumerate(text):
        if char == "\\" and _ESCAPE_SEQUENCE_ANY_CASE.match(text, index):
            out.append("\\5c")
        else:
            out.append(_ESCAPES.get(char, char))
    return "".join(out)


def unescapeLocalpart(text: str) -> str:
    """
    XEP-0106 unescaping: exactly the ten lowercase sequences, nothing else
    (XEP-0106 section 4.1 rule 3, section 4.3).
    """
    return _ESCAPE_SEQUENCE.sub(lambda match: _UNESCAPES[match.group(0)], text)


# --- percent-encoding (RFC 3261 section 25.1, RFC 3986 section 2.1) --------

_ALPHANUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_UNRESERVED = frozenset(_ALPHANUM + "-_.!~*'()")
#: RFC 3261 C{user}: unreserved / escaped / user-unreserved.
_USER_SAFE = _UNRESERVED | frozenset("&=+$,;?/")
#: RFC 3261 C{paramchar} minus C{escaped}.
_PARAM_CHARS = _UNRESERVED | frozenset("[]/:&+$")
_PERCENT = re.compile("%[0-9A-Fa-f]{2}")


def _percentEncode(text: str, safe: frozenset[str]) -> str:
    out = []
    for char in text:
        if char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    return "".join(out)


def _percentDecode(text: str, allowed: frozenset[str], what: str) -> str:
    data = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%":
            if not _PERCENT.match(text, index):
                raise _malformed(f"bad percent-escape in {what} {text!r}")
            data.append(int(text[index + 1 : index + 3], 16))
            index += 3
            continue
        if char not in allowed:
            raise _malformed(f"character {char!r} not allowed in {what} {text!r}")
        data.extend(char.encode("ascii"))
        index += 1
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"{what} {text!r} is not UTF-8") from None


def encodeUser(user: str) -> str:
    """
    Percent-encode a SIP user part: everything outside RFC 3261 C{user}
    (R-102, R-107; SPEC B.1 "Disallowed" for sip), non-ASCII as UTF-8
    octets, upper-case hex.
    """
    return _percentEncode(user, _USER_SAFE)


def encodeGR(value: str) -> str:
    """
    Percent-encode a C{gr} parameter value (a resourcepart or a nickname):
    only RFC 3986 unreserved characters and C{! * ' ( )} stay literal;
    spaces and non-ASCII become C{%HH} (R-104, R-207; SPEC B.2
    C{J%C3%BCli%20C}).
    """
    return _percentEncode(value, _UNRESERVED)


# --- JIDs (RFC 7622 section 3) ---------------------------------------------

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")


def _checkPart(text: str, what: str) -> None:
    if not text:
        raise _malformed(f"empty {what}")
    if len(text.encode("utf-8")) > MAX_PART_OCTETS:
        raise _malformed(f"{what} longer than {MAX_PART_OCTETS} octets")
    if _CONTROLS.search(text):
        raise _malformed(f"control character in {what} {text!r}")


def _checkDomain(domain: str) -> str:
    domain = domain[:-1] if domain.endswith(".") else domain
    _checkPart(domain, "domainpart")
    if any(char in domain for char in " @/\\\"'<>&") or ".." in domain:
        raise _malformed(f"bad domainpart {domain!r}")
    return domain.lower()


def makeJID(local: str | None, domain: str, resource: str | None = None) -> JID:
    """
    A JID from its parts, as the XMPP layer has it: Twisted's L{JID},
    whose constructor applies the RFC 6122 stringprep profiles (Nodeprep
    case-folds and NFKC-normalises the localpart, R-106; Nameprep the
    domainpart; Resourceprep the resourcepart) and refuses what they
    prohibit (space and C{" & ' / : < > @} in a localpart, control
    characters anywhere).  On top of it: no part empty (Twisted turns an
    empty localpart or resourcepart into none), none longer than
    L{MAX_PART_OCTETS} after preparation, the domainpart without a
    trailing dot.  The localpart is the escaped (wire) form.

    @raise AddressError: 400 / C{jid-malformed}.
    """
    # Checked before too, so that stringprep never runs on an overlong part.
    domain = _checkDomain(domain)
    if local is not None:
        _checkPart(local, "localpart")
    if resource is not None:
        _checkPart(resource, "resourcepart")
    try:
        jid = JID(tuple=(local, domain, resource))
    except (InvalidFormat, UnicodeError, IndexError) as e:
        # IndexError: Twisted's Nameprep on an empty label.
        raise _malformed(f"no JID from {(local, domain, resource)!r}: {e}") from None
    for given, prepared, what in (
        (local, jid.user, "localpart"),
        (resource, jid.resource, "resourcepart"),
    ):
        if given is not None:
            _checkPart(prepared or "", what)
    _checkPart(jid.host, "domainpart")
    return jid


def parseJID(text: str) -> JID:
    """
    Parse a JID: the resourcepart starts at the first C{/}, the localpart
    ends at the first C{@} before it (RFC 7622 section 3.2); then
    L{makeJID}.

    @raise AddressError: 400 / C{jid-malformed}.
    """
    bare, slash, resource = text.partition("/")
    local, at, domain = bare.partition("@")
    if not at:
        local, domain = "", local
    return makeJID(local if at else None, domain, resource if slash else None)


def withResource(jid: JID, resource: str | None) -> JID:
    """
    C{jid} with another resourcepart, or bare with L{None}.

    @raise AddressError: a resourcepart Resourceprep refuses, 400 /
        C{jid-malformed}.
    """
    return makeJID(jid.user, jid.host, resource)


# --- SIP URIs --------------------------------------------------------------

_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)")


@dataclass(frozen=True, slots=True)
class SIPAddress:
    """
    The parts of a C{sip:}/C{sips:} URI that address mapping uses; other
    URI parameters and headers are dropped (RFC 7247 section 6.4 keeps only
    the user, host and C{gr}).

    @ivar user: the percent-decoded user part, or L{None}.
    @ivar host: the host, lower-cased.
    @ivar gr: the percent-decoded value of a C{gr} parameter that has one
        (an AOR-bound GRUU, RFC 5627); a value-less C{gr} (a temporary
        GRUU) is not kept (R-104).
    @ivar secure: C{True} for C{sips:}.
    @ivar port: an explicit port, or L{None}.
    """

    user: str | None
    host: str
    gr: str | None = None
    secure: bool = False
    port: int | None = None

    @property
    def aor(self) -> SIPAddress:
        """
        This address without C{gr} and port: the address of record.
        """
        return SIPAddress(self.user, self.host, secure=self.secure)

    def withGR(self, gr: str | None) -> SIPAddress:
        """
        This address with another C{gr} value (or none).
        """
        return SIPAddress(self.user, self.host, gr, self.secure, self.port)

    def uri(self) -> str:
        """
        Serialize: C{sip:user@host[:port][;gr=value]}, user and C{gr}
        percent-encoded (L{encodeUser}, L{encodeGR}).
        """
        text = "sips:" if self.secure else "sip:"
        if self.user is not None:
            text += encodeUser(self.user) + "@"
        text += self.host
        if self.port is not None:
            text += f":{self.port}"
        if self.gr is not None:
            text += ";gr=" + encodeGR(self.gr)
        return text

    def __str__(self) -> str:
        return self.uri()


def _parseParameters(text: str) -> str | None:
    """
    Find the value of a valued C{gr} in C{;name[=value]...}.
    """
    found = None
    for item in text.split(";"):
        if not item:
            continue
        name, equals, value = item.partition("=")
        if name.strip().lower() == "gr" and equals:
            found = _percentDecode(value.strip(), _PARAM_CHARS, "gr parameter")
    return found


def parseSIPURI(text: str) -> SIPAddress:
    """
    Parse a C{sip:} or C{sips:} URI (RFC 3261 section 19.1).  The password,
    URI parameters other than C{gr}, and headers are dropped.

    @raise AddressError: C{tel:} and other schemes, 416 / C{not-acceptable}
        (RFC 3261 section 8.2.2.1); a malformed URI, 400 / C{jid-malformed}.
    """
    text = text.strip()
    scheme, colon, rest = text.partition(":")
    scheme = scheme.lower()
    if not colon or not scheme:
        raise _malformed(f"{text!r} is not a URI")
    if scheme not in ("sip", "sips"):
        raise AddressError(
            f"{scheme}: URIs have no XMPP equivalent", 416, "not-acceptable"
        )
    user = None
    userinfo, at, after = rest.partition("@")
    if at:
        if "@" in after:
            raise _malformed(f"{text!r} has more than one '@'")
        userinfo = userinfo.partition(":")[0]
        user = _percentDecode(userinfo, _USER_SAFE, "user part")
        if not user:
            raise _malformed(f"{text!r} has an empty user part")
    else:
        after = rest
    after, _, _ = after.partition("?")
    hostport, _, parameters = after.partition(";")
    match = _HOST.match(hostport)
    if match is None:
        raise _malformed(f"{text!r} has no valid host")
    port = None
    tail = hostport[match.end() :]
    if tail:
        if not tail.startswith(":") or not tail[1:].isdigit() or int(tail[1:]) > 65535:
            raise _malformed(f"{text!r} has a bad port")
        port = int(tail[1:])
    return SIPAddress(
        user,
        match.group(0).lower(),
        _parseParameters(parameters),
        scheme == "sips",
        port,
    )


def _readQuoted(text: str, index: int) -> int:
    index += 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index + 1
        index += 1
    raise _malformed(f"unterminated quoted string in {text!r}")


def parseSIPIdentity(text: str) -> SIPAddress:
    """
    Parse a SIP identity as found in a From/To/Contact header, a CPIM
    From/To header or a conference-info C{entity}: a bare URI or a
    name-addr C{["Display"] <uri>[;params]}.

    R-207: a C{;gr=} after the C{>} (the out-of-bracket form printed in
    RFC 7702 examples 2, 7, 17, ...; SPEC F.3) counts as if it were inside
    the brackets; when both are present, the in-bracket one wins.

    @raise AddressError: see L{parseSIPURI}.
    """
    text = text.strip()
    index = 0
    while index < len(text) and text[index] != "<":
        index = _readQuoted(text, index) if text[index] == '"' else index + 1
    if index == len(text):
        return parseSIPURI(text)
    end = text.find(">", index)
    if end < 0:
        raise _malformed(f"unterminated '<' in {text!r}")
    address = parseSIPURI(text[index + 1 : end])
    if address.gr is None:
        outside = _parseParameters(text[end + 1 :])
        if outside is not None:
            address = address.withGR(outside)
    return address


def _sipAddress(address: str | SIPAddress) -> SIPAddress:
    return address if isinstance(address, SIPAddress) else parseSIPIdentity(address)


def _jid(address: str | JID) -> JID:
    return address if isinstance(address, JID) else parseJID(address)


# --- RFC 7247 sections 6.4 and 6.5 -----------------------------------------


def sipToJID(address: str | SIPAddress) -> JID:
    """
    RFC 7247 section 6.4 (R-105): C{sip:f%C3%BC@sip.example} ->
    C{fü@sip.example}, C{sip:o'malley@sip.example} ->
    C{o\\27malley@sip.example}, C{sip:foo@sip.example;gr=bar} ->
    C{foo@sip.example/bar}.  The port and other parameters are dropped.

    C{sips:} is mapped like C{sip:}; callers handling a request refuse it
    first (R-116, see L{roomJIDFromRequestURI}).

    @raise AddressError: see L{parseSIPURI}; a result that is no valid JID,
        400 / C{jid-malformed}.
    """
    address = _sipAddress(address)
    local = None if address.user is None else escapeLocalpart(address.user)
    return makeJID(local, address.host, address.gr)


def _sipHost(domain: str) -> str:
    if domain.isascii():
        return domain
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise _malformed(f"domainpart {domain!r} is no IDN host name") from None


def jidToSIP(address: str | JID) -> SIPAddress:
    """
    RFC 7247 section 6.5 (R-107): C{m\\26m@xmpp.example} ->
    C{sip:m&m@xmpp.example}, C{tschüss@xmpp.example} ->
    C{sip:tsch%C3%BCss@xmpp.example}, C{baz@xmpp.example/qux} ->
    C{sip:baz@xmpp.example;gr=qux}.  An internationalised domainpart
    becomes its A-label form.  Serialize the result with
    L{SIPAddress.uri}.

    @raise AddressError: a malformed JID, 400 / C{jid-malformed}.
    """
    jid = _jid(address)
    user = None if jid.user is None else unescapeLocalpart(jid.user)
    return SIPAddress(user, _sipHost(jid.host), jid.resource)


# --- rooms ------------------------------------------------------------------


def roomJIDFromRequestURI(
    requestURI: str | SIPAddress, mucDomains: Collection[str] = ()
) -> JID:
    """
    Gateway B (RFC 7702 section 6.1): the MUC room a SIP INVITE's
    Request-URI names, C{sip:capulet@rooms.example.com} ->
    C{capulet@rooms.example.com} (SPEC B.1 "Room").

    @param mucDomains: the C{[gateway] muc_domains} allow-list; empty
        allows every domain.
    @raise AddressError: C{sips:} (R-116, R-223), 403 / C{forbidden};
        no user part, 484 / C{jid-malformed}; a domain outside
        C{mucDomains}, 403 / C{forbidden}; see also L{sipToJID}.
    """
    address = _sipAddress(requestURI)
    if address.secure:
        raise AddressError(
            "SIPS requests are not translated to XMPP (RFC 7247 section 8)",
            403,
            "forbidden",
        )
    if address.user is None:
        raise AddressError(f"{address.uri()} names no room", 484, "jid-malformed")
    room = sipToJID(address.aor)
    allowed = {_checkDomain(domain) for domain in mucDomains}
    if allowed and room.host not in allowed:
        raise AddressError(
            f"rooms on {room.host} are not served by this gateway",
            403,
            "forbidden",
        )
    return room


def requestURIFromRoomJID(room: str | JID) -> SIPAddress:
    """
    The room's SIP URI for a MUC room JID, the inverse of
    L{roomJIDFromRequestURI} (the URI Gateway B answers as, and the
    C{entity} of its conference-info).

    @raise AddressError: no localpart, 400 / C{jid-malformed}.
    """
    jid = _jid(room)
    if jid.user is None:
        raise _malformed(f"{jid} is no room address")
    return jidToSIP(withResource(jid, None))


def _hostedJID(address: SIPAddress, gatewayDomain: str) -> JID:
    if address.user is None:
        raise AddressError(f"{address.uri()} has no user part", 484, "jid-malformed")
    gatewayDomain = _checkDomain(gatewayDomain)
    host = _checkDomain(address.host)
    user = address.user
    if host != gatewayDomain or "@" in user:
        user = f"{user}@{host}"
    return makeJID(escapeLocalpart(user), gatewayDomain, address.gr)


def _hostedSIP(jid: JID, gatewayDomain: str) -> SIPAddress:
    gatewayDomain = _checkDomain(gatewayDomain)
    if jid.host != gatewayDomain or jid.user is None:
        raise AddressError(
            f"{jid} is not an address on {gatewayDomain}", 404, "item-not-found"
        )
    user, at, host = unescapeLocalpart(jid.user).rpartition("@")
    if not at:
        return SIPAddress(host or None, _sipHost(gatewayDomain), jid.resource)
    if not user:
        raise _malformed(f"{jid} has an empty SIP user part")
    if _HOST.fullmatch(host) is None:
        raise _malformed(f"{jid} names no valid SIP host")
    return SIPAddress(user, host.lower(), jid.resource)


def roomJIDForFocusURI(focusURI: str | SIPAddress, roomDomain: str) -> JID:
    """
    Gateway A: the MUC room JID, on the gateway's C{[xmpp] room_domain},
    that stands for a SIP conference focus URI (RFC 7701 section 2: the
    conference URI is the chat room URI).

    A focus on C{roomDomain} itself maps plainly, C{sip:montague@chat.example.org}
    -> C{montague@chat.example.org} (SPEC B.1 "Room"); any other focus is
    C{montague\\40conf.example@chat.example.org}.

    @raise AddressError: see L{sipToJID}; no user part, 484 /
        C{jid-malformed}.
    """
    return _hostedJID(_sipAddress(focusURI).aor, roomDomain)


def focusURIForRoomJID(room: str | JID, roomDomain: str) -> SIPAddress:
    """
    Gateway A (RFC 7702 section 5.1, Table 1): the SIP Request-URI and To
    for an XMPP user's join to C{room@roomDomain/nick}, the inverse of
    L{roomJIDForFocusURI}; the resourcepart (nick) is dropped.

    @raise AddressError: a JID not on C{roomDomain} or without localpart,
        404 / C{item-not-found}; see also L{parseJID}.
    """
    return _hostedSIP(withResource(_jid(room), None), roomDomain)


# --- occupants (R-207) -------------------------------------------------------


def occupantJIDFromSIP(identity: str | SIPAddress) -> JID:
    """
    Occupant identity, SIP -> XMPP (RFC 7702 Tables 2/3; SPEC B.1
    "Occupant"): C{<sip:montague@chat.example.org;gr=Romeo>} or the
    out-of-bracket C{<sip:montague@chat.example.org>;gr=Romeo} (R-207) ->
    C{montague@chat.example.org/Romeo}.

    @raise AddressError: no C{gr} (no nickname) or no user part, 400 /
        C{jid-malformed}; see also L{parseSIPIdentity}.
    """
    address = _sipAddress(identity)
    if address.gr is None:
        raise _malformed(f"{address.uri()} carries no gr nickname")
    if address.user is None:
        raise _malformed(f"{address.uri()} names no room")
    return withResource(sipToJID(address.aor), address.gr)


def occupantSIPFromJID(occupant: str | JID) -> SIPAddress:
    """
    Occupant identity, XMPP -> SIP: C{capulet@rooms.example.com/Romeo} ->
    C{sip:capulet@rooms.example.com;gr=Romeo} (R-207, R-213).  Write it
    with L{occupantSIPIdentity} to get the canonical in-bracket form.

    @raise AddressError: no localpart or no resourcepart, 400 /
        C{jid-malformed}.
    """
    jid = _jid(occupant)
    roomAndNick(jid)
    return jidToSIP(jid)


def occupantSIPIdentity(room: str | SIPAddress, nick: str) -> str:
    """
    The canonical occupant identity of R-207, in brackets with C{gr}
    inside: C{<sip:montague@chat.example.org;gr=J%C3%BCli%20C>} (SPEC B.2;
    RFC 3862 section 4.1 allows nothing after the C{>} of a CPIM From/To).

    @param room: the room's SIP URI (any C{gr} or port is replaced).
    @raise AddressError: empty or overlong nickname, 400 / C{jid-malformed}.
    """
    _checkPart(nick, "nickname")
    return f"<{_sipAddress(room).aor.withGR(nick).uri()}>"


def roomAndNick(occupant: str | JID) -> tuple[JID, str]:
    """
    Split an occupant JID C{room@service/nick} into the room's bare JID and
    the nickname (XEP-0045 section 7.2.1: a join without a nickname is
    answered with C{jid-malformed}).

    @raise AddressError: no localpart or no resourcepart, 400 /
        C{jid-malformed}.
    """
    jid = _jid(occupant)
    if jid.user is None:
        raise _malformed(f"{jid} is no room address")
    if jid.resource is None:
        raise _malformed(f"{jid} carries no nickname")
    return withResource(jid, None), jid.resource


# --- SIP users inside XMPP rooms (Gateway B real JIDs) ----------------------


def realJIDForSIPUser(
    user: str | SIPAddress, userDomain: str, resource: str | None = None
) -> JID:
    """
    The real JID under which Gateway B puts a SIP user into a MUC room
    (docs/design.md; R-206).  RFC 7247 section 6.4 with the gateway's
    C{[xmpp] user_domain}: C{sip:romeo@example.org;gr=dr4hcr0st3lup4c} with
    C{userDomain="example.org"} -> C{romeo@example.org/dr4hcr0st3lup4c}
    (SPEC B.2); a user of another SIP domain becomes
    C{alice\\40atlanta.example@example.org/...}.

    The resourcepart is the AOR-bound GRUU's C{gr} (R-104; a temporary GRUU
    is never used), else C{resource}, else none.

    @raise AddressError: no user part, 484 / C{jid-malformed}; see also
        L{parseSIPIdentity}.
    """
    address = _sipAddress(user)
    gr = address.gr if address.gr is not None else resource
    return _hostedJID(address.aor.withGR(gr), userDomain)


def sipUserForRealJID(real: str | JID, userDomain: str) -> SIPAddress:
    """
    The SIP user (AOR, with the resourcepart as C{gr}) behind a real JID
    made by L{realJIDForSIPUser}.

    @raise AddressError: a JID not on C{userDomain} or without localpart,
        404 / C{item-not-found}.
    """
    return _hostedSIP(_jid(real), userDomain)
