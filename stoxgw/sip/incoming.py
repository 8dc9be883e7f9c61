# -*- test-case-name: tests.sip.test_useragent -*-
"""
Requests the UA core receives (RFC 3261 section 8.2, 12.2.2, 9.2, 15.1.2).

L{RequestDispatcher} is the L{ITransactionUser} of the UA's transaction
layer.  A request that starts a server transaction goes through RFC 3261
section 8.2 in order:

 1. admission (L{stoxgw.sip.admission.IRequestAdmission}): L{SIPTrust}
    admits trusted peers (CIDR list, TLS identities) and answers others
    C{403}; L{stoxgw.sip.admission.DigestAdmission} challenges them
    instead (C{401}, RFC 3261 section 22) and records the authenticated
    user on the server transaction (C{authenticatedUser});
 2. C{Max-Forwards: 0} gets C{483} (section 16.3 lets OPTIONS be answered);
 3. a Request-URI that is not sip/sips gets C{416} (section 8.2.2.1);
 4. an unknown method gets C{501}, a known one we do not take C{405} with
    Allow (section 8.2.1);
 5. an unsupported Require option gets C{420} with Unsupported (8.2.2.3);
 6. CANCEL: C{200}, and C{487} for the INVITE if still unanswered
    (section 9.2); C{481} if no INVITE matches;
 7. with a To tag: the request belongs to a dialog (section 12.2.2), else
    C{481}; BYE ends it (section 15.1.2), INVITE is a re-INVITE (C{491} if
    one is pending, section 14.2), other methods go to the dialog's
    handler, except that SUBSCRIBE, NOTIFY and REFER are first offered to
    the L{IDialogUsageHandler}s (RFC 5057 usages: subscriptions, REFER,
    in their own dialogs or sharing an INVITE dialog);
 8. without a To tag: BYE gets C{481}; INVITE goes to the L{IInviteHandler}
    and other methods to the L{IRequestHandler} registered for the method
    whose Request-URI match accepts it (C{404} if none); OPTIONS without a
    handler is answered C{200} with Allow, Accept and Supported (section
    11.2).

Handlers answer through L{IncomingInvite} and L{IncomingRequest}; an
exception in a handler is logged and answered C{500}.  With session
timers (RFC 4028 section 9) an INVITE, re-INVITE or UPDATE asking for less
than our C{Min-SE} gets C{422} before any handler sees it, the 2xx of the
others carries C{Session-Expires} and starts the dialog's timer, and a
bodiless UPDATE in a dialog is answered here.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Sequence

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from stoxgw.sip.admission import AdmissionVerdict
from stoxgw.sip.dialog import Dialog, DialogState, TerminationReason, dialogIDOf
from stoxgw.sip.headers import HeaderError, parseMaxForwards, parseTokenList
from stoxgw.sip.invitedialog import IDialogHandler, InviteDialog
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.sessiontimer import IntervalTooSmall, SessionTimerTerms, answerRequest
from stoxgw.sip.transaction import (
    InviteServerTransaction,
    ITransactionUser,
    ServerTransaction,
    TransactionState,
)
from stoxgw.sip.transport import Flow, TransportKind, newTag
from stoxgw.sip.uri import NameAddr, SIPURI

if TYPE_CHECKING:
    from stoxgw.sip.useragent import SIPUserAgent

__all__ = [
    "KNOWN_METHODS",
    "CORE_METHODS",
    "IN_DIALOG_METHODS",
    "USAGE_METHODS",
    "allowOf",
    "IInviteHandler",
    "IRequestHandler",
    "IDialogUsageHandler",
    "IncomingRequest",
    "IncomingInvite",
    "makeUASDialog",
    "RequestDispatcher",
]

#: Methods of RFC 3261 and its common extensions: not allowed ones get
#: 405, anything else 501 (section 8.2.1).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

#: Methods the core always takes.
CORE_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS")

#: Methods a dialog's handler may receive inside an INVITE dialog.
IN_DIALOG_METHODS = frozenset({"INFO", "MESSAGE", "NOTIFY", "REFER", "SUBSCRIBE"})


def allowOf(message: SIPRequest | SIPResponse) -> frozenset[str] | None:
    """
    The methods a message's Allow header lists (upper case), or L{None}
    without one (or a malformed one).
    """
    lines = message.headers.getLines("Allow")
    if not lines:
        return None
    return _allowSet(tuple(lines))


@lru_cache(maxsize=64)
def _allowSet(lines: tuple[str, ...]) -> frozenset[str] | None:
    """
    L{allowOf} for the lines of the Allow fields: each dialog keeps its
    peer's set for its lifetime, and peers of one kind send the same
    lines, so their dialogs share one set (about 1 KB a dialog otherwise,
    bench/README.md W7).  Bounded, since the lines are the peer's.
    """
    try:
        return frozenset(method.upper() for method in parseTokenList(lines))
    except HeaderError:
        return None


class IInviteHandler(Interface):
    """
    Takes INVITEs outside dialogs (the interworking layer).
    """

    def inviteReceived(invite: IncomingInvite) -> None:
        """
        An INVITE arrived: answer with C{invite.sendProvisional},
        C{invite.accept} (-> an L{InviteDialog}) or C{invite.reject}.
        C{invite.cancelled} fires if the caller cancels first.
        """


class IRequestHandler(Interface):
    """
    Takes non-INVITE requests outside dialogs (SUBSCRIBE, REFER, MESSAGE,
    OPTIONS...).
    """

    def requestReceived(request: IncomingRequest) -> None:
        """
        A request arrived: answer with C{request.respond}.
        """


#: Methods offered to the L{IDialogUsageHandler}s before the INVITE
#: dialog's handler (RFC 5057 dialog usages: subscriptions, REFER).
USAGE_METHODS = frozenset({"SUBSCRIBE", "NOTIFY", "REFER"})


class IDialogUsageHandler(Interface):
    """
    Takes requests with a To tag that belong to a dialog usage other than
    INVITE (RFC 5057): subscriptions (RFC 6665) and REFER (RFC 3515), in
    their own dialogs or sharing an INVITE dialog.
    """

    def inDialogRequestReceived(request: IncomingRequest) -> bool:
        """
        A SUBSCRIBE, NOTIFY or REFER with a To tag arrived
        (C{request.dialog} is the INVITE dialog it names, if any; its
        CSeq is not checked yet).

        @return: Whether the request was taken (and answered); if not, it
            goes to the INVITE dialog's handler, or gets C{481}.
        """


class IncomingRequest:
    """
    A received request waiting for its final response.

    @ivar request: The request.
    @ivar transaction: Its server transaction.
    @ivar toTag: The To tag our responses carry (RFC 3261 8.2.6.2).
    @ivar dialog: The dialog it arrived in, or L{None}.
    @ivar sessionTimer: For a session refresh request (INVITE, UPDATE)
        when session timers are on: the terms a 2xx sets and the header
        fields it carries (RFC 4028 section 9); the UA core fills it in.
    """

    _log = Logger()

    def __init__(
        self,
        ua: SIPUserAgent,
        request: SIPRequest,
        transaction: ServerTransaction,
        dialog: InviteDialog | None = None,
    ) -> None:
        self.ua = ua
        self.request = request
        self.transaction = transaction
        self.dialog = dialog
        self.toTag = dialog.localTag if dialog is not None else newTag()
        self.sessionTimer: (
            tuple[SessionTimerTerms, tuple[tuple[str, str], ...]] | None
        ) = None

    @property
    def flow(self) -> Flow:
        """
        Where the request came from.
        """
        return self.transaction.flow

    @property
    def answered(self) -> bool:
        """
        Whether a final response was sent.
        """
        return self.transaction.finalSent or (
            self.transaction.state is TransactionState.TERMINATED
        )

    def makeResponse(
        self,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Build a response (not sent); a 2xx to a session refresh request
        carries the session timer header fields (RFC 4028 section 9).
        """
        if self.sessionTimer is not None and 200 <= status < 300:
            headers = list(headers) + list(self.sessionTimer[1])
        response = self.request.makeResponse(
            status, reason, toTag=self.toTag, extraHeaders=headers
        )
        if self.ua.settings.userAgent and "Server" not in response.headers:
            response = response.addHeader("Server", self.ua.settings.userAgent)
        if body or contentType is not None:
            response = response.withBody(body, contentType)
        return response

    def respond(
        self,
        status: int,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Send a response.

        @raise stoxgw.sip.transaction.InvalidTransition: Already answered.
        """
        response = self.makeResponse(status, reason, headers, body, contentType)
        self.transaction.respond(response)
        if 200 <= status < 300 and self.dialog is not None:
            self._refreshed(self.dialog)
        return response

    def _refreshed(self, dialog: InviteDialog) -> None:
        """
        A 2xx went out: (re)start the dialog's session timer (RFC 4028
        section 9: from the transmission of the 2xx).
        """
        if self.sessionTimer is not None:
            dialog.startSessionTimer(self.sessionTimer[0])


class IncomingInvite(IncomingRequest):
    """
    A received INVITE (initial or re-INVITE) waiting for an answer.

    @ivar cancelled: Fires (with L{None}) if a CANCEL ended it before it
        was answered; the core has sent 487 by then.
    """

    def __init__(
        self,
        ua: SIPUserAgent,
        request: SIPRequest,
        transaction: ServerTransaction,
        dialog: InviteDialog | None = None,
    ) -> None:
        super().__init__(ua, request, transaction, dialog)
        self.cancelled: Deferred[None] = Deferred()

    @property
    def isReinvite(self) -> bool:
        """
        Whether this INVITE arrived in an existing dialog.
        """
        return self.dialog is not None

    def sendProvisional(
        self,
        status: int = 180,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes = b"",
        contentType: str | None = None,
    ) -> SIPResponse:
        """
        Send a 1xx (with our To tag unless it is 100).
        """
        if not 100 <= status < 200:
            raise ValueError("Not a provisional status")
        return self.respond(status, reason, headers, body, contentType)

    def accept(
        self,
        body: bytes = b"",
        contentType: str | None = "application/sdp",
        headers: Sequence[tuple[str, str]] = (),
        *,
        contact: NameAddr | None = None,
        handler: IDialogHandler | None = None,
    ) -> InviteDialog:
        """
        Answer 200 OK (Contact, Record-Route copied by makeResponse,
        Allow, Supported) and make the dialog (or update it for a
        re-INVITE); the 2xx is retransmitted until the ACK.

        @param contact: Our Contact (default: L{SIPUserAgent.contactFor}
            the request's transport and Request-URI user); pass one with
            C{isfocus} or a GRUU as RFC 7702 needs.
        @param handler: The dialog's handler (initial INVITE).
        @raise DialogError: The INVITE has no Contact.
        """
        ua = self.ua
        if contact is None:
            if self.dialog is not None:
                contact = self.dialog.localContact
            else:
                user = (
                    self.request.uri.user
                    if isinstance(self.request.uri, SIPURI)
                    else None
                )
                contact = ua.contactFor(self.flow.transport, user=user)
        extra = (
            [("Contact", contact.serialize())] + ua.capabilityHeaders() + list(headers)
        )
        response = self.makeResponse(
            200, None, extra, body, contentType if body else None
        )
        if self.dialog is None:
            dialog = makeUASDialog(ua, self.request, self.toTag, contact, self.flow)
            dialog.handler = handler
            dialog.peerAllow = allowOf(self.request)
        else:
            dialog = self.dialog
            dialog.localContact = contact
            dialog.refreshTarget(self.request)
        if body:
            dialog.localBody = body
            dialog.localContentType = contentType
        if self.request.body:
            dialog.remoteBody = self.request.body
        self.transaction.respond(response)
        dialog.start2xxRetransmission(response, self.flow)
        self._refreshed(dialog)
        return dialog

    def reject(
        self,
        status: int = 486,
        reason: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
    ) -> SIPResponse:
        """
        Answer with a failure (3xx-6xx).
        """
        if status < 300:
            raise ValueError("Not a failure status")
        if self.dialog is not None:
            self.dialog.inviteInProgress = False
        return self.respond(status, reason, headers)

    def cancelledByPeer(self) -> None:
        """
        A CANCEL matched it (L{RequestDispatcher}): 487 unless answered,
        and L{cancelled} fires.
        """
        if self.answered:
            return
        self.respond(487)
        if self.dialog is not None:
            self.dialog.inviteInProgress = False
        self.cancelled.callback(None)


def makeUASDialog(
    ua: SIPUserAgent, request: SIPRequest, localTag: str, contact: NameAddr, flow: Flow
) -> InviteDialog:
    """
    The UAS dialog of an INVITE we accept (RFC 3261 section 12.1.1),
    bound to the UA core; secure for a sips Request-URI over TLS.
    """
    base = Dialog.fromIncomingRequest(
        request,
        localTag,
        contact,
        secure=flow.transport is TransportKind.TLS
        and isinstance(request.uri, SIPURI)
        and request.uri.secure,
        flow=flow,
    )
    dialog = ua.bindDialog(base)
    return dialog


@implementer(ITransactionUser)
class RequestDispatcher:
    """
    Admits, checks and routes the requests the transaction layer hands
    to the UA core (see the module docstring); ACKs to their dialogs,
    2xx retransmissions to the ACK they need (L{stoxgw.sip.outgoing}).

    @ivar ua: The UA core: its settings, admission, handlers and dialogs.
    """

    _log = Logger()

    def __init__(self, ua: SIPUserAgent) -> None:
        self.ua = ua
        self._invites: dict[ServerTransaction, IncomingInvite] = {}

    def requestReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        try:
            self._process(request, transaction)
        except Exception as e:
            self._log.failure(
                "Failed processing {method}",
                method=request.method,
                error=e,
                peer=str(transaction.flow.source),
                callID=request.header("Call-ID"),
            )
            if (
                not transaction.finalSent
                and transaction.state is not TransactionState.TERMINATED
            ):
                try:
                    transaction.respond(request.makeResponse(500, toTag=newTag()))
                except Exception:
                    pass

    def _reply(
        self,
        request: SIPRequest,
        transaction: ServerTransaction,
        status: int,
        headers: Sequence[tuple[str, str]] = (),
        reason: str | None = None,
    ) -> None:
        response = request.makeResponse(
            status, reason, toTag=newTag(), extraHeaders=headers
        )
        if self.ua.settings.userAgent:
            response = response.addHeader("Server", self.ua.settings.userAgent)
        transaction.respond(response)

    def _process(self, request: SIPRequest, transaction: ServerTransaction) -> None:
        flow = transaction.flow
        method = request.method
        decision = self.ua.admission.decide(request, flow)
        if not decision.admitted:
            if decision.verdict is AdmissionVerdict.CHALLENGE:
                self._log.debug(
                    "Challenged {method} from {peer}: {error}",
                    method=method,
                    peer=str(flow.source),
                    error=decision.detail,
                    callID=request.header("Call-ID"),
                )
            else:
                self._log.warn(
                    "Refused {method} from untrusted {peer}: {error}",
                    method=method,
                    peer=str(flow.source),
                    error=decision.detail,
                    callID=request.header("Call-ID"),
                )
            self._reply(
                request,
                transaction,
                decision.status,
                decision.headers,
                reason=decision.reason,
            )
            return
        transaction.authenticatedUser = decision.user
        maxForwards = request.header("Max-Forwards")
        if (
            maxForwards is not None
            and parseMaxForwards(maxForwards) == 0
            and method != "OPTIONS"
        ):
            self._reply(request, transaction, 483)
            return
        if not isinstance(request.uri, SIPURI):
            self._reply(request, transaction, 416)
            return
        allowed = set(self.ua.allowedMethods)
        toTag = request.toAddress.tag
        if toTag is not None:
            allowed |= IN_DIALOG_METHODS
        if method not in allowed:
            if method in KNOWN_METHODS:
                self._reply(request, transaction, 405, self.ua.capabilityHeaders()[:1])
            else:
                self._reply(request, transaction, 501)
            return
        if method != "CANCEL":
            required = parseTokenList(request.headers.getLines("Require"))
            unsupported = [o for o in required if o not in self.ua.supported]
            if unsupported:
                self._reply(
                    request, transaction, 420, [("Unsupported", ", ".join(unsupported))]
                )
                return
        if method == "CANCEL":
            self._cancelReceived(request, transaction)
            return
        if toTag is not None:
            self._inDialog(request, transaction, toTag)
            return
        if method in ("BYE", "UPDATE"):
            self._reply(request, transaction, 481)
            return
        handler = self.ua.findHandler(method, request.uri)
        if method == "INVITE":
            if request.contact is None or not request.contact.addresses:
                self._reply(
                    request, transaction, 400, reason="Bad Request (no Contact)"
                )
                return
            if handler is None:
                self._reply(request, transaction, 404)
                return
            assert isinstance(transaction, InviteServerTransaction)
            invite = IncomingInvite(self.ua, request, transaction)
            if not self._negotiateSessionTimer(invite):
                return
            self._track(transaction, invite)
            self._callHandler(lambda: handler.inviteReceived(invite), invite)
            return
        if handler is None:
            if method == "OPTIONS":
                self._answerOptions(IncomingRequest(self.ua, request, transaction))
            else:
                self._reply(request, transaction, 404)
            return
        incoming = IncomingRequest(self.ua, request, transaction)
        self._callHandler(lambda: handler.requestReceived(incoming), incoming)

    def _negotiateSessionTimer(self, incoming: IncomingRequest) -> bool:
        """
        Session timers (RFC 4028 section 9) for a session refresh request
        (INVITE or UPDATE): note the terms and header fields of its 2xx on
        C{incoming}, or answer 422 with C{Min-SE} (interval too small) or
        400 (malformed C{Session-Expires} or C{Min-SE}).

        @return: Whether the request goes on (L{False}: it was answered).
        """
        settings = self.ua.settings.sessionTimer
        if settings is None:
            return True
        request = incoming.request
        try:
            incoming.sessionTimer = answerRequest(request, settings)
        except IntervalTooSmall as e:
            self._log.info(
                "Session interval too small in {method} from {peer}: {error}",
                method=request.method,
                peer=str(incoming.flow.source),
                error=str(e),
                callID=request.header("Call-ID"),
            )
            incoming.respond(422, None, [("Min-SE", str(e.minimum))])
            return False
        except HeaderError as e:
            self._log.warn(
                "Malformed session timer header in {method} from {peer}: {error}",
                method=request.method,
                peer=str(incoming.flow.source),
                error=str(e),
                callID=request.header("Call-ID"),
            )
            incoming.respond(400, "Bad Request (Session-Expires or Min-SE)")
            return False
        return True

    def _track(
        self, transaction: InviteServerTransaction, invite: IncomingInvite
    ) -> None:
        self._invites[transaction] = invite
        transaction.whenTerminated.append(self._untrack)

    def _untrack(self, transaction: ServerTransaction) -> None:
        self._invites.pop(transaction, None)

    def _callHandler(self, call: Callable[[], None], incoming: IncomingRequest) -> None:
        try:
            call()
        except Exception as e:
            self._log.failure(
                "SIP handler failed on {method}",
                method=incoming.request.method,
                error=e,
                callID=incoming.request.header("Call-ID"),
            )
            if not incoming.answered:
                try:
                    incoming.respond(500)
                except Exception:
                    pass

    def _answerOptions(self, incoming: IncomingRequest) -> None:
        incoming.transaction.respond(self.ua.optionsResponse(incoming))

    def _cancelReceived(
        self, request: SIPRequest, transaction: ServerTransaction
    ) -> None:
        inviteTransaction = self.ua.layer.findInvite(request)
        if inviteTransaction is None:
            self._reply(request, transaction, 481)
            return
        invite = self._invites.get(inviteTransaction)
        toTag = invite.toTag if invite is not None else newTag()
        transaction.respond(request.makeResponse(200, toTag=toTag))
        if invite is not None:
            self._log.info(
                "INVITE cancelled by {peer}",
                peer=str(transaction.flow.source),
                callID=request.header("Call-ID"),
            )
            invite.cancelledByPeer()
        elif not inviteTransaction.finalSent:
            inviteTransaction.respond(
                inviteTransaction.request.makeResponse(487, toTag=toTag)
            )

    def _inDialog(
        self, request: SIPRequest, transaction: ServerTransaction, toTag: str
    ) -> None:
        key = (request.callID, toTag, request.fromAddress.tag or "")
        dialog = self.ua.dialogs.get(key)
        if request.method in USAGE_METHODS and self.ua.usageHandlers:
            usage = IncomingRequest(self.ua, request, transaction, dialog)
            for usageHandler in self.ua.usageHandlers:
                taken = False

                def offer(h: IDialogUsageHandler = usageHandler) -> None:
                    nonlocal taken
                    taken = h.inDialogRequestReceived(usage)

                self._callHandler(offer, usage)
                if taken or usage.answered:
                    return
        if dialog is None:
            self._reply(request, transaction, 481)
            return
        status = dialog.checkRemoteRequest(request)
        if status is not None:
            self._reply(
                request,
                transaction,
                status,
                reason="Server Internal Error (CSeq out of order)",
            )
            return
        method = request.method
        incoming: IncomingRequest
        if method == "BYE":
            incoming = IncomingRequest(self.ua, request, transaction, dialog)
            # The layers above hear of the end first, then the 200 goes
            # out: what they do on a BYE (RFC 7702 section 6.6: the
            # unavailable presence, F61) precedes its 200 (F62).
            dialog.remoteBye = request
            try:
                dialog.terminate(TerminationReason.REMOTE_BYE)
            finally:
                # A handler may have closed the UA meanwhile.
                if not incoming.answered:
                    incoming.respond(200)
            return
        if dialog.state is DialogState.TERMINATED:
            self._reply(request, transaction, 481)
            return
        if method == "INVITE":
            if dialog.inviteInProgress:
                self._reply(request, transaction, 491)
                return
            assert isinstance(transaction, InviteServerTransaction)
            invite = IncomingInvite(self.ua, request, transaction, dialog)
            if not self._negotiateSessionTimer(invite):
                return
            dialog.inviteInProgress = True
            self._track(transaction, invite)
            handler = dialog.handler
            if handler is None or not hasattr(handler, "reinviteReceived"):
                invite.reject(488)
                return
            self._callHandler(lambda: handler.reinviteReceived(dialog, invite), invite)
            return
        incoming = IncomingRequest(self.ua, request, transaction, dialog)
        if method == "UPDATE":
            # Only allowed with session timers (RFC 3311, RFC 4028 section
            # 9): a bodiless one is a session refresh the core answers; one
            # with an offer goes to the dialog's handler.
            if not self._negotiateSessionTimer(incoming):
                return
            if not request.body:
                incoming.respond(200)
                return
        dialogHandler = dialog.handler
        if dialogHandler is None:
            incoming.respond(405 if method in KNOWN_METHODS else 501)
            return
        self._callHandler(
            lambda: dialogHandler.requestReceived(dialog, incoming), incoming
        )

    def _ackReceived(self, request: SIPRequest, flow: Flow) -> None:
        if not self.ua.admission.decide(request, flow).admitted:
            return
        try:
            key = dialogIDOf(request)
        except HeaderError:
            return
        dialog = self.ua.dialogs.get(key)
        if dialog is not None:
            dialog.ackReceived(request)

    def ackReceived(self, request: SIPRequest, flow: Flow) -> None:
        try:
            self._ackReceived(request, flow)
        except Exception as e:
            self._log.failure("Failed on ACK", error=e, peer=str(flow.source))

    def strayResponseReceived(self, response: SIPResponse, flow: Flow) -> None:
        try:
            self.ua.sender.strayResponse(response)
        except Exception as e:
            self._log.failure("Failed on response", error=e, peer=str(flow.source))

    def serverTransactionFailed(
        self, transaction: ServerTransaction, reason: Failure
    ) -> None:
        self._log.info(
            "Server transaction for {method} failed: {error}",
            method=transaction.request.method,
            error=reason.getErrorMessage(),
            transactionID=transaction.transactionID,
        )
