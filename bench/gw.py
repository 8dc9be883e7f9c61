# -*- test-case-name: tests.test_bench -*-
"""
The gateway-only workloads W2, W3, W4 and W6 (bench/README.md) and their
baselines R_msrp, R_pp and R_parse.

One run of a workload = the XEP-0114 peer C{bench/xmpppeer.py} (in place
of Prosody), the gateway as a C{twistd -n stoxgw} child
(L{common.GatewayProcess}, so C{profile} gives a cProfile of it) and the
SIP load generator C{bench/gwload.py}, each in its own process.  R_msrp
and R_pp are C{bench/msrp_throughput.py}'s bare Twisted MSRP server
(pipelined, and with one request in flight); R_parse is domish parsing
the groupchat stanza the peer sends in W4, in a process of its own.

  python bench/gw.py rparse [--duration 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types
from typing import Any

from common import TOP, GatewayProcess, freePort, freeUDPAndTCPPort, gatewayConfig, percentile

HERE = os.path.dirname(os.path.abspath(__file__))

#: The component secret shared by the peer and the gateway.
SECRET = "benchsecret"


def _waitPeer(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("xmpppeer exited")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b'{"cmd": "stats"}\n')
                if s.recv(65536):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("xmpppeer not answering")


#: A C{sitecustomize} for the gateway process (C{gcPauses}): it logs every
#: garbage collection that takes 2 ms or more, with its generation.
GC_PAUSES = """
import gc, os, time
_started = {}
def _pause(phase, info):
    if phase == "start":
        _started["t"] = time.perf_counter()
    elif "t" in _started:
        ms = (time.perf_counter() - _started.pop("t")) * 1000
        if ms >= 2:
            os.write(2, b"GC-PAUSE gen=%d ms=%.1f collected=%d at=%.3f\\n" % (
                info["generation"], ms, info["collected"], time.monotonic()))
