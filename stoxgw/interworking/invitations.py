# -*- test-case-name: tests.interworking.test_invitations -*-
"""
XMPP MUC invitations to SIP users (RFC 7702 section 6, "Gateway B"; SPEC
R-222 and F.2 "MUC invitations (mediated or XEP-0249) arriving for a SIP
user"; RFC 7702 itself does not cover this direction).

A SIP user sits in XMPP rooms under a real JID on the gateway's user
domain (L{realJIDForSIPUser}).  When a mediated invitation (XEP-0045
section 7.8.2: C{<x xmlns=muc#user><invite from=...>} sent by the room) or
a direct invitation (XEP-0249: C{<x xmlns=jabber:x:conference jid=...>}
sent by the inviter) reaches such a JID, L{SIPInvitations} tells the SIP
user so in SIP, from the room's focus identity:

  1. B{REFER} (RFC 3515) out of dialog to the user's address of record,
     the conference invitation of RFC 4579 section 5.6 ("A UA wishing to
     add a new participant SHOULD send a REFER request to the participant
     with a Refer-To header containing the conference URI"), sent the way
     a focus sends it in RFC 4579 section 5.7 message F5: C{From} the
     conference URI, C{Refer-To: <sip:room@muc.domain>} (no C{method}
     parameter: INVITE is its default, RFC 3261 section 19.1.1), C{Accept:
     message/sipfrag}.  (The F5 printed in RFC 4579 names the conference
     URI in its request line but Bob in C{To}; the request of course goes
     to the invitee, as C{To} says.)  The user's UA then INVITEs the room,
     which is the ordinary RFC 7702 section 6.1 join.  Details:

       - Request-URI and C{To}: the RFC 7247 section 6.5 mapping of the
         real JID's bare part back to SIP (L{sipUserForRealJID}); the
         resourcepart is dropped: it is not a GRUU the gateway can target
         reliably, so the AOR is used, and the user's proxy finds the
         devices (RFC 3428 section 3 sends MESSAGE to the AOR too).
       - C{From}: the room's SIP URI (L{requestURIFromRoomJID}) with the
         inviter as display name, so that a phone shows who invites.
       - C{Referred-By} (RFC 3892 section 3): the inviter mapped by RFC
         7247 section 6.5 to its address of record (RFC 3892 section 2:
         "The Referrer provides a Referred-By header with its SIP
         address-of-record"); an inviter that is an occupant JID (a
         semi-anonymous room's C{invite from=room@service/nick}) becomes
         the occupant identity C{<sip:room@service;gr=nick>} of R-207; an
         inviter on the user domain (another SIP user) maps back to its
         own SIP AOR.  No Referred-By token is sent (RFC 3892 section 2.1
         makes it optional); the user's UA copies the header into its
         INVITE to the room (RFC 3892 section 2.2).  No inviter, no
         header.
       - C{Refer-Sub: false} (RFC 4488 section 4): the gateway keeps no
         subscription per invitation.  RFC 4488 section 5 says an issuer
         SHOULD NOT send it when the REFER might fork, which a REFER to an
         AOR can; its reason is that the issuer would not see the other
         branches' subscriptions.  The gateway does not follow the
         referred INVITE at all (the join itself tells it), so forking
         costs it nothing, and every device of the user getting the
         invitation is what an invitation should do.  The default is
         therefore C{Refer-Sub: false}; C{referSub=True} sends none and
         lets the implicit subscription run (L{ReferAgent} answers its
         NOTIFYs and ends it when the recipient does, or at its expiry).
         C{Require: norefersub} is never sent (RFC 4488 section 4: NOT
         RECOMMENDED when the recipient's capabilities are unknown): a UA
         that ignores C{Refer-Sub} just creates the subscription.

  2. B{MESSAGE} (RFC 3428) to the same AOR when the REFER's final status
     says the UA does not take this kind of request
     (L{MESSAGE_FALLBACK_STATUSES}; RFC 4579 section 5.6 expects
     rejections: "Should Bob reject the REFER, Alice might try" another
     way).  C{From} as for the REFER, no C{Contact} (RFC 3428 section 4:
     MUST NOT), C{Content-Type: text/plain;charset=UTF-8} (section 4: every
     UAC must be able to send, and section 7 every UAS to render,
     text/plain), and a one-line body a plain SIP client can show::

        juliet@capulet.example invites you to the chat room sip:capulet@muc.example (reason)

     The body is kept short (L{MAX_MESSAGE_BODY} octets: RFC 3428 section
     8 limits a MESSAGE outside a session to 1300 bytes) and free of line
     breaks and control characters.  At most one MESSAGE per AOR is in
     flight (RFC 3428 section 8: a UAC "MUST NOT initiate a new
     out-of-dialog MESSAGE transaction to a given URI if there is a
     previous out-of-dialog transaction pending for the same URI"); later
     ones wait their turn.

Status-code policy for the REFER (L{MESSAGE_FALLBACK_STATUSES}), "the UA
does not do out-of-dialog REFER", so MESSAGE is tried:

  - C{405} Method Not Allowed and C{501} Not Implemented (RFC 3261 sections
    8.2.1, 21.4.6 and 21.5.2): the method is not supported;
  - C{420} Bad Extension (RFC 3261 section 21.4.15): some extension of the
    REFER is not supported (we send no C{Require}, but a UA that says so
    will not take a REFER; MESSAGE needs no extension);
  - C{489} Bad Event (what RFC 6665 section 4.2.1.1 answers for an event
    package one does not serve): the C{refer} package the REFER implies
    (RFC 3515 section 2.4.4) is not supported;
  - C{481} Call/Transaction Does Not Exist (RFC 3261 section 21.4.19):
    wrong for a request without To tag, but UAs that only transfer calls
    inside dialogs answer an out-of-dialog REFER with it;
  - C{403} Forbidden (RFC 3261 section 21.4.4): a policy against REFERs
    outside dialogs (a common defence, RFC 3515 section 5).  A 403 from a
    proxy that refuses the gateway altogether costs one more request that
    is refused too; that is bounded by the rate limit;
  - C{408} Request Timeout (RFC 3261 section 21.4.9; the UA core's own 408
    when Timer F fires, section 17.1.2.2, or that of a proxy whose branch
    timed out): a UA may ignore a request it does not handle instead of
    answering it.  PJSIP 2.15 (pjsua2) does exactly that with an
    out-of-dialog REFER ("dropped/unhandled by any modules", no response;
    tests/interop/test_invitations_sip.py shows it) while it takes
    MESSAGE.  A user who is really unreachable costs one more request
    that times out too (bounded by the rate limit).

Any other final status ends the attempt without MESSAGE: C{603} Decline is
the user (or the UA's policy for them) saying no (RFC 3515 section 2.4.2,
RFC 3261 section 21.6.2); C{404}/C{410}/C{480}/C{486} and C{503} (also the
UA core's local 503 when no route or address was found) mean the user
cannot be reached now, and a MESSAGE would fail the same way.  C{429}
(RFC 3892 section 2.1: a Referred-By token is wanted) is not retried: the
gateway cannot sign for an XMPP inviter.

L{SIPInvitations} is the L{IInvitationSender} that L{SIPToXMPP
<stoxgw.interworking.siptoxmpp.SIPToXMPP>} hands every invitation for a
SIP user to.  Outcome: L{SIPInvitations.invitationReceived} returns a
L{Deferred} that never fails, firing with an L{InvitationOutcome} (which
request was sent last, its final status, the refused REFER's status).
The class never touches XMPP: a mediated invitation that could not be delivered gets no
answer (XEP-0045 has no error for it), and the caller may use the outcome
(e.g. a C{603} as a XEP-0045 C{<decline/>}).  Failures are logged with
fields (C{roomJID}, C{realJID}, C{uri}, C{status}, C{error}); the
invitation's reason and password are not logged.

Rate limit (so that no XMPP user can make the gateway flood a SIP phone):
one invitation per (invitee AOR, room) per L{RATE_INTERVAL} seconds, and at
most L{MAX_PER_INVITEE} invitations per invitee AOR in that interval over
all rooms (rooms are cheap to create); time comes from the injected clock.
The table is bounded (L{MAX_TRACKED}); when it is full, new invitations
are dropped rather than forgetting recent ones.  Drops are logged.

Not forwarded: the room password (there is no SIP carrier for it, and
RFC 7702 section 6.1 has no way to present one on join), XEP-0249
C{continue}/XEP-0045 C{<continue/>} (no SIP meaning).  An invitation to a
room on a domain the gateway does not serve for SIP users (C{mucDomains})
is not sent: the user could not join it through the gateway.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import Enum
from typing import TypedDict

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.words.protocols.jabber.jid import JID
from zope.interface import implementer

from stoxgw.interworking.addressing import (
    AddressError,
    SIPAddress,
    jidToSIP,
    occupantSIPFromJID,
    requestURIFromRoomJID,
    roomJIDFromRequestURI,
    sipUserForRealJID,
    unescapeLocalpart,
    withResource,
)
from stoxgw.interworking.ratelimit import Admission, RateLimiter, WhenFull
from stoxgw.interworking.siptoxmpp import IInvitationSender
from stoxgw.sip.message import SIPResponse
from stoxgw.sip.refer import ReferAgent
from stoxgw.sip.uri import NameAddr, SIPURI
from stoxgw.sip.useragent import SIPError, SIPUserAgent
from stoxgw.xmpp.occupant import Invitation

__all__ = [
    "InvitationOutcome",
    "InvitationResult",
    "SIPInvitations",
    "MESSAGE_FALLBACK_STATUSES",
    "RATE_INTERVAL",
    "MAX_PER_INVITEE",
    "MAX_TRACKED",
    "MAX_MESSAGE_BODY",
    "TEXT_PLAIN",
    "invitationText",
]

#: REFER final statuses meaning "this UA does not take an out-of-dialog
#: REFER", after which a MESSAGE is sent (see the module docstring).
MESSAGE_FALLBACK_STATUSES = frozenset({403, 405, 408, 420, 481, 489, 501})

#: Seconds during which a second invitation of one invitee to one room is
#: dropped, and over which L{MAX_PER_INVITEE} counts.
RATE_INTERVAL = 60.0

#: Invitations per invitee (all rooms) within L{RATE_INTERVAL}.
MAX_PER_INVITEE = 5

#: (Invitee, room) pairs, and invitees, tracked for the rate limit at most.
MAX_TRACKED = 10000

#: Octets of the MESSAGE body at most (RFC 3428 section 8: 1300 bytes for
#: the whole request).
MAX_MESSAGE_BODY = 512

#: Characters of an inviter's name (display name, body) at most.
MAX_NAME = 64

#: The MESSAGE body type (RFC 3428 section 4).
TEXT_PLAIN = "text/plain;charset=UTF-8"

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


class InvitationResult(Enum):
    """
    How an invitation ended.

    @cvar REFERRED: The REFER got a 2xx (RFC 3515 section 2.4.2).
    @cvar MESSAGED: The REFER was refused with a fallback status and the
        MESSAGE got a 2xx (RFC 3428 section 4: delivered, or with 202
        accepted by a relay).
    @cvar FAILED: The REFER failed with another status, the MESSAGE
        failed, or sending failed locally.
    @cvar RATE_LIMITED: Dropped by the rate limit; nothing was sent.
    @cvar NOT_SENT: The invitee or the room has no SIP address the gateway
        may use (not on the user domain, room domain not served,
        malformed); nothing was sent.
    """

    REFERRED = "referred"
    MESSAGED = "messaged"
    FAILED = "failed"
    RATE_LIMITED = "rate-limited"
    NOT_SENT = "not-sent"


@dataclass(frozen=True, slots=True)
class InvitationOutcome:
    """
    What became of one invitation.

    @ivar result: The summary.
    @ivar method: The last request sent (C{"REFER"} or C{"MESSAGE"}), or
        L{None} when nothing was sent.
    @ivar status: Its final status (a local 408 on timeout, 503 without a
        route, see L{SIPUserAgent.request}), or L{None}.
    @ivar referStatus: The REFER's final status when a MESSAGE followed.
    @ivar reason: Why nothing was sent, or what failed locally.
    """

    result: InvitationResult
    method: str | None = None
    status: int | None = None
    referStatus: int | None = None
    reason: str | None = None


def _clean(text: str, limit: int) -> str:
    """
    C{text} on one line: control characters and line breaks become
    spaces, runs of white space one space; cut to C{limit} characters
    (with an ellipsis).
    """
    text = _SPACES.sub(" ", _CONTROLS.sub(" ", text)).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\N{HORIZONTAL ELLIPSIS}"
    return text


def _fitOctets(text: str, limit: int) -> str:
    """
    C{text} cut to at most C{limit} UTF-8 octets (at a character
    boundary).
    """
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", "ignore") + "\N{HORIZONTAL ELLIPSIS}"


def _sipURI(address: SIPAddress) -> SIPURI:
    """
    The SIP stack's URI for an address-mapping result.
    """
    return SIPURI.fromString(address.uri())


def _jidLabel(jid: JID) -> str:
    """
    A JID for people: the localpart XEP-0106-unescaped (the escaped form
    is for the wire, people see the unescaped one), no resource.
    """
    if jid.user is None:
        return jid.host
    return f"{unescapeLocalpart(jid.user)}@{jid.host}"


@dataclass(frozen=True, slots=True)
class _Inviter:
    """
    The inviter as SIP sees it.

    @ivar identity: For C{Referred-By}.
    @ivar label: For the C{From} display name and the MESSAGE body.
    """

    identity: NameAddr
    label: str


def _inviter(inviter: JID | None, room: JID, userDomain: str) -> _Inviter | None:
    """
    RFC 3892 section 2 and RFC 7247 section 6.5: the inviter's address of
    record; an occupant JID of the room (R-207) becomes the occupant
    identity with the nick as display name; a JID on the user domain is
    one of our SIP users and maps back to its own AOR.

    @raise AddressError: Not mappable.
    """
    if inviter is None:
        return None
    if withResource(inviter, None) == room and inviter.resource is not None:
        nick = _clean(inviter.resource, MAX_NAME)
        uri = _sipURI(occupantSIPFromJID(inviter))
        return _Inviter(NameAddr(uri, nick), nick)
    if inviter.host == userDomain.lower().rstrip(".") and inviter.user is not None:
        address = sipUserForRealJID(withResource(inviter, None), userDomain).aor
        label = f"{address.user}@{address.host}" if address.user else address.host
        return _Inviter(NameAddr(_sipURI(address)), _clean(label, MAX_NAME))
    return _Inviter(
        NameAddr(_sipURI(jidToSIP(withResource(inviter, None)))),
        _clean(_jidLabel(inviter), MAX_NAME),
    )


def invitationText(inviter: str | None, roomURI: str, reason: str | None) -> str:
    """
    The MESSAGE body: one line, at most L{MAX_MESSAGE_BODY} octets, e.g.
    C{juliet@capulet.example invites you to the chat room
    sip:capulet@muc.example (Join us)}.

    @param inviter: Who invites, for people, or L{None}.
    @param roomURI: The room's SIP URI, the address to call.
    @param reason: The invitation's reason, or L{None}.
    """
    who = f"{_clean(inviter, MAX_NAME)} invites you" if inviter else "You are invited"
    text = f"{who} to the chat room {roomURI}"
    why = _clean(reason, MAX_MESSAGE_BODY) if reason else ""
    # What is left for the reason inside " (...)".
    budget = MAX_MESSAGE_BODY - len(text.encode("utf-8")) - 3
    if why and budget >= 8:
        text = f"{text} ({_fitOctets(why, budget)})"
    return _fitOctets(text, MAX_MESSAGE_BODY)


class _LogFields(TypedDict):
    """
    The fields of every log event about one invitation.
    """

    roomJID: str
    realJID: str
    uri: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """
    One invitation, mapped to SIP.
    """

    realJID: str
    roomJID: str
    invitee: SIPURI
    room: SIPURI
    fromAddress: NameAddr
    referredBy: NameAddr | None
    text: str
    direct: bool

    @property
    def inviteeKey(self) -> str:
        """
        The invitee's AOR as text (rate limit and MESSAGE queue key).
        """
        return str(self.invitee)

    @property
    def logFields(self) -> _LogFields:
        """
        The fields every log event about this invitation has.
        """
        return _LogFields(roomJID=self.roomJID, realJID=self.realJID, uri=self.inviteeKey)


class _RateLimit:
    """
    The invitation limits (see the module docstring): one per (invitee,
    room) and L{MAX_PER_INVITEE} per invitee within the interval; a full
    table refuses new keys rather than forgetting recent invitations.
    """

    def __init__(
        self, clock: IReactorTime, interval: float, perInvitee: int, capacity: int
    ) -> None:
        self.interval = interval
        self.perInvitee = perInvitee
        self._pairs = RateLimiter(clock, 1, interval, capacity, WhenFull.REFUSE)
        self._invitees = RateLimiter(
            clock, perInvitee, interval, capacity, WhenFull.REFUSE
        )

    def admit(self, invitee: str, room: str) -> str | None:
        """
        Count an invitation of C{invitee} to C{room} now, or say why not.

        @return: L{None} if it may be sent, else the reason it may not.
        """
        pair = self._pairs.check((invitee, room))
        alone = self._invitees.check(invitee)
        if pair is Admission.OVER_LIMIT:
            return f"already invited to this room in the last {self.interval:g} s"
        if alone is Admission.OVER_LIMIT:
            return f"{self.perInvitee} invitations in the last {self.interval:g} s"
        if Admission.FULL in (pair, alone):
            return "too many invitations to track"
        self._pairs.count((invitee, room))
        self._invitees.count(invitee)
        return None


@implementer(IInvitationSender)
class SIPInvitations:
    """
    Sends XMPP MUC invitations to SIP users as REFER, else MESSAGE (see the
    module docstring).

    @ivar referAgent: Sends the REFERs (the
        L{stoxgw.sip.subscription.SIPEvents} it was made with answers the
        NOTIFYs of a recipient that keeps an implicit subscription
        anyway).
    @ivar userAgent: Sends the MESSAGEs (the REFER agent's UA).
    @ivar userDomain: The C{[xmpp] user_domain} where SIP users' real JIDs
        live.
    @ivar mucDomains: The C{[gateway] muc_domains} allow-list (empty: any).
    @ivar referSub: Whether to let the REFER's implicit subscription happen
        (C{False}: send C{Refer-Sub: false}).
    @ivar fallbackStatuses: REFER statuses after which MESSAGE is tried.
    """

    _log = Logger()

    def __init__(
        self,
        referAgent: ReferAgent,
        clock: IReactorTime,
        userDomain: str,
        mucDomains: Collection[str] = (),
        *,
        interval: float = RATE_INTERVAL,
        maxPerInvitee: int = MAX_PER_INVITEE,
        maxTracked: int = MAX_TRACKED,
        fallbackStatuses: Collection[int] = MESSAGE_FALLBACK_STATUSES,
        referSub: bool = False,
    ) -> None:
        """
        @param clock: For the rate limit.
        @param interval: See L{RATE_INTERVAL}.
        @param maxPerInvitee: See L{MAX_PER_INVITEE}.
        @param maxTracked: See L{MAX_TRACKED}.
        """
        self.referAgent = referAgent
        self.userAgent: SIPUserAgent = referAgent.events.ua
        self.userDomain = userDomain
        self.mucDomains = tuple(mucDomains)
        self.referSub = referSub
        self.fallbackStatuses = frozenset(fallbackStatuses)
        self._limit = _RateLimit(clock, interval, maxPerInvitee, maxTracked)
        self._messageQueues: dict[str, deque[Callable[[], None]]] = {}

    # -- the interface ---------------------------------------------------------

    def invitationReceived(
        self, realJID: JID, invitation: Invitation
    ) -> Deferred[InvitationOutcome]:
        """
        Tell the SIP user behind C{realJID} about C{invitation}: REFER,
        else MESSAGE.

        @return: Fires with the L{InvitationOutcome}; never fails.
        """
        try:
            plan = self._plan(realJID, invitation)
        except AddressError as e:
            self._log.info(
                "Invitation to {roomJID} for {realJID} not sent: {error}",
                roomJID=str(invitation.roomJID),
                realJID=str(realJID),
                error=str(e),
            )
            return succeed(InvitationOutcome(InvitationResult.NOT_SENT, reason=str(e)))
        except Exception as e:
            self._log.failure(
                "Mapping an invitation to {roomJID} for {realJID}",
                roomJID=str(invitation.roomJID),
                realJID=str(realJID),
            )
            return succeed(InvitationOutcome(InvitationResult.FAILED, reason=repr(e)))
        refused = self._limit.admit(plan.inviteeKey, plan.roomJID)
        if refused is not None:
            self._log.info(
                "Invitation to {roomJID} for {uri} dropped: {error}",
                error=refused,
                **plan.logFields,
            )
            return succeed(
                InvitationOutcome(InvitationResult.RATE_LIMITED, reason=refused)
            )
        return Deferred.fromCoroutine(self._deliver(plan))

    # -- mapping -----------------------------------------------------------------

    def _plan(self, realJID: JID, invitation: Invitation) -> _Plan:
        """
        Map the invitation to SIP addresses and text.

        @raise AddressError: The invitee is not ours, the room is not
            served or no room, or an address is malformed.
        """
        real = realJID
        invitee = sipUserForRealJID(withResource(real, None), self.userDomain)
        if invitee.user is None:
            raise AddressError(f"{real} names no SIP user", 404, "item-not-found")
        room = withResource(invitation.roomJID, None)
        roomURI = requestURIFromRoomJID(room)
        # The same check as an INVITE to the room gets (R-116, mucDomains).
        roomJIDFromRequestURI(roomURI, self.mucDomains)
        try:
            inviter = _inviter(invitation.inviter, room, self.userDomain)
        except AddressError as e:
            # Still worth telling the user; just without Referred-By.
            self._log.info(
                "Inviter {inviter} of an invitation to {roomJID} has no SIP"
                " address: {error}",
                inviter=str(invitation.inviter) if invitation.inviter else None,
                roomJID=str(room),
                error=str(e),
            )
            inviter = None
        roomText = roomURI.uri()
        if inviter is not None:
            display = inviter.label
        else:
            display = _clean(unescapeLocalpart(room.user or room.host), MAX_NAME)
        return _Plan(
            realJID=str(real),
            roomJID=str(room),
            invitee=_sipURI(invitee.aor),
            room=_sipURI(roomURI),
            fromAddress=NameAddr(_sipURI(roomURI), display or None),
            referredBy=inviter.identity if inviter is not None else None,
            text=invitationText(
                inviter.label if inviter is not None else None,
                roomText,
                invitation.reason,
            ),
            direct=invitation.direct,
        )

    # -- sending -----------------------------------------------------------------

    async def _deliver(self, plan: _Plan) -> InvitationOutcome:
        """
        REFER, then MESSAGE if the REFER's status says so.
        """
        try:
            referStatus = await self._refer(plan)
        except Exception as e:
            return self._failed(plan, "REFER", e)
        if 200 <= referStatus < 300:
            return self._ended(plan, InvitationResult.REFERRED, "REFER", referStatus)
        if referStatus not in self.fallbackStatuses:
            return self._ended(plan, InvitationResult.FAILED, "REFER", referStatus)
        self._log.info(
            "{uri} does not take REFER ({status}): inviting to {roomJID} by MESSAGE",
            status=referStatus,
            **plan.logFields,
        )
        try:
            response = await self._queueMessage(plan)
        except Exception as e:
            return self._failed(plan, "MESSAGE", e, referStatus)
        result = (
            InvitationResult.MESSAGED if response.isSuccess else InvitationResult.FAILED
        )
        return self._ended(plan, result, "MESSAGE", response.status, referStatus)

    def _ended(
        self,
        plan: _Plan,
        result: InvitationResult,
        method: str,
        status: int,
        referStatus: int | None = None,
    ) -> InvitationOutcome:
        """
        Log the final status of the last request (info when it was sent,
        warn when it failed) and make the outcome.
        """
        fields = dict(plan.logFields, method=method, status=status, direct=plan.direct)
        if result is InvitationResult.FAILED:
            self._log.warn(
                "Invitation to {roomJID} for {uri} failed: {method} answered {status}",
                **fields,
            )
        else:
            self._log.info(
                "Invitation to {roomJID} for {uri} sent as {method}: {status}",
                **fields,
            )
        return InvitationOutcome(result, method, status, referStatus)

    def _failed(
        self,
        plan: _Plan,
        method: str,
        error: Exception,
        referStatus: int | None = None,
    ) -> InvitationOutcome:
        """
        Log the exception being handled (sending C{method} failed locally:
        a bug) and make the outcome.
        """
        self._log.failure(
            "Sending a {method} to {uri} for {roomJID}", method=method, **plan.logFields
        )
        return InvitationOutcome(
            InvitationResult.FAILED, method, referStatus=referStatus, reason=repr(error)
        )

    async def _refer(self, plan: _Plan) -> int:
        """
        The REFER of RFC 4579 section 5.6/5.7 (F5).

        @return: Its final status.
        """
        try:
            outgoing = await self.referAgent.refer(
                NameAddr(plan.invitee),
                NameAddr(plan.room),
                fromAddress=plan.fromAddress,
                referSub=self.referSub,
                referredBy=plan.referredBy,
            )
        except SIPError as e:
            return e.status
        response = outgoing.response
        return response.status if response is not None else 200

    def _queueMessage(self, plan: _Plan) -> Deferred[SIPResponse]:
        """
        Send the MESSAGE once no other MESSAGE to the same AOR is pending
        (RFC 3428 section 8).
        """
        key = plan.inviteeKey
        result: Deferred[SIPResponse] = Deferred()

        def finished(outcome: SIPResponse | Failure) -> None:
            queue = self._messageQueues[key]
            queue.popleft()
            if queue:
                queue[0]()
            else:
                del self._messageQueues[key]
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)

        def run() -> None:
            try:
                d = self._sendMessage(plan)
            except Exception:
                finished(Failure())  # type: ignore[no-untyped-call]
                return
            d.addBoth(finished)

        queue = self._messageQueues.setdefault(key, deque())
        queue.append(run)
        if len(queue) == 1:
            run()
        return result

    def _sendMessage(self, plan: _Plan) -> Deferred[SIPResponse]:
        """
        The MESSAGE of RFC 3428 (no Contact, text/plain).
        """
        return self.userAgent.request(
            "MESSAGE",
            NameAddr(plan.invitee),
            plan.fromAddress,
            body=plan.text.encode("utf-8"),
            contentType=TEXT_PLAIN,
        )
