# -*- test-case-name: tests.xmpp.test_occupant -*-
"""
The MUC occupant side of the gateway (RFC 7702 section 6, "Gateway B"):
SIP users inside XMPP rooms.

One L{OccupantService} runs on the component link of the gateway's user
domain (C{sip.example}) and holds any number of occupants over that one
stream.  An occupant is keyed by (room JID, real JID): the real JID is the
SIP user's address on the user domain (C{alice@sip.example/<resource>}),
so two SIP users can sit in the same room, and one SIP user in many rooms.
wokkel's L{MUCClient<wokkel.muc.MUCClient>} keeps one occupant per room, so
only wokkel's stanza classes are reused here (L{UserPresence}, L{GroupChat},
L{PrivateChat}, L{BasicPresence}, L{HistoryOptions}, L{InviteMessage}), and
the state is this module's own.

What it does (XEP-0045 section numbers):

  - join (7.2): other occupants' presence, then the self-presence with
    status 110 completes the join (R-184); status 201 means the room was
    created and is locked: with C{instantRooms} the instant-room form
    (10.1.2) is submitted before the join completes, so others can enter;
    each entry error is its own exception (L{NicknameConflict},
    L{RegistrationRequired}, L{Banned}, L{NotAuthorized}, L{RoomFull},
    L{RoomNotFound}, ...);
  - roster changes, nick changes (7.6, status 303), removals (kick 307,
    ban 301, affiliation 321, members-only 322, shutdown 332, technical
    333, room destroyed) as a L{LeftReason} (R-199);
  - subject (including the empty subject), history with XEP-0203 delay
    stamps as timezone-aware datetimes, live groupchat messages; our own
    reflected messages are flagged with the id they reflect (R-196) and
    fire the L{OccupantService.sendGroupchat} Deferred; a message error
    fails it with the stanza error; the wait is bounded (R-211);
  - private messages both ways (7.5; type chat with a muc#user C{<x/>},
    R-197), mediated invitations and declines (7.8, R-198), XEP-0249
    direct invitations, XEP-0085 chat states both ways (never C{gone} to a
    room, R-202);
  - XEP-0410: pings and disco#info queries addressed to an occupant's real
    JID are answered (so a room's ghost check keeps the SIP user in), and
    L{OccupantService.selfPing} checks whether a room still has us;
  - the link going down marks occupants for rejoin
    (L{IOccupantHandler.linkLost}), its return is reported
    (L{IOccupantHandler.linkRestored}), and L{OccupantService.rejoinAll}
    joins them again with the history since the loss.
"""

from __future__ import annotations

import datetime
import enum
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import stoxgw.xmpp  # noqa: F401  (wokkel compat names first)

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.xish import domish
from wokkel import generic, muc
from wokkel.delay import Delay
from wokkel.subprotocols import XMPPHandler
from zope.interface import Interface, implementer

from stoxgw.xmpp.component import ILinkObserver, LinkDown

NS_MUC = muc.NS_MUC
NS_MUC_USER = muc.NS_MUC_USER
NS_MUC_OWNER = muc.NS_MUC_OWNER
NS_DATA = "jabber:x:data"
NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
NS_PING = "urn:xmpp:ping"
NS_DISCO_INFO = "http://jabber.org/protocol/disco#info"
NS_DELAY = "urn:xmpp:delay"
NS_SID = "urn:xmpp:sid:0"
NS_CONFERENCE = "jabber:x:conference"
NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

#: Features the gateway's users answer in disco#info (XEP-0045 6.7).
USER_FEATURES = (NS_DISCO_INFO, NS_MUC, NS_PING, NS_CHATSTATES)

OccupantKey = tuple[jid.JID, jid.JID]


# --- model -------------------------------------------------------------------


class ChatState(enum.Enum):
    """
    XEP-0085 chat states.
    """

    ACTIVE = "active"
    COMPOSING = "composing"
    PAUSED = "paused"
    INACTIVE = "inactive"
    GONE = "gone"


class LeftReason(enum.Enum):
    """
    Why an occupant is out of a room (XEP-0045 status codes, R-199).
    """

    LEFT = "left"  # its own unavailable presence
    KICKED = "kicked"  # 307
    BANNED = "banned"  # 301
    AFFILIATION_CHANGED = "affiliation-changed"  # 321
    MEMBERS_ONLY = "members-only"  # 322
    SHUTDOWN = "shutdown"  # 332
    TECHNICAL = "technical"  # 333
    DESTROYED = "destroyed"  # <destroy/>


class OccupantState(enum.Enum):
    """
    Where one of the gateway's occupants is in its life.
    """

    JOINING = "joining"
    CONFIGURING = "configuring"  # 201 seen, instant-room form submitted
    JOINED = "joined"
    CHANGING_NICK = "changing-nick"
    LEAVING = "leaving"
    NEEDS_REJOIN = "needs-rejoin"  # the link was lost


class SelfPingResult(enum.Enum):
    """
    What a XEP-0410 self-ping says.
    """

    JOINED = "joined"
    NOT_JOINED = "not-joined"
    UNKNOWN = "unknown"  # no answer in time


@dataclass(frozen=True, slots=True)
class Occupant:
    """
    One entry of a room's roster as one of our occupants sees it.

    @ivar jid: the occupant's real JID, if the room exposes it.
    @ivar statusCodes: the muc#user status codes of the last presence.
    """

    nick: str
    affiliation: str | None = None
    role: str | None = None
    jid: jid.JID | None = None
    show: str | None = None
    status: str | None = None
    isSelf: bool = False
    statusCodes: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Removal:
    """
    How an occupant left (XEP-0045 7.14, 8.2, 9.1, 10.9).

    @ivar actor: who removed it (a JID or nick, as the room gave it).
    @ivar text: the C{<reason/>} text.
    @ivar alternate: a destroyed room's alternate venue.
    """

    reason: LeftReason
    statusCodes: frozenset[int] = frozenset()
    actor: str | None = None
    text: str | None = None
    alternate: jid.JID | None = None


@dataclass(frozen=True, slots=True)
class JoinResult:
    """
    A completed join.

    @ivar nick: the nick the room gave us (differs when status 210).
    @ivar occupants: the roster as it was when the 110 self-presence came.
    @ivar created: the room was created by this join (status 201).
    @ivar locked: created and still locked (C{instantRooms} off, or the
        room does not need the form).
    """

    roomJID: jid.JID
    realJID: jid.JID
    nick: str
    occupants: tuple[Occupant, ...]
    self: Occupant
    created: bool = False
    locked: bool = False
    statusCodes: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Subject:
    """
    A room subject (XEP-0045 8.1); C{text} is empty for the empty subject.
    """

    text: str
    nick: str | None = None
    stamp: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class GroupchatMessage:
    """
    A groupchat message received by one of our occupants.

    @ivar nick: the sender's nick, L{None} for the room itself.
    @ivar stamp: XEP-0203 original time (timezone-aware), if delayed.
    @ivar history: discussion history sent on joining (XEP-0045 7.2.15).
    @ivar fromSelf: sent from our own occupant's nick.
    @ivar reflectionOf: the id of our own message this reflects.
    """

    nick: str | None
    body: str
    stanzaID: str | None = None
    stamp: datetime.datetime | None = None
    history: bool = False
    fromSelf: bool = False
    reflectionOf: str | None = None
    chatState: ChatState | None = None


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    """
    A private message from an occupant (XEP-0045 7.5).
    """

    nick: str
    body: str
    stanzaID: str | None = None
    chatState: ChatState | None = None
    stamp: datetime.datetime | None = None


@dataclass(frozen=True, slots=True)
class Invitation:
    """
    An invitation to a room: mediated (XEP-0045 7.8.2) or direct (XEP-0249).

    @ivar invitee: the address it was sent to (one of our users).
    @ivar inviter: who invites, if given.
    """

    roomJID: jid.JID
    invitee: jid.JID
    inviter: jid.JID | None = None
    reason: str | None = None
    password: str | None = None
    continued: bool = False
    direct: bool = False


@dataclass(frozen=True, slots=True)
class Decline:
    """
    An invitee declined an invitation we sent (XEP-0045 7.8.2).
    """

    roomJID: jid.JID
    decliner: jid.JID | None = None
    reason: str | None = None


# --- errors ------------------------------------------------------------------