gc.callbacks.append(_pause)
"""


def oneRun(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """
    L{_oneRun}, again (at most 3 times, with fresh ports) if a port that
    L{freePort} gave was taken by another process before the gateway or
    the peer bound it (a busy shared machine).
    """
    for attempt in range(3):
        try:
            return _oneRun(*args, **kwargs)
        except RuntimeError as e:
            if "Address already in use" not in str(e) and "xmpppeer" not in str(e) or attempt == 2:
                raise
    raise AssertionError("not reached")


def _oneRun(
    mode: str,
    clientArgs: list[str],
    reflect: str = "all",
    fake: int = 1,
    profile: str | None = None,
    timeout: float = 900,
    gcPauses: bool = False,
    gcTune: str = "",
) -> dict[str, Any]:
    """
    One run of a gateway-only workload.

    @param mode: C{w2}, C{w3}, C{w4} or C{w6} (L{gwload}).
    @param reflect: the peer's C{--reflect}.
    @param fake: fake XMPP occupants per room.
    @param profile: a file for the gateway's cProfile statistics, or L{None}.
    @param gcPauses: log the gateway's garbage collections of 2 ms or more
        (L{GC_PAUSES}) and return them as C{gc_pauses} (generation, ms, when).
    @param gcTune: Python run in the gateway process at start-up with
        C{gcPauses} (an experiment, e.g. C{"gc.set_threshold(50000, 20, 10)"}).
    @return: what C{gwload.py} printed.
    """
    directory = tempfile.mkdtemp(prefix=f"stoxgw-{mode}-")
    peerPort, controlPort = freePort(), freePort()
    peer = subprocess.Popen(
        [
            sys.executable, os.path.join(HERE, "xmpppeer.py"), "--port", str(peerPort),
            "--control", str(controlPort), "--secret", SECRET, "--reflect", reflect,
            "--fake", str(fake), "--lifetime", str(timeout + 60),
        ],
        stdout=open(os.path.join(directory, "peer.out"), "wb"), stderr=subprocess.STDOUT,
    )
    gateway = None
    try:
        _waitPeer(controlPort, peer)
        server = types.SimpleNamespace(mucDomain="muc.xmpp.test", componentPort=peerPort, secret=SECRET)
        sipPort, msrpPort = freeUDPAndTCPPort(), freePort()
        config = os.path.join(directory, "stoxgw.conf")
        with open(config, "w") as f:
            f.write(gatewayConfig(server, sipPort, msrpPort, many=True))  # type: ignore[arg-type]
        twistdArgs = [f"--profile={profile}", "--profiler=cprofile", "--savestats"] if profile else []
        gateway = GatewayProcess(TOP, config, directory, twistdArgs)
        env = None
        if gcPauses:
            with open(os.path.join(directory, "sitecustomize.py"), "w") as f:
                f.write(GC_PAUSES + gcTune + "\n")
            env = {"PYTHONPATH": f"{directory}{os.pathsep}{TOP}"}
        gateway.start(env)
        gateway.waitFor("XMPP component link up:")
        assert gateway.process is not None
        client = subprocess.run(
            [
                sys.executable, os.path.join(HERE, "gwload.py"), mode, "--sip-port", str(sipPort),
                "--control", str(controlPort), "--gateway-pid", str(gateway.process.pid),
                "--gateway-log", gateway.logPath, *clientArgs,
            ],
            capture_output=True, timeout=timeout, cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP),
        )
        if client.returncode != 0:
            raise RuntimeError(f"{mode} client failed: {client.stderr.decode(errors='replace')[-3000:]}")
        result: dict[str, Any] = json.loads(client.stdout)
        if gcPauses:
            result["gc_pauses"] = [
                (int(line.split("gen=")[1].split()[0]), float(line.split("ms=")[1].split()[0]),
                 float(line.split("at=")[1].split()[0]))
                for line in gateway.output().splitlines() if line.startswith("GC-PAUSE")
            ]
        return result
    finally:
        if gateway is not None:
            gateway.stop()
        if peer.poll() is None:
            peer.terminate()
            try:
                peer.wait(10)
            except subprocess.TimeoutExpired:
                peer.kill()
                peer.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def _basic(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "rate": r.get("rate"), "cpu_per_unit_us": r["cpu_per_unit_us"],
        "sessions": r["sessions"], "failed": r["failed"], "errors": r["errors"],
        "gateway_cpu_pct": (r["gateway_cpu"] or 0.0) * 100,
        # Time the gateway was ready to run but waited for a CPU, per
        # second: the machine's load, not the gateway's.
        "gateway_runq_wait_pct": (r.get("gateway_wait") or 0.0) * 100,
        "gateway_warnings": r["gateway_warnings"], "samples": r["samples"] + r["gateway_warning_samples"],
    }


def w2Run(sessions: int, window: int, warmup: float, duration: float) -> dict[str, Any]:
    """
    W2: SIP -> XMPP ingest, C{window} SENDs in flight per session, one room.
    """
    r = oneRun("w2", ["--sessions", str(sessions), "--window", str(window), "--warmup", str(warmup),
                      "--duration", str(duration)], reflect="sender")
    return _basic(r)


def w3Run(sessions: int, warmup: float, duration: float) -> dict[str, Any]:
    """
    W3: SIP -> XMPP interactive, one SEND in flight per session, one room.
    """
    r = oneRun("w3", ["--sessions", str(sessions), "--warmup", str(warmup), "--duration", str(duration)],
               reflect="sender")
    return _basic(r)


def w4Run(sessions: int, warmup: float, duration: float, profile: str | None = None) -> dict[str, Any]:
    """
    W4: XMPP -> SIP fan-out, one room, C{sessions} SIP occupants.
    """
    r = oneRun("w4", ["--sessions", str(sessions), "--warmup", str(warmup), "--duration", str(duration)],
               profile=profile)
    return {"fanout": r["fanout"], **_basic(r)}


def w6Run(rooms: int, duration: float, profile: str | None = None, gcTune: str = "") -> dict[str, Any]:
    """
    W6: C{rooms} rooms of 3 SIP users + 2 XMPP users (the peer's), one
    message a second per room for C{duration} seconds.
    """
    r = oneRun(
        "w6", ["--sessions", str(3 * rooms), "--rooms", str(rooms), "--duration", str(int(duration))],
        fake=2, profile=profile, timeout=max(900, 3 * rooms / 20 + duration + 300), gcPauses=True,
        gcTune=gcTune,
    )
    latencies = r.pop("latencies_ms")
    # Garbage collections of 2 ms or more while messages flowed.
    pauses = [(g, ms) for g, ms, at in r["gc_pauses"] if r["measured_from"] <= at <= r["measured_to"]]
    return {
        "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else float("nan"),
        "deliveries": r["deliveries"], "lost": r["lost"], "messages": r["messages"],
        "cpu_per_delivery_us": r["cpu_per_unit_us"], "late_start_ms": r["late_start_ms"],
        "setups_per_s": r["sessions"] / r["setup_s"],
        "gc_max_pause_ms": max((ms for _, ms in pauses), default=0.0),
        "gc_pause_total_ms": sum(ms for _, ms in pauses),
        "gc_full_collections": sum(1 for g, _ in pauses if g == 2),
        "gc_pauses_over_2ms": len(pauses), **_basic(r),
    }


def rMSRP(connections: int, window: int, warmup: float, duration: float) -> dict[str, Any]:
    """
    R_msrp (C{window} > 1) or R_pp (C{window} 1): msrp_throughput.py's bare
    Twisted MSRP server, C{connections} connections.
    """
    import msrp_throughput

    r = msrp_throughput.measure("baseline", connections, window, warmup, duration)
    return {"rate": r["rate"], "server_cpu_pct": (r["serverCPU"] or 0.0) * 100,
            "load_cpu_pct": r["clientCPU"] * 100}


#: The stanza of R_parse: what the peer sends each SIP occupant in W4.
RPARSE_STANZA = (
    b"<message from='room0@muc.xmpp.test/X1' to='u1@sip.xmpp.test/0123456789abcdef' "
    b"type='groupchat' id='f1'><body>flood 1 " + b"x" * 100 + b"</body></message>"
)


def rParse(duration: float) -> dict[str, Any]:
    """
    R_parse: groupchat stanzas parsed per second by domish (the gateway's
    parser), in a process of its own.
    """
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, "gw.py"), "rparse", "--duration", str(duration)],
        capture_output=True, timeout=duration + 60, cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP),
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _parseLoop(duration: float) -> dict[str, Any]:
    import stoxgw.xmpp  # noqa: F401  (the compat names, as in the gateway)

    from twisted.words.xish import domish

    stream = domish.elementStream()
    parsed = [0]

    def element(_: Any) -> None:
        parsed[0] += 1

    stream.DocumentStartEvent = lambda root: None
    stream.ElementEvent = element
    stream.DocumentEndEvent = lambda: None
    stream.parse(
        b"<stream:stream xmlns='jabber:component:accept' "
        b"xmlns:stream='http://etherx.jabber.org/streams' from='sip.xmpp.test' id='x'>"
    )
    batch = RPARSE_STANZA * 32
    started, cpu = time.monotonic(), time.process_time()
    deadline = started + duration
    for _ in range(10_000_000):
        stream.parse(batch)
        if time.monotonic() >= deadline:
            break
    elapsed, cpu = time.monotonic() - started, time.process_time() - cpu
    return {"rate": parsed[0] / elapsed, "per_cpu_s": parsed[0] / cpu, "cpu_pct": cpu / elapsed * 100}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=("rparse",))
    parser.add_argument("--duration", type=float, default=3.0)
    options = parser.parse_args()
    print(json.dumps(_parseLoop(options.duration)))


if __name__ == "__main__":
    main()
