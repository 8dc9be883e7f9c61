# -*- test-case-name: tests.formats.test_conferenceinfo -*-
"""
RFC 4575 C{application/conference-info+xml}: the conference state document
carried by NOTIFYs of the C{conference} event package, which RFC 7702 maps
to and from the MUC roster (SPEC D.7 R-176..R-180, R-016, R-036, R-213,
R-214, R-217, table E.5).

Four parts:

  - the model: L{ConferenceInfo} and its parts (L{ConferenceDescription},
    L{HostInfo}, L{ConferenceState}, L{Users}, L{User}, L{Endpoint},
    L{Media}, sidebars), frozen dataclasses in which C{None} means "element
    absent" (in a partial document: unchanged);
  - L{ConferenceInfo.parse}: strict (namespace, required attributes, the
    RFC 4575 §6 enumerations and value types, unique keys, RFC 4575 §4.4
    state consistency) and defensive (no DTD at all, so no entity can be
    declared or expanded; bounded size and nesting depth; UTF-8 only).
    Elements in other namespaces are never an error: they are kept as
    L{Extension}s on the conference, its description, users, endpoints and
    media, and ignored elsewhere. Tolerated: child elements in any order
    (RFC 7702 Example 9 puts C{<roles>} before C{<associated-aors>}),
    attributes the schema does not define (ignored), timestamps without
    offset (read as UTC, which RFC 4575 §5.7.2 recommends). Stricter than
    the §6 schema, as the prose requires: C{version} on the root (§4.3) and
    C{entity} on users and endpoints (their keys, §4.5) are mandatory;
  - L{ConferenceInfo.toBytes}: deterministic serialization laid out as in
    the RFC 4575 §7 examples (conference-info namespace as the default
    namespace, schema element order, CRLF line ends), with the RFC 6501
    XCON C{nickname} attribute (RFC 7702 §7) as C{xcon:nickname};
  - L{applyNotification} (subscriber side, RFC 4575 §4.6: version ordering,
    partial merge by keys, gap detection) and L{diff} (notifier side: two
    full states to one partial document; a nick change is the deletion of
    the old user and the addition of the new one, R-213).

Sans-IO: standard library only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Iterable,
    NamedTuple,
    Protocol,
    TypeVar,
)
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from stoxgw.formats._xml import checkXMLOctets
from stoxgw.formats.cpim import formatDateTime, parseDateTime

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: RFC 4575 §4.2: the document namespace.
CONFERENCE_INFO_NAMESPACE = "urn:ietf:params:xml:ns:conference-info"

#: RFC 6501: the XCON extension namespace (its C{nickname} attribute of
#: C{<user>} carries the nickname, RFC 7702 §7).
XCON_NAMESPACE = "urn:ietf:params:xml:ns:xcon-conference-info"

#: RFC 4575 §9.2: the media type.
CONFERENCE_INFO_CONTENT_TYPE = "application/conference-info+xml"

#: RFC 4575 §3.1: the event package name.
CONFERENCE_EVENT_PACKAGE = "conference"

#: Largest document accepted, in octets.
MAX_DOCUMENT_SIZE = 262144

#: Deepest element nesting accepted (the RFC 4575 §7.2 example needs 6;
#: each level of C{<sidebars-by-val>} adds 2).
MAX_DEPTH = 24

#: RFC 4575 §5.2: C{version} is an C{xs:unsignedInt}.
MAX_VERSION = 4294967295

_TAG = "{" + CONFERENCE_INFO_NAMESPACE + "}"
_NICKNAME = "{" + XCON_NAMESPACE + "}nickname"
_CRLF = "\r\n"
_INDENT = "  "
_UNSIGNED_RE = re.compile(r"\+?[0-9]{1,10}")
_NAIVE_DATETIME_RE = re.compile(r"-?[0-9]{4,}-[0-9]{2}-[0-9]{2}T[0-9:.]+")
# XML 1.0 Char production, for what the serializer writes.
_XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

_T = TypeVar("_T")
_E = TypeVar("_E", bound=Enum)
_D = TypeVar("_D", bound="DataclassInstance")
_C = TypeVar("_C", bound="_Container")


class ConferenceInfoError(Exception):
    """
    A conference-info document is malformed (RFC 4575 §4.1: it MUST be
    well-formed and valid).

    @ivar reason: what is wrong, for logs and error replies.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ElementState(Enum):
    """
    RFC 4575 §4.4: the C{state} attribute of the elements that take part in
    partial notifications; absent means C{full}.
    """

    FULL = "full"
    PARTIAL = "partial"
    DELETED = "deleted"


class EndpointStatus(Enum):
    """
    RFC 4575 §5.7.3: an endpoint's status.
    """

    PENDING = "pending"
    DIALING_OUT = "dialing-out"
    DIALING_IN = "dialing-in"
    ALERTING = "alerting"
    ON_HOLD = "on-hold"
    CONNECTED = "connected"
    MUTED_VIA_FOCUS = "muted-via-focus"
    DISCONNECTING = "disconnecting"
    DISCONNECTED = "disconnected"


class JoiningMethod(Enum):
    """
    RFC 4575 §5.7.4: how an endpoint joined.
    """

    DIALED_IN = "dialed-in"
    DIALED_OUT = "dialed-out"
    FOCUS_OWNER = "focus-owner"


class DisconnectionMethod(Enum):
    """
    RFC 4575 §5.7.6: how an endpoint left (table E.5: C{departed} for an
    unavailable presence, C{booted} for kicks and bans, C{failed} for
    technical errors).
    """

    DEPARTED = "departed"
    BOOTED = "booted"
    FAILED = "failed"
    BUSY = "busy"


class MediaStatus(Enum):
    """
    RFC 4575 §5.8.5: a media stream's direction, seen from the participant.
    """

    RECVONLY = "recvonly"
    SENDONLY = "sendonly"
    SENDRECV = "sendrecv"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class Extension:
    """
    An element from another namespace (the schema's C{xs:any
    namespace="##other"}), kept as self-contained markup: its own namespace
    declarations, no surrounding whitespace.

    @ivar tag: the element name in ElementTree form, C{{namespace}local}.
    @ivar markup: the element, serialized.
    """

    tag: str
    markup: str

    @classmethod
    def fromElement(cls, element: ElementTree.Element) -> Extension:
        """
        Keep C{element} (its tail is not part of it).
        """
        copy = ElementTree.Element(element.tag, dict(element.attrib))
        copy.text = element.text
        copy.extend(list(element))
        return cls(element.tag, ElementTree.tostring(copy, encoding="unicode"))


@dataclass(frozen=True, slots=True)
class Execution:
    """
    RFC 4575 §5.7.2, §5.7.5, §5.7.7: C{execution-type} (C{<referred>},
    C{<joining-info>}, C{<disconnection-info>}, C{<modified>}).

    @ivar when: when it happened (a timestamp without offset reads as UTC).
    @ivar reason: why, preferably an RFC 3326 Reason header value.
    @ivar by: the URI of who caused it.
    """

    when: datetime | None = None
    reason: str | None = None
    by: str | None = None


