# -*- test-case-name: tests.interop.test_occupant_servers -*-
"""
A real ejabberd (Debian C{ejabberd} 23.01) for the interop tests, run on
127.0.0.1 from a self-contained directory.

What it relies on (PEERS.md, "ejabberd 23.01"):

  - C{ejabberdctl} always re-runs itself as user C{ejabberd} (through
    C{su}), so the directory it uses (config, spool, logs) is owned by that
    user.  C{su} puts the Erlang VM in a session of its own, out of reach
    of the test's process group, so this runner starts C{ejabberdctl}
    directly as user C{ejabberd} (it then runs C{erl} as its own child, no
    C{su}), with C{HOME} in the instance directory so the Erlang cookie
    stays there too;
  - C{ERL_DIST_PORT} and C{INET_DIST_INTERFACE=127.0.0.1} in the ctl config
    make the Erlang VM listen for distribution on one fixed loopback port
    without starting an C{epmd} daemon (which would outlive the test), and
    the ctl commands (C{register}) reach the node through that port;
  - each instance gets its own node name, so two test runs never talk to
    each other's VM;
  - users can only be registered while the node runs;
  - an C{ejabberd_service} listener with several C{hosts} registers, by
    default (C{global_routes: true}), every one of them for each component
    connection that authenticates for any of them: with one connection per
    domain (the gateway's user and room domains), stanzas for one domain
    may then be routed down the other domain's connection.  The runner
    writes C{global_routes: false}, so that each connection serves only
    the domain it authenticated for (XEP-0114).

The server is started in the foreground in a session of its own; L{stop}
signals exactly that process group (C{ejabberdctl} and the Erlang VM it
started) and, should the VM have escaped it, the PID the VM wrote to its
pid file; nothing is found by name.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence

from tests.interop.peers import ChosenPort, PeerUnavailable, ServerPeer

#: The control script of the Debian package.
EJABBERDCTL = "/usr/sbin/ejabberdctl"

#: The system user C{ejabberdctl} switches to.
EJABBERD_USER = "ejabberd"


class Ejabberd(ServerPeer):
    """
    An ejabberd server with C{mod_muc} on C{muc.<domain>} and the gateway's
    component domains on an C{ejabberd_service} listener.

    The ports (and the node name, which names the distribution port) are
    chosen by L{start}, anew for each attempt (L{ServerPeer.start}); an
    attempt after a failed one starts from an empty spool, since Mnesia's
    schema is tied to the node name.

    @ivar domain: the users' domain (C{xmpp.test}).
    @ivar mucDomain: the MUC service (C{muc.xmpp.test}).
    @ivar components: component domains accepted with L{secret}.
    @ivar c2sPort: client port (no TLS required, PLAIN allowed).
    @ivar componentPort: XEP-0114 port.
    @ivar distPort: the Erlang distribution port (no epmd).
    """

    name = "ejabberd"
    c2sPort = ChosenPort("tcp")
    componentPort = ChosenPort("tcp")
    distPort = ChosenPort("tcp")

    def __init__(
        self,
        components: Sequence[str] = ("sip.xmpp.test",),
        secret: str = "s3cret",
        domain: str = "xmpp.test",
        directory: str | None = None,
    ) -> None:
        if not os.path.exists(EJABBERDCTL) or shutil.which("erl") is None:
            raise PeerUnavailable("ejabberd is not installed")
        try:
            account = pwd.getpwnam(EJABBERD_USER)
        except KeyError:
            raise PeerUnavailable("the ejabberd system user does not exist") from None
        if os.geteuid() != 0:
            raise PeerUnavailable("ejabberdctl switches to user ejabberd: run as root")
        super().__init__()
        self._uid, self._gid = account.pw_uid, account.pw_gid
        self.domain = domain
        self.mucDomain = f"muc.{domain}"
        self.components = tuple(components)
        self.secret = secret
        self.directory = os.path.abspath(directory or tempfile.mkdtemp(prefix="stoxgw-ejabberd-"))
        self.configPath = os.path.join(self.directory, "ejabberd.yml")
        self.ctlConfigPath = os.path.join(self.directory, "ejabberdctl.cfg")
        self.spool = os.path.join(self.directory, "spool")
        self.logs = os.path.join(self.directory, "logs")
        self.pidPath = os.path.join(self.directory, "ejabberd.pid")

    @property
    def node(self) -> str:
        """
        The Erlang node name (named after L{distPort}: unique per instance).
        """
        return f"stoxgw{self.distPort}@localhost"

    def listeningPorts(self) -> list[int]:
        return [self.c2sPort, self.componentPort]

    def logFiles(self) -> list[str]:
        return [
            os.path.join(self.logs, "ejabberd.log"),
            os.path.join(self.logs, "error.log"),
            os.path.join(self.directory, "stdout.log"),
        ]

    def _freshAttempt(self) -> None:
        shutil.rmtree(self.spool, ignore_errors=True)
        try:
            os.unlink(self.pidPath)
        except OSError:
            pass

    def _ownPids(self) -> set[int]:
        pids = super()._ownPids()
        vmPid = self._vmPid()
        if vmPid is not None:
            pids.add(vmPid)
        return pids

    def _writeConfig(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        for path in (self.spool, self.logs):
            os.makedirs(path, exist_ok=True)
        components = "\n".join(
            f'      "{name}":\n        password: "{self.secret}"' for name in self.components
        )
        config = f"""
