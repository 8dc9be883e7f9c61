# -*- test-case-name: tests.sip.test_subscription -*-
"""
SIP-specific event notification (RFC 6665): the subscription dialog
usages of both roles, on top of the UA core (L{SIPUserAgent}).

L{SIPEvents} is the one object per UA that owns every subscription.  It
takes out-of-dialog SUBSCRIBEs (an L{IRequestHandler}) and, as an
L{IDialogUsageHandler}, SUBSCRIBE and NOTIFY requests carrying a To tag:
inside a dialog it made, inside an INVITE dialog of the UA core (RFC 7702
puts the conference subscription in or out of the INVITE dialog; RFC 5057
calls each a "dialog usage"), or a NOTIFY that arrives before the 2xx of
our SUBSCRIBE (RFC 6665 section 4.1.2.4: it creates the dialog).  A dialog
hosting usages stays known here until its last usage ends, so a
subscription in an INVITE dialog survives that dialog's BYE (RFC 5057
section 5).

Notifier (RFC 6665 section 4.2): an L{IEventPackage} per package name
(C{489} with Allow-Events for others, section 4.2.1.1) authorizes the
SUBSCRIBE and gives the state; C{423} with Min-Expires for a too brief
Expires; C{200} with the granted Expires (never longer than asked, 4.2.1.1);
the NOTIFY with the full state follows at once (4.2.1.2: it may overtake
the 200); a refresh (re-SUBSCRIBE in the dialog) updates the expiry and
sends the full state again; C{Expires: 0} (and the expiry timer) end it
with C{Subscription-State: terminated;reason=timeout} (4.2.1.4);
L{NotifierSubscription.notify} sends state changes and
L{NotifierSubscription.terminate} ends it with a reason (4.1.3); a NOTIFY
answered with one of the section 4.2.2 codes (or timing out) removes the
subscription.

Subscriber (RFC 6665 section 4.1): L{SIPEvents.subscribe} sends a SUBSCRIBE
(out of dialog, or in an existing dialog) and returns a
L{ClientSubscription}; NOTIFYs are answered C{200} (C{481} when no
subscription matches, C{400} without Subscription-State) and handed to its
L{ISubscriptionHandler}; the subscription is refreshed before it expires,
ended with L{ClientSubscription.unsubscribe}, and follows the termination
reasons in a simplified way (section 4.1.3: C{deactivated} and C{timeout}
re-subscribe at once, C{probation} and C{giveup} after C{retry-after} when
given, the others end it).  Timer N (64*T1) ends a subscription that never
got a NOTIFY.

For the C{conference} package (RFC 4575) L{ConferencePackage} and
L{ConferenceNotifier} serve full documents on subscribe and refresh and
partial ones (L{stoxgw.formats.conferenceinfo.diff}) on change, with a
version counter per subscription (RFC 4575 section 5.2, R-176), and
L{ConferenceWatcher} merges received documents
(L{stoxgw.formats.conferenceinfo.applyNotification}) and re-subscribes
when a partial document shows a gap (R-180).

Not done: C{pending} subscriptions on the notifier side (policy is decided
at once), forked SUBSCRIBEs (NOTIFYs from a second notifier get 481),
throttling, and the RFC 6665 section 4.5 GRUU rules.
"""

from __future__ import annotations

import math
import secrets
from collections import deque
from dataclasses import dataclass, replace
from enum import Enum
from functools import partial
from typing import Any, Callable, Mapping, Sequence, Union

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Attribute, Interface, implementer

from stoxgw.formats.conferenceinfo import (
    CONFERENCE_EVENT_PACKAGE,
    CONFERENCE_INFO_CONTENT_TYPE,
    ConferenceInfo,
    ConferenceInfoError,
    MergeOutcome,
    applyNotification,
    diff,
)
from stoxgw.sip.dialog import Dialog, DialogError, DialogID, DialogRole, dialogIDOf
from stoxgw.sip.headers import (
    Event,
    HeaderError,
    MediaType,
    SubscriptionState,
    parseExpires,
)
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.uri import URI, NameAddr, SIPURI
from stoxgw.sip.useragent import (
    IDialogUsageHandler,
    IncomingRequest,
    IRequestHandler,
    SIPError,
    SIPUserAgent,
)

__all__ = [
    "SubscriptionStatus",
    "SUBSCRIPTION_TRANSITIONS",
    "SubscriptionReason",
    "NOTIFY_FAILURE_STATUSES",
    "NotifyBody",
    "SKIP_NOTIFY",
    "SubscriptionSettings",
    "IEventPackage",
    "IContactParameters",
    "ISubscriptionHandler",
    "NotifierSubscription",
    "ClientSubscription",
    "SIPEvents",
    "ConferenceNotifier",
    "ConferencePackage",
    "ConferenceWatcher",
]


class SubscriptionStatus(Enum):
    """
    Subscription states (RFC 6665 sections 4.1.2 and 4.2.2 state
    diagrams; C{NOTIFY_WAIT} is the subscriber's wait for the first
    NOTIFY, the notifier's C{resp_wait} is never visible here).
    """

    INIT = "init"
    NOTIFY_WAIT = "notify_wait"
    PENDING = "pending"
    ACTIVE = "active"
    TERMINATED = "terminated"


#: Allowed subscription state transitions.  Back to C{NOTIFY_WAIT} is a
#: re-subscription after C{deactivated}/C{timeout}/C{probation}
#: (RFC 6665 section 4.1.3).
SUBSCRIPTION_TRANSITIONS: Mapping[SubscriptionStatus, frozenset[SubscriptionStatus]] = {
    SubscriptionStatus.INIT: frozenset(
        {
            SubscriptionStatus.NOTIFY_WAIT,
            SubscriptionStatus.PENDING,
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.TERMINATED,
        }
    ),
    SubscriptionStatus.NOTIFY_WAIT: frozenset(
        {
            SubscriptionStatus.PENDING,
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.TERMINATED,
        }
    ),
    SubscriptionStatus.PENDING: frozenset(
        {
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.NOTIFY_WAIT,
            SubscriptionStatus.TERMINATED,
        }
    ),
    SubscriptionStatus.ACTIVE: frozenset(
        {SubscriptionStatus.NOTIFY_WAIT, SubscriptionStatus.TERMINATED}
    ),
    SubscriptionStatus.TERMINATED: frozenset(),
}


class SubscriptionReason(Enum):
    """
    Why a subscription ended: the RFC 6665 section 4.1.3 reason codes
    (sent and received in Subscription-State) and local causes (never
    sent).
    """

    DEACTIVATED = "deactivated"
    PROBATION = "probation"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    GIVEUP = "giveup"
    NORESOURCE = "noresource"
    INVARIANT = "invariant"
    #: Local: the peer answered our NOTIFY with a section 4.2.2 code or
    #: it timed out.
    NOTIFY_FAILED = "local: NOTIFY failed"
    #: Local: our SUBSCRIBE (or refresh) got a failure response.
    SUBSCRIBE_FAILED = "local: SUBSCRIBE failed"
    #: Local: Timer N fired without a NOTIFY (RFC 6665 section 4.1.2.4).
    NO_NOTIFY = "local: no NOTIFY"
    #: Local: a terminated NOTIFY without (or with an unknown) reason.
    UNKNOWN = "local: no reason"
    #: Local: the UA is going away.
    SHUTDOWN = "local: shutdown"

    @property
    def isProtocolReason(self) -> bool:
        """
        Whether this reason is an RFC 6665 token (may go on the wire).
        """
        return not self.value.startswith("local:")

    @classmethod
    def fromToken(cls, token: str | None) -> SubscriptionReason:
        """
        The reason for a received C{reason} parameter (L{UNKNOWN} when
        absent or not defined).
        """
        for reason in cls:
            if reason.isProtocolReason and reason.value == (token or "").lower():
                return reason
        return cls.UNKNOWN


