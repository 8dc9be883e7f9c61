"""
C{make demo}: SIP users and XMPP users chatting through the gateway, in
both directions of RFC 7702.

Everything runs on 127.0.0.1 and is stopped at the end:
  - a private Prosody (XMPP domain C{xmpp.test}, MUC service
    C{muc.xmpp.test}, the gateway's domains as components);
  - the gateway itself, C{twistd -n stoxgw}, with a configuration written
    here: SIP users' JIDs on C{sip.xmpp.test}, and C{chat.sip.xmpp.test}
    as both its XMPP room domain and the SIP domain of the chat rooms it
    hosts itself (C{[rooms]}, docs/native-rooms.md);
  - Juliet, an XMPP user (slixmpp);
  - Romeo and Mercutio, SIP users: the C{stoxgw-chat} client, which
    INVITEs a room through the gateway and talks CPIM over MSRP.

Part 1 (RFC 7702 section 6): Romeo INVITEs C{sip:room@muc.xmpp.test}, an
XMPP MUC room where Juliet is; he speaks, she answers, he leaves.

Part 2 (RFC 7702 section 5, with a native RFC 7701 room): Mercutio joins
C{sip:lounge@chat.sip.xmpp.test}, a SIP chat room the gateway hosts, and
takes the nickname Mercutio; Juliet joins the same room from XMPP as
C{lounge@chat.sip.xmpp.test/Juliet} (the gateway INVITEs its own room for
her); he speaks, she answers, he leaves.

Each side's transcript is printed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.interop.gateway import Gateway  # noqa: E402
from tests.interop.peers import Prosody, freePort, freeUDPAndTCPPort  # noqa: E402

ROOM = "room@muc.xmpp.test"
ROMEO_SAYS = "Juliet, are you there? It is Romeo, on SIP."
JULIET_SAYS = "Here, Romeo! Through the gateway, from XMPP."

LOUNGE = "lounge@chat.sip.xmpp.test"
LOUNGE_SUBJECT = "The Capulets' orchard"
MERCUTIO_SAYS = "A plague o' both your houses! Juliet, do you hear me?"
JULIET_ANSWERS = "I hear you, Mercutio, in your SIP room."


class SIPUser:
    """
    One C{stoxgw-chat} process and the lines it printed.
    """

    def __init__(
        self, name: str, room: str, sipPort: int, nick: str | None = None
    ) -> None:
        self.name = name
        args = [
            sys.executable,
            "-m",
            "stoxgw.tools.chat",
            "--from",
            f"sip:{name.lower()}@montague.example",
            "--name",
            name,
            "--proxy",
            f"127.0.0.1:{sipPort}",
            f"sip:{room}",
        ]
        if nick is not None:
            args[5:5] = ["--nick", nick]
        self.command = "stoxgw-chat " + " ".join(args[3:])
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            args,
            cwd=TOP,
            env=dict(os.environ, PYTHONPATH=TOP),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")),  # type: ignore[union-attr]
            daemon=True,
        )
        self.reader.start()

    async def waitFor(self, prefix: str, timeout: float = 30) -> None:
        """
        Wait until a printed line starts with C{prefix}.
        """
        deadline = time.monotonic() + timeout
        while not any(line.startswith(prefix) for line in self.lines):
            if any(line.startswith("failed") for line in self.lines):
                raise RuntimeError(f"{self.name} failed: {self.lines}")
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: no {prefix!r} in {self.lines}")
            await asyncio.sleep(0.05)

    def say(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

    async def leave(self, timeout: float = 20) -> None:
        """
        End of input: the client says BYE and exits.
        """
        assert self.process.stdin is not None
        self.process.stdin.close()
        deadline = time.monotonic() + timeout
        while self.process.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        self.reader.join(5)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()

    @property
    def output(self) -> str:
        return "".join(self.lines)


async def xmppUser(
    port: int,
    room: str,
    other: str,
    otherSays: str,
    answer: str,
    arrived: asyncio.Event,
    transcript: list[str],
) -> None:
    """
    Juliet joins C{room}, waits for C{other} to say C{otherSays}, answers
    it, and stays until C{other} left.
    """
    import slixmpp

    client = slixmpp.ClientXMPP(
        "juliet@xmpp.test",
        "julietpass",
        plugin_config={"feature_mechanisms": {"unencrypted_plain": True}},
    )
    client.enable_starttls = False
    client.enable_direct_tls = False
    client.enable_plaintext = True
    client.register_plugin("xep_0045")
    loop = asyncio.get_running_loop()
    started = loop.create_future()
    heard = loop.create_future()
    gone = loop.create_future()
    client.add_event_handler(
        "session_start", lambda _: started.done() or started.set_result(None)
    )
    seen: set[str] = set()

    def onGroupchat(message: slixmpp.Message) -> None:
        nick = message["from"].resource
        if not message["body"]:
            return
        delayed = " (history)" if message["delay"]["stamp"] else ""
        line = f"juliet (XMPP) sees: <{nick}> {message['body']}{delayed}"
        if line in seen:
            return  # slixmpp raises two events for one message
        seen.add(line)
        transcript.append(line)
        if nick == other and message["body"] == otherSays and not heard.done():
            heard.set_result(None)

    def onPresence(presence: slixmpp.Presence) -> None:
        nick = presence["from"].resource
        if not nick or nick == "Juliet":
            return
        state = "left" if presence["type"] == "unavailable" else "is in"
        line = f"juliet (XMPP) sees: {nick} {state} the room"
        if line not in seen:
            seen.add(line)
            transcript.append(line)
        if nick == other:
            if state == "is in":
                arrived.set()
            elif not gone.done():
                gone.set_result(None)

    def onSubject(message: slixmpp.Message) -> None:
        line = f"juliet (XMPP) sees the subject: {message['subject']}"
        if message["subject"] and line not in seen:
            seen.add(line)
            transcript.append(line)

    client.add_event_handler("groupchat_message", onGroupchat)
    client.add_event_handler("groupchat_subject", onSubject)
    client.add_event_handler("groupchat_presence", onPresence)
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(started, 15)
    client.send_presence()
    await client.plugin["xep_0045"].join_muc_wait(
        slixmpp.JID(room), "Juliet", maxstanzas=0, timeout=15
    )
    transcript.append(f"juliet (XMPP) joined {room}")
    await asyncio.wait_for(heard, 30)
    client.send_message(mto=slixmpp.JID(room), mbody=answer, mtype="groupchat")
    await asyncio.wait_for(gone, 30)
    client.disconnect()


def show(title: str, lines: list[str]) -> None:
    print(title)
    for line in lines:
        print("    " + line)


async def partOne(prosody: Prosody, sipPort: int) -> tuple[list[str], SIPUser]:
    """
    Romeo (SIP) in the XMPP MUC room C{room@muc.xmpp.test} with Juliet.
    """
    transcript: list[str] = []
    # Romeo enters first: the room does not exist yet, the gateway creates
    # it and unlocks it with the instant-room form (XEP-0045 10.1.2;
    # Prosody locks new rooms).
    romeo = SIPUser("Romeo", ROOM, sipPort)
    print(f"demo: romeo (SIP) runs: {romeo.command}")
    try:
        await romeo.waitFor("joined")
        arrived = asyncio.Event()
        xmpp = asyncio.ensure_future(
            xmppUser(
                prosody.c2sPort,
                ROOM,
                "Romeo",
                ROMEO_SAYS,
                JULIET_SAYS,
                arrived,
                transcript,
            )
        )
        await asyncio.wait_for(arrived.wait(), 30)
        romeo.say(ROMEO_SAYS)
        await romeo.waitFor(f"Juliet {JULIET_SAYS}")
        await romeo.leave()
        await asyncio.wait_for(xmpp, 30)
    finally:
        romeo.kill()
    return transcript, romeo


async def partTwo(prosody: Prosody, sipPort: int) -> tuple[list[str], SIPUser]:
    """
    Mercutio (SIP) and Juliet (XMPP) in the gateway's own SIP chat room
    C{sip:lounge@chat.sip.xmpp.test}.
    """
    transcript: list[str] = []
    mercutio = SIPUser("Mercutio", LOUNGE, sipPort, nick="Mercutio")
    print(f"demo: mercutio (SIP) runs: {mercutio.command}")
    try:
        await mercutio.waitFor("nickname Mercutio: 200")
        print(f"demo: juliet (XMPP) joins {LOUNGE}/Juliet")
        arrived = asyncio.Event()
        xmpp = asyncio.ensure_future(
            xmppUser(
                prosody.c2sPort,
                LOUNGE,
                "Mercutio",
                MERCUTIO_SAYS,
                JULIET_ANSWERS,
                arrived,
                transcript,
            )
        )
        await asyncio.wait_for(arrived.wait(), 30)
        # Juliet is in once the gateway's join completed: wait for it.
        for _ in range(300):
            if (
                any(line.startswith("juliet (XMPP) joined") for line in transcript)
                or xmpp.done()
            ):
                break
            await asyncio.sleep(0.05)
        mercutio.say(MERCUTIO_SAYS)
        await mercutio.waitFor(f"Juliet {JULIET_ANSWERS}")
        await mercutio.leave()
        await asyncio.wait_for(xmpp, 30)
    finally:
        mercutio.kill()
    return transcript, mercutio


def main() -> int:
    started = time.monotonic()
    directory = tempfile.mkdtemp(prefix="stoxgw-demo-")
    prosody = Prosody(
        components=("sip.xmpp.test", "chat.sip.xmpp.test"),
        directory=os.path.join(directory, "prosody"),
    )
    print(
        f"demo: starting Prosody (XMPP domain xmpp.test, MUC muc.xmpp.test) in {prosody.directory}"
    )
    prosody.start()
    prosody.register("juliet", "julietpass")
    sipPort = freeUDPAndTCPPort()
    config = os.path.join(directory, "stoxgw.conf")
    with open(config, "w") as f:
        f.write(
            "[gateway]\nmuc_domains = muc.xmpp.test\n"
            f"[xmpp]\nport = {prosody.componentPort}\nuser_domain = sip.xmpp.test\n"
            f"room_domain = chat.sip.xmpp.test\nsecret = {prosody.secret}\n"
            f"[msrp]\nport = {freePort()}\n"
            f"[sip]\nudp_port = {sipPort}\ntcp_port = {sipPort}\ntrusted_peers = 127.0.0.1/32\n"
            f"[rooms]\ndomain = chat.sip.xmpp.test\npersistent_rooms = lounge {LOUNGE_SUBJECT}\n"
        )
    gateway = Gateway(config, directory)
    status = 1
    try:
        print(f"demo: starting the gateway: twistd -n stoxgw --config {config}")
        gateway.start()
        gateway.waitFor("XMPP component link up:", count=2)

        print(f"demo: part 1, a SIP user in an XMPP room (RFC 7702 section 6): {ROOM}")
        juliet1, romeo = asyncio.run(partOne(prosody, sipPort))
        show("demo: what juliet (XMPP) saw:", juliet1)
        show("demo: what romeo (SIP, stoxgw-chat) printed:", romeo.output.splitlines())
        one = (
            JULIET_SAYS in romeo.output
            and any(ROMEO_SAYS in line for line in juliet1)
            and any("Romeo left" in line for line in juliet1)
        )
        if one:
            print("demo: Romeo (SIP) and Juliet (XMPP) talked through the gateway.")

        print(
            "demo: part 2, an XMPP user in a SIP chat room the gateway hosts"
            f" (RFC 7702 section 5, RFC 7701): sip:{LOUNGE}"
        )
        juliet2, mercutio = asyncio.run(partTwo(prosody, sipPort))
        show("demo: what juliet (XMPP) saw:", juliet2)
        show(
            "demo: what mercutio (SIP, stoxgw-chat) printed:",
            mercutio.output.splitlines(),
        )
        two = (
            JULIET_ANSWERS in mercutio.output
            and any(MERCUTIO_SAYS in line for line in juliet2)
            and any("Mercutio left" in line for line in juliet2)
        )
        if two:
            print(
                "demo: Mercutio (SIP) and Juliet (XMPP) talked in the gateway's own SIP room."
            )
        if one and two:
            status = 0
        else:
            print("demo: FAILED: a conversation did not go through; gateway log:")
            print(gateway.output())
    except Exception as e:
        print(f"demo: FAILED: {e}")
        print(gateway.output())
    finally:
        print("demo: stopping the gateway and Prosody")
        gateway.stop()
        prosody.stop()
    print(f"demo: done in {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
