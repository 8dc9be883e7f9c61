# -*- test-case-name: tests.chat.test_session -*-
"""
The chat session both directions share: one INVITE dialog joined to one
MSRP session (what sipsimple's session and chat stream gave).  The
incoming kind (L{stoxgw.chat.acceptor.IncomingChat}) and the outgoing kind
(L{stoxgw.chat.initiator.OutgoingChat}) are made by their own modules;
L{stoxgw.chat.session} gathers the API.  What makes them on either side,
L{stoxgw.chat.initiator.ChatInitiator} and
L{stoxgw.chat.acceptor.ChatAcceptor}, share L{ChatDirection}.  The
session's states, endings, handler interface and settings are in
L{stoxgw.chat.model}, the SDP helpers of offer and answer in
L{stoxgw.chat.offeranswer}.

A L{ChatSession} is ready once the dialog is confirmed (ACK sent or
received) and the MSRP session is bound to a connection; an incoming one
whose ACK or MSRP connection has not come within
L{ChatSettings.establishTimeout} of our 200 fails (RFC 7702 R-209 puts
the SIP user in the room before the answer: a caller that never ACKs or
connects must not stay there long).  It ends exactly once: locally
(L{ChatSession.end}: BYE, MSRP close), by a remote BYE (MSRP close), by
an MSRP failure, no MSRP connection or ACK in time, a peer that no longer
answers (MSRP keepalive, or the RFC 4028 session timer of the dialog) or
an unusable answer (BYE with a C{Reason} header, RFC 3326), or by a failed
INVITE; the L{IChatSessionHandler} hears C{chatEnded} once in every case.

Liveness: MSRP has no keepalive (RFC 4975), and a TCP keepalive only
shows that the peer's kernel is there, not the peer (a stopped process
still has its socket answered), nor the far end behind an MSRP relay.  So
a ready session that received nothing for L{ChatSettings.keepaliveInterval}
sends a bodiless SEND (RFC 4975 section 7.1.1), which the peer must
answer; no answer within L{ChatSettings.keepaliveTimeout} fails the
session (BYE, C{Reason: SIP;cause=503}).  The dialog's session timer (RFC
4028, in L{stoxgw.sip.dialog}) is the SIP side's check; a session refresh
(re-INVITE or UPDATE with the unchanged session description, or none) is
answered with our current one (RFC 4028 sections 7.4 and 9).

Time comes only from the injected L{IReactorTime}.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, fail
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw._util import failureOf
from stoxgw.chat.model import (
    CHAT_TRANSITIONS,
    ChatEnd,
    ChatSessionError,
    ChatSettings,
    ChatState,
    EndCause,
    IChatSessionHandler,
    IChatUpdateHandler,
)
from stoxgw.chat.offeranswer import OwnTerms, fingerprintText, offeredMSRP, reanswerMSRP
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import (
    LOCAL_FAILURE,
    IMSRPSessionHandler,
    IncomingMessage,
    MSRPSendError,
    MSRPSession,
    SendResult,
    SessionState,
)
from stoxgw.msrp.uri import MSRPURI
from stoxgw.sip.dialog import DialogState, TerminationReason
from stoxgw.sip.headers import HeaderError, Reason, parseReasons
from stoxgw.sip.invitedialog import IDialogHandler, InviteDialog
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.msrpmedia import MSRPMedia
from stoxgw.sip.sdp import SDPError, SDPNegotiationError, parseSDP
from stoxgw.sip.uri import quoteString
from stoxgw.sip.useragent import IncomingInvite, IncomingRequest, SIPUserAgent

#: The SIP cause put in the BYE's Reason header (RFC 3326) per end cause.
_BYE_CAUSES: dict[EndCause, int] = {
    EndCause.NEGOTIATION: 488,
    EndCause.MSRP_TIMEOUT: 408,
    EndCause.MSRP_FAILED: 503,
}


def _byeReason(bye: SIPRequest, default: str) -> tuple[int | None, str]:
    """
    The SIP cause and text of a BYE's C{Reason} header (RFC 3326), or
    (L{None}, C{default}) without a usable one.
    """
    value = bye.header("Reason")
    if not value:
        return None, default
    try:
        reasons = parseReasons(value)
    except HeaderError:
        return None, default
    for reason in reasons:
        if reason.protocol.upper() == "SIP":
            return reason.cause, reason.text or default
    return None, default


@implementer(IDialogHandler, IMSRPSessionHandler)
class ChatSession:
    """
    One INVITE dialog joined to one MSRP session.

    @ivar handler: The layer above.
    @ivar endpoint: The MSRP endpoint.
    @ivar clock: Time source (the MSRP connection timer).
    @ivar settings: The connection policy.
    @ivar incoming: Whether the peer sent the INVITE.
    @ivar state: The L{ChatState}.
    @ivar dialog: The INVITE dialog once it exists.
    @ivar msrp: The MSRP session once created.
    @ivar localMedia: Our MSRP stream description (offer or answer).
    @ivar remoteMedia: The peer's MSRP stream description, once known.
    @ivar ownTerms: What we take on the stream (to answer re-offers).
    @ivar active: Whether we open the MSRP connection (RFC 6135).
    @ivar endReason: How it ended, once ended.
    """

    _log = Logger()

    def __init__(
        self,
        handler: IChatSessionHandler,
        endpoint: MSRPEndpoint,
        clock: IReactorTime,
        settings: ChatSettings,
        *,
        incoming: bool,
    ) -> None:
        self.handler = handler
        self.endpoint = endpoint
        self.clock = clock
        self.settings = settings
        self.incoming = incoming
        self.state = ChatState.ANSWERING if incoming else ChatState.INVITING
        self.dialog: InviteDialog | None = None
        self.msrp: MSRPSession | None = None
        self.localMedia: MSRPMedia | None = None
        self.remoteMedia: MSRPMedia | None = None
        self.ownTerms: OwnTerms | None = None
        self.active = False
        self.endReason: ChatEnd | None = None
        self.callID: str | None = None
        self._confirmed = False
        self._bound = False
        self._timer: IDelayedCall | None = None
        self._waiting: list[Deferred[ChatSession]] = []
        self._invite: IncomingInvite | None = None
        self._byeHeaders: list[tuple[str, str]] | None = None
        self._inviting: Deferred[InviteDialog] | None = None
        self._keepalive: IDelayedCall | None = None
        self._probe: Deferred[SendResult] | None = None
        self._probeDeadline: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"<ChatSession {self.callID} {self.state.value}>"

    # -- state -------------------------------------------------------------

    def _setState(self, state: ChatState) -> None:
        """
        Move along L{CHAT_TRANSITIONS}.

        @raise ValueError: For a transition the table does not allow.
        """
        if state not in CHAT_TRANSITIONS[self.state]:
            raise ValueError(f"chat session cannot go from {self.state} to {state}")
        self.state = state

    @property
    def ended(self) -> bool:
        """
        Whether the session has ended.
        """
        return self.state is ChatState.ENDED

    @property
    def msrpSessionID(self) -> str | None:
        """
        Our MSRP URI as text (for logs), or L{None}.
        """
        return None if self.msrp is None else str(self.msrp.localURI)

    def whenReady(self) -> Deferred[ChatSession]:
        """
        A new L{Deferred} firing with this session once the dialog is
        confirmed and the MSRP session bound, or failing with
        L{ChatSessionError} if it ends first.
        """
        d: Deferred[ChatSession] = Deferred()
        if self.state is ChatState.READY:
            d.callback(self)
        elif self.state is ChatState.ENDED:
            assert self.endReason is not None
            d.errback(failureOf(ChatSessionError(self.endReason)))
        else:
            self._waiting.append(d)
        return d

    def _connecting(self) -> None:
        """
        The dialog exists: wait for the MSRP binding and the confirmation,
        within C{connectTimeout} (and, after our 200 to an incoming INVITE,
        C{establishTimeout}).
        """
        self._setState(ChatState.CONNECTING)
        if not (self._bound and self._confirmed):
            delay = self.settings.connectTimeout
            if self.incoming:
                delay = min(delay, self.settings.establishTimeout)
            self._timer = self.clock.callLater(delay, self._timedOut)
        self._checkReady()

    def _checkReady(self) -> None:
        """
        Become ready when both halves are up.
        """
        if self.state is not ChatState.CONNECTING:
            return
        if not (self._confirmed and self._bound):
            return
        self._setState(ChatState.READY)
        self._cancelTimer()
        self._log.info(
            "Chat session ready ({callID}, {msrpSessionID})",
            callID=self.callID,
            msrpSessionID=self.msrpSessionID,
        )
        self._scheduleKeepalive()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.callback(self)

    def _cancelTimer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _timedOut(self) -> None:
        """
        The MSRP connection or the ACK did not come in time.
        """
        self._timer = None
        if not self._bound:
            end = ChatEnd(
                EndCause.MSRP_TIMEOUT,
                _BYE_CAUSES[EndCause.MSRP_TIMEOUT],
                "No MSRP connection",
            )
        else:
            end = ChatEnd(EndCause.DIALOG_FAILED, 408, "No ACK")
        self._fail(end)

    # -- liveness --------------------------------------------------------------

    def _scheduleKeepalive(self) -> None:
        """
        (Re)arm the idle timer of a ready session (no probe in flight).
        """
        interval = self.settings.keepaliveInterval
        if interval <= 0 or self._probe is not None:
            return
        if self.state is not ChatState.READY:
            return
        call = self._keepalive
        if call is not None and call.active():
            call.reset(interval)
        else:
            self._keepalive = self.clock.callLater(interval, self._sendKeepalive)

    def _alive(self, result: Any = None) -> Any:
        """
        The peer showed it is there (a message, a NICKNAME, an answer to
        ours): restart the idle timer.  Passes C{result} through.
        """
        self._scheduleKeepalive()
        return result

    def _stopKeepalive(self) -> None:
        for call in (self._keepalive, self._probeDeadline):
            if call is not None and call.active():
                call.cancel()
        self._keepalive = self._probeDeadline = None
        probe, self._probe = self._probe, None
        if probe is not None and not probe.called:
            probe.addErrback(lambda _: None)
            probe.cancel()

    def _sendKeepalive(self) -> None:
        """
        Nothing arrived for a while: probe with a bodiless SEND (RFC 4975
        section 7.1.1) and give it C{keepaliveTimeout} to be answered.
        """
        self._keepalive = None
        if self.state is not ChatState.READY or self.msrp is None:
            return
        self._log.debug(
            "MSRP keepalive ({callID}, {msrpSessionID})",
            callID=self.callID,
            msrpSessionID=self.msrpSessionID,
        )
        probe = self._probe = self.msrp.sendKeepalive()
        self._probeDeadline = self.clock.callLater(
            self.settings.keepaliveTimeout, self._keepaliveTimedOut
        )
        probe.addCallbacks(self._keepaliveAnswered, self._keepaliveFailed)

    def _keepaliveDone(self) -> None:
        self._probe = None
        deadline, self._probeDeadline = self._probeDeadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _keepaliveAnswered(self, result: SendResult) -> None:
        self._keepaliveDone()
        self._alive()

    def _keepaliveFailed(self, reason: Failure) -> None:
        """
        An error answer still shows the peer is there, unless it does not
        know the session (481); no answer (408), a lost connection or a
        cancelled probe do not.
        """
        if isinstance(reason.value, CancelledError):
            # Cancelled by us: ended, failed, or timed out (which says so).
            return
        self._keepaliveDone()
        if self.state is not ChatState.READY:
            return
        error = reason.value
        if isinstance(error, MSRPSendError) and error.code not in (
            LOCAL_FAILURE,
            408,
            481,
        ):
            self._alive()
            return
        self._keepaliveLost(reason.getErrorMessage())

    def _keepaliveTimedOut(self) -> None:
        self._probeDeadline = None
        probe, self._probe = self._probe, None
        if probe is not None and not probe.called:
            probe.addErrback(lambda _: None)
            probe.cancel()
        if self.state is ChatState.READY:
            self._keepaliveLost(
                f"no answer within {self.settings.keepaliveTimeout:g} s"
            )

    def _keepaliveLost(self, detail: str) -> None:
        self._log.warn(
            "MSRP peer gone ({callID}, {msrpSessionID}): keepalive failed: {error}",
            callID=self.callID,
            msrpSessionID=self.msrpSessionID,
            error=detail,
        )
        self._fail(
            ChatEnd(
                EndCause.MSRP_FAILED,
                _BYE_CAUSES[EndCause.MSRP_FAILED],
                f"MSRP keepalive failed: {detail}",
            )
        )

    # -- ending --------------------------------------------------------------

    def end(self, text: str | None = None, status: int | None = None) -> None:
        """
        End the session locally: BYE (or CANCEL while inviting), MSRP
        close.  Nothing happens if it has ended already.

        @param text: A text for the BYE's C{Reason} header, or L{None}.
        @param status: A SIP cause for the BYE's C{Reason} header (RFC
            3326; e.g. 403 when the MUC kicked the user, R-219), or L{None}.
        """
        self._finish(ChatEnd(EndCause.LOCAL, status, text or ""), sendBye=True)

    def _fail(self, end: ChatEnd) -> None:
        """
        End on a failure: BYE with a Reason header if the dialog lives.
        """
        self._finish(end, sendBye=True)

    def _finish(self, end: ChatEnd, sendBye: bool) -> None:
        """
        End exactly once: stop the timer, close MSRP, end the dialog (BYE,
        CANCEL or rejection), fail the waiters, tell the handler.
        """
        if self.state is ChatState.ENDED:
            return
        self._setState(ChatState.ENDED)
        self.endReason = end
        self._cancelTimer()
        self._stopKeepalive()
        self._log.info(
            "Chat session ended ({callID}, {msrpSessionID}): {error}",
            callID=self.callID,
            msrpSessionID=self.msrpSessionID,
            error=end.cause.value + (": " + end.text if end.text else ""),
        )
        dialog = self.dialog
        if (
            sendBye
            and dialog is not None
            and dialog.state is not DialogState.TERMINATED
        ):
            headers: list[tuple[str, str]] = []
            reason = self._reasonHeader(end)
            if reason is not None:
                headers.append(("Reason", reason))
            if self.incoming and not self._confirmed:
                # RFC 3261 section 15: the callee waits for the ACK before
                # its BYE (the dialog sends one itself if no ACK comes).
                self._byeHeaders = headers
            else:
                dialog.bye(headers).addErrback(self._byeFailed)
        # The BYE is written before the MSRP connection may close, so the
        # peer usually sees the BYE first.
        msrp = self.msrp
        if msrp is not None and msrp.state in (
            SessionState.WAITING,
            SessionState.BOUND,
        ):
            msrp.close()
        invite = self._invite
        if invite is not None and not invite.answered:
            invite.reject(end.status or 500)
        inviting, self._inviting = self._inviting, None
        if inviting is not None and not inviting.called:
            inviting.cancel()
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            if not d.called:
                d.errback(failureOf(ChatSessionError(end)))
        try:
            self.handler.chatEnded(self, end)
        except Exception as e:
            self._log.failure(
                "Chat handler failed in chatEnded ({callID})",
                callID=self.callID,
                error=e,
            )

    @staticmethod
    def _reasonHeader(end: ChatEnd) -> str | None:
        """
        The C{Reason} header value for our BYE (RFC 3326), or L{None}.
        """
        cause = _BYE_CAUSES.get(end.cause, end.status)
        parameters: list[tuple[str, str | None]] = []
        if cause is not None:
            parameters.append(("cause", str(cause)))
        if end.text:
            parameters.append(("text", quoteString(end.text)))
        if not parameters:
            return None
        return Reason("SIP", tuple(parameters)).serialize()

    def _byeFailed(self, reason: Failure) -> None:
        self._log.warn(
            "BYE failed ({callID}): {error}",
            callID=self.callID,
            error=reason.getErrorMessage(),
        )

    # -- IDialogHandler ------------------------------------------------------

    def dialogConfirmed(self, dialog: InviteDialog) -> None:
        """
        The ACK arrived (incoming) or was sent (outgoing).
        """
        self.dialog = dialog
        self._confirmed = True
        headers, self._byeHeaders = self._byeHeaders, None
        if headers is not None and dialog.state is not DialogState.TERMINATED:
            dialog.bye(headers).addErrback(self._byeFailed)
        self._checkReady()

    def dialogTerminated(self, dialog: InviteDialog, reason: TerminationReason) -> None:
        """
        The dialog ended: close MSRP, tell the layer above (no BYE: the
        dialog is gone).
        """
        causes = {
            TerminationReason.REMOTE_BYE: EndCause.REMOTE_BYE,
            TerminationReason.LOCAL_BYE: EndCause.LOCAL,
            TerminationReason.SESSION_EXPIRED: EndCause.SESSION_EXPIRED,
            TerminationReason.SHUTDOWN: EndCause.SHUTDOWN,
        }
        status, text = None, reason.value
        bye = getattr(dialog, "remoteBye", None)
        if reason is TerminationReason.REMOTE_BYE and bye is not None:
            # RFC 3326: why the peer hung up (a focus: kicked, shut down).
            status, text = _byeReason(bye, text)
        self._finish(
            ChatEnd(causes.get(reason, EndCause.DIALOG_FAILED), status, text),
            sendBye=False,
        )

    def reinviteReceived(self, dialog: InviteDialog, invite: object) -> None:
        """
        A re-INVITE: a session refresh (RFC 4028 sections 7.4 and 9: no
        offer, or the offer we have already, same C{o=} line) is answered
        200 with our current session description (the UA core adds the
        session timer); a re-offer that changes the session is answered as
        L{_reanswer} says, or refused with 488 (the session stays as it
        is, RFC 3261 section 14.2).
        """
        assert isinstance(invite, IncomingInvite)
        body = invite.request.body
        if self._unchanged(dialog, body):
            invite.accept(dialog.localBody, dialog.localContentType)
            return
        try:
            answer, taken = self._reanswer(dialog, body)
        except SDPError as e:
            invite.reject(488, f"Not Acceptable Here ({e.reason})")
            return
        invite.accept(answer, "application/sdp")
        self._updated(taken)

    def requestReceived(self, dialog: InviteDialog, request: object) -> None:
        """
        Another request in the dialog: an UPDATE with the unchanged offer
        is answered 200 with ours (a bodiless one the UA core answers
        itself), one with a changed offer as a re-INVITE's (RFC 3311
        section 5.2); others get 405 with Allow.
        """
        assert isinstance(request, IncomingRequest)
        if request.request.method == "UPDATE":
            body = request.request.body
            if self._unchanged(dialog, body):
                request.respond(
                    200, None, (), dialog.localBody, dialog.localContentType
                )
                return
            try:
                answer, taken = self._reanswer(dialog, body)
            except SDPError as e:
                request.respond(488, f"Not Acceptable Here ({e.reason})")
                return
            dialog.localBody, dialog.localContentType = answer, "application/sdp"
            dialog.remoteBody = body
            request.respond(200, None, (), answer, "application/sdp")
            self._updated(taken)
            return
        request.respond(405, None, [("Allow", ", ".join(request.ua.allowedMethods))])

    def _reanswer(self, dialog: InviteDialog, offer: bytes) -> tuple[bytes, MSRPMedia]:
        """
        Answer the peer's re-offer that changes the session (see
        L{reanswerMSRP}) and make it our description.

        @return: Our answer and the peer's stream as offered.
        @raise SDPError: Malformed, or refused (the reason for the 488).
        """
        local, remote, terms = self.localMedia, self.remoteMedia, self.ownTerms
        if local is None or remote is None or terms is None or self.state is not ChatState.READY:
            raise SDPNegotiationError("Session not established")
        answer, taken = reanswerMSRP(
            parseSDP(offer), parseSDP(dialog.localBody), local, remote, terms, self.active
        )
        self.localMedia = offeredMSRP(answer)
        return answer.serialize(), taken

    def _updated(self, media: MSRPMedia) -> None:
        """
        A re-offer was answered 200: the peer's stream is C{media} from
        now on (the types and size we send, R-158, R-159), and a handler
        that provides L{IChatUpdateHandler} hears of it.
        """
        previous, self.remoteMedia = self.remoteMedia, media
        assert previous is not None and self.msrp is not None
        self.msrp.updatePeer(
            acceptTypes=media.acceptTypes,
            acceptWrappedTypes=media.acceptWrappedTypes,
            maxSize=media.maxSize,
        )
        self._log.info(
            "Chat session updated by the peer ({callID}): accept-types {types}, chatroom {chatroom}",
            callID=self.callID,
            types=" ".join(media.acceptTypes),
            chatroom=" ".join(media.chatroom) if media.chatroom is not None else "(none)",
        )
        if IChatUpdateHandler.providedBy(self.handler):
            try:
                self.handler.chatUpdated(self, previous)
            except Exception as e:
                self._log.failure(
                    "Chat handler failed in chatUpdated ({callID})",
                    callID=self.callID,
                    error=e,
                )

    def _unchanged(self, dialog: InviteDialog, offer: bytes) -> bool:
        """
        Whether a re-offer leaves the session as it is: no offer at all,
        the same C{o=} line as the peer's last description (RFC 3264
        section 8, RFC 4975 section 8.4, RFC 4028 section 7.4), or the
        same MSRP stream in every attribute (a peer that counts up its
        version without a change).  We need our own description to answer
        with.
        """
        if self.state is ChatState.ENDED or not dialog.localBody:
            return False
        if not offer:
            return True
        try:
            new = parseSDP(offer)
            if dialog.remoteBody and parseSDP(dialog.remoteBody).origin == new.origin:
                return True
            media = offeredMSRP(new)
        except SDPError:
            return False
        return media == self.remoteMedia

    # -- IMSRPSessionHandler -------------------------------------------------

    def sessionBound(self) -> None:
        """
        The MSRP session is bound to a connection (the ACK may still be
        awaited, within the same timer).
        """
        self._bound = True
        if self._confirmed:
            self._cancelTimer()
        self._checkReady()

    def messageReceived(self, message: IncomingMessage) -> Any:
        """
        Hand a message to the layer above.
        """
        self._alive()
        return self.handler.messageReceived(self, message)

    def nicknameRequested(self, nickname: str) -> Any:
        """
        Hand a NICKNAME request to the layer above.
        """
        self._alive()
        return self.handler.nicknameRequested(self, nickname)

    def sessionFailed(self, reason: Failure) -> None:
        """
        The MSRP session failed: BYE, tell the layer above.  A ready
        session first waits L{ChatSettings.byeGrace} for the peer's BYE,
        which usually follows the close of its MSRP connection: then it
        ends as a remote BYE, and no BYE crosses the peer's.
        """
        end = ChatEnd(
            EndCause.MSRP_FAILED,
            _BYE_CAUSES[EndCause.MSRP_FAILED],
            reason.getErrorMessage(),
        )
        self._stopKeepalive()
        if self.state is ChatState.READY and self.settings.byeGrace > 0:
            self._cancelTimer()
            self._timer = self.clock.callLater(self.settings.byeGrace, self._fail, end)
            return
        self._fail(end)

    # -- sending -------------------------------------------------------------

    def _unusable(self) -> MSRPSendError | None:
        if self.state is ChatState.ENDED or self.msrp is None:
            return MSRPSendError(
                LOCAL_FAILURE,
                "chat session ended" if self.ended else "no MSRP session yet",
            )
        return None

    def sendMessage(
        self, contentType: str, body: bytes, **options: Any
    ) -> Deferred[SendResult]:
        """
        Send a message over MSRP (see L{MSRPSession.sendMessage}; queued
        until the session is bound).

        @param options: C{messageID}, C{successReport}, C{failureReport},
            C{extraHeaders}.
        """
        unusable = self._unusable()
        if unusable is not None:
            return fail(unusable)
        assert self.msrp is not None
        return self.msrp.sendMessage(contentType, body, **options).addCallback(
            self._alive
        )

    def sendNickname(self, nickname: str) -> Deferred[int]:
        """
        Send NICKNAME (RFC 7701 section 7.1, RFC 7702 section 5.2).

        @return: Fires with 200 or fails with L{MSRPSendError} (425...).
        """
        unusable = self._unusable()
        if unusable is not None:
            return fail(unusable)
        assert self.msrp is not None
        return self.msrp.sendNickname(nickname)

    def peerAccepts(self, contentType: str, wrapped: bool = False) -> bool:
        """
        Whether the peer's SDP accepts a type (R-158).
        """
        return self.msrp is not None and self.msrp.peerAccepts(contentType, wrapped)

    # -- set-up helpers ------------------------------------------------------

    def _started(self) -> None:
        """
        Tell the layer above the session exists.
        """
        try:
            self.handler.chatStarted(self)
        except Exception as e:
            self._log.failure(
                "Chat handler failed in chatStarted ({callID})",
                callID=self.callID,
                error=e,
            )

    def _connectingFailed(self, end: ChatEnd) -> None:
        """
        The dialog exists but the session cannot be set up: BYE with a
        Reason header.
        """
        self._setState(ChatState.CONNECTING)
        self._fail(end)

    def _connectActive(self, path: Sequence[MSRPURI]) -> None:
        """
        Open the connection to the first path URI (R-155) or through the
        relay (R-166); failures arrive as L{sessionFailed}.
        """
        assert self.msrp is not None and self.remoteMedia is not None
        self.endpoint.connectSession(
            self.msrp, path, fingerprintText(self.remoteMedia)
        ).addErrback(lambda reason: None)


class ChatDirection:
    """
    What makes the chat sessions of one direction works with (the base of
    L{stoxgw.chat.initiator.ChatInitiator} and
    L{stoxgw.chat.acceptor.ChatAcceptor}).

    @ivar ua: The UA core.
    @ivar endpoint: The MSRP endpoint.
    @ivar clock: Time source.
    @ivar settings: The connection policy.
    """

    def __init__(
        self,
        ua: SIPUserAgent,
        endpoint: MSRPEndpoint,
        clock: IReactorTime,
        settings: ChatSettings = ChatSettings(),
    ) -> None:
        self.ua = ua
        self.endpoint = endpoint
        self.clock = clock
        self.settings = settings
