# -*- test-case-name: tests.xmpp.test_room -*-
"""
The MUC room side: the gateway emulates a XEP-0045 MUC I{service} on the
room domain for XMPP users entering rooms hosted by SIP conference focuses
(RFC 7702 section 5, "Gateway A"; SPEC.md C.1 and D.8).

L{MUCService} is a wokkel L{XMPPHandler} for the room domain's component
link.  It keeps a registry of L{stoxgw.rooms.model.Room}s (created by the
layer above, which INVITEs the focus), and for each room the XMPP occupants
it serves: one nick per user, with one or more sessions (full JIDs; XEP-0045
section 7.2, multi-session nicks: every session gets all traffic).

What XMPP users do goes to an L{IRoomBackend} (the interworking layer);
what happens in the SIP room comes back through the push methods
(L{MUCService.participantJoined}, L{MUCService.groupChatReceived}, ...).
Room-domain stanzas follow XEP-0045:

  - join (7.2): presence to C{room/nick} -> L{IRoomBackend.joinRequested}
    -> occupants' presences, the new occupant's presence to the others,
    self-presence with 110 (100, 170, 201, 210 when true) I{last}, history
    with XEP-0203 delays (within the C{<history/>} limits), the subject
    (always; empty C{<subject/>} if none) (R-184 to R-189);
  - errors: C{<jid-malformed/>} for a missing or RFC 7700-invalid nick,
    C{<conflict/>}, and whatever the backend refuses with (L{mucError});
  - groupchat (7.4): to the backend, then reflected to every session with
    the client's id (R-191, R-212), or an error to the sender;
  - private messages (7.5), nick changes (7.6, 303), presence updates
    (7.7), exit (7.14, 110), removal (307/332/333) and destruction (10.9).

Presence without the MUC C{<x/>} from a non-occupant is treated as a join
(groupchat 1.0 compatibility, XEP-0045 section 7.2.2).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from datetime import datetime

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.xish import domish

from stoxgw.rooms.model import (
    HistoryEntry,
    Participant,
    RemovalReason,
    Room,
    RoomEvent,
    Subject,
    UnknownParticipant,
)
from stoxgw.rooms.nicks import comparisonKey
from stoxgw.xmpp.roombackend import IRoomBackend, JoinAccepted
from stoxgw.xmpp.roominbound import RoomInbound
from stoxgw.xmpp.mucroom import REMOVAL_STATUS, MUCRoom
from stoxgw.xmpp.stanzas import (
    NS_MUC,
    NS_MUC_USER,
    MUCStatus,
    mucError,
    parseJoin,
    roomMessage,
)


class MUCService(RoomInbound):
    """
    The MUC service emulation on the room domain (see the module docstring).

    @ivar domain: the room domain (the component's domain).
    @ivar backend: the L{IRoomBackend}.
    """

    _log = Logger()

    def __init__(
        self,
        domain: str,
        backend: IRoomBackend,
        clock: IReactorTime,
        idFactory: Callable[[], str] | None = None,
    ) -> None:
        super().__init__()
        self.domain = domain
        self.backend = backend
        self.clock = clock
        if idFactory is None:
            counter = itertools.count(1)
            prefix = f"stoxgw-{id(self):x}-"
            idFactory = lambda: prefix + str(next(counter))  # noqa: E731
        self._newID = idFactory
        self._rooms: dict[str, MUCRoom] = {}

    # -- registry -------------------------------------------------------

    def createRoom(self, room: Room) -> None:
        """
        Host C{room} (its C{address} is its bare JID on L{domain}).

        @raise ValueError: the address is not on L{domain}, or already used.
        """
        roomJID = JID(room.address)
        if roomJID.host != self.domain or not roomJID.user or roomJID.resource:
            raise ValueError(f"{room.address} is not a room JID on {self.domain}")
        if roomJID.userhost() in self._rooms:
            raise ValueError(f"room {room.address} exists")
        room.address = roomJID.userhost()
        self._rooms[room.address] = MUCRoom(room, self._send, self._newID, self._now)
        self._log.info("Room {roomJID} created", roomJID=room.address)

    def sendInvitation(
        self, roomJID: str, invitee: str, inviter: str | None, reason: str | None
    ) -> None:
        """
        Send an invitation from the room (XEP-0045 7.8.2, as the room
        relays a mediated one): to C{invitee}, naming C{inviter}.
        """
        message = domish.Element((None, "message"))
        message["from"] = roomJID
        message["to"] = invitee
        x = message.addElement((NS_MUC_USER, "x"))
        invite = x.addElement("invite")
        if inviter:
            invite["from"] = inviter
        if reason:
            invite.addElement("reason", content=reason)
        self._send(message)

    def getRoom(self, roomJID: str) -> Room | None:
        """
        The hosted room with this bare JID, if any.
        """
        state = self._rooms.get(self._roomKey(roomJID))
        return state.room if state is not None else None

    @property
    def rooms(self) -> tuple[Room, ...]:
        """
        The hosted rooms.
        """
        return tuple(state.room for state in self._rooms.values())

    def occupantNicks(self, roomJID: str) -> tuple[str, ...]:
        """
        The nicks of the XMPP users served in the room.
        """
        state = self._rooms.get(self._roomKey(roomJID))
        if state is None:
            return ()
        return tuple(occupant.nick for occupant in state.occupants.values())

    def isOccupant(self, roomJID: str, realJID: JID) -> str | None:
        """
        @return: the nick of session C{realJID} in the room, or L{None} if
            it is not an occupant.
        """
        state = self._rooms.get(self._roomKey(roomJID))
        if state is None:
            return None
        occupant = state.occupantOf(realJID)
        return occupant.nick if occupant is not None else None

    def _roomKey(self, roomJID: str) -> str:
        try:
            return str(JID(roomJID).userhost())
        except InvalidFormat:
            return roomJID

    # -- pushes from the SIP room ---------------------------------------------------

    def _state(self, roomJID: str) -> MUCRoom:
        state = self._rooms.get(self._roomKey(roomJID))
        if state is None:
            raise KeyError(f"no room {roomJID}")
        return state

    def participantJoined(self, roomJID: str, participant: Participant) -> bool:
        """
        A participant entered the SIP room: show it to the XMPP occupants.
        A participant with the nick of an XMPP user served here is that user
        seen through the focus, and is ignored.

        @return: whether the roster changed.
        @raise KeyError: no such room.
        @raise NickConflict: another participant has the nick.
        """
        state = self._state(roomJID)
        if participant.key in state.occupants:
            return False
        event = state.room.join(participant)
        state.broadcastEvent(event)
        return True

    def participantLeft(
        self,
        roomJID: str,
        nick: str,
        status: str | None = None,
        reason: RemovalReason | None = None,
        reasonText: str | None = None,
    ) -> None:
        """
        A SIP participant left (or, with C{reason}, was removed: 307 etc.).

        @raise KeyError: no such room.
        @raise UnknownParticipant: nobody has the nick.
        """
        state = self._state(roomJID)
        key = comparisonKey(nick)
        if key in state.occupants:
            self.occupantRemoved(
                roomJID, nick, reason or RemovalReason.KICKED, reasonText
            )
            return
        event = state.room.leave(nick, reason)
        state.broadcastEvent(event, statusText=status, removal=reason, reason=reasonText
        )

    def participantNickChanged(self, roomJID: str, nick: str, newNick: str) -> None:
        """
        A SIP participant changed its nick: the 303 pair (XEP-0045 7.6).

        @raise KeyError: no such room.
        @raise UnknownParticipant: nobody has C{nick}.
        @raise NickConflict: somebody else has C{newNick}.
        """
        state = self._state(roomJID)
        if comparisonKey(nick) in state.occupants:
            return
        event = state.room.changeNick(nick, newNick)
        state.broadcastEvent(event)

    def participantUpdated(self, roomJID: str, participant: Participant) -> None:
        """
        A SIP participant's presence, role or display name changed.

        @raise KeyError: no such room.
        @raise UnknownParticipant: nobody has the nick.
        """
        state = self._state(roomJID)
        if participant.key in state.occupants:
            return
        event = state.room.update(participant)
        state.broadcastEvent(event)

    def rosterReplaced(
        self, roomJID: str, participants: Iterable[Participant]
    ) -> list[RoomEvent]:
        """
        The SIP room's full roster (a full-state NOTIFY): apply the changes
        to the participants that are not XMPP users served here, and show
        them.

        @return: the events shown.
        """
        state = self._state(roomJID)
        local = {
            key: state.room.roster[key]
            for key in state.occupants
            if key in state.room.roster
        }
        remote = [p for p in participants if p.key not in state.occupants]
        events = state.room.replaceRoster(list(local.values()) + remote)
        for event in events:
            state.broadcastEvent(event)
        return events

    def groupChatReceived(
        self, roomJID: str, entry: HistoryEntry, delayed: bool = False
    ) -> None:
        """
        A message from a SIP participant to the room (SPEC C.1.3 step 5):
        keep it in the history and send it to every XMPP session, with a
        XEP-0203 delay if C{delayed}.

        @raise KeyError: no such room.
        """
        state = self._state(roomJID)
        if not entry.messageID:
            entry = HistoryEntry(
                entry.nick,
                entry.body,
                entry.timestamp,
                entry.contentType,
                self._newID(),
            )
        state.room.record(entry)
        stamp = entry.timestamp if delayed else None
        for _occupant, session in state.sessions():
            self._send(
                state.groupchat(entry.nick, session, entry.body, entry.messageID, stamp
                )
            )

    def chatStateReceived(
        self, roomJID: str, nick: str, state: str, toNick: str | None = None
    ) -> None:
        """
        A SIP participant's composing state (R-225), to the room or to one
        XMPP occupant.

        @raise KeyError: no such room.
        """
        roomState = self._state(roomJID)
        for occupant, session in roomState.sessions():
            if toNick is not None and occupant.key != comparisonKey(toNick):
                continue
            private = toNick is not None
            self._send(
                roomMessage(
                    f"{roomState.room.address}/{nick}",
                    session.full(),
                    "chat" if private else "groupchat",
                    self._newID(),
                    chatState=state,
                    mucUser=private,
                )
            )

    def privateMessageReceived(
        self,
        roomJID: str,
        fromNick: str,
        toNick: str,
        body: str,
        messageID: str | None = None,
        timestamp: datetime | None = None,
    ) -> None:
        """
        A private message from a SIP participant to an XMPP occupant (SPEC
        C.1.4 step 4): type chat with the muc#user C{<x/>} (XEP-0045 7.5),
        to every session of the occupant.

        @raise KeyError: no such room.
        @raise UnknownParticipant: no XMPP occupant has C{toNick}.
        """
        state = self._state(roomJID)
        occupant = state.occupants.get(comparisonKey(toNick))
        if occupant is None:
            raise UnknownParticipant(toNick)
        messageID = messageID or self._newID()
        for session in occupant.sessions:
            message = roomMessage(
                f"{state.room.address}/{fromNick}",
                session.full(),
                "chat",
                messageID,
                body,
                stamp=timestamp,
                delayFrom=state.room.address,
                mucUser=True,
            )
            self._send(message)

    def subjectChanged(self, roomJID: str, subject: Subject) -> None:
        """
        The SIP room's subject changed (R-019): a subject message to every
        session.

        @raise KeyError: no such room.
        """
        state = self._state(roomJID)
        state.broadcastEvent(state.room.setSubject(subject))

    def occupantRemoved(
        self, roomJID: str, nick: str, reason: RemovalReason, text: str | None = None
    ) -> None:
        """
        The SIP side ended an XMPP occupant's stay (BYE from the focus, our
        user deleted from the roster, MSRP or TCP failure; R-190, R-218):
        each of its sessions gets an unavailable self-presence with 110 and
        307/332/333, the others an unavailable presence with the code.

        @raise KeyError: no such room.
        @raise UnknownParticipant: no XMPP occupant has the nick.
        """
        state = self._state(roomJID)
        occupant = state.occupants.pop(comparisonKey(nick), None)
        if occupant is None:
            raise UnknownParticipant(nick)
        participant = state.room.get(occupant.nick)
        code = REMOVAL_STATUS[reason]
        for session in occupant.sessions:
            self._send(
                state.presence(occupant.nick,
                    session,
                    participant,
                    unavailable=True,
                    statuses={MUCStatus.SELF, code},
                    reason=text,
                )
            )
        if participant is not None:
            event = state.room.leave(occupant.nick, reason)
            state.broadcastEvent(event, removal=reason, reason=text)
        self._log.info(
            "{nick} removed from {roomJID}: {error}",
            nick=occupant.nick,
            roomJID=state.room.address,
            error=reason.value,
        )

    def destroyRoom(
        self, roomJID: str, reason: str | None = None, alternate: str | None = None
    ) -> None:
        """
        The SIP room is gone (XEP-0045 section 10.9): every session gets an
        unavailable self-presence with C{<destroy/>}, and the room is no
        longer hosted.

        @raise KeyError: no such room.
        """
        state = self._state(roomJID)
        del self._rooms[state.room.address]
        for occupant, session in state.sessions():
            presence = state.presence(occupant.nick,
                session,
                None,
                unavailable=True,
                statuses={MUCStatus.SELF},
            )
            x = next(presence.elements(NS_MUC_USER, "x"))
            destroy = domish.Element((NS_MUC_USER, "destroy"))
            if alternate is not None:
                destroy["jid"] = alternate
            if reason:
                destroy.addElement("reason", content=reason)
            # XEP-0045 Example 201: <destroy/> follows the item
            x.children.insert(1, destroy)
            self._send(presence)
        self._log.info("Room {roomJID} destroyed", roomJID=state.room.address)


def occupantJID(roomJID: str, nick: str) -> str:
    """
    The occupant JID C{room@service/nick}.
    """
    return f"{roomJID}/{nick}"


__all__ = [
    "IRoomBackend",
    "JoinAccepted",
    "MUCService",
    "NS_MUC",
    "NS_MUC_USER",
    "mucError",
    "occupantJID",
    "parseJoin",
]
