# -*- test-case-name: tests.xmpp.test_stanzas -*-
"""
XMPP stanza facts and helpers shared by the occupant side
(L{stoxgw.xmpp.occupant}) and the room side (L{stoxgw.xmpp.room}), sans-IO:
namespaces, the stanza error conditions with their error types (RFC 6120
section 8.3.3, and XEP-0045's own types for MUC errors), the XEP-0045
status codes and which removal wins, XEP-0085 chat states, and the parsers
and builders of the stanzas both sides exchange.

This is the one place for each of these tables; the interworking layer
(L{stoxgw.interworking.errors}) uses them from here.
"""

from __future__ import annotations

import datetime
import enum
import sys
from collections.abc import Iterable, Mapping
from enum import IntEnum, StrEnum
from types import MappingProxyType

import stoxgw.xmpp  # noqa: F401  (wokkel compat names first)

from twisted.words.protocols.jabber import error, jid
from twisted.words.xish import domish
from wokkel import generic, muc
from wokkel.delay import Delay

from stoxgw.rooms.model import HistoryRequest

NS_MUC = muc.NS_MUC
NS_MUC_USER = muc.NS_MUC_USER
NS_MUC_OWNER = muc.NS_MUC_OWNER
NS_MUC_STABLE_ID = NS_MUC + "#stable_id"
NS_DATA = "jabber:x:data"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DELAY = "urn:xmpp:delay"
NS_SID = "urn:xmpp:sid:0"
NS_CONFERENCE = "jabber:x:conference"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"


# --- stanza error conditions and their types ------------------------------------


class Condition(StrEnum):
    """
    The 22 defined stanza error conditions (RFC 6120 section 8.3.3).  The
    value is the element name, so a member compares equal to the string
    other code (wokkel, Twisted) uses.
    """

    BAD_REQUEST = "bad-request"
    CONFLICT = "conflict"
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"
    FORBIDDEN = "forbidden"
    GONE = "gone"
    INTERNAL_SERVER_ERROR = "internal-server-error"
    ITEM_NOT_FOUND = "item-not-found"
    JID_MALFORMED = "jid-malformed"
    NOT_ACCEPTABLE = "not-acceptable"
    NOT_ALLOWED = "not-allowed"
    NOT_AUTHORIZED = "not-authorized"
    POLICY_VIOLATION = "policy-violation"
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"
    REDIRECT = "redirect"
    REGISTRATION_REQUIRED = "registration-required"
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"
    RESOURCE_CONSTRAINT = "resource-constraint"
    SERVICE_UNAVAILABLE = "service-unavailable"
    SUBSCRIPTION_REQUIRED = "subscription-required"
    UNDEFINED_CONDITION = "undefined-condition"
    UNEXPECTED_REQUEST = "unexpected-request"


class ErrorType(StrEnum):
    """
    The C{type} attribute of a stanza C{<error/>} (RFC 6120 section 8.3.2).
    """

    AUTH = "auth"
    CANCEL = "cancel"
    CONTINUE = "continue"
    MODIFY = "modify"
    WAIT = "wait"


#: The error type RFC 6120 section 8.3.3 RECOMMENDS for each condition.
#: Where the RFC offers two, the first one it names is used:
#: feature-not-implemented "cancel" or "modify" (8.3.3.3), policy-violation
#: "modify" or "wait" (8.3.3.12), unexpected-request "wait" or "modify"
#: (8.3.3.22).  undefined-condition allows any type (8.3.3.21); "cancel" is
#: used because a gateway cannot tell the sender what to change.
ERROR_TYPES: Mapping[Condition, ErrorType] = MappingProxyType(
    {
        Condition.BAD_REQUEST: ErrorType.MODIFY,
        Condition.CONFLICT: ErrorType.CANCEL,
        Condition.FEATURE_NOT_IMPLEMENTED: ErrorType.CANCEL,
        Condition.FORBIDDEN: ErrorType.AUTH,
        Condition.GONE: ErrorType.CANCEL,
        Condition.INTERNAL_SERVER_ERROR: ErrorType.CANCEL,
        Condition.ITEM_NOT_FOUND: ErrorType.CANCEL,
        Condition.JID_MALFORMED: ErrorType.MODIFY,
        Condition.NOT_ACCEPTABLE: ErrorType.MODIFY,
        Condition.NOT_ALLOWED: ErrorType.CANCEL,
        Condition.NOT_AUTHORIZED: ErrorType.AUTH,
        Condition.POLICY_VIOLATION: ErrorType.MODIFY,
        Condition.RECIPIENT_UNAVAILABLE: ErrorType.WAIT,
        Condition.REDIRECT: ErrorType.MODIFY,
        Condition.REGISTRATION_REQUIRED: ErrorType.AUTH,
        Condition.REMOTE_SERVER_NOT_FOUND: ErrorType.CANCEL,
        Condition.REMOTE_SERVER_TIMEOUT: ErrorType.WAIT,
        Condition.RESOURCE_CONSTRAINT: ErrorType.WAIT,
        Condition.SERVICE_UNAVAILABLE: ErrorType.CANCEL,
        Condition.SUBSCRIPTION_REQUIRED: ErrorType.AUTH,
        Condition.UNDEFINED_CONDITION: ErrorType.CANCEL,
        Condition.UNEXPECTED_REQUEST: ErrorType.WAIT,
    }
)