class OccupantError(Exception):
    """
    A MUC operation failed.

    @cvar condition: the XMPP stanza error condition this stands for (the
        interworking layer maps it to a SIP or MSRP status).
    @ivar stanzaError: the error stanza received, if any.
    """

    condition: ClassVar[str] = "undefined-condition"

    def __init__(
        self, text: str | None = None, stanzaError: error.StanzaError | None = None
    ) -> None:
        super().__init__(text or self.condition)
        self.text = text
        self.stanzaError = stanzaError


class NicknameConflict(OccupantError):
    """
    409: the nick is in use or reserved (XEP-0045 7.2.9, 7.6).
    """

    condition = "conflict"


class RegistrationRequired(OccupantError):
    """
    407: members-only room (XEP-0045 7.2.7).
    """

    condition = "registration-required"


class Banned(OccupantError):
    """
    403: the user is an outcast (XEP-0045 7.2.8).
    """

    condition = "forbidden"


class NotAuthorized(OccupantError):
    """
    401: password missing or wrong (XEP-0045 7.2.6).
    """

    condition = "not-authorized"


class RoomFull(OccupantError):
    """
    503: the room has its maximum of occupants (XEP-0045 7.2.10).
    """

    condition = "service-unavailable"


class RoomNotFound(OccupantError):
    """
    404: the room does not exist or is locked (XEP-0045 7.2.11).
    """

    condition = "item-not-found"


class NotAllowed(OccupantError):
    """
    405: room creation is restricted (XEP-0045 10.1.1).
    """

    condition = "not-allowed"


class NickNotAcceptable(OccupantError):
    """
    406: nicks are locked down (XEP-0045 7.6).
    """

    condition = "not-acceptable"


class JIDMalformed(OccupantError):
    """
    400 jid-malformed: no or bad nick (XEP-0045 7.2.1).
    """

    condition = "jid-malformed"


class OccupantTimeout(OccupantError):
    """
    The room did not answer in time.
    """

    condition = "remote-server-timeout"


class ReflectionTimeout(OccupantTimeout):
    """
    A groupchat message was neither reflected nor refused in time (R-211).
    """


class LinkLost(OccupantError):
    """
    The component link went down before the room answered.
    """

    condition = "service-unavailable"


class NotInRoom(OccupantError):
    """
    The operation needs an occupant that is not in the room.
    """

    condition = "not-acceptable"


class RoomConfigurationFailed(OccupantError):
    """
    The room was created but refused the instant-room form (XEP-0045 10.1.2).
    """


class RemovedWhileJoining(OccupantError):
    """
    The room removed us before the join completed.

    @ivar removal: how.
    """

    def __init__(self, removal: Removal) -> None:
        super().__init__(f"removed while joining: {removal.reason.value}")
        self.removal = removal


#: Entry and nick-change error conditions and their exceptions.
ERROR_CLASSES: dict[str, type[OccupantError]] = {
    cls.condition: cls
    for cls in (
        NicknameConflict,
        RegistrationRequired,
        Banned,
        NotAuthorized,
        RoomFull,
        RoomNotFound,
        NotAllowed,
        NickNotAcceptable,
        JIDMalformed,
    )
}


#: What Twisted's JID parser raises for malformed JIDs: L{InvalidFormat},
#: but also IndexError (an empty domain label, C{a..b}) and RuntimeError
#: (an empty string) - found by fuzzing (fuzz/fuzz_xmpp_occupant.py).
_BAD_JID = (jid.InvalidFormat, IndexError, RuntimeError, ValueError)


def _stanzaErrorOf(element: domish.Element) -> error.StanzaError:
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


def errorFromStanza(element: domish.Element) -> OccupantError:
    """
    The exception for an error presence received while joining or changing
    nick.

    @return: an instance of the L{ERROR_CLASSES} class for its condition,
        else a plain L{OccupantError} carrying the condition.
    """
    stanzaError = _stanzaErrorOf(element)
    condition = getattr(stanzaError, "condition", None) or "undefined-condition"
    cls = ERROR_CLASSES.get(condition)
    if cls is not None:
        return cls(getattr(stanzaError, "text", None), stanzaError)
    generic_ = OccupantError(getattr(stanzaError, "text", None) or condition, stanzaError)
    generic_.condition = condition  # type: ignore[misc]
    return generic_


# --- sans-IO stanza helpers ---------------------------------------------------


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
                except _BAD_JID:
                    pass
            for reason in destroy.elements(NS_MUC_USER, "reason"):
                self.destroyReason = str(reason).strip() or None

    def occupant(self, isSelf: bool) -> Occupant:
        """
        @return: the roster entry this presence describes (its affiliation,
            role and show interned: a room of n occupants sends each value
            n times).
        """
        return Occupant(
            nick=self.sender.resource or "",
            affiliation=_intern(self.affiliation),
            role=_intern(self.role),
            jid=self.entity,
            show=_intern(self.show),
            status=self.statuses.get(None) or next(iter(self.statuses.values()), None),
            isSelf=isSelf,
            statusCodes=self.statusCodes,
        )

    def removal(self) -> Removal:
        """
        @return: why this unavailable presence takes its occupant out.
        """
        return Removal(
            reason=leftReason(self.statusCodes, self.destroyed),
            statusCodes=self.statusCodes,
            actor=self.actor,
            text=self.destroyReason if self.destroyed else self.reasonText,
            alternate=self.alternate,
        )


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


def _intern(value: str | None) -> str | None:
    return sys.intern(value) if value is not None else None


def leftReason(codes: frozenset[int], destroyed: bool = False) -> LeftReason:
    """
    Classify an unavailable presence.  A technical removal often comes as
    307 + 333 (Prosody does so), so 333 wins over 307; shutdown and
    destruction win over everything.
    """
    if destroyed:
        return LeftReason.DESTROYED
    for code, reason in (
        (332, LeftReason.SHUTDOWN),
        (333, LeftReason.TECHNICAL),
        (301, LeftReason.BANNED),
        (321, LeftReason.AFFILIATION_CHANGED),
        (322, LeftReason.MEMBERS_ONLY),
        (307, LeftReason.KICKED),
    ):
        if code in codes:
            return reason
    return LeftReason.LEFT


def chatStateOf(element: domish.Element) -> ChatState | None:
    """
    @return: the XEP-0085 chat state of a message, if any (the first).
    """
    for child in element.elements():
        if child.uri == NS_CHATSTATES:
            try:
                return ChatState(child.name)
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
    chatState: ChatState | None = None,
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


class _InstantRoomRequest(generic.Request):
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


class _PingRequest(generic.Request):
    """
    XEP-0199 ping (XEP-0410 self-ping).
    """

    stanzaType = "get"

    def toElement(self) -> domish.Element:
        element: domish.Element = generic.Request.toElement(self)
        element.addElement((NS_PING, "ping"))
        return element


# --- the handler interface ---------------------------------------------------