@dataclass(frozen=True, slots=True)
class URIEntry:
    """
    RFC 4575 §5.3.1: an C{<entry>} of a C{uris-type} list (key: C{uri}).

    @ivar uri: the URI.
    @ivar displayText: a description for humans.
    @ivar purpose: what accessing it does (C{participation}, C{streaming},
        C{web-page}, C{recording}, C{event}...).
    @ivar modified: who changed it, when, why.
    """

    uri: str
    displayText: str | None = None
    purpose: str | None = None
    modified: Execution | None = None


@dataclass(frozen=True, slots=True)
class URIs:
    """
    RFC 4575 §6 C{uris-type}: C{<conf-uris>}, C{<service-uris>},
    C{<associated-aors>}, the host's C{<uris>} and C{<sidebars-by-ref>}.

    @ivar entries: the entries, in document order.
    @ivar state: only C{<sidebars-by-ref>} may be partial or deleted (RFC
        4575 §4.4).
    """

    entries: tuple[URIEntry, ...] = ()
    state: ElementState = ElementState.FULL


@dataclass(frozen=True, slots=True)
class AvailableMedia:
    """
    RFC 4575 §5.3.4: one stream the conference offers (key: C{label}).

    @ivar label: the stream identifier, as the SDP C{label} attribute.
    @ivar type: the SDP media type (C{audio}, C{message}...).
    @ivar displayText: a description for humans.
    @ivar status: the direction offered.
    """

    label: str
    type: str
    displayText: str | None = None
    status: MediaStatus | None = None


@dataclass(frozen=True, slots=True)
class ConferenceDescription:
    """
    RFC 4575 §5.3: the conference as a whole. Atomic in partial
    notifications: a new one replaces the old one entirely.

    @ivar subject: the room subject (RFC 7702 Table 2; R-217).
    @ivar keywords: space-separated tokens, split.
    @ivar maximumUserCount: a hint of how many users may join.
    @ivar availableMedia: the streams offered.
    @ivar extensions: elements from other namespaces.
    """

    displayText: str | None = None
    subject: str | None = None
    freeText: str | None = None
    keywords: tuple[str, ...] | None = None
    confURIs: URIs | None = None
    serviceURIs: URIs | None = None
    maximumUserCount: int | None = None
    availableMedia: tuple[AvailableMedia, ...] | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True, slots=True)
class HostInfo:
    """
    RFC 4575 §5.4: who hosts the conference.
    """

    displayText: str | None = None
    webPage: str | None = None
    uris: URIs | None = None


@dataclass(frozen=True, slots=True)
class ConferenceState:
    """
    RFC 4575 §5.5: overall state.

    @ivar userCount: how many users take part (may exceed the users listed).
    @ivar active: whether the conference is active.
    @ivar locked: whether no one else may join.
    """

    userCount: int | None = None
    active: bool | None = None
    locked: bool | None = None


@dataclass(frozen=True, slots=True)
class SIPDialogID:
    """
    RFC 4575 §5.7.9: the C{<call-info><sip>} dialog identifier.
    """

    callID: str
    fromTag: str
    toTag: str
    displayText: str | None = None


@dataclass(frozen=True, slots=True)
class Media:
    """
    RFC 4575 §5.8: one media stream of an endpoint (key: C{id}).

    @ivar id: unique within the endpoint.
    @ivar type: the SDP media type (RFC 7702: C{message}).
    @ivar label: the conference-wide stream label.
    @ivar srcID: the source identifier (RTP SSRC).
    @ivar extensions: elements from other namespaces.
    """

    id: str
    displayText: str | None = None
    type: str | None = None
    label: str | None = None
    srcID: str | None = None
    status: MediaStatus | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """
    RFC 4575 §5.7: one device or signalling session of a user (key:
    C{entity}; RFC 7702 uses the occupant URI C{sip:room@host;gr=nick}).

    @ivar state: full, partial (only in a partial parent) or deleted.
    @ivar callInfo: the SIP dialog, if disclosed.
    @ivar extensions: elements from other namespaces.
    """

    entity: str
    state: ElementState = ElementState.FULL
    displayText: str | None = None
    referred: Execution | None = None
    status: EndpointStatus | None = None
    joiningMethod: JoiningMethod | None = None
    joiningInfo: Execution | None = None
    disconnectionMethod: DisconnectionMethod | None = None
    disconnectionInfo: Execution | None = None
    media: tuple[Media, ...] = ()
    callInfo: SIPDialogID | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True, slots=True)
class User:
    """
    RFC 4575 §5.6: one participant (key: C{entity}, unique in the
    conference; RFC 7702 keys it on the nickname, so a nick change is a
    different user, R-213).

    @ivar state: full, partial (only in a partial parent) or deleted.
    @ivar displayText: the display name (RFC 7702 Table 2: the nickname).
    @ivar associatedAORs: further URIs of the user (RFC 7702: the real
        JID, when the room exposes it).
    @ivar roles: free-text roles (RFC 7702: C{participant}; R-214).
    @ivar languages: language tags.
    @ivar cascadedFocus: a cascaded conference's URI.
    @ivar nickname: the RFC 6501 XCON C{nickname} attribute (RFC 7702 §7).
    @ivar extensions: elements from other namespaces.
    """

    entity: str
    state: ElementState = ElementState.FULL
    displayText: str | None = None
    associatedAORs: URIs | None = None
    roles: tuple[str, ...] | None = None
    languages: tuple[str, ...] | None = None
    cascadedFocus: str | None = None
    endpoints: tuple[Endpoint, ...] = ()
    nickname: str | None = None
    extensions: tuple[Extension, ...] = ()


@dataclass(frozen=True, slots=True)
class Users:
    """
    RFC 4575 §5.6: the C{<users>} container.

    @ivar users: the users, in document order.
    @ivar state: full (the whole roster), partial (changes) or deleted.
    """

    users: tuple[User, ...] = ()
    state: ElementState = ElementState.FULL


@dataclass(frozen=True, slots=True)
class SidebarsByVal:
    """
    RFC 4575 §5.9.2: sidebars described inline, each a conference-type
    L{ConferenceInfo} (key: C{entity}; usually without C{version}).
    """

    entries: tuple[ConferenceInfo, ...] = ()
    state: ElementState = ElementState.FULL


