"""
C{make demo}: a SIP user and an XMPP user chatting through the gateway.

Everything runs on 127.0.0.1 and is stopped at the end:
  - a private Prosody (XMPP domain C{xmpp.test}, MUC service
    C{muc.xmpp.test}, the gateway's domains as components);
  - the gateway itself, C{twistd -n stoxgw}, with a configuration written
    here;
  - Juliet, an XMPP user (slixmpp), in C{room@muc.xmpp.test};
  - Romeo, a SIP user: the C{stoxgw-chat} client, which INVITEs
    C{sip:room@muc.xmpp.test} through the gateway (RFC 7702 section 6) and
    talks CPIM over MSRP.

Romeo says something, Juliet answers, Romeo leaves; both sides' view is
printed.
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


async def juliet(port: int, romeoArrived: asyncio.Event, transcript: list[str]) -> None:
    """
    Juliet joins the room, waits for Romeo's message and answers it.
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
    started = asyncio.get_running_loop().create_future()
    heard = asyncio.get_running_loop().create_future()
    client.add_event_handler("session_start", lambda _: started.done() or started.set_result(None))

    def onGroupchat(message: slixmpp.Message) -> None:
        nick = message["from"].resource
        transcript.append(f"juliet (XMPP) sees: <{nick}> {message['body']}")
        if nick != "Juliet" and not heard.done():
            heard.set_result(None)

    def onPresence(presence: slixmpp.Presence) -> None:
        nick = presence["from"].resource
        if nick and nick != "Juliet":
            state = "left" if presence["type"] == "unavailable" else "joined"
            transcript.append(f"juliet (XMPP) sees: {nick} {state} the room")
            if state == "joined":
                romeoArrived.set()

    client.add_event_handler("groupchat_message", onGroupchat)
    client.add_event_handler("groupchat_presence", onPresence)
    client.connect("127.0.0.1", port)
    await asyncio.wait_for(started, 15)
    client.send_presence()
    await client.plugin["xep_0045"].join_muc_wait(slixmpp.JID(ROOM), "Juliet", maxstanzas=0, timeout=15)
    transcript.append("juliet (XMPP) joined room@muc.xmpp.test")
    await asyncio.wait_for(heard, 30)
    client.send_message(mto=slixmpp.JID(ROOM), mbody=JULIET_SAYS, mtype="groupchat")
    for _ in range(200):
        if any("Romeo left" in line for line in transcript):
            break
        await asyncio.sleep(0.05)
    client.disconnect()


def main() -> int:
    directory = tempfile.mkdtemp(prefix="stoxgw-demo-")
    prosody = Prosody(
        components=("sip.xmpp.test", "chat.sip.xmpp.test"), directory=os.path.join(directory, "prosody")
    )
    print(f"demo: starting Prosody (XMPP domain xmpp.test, MUC muc.xmpp.test) in {prosody.directory}")
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
        )
    gateway = Gateway(config, directory)
    romeo: subprocess.Popen[str] | None = None
    status = 1
    try:
        print(f"demo: starting the gateway: twistd -n stoxgw --config {config}")
        gateway.start()
        gateway.waitFor("XMPP component link up:", count=2)
        transcript: list[str] = []

        romeoLines: list[str] = []

        async def conversation() -> None:
            nonlocal romeo
            # Romeo enters first: the room does not exist yet, the gateway
            # creates it and unlocks it with the instant-room form (XEP-0045
            # 10.1.2; Prosody locks new rooms).
            print("demo: romeo (SIP) runs: stoxgw-chat --name Romeo "
                  f"--proxy 127.0.0.1:{sipPort} sip:{ROOM}")
            romeo = subprocess.Popen(
                [sys.executable, "-m", "stoxgw.tools.chat", "--from", "sip:romeo@montague.example",
                 "--name", "Romeo", "--proxy", f"127.0.0.1:{sipPort}", f"sip:{ROOM}"],
                cwd=TOP, env=dict(os.environ, PYTHONPATH=TOP),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )
            reader = threading.Thread(
                target=lambda: romeoLines.extend(iter(romeo.stdout.readline, "")),  # type: ignore[union-attr]
                daemon=True,
            )
            reader.start()
            deadline = time.monotonic() + 30
            while not any(line.startswith(("joined", "failed")) for line in romeoLines):
                if time.monotonic() > deadline or romeo.poll() is not None:
                    raise RuntimeError(f"romeo did not join: {romeoLines}")
                await asyncio.sleep(0.05)
            if not any(line.startswith("joined") for line in romeoLines):
                raise RuntimeError(f"romeo could not join: {romeoLines}")
            romeoArrived = asyncio.Event()
            xmpp = asyncio.ensure_future(juliet(prosody.c2sPort, romeoArrived, transcript))
            await asyncio.wait_for(romeoArrived.wait(), 30)
            assert romeo.stdin is not None
            romeo.stdin.write(ROMEO_SAYS + "\n")
            romeo.stdin.flush()
            deadline = time.monotonic() + 30
            while not any(JULIET_SAYS in line for line in romeoLines) and time.monotonic() < deadline:
                if xmpp.done():
                    xmpp.result()
                await asyncio.sleep(0.05)
            # Romeo hangs up (end of input: BYE); Juliet sees him leave.
            romeo.stdin.close()
            await asyncio.wait_for(xmpp, 60)
            while romeo.poll() is None and time.monotonic() < deadline + 20:
                await asyncio.sleep(0.05)
            reader.join(5)

        asyncio.run(conversation())
        output = "".join(romeoLines)
        print("demo: what juliet (XMPP) saw:")
        for line in transcript:
            print("    " + line)
        print("demo: what romeo (SIP, stoxgw-chat) printed:")
        for line in output.splitlines():
            print("    " + line)
        if (
            JULIET_SAYS in output
            and any(ROMEO_SAYS in line for line in transcript)
            and any("Romeo left" in line for line in transcript)
        ):
            print("demo: Romeo (SIP) and Juliet (XMPP) talked through the gateway.")
            status = 0
        else:
            print("demo: FAILED: the conversation did not go through; gateway log:")
            print(gateway.output())
    except Exception as e:
        print(f"demo: FAILED: {e}")
        print(gateway.output())
    finally:
        if romeo is not None and romeo.poll() is None:
            romeo.kill()
        print("demo: stopping the gateway and Prosody")
        gateway.stop()
        prosody.stop()
    return status


if __name__ == "__main__":
    sys.exit(main())