class IOccupantHandler(Interface):
    """
    What the layer above (interworking) is told about the gateway's
    occupants.  Every call names the occupant by C{roomJID} (bare) and
    C{realJID} (the SIP user's full JID on the gateway's domain).
    """

    def occupantAvailable(
        roomJID: jid.JID, realJID: jid.JID, occupant: Occupant, new: bool
    ) -> None:
        """
        An occupant's presence: entering (C{new}) or updated; also our own
        occupant's updates after the join (C{occupant.isSelf}).
        """

    def occupantLeft(
        roomJID: jid.JID, realJID: jid.JID, occupant: Occupant, removal: Removal
    ) -> None:
        """
        Another occupant left the room (or was removed).
        """

    def occupantNickChanged(
        roomJID: jid.JID, realJID: jid.JID, oldNick: str, occupant: Occupant
    ) -> None:
        """
        Another occupant changed nick (status 303).
        """

    def nickChanged(roomJID: jid.JID, realJID: jid.JID, oldNick: str, newNick: str) -> None:
        """
        Our own occupant's nick changed (asked for, or by the service).
        """

    def left(roomJID: jid.JID, realJID: jid.JID, removal: Removal) -> None:
        """
        Our own occupant is out of the room, for C{removal.reason}.
        """

    def subjectReceived(roomJID: jid.JID, realJID: jid.JID, subject: Subject) -> None:
        """
        The room's subject (on joining, and on changes).
        """

    def groupchatReceived(
        roomJID: jid.JID, realJID: jid.JID, message: GroupchatMessage
    ) -> None:
        """
        A groupchat message (history, live, or our own reflected).
        """

    def privateMessageReceived(
        roomJID: jid.JID, realJID: jid.JID, message: PrivateMessage
    ) -> None:
        """
        A private message from another occupant.
        """

    def chatStateReceived(
        roomJID: jid.JID, realJID: jid.JID, nick: str, state: ChatState, private: bool
    ) -> None:
        """
        A standalone XEP-0085 notification from another occupant.
        """

    def messageFailed(
        roomJID: jid.JID, realJID: jid.JID, stanzaID: str | None, reason: error.StanzaError
    ) -> None:
        """
        A message error for no pending groupchat send (a private message, or
        a groupchat message whose wait had already ended).
        """

    def invitationReceived(realJID: jid.JID, invitation: Invitation) -> None:
        """
        One of our users (C{realJID}, perhaps bare) is invited to a room.
        """

    def declineReceived(realJID: jid.JID, decline: Decline) -> None:
        """
        An invitation sent by C{realJID} was declined.
        """

    def linkLost(domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The component link went down; these occupants need a rejoin.
        """

    def linkRestored(domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The component link is back; these occupants still need a rejoin
        (L{OccupantService.rejoinAll}).
        """


# --- the service ---------------------------------------------------------------


class _Waiter:
    """
    A Deferred with a timer that ends once: result, error, or timeout.
    """

    def __init__(
        self, clock: IReactorTime, timeout: float, onTimeout: Callable[[], None]
    ) -> None:
        self.deferred: defer.Deferred[Any] = defer.Deferred()
        self._timer: IDelayedCall | None = clock.callLater(timeout, self._expire, onTimeout)

    def _expire(self, onTimeout: Callable[[], None]) -> None:
        self._timer = None
        onTimeout()

    @property
    def done(self) -> bool:
        return self.deferred.called

    def callback(self, result: object) -> None:
        self._cancelTimer()
        if not self.deferred.called:
            self.deferred.callback(result)

    def errback(self, reason: BaseException | Failure) -> None:
        self._cancelTimer()
        if not self.deferred.called:
            self.deferred.errback(reason)

    def _cancelTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


@dataclass(eq=False, slots=True)
class _PendingSend:
    waiter: _Waiter
    body: str
    stanzaID: str


@dataclass(eq=False, slots=True)
class _OccupantRecord:
    """
    The state of one of our occupants.

    @ivar roster: the room's roster, shared with our other occupants there.
    @ivar slot: this occupant's bit in L{roster}.
    @ivar own: roster entries as this occupant saw them where they differ
        from the shared ones (a moderator sees real JIDs others do not; an
        update that reached some of our occupants and not yet this one).
    """

    roomJID: jid.JID
    realJID: jid.JID
    nick: str
    password: str | None
    history: muc.HistoryOptions | None
    roster: _RoomRoster
    slot: int = 0
    own: dict[str, Occupant] | None = None
    state: OccupantState = OccupantState.JOINING
    self_: Occupant | None = None
    created: bool = False
    subjectSeen: bool = False
    join: _Waiter | None = None
    nickChange: _Waiter | None = None
    pendingNick: str | None = None
    expectedNick: str | None = None
    leave: _Waiter | None = None
    sends: dict[str, _PendingSend] = field(default_factory=dict)
    lostAt: float | None = None
    rejoining: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.roomJID.userhost(), self.realJID.full())

    @property
    def occupantJID(self) -> jid.JID:
        return jid.JID(tuple=(self.roomJID.user, self.roomJID.host, self.nick))


class _RoomRoster:
    """
    One room's roster, shared by all of the gateway's occupants in it: the
    room sends every presence to each of them, and n occupants each keeping
    their own copy cost n*n entries (issue 12, W7).

    Each entry records which of our occupants have it in their view (a bit
    per occupant, L{_OccupantRecord.slot}), so that every occupant still
    sees exactly the presences it was sent: an entry is new to an occupant
    that has not had it, even if another one has.  Where an occupant got a
    different entry for a nick than the shared one, it keeps its own
    (L{_OccupantRecord.own}) until the entries agree again.

    @ivar entries: the shared entry of each nick.
    @ivar seen: the bits of the occupants whose view of a nick is its
        shared entry.
    @ivar members: our occupants in the room, by slot.
    """

    __slots__ = ("entries", "seen", "members")

    def __init__(self) -> None:
        self.entries: dict[str, Occupant] = {}
        self.seen: dict[str, int] = {}
        self.members: dict[int, _OccupantRecord] = {}

    def add(self, record: _OccupantRecord) -> None:
        """
        Give an occupant the lowest free slot, with an empty view.
        """
        slot = 0
        while slot in self.members:
            slot += 1
        record.slot = slot
        record.own = None
        self.members[slot] = record

    def remove(self, record: _OccupantRecord) -> None:
        """
        Take an occupant out (its view first).
        """
        if self.members.get(record.slot) is not record:
            return
        self.clear(record)
        del self.members[record.slot]

    def get(self, record: _OccupantRecord, nick: str) -> Occupant | None:
        """
        @return: C{nick}'s entry as C{record} sees it, if it has one.
        """
        if record.own is not None and nick in record.own:
            return record.own[nick]
        if self.seen.get(nick, 0) & (1 << record.slot):
            return self.entries[nick]
        return None

    def has(self, record: _OccupantRecord, nick: str) -> bool:
        """
        @return: whether C{nick} is in C{record}'s view.
        """
        return self.get(record, nick) is not None

    def put(self, record: _OccupantRecord, occupant: Occupant) -> None:
        """
        Set C{record}'s view of C{occupant.nick}.
        """
        if self.members.get(record.slot) is not record:
            return
        nick = occupant.nick
        self.pop(record, nick)
        bit = 1 << record.slot
        shared = self.entries.get(nick)
        if shared is None:
            self.entries[nick] = occupant
            self.seen[nick] = bit
            self._share(nick)
        elif shared == occupant:
            self.seen[nick] |= bit
        else:
            if record.own is None:
                record.own = {}
            record.own[nick] = occupant

    def pop(self, record: _OccupantRecord, nick: str) -> Occupant | None:
        """
        Take C{nick} out of C{record}'s view.

        @return: the entry it had.
        """
        if record.own is not None and nick in record.own:
            occupant = record.own.pop(nick)
            if not record.own:
                record.own = None
            return occupant
        bit = 1 << record.slot
        seen = self.seen.get(nick, 0)
        if not seen & bit:
            return None
        occupant = self.entries[nick]
        if seen == bit:
            del self.entries[nick]
            del self.seen[nick]
            self._promote(nick)
        else:
            self.seen[nick] = seen & ~bit
        return occupant

    def clear(self, record: _OccupantRecord) -> None:
        """
        Empty C{record}'s view.
        """
        bit = 1 << record.slot
        for nick in [nick for nick, seen in self.seen.items() if seen & bit]:
            self.pop(record, nick)
        record.own = None

    def view(self, record: _OccupantRecord) -> dict[str, Occupant]:
        """
        @return: C{record}'s view, by nick.
        """
        bit = 1 << record.slot
        own = record.own or {}
        result = {
            nick: own.get(nick, occupant)
            for nick, occupant in self.entries.items()
            if self.seen[nick] & bit or nick in own
        }
        return result

    def _promote(self, nick: str) -> None:
        """
        C{nick} has no shared entry: make one of the occupants' own entries
        for it the shared one.
        """
        for record in self.members.values():
            if record.own is not None and nick in record.own:
                self.entries[nick] = record.own.pop(nick)
                self.seen[nick] = 1 << record.slot
                if not record.own:
                    record.own = None
                self._share(nick)
                return

    def _share(self, nick: str) -> None:
        """
        The occupants whose own entry for C{nick} equals the shared one
        now see the shared one.
        """
        shared = self.entries[nick]
        for record in self.members.values():
            if record.own is not None and record.own.get(nick) == shared:
                del record.own[nick]
                self.seen[nick] |= 1 << record.slot
                if not record.own:
                    record.own = None


#: States in which the room counts us as an occupant.
_IN_ROOM = frozenset(
    {OccupantState.CONFIGURING, OccupantState.JOINED, OccupantState.CHANGING_NICK}
)


