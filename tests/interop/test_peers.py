"""
The port handling of the interop peers (L{tests.interop.peers}): handed-out
ports never repeat within a process, and L{ServerPeer.start} chooses fresh
ports when a server fails to come up because another process took one.

The server here is a small Python program that binds and listens on the
ports of its configuration file, or logs the error and exits as ejabberd
and Kamailio do.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

from twisted.trial.unittest import TestCase

from tests.interop import peers
from tests.interop.peers import (
    ChosenPort,
    PeerStartError,
    ServerPeer,
    freePort,
    freeUDPAndTCPPort,
    listensOn,
)

#: The fake server: bind and listen on every port of the file argv[1], or
#: log why not and exit with status 1.
FAKE_SERVER = """\
import socket, sys, time
held = []
for port in open(sys.argv[1]).read().split():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", int(port)))
    except OSError as e:
        print(f"bind 127.0.0.1:{port}: {e.strerror}", flush=True)
        sys.exit(1)
    s.listen()
    held.append(s)
print("listening", flush=True)
time.sleep(60)
"""


class FakeServer(ServerPeer):
    """
    A L{ServerPeer} running L{FAKE_SERVER} on two TCP ports.

    @ivar blockAttempts: how many attempts find their first port taken by
        another socket (bound between choosing the port and the server
        binding it).
    @ivar blockers: the sockets that took the ports.
    @ivar chosen: the ports of each attempt.
    """

    name = "fake"
    first = ChosenPort("tcp")
    second = ChosenPort("tcp")

    def __init__(self, directory: str, blockAttempts: int = 0) -> None:
        super().__init__()
        os.makedirs(directory)
        self.directory = directory
        self.blockAttempts = blockAttempts
        self.blockers: list[socket.socket] = []
        self.chosen: list[tuple[int, int]] = []

    def listeningPorts(self) -> list[int]:
        return [self.first, self.second]

    def logFiles(self) -> list[str]:
        return [os.path.join(self.directory, "server.log")]

    def _writeConfig(self) -> None:
        ports = (self.first, self.second)
        self.chosen.append(ports)
        with open(os.path.join(self.directory, "ports"), "w") as f:
            f.write(f"{ports[0]} {ports[1]}\n")
        if len(self.blockers) < self.blockAttempts:
            blocker = socket.socket()
            blocker.bind(("127.0.0.1", ports[0]))
            self.blockers.append(blocker)

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(self.logFiles()[0], "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-c", FAKE_SERVER, os.path.join(self.directory, "ports")],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(10)

    def close(self) -> None:
        self.stop()
        for blocker in self.blockers:
            blocker.close()


class FreePortTests(TestCase):
    """
    L{freePort} and L{freeUDPAndTCPPort}.
    """

    def test_noRepeats(self) -> None:
        """
        Ports handed out are all different, even though every candidate
        socket is closed before the next one is asked for.
        """
        ports = [freePort() for _ in range(100)] + [freeUDPAndTCPPort() for _ in range(50)]
        self.assertEqual(len(set(ports)), len(ports))

    def test_kernelRepeats(self) -> None:
        """
        When the kernel offers a port this process handed out already, the
        next candidate is taken instead.
        """
        first = freePort()
        offers: Iterator[int] = iter([first, first, 0])
        real = socket.socket.bind

        def bind(self: socket.socket, address: tuple[str, int]) -> None:
            if address[1] == 0:
                address = (address[0], next(offers))
            real(self, address)

        self.patch(socket.socket, "bind", bind)
        second = freePort()
        self.assertNotEqual(second, first)
        self.assertIn(second, peers._handedOut)

    def test_released(self) -> None:
        """
        L{peers.releasePorts} lets a port be handed out again.
        """
        port = freePort()
        peers.releasePorts([port])
        self.assertNotIn(port, peers._handedOut)


class ListensOnTests(TestCase):
    """
    L{listensOn} tells whose socket listens on a port.
    """

    def test_owner(self) -> None:
        """
        A socket this process listens on counts for this process, not for
        another one.
        """
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            self.assertTrue(listensOn(port, {os.getpid()}))
            self.assertFalse(listensOn(port, {os.getppid()}))

    def test_nothing(self) -> None:
        """
        A port nothing listens on counts for nobody.
        """
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            self.assertFalse(listensOn(port, {os.getpid()}))


class StartTests(TestCase):
    """
    L{ServerPeer.start}.
    """

    def server(self, blockAttempts: int = 0) -> FakeServer:
        server = FakeServer(os.path.abspath(self.mktemp()), blockAttempts)
        self.addCleanup(server.close)
        return server

    def test_portsAfterStart(self) -> None:
        """
        The ports are chosen by L{ServerPeer.start}; before, asking for one
        is an error.
        """
        server = self.server()
        self.assertRaises(RuntimeError, getattr, server, "first")
        server.start(timeout=10)
        self.assertEqual(len(server.chosen), 1)
        self.assertTrue(listensOn(server.first, {server.process.pid}))  # type: ignore[union-attr]

    def test_retryWithFreshPorts(self) -> None:
        """
        When another socket took a port before the server bound it, the
        server exits, and the second attempt succeeds on new ports; the
        first attempt's log is kept aside and its ports are released.
        """
        server = self.server(blockAttempts=1)
        server.start(timeout=10)
        self.assertEqual(len(server.chosen), 2)
        (taken, other), now = server.chosen
        self.assertNotIn(taken, now)
        self.assertNotIn(other, now)
        self.assertEqual(now, (server.first, server.second))
        self.assertNotIn(other, peers._handedOut)
        with open(os.path.join(server.directory, "server.log.attempt1")) as f:
            self.assertIn(f"bind 127.0.0.1:{taken}:", f.read())
        self.assertIn("listening", server.log())

    def test_giveUp(self) -> None:
        """
        After L{ServerPeer.attempts} failed attempts, L{PeerStartError}
        says what happened in each, with the tail of the server's log.
        """
        server = self.server(blockAttempts=3)
        error = self.assertRaises(PeerStartError, server.start, 10)
        message = str(error)
        self.assertIn("fake did not come up after 3 attempt(s)", message)
        for taken, _ in server.chosen:
            self.assertIn(f"bind 127.0.0.1:{taken}: Address already in use", message)
        self.assertEqual(len(server.chosen), 3)
        self.assertRaises(RuntimeError, getattr, server, "first")

    def test_restartKeepsPorts(self) -> None:
        """
        A start after L{stop} uses the same ports (clients know them).
        """
        server = self.server()
        server.start(timeout=10)
        ports = server.chosen[0]
        server.stop()
        server.start(timeout=10)
        self.assertEqual(server.chosen, [ports, ports])