@dataclass(frozen=True, slots=True)
class ConferenceInfo:
    """
    An RFC 4575 conference information document (C{<conference-info>}), or
    a sidebar inside one.

    @ivar entity: the conference URI (RFC 7702 Table 2: the room).
    @ivar version: the RFC 4575 §4.3 version; required on the root
        element (L{parse} and L{toBytes} insist), usually absent on
        sidebars.
    @ivar state: full, partial or deleted (the conference is gone).
    @ivar description: C{<conference-description>} (atomic).
    @ivar hostInfo: C{<host-info>} (atomic).
    @ivar conferenceState: C{<conference-state>} (atomic).
    @ivar users: C{<users>}.
    @ivar sidebarsByRef: C{<sidebars-by-ref>}.
    @ivar sidebarsByVal: C{<sidebars-by-val>}.
    @ivar extensions: elements from other namespaces.
    """

    entity: str
    version: int | None = None
    state: ElementState = ElementState.FULL
    description: ConferenceDescription | None = None
    hostInfo: HostInfo | None = None
    conferenceState: ConferenceState | None = None
    users: Users | None = None
    sidebarsByRef: URIs | None = None
    sidebarsByVal: SidebarsByVal | None = None
    extensions: tuple[Extension, ...] = ()

    def __post_init__(self) -> None:
        """
        @raise ValueError: C{version} is not an unsigned 32-bit integer or
            C{entity} is empty.
        """
        if self.version is not None and not 0 <= self.version <= MAX_VERSION:
            raise ValueError("version must be an unsigned 32-bit integer")
        if not self.entity:
            raise ValueError("entity must not be empty")

    @property
    def userList(self) -> tuple[User, ...]:
        """
        The users listed (none if there is no C{<users>}).
        """
        return () if self.users is None else self.users.users

    def findUser(self, entity: str) -> User | None:
        """
        @return: the user keyed C{entity} (RFC 4575 §4.5: exact string
            comparison), or C{None}.
        """
        for user in self.userList:
            if user.entity == entity:
                return user
        return None

    @classmethod
    def parse(cls, data: bytes) -> ConferenceInfo:
        """
        Parse an C{application/conference-info+xml} document.

        @raise ConferenceInfoError: too large or too deep, not UTF-8, a DTD,
            not well-formed; wrong root element or namespace; a missing
            C{entity} or C{version}, an unknown C{state} or enumeration
            value, a bad number, boolean or date; an unknown element in the
            RFC 4575 namespace or one without a namespace, a repeated
            element, text where elements belong; a missing or duplicate key;
            a child state inconsistent with its parent (RFC 4575 §4.4); a
            full document without C{<conference-description>} or
            C{<users>} (RFC 4575 §5.2).
        """
        root = _parseXML(data)
        if root.tag == "conference-info":
            raise ConferenceInfoError(
                f"conference-info without the {CONFERENCE_INFO_NAMESPACE} "
                f"namespace (RFC 4575 §4.2)"
            )
        if root.tag != _TAG + "conference-info":
            raise ConferenceInfoError(
                f"root element is not conference-info in "
                f"{CONFERENCE_INFO_NAMESPACE}: {root.tag}"
            )
        return _parseConference(root, None)

    def toBytes(self) -> bytes:
        """
        Serialize as a complete document (see the module docstring for the
        layout).

        @raise ValueError: no C{version}; a full document without
            C{description} or C{users} (RFC 4575 §5.2); a timestamp without
            offset; text that XML cannot carry.
        """
        if self.version is None:
            raise ValueError("a conference-info document needs a version")
        if self.state is ElementState.FULL and (
            self.description is None or self.users is None
        ):
            raise ValueError(
                "a full conference-info document needs a conference-description"
                " and users (RFC 4575 §5.2)"
            )
        lines = ['<?xml version="1.0" encoding="UTF-8"?>']
        _writeConference(_Writer(lines), 0, self, _usesNickname(self))
        return _CRLF.join(lines).encode("utf-8")


# ---------------------------------------------------------------------------
# Parsing


def _parseXML(data: bytes) -> ElementTree.Element:
    checkXMLOctets(
        data,
        maxSize=MAX_DOCUMENT_SIZE,
        name="conference-info",
        encodingRule="RFC 4575 §4.1",
        error=ConferenceInfoError,
    )
    parser: ElementTree.XMLPullParser[ElementTree.Element]
    parser = ElementTree.XMLPullParser(events=("start", "end"))
    root: ElementTree.Element | None = None
    depth = 0
    try:
        parser.feed(data)
        for item in parser.read_events():
            event, element = item[0], item[-1]
            if not isinstance(element, ElementTree.Element):  # pragma: no cover
                continue
            if event == "start":
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConferenceInfoError("conference-info nested too deeply")
                if root is None:
                    root = element
            else:
                depth -= 1
        parser.close()
    except ElementTree.ParseError as e:
        raise ConferenceInfoError(f"not well-formed XML: {e}") from None
    if root is None:  # pragma: no cover (close() reports an empty document)
        raise ConferenceInfoError("empty document")
    return root


def _local(element: ElementTree.Element) -> str:
    return element.tag[len(_TAG) :] if element.tag.startswith(_TAG) else element.tag


class _Children:
    """
    The children of one element, checked against the names it allows.
    """

    def __init__(
        self,
        element: ElementTree.Element,
        single: Iterable[str],
        multiple: Iterable[str] = (),
    ) -> None:
        name = _local(element)
        singles = frozenset(single)
        multiples = frozenset(multiple)
        if (element.text or "").strip():
            raise ConferenceInfoError(f"text directly inside {name}")
        self.single: dict[str, ElementTree.Element] = {}
        self.multiple: dict[str, list[ElementTree.Element]] = {m: [] for m in multiples}
        extensions: list[Extension] = []
        for child in element:
            if (child.tail or "").strip():
                raise ConferenceInfoError(f"text directly inside {name}")
            if not child.tag.startswith("{"):
                raise ConferenceInfoError(
                    f"element without a namespace in {name}: {child.tag}"
                )
            if not child.tag.startswith(_TAG):
                extensions.append(Extension.fromElement(child))
                continue
            local = _local(child)
            if local in multiples:
                self.multiple[local].append(child)
            elif local in singles:
                if local in self.single:
                    raise ConferenceInfoError(f"more than one {local} in {name}")
                self.single[local] = child
            else:
                raise ConferenceInfoError(
                    f"unknown element in {CONFERENCE_INFO_NAMESPACE} inside "
                    f"{name}: {local}"
                )
        self.extensions = tuple(extensions)

    def text(self, name: str) -> str | None:
        element = self.single.get(name)
        return None if element is None else _text(element)

    def token(self, name: str) -> str | None:
        value = self.text(name)
        return None if value is None else value.strip()

    def uri(self, name: str) -> str | None:
        value = self.token(name)
        if value is not None and not value:
            raise ConferenceInfoError(f"empty {name}")
        return value

    def enum(self, name: str, kind: type[_E]) -> _E | None:
        value = self.token(name)
        return None if value is None else _enum(kind, value, name)

    def unsigned(self, name: str) -> int | None:
        value = self.token(name)
        return None if value is None else _unsigned(value, name)

    def boolean(self, name: str) -> bool | None:
        value = self.token(name)
        if value is None:
            return None
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        raise ConferenceInfoError(f"{name} is not a boolean: {value!r}")

    def tokens(self, name: str) -> tuple[str, ...] | None:
        value = self.text(name)
        return None if value is None else tuple(value.split())

    def execution(self, name: str) -> Execution | None:
        element = self.single.get(name)
        return None if element is None else _parseExecution(element)


