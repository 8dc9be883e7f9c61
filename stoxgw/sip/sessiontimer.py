# -*- test-case-name: tests.sip.test_sessiontimer -*-
"""
Session timers for INVITE dialogs (RFC 4028): the negotiation rules, with
no clock and no network.

A session timer makes one side of a dialog (the I{refresher}) send a
session refresh request (a re-INVITE or an UPDATE) every so often; the
other side ends the dialog with a BYE when no refresh came in time.  That
is how the gateway notices a SIP peer that stopped answering without a
word (RFC 4028 section 1).

What this module decides:

 - as UAS of a session refresh request (the initial INVITE, a re-INVITE
   or an UPDATE; section 9): L{answerRequest} rejects a too small
   C{Session-Expires} with 422 and C{Min-SE} when the UAC supports the
   extension (L{IntervalTooSmall}), else picks the session interval (the
   request's, possibly reduced to ours, never below the request's
   C{Min-SE}, never increased) and the refresher (section 9 table 2: the
   UAC's choice when it made one, C{uas} when the UAC does not support
   the extension, else C{uac}: the peer refreshes and we watch), and
   gives the C{Session-Expires} (and C{Require: timer}) for the 2xx;
 - as UAC (section 7): L{requestHeaders} for the initial INVITE and for
   refreshes (section 7.4: the current interval and who refreshes),
   L{termsFromResponse} reads the 2xx (section 7.2: without a
   C{Session-Expires} in the answer, the UAC that asked refreshes alone),
   L{minimumOf} reads a 422's C{Min-SE} (section 7.3).

L{SessionTimerTerms.refreshDelay} and L{SessionTimerTerms.expiryDelay}
say when to refresh (half the interval, sections 7.2 and 9) and when the
non-refresher ends the session (the interval minus the smaller of 32 s
and a third of it, section 10); L{stoxgw.sip.invitedialog.InviteDialog} runs
the timers.
"""

from __future__ import annotations

from dataclasses import dataclass

from stoxgw.sip.headers import (
    HeaderError,
    SessionExpires,
    parseMinSE,
    parseTokenList,
)
from stoxgw.sip.message import SIPRequest, SIPResponse

__all__ = [
    "MIN_SE",
    "OPTION_TAG",
    "SessionTimerSettings",
    "SessionTimerTerms",
    "IntervalTooSmall",
    "supportsTimer",
    "answerRequest",
    "requestHeaders",
    "termsFromResponse",
    "minimumOf",
]

#: The smallest session interval anyone may ask for, and the C{Min-SE}
#: of a request without one (RFC 4028 sections 4 and 5).
MIN_SE = 90

#: The option tag (RFC 4028 section 3).
OPTION_TAG = "timer"


@dataclass(frozen=True, slots=True)
class SessionTimerSettings:
    """
    Our session timer policy (C{[sip] session_expires}, C{[sip] min_se}).

    @ivar interval: The session interval we ask for and the largest we
        grant, in seconds (RFC 4028 recommends 1800).
    @ivar minimum: Our C{Min-SE}: requests of a UAC that supports the
        extension asking for less get 422 (section 9); at least 90.
    """

    interval: int = 1800
    minimum: int = MIN_SE

    def __post_init__(self) -> None:
        if self.minimum < MIN_SE:
            raise ValueError(f"Min-SE below {MIN_SE} s (RFC 4028 section 5)")
        if self.interval < self.minimum:
            raise ValueError("session interval below Min-SE")


@dataclass(frozen=True, slots=True)
class SessionTimerTerms:
    """
    The session timer of a dialog as the last 2xx to a session refresh
    request set it (RFC 4028 sections 7.2 and 9).

    @ivar interval: The session interval, seconds.
    @ivar localRefresher: Whether we send the refreshes (else the peer
        does, and we end the session if none comes).
    @ivar minimum: The C{Min-SE} for our refresh requests (section 7.4:
        the largest seen on the dialog).
    """

    interval: int
    localRefresher: bool
    minimum: int = MIN_SE

    @property
    def refreshDelay(self) -> float:
        """
        Seconds after the 2xx when the refresher refreshes: half the
        interval (RFC 4028 sections 7.2 and 9, RECOMMENDED).
        """
        return self.interval / 2

    @property
    def expiryDelay(self) -> float:
        """
        Seconds after the 2xx when the session ends without a refresh:
        for the refresher, the session expiration; for the other side,
        slightly before it, by the smaller of 32 s and a third of the
        interval (RFC 4028 section 10, RECOMMENDED).
        """
        if self.localRefresher:
            return float(self.interval)
        return self.interval - min(32.0, self.interval / 3)

    @property
    def refresherParameter(self) -> str:
        """
        The C{refresher} of our refresh requests (RFC 4028 section 7.4:
        C{uac} when we refresh, C{uas} when the peer does).
        """
        return "uac" if self.localRefresher else "uas"


