# -*- test-case-name: tests.interop.test_sip_refer -*-
"""
REFER (RFC 3515) with C{Refer-Sub} (RFC 4488) in an INVITE dialog
(L{stoxgw.sip.refer}) against SIPp 3.6.1 over real UDP and TCP sockets on
127.0.0.1 (scenarios in C{tests/fixtures/sipp/}, runner in
L{tests.interop.sipp}).

 - Recipient (C{uac_refer_in_dialog.xml}): SIPp INVITEs the gateway (MSRP
   offer, answered by L{FocusHandler}), then REFERs inside the dialog
   (Refer-To C{<sip:bob@127.0.0.1>}, Referred-By).  The test
   L{IReferHandler} accepts and reports C{200} a moment later; SIPp checks
   the 202 (or 200 with C{acceptStatus=200}, RFC 7702 section 6.5) and
   both NOTIFYs of the implicit subscription (C{Event: refer;id=2},
   C{message/sipfrag} C{100 Trying} active, C{200 OK}
   C{terminated;reason=noresource}), answers them and BYEs.  The first
   NOTIFY may come before or after the 2xx (RFC 3515 section 2.4.4); a
   test shim holding back the 2xx makes SIPp take the "NOTIFY first" path.
 - RFC 4488 (C{uac_refer_norefersub.xml}): with C{Refer-Sub: false} the
   2xx says C{Refer-Sub: false} and no NOTIFY comes (SIPp waits 1.5 s and
   fails on one; a control test proves that the scenario does fail when a
   NOTIFY arrives).
 - Issuer (C{uas_refer_notify.xml}): the gateway INVITEs SIPp, REFERs
   inside the dialog; SIPp answers 202 and sends the sipfrag NOTIFYs;
   L{OutgoingRefer.finished} fires with C{200}.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from stoxgw.sip.dialog import TerminationReason
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import (
    SIPFRAG_CONTENT_TYPE,
    IncomingRefer,
    IReferHandler,
    OutgoingRefer,
    ReferAgent,
    ReferProgress,
    sipfrag,
)
from stoxgw.sip.subscription import SIPEvents
from stoxgw.sip.transport import Address, Flow, SIPTransport, TransportKind
from stoxgw.sip.uri import SIPURI, parseNameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from tests.interop.peers import PeerUnavailable
from tests.interop.sipp import SIPpResult, freeUDPAndTCPPort, runSIPp
from tests.interop.test_sip_sipp import (
    MSRP_OFFER,
    DialogWatcher,
    FocusHandler,
    _sleep,
)
from tests.interop.test_sip_subscribe import delayResponses


@implementer(IReferHandler)
class ReferAccepter:
    """
    Accepts every REFER and, C{finalAfter} seconds later, reports the
    referred request's final status (as the gateway does once the
    invitation it was asked to make is answered).
    """

    def __init__(self, finalStatus: int = 200, finalAfter: float = 0.3) -> None:
        self.finalStatus = finalStatus
        self.finalAfter = finalAfter
        self.refers: list[IncomingRefer] = []
        self.progress: list[ReferProgress] = []
        self.calls: list[Any] = []

    def cancel(self) -> None:
        """
        Cancel the final reports not made yet (test cleanup).
        """
        for call in self.calls:
            if call.active():
                call.cancel()

    def referReceived(self, refer: IncomingRefer) -> None:
        self.refers.append(refer)
        progress = refer.accept()
        self.progress.append(progress)
        self.calls.append(
            reactor.callLater(  # type: ignore[attr-defined]
                self.finalAfter, progress.progress, self.finalStatus
            )
        )


def recordRequests(transport: SIPTransport) -> list[SIPRequest]:
    """
    Keep every request C{transport} sends (a test shim wrapping
    C{sendMessage}).
    """
    sent: list[SIPRequest] = []
    send = transport.sendMessage

    def recording(message: Any, destination: Address) -> Deferred[Flow]:
        if isinstance(message, SIPRequest):
            sent.append(message)
        return send(message, destination)

    transport.sendMessage = recording  # type: ignore[method-assign]
    return sent


def sippLogs(result: SIPpResult) -> str:
    """
    The text of SIPp's C{<log>} file(s).
    """
    return "".join(text for name, text in result.logs.items() if "_logs" in name)


class ReferInteropTests(TestCase):
    """
    Real SIPp, real sockets, bounded waits.
    """

    timeout = 60

    def gateway(
        self, acceptStatus: int = 202, norefersub: bool = True
    ) -> tuple[SIPUserAgent, SIPTransport, SIPEvents, ReferAgent, ReferAccepter]:
        """
        A UA on UDP and TCP (ephemeral ports) trusting 127.0.0.1, with a
        focus INVITE handler and a REFER agent that accepts.
        """
        transport = SIPTransport(reactor, "127.0.0.1")
        transport.listenUDP(0)
        transport.listenTCP(0)
        self.addCleanup(transport.stopListening)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(
                contactUser="gw",
                supported=("norefersub",) if norefersub else (),
            ),
            admission=SIPTrust.fromStrings(["127.0.0.1/32"]),
        )
        self.addCleanup(ua.close)
        events = SIPEvents(ua)
        self.addCleanup(events.close)
        handler = ReferAccepter()
        self.addCleanup(handler.cancel)
        agent = ReferAgent(
            events, handler, acceptStatus=acceptStatus, norefersub=norefersub
        )
        return ua, transport, events, agent, handler

    def run_sipp(self, *args: Any, **kwargs: Any) -> Deferred[SIPpResult]:
        try:
            return runSIPp(reactor, *args, **kwargs)
        except PeerUnavailable as e:
            raise self.skipTest(str(e))

    # -- the gateway as REFER recipient ----------------------------------------

    @inlineCallbacks
    def _referIn(
        self,
        kind: TransportKind,
        sippTransport: str,
        acceptStatus: int = 202,
        notifyFirst: bool = False,
    ) -> Any:
        ua, transport, events, agent, handler = self.gateway(acceptStatus)
        focus = FocusHandler(ua)
        ua.addHandler("INVITE", focus)
        sent = recordRequests(transport)
        if notifyFirst:
            delayResponses(transport, "REFER")
        result = yield self.run_sipp(
            "uac_refer_in_dialog.xml",
            remote=f"127.0.0.1:{transport.ports[kind]}",
            localPort=freeUDPAndTCPPort(),
            transport=sippTransport,
            service="room",
            timeout=20,
        )
        self.assertEqual(result.exitCode, 0, result.describe())
        reason = yield focus.watcher.terminated
        self.assertIs(reason, TerminationReason.REMOTE_BYE)
        logs = sippLogs(result)
        self.assertIn(f"REFER answered {acceptStatus}", logs, result.describe())
        if notifyFirst:
            self.assertIn("NOTIFY before 2xx", logs, result.describe())
        else:
            self.assertIn("NOTIFY after 2xx", logs, result.describe())
        self.assertIn("final NOTIFY", logs, result.describe())
        # What the handler saw.
        [refer] = handler.refers
        self.assertEqual(str(refer.referTo.uri), "sip:bob@127.0.0.1")
        self.assertEqual(refer.referTo.method, "INVITE")
        assert refer.referredBy is not None
        self.assertEqual(refer.referredBy.displayName, "SIPp")
        self.assertTrue(refer.referSub)
        self.assertIsNotNone(refer.dialog)
        [progress] = handler.progress
        self.assertFalse(progress.active)
        # Exactly two NOTIFYs, in the INVITE dialog, with CSeqs in order.
        notifies = [r for r in sent if r.method == "NOTIFY"]
        self.assertEqual(
            [n.body for n in notifies], [sipfrag(100, "Trying"), sipfrag(200)]
        )
        self.assertEqual(
            [n.header("Content-Type") for n in notifies], [SIPFRAG_CONTENT_TYPE] * 2
        )
        self.assertEqual(len({n.callID for n in notifies}), 1)
        self.assertLess(notifies[0].cseq.number, notifies[1].cseq.number)
        self.assertEqual(ua.dialogs, {})
        self.assertEqual(events.dialogs, {})
        return result

    def test_referInDialogUDP(self) -> Any:
        """
        RFC 3515 2.4.2, 2.4.4-2.4.6; R-182: SIPp REFERs inside its INVITE
        dialog over UDP; 202, then NOTIFY 100 Trying and the final 200 OK
        (terminated;reason=noresource) with C{Event: refer;id=2}.
        """
        return self._referIn(TransportKind.UDP, "u1")

    def test_referInDialogTCP(self) -> Any:
        """
        The same over TCP (the NOTIFYs go to SIPp's Contact).
        """
        return self._referIn(TransportKind.TCP, "t1")

    def test_referInDialogAccept200UDP(self) -> Any:
        """
        RFC 7702 6.5 / RFC 7647: the agent configured to accept with
        C{200}; SIPp takes the 200 path.
        """
        return self._referIn(TransportKind.UDP, "u1", acceptStatus=200)

    def test_referInDialogAccept200TCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referIn(TransportKind.TCP, "t1", acceptStatus=200)

    def test_referNotifyFirstUDP(self) -> Any:
        """
        RFC 3515 2.4.4: the 202 held back 100 ms, so the first NOTIFY
        reaches SIPp before it; the scenario accepts that order.
        """
        return self._referIn(TransportKind.UDP, "u1", notifyFirst=True)

    def test_referNotifyFirstTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referIn(TransportKind.TCP, "t1", notifyFirst=True)

    # -- RFC 4488 ---------------------------------------------------------------

    @inlineCallbacks
    def _referSubFalse(
        self, kind: TransportKind, sippTransport: str, rogueNotify: bool = False
    ) -> Any:
        ua, transport, events, agent, handler = self.gateway()
        focus = FocusHandler(ua)
        ua.addHandler("INVITE", focus)
        sent = recordRequests(transport)
        if rogueNotify:
            # Control: a (wrong) recipient that NOTIFYs anyway, to show
            # that the scenario fails on a NOTIFY.
            accept = handler.referReceived

            def referReceived(refer: IncomingRefer) -> None:
                accept(refer)
                assert refer.dialog is not None
                events.sendInDialog(
                    refer.dialog,
                    "NOTIFY",
                    [
                        ("Event", f"refer;id={refer.request.cseq.number}"),
                        ("Subscription-State", "terminated;reason=noresource"),
                    ],
                    sipfrag(200),
                    SIPFRAG_CONTENT_TYPE,
                ).addErrback(lambda _: None)

            handler.referReceived = referReceived  # type: ignore[method-assign]
        result = yield self.run_sipp(
            "uac_refer_norefersub.xml",
            remote=f"127.0.0.1:{transport.ports[kind]}",
            localPort=freeUDPAndTCPPort(),
            transport=sippTransport,
            service="room",
            timeout=20,
        )
        logs = sippLogs(result)
        if rogueNotify:
            self.assertNotEqual(result.exitCode, 0, result.describe())
            self.assertIn("UNEXPECTED NOTIFY", logs, result.describe())
            return result
        self.assertEqual(result.exitCode, 0, result.describe())
        self.assertIn("REFER answered 202: Refer-Sub", logs, result.describe())
        self.assertIn("no NOTIFY within 1.5 s", logs, result.describe())
        self.assertNotIn("UNEXPECTED NOTIFY", logs, result.describe())
        reason = yield focus.watcher.terminated
        self.assertIs(reason, TerminationReason.REMOTE_BYE)
        [refer] = handler.refers
        self.assertFalse(refer.referSub)
        # The final status reported later sends nothing either.
        yield _sleep(0.4)
        self.assertEqual([r.method for r in sent if r.method == "NOTIFY"], [])
        self.assertEqual(ua.dialogs, {})
        self.assertEqual(events.dialogs, {})
        return result

    def test_referSubFalseUDP(self) -> Any:
        """
        RFC 4488 4: C{Refer-Sub: false} + C{Supported: norefersub} over
        UDP: the 202 carries C{Refer-Sub: false}, no NOTIFY is sent.
        """
        return self._referSubFalse(TransportKind.UDP, "u1")

    def test_referSubFalseTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referSubFalse(TransportKind.TCP, "t1")

    def test_referSubFalseScenarioFailsOnNotify(self) -> Any:
        """
        Control: the RFC 4488 scenario fails when a NOTIFY does arrive.
        """
        return self._referSubFalse(TransportKind.UDP, "u1", rogueNotify=True)

    # -- the gateway as REFER issuer --------------------------------------------

    @inlineCallbacks
    def _referOut(
        self, kind: TransportKind, sippTransport: str, notifyFirst: bool = False
    ) -> Any:
        ua, transport, events, agent, handler = self.gateway()
        port = freeUDPAndTCPPort()
        running = self.run_sipp(
            "uas_refer_notify_first.xml" if notifyFirst else "uas_refer_notify.xml",
            remote=None,
            localPort=port,
            transport=sippTransport,
            timeout=20,
        )
        watcher = DialogWatcher()
        target = SIPURI(
            "sip",
            "127.0.0.1",
            user="focus",
            port=port,
            parameters=(("transport", kind.uriParameter),),
        )
        exited: list[SIPpResult] = []

        def exit(result: SIPpResult) -> SIPpResult:
            exited.append(result)
            return result

        running.addCallback(exit)
        dialog = None
        # SIPp needs a moment to bind; retry the INVITE a few times.
        for attempt in range(20):
            if exited:
                self.fail(f"SIPp exited early: {exited[0].describe()}")
            try:
                dialog = yield ua.invite(
                    target,
                    parseNameAddr('"Juliet" <sip:juliet@xmpp.example>'),
                    MSRP_OFFER,
                    handler=watcher,
                )
                break
            except Exception as e:
                if attempt == 19 or getattr(e, "status", None) not in (503, 408):
                    raise
                yield _sleep(0.25)
        assert dialog is not None
        yield watcher.confirmed
        outgoing = yield agent.refer(
            dialog,
            parseNameAddr("<sip:bob@127.0.0.1>"),
            referredBy=parseNameAddr('"Juliet" <sip:juliet@xmpp.example>'),
        )
        self.assertIsInstance(outgoing, OutgoingRefer)
        assert outgoing.response is not None
        self.assertEqual(outgoing.response.status, 202)
        final = yield _bounded(outgoing.finished, 10)
        self.assertEqual(final, 200)
        self.assertEqual(outgoing.statuses, [(100, "Trying"), (200, "OK")])
        self.assertEqual(outgoing.request.cseq.method, "REFER")
        response = yield dialog.bye()
        self.assertEqual(response.status, 200)
        result = yield running
        self.assertEqual(result.exitCode, 0, result.describe())
        self.assertIn("REFER checked", sippLogs(result), result.describe())
        self.assertEqual(ua.dialogs, {})
        self.assertEqual(events.dialogs, {})

    def test_referOutUDP(self) -> Any:
        """
        RFC 3515 2.4.1, 2.4.4; R-183: the gateway REFERs SIPp inside its
        INVITE dialog over UDP, answers both NOTIFYs; C{finished} fires
        with 200.
        """
        return self._referOut(TransportKind.UDP, "u1")

    def test_referOutTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referOut(TransportKind.TCP, "t1")

    def test_referOutNotifyFirstUDP(self) -> Any:
        """
        RFC 3515 2.4.4 / RFC 6665 4.1.2.4: SIPp sends the 100 Trying
        NOTIFY before its 202 (and waits for our 200 to it); the gateway
        answers it in the INVITE dialog, then takes the 202 and the final
        NOTIFY.
        """
        return self._referOut(TransportKind.UDP, "u1", notifyFirst=True)

    def test_referOutNotifyFirstTCP(self) -> Any:
        """
        The same over TCP.
        """
        return self._referOut(TransportKind.TCP, "t1", notifyFirst=True)


def _bounded(d: Deferred[Any], seconds: float) -> Deferred[Any]:
    """
    C{d}, cancelled after C{seconds} (so a missing NOTIFY fails fast).
    """
    call = reactor.callLater(seconds, d.cancel)  # type: ignore[attr-defined]

    def done(result: Any) -> Any:
        if call.active():
            call.cancel()
        return result

    return d.addBoth(done)
