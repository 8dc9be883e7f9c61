# -*- test-case-name: tests.interworking.test_siptoxmpp -*-
"""
Direction B of RFC 7702 (section 6): a SIP/MSRP user enters an XMPP MUC
room through the gateway ("Gateway B", SPEC C.2; docs/section6.md tells
the whole behaviour and its choices).

L{SIPToXMPP} is the gateway's L{IChatOfferHandler} (for its
L{ChatAcceptor<stoxgw.chat.session.ChatAcceptor>}), the L{IOccupantHandler}
of its L{OccupantService} and the L{IReferHandler} of REFERs to rooms.
Toward the SIP user it is the conference focus and MSRP switch of RFC
7701; toward XMPP each SIP user is an ordinary MUC occupant whose real JID
lives on the gateway's user domain.  One L{SIPParticipant} per chat
session carries the user's state.  Conference SUBSCRIBEs and REFERs are
answered by its half in L{stoxgw.interworking.roomrequests}.

  - INVITE to C{sip:room@<muc domain>}: the offer is checked first
    (C{message/cpim} accepted, else 488: XMPP is not touched); the user's
    identity is the digest user it authenticated as, else the
    P-Asserted-Identity or From a trusted peer vouches for; the MUC join
    comes before the answer (R-209) with a temporary nick (From display
    name, else user part), and a nick the room already has is replaced by
    the first free variant C{nick_2} ... C{nick_9} (L{nickVariant}); a MUC
    entry error becomes L{sipStatusForMUCEntryError}; on success the focus
    answer of RFC 7701 section 5.2.
  - SEND (CPIM To the room) -> groupchat; the MSRP 200 waits for the MUC
    reflection (R-211), bounded by the occupant service's reflection
    timeout, after which the configured status is sent (200 by default:
    then a MUC error that arrives later becomes a failure REPORT, RFC 4975
    section 7.1.4); CPIM To C{;gr=nick} -> private message; isComposing
    -> XEP-0085 chat states (coalesced to one a second); local checks
    answer 415/403/404/400 (RFC 7701 section 6, SPEC E.4).
  - From the room: groupchat (CPIM To the room URI, From the occupant's
    in-room identity, DateTime = the delay stamp for history, R-216,
    R-207), private messages (CPIM To the user; when the UA did not
    declare C{private-messages}, not delivered, and the XMPP sender gets a
    private notice saying so, R-221), chat states as isComposing where the
    UA accepts it.
  - NICKNAME -> nick change (R-210): 200 once the MUC confirms, 425 on
    conflict, others by SPEC E.4.
  - REFER to the room (in its INVITE dialog or outside it): 200, a
    C{100 Trying} NOTIFY that ends the implicit subscription, and a
    mediated invitation (XEP-0045 7.8.2) to the Refer-To mapped by RFC
    7247 (RFC 7702 section 6.5).  A MUC invitation to a SIP user's JID
    goes to the L{IInvitationSender} given (a REFER or MESSAGE to the
    user).
  - SUBSCRIBE to C{Event: conference} (L{RoomConferencePackage}, RFC
    7702 section 6.2): the roster as the user's occupant sees it
    (L{stoxgw.interworking.conference}), full then partial; a SUBSCRIBE
    that overtakes the INVITE's join waits for it (bounded).
  - BYE -> the unavailable presence, then the 200 (RFC 7702 6.6); removal
    from the room (kick, ban, shutdown, destruction) -> BYE with a
    C{Reason} (R-219).
  - Loss of the XMPP link: the SIP sessions stay; SENDs and NICKNAMEs are
    answered 408 until it is back; then every occupant rejoins with its
    nick (the room's history since the loss is asked for) and the
    conference subscribers get one partial NOTIFY of what changed; a link
    that stays away longer than the grace period, or a failed rejoin, ends
    the chat with BYE (503, or the entry error's status).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from typing import Any
from weakref import WeakValueDictionary

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber import error
from twisted.words.protocols.jabber.jid import JID as XMPPJID
from zope.interface import Interface, implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatDecision,
    ChatOffer,
    IChatOfferHandler,
    RejectChat,
)
from stoxgw.formats.chatroom import CHATROOM_TOKENS, takesPrivateMessages
from stoxgw.formats.conferenceinfo import DisconnectionMethod
from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
    realJIDForSIPUser,
    requestURIFromRoomJID,
    roomJIDFromRequestURI,
)
from stoxgw.interworking.errors import (
    GatewayBEnd,
    disconnectionMethodForMUCRemoval,
    sipReasonCauseForGatewayBEnd,
    sipReasonCauseForMUCRemoval,
    sipStatusForMUCEntryError,
)
from stoxgw.interworking.ratelimit import RateLimiter
from stoxgw.interworking.translate import (
    ACCEPT_TYPES,
    ACCEPT_WRAPPED_TYPES,
    RoomCopies,
)
from stoxgw.rooms.model import Subject
from stoxgw.sip.msrpmedia import acceptTypesIntersection
from stoxgw.sip.refer import IReferHandler
from stoxgw.sip.uri import NameAddr, SIPURI, contactIsFocus
from stoxgw.xmpp.occupant import (
    Decline,
    GroupchatMessage,
    Invitation,
    IOccupantHandler,
    JoinResult,
    LeftReason,
    LinkLost,
    Occupant,
    OccupantError,
    OccupantKey,
    OccupantService,
    PrivateMessage,
    Removal,
)
from stoxgw.xmpp.stanzas import ChatStateNotification

from stoxgw.interworking.sipuser import (  # noqa: E402
    CHAT_STATE_INTERVAL,
    MAX_PENDING_PRIVATE,
    SIPParticipant,
    bareJID,
    conditionOf,
    fullJID,
    logFailure,
    occupantKey,
)
from stoxgw.interworking.roomrequests import (  # noqa: E402
    RoomConferencePackage,
    RoomRequests,
)

__all__ = [
    "CHAT_STATE_INTERVAL",
    "MAX_PENDING_PRIVATE",
    "ISIPToXMPP",
    "IInvitationSender",
    "RoomConferencePackage",
    "SIPParticipant",
    "SIPToXMPP",
    "nickVariant",
]

#: What the sender of a private message to a SIP user that takes none
#: gets back (R-221).
PRIVATE_MESSAGES_REFUSED = (
    "[gateway] Not delivered: this SIP user's client does not take private"
    " messages (RFC 7701 section 6.2)."
)
#: The temporary nick and this many variants are tried (L{nickVariant}).
MAX_NICK_VARIANTS = 9
#: Default seconds the SIP sessions wait for a lost XMPP link.
LINK_LOSS_GRACE = 60.0
#: Default INVITEs a minute per SIP identity, and per room.
INVITES_PER_USER = 20
INVITES_PER_ROOM = 120


class ISIPToXMPP(IChatOfferHandler, IOccupantHandler, IReferHandler):
    """
    The Direction B interface (RFC 7702 section 6): decides about INVITEs
    to MUC rooms, takes REFERs to them, and hears what happens to the
    resulting occupants.
    """


class IInvitationSender(Interface):
    """
    Tells a SIP user of a MUC invitation (R-222).
    """

    def invitationReceived(realJID: XMPPJID, invitation: Invitation) -> Deferred[Any]:
        """
        An invitation to C{invitation.roomJID} arrived for the SIP user
        whose real JID is C{realJID}.
        """


def nickVariant(nick: str, attempt: int) -> str:
    """
    The nick tried at C{attempt} (1-based) when joining with a temporary
    nick: the nick itself, then C{nick_2}, C{nick_3}... (deterministic, so
    the user can predict it and fix it with NICKNAME, RFC 7702 section 7).
    """
    return nick if attempt <= 1 else f"{nick}_{attempt}"


def _randomResource() -> str:
    return uuid.uuid4().hex[:16]


@implementer(ISIPToXMPP)
class SIPToXMPP(RoomRequests):
    """
    Gateway B (RFC 7702 section 6): INVITE admission, room joining and
    what the occupants hear; the conference SUBSCRIBEs and REFERs are
    its L{RoomRequests} half.

    @ivar clock: Time source (CPIM DateTime of live messages, timers).
    @ivar userDomain: The gateway's XMPP domain for SIP users' real JIDs.
    @ivar mucDomains: The MUC domains served (empty: any).
    @ivar occupants: The occupant service, whose handler this object is.
    @ivar participants: The SIP users in rooms, by (room, real JID).
    @ivar reflectionTimeoutStatus: The MSRP status of a groupchat SEND whose
        reflection did not come in time: 200 (the default; a later MUC
        error becomes a failure REPORT) or 408.
    @ivar linkLossGrace: Seconds the SIP sessions wait for a lost link.
    @ivar authRealm: The digest realm: a user authenticated as C{alice}
        is C{sip:alice@<realm>} (C{alice@host} names the host itself).
    @ivar invitations: Tells SIP users of MUC invitations, or L{None}.
    @ivar roomCopies: The L{RoomCopies} of each room URI (address of
        record), while a participant of that room holds it.
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        userDomain: str,
        mucDomains: Collection[str] = (),
        resourceFactory: Callable[[], str] = _randomResource,
        *,
        reflectionTimeoutStatus: int = 200,
        linkLossGrace: float = LINK_LOSS_GRACE,
        authRealm: str | None = None,
        invitations: IInvitationSender | None = None,
        invitesPerUser: int = INVITES_PER_USER,
        invitesPerRoom: int = INVITES_PER_ROOM,
        occupants: Callable[[IOccupantHandler], OccupantService] | None = None,
    ) -> None:
        """
        @param occupants: makes the occupant service for a handler (this
            object): the two need each other, so this object builds it.  By
            default an L{OccupantService} on C{clock} and C{userDomain}
            with its default settings.
        """
        if reflectionTimeoutStatus not in (200, 408):
            raise ValueError("reflectionTimeoutStatus is 200 or 408")
        self.clock = clock
        self.userDomain = userDomain
        self.mucDomains = tuple(mucDomains)
        self.resourceFactory = resourceFactory
        self.reflectionTimeoutStatus = reflectionTimeoutStatus
        self.linkLossGrace = linkLossGrace
        self.authRealm = authRealm
        self.invitations = invitations
        self.userInvites = RateLimiter(clock, invitesPerUser)
        self.roomInvites = RateLimiter(clock, invitesPerRoom)
        self.ownRoomDomains: tuple[str, ...] = ()
        #: Takes INVITEs from conference focuses (their Contact says
        #: C{isfocus}): a focus dialling out to an XMPP user (RFC 4579),
        #: RFC 7702 section 5's side.
        self.focusInvites: IChatOfferHandler | None = None
        self.participants: dict[tuple[str, str], SIPParticipant] = {}
        self.roomCopies: WeakValueDictionary[SIPAddress, RoomCopies] = (
            WeakValueDictionary()
        )
        if occupants is None:
            self.occupants = OccupantService(self, clock, userDomain)
        else:
            self.occupants = occupants(self)

    def _forget(self, participant: SIPParticipant) -> None:
        key = occupantKey(participant.roomJID, participant.realJID)
        if self.participants.get(key) is participant:
            del self.participants[key]

    def _participant(self, roomJID: XMPPJID, realJID: XMPPJID) -> SIPParticipant | None:
        return self.participants.get(occupantKey(roomJID, realJID))

    def copiesOf(self, room: SIPAddress) -> RoomCopies:
        """
        The CPIM bodies of room messages shared by the SIP occupants of the
        room whose address of record is C{room}: one L{RoomCopies} per
        room, alive while a participant holds it (the MUC sends a room
        message once per occupant, and every SIP copy is the same body).
        """
        copies = self.roomCopies.get(room)
        if copies is None:
            copies = self.roomCopies[room] = RoomCopies()
        return copies

    # -- IChatOfferHandler ---------------------------------------------------

    def chatOffered(self, offer: ChatOffer) -> ChatDecision | Deferred[ChatDecision]:
        """
        An INVITE to a room: check the offer, map the addresses, join the
        MUC, then answer (R-209).
        """
        request = offer.invite.request
        callID = request.header("Call-ID")
        if self.focusInvites is not None and contactIsFocus(request.header("Contact")):
            # A SIP user agent joining a room is never a focus itself.
            return self.focusInvites.chatOffered(offer)
        if not acceptTypesIntersection(ACCEPT_TYPES, offer.media.acceptTypes):
            # RFC 7701 section 5.2: a focus needs message/cpim; nothing
            # reaches XMPP.
            self._log.info(
                "INVITE refused ({callID}): the offer does not accept message/cpim",
                callID=callID,
            )
            return RejectChat(488, "Not Acceptable Here (message/cpim required)")
        try:
            roomJID, realJID, roomAddress, userAddress, nick = self._addresses(offer)
        except AddressError as e:
            self._log.info(
                "INVITE refused ({callID}): {error}", callID=callID, error=str(e)
            )
            return RejectChat(e.sipStatus, e.reason)
        if str(roomJID.host).lower() in {d.lower() for d in self.ownRoomDomains}:
            # A room of our own room domain (RFC 7702 section 5) is a SIP
            # room: joining it as an XMPP room would come back here
            # (RFC 5393 loop protection).
            self._log.warn(
                "INVITE refused ({callID}): {roomJID} is our own room domain (loop)",
                callID=callID,
                roomJID=bareJID(roomJID),
            )
            return RejectChat(482, "Loop Detected")
        for limiter, what, name in (
            (self.userInvites, "user", userAddress.aor.uri()),
            (self.roomInvites, "room", bareJID(roomJID)),
        ):
            if not limiter.admit(name):
                # Issue 11 item 6: every INVITE makes a visible join, so
                # a flood would flood the room.  503 with Retry-After is
                # SIP's "come back later" (RFC 3261 section 21.5.4).
                self._log.warn(
                    "INVITE refused ({callID}): too many for {what} {name}",
                    callID=callID,
                    what=what,
                    name=name,
                )
                return RejectChat(
                    503,
                    "Service Unavailable (too many joins)",
                    headers=(("Retry-After", str(limiter.retryAfter(name))),),
                )
        privateMessages = takesPrivateMessages(offer.media.chatroom)
        key = occupantKey(roomJID, realJID)
        if key in self.participants:
            return RejectChat(486, "Already in the room")
        participant = SIPParticipant(
            self, roomJID, realJID, roomAddress, userAddress, nick, privateMessages
        )
        self.participants[key] = participant
        self._log.info(
            "SIP user {user} enters {roomJID} as {nick} ({callID})",
            user=userAddress.uri(),
            roomJID=bareJID(roomJID),
            nick=nick,
            callID=callID,
        )
        d = self._join(participant, offer, nick, 1)
        return d.addCallbacks(
            self._joined,
            self._joinFailed,
            callbackArgs=(offer, participant),
            errbackArgs=(offer, participant),
        )

    def _join(
        self, participant: SIPParticipant, offer: ChatOffer, base: str, attempt: int
    ) -> Deferred[JoinResult]:
        """
        Join with L{nickVariant}C{(base, attempt)}; on a nick conflict try
        the next variant (RFC 7702 section 7: the temporary nick is ours to
        choose).
        """
        participant.nick = nickVariant(base, attempt)
        d = self.occupants.join(participant.roomJID, participant.nick, participant.realJID)

        def conflict(reason: Failure) -> Any:
            if (
                conditionOf(reason.value) != "conflict"
                or attempt >= MAX_NICK_VARIANTS
                or offer.invite.answered
            ):
                return reason
            self._log.info(
                "Nick {nick} taken in {roomJID}; trying {next}",
                nick=participant.nick,
                roomJID=participant.room,
                next=nickVariant(base, attempt + 1),
            )
            return self._join(participant, offer, base, attempt + 1)

        result: Deferred[JoinResult] = d.addErrback(conflict)
        return result

    def _identity(self, offer: ChatOffer, fromAddr: NameAddr) -> SIPAddress:
        """
        Who the SIP user is: the digest user it authenticated as, else
        (a trusted peer's request) the P-Asserted-Identity (RFC 3325), else
        the From.

        @raise AddressError: With the SIP status.
        """
        request = offer.invite.request
        authenticated = offer.invite.transaction.authenticatedUser
        if authenticated is not None:
            text = authenticated if "@" in authenticated else f"{authenticated}@{self.authRealm}"
            identity = parseSIPIdentity("sip:" + text).aor
        else:
            asserted = request.header("P-Asserted-Identity")
            source = fromAddr
            if asserted:
                try:
                    source = NameAddr.fromString(asserted.split(",")[0].strip())
                except ValueError as e:
                    raise AddressError(
                        f"bad P-Asserted-Identity: {e}", 400, "bad-request"
                    ) from None
            identity = parseSIPIdentity(str(source.uri)).aor
        if identity.user is None:
            raise AddressError("the identity has no user part", 400, "bad-request")
        return identity

    def _addresses(
        self, offer: ChatOffer
    ) -> tuple[XMPPJID, XMPPJID, SIPAddress, SIPAddress, str]:
        """
        Room JID, real JID, room URI, user AOR and temporary nick of an
        INVITE.

        @raise AddressError: With the SIP status for the INVITE.
        """
        request = offer.invite.request
        room = roomJIDFromRequestURI(str(request.uri), self.mucDomains)
        fromHeader = request.header("From")
        if fromHeader is None:
            raise AddressError("no From", 400, "bad-request")
        try:
            fromAddr = NameAddr.fromString(fromHeader)
        except ValueError as e:
            raise AddressError(f"bad From: {e}", 400, "bad-request") from None
        user = self._identity(offer, fromAddr)
        resource = self._contactGR(request.header("Contact"))
        real = realJIDForSIPUser(
            user, self.userDomain, resource or self.resourceFactory()
        )
        assert user.user is not None
        nick = (fromAddr.displayName or "").strip() or user.user
        roomJID = XMPPJID(str(room))
        return (
            roomJID,
            XMPPJID(str(real)),
            requestURIFromRoomJID(room),
            user,
            nick,
        )

    @staticmethod
    def _contactGR(contact: str | None) -> str | None:
        """
        The AOR-bound GRUU C{gr} of the Contact (the resource, SPEC C.2.1).
        """
        if not contact:
            return None
        try:
            address = NameAddr.fromString(contact)
        except ValueError:
            return None
        uri = address.uri
        if not isinstance(uri, SIPURI):
            return None
        for name, value in uri.parameters:
            if name.lower() == "gr" and value:
                return value
        return None

    def _joined(
        self, result: JoinResult, offer: ChatOffer, participant: SIPParticipant
    ) -> ChatDecision:
        participant.nick = result.nick
        participant.joined = True
        participant.role = result.self.role
        if result.self.jid is not None:
            participant.realAddress = fullJID(result.self.jid)
        if offer.invite.answered:
            # CANCELled while joining: out again.
            self._forget(participant)
            participant.inRoom = False
            participant.joinSettled()
            self.occupants.leave(participant.roomJID, participant.realJID).addErrback(
                logFailure(self._log, "Leaving {roomJID}", roomJID=participant.room)
            )
            return RejectChat(487)
        participant.joinSettled()
        return AcceptChat(
            participant,
            acceptTypes=ACCEPT_TYPES,
            acceptWrappedTypes=ACCEPT_WRAPPED_TYPES,
            requiredTypes=ACCEPT_TYPES,
            chatroom=CHATROOM_TOKENS,
            isfocus=True,
        )

    def _joinFailed(
        self, reason: Failure, offer: ChatOffer, participant: SIPParticipant
    ) -> ChatDecision:
        self._forget(participant)
        participant.inRoom = False
        participant.joinSettled()
        condition = conditionOf(reason.value)
        if condition is None:
            self._log.failure("Joining {roomJID}", reason, roomJID=participant.room)
            return RejectChat(500)
        status = sipStatusForMUCEntryError(condition)
        self._log.info(
            "Room {roomJID} refused {nick}: {error} -> {status}",
            roomJID=participant.room,
            nick=participant.nick,
            error=condition,
            status=status,
        )
        return RejectChat(status)

    # -- IOccupantHandler ----------------------------------------------------

    def occupantAvailable(
        self, roomJID: XMPPJID, realJID: XMPPJID, occupant: Occupant, new: bool
    ) -> None:
        """
        An occupant entered or changed (role...), our own included: a
        partial NOTIFY if the conference-info changed (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if occupant.isSelf:
            participant.role = occupant.role
            if occupant.jid is not None:
                participant.realAddress = fullJID(occupant.jid)
        participant.rosterChanged()

    def occupantLeft(
        self, roomJID: XMPPJID, realJID: XMPPJID, occupant: Occupant, removal: Removal
    ) -> None:
        """
        Another occupant left: a partial NOTIFY deleting its user (R-213);
        one that was removed is first shown disconnected, C{booted} or
        C{failed} (SPEC E.5).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        participant.forgetOccupant(occupant.nick)
        method = disconnectionMethodForMUCRemoval(removal.statusCodes)
        if method is DisconnectionMethod.DEPARTED:
            participant.rosterChanged()
        else:
            participant.occupantRemoved(occupant, method)

    def occupantNickChanged(
        self, roomJID: XMPPJID, realJID: XMPPJID, oldNick: str, occupant: Occupant
    ) -> None:
        """
        Another occupant changed nick: a partial NOTIFY deleting the old
        user and adding the new one (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None:
            participant.forgetOccupant(oldNick)
            participant.rosterChanged()

    def nickChanged(
        self, roomJID: XMPPJID, realJID: XMPPJID, oldNick: str, newNick: str
    ) -> None:
        """
        Our occupant's nick changed (asked for, or by the service): also a
        deleted and a new user in the conference-info (R-213).
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None and participant.nick != newNick:
            participant.nick = newNick
            participant.rosterChanged()

    def left(self, roomJID: XMPPJID, realJID: XMPPJID, removal: Removal) -> None:
        """
        Our occupant is out of the room: unless we left, end the chat with a
        BYE whose Reason says why (R-219, SPEC E.5).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None or not participant.inRoom:
            return
        self._forget(participant)
        cause = sipReasonCauseForMUCRemoval(removal.statusCodes)
        if cause is None and removal.reason is LeftReason.DESTROYED:
            cause = sipReasonCauseForGatewayBEnd(GatewayBEnd.ROOM_DESTROYED)
        text = f"Removed from the room: {removal.reason.value}"
        if removal.text:
            text += f" ({removal.text})"
        self._log.info(
            "{nick} is out of {roomJID}: {error}",
            nick=participant.nick,
            roomJID=bareJID(roomJID),
            error=removal.reason.value,
        )
        participant.end(cause, text)

    def subjectReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, subject: Subject
    ) -> None:
        """
        The room subject: into C{<conference-description><subject>} (a
        partial NOTIFY when it changes, R-217).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        participant.subject = subject.text or None
        participant.rosterChanged()

    def groupchatReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, message: GroupchatMessage
    ) -> None:
        """
        A groupchat message: to the SIP user, CPIM To the room, unless it is
        our own reflection (never echoed, RFC 7701 section 6.1).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if message.fromSelf or message.reflectionOf is not None:
            return
        participant.deliver(message.nick, message.body, message.stamp)

    def privateMessageReceived(
        self, roomJID: XMPPJID, realJID: XMPPJID, message: PrivateMessage
    ) -> None:
        """
        A private message: to the SIP user (CPIM To the user) if it
        declared C{private-messages}, else a private notice back to its
        sender saying it was not delivered (RFC 7701 section 6.2, R-221).
        """
        participant = self._participant(roomJID, realJID)
        if participant is None:
            return
        if not participant.privateMessages:
            # RFC 7701 section 6.2: not delivered.  Its sender is told with
            # a private notice, not an error stanza: Prosody and ejabberd
            # remove an occupant that sends an error through the room
            # (seen with both), so an error would cost the SIP user its
            # place in the room.
            self._log.info(
                "Private message from {nick} in {roomJID} not delivered: the SIP user takes none",
                nick=message.nick,
                roomJID=bareJID(roomJID),
            )
            try:
                self.occupants.sendPrivate(
                    roomJID, realJID, message.nick, PRIVATE_MESSAGES_REFUSED
                )
            except OccupantError as e:
                self._log.warn(
                    "Cannot tell {nick} in {roomJID} its message was not delivered: {error}",
                    nick=message.nick,
                    roomJID=bareJID(roomJID),
                    error=str(e),
                )
            return
        participant.deliver(message.nick, message.body, message.stamp, private=True)

    def chatStateReceived(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        nick: str,
        state: ChatStateNotification,
        private: bool,
    ) -> None:
        """
        An occupant's chat state: isComposing to the SIP user (SPEC E.6,
        R-225), if it takes private messages for a private one.
        """
        participant = self._participant(roomJID, realJID)
        if participant is None or (private and not participant.privateMessages):
            return
        participant.deliverChatState(nick, state, private)

    def messageFailed(
        self,
        roomJID: XMPPJID,
        realJID: XMPPJID,
        stanzaID: str | None,
        reason: error.StanzaError,
    ) -> None:
        """
        A late MUC error: a failure REPORT for the message it answers.
        """
        participant = self._participant(roomJID, realJID)
        if participant is not None and participant.messageFailed(stanzaID, reason):
            return
        self._log.info(
            "Unmatched message error in {roomJID}: {error}",
            roomJID=bareJID(roomJID),
            error=str(reason.condition),
        )

    def invitationReceived(self, realJID: XMPPJID, invitation: Invitation) -> None:
        """
        A MUC invitation (mediated or direct) to a SIP user: to the
        invitation sender (R-222).
        """
        if self.invitations is None:
            self._log.info(
                "Invitation to {roomJID} for {realJID} not forwarded: no sender",
                roomJID=bareJID(invitation.roomJID),
                realJID=fullJID(realJID),
            )
            return
        self.invitations.invitationReceived(realJID, invitation).addErrback(
            lambda reason: self._log.failure(
                "Forwarding an invitation to {realJID}", reason, realJID=fullJID(realJID)
            )
        )

    def declineReceived(self, realJID: XMPPJID, decline: Decline) -> None:
        """
        An invitee declined the SIP user's invitation: no SIP request means
        this, so a text notice from the room (SPEC C.2.5).
        """
        for participant in self.participants.values():
            if participant.room == bareJID(decline.roomJID) and participant.real == fullJID(
                realJID
            ):
                who = fullJID(decline.decliner) if decline.decliner is not None else "someone"
                text = f"{who} declined your invitation"
                if decline.reason:
                    text += f": {decline.reason}"
                participant.deliver(None, text, None, private=True)
                return
        self._log.info(
            "Decline from {roomJID} for {realJID} with no chat",
            roomJID=bareJID(decline.roomJID),
            realJID=fullJID(realJID),
        )

    def linkLost(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The XMPP link is gone: keep the SIP sessions, waiting for the link
        (L{linkLossGrace}); their SENDs get 408 meanwhile.
        """
        for roomJID, realJID in occupants:
            participant = self._participant(roomJID, realJID)
            if participant is not None and participant.inRoom:
                participant.linkLost(self.linkLossGrace)

    def linkRestored(self, domain: str, occupants: Sequence[OccupantKey]) -> None:
        """
        The link is back: every occupant rejoins with its nick; one that
        cannot ends its chat with BYE.
        """
        waiting = [
            p
            for p in (self._participant(room, real) for room, real in occupants)
            if p is not None and p.inRoom
        ]
        if not waiting:
            return
        self.occupants.rejoinAll().addCallback(self._rejoined).addErrback(
            lambda reason: self._log.failure("Rejoining after a link loss", reason)
        )

    def _rejoined(self, results: list[tuple[OccupantKey, JoinResult | Failure]]) -> None:
        for (roomJID, realJID), result in results:
            participant = self._participant(roomJID, realJID)
            if participant is None or not participant.inRoom:
                continue
            if isinstance(result, JoinResult):
                participant.rejoined(result)
                continue
            condition = conditionOf(result.value)
            if isinstance(result.value, LinkLost):
                # Lost again while rejoining: the grace timer still runs.
                continue
            cause = (
                sipStatusForMUCEntryError(condition)
                if condition is not None
                else sipReasonCauseForGatewayBEnd(GatewayBEnd.LINK_LOST)
            )
            self._log.warn(
                "{nick} could not rejoin {roomJID}: {error}",
                nick=participant.nick,
                roomJID=participant.room,
                error=result.getErrorMessage(),
            )
            self._forget(participant)
            participant.end(cause, "Could not rejoin the room after a link loss")