class IntervalTooSmall(Exception):
    """
    A session refresh request asked for less than our minimum: answer 422
    with C{Min-SE} (RFC 4028 sections 6 and 9).

    @ivar minimum: Our minimum, for the C{Min-SE} header.
    """

    def __init__(self, minimum: int) -> None:
        super().__init__(minimum)
        self.minimum = minimum

    def __str__(self) -> str:
        return f"session interval below {self.minimum} s"


def supportsTimer(message: SIPRequest | SIPResponse) -> bool:
    """
    Whether C{timer} is in the message's C{Supported} (compact C{k})
    header (RFC 4028 section 9: how a UAS learns that the UAC supports
    the extension); malformed lists count as no.
    """
    try:
        options = parseTokenList(message.headers.getLines("Supported"))
    except HeaderError:
        return False
    return any(option.lower() == OPTION_TAG for option in options)


def _sessionExpires(message: SIPRequest | SIPResponse) -> SessionExpires | None:
    """
    @raise HeaderError: Malformed.
    """
    value = message.header("Session-Expires")
    return None if value is None else SessionExpires.parse(value)


def minimumOf(message: SIPRequest | SIPResponse) -> int:
    """
    The C{Min-SE} of a message, 90 without one (RFC 4028 section 5).

    @raise HeaderError: Malformed.
    """
    value = message.header("Min-SE")
    return MIN_SE if value is None else max(parseMinSE(value), MIN_SE)


def answerRequest(
    request: SIPRequest, settings: SessionTimerSettings
) -> tuple[SessionTimerTerms, tuple[tuple[str, str], ...]]:
    """
    The UAS side of a session refresh request (RFC 4028 section 9).

    @return: The terms the 2xx sets and the header fields it carries
        (C{Session-Expires} with C{refresher}, and C{Require: timer} when
        the UAC supports the extension, a MUST for C{refresher=uac} and a
        SHOULD otherwise).
    @raise IntervalTooSmall: The UAC supports the extension and asked for
        less than C{settings.minimum}: answer 422.
    @raise HeaderError: A malformed C{Session-Expires} or C{Min-SE}.
    """
    supported = supportsTimer(request)
    asked = _sessionExpires(request)
    floor = minimumOf(request)
    if asked is not None:
        if supported and asked.interval < settings.minimum:
            raise IntervalTooSmall(max(settings.minimum, floor))
        if asked.interval <= floor:
            # Never below the request's Min-SE, never increased.
            interval = asked.interval
        else:
            interval = max(floor, min(asked.interval, settings.interval))
        requested = asked.refresher
    else:
        interval = max(settings.interval, floor)
        requested = None
    if not supported:
        refresher = "uas"
    elif requested is not None:
        refresher = requested
    else:
        # Table 2, fourth row: ours to choose.  The peer refreshes and we
        # watch: one request per dialog and interval from each SIP user
        # instead of all of them from the gateway.
        refresher = "uac"
    expires = SessionExpires(interval).withRefresher(refresher)
    headers: list[tuple[str, str]] = [("Session-Expires", expires.serialize())]
    if supported:
        headers.append(("Require", OPTION_TAG))
    terms = SessionTimerTerms(
        interval,
        localRefresher=refresher == "uas",
        minimum=max(floor, settings.minimum),
    )
    return terms, tuple(headers)


def requestHeaders(
    interval: int, minimum: int, refresher: str | None = None
) -> list[tuple[str, str]]:
    """
    The session timer header fields of a session refresh request we send
    (RFC 4028 section 7.1 for the initial INVITE: no C{refresher}, so
    that the UAS chooses; section 7.4 for refreshes: the current interval
    and C{refresher} as it stands).  C{Supported: timer} comes with the
    UA's capabilities.
    """
    expires = SessionExpires(max(interval, minimum))
    if refresher is not None:
        expires = expires.withRefresher(refresher)
    return [("Session-Expires", expires.serialize()), ("Min-SE", str(minimum))]


def termsFromResponse(
    response: SIPResponse, requested: int, minimum: int = MIN_SE
) -> SessionTimerTerms:
    """
    The terms a 2xx to our session refresh request sets (RFC 4028 section
    7.2): its C{Session-Expires} and C{refresher} (C{uac}: we refresh);
    without one, the UAS does not support the extension and we refresh
    alone with the interval we asked for.  A malformed C{Session-Expires}
    is treated as absent, an interval below 90 s (which no UAS may give,
    section 4) as 90 s, so that a peer cannot make us refresh in a loop
    (section 11).
    """
    try:
        answered = _sessionExpires(response)
    except HeaderError:
        answered = None
    if answered is None:
        return SessionTimerTerms(requested, localRefresher=True, minimum=minimum)
    return SessionTimerTerms(
        max(answered.interval, MIN_SE),
        localRefresher=answered.refresher != "uas",
        minimum=minimum,
    )
