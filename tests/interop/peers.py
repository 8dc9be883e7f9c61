# -*- test-case-name: tests.interop.test_peers -*-
"""
Real third-party peers for the interop tests and the demo, run on 127.0.0.1.

Each peer writes a self-contained configuration into a directory of its own,
starts the real server in the foreground as a child process, waits (bounded)
until it listens, and on L{stop} terminates exactly the process it started.
See PEERS.md for the facts these rely on.

Ports: a server binds the ports written into its configuration, so they
are chosen before it runs, and another process (or a test under C{trial
-j2}) may take one in between.  Hence:

  - L{freePort}, L{freeUDPPort} and L{freeUDPAndTCPPort} ask the kernel for
    a free port and never hand out the same port twice in one process (a
    process-wide set of handed-out ports); code that binds a socket itself
    should rather bind port 0 and read the port back;
  - L{ServerPeer.start} chooses a server's ports anew for each attempt and
    tries again, a bounded number of times, when the server fails to come
    up listening: it exited first, or its log says an address was in use.
    A port only counts as listening when the server's own process tree
    holds the listening socket (not another process that took the port);
  - the port attributes of a server are valid only after L{start}; a
    restart (L{start} after L{stop}) keeps them;
  - when a server does not come up, the error carries the tail of its log
    for every attempt (failed attempts' logs are also kept in its
    directory as C{*.attemptN}).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from typing import overload


class PeerUnavailable(Exception):
    """
    The peer's program is not installed (C{make test} installs it).
    """


class PeerStartError(RuntimeError):
    """
    A server did not come up listening.

    @ivar retryable: Whether fresh ports may help: the server exited before
        listening, or its log says an address was in use.
    """

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


#: Ports handed out by this process (see L{freePort}).
_handedOut: set[int] = set()
_handedOutLock = threading.Lock()

#: How many kernel-chosen ports L{_choosePort} looks at before giving up.
_PORT_CANDIDATES = 200


def _choosePort(tcp: bool, udp: bool) -> int:
    """
    Ask the kernel for a port on 127.0.0.1 (bind port 0, read it back,
    close) that is free for the wanted protocols right now and that this
    process has not handed out before, and record it as handed out.
    """
    kinds = [k for k, wanted in ((socket.SOCK_STREAM, tcp), (socket.SOCK_DGRAM, udp)) if wanted]
    for _ in range(_PORT_CANDIDATES):
        with socket.socket(socket.AF_INET, kinds[0]) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if not _bindable(port, kinds[1:]):
            continue
        with _handedOutLock:
            if port in _handedOut:
                continue
            _handedOut.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 after {_PORT_CANDIDATES} candidates")


def _bindable(port: int, kinds: Iterable[int]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def freePort() -> int:
    """
    @return: a TCP port on 127.0.0.1 nothing is bound to right now, never
        one this process handed out before (until L{releasePorts}).
    """
    return _choosePort(tcp=True, udp=False)


def freeUDPPort() -> int:
    """
    @return: a UDP port on 127.0.0.1 nothing is bound to right now (see
        L{freePort}).
    """
    return _choosePort(tcp=False, udp=True)


def freeUDPAndTCPPort() -> int:
    """
    @return: a port on 127.0.0.1 free for both UDP and TCP right now (SIP
        listens on both; see L{freePort}).
    """
    return _choosePort(tcp=True, udp=True)


def releasePorts(ports: Iterable[int]) -> None:
    """
    Let L{freePort} hand out C{ports} again (nothing of ours uses them).
    """
    with _handedOutLock:
        _handedOut.difference_update(ports)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _listeningInodes(port: int) -> set[int] | None:
    """
    @return: the inodes of the TCP sockets listening on C{port}, or L{None}
        where C{/proc/net/tcp} cannot be read.
    """
    inodes: set[int] = set()
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes if readable else None


def _processTree(root: int) -> set[int]:
    """
    @return: C{root} and its descendants (from C{/proc/*/stat}).
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def _socketInodes(pids: Iterable[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def listensOn(port: int, pids: Iterable[int]) -> bool:
    """
    @return: whether one of C{pids} holds a socket listening on
        127.0.0.1:C{port} (where C{/proc} cannot tell, whether anything
        accepts connections there).
    """
    if not _accepts(port):
        return False
    inodes = _listeningInodes(port)
    if inodes is None:
        return True
    return bool(inodes & _socketInodes(pids))


#: What a server's log says when a port it wanted was taken (Prosody 0.12,
#: ejabberd 23.01, Kamailio 5.6).
ADDRESS_IN_USE = re.compile(r"address already in use|eaddrinuse|failed to open server port", re.I)

#: How much of each log file of a failed attempt goes into the error.
LOG_TAIL = 2000


class ChosenPort:
    """
    A port attribute of a L{ServerPeer}, chosen by L{ServerPeer.start}
    (reading it before is an error).
    """

    def __init__(self, kind: str) -> None:
        """
        @param kind: C{"tcp"}, C{"udp"} or C{"both"}.
        """
        self.kind = kind
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> ChosenPort: ...

    @overload
    def __get__(self, instance: ServerPeer, owner: type) -> int: ...

    def __get__(self, instance: ServerPeer | None, owner: type) -> ChosenPort | int:
        if instance is None:
            return self
        return instance.chosenPort(self.name)


class ServerPeer:
    """
    A server run as a child process on ports chosen by L{start}.

    Subclasses say which ports they need (L{ChosenPort} attributes), write
    their configuration (C{_writeConfig}, called by L{start} once the ports
    are chosen), start the process (L{_launch}), stop it (L{stop}) and say
    where they log (L{logFiles}).

    @cvar name: the server's name in messages.
    @cvar attempts: how many port choices L{start} tries.
    @ivar process: the running server, if any.
    """

    name = "server"
    attempts = 3
    process: subprocess.Popen[bytes] | None
    directory: str

    def __init__(self) -> None:
        self._ports: dict[str, int] | None = None
        self._logOffsets: dict[str, int] = {}
        self.process = None

    def portKinds(self) -> dict[str, str]:
        """
        @return: the names of the ports to choose (the L{ChosenPort}
            attributes), each with C{"tcp"}, C{"udp"} or C{"both"}.
        """
        kinds = {}
        for cls in reversed(type(self).__mro__):
            for name, value in vars(cls).items():
                if isinstance(value, ChosenPort):
                    kinds[name] = value.kind
        return kinds

    def listeningPorts(self) -> list[int]:
        """
        @return: the TCP ports that must listen for the server to be up.
        """
        raise NotImplementedError

    def logFiles(self) -> list[str]:
        """
        @return: the paths of the files the server logs to (set aside
            after a failed attempt).
        """
        raise NotImplementedError

    def log(self) -> str:
        """
        @return: what the server logged so far.
        """
        text = []
        for path in self.logFiles():
            try:
                with open(path, errors="replace") as f:
                    text.append(f.read())
            except OSError:
                pass
        return "\n".join(text)

    def _writeConfig(self) -> None:
        raise NotImplementedError

    def _launch(self) -> subprocess.Popen[bytes]:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def _freshAttempt(self) -> None:
        """
        Called before every attempt but the first of a L{start} with new
        ports: forget state the failed attempt left (none by default).
        """

    def _ownPids(self) -> set[int]:
        """
        @return: the processes whose listening sockets count as the
            server's (the process L{_launch} started and its descendants).
        """
        assert self.process is not None
        return _processTree(self.process.pid)

    def chosenPort(self, name: str) -> int:
        """
        @return: the port C{name} chosen by L{start}.
        @raise RuntimeError: before L{start}.
        """
        if self._ports is None:
            raise RuntimeError(f"{self.name}: {name} is chosen by start(); call start() first")
        return self._ports[name]

    def start(self, timeout: float = 15.0) -> None:
        """
        Start the server and wait until it listens on L{listeningPorts}.

        The first start chooses the ports, up to L{attempts} times: again
        whenever the server exits before listening or logs that an address
        is in use.  A restart (after L{stop}) keeps the ports, one attempt.

        @raise PeerStartError: it did not come up; the message has the
            tail of its log for each attempt.
        """
        restart = self._ports is not None
        attempts = 1 if restart else max(1, self.attempts)
        failures: list[str] = []
        for attempt in range(1, attempts + 1):
            if not restart:
                if attempt > 1:
                    self._freshAttempt()
                self._ports = {
                    name: _choosePort(tcp=kind != "udp", udp=kind != "tcp")
                    for name, kind in self.portKinds().items()
                }
            self._writeConfig()
            self._logOffsets = {path: _size(path) for path in self.logFiles()}
            self.process = self._launch()
            try:
                self._waitUntilUp(timeout)
                return
            except PeerStartError as e:
                self.stop()
                assert self._ports is not None
                ports = ", ".join(f"{k}={v}" for k, v in self._ports.items())
                failures.append(f"attempt {attempt} ({ports}): {e}\n{self._logTails()}")
                if not e.retryable or attempt == attempts:
                    break
                self._setAsideLogs(attempt)
                releasePorts(self._ports.values())
            except BaseException:
                self.stop()
                raise
        if not restart:
            assert self._ports is not None
            releasePorts(self._ports.values())
            self._ports = None
        raise PeerStartError(
            f"{self.name} did not come up after {len(failures)} attempt(s):\n" + "\n".join(failures),
            retryable=False,
        )

    def _waitUntilUp(self, timeout: float) -> None:
        """
        Wait, bounded, until the server's own processes listen on every
        port of L{listeningPorts}.

        @raise PeerStartError: it exited, logged an address in use, or did
            not listen within C{timeout} seconds.
        """
        assert self.process is not None
        deadline = time.monotonic() + timeout
        waiting = list(self.listeningPorts())
        while True:
            if self.process.poll() is not None:
                raise PeerStartError(
                    f"{self.name} exited with status {self.process.returncode} before listening on {waiting}",
                    retryable=True,
                )
            inUse = ADDRESS_IN_USE.search("\n".join(self._newLogs().values()))
            if inUse is not None:
                raise PeerStartError(f"{self.name} logged {inUse.group(0)!r}", retryable=True)
            if waiting and listensOn(waiting[0], self._ownPids()):
                waiting.pop(0)
                continue
            if not waiting:
                return
            if time.monotonic() >= deadline:
                raise PeerStartError(
                    f"{self.name} not listening on 127.0.0.1:{waiting} after {timeout} s",
                    retryable=False,
                )
            time.sleep(0.05)

    def _newLogs(self) -> dict[str, str]:
        """
        @return: what the server logged since the last launch, by file.
        """
        text = {}
        for path in self.logFiles():
            try:
                with open(path, "rb") as f:
                    f.seek(self._logOffsets.get(path, 0))
                    text[path] = f.read().decode("utf-8", "replace")
            except OSError:
                pass
        return text

    def _logTails(self) -> str:
        """
        @return: the end of each log file written since the last launch.
        """
        return "\n".join(
            f"--- {os.path.basename(path)}, last {LOG_TAIL} characters:\n{text[-LOG_TAIL:]}"
            for path, text in self._newLogs().items()
            if text
        )

    def _setAsideLogs(self, attempt: int) -> None:
        """
        Rename the log files of a failed attempt to C{NAME.attemptN}.
        """
        for path in self.logFiles():
            if os.path.exists(path):
                os.replace(path, f"{path}.attempt{attempt}")


class Prosody(ServerPeer):
    """
    A Prosody server with a MUC service and the gateway's component domains.

    @ivar domain: the users' domain (C{xmpp.test}).
    @ivar mucDomain: the MUC service (C{muc.xmpp.test}).
    @ivar components: component domains accepted with L{secret}.
    @ivar c2sPort: client port (after L{start}).
    @ivar componentPort: XEP-0114 port (after L{start}).
    """

    name = "prosody"
    program = "prosody"
    c2sPort = ChosenPort("tcp")
    componentPort = ChosenPort("tcp")

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
        super().__init__()
        self.domain = domain
        self.mucDomain = f"muc.{domain}"
        self.components = tuple(components)
        self.secret = secret
        self.roomLocking = roomLocking
        self.directory = os.path.abspath(directory or tempfile.mkdtemp(prefix="stoxgw-prosody-"))
        self.configPath = os.path.join(self.directory, "prosody.cfg.lua")
        self.logPath = os.path.join(self.directory, "prosody.log")

    def listeningPorts(self) -> list[int]:
        return [self.c2sPort, self.componentPort]

    def logFiles(self) -> list[str]:
        return [self.logPath, os.path.join(self.directory, "stdout.log")]

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

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(os.path.join(self.directory, "stdout.log"), "ab") as out:
            return subprocess.Popen(
                [self.program, "-F", "--config", self.configPath],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )

    def register(self, user: str, password: str) -> None:
        """
        Create a user account on L{domain} (after L{start}: the
        configuration is written then).
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
