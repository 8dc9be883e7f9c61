# -*- test-case-name: tests.interworking.test_errors -*-
"""
The MSRP rows of the gateway's status <-> condition tables (SPEC.md
section E): E.3, an MSRP response from the switch -> XMPP (Gateway A,
L{stanzaErrorForMSRPStatus}); E.4, an XMPP/MUC error or a local failure ->
MSRP response (Gateway B, L{msrpStatusForStanzaError},
L{msrpStatusForLocalFailure}); E.8, the MSRP status codes a groupchat
gateway uses (L{MSRP_STATUS_PHRASES}).  Also L{_statusClass}, the class
of a SIP or MSRP status code.

L{stoxgw.interworking.errors} holds the SIP rows and exports every public
name of this module: other modules import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from types import MappingProxyType

from stoxgw.msrp.message import MSRPMethod
from stoxgw.xmpp.stanzas import ERROR_TYPES, Condition, ErrorType, asCondition


def _statusClass(status: int) -> int:
    """
    @return: the first digit of a three-digit status code, or 0 for a
        number that is not one.
    """
    if not 100 <= status <= 699:
        return 0
    return status // 100


# E.3: MSRP response from the switch -> XMPP (Gateway A).


#: E.3: the stanza error for an MSRP failure response to a request of the
#: given method; C{None} as method: any method.  Types are RFC 6120's except
#: 403 to NICKNAME, whose C{<not-acceptable/>} is "cancel" as E.3 says
#: (XEP-0045 uses "cancel" for a refused nick; RFC 6120 8.3.3.9 says
#: "modify", but changing the nick will not help when the switch forbids
#: nicknames).  Rows: 425 NICKNAME RFC 7702 section 5.6 (and 7701 section
#: 10.3); the others "proposed" in E.3, from RFC 7701 section 6/7.1/10.3,
#: RFC 4975 sections 10.5/10.6/10.9 and RFC 7247 Table 3.
STANZA_ERROR_FOR_MSRP_STATUS: Mapping[
    tuple[int, MSRPMethod | None], tuple[Condition, ErrorType]
] = MappingProxyType(
    {
        (425, MSRPMethod.NICKNAME): (Condition.CONFLICT, ErrorType.CANCEL),
        (424, MSRPMethod.NICKNAME): (Condition.JID_MALFORMED, ErrorType.MODIFY),
        (403, MSRPMethod.NICKNAME): (Condition.NOT_ACCEPTABLE, ErrorType.CANCEL),
        (501, MSRPMethod.NICKNAME): (
            Condition.FEATURE_NOT_IMPLEMENTED,
            ErrorType.CANCEL,
        ),
        (403, MSRPMethod.SEND): (Condition.FORBIDDEN, ErrorType.AUTH),
        (404, MSRPMethod.SEND): (Condition.ITEM_NOT_FOUND, ErrorType.CANCEL),
        (428, MSRPMethod.SEND): (Condition.FEATURE_NOT_IMPLEMENTED, ErrorType.CANCEL),
        (415, MSRPMethod.SEND): (Condition.NOT_ACCEPTABLE, ErrorType.MODIFY),
        (413, MSRPMethod.SEND): (Condition.POLICY_VIOLATION, ErrorType.MODIFY),
        (413, MSRPMethod.REPORT): (Condition.POLICY_VIOLATION, ErrorType.MODIFY),
        (400, None): (Condition.BAD_REQUEST, ErrorType.MODIFY),
        (408, None): (Condition.REMOTE_SERVER_TIMEOUT, ErrorType.WAIT),
        (506, None): (Condition.INTERNAL_SERVER_ERROR, ErrorType.CANCEL),
    }
)

#: E.3 fallback for MSRP failure codes without a row (IMPL, by analogy with
#: RFC 7247 section 7.2's class fallback): 4xx bad-request, 5xx
#: internal-server-error.
CONDITION_FOR_MSRP_CLASS: Mapping[int, Condition] = MappingProxyType(
    {
        4: Condition.BAD_REQUEST,
        5: Condition.INTERNAL_SERVER_ERROR,
    }
)

#: E.3: the MSRP status that ends the session rather than one message: 481,
#: "treat as exit" with an unavailable 110 + 333 presence (RFC 4975 section
#: 10.8; R-218).  506 (session bound to another connection) is an internal
#: error after which the session is re-established, not ended.
MSRP_STATUSES_ENDING_SESSION = frozenset({481})

#: E.3: the code to translate a request that got no response in time (RFC
#: 4975 section 7.1.1, 30 s) with: treated like a downstream 408.
MSRP_STATUS_LOCAL_TIMEOUT = 408


def stanzaErrorForMSRPStatus(
    code: int, method: MSRPMethod = MSRPMethod.SEND
) -> tuple[Condition, ErrorType]:
    """
    The XMPP error for an MSRP failure the switch returned (SPEC E.3,
    Gateway A).

    A failure REPORT (C{Status: 000 <code>}, RFC 4975 section 7.1.4) for a
    SEND maps like a response with that code to the SEND; a local timeout
    like a 408 (L{MSRP_STATUS_LOCAL_TIMEOUT}).  481 ends the whole session
    (L{msrpStatusEndsSession}): the caller removes the occupant with 110 +
    333 instead of, or after, bouncing the message.

    @param code: the MSRP status code, 400-599.
    @param method: the request it answers.
    @return: the condition and error type for the presence error (NICKNAME)
        or message error (SEND, REPORT).
    @raise ValueError: for a code that is not an MSRP failure (e.g. 200).
    """
    for key in ((code, method), (code, None)):
        if key in STANZA_ERROR_FOR_MSRP_STATUS:
            return STANZA_ERROR_FOR_MSRP_STATUS[key]
    condition = CONDITION_FOR_MSRP_CLASS.get(_statusClass(code))
    if condition is None:
        raise ValueError(f"MSRP status {code} is not a failure")
    return condition, ERROR_TYPES[condition]


def msrpStatusEndsSession(code: int) -> bool:
    """
    @return: whether MSRP C{code} means the session is gone (481, RFC 4975
        section 10.8), so Gateway A treats it as an exit (E.3, R-218).
    """
    return code in MSRP_STATUSES_ENDING_SESSION


# E.4: XMPP/MUC error -> MSRP response (Gateway B).


class MUCExchange(Enum):
    """
    What Gateway B was doing in the MUC when the error came back: E.4 maps
    the same condition differently for each.
    """

    #: Joining or changing nick: presence error, answered on the NICKNAME.
    NICKNAME = "nickname"
    #: A groupchat message to the room: answered on the SEND.
    GROUPCHAT = "groupchat"
    #: A private message to an occupant: answered on the SEND.
    PRIVATE = "private"


#: E.4: conditions whose MSRP status depends on the exchange.  NICKNAME:
#: conflict -> 425 (RFC 7702 section 6.4), not-acceptable (nick locked to
#: the reserved one) -> 425, jid-malformed -> 424 (RFC 7701 section 7.1),
#: not-allowed/forbidden -> 403.  GROUPCHAT: forbidden (visitor in a
#: moderated room) -> 403, not-acceptable (not an occupant) -> 403.
#: PRIVATE: item-not-found -> 404 (RFC 7701 section 6.2), PMs refused
#: (not-allowed/forbidden) -> 428.  All "proposed" except the 425 for
#: conflict.
MSRP_STATUS_FOR_EXCHANGE_CONDITION: Mapping[tuple[MUCExchange, Condition], int] = (
    MappingProxyType(
        {
            (MUCExchange.NICKNAME, Condition.CONFLICT): 425,
            (MUCExchange.NICKNAME, Condition.NOT_ACCEPTABLE): 425,
            (MUCExchange.NICKNAME, Condition.JID_MALFORMED): 424,
            (MUCExchange.NICKNAME, Condition.NOT_ALLOWED): 403,
            (MUCExchange.NICKNAME, Condition.FORBIDDEN): 403,
            (MUCExchange.GROUPCHAT, Condition.FORBIDDEN): 403,
            (MUCExchange.GROUPCHAT, Condition.NOT_ACCEPTABLE): 403,
            (MUCExchange.PRIVATE, Condition.ITEM_NOT_FOUND): 404,
            (MUCExchange.PRIVATE, Condition.NOT_ALLOWED): 428,
            (MUCExchange.PRIVATE, Condition.FORBIDDEN): 428,
        }
    )
)

#: E.4: conditions mapped the same in every exchange: bad-request -> 400;
#: policy-violation/resource-constraint (size, rate) -> 413;
#: service-unavailable, internal-server-error, remote-server-not-found ->
#: 403 (avoiding a 5xx-style meaning, cf. RFC 7247 section 7.1 note 5);
#: remote-server-timeout -> 408.
MSRP_STATUS_FOR_CONDITION: Mapping[Condition, int] = MappingProxyType(
    {
        Condition.BAD_REQUEST: 400,
        Condition.POLICY_VIOLATION: 413,
        Condition.RESOURCE_CONSTRAINT: 413,
        Condition.SERVICE_UNAVAILABLE: 403,
        Condition.INTERNAL_SERVER_ERROR: 403,
        Condition.REMOTE_SERVER_NOT_FOUND: 403,
        Condition.REMOTE_SERVER_TIMEOUT: 408,
    }
)

#: E.4: the MSRP status for any other condition (IMPL: 403, "not allowed",
#: the one MSRP failure that promises nothing about the session).
MSRP_STATUS_FALLBACK = 403


def msrpStatusForStanzaError(
    condition: Condition | str, exchange: MUCExchange = MUCExchange.GROUPCHAT
) -> int:
    """
    The MSRP response Gateway B returns for an error from the MUC (SPEC
    E.4).

    @param condition: the stanza error condition the MUC returned (unknown
        names are undefined-condition).
    @param exchange: what the error answered.
    @return: an MSRP status code (L{MSRP_STATUS_FALLBACK} when E.4 has no
        row).
    """
    known = asCondition(condition)
    status = MSRP_STATUS_FOR_EXCHANGE_CONDITION.get((exchange, known))
    if status is None:
        status = MSRP_STATUS_FOR_CONDITION.get(known, MSRP_STATUS_FALLBACK)
    return status


class LocalMSRPFailure(Enum):
    """
    Failures Gateway B detects itself, before anything reaches the MUC
    (SPEC E.4, lower rows).
    """

    #: The SEND carries no C{message/cpim} wrapper (RFC 7701 section 6.3).
    NO_CPIM_WRAPPER = "no-cpim-wrapper"
    #: No CPIM To: neither the room nor a participant is named, so the
    #: message is neither a room message nor a private one (RFC 7701
    #: sections 6.1, 6.2); malformed, as the native focus answers.
    NO_CPIM_TO = "no-cpim-to"
    #: More than one CPIM To (RFC 7701 sections 6.1-6.3).
    MULTIPLE_CPIM_TO = "multiple-cpim-to"
    #: The CPIM From is not the sender (RFC 7701 sections 6.1-6.3).
    INVALID_CPIM_FROM = "invalid-cpim-from"
    #: The CPIM To is not a participant (RFC 7701 section 6.2).
    UNKNOWN_RECIPIENT = "unknown-recipient"
    #: The recipient or room cannot take private messages (RFC 7701 6.2).
    PRIVATE_MESSAGES_UNSUPPORTED = "private-messages-unsupported"
    #: The message is over the size limit (RFC 7573 section 8).
    TOO_LARGE = "too-large"
    #: The To-Path names no session (RFC 4975 section 7.3).
    UNKNOWN_SESSION = "unknown-session"


#: E.4, local rows (all MUST in the cited RFC).
MSRP_STATUS_FOR_LOCAL_FAILURE: Mapping[LocalMSRPFailure, int] = MappingProxyType(
    {
        LocalMSRPFailure.NO_CPIM_WRAPPER: 415,
        LocalMSRPFailure.NO_CPIM_TO: 400,
        LocalMSRPFailure.MULTIPLE_CPIM_TO: 403,
        LocalMSRPFailure.INVALID_CPIM_FROM: 403,
        LocalMSRPFailure.UNKNOWN_RECIPIENT: 404,
        LocalMSRPFailure.PRIVATE_MESSAGES_UNSUPPORTED: 428,
        LocalMSRPFailure.TOO_LARGE: 413,
        LocalMSRPFailure.UNKNOWN_SESSION: 481,
    }
)


def msrpStatusForLocalFailure(failure: LocalMSRPFailure) -> int:
    """
    @return: the MSRP status for a failure Gateway B detects itself (SPEC
        E.4, L{MSRP_STATUS_FOR_LOCAL_FAILURE}).
    """
    return MSRP_STATUS_FOR_LOCAL_FAILURE[failure]


# E.8: MSRP status codes.

#: E.8: the MSRP status codes a groupchat gateway sends or understands,
#: with a reason phrase (free text, RFC 4975 section 7.2) and the section
#: defining them.
MSRP_STATUS_PHRASES: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        200: ("OK", "RFC 4975 section 10.1"),
        400: ("Bad Request", "RFC 4975 section 10.2"),
        403: ("Forbidden", "RFC 4975 section 10.3; RFC 7701 sections 6, 7.1"),
        404: ("Not Found", "RFC 7701 section 10.3"),
        408: ("Request Timeout", "RFC 4975 section 10.4"),
        413: ("Stop Sending", "RFC 4975 section 10.5; RFC 7573 section 8"),
        415: ("Unsupported Media Type", "RFC 4975 section 10.6; RFC 7701 6.3"),
        423: ("Parameter Out Of Bounds", "RFC 4975 section 10.7"),
        424: ("Nickname Malformed", "RFC 7701 section 10.3"),
        425: ("Nickname Reserved Or Already In Use", "RFC 7701 section 10.3"),
        428: ("Private Messages Not Supported", "RFC 7701 section 10.3"),
        481: ("Session Does Not Exist", "RFC 4975 section 10.8"),
        501: ("Not Implemented", "RFC 4975 section 10.9"),
        506: ("Session Already Bound", "RFC 4975 section 10.10"),
    }
)


def msrpReasonPhrase(code: int) -> str:
    """
    @return: the E.8 reason phrase for MSRP C{code}, or a generic one by
        class for a code E.8 does not list.
    """
    if code in MSRP_STATUS_PHRASES:
        return MSRP_STATUS_PHRASES[code][0]
    return {2: "OK", 4: "Request Failed", 5: "Server Failure"}.get(
        _statusClass(code), "Unknown"
    )
