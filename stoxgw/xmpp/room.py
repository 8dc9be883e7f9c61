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
from dataclasses import dataclass
from datetime import datetime, timezone

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID, InvalidFormat
from twisted.words.protocols.jabber.xmlstream import toResponse
from twisted.words.xish import domish
from wokkel.subprotocols import XMPPHandler
from zope.interface import Interface

from stoxgw.rooms.model import (
    HistoryEntry,
    HistoryRequest,
    NickConflict,
    Participant,
    RemovalReason,
    Room,
    RoomEvent,
    Subject,
    UnknownParticipant,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey, enforce
from stoxgw.xmpp.mucroom import REMOVAL_STATUS, MUCRoom, RoomOccupant
from stoxgw.xmpp.stanzas import (
    NS_CHATSTATES,
    NS_MUC,
    NS_MUC_USER,
    NS_PING,
    ChatStateNotification,
    MUCStatus,
    mucError,
    roomMessage,
)

#: XEP-0085 chat states.
CHAT_STATES = frozenset(state.value for state in ChatStateNotification)



@dataclass(frozen=True, slots=True)
class JoinAccepted:
    """
    A backend's positive answer to L{IRoomBackend.joinRequested}.

    @ivar nick: the nick the room gave the user if it is not the one asked
        for (status 210; RFC 7702 section 5.6 auto-rename, R-014).
    @ivar created: the join created the room (status 201).
    """

    nick: str | None = None
    created: bool = False


class IRoomBackend(Interface):
    """
    What the room side calls when XMPP users act (the interworking layer
    implements it and talks to the SIP focus and MSRP switch).

    Addresses are strings: C{roomJID} is the room's bare JID (the model's
    L{Room.address}), C{realJID} the user's full JID.  A returned Deferred
    that fails with a L{StanzaError} is answered with that error (see
    L{mucError}); L{NotImplementedError} with C{feature-not-implemented};
    anything else is logged and answered with C{internal-server-error}.
    """

    def joinRequested(
        roomJID: str,
        nick: str,
        realJID: str,
        password: str | None,
        history: HistoryRequest | None,
    ) -> defer.Deferred[JoinAccepted | None]:
        """
        An XMPP user (one session) wants to enter the room with C{nick}
        (RFC 7700-enforced).  Called for every session, also when another
        session of the same user already holds the nick.  The room may not
        exist yet: the backend can L{MUCService.createRoom} it before
        answering.  Fire with L{JoinAccepted} or L{None} once the user is in
        (RFC 7702 section 5.1-5.3: INVITE, NICKNAME, SUBSCRIBE done).
        """

    def nickChangeRequested(
        roomJID: str, nick: str, newNick: str, realJID: str
    ) -> defer.Deferred[str | None]:
        """
        An occupant wants the nick C{newNick} (RFC 7702 section 5.6).  Fire
        with the nick the room gave (if not C{newNick}: status 210) or
        L{None}; fail with C{conflict} on MSRP 425.
        """

    def messageSent(
        roomJID: str,
        nick: str,
        realJID: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        """
        An occupant sent a groupchat message (RFC 7702 section 5.5.1).  Fire
        once the switch accepted it; the room then reflects it.
        """

    def privateMessageSent(
        roomJID: str,
        nick: str,
        realJID: str,
        toNick: str,
        body: str,
        messageID: str | None,
        chatState: str | None,
    ) -> defer.Deferred[None]:
        """
        An occupant sent a private message to C{toNick} (RFC 7702 section
        5.5.2).
        """

    def chatStateSent(
        roomJID: str, nick: str, realJID: str, state: str, toNick: str | None
    ) -> None:
        """
        An occupant sent a standalone XEP-0085 chat state, to the room
        (C{toNick} L{None}) or to one participant.
        """

    def invitationSent(
        roomJID: str, nick: str, realJID: str, invitee: str, reason: str | None
    ) -> defer.Deferred[None]:
        """
        An occupant sent a mediated invitation (XEP-0045 7.8.2) for
        C{invitee} (a JID): fires once it is on its way, fails with a
        L{StanzaError} to return to the inviter.
        """

    def invitationDeclined(roomJID: str, realJID: str, reason: str | None) -> None:
        """
        C{realJID} declined an invitation to the room (XEP-0045 7.8.2).
        """

    def presenceChanged(
        roomJID: str, nick: str, realJID: str, show: str | None, status: str | None
    ) -> None:
        """
        An occupant changed its availability in the room.
        """

    def left(roomJID: str, nick: str, realJID: str, status: str | None) -> None:
        """
        An occupant session left the room (RFC 7702 section 5.8), or was
        dropped because its server bounced a stanza; C{status} is its exit
        text, if any.  Also called when a session's join succeeded after the
        session had already left.
        """


def _parseStamp(value: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp


def _nonNegative(value: str | None) -> int | None:
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
                    maxChars=_nonNegative(child.getAttribute("maxchars")),
                    maxStanzas=_nonNegative(child.getAttribute("maxstanzas")),
                    seconds=_nonNegative(child.getAttribute("seconds")),
                    since=_parseStamp(since) if since is not None else None,
                )
        return True, password, history
    return False, None, None


def _childText(element: domish.Element, name: str) -> str | None:
    for child in element.elements():
        if child.name == name and child.uri in (
            None,
            "jabber:client",
            "jabber:component:accept",
            element.uri,
        ):
            return str(child)
    return None


def _chatState(message: domish.Element) -> str | None:
    for child in message.elements(NS_CHATSTATES):
        if child.name in CHAT_STATES:
            return str(child.name)
    return None


class MUCService(XMPPHandler):
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

    # -- stream plumbing ------------------------------------------------

    def connectionInitialized(self) -> None:
        self.xmlstream.addObserver("/presence", self._guard(self._onPresence))
        self.xmlstream.addObserver("/message", self._guard(self._onMessage))
        self.xmlstream.addObserver("/iq", self._guard(self._onIQ), -1)

    def _guard(
        self, handler: Callable[[domish.Element], None]
    ) -> Callable[[domish.Element], None]:
        """
        Nothing escapes an observer: bugs are logged and, for a request,
        answered with C{internal-server-error}.
        """

        def observer(stanza: domish.Element) -> None:
            try:
                handler(stanza)
            except Exception:
                self._log.failure(
                    "Failed to handle a stanza for {roomJID}",
                    roomJID=stanza.getAttribute("to"),
                )
                if stanza.getAttribute("type") not in ("error", "result"):
                    self._replyError(stanza, mucError("internal-server-error"))

        return observer

    def _send(self, element: domish.Element) -> None:
        try:
            self.send(element)
        except Exception as e:
            self._log.warn(
                "Could not send to {to}: {error}",
                to=element.getAttribute("to"),
                error=e,
            )

    def _replyError(
        self,
        stanza: domish.Element,
        stanzaError: error.StanzaError,
        by: str | None = None,
    ) -> None:
        """
        Answer C{stanza} with an error: from its C{to}, to its C{from}.
        Presence errors carry only an empty MUC C{<x/>} (never the password);
        message errors also echo the body.
        """
        if stanza.getAttribute("from") is None:
            return
        response = toResponse(stanza, "error")
        if stanza.name == "presence":
            response.addElement((NS_MUC, "x"))
        elif stanza.name == "message":
            for child in stanza.elements():
                if child.name in ("body", "subject"):
                    response.addChild(child)
        elif stanza.name == "iq":
            response.children = list(stanza.children)
        element = stanzaError.getElement()
        if by is not None:
            element["by"] = by
        response.addChild(element)
        self._send(response)

    def _failureToError(
        self, failure: Failure, roomJID: str, nick: str | None
    ) -> error.StanzaError:
        if isinstance(failure.value, error.StanzaError):
            return failure.value
        if failure.check(NotImplementedError):
            return error.StanzaError("feature-not-implemented")
        self._log.failure(
            "Backend failed for {roomJID} {nick}", failure, roomJID=roomJID, nick=nick
        )
        return mucError("internal-server-error")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    # -- incoming presence ------------------------------------------------

    def _onPresence(self, presence: domish.Element) -> None:
        sender = self._sender(presence)
        to = self._recipient(presence)
        presenceType = presence.getAttribute("type")
        if sender is not None and to is None and presenceType is None:
            # not even a resourcepart (RFC 6122 resourceprep) can hold it
            self._replyError(presence, mucError("jid-malformed"))
            return
        if sender is None or to is None or to.host != self.domain or not to.user:
            return
        roomJID = to.userhost()
        state = self._rooms.get(roomJID)
        if presenceType == "error":
            if state is not None and state.occupantOf(sender) is not None:
                self._leave(state, sender, None)
            return
        if presenceType == "unavailable":
            if state is not None:
                if state.occupantOf(sender) is not None:
                    self._leave(state, sender, _childText(presence, "status"))
                elif state.pendingJoins.pop(sender.full(), None) is not None:
                    self._log.info(
                        "Join to {roomJID} abandoned by {realJID}",
                        roomJID=roomJID,
                        realJID=sender.full(),
                    )
            return
        if presenceType is not None:
            # subscriptions and probes mean nothing to a room
            return
        occupant = state.occupantOf(sender) if state is not None else None
        if to.resource is None or to.resource == "":
            self._replyError(presence, mucError("jid-malformed"), roomJID)
            return
        try:
            nick = enforce(to.resource)
        except InvalidNickname as e:
            self._log.info(
                "Malformed nick for {roomJID} from {realJID}: {error}",
                roomJID=roomJID,
                realJID=sender.full(),
                error=e.reason,
            )
            self._replyError(presence, mucError("jid-malformed", e.reason), roomJID)
            return
        if state is not None and occupant is not None:
            if comparisonKey(nick) == occupant.key and nick == occupant.nick:
                self._presenceUpdate(state, occupant, presence)
            else:
                self._changeNick(state, occupant, sender, nick, presence)
            return
        self._join(roomJID, state, sender, nick, presence)

    def _sender(self, stanza: domish.Element) -> JID | None:
        try:
            sender = JID(stanza.getAttribute("from", ""))
        except InvalidFormat:
            return None
        return sender if sender.host else None

    def _recipient(self, stanza: domish.Element) -> JID | None:
        try:
            return JID(stanza.getAttribute("to", ""))
        except InvalidFormat:
            return None

    # -- join ------------------------------------------------------------------

    def _join(
        self,
        roomJID: str,
        state: MUCRoom | None,
        sender: JID,
        nick: str,
        presence: domish.Element,
    ) -> None:
        key = comparisonKey(nick)
        if state is not None:
            if sender.full() in state.pendingJoins:
                self._log.debug(
                    "Duplicate join to {roomJID} from {realJID}",
                    roomJID=roomJID,
                    realJID=sender.full(),
                )
                return
            if self._nickTaken(state, key, sender, remote=False):
                # Only XMPP users are checked here: whether a SIP
                # participant's nick is free, the focus decides (NICKNAME).
                self._replyError(presence, mucError("conflict"), roomJID)
                return
            state.pendingJoins[sender.full()] = key
        _, password, history = parseJoin(presence)
        presenceID = presence.getAttribute("id")
        show = _childText(presence, "show")
        status = _childText(presence, "status")
        try:
            d = defer.maybeDeferred(
                self.backend.joinRequested,
                roomJID,
                nick,
                sender.full(),
                password,
                history,
            )
        except Exception:  # pragma: no cover - maybeDeferred catches
            d = defer.fail()

        def accepted(result: JoinAccepted | None) -> None:
            current = self._rooms.get(roomJID)
            if current is None:
                self._replyError(presence, mucError("item-not-found"), roomJID)
                return
            if (
                current is state
                and state is not None
                and sender.full() not in state.pendingJoins
            ):
                # the session left while the backend worked on it
                self.backend.left(roomJID, nick, sender.full(), None)
                return
            current.pendingJoins.pop(sender.full(), None)
            given = nick
            statuses = current.selfStatuses()
            if result is not None and result.nick is not None:
                try:
                    given = enforce(result.nick)
                except InvalidNickname as e:
                    self._log.error(
                        "Backend gave {roomJID} the invalid nick {nick}: {error}",
                        roomJID=roomJID,
                        nick=result.nick,
                        error=e.reason,
                    )
                    self._replyError(
                        presence, mucError("internal-server-error"), roomJID
                    )
                    self.backend.left(roomJID, nick, sender.full(), None)
                    return
                if given != nick:
                    statuses.add(MUCStatus.NICK_MODIFIED)
            if result is not None and result.created:
                statuses.add(MUCStatus.ROOM_CREATED)
            givenKey = comparisonKey(given)
            if self._nickTaken(current, givenKey, sender):
                self._replyError(presence, mucError("conflict"), roomJID)
                self.backend.left(roomJID, given, sender.full(), None)
                return
            current.enter(
                sender, given, show, status, history, statuses, presenceID
            )

        def refused(failure: Failure) -> None:
            current = self._rooms.get(roomJID)
            if current is not None:
                current.pendingJoins.pop(sender.full(), None)
            stanzaError = self._failureToError(failure, roomJID, nick)
            self._log.info(
                "Join to {roomJID} as {nick} refused: {error}",
                roomJID=roomJID,
                nick=nick,
                error=stanzaError.condition,
            )
            self._replyError(presence, stanzaError, roomJID)

        d.addCallbacks(accepted, refused)
        d.addErrback(
            lambda f: self._log.failure("Join to {roomJID} failed", f, roomJID=roomJID)
        )

    def _nickTaken(
        self, state: MUCRoom, key: str, sender: JID, remote: bool = True
    ) -> bool:
        """
        Whether the nick is held by anybody but the sender's own user (whose
        other sessions may share it); with C{remote} false, by an XMPP user.
        """
        occupant = state.occupants.get(key)
        if occupant is not None:
            return bool(occupant.bareJID != sender.userhost())
        if remote and key in state.room.roster:
            return True
        for pendingSession, pendingKey in state.pendingJoins.items():
            if (
                pendingKey == key
                and JID(pendingSession).userhost() != sender.userhost()
            ):
                return True
        return False

    # -- presence update, nick change, exit ------------------------------------

    def _presenceUpdate(
        self, state: MUCRoom, occupant: RoomOccupant, presence: domish.Element
    ) -> None:
        """
        XEP-0045 section 7.7: broadcast the new availability.
        """
        show = _childText(presence, "show")
        status = _childText(presence, "status")
        old = state.room.get(occupant.nick)
        if old is None:
            return
        event = state.room.update(
            Participant(
                nick=old.nick,
                displayName=old.displayName,
                role=old.role,
                affiliation=old.affiliation,
                realAddress=old.realAddress,
                show=show,
                status=status,
            )
        )
        state.broadcastEvent(event)
        sender = self._sender(presence)
        self.backend.presenceChanged(
            state.room.address,
            occupant.nick,
            sender.full() if sender else "",
            show,
            status,
        )

    def _changeNick(
        self,
        state: MUCRoom,
        occupant: RoomOccupant,
        sender: JID,
        newNick: str,
        presence: domish.Element,
    ) -> None:
        """
        XEP-0045 section 7.6 through the backend (RFC 7702 section 5.6).
        """
        roomJID = state.room.address
        newKey = comparisonKey(newNick)
        if occupant.key in state.pendingNickChanges:
            self._log.debug("Nick change already pending in {roomJID}", roomJID=roomJID)
            return
        if newKey != occupant.key and (
            newKey in state.room.roster or newKey in state.pendingJoins.values()
        ):
            self._replyError(presence, mucError("conflict"), roomJID)
            return
        oldNick = occupant.nick
        state.pendingNickChanges.add(occupant.key)
        d = defer.maybeDeferred(
            self.backend.nickChangeRequested, roomJID, oldNick, newNick, sender.full()
        )

        def changed(result: str | None) -> None:
            state.pendingNickChanges.discard(occupant.key)
            if (
                self._rooms.get(roomJID) is not state
                or occupant.key not in state.occupants
            ):
                return
            given = enforce(result) if result is not None else newNick
            try:
                event = state.room.changeNick(oldNick, given)
            except NickConflict:
                self._replyError(presence, mucError("conflict"), roomJID)
                return
            oldKey = occupant.key
            occupant.nick = event.new.nick
            state.occupants = {
                (occupant.key if key == oldKey else key): value
                for key, value in state.occupants.items()
            }
            state.broadcastEvent(event, modified=given != newNick)

        def refused(failure: Failure) -> None:
            state.pendingNickChanges.discard(occupant.key)
            stanzaError = self._failureToError(failure, roomJID, newNick)
            self._replyError(presence, stanzaError, roomJID)

        d.addCallbacks(changed, refused)
        d.addErrback(
            lambda f: self._log.failure(
                "Nick change in {roomJID} failed", f, roomJID=roomJID
            )
        )

    def _leave(self, state: MUCRoom, session: JID, status: str | None) -> None:
        """
        XEP-0045 section 7.14: one session leaves; the occupant leaves with
        its last session.
        """
        occupant = state.occupantOf(session)
        if occupant is None:
            return
        participant = state.room.get(occupant.nick)
        occupant.sessions.remove(session)
        roomJID = state.room.address
        self._send(
            state.presence(occupant.nick,
                session,
                participant,
                unavailable=True,
                statuses={MUCStatus.SELF},
                statusText=status,
            )
        )
        if not occupant.sessions:
            del state.occupants[occupant.key]
            if participant is not None:
                event = state.room.leave(occupant.nick)
                state.broadcastEvent(event, statusText=status)
        self._log.info(
            "{realJID} left {roomJID} ({nick})",
            realJID=session.full(),
            roomJID=roomJID,
            nick=occupant.nick,
        )
        self.backend.left(roomJID, occupant.nick, session.full(), status)

    # -- incoming messages --------------------------------------------------------

    def _onDecline(self, sender: JID, message: domish.Element, roomJID: str) -> bool:
        """
        An invitee declines an invitation of the room (XEP-0045 7.8.2),
        whether or not the room is hosted yet (a focus's dial-out).

        @return: whether C{message} was one.
        """
        declines = [
            decline
            for x in message.elements(NS_MUC_USER, "x")
            for decline in x.elements(NS_MUC_USER, "decline")
        ]
        if not declines:
            return False
        self.backend.invitationDeclined(
            roomJID, sender.full(), _childText(declines[0], "reason")
        )
        return True

    def _onInvitation(
        self, state: MUCRoom, sender: JID, message: domish.Element, roomJID: str
    ) -> bool:
        """
        A mediated invitation (XEP-0045 7.8.2, RFC 7702 section 5.7) from
        an occupant: to the backend (a REFER to the focus).

        @return: whether C{message} was one.
        """
        invites = [
            invite
            for x in message.elements(NS_MUC_USER, "x")
            for invite in x.elements(NS_MUC_USER, "invite")
        ]
        if not invites:
            return False
        occupant = state.occupantOf(sender)
        if occupant is None:
            self._replyError(message, mucError("not-acceptable"), roomJID)
            return True
        for invite in invites:
            invitee = invite.getAttribute("to")
            if not invitee:
                self._replyError(message, mucError("bad-request"), roomJID)
                continue
            reason = _childText(invite, "reason")
            d = defer.maybeDeferred(
                self.backend.invitationSent,
                roomJID,
                occupant.nick,
                sender.full(),
                invitee,
                reason,
            )

            def refused(failure: Failure) -> None:
                self._replyError(message, self._failureToError(failure, roomJID, None), roomJID)

            d.addErrback(refused)
        return True

    def _onMessage(self, message: domish.Element) -> None:
        sender = self._sender(message)
        to = self._recipient(message)
        if sender is None or to is None or to.host != self.domain:
            return
        messageType = message.getAttribute("type", "normal")
        if messageType == "error":
            return
        if not to.user:
            self._replyError(message, error.StanzaError("service-unavailable"))
            return
        roomJID = to.userhost()
        if not to.resource and messageType != "groupchat" and self._onDecline(
            sender, message, roomJID
        ):
            return
        state = self._rooms.get(roomJID)
        if state is None:
            self._replyError(message, mucError("item-not-found"), roomJID)
            return
        if to.resource:
            self._onPrivateMessage(state, sender, to.resource, message, messageType)
            return
        if messageType != "groupchat":
            if self._onInvitation(state, sender, message, roomJID):
                return
            # voice requests and the like are not mapped
            self._replyError(message, mucError("feature-not-implemented"), roomJID)
            return
        occupant = state.occupantOf(sender)
        if occupant is None:
            self._replyError(message, mucError("not-acceptable"), roomJID)
            return
        if _childText(message, "subject") is not None:
            # RFC 7702 has no way to set a SIP room's subject
            self._replyError(message, mucError("forbidden"), roomJID)
            return
        body = _childText(message, "body")
        chatState = _chatState(message)
        if body is None:
            if chatState is not None and chatState != "gone":
                self.backend.chatStateSent(
                    roomJID, occupant.nick, sender.full(), chatState, None
                )
                for other, session in state.sessions():
                    if other is not occupant:
                        self._send(
                            state.groupchat(occupant.nick,
                                session,
                                None,
                                None,
                                chatState=chatState,
                            )
                        )
            return
        self._sendGroupChat(state, occupant, sender, message, body, chatState)

    def _sendGroupChat(
        self,
        state: MUCRoom,
        occupant: RoomOccupant,
        sender: JID,
        message: domish.Element,
        body: str,
        chatState: str | None,
    ) -> None:
        """
        XEP-0045 section 7.4: to the backend, then reflect with the client's
        id to every session (R-191, R-212), or answer with the error.
        """
        roomJID = state.room.address
        nick = occupant.nick
        messageID = message.getAttribute("id")
        d = defer.maybeDeferred(
            self.backend.messageSent,
            roomJID,
            nick,
            sender.full(),
            body,
            messageID,
            chatState,
        )

        def accepted(_: object) -> None:
            if self._rooms.get(roomJID) is not state:
                return
            reflectedID = messageID or self._newID()
            entry = HistoryEntry(
                nick=nick, body=body, timestamp=self._now(), messageID=reflectedID
            )
            state.room.record(entry)
            for _occupant, session in state.sessions():
                self._send(
                    state.groupchat(nick, session, body, reflectedID, chatState=chatState
                    )
                )

        def refused(failure: Failure) -> None:
            stanzaError = self._failureToError(failure, roomJID, nick)
            self._log.info(
                "Message to {roomJID} from {nick} refused: {error}",
                roomJID=roomJID,
                nick=nick,
                error=stanzaError.condition,
            )
            self._replyError(message, stanzaError, roomJID)

        d.addCallbacks(accepted, refused)
        d.addErrback(
            lambda f: self._log.failure(
                "Groupchat in {roomJID} failed", f, roomJID=roomJID
            )
        )

    def _onPrivateMessage(
        self,
        state: MUCRoom,
        sender: JID,
        toNick: str,
        message: domish.Element,
        messageType: str,
    ) -> None:
        """
        XEP-0045 section 7.5 (R-192, R-220).
        """
        roomJID = state.room.address
        if messageType == "groupchat":
            self._replyError(message, mucError("bad-request"), roomJID)
            return
        occupant = state.occupantOf(sender)
        if occupant is None:
            self._replyError(message, mucError("not-acceptable"), roomJID)
            return
        recipient = state.room.get(toNick)
        if recipient is None:
            self._replyError(message, mucError("item-not-found"), roomJID)
            return
        if not state.room.settings.privateMessages:
            self._replyError(message, mucError("feature-not-implemented"), roomJID)
            return
        body = _childText(message, "body")
        chatState = _chatState(message)
        if body is None:
            if chatState is not None:
                self.backend.chatStateSent(
                    roomJID, occupant.nick, sender.full(), chatState, recipient.nick
                )
            return
        d = defer.maybeDeferred(
            self.backend.privateMessageSent,
            roomJID,
            occupant.nick,
            sender.full(),
            recipient.nick,
            body,
            message.getAttribute("id"),
            chatState,
        )

        def refused(failure: Failure) -> None:
            self._replyError(
                message, self._failureToError(failure, roomJID, occupant.nick), roomJID
            )

        d.addErrback(refused)
        d.addErrback(
            lambda f: self._log.failure("PM in {roomJID} failed", f, roomJID=roomJID)
        )

    # -- incoming IQs -------------------------------------------------------------

    def _onIQ(self, iq: domish.Element) -> None:
        if getattr(iq, "handled", False) or iq.getAttribute("type") not in (
            "get",
            "set",
        ):
            return
        iq.handled = True  # type: ignore[attr-defined]
        sender = self._sender(iq)
        to = self._recipient(iq)
        if sender is None or to is None:
            return
        isPing = (
            iq.firstChildElement() is not None and iq.firstChildElement().uri == NS_PING
        )
        if not to.user:
            if isPing:
                self._send(toResponse(iq, "result"))
            else:
                self._replyError(iq, error.StanzaError("service-unavailable"))
            return
        roomJID = to.userhost()
        state = self._rooms.get(roomJID)
        if state is None:
            self._replyError(iq, mucError("item-not-found"), roomJID)
            return
        if not to.resource:
            if isPing:
                self._send(toResponse(iq, "result"))
            else:
                # room administration is out of RFC 7702's scope (R-001)
                self._replyError(iq, mucError("feature-not-implemented"), roomJID)
            return
        occupant = state.occupantOf(sender)
        if occupant is None:
            # XEP-0410: not joined; XEP-0045 section 6.6 for disco
            self._replyError(
                iq, mucError("not-acceptable" if isPing else "bad-request"), roomJID
            )
            return
        if isPing and comparisonKey(to.resource) == occupant.key:
            # XEP-0410 self-ping optimisation
            self._send(toResponse(iq, "result"))
            return
        self._replyError(iq, mucError("service-unavailable"), roomJID)

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
    "CHAT_STATES",
    "IRoomBackend",
    "JoinAccepted",
    "MUCService",
    "NS_MUC",
    "NS_MUC_USER",
    "mucError",
    "occupantJID",
    "parseJoin",
]
