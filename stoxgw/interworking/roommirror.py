# -*- test-case-name: tests.interworking.test_xmpptosip -*-
"""
What one SIP room shares among the legs of its XMPP users, as Gateway A
serves them (RFC 7702 section 5; docs/section5.md): L{SIPRoomMirror} holds
the focus's conference subscription and roster and de-duplicates what the
focus sends on every leg; L{_DialOut} is a focus's INVITE waiting for the
user's join.  The legs are
L{XMPPParticipant<stoxgw.interworking.xmppuser.XMPPParticipant>}, imported
here for type checking only;
L{XMPPToSIP<stoxgw.interworking.xmpptosip.XMPPToSIP>} drives both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dataclasses
import datetime
from collections import OrderedDict

from twisted.internet import defer
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw.chat.session import (
    ChatDecision,
    ChatOffer,
)
from stoxgw.formats.cpim import CPIMAddress
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
)
from stoxgw.interworking.errors import (
    MUCStatus,
    mucStatusForDisconnectionMethod,
)
from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    User,
)
from stoxgw.interworking.conference import (
    addressesOfUser,
    disconnectionOfUser,
    rosterOfConference,
    subjectOfConference,
)
from stoxgw.rooms.model import (
    Anonymity,
    Subject,
    RemovalReason,
    RoomError,
)
from stoxgw.rooms.nicks import InvalidNickname, comparisonKey
from stoxgw.sip.subscription import (
    ClientSubscription,
    ConferenceWatcher,
    SubscriptionReason,
)
from stoxgw.sip.uri import NameAddr, SIPURI


if TYPE_CHECKING:
    from stoxgw.interworking.xmppuser import XMPPParticipant
    from stoxgw.interworking.xmpptosip import XMPPToSIP

#: How many recent room messages are remembered to show each only once.
SEEN_MESSAGES = 512

#: SPEC E.5: the removal a disconnection-method's status code (307, 333)
#: shows in the room.
_REMOVAL_FOR_STATUS: dict[MUCStatus | None, RemovalReason] = {
    MUCStatus.KICKED: RemovalReason.KICKED,
    MUCStatus.TECHNICAL_ERROR: RemovalReason.ERROR,
}


def _key(nick: str) -> str | None:
    """
    The RFC 7700 comparison form of a nick, L{None} if it is not one.
    """
    try:
        return comparisonKey(nick)
    except InvalidNickname:
        return None


class _DialOut:
    """
    A focus's INVITE toward an XMPP user, waiting for the user's join.
    """

    def __init__(self, offer: ChatOffer, focus: SIPAddress) -> None:
        self.offer = offer
        self.focus = focus
        self.decision: Deferred[ChatDecision] = Deferred()
        self.timer: IDelayedCall | None = None

    @property
    def pending(self) -> bool:
        return not self.decision.called and not self.offer.invite.answered

    def finish(self, decision: ChatDecision) -> None:
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()
        if not self.decision.called:
            self.decision.callback(decision)


class SIPRoomMirror:
    """
    One SIP room as the gateway mirrors it to XMPP (RFC 7702 sections
    5.3-5.5): the XMPP users' legs into it (one chat session each), one
    conference subscription to the focus whose documents become the MUC
    roster and subject, and the de-duplication of what the focus sends on
    every leg.

    @ivar legs: The XMPP users' participants, oldest first.
    @ivar state: The focus's last full conference-info, or L{None}.
    @ivar entities: The nick shown for each conference-info user entity.
    @ivar addresses: The nick for every URI naming a user (entity,
        endpoints, associated-aors): how a CPIM From becomes a nick.
    """

    _log = Logger()

    def __init__(self, bridge: XMPPToSIP, roomJID: str, focus: SIPAddress) -> None:
        self.bridge = bridge
        self.roomJID = roomJID
        self.focus = focus
        self.legs: list[XMPPParticipant] = []
        self.state: ConferenceInfo | None = None
        self.entities: dict[str, str] = {}
        self.addresses: dict[str, str] = {}
        self.subject: str | None = None
        self.subscription: ClientSubscription | None = None
        self.subscriber: XMPPParticipant | None = None
        self._waiters: list[Deferred[None]] = []
        self._seen: OrderedDict[tuple[str, str, str], set[int]] = OrderedDict()

    # -- the conference subscription (R-015 to) --------------

    def rosterKnown(self, participant: XMPPParticipant) -> Deferred[None]:
        """
        Fires once the focus's roster is known (at most
        L{XMPPToSIP.subscribeWait} seconds), subscribing as C{participant}
        if nobody subscribes yet.
        """
        if self.state is not None:
            # A new leg: its nick is ours now, not a SIP participant's.
            self.apply(self.state)
            return succeed(None)
        if self.bridge.events is None:
            return succeed(None)
        if self.subscription is None:
            self._subscribe(participant)
        waiter: Deferred[None] = Deferred()
        self._waiters.append(waiter)
        waiter.addTimeout(self.bridge.subscribeWait, self.bridge.clock)

        def late(reason: Failure) -> None:
            reason.trap(defer.TimeoutError)  # type: ignore[no-untyped-call]
            self._log.warn(
                "No conference-info from the focus of {roomJID} in time;"
                " the roster stays empty until it comes",
                roomJID=self.roomJID,
            )

        return waiter.addErrback(late)

    def _subscribe(self, participant: XMPPParticipant) -> None:
        events = self.bridge.events
        assert events is not None
        watcher = ConferenceWatcher(onState=self._stateReceived, onEnded=self._ended)
        self.subscriber = participant
        try:
            self.subscription = events.subscribe(
                SIPURI.fromString(self.focus.uri()),
                "conference",
                self.bridge.subscriptionExpires,
                accept=(CONFERENCE_INFO_CONTENT_TYPE,),
                handler=watcher,
                fromAddress=NameAddr(SIPURI.fromString(participant.address.aor.uri())),
            )
        except ValueError as e:
            self._log.warn(
                "Cannot subscribe to the conference of {roomJID}: {error}",
                roomJID=self.roomJID,
                error=str(e),
            )
            self.subscription = None
            return
        self.subscription.established.addErrback(self._refused)

    def _refused(self, reason: Failure) -> None:
        self._log.info(
            "The focus of {roomJID} refused the conference subscription: {error}",
            roomJID=self.roomJID,
            error=reason.getErrorMessage(),
        )
        self.subscription = None
        self._release()

    def _ended(self, reason: SubscriptionReason) -> None:
        self._log.info(
            "Conference subscription to {roomJID} ended: {reason}",
            roomJID=self.roomJID,
            reason=reason.value,
        )
        self.subscription = None
        self._release()

    def _release(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def unsubscribe(self) -> None:
        """
        The room is empty: end the subscription.
        """
        subscription, self.subscription = self.subscription, None
        self.subscriber = None
        if subscription is not None:
            subscription.unsubscribe().addErrback(
                lambda reason: self._log.info(
                    "Unsubscribing from {roomJID}: {error}",
                    roomJID=self.roomJID,
                    error=reason.getErrorMessage(),
                )
            )

    def legLeft(self, participant: XMPPParticipant) -> None:
        """
        A leg is gone: if it held the subscription, the next leg takes it.
        """
        if participant in self.legs:
            self.legs.remove(participant)
        if self.subscriber is participant:
            self.unsubscribe()
            self.state = None
            joined = [leg for leg in self.legs if leg.joined]
            if joined:
                self._subscribe(joined[0])

    def _stateReceived(self, document: ConferenceInfo, outcome: object) -> None:
        previous, self.state = self.state, document
        try:
            self.apply(document, previous)
        except Exception:
            self._log.failure("Applying conference-info of {roomJID}", roomJID=self.roomJID)
        self._release()

    def _showRemovals(
        self,
        document: ConferenceInfo,
        previous: ConferenceInfo | None,
        kept: set[str],
    ) -> None:
        """
        SPEC E.5 (Gateway A): a SIP participant the focus removed, with
        disconnection-method C{booted} or C{failed} on its endpoints (in
        this state, or in the one before when this one deletes it), leaves
        the MUC room with 307 or 333 rather than as a plain leave.
        """
        rooms = self.bridge.rooms
        room = rooms.getRoom(self.roomJID)
        users = {user.entity: user for user in document.userList}
        before = {} if previous is None else {u.entity: u for u in previous.userList}
        for entity, nick in self.entities.items():
            if entity in kept or room is None or nick not in room:
                continue
            user = users.get(entity)
            method = None if user is None else disconnectionOfUser(user)
            if method is None and entity in before:
                method = disconnectionOfUser(before[entity])
            reason = _REMOVAL_FOR_STATUS.get(mucStatusForDisconnectionMethod(method))
            if reason is None:
                continue
            try:
                rooms.participantLeft(self.roomJID, nick, reason=reason)
            except (KeyError, RoomError) as e:
                self._log.info(
                    "Removal of {nick} from {roomJID} not shown: {error}",
                    nick=nick,
                    roomJID=self.roomJID,
                    error=str(e),
                )

    def _isLocal(self, user: User, nick: str) -> bool:
        """
        Whether a conference-info user is one of our XMPP users (by nick or
        by address).
        """
        key = _key(nick)
        for leg in self.legs:
            if key is not None and key == _key(leg.nick):
                return True
            for uri in addressesOfUser(user):
                try:
                    if parseSIPIdentity(uri).aor == leg.address.aor:
                        return True
                except AddressError:
                    continue
        return False

    def apply(
        self, document: ConferenceInfo, previous: ConferenceInfo | None = None
    ) -> None:
        """
        A new full state: nick changes as 303 pairs, removals by the focus
        (307/333), then the roster replaced (joins and leaves), then the
        subject (R-016 to R-019).

        @param previous: the state before, where a deleted user's
            disconnection-method may be (its children go with the deletion).
        """
        rooms = self.bridge.rooms
        room = rooms.getRoom(self.roomJID)
        if room is None:
            return
        roster = rosterOfConference(document, self._isLocal)
        self._showRemovals(document, previous, {entity for entity, _ in roster})
        for entity, participant in roster:
            old = self.entities.get(entity)
            # A case-only change (sipp -> SIPp) is a nick change too.
            if old is not None and old != participant.nick and old in room:
                try:
                    rooms.participantNickChanged(self.roomJID, old, participant.nick)
                except RoomError as e:
                    self._log.info(
                        "Nick change {old} -> {nick} in {roomJID} not shown: {error}",
                        old=old,
                        nick=participant.nick,
                        roomJID=self.roomJID,
                        error=str(e),
                    )
        if any(p.realAddress for _, p in roster) and (
            room.settings.anonymity is not Anonymity.NON_ANONYMOUS
        ):
            # the focus shows real addresses: a non-anonymous room.
            room.settings = dataclasses.replace(
                room.settings, anonymity=Anonymity.NON_ANONYMOUS
            )
        rooms.rosterReplaced(self.roomJID, [p for _, p in roster])
        self.entities = {entity: p.nick for entity, p in roster}
        nicks = {entity: p.nick for entity, p in roster}
        addresses: dict[str, str] = {}
        for user in document.userList:
            nick = nicks.get(user.entity)
            if nick is None:
                continue
            for uri in addressesOfUser(user):
                addresses[uri] = nick
                try:
                    addresses[parseSIPIdentity(uri).aor.uri()] = nick
                except AddressError:
                    continue
        self.addresses = addresses
        subject = subjectOfConference(document)
        if (subject or "") != (self.subject or ""):
            self.subject = subject
            rooms.subjectChanged(self.roomJID, Subject(subject or ""))

    # -- what the focus sends ------------------------------------------------

    def nickOf(self, sender: CPIMAddress | None) -> str | None:
        """
        The nick of a CPIM From (R-024): through the roster (a switch may
        forward the sender's AOR, RFC 7701 section 6.1), else its C{gr}
        (R-207), else its formal name, else its user part.
        """
        if sender is None:
            return None
        try:
            aor = parseSIPIdentity(sender.uri).aor
        except AddressError:
            aor = None
        for leg in self.legs:
            # One of our own XMPP users (a switch that forwards AORs):
            # its nick, so that the room knows it for its own.
            if aor is not None and aor == leg.address.aor:
                return leg.nick
        known = self.addresses.get(sender.uri)
        if known is not None:
            return known
        try:
            address = parseSIPIdentity(sender.uri)
        except AddressError:
            return sender.formalName or None
        known = self.addresses.get(address.aor.uri())
        if known is not None and not (address.aor == self.focus.aor and address.gr):
            return known
        return address.gr or sender.formalName or address.user

    def firstSight(
        self, leg: XMPPParticipant, nick: str, body: str, stamp: datetime.datetime | None
    ) -> bool:
        """
        Whether a room message from the focus on C{leg} is new: the focus
        sends each one on every leg; the first leg to bring it shows it,
        and a leg bringing the same again brings a new message.
        """
        key = (comparisonKey(nick), body, "" if stamp is None else stamp.isoformat())
        legs = self._seen.get(key)
        if legs is not None and id(leg) not in legs:
            legs.add(id(leg))
            return False
        self._seen[key] = {id(leg)}
        self._seen.move_to_end(key)
        while len(self._seen) > SEEN_MESSAGES:
            self._seen.popitem(last=False)
        return True