def _text(element: ElementTree.Element) -> str:
    if len(element):
        raise ConferenceInfoError(f"{_local(element)} must contain text only")
    return element.text or ""


def _enum(kind: type[_E], value: str, name: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        raise ConferenceInfoError(f"invalid {name}: {value!r}") from None


def _unsigned(value: str, name: str) -> int:
    if not _UNSIGNED_RE.fullmatch(value) or int(value) > MAX_VERSION:
        raise ConferenceInfoError(
            f"{name} must be an unsigned 32-bit integer: {value!r}"
        )
    return int(value)


def _attribute(element: ElementTree.Element, name: str) -> str:
    value = element.get(name)
    if value is None or not value.strip():
        raise ConferenceInfoError(f"{_local(element)} without {name} attribute")
    return value.strip()


def _state(element: ElementTree.Element, parent: ElementState | None) -> ElementState:
    """
    The C{state} attribute, checked against the parent's (RFC 4575 §4.4: a
    full parent has only full children).
    """
    value = element.get("state")
    state = (
        ElementState.FULL
        if value is None
        else _enum(ElementState, value.strip(), "state")
    )
    if parent is ElementState.FULL and state is not ElementState.FULL:
        raise ConferenceInfoError(
            f"{_local(element)} is {state.value} inside a full parent "
            f"(RFC 4575 §4.4)"
        )
    return state


def _unique(items: Iterable[_T], key: Callable[[_T], str], what: str) -> None:
    seen: set[str] = set()
    for item in items:
        value = key(item)
        if value in seen:
            raise ConferenceInfoError(f"duplicate {what}: {value!r}")
        seen.add(value)


def _parseDateTime(text: str) -> datetime:
    value = text.strip()
    try:
        return parseDateTime(value)
    except ValueError:
        pass
    # xs:dateTime allows no offset; RFC 4575 §5.7.2 says it SHOULD be UTC.
    if _NAIVE_DATETIME_RE.fullmatch(value):
        try:
            return parseDateTime(value + "Z")
        except ValueError:
            pass
    raise ConferenceInfoError(f"invalid date-time: {text!r}")


def _parseExecution(element: ElementTree.Element) -> Execution:
    children = _Children(element, ("when", "reason", "by"))
    when = children.text("when")
    return Execution(
        None if when is None else _parseDateTime(when),
        children.text("reason"),
        children.uri("by"),
    )


def _parseURIs(
    element: ElementTree.Element, parent: ElementState | None, partial: bool
) -> URIs:
    """
    A C{uris-type} element; only C{<sidebars-by-ref>} (C{partial}) may have
    a state other than full (RFC 4575 §4.4).
    """
    if not partial and element.get("state", "full").strip() != "full":
        raise ConferenceInfoError(
            f"{_local(element)} cannot be partial or deleted (RFC 4575 §4.4)"
        )
    state = _state(element, parent)
    if state is ElementState.DELETED:
        return URIs((), state)
    children = _Children(element, (), ("entry",))
    entries = tuple(_parseURIEntry(e) for e in children.multiple["entry"])
    if not entries and state is ElementState.FULL:
        raise ConferenceInfoError(f"{_local(element)} without entry")
    _unique(entries, lambda e: e.uri, f"uri in {_local(element)}")
    return URIs(entries, state)


def _parseURIEntry(element: ElementTree.Element) -> URIEntry:
    children = _Children(element, ("uri", "display-text", "purpose", "modified"))
    uri = children.uri("uri")
    if uri is None:
        raise ConferenceInfoError("uri entry without uri")
    return URIEntry(
        uri,
        children.text("display-text"),
        children.token("purpose"),
        children.execution("modified"),
    )


def _parseAvailableMedia(element: ElementTree.Element) -> tuple[AvailableMedia, ...]:
    entries = []
    for entry in _Children(element, (), ("entry",)).multiple["entry"]:
        children = _Children(entry, ("display-text", "type", "status"))
        kind = children.token("type")
        if not kind:
            raise ConferenceInfoError("available-media entry without type")
        entries.append(
            AvailableMedia(
                _attribute(entry, "label"),
                kind,
                children.text("display-text"),
                children.enum("status", MediaStatus),
            )
        )
    if not entries:
        raise ConferenceInfoError("available-media without entry")
    _unique(entries, lambda e: e.label, "available-media label")
    return tuple(entries)


def _parseDescription(element: ElementTree.Element) -> ConferenceDescription:
    children = _Children(
        element,
        (
            "display-text",
            "subject",
            "free-text",
            "keywords",
            "conf-uris",
            "service-uris",
            "maximum-user-count",
            "available-media",
        ),
    )
    confURIs = children.single.get("conf-uris")
    serviceURIs = children.single.get("service-uris")
    media = children.single.get("available-media")
    return ConferenceDescription(
        displayText=children.text("display-text"),
        subject=children.text("subject"),
        freeText=children.text("free-text"),
        keywords=children.tokens("keywords"),
        confURIs=None if confURIs is None else _parseURIs(confURIs, None, False),
        serviceURIs=(
            None if serviceURIs is None else _parseURIs(serviceURIs, None, False)
        ),
        maximumUserCount=children.unsigned("maximum-user-count"),
        availableMedia=None if media is None else _parseAvailableMedia(media),
        extensions=children.extensions,
    )


def _parseHostInfo(element: ElementTree.Element) -> HostInfo:
    children = _Children(element, ("display-text", "web-page", "uris"))
    uris = children.single.get("uris")
    return HostInfo(
        children.text("display-text"),
        children.uri("web-page"),
        None if uris is None else _parseURIs(uris, None, False),
    )


def _parseConferenceState(element: ElementTree.Element) -> ConferenceState:
    children = _Children(element, ("user-count", "active", "locked"))
    return ConferenceState(
        children.unsigned("user-count"),
        children.boolean("active"),
        children.boolean("locked"),
    )


def _parseMedia(element: ElementTree.Element) -> Media:
    children = _Children(element, ("display-text", "type", "label", "src-id", "status"))
    return Media(
        _attribute(element, "id"),
        displayText=children.text("display-text"),
        type=children.token("type"),
        label=children.token("label"),
        srcID=children.token("src-id"),
        status=children.enum("status", MediaStatus),
        extensions=children.extensions,
    )


def _parseCallInfo(element: ElementTree.Element) -> SIPDialogID | None:
    sip = _Children(element, ("sip",)).single.get("sip")
    if sip is None:
        return None
    children = _Children(sip, ("display-text", "call-id", "from-tag", "to-tag"))
    values = [children.token(n) for n in ("call-id", "from-tag", "to-tag")]
    callID, fromTag, toTag = values
    if callID is None or fromTag is None or toTag is None:
        raise ConferenceInfoError("call-info sip needs call-id, from-tag and to-tag")
    return SIPDialogID(callID, fromTag, toTag, children.text("display-text"))


def _parseEndpoint(element: ElementTree.Element, parent: ElementState) -> Endpoint:
    entity = _attribute(element, "entity")
    state = _state(element, parent)
    if state is ElementState.DELETED:
        # RFC 4575 §4.4: children of a deleted element MUST be ignored.
        return Endpoint(entity, state)
    children = _Children(
        element,
        (
            "display-text",
            "referred",
            "status",
            "joining-method",
            "joining-info",
            "disconnection-method",
            "disconnection-info",
            "call-info",
        ),
        ("media",),
    )
    media = tuple(_parseMedia(m) for m in children.multiple["media"])
    _unique(media, lambda m: m.id, "media id")
    callInfo = children.single.get("call-info")
    return Endpoint(
        entity,
        state,
        displayText=children.text("display-text"),
        referred=children.execution("referred"),
        status=children.enum("status", EndpointStatus),
        joiningMethod=children.enum("joining-method", JoiningMethod),
        joiningInfo=children.execution("joining-info"),
        disconnectionMethod=children.enum("disconnection-method", DisconnectionMethod),
        disconnectionInfo=children.execution("disconnection-info"),
        media=media,
        callInfo=None if callInfo is None else _parseCallInfo(callInfo),
        extensions=children.extensions,
    )


def _parseUser(element: ElementTree.Element, parent: ElementState) -> User:
    entity = _attribute(element, "entity")
    state = _state(element, parent)
    if state is ElementState.DELETED:
        return User(entity, state)
    nickname = element.get(_NICKNAME)
    children = _Children(
        element,
        ("display-text", "associated-aors", "roles", "languages", "cascaded-focus"),
        ("endpoint",),
    )
    endpoints = tuple(_parseEndpoint(e, state) for e in children.multiple["endpoint"])
    _unique(endpoints, lambda e: e.entity, f"endpoint entity in {entity}")
    aors = children.single.get("associated-aors")
    rolesElement = children.single.get("roles")
    roles = None
    if rolesElement is not None:
        entries = _Children(rolesElement, (), ("entry",)).multiple["entry"]
        if not entries:
            raise ConferenceInfoError("roles without entry")
        roles = tuple(_text(e) for e in entries)
    return User(
        entity,
        state,
        displayText=children.text("display-text"),
        associatedAORs=None if aors is None else _parseURIs(aors, None, False),
        roles=roles,
        languages=children.tokens("languages"),
        cascadedFocus=children.uri("cascaded-focus"),
        endpoints=endpoints,
        nickname=nickname,
        extensions=children.extensions,
    )


def _parseUsers(element: ElementTree.Element, parent: ElementState) -> Users:
    state = _state(element, parent)
    if state is ElementState.DELETED:
        return Users((), state)
    children = _Children(element, (), ("user",))
    users = tuple(_parseUser(u, state) for u in children.multiple["user"])
    _unique(users, lambda u: u.entity, "user entity")
    return Users(users, state)


def _parseSidebarsByVal(
    element: ElementTree.Element, parent: ElementState
) -> SidebarsByVal:
    state = _state(element, parent)
    if state is ElementState.DELETED:
        return SidebarsByVal((), state)
    children = _Children(element, (), ("entry",))
    entries = tuple(_parseConference(e, state) for e in children.multiple["entry"])
    _unique(entries, lambda e: e.entity, "sidebar entity")
    return SidebarsByVal(entries, state)


def _parseConference(
    element: ElementTree.Element, parent: ElementState | None
) -> ConferenceInfo:
    """
    A C{conference-type} element: the root (C{parent} is C{None}) or a
    C{<sidebars-by-val>} entry.
    """
    root = parent is None
    entity = _attribute(element, "entity")
    state = _state(element, parent)
    versionText = element.get("version")
    if versionText is None:
        if root:
            raise ConferenceInfoError(
                "conference-info without version attribute (RFC 4575 §4.3)"
            )
        version = None
    else:
        version = _unsigned(versionText.strip(), "version")
    if state is ElementState.DELETED:
        return ConferenceInfo(entity, version, state)
    children = _Children(
        element,
        (
            "conference-description",
            "host-info",
            "conference-state",
            "users",
            "sidebars-by-ref",
            "sidebars-by-val",
        ),
    )
    single = children.single
    if root and state is ElementState.FULL:
        for required in ("conference-description", "users"):
            if required not in single:
                raise ConferenceInfoError(
                    f"full conference-info without {required} (RFC 4575 §5.2)"
                )
    description = single.get("conference-description")
    hostInfo = single.get("host-info")
    conferenceState = single.get("conference-state")
    users = single.get("users")
    byRef = single.get("sidebars-by-ref")
    byVal = single.get("sidebars-by-val")
    return ConferenceInfo(
        entity,
        version,
        state,
        description=None if description is None else _parseDescription(description),
        hostInfo=None if hostInfo is None else _parseHostInfo(hostInfo),
        conferenceState=(
            None if conferenceState is None else _parseConferenceState(conferenceState)
        ),
        users=None if users is None else _parseUsers(users, state),
        sidebarsByRef=None if byRef is None else _parseURIs(byRef, state, True),
        sidebarsByVal=None if byVal is None else _parseSidebarsByVal(byVal, state),
        extensions=children.extensions,
    )


# ---------------------------------------------------------------------------
# Serialization


def _xml(value: str, quote: bool = False) -> str:
    if _XML_INVALID_RE.search(value):
        raise ValueError(f"text that XML 1.0 cannot carry: {value!r}")
    return escape(value, {'"': "&quot;"} if quote else {})


class _Writer:
    """
    Lines of the document being written.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def open(self, level: int, name: str, attributes: str, empty: bool) -> None:
        end = "/>" if empty else ">"
        self.lines.append(f"{_INDENT * level}<{name}{attributes}{end}")

    def close(self, level: int, name: str) -> None:
        self.lines.append(f"{_INDENT * level}</{name}>")

    def text(self, level: int, name: str, value: str | None) -> None:
        if value is not None:
            self.lines.append(f"{_INDENT * level}<{name}>{_xml(value)}</{name}>")

    def extensions(self, level: int, extensions: tuple[Extension, ...]) -> None:
        for extension in extensions:
            self.lines.append(_INDENT * level + extension.markup)


def _attributes(*pairs: tuple[str, str | None]) -> str:
    return "".join(
        f' {name}="{_xml(value, True)}"' for name, value in pairs if value is not None
    )


def _stateAttribute(state: ElementState) -> str | None:
    return None if state is ElementState.FULL else state.value


def _usesNickname(info: ConferenceInfo) -> bool:
    if any(user.nickname is not None for user in info.userList):
        return True
    sidebars = () if info.sidebarsByVal is None else info.sidebarsByVal.entries
    return any(_usesNickname(sidebar) for sidebar in sidebars)


def _writeExecution(
    out: _Writer, level: int, name: str, value: Execution | None
) -> None:
    if value is None:
        return
    empty = value.when is None and value.reason is None and value.by is None
    out.open(level, name, "", empty)
    if empty:
        return
    if value.when is not None:
        out.text(level + 1, "when", formatDateTime(value.when))
    out.text(level + 1, "reason", value.reason)
    out.text(level + 1, "by", value.by)
    out.close(level, name)


def _writeURIs(out: _Writer, level: int, name: str, value: URIs | None) -> None:
    if value is None:
        return
    attributes = _attributes(("state", _stateAttribute(value.state)))
    out.open(level, name, attributes, not value.entries)
    if not value.entries:
        return
    for entry in value.entries:
        out.open(level + 1, "entry", "", False)
        out.text(level + 2, "uri", entry.uri)
        out.text(level + 2, "display-text", entry.displayText)
        out.text(level + 2, "purpose", entry.purpose)
        _writeExecution(out, level + 2, "modified", entry.modified)
        out.close(level + 1, "entry")
    out.close(level, name)


def _writeDescription(
    out: _Writer, level: int, value: ConferenceDescription | None
) -> None:
    if value is None:
        return
    name = "conference-description"
    empty = value == ConferenceDescription()
    out.open(level, name, "", empty)
    if empty:
        return
    inner = level + 1
    out.text(inner, "display-text", value.displayText)
    out.text(inner, "subject", value.subject)
    out.text(inner, "free-text", value.freeText)
    if value.keywords is not None:
        out.text(inner, "keywords", " ".join(value.keywords))
    _writeURIs(out, inner, "conf-uris", value.confURIs)
    _writeURIs(out, inner, "service-uris", value.serviceURIs)
    if value.maximumUserCount is not None:
        out.text(inner, "maximum-user-count", str(value.maximumUserCount))
    if value.availableMedia is not None:
        out.open(inner, "available-media", "", False)
        for entry in value.availableMedia:
            out.open(inner + 1, "entry", _attributes(("label", entry.label)), False)
            out.text(inner + 2, "display-text", entry.displayText)
            out.text(inner + 2, "type", entry.type)
            if entry.status is not None:
                out.text(inner + 2, "status", entry.status.value)
            out.close(inner + 1, "entry")
        out.close(inner, "available-media")
    out.extensions(inner, value.extensions)
    out.close(level, name)


def _writeHostInfo(out: _Writer, level: int, value: HostInfo | None) -> None:
    if value is None:
        return
    empty = value == HostInfo()
    out.open(level, "host-info", "", empty)
    if empty:
        return
    out.text(level + 1, "display-text", value.displayText)
    out.text(level + 1, "web-page", value.webPage)
    _writeURIs(out, level + 1, "uris", value.uris)
    out.close(level, "host-info")


def _writeConferenceState(
    out: _Writer, level: int, value: ConferenceState | None
) -> None:
    if value is None:
        return
    empty = value == ConferenceState()
    out.open(level, "conference-state", "", empty)
    if empty:
        return
    if value.userCount is not None:
        out.text(level + 1, "user-count", str(value.userCount))
    for name, flag in (("active", value.active), ("locked", value.locked)):
        if flag is not None:
            out.text(level + 1, name, "true" if flag else "false")
    out.close(level, "conference-state")


def _writeMedia(out: _Writer, level: int, media: Media) -> None:
    empty = replace(media, id="") == Media("")
    out.open(level, "media", _attributes(("id", media.id)), empty)
    if empty:
        return
    inner = level + 1
    out.text(inner, "display-text", media.displayText)
    out.text(inner, "type", media.type)
    out.text(inner, "label", media.label)
    out.text(inner, "src-id", media.srcID)
    if media.status is not None:
        out.text(inner, "status", media.status.value)
    out.extensions(inner, media.extensions)
    out.close(level, "media")


def _writeEndpoint(out: _Writer, level: int, endpoint: Endpoint) -> None:
    attributes = _attributes(
        ("entity", endpoint.entity), ("state", endpoint.state.value)
    )
    empty = replace(endpoint, entity="", state=ElementState.FULL) == Endpoint("")
    out.open(level, "endpoint", attributes, empty)
    if empty:
        return
    inner = level + 1
    out.text(inner, "display-text", endpoint.displayText)
    _writeExecution(out, inner, "referred", endpoint.referred)
    for name, value in (
        ("status", endpoint.status),
        ("joining-method", endpoint.joiningMethod),
    ):
        if value is not None:
            out.text(inner, name, value.value)
    _writeExecution(out, inner, "joining-info", endpoint.joiningInfo)
    if endpoint.disconnectionMethod is not None:
        out.text(inner, "disconnection-method", endpoint.disconnectionMethod.value)
    _writeExecution(out, inner, "disconnection-info", endpoint.disconnectionInfo)
    for media in endpoint.media:
        _writeMedia(out, inner, media)
    if endpoint.callInfo is not None:
        call = endpoint.callInfo
        out.open(inner, "call-info", "", False)
        out.open(inner + 1, "sip", "", False)
        out.text(inner + 2, "display-text", call.displayText)
        out.text(inner + 2, "call-id", call.callID)
        out.text(inner + 2, "from-tag", call.fromTag)
        out.text(inner + 2, "to-tag", call.toTag)
        out.close(inner + 1, "sip")
        out.close(inner, "call-info")
    out.extensions(inner, endpoint.extensions)
    out.close(level, "endpoint")


def _writeUser(out: _Writer, level: int, user: User) -> None:
    attributes = _attributes(
        ("entity", user.entity),
        ("state", user.state.value),
        ("xcon:nickname", user.nickname),
    )
    empty = replace(user, entity="", state=ElementState.FULL, nickname=None) == User("")
    out.open(level, "user", attributes, empty)
    if empty:
        return
    inner = level + 1
    out.text(inner, "display-text", user.displayText)
    _writeURIs(out, inner, "associated-aors", user.associatedAORs)
    if user.roles is not None:
        out.open(inner, "roles", "", False)
        for role in user.roles:
            out.text(inner + 1, "entry", role)
        out.close(inner, "roles")
    if user.languages is not None:
        out.text(inner, "languages", " ".join(user.languages))
    out.text(inner, "cascaded-focus", user.cascadedFocus)
    for endpoint in user.endpoints:
        _writeEndpoint(out, inner, endpoint)
    out.extensions(inner, user.extensions)
    out.close(level, "user")


def _writeUsers(out: _Writer, level: int, users: Users | None) -> None:
    if users is None:
        return
    attributes = _attributes(("state", _stateAttribute(users.state)))
    out.open(level, "users", attributes, not users.users)
    if not users.users:
        return
    for user in users.users:
        _writeUser(out, level + 1, user)
    out.close(level, "users")


def _writeConference(
    out: _Writer, level: int, info: ConferenceInfo, xcon: bool, name: str = ""
) -> None:
    root = not name
    name = name or "conference-info"
    pairs: list[tuple[str, str | None]] = []
    if root:
        pairs.append(("xmlns", CONFERENCE_INFO_NAMESPACE))
        if xcon:
            pairs.append(("xmlns:xcon", XCON_NAMESPACE))
    version = None if info.version is None else str(info.version)
    pairs += [
        ("entity", info.entity),
        ("state", info.state.value),
        ("version", version),
    ]
    empty = info.state is ElementState.DELETED or (
        replace(info, entity="-", version=None, state=ElementState.FULL)
        == ConferenceInfo("-")
    )
    out.open(level, name, _attributes(*pairs), empty)
    if empty:
        return
    inner = level + 1
    _writeDescription(out, inner, info.description)
    _writeHostInfo(out, inner, info.hostInfo)
    _writeConferenceState(out, inner, info.conferenceState)
    _writeUsers(out, inner, info.users)
    _writeURIs(out, inner, "sidebars-by-ref", info.sidebarsByRef)
    if info.sidebarsByVal is not None:
        byVal = info.sidebarsByVal
        attributes = _attributes(("state", _stateAttribute(byVal.state)))
        out.open(inner, "sidebars-by-val", attributes, not byVal.entries)
        if byVal.entries:
            for entry in byVal.entries:
                _writeConference(out, inner + 1, entry, xcon, "entry")
            out.close(inner, "sidebars-by-val")
    out.extensions(inner, info.extensions)
    out.close(level, name)


# ---------------------------------------------------------------------------
# Subscriber: RFC 4575 §4.6


class MergeOutcome(Enum):
    """
    What L{applyNotification} did with a received document.

    @cvar APPLIED: the local state is now the returned one.
    @cvar IGNORED: the version is not newer than the local one (RFC 4575
        §4.6: discarded without processing); the local state is unchanged.
    @cvar NEEDS_FULL_STATE: a partial document skipped versions (or arrived
        before any full one): the local state is unchanged and the
        subscriber MUST refresh the subscription to get a full document
        (re-SUBSCRIBE; R-180).
    @cvar DELETED: the conference ceased to exist; the subscriber SHOULD
        end the subscription (SUBSCRIBE with C{Expires: 0}).
    """

    APPLIED = "applied"
    IGNORED = "ignored"
    NEEDS_FULL_STATE = "needs-full-state"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class MergeResult:
    """
    The result of L{applyNotification}.

    @ivar outcome: what happened.
    @ivar state: the local state to keep: full, with the document's version
        (C{APPLIED}); the received deleted document (C{DELETED}); the
        previous state, possibly C{None} (otherwise).
    """

    outcome: MergeOutcome
    state: ConferenceInfo | None


def applyNotification(
    current: ConferenceInfo | None, document: ConferenceInfo
) -> MergeResult:
    """
    Process a received document as RFC 4575 §4.6 prescribes.

    @param current: the local full state, C{None} before the first full
        document.
    @param document: the received document (from L{ConferenceInfo.parse}).
    @raise ValueError: C{document} has no version, or names another
        conference than C{current}.
    """
    if document.version is None:
        raise ValueError("a received conference-info document needs a version")
    if current is not None and current.entity != document.entity:
        raise ValueError(
            f"document for {document.entity!r}, local state for {current.entity!r}"
        )
    if current is not None and current.version is None:
        raise ValueError("the local state needs a version")
    if current is not None and current.version is not None:
        if document.version <= current.version:
            return MergeResult(MergeOutcome.IGNORED, current)
    if document.state is ElementState.DELETED:
        return MergeResult(MergeOutcome.DELETED, document)
    if document.state is ElementState.FULL:
        return MergeResult(MergeOutcome.APPLIED, document)
    if current is None or current.version is None:
        return MergeResult(MergeOutcome.NEEDS_FULL_STATE, current)
    if document.version != current.version + 1:
        return MergeResult(MergeOutcome.NEEDS_FULL_STATE, current)
    merged = _mergeConference(current, document)
    return MergeResult(MergeOutcome.APPLIED, replace(merged, version=document.version))


def _override(base: _D, update: _D, names: Iterable[str]) -> _D:
    """
    RFC 4575 §4.6 step 3.2: every element present in C{update} replaces
    the local one.
    """
    changes = {n: getattr(update, n) for n in names if getattr(update, n) is not None}
    return replace(base, **changes)


def _mergeKeyed(
    base: Iterable[_T],
    update: Iterable[_T],
    key: Callable[[_T], str],
    state: Callable[[_T], ElementState],
    full: Callable[[_T], _T],
    merge: Callable[[_T, _T], _T],
) -> tuple[_T, ...]:
    """
    RFC 4575 §4.6 step 3.1: rows keyed by C{key}; new keys are added, full
    rows replaced, deleted rows removed, partial rows merged.
    """
    rows = {key(item): item for item in base}
    for item in update:
        k = key(item)
        itemState = state(item)
        if itemState is ElementState.DELETED:
            rows.pop(k, None)
        elif k not in rows or itemState is ElementState.FULL:
            rows[k] = full(item)
        else:
            rows[k] = merge(rows[k], item)
    return tuple(rows.values())


def _fullEndpoint(endpoint: Endpoint) -> Endpoint:
    return replace(endpoint, state=ElementState.FULL)


def _fullUser(user: User) -> User:
    endpoints = tuple(
        _fullEndpoint(e) for e in user.endpoints if e.state is not ElementState.DELETED
    )
    return replace(user, state=ElementState.FULL, endpoints=endpoints)


def _mergeMedia(base: Media, update: Media) -> Media:
    merged = _override(
        base, update, ("displayText", "type", "label", "srcID", "status")
    )
    return replace(merged, extensions=update.extensions or base.extensions)


def _mergeEndpoint(base: Endpoint, update: Endpoint) -> Endpoint:
    merged = _override(
        base,
        update,
        (
            "displayText",
            "referred",
            "status",
            "joiningMethod",
            "joiningInfo",
            "disconnectionMethod",
            "disconnectionInfo",
            "callInfo",
        ),
    )
    media = _mergeKeyed(
        base.media,
        update.media,
        lambda m: m.id,
        lambda m: ElementState.PARTIAL,
        lambda m: m,
        _mergeMedia,
    )
    return replace(
        merged,
        media=media,
        extensions=update.extensions or base.extensions,
    )


def _mergeUser(base: User, update: User) -> User:
    merged = _override(
        base,
        update,
        (
            "displayText",
            "associatedAORs",
            "roles",
            "languages",
            "cascadedFocus",
            "nickname",
        ),
    )
    endpoints = _mergeKeyed(
        base.endpoints,
        update.endpoints,
        lambda e: e.entity,
        lambda e: e.state,
        _fullEndpoint,
        _mergeEndpoint,
    )
    return replace(
        merged,
        endpoints=endpoints,
        extensions=update.extensions or base.extensions,
    )


class _Container(Protocol):
    """
    A list container of RFC 4575 §6 (L{Users}, L{URIs}, L{SidebarsByVal}).
    """

    @property
    def state(self) -> ElementState: ...


class _Rows(NamedTuple, Generic[_T]):
    """
    How L{_mergeKeyed} merges the rows of one list: their key, their state,
    a row made full, two rows merged.
    """

    key: Callable[[_T], str]
    state: Callable[[_T], ElementState]
    full: Callable[[_T], _T]
    merge: Callable[[_T, _T], _T]


def _mergeContainer(
    base: _C | None,
    update: _C | None,
    entries: Callable[[_C], Iterable[_T]],
    build: Callable[[tuple[_T, ...]], _C],
    rows: _Rows[_T],
) -> _C | None:
    """
    RFC 4575 §4.6 for a list container (C{<users>}, C{<sidebars-by-ref>},
    C{<sidebars-by-val>}): absent from the update, the local one stays; a
    deleted one is removed; a full one, or one with no local counterpart,
    replaces the local one (its deleted rows dropped, the others made
    full); a partial one is merged into the local one row by row
    (L{_mergeKeyed}; the parser guarantees unique keys).

    @param entries: the container's rows.
    @param build: a (full) container of these rows.
    """
    if update is None:
        return base
    if update.state is ElementState.DELETED:
        return None
    local = () if base is None or update.state is ElementState.FULL else entries(base)
    return build(_mergeKeyed(local, entries(update), *rows))


def _mergeUsers(base: Users | None, update: Users | None) -> Users | None:
    rows = _Rows(lambda u: u.entity, lambda u: u.state, _fullUser, _mergeUser)
    return _mergeContainer(base, update, lambda c: c.users, Users, rows)


def _mergeURIEntry(base: URIEntry, update: URIEntry) -> URIEntry:
    return _override(base, update, ("displayText", "purpose", "modified"))


def _mergeURIs(base: URIs | None, update: URIs | None) -> URIs | None:
    rows = _Rows(
        lambda e: e.uri, lambda e: ElementState.PARTIAL, lambda e: e, _mergeURIEntry
    )
    return _mergeContainer(base, update, lambda c: c.entries, URIs, rows)


def _fullSidebar(sidebar: ConferenceInfo) -> ConferenceInfo:
    return _mergeConference(ConferenceInfo(sidebar.entity, sidebar.version), sidebar)


def _mergeSidebars(
    base: SidebarsByVal | None, update: SidebarsByVal | None
) -> SidebarsByVal | None:
    rows = _Rows(lambda e: e.entity, lambda e: e.state, _fullSidebar, _mergeConference)
    return _mergeContainer(base, update, lambda c: c.entries, SidebarsByVal, rows)


def _mergeConference(base: ConferenceInfo, update: ConferenceInfo) -> ConferenceInfo:
    """
    Apply a partial C{conference-type} element to a full one (RFC 4575
    §4.6 step 3); the result is full, with C{base}'s version.
    """
    merged = _override(base, update, ("description", "hostInfo", "conferenceState"))
    return replace(
        merged,
        state=ElementState.FULL,
        users=_mergeUsers(base.users, update.users),
        sidebarsByRef=_mergeURIs(base.sidebarsByRef, update.sidebarsByRef),
        sidebarsByVal=_mergeSidebars(base.sidebarsByVal, update.sidebarsByVal),
        extensions=update.extensions or base.extensions,
    )


# ---------------------------------------------------------------------------
# Notifier


def diff(before: ConferenceInfo, after: ConferenceInfo) -> ConferenceInfo | None:
    """
    The notification that brings a subscriber holding C{before} to
    C{after}, with version C{before.version + 1} (RFC 4575 §5.2: +1 for a
    partial; R-176).

    Usually a partial document: changed atomic elements
    (C{<conference-description>}, C{<host-info>}, C{<conference-state>})
    whole; C{<users state="partial">} with a C{state="deleted"} user for
    each entity gone and the full user for each entity added or changed
    (deletions first; a nick change, which changes the entity, is thus a
    deletion plus an addition, R-213); changed sidebars whole. When a
    change cannot be said in a partial document (an element without a
    C{state} attribute, or an extension, disappeared) it is a full
    document (L{applyNotification} accepts any newer full document).

    @param before: the state the subscriber holds (full, with a version).
    @param after: the new state (full; its version is ignored).
    @return: the document to send, or C{None} if nothing changed.
    @raise ValueError: C{before} has no version or reached the largest
        one, a state is not full, or the entities differ.
    """
    if before.version is None:
        raise ValueError("before needs a version")
    if before.version >= MAX_VERSION:
        raise ValueError("version counter exhausted")
    if before.state is not ElementState.FULL or after.state is not ElementState.FULL:
        raise ValueError("diff needs two full states")
    if before.entity != after.entity:
        raise ValueError("diff needs two states of the same conference")
    version = before.version + 1
    fullDocument = replace(after, version=version)
    changes: dict[str, Any] = {}
    for name in ("description", "hostInfo", "conferenceState"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            if new is None:
                return fullDocument
            changes[name] = new
    if before.extensions != after.extensions:
        if not after.extensions:
            return fullDocument
        changes["extensions"] = after.extensions
    users = _diffUsers(before.users, after.users)
    if users is not None:
        changes["users"] = users
    if before.sidebarsByRef != after.sidebarsByRef:
        changes["sidebarsByRef"] = after.sidebarsByRef or URIs((), ElementState.DELETED)
    if before.sidebarsByVal != after.sidebarsByVal:
        changes["sidebarsByVal"] = after.sidebarsByVal or SidebarsByVal(
            (), ElementState.DELETED
        )
    if not changes:
        return None
    return replace(
        ConferenceInfo(after.entity, version, ElementState.PARTIAL), **changes
    )


def _diffUsers(before: Users | None, after: Users | None) -> Users | None:
    if before == after:
        return None
    if after is None:
        return Users((), ElementState.DELETED)
    if before is None:
        return after
    old = {u.entity: u for u in before.users}
    new = {u.entity: u for u in after.users}
    entries = [User(e, ElementState.DELETED) for e in old if e not in new]
    entries += [
        replace(u, state=ElementState.FULL) for e, u in new.items() if old.get(e) != u
    ]
    return Users(tuple(entries), ElementState.PARTIAL) if entries else None
