# -*- test-case-name: tests.formats.test_conferenceinfo -*-
"""
Tests for L{stoxgw.formats.conferenceinfo}: RFC 4575 conference-info
documents (SPEC R-016, R-176..R-180, R-213, R-217), against the RFC 4575 §7
and RFC 7702 Example 9/32 documents in C{tests/fixtures/formats/}.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.formats.conferenceinfo import (
    CONFERENCE_INFO_NAMESPACE,
    MAX_DEPTH,
    MAX_DOCUMENT_SIZE,
    XCON_NAMESPACE,
    AvailableMedia,
    ConferenceDescription,
    ConferenceInfo,
    ConferenceInfoError,
    ConferenceState,
    DisconnectionMethod,
    ElementState,
    Endpoint,
    EndpointStatus,
    Execution,
    Extension,
    JoiningMethod,
    Media,
    MediaStatus,
    MergeOutcome,
    SIPDialogID,
    SidebarsByVal,
    URIEntry,
    URIs,
    User,
    Users,
    applyNotification,
    diff,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "formats"

ROOM = "sip:capulet@rooms.example.com"
FULL = ElementState.FULL
PARTIAL = ElementState.PARTIAL
DELETED = ElementState.DELETED


def fixture(name: str) -> bytes:
    """
    @return: the octets of C{tests/fixtures/formats/<name>}.
    """
    return (FIXTURES / name).read_bytes()


def document(
    body: str,
    state: str = "full",
    version: str | None = "1",
    namespace: str = CONFERENCE_INFO_NAMESPACE,
    description: bool = True,
    users: bool = True,
) -> bytes:
    """
    A conference-info document for C{ROOM} around C{body}; by default with
    the C{<conference-description>} and C{<users>} a full one needs.
    """
    versionAttribute = "" if version is None else f' version="{version}"'
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\r\n',
        f'<conference-info xmlns="{namespace}" '
        f'xmlns:x="urn:example:ext" xmlns:xcon="{XCON_NAMESPACE}" '
        f'entity="{ROOM}" state="{state}"{versionAttribute}>',
    ]
    if description:
        parts.append("<conference-description/>")
    parts.append(body)
    if users:
        parts.append("<users/>")
    parts.append("</conference-info>")
    return "".join(parts).encode("utf-8")


def occupant(nick: str, role: str = "participant") -> User:
    """
    An RFC 7702 style user for a MUC occupant (R-213): entity and endpoint
    = C{sip:room;gr=nick}, display-text and XCON nickname = nick.
    """
    entity = f"{ROOM};gr={nick}"
    return User(
        entity,
        displayText=nick,
        roles=(role,),
        nickname=nick,
        endpoints=(
            Endpoint(
                entity,
                status=EndpointStatus.CONNECTED,
                media=(Media("1", type="message"),),
            ),
        ),
    )


def room(
    version: int, *users: User, subject: str = "Today in Verona"
) -> ConferenceInfo:
    """
    A full Gateway B document (SPEC C.2 step 8) for C{ROOM}.
    """
    return ConferenceInfo(
        ROOM,
        version,
        description=ConferenceDescription(subject=subject),
        users=Users(users),
    )


def usersByEntity(info: ConferenceInfo | None) -> dict[str, User]:
    """
    The users of C{info} keyed by entity (RFC 4575 §4.5: order is not
    significant).
    """
    assert info is not None
    return {user.entity: user for user in info.userList}


class RFC4575ExampleTests(SynchronousTestCase):
    """
    RFC 4575 §7 examples (the brief's "section 6": §6 is the schema).
    """

    def test_basicExample(self) -> None:
        """
        §7.1: a full document with two users, endpoints, media and
        execution info; comments are ignored.
        """
        info = ConferenceInfo.parse(fixture("rfc4575-7.1-basic.xml"))
        self.assertEqual(info.entity, "sips:conf233@example.com")
        self.assertIs(info.state, FULL)
        self.assertEqual(info.version, 1)
        assert info.description is not None
        self.assertEqual(info.description.subject, "Agenda: This month's goals")
        self.assertEqual(
            info.description.serviceURIs,
            URIs((URIEntry("http://sharepoint/salesgroup/", purpose="web-page"),)),
        )
        self.assertEqual(info.conferenceState, ConferenceState(userCount=33))
        bob, alice = info.userList
        self.assertEqual(bob.entity, "sip:bob@example.com")
        self.assertEqual(bob.displayText, "Bob Hoskins")
        (laptop,) = bob.endpoints
        self.assertEqual(laptop.entity, "sip:bob@pc33.example.com")
        self.assertIs(laptop.state, FULL)
        self.assertEqual(laptop.displayText, "Bob's Laptop")
        self.assertIs(laptop.status, EndpointStatus.DISCONNECTED)
        self.assertIs(laptop.disconnectionMethod, DisconnectionMethod.DEPARTED)
        self.assertEqual(
            laptop.disconnectionInfo,
            Execution(
                datetime(2005, 3, 4, 20, 0, tzinfo=timezone.utc),
                "bad voice quality",
                "sip:mike@example.com",
            ),
        )
        self.assertEqual(
            laptop.media,
            (
                Media(
                    "1",
                    displayText="main audio",
                    type="audio",
                    label="34567",
                    srcID="432424",
                    status=MediaStatus.SENDRECV,
                ),
            ),
        )
        self.assertEqual(alice.displayText, "Alice")
        (endpoint,) = alice.endpoints
        self.assertEqual(endpoint.entity, "sip:4kfk4j392jsu@example.com;grid=433kj4j3u")
        self.assertIs(endpoint.joiningMethod, JoiningMethod.DIALED_OUT)
        assert endpoint.joiningInfo is not None
        self.assertIsNone(endpoint.joiningInfo.reason)
        self.assertIs(info.findUser("sip:alice@example.com"), alice)
        self.assertIsNone(info.findUser("sip:carol@example.com"))

    def test_richExample(self) -> None:
        """
        §7.2: a partial document with every element: conference URIs,
        available media, host info, roles, languages, call-info and both
        kinds of sidebars.
        """
        info = ConferenceInfo.parse(fixture("rfc4575-7.2-rich.xml"))
        self.assertIs(info.state, PARTIAL)
        self.assertEqual(info.version, 5)
        description = info.description
        assert description is not None
        self.assertEqual(description.displayText, "Weekly Sales Meeting")
        self.assertEqual(description.freeText, "We will start strict on time")
        self.assertEqual(description.keywords, ("sales", "meeting", "weekly"))
        assert description.confURIs is not None
        self.assertEqual(
            description.confURIs.entries[0],
            URIEntry("tel:+18005671234", "TTI Bridge", "participation"),
        )
        self.assertEqual(len(description.confURIs.entries), 3)
        self.assertEqual(description.maximumUserCount, 100)
        self.assertEqual(
            description.availableMedia,
            (
                AvailableMedia("34567", "audio", "main audio", MediaStatus.SENDRECV),
                AvailableMedia("34569", "video", "main video", MediaStatus.INACTIVE),
            ),
        )
        assert info.hostInfo is not None
        self.assertEqual(info.hostInfo.webPage, "http://sharepoint/salesgroup/hosts/")
        self.assertEqual(
            info.conferenceState, ConferenceState(32, active=True, locked=False)
        )
        # As printed, <users> and <user> have no state: both are "full"
        # (RFC 4575 §4.4 default), see the fixtures README.
        assert info.users is not None
        self.assertIs(info.users.state, FULL)
        (bob,) = info.userList
        self.assertIs(bob.state, FULL)
        self.assertEqual(bob.roles, ("participant",))
        self.assertEqual(bob.languages, ("en",))
        assert bob.associatedAORs is not None
        self.assertEqual(
            bob.associatedAORs.entries, (URIEntry("mailto:bob@example.com", "email"),)
        )
        (laptop,) = bob.endpoints
        self.assertIs(laptop.status, EndpointStatus.DISCONNECTING)
        self.assertIs(laptop.disconnectionMethod, DisconnectionMethod.BOOTED)
        assert laptop.referred is not None
        self.assertEqual(laptop.referred.reason, "expert required")
        self.assertEqual(
            laptop.callInfo,
            SIPDialogID("hsjh8980vhsb78", "vav738dvbs", "8954jgjg8432", "full info"),
        )
        assert info.sidebarsByRef is not None
        self.assertIs(info.sidebarsByRef.state, PARTIAL)
        self.assertEqual(
            [e.uri for e in info.sidebarsByRef.entries],
            ["sips:conf233@example.com;grid=45", "sips:conf233@example.com;grid=21"],
        )
        assert info.sidebarsByVal is not None
        (sidebar,) = info.sidebarsByVal.entries
        self.assertEqual(sidebar.entity, "sips:conf233@example.com;grid=77")
        self.assertIs(sidebar.state, PARTIAL)
        self.assertIsNone(sidebar.version)
        self.assertEqual(
            [u.entity for u in sidebar.userList],
            ["sip:bob@example.com", "sip:mark@example.com", "sip:dan@example.com"],
        )

    def test_examplesRoundTrip(self) -> None:
        """
        Parse, serialize, parse gives the same document.
        """
        for name in ("rfc4575-7.1-basic.xml", "rfc4575-7.2-rich.xml"):
            info = ConferenceInfo.parse(fixture(name))
            self.assertEqual(ConferenceInfo.parse(info.toBytes()), info)

    def test_richExampleAfterBasic(self) -> None:
        """
        R-180: the §7.2 document (version 5) after the §7.1 one (version 1)
        skips versions: the subscriber must ask for full state.
        """
        basic = ConferenceInfo.parse(fixture("rfc4575-7.1-basic.xml"))
        rich = ConferenceInfo.parse(fixture("rfc4575-7.2-rich.xml"))
        result = applyNotification(basic, rich)
        self.assertIs(result.outcome, MergeOutcome.NEEDS_FULL_STATE)
        self.assertIs(result.state, basic)

    def test_richExampleUsersAreFull(self) -> None:
        """
        Had §7.2 followed §7.1 directly, its stateless C{<users>} would
        replace the whole roster by Bob alone (the RFC's prose speaks of 32
        participants: the example lacks C{state="partial"}); its partial
        C{<sidebars-by-ref>} and C{<sidebars-by-val>} are merged.
        """
        basic = ConferenceInfo.parse(fixture("rfc4575-7.1-basic.xml"))
        rich = replace(ConferenceInfo.parse(fixture("rfc4575-7.2-rich.xml")), version=2)
        result = applyNotification(basic, rich)
        self.assertIs(result.outcome, MergeOutcome.APPLIED)
        state = result.state
        assert state is not None
        self.assertEqual(state.version, 2)
        self.assertIs(state.state, FULL)
        self.assertEqual(list(usersByEntity(state)), ["sip:bob@example.com"])
        assert state.sidebarsByRef is not None and state.sidebarsByVal is not None
        self.assertIs(state.sidebarsByRef.state, FULL)
        self.assertEqual(len(state.sidebarsByRef.entries), 2)
        (sidebar,) = state.sidebarsByVal.entries
        self.assertIs(sidebar.state, FULL)
        self.assertEqual(len(sidebar.userList), 3)
        self.assertEqual(state.conferenceState, rich.conferenceState)


class RFC7702ExampleTests(SynchronousTestCase):
    """
    The conference-info bodies of RFC 7702 Example 9 (focus -> gateway A,
    F12) and Example 32 (gateway B -> SIP user, F42).
    """

    def test_asPrintedHaveNoNamespace(self) -> None:
        """
        As printed, neither declares the RFC 4575 namespace (§4.2): strict
        parsing refuses them.
        """
        for name in (
            "rfc7702-ex09-focus-notify.xml",
            "rfc7702-ex32-gateway-notify.xml",
        ):
            error = self.assertRaises(
                ConferenceInfoError, ConferenceInfo.parse, fixture(name)
            )
            self.assertIn("namespace", error.reason)

    def test_example9ElementOrderTolerated(self) -> None:
        """
        With the namespace added, Example 9 as printed parses although it
        has C{<roles>} before C{<associated-aors>} (schema order is the
        other way round).
        """
        data = fixture("rfc7702-ex09-focus-notify.xml").replace(
            b"<conference-info ",
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" ',
        )
        info = ConferenceInfo.parse(data)
        self.assertEqual(info.entity, "sip:3402934234@chat.example.org")
        romeo = info.userList[0]
        self.assertEqual(romeo.roles, ("participant",))
        assert romeo.associatedAORs is not None
        self.assertEqual(
            romeo.associatedAORs.entries[0].uri,
            "xmpp:romeo@example.org/dr4hcr0st3lup4c",
        )

    def test_example32TwoURIsInOneEntry(self) -> None:
        """
        With the namespace added, Example 32 as printed is still invalid:
        one C{<entry>} of C{<conf-uris>} holds two C{<uri>}s.
        """
        data = fixture("rfc7702-ex32-gateway-notify.xml").replace(
            b"<conference-info ",
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info" ',
        )
        error = self.assertRaises(ConferenceInfoError, ConferenceInfo.parse, data)
        self.assertEqual(error.reason, "more than one uri in entry")

    def test_example9Corrected(self) -> None:
        """
        R-016 (7702 Table 2): room entity, subject, user and endpoint
        entities (occupant URIs), display-text (nickname), associated-aors,
        a joining time with microseconds and an offset.
        """
        info = ConferenceInfo.parse(fixture("rfc7702-ex09-focus-notify-corrected.xml"))
        self.assertEqual(info.entity, "sip:montague@chat.example.org")
        self.assertEqual(info.version, 0)
        assert info.description is not None
        self.assertEqual(info.description.subject, "Today in Verona")
        assert info.description.confURIs is not None
        self.assertEqual(
            info.description.confURIs.entries, (URIEntry("tel:+18882934234"),)
        )
        self.assertEqual(
            [(u.entity, u.displayText) for u in info.userList],
            [
                ("sip:montague@chat.example.org;gr=Romeo", "Romeo"),
                ("sip:montague@chat.example.org;gr=Ben", "Ben"),
                ("sip:montague@chat.example.org;gr=JuliC", "JuliC"),
            ],
        )
        romeo = info.userList[0]
        assert romeo.associatedAORs is not None
        self.assertEqual(romeo.associatedAORs.entries[0].uri, "sip:romeo@example.org")
        (endpoint,) = romeo.endpoints
        self.assertEqual(endpoint.entity, romeo.entity)
        self.assertIs(endpoint.status, EndpointStatus.CONNECTED)
        self.assertEqual(
            endpoint.joiningInfo,
            Execution(
                datetime(
                    2013, 12, 12, 10, 1, 3, 691128, tzinfo=timezone(timedelta(hours=1))
                )
            ),
        )
        self.assertEqual(endpoint.media, (Media("211835820", type="message"),))
        self.assertIsNone(romeo.nickname)

    def test_example32Corrected(self) -> None:
        """
        Example 32 as Gateway B should send it: two conference URIs, two
        occupants.
        """
        info = ConferenceInfo.parse(
            fixture("rfc7702-ex32-gateway-notify-corrected.xml")
        )
        self.assertEqual(info.entity, ROOM)
        assert info.description is not None and info.description.confURIs is not None
        self.assertEqual(
            [e.uri for e in info.description.confURIs.entries],
            ["tel:+18882934234", ROOM],
        )
        self.assertEqual([u.displayText for u in info.userList], ["JuliC", "Ben"])

    def test_correctedRoundTrip(self) -> None:
        """
        Parse, serialize, parse gives the same document.
        """
        for name in (
            "rfc7702-ex09-focus-notify-corrected.xml",
            "rfc7702-ex32-gateway-notify-corrected.xml",
        ):
            info = ConferenceInfo.parse(fixture(name))
            self.assertEqual(ConferenceInfo.parse(info.toBytes()), info)


class BuildTests(SynchronousTestCase):
    """
    L{ConferenceInfo.toBytes} writes deterministic documents.
    """

    def test_gatewayFullDocument(self) -> None:
        """
        R-036, R-213: Gateway B's first NOTIFY body (SPEC C.2 step 8), byte
        for byte: default namespace, XCON prefix for the nickname, schema
        order, CRLF.
        """
        expected = "\r\n".join(
            [
                '<?xml version="1.0" encoding="UTF-8"?>',
                '<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"'
                ' xmlns:xcon="urn:ietf:params:xml:ns:xcon-conference-info"'
                ' entity="sip:capulet@rooms.example.com" state="full" version="1">',
                "  <conference-description>",
                "    <subject>Today in Verona</subject>",
                "  </conference-description>",
                "  <users>",
                '    <user entity="sip:capulet@rooms.example.com;gr=JuliC"'
                ' state="full" xcon:nickname="JuliC">',
                "      <display-text>JuliC</display-text>",
                "      <roles>",
                "        <entry>participant</entry>",
                "      </roles>",
                '      <endpoint entity="sip:capulet@rooms.example.com;gr=JuliC"'
                ' state="full">',
                "        <status>connected</status>",
                '        <media id="1">',
                "          <type>message</type>",
                "        </media>",
                "      </endpoint>",
                "    </user>",
                "  </users>",
                "</conference-info>",
            ]
        ).encode("utf-8")
        info = room(1, occupant("JuliC"))
        self.assertEqual(info.toBytes(), expected)
        self.assertEqual(ConferenceInfo.parse(expected), info)

    def test_noXCONWithoutNickname(self) -> None:
        """
        The XCON namespace is declared only when a nickname is written; an
        empty roster is C{<users/>}.
        """
        data = room(3).toBytes()
        self.assertNotIn(b"xcon", data)
        self.assertIn(b"  <users/>", data)

    def test_partialWithDeletedUser(self) -> None:
        """
        A partial document with a deleted user (RFC 4575 §5.6) and a new
        one.
        """
        info = ConferenceInfo(
            ROOM,
            8,
            PARTIAL,
            users=Users(
                (User(f"{ROOM};gr=Romeo", DELETED), occupant("montecchi")),
                PARTIAL,
            ),
        )
        data = info.toBytes()
        self.assertIn(b'state="partial" version="8">', data)
        self.assertIn(b'  <users state="partial">\r\n', data)
        self.assertIn(
            b'    <user entity="sip:capulet@rooms.example.com;gr=Romeo"'
            b' state="deleted"/>\r\n',
            data,
        )
        self.assertEqual(ConferenceInfo.parse(data), info)

    def test_deletedConference(self) -> None:
        """
        RFC 4575 §4.6: a deleted conference is an empty root element.
        """
        info = ConferenceInfo(ROOM, 9, DELETED)
        self.assertEqual(
            info.toBytes(),
            b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
            b'<conference-info xmlns="urn:ietf:params:xml:ns:conference-info"'
            b' entity="sip:capulet@rooms.example.com" state="deleted" version="9"/>',
        )
        self.assertEqual(ConferenceInfo.parse(info.toBytes()), info)

    def test_everyElementRoundTrips(self) -> None:
        """
        A document using every field survives serialization.
        """
        when = datetime(2024, 5, 1, 12, 30, 15, 250000, tzinfo=timezone.utc)
        user = User(
            f"{ROOM};gr=Ben",
            displayText="Ben & <Jerry>",
            associatedAORs=URIs((URIEntry("xmpp:ben@example.com", "JID"),)),
            roles=("moderator", "participant"),
            languages=("en", "it"),
            cascadedFocus="sip:other@example.net",
            nickname='Ben "B" & co',
            endpoints=(
                Endpoint(
                    f"{ROOM};gr=Ben",
                    displayText="gateway",
                    referred=Execution(when, "invited", "sip:juliet@example.com"),
                    status=EndpointStatus.ON_HOLD,
                    joiningMethod=JoiningMethod.DIALED_IN,
                    joiningInfo=Execution(when),
                    disconnectionMethod=DisconnectionMethod.FAILED,
                    disconnectionInfo=Execution(
                        reason='Reason: SIP;cause=500;text="x"'
                    ),
                    media=(
                        Media("m1", "chat", "message", "7", "42", MediaStatus.RECVONLY),
                        Media("m2"),
                    ),
                    callInfo=SIPDialogID("abc@host", "ft", "tt"),
                ),
                Endpoint(f"{ROOM};gr=Ben;dev=2"),
            ),
        )
        info = ConferenceInfo(
            ROOM,
            12,
            description=ConferenceDescription(
                "Capulets",
                "Today in Verona",
                "free",
                ("verona", "capulet"),
                URIs((URIEntry(ROOM, purpose="participation"),)),
                URIs((URIEntry("https://example.com/", modified=Execution(when)),)),
                50,
                (AvailableMedia("1", "message"),),
            ),
            conferenceState=ConferenceState(2, True, False),
            users=Users((user,)),
        )
        self.assertEqual(ConferenceInfo.parse(info.toBytes()), info)

    def test_noVersion(self) -> None:
        """
        R-176: a document needs a version.
        """
        self.assertRaises(ValueError, ConferenceInfo(ROOM).toBytes)

    def test_fullNeedsDescriptionAndUsers(self) -> None:
        """
        R-177: a full document has a description and users.
        """
        self.assertRaises(ValueError, ConferenceInfo(ROOM, 1, users=Users()).toBytes)
        self.assertRaises(
            ValueError,
            ConferenceInfo(ROOM, 1, description=ConferenceDescription()).toBytes,
        )

    def test_badValues(self) -> None:
        """
        Naive timestamps, text XML cannot carry, bad versions and empty
        entities are refused.
        """
        naive = room(
            1,
            replace(
                occupant("a"),
                endpoints=(Endpoint("e", joiningInfo=Execution(datetime(2020, 1, 1))),),
            ),
        )
        self.assertRaises(ValueError, naive.toBytes)
        self.assertRaises(ValueError, room(1, subject="bell\x07").toBytes)
        self.assertRaises(ValueError, ConferenceInfo, ROOM, -1)
        self.assertRaises(ValueError, ConferenceInfo, ROOM, 2**32)
        self.assertRaises(ValueError, ConferenceInfo, "", 1)


class ExtensionTests(SynchronousTestCase):
    """
    Elements from other namespaces are kept or ignored, never an error.
    """

    def test_keptAndWritten(self) -> None:
        """
        Extensions on the conference, description, user, endpoint and media
        survive a round trip; the XCON nickname attribute is read.
        """
        data = (
            document(
                "",
                users=False,
            )
            .replace(
                b"<conference-description/>",
                b'<conference-description><subject>s</subject><x:topic lang="en">'
                b"<x:part>a</x:part></x:topic></conference-description>",
            )
            .replace(
                b"</conference-info>",
                b'<users><user entity="sip:u@h" xcon:nickname="Nick">'
                b'<x:note>hi</x:note><endpoint entity="sip:u@h">'
                b'<media id="1"><x:codec/></media><x:device/></endpoint></user>'
                b"</users><x:root-ext/></conference-info>",
            )
        )
        info = ConferenceInfo.parse(data)
        assert info.description is not None
        self.assertEqual(
            info.description.extensions,
            (
                Extension(
                    "{urn:example:ext}topic",
                    '<ns0:topic xmlns:ns0="urn:example:ext" lang="en">'
                    "<ns0:part>a</ns0:part></ns0:topic>",
                ),
            ),
        )
        (user,) = info.userList
        self.assertEqual(user.nickname, "Nick")
        self.assertEqual([e.tag for e in user.extensions], ["{urn:example:ext}note"])
        (endpoint,) = user.endpoints
        self.assertEqual(len(endpoint.extensions), 1)
        self.assertEqual(len(endpoint.media[0].extensions), 1)
        self.assertEqual(len(info.extensions), 1)
        self.assertEqual(ConferenceInfo.parse(info.toBytes()), info)

    def test_ignoredElsewhere(self) -> None:
        """
        Extensions inside elements that do not keep them (conference-state)
        are dropped; unknown attributes are ignored.
        """
        info = ConferenceInfo.parse(
            document(
                '<conference-state x:flag="1" other="2"><user-count>3</user-count>'
                "<x:extra/></conference-state>"
            )
        )
        self.assertEqual(info.conferenceState, ConferenceState(3))


class MergeTests(SynchronousTestCase):
    """
    L{applyNotification}: RFC 4575 §4.6 (R-180).
    """

    def apply(self, current: ConferenceInfo | None, data: bytes) -> ConferenceInfo:
        """
        Apply C{data} to C{current} and check it was applied.
        """
        result = applyNotification(current, ConferenceInfo.parse(data))
        self.assertIs(result.outcome, MergeOutcome.APPLIED)
        assert result.state is not None
        return result.state

    def test_sequence(self) -> None:
        """
        Full, then partials adding a user, deleting one, changing a user
        partially (display-text, an endpoint's status, a new media), and the
        subject.
        """
        state = self.apply(None, room(1, occupant("Romeo"), occupant("Ben")).toBytes())
        self.assertEqual(
            list(usersByEntity(state)), [f"{ROOM};gr=Romeo", f"{ROOM};gr=Ben"]
        )
        state = self.apply(
            state,
            document(
                '<users state="partial">'
                f'<user entity="{ROOM};gr=JuliC" state="full">'
                "<display-text>JuliC</display-text></user></users>",
                state="partial",
                version="2",
                description=False,
                users=False,
            ),
        )
        self.assertEqual(state.version, 2)
        self.assertEqual(len(state.userList), 3)
        state = self.apply(
            state,
            document(
                f'<users state="partial"><user entity="{ROOM};gr=Ben" state="deleted">'
                "<display-text>ignored</display-text></user></users>",
                state="partial",
                version="3",
                description=False,
                users=False,
            ),
        )
        self.assertEqual(
            list(usersByEntity(state)), [f"{ROOM};gr=Romeo", f"{ROOM};gr=JuliC"]
        )
        state = self.apply(
            state,
            document(
                f'<users state="partial"><user entity="{ROOM};gr=Romeo" state="partial">'
                "<display-text>Romeo M.</display-text>"
                f'<endpoint entity="{ROOM};gr=Romeo" state="partial">'
                "<status>on-hold</status>"
                '<media id="2"><type>audio</type></media></endpoint>'
                "</user></users>",
                state="partial",
                version="4",
                description=False,
                users=False,
            ),
        )
        romeo = usersByEntity(state)[f"{ROOM};gr=Romeo"]
        self.assertEqual(romeo.displayText, "Romeo M.")
        self.assertEqual(romeo.nickname, "Romeo")
        self.assertEqual(romeo.roles, ("participant",))
        (endpoint,) = romeo.endpoints
        self.assertIs(endpoint.state, FULL)
        self.assertIs(endpoint.status, EndpointStatus.ON_HOLD)
        self.assertEqual(
            endpoint.media, (Media("1", type="message"), Media("2", type="audio"))
        )
        state = self.apply(
            state,
            document(
                "<conference-description><subject>New</subject>"
                "</conference-description>",
                state="partial",
                version="5",
                description=False,
                users=False,
            ),
        )
        assert state.description is not None
        self.assertEqual(state.description.subject, "New")
        self.assertEqual(len(state.userList), 2)
        self.assertIs(state.state, FULL)
        self.assertEqual(ConferenceInfo.parse(state.toBytes()), state)

    def test_oldVersionIgnored(self) -> None:
        """
        A document whose version is not newer than the local one is
        discarded, full or partial.
        """
        current = room(5, occupant("Romeo"))
        for document in (room(5), room(4), replace(room(3), state=PARTIAL)):
            result = applyNotification(current, document)
            self.assertIs(result.outcome, MergeOutcome.IGNORED)
            self.assertIs(result.state, current)

    def test_versionGap(self) -> None:
        """
        R-180: a partial document more than one version ahead asks for full
        state and leaves the local state alone; the full document that the
        refresh brings replaces it.
        """
        current = room(5, occupant("Romeo"))
        gap = ConferenceInfo(ROOM, 7, PARTIAL, users=Users((), PARTIAL))
        result = applyNotification(current, gap)
        self.assertIs(result.outcome, MergeOutcome.NEEDS_FULL_STATE)
        self.assertIs(result.state, current)
        fresh = room(7, occupant("Ben"))
        result = applyNotification(current, fresh)
        self.assertEqual((result.outcome, result.state), (MergeOutcome.APPLIED, fresh))

    def test_partialFirst(self) -> None:
        """
        A partial document before any full one can't be applied.
        """
        result = applyNotification(None, replace(room(1), state=PARTIAL))
        self.assertEqual(
            (result.outcome, result.state), (MergeOutcome.NEEDS_FULL_STATE, None)
        )

    def test_conferenceDeleted(self) -> None:
        """
        RFC 4575 §4.6: a deleted conference ends the subscription.
        """
        deleted = ConferenceInfo(ROOM, 6, DELETED)
        result = applyNotification(room(5), deleted)
        self.assertEqual(
            (result.outcome, result.state), (MergeOutcome.DELETED, deleted)
        )

    def test_usersDeletedAndReplaced(self) -> None:
        """
        A partial document may delete the whole roster or replace it.
        """
        current = room(1, occupant("Romeo"))
        result = applyNotification(
            current, ConferenceInfo(ROOM, 2, PARTIAL, users=Users((), DELETED))
        )
        assert result.state is not None
        self.assertIsNone(result.state.users)
        replaced = ConferenceInfo(ROOM, 2, PARTIAL, users=Users((occupant("Ben"),)))
        result = applyNotification(current, replaced)
        self.assertEqual(list(usersByEntity(result.state)), [f"{ROOM};gr=Ben"])

    def test_newPartialUserAdded(self) -> None:
        """
        RFC 4575 §4.6 step 3.1.1: an unknown key in a partial update is
        added as it is (and is then full).
        """
        update = ConferenceInfo(
            ROOM,
            2,
            PARTIAL,
            users=Users((replace(occupant("Ben"), state=PARTIAL),), PARTIAL),
        )
        result = applyNotification(room(1), update)
        ben = usersByEntity(result.state)[f"{ROOM};gr=Ben"]
        self.assertEqual(ben, occupant("Ben"))

    def test_sidebarsMerged(self) -> None:
        """
        RFC 4575 §4.6 on the sidebar lists: a partial C{<sidebars-by-ref>}
        or C{<sidebars-by-val>} is merged into the local one by key (C{uri},
        C{entity}), a full one replaces it, a deleted one removes it.
        """
        side = "sip:side@rooms.example.com"
        current = replace(
            room(1),
            sidebarsByRef=URIs((URIEntry("sip:a@h", "A"), URIEntry("sip:b@h", "B"))),
            sidebarsByVal=SidebarsByVal(
                (ConferenceInfo(side, users=Users((occupant("Romeo"),))),)
            ),
        )
        update = ConferenceInfo(
            ROOM,
            2,
            PARTIAL,
            sidebarsByRef=URIs(
                (URIEntry("sip:b@h", purpose="chat"), URIEntry("sip:c@h", "C")),
                PARTIAL,
            ),
            sidebarsByVal=SidebarsByVal(
                (
                    ConferenceInfo(
                        side, state=PARTIAL, users=Users((occupant("Ben"),), PARTIAL)
                    ),
                ),
                PARTIAL,
            ),
        )
        state = applyNotification(current, update).state
        assert state is not None and state.sidebarsByVal is not None
        self.assertEqual(
            state.sidebarsByRef,
            URIs(
                (
                    URIEntry("sip:a@h", "A"),
                    URIEntry("sip:b@h", "B", "chat"),
                    URIEntry("sip:c@h", "C"),
                )
            ),
        )
        (sidebar,) = state.sidebarsByVal.entries
        self.assertIs(sidebar.state, FULL)
        self.assertEqual(
            list(usersByEntity(sidebar)), [f"{ROOM};gr=Romeo", f"{ROOM};gr=Ben"]
        )
        update = ConferenceInfo(
            ROOM,
            3,
            PARTIAL,
            sidebarsByRef=URIs((URIEntry("sip:d@h"),)),
            sidebarsByVal=SidebarsByVal((), DELETED),
        )
        state = applyNotification(state, update).state
        assert state is not None
        self.assertEqual(state.sidebarsByRef, URIs((URIEntry("sip:d@h"),)))
        self.assertIsNone(state.sidebarsByVal)

    def test_otherConference(self) -> None:
        """
        A document for another conference, or without a version, is a bug.
        """
        other = ConferenceInfo("sip:other@example.com", 2, PARTIAL)
        self.assertRaises(ValueError, applyNotification, room(1), other)
        self.assertRaises(ValueError, applyNotification, None, ConferenceInfo(ROOM))
        self.assertRaises(ValueError, applyNotification, ConferenceInfo(ROOM), room(1))


class DiffTests(SynchronousTestCase):
    """
    L{diff}: the partial notification a notifier (Gateway B) sends.
    """

    def test_nickChange(self) -> None:
        """
        R-213: a nick change is the deletion of the old user and the
        addition of the new one, version +1.
        """
        before = room(3, occupant("Romeo"), occupant("Ben"))
        after = room(99, occupant("montecchi"), occupant("Ben"))
        partial = diff(before, after)
        assert partial is not None
        self.assertEqual(
            partial,
            ConferenceInfo(
                ROOM,
                4,
                PARTIAL,
                users=Users(
                    (User(f"{ROOM};gr=Romeo", DELETED), occupant("montecchi")),
                    PARTIAL,
                ),
            ),
        )
        self.assertEqual(ConferenceInfo.parse(partial.toBytes()), partial)
        result = applyNotification(before, partial)
        self.assertIs(result.outcome, MergeOutcome.APPLIED)
        self.assertEqual(usersByEntity(result.state), usersByEntity(after))

    def test_subjectChange(self) -> None:
        """
        R-217: a subject change is a partial document with the whole new
        description and no users.
        """
        before = room(1, occupant("Romeo"))
        partial = diff(before, room(1, occupant("Romeo"), subject="Tomorrow"))
        self.assertEqual(
            partial,
            ConferenceInfo(
                ROOM, 2, PARTIAL, description=ConferenceDescription(subject="Tomorrow")
            ),
        )

    def test_userChanged(self) -> None:
        """
        A changed user (role) is sent whole; order changes alone are not a
        change.
        """
        before = room(1, occupant("Romeo"), occupant("Ben"))
        self.assertIsNone(diff(before, room(2, occupant("Ben"), occupant("Romeo"))))
        partial = diff(before, room(1, occupant("Romeo", "moderator"), occupant("Ben")))
        assert partial is not None
        self.assertEqual(
            partial.users, Users((occupant("Romeo", "moderator"),), PARTIAL)
        )

    def test_roundTripProperty(self) -> None:
        """
        Applying the diff to the old state gives the new one (users compared
        by key), for joins, leaves, nick changes and state changes.
        """
        before = replace(
            room(10, occupant("a"), occupant("b"), occupant("c")),
            conferenceState=ConferenceState(3),
        )
        after = replace(
            room(0, occupant("b", "moderator"), occupant("d"), occupant("e")),
            conferenceState=ConferenceState(3, locked=True),
        )
        partial = diff(before, after)
        assert partial is not None
        self.assertEqual(partial.version, 11)
        result = applyNotification(before, ConferenceInfo.parse(partial.toBytes()))
        self.assertIs(result.outcome, MergeOutcome.APPLIED)
        assert result.state is not None
        self.assertEqual(usersByEntity(result.state), usersByEntity(after))
        self.assertEqual(result.state.conferenceState, after.conferenceState)
        self.assertEqual(result.state.version, 11)

    def test_unsayableChangeIsFull(self) -> None:
        """
        An atomic element that disappears can't be said in a partial
        document: the result is a full one.
        """
        before = replace(room(1), conferenceState=ConferenceState(1))
        result = diff(before, room(1))
        self.assertEqual(result, room(2))

    def test_rosterAndSidebarsRemoved(self) -> None:
        """
        Elements with a state attribute that disappear are deleted.
        """
        before = replace(room(1), sidebarsByRef=URIs((URIEntry("sip:s@h"),)))
        partial = diff(before, replace(room(1), users=None, sidebarsByRef=None))
        assert partial is not None
        self.assertEqual(partial.users, Users((), DELETED))
        self.assertEqual(partial.sidebarsByRef, URIs((), DELETED))

    def test_badInput(self) -> None:
        """
        Both states must be full, of one conference, with a usable version.
        """
        self.assertRaises(ValueError, diff, ConferenceInfo(ROOM), room(1))
        self.assertRaises(ValueError, diff, room(2**32 - 1), room(1))
        self.assertRaises(ValueError, diff, room(1), replace(room(1), state=PARTIAL))
        self.assertRaises(
            ValueError, diff, room(1), replace(room(1), entity="sip:x@example.com")
        )


class ParseErrorTests(SynchronousTestCase):
    """
    L{ConferenceInfo.parse} refuses malformed documents.
    """

    def assertMalformed(self, data: bytes, reason: str) -> None:
        """
        Parsing C{data} raises L{ConferenceInfoError} whose reason contains
        C{reason}.
        """
        error = self.assertRaises(ConferenceInfoError, ConferenceInfo.parse, data)
        self.assertIn(reason, error.reason)

    def test_wrongNamespace(self) -> None:
        """
        RFC 4575 §4.2: the root element must be in the conference-info
        namespace.
        """
        self.assertMalformed(
            document("", namespace="urn:example:other"), "root element"
        )
        self.assertMalformed(
            b'<conference-info entity="sip:a@b" version="1"/>', "without the"
        )
        self.assertMalformed(
            f'<users xmlns="{CONFERENCE_INFO_NAMESPACE}"/>'.encode(), "root element"
        )

    def test_missingAttributes(self) -> None:
        """
        RFC 4575 §4.3: C{version} is required on the root; C{entity} on the
        root, users and endpoints.
        """
        self.assertMalformed(document("", version=None), "without version")
        self.assertMalformed(
            document("").replace(f'entity="{ROOM}"'.encode(), b""), "without entity"
        )
        self.assertMalformed(
            document("<users><user/></users>", users=False), "user without entity"
        )
        self.assertMalformed(
            document(
                '<users><user entity="sip:a@b"><endpoint/></user></users>', users=False
            ),
            "endpoint without entity",
        )
        self.assertMalformed(
            document(
                '<users><user entity="sip:a@b"><endpoint entity="e"><media/>'
                "</endpoint></user></users>",
                users=False,
            ),
            "media without id",
        )

    def test_badVersion(self) -> None:
        """
        C{version} is an unsigned 32-bit integer.
        """
        for value in ("-1", "4294967296", "1.0", "x", ""):
            self.assertMalformed(document("", version=value), "version")
        self.assertEqual(
            ConferenceInfo.parse(document("", version="4294967295")).version,
            4294967295,
        )

    def test_badState(self) -> None:
        """
        C{state} is full, partial or deleted; absent means full.
        """
        self.assertMalformed(document("", state="complete"), "invalid state")
        self.assertIs(
            ConferenceInfo.parse(document("").replace(b' state="full"', b"")).state,
            FULL,
        )

    def test_stateConsistency(self) -> None:
        """
        RFC 4575 §4.4: a full parent has full children only; only
        sidebars-by-ref of the uris lists may be partial.
        """
        self.assertMalformed(
            document('<users state="partial"/>', users=False), "inside a full parent"
        )
        self.assertMalformed(
            document(
                '<users><user entity="sip:a@b" state="deleted"/></users>', users=False
            ),
            "inside a full parent",
        )
        self.assertMalformed(
            document(
                "",
                state="partial",
                description=False,
            ).replace(
                b"<users/>",
                b'<conference-description><conf-uris state="partial">'
                b"<entry><uri>sip:a@b</uri></entry></conf-uris>"
                b"</conference-description>",
            ),
            "cannot be partial",
        )

    def test_deletedChildrenIgnored(self) -> None:
        """
        RFC 4575 §4.4: what a deleted element contains is ignored (even if
        it is invalid).
        """
        info = ConferenceInfo.parse(
            document(
                '<users state="partial"><user entity="sip:a@b" state="deleted">'
                "<bogus/></user></users>",
                state="partial",
                users=False,
            )
        )
        self.assertEqual(info.userList, (User("sip:a@b", DELETED),))
        info = ConferenceInfo.parse(
            document("<bogus/>", state="deleted", description=False, users=False)
        )
        self.assertEqual(info, ConferenceInfo(ROOM, 1, DELETED))

    def test_fullNeedsDescriptionAndUsers(self) -> None:
        """
        R-177 (RFC 4575 §5.2).
        """
        self.assertMalformed(document("", description=False), "conference-description")
        self.assertMalformed(document("", users=False), "without users")
        ConferenceInfo.parse(
            document("", state="partial", description=False, users=False)
        )

    def test_badEnumerations(self) -> None:
        """
        The RFC 4575 §6 enumerations, booleans and numbers are checked.
        """
        endpoint = '<users><user entity="sip:a@b"><endpoint entity="e">{}</endpoint></user></users>'
        for body, reason in (
            ("<status>away</status>", "invalid status"),
            ("<joining-method>walked-in</joining-method>", "invalid joining-method"),
            (
                "<disconnection-method>left</disconnection-method>",
                "invalid disconnection",
            ),
            ('<media id="1"><status>both</status></media>', "invalid status"),
            ("<joining-info><when>yesterday</when></joining-info>", "date-time"),
        ):
            self.assertMalformed(document(endpoint.format(body), users=False), reason)
        self.assertMalformed(
            document("<conference-state><active>yes</active></conference-state>"),
            "boolean",
        )
        self.assertMalformed(
            document(
                "<conference-state><user-count>-2</user-count></conference-state>"
            ),
            "user-count",
        )

    def test_naiveTimestampIsUTC(self) -> None:
        """
        An C{xs:dateTime} without offset reads as UTC (RFC 4575 §5.7.2 says
        it SHOULD be UTC).
        """
        info = ConferenceInfo.parse(
            document(
                '<users><user entity="sip:a@b"><endpoint entity="e"><joining-info>'
                "<when>2005-03-04T20:00:00</when></joining-info></endpoint></user>"
                "</users>",
                users=False,
            )
        )
        joiningInfo = info.userList[0].endpoints[0].joiningInfo
        assert joiningInfo is not None
        self.assertEqual(
            joiningInfo.when, datetime(2005, 3, 4, 20, tzinfo=timezone.utc)
        )

    def test_structure(self) -> None:
        """
        Unknown or unqualified elements in RFC 4575 elements, repeated
        single elements, text where elements belong, elements inside text
        elements, empty lists and duplicate keys are refused.
        """
        for body, reason in (
            ("<colour/>", "unknown element"),
            ('<conference-state xmlns=""/>', "without a namespace"),
            ("<conference-state/><conference-state/>", "more than one"),
            ("text", "text directly inside"),
            ("<conference-state>3</conference-state>", "text directly inside"),
            (
                "<conference-state><user-count><x:b/></user-count></conference-state>",
                "text only",
            ),
            ("<host-info><uris/></host-info>", "uris without entry"),
            (
                '<users><user entity="sip:a@b"/><user entity="sip:a@b"/></users>',
                "duplicate user entity",
            ),
            (
                '<users><user entity="sip:a@b"><endpoint entity="e"/>'
                '<endpoint entity="e"/></user></users>',
                "duplicate endpoint entity",
            ),
            ('<users><user entity="sip:a@b"><roles/></user></users>', "roles without"),
        ):
            self.assertMalformed(document(body, users="users" not in body), reason)

    def test_doctypeRefused(self) -> None:
        """
        No DTD at all: no entity expansion (billion laughs), no external
        entities.
        """
        self.assertMalformed(
            b'<?xml version="1.0"?>\r\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\r\n'
            + document("&lol2;").split(b"\r\n", 1)[1],
            "DTD",
        )
        self.assertMalformed(
            b'<!DOCTYPE conference-info SYSTEM "file:///etc/passwd">'
            + document("").split(b"\r\n", 1)[1],
            "DTD",
        )
        self.assertMalformed(b"<!ENTITY x 'y'>", "DTD")

    def test_utf16DoctypeRefused(self) -> None:
        """
        A UTF-16 document without byte order mark is valid UTF-8 octet by
        octet (ASCII and NULs) and expat would decode it: refused before
        the DTD could hide in it.
        """
        data = (
            '<!DOCTYPE r [<!ENTITY a "AAAA">]>'
            + document("").decode("utf-8").split("\r\n", 1)[1]
        ).encode("utf-16-le")
        self.assertMalformed(data, "NUL")

    def test_undefinedEntity(self) -> None:
        """
        Without a DTD an entity reference is not well-formed.
        """
        self.assertMalformed(document("&x;"), "not well-formed")

    def test_notWellFormed(self) -> None:
        """
        Truncated documents, trailing data and empty input are refused;
        trailing whitespace is not an error.
        """
        data = document("")
        self.assertMalformed(data[:-5], "not well-formed")
        self.assertMalformed(data + b"<more/>", "not well-formed")
        self.assertMalformed(b"", "not well-formed")
        self.assertEqual(
            ConferenceInfo.parse(data + b"\r\n"), ConferenceInfo.parse(data)
        )

    def test_encoding(self) -> None:
        """
        RFC 4575 §4.1: UTF-8 only.
        """
        self.assertMalformed(
            document("").replace(b"UTF-8", b"ISO-8859-1"), "must be UTF-8"
        )
        self.assertMalformed(
            document("", description=False).replace(
                b"<users/>",
                b"<conference-description><subject>\xe9</subject>"
                b"</conference-description><users/>",
            ),
            "not UTF-8",
        )

    def test_bounds(self) -> None:
        """
        Documents are bounded in size and nesting depth.
        """
        padding = "<!--" + "x" * MAX_DOCUMENT_SIZE + "-->"
        self.assertMalformed(document(padding), "too large")
        deep = "<x:a>" * MAX_DEPTH + "</x:a>" * MAX_DEPTH
        self.assertMalformed(document(deep), "too deeply")
