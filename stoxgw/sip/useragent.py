# -*- test-case-name: tests.sip.test_useragent -*-
"""
The SIP UA core (RFC 3261 section 8, 12-15): the transaction user that
admits, routes and answers requests, and sends the gateway's own.

L{SIPUserAgent} holds the configuration (L{UserAgentSettings}), the
handlers of received requests, our Contact, the INVITE dialogs it runs
(it is their L{stoxgw.sip.invitedialog.DialogCore}), and three parts, each in
its own module:

 - who may send what (L{stoxgw.sip.admission}): L{SIPTrust} admits
   trusted peers by address or TLS identity, L{DigestAdmission
   <stoxgw.sip.admission.DigestAdmission>} authenticates the others;
 - the requests that arrive (L{stoxgw.sip.incoming}): the
   L{RequestDispatcher <stoxgw.sip.incoming.RequestDispatcher>} checks
   them in the order of RFC 3261 section 8.2 and hands them to the
   handlers as L{IncomingRequest} and L{IncomingInvite};
 - the requests we send (L{stoxgw.sip.outgoing}): the L{RequestSender
   <stoxgw.sip.outgoing.RequestSender>} behind L{SIPUserAgent.invite},
   L{SIPUserAgent.request} and the dialogs' requests.

Session timers (RFC 4028, L{UserAgentSettings.sessionTimer}): C{timer} is
supported and UPDATE allowed; the dialogs run the timers
(L{stoxgw.sip.invitedialog.InviteDialog.startSessionTimer}).
L{SIPUserAgent.shutdown} BYEs every dialog and says when the BYEs are
answered.

This module is where the names of those parts are imported from
(C{__all__}); the parts import each other's modules, never this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from stoxgw.sip.admission import (
    AdmissionDecision,
    AdmissionVerdict,
    IRequestAdmission,
    SIPTrust,
    tlsPeerNames,
)
from stoxgw.sip.auth import DigestClient, DigestCredentials
from stoxgw.sip.dialog import Dialog, DialogID, DialogState, TerminationReason
from stoxgw.sip.incoming import (
    CORE_METHODS,
    KNOWN_METHODS,
    IDialogUsageHandler,
    IInviteHandler,
    IncomingInvite,
    IncomingRequest,
    IRequestHandler,
    RequestDispatcher,
)
from stoxgw.sip.invitedialog import InviteDialog
from stoxgw.sip.message import SIPRequest, SIPResponse
from stoxgw.sip.outgoing import HostResolver, IResolver, RequestSender, SIPError
from stoxgw.sip.sessiontimer import OPTION_TAG, SessionTimerSettings
from stoxgw.sip.transaction import TimerSettings, TransactionLayer
from stoxgw.sip.transport import Flow, SIPTransport, TransportKind
from stoxgw.sip.uri import URI, NameAddr, SIPURI

__all__ = [
    "SIPError",
    "SIPTrust",
    "AdmissionDecision",
    "AdmissionVerdict",
    "IRequestAdmission",
    "tlsPeerNames",
    "IInviteHandler",
    "IRequestHandler",
    "IDialogUsageHandler",
    "IResolver",
    "HostResolver",
    "UserAgentSettings",
    "IncomingRequest",
    "IncomingInvite",
    "SIPUserAgent",
    "KNOWN_METHODS",
]


@dataclass(frozen=True, slots=True)
class UserAgentSettings:
    """
    UA core configuration.

    @ivar contactUser: User part of our Contact when no other fits.
    @ivar userAgent: The User-Agent/Server value.
    @ivar supported: Option tags we support (Supported; others in Require
        get 420).
    @ivar accept: Body types we accept (Accept in OPTIONS answers).
    @ivar outboundProxy: Every out-of-dialog request goes there (Route,
        section 8.1.2).
    @ivar routes: Per domain (Request-URI host), a proxy to route through.
    @ivar credentials: For answering 401/407 challenges.
    @ivar timers: Transaction timers.
    @ivar sessionTimer: Session timers for INVITE dialogs (RFC 4028), or
        L{None} for none: with it, C{timer} is supported, UPDATE allowed,
        our INVITEs ask for a session timer and the peers' get one.
    """

    contactUser: str = "stoxgw"
    userAgent: str = "stoxgw"
    supported: tuple[str, ...] = ()
    accept: tuple[str, ...] = ("application/sdp",)
    outboundProxy: SIPURI | None = None
    routes: Mapping[str, SIPURI] = field(default_factory=dict)
    credentials: DigestCredentials | None = None
    timers: TimerSettings = TimerSettings()
    sessionTimer: SessionTimerSettings | None = None


class SIPUserAgent:
    """
    The UA core: see the module docstring.

    @ivar transport: The transport layer.
    @ivar layer: The transaction layer (we are its user).
    @ivar settings: The configuration.
    @ivar admission: Who may send us requests.
    @ivar resolver: Next hop resolution.
    @ivar dialogs: Live INVITE dialogs by dialog ID.
    @ivar dispatcher: Takes the requests that arrive.
    @ivar sender: Sends ours.
    @ivar request: Send an out-of-dialog non-INVITE request: the sender's
        L{RequestSender.request}.
    @ivar invite: Send an INVITE and make the dialog from its 2xx: the
        sender's L{RequestSender.invite}.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        transport: SIPTransport,
        *,
        settings: UserAgentSettings = UserAgentSettings(),
        admission: IRequestAdmission | None = None,
        resolver: IResolver | None = None,
    ) -> None:
        self.reactor = reactor
        self.clock: IReactorTime = reactor
        self.transport = transport
        self.settings = settings
        self.timers = settings.timers
        self.admission: IRequestAdmission = admission or SIPTrust()
        self.resolver: IResolver = resolver or HostResolver(
            reactor, transport.transports
        )
        self.digest = DigestClient(settings.credentials)
        self.dispatcher = RequestDispatcher(self)
        self.sender = RequestSender(self)
        self.request = self.sender.request
        self.invite = self.sender.invite
        self.layer = TransactionLayer(transport, reactor, self.dispatcher, settings.timers)
        self.dialogs: dict[DialogID, InviteDialog] = {}
        self._handlers: dict[str, list[tuple[Callable[[URI], bool] | None, Any]]] = {}
        self._usageHandlers: list[IDialogUsageHandler] = []
        #: Event packages for Allow-Events (RFC 6665 section 4.4.4).
        self.allowEvents: list[str] = []

    # -- configuration -----------------------------------------------------

    def addUsageHandler(self, handler: IDialogUsageHandler) -> None:
        """
        Offer in-dialog SUBSCRIBE, NOTIFY and REFER requests to
        C{handler} (in the order added) before the INVITE dialogs.
        """
        self._usageHandlers.append(handler)

    def addHandler(
        self,
        method: str,
        handler: IInviteHandler | IRequestHandler,
        match: Callable[[URI], bool] | None = None,
    ) -> None:
        """
        Route out-of-dialog requests of C{method} whose Request-URI
        C{match} accepts (all if L{None}) to C{handler}: an
        L{IInviteHandler} for INVITE, an L{IRequestHandler} otherwise.
        Handlers are tried in the order added.
        """
        self._handlers.setdefault(method, []).append((match, handler))

    @property
    def usageHandlers(self) -> tuple[IDialogUsageHandler, ...]:
        """
        The L{IDialogUsageHandler}s, in the order added.
        """
        return tuple(self._usageHandlers)

    def findHandler(self, method: str, uri: URI) -> Any:
        """
        The first handler of C{method} whose match accepts C{uri}, or
        L{None}.
        """
        for match, handler in self._handlers.get(method, []):
            if match is None or match(uri):
                return handler
        return None

    def removeHandler(self, method: str, handler: object) -> None:
        """
        Undo L{addHandler}.
        """
        self._handlers[method] = [
            (m, h) for m, h in self._handlers.get(method, []) if h is not handler
        ]

    @property
    def supported(self) -> tuple[str, ...]:
        """
        The option tags we support: the configured ones, and C{timer}
        with session timers (RFC 4028 section 7.1).
        """
        options = self.settings.supported
        if self.settings.sessionTimer is not None and OPTION_TAG not in options:
            options = options + (OPTION_TAG,)
        return options

    @property
    def allowedMethods(self) -> list[str]:
        """
        The Allow list: the core methods, the registered ones, UPDATE with
        session timers (RFC 4028 section 7.4: refreshes by UPDATE), and
        NOTIFY when dialog usages (subscriptions, REFER) are in place.
        """
        methods = list(CORE_METHODS)
        if self.settings.sessionTimer is not None:
            methods.append("UPDATE")
        for method, handlers in self._handlers.items():
            if handlers and method not in methods:
                methods.append(method)
        if self._usageHandlers and "NOTIFY" not in methods:
            # Subscriptions and REFERs we send are answered with NOTIFY.
            methods.append("NOTIFY")
        return methods

    def withSupported(self, request: SIPRequest) -> SIPRequest:
        """
        See L{RequestSender.withSupported}.
        """
        return self.sender.withSupported(request)

    def capabilityHeaders(self) -> list[tuple[str, str]]:
        """
        Allow, Supported and Allow-Events, for answers to INVITE and
        OPTIONS and for our INVITEs (RFC 3261 sections 11.2, 13.2.1;
        RFC 6665 section 4.4.4).
        """
        headers = [("Allow", ", ".join(self.allowedMethods))]
        if self.supported:
            headers.append(("Supported", ", ".join(self.supported)))
        if self.allowEvents:
            headers.append(("Allow-Events", ", ".join(self.allowEvents)))
        return headers

    def contactFor(
        self,
        kind: TransportKind,
        user: str | None = None,
        uriParameters: Sequence[tuple[str, str | None]] = (),
        headerParameters: Sequence[tuple[str, str | None]] = (),
    ) -> NameAddr:
        """
        Our Contact for a transport: C{sip:user@host:port;transport=...}
        plus URI parameters (C{gr} for a GRUU) and header parameters
        (C{isfocus}, RFC 4579).
        """
        host, port = self.transport.sentBy(kind)
        params: list[tuple[str, str | None]] = []
        if kind is not TransportKind.UDP:
            params.append(("transport", kind.uriParameter))
        params.extend(uriParameters)
        uri = SIPURI(
            scheme="sips" if kind is TransportKind.TLS else "sip",
            host=host,
            user=user or self.settings.contactUser,
            port=port,
            parameters=tuple(params),
        )
        address = NameAddr(uri)
        for name, value in headerParameters:
            address = address.withParameter(name, value)
        return address

    def optionsResponse(self, incoming: IncomingRequest) -> SIPResponse:
        """
        The default 200 answer to OPTIONS (section 11.2): Allow, Accept,
        Accept-Encoding, Accept-Language, Supported.  Handlers may send it
        (after their own checks) with C{incoming.transaction.respond}.
        """
        headers = self.capabilityHeaders()
        headers.append(("Accept", ", ".join(self.settings.accept)))
        headers.append(("Accept-Encoding", "identity"))
        headers.append(("Accept-Language", "en"))
        if not self.supported:
            headers.append(("Supported", ""))
        return incoming.makeResponse(200, None, headers)

    def bindDialog(self, base: Dialog) -> InviteDialog:
        """
        The L{InviteDialog} of C{base}, run by this core and kept in
        L{dialogs} until it ends.
        """
        dialog = InviteDialog(
            callID=base.callID,
            localTag=base.localTag,
            remoteTag=base.remoteTag,
            localURI=base.localURI,
            remoteURI=base.remoteURI,
            remoteTarget=base.remoteTarget,
            localContact=base.localContact,
            role=base.role,
            routeSet=base.routeSet,
            localSeq=base.localSeq,
            remoteSeq=base.remoteSeq,
            secure=base.secure,
            state=base.state,
            flow=base.flow,
            flowPeers=base.flowPeers,
            core=self,
        )
        self.dialogs[dialog.id] = dialog
        # The transport keeps the dialog's connection open meanwhile.
        self.transport.dialogStarted(dialog.callID, dialog.flow)
        return dialog

    # -- DialogCore ------------------------------------------------------------

    def sendInDialog(
        self, dialog: Dialog, request: SIPRequest
    ) -> Deferred[SIPResponse]:
        """
        See L{RequestSender.sendInDialog}.
        """
        return self.sender.sendInDialog(dialog, request)

    def sendAck(self, dialog: InviteDialog, ack: SIPRequest) -> None:
        """
        See L{RequestSender.sendAck}.
        """
        self.sender.sendAck(dialog, ack)

    def resendResponse(self, response: SIPResponse, flow: Flow) -> None:
        """
        Send a 2xx again.
        """
        self.transport.sendResponse(response, flow).addErrback(lambda reason: None)

    def dialogEnded(self, dialog: InviteDialog) -> None:
        """
        Forget a dialog (and tell the transport).
        """
        if self.dialogs.get(dialog.id) is dialog:
            del self.dialogs[dialog.id]
            self.transport.dialogEnded(dialog.callID)
        self.sender.forget(dialog.id)

    # -- outgoing ---------------------------------------------------------------

    def defaultTransport(self, uri: SIPURI) -> TransportKind:
        """
        See L{RequestSender.defaultTransport}.
        """
        return self.sender.defaultTransport(uri)

    def shutdown(self) -> Deferred[None]:
        """
        End every dialog with BYE.

        @return: Fires once every BYE has its final response (or failed),
            at once without dialogs; never fails.
        """
        byes: list[Deferred[Any]] = []
        for dialog in list(self.dialogs.values()):
            if dialog.state is not DialogState.TERMINATED:
                byes.append(
                    dialog.bye(reason=TerminationReason.SHUTDOWN).addErrback(
                        lambda _: None
                    )
                )
        return DeferredList(byes).addCallback(lambda _: None)

    def close(self) -> None:
        """
        Stop every timer: dialogs are dropped (their handlers told
        C{SHUTDOWN}) and transactions abandoned.  Call L{shutdown} first
        (and give the BYEs time) for a polite exit.
        """
        for dialog in list(self.dialogs.values()):
            dialog.terminate(TerminationReason.SHUTDOWN)
        self.dialogs.clear()
        self.sender.acks.clear()
        self.layer.close()
