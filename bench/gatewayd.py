"""
The gateway for W7 and W8 (bench/README.md): the real service tree, built
by L{stoxgw.service.makeService} from a configuration file, in a process
of its own, plus a statistics port on 127.0.0.1.

  python bench/gatewayd.py CONFIG STATS_PORT

A connection to the statistics port that sends C{stats}, C{mark} or
C{diff} gets one JSON object and is closed: C{rss_kb} (VmRSS; also
C{rss_anon_kb} and C{rss_file_kb}, its heap and mapped-file parts;
C{rss_peak_kb}, the peak since the last C{mark} or C{diff}), C{threads}, C{fds}
(open file descriptors), C{delayed_calls} (pending C{DelayedCall}s of the
reactor), C{participants} (SIP users in rooms), C{gc_objects}, C{link_up},
C{tcp_mem_pages} (sockstat), taken after a full garbage collection.

Diagnostics, off by default (they cost time and memory of their own):
C{mark} keeps a record of what is allocated, and C{diff} says what grew
since: C{tracemalloc_growth} (the source lines whose live allocations grew
most) with C{STOXGW_BENCH_TRACEMALLOC=1} in the environment; C{type_growth}
(gc-tracked objects by type) and C{participants_left} (the state of SIP
participants still there) with C{STOXGW_BENCH_TYPES=1}.
C{STOXGW_BENCH_FORGET=1} empties the tables that outlive sessions by
design before C{diff} reads the figures (see L{forget}).
C{STOXGW_BENCH_TRIM=1} calls glibc's C{malloc_trim(0)} before reading RSS,
so that free memory the C allocator kept is not counted (does RSS growth
come from live memory or from free memory kept?).
"""

from __future__ import annotations

import collections
import ctypes
import gc
import json
import os
import sys
import tracemalloc
from typing import Any

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# How many allocation sites and types C{diff} names (C{STOXGW_BENCH_TOP}).
TOP_LINES = int(os.environ.get("STOXGW_BENCH_TOP", "15"))
sys.path.insert(0, TOP)

import stoxgw.xmpp  # noqa: E402,F401

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402

from stoxgw.config import loadConfig  # noqa: E402
from stoxgw.service import makeService  # noqa: E402


def stats(gateway: object) -> dict[str, int]:
    """
    @return: the gateway process's figures now.
    """
    gc.collect()
    if os.environ.get("STOXGW_BENCH_TRIM"):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    status = {}
    with open("/proc/self/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            status[name] = value.split()[0] if value.split() else ""
    interworking = gateway.getServiceNamed("interworking")  # type: ignore[attr-defined]
    tcpMemPages = 0
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                fields = line.split()
                tcpMemPages = int(fields[fields.index("mem") + 1])
    return {
        "rss_kb": int(status["VmRSS"]),
        # RssAnon: the heap (objects, allocator); RssFile: pages of mapped
        # files (code of modules and libraries first used).
        "rss_anon_kb": int(status["RssAnon"]),
        # VmHWM: the highest RSS since the last mark or diff (see
        # StatsProtocol).
        "rss_peak_kb": int(status["VmHWM"]),
        "rss_file_kb": int(status["RssFile"]),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir("/proc/self/fd")),
        "delayed_calls": len(reactor.getDelayedCalls()),  # type: ignore[attr-defined]
        "participants": len(interworking.sipToXMPP.participants),
        "gc_objects": len(gc.get_objects()),
        # Kernel memory of all TCP sockets of the machine, in pages: socket
        # buffers are not in RSS, reported apart (W7).
        "tcp_mem_pages": tcpMemPages,
        "link_up": int(all(link.up for link in gateway.getServiceNamed("xmpp").links)),  # type: ignore[attr-defined]
    }


class StatsProtocol(Protocol):
    """
    Answers C{stats} with the figures; C{mark} keeps a tracemalloc snapshot
    and the object counts by type, and C{diff} adds what grew since (see
    the module docstring), which names what W8 leaves behind.
    """

    marked: Any = None
    markedTypes: collections.Counter[str] | None = None

    def dataReceived(self, data: bytes) -> None:
        gateway = self.factory.gateway  # type: ignore[attr-defined]
        if data.startswith(b"diff") and os.environ.get("STOXGW_BENCH_FORGET"):
            forget(gateway)
        figures: dict[str, Any] = stats(gateway)
        if data.startswith(b"mark"):
            if tracemalloc.is_tracing():
                StatsProtocol.marked = tracemalloc.take_snapshot()
            if os.environ.get("STOXGW_BENCH_TYPES"):
                StatsProtocol.markedTypes = typeCounts()
        elif data.startswith(b"diff"):
            if StatsProtocol.marked is not None:
                figures["tracemalloc_kb"] = [n // 1024 for n in tracemalloc.get_traced_memory()]
                diff = tracemalloc.take_snapshot().compare_to(StatsProtocol.marked, "lineno")
                figures["tracemalloc_growth"] = [
                    f"{d.size_diff // 1024:+} KiB {d.count_diff:+} blocks "
                    f"{d.traceback[0].filename.replace(TOP + '/', '')}:{d.traceback[0].lineno}"
                    for d in diff[:TOP_LINES]
                ]
            if StatsProtocol.markedTypes is not None:
                types = typeCounts()
                types.subtract(StatsProtocol.markedTypes)
                figures["type_growth"] = [
                    f"{n:+} {name}" for name, n in types.most_common(TOP_LINES) if n
                ]
                left = collections.Counter(
                    f"joined={p.joined} inRoom={p.inRoom} session={getattr(p.session, 'state', None)} "
                    f"dialog={getattr(getattr(p.session, 'dialog', None), 'state', None)} "
                    f"msrp={getattr(getattr(p.session, 'msrp', None), 'state', None)}"
                    for p in gateway.getServiceNamed("interworking").sipToXMPP.participants.values()
                )
                figures["participants_left"] = [f"{n} {what}" for what, n in left.most_common(10)]
        if data.startswith((b"mark", b"diff")):
            # Reset VmHWM (proc(5), /proc/pid/clear_refs): the next diff
            # reports the peak RSS of the churn in between.
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass
        self.transport.write(json.dumps(figures).encode())  # type: ignore[union-attr]
        self.transport.loseConnection()  # type: ignore[union-attr]


def forget(gateway: Any) -> None:
    """
    Empty what outlives sessions by design: the INVITE rate-limit tables
    and Twisted's JID intern table (a diagnostic, C{STOXGW_BENCH_FORGET=1}:
    how much of the RSS growth do they hold, with the memory they pin?).
    """
    from twisted.words.protocols.jabber import jid

    bridge = gateway.getServiceNamed("interworking").sipToXMPP
    bridge.userInvites._events.clear()
    bridge.roomInvites._events.clear()
    getattr(jid, "__internJIDs").clear()


def typeCounts() -> collections.Counter[str]:
    """
    @return: how many gc-tracked objects there are of each type.
    """
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def main() -> None:
    config, port = sys.argv[1], int(sys.argv[2])
    if os.environ.get("STOXGW_BENCH_TRACEMALLOC"):
        tracemalloc.start()
    gateway = makeService(loadConfig(config), reactor)
    gateway.startService()
    # As under twistd (makeService without a reactor): [gateway] gc_thresholds.
    gateway.tuneGarbageCollector()
    factory = Factory.forProtocol(StatsProtocol)
    factory.gateway = gateway  # type: ignore[attr-defined]
    reactor.listenTCP(port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