@implementer(ILinkObserver)
class OccupantService(XMPPHandler):
    """
    The gateway's MUC occupants on one component link (the user domain).

    @ivar domain: the user domain (real JIDs live there).
    @ivar handler: told what happens (L{IOccupantHandler}).
    @ivar instantRooms: on status 201, submit the instant-room form
        (XEP-0045 10.1.2) so that the created room unlocks.
    @ivar timeout: seconds to wait for a join, nick change, leave, IQ.
    @ivar reflectionTimeout: seconds to wait for a groupchat reflection
        (R-211: well below the MSRP sender's 30 s).
    @ivar history: default C{<history/>} of a join (R-195).
    """

    _log = Logger()

    def __init__(
        self,
        handler: IOccupantHandler,
        clock: IReactorTime,
        domain: str,
        instantRooms: bool = True,
        timeout: float = 30.0,
        reflectionTimeout: float = 10.0,
        history: muc.HistoryOptions | None = None,
        idFactory: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        super().__init__()
        self.handler = handler
        self.clock = clock
        self.domain = domain
        self.instantRooms = instantRooms
        self.timeout = timeout
        self.reflectionTimeout = reflectionTimeout
        self.history = history if history is not None else muc.HistoryOptions(maxStanzas=20)
        self.idFactory = idFactory
        self.linkIsUp = False
        self._lost = False
        self._occupants: dict[tuple[str, str], _OccupantRecord] = {}
        self._leftWhileDown: dict[tuple[str, str], tuple[jid.JID, str, jid.JID]] = {}
        self._rosters: dict[str, _RoomRoster] = {}

    # -- wiring ------------------------------------------------------------

    def attach(self, link: Any) -> None:
        """
        Put this service on a L{ComponentLink<stoxgw.xmpp.component.ComponentLink>}:
        its stream manager and its observers.
        """
        link.observers.append(self)
        self.setHandlerParent(link.streamManager)
        self.linkIsUp = bool(link.up)

    def connectionInitialized(self) -> None:
        """
        Watch the stream for stanzas to our users (before other handlers).
        """
        self.xmlstream.addObserver("/presence", self._onPresence, 10)
        self.xmlstream.addObserver("/message", self._onMessage, 10)
        self.xmlstream.addObserver("/iq[@type='get']", self._onIQGet, 10)
        # Last of all: what nobody took still gets an answer (RFC 6120
        # section 8.2.3 for IQs; errors for stanzas to occupants we do not
        # have, so that a server holding a ghost of ours drops it).
        self.xmlstream.addObserver("/iq[@type='get']", self._unhandledIQ, -10)
        self.xmlstream.addObserver("/iq[@type='set']", self._unhandledIQ, -10)
        self.xmlstream.addObserver("/message", self._unhandledMessage, -10)
        self.xmlstream.addObserver("/presence", self._unhandledPresence, -10)

    def linkUp(self, domain: str) -> None:
        """
        L{ILinkObserver}: the link is up.  If it is back after a loss, tell
        the handler which occupants wait for a rejoin.
        """
        if domain != self.domain:
            return
        self.linkIsUp = True
        if not self._lost:
            return
        self._lost = False
        self._sendLeftWhileDown()
        keys = self._keys(OccupantState.NEEDS_REJOIN)
        try:
            self.handler.linkRestored(domain, keys)
        except Exception:
            self._log.failure("Telling the occupant handler of the link's return")

    def _sendLeftWhileDown(self) -> None:
        """
        Occupants that left while the link was down may still be in the
        room (a server that keeps occupants across its restart, or one
        that never saw the link drop): send their unavailable presence now,
        so that no ghost stays.
        """
        left, self._leftWhileDown = self._leftWhileDown, {}
        for roomJID, nick, realJID in left.values():
            occupantJID = jid.JID(tuple=(roomJID.user, roomJID.host, nick))
            presence = muc.xmppim.AvailabilityPresence(
                recipient=occupantJID, sender=realJID, available=False
            )
            try:
                self._send(presence.toElement())
            except LinkLost as e:
                self._log.warn(
                    "Cannot send the unavailable presence of {nick} in {roomJID}: {error}",
                    nick=nick, roomJID=roomJID.userhost(), error=e,
                )

    def linkDown(self, domain: str, reason: Failure) -> None:
        """
        L{ILinkObserver}: the link is gone.  Pending operations fail with
        L{LinkLost}; occupants in rooms are marked for rejoin.
        """
        if domain != self.domain:
            return
        self.linkIsUp = False
        self._lost = True
        lost = LinkLost(reason.getErrorMessage())
        now = self.clock.seconds()
        for record in list(self._occupants.values()):
            self._failSends(record, lost)
            if record.nickChange is not None:
                record.pendingNick = None
                record.nickChange.errback(lost)
                record.nickChange = None
            if record.state is OccupantState.JOINING:
                if record.rejoining:
                    # Still to be rejoined after the next loss too.
                    record.state = OccupantState.NEEDS_REJOIN
                else:
                    self._forget(record)
                if record.join is not None:
                    record.join.errback(lost)
                    record.join = None
                continue
            if record.state is OccupantState.NEEDS_REJOIN:
                continue
            if record.state is OccupantState.LEAVING:
                # Its unavailable presence may not have arrived: again on
                # the link's return.
                self._leftWhileDown[record.key] = (record.roomJID, record.nick, record.realJID)
                self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False)
                continue
            if record.state is OccupantState.CONFIGURING and record.join is not None:
                record.join.errback(lost)
                record.join = None
            record.state = OccupantState.NEEDS_REJOIN
            record.lostAt = now
            record.roster.clear(record)
        try:
            self.handler.linkLost(domain, self._keys(OccupantState.NEEDS_REJOIN))
        except Exception:
            self._log.failure("Telling the occupant handler of the link loss")

    def _keys(self, state: OccupantState) -> list[OccupantKey]:
        return [
            (record.roomJID, record.realJID)
            for record in self._occupants.values()
            if record.state is state
        ]

    # -- queries ----------------------------------------------------------

    def occupants(self) -> list[OccupantKey]:
        """
        @return: (room JID, real JID) of every occupant we hold.
        """
        return [(r.roomJID, r.realJID) for r in self._occupants.values()]

    def stateOf(self, roomJID: jid.JID, realJID: jid.JID) -> OccupantState | None:
        """
        @return: the state of an occupant, L{None} if unknown.
        """
        record = self._occupants.get((roomJID.userhost(), realJID.full()))
        return record.state if record is not None else None

    def nickOf(self, roomJID: jid.JID, realJID: jid.JID) -> str | None:
        """
        @return: an occupant's current nick, L{None} if unknown.
        """
        record = self._occupants.get((roomJID.userhost(), realJID.full()))
        return record.nick if record is not None else None

    def rosterOf(self, roomJID: jid.JID, realJID: jid.JID) -> dict[str, Occupant]:
        """
        @return: the other occupants as one of ours sees them, by nick.
        """
        record = self._occupants.get((roomJID.userhost(), realJID.full()))
        return record.roster.view(record) if record is not None else {}

    # -- commands ---------------------------------------------------------

    def _record(self, roomJID: jid.JID, realJID: jid.JID) -> _OccupantRecord:
        record = self._occupants.get((roomJID.userhost(), realJID.full()))
        if record is None:
            raise NotInRoom(f"{realJID.full()} is not in {roomJID.userhost()}")
        return record

    def _forget(self, record: _OccupantRecord) -> None:
        """
        Drop an occupant: from L{_occupants} (if it is still the one held
        under its key) and from its room's shared roster.
        """
        if self._occupants.get(record.key) is record:
            del self._occupants[record.key]
        roster = record.roster
        roster.remove(record)
        if not roster.members and self._rosters.get(record.roomJID.userhost()) is roster:
            del self._rosters[record.roomJID.userhost()]

    def _send(self, element: domish.Element) -> None:
        """
        Send a stanza.

        @raise LinkLost: the link is down and its queue full.
        """
        try:
            self.send(element)
        except LinkDown as e:
            raise LinkLost(str(e)) from e

    def join(
        self,
        roomJID: jid.JID,
        nick: str,
        realJID: jid.JID,
        password: str | None = None,
        history: muc.HistoryOptions | None = None,
    ) -> defer.Deferred[JoinResult]:
        """
        Enter a room as C{realJID} (XEP-0045 7.2, R-194).

        @param roomJID: the room (a bare JID).
        @param realJID: one of our users, a full JID on L{domain}.
        @param history: the C{<history/>} to ask for; L{history} if L{None}.
        @return: fires with a L{JoinResult} once the self-presence (status
            110) came, and for a room we created, once the instant-room form
            was accepted (if L{instantRooms}); fails with an
            L{OccupantError} for an error presence (see L{ERROR_CLASSES}),
            L{OccupantTimeout}, L{LinkLost}.
        """
        if realJID.host != self.domain or not realJID.resource:
            return defer.fail(ValueError(f"{realJID.full()} is not a full JID on {self.domain}"))
        if not nick:
            return defer.fail(JIDMalformed("empty nick"))
        roomJID = roomJID.userhostJID()
        key = (roomJID.userhost(), realJID.full())
        existing = self._occupants.get(key)
        if existing is not None and existing.state is not OccupantState.NEEDS_REJOIN:
            return defer.fail(ValueError(f"{realJID.full()} is already in {roomJID.userhost()}"))
        if existing is not None:
            self._forget(existing)
        roster = self._rosters.get(key[0])
        if roster is None:
            roster = self._rosters[key[0]] = _RoomRoster()
        record = _OccupantRecord(
            roomJID, realJID, nick, password, history or self.history, roster
        )
        roster.add(record)
        record.join = _Waiter(self.clock, self.timeout, lambda: self._joinTimedOut(record))
        self._occupants[key] = record
        presence = muc.BasicPresence(recipient=record.occupantJID, sender=realJID)
        presence.password = password
        presence.history = record.history
        self._log.info(
            "Joining {roomJID} as {nick} for {realJID}",
            roomJID=roomJID.userhost(), nick=nick, realJID=realJID.full(),
        )
        try:
            self._send(presence.toElement())
        except LinkLost as e:
            self._forget(record)
            record.join.errback(e)
        return record.join.deferred

    def _joinTimedOut(self, record: _OccupantRecord) -> None:
        self._log.warn(
            "No answer from {roomJID} to the join of {nick}",
            roomJID=record.roomJID.userhost(), nick=record.nick,
        )
        if self._occupants.get(record.key) is record:
            self._forget(record)
            # If the room did let us in late, leave it again.
            unavailable = muc.xmppim.AvailabilityPresence(
                recipient=record.occupantJID, sender=record.realJID, available=False
            )
            try:
                self._send(unavailable.toElement())
            except LinkLost:
                pass
        assert record.join is not None
        record.join.errback(OccupantTimeout(f"no answer to the join of {record.roomJID.userhost()}"))

    def changeNick(self, roomJID: jid.JID, realJID: jid.JID, nick: str) -> defer.Deferred[str]:
        """
        Change an occupant's nick (XEP-0045 7.6, R-210).

        @return: fires with the new nick once the room sent the 303
            unavailable and the new nick's 110 presence; fails with
            L{NicknameConflict}, L{NickNotAcceptable} (nicks locked down),
            L{OccupantTimeout}, L{NotInRoom}.
        """
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        if record.state is not OccupantState.JOINED:
            return defer.fail(NotInRoom(f"cannot change nick while {record.state.value}"))
        if not nick:
            return defer.fail(JIDMalformed("empty nick"))
        if nick == record.nick:
            return defer.succeed(nick)
        record.state = OccupantState.CHANGING_NICK
        record.pendingNick = nick
        record.nickChange = _Waiter(self.clock, self.timeout, lambda: self._nickTimedOut(record))
        presence = muc.xmppim.AvailabilityPresence(
            recipient=jid.JID(tuple=(record.roomJID.user, record.roomJID.host, nick)),
            sender=record.realJID,
        )
        deferred = record.nickChange.deferred
        try:
            self._send(presence.toElement())
        except LinkLost as e:
            self._endNickChange(record, failure=e)
        return deferred

    def _nickTimedOut(self, record: _OccupantRecord) -> None:
        self._endNickChange(record, failure=OccupantTimeout("no answer to the nick change"))

    def _endNickChange(
        self, record: _OccupantRecord, nick: str | None = None, failure: Exception | None = None
    ) -> None:
        waiter, record.nickChange = record.nickChange, None
        record.pendingNick = None
        if record.state is OccupantState.CHANGING_NICK:
            record.state = OccupantState.JOINED
        if waiter is None:
            return
        if failure is not None:
            waiter.errback(failure)
        else:
            waiter.callback(nick)

    def leave(
        self, roomJID: jid.JID, realJID: jid.JID, status: str | None = None
    ) -> defer.Deferred[bool]:
        """
        Exit a room (XEP-0045 7.14).

        @return: fires with C{True} on the unavailable self-presence, with
            C{False} if it did not come in time (the occupant is forgotten
            either way); fails with L{NotInRoom}.
        """
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        if record.leave is not None:
            return _chain(record.leave.deferred)
        if record.state is OccupantState.NEEDS_REJOIN:
            # Unavailable on the link's return: the room may still list us.
            self._leftWhileDown[record.key] = (record.roomJID, record.nick, record.realJID)
            self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False)
            return defer.succeed(False)
        if record.state is OccupantState.JOINING and record.join is not None:
            record.join.errback(NotInRoom("join cancelled by leave"))
        self._endNickChange(record, failure=NotInRoom("left the room"))
        record.state = OccupantState.LEAVING
        record.leave = _Waiter(
            self.clock,
            self.timeout,
            lambda: self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False),
        )
        deferred = _chain(record.leave.deferred)
        presence = muc.xmppim.AvailabilityPresence(
            recipient=record.occupantJID, sender=record.realJID, available=False, status=status
        )
        try:
            self._send(presence.toElement())
        except LinkLost:
            self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False)
        return deferred

    def sendGroupchat(
        self,
        roomJID: jid.JID,
        realJID: jid.JID,
        body: str,
        stanzaID: str | None = None,
        chatState: ChatState | None = None,
    ) -> defer.Deferred[GroupchatMessage]:
        """
        Send a groupchat message (XEP-0045 7.4).

        @param stanzaID: the message id (generated if L{None}); also sent as
            XEP-0359 origin-id, so that the reflection can be matched even
            by a room that does not keep ids.
        @return: fires with the reflected L{GroupchatMessage}; fails with the
            L{StanzaError<twisted.words.protocols.jabber.error.StanzaError>}
            of a C{<message type='error'/>}, L{ReflectionTimeout},
            L{NotInRoom}, L{LinkLost}.
        """
        if chatState is ChatState.GONE:
            return defer.fail(ValueError("no <gone/> to a room (XEP-0085, R-202)"))
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        if record.state not in _IN_ROOM:
            return defer.fail(NotInRoom(f"not in the room ({record.state.value})"))
        stanzaID = stanzaID or self.idFactory()
        if stanzaID in record.sends:
            return defer.fail(ValueError(f"message id {stanzaID} already pending"))
        waiter = _Waiter(
            self.clock, self.reflectionTimeout, lambda: self._reflectionTimedOut(record, stanzaID)
        )
        record.sends[stanzaID] = _PendingSend(waiter, body, stanzaID)
        deferred = waiter.deferred
        try:
            self._send(
                buildMessage(record.realJID, record.roomJID, "groupchat", body, stanzaID, chatState)
            )
        except LinkLost as e:
            del record.sends[stanzaID]
            waiter.errback(e)
        return deferred

    def _reflectionTimedOut(self, record: _OccupantRecord, stanzaID: str) -> None:
        pending = record.sends.pop(stanzaID, None)
        if pending is not None:
            self._log.warn(
                "No reflection of message {stanzaID} in {roomJID} for {nick}",
                stanzaID=stanzaID, roomJID=record.roomJID.userhost(), nick=record.nick,
            )
            pending.waiter.errback(ReflectionTimeout(f"message {stanzaID} not reflected"))

    def sendPrivate(
        self,
        roomJID: jid.JID,
        realJID: jid.JID,
        nick: str,
        body: str | None,
        stanzaID: str | None = None,
        chatState: ChatState | None = None,
    ) -> str:
        """
        Send a private message to C{nick} in the room (XEP-0045 7.5: type
        chat with an empty muc#user C{<x/>}, R-197).  Errors come back
        through L{IOccupantHandler.messageFailed}.

        @return: the message id.
        @raise NotInRoom: the occupant is not in the room.
        @raise LinkLost: the link is down and its queue full.
        """
        record = self._record(roomJID, realJID)
        if record.state not in _IN_ROOM:
            raise NotInRoom(f"not in the room ({record.state.value})")
        stanzaID = stanzaID or self.idFactory()
        recipient = jid.JID(tuple=(record.roomJID.user, record.roomJID.host, nick))
        self._send(
            buildMessage(record.realJID, recipient, "chat", body, stanzaID, chatState, mucUser=True)
        )
        return stanzaID

    def sendChatState(
        self, roomJID: jid.JID, realJID: jid.JID, state: ChatState, nick: str | None = None
    ) -> None:
        """
        Send a standalone XEP-0085 notification to the room, or to C{nick}
        privately.  Never C{gone} to the room (R-202).

        @raise ValueError: C{gone} to the room.
        """
        if nick is None:
            if state is ChatState.GONE:
                raise ValueError("no <gone/> to a room (XEP-0085, R-202)")
        record = self._record(roomJID, realJID)
        if record.state not in _IN_ROOM:
            raise NotInRoom(f"not in the room ({record.state.value})")
        if nick is None:
            element = buildMessage(record.realJID, record.roomJID, "groupchat", None, None, state)
        else:
            recipient = jid.JID(tuple=(record.roomJID.user, record.roomJID.host, nick))
            element = buildMessage(record.realJID, recipient, "chat", None, None, state, True)
        self._send(element)

    def invite(
        self, roomJID: jid.JID, realJID: jid.JID, invitee: jid.JID, reason: str | None = None
    ) -> None:
        """
        Send a mediated invitation through the room (XEP-0045 7.8.2, R-198).
        """
        record = self._record(roomJID, realJID)
        message = muc.InviteMessage(
            recipient=record.roomJID, sender=record.realJID, invitee=invitee, reason=reason
        )
        self._send(message.toElement())

    def selfPing(self, roomJID: jid.JID, realJID: jid.JID) -> defer.Deferred[SelfPingResult]:
        """
        XEP-0410: ping our own occupant JID to learn whether the room still
        has us.

        @return: fires with L{SelfPingResult.JOINED} for a result or the
            errors that mean "joined" (service-unavailable,
            feature-not-implemented, item-not-found), L{NOT_JOINED} for any
            other error, L{UNKNOWN} when no answer came in time.
        """
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        request = _PingRequest(recipient=record.occupantJID, sender=record.realJID)
        request.timeout = self.timeout

        def onResult(_: object) -> SelfPingResult:
            return SelfPingResult.JOINED

        def onError(failure: Failure) -> SelfPingResult:
            if failure.check(xmlstream.TimeoutError):
                return SelfPingResult.UNKNOWN
            if failure.check(error.StanzaError):
                condition = getattr(failure.value, "condition", None)
                if condition in ("service-unavailable", "feature-not-implemented", "item-not-found"):
                    return SelfPingResult.JOINED
                return SelfPingResult.NOT_JOINED
            return SelfPingResult.UNKNOWN

        d: defer.Deferred[SelfPingResult] = defer.maybeDeferred(self.request, request)
        d.addCallbacks(onResult, onError)
        return d

    def rejoinAll(self) -> defer.Deferred[list[tuple[OccupantKey, JoinResult | Failure]]]:
        """
        Join again every occupant marked by a link loss, with the same nick
        and password, asking for the history since the loss.

        @return: fires with ((room JID, real JID), L{JoinResult} or
            L{Failure}) for each.
        """
        records = [
            r for r in self._occupants.values() if r.state is OccupantState.NEEDS_REJOIN
        ]
        deferreds = []
        for record in records:
            history = record.history
            if record.lostAt is not None:
                since = datetime.datetime.fromtimestamp(record.lostAt, datetime.timezone.utc)
                history = muc.HistoryOptions(since=since)
            deferreds.append(
                self.join(record.roomJID, record.nick, record.realJID, record.password, history)
            )
            again = self._occupants.get(record.key)
            if again is not None and again is not record:
                again.rejoining = True
                again.lostAt = record.lostAt

        def collect(
            results: list[tuple[bool, Any]],
        ) -> list[tuple[OccupantKey, JoinResult | Failure]]:
            return [
                ((record.roomJID, record.realJID), value)
                for record, (_, value) in zip(records, results)
            ]

        return defer.DeferredList(deferreds, consumeErrors=True).addCallback(collect)

    # -- presence ---------------------------------------------------------

    def _addressing(self, element: domish.Element) -> tuple[jid.JID, jid.JID] | None:
        try:
            sender = jid.internJID(element["from"])
            recipient = jid.internJID(element["to"])
        except (KeyError, *_BAD_JID):
            return None
        if recipient.host != self.domain:
            return None
        return sender, recipient

    def _onPresence(self, element: domish.Element) -> None:
        if _handled(element):
            return
        addressing = self._addressing(element)
        if addressing is None:
            return
        sender, recipient = addressing
        record = self._occupants.get((sender.userhost(), recipient.full()))
        if record is None:
            return
        _markHandled(element)
        try:
            presenceType = element.getAttribute("type")
            if presenceType == "error":
                self._presenceError(record, element)
            elif presenceType in (None, "available"):
                self._available(record, MUCPresence.fromElement(element))
            elif presenceType == "unavailable":
                self._unavailable(record, MUCPresence.fromElement(element))
        except Exception:
            self._log.failure(
                "Handling presence from {roomJID} for {realJID}",
                roomJID=record.roomJID.userhost(), realJID=record.realJID.full(),
            )

    def _available(self, record: _OccupantRecord, presence: MUCPresence) -> None:
        nick = presence.sender.resource
        if not nick:
            return
        codes = presence.statusCodes
        if record.state is OccupantState.JOINING:
            if 110 in codes or nick == record.nick:
                self._joinCompleted(record, presence)
            else:
                self._otherAvailable(record, presence)
            return
        if record.state is OccupantState.CHANGING_NICK and nick == record.pendingNick:
            old, record.nick = record.nick, nick
            record.self_ = presence.occupant(True)
            self._log.info(
                "Nick in {roomJID} changed from {old} to {nick}",
                roomJID=record.roomJID.userhost(), old=old, nick=nick,
            )
            self._endNickChange(record, nick=nick)
            self.handler.nickChanged(record.roomJID, record.realJID, old, nick)
            return
        if nick == record.expectedNick or (
            110 in codes and nick != record.nick and not record.roster.has(record, nick)
        ):
            # The service chose our new nick (303 to another nick than the
            # one asked for, or without our asking).
            old, record.nick = record.nick, nick
            record.expectedNick = None
            record.self_ = presence.occupant(True)
            self._endNickChange(record, nick=nick)
            self.handler.nickChanged(record.roomJID, record.realJID, old, nick)
            return
        if nick == record.nick:
            record.self_ = presence.occupant(True)
            if record.state in _IN_ROOM:
                self.handler.occupantAvailable(record.roomJID, record.realJID, record.self_, False)
            return
        self._otherAvailable(record, presence)

    def _otherAvailable(self, record: _OccupantRecord, presence: MUCPresence) -> None:
        occupant = presence.occupant(False)
        new = not record.roster.has(record, occupant.nick)
        record.roster.put(record, occupant)
        self.handler.occupantAvailable(record.roomJID, record.realJID, occupant, new)

    def _joinCompleted(self, record: _OccupantRecord, presence: MUCPresence) -> None:
        record.nick = presence.sender.resource
        record.self_ = presence.occupant(True)
        record.created = 201 in presence.statusCodes
        record.subjectSeen = False
        if record.created and self.instantRooms:
            record.state = OccupantState.CONFIGURING
            self._log.info(
                "Created {roomJID}; submitting the instant-room form",
                roomJID=record.roomJID.userhost(),
            )
            request = _InstantRoomRequest(recipient=record.roomJID, sender=record.realJID)
            request.timeout = self.timeout
            d = defer.maybeDeferred(self.request, request)
            d.addCallbacks(
                lambda _: self._configured(record),
                lambda failure: self._configurationFailed(record, failure),
            )
            return
        self._finishJoin(record, locked=record.created)

    def _configured(self, record: _OccupantRecord) -> None:
        if record.state is OccupantState.CONFIGURING:
            self._finishJoin(record, locked=False)

    def _configurationFailed(self, record: _OccupantRecord, failure: Failure) -> None:
        if record.state is not OccupantState.CONFIGURING or record.join is None:
            return
        self._log.warn(
            "{roomJID} refused the instant-room form: {error}",
            roomJID=record.roomJID.userhost(), error=failure.getErrorMessage(),
        )
        stanzaError = failure.value if isinstance(failure.value, error.StanzaError) else None
        waiter, record.join = record.join, None
        # Leave the locked room again: nobody else could enter it.
        record.state = OccupantState.LEAVING
        record.leave = _Waiter(
            self.clock,
            self.timeout,
            lambda: self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False),
        )
        unavailable = muc.xmppim.AvailabilityPresence(
            recipient=record.occupantJID, sender=record.realJID, available=False
        )
        try:
            self._send(unavailable.toElement())
        except LinkLost:
            self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False)
        waiter.errback(RoomConfigurationFailed(failure.getErrorMessage(), stanzaError))

    def _finishJoin(self, record: _OccupantRecord, locked: bool) -> None:
        record.state = OccupantState.JOINED
        record.lostAt = None
        assert record.self_ is not None
        result = JoinResult(
            roomJID=record.roomJID,
            realJID=record.realJID,
            nick=record.nick,
            occupants=tuple(record.roster.view(record).values()),
            self=record.self_,
            created=record.created,
            locked=locked,
            statusCodes=record.self_.statusCodes,
        )
        self._log.info(
            "Joined {roomJID} as {nick}", roomJID=record.roomJID.userhost(), nick=record.nick
        )
        waiter, record.join = record.join, None
        if waiter is not None:
            waiter.callback(result)

    def _unavailable(self, record: _OccupantRecord, presence: MUCPresence) -> None:
        nick = presence.sender.resource
        if not nick:
            return
        codes = presence.statusCodes
        isSelf = (110 in codes and not record.roster.has(record, nick)) or nick == record.nick
        if 303 in codes:
            newNick = presence.nick
            if isSelf:
                if newNick and newNick != record.pendingNick:
                    record.expectedNick = newNick
                return
            old = record.roster.pop(record, nick)
            if not newNick:
                return
            occupant = Occupant(
                nick=newNick,
                affiliation=_intern(presence.affiliation) or (old.affiliation if old else None),
                role=old.role if old else None,
                jid=presence.entity or (old.jid if old else None),
                show=old.show if old else None,
                status=old.status if old else None,
            )
            record.roster.put(record, occupant)
            self.handler.occupantNickChanged(record.roomJID, record.realJID, nick, occupant)
            return
        if not isSelf:
            known = record.roster.pop(record, nick)
            occupant = known or presence.occupant(False)
            self.handler.occupantLeft(record.roomJID, record.realJID, occupant, presence.removal())
            return
        removal = presence.removal()
        if record.state is OccupantState.JOINING:
            self._forget(record)
            if record.join is not None:
                record.join.errback(RemovedWhileJoining(removal))
            return
        self._finishLeft(record, removal, confirmed=True)

    def _finishLeft(self, record: _OccupantRecord, removal: Removal, confirmed: bool) -> None:
        if self._occupants.get(record.key) is not record:
            return
        self._forget(record)
        self._log.info(
            "Out of {roomJID} as {nick}: {reason}",
            roomJID=record.roomJID.userhost(), nick=record.nick, reason=removal.reason.value,
        )
        notInRoom = NotInRoom(f"out of the room: {removal.reason.value}")
        self._failSends(record, notInRoom)
        self._endNickChange(record, failure=notInRoom)
        if record.join is not None:
            waiter, record.join = record.join, None
            waiter.errback(RemovedWhileJoining(removal))
        try:
            self.handler.left(record.roomJID, record.realJID, removal)
        finally:
            # After the handler heard it: whoever waits for the leave sees
            # the handler's state already updated.
            if record.leave is not None:
                record.leave.callback(confirmed)

    def _failSends(self, record: _OccupantRecord, reason: Exception) -> None:
        sends, record.sends = record.sends, {}
        for pending in sends.values():
            pending.waiter.errback(reason)

    def _presenceError(self, record: _OccupantRecord, element: domish.Element) -> None:
        failure = errorFromStanza(element)
        if record.state is OccupantState.JOINING:
            self._log.info(
                "Join of {roomJID} as {nick} refused: {error}",
                roomJID=record.roomJID.userhost(), nick=record.nick, error=failure.condition,
            )
            self._forget(record)
            if record.join is not None:
                record.join.errback(failure)
            return
        if record.state is OccupantState.CHANGING_NICK:
            self._log.info(
                "Nick change in {roomJID} to {nick} refused: {error}",
                roomJID=record.roomJID.userhost(), nick=record.pendingNick, error=failure.condition,
            )
            self._endNickChange(record, failure=failure)
            return
        self._log.warn(
            "Presence error from {roomJID} for {nick}: {error}",
            roomJID=record.roomJID.userhost(), nick=record.nick, error=failure.condition,
        )

    # -- messages ---------------------------------------------------------

    def _onMessage(self, element: domish.Element) -> None:
        if _handled(element):
            return
        addressing = self._addressing(element)
        if addressing is None:
            return
        sender, recipient = addressing
        messageType = element.getAttribute("type") or "normal"
        record = self._occupants.get((sender.userhost(), recipient.full()))
        try:
            if messageType != "error" and self._invitation(sender, recipient, element):
                _markHandled(element)
                return
            if record is None:
                return
            _markHandled(element)
            if messageType == "error":
                self._messageError(record, element)
            elif messageType == "groupchat":
                self._groupchat(record, element)
            elif messageType in ("chat", "normal") and sender.resource:
                self._private(record, element)
        except Exception:
            self._log.failure(
                "Handling a message from {roomJID} for {realJID}",
                roomJID=sender.userhost(), realJID=recipient.full(),
            )

    def _invitation(self, sender: jid.JID, recipient: jid.JID, element: domish.Element) -> bool:
        for x in element.elements(NS_MUC_USER, "x"):
            password = None
            for child in x.elements(NS_MUC_USER, "password"):
                password = str(child)
            for invite in x.elements(NS_MUC_USER, "invite"):
                inviter = _jidOrNone(invite.getAttribute("from"))
                invitation = Invitation(
                    roomJID=sender.userhostJID(),
                    invitee=recipient,
                    inviter=inviter,
                    reason=_textOf(invite, "reason"),
                    password=password,
                    continued=any(True for _ in invite.elements(NS_MUC_USER, "continue")),
                )
                self._log.info(
                    "Invitation to {roomJID} for {realJID}",
                    roomJID=sender.userhost(), realJID=recipient.full(),
                )
                self.handler.invitationReceived(recipient, invitation)
                return True
            for decline in x.elements(NS_MUC_USER, "decline"):
                self.handler.declineReceived(
                    recipient,
                    Decline(
                        roomJID=sender.userhostJID(),
                        decliner=_jidOrNone(decline.getAttribute("from")),
                        reason=_textOf(decline, "reason"),
                    ),
                )
                return True
        for x in element.elements(NS_CONFERENCE, "x"):
            roomJID = _jidOrNone(x.getAttribute("jid"))
            if roomJID is None:
                return False
            self.handler.invitationReceived(
                recipient,
                Invitation(
                    roomJID=roomJID.userhostJID(),
                    invitee=recipient,
                    inviter=sender,
                    reason=x.getAttribute("reason"),
                    password=x.getAttribute("password"),
                    continued=x.getAttribute("continue") in ("true", "1"),
                    direct=True,
                ),
            )
            return True
        return False

    def _groupchat(self, record: _OccupantRecord, element: domish.Element) -> None:
        chatState = chatStateOf(element)
        originID = originIDOf(element)
        message = muc.GroupChat.fromElement(element)
        nick = message.sender.resource or None
        stamp = stampOf(message.delay)
        if message.subject is not None and message.body is None:
            record.subjectSeen = True
            self.handler.subjectReceived(
                record.roomJID, record.realJID, Subject(message.subject, nick, stamp)
            )
            return
        fromSelf = nick is not None and nick == record.nick
        history = stamp is not None and not record.subjectSeen
        if message.body is None:
            if chatState is not None and nick and not fromSelf and chatState is not ChatState.GONE:
                self.handler.chatStateReceived(record.roomJID, record.realJID, nick, chatState, False)
            return
        pending = None
        if fromSelf and not history:
            pending = self._matchReflection(record, message.stanzaID, originID, message.body)
        result = GroupchatMessage(
            nick=nick,
            body=message.body,
            stanzaID=message.stanzaID,
            stamp=stamp,
            history=history,
            fromSelf=fromSelf,
            reflectionOf=pending.stanzaID if pending is not None else None,
            chatState=chatState,
        )
        if pending is not None:
            pending.waiter.callback(result)
        self.handler.groupchatReceived(record.roomJID, record.realJID, result)

    def _matchReflection(
        self, record: _OccupantRecord, stanzaID: str | None, originID: str | None, body: str
    ) -> _PendingSend | None:
        for candidate in (stanzaID, originID):
            if candidate and candidate in record.sends:
                return record.sends.pop(candidate)
        # A room that changes ids and drops origin-id: the oldest pending
        # message with the same body.
        for key, pending in record.sends.items():
            if pending.body == body:
                return record.sends.pop(key)
        return None

    def _private(self, record: _OccupantRecord, element: domish.Element) -> None:
        chatState = chatStateOf(element)
        message = muc.PrivateChat.fromElement(element)
        nick = message.sender.resource
        if message.body is None:
            if chatState is not None:
                self.handler.chatStateReceived(record.roomJID, record.realJID, nick, chatState, True)
            return
        delay = None
        for child in element.elements(NS_DELAY, "delay"):
            delay = Delay.fromElement(child)
        self.handler.privateMessageReceived(
            record.roomJID,
            record.realJID,
            PrivateMessage(nick, message.body, message.stanzaID, chatState, stampOf(delay)),
        )

    def _messageError(self, record: _OccupantRecord, element: domish.Element) -> None:
        stanzaError = _stanzaErrorOf(element)
        stanzaID = element.getAttribute("id")
        pending = record.sends.pop(stanzaID, None) if stanzaID else None
        self._log.info(
            "Message {stanzaID} refused by {roomJID}: {error}",
            stanzaID=stanzaID, roomJID=record.roomJID.userhost(),
            error=getattr(stanzaError, "condition", None),
        )
        if pending is not None:
            pending.waiter.errback(stanzaError)
            return
        self.handler.messageFailed(record.roomJID, record.realJID, stanzaID, stanzaError)

    # -- what nobody else took (RFC 6120 section 8.2.3, 8.3) --------------------

    def _reply(self, element: domish.Element, condition: str) -> None:
        try:
            self._send(error.StanzaError(condition).toResponse(element))
        except LinkLost as e:
            self._log.warn("Cannot answer a stanza: {error}", error=e)

    def _unhandledIQ(self, iq: domish.Element) -> None:
        """
        An IQ get/set to our domain that no handler took: C{result} for a
        XEP-0199 ping of the domain, else C{service-unavailable} (RFC 6120
        section 8.2.3: every get and set gets an answer).
        """
        if _handled(iq) or not _ours(self, iq):
            return
        _markHandled(iq)
        child = next(iter(iq.elements()), None)
        recipient = jid.internJID(iq["to"])
        if (
            iq.getAttribute("type") == "get"
            and child is not None
            and (child.uri, child.name) == (NS_PING, "ping")
            and not recipient.user
        ):
            try:
                self._send(xmlstream.toResponse(iq, "result"))
            except LinkLost as e:
                self._log.warn("Cannot answer a ping: {error}", error=e)
            return
        self._reply(iq, "service-unavailable")

    def _unhandledMessage(self, message: domish.Element) -> None:
        """
        A message to our domain that no handler took (a chat to a SIP
        user's JID, or a room's message to an occupant we no longer have):
        C{service-unavailable} to its sender, never silence (RFC 6120
        section 8.3; a room that still lists a ghost of ours removes it).
        """
        if _handled(message) or not _ours(self, message):
            return
        _markHandled(message)
        if message.getAttribute("type") == "error":
            return
        self._log.info(
            "Message from {peer} to {to} refused: no such occupant or user",
            peer=message.getAttribute("from"),
            to=message.getAttribute("to"),
        )
        self._reply(message, "service-unavailable")

    def _unhandledPresence(self, presence: domish.Element) -> None:
        """
        Available presence from a room to an occupant we no longer have (a
        ghost the room kept, e.g. across its restart): an error back, so
        that the room removes it.  Unavailable, error and subscription
        presences get nothing (no loops; the gateway keeps no rosters).
        """
        if _handled(presence) or not _ours(self, presence):
            return
        _markHandled(presence)
        if presence.getAttribute("type") not in (None, "available"):
            return
        sender = presence.getAttribute("from") or ""
        if "/" not in sender:
            return
        self._log.info(
            "Presence from {peer} to {to} refused: no such occupant",
            peer=sender,
            to=presence.getAttribute("to"),
        )
        self._reply(presence, "service-unavailable")

    # -- IQs to our users' real JIDs (XEP-0410, XEP-0030) ----------------------

    def _onIQGet(self, iq: domish.Element) -> None:
        if _handled(iq):
            return
        addressing = self._addressing(iq)
        if addressing is None:
            return
        sender, recipient = addressing
        if not recipient.resource or not recipient.user:
            return
        child = next(iter(iq.elements()), None)
        if child is None:
            return
        try:
            if (child.uri, child.name) == (NS_PING, "ping"):
                _markHandled(iq)
                self._answerPing(iq, sender, recipient)
            elif (child.uri, child.name) == (NS_DISCO_INFO, "query"):
                _markHandled(iq)
                self._answerDiscoInfo(iq, recipient, child.getAttribute("node"))
        except LinkLost as e:
            self._log.warn("Cannot answer an IQ: {error}", error=e)

    def _recordsOf(self, realJID: jid.JID) -> list[_OccupantRecord]:
        full = realJID.full()
        return [r for r in self._occupants.values() if r.realJID.full() == full]

    def _answerPing(self, iq: domish.Element, sender: jid.JID, recipient: jid.JID) -> None:
        """
        XEP-0410 section 3.2: result when the ping comes from a room we are
        in (it checks its occupant), not-acceptable when it comes from a
        room we are not in with this real JID, service-unavailable for a
        real JID that has no occupant at all.
        """
        records = self._recordsOf(recipient)
        inRoom = self._occupants.get((sender.userhost(), recipient.full()))
        if inRoom is not None:
            self._send(xmlstream.toResponse(iq, "result"))
            return
        knownRoom = any(r.roomJID.userhost() == sender.userhost() for r in self._occupants.values())
        if knownRoom and sender.resource:
            self._send(error.StanzaError("not-acceptable").toResponse(iq))
        elif records:
            self._send(xmlstream.toResponse(iq, "result"))
        else:
            self._send(error.StanzaError("service-unavailable").toResponse(iq))

    def _answerDiscoInfo(self, iq: domish.Element, recipient: jid.JID, node: str | None) -> None:
        if not self._recordsOf(recipient):
            self._send(error.StanzaError("service-unavailable").toResponse(iq))
            return
        if node:
            self._send(error.StanzaError("item-not-found").toResponse(iq))
            return
        response = xmlstream.toResponse(iq, "result")
        query = response.addElement((NS_DISCO_INFO, "query"))
        identity = query.addElement("identity")
        identity["category"] = "client"
        identity["type"] = "pc"
        identity["name"] = "stoxgw SIP user"
        for feature in USER_FEATURES:
            query.addElement("feature")["var"] = feature
        self._send(response)


