# -*- test-case-name: tests.test_bench -*-
"""
A minimal XEP-0114 peer for the gateway-only workloads W2, W3, W4 and W6
(bench/README.md): it stands in for Prosody and its MUC service, in a
process of its own, with plain sockets and L{selectors} (no Twisted, no
XML parser: the gateway's stanzas are split and read with regular
expressions, which is enough for what domish writes).

  python bench/xmpppeer.py --port P --control C [--secret S] [--reflect all|sender]
      [--fake N]

  - Accepts the component handshake (XEP-0114 section 3) of any domain.
  - Answers a MUC join (XEP-0045 7.2) with the presences a room sends: the
    other occupants (the C{--fake} XMPP occupants C{X1} ... C{XN} first),
    the joiner's own presence with status 110, then the subject; tells the
    room's other gateway occupants about the newcomer; answers an
    unavailable presence with the leaver's own (110).
  - Reflects each groupchat message (id and children kept) to every
    gateway occupant of the room (C{--reflect all}, what a MUC does) or to
    its sender only (C{--reflect sender}).
  - Counts and timestamps (C{time.monotonic}, the same clock in every
    process of the machine) the groupchat messages it receives.
  - Injects pre-built groupchat stanzas from its fake occupants, on
    command from the control port: a flood (W4) or a schedule (W6).

The control port takes one JSON object per connection (a line) and
answers one JSON object, then closes:
C{{"cmd": "stats"}}, C{{"cmd": "flood", "room": R, "pool": 64}},
C{{"cmd": "stop"}}, C{{"cmd": "schedule", "start": T0, "duration": D,
"senders": 5, "sip": 3}}, C{{"cmd": "results"}}.  Every loop is bounded;
the process ends on SIGTERM or after C{--lifetime} seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import selectors
import socket
import time
from typing import Any
from xml.sax.saxutils import escape, quoteattr

_START = re.compile(rb"\s*<([a-zA-Z:]+)\b[^>]*?(/?)>")
_ATTR = re.compile(rb"""([a-zA-Z:]+)=(?:'([^']*)'|"([^"]*)")""")
_BODY = re.compile(rb"<body>([^<]*)</body>")
_TAG = re.compile(rb"\bt([0-9]+)m([0-9]+)\b")

#: The largest bytes waiting for the gateway before a flood waits.
FLOOD_BUFFER = 256 * 1024


def attributes(tag: bytes) -> dict[bytes, bytes]:
    """
    @return: the attributes of a start tag (entities left as they are).
    """
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR.finditer(tag)}


def _xa(value: str) -> str:
    return quoteattr(value)


class Room:
    """
    One MUC room: the gateway's occupants (nick -> real JID) and the fake
    XMPP ones.
    """

    def __init__(self, jid: str, fake: int) -> None:
        self.jid = jid
        self.fake = [f"X{i + 1}" for i in range(fake)]
        self.occupants: dict[str, str] = {}
        self.byReal: dict[str, str] = {}


