# -*- test-case-name: tests.interop.test_msrp_relay_kamailio -*-
"""
Kamailio's C{msrp} module as a real RFC 4976 MSRP relay for the interop
tests, run on 127.0.0.1.

L{KamailioMSRPRelay} follows the pattern of L{tests.interop.peers.Prosody}:
it writes a self-contained C{kamailio.cfg} into a directory of its own,
starts C{kamailio} in the foreground as a child process, waits (bounded)
until the MSRP port accepts connections, and on L{KamailioMSRPRelay.stop}
terminates exactly the process it started.

What the generated configuration does (Kamailio 5.6.3, measured by
L{tests.interop.test_msrp_relay_kamailio}):

  - AUTH without credentials: C{401 Unauthorized} with a C{WWW-Authenticate:
    Digest} challenge built by the C{auth} module (C{qop="auth"};
    C{algorithm=MD5}, or C{SHA-256}); a wrong password gets C{403
    Forbidden}, an unknown user a fresh C{401}.  With valid credentials
    (or with no users configured: then AUTH is not authenticated at all):
    C{423} with C{Min-Expires}/C{Max-Expires} for an C{Expires} out of
    bounds, else C{200 OK} with C{Use-Path:
    msrp://127.0.0.1:PORT/SESSION;tcp} (a numeric host, not the FQDN
    RFC 4976 section 4.2 asks for) and C{Expires}; the session and the
    connection it came on are kept in an C{htable}.
  - SEND/REPORT whose first To-Path URI is not a session handed out:
    C{481} (SEND).  With more URIs after the next one: C{200 OK} (SEND,
    hop by hop) and relayed to the next To-Path URI (possibly the relay
    itself, over a new connection).  With exactly one URI after it:
    C{200 OK} (SEND) and relayed over the connection that sent the AUTH.
    Kamailio keeps the transaction id; it moves the first To-Path URI to
    the front of the From-Path.
  - Responses: relayed if their To-Path has a next hop, otherwise dropped
    (SEND responses are hop by hop, RFC 4976 section 6.4.1).
  - Other methods: C{501}.  SIP requests: C{403}.

The module's own C{msrp_cmap_save()} is not used: in 5.6.3 it reads the
AUTH's C{Expires} from the wrong header, so an C{Expires} next to an
C{Authorization} header always gets a C{423} whose header block is an
uninitialised buffer (NUL bytes), and without C{Authorization} the
C{Expires} is ignored.

See PEERS.md for the facts these rely on (in particular: never set the
module's C{use_path_addr}).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile

from tests.interop.peers import ChosenPort, PeerUnavailable, ServerPeer, freeUDPPort

__all__ = ["KamailioMSRPRelay", "KamailioProcess", "freeUDPPort"]

#: Where Debian installs Kamailio's modules.
MODULE_PATH = "/usr/lib/x86_64-linux-gnu/kamailio/modules"


def _quote(text: str) -> str:
    """
    Quote a string for kamailio.cfg.

    @param text: Printable ASCII without quotes or backslashes.
    @return: C{"text"}.
    @raise ValueError: If C{text} could break out of the string.
    """
    if not text.isascii() or not text.isprintable() or any(c in text for c in '"\\$'):
        raise ValueError(f"unsafe config string {text!r}")
    return f'"{text}"'


class KamailioProcess(ServerPeer):
    """
    One Kamailio process in the foreground, with its configuration, run
    directory, PID file and log in a directory of its own; what the relay
    and proxy runners share.  Subclasses say which ports L{start} chooses
    (L{ServerPeer.portKinds}), write L{configPath} and say which TCP port
    means "up" (L{listeningPort}).
    """

    name = "kamailio"
    program = "kamailio"

    def __init__(self, directory: str | None, prefix: str, modules: tuple[str, ...]) -> None:
        executable = shutil.which(self.program) or "/usr/sbin/kamailio"
        if not os.path.exists(executable):
            raise PeerUnavailable("kamailio is not installed")
        for module in modules:
            if not os.path.exists(os.path.join(MODULE_PATH, module)):
                raise PeerUnavailable(f"kamailio module {module} missing in {MODULE_PATH}")
        super().__init__()
        self.executable = executable
        self.directory = os.path.abspath(directory or tempfile.mkdtemp(prefix=prefix))
        os.makedirs(self.directory, exist_ok=True)
        self.runDirectory = os.path.join(self.directory, "run")
        os.makedirs(self.runDirectory, exist_ok=True)
        self.configPath = os.path.join(self.directory, "kamailio.cfg")
        self.pidPath = os.path.join(self.directory, "kamailio.pid")
        self.logPath = os.path.join(self.directory, "kamailio.log")

    @property
    def listeningPort(self) -> int:
        """
        The TCP port L{start} waits for.
        """
        raise NotImplementedError

    def checkConfig(self) -> None:
        """
        Let Kamailio parse the configuration (C{kamailio -c}).

        @raise RuntimeError: If it reports an error.
        """
        result = subprocess.run(
            [self.executable, "-c", "-f", self.configPath],
            capture_output=True,
            timeout=30,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "kamailio rejected its configuration:\n"
                + result.stderr.decode("utf-8", "replace")
            )

    def listeningPorts(self) -> list[int]:
        return [self.listeningPort]

    def logFiles(self) -> list[str]:
        return [self.logPath]

    def _launch(self) -> subprocess.Popen[bytes]:
        with open(self.logPath, "ab") as out:
            return subprocess.Popen(
                [
                    self.executable,
                    "-f",
                    self.configPath,
                    "-DD",
                    "-E",
                    "-Y",
                    self.runDirectory,
                    "-P",
                    self.pidPath,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                # Its own process group, so that a hung Kamailio and its
                # workers can be killed together without touching anything
                # else.
                start_new_session=True,
            )

    def stop(self, timeout: float = 10.0) -> None:
        """
        Stop the process started by L{start}, and only that one.

        With C{-DD} the main process stays in the foreground and its worker
        processes are its own children: SIGTERM to the main process makes it
        stop them and exit.  If it does not within C{timeout}, SIGKILL goes
        to the process group L{start} created for it (its workers and
        nothing else).
        """
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout)


class KamailioMSRPRelay(KamailioProcess):
    """
    One Kamailio process acting as an MSRP relay on 127.0.0.1 over plain TCP.

    @ivar msrpPort: The MSRP TCP port (after L{start}).
    @ivar sipPort: The SIP UDP port (after L{start}) (Kamailio needs a SIP socket; it answers
        every SIP request with 403).
    @ivar realm: The digest realm of the challenges.
    @ivar users: Accepted C{username -> password} pairs; empty means AUTH is
        accepted without digest authentication.
    @ivar algorithm: C{"MD5"} or C{"SHA-256"} (the C{auth} module's
        C{algorithm} parameter).
    @ivar minExpires: The module's C{auth_min_expires}.
    @ivar maxExpires: The module's C{auth_max_expires}.
    """

    msrpPort = ChosenPort("tcp")
    sipPort = ChosenPort("udp")

    def __init__(
        self,
        users: dict[str, str] | None = None,
        realm: str = "relay.stoxgw.test",
        algorithm: str = "MD5",
        minExpires: int = 60,
        maxExpires: int = 3600,
        directory: str | None = None,
    ) -> None:
        super().__init__(directory, "stoxgw-kamailio-", ("msrp.so",))
        if algorithm not in ("MD5", "SHA-256"):
            raise ValueError(f"unsupported digest algorithm {algorithm!r}")
        self.users = dict(
            {"alice": "alicepass", "bob": "bobpass"} if users is None else users
        )
        self.realm = realm
        self.algorithm = algorithm
        self.minExpires = minExpires
        self.maxExpires = maxExpires

    @property
    def relayURI(self) -> str:
        """
        The URI clients put in the To-Path of their first AUTH (RFC 4976
        section 5.1): the relay's address without a session id.
        """
        return f"msrp://127.0.0.1:{self.msrpPort};tcp"

    def _authBlock(self) -> str:
        """
        @return: The part of the AUTH branch that checks digest credentials
            (empty when no users are configured).
        """
        if not self.users:
            return "        # No users configured: AUTH is not authenticated.\n"
        lines = ['        $var(passwd) = "";\n']
        for username, password in self.users.items():
            lines.append(
                f"        if ($au == {_quote(username)}) {{ $var(passwd) = {_quote(password)}; }}\n"
            )
        realm = _quote(self.realm)
        lines.append(f"""\
        if ($var(passwd) == "") {{
            # Unknown user (or no credentials): a fresh challenge.
            $var(rc) = -5;
        }} else {{
            pv_www_authenticate({realm}, "$var(passwd)", "0", "$msrp(method)");
            $var(rc) = $rc;
        }}
        if ($var(rc) == -2) {{
            xlog("L_INFO", "MSRP AUTH: wrong password for [$au]\\n");
            msrp_reply("403", "Forbidden");
            exit;
        }}
        if ($var(rc) < 0) {{
            if (auth_get_www_authenticate({realm}, "1", "$var(wauth)")) {{
                msrp_reply("401", "Unauthorized", "$var(wauth)");
            }} else {{
                msrp_reply("500", "Server Error");
            }}
            exit;
        }}