def _ours(service: OccupantService, element: domish.Element) -> bool:
    """
    Whether a stanza is addressed to the service's domain.
    """
    try:
        recipient = jid.internJID(element["to"])
    except (KeyError, *_BAD_JID):
        return False
    return bool(recipient.host == service.domain)


def _handled(element: domish.Element) -> bool:
    """
    @return: whether another observer already took this stanza.
    """
    return bool(getattr(element, "handled", False))


def _markHandled(element: domish.Element) -> None:
    """
    Tell later observers (wokkel's fallback handler among them) that this
    stanza is taken care of.
    """
    setattr(element, "handled", True)


def _chain(deferred: defer.Deferred[Any]) -> defer.Deferred[Any]:
    """
    A new Deferred firing with C{deferred}'s result, leaving it untouched
    (several callers may wait for one leave).
    """
    result: defer.Deferred[Any] = defer.Deferred()

    def passOn(value: object) -> object:
        if isinstance(value, Failure):
            result.errback(value)
        else:
            result.callback(value)
        return value

    deferred.addBoth(passOn)
    return result


def _jidOrNone(value: str | None) -> jid.JID | None:
    if not value:
        return None
    try:
        return jid.JID(value)
    except _BAD_JID:
        return None


def _textOf(element: domish.Element, name: str) -> str | None:
    for child in element.elements():
        if child.name == name:
            text = str(child).strip()
            return text or None
    return None


__all__ = [
    "Banned",
    "ChatState",
    "Decline",
    "ERROR_CLASSES",
    "GroupchatMessage",
    "IOccupantHandler",
    "Invitation",
    "JIDMalformed",
    "JoinResult",
    "LeftReason",
    "LinkLost",
    "MUCPresence",
    "NickNotAcceptable",
    "NicknameConflict",
    "NotAllowed",
    "NotAuthorized",
    "NotInRoom",
    "Occupant",
    "OccupantError",
    "OccupantService",
    "OccupantState",
    "OccupantTimeout",
    "PrivateMessage",
    "ReflectionTimeout",
    "RegistrationRequired",
    "Removal",
    "RemovedWhileJoining",
    "RoomConfigurationFailed",
    "RoomFull",
    "RoomNotFound",
    "SelfPingResult",
    "Subject",
    "errorFromStanza",
    "leftReason",
]
