# -*- test-case-name: tests.xmpp.test_room -*-
"""
The stanzas XMPP users send to rooms of the gateway's MUC service
emulation (XEP-0045 as a service), the base of
L{MUCService<stoxgw.xmpp.room.MUCService>}, which adds the room registry
and what the SIP side pushes:

  - presence: join (7.2) through the backend, presence updates (7.7), nick
    changes (7.6), exit (7.14);
  - messages: groupchat (7.4) through the backend and reflected, private
    messages (7.5), mediated invitations and declines (7.8.2), chat states;
  - IQs: pings (XEP-0410 self-ping optimisation), everything else refused.

Nothing escapes an observer: bugs are logged and a request is answered
with C{internal-server-error}.
"""

from __future__ import annotations

from collections.abc import Callable
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

from stoxgw.rooms.model import (
    HistoryEntry,
    NickConflict,
    Participant,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey, enforce
from stoxgw.xmpp.mucroom import MUCRoom, RoomOccupant
from stoxgw.xmpp.roombackend import IRoomBackend, JoinAccepted
from stoxgw.xmpp.stanzas import (
    NS_MUC,
    NS_MUC_USER,
    NS_PING,
    MUCStatus,
    childText,
    chatStateName,
    mucError,
    parseJoin,
)


class RoomInbound(XMPPHandler):
    """
    The handling of stanzas to hosted rooms, over the state
    L{MUCService<stoxgw.xmpp.room.MUCService>} sets up.

    @ivar domain: the room domain.
    @ivar backend: the L{IRoomBackend}.
    """

    _log = Logger()

    domain: str
    backend: IRoomBackend
    clock: IReactorTime
    _newID: Callable[[], str]
    _rooms: dict[str, MUCRoom]

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
                    self._leave(state, sender, childText(presence, "status"))
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
        show = childText(presence, "show")
        status = childText(presence, "status")
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
        show = childText(presence, "show")
        status = childText(presence, "status")
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
            roomJID, sender.full(), childText(declines[0], "reason")
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
            reason = childText(invite, "reason")
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
        if childText(message, "subject") is not None:
            # RFC 7702 has no way to set a SIP room's subject
            self._replyError(message, mucError("forbidden"), roomJID)
            return
        body = childText(message, "body")
        chatState = chatStateName(message)
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
        body = childText(message, "body")
        chatState = chatStateName(message)
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