""")
        return "".join(lines)

    def _writeConfig(self) -> None:
        config = f"""\
#!KAMAILIO
# Generated by tests/interop/kamailio.py: an RFC 4976 MSRP relay on 127.0.0.1.

debug=2
log_stderror=yes
log_facility=LOG_LOCAL0
fork=yes
children=2
tcp_children=2
auto_aliases=no
tcp_accept_no_cl=yes
tcp_connection_lifetime=3605
dns=no
rev_dns=no
use_dns_cache=no

listen=udp:127.0.0.1:{self.sipPort}
listen=tcp:127.0.0.1:{self.msrpPort}

mpath="{MODULE_PATH}/"

loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xlog.so"
loadmodule "auth.so"
loadmodule "cfgutils.so"
loadmodule "htable.so"
loadmodule "msrp.so"

modparam("auth", "qop", "auth")
modparam("auth", "algorithm", {_quote(self.algorithm)})
modparam("htable", "htable", "msrp=>size=8;autoexpire={self.maxExpires + 5};")
# Never set "use_path_addr": the module prepends "msrp://" itself, so a value
# with a scheme doubles it and every relayed SEND fails (PEERS.md).

request_route {{
    sl_send_reply("403", "No SIP Here");
    exit;
}}

event_route[msrp:frame-in] {{
    xlog("L_INFO", "MSRP frame-in [$msrp(method)] from $si:$sp nexthops=$msrp(nexthops) sessid=[$msrp(sessid)]\\n");
    msrp_reply_flags("1");

    if (msrp_is_reply()) {{
        msrp_relay();
        exit;
    }}

    if ($msrp(method) == "AUTH") {{
        if ($msrp(nexthops) > 0) {{
            msrp_relay();
            exit;
        }}
{self._authBlock()}
        # RFC 4976 section 6.3: check the requested lifetime.  (Not
        # msrp_cmap_save(): see the module docstring of kamailio.py.)
        if ($hdr(Expires) != $null) {{
            $var(expires) = $(hdr(Expires){{s.int}});
            if ($var(expires) < {self.minExpires}) {{
                msrp_reply("423", "Interval Out-of-Bounds", "Min-Expires: {self.minExpires}\r\n");
                exit;
            }}
            if ($var(expires) > {self.maxExpires}) {{
                msrp_reply("423", "Interval Out-of-Bounds", "Max-Expires: {self.maxExpires}\r\n");
                exit;
            }}
        }} else {{
            $var(expires) = {self.maxExpires};
        }}
        # At least 64 random bits in the URI (RFC 4976 section 6.3).
        $var(sessid) = "s" + $RANDOM + "x" + $RANDOM + "x" + $RANDOM;
        $sht(msrp=>$var(sessid)::srcaddr) = $msrp(srcaddr);
        $sht(msrp=>$var(sessid)::srcsock) = $msrp(srcsock);
        $shtex(msrp=>$var(sessid)::srcaddr) = $var(expires) + 5;
        $shtex(msrp=>$var(sessid)::srcsock) = $var(expires) + 5;
        msrp_reply("200", "OK", "Use-Path: msrp://127.0.0.1:{self.msrpPort}/$var(sessid);tcp\r\nExpires: $var(expires)\r\n");
        exit;
    }}

    if ($msrp(method) == "SEND" || $msrp(method) == "REPORT") {{
        # RFC 4976 section 6.4: the first To-Path URI must be one this relay
        # handed out in a Use-Path.
        $var(sessid) = $msrp(sessid);
        if ($sht(msrp=>$var(sessid)::srcaddr) == $null) {{
            if ($msrp(method) != "REPORT") {{
                msrp_reply("481", "Session-does-not-exist");
            }}
            exit;
        }}
        if ($msrp(nexthops) > 1) {{
            # Not the last hop: answer a SEND hop by hop, pass it on.
            if ($msrp(method) != "REPORT") {{
                msrp_reply("200", "OK");
            }}
            msrp_relay();
            exit;
        }}
        if ($msrp(method) != "REPORT") {{
            msrp_reply("200", "OK");
        }}
        # The last hop: over the connection that sent the AUTH, never a new one.
        msrp_relay_flags("1");
        msrp_set_dst("$sht(msrp=>$var(sessid)::srcaddr)", "$sht(msrp=>$var(sessid)::srcsock)");
        msrp_relay();
        exit;
    }}

    msrp_reply("501", "Request-method-not-understood");
}}
"""
        with open(self.configPath, "w") as f:
            f.write(config)

    @property
    def listeningPort(self) -> int:
        """
        The MSRP port.
        """
        return self.msrpPort
