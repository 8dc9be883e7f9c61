# -*- test-case-name: tests.sip.test_dialog -*-
"""
The INVITE dialog usage (RFC 3261 sections 13-15) on a L{Dialog}.

L{InviteDialog} adds what an INVITE dialog does on the network through the
UA core (a L{DialogCore}): the UAS retransmits its 2xx until the ACK
arrives (section 13.3.1.4; T1 doubling to T2, and after 64*T1 without ACK
the dialog is ended with a BYE), the UAC ACKs 2xx responses end to end and
re-sends the same ACK for 2xx retransmissions (section 13.2.2.4), BYE ends
the dialog either way (section 15), and requests inside the dialog are sent
with L{InviteDialog.sendRequest} (a 481 or 408 answer ends the dialog,
section 12.2.1.2).  The application hears about the dialog through an
L{IDialogHandler}.

Session timers (RFC 4028, L{stoxgw.sip.sessiontimer}): once a 2xx to a
session refresh request set L{InviteDialog.sessionTimer}, the refresher
side sends an UPDATE (when the peer allows it, else a re-INVITE with the
unchanged SDP) at half the interval, and the other side ends a dialog
that was not refreshed with a BYE (C{Reason: SIP;cause=408}) the smaller
of 32 s and a third of the interval before the session expires (section
10).  Our refresh answered 408 or 481, not at all, or that cannot be sent
ends the dialog at once with that BYE; one the peer refuses otherwise
(a UA without the extension refusing re-INVITEs) keeps the session for
another interval, since the peer is evidently there.

Not done: early dialogs on the UAC side (provisional responses are passed
to the caller, no dialog is made from them), forked 2xx responses from
other remote tags than the first (they are ignored, not ACKed and BYEd as
section 13.2.2.4 asks).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Protocol, Sequence

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface

from stoxgw.sip.dialog import (
    Dialog,
    DialogError,
    DialogState,
    TerminationReason,
)
from stoxgw.sip.headers import HeaderError, Reason
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.sessiontimer import (
    OPTION_TAG,
    SessionTimerTerms,
    minimumOf,
    requestHeaders,
    termsFromResponse,
)
from stoxgw.sip.transaction import TimerSettings
from stoxgw.sip.transport import Flow
from stoxgw.sip.uri import quoteString

__all__ = ["InviteDialog", "IDialogHandler", "DialogCore", "SESSION_EXPIRED_REASON"]

#: The C{Reason} of the BYE that ends a dialog whose session expired
#: (RFC 3326; 408: the peer stopped answering, RFC 4028 section 10).
SESSION_EXPIRED_REASON = Reason(
    "SIP", (("cause", "408"), ("text", quoteString("Session timer expired")))
).serialize()



class IDialogHandler(Interface):
    """
    The application side of an INVITE dialog.
    """

    def dialogConfirmed(dialog: InviteDialog) -> None:
        """
        The dialog is confirmed: the ACK for our 2xx arrived (UAS), or we
        sent the ACK for the peer's 2xx (UAC).
        """

    def dialogTerminated(dialog: InviteDialog, reason: TerminationReason) -> None:
        """
        The dialog ended (BYE either way, no ACK, peer gone, shutdown).
        """

    def reinviteReceived(dialog: InviteDialog, invite: object) -> None:
        """
        A re-INVITE arrived: answer it with C{invite.accept(sdp)} or
        C{invite.reject(488)} (an L{stoxgw.sip.useragent.IncomingInvite}).
        """

    def requestReceived(dialog: InviteDialog, request: object) -> None:
        """
        Another request (INFO, MESSAGE, NOTIFY, REFER, ...) arrived in the
        dialog: answer it with C{request.respond(...)} (an
        L{stoxgw.sip.useragent.IncomingRequest}).
        """


class DialogCore(Protocol):
    """
    What an L{InviteDialog} needs from the UA core.
    """

    clock: IReactorTime
    timers: TimerSettings

    def sendInDialog(
        self, dialog: InviteDialog, request: SIPRequest
    ) -> Deferred[SIPResponse]:
        """
        Send a request built by the dialog along its route set; fires
        with the final response (local 408/503 included).
        """

    def sendAck(self, dialog: InviteDialog, ack: SIPRequest) -> None:
        """
        Send (and remember, for 2xx retransmissions) an ACK for a 2xx.
        """

    def resendResponse(self, response: SIPResponse, flow: Flow) -> None:
        """
        Send a 2xx again along a flow.
        """

    def dialogEnded(self, dialog: InviteDialog) -> None:
        """
        Forget a dialog.
        """


@dataclass(eq=False)
class InviteDialog(Dialog):
    """
    A dialog made by INVITE, bound to the UA core.

    @ivar handler: The application side, or L{None}.
    @ivar core: The UA core.
    @ivar inviteInProgress: Whether a re-INVITE is pending either way
        (a new one gets 491, section 14).
    @ivar inviteResponse: UAC side: the 2xx that made the dialog (its body
        is the SDP answer, RFC 3264), or L{None}.
    @ivar remoteBye: The peer's BYE that ended the dialog, or L{None}.
    @ivar localBody: Our current session description (the offer or answer
        we sent last), sent again unchanged in refresh re-INVITEs (RFC 4028
        section 7.4) and in answers to the peer's.
    @ivar localContentType: Its content type.
    @ivar remoteBody: The peer's current session description.
    @ivar peerAllow: The methods the peer's Allow listed (from the request
        or 2xx that made the dialog), or L{None} if it sent none.
    @ivar sessionTimer: The session timer terms (RFC 4028), or L{None}
        when the session does not expire.
    """

    handler: IDialogHandler | None = None
    core: DialogCore | None = None
    inviteInProgress: bool = False
    terminationReason: TerminationReason | None = None
    lastAck: SIPRequest | None = None
    confirmedNotified: bool = False
    inviteResponse: SIPResponse | None = None
    #: The peer's BYE that ended the dialog (its C{Reason}, RFC 3326).
    remoteBye: SIPRequest | None = None
    localBody: bytes = field(default=b"", repr=False)
    localContentType: str | None = None
    remoteBody: bytes = field(default=b"", repr=False)
    peerAllow: frozenset[str] | None = None
    sessionTimer: SessionTimerTerms | None = None
    _refreshCall: IDelayedCall | None = field(default=None, repr=False)
    _expireCall: IDelayedCall | None = field(default=None, repr=False)
    _noUpdate: bool = field(default=False, repr=False)
    _retransmit: IDelayedCall | None = field(default=None, repr=False)
    _giveUp: IDelayedCall | None = field(default=None, repr=False)
    _pending2xx: tuple[SIPResponse, Flow, int] | None = field(default=None, repr=False)
    _interval: float = field(default=0.0, repr=False)

    _log = Logger()

    def _core(self) -> DialogCore:
        if self.core is None:
            raise DialogError("Dialog is not bound to a UA core")
        return self.core

    # -- UAS: 2xx retransmission until ACK (13.3.1.4) --------------------

    def start2xxRetransmission(self, response: SIPResponse, flow: Flow) -> None:
        """
        Retransmit our 2xx over unreliable flows (T1 doubling to T2) until
        the ACK; give up after 64*T1 and end the dialog with a BYE.  On
        reliable flows only the 64*T1 ACK timeout runs.
        """
        core = self._core()
        self._stop2xx()
        self._pending2xx = (response, flow, response.cseq.number)
        self._interval = core.timers.t1
        if not flow.reliable:
            self._retransmit = core.clock.callLater(self._interval, self._resend2xx)
        self._giveUp = core.clock.callLater(core.timers.timeout, self._noAck)

    def _resend2xx(self) -> None:
        self._retransmit = None
        if self._pending2xx is None:
            return
        core = self._core()
        response, flow, _ = self._pending2xx
        core.resendResponse(response, flow)
        self._interval = min(2 * self._interval, core.timers.t2)
        self._retransmit = core.clock.callLater(self._interval, self._resend2xx)

    def _stop2xx(self) -> None:
        for call in (self._retransmit, self._giveUp):
            if call is not None and call.active():
                call.cancel()
        self._retransmit = self._giveUp = None
        self._pending2xx = None

    def _noAck(self) -> None:
        self._giveUp = None
        if self._pending2xx is None:
            return
        self._stop2xx()
        self.inviteInProgress = False
        self._log.warn("No ACK for 2xx; ending the dialog", callID=self.callID)
        self.bye(reason=TerminationReason.NO_ACK).addErrback(lambda _: None)

    def ackReceived(self, ack: SIPRequest) -> None:
        """
        An ACK arrived in this dialog: stop retransmitting the 2xx it
        acknowledges, confirm the dialog.
        """
        if self._pending2xx is None:
            return
        try:
            number = ack.cseq.number
        except HeaderError:
            return
        if number != self._pending2xx[2]:
            return
        self._stop2xx()
        self.inviteInProgress = False
        self.notifyConfirmed()

    def notifyConfirmed(self) -> None:
        """
        Confirm the dialog and tell the handler, the first time only.
        """
        self.transition(DialogState.CONFIRMED)
        if not self.confirmedNotified:
            self.confirmedNotified = True
            self._tell("dialogConfirmed")

    # -- UAC: ACK for 2xx --------------------------------------------------

    def acknowledge(self, cseq: int) -> None:
        """
        Send the ACK for our INVITE's 2xx (section 13.2.2.4).
        """
        ack = self.createAck(cseq)
        self._core().sendAck(self, ack)

    # -- requests ------------------------------------------------------------

    def sendRequest(
        self,
        method: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
        *,
        byeIfGone: bool = False,
    ) -> Deferred[SIPResponse]:
        """
        Send a request in the dialog.  An INVITE (re-INVITE) is ACKed when
        its 2xx arrives and refreshes the remote target.  A 481 or 408
        answer ends the dialog (section 12.2.1.2).

        @param byeIfGone: End the dialog on a 481 or 408 with a BYE as
            well, as a failed session refresh does (RFC 4028 section 10).
        @return: Fires with the final response.
        """
        if self.state is DialogState.TERMINATED:
            return fail(DialogError("Dialog is terminated"))
        if method == "INVITE":
            if self.inviteInProgress:
                return fail(DialogError("An INVITE transaction is in progress"))
            self.inviteInProgress = True
        request = self.createRequest(method, headers, body, contentType)
        d = self._core().sendInDialog(self, request)

        def answered(response: SIPResponse) -> SIPResponse:
            if method == "INVITE":
                self.inviteInProgress = False
                if response.isSuccess:
                    self.refreshTarget(response)
                    self.acknowledge(request.cseq.number)
            if response.status in (481, 408) and method != "BYE":
                if byeIfGone and self.state is not DialogState.TERMINATED:
                    self.bye(
                        [("Reason", SESSION_EXPIRED_REASON)],
                        reason=TerminationReason.SESSION_EXPIRED,
                    ).addErrback(lambda _: None)
                else:
                    self.terminate(TerminationReason.REMOTE_GONE)
            return response

        return d.addCallback(answered)

    def bye(
        self,
        headers: Sequence[tuple[str, str]] = (),
        reason: TerminationReason = TerminationReason.LOCAL_BYE,
    ) -> Deferred[SIPResponse]:
        """
        End the dialog with BYE (section 15.1.1): the dialog is terminated
        at once (the handler is told), the returned Deferred fires with the
        BYE's final response.
        """
        if self.state is DialogState.TERMINATED:
            return fail(DialogError("Dialog is terminated"))
        request = self.createRequest("BYE", headers)
        self._stop2xx()
        d = self._core().sendInDialog(self, request)
        self.terminate(reason, forget=False)
        return d.addBoth(self._byeDone)

    def _byeDone(self, result: SIPResponse | Failure) -> SIPResponse | Failure:
        if self.core is not None:
            self.core.dialogEnded(self)
        return result

    # -- session timer (RFC 4028) ----------------------------------------------

    def startSessionTimer(self, terms: SessionTimerTerms | None) -> None:
        """
        A 2xx to a session refresh request (sent or received) set the
        session timer: (re)start it, or stop it for L{None} (a 2xx without
        C{Session-Expires} turns it off, RFC 4028 sections 7.2 and 9).
        """
        self._stopSessionTimer()
        self.sessionTimer = terms
        if terms is None or self.state is DialogState.TERMINATED:
            return
        clock = self._core().clock
        if terms.localRefresher:
            self._refreshCall = clock.callLater(
                terms.refreshDelay, self._refreshSession
            )
        self._expireCall = clock.callLater(terms.expiryDelay, self._sessionExpired)

    def _stopSessionTimer(self) -> None:
        for call in (self._refreshCall, self._expireCall):
            if call is not None and call.active():
                call.cancel()
        self._refreshCall = self._expireCall = None

    def _retryRefresh(self, delay: float) -> None:
        """
        Try the refresh again in C{delay} seconds (a glare, RFC 3261
        section 14.1), unless the session expires first.
        """
        if self.state is DialogState.TERMINATED or self.sessionTimer is None:
            return
        if self._refreshCall is not None and self._refreshCall.active():
            return
        self._refreshCall = self._core().clock.callLater(delay, self._refreshSession)

    def _refreshSession(self) -> None:
        """
        Send a session refresh (RFC 4028 section 7.4): an UPDATE without
        a body when the peer allows UPDATE, else a re-INVITE with our
        unchanged session description.
        """
        self._refreshCall = None
        terms = self.sessionTimer
        if terms is None or self.state is DialogState.TERMINATED:
            return
        useUpdate = (
            not self._noUpdate
            and self.peerAllow is not None
            and "UPDATE" in self.peerAllow
        )
        method = "UPDATE" if useUpdate else "INVITE"
        if method == "INVITE" and self.inviteInProgress:
            self._retryRefresh(random.uniform(2.1, 4.0))
            return
        headers = [("Supported", OPTION_TAG)] + requestHeaders(
            terms.interval, terms.minimum, terms.refresherParameter
        )
        body = self.localBody if method == "INVITE" else b""
        self._log.debug(
            "Refreshing the session with {method}", method=method, callID=self.callID
        )
        d = self.sendRequest(
            method,
            headers,
            body,
            self.localContentType if body else None,
            byeIfGone=True,
        )
        d.addCallbacks(
            self._refreshAnswered,
            self._refreshFailed,
            callbackArgs=(method, terms),
        )

    def _refreshAnswered(
        self, response: SIPResponse, method: str, terms: SessionTimerTerms
    ) -> None:
        """
        The answer to our refresh.  A 2xx sets the new terms (section
        7.2).  408 and 481 ended the dialog already, and so does a local
        503 (the peer cannot be reached; section 10, RFC 3261 section
        12.2.1.2).  422 is retried with the C{Min-SE} asked for (section
        7.3), an UPDATE the peer does not take as a re-INVITE, 491 later
        (RFC 3261 section 14.1).  Any other answer came from a peer that
        is there but will not refresh (a UA without the extension that
        refuses re-INVITEs): the session is kept for another interval, as
        the timer is ours alone, rather than ended under a live user.
        """
        if self.state is DialogState.TERMINATED:
            return
        status = response.status
        if 200 <= status < 300:
            self.startSessionTimer(
                termsFromResponse(response, terms.interval, terms.minimum)
            )
            return
        if status == 503 and "generated locally" in (response.header("Warning") or ""):
            self._log.warn(
                "Session refresh could not be sent; ending the dialog",
                callID=self.callID,
            )
            self.bye(
                [("Reason", SESSION_EXPIRED_REASON)],
                reason=TerminationReason.SESSION_EXPIRED,
            ).addErrback(lambda _: None)
            return
        if status == 422:
            try:
                minimum = minimumOf(response)
            except HeaderError:
                minimum = terms.minimum
            if minimum > terms.interval:
                self.sessionTimer = replace(terms, interval=minimum, minimum=minimum)
                self._refreshSession()
                return
        elif method == "UPDATE" and status in (405, 501):
            self._noUpdate = True
            self._refreshSession()
            return
        elif status == 491:
            self._retryRefresh(random.uniform(2.1, 4.0))
            return
        self._log.info(
            "Session refresh answered {status}; the peer is there, keeping"
            " the session",
            status=status,
            callID=self.callID,
        )
        self.startSessionTimer(terms)

    def _refreshFailed(self, reason: Failure) -> None:
        """
        The refresh could not be sent (an INVITE transaction in progress):
        try again shortly.
        """
        if isinstance(reason.value, DialogError):
            if self.state is not DialogState.TERMINATED:
                self._retryRefresh(random.uniform(2.1, 4.0))
            return
        self._log.failure("Session refresh failed", reason, callID=self.callID)

    def _sessionExpired(self) -> None:
        """
        No refresh in time (RFC 4028 section 10): BYE.
        """
        self._expireCall = None
        if self.state is DialogState.TERMINATED:
            return
        terms = self.sessionTimer
        self._log.warn(
            "SIP session expired without a refresh ({interval} s); ending the dialog",
            interval=terms.interval if terms is not None else None,
            callID=self.callID,
        )
        self.bye(
            [("Reason", SESSION_EXPIRED_REASON)],
            reason=TerminationReason.SESSION_EXPIRED,
        ).addErrback(lambda _: None)

    def terminate(self, reason: TerminationReason, forget: bool = True) -> None:
        """
        Mark the dialog terminated and tell the handler (once).
        """
        self._stop2xx()
        self._stopSessionTimer()
        if not self.transition(DialogState.TERMINATED):
            return
        self.terminationReason = reason
        self._log.info(
            "SIP dialog ended: {reason}", reason=reason.value, callID=self.callID
        )
        if forget and self.core is not None:
            self.core.dialogEnded(self)
        self._tell("dialogTerminated", reason)

    def _tell(self, method: str, *args: object) -> None:
        if self.handler is None:
            return
        try:
            getattr(self.handler, method)(self, *args)
        except Exception as e:
            self._log.failure(
                "Dialog handler failed in {method}",
                method=method,
                error=e,
                callID=self.callID,
            )
