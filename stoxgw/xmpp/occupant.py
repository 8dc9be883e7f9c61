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
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import stoxgw.xmpp  # noqa: F401  (wokkel compat names first)

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error, jid, xmlstream
from twisted.words.xish import domish
from wokkel import muc
from wokkel.delay import Delay
from wokkel.subprotocols import XMPPHandler
from zope.interface import implementer

from stoxgw.xmpp.component import ILinkObserver, LinkDown
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
    OccupantKey,
    OccupantState,
    OccupantTimeout,
    PrivateMessage,
    Removal,
    RemovedWhileJoining,
    SelfPingResult,
    Subject,
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
    MUCStatus,
    PingRequest,
    buildMessage,
    chatStateOf,
    internText,
    isHandled,
    jidOrNone,
    markHandled,
    originIDOf,
    removalStatus,
    stampOf,
    stanzaErrorOf,
    textOf,
)

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
            return defer.fail(OccupantError("jid-malformed", "empty nick"))
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
        chatState: ChatStateNotification | None = None,
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
        if chatState is ChatStateNotification.GONE:
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
        if record.state not in _IN_ROOM:
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

    # -- presence ---------------------------------------------------------

    def _addressing(self, element: domish.Element) -> tuple[jid.JID, jid.JID] | None:
        try:
            sender = jid.internJID(element["from"])
            recipient = jid.internJID(element["to"])
        except (KeyError, *BAD_JID):
            return None
        if recipient.host != self.domain:
            return None
        return sender, recipient

    def _onPresence(self, element: domish.Element) -> None:
        if isHandled(element):
            return
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
            if record.state in _IN_ROOM:
                self.handler.occupantAvailable(record.roomJID, record.realJID, record.self_, False)
            return
        self._otherAvailable(record, presence)

    def _otherAvailable(self, record: _OccupantRecord, presence: MUCPresence) -> None:
        occupant = occupantOf(presence, False)
        new = not record.roster.has(record, occupant.nick)
        record.roster.put(record, occupant)
        self.handler.occupantAvailable(record.roomJID, record.realJID, occupant, new)

    def _joinCompleted(self, record: _OccupantRecord, presence: MUCPresence) -> None:
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
        waiter.errback(OccupantError("undefined-condition", failure.getErrorMessage(), stanzaError))

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
        if isHandled(element):
            return
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
        if isHandled(iq) or not _ours(self, iq):
            return
        markHandled(iq)
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
        if isHandled(message) or not _ours(self, message):
            return
        markHandled(message)
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
        if isHandled(presence) or not _ours(self, presence):
            return
        markHandled(presence)
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
        if isHandled(iq):
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
                markHandled(iq)
                self._answerPing(iq, sender, recipient)
            elif (child.uri, child.name) == (NS_DISCO_INFO, "query"):
                markHandled(iq)
                self._answerDiscoInfo(iq, recipient, child.getAttribute("node"))
        except LinkLost as e:
            self._log.warn("Cannot answer an IQ: {error}", error=e)

    def _recordsOf(self, realJID: jid.JID) -> list[_OccupantRecord]:
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


def _ours(service: OccupantService, element: domish.Element) -> bool:
    """
    Whether a stanza is addressed to the service's domain.
    """
    try:
        recipient = jid.internJID(element["to"])
    except (KeyError, *BAD_JID):
        return False
    return bool(recipient.host == service.domain)


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
    "Subject",
    "errorFromStanza",
    "leftReason",
]