class Peer:
    """
    The component server, its rooms and its counters.
    """

    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.selector = selectors.DefaultSelector()
        self.rooms: dict[str, Room] = {}
        self.link: socket.socket | None = None
        self.inbuf = b""
        self.outbuf = bytearray()
        self.state = "header"
        self.streamID = "benchpeer1"
        self.received = 0
        self.groupchats = 0
        self.firstAt: float | None = None
        self.lastAt: float | None = None
        self.arrivals: list[tuple[int, int, float]] = []
        self.flood: dict[str, Any] | None = None
        self.injected = 0
        self.schedule: list[tuple[float, bytes, int, int]] = []
        self.scheduled = 0
        self.sent: list[tuple[int, int, float]] = []
        self.reflectAll = options.reflect == "all"

    # -- sockets -----------------------------------------------------------

    def listen(self, port: int, kind: str) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(64)
        server.setblocking(False)
        self.selector.register(server, selectors.EVENT_READ, (kind + "-listen", None))

    def run(self) -> None:
        deadline = time.monotonic() + self.options.lifetime
        while time.monotonic() < deadline:
            timeout = 0.5
            if self.schedule:
                timeout = max(0.0, min(timeout, self.schedule[-1][0] - time.monotonic()))
            if self.flood is not None and len(self.outbuf) < FLOOD_BUFFER:
                timeout = 0.0
            for key, mask in self.selector.select(timeout):
                kind, state = key.data
                if kind == "link-listen":
                    self._acceptLink(key.fileobj)  # type: ignore[arg-type]
                elif kind == "control-listen":
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    conn.setblocking(False)
                    self.selector.register(conn, selectors.EVENT_READ, ("control", {"in": b"", "out": b""}))
                elif kind == "link":
                    if mask & selectors.EVENT_READ:
                        self._linkRead()
                    if mask & selectors.EVENT_WRITE:
                        self._flush()
                elif kind == "control":
                    self._control(key.fileobj, state, mask)  # type: ignore[arg-type]
            self._due()
            if self.flood is not None:
                self._flood()

    def _acceptLink(self, server: socket.socket) -> None:
        conn, _ = server.accept()
        if self.link is not None:
            conn.close()
            return
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setblocking(False)
        self.link = conn
        self.inbuf, self.outbuf, self.state = b"", bytearray(), "header"
        self.selector.register(conn, selectors.EVENT_READ, ("link", None))

    def write(self, data: bytes) -> None:
        wasEmpty = not self.outbuf
        self.outbuf += data
        if wasEmpty:
            self._flush()

    def _flush(self) -> None:
        link = self.link
        if link is None:
            self.outbuf.clear()
            return
        if self.outbuf:
            try:
                sent = link.send(self.outbuf)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = len(self.outbuf)
            del self.outbuf[:sent]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if self.outbuf else 0)
        self.selector.modify(link, events, ("link", None))

    def _linkRead(self) -> None:
        assert self.link is not None
        try:
            data = self.link.recv(262144)
        except BlockingIOError:
            return
        if not data:
            self.selector.unregister(self.link)
            self.link.close()
            self.link = None
            return
        now = time.monotonic()
        buffer = self.inbuf + data
        if self.state == "header":
            end = buffer.find(b">", buffer.find(b"<stream:stream"))
            if end < 0:
                self.inbuf = buffer
                return
            domain = attributes(buffer[:end]).get(b"to", b"").decode()
            self.domain = domain
            self.write(
                "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' "
                f"xmlns:stream='http://etherx.jabber.org/streams' from={_xa(domain)} "
                f"id='{self.streamID}'>".encode()
            )
            buffer = buffer[end + 1 :]
            self.state = "handshake"
        if self.state == "handshake":
            end = buffer.find(b"</handshake>")
            if end < 0:
                self.inbuf = buffer
                return
            digest = buffer[buffer.find(b"<handshake>") + 11 : end].decode().strip()
            expected = hashlib.sha1((self.streamID + self.options.secret).encode()).hexdigest()
            if digest != expected:
                self.write(b"<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>")
                return
            self.write(b"<handshake/>")
            buffer = buffer[end + 12 :]
            self.state = "ready"
        self.inbuf = self._stanzas(buffer, now)

    # -- stanzas -----------------------------------------------------------

    def _stanzas(self, buffer: bytes, now: float) -> bytes:
        position = 0
        size = len(buffer)
        for _ in range(1_000_000):
            if position >= size:
                return b""
            m = _START.match(buffer, position)
            if m is None:
                rest = buffer[position:]
                return b"" if not rest.strip() or rest.lstrip().startswith(b"</") else rest
            name = m.group(1)
            if name == b"stream:stream" or name.startswith(b"/"):
                position = m.end()
                continue
            if m.group(2):
                end = m.end()
                inner = b""
            else:
                close = buffer.find(b"</" + name + b">", m.end())
                if close < 0:
                    return buffer[position:]
                inner = buffer[m.end() : close]
                end = close + len(name) + 3
            self.received += 1
            startTag = m.group(0)
            if name == b"message":
                self._message(startTag, inner, now)
            elif name == b"presence":
                self._presence(startTag, inner)
            elif name == b"iq":
                self._iq(startTag)
            position = end
        return buffer[position:]

    def _room(self, jid: str) -> Room:
        room = self.rooms.get(jid)
        if room is None:
            room = self.rooms[jid] = Room(jid, self.options.fake)
        return room

    @staticmethod
    def _presenceOf(room: Room, nick: str, to: str, codes: tuple[int, ...] = (), unavailable: bool = False) -> str:
        kind = " type='unavailable'" if unavailable else ""
        status = "".join(f"<status code='{c}'/>" for c in codes)
        role = "none" if unavailable else "participant"
        return (
            f"<presence from={_xa(room.jid + '/' + nick)} to={_xa(to)}{kind}>"
            f"<x xmlns='http://jabber.org/protocol/muc#user'><item affiliation='none' role='{role}'/>"
            f"{status}</x></presence>"
        )

    def _presence(self, startTag: bytes, inner: bytes) -> None:
        attrs = attributes(startTag)
        real = attrs.get(b"from", b"").decode()
        target = attrs.get(b"to", b"").decode()
        roomJID, _, nick = target.partition("/")
        if not nick or not real:
            return
        room = self._room(roomJID)
        kind = attrs.get(b"type")
        out: list[str] = []
        if kind == b"unavailable":
            old = room.byReal.pop(real, None)
            if old is None:
                return
            del room.occupants[old]
            out.append(self._presenceOf(room, old, real, (110,), unavailable=True))
            for other in room.occupants.values():
                out.append(self._presenceOf(room, old, other, unavailable=True))
        elif kind is None:
            if real in room.byReal:
                return
            if nick in room.occupants or nick in room.fake:
                out.append(
                    f"<presence from={_xa(target)} to={_xa(real)} type='error'>"
                    "<x xmlns='http://jabber.org/protocol/muc'/><error type='cancel'>"
                    "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
                )
            else:
                for other in room.fake + list(room.occupants):
                    out.append(self._presenceOf(room, other, real))
                out.append(self._presenceOf(room, nick, real, (100, 110)))
                out.append(
                    f"<message from={_xa(roomJID)} to={_xa(real)} type='groupchat'>"
                    "<subject>Benchmark</subject></message>"
                )
                for other in room.occupants.values():
                    out.append(self._presenceOf(room, nick, other))
                room.occupants[nick] = real
                room.byReal[real] = nick
        if out:
            self.write("".join(out).encode())

    def _message(self, startTag: bytes, inner: bytes, now: float) -> None:
        attrs = attributes(startTag)
        if attrs.get(b"type") != b"groupchat":
            return
        real = attrs.get(b"from", b"").decode()
        roomJID = attrs.get(b"to", b"").decode()
        room = self.rooms.get(roomJID)
        if room is None or real not in room.byReal:
            self.write(
                f"<message from={_xa(roomJID)} to={_xa(real)} type='error'>"
                "<error type='modify'><not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                "</error></message>".encode()
            )
            return
        self.groupchats += 1
        if self.firstAt is None:
            self.firstAt = now
        self.lastAt = now
        body = _BODY.search(inner)
        if body is not None:
            tag = _TAG.search(body.group(1))
            if tag is not None:
                self.arrivals.append((int(tag.group(1)), int(tag.group(2)), now))
        sender = room.byReal[real]
        stanzaID = attrs.get(b"id")
        head = f"<message from={_xa(roomJID + '/' + sender)} type='groupchat'".encode()
        if stanzaID is not None:
            head += b" id='" + stanzaID + b"'"
        targets = room.occupants.values() if self.reflectAll else (real,)
        self.write(b"".join(head + b" to=" + _xa(to).encode() + b">" + inner + b"</message>" for to in targets))

    def _iq(self, startTag: bytes) -> None:
        attrs = attributes(startTag)
        if attrs.get(b"type") not in (b"get", b"set"):
            return
        self.write(
            b"<iq type='result' id='" + attrs.get(b"id", b"") + b"' from='" + attrs.get(b"to", b"")
            + b"' to='" + attrs.get(b"from", b"") + b"'/>"
        )

    # -- injection ---------------------------------------------------------

    def groupchatFrom(self, room: Room, nick: str, body: str, stanzaID: str) -> bytes:
        """
        @return: the bytes of one groupchat message from C{nick}, as the
            room sends it to each of the gateway's occupants.
        """
        return "".join(
            f"<message from={_xa(room.jid + '/' + nick)} to={_xa(to)} type='groupchat' id='{stanzaID}'>"
            f"<body>{escape(body)}</body></message>"
            for to in room.occupants.values()
        ).encode()

    def _flood(self) -> None:
        flood = self.flood
        assert flood is not None
        pool = flood["pool"]
        for _ in range(64):
            if len(self.outbuf) >= FLOOD_BUFFER or self.link is None:
                break
            self.outbuf += pool[flood["next"]]
            flood["next"] = (flood["next"] + 1) % len(pool)
            self.injected += flood["fanout"]
        self._flush()

    def _due(self) -> None:
        if not self.schedule:
            return
        now = time.monotonic()
        batch: list[bytes] = []
        for _ in range(len(self.schedule)):
            if not self.schedule or self.schedule[-1][0] > now:
                break
            _, data, r, j = self.schedule.pop()
            batch.append(data)
            self.sent.append((r, j, time.monotonic()))
        if batch:
            self.write(b"".join(batch))

    # -- control -------------------------------------------------------------

    def _control(self, conn: socket.socket, state: dict[str, Any], mask: int) -> None:
        if mask & selectors.EVENT_READ and not state["out"]:
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                return
            state["in"] += data
            if not data or b"\n" in state["in"]:
                try:
                    answer = self.command(json.loads(state["in"].split(b"\n", 1)[0] or b"{}"))
                except Exception as e:  # noqa: BLE001 (reported to the caller)
                    answer = {"error": repr(e)}
                state["out"] = json.dumps(answer).encode() + b"\n"
                self.selector.modify(conn, selectors.EVENT_WRITE, ("control", state))
        if state["out"]:
            try:
                sent = conn.send(state["out"])
            except BlockingIOError:
                return
            except OSError:
                sent = len(state["out"])
            state["out"] = state["out"][sent:]
            if not state["out"]:
                self.selector.unregister(conn)
                conn.close()

    def command(self, request: dict[str, Any]) -> dict[str, Any]:
        cmd = request.get("cmd")
        if cmd == "stats":
            return {
                "link": self.state if self.link is not None else "down",
                "rooms": len(self.rooms),
                "occupants": sum(len(r.occupants) for r in self.rooms.values()),
                "received": self.received, "groupchats": self.groupchats,
                "injected": self.injected, "outbuf": len(self.outbuf),
            }
        if cmd == "flood":
            room = self.rooms[request["room"]]
            nick = room.fake[0]
            pool = [
                self.groupchatFrom(room, nick, f"flood {i} " + "x" * 100, f"f{i}")
                for i in range(int(request.get("pool", 64)))
            ]
            self.flood = {"pool": pool, "next": 0, "fanout": len(room.occupants)}
            return {"fanout": len(room.occupants)}
        if cmd == "stop":
            self.flood = None
            return {"injected": self.injected}
        if cmd == "schedule":
            return self._schedule(request)
        if cmd == "results":
            return {"sent": self.sent, "arrivals": self.arrivals, "groupchats": self.groupchats}
        return {"error": f"unknown command {cmd!r}"}

    def _schedule(self, request: dict[str, Any]) -> dict[str, Any]:
        """
        W6: message C{j} of room C{r} is due at C{start + j + r / rooms}
        and comes from participant C{(r + j) % senders}; those at or above
        C{sip} are this peer's fake XMPP occupants (X1, X2, ...).
        """
        start, duration = float(request["start"]), int(request["duration"])
        senders, sip = int(request["senders"]), int(request["sip"])
        names = sorted(self.rooms, key=lambda jid: int(re.sub(r"\D", "", jid.split("@")[0]) or 0))
        schedule = []
        for r, jid in enumerate(names):
            room = self.rooms[jid]
            for j in range(duration):
                who = (r + j) % senders
                if who < sip:
                    continue
                due = start + j + r / len(names)
                data = self.groupchatFrom(room, room.fake[who - sip], f"hello t{r}m{j} from XMPP", f"t{r}m{j}")
                schedule.append((due, data, r, j))
        schedule.sort(reverse=True)
        self.schedule = schedule
        self.scheduled = len(schedule)
        return {"scheduled": len(schedule), "rooms": len(names)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--secret", default="benchsecret")
    parser.add_argument("--reflect", choices=("all", "sender"), default="all")
    parser.add_argument("--fake", type=int, default=2)
    parser.add_argument("--lifetime", type=float, default=1800)
    options = parser.parse_args()
    peer = Peer(options)
    peer.listen(options.port, "link")
    peer.listen(options.control, "control")
    peer.run()


if __name__ == "__main__":
    main()
