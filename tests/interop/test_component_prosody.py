# -*- test-case-name: tests.interop.test_component_prosody -*-
"""
Interop: the gateway, run as C{twistd -n stoxgw}, against a real Prosody.

Shows that the component links authenticate, that a wrong secret is
reported clearly and retried with backoff, that the sample configuration
starts once its placeholder is filled, and that the gateway stops cleanly;
and, with the link alone in this process, that a burst larger than
Twisted's write buffer over a real socket is not taken for a server that
does not read (docs/limits.md).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.words.xish import domish
from wokkel.subprotocols import XMPPHandler

from stoxgw.xmpp.component import ComponentLink
from tests.interop.gateway import TOP, Gateway
from tests.interop.peers import Prosody, freePort, freeUDPAndTCPPort
from tests.interop.test_occupant_servers import until

LINK_UP = "XMPP component link up:"

#: twistd ends by re-raising the signal that stopped it, after a clean shutdown.
STOPPED_BY_SIGTERM = -signal.SIGTERM


class ProsodyComponentTests(SynchronousTestCase):
    """
    C{twistd -n stoxgw} with a real Prosody.
    """

    def startProsody(self, components: tuple[str, ...]) -> Prosody:
        prosody = Prosody(components=components, directory=self.mktemp())
        prosody.start()
        self.addCleanup(prosody.stop)
        return prosody

    def startGateway(self, text: str) -> Gateway:
        if "[msrp]" not in text:
            text += f"[msrp]\nport = {freePort()}\n"
        if "[sip]" not in text:
            port = freeUDPAndTCPPort()
            text += f"[sip]\nudp_port = {port}\ntcp_port = {port}\n"
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
        Both component domains authenticate with Prosody; SIGTERM stops the
        gateway cleanly, closing the links.
        """
        prosody = self.startProsody(("sip.xmpp.test", "chat.sip.xmpp.test"))
        gateway = self.startGateway(
            f"[xmpp]\nport = {prosody.componentPort}\nuser_domain = sip.xmpp.test\n"
            f"room_domain = chat.sip.xmpp.test\nsecret = {prosody.secret}\n"
        )
        output = gateway.waitFor(LINK_UP, count=2)
        self.assertIn(f"{LINK_UP} sip.xmpp.test at 127.0.0.1:{prosody.componentPort}", output)
        self.assertIn(f"{LINK_UP} chat.sip.xmpp.test at 127.0.0.1:{prosody.componentPort}", output)
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)
        output = gateway.output()
        self.assertIn("XMPP component link closed: sip.xmpp.test", output)
        self.assertIn("Server Shut Down.", output)
        self.assertNotIn("Traceback", output)

    def test_wrongSecret(self) -> None:
        """
        A wrong secret is an error line naming the domain and the key to
        fix, repeated with growing delays, never a link up.
        """
        prosody = self.startProsody(("sip.xmpp.test",))
        gateway = self.startGateway(
            f"[xmpp]\nport = {prosody.componentPort}\nuser_domain = sip.xmpp.test\n"
            "secret = not-the-secret\n"
        )
        output = gateway.waitFor("rejected the component handshake", count=2, timeout=30)
        self.assertIn(
            f"XMPP server 127.0.0.1:{prosody.componentPort} rejected the component handshake"
            " for sip.xmpp.test (not-authorized): check [xmpp] secret",
            output,
        )
        self.assertNotIn(LINK_UP, output)
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)

    def test_sampleConfig(self) -> None:
        """
        The sample configuration, copied with its placeholder filled in as
        the README says (and the test server's port), starts the gateway.
        """
        prosody = self.startProsody(("sip.example.com",))
        with open(os.path.join(TOP, "etc", "stoxgw.conf.sample")) as f:
            sample = f.read()
        self.assertEqual(sample.count("secret = CHANGE_ME\n"), 1)
        self.assertEqual(sample.count(";port = 2855\n"), 1)
        filled = sample.replace(
            "secret = CHANGE_ME\n",
            f"secret = {prosody.secret}\nport = {prosody.componentPort}\n",
        ).replace(";port = 2855\n", f"port = {freePort()}\n")
        sipPort = freeUDPAndTCPPort()
        filled = filled.replace(";udp_port = 5060\n", f"udp_port = {sipPort}\n").replace(
            ";tcp_port = 5060\n", f"tcp_port = {sipPort}\n"
        )
        gateway = self.startGateway(filled)
        output = gateway.waitFor(LINK_UP)
        self.assertIn(f"{LINK_UP} sip.example.com", output)
        self.assertIn("MSRP listening on 127.0.0.1:", output)
        self.assertIn(f"SIP listening on 127.0.0.1: udp {sipPort}, tcp {sipPort}", output)
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)

    def test_checkConfigScript(self) -> None:
        """
        C{twistd stoxgw --check-config} on the unfilled sample exits 1 and
        names the placeholder secret with file, section and key.
        """
        sample = os.path.join(TOP, "etc", "stoxgw.conf.sample")
        result = subprocess.run(
            [
                sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "stoxgw", "--check-config", "--config", sample,
            ],
            cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP), capture_output=True, text=True, timeout=60,
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(f"{sample}: [xmpp] secret: still the sample's placeholder CHANGE_ME", result.stderr)

    def test_sighupReopensLog(self) -> None:
        """
        SIGHUP makes the running gateway reopen its C{[logging] file}, so a
        rotated log continues in a new file, and the gateway keeps running.
        """
        prosody = self.startProsody(("sip.xmpp.test",))
        logPath = os.path.abspath(self.mktemp())
        gateway = self.startGateway(
            f"[xmpp]\nport = {prosody.componentPort}\nuser_domain = sip.xmpp.test\n"
            f"secret = {prosody.secret}\n[logging]\nfile = {logPath}\n"
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(logPath) and LINK_UP in open(logPath).read():
                break
            time.sleep(0.05)
        os.rename(logPath, logPath + ".1")
        assert gateway.process is not None
        gateway.process.send_signal(signal.SIGHUP)
        while time.monotonic() < deadline:
            if os.path.exists(logPath) and "reopened" in open(logPath).read():
                break
            time.sleep(0.05)
        with open(logPath) as f:
            self.assertIn(f"Log file {logPath} reopened", f.read())
        with open(logPath + ".1") as f:
            self.assertIn(LINK_UP, f.read())
        self.assertIsNone(gateway.process.poll())
        self.assertEqual(gateway.stop(), STOPPED_BY_SIGTERM)

    def test_checkConfigProbe(self) -> None:
        """
        C{--check-config --probe} tries the real handshake: the right secret
        passes, a wrong one fails naming C{[xmpp] secret}.
        """
        prosody = self.startProsody(("sip.xmpp.test",))
        outcomes = {}
        for secret in (prosody.secret, "wrong"):
            path = os.path.abspath(self.mktemp())
            with open(path, "w") as f:
                f.write(
                    f"[xmpp]\nport = {prosody.componentPort}\nuser_domain = sip.xmpp.test\n"
                    f"secret = {secret}\n"
                )
            result = subprocess.run(
                [
                    sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                    "stoxgw", "--check-config", "--probe", "--config", path,
                ],
                cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP), capture_output=True, text=True,
                timeout=60,
            )
            outcomes[secret] = (path, result)
        path, good = outcomes[prosody.secret]
        self.assertEqual(good.returncode, 0, good.stderr)
        self.assertEqual(good.stdout, f"{path}: configuration OK (XMPP server reached)\n")
        path, bad = outcomes["wrong"]
        self.assertEqual(bad.returncode, 1)
        self.assertIn(
            f"{path}: [xmpp] secret: XMPP server 127.0.0.1:{prosody.componentPort} rejected the"
            " component handshake for sip.xmpp.test (not-authorized)",
            bad.stderr,
        )

    def test_invalidConfigDoesNotStart(self) -> None:
        """
        C{twistd -n stoxgw} with an invalid file prints only the problems,
        one line each on standard error, and exits 1 without starting.
        """
        path = os.path.abspath(self.mktemp())
        with open(path, "w") as f:
            f.write("[xmpp]\nsecret = CHANGE_ME\nport = 0\n")
        result = subprocess.run(
            [
                sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", "stoxgw", "--config", path,
            ],
            cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP), capture_output=True, text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(
            result.stderr.splitlines(),
            [
                f"{path}: [xmpp] port: 0 is out of range (1 to 65535)",
                f"{path}: [xmpp] user_domain: required, and not set",
                f"{path}: [xmpp] secret: still the sample's placeholder CHANGE_ME: set the real secret",
                f"{path}: invalid configuration, not starting",
            ],
        )
        self.assertNotIn("Usage:", result.stdout)


