# -*- test-case-name: tests.sip.test_subscription -*-
"""
The subscriber side of a subscription (RFC 6665 section 4.1):
L{ClientSubscription}, made by L{stoxgw.sip.subscription.SIPEvents.subscribe}
(or by L{stoxgw.sip.refer} for a REFER we sent), sends SUBSCRIBEs, takes
the NOTIFYs the owner routes to it, refreshes, re-subscribes and ends.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from stoxgw.sip.dialog import Dialog, DialogError
from stoxgw.sip.eventstate import (
    NOTIFY_FAILURE_STATUSES,
    ISubscriptionHandler,
    SubscriptionReason,
    SubscriptionStatus,
    SubscriptionUsage,
    cancelCall,
    now,
)
from stoxgw.sip.headers import Event, HeaderError, SubscriptionState, parseExpires
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.uri import NameAddr
from stoxgw.sip.useragent import IncomingRequest, SIPError

if TYPE_CHECKING:
    from stoxgw.sip.subscription import SIPEvents

__all__ = ["ClientSubscription"]


class ClientSubscription(SubscriptionUsage):
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
        cancelCall(self._timerN)
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
        self.expiresAt = now(self.events) + expires
        cancelCall(self._refreshTimer)
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
        cancelCall(self._refreshTimer)
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
        cancelCall(self._refreshTimer)
        cancelCall(self._retryTimer)
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
        cancelCall(self._timerN)
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
                or now(self.events) + state.expires < self.expiresAt
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
        cancelCall(self._refreshTimer)
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
            cancelCall(call)
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