def asCondition(condition: Condition | str) -> Condition:
    """
    Read a stanza error condition.

    @param condition: a L{Condition} or the element name of one.
    @return: the condition; a name RFC 6120 does not define is
        L{Condition.UNDEFINED_CONDITION}, as RFC 6120 section 8.3.2 requires
        of an entity receiving a condition it does not understand.
    """
    try:
        return Condition(condition)
    except ValueError:
        return Condition.UNDEFINED_CONDITION


def errorTypeFor(condition: Condition | str) -> ErrorType:
    """
    @return: the RFC 6120 section 8.3.3 error type of C{condition} (see
        L{ERROR_TYPES}).
    """
    return ERROR_TYPES[asCondition(condition)]


#: The error types XEP-0045 gives MUC errors where they differ from RFC
#: 6120's (section 7.2: a full room is service-unavailable of type "wait",
#: a refused or required reserved nick not-acceptable of type "cancel").
MUC_ERROR_TYPES: Mapping[Condition, ErrorType] = MappingProxyType(
    {
        Condition.SERVICE_UNAVAILABLE: ErrorType.WAIT,
        Condition.NOT_ACCEPTABLE: ErrorType.CANCEL,
    }
)


def mucErrorTypeFor(condition: Condition | str) -> ErrorType:
    """
    @return: the error type of C{condition} in a MUC error (L{MUC_ERROR_TYPES},
        else RFC 6120's, L{ERROR_TYPES}).
    """
    known = asCondition(condition)
    return MUC_ERROR_TYPES.get(known, ERROR_TYPES[known])


def mucError(condition: str, text: str | None = None) -> error.StanzaError:
    """
    A stanza error with the error type XEP-0045 uses for C{condition}
    (R-188): backends raise these to refuse a join or a message.
    """
    return error.StanzaError(condition, mucErrorTypeFor(condition).value, text)


# --- MUC status codes ------------------------------------------------------------


class MUCStatus(IntEnum):
    """
    The XEP-0045 C{<status code/>} values E.5 deals with.
    """

    NON_ANONYMOUS = 100
    SELF = 110
    LOGGING = 170
    ROOM_CREATED = 201
    NICK_MODIFIED = 210
    BANNED = 301
    NICK_CHANGED = 303
    KICKED = 307
    AFFILIATION_CHANGED = 321
    MEMBERS_ONLY = 322
    SHUTDOWN = 332
    TECHNICAL_ERROR = 333


#: The status codes that mark an unavailable presence as a removal by the
#: room rather than a leave (XEP-0045 section 15.6.2; SPEC E.5), in the
#: order L{removalStatus} prefers them when a presence carries several: the
#: room going away (332) first; a technical removal often comes as 307 +
#: 333 (Prosody does so), so 333 wins over 307; a ban, an affiliation
#: change and members-only say why, so they win over the plain kick.
MUC_REMOVAL_STATUSES: tuple[MUCStatus, ...] = (
    MUCStatus.SHUTDOWN,
    MUCStatus.TECHNICAL_ERROR,
    MUCStatus.BANNED,
    MUCStatus.AFFILIATION_CHANGED,
    MUCStatus.MEMBERS_ONLY,
    MUCStatus.KICKED,
)


def removalStatus(statusCodes: Iterable[int]) -> MUCStatus | None:
    """
    @param statusCodes: the C{<status code/>} values of an unavailable
        presence (e.g. C{{110, 307}}).
    @return: the removal status among them (L{MUC_REMOVAL_STATUSES} order
        when several), or L{None} for an ordinary leave.
    """
    codes = set(statusCodes)
    for status in MUC_REMOVAL_STATUSES:
        if status.value in codes:
            return status
    return None