hosts:
  - "{self.domain}"
loglevel: info
log_rotate_count: 0
certfiles: []
auth_method: internal
auth_password_format: plain
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
listen:
  -
    port: {self.c2sPort}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls: false
    starttls_required: false
  -
    port: {self.componentPort}
    ip: "127.0.0.1"
    module: ejabberd_service
    global_routes: false
    hosts:
{components}
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
  muc_create:
    allow: all
shaper_rules:
  max_user_sessions: 10
modules:
  mod_disco: {{}}
  mod_ping: {{}}
  mod_roster: {{}}
  mod_muc:
    host: "{self.mucDomain}"
    access: all
    access_create: muc_create
    access_persistent: all
    access_admin: none
    history_size: 20
    max_users_presence: 1000
"""
        with open(self.configPath, "w") as f:
            f.write(config)
        ctl = (
            f'ERLANG_NODE="{self.node}"\n'
            f'ERL_DIST_PORT={self.distPort}\n'
            'INET_DIST_INTERFACE="127.0.0.1"\n'
            'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"\n'
            f'EJABBERD_PID_PATH="{self.pidPath}"\n'
            "EJABBERD_BYPASS_WARNINGS=true\n"
        )
        with open(self.ctlConfigPath, "w") as f:
            f.write(ctl)
        # ejabberdctl sets ERL_INETRC to <config dir>/inetrc: name resolution
        # from the hosts file first, so "localhost" resolves without DNS.
        with open(os.path.join(self.directory, "inetrc"), "w") as f:
            f.write('{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n')
        for root, dirs, files in os.walk(self.directory):
            os.chown(root, self._uid, self._gid)
            for name in files:
                os.chown(os.path.join(root, name), self._uid, self._gid)
        # su needs to reach the directory: make every parent traversable.
        parent = os.path.dirname(self.directory)
        while parent and parent != "/":
            mode = os.stat(parent).st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
            parent = os.path.dirname(parent)

    def _ctl(self) -> list[str]:
        return [
            EJABBERDCTL,
            "--config-dir", self.directory,
            "--config", self.configPath,
            "--ctl-config", self.ctlConfigPath,
            "--spool", self.spool,
            "--logs", self.logs,
        ]

    def _run(self, arguments: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """
        Start C{ejabberdctl} with C{arguments} as user C{ejabberd}.
        """
        env = dict(os.environ, HOME=self.directory, USER=EJABBERD_USER, LOGNAME=EJABBERD_USER)
        return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
            self._ctl() + arguments,
            user=self._uid,
            group=self._gid,
            extra_groups=[],
            env=env,
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def start(self, timeout: float = 30.0) -> None:
        """
        Start ejabberd in the foreground and wait until its client and
        component ports listen (L{ServerPeer.start}).
        """
        super().start(timeout)

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(os.path.join(self.directory, "stdout.log"), "ab") as out:
            return self._run(
                ["foreground"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def register(self, user: str, password: str, timeout: float = 30.0) -> None:
        """
        Create a user account on L{domain} (only while the server runs).
        """
        process = self._run(
            ["register", user, self.domain, password],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise
        if process.returncode != 0:
            raise RuntimeError(
                f"ejabberdctl register {user} failed ({process.returncode}): {output!r}"
            )

    def stop(self, timeout: float = 15.0) -> None:
        """
        Stop the process group started by L{start}, and only that one: the
        Erlang VM shuts down cleanly on SIGTERM; if it does not within
        C{timeout} seconds it is killed.
        """
        process, self.process = self.process, None
        if process is None:
            return
        vmPid = self._vmPid()
        try:
            pgid = os.getpgid(process.pid)
        except ProcessLookupError:
            pgid = None
        if pgid is not None and pgid == process.pid:
            self._signalGroup(pgid, signal.SIGTERM)
        elif process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            if pgid is not None and pgid == process.pid:
                self._signalGroup(pgid, signal.SIGKILL)
            process.kill()
            process.wait(timeout)
        # The VM is a grandchild (through su): wait, bounded, for the group
        # to be empty so that the ports are free for a restart.
        if pgid is not None and pgid == process.pid:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self._groupAlive(pgid):
                time.sleep(0.05)
            if self._groupAlive(pgid):
                self._signalGroup(pgid, signal.SIGKILL)
        if vmPid is not None:
            self._stopPid(vmPid, timeout)

    def _vmPid(self) -> int | None:
        """
        @return: the PID the Erlang VM of this instance wrote, if it runs.
        """
        try:
            with open(self.pidPath) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            return None
        # Only this instance's VM: its command line names this node.
        if self.node.split("@")[0].encode() not in cmdline:
            return None
        return pid

    @staticmethod
    def _stopPid(pid: int, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    @staticmethod
    def _signalGroup(pgid: int, sig: int) -> None:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass

    @staticmethod
    def _groupAlive(pgid: int) -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
