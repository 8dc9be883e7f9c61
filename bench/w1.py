"""
W1 (bench/README.md): full-stack latency, 2 SIP + 2 XMPP users in one room
of a real Prosody, messages one in flight each way.

One run = a fresh Prosody (Nagle on, Prosody's default, or off), a fresh
gateway in a C{twistd} child process (from this checkout, or from a
C{git archive} of HEAD: the code before the work tree's changes), and
the load generator C{bench/w1_client.py} in a third process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Any

from common import (
    TOP, BenchProsody, GatewayProcess, freePort, freeUDPAndTCPPort, gatewayConfig, percentile,
)


#: Run in the gateway process for the "quick-ACK off" variant: the gateway
#: without TCP_QUICKACK on its component socket, as it was before issue 12.
NO_QUICKACK = "import stoxgw.xmpp.component as c; c.armQuickAck = lambda protocol: False"


def oneRun(
    tree: str,
    nagle: bool,
    messages: int,
    profile: str | None = None,
    quickAck: bool = True,
) -> dict[str, Any]:
    """
    One W1 run.

    @param quickAck: whether the gateway arms C{TCP_QUICKACK} on its
        component socket (the default); L{False} shows the stall it avoids.

    @param profile: a file for the gateway's cProfile statistics
        (C{twistd --profile}), or L{None}.

    @return: p50/p99 of each path in milliseconds, gateway-added figures,
        messages lost.
    """
    directory = tempfile.mkdtemp(prefix="stoxgw-w1-")
    server = BenchProsody(nagle=nagle, directory=os.path.join(directory, "prosody"))
    gateway = None
    try:
        server.start()
        server.register("xa", "xapass")
        server.register("xb", "xbpass")
        sipPort, msrpPort = freeUDPAndTCPPort(), freePort()
        config = os.path.join(directory, "stoxgw.conf")
        with open(config, "w") as f:
            f.write(gatewayConfig(server, sipPort, msrpPort))
        twistdArgs = (
            [f"--profile={profile}", "--profiler=cprofile", "--savestats"] if profile else []
        )
        gateway = GatewayProcess(
            tree, config, directory, twistdArgs, prelude="" if quickAck else NO_QUICKACK
        )
        gateway.start()
        gateway.waitFor("XMPP component link up:")
        client = subprocess.run(
            [
                sys.executable, os.path.join(TOP, "bench", "w1_client.py"),
                "--c2s-port", str(server.c2sPort), "--sip-port", str(sipPort),
                "--messages", str(messages), "--room", f"bench@{server.mucDomain}",
            ],
            capture_output=True, timeout=900, cwd=TOP,
            env=dict(os.environ, PYTHONPATH=TOP),
        )
        if client.returncode != 0:
            raise RuntimeError(f"W1 client failed: {client.stderr.decode(errors='replace')[-3000:]}")
        data = json.loads(client.stdout)
    finally:
        if gateway is not None:
            gateway.stop()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
    lat = data["latencies"]
    out: dict[str, Any] = {"lost": data["lost"]}
    for key, values in lat.items():
        ms = [v * 1000 for v in values]
        out[f"{key}_p50"] = percentile(ms, 50)
        out[f"{key}_p99"] = percentile(ms, 99)
    # Gateway-added latency: the path through the gateway minus Prosody
    # alone (XMPP -> XMPP, P_x) in the same run.
    out["added_x2s_p50"] = out["x2s_p50"] - out["x2x_p50"]
    out["added_x2s_p99"] = out["x2s_p99"] - out["x2x_p99"]
    out["added_s2x_p50"] = out["s2x_p50"] - out["x2x_p50"]
    out["added_s2x_p99"] = out["s2x_p99"] - out["x2x_p99"]
    return out
