# -*- test-case-name: tests.test_bench -*-
"""
The SIP side of the gateway-only workloads W2, W3, W4 and W6
(bench/README.md), in a process of its own.

  python bench/gwload.py MODE --sip-port P --control C --gateway-pid G [options]

Sets up its SIP sessions as W7 does (the project's UA, one MSRP endpoint
and so one MSRP connection per session, L{w78_client.Users}), then takes
each session's MSRP connection over: from then on it only writes
pre-built SENDs (CPIM, To the room) and reads with a bare framer that
counts the C{200}s, answers the gateway's SENDs with pre-built C{200}s and
timestamps their tags.  The XEP-0114 peer (C{bench/xmpppeer.py}) is told
what to do through its control port C{C}.

  - C{w2}: C{--window} SENDs in flight per session; 200s per second.
  - C{w3}: one SEND in flight per session (ping-pong); 200s per second.
  - C{w4}: the peer floods the room from a fake XMPP occupant; the
    gateway's SENDs (deliveries) per second.
  - C{w6}: message C{j} of room C{r} at C{start + j + r / rooms}, from
    participant C{(r + j) % 5} (0-2 SIP, here; 3-4 XMPP, the peer);
    latency of every delivery and what was lost.

Figures are counted over C{--duration} seconds after C{--warmup}; the
gateway's CPU time comes from C{/proc/G/stat} over the same interval.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import re
import socket
import time
from typing import Any

import stoxgw.xmpp  # noqa: F401

from twisted.internet import defer, reactor

from common import runClient
from msrp_throughput import _Client as Ring
from msrp_throughput import _cpuSeconds as cpuSeconds
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.builders import buildRequest
from w5_client import schedSeconds
from w78_client import Users, sleep

_TAG = re.compile(rb"\bt([0-9]+)m([0-9]+)\b")
MUC = "muc.xmpp.test"


def runQueueWait(pid: int) -> float:
    """
    Seconds the process's threads were ready to run but waited for a CPU
    (how busy the machine was), from L{w5_client.schedSeconds}.
    """
    return schedSeconds(pid)[1]


def control(port: int, request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    """
    One command to the peer's control port (blocking, bounded).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(json.dumps(request).encode() + b"\n")
        chunks = []
        for _ in range(100000):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
    return json.loads(b"".join(chunks))  # type: ignore[no-any-return]


class Wire:
    """
    A session's MSRP connection, taken over: pre-built bytes out, a bare
    framer in.
    """

    def __init__(self, session: Any, serial: int, room: int, stats: dict[str, Any]) -> None:
        self.session = session
        self.serial = serial
        self.room = room
        self.stats = stats
        msrp = session.msrp
        self.toPath = msrp.remotePath
        self.fromPath = msrp.localPath
        connection = msrp.connection
        self.transport = connection.transport
        self.buffer = b""
        self.ring: Ring | None = None
        self.window = 0
        self.tid = 0
        connection.dataReceived = self.dataReceived
        # The session no longer sees what arrives: no keepalive probes.
        session._stopKeepalive()
        session.settings = dataclasses.replace(session.settings, keepaliveInterval=0)

    def send(self, text: str, tag: str = "") -> bytes:
        """
        @return: the wire bytes of a SEND of C{text} to the room.
        """
        self.tid += 1
        body = CPIMMessage.build(
            contentType="text/plain;charset=UTF-8",
            body=text.encode(),
            fromAddress=CPIMAddress(f"sip:u{self.serial}@example.org"),
            toAddresses=(CPIMAddress(f"sip:room{self.room}@{MUC}"),),
        ).toBytes()
        return buildRequest(
            "SEND", self.toPath, self.fromPath,
            [("Message-ID", f"m{self.serial}x{self.tid}{tag}"), ("Byte-Range", f"1-{len(body)}/{len(body)}")],
            body=body, contentType="message/cpim", transactionID=f"s{self.serial}x{self.tid}",
        ).serialize()

    def startWindow(self, window: int, pool: int) -> None:
        self.ring = Ring(None, [self.send(f"message {i} " + "x" * 100) for i in range(pool)])  # type: ignore[arg-type]
        self.window = window
        self.transport.write(self.ring.take(window))

    def dataReceived(self, data: bytes) -> None:
        now = time.monotonic()
        stats = self.stats
        buffer = self.buffer + data if self.buffer else data
        replies: list[bytes] = []
        start = 0
        answered = 0
        size = len(buffer)
        while start < size:
            lineEnd = buffer.find(b"\r\n", start)
            if lineEnd < 0:
                break
            parts = buffer[start:lineEnd].split(b" ", 3)
            if len(parts) < 3:
                stats["garbled"] += 1
                start = size
                break
            tid = parts[1]
            marker = b"\r\n-------" + tid
            end = buffer.find(marker, lineEnd)
            if end < 0 or end + len(marker) + 3 > size:
                break
            frameEnd = end + len(marker) + 3
            what = parts[2]
            if what.isdigit():
                if what == b"200":
                    answered += 1
                else:
                    stats["errors"] += 1
                    if len(stats["samples"]) < 3:
                        stats["samples"].append(buffer[start:lineEnd].decode(errors="replace"))
            elif what == b"SEND":
                toEnd = buffer.find(b"\r\n", lineEnd + 2)
                fromEnd = buffer.find(b"\r\n", toEnd + 2)
                replies.append(
                    b"MSRP " + tid + b" 200 OK\r\nTo-Path: " + buffer[toEnd + 13 : fromEnd]
                    + b"\r\nFrom-Path: " + buffer[lineEnd + 11 : toEnd] + b"\r\n-------" + tid + b"$\r\n"
                )
                blank = buffer.find(b"\r\n\r\n", lineEnd, end)
                if blank >= 0:
                    stats["delivered"] += 1
                    if stats["tags"] is not None:
                        m = _TAG.search(buffer, blank, end)
                        if m is not None:
                            stats["tags"].append((int(m.group(1)), int(m.group(2)), now))
            start = frameEnd
        self.buffer = buffer[start:]
        if answered:
            stats["ok"] += answered
            ring = self.ring
            if ring is not None:
                ring.outstanding -= answered
                replies.append(ring.take(self.window - ring.outstanding))
        if replies:
            self.transport.write(b"".join(replies))