class _Replies(XMPPHandler):
    """
    Collects the ids of the iq answers (result or error) the link receives.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []

    def connectionInitialized(self) -> None:
        self.xmlstream.addObserver("/iq[@type='result']", self._answer)
        self.xmlstream.addObserver("/iq[@type='error']", self._answer)

    def _answer(self, iq: domish.Element) -> None:
        self.ids.append(iq.getAttribute("id", ""))


class ProsodyBurstTests(TestCase):
    """
    The component link's flow control on a real socket to a real Prosody
    (issue 12; docs/limits.md, the component link row): one reactor turn
    that writes more than Twisted's 64 KiB write buffer pauses the link's
    producer, but the socket takes it all, so the link is not congested,
    nothing waits in its queue or is refused, and Prosody answers every
    stanza, in order.
    """

    timeout = 60

    @inlineCallbacks
    def test_burstIsNotCongestion(self) -> object:
        prosody = Prosody(components=("sip.xmpp.test",), directory=self.mktemp())
        prosody.start()
        self.addCleanup(prosody.stop)
        link = ComponentLink(
            reactor,
            "sip.xmpp.test",
            "127.0.0.1",
            prosody.componentPort,
            prosody.secret,
            queueSize=10,
            writeTimeout=30.0,
        )
        replies = _Replies()
        replies.setHandlerParent(link.streamManager)
        link.startService()
        self.addCleanup(link.stopService)
        yield until(lambda: link.up, 15, "the component link")
        manager = link.streamManager
        count = 600  # about 100 KB of pings, in one reactor turn
        for n in range(count):
            iq = domish.Element((None, "iq"))
            iq["type"] = "get"
            iq["id"] = f"burst{n}"
            iq["from"] = "sip.xmpp.test"
            iq["to"] = "xmpp.test"
            iq.addElement(("urn:xmpp:ping", "ping"))
            iq.addElement("padding", content="x" * 100)
            manager.send(iq)
            self.assertFalse(manager.congested, f"congested at stanza {n}")
        self.assertEqual(manager._held, [])
        yield until(lambda: len(replies.ids) >= count, 30, "Prosody's answers")
        self.assertEqual(replies.ids, [f"burst{n}" for n in range(count)])

