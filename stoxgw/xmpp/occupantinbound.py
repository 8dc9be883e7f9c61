# -*- test-case-name: tests.xmpp.test_occupant -*-
"""
What rooms send to the gateway's MUC occupants (XEP-0045), the base of
L{OccupantService<stoxgw.xmpp.occupant.OccupantService>}, which adds the
commands and the link's life:

  - presence: the join's completion (110, 201 and the instant-room form),
    roster changes in the room's shared roster, nick changes (303, ours
    asked for or chosen by the service), removals, entry and nick-change
    errors;
  - messages: subject, history, groupchat messages and the reflections of
    our own (R-196), private messages, mediated and direct invitations and
    declines, message errors;
  - IQs to our users' real JIDs: XEP-0410 pings and disco#info.
"""

from __future__ import annotations


import stoxgw.xmpp  # noqa: F401  (wokkel compat names first)

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid
from twisted.words.xish import domish
from wokkel import muc
from wokkel.delay import Delay
from wokkel.subprotocols import XMPPHandler

from stoxgw.rooms.model import Subject
from stoxgw.xmpp.component import LinkDown
from stoxgw.xmpp.disco import discoInfoReply, pingReply
from stoxgw.xmpp.occupantmodel import (
    Decline,
    GroupchatMessage,
    Invitation,
    IOccupantHandler,
    JoinResult,
    LeftReason,
    LinkLost,
    NotInRoom,
    Occupant,
    OccupantError,
    OccupantState,
    PrivateMessage,
    Removal,
    RemovedWhileJoining,
    errorFromStanza,
    occupantOf,
    removalOf,
)
from stoxgw.xmpp.occupantstate import (
    IN_ROOM,
    OccupantRecord,
    PendingSend,
    RoomRoster,
    Waiter,
)
from stoxgw.xmpp.stanzas import (
    BAD_JID,
    NS_CONFERENCE,
    NS_DELAY,
    NS_DISCO_INFO,
    NS_MUC_USER,
    NS_PING,
    ChatStateNotification,
    InstantRoomRequest,
    MUCPresence,
    chatStateOf,
    internText,
    isHandled,
    jidOrNone,
    markHandled,
    originIDOf,
    stampOf,
    stanzaErrorOf,
    textOf,
)


