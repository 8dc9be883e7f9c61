# -*- test-case-name: tests.xmpp.test_occupant -*-
"""
What the gateway's MUC occupants (L{stoxgw.xmpp.occupant}) tell the layer
above: the model of a room as an occupant sees it (frozen dataclasses),
the errors of MUC operations, and the L{IOccupantHandler} interface.
"""

from __future__ import annotations

import datetime
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.words.protocols.jabber import error, jid
from twisted.words.xish import domish
from zope.interface import Interface

from stoxgw.rooms.model import Subject
from stoxgw.xmpp.stanzas import (
    ChatStateNotification,
    MUCPresence,
    MUCStatus,
    internText,
    removalStatus,
    stanzaErrorOf,
)

OccupantKey = tuple[jid.JID, jid.JID]


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
    chatState: ChatStateNotification | None = None


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    """
    A private message from an occupant (XEP-0045 7.5).
    """

    nick: str
    body: str
    stanzaID: str | None = None
    chatState: ChatStateNotification | None = None
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
    A MUC operation failed: the room refused it (a stanza error), or the
    gateway gave up on it.

    @ivar condition: the XMPP stanza error condition this stands for (the
        interworking layer maps it to a SIP or MSRP status): for an entry or
        nick-change error XEP-0045 section 7.2 and 7.6 list C{conflict}
        (409), C{registration-required} (407), C{forbidden} (403, banned),
        C{not-authorized} (401, password), C{service-unavailable} (503, room
        full), C{item-not-found} (404), C{not-allowed} (405, creation
        restricted), C{not-acceptable} (406, nicks locked down),
        C{jid-malformed} (400, no or bad nick).
    @ivar text: the error's text, if any.
    @ivar stanzaError: the error stanza received, if any.
    """

    def __init__(
        self,
        condition: str = "undefined-condition",
        text: str | None = None,
        stanzaError: error.StanzaError | None = None,
    ) -> None:
        super().__init__(text or condition)
        self.condition = condition
        self.text = text
        self.stanzaError = stanzaError


class OccupantTimeout(OccupantError):
    """
    The room did not answer in time (a join, a nick change; a groupchat
    message neither reflected nor refused, R-211).
    """

    def __init__(self, text: str | None = None) -> None:
        super().__init__("remote-server-timeout", text)


class LinkLost(OccupantError):
    """
    The component link went down before the room answered (the gateway's
    own failure, unlike a room's C{service-unavailable}).
    """

    def __init__(self, text: str | None = None) -> None:
        super().__init__("service-unavailable", text)


class NotInRoom(OccupantError):
    """
    The operation needs an occupant that is not in the room (the caller's
    mistake or a race, unlike a room's C{not-acceptable}).
    """

    def __init__(self, text: str | None = None) -> None:
        super().__init__("not-acceptable", text)


class RemovedWhileJoining(OccupantError):
    """
    The room removed us before the join completed.

    @ivar removal: how.
    """

    def __init__(self, removal: Removal) -> None:
        super().__init__("undefined-condition", f"removed while joining: {removal.reason.value}")
        self.removal = removal


# --- from stanzas ----------------------------------------------------------


#: Which removal a status code says (the precedence among several is
#: L{stoxgw.xmpp.stanzas.MUC_REMOVAL_STATUSES}).
_LEFT_REASONS = {
    MUCStatus.SHUTDOWN: LeftReason.SHUTDOWN,
    MUCStatus.TECHNICAL_ERROR: LeftReason.TECHNICAL,
    MUCStatus.BANNED: LeftReason.BANNED,
    MUCStatus.AFFILIATION_CHANGED: LeftReason.AFFILIATION_CHANGED,
    MUCStatus.MEMBERS_ONLY: LeftReason.MEMBERS_ONLY,
    MUCStatus.KICKED: LeftReason.KICKED,
}


def leftReason(codes: frozenset[int], destroyed: bool = False) -> LeftReason:
    """
    Classify an unavailable presence: destruction wins over everything,
    then the status codes in L{MUC_REMOVAL_STATUSES
    <stoxgw.xmpp.stanzas.MUC_REMOVAL_STATUSES>} order.
    """
    if destroyed:
        return LeftReason.DESTROYED
    status = removalStatus(codes)
    return LeftReason.LEFT if status is None else _LEFT_REASONS[status]


def occupantOf(presence: MUCPresence, isSelf: bool) -> Occupant:
    """
    @return: the roster entry a presence describes (its affiliation, role
        and show interned: a room of n occupants sends each value n times).
    """
    return Occupant(
        nick=presence.sender.resource or "",
        affiliation=internText(presence.affiliation),
        role=internText(presence.role),
        jid=presence.entity,
        show=internText(presence.show),
        status=presence.statuses.get(None) or next(iter(presence.statuses.values()), None),
        isSelf=isSelf,
        statusCodes=presence.statusCodes,
    )


def removalOf(presence: MUCPresence) -> Removal:
    """
    @return: why an unavailable presence takes its occupant out.
    """
    return Removal(
        reason=leftReason(presence.statusCodes, presence.destroyed),
        statusCodes=presence.statusCodes,
        actor=presence.actor,
        text=presence.destroyReason if presence.destroyed else presence.reasonText,
        alternate=presence.alternate,
    )


def errorFromStanza(element: domish.Element) -> OccupantError:
    """
    The exception for an error presence received while joining or changing
    nick: an L{OccupantError} with the stanza error's condition.
    """
    stanzaError = stanzaErrorOf(element)
    condition = getattr(stanzaError, "condition", None) or "undefined-condition"
    return OccupantError(condition, getattr(stanzaError, "text", None), stanzaError)


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
        roomJID: jid.JID, realJID: jid.JID, nick: str, state: ChatStateNotification, private: bool
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