@defer.inlineCallbacks
def setUp(options: argparse.Namespace, stats: dict[str, Any]) -> Any:
    """
    Set up C{--sessions} SIP sessions in C{--rooms} rooms (C{sip:room<k>}
    gets the users whose serial is k modulo rooms), at most 20 at a time.

    @return: a L{Wire} per session, by serial.
    """
    users = Users(options.sip_port, 0, options.rooms)
    sessions: dict[int, Any] = {}
    pending: set[defer.Deferred[Any]] = set()
    started = time.monotonic()
    for _ in range(options.sessions):
        while len(pending) >= 20:
            yield defer.DeferredList(list(pending), fireOnOneCallback=True, consumeErrors=True)
            pending = {d for d in pending if not d.called}
        d = users.enter()
        serial = users.serial
        d.addCallback(lambda s, i=serial: s is not None and sessions.__setitem__(i, s))
        pending.add(d)
    if pending:
        yield defer.DeferredList(list(pending), consumeErrors=True)
    stats["setup_s"] = time.monotonic() - started
    stats["failed"] = users.failed
    yield sleep(1.0)
    return {i: Wire(s, i, i % options.rooms, stats) for i, s in sorted(sessions.items())}


@defer.inlineCallbacks
def measure(options: argparse.Namespace, stats: dict[str, Any], key: str) -> Any:
    """
    Count C{stats[key]} and the gateway's CPU over the measured interval.
    """
    yield sleep(options.warmup)
    count0, cpu0, t0 = stats[key], cpuSeconds(options.gateway_pid), time.monotonic()
    wait0 = runQueueWait(options.gateway_pid)
    yield sleep(options.duration)
    count1, cpu1, t1 = stats[key], cpuSeconds(options.gateway_pid), time.monotonic()
    wait1 = runQueueWait(options.gateway_pid)
    elapsed = t1 - t0
    return {
        "gateway_wait": (wait1 - wait0) / elapsed,
        "rate": (count1 - count0) / elapsed,
        "count": count1 - count0,
        "elapsed": elapsed,
        "gateway_cpu": (cpu1 - cpu0) / elapsed if cpu0 is not None and cpu1 is not None else None,
        "cpu_per_unit_us": (cpu1 - cpu0) / max(1, count1 - count0) * 1e6 if cpu0 is not None and cpu1 is not None else None,
    }


@defer.inlineCallbacks
def main(options: argparse.Namespace) -> Any:
    stats: dict[str, Any] = {
        "ok": 0, "errors": 0, "delivered": 0, "garbled": 0, "samples": [],
        "tags": [] if options.mode == "w6" else None,
    }
    wires = yield setUp(options, stats)
    # This process's own collections must not delay its reads: what
    # set-up made is frozen, and nothing is collected while measuring
    # (bounded: one run).
    gc.collect()
    gc.freeze()
    gc.disable()
    result: dict[str, Any] = {"sessions": len(wires), "failed": stats["failed"], "setup_s": stats["setup_s"]}
    if options.mode in ("w2", "w3"):
        window = options.window if options.mode == "w2" else 1
        for wire in wires.values():
            wire.startWindow(window, max(2 * window, 64))
        result.update((yield measure(options, stats, "ok")))
        for wire in wires.values():
            wire.window = 0
    elif options.mode == "w4":
        result["fanout"] = control(options.control, {"cmd": "flood", "room": f"room0@{MUC}"})["fanout"]
        result.update((yield measure(options, stats, "delivered")))
        result["injected"] = control(options.control, {"cmd": "stop"})["injected"]
    else:
        result.update((yield w6(options, stats, wires)))
    yield quiesce(stats)
    result.update(errors=stats["errors"], garbled=stats["garbled"], samples=stats["samples"])
    # The gateway's warnings so far (not those of the close that follows).
    with open(options.gateway_log, errors="replace") as f:
        warnings = [line for line in f if "#warn]" in line or "#error]" in line or "#critical]" in line]
    result.update(gateway_warnings=len(warnings), gateway_warning_samples=warnings[:3])
    return result


