# -*- test-case-name: tests.interop.test_sip_pjsua2 -*-
"""
A pjsua2 (PJSIP 2.15, PyPI C{pjsua2-python}) SIP user agent driven over
stdin/stdout, for the interop tests.

Run as a script in a child process (L{tests.interop.pjsua2peer} does), never
imported by trial: pjsua2 has global state and threads of its own.  It runs
single-threaded here (C{threadCnt = 0}, C{mainThreadOnly}): the main loop
polls PJSIP (C{libHandleEvents}) and stdin in turn, so every callback runs
on this thread.  The log (with every SIP message sent and received) is
flushed each turn of that loop.

Options (argv)::

    --transport udp|tcp|tls   the one SIP transport (bound to 127.0.0.1)
    --port N                  its port (0: any)
    --cert PEM --key PEM      our TLS certificate and key (TLS server side,
                              and the client certificate PJSIP presents
                              when a server asks for one)
    --ca PEM                  trusted CA list; with it the server
                              certificate is verified (TLS client side)
    --log FILE                PJSIP log, SIP messages included
    --max-seconds N           exit on our own after N seconds
    --answer STATUS           answer incoming calls with STATUS (after 180)

Commands (stdin, one JSON object a line): C{{"cmd": "call", "uri": U}},
C{{"cmd": "hangup"}}, C{{"cmd": "options", "uri": U}}, C{{"cmd": "quit"}}.

Events (stdout, one JSON object a line, C{"event"} names it): C{ready}
(with C{port}), C{incoming}, C{callState} (C{state}, C{lastStatus},
C{lastReason}), C{sdpCreated} (our C{local} offer or answer, the C{remote} offer if
any), C{callMedia} (each medium's type, status, direction),
C{optionsResponse} (C{status}, C{message}), C{error}, C{exit}.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import sys
import time
from typing import Any


def emit(event: str, **fields: Any) -> None:
    """
    Write one event line to stdout.
    """
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    """
    Run the agent until C{quit}, stdin EOF or C{--max-seconds}.
    """
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", default="udp", choices=["udp", "tcp", "tls"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--ca")
    parser.add_argument("--log")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--answer", type=int, default=200)
    options = parser.parse_args(argv)

    import pjsua2 as pj  # type: ignore[import-untyped]  # child process only

    endpoint = pj.Endpoint()
    endpoint.libCreate()
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.userAgent = "pjsua2-stoxgw-interop"
    config.uaConfig.maxCalls = 4
    config.logConfig.consoleLevel = 0
    config.logConfig.level = 5 if options.log else 0
    config.logConfig.msgLogging = bool(options.log)
    if options.log:
        config.logConfig.filename = options.log
    config.medConfig.noVad = True
    endpoint.libInit(config)

    kind = {
        "udp": pj.PJSIP_TRANSPORT_UDP,
        "tcp": pj.PJSIP_TRANSPORT_TCP,
        "tls": pj.PJSIP_TRANSPORT_TLS,
    }[options.transport]
    transportConfig = pj.TransportConfig()
    transportConfig.boundAddress = "127.0.0.1"
    transportConfig.publicAddress = "127.0.0.1"
    transportConfig.port = options.port
    if options.transport == "tls":
        tls = transportConfig.tlsConfig
        tls.method = pj.PJSIP_TLSV1_2_METHOD
        if options.cert:
            tls.certFile = options.cert
            tls.privKeyFile = options.key or options.cert
        if options.ca:
            tls.CaListFile = options.ca
            tls.verifyServer = True
        tls.verifyClient = False
        tls.requireClientCert = False
    transportID = endpoint.transportCreate(kind, transportConfig)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    port = endpoint.transportGetInfo(transportID).localName.rsplit(":", 1)[1]

    calls: list[Any] = []
    state = {"quit": False}

    class AgentCall(pj.Call):  # type: ignore[misc]
        def onCallState(self, prm: Any) -> None:
            info = self.getInfo()
            emit(
                "callState",
                state=info.stateText,
                lastStatus=info.lastStatusCode,
                lastReason=info.lastReason,
                callID=info.callIdString,
                remoteContact=info.remoteContact,
            )

        def onCallSdpCreated(self, prm: Any) -> None:
            emit("sdpCreated", local=prm.sdp.wholeSdp, remote=prm.remSdp.wholeSdp)

        def onCallMediaState(self, prm: Any) -> None:
            info = self.getInfo()
            emit(
                "callMedia",
                media=[
                    {"type": m.type, "status": m.status, "dir": m.dir}
                    for m in info.media
                ],
            )

    class AgentAccount(pj.Account):  # type: ignore[misc]
        def onIncomingCall(self, prm: Any) -> None:
            call = AgentCall(self, prm.callId)
            calls.append(call)
            emit("incoming", message=prm.rdata.wholeMsg)
            op = pj.CallOpParam()
            op.statusCode = 180
            call.answer(op)
            op = pj.CallOpParam(True)
            op.statusCode = options.answer
            op.opt.videoCount = 0
            call.answer(op)

        def onSendRequest(self, prm: Any) -> None:
            body = prm.e.body.tsxState
            message = ""
            if body.type == pj.PJSIP_EVENT_RX_MSG:
                message = body.src.rdata.wholeMsg
            status = 0
            if message.startswith("SIP/2.0 "):
                status = int(message.split()[1])
            emit("optionsResponse", status=status, message=message)

    scheme = "sips" if options.transport == "tls" else "sip"
    accountConfig = pj.AccountConfig()
    accountConfig.idUri = (
        f"{scheme}:pjsua@127.0.0.1:{port};transport={options.transport}"
    )
    accountConfig.sipConfig.transportId = transportID
    accountConfig.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
    accountConfig.mediaConfig.transportConfig.port = 0
    accountConfig.natConfig.iceEnabled = False
    accountConfig.natConfig.sdpNatRewriteUse = 0
    accountConfig.natConfig.contactRewriteUse = 0
    accountConfig.natConfig.viaRewriteUse = 0
    account = AgentAccount()
    account.create(accountConfig, True)

    def command(line: str) -> None:
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "call":
            call = AgentCall(account)
            calls.append(call)
            op = pj.CallOpParam(True)
            op.opt.audioCount = 1
            op.opt.videoCount = 0
            call.makeCall(request["uri"], op)
        elif cmd == "hangup":
            for call in calls:
                if call.isActive():
                    op = pj.CallOpParam()
                    op.statusCode = 603
                    call.hangup(op)
        elif cmd == "options":
            send = pj.SendRequestParam()
            send.method = "OPTIONS"
            send.txOption.targetUri = request["uri"]
            account.sendRequest(send)
        elif cmd == "quit":
            state["quit"] = True
        else:
            emit("error", error=f"unknown command {cmd!r}")

    # PJSIP writes its log with stdio (buffered): flush it every turn so the
    # test can read the message trace while we run.
    libc = ctypes.CDLL(None)
    emit("ready", port=int(port), transport=options.transport)
    deadline = time.monotonic() + options.max_seconds
    buffered = b""
    stdin = sys.stdin.fileno()
    while not state["quit"] and time.monotonic() < deadline:
        endpoint.libHandleEvents(20)
        libc.fflush(None)
        readable, _, _ = select.select([stdin], [], [], 0)
        if readable:
            data = os.read(stdin, 65536)
            if not data:
                break
            buffered += data
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                if line.strip():
                    try:
                        command(line.decode("utf-8"))
                    except Exception as e:
                        emit("error", error=repr(e))
    endpoint.hangupAllCalls()
    for _ in range(10):
        endpoint.libHandleEvents(20)
    emit("exit")
    # libDestroy waits for transactions and may block: the process exits.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
