# -*- test-case-name: tests.interop.test_shutdown -*-
"""
Interop, issue 11 item 7: a stopping gateway (what SIGTERM does under
C{twistd}: the application's service is stopped and the reactor waits for
the returned Deferred) says goodbye before it goes.

The real gateway service (L{stoxgw.service.makeService} from a
configuration file, in-process on 127.0.0.1) with a real Prosody; carol
is in the room, the SIP user Romeo (the project's own SIP UA and MSRP
endpoint, see L{tests.interop.test_siptoxmpp_servers.GatewayHarness})
joined it over a TCP connection he opened to the gateway.  Then
C{stopService}: Romeo must receive the BYE on his own connection (RFC
5923 section 2 / RFC 5626 section 4.3 reuse: no new connection to his
Contact, which a process about to exit would never finish opening), before
the stop has finished, and carol must see his occupant leave.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from stoxgw.chat.session import EndCause
from stoxgw.sip.message import SIPMessage, SIPRequest
from stoxgw.sip.transport import Address, Flow, TransportKind
from tests.interop.peers import Prosody
from tests.interop.test_occupant_servers import bounded, until
from tests.interop.test_siptoxmpp_prosody import SIPUser
from tests.interop.test_siptoxmpp_servers import USER_DOMAIN, GatewayHarness


class FlowRecorder:
    """
    Sits in front of the SIP user's transport user and notes, for each
    request received, its method, the flow it came on and whether the
    gateway's stop had already finished.
    """

    def __init__(self, transport: Any, stopped: list[bool]) -> None:
        self.received: list[tuple[str, Flow, bool]] = []
        self._user = transport.user
        self._stopped = stopped
        transport.user = self

    def messageReceived(self, message: SIPMessage, flow: Flow) -> None:
        if isinstance(message, SIPRequest):
            self.received.append((message.method, flow, bool(self._stopped)))
        self._user.messageReceived(message, flow)


class ShutdownTests(GatewayHarness, TestCase):
    """
    Against Prosody 0.12 (room locking off).
    """

    timeout = 60

    def makeServer(self) -> Prosody:
        return Prosody(
            components=(USER_DOMAIN,), roomLocking=False, directory=self.mktemp()
        )

    @defer.inlineCallbacks
    def test_byeOnUsersConnection(self) -> Generator[Any, Any, None]:
        """
        stopService: Romeo gets the BYE over the TCP connection he opened
        to the gateway's SIP port, before the stop finishes; his chat ends
        as a remote BYE; carol sees his occupant leave.
        """
        carol = yield self.xmppUser("carol")
        romeo = SIPUser()
        session = yield self.enter(romeo)
        occupant = f"{self.room}/Romeo"
        yield until(
            lambda: ("available", occupant) in carol.seen(),
            10,
            "carol to see Romeo enter",
        )
        assert session.dialog is not None
        stopped: list[bool] = []
        recorder = FlowRecorder(self.userAgent.transport, stopped)
        stopping = self.gateway.stopService()
        stopping.addCallback(lambda _: stopped.append(True))
        yield bounded(stopping, 20)
        byes = [
            (flow, late) for method, flow, late in recorder.received if method == "BYE"
        ]
        self.assertEqual(len(byes), 1, recorder.received)
        [(flow, late)] = byes
        self.assertFalse(late, "the BYE arrived after the gateway had stopped")
        self.assertEqual(
            flow.source, Address(TransportKind.TCP, "127.0.0.1", self.sipPort)
        )
        yield until(lambda: romeo.endings, 10, "Romeo's chat to end")
        self.assertEqual([e.cause for e in romeo.endings], [EndCause.REMOTE_BYE])
        yield until(
            lambda: ("unavailable", occupant) in carol.seen(),
            10,
            "carol to see Romeo leave",
        )
