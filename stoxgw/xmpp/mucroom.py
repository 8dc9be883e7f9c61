# -*- test-case-name: tests.xmpp.test_room -*-
"""
One room hosted by the gateway's MUC service emulation (RFC 7702 section 5,
"Gateway A"): L{MUCRoom} holds the room's XMPP side (its occupants and
their sessions) and renders what they see: the XEP-0045 section 7.2 join
sequence, presences, roster and subject changes, history and messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from twisted.logger import Logger
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish

from stoxgw.rooms.model import (
    Affiliation,
    Anonymity,
    HistoryEntry,
    HistoryRequest,
    NickChanged,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RemovalReason,
    Role,
    Room,
    RoomEvent,
    Subject,
    SubjectChanged,
)
from stoxgw.rooms.nicks import comparisonKey
from stoxgw.xmpp.stanzas import MUCStatus, occupantPresence, roomMessage, subjectMessage

#: The status code of each removal the room side reports (XEP-0045 7.14:
#: 307 kicked, 332 shut down, 333 technical).
REMOVAL_STATUS = {
    RemovalReason.KICKED: MUCStatus.KICKED,
    RemovalReason.SHUTDOWN: MUCStatus.SHUTDOWN,
    RemovalReason.ERROR: MUCStatus.TECHNICAL_ERROR,
}


@dataclass
class RoomOccupant:
    """
    An XMPP user in a room through this service.

    @ivar nick: its nick (RFC 7700-enforced).
    @ivar bareJID: the user's bare JID.
    @ivar sessions: the full JIDs of its sessions, in order of entry.
    """

    nick: str
    bareJID: str
    sessions: list[JID] = field(default_factory=list)

    @property
    def key(self) -> str:
        return comparisonKey(self.nick)


class MUCRoom:
    """
    One hosted room as the XMPP side sees it: the room model, the XMPP users
    served in it, and what they are sent: presences, the join sequence,
    the broadcast of roster and subject changes, history and messages.
    L{MUCService<stoxgw.xmpp.room.MUCService>} dispatches stanzas to it and
    talks to the backend.

    @ivar room: the room model (roster, subject, history).
    @ivar occupants: the XMPP users served here, by nick comparison key.
    @ivar pendingJoins: sessions whose join the backend works on, with the
        comparison key of the nick they asked for.
    @ivar pendingNickChanges: comparison keys of occupants whose nick
        change the backend works on.
    """

    _log = Logger()

    def __init__(
        self,
        room: Room,
        send: Callable[[domish.Element], None],
        newID: Callable[[], str],
        now: Callable[[], datetime],
    ) -> None:
        self.room = room
        self.occupants: dict[str, RoomOccupant] = {}
        self.pendingJoins: dict[str, str] = {}
        self.pendingNickChanges: set[str] = set()
        self._send = send
        self._newID = newID
        self._now = now

    def occupantOf(self, session: JID) -> RoomOccupant | None:
        """
        @return: the occupant one of whose sessions C{session} is.
        """
        for occupant in self.occupants.values():
            if session in occupant.sessions:
                return occupant
        return None

    def sessions(self) -> Iterator[tuple[RoomOccupant, JID]]:
        """
        @return: every session of every occupant, with its occupant.
        """
        for occupant in list(self.occupants.values()):
            for session in list(occupant.sessions):
                yield occupant, session

    def showJID(self) -> bool:
        """
        @return: whether occupants see real JIDs (a non-anonymous room).
        """
        return self.room.settings.anonymity is Anonymity.NON_ANONYMOUS

    def presence(
        self,
        nick: str,
        to: JID,
        participant: Participant | None,
        *,
        unavailable: bool = False,
        statuses: Iterable[int] = (),
        itemNick: str | None = None,
        reason: str | None = None,
        statusText: str | None = None,
        presenceID: str | None = None,
    ) -> domish.Element:
        """
        The presence of occupant C{nick} (L{occupantPresence}): unavailable
        with role C{none}, or the participant's affiliation, role, show and
        status; its real JID in a non-anonymous room.
        """
        realJID = None
        if participant is not None and participant.realAddress and self.showJID():
            try:
                realJID = JID(participant.realAddress).full()
            except InvalidFormat:
                pass
        if participant is None or unavailable:
            affiliation = (participant.affiliation if participant else Affiliation.NONE).value
            role = Role.NONE.value
        else:
            affiliation = participant.affiliation.value
            role = participant.role.value
        return occupantPresence(
            f"{self.room.address}/{nick}",
            to.full(),
            affiliation,
            role,
            unavailable=unavailable,
            show=None if unavailable or participant is None else participant.show,
            statusText=statusText if unavailable else (participant.status if participant else None),
            realJID=realJID,
            statuses=statuses,
            itemNick=itemNick,
            reason=reason,
            presenceID=presenceID,
        )

    def groupchat(
        self,
        nick: str | None,
        to: JID,
        body: str | None,
        messageID: str | None,
        stamp: datetime | None = None,
        chatState: str | None = None,
    ) -> domish.Element:
        """
        A groupchat message from the room (C{nick} L{None}) or an occupant.
        """
        return roomMessage(
            self.room.address if nick is None else f"{self.room.address}/{nick}",
            to.full(),
            "groupchat",
            messageID if messageID else self._newID(),
            body,
            chatState,
            stamp,
            self.room.address,
        )

    def subjectMessage(self, to: JID) -> domish.Element:
        """
        The subject message (XEP-0045 section 7.2.15, R-189, R-217).
        """
        subject = self.room.subject or Subject()
        return subjectMessage(self.room.address, to.full(), self._newID(), subject.text, subject.when)

    def selfStatuses(self) -> set[int]:
        """
        @return: the status codes of a self-presence on entering (110, and
            100 and 170 as the room is).
        """
        statuses: set[int] = {MUCStatus.SELF}
        if self.showJID():
            statuses.add(MUCStatus.NON_ANONYMOUS)
        if self.room.settings.logged:
            statuses.add(MUCStatus.LOGGING)
        return statuses

    def enter(
        self,
        sender: JID,
        nick: str,
        show: str | None,
        status: str | None,
        history: HistoryRequest | None,
        statuses: set[int],
        presenceID: str | None,
    ) -> None:
        """
        Enter the session and send the XEP-0045 section 7.2 sequence
        (R-184): others' presences, the new presence to the others, the
        self-presence last, history, subject.
        """
        room = self.room
        key = comparisonKey(nick)
        occupant = self.occupants.get(key)
        if occupant is None:
            occupant = RoomOccupant(nick, sender.userhost(), [sender])
            participant = Participant(
                nick=nick, realAddress=sender.full(), show=show, status=status
            )
            room.join(participant)
            self.occupants[key] = occupant
        else:
            occupant.sessions.append(sender)
            participant = room.get(nick) or Participant(nick=nick)
            nick = occupant.nick
        participant = room.get(nick) or participant
        self._log.info(
            "{realJID} entered {roomJID} as {nick}",
            realJID=sender.full(),
            roomJID=room.address,
            nick=nick,
        )
        # 1. the occupants' presences (everyone but the new occupant)
        for other in room.participants:
            if other.key != key:
                self._send(self.presence(other.nick, sender, other))
        # 2. the new occupant's presence to every other session
        for otherOccupant, session in self.sessions():
            if session == sender:
                continue
            own = {MUCStatus.SELF} if otherOccupant is occupant else set()
            self._send(self.presence(nick, session, participant, statuses=own))
        # 3. the self-presence, last of the presences
        self._send(
            self.presence(
                nick,
                sender,
                participant,
                statuses=statuses,
                presenceID=presenceID,
            )
        )

        # 4. history, within the requested limits
        def size(entry: HistoryEntry) -> int:
            return len(self.historyMessage(sender, entry).toXml())

        for entry in room.selectHistory(history, self._now(), size):
            self._send(self.historyMessage(sender, entry))
        # 5. the subject, always
        self._send(self.subjectMessage(sender))

    def historyMessage(self, to: JID, entry: HistoryEntry) -> domish.Element:
        """
        A discussion history message (XEP-0045 7.2.15) with its delay.
        """
        return self.groupchat(entry.nick, to, entry.body, entry.messageID, entry.timestamp)

    # -- broadcasting model events ----------------------------------------------

    def broadcastEvent(
        self,
        event: RoomEvent,
        *,
        modified: bool = False,
        statusText: str | None = None,
        removal: RemovalReason | None = None,
        reason: str | None = None,
    ) -> None:
        """
        Render a roster or subject change for every session (own sessions
        get status 110).
        """
        for occupant, session in self.sessions():
            own = isinstance(
                event, (ParticipantJoined, ParticipantLeft, ParticipantUpdated)
            ) and (comparisonKey(self._eventNick(event)) == occupant.key)
            if isinstance(event, NickChanged):
                own = event.new.key == occupant.key
                self._send(
                    self.presence(
                        event.old.nick,
                        session,
                        event.new,
                        unavailable=True,
                        statuses={MUCStatus.NICK_CHANGED}
                        | ({MUCStatus.SELF} if own else set()),
                        itemNick=event.new.nick,
                    )
                )
                statuses = {MUCStatus.SELF} if own else set()
                if own and modified:
                    statuses.add(MUCStatus.NICK_MODIFIED)
                self._send(
                    self.presence(event.new.nick, session, event.new, statuses=statuses)
                )
            elif isinstance(event, ParticipantJoined):
                self._send(
                    self.presence(
                        event.participant.nick,
                        session,
                        event.participant,
                        statuses={MUCStatus.SELF} if own else set(),
                    )
                )
            elif isinstance(event, ParticipantUpdated):
                self._send(
                    self.presence(
                        event.new.nick,
                        session,
                        event.new,
                        statuses={MUCStatus.SELF} if own else set(),
                    )
                )
            elif isinstance(event, ParticipantLeft):
                statuses = set()
                if removal is not None:
                    statuses.add(REMOVAL_STATUS[removal])
                self._send(
                    self.presence(
                        event.participant.nick,
                        session,
                        event.participant,
                        unavailable=True,
                        statuses=statuses,
                        statusText=statusText,
                        reason=reason,
                    )
                )
            elif isinstance(event, SubjectChanged):
                self._send(self.subjectMessage(session))

    @staticmethod
    def _eventNick(
        event: ParticipantJoined | ParticipantLeft | ParticipantUpdated,
    ) -> str:
        if isinstance(event, ParticipantUpdated):
            return event.new.nick
        return event.participant.nick
