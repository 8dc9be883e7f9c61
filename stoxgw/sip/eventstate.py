# -*- test-case-name: tests.sip.test_subscription -*-
"""
What the parts of SIP-specific event notification (RFC 6665) share: the
subscription states and termination reasons, the expiry policy, the NOTIFY
body, and the interfaces between L{stoxgw.sip.subscription.SIPEvents}, the
event packages it serves (L{IEventPackage}) and the handlers of the
subscriptions it holds (L{ISubscriptionHandler}).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Mapping, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from zope.interface import Attribute, Interface

from stoxgw.sip.message import SIPRequest

if TYPE_CHECKING:
    from stoxgw.sip.notifier import NotifierSubscription
    from stoxgw.sip.subscriber import ClientSubscription
    from stoxgw.sip.subscription import SIPEvents
    from stoxgw.sip.useragent import IncomingRequest

__all__ = [
    "SubscriptionStatus",
    "SUBSCRIPTION_TRANSITIONS",
    "SubscriptionReason",
    "NOTIFY_FAILURE_STATUSES",
    "NotifyBody",
    "SubscriptionSettings",
    "IEventPackage",
    "IContactParameters",
    "ISubscriptionHandler",
    "SubscriptionUsage",
    "now",
    "cancelCall",
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


class SubscriptionUsage:
    """
    A subscription of either role: its state moves along
    L{SUBSCRIPTION_TRANSITIONS}.

    @ivar status: The state.
    """

    status: SubscriptionStatus

    def _transition(self, new: SubscriptionStatus) -> bool:
        """
        Move to C{new} if the table allows it.

        @return: Whether the state changed.
        """
        if new is self.status or new not in SUBSCRIPTION_TRANSITIONS[self.status]:
            return False
        self.status = new
        return True


def now(events: SIPEvents) -> float:
    """
    The current time on the UA's clock.
    """
    return events.ua.clock.seconds()


def cancelCall(call: IDelayedCall | None) -> None:
    """
    Cancel a delayed call if it is still pending.
    """
    if call is not None and call.active():
        call.cancel()