@defer.inlineCallbacks
def quiesce(stats: dict[str, Any], timeout: float = 30) -> Any:
    """
    Wait (bounded) until nothing has arrived for half a second.
    """
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        now = (stats["ok"], stats["delivered"], stats["errors"])
        if now == last:
            return
        last = now
        yield sleep(0.5)


@defer.inlineCallbacks
def w6(options: argparse.Namespace, stats: dict[str, Any], wires: dict[int, Any]) -> Any:
    rooms, duration = options.rooms, int(options.duration)
    members: dict[int, list[Any]] = {}
    for serial in sorted(wires):
        members.setdefault(serial % rooms, []).append(wires[serial])
    sip = 3
    plan: list[tuple[float, Any, bytes, int, int]] = []
    start = time.monotonic() + 3.0 + rooms * duration * 3e-5
    for r in range(rooms):
        for j in range(duration):
            who = (r + j) % 5
            if who >= sip or who >= len(members.get(r, ())):
                continue
            wire = members[r][who]
            plan.append((start + j + r / rooms, wire, wire.send(f"hello t{r}m{j} from SIP", f"t{r}m{j}"), r, j))
    plan.sort(key=lambda p: p[0], reverse=True)
    peer = control(options.control, {"cmd": "schedule", "start": start, "duration": duration, "senders": 5, "sip": sip})
    sent: list[tuple[int, int, float]] = []
    done: defer.Deferred[None] = defer.Deferred()

    def tick() -> None:
        now = time.monotonic()
        for _ in range(len(plan)):
            if not plan or plan[-1][0] > now:
                break
            _, wire, data, r, j = plan.pop()
            wire.transport.write(data)
            sent.append((r, j, time.monotonic()))
        if plan:
            reactor.callLater(max(0.0, plan[-1][0] - time.monotonic()), tick)  # type: ignore[attr-defined]
        else:
            done.callback(None)

    wait = max(0.0, start - time.monotonic())
    yield sleep(wait)
    cpu0, t0 = cpuSeconds(options.gateway_pid), time.monotonic()
    wait0 = runQueueWait(options.gateway_pid)
    tick()
    yield done.addTimeout(duration + 60, reactor)  # type: ignore[arg-type]
    # Drain: until nothing more arrives for a second (at most --drain s):
    # late is not lost.
    deadline = time.monotonic() + options.drain
    last = None
    while time.monotonic() < deadline:
        now = (stats["delivered"], control(options.control, {"cmd": "stats"})["groupchats"])
        if now == last:
            break
        last = now
        yield sleep(1.0)
    cpu1, t1 = cpuSeconds(options.gateway_pid), time.monotonic()
    wait1 = runQueueWait(options.gateway_pid)
    results = control(options.control, {"cmd": "results"})
    # Who sent what when, and who should get it: 2 other SIP users plus
    # one stanza to the MUC for a SIP sender, the 3 SIP users for an XMPP
    # sender (this peer's fake occupants).
    sentAt: dict[tuple[int, int], float] = {}
    expected: dict[tuple[int, int], int] = {}
    for r, j, t in sent:
        sentAt[(r, j)] = t
        expected[(r, j)] = len(members[r]) - 1 + 1
    for r, j, t in results["sent"]:
        sentAt[(r, j)] = t
        expected[(r, j)] = len(members[r])
    got: dict[tuple[int, int], int] = {}
    latencies: list[float] = []
    for r, j, t in list(stats["tags"]) + [tuple(a) for a in results["arrivals"]]:
        key = (r, j)
        if key not in sentAt or got.get(key, 0) >= expected[key]:
            continue
        got[key] = got.get(key, 0) + 1
        latencies.append((t - sentAt[key]) * 1000)
    deliveries = len(latencies)
    lost = sum(expected.values()) - deliveries
    cpu = (cpu1 - cpu0) if cpu0 is not None and cpu1 is not None else None
    return {
        "messages": len(sentAt), "sip_sent": len(sent), "xmpp_sent": len(results["sent"]),
        "scheduled_xmpp": peer.get("scheduled"), "deliveries": deliveries, "lost": lost,
        "latencies_ms": latencies, "elapsed": t1 - t0,
        "gateway_cpu": None if cpu is None else cpu / (t1 - t0),
        "cpu_per_unit_us": None if cpu is None else cpu / max(1, deliveries) * 1e6,
        "late_start_ms": (t0 - start) * 1000,
        "gateway_wait": (wait1 - wait0) / (t1 - t0), "measured_from": t0, "measured_to": t1,
    }


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("w2", "w3", "w4", "w6"))
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--gateway-pid", type=int, required=True)
    parser.add_argument("--gateway-log", required=True)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--drain", type=float, default=15.0)
    options = parser.parse_args()
    runClient(lambda: main(options), limit=1200)


if __name__ == "__main__":
    run()
