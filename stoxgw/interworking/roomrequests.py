# -*- test-case-name: tests.interworking.test_conference,tests.interworking.test_siptoxmpp -*-
"""
The requests a SIP user in an XMPP room sends to the room besides its
INVITE (RFC 7702 sections 6.2 and 6.5): conference SUBSCRIBEs
(L{RoomConferencePackage}, R-213) and REFERs (a mediated invitation,
XEP-0045 7.8.2).  L{RoomRequests} is the half of
L{SIPToXMPP<stoxgw.interworking.siptoxmpp.SIPToXMPP>} that answers them:
it finds the participant a request comes from among the bridge's
participants and never joins or leaves a room itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber.jid import JID as XMPPJID
from twisted.words.protocols.jabber.jid import InvalidFormat

from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    parseSIPIdentity,
    roomJIDFromRequestURI,
    sipToJID,
)
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import IncomingRefer
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
)
from stoxgw.sip.uri import NameAddr
from stoxgw.sip.useragent import IncomingRequest
from stoxgw.interworking.sipuser import SIPParticipant, bareJID, fullJID
from stoxgw.xmpp.occupant import OccupantError, OccupantService

if TYPE_CHECKING:
    from stoxgw.interworking.siptoxmpp import SIPToXMPP

__all__ = ["RoomConferencePackage", "RoomRequests"]

#: How long a conference SUBSCRIBE waits for a join still under way.
SUBSCRIBE_WAIT = 5.0


class RoomRequests:
    """
    The conference SUBSCRIBEs and REFERs of
    L{SIPToXMPP<stoxgw.interworking.siptoxmpp.SIPToXMPP>}: its
    L{IReferHandler<stoxgw.sip.refer.IReferHandler>} and the lookups of
    its L{RoomConferencePackage}.

    @ivar clock: Time source (the bound on a SUBSCRIBE waiting for a join).
    @ivar mucDomains: The MUC domains served (empty: any).
    @ivar occupants: The occupant service the invitations go through.
    @ivar participants: The SIP users in rooms, by (room, real JID).
    """

    _log: Logger
    clock: IReactorTime
    mucDomains: tuple[str, ...]
    occupants: OccupantService
    participants: dict[tuple[str, str], SIPParticipant]

    # -- the participant of a SUBSCRIBE or REFER ---------------------------

    def _requester(self, request: SIPRequest) -> tuple[SIPAddress, list[SIPParticipant]]:
        """
        The participants a SUBSCRIBE or REFER may come from: inside an
        INVITE dialog, the one whose chat it is (its Request-URI is our
        Contact, not the room); else those of the room of its Request-URI
        and the user of its From.

        @raise AddressError: With the status to answer (400 for a bad
            From; for a Request-URI naming no room of ours, that of
            L{roomJIDFromRequestURI}: 403, 484).
        """
        fromHeader = request.header("From")
        if fromHeader is None:
            raise AddressError("no From", 400, "bad-request")
        try:
            user = parseSIPIdentity(str(NameAddr.fromString(fromHeader).uri)).aor
        except (ValueError, AddressError) as e:
            raise AddressError(f"bad From: {e}", 400, "bad-request") from None
        callID = request.header("Call-ID")
        for participant in self.participants.values():
            session = participant.session
            if (
                session is not None
                and session.callID == callID
                and participant.userAddress.aor == user
            ):
                return user, [participant]
        room = roomJIDFromRequestURI(str(request.uri), self.mucDomains)
        roomText = bareJID(XMPPJID(str(room)))
        return user, [
            participant
            for participant in self.participants.values()
            if participant.room == roomText and participant.userAddress.aor == user
        ]

    def conferenceStatus(self, request: SIPRequest) -> int | None | Deferred[int | None]:
        """
        L{None} if a conference SUBSCRIBE may go ahead, else its failure
        status (403, or 400/484 see L{_requester}); a L{Deferred} of that
        when a join is still under way.
        """
        try:
            user, candidates = self._requester(request)
        except AddressError as e:
            return self._subscribeRefused(request, e.sipStatus, str(e))
        ready = [p for p in candidates if p.joined and p.inRoom]
        if ready:
            return None
        joining = [p for p in candidates if not p.joined and p.inRoom]
        if not joining:
            return self._subscribeRefused(
                request, 403, f"{user.uri()} is not an occupant of that room"
            )
        waiter: Deferred[SIPParticipant | None] = Deferred()
        joining[0].waiters.append(waiter)
        waiter.addTimeout(SUBSCRIBE_WAIT, self.clock)

        def settled(participant: SIPParticipant | None) -> int | None:
            if participant is None:
                return self._subscribeRefused(request, 403, "the join failed")
            return None

        def timedOut(reason: Failure) -> int | None:
            return self._subscribeRefused(request, 403, "the join is still under way")

        return waiter.addCallbacks(settled, timedOut)

    def _subscribeRefused(self, request: SIPRequest, status: int, why: str) -> int:
        self._log.info(
            "Conference SUBSCRIBE refused with {status} ({callID}): {error}",
            status=status,
            callID=request.header("Call-ID"),
            error=why,
        )
        return status

    def conferenceFor(self, request: SIPRequest) -> ConferenceNotifier | None:
        """
        The conference notifier for a SUBSCRIBE (L{ConferencePackage}'s
        lookup), or L{None}.
        """
        try:
            _, candidates = self._requester(request)
        except AddressError:
            return None
        for participant in candidates:
            if participant.joined and participant.inRoom:
                return participant.notifier()
        return None

    # -- IReferHandler (RFC 7702 section 6.5) ---------------------------------

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        A REFER to the room from a SIP user in it: a mediated invitation
        to the Refer-To (RFC 7247 mapping), answered 200 with a C{100
        Trying} NOTIFY that ends the implicit subscription (RFC 7702
        section 6.5); 403 from someone not in the room or for a method
        other than INVITE (RFC 4579 removal is out of scope, RFC 7702
        section 1), 416 for a Refer-To that maps to no JID, 480 while the
        XMPP link is down.
        """
        request = refer.request
        try:
            _, candidates = self._requester(request)
        except AddressError as e:
            refer.reject(e.sipStatus, e.reason)
            return
        participants = [p for p in candidates if p.joined and p.inRoom]
        if not participants:
            refer.reject(403, "Forbidden (not in the room)")
            return
        participant = participants[0]
        if refer.referTo.method != "INVITE":
            refer.reject(403, f"Forbidden ({refer.referTo.method} not supported)")
            return
        invitee = self._inviteeJID(str(refer.referTo.uri))
        if invitee is None:
            refer.reject(416, "Unsupported URI Scheme")
            return
        if participant.linkDown:
            refer.reject(480, "Temporarily Unavailable (XMPP link down)")
            return
        try:
            self.occupants.invite(participant.roomJID, participant.realJID, invitee)
        except OccupantError as e:
            refer.reject(480, f"Temporarily Unavailable ({e})")
            return
        self._log.info(
            "{nick} invites {invitee} to {roomJID}",
            nick=participant.nick,
            invitee=fullJID(invitee),
            roomJID=participant.room,
        )
        refer.accept(200, terminate=True, isfocus=True)

    @staticmethod
    def _inviteeJID(uri: str) -> XMPPJID | None:
        """
        The JID of a Refer-To URI: C{sip:}/C{sips:} by RFC 7247 section
        6.4 (its C{gr} ignored: an invitation goes to the bare JID), an
        C{xmpp:} URI as it is (RFC 5122), else L{None}.
        """
        scheme = uri.split(":", 1)[0].lower()
        try:
            if scheme in ("sip", "sips"):
                address = parseSIPIdentity(uri)
                return XMPPJID(str(sipToJID(address.aor)))
            if scheme == "xmpp":
                text = uri[5:].lstrip("/").split("?", 1)[0]
                return XMPPJID(text).userhostJID()  # type: ignore[no-untyped-call,no-any-return]
        except (AddressError, InvalidFormat, ValueError):
            return None
        return None


class RoomConferencePackage(ConferencePackage):
    """
    The C{conference} event package of Gateway B (RFC 7702 section 6.2,
    R-213): a SIP user in an XMPP room subscribes, in or out of its INVITE
    dialog, to the room's SIP URI and gets the roster as its occupant sees
    it; others get 403 (not an occupant, or a domain not served) or 484
    (no room named).
    """

    def __init__(self, bridge: SIPToXMPP, defaultExpires: int = 3600) -> None:
        super().__init__(bridge.conferenceFor, defaultExpires, isfocus=True)
        self.bridge = bridge

    def authorize(self, request: IncomingRequest) -> int | None | Deferred[int | None]:
        """
        L{None} for a SUBSCRIBE of an occupant's SIP user, else 403 or 484;
        a L{Deferred} while its join is under way.
        """
        return self.bridge.conferenceStatus(request.request)