class OccupantInbound(XMPPHandler):
    """
    The handling of stanzas to the gateway's occupants, over the state
    L{OccupantService<stoxgw.xmpp.occupant.OccupantService>} sets up.

    @ivar handler: told what happens.
    @ivar domain: the user domain.
    """

    _log = Logger()

    handler: IOccupantHandler
    clock: IReactorTime
    domain: str
    instantRooms: bool
    timeout: float
    _occupants: dict[tuple[str, str], OccupantRecord]
    _rosters: dict[str, RoomRoster]

    # -- state ------------------------------------------------------------

    def _record(self, roomJID: jid.JID, realJID: jid.JID) -> OccupantRecord:
        record = self._occupants.get((roomJID.userhost(), realJID.full()))
        if record is None:
            raise NotInRoom(f"{realJID.full()} is not in {roomJID.userhost()}")
        return record

    def _forget(self, record: OccupantRecord) -> None:
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

    def _endNickChange(
        self, record: OccupantRecord, nick: str | None = None, failure: Exception | None = None
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

    # -- presence ---------------------------------------------------------

    def _addressing(self, element: domish.Element) -> tuple[jid.JID, jid.JID] | None:
        """
        The sender and recipient of an inbound stanza that no other handler
        has taken and that is addressed to our domain.

        @param element: The stanza.
        @return: C{(sender, recipient)}, or L{None} when the stanza is
            already handled, lacks or has a malformed C{from} or C{to}, or is
            addressed to another domain.
        """
        if isHandled(element):
            return None
        try:
            sender = jid.internJID(element["from"])
            recipient = jid.internJID(element["to"])
        except (KeyError, *BAD_JID):
            return None
        if recipient.host != self.domain:
            return None
        return sender, recipient

    def _onPresence(self, element: domish.Element) -> None:
        addressing = self._addressing(element)
        if addressing is None:
            return
        sender, recipient = addressing
        record = self._occupants.get((sender.userhost(), recipient.full()))
        if record is None:
            return
        markHandled(element)
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

    def _available(self, record: OccupantRecord, presence: MUCPresence) -> None:
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
            record.self_ = occupantOf(presence, True)
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
            record.self_ = occupantOf(presence, True)
            self._endNickChange(record, nick=nick)
            self.handler.nickChanged(record.roomJID, record.realJID, old, nick)
            return
        if nick == record.nick:
            record.self_ = occupantOf(presence, True)
            if record.state in IN_ROOM:
                self.handler.occupantAvailable(record.roomJID, record.realJID, record.self_, False)
            return
        self._otherAvailable(record, presence)

    def _otherAvailable(self, record: OccupantRecord, presence: MUCPresence) -> None:
        occupant = occupantOf(presence, False)
        new = not record.roster.has(record, occupant.nick)
        record.roster.put(record, occupant)
        self.handler.occupantAvailable(record.roomJID, record.realJID, occupant, new)

    def _joinCompleted(self, record: OccupantRecord, presence: MUCPresence) -> None:
        record.nick = presence.sender.resource
        record.self_ = occupantOf(presence, True)
        record.created = 201 in presence.statusCodes
        record.subjectSeen = False
        if record.created and self.instantRooms:
            record.state = OccupantState.CONFIGURING
            self._log.info(
                "Created {roomJID}; submitting the instant-room form",
                roomJID=record.roomJID.userhost(),
            )
            request = InstantRoomRequest(recipient=record.roomJID, sender=record.realJID)
            request.timeout = self.timeout
            d = defer.maybeDeferred(self.request, request)
            d.addCallbacks(
                lambda _: self._configured(record),
                lambda failure: self._configurationFailed(record, failure),
            )
            return
        self._finishJoin(record, locked=record.created)

    def _configured(self, record: OccupantRecord) -> None:
        if record.state is OccupantState.CONFIGURING:
            self._finishJoin(record, locked=False)

    def _configurationFailed(self, record: OccupantRecord, failure: Failure) -> None:
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
        record.leave = Waiter(
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
        waiter.errback(OccupantError("undefined-condition", failure.getErrorMessage(), stanzaError))

    def _finishJoin(self, record: OccupantRecord, locked: bool) -> None:
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

    def _unavailable(self, record: OccupantRecord, presence: MUCPresence) -> None:
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
                affiliation=internText(presence.affiliation) or (old.affiliation if old else None),
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
            occupant = known or occupantOf(presence, False)
            self.handler.occupantLeft(record.roomJID, record.realJID, occupant, removalOf(presence))
            return
        removal = removalOf(presence)
        if record.state is OccupantState.JOINING:
            self._forget(record)
            if record.join is not None:
                record.join.errback(RemovedWhileJoining(removal))
            return
        self._finishLeft(record, removal, confirmed=True)

    def _finishLeft(self, record: OccupantRecord, removal: Removal, confirmed: bool) -> None:
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

    def _failSends(self, record: OccupantRecord, reason: Exception) -> None:
        sends, record.sends = record.sends, {}
        for pending in sends.values():
            pending.waiter.errback(reason)

    def _presenceError(self, record: OccupantRecord, element: domish.Element) -> None:
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
        addressing = self._addressing(element)
        if addressing is None:
            return
        sender, recipient = addressing
        messageType = element.getAttribute("type") or "normal"
        record = self._occupants.get((sender.userhost(), recipient.full()))
        try:
            if messageType != "error" and self._invitation(sender, recipient, element):
                markHandled(element)
                return
            if record is None:
                return
            markHandled(element)
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
                inviter = jidOrNone(invite.getAttribute("from"))
                invitation = Invitation(
                    roomJID=sender.userhostJID(),
                    invitee=recipient,
                    inviter=inviter,
                    reason=textOf(invite, "reason"),
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
                        decliner=jidOrNone(decline.getAttribute("from")),
                        reason=textOf(decline, "reason"),
                    ),
                )
                return True
        for x in element.elements(NS_CONFERENCE, "x"):
            roomJID = jidOrNone(x.getAttribute("jid"))
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

    def _groupchat(self, record: OccupantRecord, element: domish.Element) -> None:
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
            if chatState is not None and nick and not fromSelf and chatState is not ChatStateNotification.GONE:
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
        self, record: OccupantRecord, stanzaID: str | None, originID: str | None, body: str
    ) -> PendingSend | None:
        for candidate in (stanzaID, originID):
            if candidate and candidate in record.sends:
                return record.sends.pop(candidate)
        # A room that changes ids and drops origin-id: the oldest pending
        # message with the same body.
        for key, pending in record.sends.items():
            if pending.body == body:
                return record.sends.pop(key)
        return None

    def _private(self, record: OccupantRecord, element: domish.Element) -> None:
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

    def _messageError(self, record: OccupantRecord, element: domish.Element) -> None:
        stanzaError = stanzaErrorOf(element)
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

    # -- IQs to our users' real JIDs (XEP-0410, XEP-0030) ----------------------

    def _onIQGet(self, iq: domish.Element) -> None:
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
                markHandled(iq)
                self._answerPing(iq, sender, recipient)
            elif (child.uri, child.name) == (NS_DISCO_INFO, "query"):
                markHandled(iq)
                self._answerDiscoInfo(iq, recipient, child.getAttribute("node"))
        except LinkLost as e:
            self._log.warn("Cannot answer an IQ: {error}", error=e)

    def _recordsOf(self, realJID: jid.JID) -> list[OccupantRecord]:
        full = realJID.full()
        return [r for r in self._occupants.values() if r.realJID.full() == full]

    def _answerPing(self, iq: domish.Element, sender: jid.JID, recipient: jid.JID) -> None:
        """
        XEP-0410 section 3.2, see L{pingReply<stoxgw.xmpp.disco.pingReply>}.
        """
        self._send(
            pingReply(
                iq,
                fromOurRoom=self._occupants.get((sender.userhost(), recipient.full())) is not None,
                fromOtherOccupant=bool(sender.resource)
                and any(r.roomJID.userhost() == sender.userhost() for r in self._occupants.values()),
                knownUser=bool(self._recordsOf(recipient)),
            )
        )

    def _answerDiscoInfo(self, iq: domish.Element, recipient: jid.JID, node: str | None) -> None:
        self._send(discoInfoReply(iq, bool(self._recordsOf(recipient)), node))