#: Interned status-code sets: a room sends the same few sets over and over.
_CODE_SETS: dict[frozenset[int], frozenset[int]] = {}
#: At most this many distinct sets are kept (peers choose the codes).
_MAX_CODE_SETS = 256


def internCodes(codes: set[int] | frozenset[int]) -> frozenset[int]:
    """
    @return: C{codes} as a frozenset, the same object for equal sets (up to
        L{_MAX_CODE_SETS} distinct sets).
    """
    frozen = frozenset(codes)
    interned = _CODE_SETS.get(frozen)
    if interned is not None:
        return interned
    if len(_CODE_SETS) < _MAX_CODE_SETS:
        _CODE_SETS[frozen] = frozen
    return frozen


def internText(value: str | None) -> str | None:
    """
    @return: C{value} interned (a room sends the same affiliations, roles
        and shows over and over).
    """
    return sys.intern(value) if value is not None else None


# --- XEP-0085 chat states ----------------------------------------------------------


class ChatStateNotification(enum.Enum):
    """
    XEP-0085 chat state notifications (not to be confused with the chat
    session's life, L{stoxgw.chat}).
    """

    ACTIVE = "active"
    COMPOSING = "composing"
    PAUSED = "paused"
    INACTIVE = "inactive"
    GONE = "gone"


def chatStateOf(element: domish.Element) -> ChatStateNotification | None:
    """
    @return: the XEP-0085 chat state of a message, if any (the first).
    """
    for child in element.elements():
        if child.uri == NS_CHATSTATES:
            try:
                return ChatStateNotification(child.name)
            except ValueError:
                continue
    return None


def stampOf(delay: Delay | None) -> datetime.datetime | None:
    """
    @return: a XEP-0203 stamp as a timezone-aware UTC datetime.
    """
    if delay is None or delay.stamp is None:
        return None
    stamp: datetime.datetime = delay.stamp
    return stamp.astimezone(datetime.timezone.utc)


def originIDOf(element: domish.Element) -> str | None:
    """
    @return: the XEP-0359 origin-id of a message, if any.
    """
    for child in element.elements(NS_SID, "origin-id"):
        value = child.getAttribute("id")
        if value:
            return str(value)
    return None


def buildMessage(
    sender: jid.JID,
    recipient: jid.JID,
    messageType: str,
    body: str | None,
    stanzaID: str | None,
    chatState: ChatStateNotification | None = None,
    mucUser: bool = False,
) -> domish.Element:
    """
    Build an outgoing message from one of our occupants.

    @param mucUser: add the empty muc#user C{<x/>} of a private message
        (XEP-0045 7.5, R-197).
    """
    message = domish.Element((None, "message"))
    message["from"] = sender.full()
    message["to"] = recipient.full()
    message["type"] = messageType
    if stanzaID:
        message["id"] = stanzaID
    if body is not None:
        message.addElement("body", content=body)
    if chatState is not None:
        message.addElement((NS_CHATSTATES, chatState.value))
    if stanzaID:
        message.addElement((NS_SID, "origin-id"))["id"] = stanzaID
    if mucUser:
        message.addElement((NS_MUC_USER, "x"))
    return message


# --- parsing ---------------------------------------------------------------------


#: What Twisted's JID parser raises for malformed JIDs: L{InvalidFormat},
#: but also IndexError (an empty domain label, C{a..b}) and RuntimeError
#: (an empty string) - found by fuzzing (fuzz/fuzz_xmpp_occupant.py).
BAD_JID = (jid.InvalidFormat, IndexError, RuntimeError, ValueError)


def stanzaErrorOf(element: domish.Element) -> error.StanzaError:
    """
    The stanza error of an error stanza; Twisted's parser raises KeyError
    for a legacy code it does not know (C{<error code='918'/>}): that is an
    C{undefined-condition} of the error's type.
    """
    try:
        result = error.exceptionFromStanza(element)
    except (KeyError, ValueError):
        errorType = "cancel"
        for child in element.elements():
            if child.name == "error":
                errorType = child.getAttribute("type") or "cancel"
        return error.StanzaError("undefined-condition", errorType)
    if not isinstance(result, error.StanzaError):
        return error.StanzaError("undefined-condition")
    return result


