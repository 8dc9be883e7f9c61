# -*- test-case-name: tests.xmpp.test_occupant -*-
"""
The state L{stoxgw.xmpp.occupant.OccupantService} keeps: one record per
occupant of the gateway's (its own nick, life state, pending operations),
and one roster per room shared by all of the gateway's occupants in it
(issue 12: n occupants each keeping a copy cost n*n entries).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import jid
from wokkel import muc

from stoxgw.xmpp.occupantmodel import Occupant, OccupantState


class Waiter:
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
class PendingSend:
    """
    A groupchat message waiting for its reflection (R-196, R-211).
    """

    waiter: Waiter
    body: str
    stanzaID: str


@dataclass(eq=False, slots=True)
class OccupantRecord:
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
    roster: RoomRoster
    slot: int = 0
    own: dict[str, Occupant] | None = None
    state: OccupantState = OccupantState.JOINING
    self_: Occupant | None = None
    created: bool = False
    subjectSeen: bool = False
    join: Waiter | None = None
    nickChange: Waiter | None = None
    pendingNick: str | None = None
    expectedNick: str | None = None
    leave: Waiter | None = None
    sends: dict[str, PendingSend] = field(default_factory=dict)
    lostAt: float | None = None
    rejoining: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.roomJID.userhost(), self.realJID.full())

    @property
    def occupantJID(self) -> jid.JID:
        return jid.JID(tuple=(self.roomJID.user, self.roomJID.host, self.nick))


class RoomRoster:
    """
    One room's roster, shared by all of the gateway's occupants in it: the
    room sends every presence to each of them, and n occupants each keeping
    their own copy cost n*n entries (issue 12, W7).

    Each entry records which of our occupants have it in their view (a bit
    per occupant, L{OccupantRecord.slot}), so that every occupant still
    sees exactly the presences it was sent: an entry is new to an occupant
    that has not had it, even if another one has.  Where an occupant got a
    different entry for a nick than the shared one, it keeps its own
    (L{OccupantRecord.own}) until the entries agree again.

    @ivar entries: the shared entry of each nick.
    @ivar seen: the bits of the occupants whose view of a nick is its
        shared entry.
    @ivar members: our occupants in the room, by slot.
    """

    __slots__ = ("entries", "seen", "members")

    def __init__(self) -> None:
        self.entries: dict[str, Occupant] = {}
        self.seen: dict[str, int] = {}
        self.members: dict[int, OccupantRecord] = {}

    def add(self, record: OccupantRecord) -> None:
        """
        Give an occupant the lowest free slot, with an empty view.
        """
        slot = 0
        while slot in self.members:
            slot += 1
        record.slot = slot
        record.own = None
        self.members[slot] = record

    def remove(self, record: OccupantRecord) -> None:
        """
        Take an occupant out (its view first).
        """
        if self.members.get(record.slot) is not record:
            return
        self.clear(record)
        del self.members[record.slot]

    def get(self, record: OccupantRecord, nick: str) -> Occupant | None:
        """
        @return: C{nick}'s entry as C{record} sees it, if it has one.
        """
        if record.own is not None and nick in record.own:
            return record.own[nick]
        if self.seen.get(nick, 0) & (1 << record.slot):
            return self.entries[nick]
        return None

    def has(self, record: OccupantRecord, nick: str) -> bool:
        """
        @return: whether C{nick} is in C{record}'s view.
        """
        return self.get(record, nick) is not None

    def put(self, record: OccupantRecord, occupant: Occupant) -> None:
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

    def pop(self, record: OccupantRecord, nick: str) -> Occupant | None:
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

    def clear(self, record: OccupantRecord) -> None:
        """
        Empty C{record}'s view.
        """
        bit = 1 << record.slot
        for nick in [nick for nick, seen in self.seen.items() if seen & bit]:
            self.pop(record, nick)
        record.own = None

    def view(self, record: OccupantRecord) -> dict[str, Occupant]:
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
IN_ROOM = frozenset(
    {OccupantState.CONFIGURING, OccupantState.JOINED, OccupantState.CHANGING_NICK}
)


def chain(deferred: defer.Deferred[Any]) -> defer.Deferred[Any]:
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