#: NOTIFY responses that remove the subscription (RFC 6665 section 4.2.2;
#: 408 stands for timer F).
NOTIFY_FAILURE_STATUSES = frozenset(
    {404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604}
)


@dataclass(frozen=True, slots=True)
class NotifyBody:
    """
    The body of a NOTIFY.

    @ivar body: The octets.
    @ivar contentType: Its Content-Type value.
    """

    body: bytes
    contentType: str


@dataclass(frozen=True, slots=True)
class SubscriptionSettings:
    """
    Subscription policy (configuration).

    @ivar minExpires: Shorter non-zero SUBSCRIBE Expires values get C{423}
        with this Min-Expires (RFC 6665 section 4.2.1.1 allows it only
        below one hour).
    @ivar maxExpires: Longer requested durations are shortened to this.
    @ivar referExpires: Duration of REFER's implicit subscriptions (RFC
        3515 section 2.4.4: the recipient chooses).
    @ivar maxResubscribes: Consecutive re-subscriptions after a
        terminated NOTIFY before giving up.
    """

    minExpires: int = 60
    maxExpires: int = 3600
    referExpires: int = 60
    maxResubscribes: int = 3


class IEventPackage(Interface):
    """
    The notifier side of one event package (RFC 6665 section 7): who may
    subscribe, and the state to send.
    """

    name = Attribute("The package name (C{conference}), lower case.")
    defaultExpires = Attribute(
        "Subscription duration when SUBSCRIBE has no Expires (RFC 6665 "
        "section 3.1.1: the package defines it)."
    )
    contentTypes = Attribute(
        "The body types the package sends (checked against Accept; empty: " "no check)."
    )

    def authorize(request: IncomingRequest) -> int | None | Deferred[int | None]:
        """
        A new SUBSCRIBE for this package arrived (refreshes are not
        asked again).

        @return: L{None} to accept, or the failure status to answer (404
            for an unknown resource, 403...); or a L{Deferred} firing with
            one of those when the answer has to wait (briefly: the
            subscriber's transaction times out after 32 s, RFC 3261
            Timer F).
        """

    def subscriptionStarted(subscription: NotifierSubscription) -> None:
        """
        The subscription exists (its 200 was sent); called before the
        first L{fullState}.
        """

    def fullState(subscription: NotifierSubscription) -> NotifyBody | None:
        """
        The body of the NOTIFY that follows a subscribe, refresh or
        unsubscribe (full state; L{None}: no body).
        """

    def subscriptionEnded(
        subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        """
        The subscription is gone (expired, unsubscribed, terminated, or
        its NOTIFY failed).
        """


class IContactParameters(Interface):
    """
    Optional for an L{IEventPackage}: header parameters for our Contact
    in the 200 to a new out-of-dialog SUBSCRIBE (the Contact of the
    dialog it makes), e.g. C{isfocus} when we answer as a conference
    focus (RFC 4579 section 3.3, RFC 7702 section 5.3 example 8).
    """

    def contactParameters(
        request: IncomingRequest,
    ) -> Sequence[tuple[str, str | None]]:
        """
        The parameters for the Contact answering C{request}.
        """


class ISubscriptionHandler(Interface):
    """
    The subscriber's application side of a L{ClientSubscription}.
    """

    def notifyReceived(subscription: ClientSubscription, request: SIPRequest) -> None:
        """
        A NOTIFY (already answered C{200}) arrived: its body carries the
        state; C{subscription.status} is updated from its
        Subscription-State before this call.
        """

    def subscriptionEnded(
        subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        """
        The subscription ended for good (no re-subscription follows).
        """


def _now(events: SIPEvents) -> float:
    return events.ua.clock.seconds()


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()


@dataclass(slots=True)
class _QueuedNotify:
    """
    A NOTIFY waiting for its turn (L{NotifierSubscription}).

    @ivar makeBody: Gives the body when the NOTIFY is sent; L{SKIP_NOTIFY}
        drops it.
    @ivar final: Whether it terminates the subscription.
    @ivar parameters: The C{terminated} state's parameters (final only).
    @ivar result: Fires with its response, or L{None} for a coalesced one.
    @ivar coalesce: Whether later changes fold into it while it waits.
    """

    makeBody: Callable[[], NotifyBody | None | object]
    final: bool = False
    parameters: tuple[tuple[str, str | None], ...] = ()
    result: Deferred[SIPResponse] | None = None
    coalesce: bool = False


#: What a body maker of L{NotifierSubscription.notifyChanged} returns when
#: nothing changed since the last NOTIFY: none is sent.
SKIP_NOTIFY = object()


class NotifierSubscription:
    """
    A subscription we serve (RFC 6665 section 4.2).

    Its NOTIFYs go one at a time: the next one is sent once the previous
    one has its final response (or failed), so that they arrive in order
    over UDP too (RFC 6665 section 4.2.2 only orders them by CSeq, which a
    subscriber cannot wait on; RFC 4575 section 4.4 partial documents
    need every version, SPEC F.1 item 9).  The body of a queued NOTIFY is
    made when it is sent, so a full state or a partial one is computed
    from what was actually sent before it; changes made while a partial
    NOTIFY waits fold into it (L{notifyChanged}).  A final NOTIFY drops
    the ones still waiting.

    @ivar events: The owner.
    @ivar dialog: Its dialog (shared with other usages).
    @ivar package: Its event package.
    @ivar event: The Event header as the subscriber sent it (echoed in
        NOTIFYs, C{id} included).
    @ivar request: The SUBSCRIBE that made it.
    @ivar status: The state.
    @ivar expiresAt: Clock time when it expires.
    @ivar reason: Why it ended, once terminated.
    @ivar context: Free for the package (e.g. the conference it watches).
    """

    _log = Logger()

    def __init__(
        self,
        events: SIPEvents,
        dialog: Dialog,
        package: IEventPackage,
        event: Event,
        request: SIPRequest,
        expires: int,
    ) -> None:
        self.events = events
        self.dialog = dialog
        self.package = package
        self.event = event
        self.request = request
        self.status = SubscriptionStatus.INIT
        self.expiresAt = _now(events) + expires
        self.reason: SubscriptionReason | None = None
        self.context: Any = None
        self._timer: IDelayedCall | None = None
        self._queue: deque[_QueuedNotify] = deque()
        self._inFlight: Deferred[SIPResponse] | None = None
        self._schedule(expires)

    @property
    def remaining(self) -> int:
        """
        Seconds until it expires (rounded up).
        """
        return max(0, math.ceil(self.expiresAt - _now(self.events)))

    @property
    def notifying(self) -> bool:
        """
        Whether a NOTIFY is waiting for its final response.
        """
        return self._inFlight is not None

    def _transition(self, new: SubscriptionStatus) -> bool:
        if new is self.status or new not in SUBSCRIPTION_TRANSITIONS[self.status]:
            return False
        self.status = new
        return True

    def _schedule(self, expires: int) -> None:
        _cancel(self._timer)
        self.expiresAt = _now(self.events) + expires
        self._timer = self.events.ua.clock.callLater(expires, self._expired)

    def _expired(self) -> None:
        self._timer = None
        self._log.info(
            "Subscription to {package} expired",
            package=self.event.package,
            callID=self.dialog.callID,
        )
        self.terminate(SubscriptionReason.TIMEOUT)

    def matches(self, event: Event) -> bool:
        """
        Whether an Event header names this subscription (RFC 6665
        section 8.2.1: package and C{id}).
        """
        return self.event.matches(event)

    def notify(self, body: NotifyBody | None = None) -> Deferred[SIPResponse]:
        """
        Send a NOTIFY with C{Subscription-State: active;expires=N} (RFC
        6665 section 4.2.2), after the ones before it.

        @return: Its response; fails with L{DialogError} if the
            subscription ends before it is sent.
        @raise DialogError: The subscription is terminated.
        """
        return self._enqueue(lambda: body)

    def notifyFullState(self) -> Deferred[SIPResponse]:
        """
        L{notify} with the package's full state, made when the NOTIFY is
        sent (L{fullState}).
        """
        return self._enqueue(self.fullState)

    def notifyChanged(self, makeBody: Callable[[], NotifyBody | object]) -> None:
        """
        The state changed: send a NOTIFY whose body C{makeBody} gives when
        it is sent (L{SKIP_NOTIFY}: nothing to send).  While one such
        NOTIFY waits, further changes are folded into it, so C{makeBody}
        should give the change since the last body it made.
        """
        if self.status is SubscriptionStatus.TERMINATED:
            return
        if self._queue and self._queue[-1].coalesce:
            self._queue[-1].makeBody = makeBody
            return
        self._transition(SubscriptionStatus.ACTIVE)
        self._queue.append(_QueuedNotify(makeBody, coalesce=True))
        self._sendNext()

    def fullState(self) -> NotifyBody | None:
        """
        The package's full state; a failing package is logged and the
        NOTIFY goes without a body (RFC 6665 section 4.2.1.2 allows an
        empty one).
        """
        try:
            return self.package.fullState(self)
        except Exception as e:
            self._log.failure(
                "Event package failed in fullState",
                error=e,
                callID=self.dialog.callID,
            )
            return None

    def _enqueue(
        self, makeBody: Callable[[], NotifyBody | None | object]
    ) -> Deferred[SIPResponse]:
        if self.status is SubscriptionStatus.TERMINATED:
            raise DialogError("Subscription is terminated")
        self._transition(SubscriptionStatus.ACTIVE)
        entry = _QueuedNotify(makeBody, result=Deferred())
        self._queue.append(entry)
        self._sendNext()
        assert entry.result is not None
        return entry.result

    def terminate(
        self,
        reason: SubscriptionReason = SubscriptionReason.DEACTIVATED,
        body: NotifyBody | None = None,
        retryAfter: int | None = None,
    ) -> Deferred[SIPResponse] | None:
        """
        End the subscription with a final NOTIFY
        C{Subscription-State: terminated;reason=...} (RFC 6665 section
        4.2.2; L{SubscriptionReason.DEACTIVATED} asks the subscriber to
        re-subscribe at once, C{NORESOURCE} not to).  NOTIFYs not sent
        yet are dropped; the final one waits for the one in flight.

        @return: The NOTIFY's result, or L{None} if already terminated.
        """
        if self.status is SubscriptionStatus.TERMINATED:
            return None
        params: list[tuple[str, str | None]] = []
        if reason.isProtocolReason:
            params.append(("reason", reason.value))
        if retryAfter is not None:
            params.append(("retry-after", str(retryAfter)))
        self.end(reason)
        entry = _QueuedNotify(
            lambda: body, final=True, parameters=tuple(params), result=Deferred()
        )
        self._queue.append(entry)
        self._sendNext()
        assert entry.result is not None
        return entry.result

    def _dropQueued(self) -> None:
        while self._queue:
            entry = self._queue.popleft()
            if entry.result is not None:
                entry.result.errback(DialogError("Subscription is terminated"))

    def _sendNext(self) -> None:
        while self._inFlight is None and self._queue:
            entry = self._queue.popleft()
            body = entry.makeBody()
            if body is SKIP_NOTIFY:
                continue
            assert body is None or isinstance(body, NotifyBody)
            if entry.final:
                state = SubscriptionState("terminated", entry.parameters)
            else:
                state = SubscriptionState(
                    "active", (("expires", str(self.remaining)),)
                )
            d = self._inFlight = self._sendNotify(state, body, entry.final)
            d.addBoth(self._answered, d)
            if entry.result is not None:
                d.chainDeferred(entry.result)
            else:
                d.addErrback(lambda _: None)

    def _answered(self, result: Any, d: Deferred[SIPResponse]) -> Any:
        if self._inFlight is d:
            self._inFlight = None
            self._sendNext()
        return result

    def _sendNotify(
        self, state: SubscriptionState, body: NotifyBody | None, final: bool
    ) -> Deferred[SIPResponse]:
        headers = [
            ("Event", self.event.serialize()),
            ("Subscription-State", state.serialize()),
        ]
        d = self.events.sendInDialog(
            self.dialog,
            "NOTIFY",
            headers,
            body.body if body is not None else b"",
            body.contentType if body is not None else None,
        )

        def answered(response: SIPResponse) -> SIPResponse:
            if response.status in NOTIFY_FAILURE_STATUSES:
                if not final:
                    self._log.info(
                        "NOTIFY got {status}: subscription removed",
                        status=response.status,
                        callID=self.dialog.callID,
                    )
                    self.end(SubscriptionReason.NOTIFY_FAILED)
                self._dropQueued()
            return response

        return d.addCallback(answered)

    def refreshed(self, expires: int) -> None:
        """
        The subscriber refreshed it for C{expires} seconds (L{SIPEvents}).
        """
        self._schedule(expires)

    def end(self, reason: SubscriptionReason) -> None:
        """
        Drop it without a NOTIFY (L{terminate} sends one): stop its timer,
        leave its dialog, tell the package.
        """
        if not self._transition(SubscriptionStatus.TERMINATED):
            return
        _cancel(self._timer)
        self._timer = None
        self.reason = reason
        self._dropQueued()
        self.events.removeUsage(self.dialog, self)
        try:
            self.package.subscriptionEnded(self, reason)
        except Exception as e:
            self._log.failure(
                "Event package failed in subscriptionEnded",
                error=e,
                callID=self.dialog.callID,
            )


class ClientSubscription:
    """
    A subscription we hold (RFC 6665 section 4.1), made by
    L{SIPEvents.subscribe} (or implicitly by a REFER we sent).

    @ivar events: The owner.
    @ivar event: Our Event header.
    @ivar handler: Gets the NOTIFYs.
    @ivar status: The state.
    @ivar dialog: The dialog, once a 2xx or NOTIFY made it.
    @ivar expires: The duration asked for (re-used on refresh).
    @ivar expiresAt: When the notifier will drop it (from the 2xx Expires
        or the NOTIFY's C{expires} parameter), or L{None}.
    @ivar reason: Why it ended, once terminated.
    @ivar established: Fires with this subscription on the first 2xx or
        NOTIFY; fails with L{SIPError} if the SUBSCRIBE failed first.
    @ivar ended: Fires with the reason when it ends for good.
    @ivar implicit: Made by a REFER (no refresh; C{id} optional on the
        first NOTIFY, RFC 3515 section 2.4.6).
    """

    _log = Logger()

    def __init__(
        self,
        events: SIPEvents,
        event: Event,
        handler: ISubscriptionHandler | None,
        expires: int,
        accept: Sequence[str] = (),
        *,
        target: NameAddr | None = None,
        fromAddress: NameAddr | None = None,
        contact: NameAddr | None = None,
        dialog: Dialog | None = None,
        headers: Sequence[tuple[str, str]] = (),
        implicit: bool = False,
    ) -> None:
        self.events = events
        self.event = event
        self.handler = handler
        self.expires = expires
        self.accept = tuple(accept)
        self.target = target
        self.fromAddress = fromAddress
        self.contact = contact
        self.dialog = dialog
        self.headers = tuple(headers)
        self.implicit = implicit
        self.status = SubscriptionStatus.INIT
        self.expiresAt: float | None = None
        self.reason: SubscriptionReason | None = None
        self.established: Deferred[ClientSubscription] = Deferred()
        self.ended: Deferred[SubscriptionReason] = Deferred()
        self.localTag = dialog.localTag if dialog is not None else ""
        self.cseq: int | None = None
        self.unsubscribing = False
        self._unsubscribeSent = False
        self._gotNotify = False
        self._resubscribes = 0
        self._refreshTimer: IDelayedCall | None = None
        self._timerN: IDelayedCall | None = None
        self._retryTimer: IDelayedCall | None = None

    # -- state ---------------------------------------------------------------

    def _transition(self, new: SubscriptionStatus) -> bool:
        if new is self.status or new not in SUBSCRIPTION_TRANSITIONS[self.status]:
            return False
        self.status = new
        return True

    def matches(self, event: Event) -> bool:
        """
        Whether a NOTIFY's Event names this subscription; for a REFER's
        implicit subscription the C{id} (the REFER's CSeq) may be missing.
        """
        if self.event.matches(event):
            return True
        return (
            self.implicit
            and (event.id is None or self.event.id is None)
            and event.package.lower() == self.event.package.lower()
        )

    def _callID(self) -> str | None:
        return self.dialog.callID if self.dialog is not None else None

    # -- SUBSCRIBE -------------------------------------------------------------

    def _subscribeHeaders(self, expires: int) -> list[tuple[str, str]]:
        headers = [("Event", self.event.serialize()), ("Expires", str(expires))]
        if self.accept:
            headers.append(("Accept", ", ".join(self.accept)))
        headers.extend(self.headers)
        return headers

    @property
    def gotNotify(self) -> bool:
        """
        Whether a NOTIFY arrived since the last (un)SUBSCRIBE was sent.
        """
        return self._gotNotify

    def start(self) -> None:
        """
        Send the initial SUBSCRIBE (out of dialog, or in C{dialog}).
        """
        self._transition(SubscriptionStatus.NOTIFY_WAIT)
        self._gotNotify = False
        events = self.events
        if self.dialog is not None:
            events.addUsage(self.dialog, self)
            d = events.sendInDialog(
                self.dialog, "SUBSCRIBE", self._subscribeHeaders(self.expires)
            )
            self.cseq = self.dialog.localSeq
        else:
            assert self.target is not None and self.fromAddress is not None
            self.localTag = secrets.token_hex(8)
            events.addPending(self)
            contact = self.contact or events.contactForTarget(self.target)
            self.contact = contact
            headers = [("Contact", contact.serialize())]
            headers += self._subscribeHeaders(self.expires)
            d = events.ua.request(
                "SUBSCRIBE",
                self.target,
                self.fromAddress.withTag(self.localTag),
                headers,
            )
        self.startTimerN()
        d.addCallback(self.subscribeAnswered).addErrback(self._bug)

    def startTimerN(self) -> None:
        """
        Start Timer N (RFC 6665 section 4.1.2.4): no NOTIFY within 64*T1
        ends the subscription.
        """
        _cancel(self._timerN)
        self._timerN = self.events.ua.clock.callLater(
            self.events.ua.timers.timeout, self._noNotify
        )

    def _noNotify(self) -> None:
        self._timerN = None
        if self._gotNotify or self.status is SubscriptionStatus.TERMINATED:
            return
        self._log.warn(
            "No NOTIFY for SUBSCRIBE to {package}",
            package=self.event.package,
            callID=self._callID(),
        )
        self.end(SubscriptionReason.NO_NOTIFY)

    def _bug(self, reason: Failure) -> None:
        self._log.failure(
            "Subscription processing failed", reason, callID=self._callID()
        )

    def subscribeAnswered(self, response: SIPResponse) -> None:
        """
        The final response to our SUBSCRIBE (or to the REFER that made
        an implicit subscription, L{stoxgw.sip.refer}).
        """
        if self.status is SubscriptionStatus.TERMINATED:
            return
        if response.isSuccess:
            self._resubscribes = 0
            if self.dialog is None:
                try:
                    dialog = self.events.dialogFromResponse(response, self)
                except (DialogError, HeaderError) as e:
                    self._log.warn(
                        "Unusable 2xx for SUBSCRIBE: {error}",
                        error=str(e),
                        callID=response.header("Call-ID"),
                    )
                    self.end(SubscriptionReason.SUBSCRIBE_FAILED)
                    return
                self.bind(dialog)
            else:
                self.dialog.refreshTarget(response)
                number = response.cseq.number
                if self.dialog.localSeq is None or self.dialog.localSeq < number:
                    # The dialog came from a NOTIFY that overtook this 2xx.
                    self.dialog.localSeq = number
            expires = self._responseExpires(response)
            if expires is not None:
                self._setExpiry(expires)
            if not self.established.called:
                self.established.callback(self)
            self._maybeUnsubscribe()
            return
        if response.status == 423 and not self.unsubscribing:
            minimum = response.header("Min-Expires")
            try:
                value = parseExpires(minimum) if minimum is not None else None
            except HeaderError:
                value = None
            if value is not None and value > self.expires:
                self.expires = value
                self._retrySubscribe()
                return
        self._log.info(
            "SUBSCRIBE to {package} failed: {status}",
            package=self.event.package,
            status=response.status,
            callID=response.header("Call-ID"),
        )
        if not self.established.called:
            self.established.errback(
                Failure(SIPError(response.status, response.reason, response))  # type: ignore[no-untyped-call]
            )
        self.end(SubscriptionReason.SUBSCRIBE_FAILED)

    def _retrySubscribe(self) -> None:
        """
        SUBSCRIBE again: in the dialog if there is one, else a new one.
        """
        if self.dialog is not None and self.dialog.remoteTag:
            self.refresh()
        else:
            self.events.forgetPending(self.localTag)
            self.start()

    @staticmethod
    def _responseExpires(response: SIPResponse) -> int | None:
        value = response.header("Expires")
        if value is None:
            return None
        try:
            return parseExpires(value)
        except HeaderError:
            return None

    def bind(self, dialog: Dialog) -> None:
        """
        The dialog exists (a 2xx, or a NOTIFY that came first).
        """
        self.dialog = dialog
        self.events.forgetPending(self.localTag)
        self.events.addUsage(dialog, self)

    def _setExpiry(self, expires: int) -> None:
        """
        The notifier keeps it C{expires} seconds: refresh before that
        (half way for short durations, a minute early for long ones).
        """
        self.expiresAt = _now(self.events) + expires
        _cancel(self._refreshTimer)
        self._refreshTimer = None
        if self.implicit and expires > 0:
            # No refresh: the REFER recipient decides (RFC 3515 2.4.4).
            self._refreshTimer = self.events.ua.clock.callLater(
                expires, self.end, SubscriptionReason.TIMEOUT
            )
            return
        if self.implicit or self.unsubscribing or expires <= 0:
            return
        delay = max(expires / 2, expires - 60)
        self._refreshTimer = self.events.ua.clock.callLater(delay, self.refresh)

    def refresh(self) -> Deferred[SIPResponse] | None:
        """
        Re-SUBSCRIBE in the dialog now (RFC 6665 section 4.1.2.2); the
        notifier answers with a NOTIFY carrying the full state (what a
        conference subscriber does on a version gap, RFC 4575 section
        4.6, R-180).

        @return: The SUBSCRIBE's result, or L{None} without a dialog yet.
        """
        _cancel(self._refreshTimer)
        self._refreshTimer = None
        if (
            self.status is SubscriptionStatus.TERMINATED
            or self.dialog is None
            or self.dialog.localSeq is None
        ):
            return None
        d = self.events.sendInDialog(
            self.dialog, "SUBSCRIBE", self._subscribeHeaders(self.expires)
        )

        def answered(response: SIPResponse) -> SIPResponse:
            if self.status is SubscriptionStatus.TERMINATED:
                return response
            if response.isSuccess:
                expires = self._responseExpires(response)
                self._setExpiry(expires if expires is not None else self.expires)
            elif response.status == 423:
                self.subscribeAnswered(response)
            elif response.status in NOTIFY_FAILURE_STATUSES:
                self.end(SubscriptionReason.SUBSCRIBE_FAILED)
            return response

        return d.addCallback(answered)

    def unsubscribe(self) -> Deferred[SubscriptionReason]:
        """
        End the subscription: SUBSCRIBE with C{Expires: 0} (RFC 6665
        section 4.1.2.3); it ends when the terminated NOTIFY arrives (or
        the SUBSCRIBE fails, or Timer N fires).

        @return: L{ended}.
        """
        if self.status is SubscriptionStatus.TERMINATED or self.unsubscribing:
            return self.ended
        self.unsubscribing = True
        _cancel(self._refreshTimer)
        _cancel(self._retryTimer)
        self._maybeUnsubscribe()
        return self.ended

    def _maybeUnsubscribe(self) -> None:
        """
        Send the unsubscribing SUBSCRIBE once asked to and the dialog
        (with our CSeq, from the 2xx) exists.
        """
        if (
            not self.unsubscribing
            or self._unsubscribeSent
            or self.status is SubscriptionStatus.TERMINATED
            or self.dialog is None
            or not self.dialog.remoteTag
            or self.dialog.localSeq is None
        ):
            return
        self._unsubscribeSent = True
        self._sendUnsubscribe()

    def _sendUnsubscribe(self) -> None:
        assert self.dialog is not None
        if self.implicit:
            # RFC 3515 leaves ending the implicit subscription to the
            # recipient; unsubscribing is just forgetting it.
            self.end(SubscriptionReason.TIMEOUT)
            return
        self._gotNotify = False
        self.startTimerN()
        d = self.events.sendInDialog(
            self.dialog, "SUBSCRIBE", self._subscribeHeaders(0)
        )

        def answered(response: SIPResponse) -> None:
            if not response.isSuccess:
                self.end(SubscriptionReason.TIMEOUT)

        d.addCallback(answered).addErrback(self._bug)

    # -- NOTIFY ----------------------------------------------------------------

    def handleNotify(
        self, incoming: IncomingRequest, state: SubscriptionState
    ) -> None:
        """
        A NOTIFY for this subscription (dialog matched, CSeq checked).
        """
        self._gotNotify = True
        _cancel(self._timerN)
        self._timerN = None
        incoming.respond(200)
        request = incoming.request
        if self.dialog is not None:
            self.dialog.refreshTarget(request)
        if not self.established.called:
            self.established.callback(self)
        terminated = state.state == "terminated"
        if not terminated:
            self._transition(
                SubscriptionStatus.PENDING
                if state.state == "pending"
                else SubscriptionStatus.ACTIVE
            )
            if state.expires is not None and (
                self.expiresAt is None
                or _now(self.events) + state.expires < self.expiresAt
                or self.implicit
            ):
                self._setExpiry(state.expires)
        self._deliver(request)
        if not terminated:
            self._maybeUnsubscribe()
        if terminated:
            self._terminatedBy(SubscriptionReason.fromToken(state.reason), state)

    def _deliver(self, request: SIPRequest) -> None:
        if self.handler is None:
            return
        try:
            self.handler.notifyReceived(self, request)
        except Exception as e:
            self._log.failure(
                "Subscription handler failed on NOTIFY",
                error=e,
                callID=request.header("Call-ID"),
            )

    def _terminatedBy(
        self, reason: SubscriptionReason, state: SubscriptionState
    ) -> None:
        """
        RFC 6665 section 4.1.3, simplified: re-subscribe at once after
        C{deactivated}/C{timeout}, after C{retry-after} for
        C{probation}/C{giveup}; otherwise (and when unsubscribing, or
        implicit, or too many times in a row) end.
        """
        if self.unsubscribing or self.implicit:
            self.end(reason)
            return
        delay: float | None = None
        if reason in (SubscriptionReason.DEACTIVATED, SubscriptionReason.TIMEOUT):
            delay = 0
        elif reason in (SubscriptionReason.PROBATION, SubscriptionReason.GIVEUP):
            delay = state.retryAfter
        if delay is None or self._resubscribes >= self.events.settings.maxResubscribes:
            self.end(reason)
            return
        self._resubscribes += 1
        self._log.info(
            "Subscription to {package} terminated ({reason}); re-subscribing",
            package=self.event.package,
            reason=reason.value,
            callID=self._callID(),
        )
        self._forgetDialog()
        self._transition(SubscriptionStatus.NOTIFY_WAIT)
        if delay:
            self._retryTimer = self.events.ua.clock.callLater(delay, self.start)
        else:
            self.start()

    def _forgetDialog(self) -> None:
        _cancel(self._refreshTimer)
        self._refreshTimer = None
        if self.dialog is not None:
            keep = self.events.isSharedDialog(self.dialog)
            self.events.removeUsage(self.dialog, self)
            if not keep:
                self.dialog = None
        self.events.forgetPending(self.localTag)

    def end(self, reason: SubscriptionReason) -> None:
        """
        End it for good (no SUBSCRIBE sent): stop the timers, leave the
        dialog, tell the handler, fire L{ended}.
        """
        if not self._transition(SubscriptionStatus.TERMINATED):
            return
        self.reason = reason
        for call in (self._refreshTimer, self._timerN, self._retryTimer):
            _cancel(call)
        self._refreshTimer = self._timerN = self._retryTimer = None
        self.events.forgetPending(self.localTag)
        if self.dialog is not None:
            self.events.removeUsage(self.dialog, self)
        if not self.established.called:
            self.established.errback(
                Failure(SIPError(481, reason.value))  # type: ignore[no-untyped-call]
            )
        if self.handler is not None:
            try:
                self.handler.subscriptionEnded(self, reason)
            except Exception as e:
                self._log.failure(
                    "Subscription handler failed", error=e, callID=self._callID()
                )
        self.ended.callback(reason)


Usage = Union[NotifierSubscription, ClientSubscription]


@implementer(IRequestHandler, IDialogUsageHandler)
class SIPEvents:
    """
    The subscription usages of one UA (see the module docstring).

    @ivar ua: The UA core.
    @ivar settings: Expiry policy.
    @ivar packages: Notifier packages by name.
    @ivar dialogs: Dialogs hosting usages, by dialog ID (INVITE dialogs of
        the UA core included while they host one).
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        settings: SubscriptionSettings = SubscriptionSettings(),
        match: Callable[[URI], bool] | None = None,
    ) -> None:
        self.ua = ua
        self.settings = settings
        self.packages: dict[str, IEventPackage] = {}
        self.dialogs: dict[DialogID, Dialog] = {}
        self._usages: dict[DialogID, list[Usage]] = {}
        self._pending: dict[str, ClientSubscription] = {}
        self._match = match
        ua.addUsageHandler(self)

    # -- configuration --------------------------------------------------------

    def addPackage(self, package: IEventPackage) -> None:
        """
        Serve subscriptions to C{package}: the first one also makes us the
        UA's SUBSCRIBE handler (C{SUBSCRIBE} in Allow), and the name goes
        into Allow-Events (RFC 6665 section 4.4.4).
        """
        name = str(package.name).lower()
        if not self.packages:
            self.ua.addHandler("SUBSCRIBE", self, self._match)
        self.packages[name] = package
        if name not in self.ua.allowEvents:
            self.ua.allowEvents.append(name)

    def _allowEvents(self) -> list[tuple[str, str]]:
        if not self.ua.allowEvents:
            return []
        return [("Allow-Events", ", ".join(self.ua.allowEvents))]

    # -- dialogs and usages (the API of the usages: NotifierSubscription,
    # -- ClientSubscription, stoxgw.sip.refer) ------------------------------

    def findDialog(self, key: DialogID) -> Dialog | None:
        """
        The dialog with this ID: one hosting usages, else an INVITE dialog
        of the UA core.
        """
        return self.dialogs.get(key) or self.ua.dialogs.get(key)

    def addUsage(self, dialog: Dialog, usage: Usage) -> None:
        """
        C{usage} lives in C{dialog} (which stays known while it has one).
        """
        self.dialogs[dialog.id] = dialog
        usages = self._usages.setdefault(dialog.id, [])
        if usage not in usages:
            usages.append(usage)

    def removeUsage(self, dialog: Dialog, usage: Usage) -> None:
        """
        C{usage} left C{dialog}; the last one out forgets the dialog.
        """
        usages = self._usages.get(dialog.id, [])
        if usage in usages:
            usages.remove(usage)
        if not usages:
            self._usages.pop(dialog.id, None)
            if self.dialogs.get(dialog.id) is dialog:
                del self.dialogs[dialog.id]

    def isSharedDialog(self, dialog: Dialog) -> bool:
        """
        Whether C{dialog} is an INVITE dialog of the UA core.
        """
        return self.ua.dialogs.get(dialog.id) is dialog

    def addPending(self, subscription: ClientSubscription) -> None:
        """
        An out-of-dialog SUBSCRIBE (or REFER) went out with this local
        tag: a NOTIFY with it may come before the 2xx (RFC 6665 section
        4.1.2.4).
        """
        self._pending[subscription.localTag] = subscription

    def forgetPending(self, localTag: str) -> None:
        """
        Undo L{addPending}.
        """
        self._pending.pop(localTag, None)

    def usages(self, dialog: Dialog) -> list[Usage]:
        """
        The subscription usages of a dialog.
        """
        return list(self._usages.get(dialog.id, []))

    def sendInDialog(
        self,
        dialog: Dialog,
        method: str,
        headers: Sequence[tuple[str, str]],
        body: bytes = b"",
        contentType: str | None = None,
    ) -> Deferred[SIPResponse]:
        """
        Send a request made in C{dialog} through the UA core.
        """
        request = dialog.createRequest(method, headers, body, contentType)
        return self.ua.sendInDialog(dialog, request)

    def contactFor(
        self,
        incoming: IncomingRequest,
        headerParameters: Sequence[tuple[str, str | None]] = (),
    ) -> NameAddr:
        """
        Our Contact for the dialog an out-of-dialog SUBSCRIBE or REFER
        makes: on the transport it came over, with the Request-URI's user
        (the room's name), plus C{headerParameters} (C{isfocus}).
        """
        request = incoming.request
        user = request.uri.user if isinstance(request.uri, SIPURI) else None
        return self.ua.contactFor(
            incoming.flow.transport, user=user, headerParameters=headerParameters
        )

    def contactForTarget(self, target: NameAddr) -> NameAddr:
        """
        Our Contact for a SUBSCRIBE or REFER we send to C{target}.
        """
        uri = target.uri
        kind = self.ua.defaultTransport(uri) if isinstance(uri, SIPURI) else None
        if kind is None:
            kind = self.ua.transport.transports[0]
        return self.ua.contactFor(kind)

    def dialogFromResponse(
        self, response: SIPResponse, subscription: ClientSubscription
    ) -> Dialog:
        """
        The subscriber's dialog from the 2xx of an out-of-dialog SUBSCRIBE
        or REFER (RFC 3261 section 12.1.2; the response repeats the
        request's Call-ID, From and CSeq), or the one an earlier NOTIFY
        made.
        """
        existing = self.dialogs.get(dialogIDOf(response))
        if existing is not None:
            return existing
        assert subscription.contact is not None
        return Dialog.fromResponse(response, response, subscription.contact)

    # -- incoming -----------------------------------------------------------------

    def requestReceived(self, request: IncomingRequest) -> None:
        """
        An out-of-dialog SUBSCRIBE (L{IRequestHandler}).
        """
        self._newSubscription(request, None)

    def inDialogRequestReceived(self, incoming: IncomingRequest) -> bool:
        """
        SUBSCRIBE or NOTIFY with a To tag (L{IDialogUsageHandler}): ours
        if it belongs to a known dialog (SUBSCRIBE) or names a
        subscription we hold (NOTIFY: C{481} otherwise).
        """
        request = incoming.request
        method = request.method
        if method not in ("SUBSCRIBE", "NOTIFY"):
            return False
        key = dialogIDOf(request)
        dialog = self.findDialog(key)
        if method == "SUBSCRIBE":
            if dialog is None:
                return False
            if not self.checkSeq(incoming, dialog):
                return True
            dialog.refreshTarget(request)
            self._inDialogSubscribe(incoming, dialog)
            return True
        self._notify(incoming, key, dialog)
        return True

    def checkSeq(self, incoming: IncomingRequest, dialog: Dialog) -> bool:
        """
        RFC 3261 section 12.2.2: an in-dialog request's CSeq; an old one
        is answered 500.

        @return: Whether it goes on.
        """
        status = dialog.checkRemoteRequest(incoming.request)
        if status is not None:
            incoming.respond(status, "Server Internal Error (CSeq out of order)")
            return False
        return True

    def _parseEvent(self, incoming: IncomingRequest) -> Event | None:
        value = incoming.request.header("Event")
        if value is None:
            incoming.respond(400, "Bad Request (no Event)")
            return None
        try:
            return Event.parse(value)
        except HeaderError:
            incoming.respond(400, "Bad Request (malformed Event)")
            return None

    def _inDialogSubscribe(self, incoming: IncomingRequest, dialog: Dialog) -> None:
        event = self._parseEvent(incoming)
        if event is None:
            return
        for usage in self._usages.get(dialog.id, []):
            if isinstance(usage, NotifierSubscription) and usage.matches(event):
                self._refresh(incoming, usage)
                return
        self._newSubscription(incoming, dialog, event)

    def _expires(self, incoming: IncomingRequest, default: int) -> int | None:
        """
        The granted duration, or L{None} after answering 400/423.
        """
        value = incoming.request.header("Expires")
        try:
            requested = parseExpires(value) if value is not None else default
        except HeaderError:
            incoming.respond(400, "Bad Request (malformed Expires)")
            return None
        minimum = self.settings.minExpires
        if 0 < requested < minimum and requested < 3600:
            incoming.respond(
                423, headers=[("Min-Expires", str(minimum))] + self._allowEvents()
            )
            return None
        return min(requested, self.settings.maxExpires)

    def _acceptable(self, incoming: IncomingRequest, package: IEventPackage) -> bool:
        types = tuple(package.contentTypes)
        lines = incoming.request.headers.getAll("Accept")
        if not types or not lines:
            return True
        accepted = set()
        for line in lines:
            try:
                accepted.add(MediaType.parse(line).mimeType)
            except HeaderError:
                continue
        if "*/*" in accepted or any(t.lower() in accepted for t in types):
            return True
        incoming.respond(406, headers=[("Accept", ", ".join(types))])
        return False

    def _newSubscription(
        self,
        incoming: IncomingRequest,
        dialog: Dialog | None,
        event: Event | None = None,
    ) -> None:
        request = incoming.request
        if event is None:
            event = self._parseEvent(incoming)
            if event is None:
                return
        package = self.packages.get(event.package.lower())
        if package is None:
            incoming.respond(489, headers=self._allowEvents())
            return
        if dialog is None and (
            request.contact is None or not request.contact.addresses
        ):
            incoming.respond(400, "Bad Request (no Contact)")
            return
        if not self._acceptable(incoming, package):
            return
        expires = self._expires(incoming, int(package.defaultExpires))
        if expires is None:
            return
        verdict = package.authorize(incoming)
        if isinstance(verdict, Deferred):
            verdict.addCallback(
                self._authorized, incoming, dialog, package, event, expires
            ).addErrback(self._authorizationFailed, incoming)
            return
        self._authorized(verdict, incoming, dialog, package, event, expires)

    def _authorizationFailed(self, reason: Failure, incoming: IncomingRequest) -> None:
        self._log.failure(
            "Authorizing a subscription ({callID})",
            reason,
            callID=incoming.request.callID,
        )
        if not incoming.answered:
            incoming.respond(500)

    def _authorized(
        self,
        status: int | None,
        incoming: IncomingRequest,
        dialog: Dialog | None,
        package: IEventPackage,
        event: Event,
        expires: int,
    ) -> None:
        """
        The package's verdict on a new SUBSCRIBE: refuse it, or create the
        subscription, answer 200 and send the first NOTIFY.
        """
        if incoming.answered:
            return
        request = incoming.request
        if status is not None:
            incoming.respond(status, headers=self._allowEvents())
            return
        if dialog is None:
            parameters: Sequence[tuple[str, str | None]] = ()
            if IContactParameters.providedBy(package):
                parameters = package.contactParameters(incoming)
            contact = self.contactFor(incoming, parameters)
            dialog = Dialog.fromIncomingRequest(
                request, incoming.toTag, contact, flow=incoming.flow
            )
        headers = [
            ("Contact", dialog.localContact.serialize()),
            ("Expires", str(expires)),
        ] + self._allowEvents()
        incoming.respond(200, headers=headers)
        subscription = NotifierSubscription(
            self, dialog, package, event, request, expires
        )
        self._log.info(
            "Subscription to {package} accepted from {peer}",
            package=event.package,
            peer=str(incoming.flow.source),
            callID=dialog.callID,
        )
        if expires == 0:
            # RFC 6665 section 4.4.3: a fetch; one terminated NOTIFY.
            body = subscription.fullState()
            subscription.terminate(SubscriptionReason.TIMEOUT, body)
            return
        self.addUsage(dialog, subscription)
        package.subscriptionStarted(subscription)
        if subscription.status is not SubscriptionStatus.TERMINATED:
            subscription.notifyFullState().addErrback(lambda _: None)

    def _refresh(
        self, incoming: IncomingRequest, subscription: NotifierSubscription
    ) -> None:
        """
        RFC 6665 section 4.2.1.4: a refresh or (Expires 0) an unsubscribe.
        """
        expires = self._expires(incoming, int(subscription.package.defaultExpires))
        if expires is None:
            return
        incoming.respond(
            200,
            headers=[
                ("Contact", subscription.dialog.localContact.serialize()),
                ("Expires", str(expires)),
            ]
            + self._allowEvents(),
        )
        if expires == 0:
            subscription.terminate(SubscriptionReason.TIMEOUT, subscription.fullState())
            return
        subscription.refreshed(expires)
        subscription.notifyFullState().addErrback(lambda _: None)

    def _notify(
        self, incoming: IncomingRequest, key: DialogID, dialog: Dialog | None
    ) -> None:
        request = incoming.request
        event = self._parseEvent(incoming)
        if event is None:
            return
        stateValue = request.header("Subscription-State")
        try:
            state = SubscriptionState.parse(stateValue) if stateValue else None
        except HeaderError:
            state = None
        if state is None:
            incoming.respond(400, "Bad Request (no Subscription-State)")
            return
        subscription: ClientSubscription | None = None
        if dialog is not None:
            for usage in self._usages.get(dialog.id, []):
                if isinstance(usage, ClientSubscription) and usage.matches(event):
                    subscription = usage
                    break
        else:
            pending = self._pending.get(key[1])
            if (
                pending is not None
                and pending.matches(event)
                and (pending.dialog is None)
            ):
                # RFC 6665 section 4.1.2.4: the NOTIFY came first.
                contact = pending.contact
                assert contact is not None
                try:
                    dialog = Dialog.fromIncomingRequest(request, key[1], contact)
                except (DialogError, HeaderError):
                    incoming.respond(400, "Bad Request (no Contact)")
                    return
                dialog.role = DialogRole.UAC
                dialog.localSeq = pending.cseq
                pending.bind(dialog)
                pending.handleNotify(incoming, state)
                return
        if subscription is None or dialog is None:
            incoming.respond(481, "Subscription Does Not Exist")
            return
        if not self.checkSeq(incoming, dialog):
            return
        subscription.handleNotify(incoming, state)

    # -- outgoing -------------------------------------------------------------------

    def subscribe(
        self,
        target: NameAddr | SIPURI | None,
        event: str | Event,
        expires: int = 3600,
        accept: Sequence[str] = (),
        *,
        handler: ISubscriptionHandler | None = None,
        fromAddress: NameAddr | None = None,
        dialog: Dialog | None = None,
        contact: NameAddr | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> ClientSubscription:
        """
        Subscribe (RFC 6665 section 4.1.2.1): out of dialog to C{target}
        from C{fromAddress}, or inside C{dialog} (e.g. the INVITE dialog
        with a conference focus).

        @param event: The package (C{conference}) or a full Event header.
        @param accept: Body types for the Accept header.
        @return: The subscription; its C{established} fires on the first
            2xx or NOTIFY.
        @raise ValueError: Neither a target with a From address nor a
            dialog.
        """
        eventHeader = event if isinstance(event, Event) else Event(event)
        address: NameAddr | None = None
        if dialog is None:
            if target is None or fromAddress is None:
                raise ValueError("subscribe needs a target and From, or a dialog")
            address = target if isinstance(target, NameAddr) else NameAddr(target)
        subscription = ClientSubscription(
            self,
            eventHeader,
            handler,
            expires,
            accept,
            target=address,
            fromAddress=fromAddress,
            contact=contact,
            dialog=dialog,
            headers=headers,
        )
        subscription.start()
        return subscription

    def shutdown(self) -> Deferred[None]:
        """
        End every subscription politely: terminated NOTIFYs with
        C{noresource} for the ones we serve, unsubscribe for the ones we
        hold.

        @return: Fires once every terminated NOTIFY has its final response
            (or failed); never fails.
        """
        notifies: list[Deferred[Any]] = []
        for usages in list(self._usages.values()):
            for usage in list(usages):
                if isinstance(usage, NotifierSubscription):
                    d = usage.terminate(SubscriptionReason.NORESOURCE)
                    if d is not None:
                        notifies.append(d.addErrback(lambda _: None))
                else:
                    usage.unsubscribe()
        return DeferredList(notifies).addCallback(lambda _: None)

    def close(self) -> None:
        """
        Drop every subscription and stop its timers (nothing is sent).
        """
        for usages in list(self._usages.values()):
            for usage in list(usages):
                usage.end(SubscriptionReason.SHUTDOWN)
        for pending in list(self._pending.values()):
            pending.end(SubscriptionReason.SHUTDOWN)
        self._usages.clear()
        self.dialogs.clear()
        self._pending.clear()


# ---------------------------------------------------------------------------
# The conference event package (RFC 4575)


class ConferenceNotifier:
    """
    One conference's state as served to its subscribers: full documents
    on subscribe and refresh, partial ones on change, a version counter
    per subscription starting at 1 (RFC 4575 sections 4.3 and 5.2; SPEC F.1
    item 9).

    @ivar state: The current full state (its version is ignored).
    @ivar subscriptions: The subscriptions, in order.
    """

    def __init__(self, state: ConferenceInfo) -> None:
        self.state = state
        self.subscriptions: list[NotifierSubscription] = []
        self._sent: dict[NotifierSubscription, ConferenceInfo] = {}

    def fullDocument(self, subscription: NotifierSubscription) -> NotifyBody:
        """
        The full state for a subscription, with its next version.
        """
        last = self._sent.get(subscription)
        version = (last.version or 0) + 1 if last is not None else 1
        document = replace(self.state, version=version)
        self._sent[subscription] = document
        return NotifyBody(document.toBytes(), CONFERENCE_INFO_CONTENT_TYPE)

    def update(self, state: ConferenceInfo) -> None:
        """
        The conference changed: send each subscriber the partial document
        (L{diff}) from what it was last sent; nothing if nothing changed.
        A subscriber whose previous NOTIFY is still unanswered gets one
        partial document for all changes since then, once it is answered
        (L{NotifierSubscription.notifyChanged}): versions stay consecutive
        in the order they arrive.
        """
        self.state = state
        for subscription in list(self.subscriptions):
            if subscription in self._sent:
                subscription.notifyChanged(partial(self._partialDocument, subscription))

    def _partialDocument(self, subscription: NotifierSubscription) -> object:
        """
        The partial document from the last one sent to C{subscription} to
        the current state, or L{SKIP_NOTIFY}.
        """
        last = self._sent.get(subscription)
        document = diff(last, self.state) if last is not None else None
        if last is None or document is None:
            return SKIP_NOTIFY
        self._sent[subscription] = replace(self.state, version=document.version)
        return NotifyBody(document.toBytes(), CONFERENCE_INFO_CONTENT_TYPE)

    def close(self, reason: SubscriptionReason = SubscriptionReason.NORESOURCE) -> None:
        """
        The conference is gone: terminate every subscription.
        """
        for subscription in list(self.subscriptions):
            d = subscription.terminate(reason)
            if d is not None:
                d.addErrback(lambda _: None)

    def attach(self, subscription: NotifierSubscription) -> None:
        self.subscriptions.append(subscription)

    def detach(self, subscription: NotifierSubscription) -> None:
        if subscription in self.subscriptions:
            self.subscriptions.remove(subscription)
        self._sent.pop(subscription, None)


@implementer(IEventPackage, IContactParameters)
class ConferencePackage:
    """
    The notifier side of the C{conference} package (RFC 4575 section 3):
    C{lookup} finds the L{ConferenceNotifier} for a SUBSCRIBE (by its
    Request-URI); none gets C{404}.

    @ivar isfocus: We answer as the conference focus: the Contact of the
        200 carries C{isfocus} (RFC 7702 section 5.3 example 8).
    """

    name = CONFERENCE_EVENT_PACKAGE
    contentTypes = (CONFERENCE_INFO_CONTENT_TYPE,)

    def __init__(
        self,
        lookup: Callable[[SIPRequest], ConferenceNotifier | None],
        defaultExpires: int = 3600,
        *,
        isfocus: bool = False,
    ) -> None:
        self.lookup = lookup
        self.defaultExpires = defaultExpires
        self.isfocus = isfocus

    def contactParameters(
        self, request: IncomingRequest
    ) -> Sequence[tuple[str, str | None]]:
        """
        C{isfocus} when we are the focus (L{IContactParameters}).
        """
        return [("isfocus", None)] if self.isfocus else []

    def authorize(self, request: IncomingRequest) -> int | None | Deferred[int | None]:
        """
        C{404} unless C{lookup} knows the conference.
        """
        return None if self.lookup(request.request) is not None else 404

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        """
        Attach the subscription to its conference.
        """
        conference = self.lookup(subscription.request)
        subscription.context = conference
        if conference is not None:
            conference.attach(subscription)

    def fullState(self, subscription: NotifierSubscription) -> NotifyBody | None:
        """
        The conference's full document (RFC 4575 section 4.3).
        """
        conference = subscription.context or self.lookup(subscription.request)
        if not isinstance(conference, ConferenceNotifier):
            return None
        return conference.fullDocument(subscription)

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Detach it.
        """
        if isinstance(subscription.context, ConferenceNotifier):
            subscription.context.detach(subscription)


@implementer(ISubscriptionHandler)
class ConferenceWatcher:
    """
    A conference subscriber's handler (RFC 4575 section 4.6): merges every
    received document into the local full state with
    L{applyNotification}, re-subscribes for a full document when a partial
    one shows a gap (R-180), and reports each new state.

    @ivar state: The local full state, or L{None} before the first one.
    @ivar onState: Called with each new state (and the outcome).
    @ivar onEnded: Called with the reason when the subscription ends.
    """

    _log = Logger()

    def __init__(
        self,
        onState: Callable[[ConferenceInfo, MergeOutcome], None] | None = None,
        onEnded: Callable[[SubscriptionReason], None] | None = None,
    ) -> None:
        self.state: ConferenceInfo | None = None
        self.onState = onState
        self.onEnded = onEnded

    def notifyReceived(
        self, subscription: ClientSubscription, request: SIPRequest
    ) -> None:
        """
        Parse and merge the body (bodiless NOTIFYs are ignored).
        """
        if not request.body:
            return
        contentType = request.contentType
        if (
            contentType is not None
            and contentType.mimeType != CONFERENCE_INFO_CONTENT_TYPE
        ):
            self._log.warn(
                "NOTIFY with {contentType} instead of conference-info",
                contentType=contentType.mimeType,
                callID=request.header("Call-ID"),
            )
            return
        try:
            document = ConferenceInfo.parse(request.body)
            result = applyNotification(self.state, document)
        except (ConferenceInfoError, ValueError) as e:
            self._log.warn(
                "Bad conference-info: {error}",
                error=str(e),
                callID=request.header("Call-ID"),
            )
            return
        if result.outcome is MergeOutcome.NEEDS_FULL_STATE:
            subscription.refresh()
            return
        if result.outcome is MergeOutcome.IGNORED or result.state is None:
            return
        self.state = result.state
        if self.onState is not None:
            self.onState(result.state, result.outcome)

    def subscriptionEnded(
        self, subscription: ClientSubscription, reason: SubscriptionReason
    ) -> None:
        """
        Report the end.
        """
        if self.onEnded is not None:
            self.onEnded(reason)
