# -*- test-case-name: tests.interop -*-
"""
Real third-party peers for the interop tests and the demo, run on 127.0.0.1.

Each peer writes a self-contained configuration into a directory of its own,
starts the real server in the foreground as a child process, waits (bounded)
until it listens, and on L{stop} terminates exactly the process it started.
See PEERS.md for the facts these rely on.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence


class PeerUnavailable(Exception):
    """
    The peer's program is not installed (C{make test} installs it).
    """


def freePort() -> int:
    """
    @return: a TCP port on 127.0.0.1 nothing listens on right now.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def freeUDPAndTCPPort() -> int:
    """
    @return: a port on 127.0.0.1 free for both UDP and TCP right now (SIP
        listens on both).
    """
    for _ in range(100):
        port = freePort()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no port free for both UDP and TCP")


def waitForPort(port: int, timeout: float = 15.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """
    Wait until something accepts TCP connections on 127.0.0.1:C{port}.

    @raise RuntimeError: not within C{timeout} seconds, or C{process} exited.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"peer exited with status {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


class Prosody:
    """
    A Prosody server with a MUC service and the gateway's component domains.

    @ivar domain: the users' domain (C{xmpp.test}).
    @ivar mucDomain: the MUC service (C{muc.xmpp.test}).
    @ivar components: component domains accepted with L{secret}.
    """

    program = "prosody"

    def __init__(
        self,
        components: Sequence[str] = ("sip.xmpp.test",),
        secret: str = "s3cret",
        domain: str = "xmpp.test",
        roomLocking: bool = True,
        directory: str | None = None,
    ) -> None:
        if shutil.which(self.program) is None:
            raise PeerUnavailable("prosody is not installed")
        self.domain = domain
        self.mucDomain = f"muc.{domain}"
        self.components = tuple(components)
        self.secret = secret
        self.roomLocking = roomLocking
        self.directory = os.path.abspath(directory or tempfile.mkdtemp(prefix="stoxgw-prosody-"))
        self.c2sPort = freePort()
        self.componentPort = freePort()
        self.configPath = os.path.join(self.directory, "prosody.cfg.lua")
        self.logPath = os.path.join(self.directory, "prosody.log")
        self.process: subprocess.Popen[bytes] | None = None
        self._writeConfig()

    def _writeConfig(self) -> None:
        d = self.directory
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        components = "\n".join(
            f'Component "{name}"\n    component_secret = "{self.secret}"\n'
            for name in self.components
        )
        config = f"""
run_as_root = true
data_path = "{d}/data"
pidfile = "{d}/prosody.pid"
log = {{ debug = "{self.logPath}" }}
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2sPort} }}
c2s_interfaces = {{ "127.0.0.1" }}
component_ports = {{ {self.componentPort} }}
component_interfaces = {{ "127.0.0.1" }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
network_settings = {{ nagle = false }}
modules_enabled = {{ "roster"; "saslauth"; "disco"; "ping"; "posix" }}
modules_disabled = {{ "s2s"; "tls"; "http"; "offline" }}
VirtualHost "{self.domain}"
Component "{self.mucDomain}" "muc"
    muc_room_locking = {"true" if self.roomLocking else "false"}
{components}
"""
        with open(self.configPath, "w") as f:
            f.write(config)

    def start(self, timeout: float = 15.0) -> None:
        """
        Start Prosody and wait until both its client and component ports listen.
        """
        self.process = subprocess.Popen(
            [self.program, "-F", "--config", self.configPath],
            stdout=open(os.path.join(self.directory, "stdout.log"), "ab"),
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        waitForPort(self.c2sPort, timeout, self.process)
        waitForPort(self.componentPort, timeout, self.process)

    def register(self, user: str, password: str) -> None:
        """
        Create a user account on L{domain}.
        """
        subprocess.run(
            ["prosodyctl", "--config", self.configPath, "register", user, self.domain, password],
            check=True,
            capture_output=True,
            timeout=30,
        )

    def stop(self, timeout: float = 10.0) -> None:
        """
        Stop the process started by L{start}, and only that one.
        """
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def log(self) -> str:
        """
        @return: what Prosody logged so far.
        """
        try:
            with open(self.logPath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""
