# -*- test-case-name: tests.rooms.test_model -*-
"""
The neutral room model shared by both directions of the gateway.

A L{Room} is plain data and rules: its address and identity (opaque strings:
a room JID, a SIP conference URI), settings, L{Subject}, roster of
L{Participant}s keyed by the RFC 7700 comparison form of their nicknames
(L{stoxgw.rooms.nicks}), and bounded history of L{HistoryEntry}s (a deque
whose size comes from the C{[gateway] history_size} setting).

Every change returns an event (L{ParticipantJoined}, L{ParticipantLeft},
L{NickChanged}, L{ParticipantUpdated}, L{SubjectChanged}) describing what
happened, so the protocol side can render it (a MUC presence, a partial
conference-info NOTIFY) without diffing state itself; L{diffRoster} turns two
full rosters (as a full-state NOTIFY gives them) into such events.

Sans-IO: standard library only; time is passed in, never read.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import Union

from stoxgw.rooms.nicks import comparisonKey, enforce

#: Default history size (matches the C{[gateway] history_size} default).
DEFAULT_HISTORY_SIZE = 50


class Role(Enum):
    """
    An occupant's role in the room (XEP-0045 section 5.1).  RFC 7702
    section 5.4 fixes C{participant} for users of SIP rooms (R-214).
    """

    MODERATOR = "moderator"
    PARTICIPANT = "participant"
    VISITOR = "visitor"
    NONE = "none"


class Affiliation(Enum):
    """
    A user's long-lived affiliation with the room (XEP-0045 section 5.2);
    RFC 7702 section 5.4 fixes C{none} (R-214).
    """

    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    OUTCAST = "outcast"
    NONE = "none"


class Anonymity(Enum):
    """
    Who may see participants' real addresses (XEP-0045 section 4.2).
    """

    #: Everybody: real addresses are shown to all occupants (R-187).
    NON_ANONYMOUS = "nonanonymous"
    #: Moderators only.
    SEMI_ANONYMOUS = "semianonymous"


class RemovalReason(Enum):
    """
    Why the room removed a participant, rather than the participant leaving
    (XEP-0045 status codes 307, 332, 333; R-190, R-218).
    """

    KICKED = "kicked"
    SHUTDOWN = "shutdown"
    ERROR = "error"


class RoomError(Exception):
    """
    A roster operation is not possible.
    """


class NickConflict(RoomError):
    """
    The nickname is held by another participant (RFC 7700 comparison).

    @ivar nick: the nickname asked for.
    """

    def __init__(self, nick: str) -> None:
        super().__init__(f"nickname {nick!r} is in use")
        self.nick = nick


class UnknownParticipant(RoomError):
    """
    No participant has this nickname.

    @ivar nick: the nickname looked for.
    """

    def __init__(self, nick: str) -> None:
        super().__init__(f"no participant {nick!r}")
        self.nick = nick


@dataclass(frozen=True, slots=True)
class Participant:
    """
    One participant of a room, whichever side it is on.

    @ivar nick: the nickname, RFC 7700-enforced.
    @ivar displayName: a display name (conference-info C{display-text},
        XEP-0172), if it differs from the nick.
    @ivar role: XEP-0045 role.
    @ivar affiliation: XEP-0045 affiliation.
    @ivar realAddress: the real address (a JID, a SIP AOR) if known: shown
        only in non-anonymous rooms (R-016, R-187).
    @ivar show: availability (XMPP C{<show/>}: away, chat, dnd, xa), if any.
    @ivar status: a free-text status, if any.
    """

    nick: str
    displayName: str | None = None
    role: Role = Role.PARTICIPANT
    affiliation: Affiliation = Affiliation.NONE
    realAddress: str | None = None
    show: str | None = None
    status: str | None = None

    @property
    def key(self) -> str:
        """
        The RFC 7700 comparison form of the nick: the roster key.
        """
        return comparisonKey(self.nick)


@dataclass(frozen=True, slots=True)
class Subject:
    """
    The room's subject (topic).

    @ivar text: the subject; empty for none.
    @ivar who: the nick of whoever set it, if known.
    @ivar when: when it was set (timezone-aware), if known.
    """

    text: str = ""
    who: str | None = None
    when: datetime | None = None

    def __post_init__(self) -> None:
        _checkAware(self.when, "Subject.when")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """
    One message of the room's discussion, as replayed to joining users.

    @ivar nick: the sender's nick at the time.
    @ivar body: the text.
    @ivar timestamp: when it was sent (timezone-aware; CPIM DateTime or
        XEP-0203 stamp, R-175).
    @ivar contentType: the MIME type of C{body} (R-215).
    @ivar messageID: the message's id on its origin side, if any.
    """

    nick: str
    body: str
    timestamp: datetime
    contentType: str = "text/plain"
    messageID: str | None = None

    def __post_init__(self) -> None:
        _checkAware(self.timestamp, "HistoryEntry.timestamp")


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """
    How much history a joining user wants (XEP-0045 section 7.2.15:
    C{<history maxchars maxstanzas seconds since/>}).  Unset fields do not
    limit; the entries sent satisfy every set limit.

    @ivar maxChars: total size of the entries sent, as measured by the
        caller's size function (XEP-0045 counts characters of the complete
        XML stanzas); 0 means no history.
    @ivar maxStanzas: the most entries sent.
    @ivar seconds: only entries at most this old.
    @ivar since: only entries sent after this moment (timezone-aware).
    """

    maxChars: int | None = None
    maxStanzas: int | None = None
    seconds: int | None = None
    since: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("maxChars", "maxStanzas", "seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"HistoryRequest.{name} must not be negative")
        _checkAware(self.since, "HistoryRequest.since")


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """
    How a room behaves, as far as the gateway knows or decides it.

    @ivar name: a natural-language name (disco identity name).
    @ivar description: a description (muc#roominfo_description).
    @ivar anonymity: whether real addresses are shown to all.
    @ivar public: listed in service discovery (muc_public / muc_hidden).
    @ivar persistent: outlives its last occupant (muc_persistent).
    @ivar membersOnly: only members may enter (muc_membersonly / muc_open).
    @ivar moderated: visitors have no voice (muc_moderated).
    @ivar passwordProtected: entry needs a password.
    @ivar logged: the discussion is publicly logged (status 170).
    @ivar privateMessages: private messages are possible (the focus
        advertised C{private-messages}; R-220).
    @ivar historySize: how many messages the room keeps for replay.
    """

    name: str | None = None
    description: str = ""
    anonymity: Anonymity = Anonymity.SEMI_ANONYMOUS
    public: bool = True
    persistent: bool = False
    membersOnly: bool = False
    moderated: bool = False
    passwordProtected: bool = False
    logged: bool = False
    privateMessages: bool = True
    historySize: int = DEFAULT_HISTORY_SIZE

    def __post_init__(self) -> None:
        if self.historySize < 0:
            raise ValueError("RoomSettings.historySize must not be negative")


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    """
    A participant entered the room.
    """

    participant: Participant


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    """
    A participant left the room, or was removed from it.

    @ivar reason: why the room removed it; L{None} if it left by itself.
    """

    participant: Participant
    reason: RemovalReason | None = None


@dataclass(frozen=True, slots=True)
class NickChanged:
    """
    A participant changed its nickname (XEP-0045 section 7.6; RFC 7701
    section 7.2).
    """

    old: Participant
    new: Participant


@dataclass(frozen=True, slots=True)
class ParticipantUpdated:
    """
    A participant's presence, role, affiliation or display name changed.
    """

    old: Participant
    new: Participant


@dataclass(frozen=True, slots=True)
class SubjectChanged:
    """
    The room's subject changed.
    """

    old: Subject | None
    new: Subject


RoomEvent = Union[
    ParticipantJoined, ParticipantLeft, NickChanged, ParticipantUpdated, SubjectChanged
]


def _checkAware(value: datetime | None, name: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def selectHistory(
    entries: Iterable[HistoryEntry],
    request: HistoryRequest | None,
    now: datetime,
    size: Callable[[HistoryEntry], int] = lambda entry: len(entry.body),
) -> list[HistoryEntry]:
    """
    The newest entries that satisfy every limit of C{request}, oldest first
    (XEP-0045 section 7.2.15).

    @param entries: the history, oldest first.
    @param request: the limits; L{None} for none.
    @param now: the current time (timezone-aware), for C{seconds}.
    @param size: how C{maxChars} measures an entry.
    """
    chosen = list(entries)
    if request is None:
        return chosen
    if request.since is not None:
        since = request.since
        chosen = [entry for entry in chosen if entry.timestamp > since]
    if request.seconds is not None:
        oldest = now - timedelta(seconds=request.seconds)
        chosen = [entry for entry in chosen if entry.timestamp >= oldest]
    if request.maxStanzas is not None:
        chosen = chosen[-request.maxStanzas :] if request.maxStanzas else []
    if request.maxChars is not None:
        kept: list[HistoryEntry] = []
        total = 0
        for entry in reversed(chosen):
            total += size(entry)
            if total > request.maxChars:
                break
            kept.append(entry)
        chosen = kept[::-1]
    return chosen


def diffRoster(
    old: Mapping[str, Participant], new: Iterable[Participant]
) -> list[RoomEvent]:
    """
    The events that turn roster C{old} into C{new} (as a full-state
    conference-info document gives it).

    A participant that vanished while one with the same real address (and a
    new nick) appeared is a L{NickChanged}; other vanished ones leave, new
    ones join, changed ones are updated.  Order: nick changes, leaves,
    updates, joins, each in roster order.

    @param old: the current roster, keyed by L{Participant.key}.
    @raise NickConflict: C{new} holds two participants with one nick.
    """
    newByKey: dict[str, Participant] = {}
    for participant in new:
        if participant.key in newByKey:
            raise NickConflict(participant.nick)
        newByKey[participant.key] = participant
    gone = [p for key, p in old.items() if key not in newByKey]
    added = [p for key, p in newByKey.items() if key not in old]
    changes: list[RoomEvent] = []
    leaves: list[RoomEvent] = []
    for participant in gone:
        match = None
        if participant.realAddress is not None:
            for candidate in added:
                if candidate.realAddress == participant.realAddress:
                    match = candidate
                    break
        if match is not None:
            added.remove(match)
            changes.append(NickChanged(participant, match))
        else:
            leaves.append(ParticipantLeft(participant))
    updates: list[RoomEvent] = [
        ParticipantUpdated(old[key], participant)
        for key, participant in newByKey.items()
        if key in old and old[key] != participant
    ]
    joins: list[RoomEvent] = [ParticipantJoined(p) for p in added]
    return changes + leaves + updates + joins


@dataclass
class Room:
    """
    One chat room: settings, subject, roster and bounded history.

    Mutable; every change returns the event describing it.

    @ivar address: the room's address on the side that shows it (a bare
        room JID), opaque here.
    @ivar identity: the room's identity on the other side (the SIP
        conference URI), opaque here.
    """

    address: str
    identity: str = ""
    settings: RoomSettings = field(default_factory=RoomSettings)
    subject: Subject | None = None
    _roster: dict[str, Participant] = field(
        default_factory=dict, init=False, repr=False
    )
    _history: deque[HistoryEntry] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.settings.historySize)

    @property
    def participants(self) -> tuple[Participant, ...]:
        """
        The roster, in order of entry.
        """
        return tuple(self._roster.values())

    @property
    def roster(self) -> Mapping[str, Participant]:
        """
        The roster keyed by the RFC 7700 comparison form of the nicks (a
        read-only view).
        """
        return dict(self._roster)

    @property
    def history(self) -> tuple[HistoryEntry, ...]:
        """
        The kept history, oldest first.
        """
        return tuple(self._history)

    def get(self, nick: str) -> Participant | None:
        """
        The participant holding C{nick} (RFC 7700 comparison), if any; an
        invalid nick has no participant.
        """
        try:
            return self._roster.get(comparisonKey(nick))
        except ValueError:
            return None

    def __contains__(self, nick: object) -> bool:
        return isinstance(nick, str) and self.get(nick) is not None

    def join(self, participant: Participant) -> ParticipantJoined:
        """
        Add a participant; its nick is RFC 7700-enforced first.

        @raise NickConflict: the nick is taken.
        @raise stoxgw.rooms.nicks.InvalidNickname: the nick is not valid.
        """
        participant = replace(participant, nick=enforce(participant.nick))
        if participant.key in self._roster:
            raise NickConflict(participant.nick)
        self._roster[participant.key] = participant
        return ParticipantJoined(participant)

    def leave(self, nick: str, reason: RemovalReason | None = None) -> ParticipantLeft:
        """
        Remove the participant holding C{nick}.

        @raise UnknownParticipant: nobody holds it.
        """
        participant = self._require(nick)
        del self._roster[participant.key]
        return ParticipantLeft(participant, reason)

    def changeNick(self, nick: str, newNick: str) -> NickChanged:
        """
        Give the participant holding C{nick} the nickname C{newNick}; the
        participant keeps its place in the roster order.  Changing only the
        case or width of one's own nick is allowed.

        @raise UnknownParticipant: nobody holds C{nick}.
        @raise NickConflict: somebody else holds C{newNick}.
        @raise stoxgw.rooms.nicks.InvalidNickname: C{newNick} is not valid.
        """
        old = self._require(nick)
        new = replace(old, nick=enforce(newNick))
        if new.key != old.key and new.key in self._roster:
            raise NickConflict(new.nick)
        self._roster = {
            (new.key if key == old.key else key): (new if key == old.key else value)
            for key, value in self._roster.items()
        }
        return NickChanged(old, new)

    def update(self, participant: Participant) -> ParticipantUpdated:
        """
        Replace the participant with the same nick (new presence, role,
        display name...).

        @raise UnknownParticipant: nobody holds that nick.
        """
        old = self._require(participant.nick)
        new = replace(participant, nick=old.nick)
        self._roster[old.key] = new
        return ParticipantUpdated(old, new)

    def replaceRoster(self, participants: Iterable[Participant]) -> list[RoomEvent]:
        """
        Make the roster C{participants} (a full state), returning the events
        that did it (see L{diffRoster}).

        @raise NickConflict: C{participants} holds a nick twice.
        @raise stoxgw.rooms.nicks.InvalidNickname: a nick is not valid.
        """
        enforced = [replace(p, nick=enforce(p.nick)) for p in participants]
        events = diffRoster(self._roster, enforced)
        for event in events:
            if isinstance(event, NickChanged):
                self.changeNick(event.old.nick, event.new.nick)
                self.update(event.new)
            elif isinstance(event, ParticipantLeft):
                self.leave(event.participant.nick)
            elif isinstance(event, ParticipantUpdated):
                self.update(event.new)
            elif isinstance(event, ParticipantJoined):
                self.join(event.participant)
        return events

    def setSubject(self, subject: Subject) -> SubjectChanged:
        """
        Set the subject.
        """
        old, self.subject = self.subject, subject
        return SubjectChanged(old, subject)

    def record(self, entry: HistoryEntry) -> None:
        """
        Keep C{entry} in the history, forgetting the oldest entry when full.
        """
        self._history.append(entry)

    def selectHistory(
        self,
        request: HistoryRequest | None,
        now: datetime,
        size: Callable[[HistoryEntry], int] = lambda entry: len(entry.body),
    ) -> list[HistoryEntry]:
        """
        The history a joining user asked for (see L{selectHistory}).
        """
        return selectHistory(self._history, request, now, size)

    def _require(self, nick: str) -> Participant:
        participant = self.get(nick)
        if participant is None:
            raise UnknownParticipant(nick)
        return participant


__all__ = [
    "DEFAULT_HISTORY_SIZE",
    "Affiliation",
    "Anonymity",
    "HistoryEntry",
    "HistoryRequest",
    "NickChanged",
    "NickConflict",
    "Participant",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantUpdated",
    "RemovalReason",
    "Role",
    "Room",
    "RoomError",
    "RoomEvent",
    "RoomSettings",
    "Subject",
    "SubjectChanged",
    "UnknownParticipant",
    "selectHistory",
    "diffRoster",
]
