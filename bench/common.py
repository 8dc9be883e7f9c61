"""
Shared helpers of the benchmark suite (bench/README.md): statistics, child
processes, the real Prosody and the gateway as a C{twistd} child.

Every loop is bounded; everything binds 127.0.0.1; a child process is
stopped by its own PID only.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Sequence

#: The checkout's top directory.
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.interop.ejabberd import Ejabberd  # noqa: E402
from tests.interop.peers import Prosody, freePort, freeUDPAndTCPPort  # noqa: E402


def summary(values: Sequence[float]) -> dict[str, float]:
    """
    @return: median, min and max of C{values}.
    """
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def percentile(values: Sequence[float], p: float) -> float:
    """
    @return: the C{p}-th percentile (nearest rank) of C{values}.
    """
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, int(round(p / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[k]


class BenchProsody(Prosody):
    """
    The interop tests' Prosody (room locking off), with Prosody's default
    Nagle setting unless C{nagle=False}: the interop config turns Nagle
    off, and the benchmarks report both.
    """

    def __init__(self, nagle: bool, **kwargs: Any) -> None:
        self.nagle = nagle
        super().__init__(roomLocking=False, **kwargs)

    def _writeConfig(self) -> None:
        super()._writeConfig()
        with open(self.configPath) as f:
            text = f.read()
        text = text.replace('log = { debug = "', 'log = { warn = "')
        if self.nagle:
            text = text.replace("network_settings = { nagle = false }\n", "")
        with open(self.configPath, "w") as f:
            f.write(text)

    def addAccounts(self, accounts: Sequence[tuple[str, str]]) -> None:
        """
        Create (user, password) accounts on L{domain} at once, as the files
        C{prosodyctl register} would write (C{internal_plain}), for the
        workloads with many users (W5): one C{prosodyctl} run per user would
        take a few tenths of a second each.
        """
        host = self.domain.replace(".", "%2e")
        directory = os.path.join(self.directory, "data", host, "accounts")
        os.makedirs(directory, exist_ok=True)
        for user, password in accounts:
            with open(os.path.join(directory, f"{user}.dat"), "w") as f:
                f.write(f'return {{\n\t["password"] = "{password}";\n}};\n')


def gatewayConfig(server: Prosody, sipPort: int, msrpPort: int, many: bool = False) -> str:
    """
    The gateway's configuration for C{server} (as the interop tests').

    @param many: raise the per-address connection limits (all benchmark
        users come from 127.0.0.1), for W7 and W8.
    """
    limits = (
        "max_connections_per_address = 30000\nmax_connections = 30000\n" if many else ""
    )
    return (
        "[gateway]\n"
        f"muc_domains = {server.mucDomain}\n"
        "reflection_timeout = 10\n"
        "[sip]\n"
        "local_ip = 127.0.0.1\n"
        f"udp_port = {sipPort}\n"
        f"tcp_port = {sipPort}\n"
        "trusted_peers = 127.0.0.1/32\n"
        f"{limits}"
        "[msrp]\n"
        f"{limits}"
        "local_ip = 127.0.0.1\n"
        f"port = {msrpPort}\n"
        "transaction_timeout = 10\n"
        "[xmpp]\n"
        "server = 127.0.0.1\n"
        f"port = {server.componentPort}\n"
        "user_domain = sip.xmpp.test\n"
        f"secret = {server.secret}\n"
        "reconnect_max_delay = 2\n"
    )


def archiveTree(commit: str) -> str:
    """
    @return: a temporary directory holding C{git archive} of C{commit}
        (the code of that commit, without the work tree's changes), for a
        "before" variant; the caller removes it.
    """
    directory = tempfile.mkdtemp(prefix="stoxgw-archive-")
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit],
        cwd=TOP, check=True, capture_output=True, timeout=60,
    ).stdout
    subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True, timeout=60)
    return directory


class GatewayProcess:
    """
    C{twistd -n stoxgw} from source tree C{tree} (this checkout, or a
    C{git archive} of HEAD for a "before" run).
    """

    def __init__(
        self,
        tree: str,
        configPath: str,
        directory: str,
        twistdArgs: Sequence[str] = (),
        prelude: str = "",
    ) -> None:
        """
        @param prelude: Python statements run in the gateway process before
            twistd starts (e.g. to switch a feature off for a baseline).
        """
        self.tree = tree
        self.prelude = prelude
        self.twistdArgs = list(twistdArgs)
        self.configPath = configPath
        self.logPath = os.path.join(directory, "stoxgw.out")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, env: dict[str, str] | None = None) -> None:
        environ = dict(os.environ, PYTHONPATH=self.tree, PYTHONHASHSEED="0")
        environ.update(env or {})
        self.process = subprocess.Popen(
            [
                sys.executable, "-c", self.prelude + "\nfrom twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", *self.twistdArgs,
                "stoxgw", "--config", self.configPath,
            ],
            stdout=open(self.logPath, "wb"),
            stderr=subprocess.STDOUT,
            cwd=self.tree,
            env=environ,
        )

    def output(self) -> str:
        with open(self.logPath, errors="replace") as f:
            return f.read()

    def waitFor(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"{text!r} not seen; gateway output:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


class BenchEjabberd(Ejabberd):
    """
    The interop tests' ejabberd (C{global_routes: false} on the component
    listener, see docs/deployment.md), with anonymous logins
    (C{login_anon}: SASL PLAIN with any user name and password), so that a
    workload with many XMPP users (W5) needs no C{ejabberdctl register}
    run per user (each starts an Erlang node: seconds).  The gateway's
    component link is unaffected.
    """

    def _writeConfig(self) -> None:
        super()._writeConfig()
        with open(self.configPath) as f:
            text = f.read()
        text = text.replace(
            "auth_method: internal\n",
            "auth_method: [anonymous]\nanonymous_protocol: login_anon\n"
            "allow_multiple_connections: true\n",
        ).replace("loglevel: info", "loglevel: warning")
        with open(self.configPath, "w") as f:
            f.write(text)

    def addAccounts(self, accounts: Sequence[tuple[str, str]]) -> None:
        """
        Nothing to do: any user name logs in (C{login_anon}).
        """


def runClient(main: Callable[[], Any], limit: float = 600) -> None:
    """
    A load generator's process: run the reactor until the L{Deferred} that
    C{main()} returns fires (at most C{limit} seconds), then print its
    result as JSON on stdout, or the failure on stderr and exit with 2.
    """
    import json

    from twisted.internet import reactor

    outcome: dict[str, Any] = {}

    def done(value: Any) -> None:
        outcome["value"] = value
        reactor.stop()  # type: ignore[attr-defined]

    def failed(failure: Any) -> None:
        outcome["error"] = failure.getTraceback()
        reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(lambda: main().addCallbacks(done, failed))  # type: ignore[attr-defined]
    reactor.callLater(limit, reactor.stop)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if "value" not in outcome:
        print(outcome.get("error", "timed out"), file=sys.stderr)
        sys.exit(2)
    print(json.dumps(outcome["value"]))


__all__ = [
    "TOP", "summary", "percentile", "BenchProsody", "BenchEjabberd", "gatewayConfig",
    "GatewayProcess", "runClient",
    "freePort", "freeUDPAndTCPPort",
]
