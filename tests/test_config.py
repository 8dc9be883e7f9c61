# -*- test-case-name: tests.test_config -*-
"""
Tests for L{stoxgw.config}: types, defaults, and one clear error line per
problem naming file, section and key.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.config import (
    PLACEHOLDER,
    SCHEMA,
    SECTIONS,
    ConfigError,
    Secret,
    loadConfig,
    parseConfig,
)

MINIMAL = "[xmpp]\nuser_domain = sip.example.com\nsecret = hunter2\n"


def problemsOf(test: SynchronousTestCase, text: str, path: str = "gw.conf") -> tuple[str, ...]:
    """
    @return: the problems L{parseConfig} reports for C{text}.
    """
    error = test.assertRaises(ConfigError, parseConfig, text, path)
    return error.problems


class DefaultsTests(SynchronousTestCase):
    """
    A minimal file gives the documented defaults.
    """

    def test_minimal(self) -> None:
        """
        Only the required keys set: every other key has its default, typed.
        """
        config = parseConfig(MINIMAL, "gw.conf")
        self.assertEqual(config.path, "gw.conf")
        self.assertEqual(config.xmpp.user_domain, "sip.example.com")
        self.assertIsNone(config.xmpp.room_domain)
        self.assertEqual(config.xmpp.domains, ("sip.example.com",))
        self.assertEqual(config.xmpp.port, 5347)
        self.assertEqual(config.sip.udp_port, 5060)
        self.assertEqual(str(config.sip.trusted_peers[0]), "127.0.0.1/32")
        self.assertEqual(config.msrp.transaction_timeout, 30.0)
        self.assertEqual(config.msrp.chunk_size, 2048)
        self.assertIs(config.gateway.instant_rooms, True)
        self.assertEqual(config.logging.format, "text")
        self.assertEqual(
            dict(config.logging.levels),
            {"sip": "info", "msrp": "info", "xmpp": "info", "interworking": "info"},
        )

    def test_everyKeyHasADefaultThatParses(self) -> None:
        """
        Each documented default is a valid value of its key.
        """
        for key in SCHEMA:
            if key.default is not None:
                key.parse(key.default)
            self.assertIn(key.section, SECTIONS)
            self.assertTrue(key.doc.strip(), key.name)

    def test_typedValues(self) -> None:
        """
        Booleans, lists, networks, seconds and levels are converted.
        """
        config = parseConfig(
            MINIMAL
            + "room_domain = Chat.SIP.example.com\n"
            "[gateway]\nmuc_domains = muc.a.example, muc.b.example\ninstant_rooms = off\n"
            "[sip]\ntrusted_peers = 10.0.0.0/8, ::1\n"
            "[msrp]\ntransaction_timeout = 2.5\n"
            "[logging]\nformat = JSON\nsip_level = debug\n",
            "gw.conf",
        )
        self.assertEqual(config.xmpp.room_domain, "chat.sip.example.com")
        self.assertEqual(config.gateway.muc_domains, ("muc.a.example", "muc.b.example"))
        self.assertIs(config.gateway.instant_rooms, False)
        self.assertEqual([str(n) for n in config.sip.trusted_peers], ["10.0.0.0/8", "::1/128"])
        self.assertEqual(config.msrp.transaction_timeout, 2.5)
        self.assertEqual(config.logging.format, "json")
        self.assertEqual(config.logging.levels["sip"], "debug")
        self.assertEqual(config.logging.levels["xmpp"], "info")


class ErrorTests(SynchronousTestCase):
    """
    Each kind of bad value gives one line naming file, section and key.
    """

    def test_unknownKey(self) -> None:
        """
        A key the schema does not know is an error, not ignored.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "secert = x\n"),
            ("gw.conf: [xmpp] secert: unknown key",),
        )

    def test_unknownSection(self) -> None:
        """
        A section the schema does not know is an error.
        """
        (problem,) = problemsOf(self, MINIMAL + "[sipp]\nport = 1\n")
        self.assertTrue(problem.startswith("gw.conf: [sipp]: unknown section"), problem)

    def test_wrongType(self) -> None:
        """
        A value of the wrong type names key and value.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[msrp]\nport = twenty\n"),
            ("gw.conf: [msrp] port: 'twenty' is not a whole number",),
        )

    def test_portOutOfRange(self) -> None:
        """
        A port outside 1-65535 (0-65535 where 0 means off) is an error.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\ntcp_port = 70000\n"),
            ("gw.conf: [sip] tcp_port: 70000 is out of range (0 to 65535)",),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "port = 0\n"),
            ("gw.conf: [xmpp] port: 0 is out of range (1 to 65535)",),
        )

    def test_missingSecret(self) -> None:
        """
        The component secret is required.
        """
        self.assertEqual(
            problemsOf(self, "[xmpp]\nuser_domain = sip.example.com\n"),
            ("gw.conf: [xmpp] secret: required, and not set",),
        )

    def test_placeholderSecret(self) -> None:
        """
        The sample's placeholder is refused as a secret.
        """
        (problem,) = problemsOf(
            self, f"[xmpp]\nuser_domain = sip.example.com\nsecret = {PLACEHOLDER}\n"
        )
        self.assertTrue(problem.startswith("gw.conf: [xmpp] secret: still the sample's placeholder"))

    def test_unreadableTLSFile(self) -> None:
        """
        A TLS file that does not exist is reported with its path.
        """
        missing = os.path.join(self.mktemp(), "cert.pem")
        self.assertEqual(
            problemsOf(self, MINIMAL + f"[msrp]\nuse_tls = yes\ntls_certificate = {missing}\n"),
            (
                f"gw.conf: [msrp] tls_certificate: {missing!r} does not exist or is not a file",
                "gw.conf: [msrp] tls_private_key: required when use_tls is on",
            ),
        )

    def test_tlsNeedsFiles(self) -> None:
        """
        Turning SIP TLS on without a certificate and key is reported for
        both keys.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\ntls_port = 5061\n"),
            (
                "gw.conf: [sip] tls_certificate: required when tls_port is set",
                "gw.conf: [sip] tls_private_key: required when tls_port is set",
            ),
        )

    def test_everyProblemListed(self) -> None:
        """
        All problems of a file are listed, not only the first.
        """
        problems = problemsOf(
            self,
            "[xmpp]\nport = x\n[sip]\nlocal_ip = nowhere\n[logging]\nlevel = loud\n",
        )
        self.assertEqual(
            [p.split(":")[1].strip() for p in problems],
            ["[sip] local_ip", "[xmpp] port", "[xmpp] user_domain", "[xmpp] secret", "[logging] level"],
        )

    def test_duplicateKey(self) -> None:
        """
        A key set twice names the key and line.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "secret = again\n"),
            ("gw.conf: [xmpp] secret: set twice (line 4)",),
        )

    def test_notINI(self) -> None:
        """
        Text that is not INI at all is reported, naming the file.
        """
        (problem,) = problemsOf(self, "user_domain = x\n")
        self.assertTrue(problem.startswith("gw.conf: not an INI file:"), problem)

    def test_sameDomains(self) -> None:
        """
        The user and room domains must be different components.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "room_domain = sip.example.com\n"),
            ("gw.conf: [xmpp] room_domain: must differ from user_domain (sip.example.com)",),
        )

    def test_missingFile(self) -> None:
        """
        A file that cannot be read is one problem naming it.
        """
        path = self.mktemp()
        error = self.assertRaises(ConfigError, loadConfig, path)
        self.assertEqual(error.problems, (f"{path}: cannot read: No such file or directory",))


class SecretTests(SynchronousTestCase):
    """
    Secrets never show in text.
    """

    def test_secretHidden(self) -> None:
        """
        Neither C{repr} of the whole configuration nor C{str} of the secret
        shows the value; L{Secret.reveal} gives it.
        """
        config = parseConfig(
            MINIMAL + "[sip]\nusername = gw\npassword = sippass\n"
            "[msrp]\nrelay_username = gw\nrelay_password = relaypass\n",
            "gw.conf",
        )
        text = repr(config) + str(config.xmpp.secret)
        for value in ("hunter2", "sippass", "relaypass"):
            self.assertNotIn(value, text)
        self.assertEqual(config.xmpp.secret.reveal(), "hunter2")
        self.assertEqual(config.xmpp.secret, Secret("hunter2"))

    def test_badSecretValueNotEchoed(self) -> None:
        """
        An error about a secret key does not repeat the secret.
        """
        problems = problemsOf(self, MINIMAL + "[sip]\npassword = topsecret\n")
        self.assertEqual(problems, ("gw.conf: [sip] username: required when password is set",))
        self.assertNotIn("topsecret", "\n".join(problems))


class SIPAuthenticationAndRoutingTests(SynchronousTestCase):
    """
    C{[sip] trusted_tls_names}, C{auth_realm}, C{credentials_file} and
    C{static_routes} (docs/design.md "Trust"; RFC 3261 22, RFC 3263).
    """

    def credentials(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def caFile(self) -> str:
        """
        A PEM file with one (self-signed) certificate, made now.
        """
        from twisted.internet import ssl

        from tests.msrp.test_tls import makeCertificate

        _, certificate = makeCertificate(self.mktemp(), "ca")
        return self.credentials(ssl.Certificate(certificate.original).dumpPEM().decode("ascii"))

    def test_defaults(self) -> None:
        """
        By default: no TLS names, no digest, no static routes.
        """
        sip = parseConfig(MINIMAL, "gw.conf").sip
        self.assertEqual(sip.trusted_tls_names, ())
        self.assertIsNone(sip.tls_ca_file)
        self.assertIsNone(sip.auth_realm)
        self.assertIsNone(sip.credentials_file)
        self.assertEqual(sip.static_routes, ())

    def test_credentialsFile(self) -> None:
        """
        C{user:password} lines (the password is everything after the first
        colon), comments and blank lines skipped; passwords never in repr.
        """
        path = self.credentials("# users\nalice:won:der:land\n\n  bob:builder  \n")
        sip = parseConfig(
            MINIMAL + f"[sip]\nauth_realm = gw.example.com\ncredentials_file = {path}\n"
            "trusted_tls_names = Proxy.Example.com, edge.example.com\n"
            f"tls_ca_file = {self.caFile()}\n",
            "gw.conf",
        ).sip
        self.assertEqual(sip.auth_realm, "gw.example.com")
        assert sip.credentials_file is not None
        self.assertEqual(sip.credentials_file.reveal(), {"alice": "won:der:land", "bob": "builder"})
        self.assertNotIn("won:der", repr(sip))
        self.assertNotIn("builder", repr(sip))
        self.assertEqual(sip.trusted_tls_names, ("proxy.example.com", "edge.example.com"))

    def test_badCredentialsLine(self) -> None:
        """
        A line that is not C{user:password} is named by number, and its
        text (maybe a password) is not echoed.
        """
        path = self.credentials("alice:ok\nhunter2-without-user\n")
        (problem,) = problemsOf(
            self, MINIMAL + f"[sip]\nauth_realm = r\ncredentials_file = {path}\n"
        )
        self.assertEqual(
            problem, f"gw.conf: [sip] credentials_file: {path!r} line 2: not a user:password line"
        )
        self.assertNotIn("hunter2", problem)
        path = self.credentials("alice:a\nalice:b\n")
        (problem,) = problemsOf(
            self, MINIMAL + f"[sip]\nauth_realm = r\ncredentials_file = {path}\n"
        )
        self.assertIn("line 2: user 'alice' appears twice", problem)

    def test_tlsCAFile(self) -> None:
        """
        RFC 5922 7.1: C{tls_ca_file} names a readable PEM file with at
        least one certificate, checked when the configuration is read.
        """
        path = self.caFile()
        sip = parseConfig(MINIMAL + f"[sip]\ntls_ca_file = {path}\n", "gw.conf").sip
        self.assertEqual(sip.tls_ca_file, path)
        missing = os.path.join(self.mktemp(), "ca.pem")
        self.assertEqual(
            problemsOf(self, MINIMAL + f"[sip]\ntls_ca_file = {missing}\n"),
            (f"gw.conf: [sip] tls_ca_file: {missing!r} does not exist or is not a file",),
        )
        garbage = self.credentials("not a certificate\n")
        self.assertEqual(
            problemsOf(self, MINIMAL + f"[sip]\ntls_ca_file = {garbage}\n"),
            (f"gw.conf: [sip] tls_ca_file: {garbage!r} is not a PEM file of certificates",),
        )

    def test_trustedTLSNamesNeedCAFile(self) -> None:
        """
        docs/design.md "Trust": trusted TLS names need the CA certificates that
        client certificates are verified against; without them no
        incoming TLS connection could ever match a name.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\ntrusted_tls_names = proxy.example.com\n"),
            ("gw.conf: [sip] tls_ca_file: required when trusted_tls_names is set",),
        )

    def test_realmAndFileTogether(self) -> None:
        """
        C{auth_realm} and C{credentials_file} need each other.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\nauth_realm = gw.example.com\n"),
            ("gw.conf: [sip] credentials_file: required when auth_realm is set",),
        )
        path = self.credentials("alice:x\n")
        self.assertEqual(
            problemsOf(self, MINIMAL + f"[sip]\ncredentials_file = {path}\n"),
            ("gw.conf: [sip] auth_realm: required when credentials_file is set",),
        )

    def test_badRealm(self) -> None:
        """
        A realm must fit in a quoted string.
        """
        path = self.credentials("alice:x\n")
        (problem,) = problemsOf(
            self, MINIMAL + f'[sip]\nauth_realm = a"b\ncredentials_file = {path}\n'
        )
        self.assertTrue(problem.startswith("gw.conf: [sip] auth_realm: "), problem)

    def test_staticRoutes(self) -> None:
        """
        C{DOMAIN=HOST[:PORT][/TRANSPORT]}, comma-separated; IPv6 in
        brackets; host names allowed.
        """
        sip = parseConfig(
            MINIMAL + "[sip]\nstatic_routes = Example.com=192.0.2.10:5070/TCP, "
            "lab.example=[2001:db8::5], named.example = proxy.example.net/tls,"
            " six.example=[::1]:5080/udp\n",
            "gw.conf",
        ).sip
        self.assertEqual(
            sip.static_routes,
            (
                ("example.com", "192.0.2.10", 5070, "tcp"),
                ("lab.example", "2001:db8::5", None, None),
                ("named.example", "proxy.example.net", None, "tls"),
                ("six.example", "::1", 5080, "udp"),
            ),
        )

    def test_badStaticRoutes(self) -> None:
        """
        Each malformed route is reported with the key.
        """
        for value, message in [
            ("example.com", "'example.com' is not DOMAIN=HOST[:PORT][/TRANSPORT]"),
            ("example.com=192.0.2.1/sctp", "transport 'sctp' is not udp, tcp or tls"),
            ("example.com=192.0.2.1:99999", "99999 is out of range (1 to 65535)"),
            ("example.com=[::1", "unclosed ["),
            ("a.example=192.0.2.1, a.example=192.0.2.2", "a.example has two static routes"),
        ]:
            (problem,) = problemsOf(self, MINIMAL + f"[sip]\nstatic_routes = {value}\n")
            self.assertTrue(problem.startswith("gw.conf: [sip] static_routes: "), problem)
            self.assertIn(message, problem)

    def test_staticRouteHosts(self) -> None:
        """
        The brackets may hold an IPv4 address as well as an IPv6 one, but
        not a name; a route needs a host.
        """
        sip = parseConfig(
            MINIMAL + "[sip]\nstatic_routes = four.example=[192.0.2.7]:5070,"
            " six.example=[2001:DB8:0::5]\n",
            "gw.conf",
        ).sip
        self.assertEqual(
            sip.static_routes,
            (
                ("four.example", "192.0.2.7", 5070, None),
                ("six.example", "2001:db8::5", None, None),
            ),
        )
        form = "is not DOMAIN=HOST[:PORT][/TRANSPORT]"
        for value, message in [
            ("a.example=[proxy.example]", "'proxy.example' is not an IP address"),
            ("a.example=[]", f"'a.example=[]' {form}"),
            ("a.example=:5060", f"'a.example=:5060' {form}"),
            ("a.example=[::1]x", f"'a.example=[::1]x' {form}"),
        ]:
            with self.subTest(value=value):
                text = MINIMAL + f"[sip]\nstatic_routes = {value}\n"
                (problem,) = problemsOf(self, text)
                self.assertIn(message, problem)


class LivenessAndShutdownKeysTests(SynchronousTestCase):
    """
    C{[sip] session_expires}, C{[sip] min_se}, C{[msrp] keepalive_interval}
    and C{[gateway] shutdown_grace} (issue 11).
    """

    def test_defaults(self) -> None:
        """
        RFC 4028's recommended 1800 s and 90 s; a probe after 30 s of
        silence; 5 s to answer BYEs at shutdown.
        """
        config = parseConfig(MINIMAL, "gw.conf")
        self.assertEqual((config.sip.session_expires, config.sip.min_se), (1800, 90))
        self.assertEqual(config.msrp.keepalive_interval, 30.0)
        self.assertEqual(config.gateway.shutdown_grace, 5.0)

    def test_values(self) -> None:
        """
        0 turns session timers and the probe off.
        """
        config = parseConfig(
            MINIMAL
            + "[sip]\nsession_expires = 0\nmin_se = 300\n"
            "[msrp]\nkeepalive_interval = 0\n[gateway]\nshutdown_grace = 0.5\n",
            "gw.conf",
        )
        self.assertEqual((config.sip.session_expires, config.sip.min_se), (0, 300))
        self.assertEqual(config.msrp.keepalive_interval, 0.0)
        self.assertEqual(config.gateway.shutdown_grace, 0.5)

    def test_errors(self) -> None:
        """
        RFC 4028 section 4: no interval below 90 s; the interval is not
        below Min-SE; the grace is bounded.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\nsession_expires = 60\n"),
            (
                "gw.conf: [sip] session_expires: 60 is below 90 seconds (RFC 4028);"
                " use 0 to turn session timers off",
            ),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\nsession_expires = 600\nmin_se = 900\n"),
            ("gw.conf: [sip] session_expires: 600 is below min_se (900)",),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "[sip]\nmin_se = 30\n"),
            ("gw.conf: [sip] min_se: 30 is out of range (90 to 86400)",),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "[gateway]\nshutdown_grace = 600\n"),
            ("gw.conf: [gateway] shutdown_grace: 600 is out of range (0 to 300 seconds)",),
        )


