"""
W7 (memory per idle bridged session) and W8 (churn leak check), see
bench/README.md: a fresh Prosody (room locking off), the gateway of
C{bench/gatewayd.py} and the load generator C{bench/w78_client.py}, each
in its own process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from common import TOP, BenchProsody, freePort, freeUDPAndTCPPort, gatewayConfig


def _waitStats(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gatewayd exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"stats")
                data = s.recv(65536)
            if json.loads(data).get("link_up"):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("gateway link not up")


def oneRun(mode: str, extra: list[str]) -> dict[str, Any]:
    directory = tempfile.mkdtemp(prefix=f"stoxgw-{mode}-")
    server = BenchProsody(nagle=False, directory=os.path.join(directory, "prosody"))
    gateway = None
    try:
        server.start()
        sipPort, msrpPort, statsPort = freeUDPAndTCPPort(), freePort(), freePort()
        config = os.path.join(directory, "stoxgw.conf")
        with open(config, "w") as f:
            f.write(gatewayConfig(server, sipPort, msrpPort, many=True))
        gateway = subprocess.Popen(
            [sys.executable, os.path.join(TOP, "bench", "gatewayd.py"), config, str(statsPort)],
            stdout=open(os.path.join(directory, "gatewayd.out"), "wb"), stderr=subprocess.STDOUT,
            cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP, PYTHONHASHSEED="0"),
        )
        _waitStats(statsPort, gateway)
        client = subprocess.run(
            [sys.executable, os.path.join(TOP, "bench", "w78_client.py"), mode,
             "--sip-port", str(sipPort), "--stats-port", str(statsPort), *extra],
            capture_output=True, timeout=1200, cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP),
        )
        if client.returncode != 0:
            raise RuntimeError(f"{mode} client failed: {client.stderr.decode(errors='replace')[-3000:]}")
        result = json.loads(client.stdout)
        result["stderr"] = client.stderr.decode(errors="replace")[-2000:]
        return result  # type: ignore[no-any-return]
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.terminate()
            try:
                gateway.wait(10)
            except subprocess.TimeoutExpired:
                gateway.kill()
                gateway.wait(10)
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def w7Run(sessions: int, rooms: int) -> dict[str, Any]:
    """
    @return: KB of RSS per idle session (and the figures it comes from).
    """
    r = oneRun("w7", ["--sessions", str(sessions), "--rooms", str(rooms)])
    n = max(1, r["sessions"])
    return {
        "kb_per_session": (r["loaded"]["rss_kb"] - r["idle"]["rss_kb"]) / n,
        "idle_rss_kb": float(r["idle"]["rss_kb"]),
        "objects_per_session": (r["loaded"]["gc_objects"] - r["idle"]["gc_objects"]) / n,
        "fds_per_session": (r["loaded"]["fds"] - r["idle"]["fds"]) / n,
        "sessions": r["sessions"], "failed": r["failed"], "errors": r["stderr"],
        "setups_per_s": r["sessions"] / r["setup_s"],
        "rss_after_end_kb": float(r["after"]["rss_kb"]),
    }


def w8Run(rate: int, duration: float, churns: int = 3) -> dict[str, Any]:
    """
    @return: RSS, fd and DelayedCall differences after each of C{churns}
        successive churns: the first against the baseline (after the
        warm-up), each later one against the churn before it.
    """
    # As many rooms as set-ups per second: 60 INVITEs a minute per room,
    # under the default [gateway] invites_per_room (120).
    r = oneRun("w8", [
        "--rate", str(rate), "--duration", str(duration), "--rooms", str(max(10, rate)),
        "--churns", str(churns),
    ])
    b, afters = r["baseline"], r["afters"]
    result: dict[str, Any] = {
        "baseline_rss_kb": float(b["rss_kb"]),
        "attempted": r["attempted"], "failed": r["failed"],
        "participants_left": afters[-1]["participants"],
        "setups_per_s": r["attempted"] / r["elapsed_s"],
        "growth": afters[-1].get("tracemalloc_growth", []),
    }
    for n, (before, a) in enumerate(zip([b, *afters], afters), 1):
        result[f"rss_change_pct_{n}"] = (a["rss_kb"] / before["rss_kb"] - 1) * 100
        result[f"gc_objects_change_{n}"] = a["gc_objects"] - before["gc_objects"]
        result[f"rss_mb_{n}"] = a["rss_kb"] / 1024
        result[f"rss_peak_mb_{n}"] = a["rss_peak_kb"] / 1024
    a = afters[-1]
    result["rss_change_pct"] = (a["rss_kb"] / b["rss_kb"] - 1) * 100
    result["fds_change"] = a["fds"] - b["fds"]
    result["delayed_calls_change"] = a["delayed_calls"] - b["delayed_calls"]
    return result
