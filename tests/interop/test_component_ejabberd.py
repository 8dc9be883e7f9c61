# -*- test-case-name: tests.interop.test_component_ejabberd -*-
"""
Interop: the gateway, run as C{twistd -n stoxgw}, against a real ejabberd.

Shows that both component links authenticate with ejabberd's
C{ejabberd_service} listener and that a wrong secret is reported clearly
and retried.  ejabberd 23.01 answers a wrong C{<handshake/>} with a stream
error and closes the stream::

    <stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>

so the gateway's line names the same condition as with Prosody.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.interop.ejabberd import Ejabberd
from tests.interop.gateway import Gateway
from tests.interop.peers import PeerUnavailable, freePort
from tests.interop.test_component_prosody import LINK_UP, STOPPED_BY_SIGTERM


class EjabberdComponentTests(SynchronousTestCase):
    """
    C{twistd -n stoxgw} with a real ejabberd.
    """

    def startEjabberd(self, components: tuple[str, ...]) -> Ejabberd:
        try:
            ejabberd = Ejabberd(components=components, directory=self.mktemp())
        except PeerUnavailable as e:
            raise SkipTest(str(e)) from None
        ejabberd.start()
        self.addCleanup(ejabberd.stop)
        return ejabberd

    def startGateway(self, text: str) -> Gateway:
        text += f"[msrp]\nport = {freePort()}\n"
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "stoxgw.conf")
        with open(path, "w") as f:
            f.write(text)
        gateway = Gateway(path, directory)
        gateway.start()
        self.addCleanup(gateway.stop)
        return gateway

    def test_linksUp(self) -> None:
        """
        Both component domains authenticate with ejabberd; SIGTERM stops the
        gateway cleanly, closing the links.
        """
        ejabberd = self.startEjabberd(("sip.xmpp.test", "chat.sip.xmpp.test"))
        gateway = self.startGateway(
            f"[xmpp]\nport = {ejabberd.componentPort}\nuser_domain = sip.xmpp.test\n"
            f"room_domain = chat.sip.xmpp.test\nsecret = {ejabberd.secret}\n"
        )
        output = gateway.waitFor(LINK_UP, count=2, timeout=30)
        self.assertIn(f"{LINK_UP} sip.xmpp.test at 127.0.0.1:{ejabberd.componentPort}", output)
        self.assertIn(f"{LINK_UP} chat.sip.xmpp.test at 127.0.0.1:{ejabberd.componentPort}", output)
        self.assertNotIn("rejected the component handshake", output)
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)
        output = gateway.output()
        self.assertIn("XMPP component link closed: sip.xmpp.test", output)
        self.assertIn("XMPP component link closed: chat.sip.xmpp.test", output)
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn("Traceback", output)

    def test_wrongSecret(self) -> None:
        """
        ejabberd refuses a wrong secret with a C{not-authorized} stream
        error: an error line naming the domain, the condition and the key to
        fix, repeated (with growing delays), never a link up.
        """
        ejabberd = self.startEjabberd(("sip.xmpp.test",))
        gateway = self.startGateway(
            f"[xmpp]\nport = {ejabberd.componentPort}\nuser_domain = sip.xmpp.test\n"
            "secret = not-the-secret\n"
        )
        output = gateway.waitFor("rejected the component handshake", count=2, timeout=30)
        line = (
            f"XMPP server 127.0.0.1:{ejabberd.componentPort} rejected the component handshake"
            " for sip.xmpp.test (not-authorized): check [xmpp] secret"
        )
        self.assertEqual(output.count(line), output.count("rejected the component handshake"))
        self.assertNotIn(LINK_UP, output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)
