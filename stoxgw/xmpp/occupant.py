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
    an entry error is an L{OccupantError} carrying its condition
    (C{conflict}, C{registration-required}, C{forbidden}, ...);
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
import uuid
from collections.abc import Callable
from typing import Any

import stoxgw.xmpp  # noqa: F401  (wokkel compat names first)

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from wokkel import muc
from zope.interface import implementer

from stoxgw.xmpp.component import ILinkObserver
from stoxgw.xmpp.disco import FallbackAnswers
from stoxgw.xmpp.occupantinbound import OccupantInbound
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
    OccupantKey,
    OccupantState,
    OccupantTimeout,
    PrivateMessage,
    Removal,
    RemovedWhileJoining,
    SelfPingResult,
    errorFromStanza,
    leftReason,
)
from stoxgw.xmpp.occupantstate import (
    IN_ROOM,
    OccupantRecord,
    PendingSend,
    RoomRoster,
    Waiter,
    chain,
)
from stoxgw.xmpp.stanzas import (
    ChatStateNotification,
    PingRequest,
    buildMessage,
)

@implementer(ILinkObserver)
class OccupantService(OccupantInbound):
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
        self._occupants: dict[tuple[str, str], OccupantRecord] = {}
        self._leftWhileDown: dict[tuple[str, str], tuple[jid.JID, str, jid.JID]] = {}
        self._rosters: dict[str, RoomRoster] = {}

    # -- wiring ------------------------------------------------------------

    def attach(self, link: Any) -> None:
        """
        Put this service on a L{ComponentLink<stoxgw.xmpp.component.ComponentLink>}:
        its stream manager and its observers.
        """
        link.observers.append(self)
        self.setHandlerParent(link.streamManager)
        # Last of all: what nobody took still gets an answer.
        self.fallback = FallbackAnswers(self.domain)
        self.fallback.setHandlerParent(link.streamManager)
        self.linkIsUp = bool(link.up)

    def connectionInitialized(self) -> None:
        """
        Watch the stream for stanzas to our users (before other handlers).
        """
        self.xmlstream.addObserver("/presence", self._onPresence, 10)
        self.xmlstream.addObserver("/message", self._onMessage, 10)
        self.xmlstream.addObserver("/iq[@type='get']", self._onIQGet, 10)

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
            L{OccupantError} with the condition of an error presence,
            L{OccupantTimeout}, L{LinkLost}.
        """
        if realJID.host != self.domain or not realJID.resource:
            return defer.fail(ValueError(f"{realJID.full()} is not a full JID on {self.domain}"))
        if not nick:
            return defer.fail(OccupantError("jid-malformed", "empty nick"))
        roomJID = roomJID.userhostJID()
        key = (roomJID.userhost(), realJID.full())
        existing = self._occupants.get(key)
        if existing is not None and existing.state is not OccupantState.NEEDS_REJOIN:
            return defer.fail(ValueError(f"{realJID.full()} is already in {roomJID.userhost()}"))
        if existing is not None:
            self._forget(existing)
        roster = self._rosters.get(key[0])
        if roster is None:
            roster = self._rosters[key[0]] = RoomRoster()
        record = OccupantRecord(
            roomJID, realJID, nick, password, history or self.history, roster
        )
        roster.add(record)
        record.join = Waiter(self.clock, self.timeout, lambda: self._joinTimedOut(record))
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

    def _joinTimedOut(self, record: OccupantRecord) -> None:
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
            an L{OccupantError} (C{conflict}, C{not-acceptable} when nicks
            are locked down), L{OccupantTimeout}, L{NotInRoom}.
        """
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        if record.state is not OccupantState.JOINED:
            return defer.fail(NotInRoom(f"cannot change nick while {record.state.value}"))
        if not nick:
            return defer.fail(OccupantError("jid-malformed", "empty nick"))
        if nick == record.nick:
            return defer.succeed(nick)
        record.state = OccupantState.CHANGING_NICK
        record.pendingNick = nick
        record.nickChange = Waiter(self.clock, self.timeout, lambda: self._nickTimedOut(record))
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

    def _nickTimedOut(self, record: OccupantRecord) -> None:
        self._endNickChange(record, failure=OccupantTimeout("no answer to the nick change"))

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
            return chain(record.leave.deferred)
        if record.state is OccupantState.NEEDS_REJOIN:
            # Unavailable on the link's return: the room may still list us.
            self._leftWhileDown[record.key] = (record.roomJID, record.nick, record.realJID)
            self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False)
            return defer.succeed(False)
        if record.state is OccupantState.JOINING and record.join is not None:
            record.join.errback(NotInRoom("join cancelled by leave"))
        self._endNickChange(record, failure=NotInRoom("left the room"))
        record.state = OccupantState.LEAVING
        record.leave = Waiter(
            self.clock,
            self.timeout,
            lambda: self._finishLeft(record, Removal(LeftReason.LEFT), confirmed=False),
        )
        deferred = chain(record.leave.deferred)
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
        chatState: ChatStateNotification | None = None,
    ) -> defer.Deferred[GroupchatMessage]:
        """
        Send a groupchat message (XEP-0045 7.4).

        @param stanzaID: the message id (generated if L{None}); also sent as
            XEP-0359 origin-id, so that the reflection can be matched even
            by a room that does not keep ids.
        @return: fires with the reflected L{GroupchatMessage}; fails with the
            L{StanzaError<twisted.words.protocols.jabber.error.StanzaError>}
            of a C{<message type='error'/>}, L{OccupantTimeout} (R-211),
            L{NotInRoom}, L{LinkLost}.
        """
        if chatState is ChatStateNotification.GONE:
            return defer.fail(ValueError("no <gone/> to a room (XEP-0085, R-202)"))
        try:
            record = self._record(roomJID, realJID)
        except NotInRoom as e:
            return defer.fail(e)
        if record.state not in IN_ROOM:
            return defer.fail(NotInRoom(f"not in the room ({record.state.value})"))
        stanzaID = stanzaID or self.idFactory()
        if stanzaID in record.sends:
            return defer.fail(ValueError(f"message id {stanzaID} already pending"))
        waiter = Waiter(
            self.clock, self.reflectionTimeout, lambda: self._reflectionTimedOut(record, stanzaID)
        )
        record.sends[stanzaID] = PendingSend(waiter, body, stanzaID)
        deferred = waiter.deferred
        try:
            self._send(
                buildMessage(record.realJID, record.roomJID, "groupchat", body, stanzaID, chatState)
            )
        except LinkLost as e:
            del record.sends[stanzaID]
            waiter.errback(e)
        return deferred

    def _reflectionTimedOut(self, record: OccupantRecord, stanzaID: str) -> None:
        pending = record.sends.pop(stanzaID, None)
        if pending is not None:
            self._log.warn(
                "No reflection of message {stanzaID} in {roomJID} for {nick}",
                stanzaID=stanzaID, roomJID=record.roomJID.userhost(), nick=record.nick,
            )
            pending.waiter.errback(OccupantTimeout(f"message {stanzaID} not reflected"))

    def sendPrivate(
        self,
        roomJID: jid.JID,
        realJID: jid.JID,
        nick: str,
        body: str | None,
        stanzaID: str | None = None,
        chatState: ChatStateNotification | None = None,
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
        if record.state not in IN_ROOM:
            raise NotInRoom(f"not in the room ({record.state.value})")
        stanzaID = stanzaID or self.idFactory()
        recipient = jid.JID(tuple=(record.roomJID.user, record.roomJID.host, nick))
        self._send(
            buildMessage(record.realJID, recipient, "chat", body, stanzaID, chatState, mucUser=True)
        )
        return stanzaID

    def sendChatState(
        self, roomJID: jid.JID, realJID: jid.JID, state: ChatStateNotification, nick: str | None = None
    ) -> None:
        """
        Send a standalone XEP-0085 notification to the room, or to C{nick}
        privately.  Never C{gone} to the room (R-202).

        @raise ValueError: C{gone} to the room.
        """
        if nick is None:
            if state is ChatStateNotification.GONE:
                raise ValueError("no <gone/> to a room (XEP-0085, R-202)")
        record = self._record(roomJID, realJID)
        if record.state not in IN_ROOM:
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
        request = PingRequest(recipient=record.occupantJID, sender=record.realJID)
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

__all__ = [
    "Decline",
    "GroupchatMessage",
    "IOccupantHandler",
    "Invitation",
    "JoinResult",
    "LeftReason",
    "LinkLost",
    "NotInRoom",
    "Occupant",
    "OccupantError",
    "OccupantKey",
    "OccupantService",
    "OccupantState",
    "OccupantTimeout",
    "PrivateMessage",
    "Removal",
    "RemovedWhileJoining",
    "SelfPingResult",
    "errorFromStanza",
    "leftReason",
]
