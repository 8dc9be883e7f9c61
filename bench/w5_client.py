"""
W5's load generator (bench/README.md): fan-out in one room of 100
occupants, through a gateway running in another process, against the same
fan-out through the XMPP server alone.

Run by C{bench/w5.py} in a process of its own.  It sets up two rooms on one
XMPP server (Prosody or ejabberd):

  - C{w5px}: 100 XMPP users (P_x, no gateway in the path);
  - C{w5gw}: C{--sip} SIP users through the gateway (each its own MSRP
    endpoint, so its own MSRP connection, as independent users) and
    100 - C{--sip} XMPP users.

then runs three phases, in the order C{--order} gives:

  - C{p}: XMPP user 0 of C{w5px} sends (P_x, the baseline);
  - C{a}: SIP user 0 of C{w5gw} sends;
  - C{b}: XMPP user 0 of C{w5gw} sends.

Each phase sends pre-built bytes twice: first C{--max-messages} messages
as fast as the path delivers them (closed loop: at most C{--window}
messages short of a copy; this gives the capacity, delivered messages/s),
then C{--messages} messages offered at C{--rate} messages a second (open
loop, paced by this process's monotonic clock, backlog bounded; this gives
the latency at a load every path carries).

Each message counts at the 99 occupants other than its sender.  The XMPP
users are W1's raw c2s clients (L{RawXMPPUser}, finding bodies across
reads here: many stanzas arrive per read), the SIP users W1's
L{SIPBenchUser} with W5's tags.  Prints one JSON object: per phase the
deliveries, their latencies (seconds, split by receiver kind), the time
from the first send to the last delivery, and the CPU seconds the XMPP
server, the gateway and this process used during the phase.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import time
from typing import Any, Callable

import stoxgw.xmpp  # noqa: F401  (installs the compat names before wokkel loads)

from twisted.internet import defer, reactor
from twisted.internet.protocol import ClientFactory

from stoxgw.chat.session import ChatInitiator
from stoxgw.formats.cpim import CPIMAddress, CPIMMessage
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.sip.uri import SIPURI, parseNameAddr

from common import runClient
from w1_client import _BODY, RawXMPPUser, SIPBenchUser, bounded, deferLater
from w78_client import Users

_TAG = re.compile(rb"\b(w5[pab][0-9]+)\b")

#: The most messages the paced part of a phase lets be sent and not yet
#: delivered everywhere; beyond, the sender waits (a bounded backlog, so an
#: overloaded path shows as a lower delivered rate, not as an unbounded
#: queue).
BACKLOG = 200


class FanOutXMPPUser(RawXMPPUser):
    """
    W1's raw XMPP client, finding C{<body>}s that a read cuts in two (a
    busy room sends many stanzas per read).
    """

    tail = b""

    def dataReceived(self, data: bytes) -> None:
        if self.step != "ready":
            RawXMPPUser.dataReceived(self, data)
            return
        now = time.monotonic()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data = self.tail + data
        end = 0
        for m in _BODY.finditer(data):
            self.onBody(m.group(1), now)
            end = m.end()
        # A body cut by the read: at most its last few dozen octets wait.
        self.tail = data[end:][-64:]


class FanOutSIPUser(SIPBenchUser):
    """
    W1's SIP chat handler, with W5's tags.
    """

    def messageReceived(self, session: Any, message: Any) -> Any:
        now = time.monotonic()
        m = _TAG.search(message.body)
        if m:
            self.onBody(m.group(1), now)
        return None


def schedSeconds(pid: int) -> tuple[float, float]:
    """
    @return: the seconds process C{pid}'s threads ran on a CPU, and the
        seconds they were ready to run but waited for one (a busy machine),
        from C{/proc/PID/task/*/schedstat}; zeros if it is gone.
    """
    ran = waited = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0, 0.0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                fields = f.read().split()
        except OSError:
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran / 1e9, waited / 1e9


@defer.inlineCallbacks
def connectXMPP(
    port: int, domain: str, room: str, users: list[tuple[str, str]], window: int = 20
) -> Any:
    """
    Log in C{users} (user, nick) and join C{room}, C{window} at a time.

    @return: the L{FanOutXMPPUser}s, in order.
    """
    protos = []
    for start in range(0, len(users), window):
        batch = []
        for user, nick in users[start:start + window]:
            proto = FanOutXMPPUser(user, f"{user}pass", domain, room, nick)
            factory = ClientFactory()
            factory.buildProtocol = lambda addr, p=proto: p  # type: ignore[method-assign]
            reactor.connectTCP("127.0.0.1", port, factory)  # type: ignore[attr-defined]
            batch.append(proto)
        yield bounded(defer.gatherResults([p.joined for p in batch]), 60)
        protos += batch
    return protos


@defer.inlineCallbacks
def connectSIP(sipPort: int, room: str, count: int, window: int = 10) -> Any:
    """
    Set up C{count} SIP sessions into C{room} through the gateway, each
    with its own MSRP endpoint, C{window} at a time.

    @return: (handler, session) pairs, in order.
    """
    # W7's user agent (one SIP TCP connection through the gateway); W5
    # reads no statistics port.
    ua = Users(sipPort, statsPort=0).ua
    roomURI = SIPURI.fromString(f"sip:{room}")

    def enter(i: int) -> defer.Deferred[Any]:
        endpoint = MSRPEndpoint(reactor, "127.0.0.1", 0, transactionTimeout=30)  # type: ignore[arg-type]
        endpoint.startListening()
        handler = FanOutSIPUser()
        d = ChatInitiator(ua, endpoint, reactor).startChat(  # type: ignore[arg-type]
            roomURI,
            parseNameAddr(f'"S{i}" <sip:s{i}@example.org>;tag=s{i}'),
            handler,
            acceptTypes=("message/cpim",),
            acceptWrappedTypes=("text/plain",),
            chatroom=("nickname", "private-messages"),
        )
        return d.addCallback(lambda session: (handler, session))

    users: list[Any] = []
    for start in range(0, count, window):
        batch = [enter(i) for i in range(start, min(count, start + window))]
        users += (yield bounded(defer.gatherResults(batch), 60))
    return users


@defer.inlineCallbacks
def phase(
    name: str,
    send: Callable[[bytes], Any],
    payloads: list[tuple[bytes, bytes]],
    receivers: dict[str, list[Any]],
    rate: float,
    window: int,
    pids: dict[str, int],
    drain: float,
) -> Any:
    """
    Offer C{payloads} (tag, bytes) at C{rate} a second (0: as fast as the
    backlog allows) through C{send}, with at most C{window} messages short
    of a copy; wait (at most C{drain} seconds after the last) for every
    receiver's copy.

    @param receivers: the receivers by kind (C{xmpp}, C{sip}); each has an
        C{onBody} to set.
    """
    sent: dict[bytes, float] = {}
    latencies: dict[str, list[float]] = {kind: [] for kind in receivers}
    expected = len(payloads) * sum(len(r) for r in receivers.values())
    state: dict[str, Any] = {"count": 0, "last": 0.0, "done": defer.Deferred()}

    def record(kind: str) -> Callable[[bytes, float], None]:
        out = latencies[kind]

        def onBody(tag: bytes, now: float) -> None:
            t0 = sent.get(tag)
            if t0 is None:
                return
            out.append(now - t0)
            state["count"] += 1
            state["last"] = now
            if waiter["d"] is not None:
                state["progress"]()
            if state["count"] == expected:
                state["done"].callback(None)

        return onBody

    for kind, users in receivers.items():
        callback = record(kind)
        for user in users:
            user.onBody = callback
    fanOut = expected // len(payloads)
    pids = dict(pids, loadgen=os.getpid())
    sched0 = {who: schedSeconds(pid) for who, pid in pids.items()}
    start = time.monotonic()
    failures = 0
    waiter: dict[str, Any] = {"d": None, "below": 0}

    def progressed() -> None:
        d = waiter["d"]
        if d is not None and state["count"] >= waiter["below"]:
            waiter["d"] = None
            d.callback(None)

    state["progress"] = progressed
    for i, (tag, payload) in enumerate(payloads):
        # Bounded backlog: wait (at most 5 s) while C{window} messages are
        # short of their copies.
        need = (i - window) * fanOut
        if state["count"] < need:
            waiter.update(d=defer.Deferred(), below=need)
            try:
                yield bounded(waiter["d"], 5)
            except defer.TimeoutError:
                waiter["d"] = None
        if rate:
            due = start + i / rate
            now = time.monotonic()
            if due > now:
                yield deferLater(due - now)
        sent[tag] = time.monotonic()
        try:
            send(payload)
        except Exception:
            failures += 1
    lastSent = time.monotonic()
    if not state["done"].called:
        try:
            yield bounded(state["done"], drain)
        except defer.TimeoutError:
            pass
    cpu, wait = {}, {}
    for who, pid in pids.items():
        ran, waited = schedSeconds(pid)
        cpu[who] = ran - sched0[who][0]
        wait[who] = waited - sched0[who][1]
    for users in receivers.values():
        for user in users:
            user.onBody = lambda tag, t: None
    return {
        "phase": name,
        "rate": rate,
        "window": window,
        "messages": len(payloads),
        "fan_out": fanOut,
        "deliveries": state["count"],
        "expected": expected,
        "send_s": lastSent - start,
        "elapsed_s": (state["last"] or time.monotonic()) - start,
        "latencies": latencies,
        "cpu_s": cpu,
        "runqueue_wait_s": wait,
        "send_failures": failures,
    }


@defer.inlineCallbacks
def main(options: argparse.Namespace) -> Any:
    muc = options.muc_domain
    pRoom, gRoom = f"w5px@{muc}", f"w5gw@{muc}"
    occupants, sipCount = options.occupants, options.sip
    started = time.monotonic()
    pUsers = yield connectXMPP(
        options.c2s_port, options.domain, pRoom,
        [(f"px{i}", f"P{i}") for i in range(occupants)],
    )
    gUsers = yield connectXMPP(
        options.c2s_port, options.domain, gRoom,
        [(f"gx{i}", f"G{i}") for i in range(occupants - sipCount)],
    )
    sipUsers = yield connectSIP(options.sip_port, gRoom, sipCount)
    setup = time.monotonic() - started
    # Let the joins' presence floods settle.
    yield deferLater(options.settle)

    n = options.max_messages + options.messages

    def xmppPayloads(user: RawXMPPUser, prefix: str) -> list[tuple[bytes, bytes]]:
        return [
            (f"{prefix}{i}".encode(), user.groupchat(f"{prefix}{i}")) for i in range(n)
        ]

    sipSender = sipUsers[0][1]
    sipPayloads = [
        (
            f"w5a{i}".encode(),
            CPIMMessage.build(
                contentType="text/plain;charset=UTF-8",
                body=f"w5a{i}".encode(),
                fromAddress=CPIMAddress("sip:s0@example.org", "S0"),
                toAddresses=(CPIMAddress(f"sip:{gRoom}"),),
            ).toBytes(),
        )
        for i in range(n)
    ]
    sipFailures: list[Any] = []

    def sendSIP(payload: bytes) -> None:
        sipSender.sendMessage("message/cpim", payload).addErrback(sipFailures.append)

    def sendXMPP(user: RawXMPPUser) -> Callable[[bytes], None]:
        return user.transport.write  # type: ignore[union-attr, no-any-return]

    sipHandlers = [handler for handler, _ in sipUsers]
    phases = {
        "p": (sendXMPP(pUsers[0]), xmppPayloads(pUsers[0], "w5p"),
              {"xmpp": pUsers[1:]}),
        "a": (sendSIP, sipPayloads, {"xmpp": gUsers, "sip": sipHandlers[1:]}),
        "b": (sendXMPP(gUsers[0]), xmppPayloads(gUsers[0], "w5b"),
              {"xmpp": gUsers[1:], "sip": sipHandlers}),
    }
    pids = dict(p.split(":") for p in options.pids.split(",") if p)  # type: ignore[misc]
    pids = {who: int(pid) for who, pid in pids.items()}
    results = []
    split = options.max_messages
    for name in options.order:
        send, payloads, receivers = phases[name]
        for part, chosen, rate, window in (
            ("max", payloads[:split], 0.0, options.window),
            ("paced", payloads[split:], options.rate, BACKLOG),
        ):
            if not chosen:
                continue
            result = yield phase(
                name, send, chosen, receivers, rate, window, pids, options.drain
            )
            result["part"] = part
            results.append(result)
            yield deferLater(options.pause)
    for _, session in sipUsers:
        session.end()
    yield deferLater(0.3)
    return {"setup_s": setup, "phases": results, "sip_send_failures": len(sipFailures)}


def run() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--c2s-port", type=int, required=True)
    parser.add_argument("--sip-port", type=int, required=True)
    parser.add_argument("--domain", default="xmpp.test")
    parser.add_argument("--muc-domain", default="muc.xmpp.test")
    parser.add_argument("--occupants", type=int, default=100)
    parser.add_argument("--sip", type=int, default=50)
    parser.add_argument("--max-messages", type=int, default=200)
    parser.add_argument("--window", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--order", default="pab")
    parser.add_argument("--pids", default="", help="who:pid,... whose CPU time to report")
    parser.add_argument("--settle", type=float, default=1.5)
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument("--drain", type=float, default=10)
    options = parser.parse_args()
    runClient(lambda: main(options))


if __name__ == "__main__":
    run()