class GarbageCollectorKeyTests(SynchronousTestCase):
    """
    C{[gateway] gc_thresholds} (docs/design.md, "Garbage collection").
    """

    def test_default(self) -> None:
        """
        100,000 allocations between young collections by default.
        """
        config = parseConfig(MINIMAL, "gw.conf")
        self.assertEqual(config.gateway.gc_thresholds, (10000, 10, 100))

    def test_value(self) -> None:
        """
        Three comma-separated numbers, spaces allowed.
        """
        config = parseConfig(MINIMAL + "[gateway]\ngc_thresholds = 700,10 , 10\n", "gw.conf")
        self.assertEqual(config.gateway.gc_thresholds, (700, 10, 10))

    def test_errors(self) -> None:
        """
        Not three numbers, or a number out of its range, names the key.
        """
        self.assertEqual(
            problemsOf(self, MINIMAL + "[gateway]\ngc_thresholds = 700, 10\n"),
            ("gw.conf: [gateway] gc_thresholds: '700, 10' is not three whole numbers separated by commas",),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "[gateway]\ngc_thresholds = 0, 10, 10\n"),
            ("gw.conf: [gateway] gc_thresholds: 0 is out of range (100 to 10000000)",),
        )
        self.assertEqual(
            problemsOf(self, MINIMAL + "[gateway]\ngc_thresholds = 700, x, 10\n"),
            ("gw.conf: [gateway] gc_thresholds: 'x' is not a whole number",),
        )


