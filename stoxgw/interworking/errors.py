# -*- test-case-name: tests.interworking.test_errors -*-
"""
The status <-> condition tables of the gateway (SPEC.md section E).

Pure data and functions: every other module asks here which SIP status,
MSRP status or XMPP stanza error stands for a failure on the other side.
The XMPP facts themselves (the stanza error conditions and their types,
the MUC status codes and which removal wins) live in the lowest layer that
needs them, L{stoxgw.xmpp.stanzas}, and are used from there.

  - E.1, XMPP stanza error -> SIP response: L{sipStatusForStanzaError}
    (RFC 7247 section 7.1, Table 2; R-108, R-109, R-110).
  - E.2, SIP response -> XMPP stanza error: L{stanzaErrorForSIPStatus}
    (RFC 7247 section 7.2, Table 3, with its class fallbacks; R-111, R-112).
  - E.3, MSRP response from the switch -> XMPP (Gateway A):
    L{stanzaErrorForMSRPStatus}.
  - E.4, XMPP/MUC error -> MSRP response (Gateway B):
    L{msrpStatusForStanzaError} and L{msrpStatusForLocalFailure}.
  - E.5, room entry and removal: L{sipStatusForMUCEntryError} (Gateway B,
    R-209), L{stanzaErrorForSIPEntryFailure} (Gateway A),
    L{sipReasonCauseForMUCRemoval} and L{disconnectionMethodForMUCRemoval}
    (Gateway B), L{mucStatusForSIPBye}, L{mucStatusForDisconnectionMethod}
    and L{mucStatusForTermination} (Gateway A, R-218).
  - E.8, MSRP status codes a groupchat gateway uses: L{MSRP_STATUS_PHRASES}.

The MSRP rows (E.3, E.4, E.8) are kept in L{stoxgw.interworking.msrperrors}
and exported from here, so that this module stays the one to import from.

The error type of every condition defaults to the one RFC 6120 section
8.3.3 gives it (L{ERROR_TYPES}); rows that say otherwise (MUC semantics,
XEP-0045) carry their own type and say why.

RFC 7247 section 7 calls the mapping "more of an art than a science" and
lets implementations deviate (R-114); SPEC.md F.1 item 7 uses that for
room entry, where RFC 7247's 401/407 would make a SIP UA attempt digest
authentication and its recipient-unavailable is not what a MUC client
expects for a full room: the E.5 functions override E.1/E.2 for entry only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum, StrEnum
from types import MappingProxyType

from stoxgw.formats.conferenceinfo import DisconnectionMethod
# The MSRP rows (E.3, E.4, E.8), exported from here for this module's users.
from stoxgw.interworking.msrperrors import (
    _statusClass,
    STANZA_ERROR_FOR_MSRP_STATUS as STANZA_ERROR_FOR_MSRP_STATUS,
    CONDITION_FOR_MSRP_CLASS as CONDITION_FOR_MSRP_CLASS,
    MSRP_STATUSES_ENDING_SESSION as MSRP_STATUSES_ENDING_SESSION,
    MSRP_STATUS_LOCAL_TIMEOUT as MSRP_STATUS_LOCAL_TIMEOUT,
    stanzaErrorForMSRPStatus as stanzaErrorForMSRPStatus,
    msrpStatusEndsSession as msrpStatusEndsSession,
    MUCExchange as MUCExchange,
    MSRP_STATUS_FOR_EXCHANGE_CONDITION as MSRP_STATUS_FOR_EXCHANGE_CONDITION,
    MSRP_STATUS_FOR_CONDITION as MSRP_STATUS_FOR_CONDITION,
    MSRP_STATUS_FALLBACK as MSRP_STATUS_FALLBACK,
    msrpStatusForStanzaError as msrpStatusForStanzaError,
    LocalMSRPFailure as LocalMSRPFailure,
    MSRP_STATUS_FOR_LOCAL_FAILURE as MSRP_STATUS_FOR_LOCAL_FAILURE,
    msrpStatusForLocalFailure as msrpStatusForLocalFailure,
    MSRP_STATUS_PHRASES as MSRP_STATUS_PHRASES,
    msrpReasonPhrase as msrpReasonPhrase,
)
from stoxgw.msrp.message import MSRPMethod as MSRPMethod  # E.3 and E.4 rows depend on it
# The XMPP facts, from the one place that holds them (some only
# re-exported for this module's users).
from stoxgw.xmpp.stanzas import (
    ERROR_TYPES as ERROR_TYPES,
    Condition as Condition,
    ErrorType as ErrorType,
    MUCStatus as MUCStatus,
    asCondition as asCondition,
    errorTypeFor as errorTypeFor,
    mucErrorTypeFor as mucErrorTypeFor,
    removalStatus as removalStatus,
)


# E.1: XMPP stanza error -> SIP response (RFC 7247 section 7.1, Table 2).

#: E.1 (R-108): the SIP status for each condition when the error relates to
#: a full JID, or the only status Table 2 gives.  Choices made where the
#: table offers several: gone -> 410, the status without a new address (301
#: needs one, note 3, R-109); remote-server-not-found -> 404, the server does
#: not exist (408 when it cannot be resolved, note 4); service-unavailable ->
#: 403, one of the two closest codes of note 5, never 503 (R-110; 405 would
#: oblige an Allow header); unexpected-request -> 491, the first of
#: "491 or 400".
SIP_STATUS_FOR_CONDITION: Mapping[Condition, int] = MappingProxyType(
    {
        Condition.BAD_REQUEST: 400,
        Condition.CONFLICT: 400,
        Condition.FEATURE_NOT_IMPLEMENTED: 405,
        Condition.FORBIDDEN: 403,
        Condition.GONE: 410,
        Condition.INTERNAL_SERVER_ERROR: 500,
        Condition.ITEM_NOT_FOUND: 404,
        Condition.JID_MALFORMED: 400,
        Condition.NOT_ACCEPTABLE: 406,
        Condition.NOT_ALLOWED: 403,
        Condition.NOT_AUTHORIZED: 401,
        Condition.POLICY_VIOLATION: 403,
        Condition.RECIPIENT_UNAVAILABLE: 480,
        Condition.REDIRECT: 302,
        Condition.REGISTRATION_REQUIRED: 407,
        Condition.REMOTE_SERVER_NOT_FOUND: 404,
        Condition.REMOTE_SERVER_TIMEOUT: 408,
        Condition.RESOURCE_CONSTRAINT: 500,
        Condition.SERVICE_UNAVAILABLE: 403,
        Condition.SUBSCRIPTION_REQUIRED: 400,
        Condition.UNDEFINED_CONDITION: 400,
        Condition.UNEXPECTED_REQUEST: 491,
    }
)

#: E.1 (R-108): the statuses RECOMMENDED instead when the error relates to a
#: bare JID, i.e. to the user rather than one resource (RFC 7247 section 7.1
#: notes 1 and 2: 501 rather than 405, the 6xx rather than the 4xx code).
SIP_STATUS_FOR_CONDITION_BARE_JID: Mapping[Condition, int] = MappingProxyType(
    {
        Condition.FEATURE_NOT_IMPLEMENTED: 501,
        Condition.FORBIDDEN: 603,
        Condition.ITEM_NOT_FOUND: 604,
        Condition.NOT_ACCEPTABLE: 606,
        Condition.RECIPIENT_UNAVAILABLE: 600,
    }
)

#: RFC 7247 section 7.1 note 3 (R-109): C{<gone/>} with a new address.
SIP_STATUS_GONE_WITH_ADDRESS = 301

#: RFC 7247 section 7.1 note 4: C{<remote-server-not-found/>} for a server
#: that cannot be resolved (rather than one that does not exist).
SIP_STATUS_REMOTE_SERVER_UNRESOLVABLE = 408


def sipStatusForStanzaError(
    condition: Condition | str,
    *,
    bareJID: bool = False,
    newAddress: bool = False,
    unresolvable: bool = False,
) -> int:
    """
    The SIP final response for an XMPP stanza error (SPEC E.1, RFC 7247
    section 7.1; R-108, R-109, R-110).

    @param condition: the defined condition; an unknown one is
        undefined-condition (RFC 6120 section 8.3.2), hence 400.
    @param bareJID: the error relates to a bare JID (the user) rather than a
        full JID: use the 501/6xx codes of notes 1 and 2.
    @param newAddress: the C{<gone/>} element carries a new address: 301
        instead of 410 (note 3, a MUST).
    @param unresolvable: the C{<remote-server-not-found/>} is about a server
        that cannot be resolved: 408 instead of 404 (note 4).
    @return: a SIP status code, 3xx-6xx; never 503 (note 5).
    """
    known = asCondition(condition)
    if known is Condition.GONE and newAddress:
        return SIP_STATUS_GONE_WITH_ADDRESS
    if known is Condition.REMOTE_SERVER_NOT_FOUND and unresolvable:
        return SIP_STATUS_REMOTE_SERVER_UNRESOLVABLE
    if bareJID and known in SIP_STATUS_FOR_CONDITION_BARE_JID:
        return SIP_STATUS_FOR_CONDITION_BARE_JID[known]
    return SIP_STATUS_FOR_CONDITION[known]


# E.2: SIP response -> XMPP stanza error (RFC 7247 section 7.2, Table 3).

#: E.2 (R-111): the condition for each SIP status Table 3 lists.
CONDITION_FOR_SIP_STATUS: Mapping[int, Condition] = MappingProxyType(
    {
        300: Condition.REDIRECT,
        301: Condition.GONE,
        302: Condition.REDIRECT,
        305: Condition.REDIRECT,
        380: Condition.NOT_ACCEPTABLE,
        400: Condition.BAD_REQUEST,
        401: Condition.NOT_AUTHORIZED,
        402: Condition.BAD_REQUEST,
        403: Condition.FORBIDDEN,
        404: Condition.ITEM_NOT_FOUND,
        405: Condition.FEATURE_NOT_IMPLEMENTED,
        406: Condition.NOT_ACCEPTABLE,
        407: Condition.REGISTRATION_REQUIRED,
        408: Condition.REMOTE_SERVER_TIMEOUT,
        410: Condition.GONE,
        413: Condition.POLICY_VIOLATION,
        414: Condition.POLICY_VIOLATION,
        415: Condition.NOT_ACCEPTABLE,
        416: Condition.NOT_ACCEPTABLE,
        420: Condition.FEATURE_NOT_IMPLEMENTED,
        421: Condition.NOT_ACCEPTABLE,
        423: Condition.RESOURCE_CONSTRAINT,
        430: Condition.RECIPIENT_UNAVAILABLE,
        439: Condition.FEATURE_NOT_IMPLEMENTED,
        440: Condition.POLICY_VIOLATION,
        480: Condition.RECIPIENT_UNAVAILABLE,
        481: Condition.ITEM_NOT_FOUND,
        482: Condition.NOT_ACCEPTABLE,
        483: Condition.NOT_ACCEPTABLE,
        484: Condition.ITEM_NOT_FOUND,
        485: Condition.ITEM_NOT_FOUND,
        486: Condition.RECIPIENT_UNAVAILABLE,
        487: Condition.RECIPIENT_UNAVAILABLE,
        488: Condition.NOT_ACCEPTABLE,
        489: Condition.POLICY_VIOLATION,
        491: Condition.UNEXPECTED_REQUEST,
        493: Condition.BAD_REQUEST,
        500: Condition.INTERNAL_SERVER_ERROR,
        501: Condition.FEATURE_NOT_IMPLEMENTED,
        502: Condition.REMOTE_SERVER_NOT_FOUND,
        503: Condition.INTERNAL_SERVER_ERROR,
        504: Condition.REMOTE_SERVER_TIMEOUT,
        505: Condition.NOT_ACCEPTABLE,
        513: Condition.POLICY_VIOLATION,
        600: Condition.RECIPIENT_UNAVAILABLE,
        603: Condition.RECIPIENT_UNAVAILABLE,
        604: Condition.ITEM_NOT_FOUND,
        606: Condition.NOT_ACCEPTABLE,
    }
)

#: E.2 (R-111): the condition for a status Table 3 does not list, by class
#: (RFC 7247 section 7.2: 3xx redirect, 4xx bad-request, 5xx
#: internal-server-error, 6xx recipient-unavailable).
CONDITION_FOR_SIP_CLASS: Mapping[int, Condition] = MappingProxyType(
    {
        3: Condition.REDIRECT,
        4: Condition.BAD_REQUEST,
        5: Condition.INTERNAL_SERVER_ERROR,
        6: Condition.RECIPIENT_UNAVAILABLE,
    }
)

#: The other translations RFC 7247 section 7.2 notes 3-5 allow "depending on
#: the scenario" (informative; L{stanzaErrorForSIPStatus} returns the main
#: one).
ALTERNATIVE_CONDITIONS_FOR_SIP_STATUS: Mapping[int, tuple[Condition, ...]] = (
    MappingProxyType(
        {
            403: (Condition.NOT_ALLOWED, Condition.POLICY_VIOLATION),
            404: (Condition.REMOTE_SERVER_NOT_FOUND,),
            408: (Condition.REMOTE_SERVER_NOT_FOUND,),
        }
    )
)

#: RFC 7247 section 7.2 note 1 (R-112): mapping 301 to C{<gone/>}, the
#: element MUST carry the new address; mapping 410, it MUST NOT.
SIP_STATUSES_GONE_WITH_ADDRESS = frozenset({301})


def stanzaErrorForSIPStatus(status: int) -> tuple[Condition, ErrorType]:
    """
    The XMPP stanza error for a SIP failure response (SPEC E.2, RFC 7247
    section 7.2; R-111).

    A 301 becomes C{<gone/>} that MUST carry the new address (the Contact),
    a 410 C{<gone/>} that MUST NOT (R-112): see L{goneCarriesAddress}.

    @param status: a SIP status code, 300-699.
    @return: the condition and its RFC 6120 error type; an unlisted status
        falls back by class.
    @raise ValueError: for 1xx/2xx (no XMPP equivalent, RFC 7247 section 7,
        R-114) or a number that is not a SIP status.
    """
    condition = CONDITION_FOR_SIP_STATUS.get(status)
    if condition is None:
        condition = CONDITION_FOR_SIP_CLASS.get(_statusClass(status))
    if condition is None:
        raise ValueError(f"SIP status {status} has no XMPP error condition")
    return condition, ERROR_TYPES[condition]


def goneCarriesAddress(status: int) -> bool:
    """
    @return: whether the C{<gone/>} translated from SIP C{status} MUST carry
        the new address (301) rather than none (410); RFC 7247 section 7.2
        note 1, R-112.
    """
    return status in SIP_STATUSES_GONE_WITH_ADDRESS




# E.5: room entry.

#: E.5, "SIP (Gateway B answer)": the final response to the INVITE when the
#: MUC refuses the join made before answering (R-209).  Deviations from
#: RFC 7247 Table 2 (SPEC F.1 item 7): not-authorized -> 403, not 401 (the
#: MUC password cannot travel in SIP and a 401 starts digest
#: authentication); registration-required -> 403, not 407 (members-only is
#: not proxy authentication); not-acceptable -> 403, not 406 (reserved nick
#: required; 425 when it comes on a NICKNAME, E.4); conflict -> 486, not
#: 400 (nick in use while joining before answering); service-unavailable ->
#: 486 (room full, "486 or 480"; RFC 7247 note 5 only rules out 503).
SIP_STATUS_FOR_MUC_ENTRY_ERROR: Mapping[Condition, int] = MappingProxyType(
    {
        Condition.NOT_AUTHORIZED: 403,
        Condition.FORBIDDEN: 403,
        Condition.ITEM_NOT_FOUND: 404,
        Condition.NOT_ALLOWED: 403,
        Condition.NOT_ACCEPTABLE: 403,
        Condition.REGISTRATION_REQUIRED: 403,
        Condition.CONFLICT: 486,
        Condition.SERVICE_UNAVAILABLE: 486,
        Condition.JID_MALFORMED: 400,
    }
)


def sipStatusForMUCEntryError(condition: Condition | str) -> int:
    """
    The SIP final response Gateway B sends to an INVITE whose MUC join
    failed (SPEC E.5, R-209); after a 200 the same code goes into the BYE's
    Reason header.

    @param condition: the XEP-0045 entry error condition.
    @return: the E.5 status, or the E.1 one (full JID: the room occupant)
        for a condition E.5 does not list.
    """
    known = asCondition(condition)
    if known in SIP_STATUS_FOR_MUC_ENTRY_ERROR:
        return SIP_STATUS_FOR_MUC_ENTRY_ERROR[known]
    return sipStatusForStanzaError(known)


#: E.5, "SIP (seen by Gateway A) -> XMPP": the presence error for a failed
#: INVITE to the focus.  Deviations from RFC 7247 Table 3 (SPEC F.1 item
#: 7): 405 -> not-allowed (room creation restricted), not
#: feature-not-implemented; 486/480/600 -> service-unavailable (what a MUC
#: client expects for a full room), not recipient-unavailable; 603 ->
#: forbidden (banned), not recipient-unavailable; 407 -> not-authorized,
#: not registration-required.  SIP 400 is handled by
#: L{stanzaErrorForSIPEntryFailure}.  The "425 -> conflict" of the E.5 row
#: is the MSRP 425 to a NICKNAME (E.3), not SIP 425.
CONDITION_FOR_SIP_ENTRY_FAILURE: Mapping[int, Condition] = MappingProxyType(
    {
        401: Condition.NOT_AUTHORIZED,
        407: Condition.NOT_AUTHORIZED,
        403: Condition.FORBIDDEN,
        603: Condition.FORBIDDEN,
        404: Condition.ITEM_NOT_FOUND,
        604: Condition.ITEM_NOT_FOUND,
        405: Condition.NOT_ALLOWED,
        488: Condition.NOT_ACCEPTABLE,
        606: Condition.NOT_ACCEPTABLE,
        486: Condition.SERVICE_UNAVAILABLE,
        480: Condition.SERVICE_UNAVAILABLE,
        600: Condition.SERVICE_UNAVAILABLE,
    }
)

def stanzaErrorForSIPEntryFailure(
    status: int, *, nickMissing: bool = False
) -> tuple[Condition, ErrorType]:
    """
    The presence error Gateway A returns to an XMPP user whose INVITE to the
    focus failed (SPEC E.5).

    @param status: the SIP final response, 300-699.
    @param nickMissing: the join presence had no nick (empty resourcepart):
        a 400 then means jid-malformed, otherwise bad-request.
    @return: condition and error type (XEP-0045's for entry errors, else
        RFC 6120's); statuses E.5 does not list map as E.2.
    @raise ValueError: as L{stanzaErrorForSIPStatus}.
    """
    condition = CONDITION_FOR_SIP_ENTRY_FAILURE.get(status)
    if condition is None and status == 400 and nickMissing:
        condition = Condition.JID_MALFORMED
    if condition is None:
        condition, _ = stanzaErrorForSIPStatus(status)
    return condition, mucErrorTypeFor(condition)


# E.5: removal and MUC status codes.


#: E.5, Gateway B, own removal: the cause of the Reason header (RFC 3326,
#: protocol "SIP") in the BYE to the SIP UA.  332 -> 503 is E.5's; the
#: others are IMPL: 301/307/321/322 -> 403 (removed, "as 307": the user may
#: no longer be in the room), 333 -> 500 (technical error at the room).
SIP_REASON_CAUSE_FOR_MUC_REMOVAL: Mapping[MUCStatus, int] = MappingProxyType(
    {
        MUCStatus.BANNED: 403,
        MUCStatus.KICKED: 403,
        MUCStatus.AFFILIATION_CHANGED: 403,
        MUCStatus.MEMBERS_ONLY: 403,
        MUCStatus.SHUTDOWN: 503,
        MUCStatus.TECHNICAL_ERROR: 500,
    }
)

#: E.5, Gateway B, another occupant's removal: the conference-info
#: disconnection-method of its deleted user.  301/307/321/322 -> booted and
#: 333 -> failed are E.5's; 332 -> booted is IMPL (the room, not the user,
#: ended it).  A plain unavailable presence is "departed"
#: (L{disconnectionMethodForMUCRemoval}).
DISCONNECTION_METHOD_FOR_MUC_REMOVAL: Mapping[MUCStatus, DisconnectionMethod] = (
    MappingProxyType(
        {
            MUCStatus.BANNED: DisconnectionMethod.BOOTED,
            MUCStatus.KICKED: DisconnectionMethod.BOOTED,
            MUCStatus.AFFILIATION_CHANGED: DisconnectionMethod.BOOTED,
            MUCStatus.MEMBERS_ONLY: DisconnectionMethod.BOOTED,
            MUCStatus.SHUTDOWN: DisconnectionMethod.BOOTED,
            MUCStatus.TECHNICAL_ERROR: DisconnectionMethod.FAILED,
        }
    )
)


def sipReasonCauseForMUCRemoval(statusCodes: Iterable[int]) -> int | None:
    """
    The Reason cause for the BYE Gateway B sends when the MUC removed the
    SIP user (SPEC E.5).

    @param statusCodes: the status codes of the own unavailable presence.
    @return: a SIP status for C{Reason: SIP;cause=...}, or L{None} for an
        ordinary leave (BYE without Reason).
    """
    status = removalStatus(statusCodes)
    return None if status is None else SIP_REASON_CAUSE_FOR_MUC_REMOVAL[status]


class GatewayBEnd(Enum):
    """
    Why Gateway B ends a SIP user's chat when no MUC status code says it
    (SPEC E.5 "room destroyed", and the gateway's own reasons).
    """

    #: The room was destroyed (XEP-0045 10.9: C{<destroy/>}, no code).
    ROOM_DESTROYED = "room-destroyed"
    #: The XMPP link did not come back, or the rejoin after it failed.
    LINK_LOST = "link-lost"


#: The C{Reason: SIP;cause=...} of the BYE for each L{GatewayBEnd}: 410
#: (Gone) for a destroyed room, 503 (Service Unavailable) when the XMPP
#: side is unreachable (RFC 3326 causes are SIP
#: status codes; these are the ones whose meaning fits).
SIP_REASON_CAUSE_FOR_GATEWAY_B_END: Mapping[GatewayBEnd, int] = MappingProxyType(
    {
        GatewayBEnd.ROOM_DESTROYED: 410,
        GatewayBEnd.LINK_LOST: 503,
    }
)

#: The MSRP status of a SEND or NICKNAME from a SIP user while the XMPP
#: link is down (the message cannot be delivered now; RFC 4975 section
#: 10.4's 408 says the next hop did not answer, and tells the client the
#: message did not arrive, which a 200 would hide).
MSRP_STATUS_LINK_DOWN = 408


def sipReasonCauseForGatewayBEnd(end: GatewayBEnd) -> int:
    """
    @return: the BYE's Reason cause for L{GatewayBEnd} C{end}.
    """
    return SIP_REASON_CAUSE_FOR_GATEWAY_B_END[end]


def disconnectionMethodForMUCRemoval(
    statusCodes: Iterable[int],
) -> DisconnectionMethod:
    """
    The disconnection-method Gateway B puts in the NOTIFY that deletes an
    occupant who went unavailable (SPEC E.5).

    @param statusCodes: the status codes of the unavailable presence.
    @return: booted/failed for a removal, departed for a leave.
    """
    status = removalStatus(statusCodes)
    if status is None:
        return DisconnectionMethod.DEPARTED
    return DISCONNECTION_METHOD_FOR_MUC_REMOVAL[status]


class Termination(Enum):
    """
    How the SIP/MSRP side ended Gateway A's participation (E.5, R-218).
    """

    #: BYE from the focus, or a NOTIFY deleting the own user as booted.
    FOCUS_BYE = "focus-bye"
    #: BYE whose Reason indicates shutdown (e.g. cause 503).
    SHUTDOWN = "shutdown"
    #: MSRP 481, MSRP connection loss, SIP dialog failure.
    TECHNICAL_FAILURE = "technical-failure"


#: E.5 / R-218, Gateway A: the status code of the own unavailable presence
#: (sent with 110) for each way the room side ended the session.
MUC_STATUS_FOR_TERMINATION: Mapping[Termination, MUCStatus] = MappingProxyType(
    {
        Termination.FOCUS_BYE: MUCStatus.KICKED,
        Termination.SHUTDOWN: MUCStatus.SHUTDOWN,
        Termination.TECHNICAL_FAILURE: MUCStatus.TECHNICAL_ERROR,
    }
)

#: R-218: the Reason causes of a focus BYE that mean the room shut down.
SIP_SHUTDOWN_CAUSES = frozenset({503})

#: E.5, Gateway A: the status code of an occupant's unavailable presence
#: for the disconnection-method of a deleted user in a NOTIFY (booted ->
#: 307, failed -> 333; departed and busy are ordinary leaves, no code).
MUC_STATUS_FOR_DISCONNECTION_METHOD: Mapping[DisconnectionMethod, MUCStatus] = (
    MappingProxyType(
        {
            DisconnectionMethod.BOOTED: MUCStatus.KICKED,
            DisconnectionMethod.FAILED: MUCStatus.TECHNICAL_ERROR,
        }
    )
)


def mucStatusForTermination(termination: Termination) -> MUCStatus:
    """
    @return: the status code, beside 110, of the own unavailable presence
        Gateway A sends when the room side ended the session (E.5, R-218).
    """
    return MUC_STATUS_FOR_TERMINATION[termination]


def mucStatusForSIPBye(reasonCause: int | None) -> MUCStatus:
    """
    The status code for the own unavailable presence after the focus sent
    Gateway A a BYE (E.5, R-218).

    @param reasonCause: the cause of the BYE's C{Reason: SIP;cause=...}
        header, if any.
    @return: 332 for a shutdown cause (L{SIP_SHUTDOWN_CAUSES}), 333 for
        another server-error cause (5xx: the focus failed), else 307 (the
        focus removed the user: kicked).
    """
    if reasonCause in SIP_SHUTDOWN_CAUSES:
        return mucStatusForTermination(Termination.SHUTDOWN)
    if reasonCause is not None and 500 <= reasonCause <= 599:
        return mucStatusForTermination(Termination.TECHNICAL_FAILURE)
    return mucStatusForTermination(Termination.FOCUS_BYE)


def mucStatusForDisconnectionMethod(
    method: DisconnectionMethod | str | None,
) -> MUCStatus | None:
    """
    The status code for an occupant's unavailable presence when a NOTIFY
    deletes its user (E.5, Gateway A).

    @param method: the endpoint's disconnection-method, if any (unknown
        values count as absent).
    @return: 307 (booted), 333 (failed), or L{None} (a plain leave).
    """
    try:
        known = DisconnectionMethod(method) if method is not None else None
    except ValueError:
        return None
    if known is None:
        return None
    return MUC_STATUS_FOR_DISCONNECTION_METHOD.get(known)