class MUCPresence(muc.UserPresence):
    """
    wokkel's L{UserPresence<wokkel.muc.UserPresence>}, keeping every status
    code as an integer (wokkel drops those it has no constant for, such as
    333), the muc#user C{<reason/>} and C{<actor/>}, and C{<destroy/>}.
    """

    statusCodes: frozenset[int] = frozenset()
    actor: str | None = None
    reasonText: str | None = None
    destroyed: bool = False
    alternate: jid.JID | None = None
    destroyReason: str | None = None

    childParsers = {(NS_MUC_USER, "x"): "_childParser_mucUser"}

    def _childParser_mucUser(self, element: domish.Element) -> None:
        super()._childParser_mucUser(element)
        codes = set()
        for child in element.elements(NS_MUC_USER, "status"):
            try:
                codes.add(int(child.getAttribute("code")))
            except (TypeError, ValueError):
                continue
        self.statusCodes = internCodes(codes)
        for item in element.elements(NS_MUC_USER, "item"):
            for actor in item.elements(NS_MUC_USER, "actor"):
                self.actor = actor.getAttribute("jid") or actor.getAttribute("nick")
            for reason in item.elements(NS_MUC_USER, "reason"):
                self.reasonText = str(reason).strip() or None
        for destroy in element.elements(NS_MUC_USER, "destroy"):
            self.destroyed = True
            if destroy.hasAttribute("jid"):
                try:
                    self.alternate = jid.JID(destroy["jid"])
                except BAD_JID:
                    pass
            for reason in destroy.elements(NS_MUC_USER, "reason"):
                self.destroyReason = str(reason).strip() or None


def jidOrNone(value: str | None) -> jid.JID | None:
    if not value:
        return None
    try:
        return jid.JID(value)
    except BAD_JID:
        return None


def textOf(element: domish.Element, name: str) -> str | None:
    for child in element.elements():
        if child.name == name:
            text = str(child).strip()
            return text or None
    return None


def isHandled(element: domish.Element) -> bool:
    """
    @return: whether another observer already took this stanza.
    """
    return bool(getattr(element, "handled", False))


def markHandled(element: domish.Element) -> None:
    """
    Tell later observers (wokkel's fallback handler among them) that this
    stanza is taken care of.
    """
    setattr(element, "handled", True)


# --- requests ----------------------------------------------------------------------


class InstantRoomRequest(generic.Request):
    """
    XEP-0045 10.1.2: accept the default configuration, C{<query/>} holding
    an empty x:data form of type submit.
    """

    stanzaType = "set"

    def toElement(self) -> domish.Element:
        element: domish.Element = generic.Request.toElement(self)
        query = element.addElement((NS_MUC_OWNER, "query"))
        query.addElement((NS_DATA, "x"))["type"] = "submit"
        return element


class PingRequest(generic.Request):
    """
    XEP-0199 ping (XEP-0410 self-ping).
    """

    stanzaType = "get"

    def toElement(self) -> domish.Element:
        element: domish.Element = generic.Request.toElement(self)
        element.addElement((NS_PING, "ping"))
        return element


# --- the room side's parsing ----------------------------------------------------

#: XEP-0085 chat state names.
_CHAT_STATE_NAMES = frozenset(state.value for state in ChatStateNotification)


def parseStamp(value: str) -> datetime.datetime | None:
    try:
        stamp = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp


def nonNegative(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def parseJoin(
    presence: domish.Element,
) -> tuple[bool, str | None, HistoryRequest | None]:
    """
    Read the MUC C{<x/>} of a join presence (XEP-0045 section 7.2).

    @return: whether it has one, the password, and the history limits
        (invalid attributes are ignored, as a service may).
    """
    for x in presence.elements(NS_MUC, "x"):
        password = None
        history = None
        for child in x.elements():
            if child.uri != NS_MUC:
                continue
            if child.name == "password":
                password = str(child)
            elif child.name == "history":
                since = child.getAttribute("since")
                history = HistoryRequest(
                    maxChars=nonNegative(child.getAttribute("maxchars")),
                    maxStanzas=nonNegative(child.getAttribute("maxstanzas")),
                    seconds=nonNegative(child.getAttribute("seconds")),
                    since=parseStamp(since) if since is not None else None,
                )
        return True, password, history
    return False, None, None


def childText(element: domish.Element, name: str) -> str | None:
    for child in element.elements():
        if child.name == name and child.uri in (
            None,
            "jabber:client",
            "jabber:component:accept",
            element.uri,
        ):
            return str(child)
    return None


def chatStateName(message: domish.Element) -> str | None:
    for child in message.elements(NS_CHATSTATES):
        if child.name in _CHAT_STATE_NAMES:
            return str(child.name)
    return None


# --- the room side's stanzas (XEP-0045 as a service) --------------------------------


def formatStamp(stamp: datetime.datetime) -> str:
    """
    XEP-0082 DateTime in UTC, as XEP-0203 requires (R-204), with
    milliseconds when the time has a fraction.
    """
    utc = stamp.astimezone(datetime.timezone.utc)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += f".{utc.microsecond // 1000:03d}"
    return text + "Z"


class StampedDelay(Delay):
    """
    wokkel's XEP-0203 L{Delay}, keeping the milliseconds of its stamp
    (wokkel drops fractions of a second, which would reorder the history of
    a busy room).
    """

    def toElement(self, legacy: bool = False) -> domish.Element:
        element: domish.Element = super().toElement(legacy=legacy)
        if not legacy:
            element["stamp"] = formatStamp(self.stamp)
        return element


def delayElement(stamp: datetime.datetime, sender: str) -> domish.Element:
    """
    @return: a C{<delay/>} (XEP-0203) from C{sender} (a room's address).
    """
    element: domish.Element = StampedDelay(stamp, jid.internJID(sender)).toElement()
    return element


def roomMessage(
    sender: str,
    recipient: str,
    messageType: str,
    messageID: str,
    body: str | None = None,
    chatState: str | None = None,
    stamp: datetime.datetime | None = None,
    delayFrom: str | None = None,
    mucUser: bool = False,
) -> domish.Element:
    """
    A message from a room or one of its occupants: groupchat (XEP-0045 7.4,
    with a XEP-0203 delay for history, 7.2.15) or private (7.5: type chat
    with the muc#user C{<x/>}).

    Hand-built rather than wokkel's L{GroupChat<wokkel.muc.GroupChat>}:
    wokkel's messages drop an empty body, and take sender and recipient as
    parsed JIDs (one stringprep per recipient per message).
    """
    message = domish.Element((None, "message"))
    message["from"] = sender
    message["to"] = recipient
    message["type"] = messageType
    message["id"] = messageID
    if body is not None:
        message.addElement("body", content=body)
    if chatState is not None:
        message.addElement((NS_CHATSTATES, chatState))
    if mucUser:
        message.addElement((NS_MUC_USER, "x"))
    if stamp is not None:
        message.addChild(delayElement(stamp, delayFrom or sender))
    return message


def subjectMessage(
    roomAddress: str,
    recipient: str,
    messageID: str,
    text: str,
    stamp: datetime.datetime | None = None,
) -> domish.Element:
    """
    The subject message (XEP-0045 section 7.2.15): from the room, no body,
    an empty C{<subject/>} if there is none (R-189, R-217; wokkel's
    messages drop an empty subject).
    """
    message = domish.Element((None, "message"))
    message["from"] = roomAddress
    message["to"] = recipient
    message["type"] = "groupchat"
    message["id"] = messageID
    message.addElement("subject", content=text)
    if stamp is not None:
        message.addChild(delayElement(stamp, roomAddress))
    return message


def occupantPresence(
    sender: str,
    recipient: str,
    affiliation: str,
    role: str,
    *,
    unavailable: bool = False,
    show: str | None = None,
    statusText: str | None = None,
    realJID: str | None = None,
    statuses: Iterable[int] = (),
    itemNick: str | None = None,
    reason: str | None = None,
    presenceID: str | None = None,
) -> domish.Element:
    """
    An occupant presence from a room with exactly one muc#user C{<x/>}
    (XEP-0045 section 7.2.3, R-185): item (affiliation, role, real JID,
    new nick, reason), then the status codes in order.
    """
    presence = domish.Element((None, "presence"))
    presence["from"] = sender
    presence["to"] = recipient
    if presenceID is not None:
        presence["id"] = presenceID
    if unavailable:
        presence["type"] = "unavailable"
    elif show:
        presence.addElement("show", content=show)
    if statusText:
        presence.addElement("status", content=statusText)
    x = presence.addElement((NS_MUC_USER, "x"))
    item = x.addElement("item")
    item["affiliation"] = affiliation
    item["role"] = role
    if realJID is not None:
        item["jid"] = realJID
    if itemNick is not None:
        item["nick"] = itemNick
    if reason:
        item.addElement("reason", content=reason)
    for code in sorted(set(statuses)):
        x.addElement("status")["code"] = str(int(code))
    return presence
