"""
W5 (bench/README.md): fan-out in one room of 100 occupants through the
gateway, (a) a SIP user sending, (b) an XMPP user sending, against the same
fan-out through the XMPP server alone (P_x), same run.

One run = a fresh XMPP server (Prosody with Nagle on, its default, or off;
or ejabberd), a fresh gateway in a C{twistd} child process, and the load
generator C{bench/w5_client.py} in a third process, which runs the three
phases one after the other.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

from common import (
    TOP, BenchEjabberd, BenchProsody, GatewayProcess, freePort, freeUDPAndTCPPort,
    gatewayConfig, percentile,
)

#: Occupants of the room, and how many of them are SIP users (the rest are
#: XMPP users).
OCCUPANTS = 100
SIP_USERS = 50


def oneRun(
    server: str,
    maxMessages: int,
    messages: int,
    rate: float,
    order: str = "pab",
    profile: str | None = None,
    window: int = 10,
    spy: str | None = None,
    tree: str = TOP,
) -> dict[str, Any]:
    """
    One W5 run.

    @param server: C{prosody-nagle-on}, C{prosody-nagle-off} or C{ejabberd}.
    @param maxMessages: messages each phase sends as fast as they are
        delivered (at most C{window} short of a copy): the capacity.
    @param messages: messages each phase then offers at C{rate} a second:
        the latency.
    @param order: the phases' order (C{p} = P_x, C{a} = SIP sender,
        C{b} = XMPP sender).
    @param profile: a file for the gateway's cProfile statistics
        (C{twistd --profile}), or L{None}.
    @param spy: a file for C{py-spy record}'s samples of the gateway
        (C{--format raw}: collapsed stacks, active samples only) while the
        load generator runs, or L{None}; C{py-spy} is found on C{PATH}.
    @param tree: the source tree the gateway runs from (this checkout, or
        a copy with a change to try).

    @return: per phase delivered messages/s and latency p50/p99 (ms), the
        ratios to P_x, the CPU seconds of each process, lost deliveries.
    """
    directory = tempfile.mkdtemp(prefix="stoxgw-w5-")
    if server == "ejabberd":
        xmpp: Any = BenchEjabberd(directory=os.path.join(directory, "ejabberd"))
    else:
        xmpp = BenchProsody(
            nagle=server == "prosody-nagle-on", directory=os.path.join(directory, "prosody")
        )
    gateway = spying = None
    users = [f"px{i}" for i in range(OCCUPANTS)] + [f"gx{i}" for i in range(OCCUPANTS - SIP_USERS)]
    xmpp.addAccounts([(user, f"{user}pass") for user in users])
    try:
        xmpp.start()
        twistdArgs = (
            [f"--profile={profile}", "--profiler=cprofile", "--savestats"] if profile else []
        )
        config = os.path.join(directory, "stoxgw.conf")
        # The ports are free when chosen, but on a shared machine another
        # process may take one before the gateway binds it: new ports, at
        # most 3 tries.
        for attempt in range(3):
            sipPort, msrpPort = freeUDPAndTCPPort(), freePort()
            with open(config, "w") as f:
                f.write(gatewayConfig(xmpp, sipPort, msrpPort, many=True))
            gateway = GatewayProcess(tree, config, directory, twistdArgs)
            gateway.start()
            try:
                gateway.waitFor("XMPP component link up:", timeout=30)
                break
            except RuntimeError:
                gateway.stop()
                if attempt == 2 or "Address already in use" not in gateway.output():
                    raise
        assert gateway.process is not None
        serverPid = xmpp._vmPid() if server == "ejabberd" else xmpp.process.pid
        pids = f"server:{serverPid},gateway:{gateway.process.pid}"
        if spy:
            spying = subprocess.Popen(
                [shutil.which("py-spy") or "py-spy", "record", "--pid", str(gateway.process.pid),
                 "--rate", "250", "--format", "raw", "--output", spy, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            )
        client = subprocess.run(
            [
                sys.executable, os.path.join(TOP, "bench", "w5_client.py"),
                "--c2s-port", str(xmpp.c2sPort), "--sip-port", str(sipPort),
                "--domain", xmpp.domain, "--muc-domain", xmpp.mucDomain,
                "--occupants", str(OCCUPANTS), "--sip", str(SIP_USERS),
                "--max-messages", str(maxMessages), "--window", str(window),
                "--messages", str(messages), "--rate", str(rate), "--order", order,
                "--pids", pids,
            ],
            capture_output=True, timeout=600, cwd=TOP,
            env=dict(os.environ, PYTHONPATH=TOP),
        )
        if client.returncode != 0:
            raise RuntimeError(
                f"W5 client failed: {client.stderr.decode(errors='replace')[-3000:]}\n"
                f"gateway: {gateway.output()[-2000:]}"
            )
        data = json.loads(client.stdout)
    finally:
        if spying is not None:
            spying.send_signal(signal.SIGINT)
            try:
                spying.wait(30)
            except subprocess.TimeoutExpired:
                spying.kill()
                spying.wait(10)
        if gateway is not None:
            gateway.stop()
        xmpp.stop()
        shutil.rmtree(directory, ignore_errors=True)
    return summarise(data)


def summarise(data: dict[str, Any]) -> dict[str, Any]:
    """
    @return: the flat figures of one run (for L{run.interleave}) from the
        load generator's output.
    """
    out: dict[str, Any] = {"setup_s": data["setup_s"]}
    for p in data["phases"]:
        name = f"{p['phase']}_{p['part']}"
        every = [v * 1000 for values in p["latencies"].values() for v in values]
        out[f"{name}_rate"] = p["deliveries"] / p["elapsed_s"] if p["elapsed_s"] > 0 else 0.0
        out[f"{name}_offered"] = p["messages"] * p["fan_out"] / p["send_s"] if p["send_s"] > 0 else 0.0
        out[f"{name}_p50"] = percentile(every, 50)
        out[f"{name}_p99"] = percentile(every, 99)
        for kind, values in p["latencies"].items():
            ms = [v * 1000 for v in values]
            out[f"{name}_{kind}_p50"] = percentile(ms, 50)
            out[f"{name}_{kind}_p99"] = percentile(ms, 99)
        out[f"{name}_lost"] = p["expected"] - p["deliveries"]
        for who, seconds in p["cpu_s"].items():
            out[f"{name}_cpu_{who}"] = seconds
            out[f"{name}_wait_{who}"] = p["runqueue_wait_s"][who]
    for name in ("a", "b"):
        for part in ("max", "paced"):
            if out.get(f"p_{part}_rate") and f"{name}_{part}_rate" in out:
                out[f"{name}_{part}_ratio"] = out[f"{name}_{part}_rate"] / out[f"p_{part}_rate"]
    out["lost"] = sum(v for k, v in out.items() if k.endswith("_lost"))
    return out


def main() -> None:
    """
    One W5 run from the command line, e.g. to profile the gateway::

      python bench/w5.py --server prosody-nagle-on --order b --max-messages 1000 \\
          --messages 0 --spy /tmp/w5.spy
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--server", default="prosody-nagle-on",
                        choices=("prosody-nagle-on", "prosody-nagle-off", "ejabberd"))
    parser.add_argument("--max-messages", type=int, default=200)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--messages", type=int, default=80)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--order", default="pab")
    parser.add_argument("--profile", help="the gateway's cProfile statistics (twistd --profile)")
    parser.add_argument("--spy", help="py-spy record's collapsed stacks of the gateway")
    parser.add_argument("--tree", default=TOP, help="the source tree the gateway runs from")
    o = parser.parse_args()
    result = oneRun(
        o.server, o.max_messages, o.messages, o.rate, o.order, o.profile, o.window, o.spy,
        o.tree,
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