class RoomsTests(SynchronousTestCase):
    """
    C{[rooms]}: native chat rooms (docs/native-rooms.md).
    """

    def test_defaults(self) -> None:
        """
        Off without a domain; the other keys have their defaults.
        """
        rooms = parseConfig(MINIMAL, "gw.conf").rooms
        self.assertIsNone(rooms.domain)
        self.assertEqual(rooms.allowed_creators, ("*",))
        self.assertEqual(rooms.persistent_rooms, ())
        self.assertEqual((rooms.max_occupants, rooms.history_size), (100, 50))
        self.assertEqual(rooms.reserved_nicks, ())

    def test_values(self) -> None:
        """
        Persistent rooms one per line with an optional subject (names in
        lower case); creators as C{*}, domains or addresses; reserved
        nicknames RFC 7700-enforced.
        """
        rooms = parseConfig(
            MINIMAL
            + "room_domain = chat.sip.example.com\n"
            "[rooms]\ndomain = Chat.SIP.example.com\n"
            "persistent_rooms = Lobby Welcome, all\n    support\n"
            "allowed_creators = example.org, sip:Alice@Example.com\n"
            "max_occupants = 0\nhistory_size = 5\nreserved_nicks = admin, \uff32oot\n",
            "gw.conf",
        ).rooms
        self.assertEqual(rooms.domain, "chat.sip.example.com")
        self.assertEqual(rooms.persistent_rooms, (("lobby", "Welcome, all"), ("support", None)))
        self.assertEqual(rooms.allowed_creators, ("example.org", "Alice@example.com"))
        self.assertEqual((rooms.max_occupants, rooms.history_size), (0, 5))
        self.assertEqual(rooms.reserved_nicks, ("admin", "Root"))

    def test_errors(self) -> None:
        """
        Bad names, creators, nicknames and domains are reported by key.
        """
        self.assertEqual(
            problemsOf(
                self,
                MINIMAL
                + "[rooms]\ndomain = sip.example.com\npersistent_rooms = lobby, support\n"
                "allowed_creators = @example.com\nreserved_nicks = \u0007\n"
                "max_occupants = -1\n",
            ),
            (
                "gw.conf: [rooms] allowed_creators: '@example.com' has no user before @",
                "gw.conf: [rooms] persistent_rooms: 'lobby,' is not a room name (letters, digits, . _ ~ -)",
                "gw.conf: [rooms] max_occupants: -1 is out of range (0 to 100000)",
                "gw.conf: [rooms] reserved_nicks: U+0007 is a control character",
                "gw.conf: [rooms] domain: must differ from [xmpp] user_domain (sip.example.com)",
            ),
        )
        self.assertEqual(
            problemsOf(
                self,
                MINIMAL + "[gateway]\nmuc_domains = muc.example.com\n[rooms]\ndomain = muc.example.com\n",
            ),
            ("gw.conf: [rooms] domain: muc.example.com is also in [gateway] muc_domains",),
        )
