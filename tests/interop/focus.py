# -*- test-case-name: tests.interop.test_focus -*-
"""
A standalone RFC 7701 chat room server (conference focus + MSRP switch) for
interop tests of the gateway's RFC 7702 section 5 direction, run in a child
process and scripted through standard input and output.

It uses the project's SIP user agent, MSRP endpoint, chat sessions,
subscription usages and CPIM/conference-info formats, but none of
C{stoxgw.interworking}: the room logic below is written from RFC 7701
(sections 5-9), RFC 4575 and RFC 7702 section 5, not from the gateway.
It does not import L{stoxgw.focus} either, although that package does the
same job: an interop peer must be an independent reading of the RFCs, so
that a misreading shared by the gateway's focus and its RFC 7702 section 5
side fails a test instead of passing on both ends (so the likeness between
this file and C{stoxgw/focus/room.py} is on purpose, not code to share).

Command line
============

C{python -m tests.interop.focus --sip-port P --msrp-port Q [options]}
(binds 127.0.0.1; SIP over UDP and TCP on port P, MSRP over TCP on Q; 0
picks free ports, reported by the C{ready} event):

  - C{--domain D} (default C{chat.sip.test}): rooms are C{sip:NAME@D}.
  - C{--no-nickname}, C{--no-private-messages}: drop that token from the
    answer's C{a=chatroom} (RFC 7701 section 8); NICKNAME then gets 403
    (section 7.1), a private SEND 403 (room policy, section 4.1).
  - C{--no-chatroom}: no C{a=chatroom} at all; C{--no-isfocus}: no
    C{isfocus} on the 200's Contact (a conference-unaware server, RFC 7701
    section 5.2), to test how a participant copes.
  - C{--reserved NICK} (repeatable): a reserved word, always 425 (7.1).
  - C{--history N} (default 10): public messages replayed to a newcomer.
  - C{--from-style gruu|aor} (default C{gruu}): the CPIM From of distributed
    messages, see below.
  - C{--user-entity aor|gruu} (default C{aor}): the C{<user entity>} of the
    conference document, see below.
  - C{--wrapped-types "T1 T2"} (default C{text/plain
    application/im-iscomposing+xml}): the answer's C{accept-wrapped-types};
    a SEND wrapping another type gets 415.
  - C{--refer-status 202|200} (default 202): the answer to a REFER (RFC 3515
    uses 202, RFC 7702 section 5.7 shows 200).
  - C{--dial-referred}: also dial out to a REFER's target (RFC 4579 section
    5.5), as C{invite} does.
  - C{--verbose}: info logs (else warnings only) on standard error.

Every SIP request from 127.0.0.0/8 is admitted (L{SIPTrust}).  The
Request-URI host of an INVITE or SUBSCRIBE is not checked: the room is its
user part (tests address 127.0.0.1 directly as well as the domain).

Control protocol (standard input, one command per line)
========================================================

Fields are separated by one space.  ROOM is the room name (the user part of
its URI); NICK and URI fields are percent-encoded where they contain C{%},
white space or control characters; TEXT is the rest of the line with
C{\\n}, C{\\r} and C{\\\\} escapes::

    subject ROOM TEXT         set the subject (empty TEXT clears it)
    say ROOM NICK TEXT        a virtual participant NICK (AOR sip:NICK@sip.test,
                              joined the first time) speaks in the room
    whisper ROOM NICK TO TEXT the virtual participant NICK (joined the first
                              time) sends a private message to the
                              participant holding nickname TO (RFC 7701
                              section 6.2: CPIM To its AOR, one copy per
                              session); an error if nobody holds TO
    leave ROOM NICK           the virtual participant leaves
    kick ROOM NICK [CAUSE]    BYE with Reason: SIP;cause=CAUSE;text="Kicked"
                              (default 403) to every session holding NICK
    invite ROOM SIPURI        dial out from the room (RFC 4579: INVITE with
                              an isfocus Contact, From the room URI)
    shutdown                  BYE everyone (Reason cause 503), terminated
                              NOTIFYs, exit 0

End of input is C{shutdown}; so is SIGTERM.  Rooms are created by the first
INVITE to them, or by C{subject}/C{say}/C{invite}.

Events (standard output, one per line)
======================================

Same encoding; C{-} stands for "none".  LABEL is a participant's nickname,
or its AOR while it has none::

    ready SIPPORT MSRPPORT            listening
    joined ROOM NICK AOR              a session is ready (dialog confirmed and
                                      MSRP bound: NICK is usually - then), or
                                      a virtual participant appeared
    nickname ROOM OLD NEW STATUS      a NICKNAME (NEW: the nickname asked
                                      for, - to remove it) and the status
                                      answered
    message ROOM LABEL TO TEXT        a public message accepted (TO: the CPIM
                                      To as sent); TEXT is [TYPE] for
                                      non-text content
    private ROOM LABEL TOLABEL TEXT   a private message accepted (or sent
                                      by C{whisper})
    composing ROOM LABEL STATE        an isComposing indication (RFC 3994)
    refused ROOM LABEL STATUS         a SEND answered with an error
    left ROOM LABEL                   a participant (session) left
    rejected ROOM STATUS AOR          an INVITE refused or a session that
                                      failed before it was ready
    subject ROOM TEXT                 subject set
    subscribed ROOM AOR               a conference subscription started
    unsubscribed ROOM AOR REASON      ... ended (an RFC 6665 reason such as
                                      timeout for Expires: 0, or local-...)
    refer ROOM REFERTO                a REFER to the room (answered, then a
                                      NOTIFY "100 Trying" ending its
                                      subscription)
    invited ROOM URI                  a dial-out answered
    invite-failed ROOM URI STATUS     a dial-out failed
    error TEXT                        a bad command
    shutdown                          about to exit

What the room does (RFC 7701)
=============================

 - Section 5.2: the offer must accept C{message/cpim} (else 488); the answer
   accepts only C{message/cpim}, lists C{--wrapped-types}, C{a=chatroom}
   with the configured tokens; Contact C{<sip:ROOM@127.0.0.1:P>;isfocus}.
 - Section 7.1: NICKNAME: 403 without the nickname policy, 424 for a
   malformed value (the library checks the syntax; control characters or a
   blank nickname too), 425 for a reserved word or a nickname another user
   holds (compared after NFKC and case folding, an approximation of RFC
   7700), else 200; the same AOR may reuse its own nickname from a second
   session.  Section 7.2: the old nickname stays until the 200.  Section 7.3:
   C{""} removes the nickname (200).
 - Sections 6.1-6.3, checked in this order: 415 unless the SEND (or its
   wrapped content, per C{--wrapped-types}) is CPIM-wrapped; 400 for a
   malformed CPIM body or none To; 403 for more than one To; 403 unless the
   CPIM From is the sender's AOR (URI parameters such as C{gr} ignored) or
   C{sip:ROOM@D;gr=ITS-NICK}; then a To naming the room (user ROOM, host D
   or the host the sender dialled, no C{gr}) is public, anything else
   private: 403 when private messages are off, 404 for an unknown target
   (C{sip:ROOM@D;gr=NICK} or an AOR), 428 for a target whose offer lacked
   C{private-messages}.  The SEND is answered 200 once copies are queued to
   every other ready session (never back to the sending session; to every
   session of a private target, section 6.2) whose
   C{accept-types}/C{accept-wrapped-types} accept the wrapped type
   (section 6.1 SHOULD NOT).
 - Distributed copies carry a fresh CPIM wrapper (RFC 7702 section 5.5.2,
   SPEC F.1 item 2): C{From} is C{"NICK" <sip:ROOM@D;gr=NICK>}
   (C{--from-style gruu}, the sender's address within the room; the AOR
   when it has no nickname), or the sender's CPIM From value unchanged
   (C{--from-style aor}, RFC 7701 sections 6.1 and 9.4: the switch does not
   modify the content); C{To} is C{<sip:ROOM@D>} for public messages, the
   recipient's AOR for private ones; the sender's C{DateTime} is kept (one
   is added if absent); every other CPIM header, the MIME headers and the
   content are copied octet for octet.
 - History: the last C{--history} public messages, sent to a new session
   as soon as it is ready, before anything else, with their original
   C{DateTime}.
 - Conference event package (RFC 4575, RFC 7702 sections 5.3-5.4):
   SUBSCRIBE C{Event: conference} to C{sip:ROOM@...}, out of the INVITE
   dialog or inside it; 404 for an unknown room.  Full document (version 1
   per subscription) then partial ones, +1 each, from the project's
   L{ConferenceNotifier}: root C{entity} the room URI;
   C{<conference-description>} with C{<subject>} when set;
   C{<conference-state><user-count>}; one C{<user>} per participant:
   C{entity} its AOR (the From URI of its INVITE, without parameters;
   C{--user-entity aor}, RFC 7701 section 9.6) or C{sip:ROOM@D;gr=NICK}
   (C{--user-entity gruu}, RFC 7702 Example 9, the occupant address of
   Table 2; the AOR while it has no nickname), C{xcon:nickname} and
   C{<display-text>} the nickname (absent without one), C{<associated-aors>}
   the AOR (Table 2: the "user full JID"), C{<roles>} C{participant}; one
   C{<endpoint>} per session: C{entity} the session's Contact URI, status
   C{connected}, C{joining-method} dialed-in (dialed-out for C{invite}),
   C{<joining-info><when>}, and a C{<media>} of type C{message}.  Sessions
   of one AOR (or, with C{gruu}, one nickname) share a C{<user>}.  Changes:
   join (user added), nickname change (aor: the user updated; gruu: the
   old entity deleted, the new one added), subject change, leave in two
   partial notifications: first the endpoint C{disconnected} with
   C{<disconnection-method>} (departed for BYE, booted for C{kick}, failed
   for an MSRP failure) and C{<disconnection-info>}, then the user
   C{state="deleted"} (RFC 4575 section 4.4: the children of a deleted
   element are ignored, so the method cannot ride on the deletion itself).
 - REFER to the room (RFC 4579 section 5.5, RFC 7702 section 5.7):
   answered C{--refer-status}, then one NOTIFY C{100 Trying} that
   terminates the implicit subscription (RFC 7702 section 6.5 advice).

L{FocusProcess} runs the program for tests: it starts exactly one child,
reads its events, and stops exactly that child by its PID, every wait
bounded::

    focus = FocusProcess(["--history", "5"], directory=self.mktemp())
    focus.start()                       # blocks until "ready" (15 s at most)
    self.addCleanup(focus.stop)         # SIGTERM to its PID, then SIGKILL
    ua = SIPUserAgent(..., UserAgentSettings(outboundProxy=focus.proxyURI()))
    ...INVITE focus.roomURI("room")...  # sip:room@chat.sip.test
    since = focus.mark()
    focus.command("say", "room", "Nurse", text="Madam!")
    line = yield focus.whenEvent("joined room Nurse", since=since)
    status = yield focus.shutdown()     # the shutdown command, non-blocking

L{FocusProcess.kill} kills it hard (SIGKILL to its PID: no BYE, the
connections drop), for tests of a room server that dies.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import count
from typing import Any
from urllib.parse import quote, unquote

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.chat.session import (
    AcceptChat,
    ChatAcceptor,
    ChatEnd,
    ChatInitiator,
    ChatOffer,
    ChatSession,
    ChatSessionError,
    ChatSettings,
    ChatState,
    EndCause,
    IChatOfferHandler,
    IChatSessionHandler,
    RejectChat,
)
from stoxgw.formats.conferenceinfo import (
    ConferenceDescription,
    ConferenceInfo,
    ConferenceState,
    DisconnectionMethod,
    Endpoint,
    EndpointStatus,
    Execution,
    JoiningMethod,
    Media,
    URIEntry,
    URIs,
    User,
    Users,
)
from stoxgw.formats.cpim import (
    CPIM_NAMESPACE,
    CPIMAddress,
    CPIMError,
    CPIMHeader,
    CPIMMessage,
    CPIMRequireError,
    escapeHeaderValue,
    formatDateTime,
)
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IncomingMessage, mediaTypeMatches
from stoxgw.sip.dialog import DialogState
from stoxgw.sip.headers import Reason
from stoxgw.sip.message import SIPRequest
from stoxgw.sip.refer import IncomingRefer, IReferHandler, ReferAgent
from stoxgw.sip.subscription import (
    ConferenceNotifier,
    ConferencePackage,
    NotifierSubscription,
    SIPEvents,
    SubscriptionReason,
)
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import NameAddr, SIPURI, SIPURIError, quoteString
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings

#: The checkout's top directory (for running the program from the tree).
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: Default room domain.
DEFAULT_DOMAIN = "chat.sip.test"

#: Domain of the virtual participants' AORs (C{say}).
VIRTUAL_DOMAIN = "sip.test"

#: Default C{accept-wrapped-types} of the answer.
DEFAULT_WRAPPED_TYPES = ("text/plain", "application/im-iscomposing+xml")

#: RFC 3994: the isComposing content type.
ISCOMPOSING_TYPE = "application/im-iscomposing+xml"

#: Seconds a shutdown waits for BYE and NOTIFY responses.
SHUTDOWN_GRACE = 3.0

_CPIM = "message/cpim"
_FIELD_UNSAFE = re.compile(r"[%\s\x00-\x1f\x7f]")
_STATE_RE = re.compile(rb"<state>\s*([A-Za-z]+)\s*</state>")
_URI_PARAM_SAFE = "-_.!~*'()[]/:&+$"


# ---------------------------------------------------------------------------
# The line protocol


def encodeField(value: str | None) -> str:
    """
    One space-free field of an event or command line: C{-} for L{None},
    C{%}, white space and control characters percent-encoded (a lone
    C{-} too, so that it stays distinct from "none").
    """
    if value is None:
        return "-"
    if value == "-":
        return "%2D"
    return _FIELD_UNSAFE.sub(lambda m: quote(m.group(), safe=""), value)


def decodeField(field: str) -> str | None:
    """
    The inverse of L{encodeField}.
    """
    if field == "-":
        return None
    return unquote(field)


def encodeText(text: str) -> str:
    """
    The TEXT rest of a line: backslash, CR and LF escaped.
    """
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def decodeText(text: str) -> str:
    """
    The inverse of L{encodeText}.
    """
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            out.append({"n": "\n", "r": "\r"}.get(char, char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    if escaped:
        out.append("\\")
    return "".join(out)


def formatLine(kind: str, *fields: str | None, text: str | None = None) -> str:
    """
    An event or command line: the kind, the encoded fields, then the TEXT.
    """
    parts = [kind] + [encodeField(f) for f in fields]
    if text is not None:
        parts.append(encodeText(text))
    return " ".join(parts)


def nicknameKey(nickname: str) -> str:
    """
    The comparison form of a nickname: NFKC and case folding, a stand-in
    for the RFC 7700 profile that RFC 7701 section 7.1 asks for.
    """
    return unicodedata.normalize("NFKC", nickname).casefold()


def _grValue(nickname: str) -> str:
    """
    A nickname as a C{gr} URI parameter value (SIP C{paramchar}s,
    everything else percent-encoded: RFC 3261 section 25.1).
    """
    return quote(nickname, safe=_URI_PARAM_SAFE)


def canonicalAOR(uri: Any) -> str:
    """
    An address-of-record as text: a SIP URI without parameters, headers
    or password, the host in lower case (RFC 3261 section 19.1.4 compares
    hosts case-insensitively); other URIs as they are.
    """
    if isinstance(uri, SIPURI):
        return SIPURI(uri.scheme, uri.host.lower(), uri.user, port=uri.port).serialize()
    return str(uri)


def _parseSIP(text: str) -> SIPURI | None:
    try:
        return SIPURI.fromString(text)
    except (SIPURIError, ValueError):
        return None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


# ---------------------------------------------------------------------------
# Participants and rooms


@implementer(IChatSessionHandler)
class Participant:
    """
    One session in a room (or a virtual participant of C{say}).

    @ivar room: The room.
    @ivar aor: The AOR (L{canonicalAOR} of the INVITE's From, or of the
        dial-out target).
    @ivar contact: The endpoint URI (the session's Contact).
    @ivar nickname: The nickname, or L{None}.
    @ivar tokens: The C{a=chatroom} tokens the participant declared.
    @ivar acceptTypes: Its C{accept-types}.
    @ivar acceptWrappedTypes: Its C{accept-wrapped-types}.
    @ivar chat: Its chat session (L{None} for a virtual participant).
    @ivar dialedOut: Whether the room called it (C{invite}).
    @ivar listed: Whether it is in the roster (ready, not gone).
    @ivar joinedAt: When it became ready.
    @ivar mediaID: The id of its C{<media>} element.
    @ivar disconnection: How it is leaving, once it is.
    """

    def __init__(
        self,
        room: Room,
        aor: str,
        contact: str,
        *,
        tokens: frozenset[str] = frozenset(),
        acceptTypes: tuple[str, ...] = (),
        acceptWrappedTypes: tuple[str, ...] = (),
        dialedOut: bool = False,
        nickname: str | None = None,
        virtual: bool = False,
    ) -> None:
        self.room = room
        self.aor = aor
        self.contact = contact
        self.tokens = tokens
        self.acceptTypes = acceptTypes
        self.acceptWrappedTypes = acceptWrappedTypes
        self.dialedOut = dialedOut
        self.nickname = nickname
        self.virtual = virtual
        self.chat: ChatSession | None = None
        self.listed = False
        self.ended = False
        self.joinedAt = _now()
        self.mediaID = str(next(room.focus.mediaIDs))
        self.disconnection: DisconnectionMethod | None = None
        self.disconnectionReason: str | None = None

    def __repr__(self) -> str:
        return f"<Participant {self.label} in {self.room.name}>"

    @property
    def label(self) -> str:
        """
        The nickname, or the AOR without one (for events).
        """
        return self.nickname if self.nickname is not None else self.aor

    @property
    def privateMessages(self) -> bool:
        """
        Whether it declared C{private-messages} (RFC 7701 section 8);
        virtual participants take them.
        """
        return self.virtual or "private-messages" in self.tokens

    def acceptsWrapped(self, contentType: str) -> bool:
        """
        Whether its SDP accepts a type inside CPIM (RFC 7701 section 6.1,
        RFC 4975 section 8.6: C{accept-types} or C{accept-wrapped-types});
        unknown types lists accept everything.
        """
        if self.virtual or not (self.acceptTypes or self.acceptWrappedTypes):
            return True
        return mediaTypeMatches(contentType, self.acceptTypes + self.acceptWrappedTypes)

    # -- IChatSessionHandler ------------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        The session exists: join the room's member list (not yet the
        roster) and wait for it to be ready.
        """
        self.chat = session
        self.room.participants.append(self)
        session.whenReady().addCallbacks(
            lambda _: self.room.participantReady(self), lambda _: None
        )

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        A SEND: see L{Room.sendReceived}.
        """
        return self.room.sendReceived(self, message)

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        A NICKNAME: see L{Room.nicknameRequested}.
        """
        return self.room.nicknameRequested(self, nickname)

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        The session ended: see L{Room.participantEnded}.
        """
        self.room.participantEnded(self, reason)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """
    A public message kept for newcomers.

    @ivar body: The CPIM body as distributed (To the room).
    @ivar contentType: Its wrapped type (for the recipient check).
    """

    body: bytes
    contentType: str


class Room:
    """
    One chat room: its members, subject, history and conference state.

    @ivar focus: The server.
    @ivar name: The user part of its URI.
    @ivar uri: C{sip:NAME@DOMAIN}.
    @ivar hosts: Hosts that name the room in a CPIM To besides the domain.
    @ivar participants: Sessions and virtual participants, in join order.
    @ivar subject: The subject, or L{None}.
    @ivar history: The last public messages.
    @ivar notifier: The conference state served to subscribers.
    """

    _log = Logger()

    def __init__(self, focus: Focus, name: str) -> None:
        self.focus = focus
        self.name = name
        self.uri = SIPURI("sip", focus.options.domain, name).serialize()
        self.hosts = {focus.options.domain.lower()}
        self.participants: list[Participant] = []
        self.subject: str | None = None
        self.history: collections.deque[HistoryEntry] = collections.deque(
            maxlen=max(focus.options.history, 0)
        )
        self.notifier = ConferenceNotifier(self.conferenceInfo())

    # -- roster ----------------------------------------------------------

    @property
    def listed(self) -> list[Participant]:
        """
        The participants in the roster.
        """
        return [p for p in self.participants if p.listed]

    def occupantURI(self, nickname: str) -> str:
        """
        C{sip:ROOM@DOMAIN;gr=NICK}: a participant's address within the room
        (RFC 7702 section 5.5.2, Example 9).
        """
        return f"{self.uri};gr={_grValue(nickname)}"

    def entityOf(self, participant: Participant) -> str:
        """
        The C{<user entity>} of a participant (C{--user-entity}).
        """
        if self.focus.options.userEntity == "gruu" and participant.nickname:
            return self.occupantURI(participant.nickname)
        return participant.aor

    def conferenceInfo(self) -> ConferenceInfo:
        """
        The full conference state (RFC 4575 section 5; layout in the module
        docstring).
        """
        grouped: dict[str, list[Participant]] = {}
        for participant in self.participants:
            if participant.listed:
                grouped.setdefault(self.entityOf(participant), []).append(participant)
        users = []
        for entity, members in grouped.items():
            nickname = next((m.nickname for m in members if m.nickname), None)
            endpoints: list[Endpoint] = []
            seen: set[str] = set()
            for member in members:
                if member.contact in seen:
                    continue
                seen.add(member.contact)
                endpoints.append(self._endpoint(member))
            users.append(
                User(
                    entity,
                    displayText=nickname,
                    associatedAORs=URIs(
                        tuple(
                            URIEntry(aor)
                            for aor in dict.fromkeys(m.aor for m in members)
                        )
                    ),
                    roles=("participant",),
                    endpoints=tuple(endpoints),
                    nickname=nickname,
                )
            )
        return ConferenceInfo(
            self.uri,
            description=ConferenceDescription(subject=self.subject),
            conferenceState=ConferenceState(userCount=len(users)),
            users=Users(tuple(users)),
        )

    @staticmethod
    def _endpoint(member: Participant) -> Endpoint:
        method = member.disconnection
        return Endpoint(
            member.contact,
            status=(
                EndpointStatus.CONNECTED
                if method is None
                else EndpointStatus.DISCONNECTED
            ),
            joiningMethod=(
                JoiningMethod.DIALED_OUT
                if member.dialedOut
                else JoiningMethod.DIALED_IN
            ),
            joiningInfo=Execution(when=member.joinedAt),
            disconnectionMethod=method,
            disconnectionInfo=(
                None
                if method is None
                else Execution(when=_now(), reason=member.disconnectionReason)
            ),
            media=(Media(member.mediaID, type="message"),),
        )

    def publish(self) -> None:
        """
        Send the change to every subscriber (partial documents, RFC 4575
        section 4.3).
        """
        self.notifier.update(self.conferenceInfo())

    def holder(self, nickname: str, exceptAOR: str | None = None) -> Participant | None:
        """
        A participant (any state but ended) holding a nickname, ignoring
        those of C{exceptAOR}.
        """
        key = nicknameKey(nickname)
        for participant in self.participants:
            if (
                participant.nickname is not None
                and nicknameKey(participant.nickname) == key
                and participant.aor != exceptAOR
            ):
                return participant
        return None

    # -- joining and leaving ---------------------------------------------

    def participantReady(self, participant: Participant) -> None:
        """
        A session is ready: roster (NOTIFY), C{joined}, then the history
        (before any later message, MSRP keeps the order).
        """
        if participant.ended or participant.listed:
            return
        chat = participant.chat
        if chat is not None and chat.remoteMedia is not None and participant.dialedOut:
            media = chat.remoteMedia
            participant.tokens = frozenset(_tokens(media.chatroom))
            participant.acceptTypes = media.acceptTypes
            participant.acceptWrappedTypes = media.acceptWrappedTypes
        if chat is not None and participant.dialedOut and chat.dialog is not None:
            participant.contact = str(chat.dialog.remoteTarget)
        participant.joinedAt = _now()
        participant.listed = True
        self.publish()
        self.focus.emit("joined", self.name, participant.nickname, participant.aor)
        if participant.dialedOut:
            self.focus.emit("invited", self.name, participant.aor)
        for entry in list(self.history):
            self._deliver(participant, entry.body, entry.contentType)

    def addVirtual(self, nickname: str) -> Participant | None:
        """
        The virtual participant holding C{nickname}, added (C{joined}) if
        new; L{None} if a real participant holds the nickname.
        """
        holder = self.holder(nickname)
        if holder is not None:
            return holder if holder.virtual else None
        user = SIPURI("sip", VIRTUAL_DOMAIN, nickname).serialize()
        participant = Participant(
            self, user, user, nickname=nickname, virtual=True, tokens=frozenset()
        )
        participant.listed = True
        self.participants.append(participant)
        self.publish()
        self.focus.emit("joined", self.name, nickname, user)
        return participant

    def participantEnded(self, participant: Participant, end: ChatEnd) -> None:
        """
        A session ended: off the roster in two steps (the endpoint
        disconnected with its method, then the user deleted), C{left}; or
        C{rejected}/C{invite-failed} if it never was ready.
        """
        if participant.ended:
            return
        participant.ended = True
        if participant.disconnection is None:
            # RFC 4575 section 5.7.6: a BYE either way is a departure; an
            # MSRP failure or a dialog that died is a failure.
            participant.disconnection = (
                DisconnectionMethod.DEPARTED
                if end.cause in (EndCause.REMOTE_BYE, EndCause.LOCAL, EndCause.SHUTDOWN)
                else DisconnectionMethod.FAILED
            )
            participant.disconnectionReason = _reasonText(end)
        self.remove(participant, announce=participant.listed)
        if not participant.listed:
            status = "-" if end.status is None else str(end.status)
            if participant.dialedOut:
                self.focus.emit("invite-failed", self.name, participant.aor, status)
            else:
                self.focus.emit("rejected", self.name, status, participant.aor)

    def remove(self, participant: Participant, announce: bool) -> None:
        """
        Take a participant out: NOTIFYs (unless the focus is shutting down)
        and C{left}.
        """
        if participant not in self.participants:
            return
        if announce and not self.focus.stopping:
            if participant.disconnection is None:
                participant.disconnection = DisconnectionMethod.DEPARTED
            self.publish()
        self.participants.remove(participant)
        if announce:
            if not self.focus.stopping:
                self.publish()
            self.focus.emit("left", self.name, participant.label)

    # -- nicknames (RFC 7701 section 7) ------------------------------------

    def nicknameRequested(self, participant: Participant, nickname: str) -> int:
        """
        Answer a NICKNAME (RFC 7701 sections 7.1-7.3).
        """
        old = participant.nickname
        status = self._nicknameStatus(participant, nickname)
        new = (nickname or None) if status == 200 else None
        if status == 200:
            participant.nickname = new
            if participant.listed and old != new:
                self.publish()
        self.focus.emit(
            "nickname", self.name, old, new if status == 200 else nickname, str(status)
        )
        return status

    def _nicknameStatus(self, participant: Participant, nickname: str) -> int:
        options = self.focus.options
        if not options.nicknames:
            return 403
        if nickname == "":
            return 200
        if (
            not nickname.strip()
            or nickname != nickname.strip()
            or any(unicodedata.category(c) == "Cc" for c in nickname)
        ):
            return 424
        key = nicknameKey(nickname)
        if key in {nicknameKey(r) for r in options.reserved}:
            return 425
        holder = self.holder(nickname)
        if holder is not None and holder is not participant:
            if holder.virtual or holder.aor != participant.aor:
                return 425
        return 200

    # -- messages (RFC 7701 section 6) ---------------------------------------

    def sendReceived(self, sender: Participant, message: IncomingMessage) -> int:
        """
        Check a SEND (RFC 7701 sections 6.1-6.3) and distribute it; the
        status answers it (200 once the copies are queued).
        """
        status, detail = self._distribute(sender, message)
        if status != 200:
            self.focus.emit("refused", self.name, sender.label, str(status))
            self._log.info(
                "SEND from {nick} refused with {status}: {error}",
                nick=sender.label,
                status=status,
                error=detail,
            )
        return status

    def _distribute(
        self, sender: Participant, message: IncomingMessage
    ) -> tuple[int, str]:
        if not mediaTypeMatches(message.contentType, (_CPIM,)):
            return 415, "not message/cpim (RFC 7701 section 6.3)"
        try:
            cpim = CPIMMessage.parse(message.body)
            fromAddress = cpim.fromAddress
            toAddresses = cpim.toAddresses
            wrapped = cpim.contentType.mimeType
        except CPIMRequireError as e:
            return 415, e.reason
        except (CPIMError, ValueError) as e:
            return 400, str(e)
        if not mediaTypeMatches(wrapped, self.focus.options.wrappedTypes):
            return 415, f"{wrapped} not in accept-wrapped-types"
        if not toAddresses:
            return 400, "no CPIM To"
        if len(toAddresses) > 1:
            return 403, "more than one CPIM To (RFC 7701 section 6.1)"
        if fromAddress is None or not self._isSenderIdentity(sender, fromAddress):
            return 403, "CPIM From is not the sender's (RFC 7701 section 6.3)"
        to = toAddresses[0]
        target = self._roomTarget(sender, to)
        if target is None:
            return self._distributePublic(sender, cpim, wrapped, to)
        return self._distributePrivate(sender, cpim, wrapped, to, target)

    def _isSenderIdentity(self, sender: Participant, address: CPIMAddress) -> bool:
        """
        RFC 7701 sections 6.1, 6.3: the CPIM From must be the sender's AOR
        (any URI parameters, e.g. its GRUU) or its address in the room.
        """
        uri = _parseSIP(address.uri)
        if uri is None:
            return address.bareURI == sender.aor
        if canonicalAOR(uri) == sender.aor:
            return True
        gruu = uri.parameter("gr")
        return (
            self._namesRoom(uri)
            and bool(gruu)
            and sender.nickname is not None
            and nicknameKey(gruu or "") == nicknameKey(sender.nickname)
        )

    def _namesRoom(self, uri: SIPURI) -> bool:
        return uri.user == self.name and uri.host.lower() in self.hosts

    def _roomTarget(self, sender: Participant, to: CPIMAddress) -> str | None:
        """
        L{None} if the CPIM To is the room (a public message), else the
        target to resolve: C{gr:NICK} or an AOR.
        """
        uri = _parseSIP(to.uri)
        if uri is None:
            return to.bareURI
        if self._namesRoom(uri):
            gruu = uri.parameter("gr")
            return None if not gruu else "gr:" + gruu
        return canonicalAOR(uri)

    def _resolve(self, target: str) -> list[Participant]:
        if target.startswith("gr:"):
            key = nicknameKey(target[3:])
            return [
                p
                for p in self.listed
                if p.nickname is not None and nicknameKey(p.nickname) == key
            ]
        return [p for p in self.listed if p.aor == target]

    def _distributePublic(
        self, sender: Participant, cpim: CPIMMessage, wrapped: str, to: CPIMAddress
    ) -> tuple[int, str]:
        body = self.wrap(sender.nickname, sender.aor, cpim, CPIMAddress(self.uri))
        self._publicMessage(sender, body, wrapped)
        if wrapped == ISCOMPOSING_TYPE:
            self.focus.emit("composing", self.name, sender.label, _composingState(cpim))
        else:
            self.focus.emit(
                "message",
                self.name,
                sender.label,
                to.uri,
                text=self._text(cpim, wrapped),
            )
        return 200, ""

    def _publicMessage(
        self, sender: Participant | None, body: bytes, wrapped: str
    ) -> None:
        """
        Copy a public message to every other ready session; keep it for
        newcomers unless it is an isComposing indication.
        """
        for recipient in self.listed:
            if recipient is sender:
                continue
            self._deliver(recipient, body, wrapped)
        if wrapped != ISCOMPOSING_TYPE:
            self.history.append(HistoryEntry(body, wrapped))

    def _text(self, cpim: CPIMMessage, wrapped: str) -> str:
        if wrapped.startswith("text/"):
            return cpim.body.decode("utf-8", "replace")
        return f"[{wrapped}]"

    def _distributePrivate(
        self,
        sender: Participant,
        cpim: CPIMMessage,
        wrapped: str,
        to: CPIMAddress,
        target: str,
    ) -> tuple[int, str]:
        if not self.focus.options.privateMessages:
            return 403, "private messages are not allowed here"
        recipients = self._resolve(target)
        if not recipients:
            return 404, f"no participant {target} (RFC 7701 section 6.2)"
        if not all(r.privateMessages for r in recipients):
            return 428, "recipient does not support private messages"
        first = recipients[0]
        composing = wrapped == ISCOMPOSING_TYPE
        for recipient in recipients:
            if recipient.virtual:
                continue
            body = self.wrap(
                sender.nickname, sender.aor, cpim, CPIMAddress(recipient.aor)
            )
            self._deliver(recipient, body, wrapped)
        if composing:
            self.focus.emit("composing", self.name, sender.label, _composingState(cpim))
        else:
            self.focus.emit(
                "private",
                self.name,
                sender.label,
                first.label,
                text=self._text(cpim, wrapped),
            )
        return 200, ""

    def wrap(
        self,
        nickname: str | None,
        aor: str,
        cpim: CPIMMessage,
        to: CPIMAddress,
    ) -> bytes:
        """
        The fresh CPIM wrapper of a distributed copy (module docstring):
        From per C{--from-style}, To, the sender's DateTime (or now), then
        the other CPIM headers, the MIME headers and the content unchanged.
        """
        if self.focus.options.fromStyle == "aor":
            original = [
                h
                for ns, local, h in cpim.resolvedHeaders()
                if (ns, local) == (CPIM_NAMESPACE, "From")
            ]
            fromValue = original[0].value if original else f"<{aor}>"
        elif nickname is not None:
            name = escapeHeaderValue(nickname, quoted=True)
            fromValue = f'"{name}" <{self.occupantURI(nickname)}>'
        else:
            fromValue = f"<{aor}>"
        dateTime: bytes | None = None
        others: list[bytes] = []
        for ns, local, header in cpim.resolvedHeaders():
            if ns == CPIM_NAMESPACE and local in ("From", "To", "cc"):
                continue
            if ns == CPIM_NAMESPACE and local == "DateTime":
                if dateTime is None:
                    dateTime = header.raw
                continue
            others.append(header.raw)
        if dateTime is None:
            dateTime = CPIMHeader.make("DateTime", formatDateTime(_now())).raw
        lines = [
            f"From: {fromValue}".encode("utf-8"),
            f"To: {to.toHeaderValue()}".encode("utf-8"),
            dateTime,
            *others,
        ]
        mime = [h.raw for h in cpim.contentHeaders]
        return (
            b"".join(line + b"\r\n" for line in lines)
            + b"\r\n"
            + b"".join(line + b"\r\n" for line in mime)
            + b"\r\n"
            + cpim.body
        )

    def _deliver(self, recipient: Participant, body: bytes, wrapped: str) -> None:
        """
        Queue a copy to one session, unless it cannot take the wrapped type
        (RFC 7701 section 6.1: SHOULD NOT forward).
        """
        chat = recipient.chat
        if recipient.virtual or chat is None or chat.ended:
            return
        if not recipient.acceptsWrapped(wrapped):
            self._log.info(
                "Not forwarding {type} to {nick}", type=wrapped, nick=recipient.label
            )
            return
        chat.sendMessage(_CPIM, body).addErrback(self._sendFailed, recipient)

    def _sendFailed(self, reason: Failure, recipient: Participant) -> None:
        self._log.warn(
            "Copy to {nick} failed: {error}",
            nick=recipient.label,
            error=reason.getErrorMessage(),
        )

    # -- control commands -----------------------------------------------------

    def say(self, nickname: str, text: str) -> bool:
        """
        A virtual participant speaks (C{say}); C{False} if a real
        participant holds the nickname.
        """
        speaker = self.addVirtual(nickname)
        if speaker is None:
            return False
        content = text.encode("utf-8")
        cpim = CPIMMessage.build(
            contentType="text/plain; charset=utf-8",
            body=content,
            fromAddress=CPIMAddress(speaker.aor),
            toAddresses=[CPIMAddress(self.uri)],
            dateTime=_now(),
        )
        body = self.wrap(nickname, speaker.aor, cpim, CPIMAddress(self.uri))
        self._publicMessage(speaker, body, "text/plain")
        self.focus.emit("message", self.name, nickname, self.uri, text=text)
        return True

    def whisper(self, nickname: str, target: str, text: str) -> None:
        """
        A virtual participant sends a private message (C{whisper}) to the
        real participant holding C{target}, as L{_distributePrivate} would
        distribute it: CPIM From per C{--from-style}, To the recipient's
        AOR, to every session of the recipient (RFC 7701 section 6.2).

        @raise ValueError: C{nickname} is a real participant's, or no real
            participant holds C{target}.
        """
        speaker = self.addVirtual(nickname)
        if speaker is None:
            raise ValueError(f"{nickname} is a real participant's nickname")
        recipients = [r for r in self._resolve("gr:" + target) if not r.virtual]
        if not recipients:
            raise ValueError(f"no real participant called {target}")
        content = text.encode("utf-8")
        for recipient in recipients:
            cpim = CPIMMessage.build(
                contentType="text/plain; charset=utf-8",
                body=content,
                fromAddress=CPIMAddress(speaker.aor),
                toAddresses=[CPIMAddress(recipient.aor)],
                dateTime=_now(),
            )
            body = self.wrap(nickname, speaker.aor, cpim, CPIMAddress(recipient.aor))
            self._deliver(recipient, body, "text/plain")
        self.focus.emit("private", self.name, nickname, recipients[0].label, text=text)

    def setSubject(self, subject: str | None) -> None:
        """
        Change the subject (C{<conference-description><subject>}).
        """
        self.subject = subject
        self.publish()
        self.focus.emit("subject", self.name, text=subject or "")


def _composingState(cpim: CPIMMessage) -> str | None:
    """
    The C{<state>} of an isComposing document (RFC 3994 section 5), or
    L{None}.
    """
    match = _STATE_RE.search(cpim.body)
    return match.group(1).decode("ascii") if match else None


def _tokens(chatroom: tuple[str, ...] | None) -> set[str]:
    """
    The C{a=chatroom} tokens in lower case; RFC 7701's prose spelling
    C{nicknames} read as C{nickname} (SPEC F.1 item 4).
    """
    tokens = {t.lower() for t in chatroom or ()}
    if "nicknames" in tokens:
        tokens.add("nickname")
    return tokens


def _reasonText(end: ChatEnd) -> str | None:
    """
    An RFC 3326 Reason value describing how a session ended (for
    C{<disconnection-info><reason>}).
    """
    if end.status is None and not end.text:
        return None
    params: list[tuple[str, str | None]] = []
    if end.status is not None:
        params.append(("cause", str(end.status)))
    if end.text:
        params.append(("text", quoteString(end.text)))
    return Reason("SIP", tuple(params)).serialize()


# ---------------------------------------------------------------------------
# The server


@dataclass(frozen=True)
class FocusOptions:
    """
    The command-line options (see the module docstring).
    """

    sipPort: int = 0
    msrpPort: int = 0
    domain: str = DEFAULT_DOMAIN
    nicknames: bool = True
    privateMessages: bool = True
    chatroom: bool = True
    isfocus: bool = True
    reserved: tuple[str, ...] = ()
    history: int = 10
    fromStyle: str = "gruu"
    userEntity: str = "aor"
    wrappedTypes: tuple[str, ...] = DEFAULT_WRAPPED_TYPES
    referStatus: int = 202
    dialReferred: bool = False
    verbose: bool = False

    @property
    def chatroomTokens(self) -> tuple[str, ...] | None:
        """
        The answer's C{a=chatroom} tokens, or L{None} to omit it.
        """
        if not self.chatroom:
            return None
        tokens = []
        if self.nicknames:
            tokens.append("nickname")
        if self.privateMessages:
            tokens.append("private-messages")
        return tuple(tokens)


class _RoomConferences(ConferencePackage):
    """
    The C{conference} package (RFC 4575) with C{subscribed} and
    C{unsubscribed} events.
    """

    def __init__(self, focus: Focus) -> None:
        super().__init__(focus.notifierFor)
        self.focus = focus

    def subscriptionStarted(self, subscription: NotifierSubscription) -> None:
        super().subscriptionStarted(subscription)
        room = self.focus.roomFor(subscription.request)
        self.focus.emit(
            "subscribed",
            room.name if room else None,
            canonicalAOR(subscription.request.fromAddress.uri),
        )

    def subscriptionEnded(
        self, subscription: NotifierSubscription, reason: SubscriptionReason
    ) -> None:
        super().subscriptionEnded(subscription, reason)
        room = self.focus.roomFor(subscription.request)
        self.focus.emit(
            "unsubscribed",
            room.name if room else None,
            canonicalAOR(subscription.request.fromAddress.uri),
            reason.value.replace("local: ", "local-").replace(" ", "-"),
        )


@implementer(IChatOfferHandler, IReferHandler)
class Focus:
    """
    The conference focus and MSRP switch of every room.

    @ivar reactor: The reactor.
    @ivar options: The options.
    @ivar write: Writes one event line.
    @ivar rooms: The rooms by name.
    @ivar stopping: Whether a shutdown is under way.
    """

    _log = Logger()

    def __init__(
        self, reactor: Any, options: FocusOptions, write: Callable[[str], None]
    ) -> None:
        self.reactor = reactor
        self.options = options
        self.write = write
        self.rooms: dict[str, Room] = {}
        self.mediaIDs = count(1)
        self.stopping = False
        self.stopped: Deferred[None] | None = None
        self.transport: SIPTransport | None = None
        self.ua: SIPUserAgent | None = None
        self.endpoint: MSRPEndpoint | None = None
        self.events: SIPEvents | None = None
        self.initiator: ChatInitiator | None = None

    def emit(self, kind: str, *fields: str | None, text: str | None = None) -> None:
        """
        Write one event line.
        """
        self.write(formatLine(kind, *fields, text=text))

    # -- set-up ------------------------------------------------------------

    def start(self) -> None:
        """
        Listen (SIP UDP+TCP on one port, MSRP TCP), wire the SIP and MSRP
        layers, and emit C{ready}.
        """
        self.transport = self._listenSIP(self.options.sipPort)
        self.ua = SIPUserAgent(
            self.reactor,
            self.transport,
            settings=UserAgentSettings(
                contactUser="focus", userAgent="stoxgw-test-focus"
            ),
            admission=SIPTrust.fromStrings(["127.0.0.0/8"]),
        )
        self.endpoint = MSRPEndpoint(
            self.reactor, "127.0.0.1", self.options.msrpPort, transactionTimeout=10
        )
        self.endpoint.startListening()
        settings = ChatSettings(connectTimeout=15.0)
        ChatAcceptor(self.ua, self.endpoint, self.reactor, self, settings).register()
        self.initiator = ChatInitiator(self.ua, self.endpoint, self.reactor, settings)
        self.events = SIPEvents(self.ua)
        self.events.addPackage(_RoomConferences(self))
        ReferAgent(self.events, self, acceptStatus=self.options.referStatus)
        self.emit(
            "ready",
            str(self.transport.ports[TransportKind.UDP]),
            str(self.endpoint.port),
        )

    def _listenSIP(self, port: int) -> SIPTransport:
        """
        One SIP transport listening on UDP and TCP on the same port (for 0:
        TCP on a port the kernel picks, read back, then UDP on it; again
        if that UDP port is taken).
        """
        from twisted.internet.error import CannotListenError

        for _ in range(50):
            transport = SIPTransport(self.reactor, "127.0.0.1")
            try:
                chosen = transport.listenTCP(port).getHost().port
                transport.listenUDP(chosen)
            except CannotListenError:
                transport.stopListening()
                if port:
                    raise
                continue
            return transport
        raise RuntimeError("no SIP port free for both UDP and TCP")

    # -- rooms -------------------------------------------------------------

    def room(self, name: str) -> Room:
        """
        The room called C{name}, created if needed (RFC 7701 section 5.1).
        """
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(self, name)
        return room

    def roomFor(self, request: SIPRequest) -> Room | None:
        """
        The existing room a request's Request-URI names (by user part).
        """
        uri = request.uri
        if not isinstance(uri, SIPURI) or not uri.user:
            return None
        return self.rooms.get(uri.user)

    def notifierFor(self, request: SIPRequest) -> ConferenceNotifier | None:
        """
        The conference state a SUBSCRIBE asks for (404 for an unknown room).
        """
        room = self.roomFor(request)
        return None if room is None else room.notifier

    # -- IChatOfferHandler (RFC 7701 section 5.2) ----------------------------

    def chatOffered(self, offer: ChatOffer) -> AcceptChat | RejectChat:
        """
        An INVITE to a room: accept it as the room's focus (the library
        answers 488 to an offer without message/cpim).
        """
        request = offer.invite.request
        uri = request.uri
        if self.stopping or not isinstance(uri, SIPURI) or not uri.user:
            self.emit(
                "rejected",
                None,
                "404" if not self.stopping else "503",
                canonicalAOR(request.fromAddress.uri),
            )
            return RejectChat(404 if not self.stopping else 503)
        room = self.room(uri.user)
        room.hosts.add(uri.host.lower())
        to = request.toAddress.uri
        if isinstance(to, SIPURI):
            room.hosts.add(to.host.lower())
        contacts = request.contact
        contact = (
            str(contacts.addresses[0].uri)
            if contacts is not None and contacts.addresses
            else canonicalAOR(request.fromAddress.uri)
        )
        participant = Participant(
            room,
            canonicalAOR(request.fromAddress.uri),
            contact,
            tokens=frozenset(_tokens(offer.media.chatroom)),
            acceptTypes=offer.media.acceptTypes,
            acceptWrappedTypes=offer.media.acceptWrappedTypes,
        )
        return AcceptChat(
            participant,
            acceptTypes=(_CPIM,),
            acceptWrappedTypes=self.options.wrappedTypes,
            requiredTypes=(_CPIM,),
            chatroom=self.options.chatroomTokens,
            isfocus=self.options.isfocus,
            contactUser=room.name,
        )

    # -- IReferHandler (RFC 4579 section 5.5, RFC 7702 section 5.7) -----------

    def referReceived(self, refer: IncomingRefer) -> None:
        """
        Accept, report C{100 Trying} and end the implicit subscription at
        once; dial out with C{--dial-referred}.
        """
        room = self.roomFor(refer.request)
        if room is None:
            refer.reject(404)
            return
        refer.accept(self.options.referStatus, terminate=True)
        target = refer.referTo.uri
        self.emit("refer", room.name, str(target))
        if self.options.dialReferred and isinstance(target, SIPURI):
            self.dialOut(room, target)

    # -- dial-out (RFC 4579) ---------------------------------------------------

    def dialOut(self, room: Room, target: SIPURI) -> None:
        """
        Invite C{target} into the room: INVITE From the room URI with an
        C{isfocus} Contact and the room's MSRP offer.
        """
        assert self.ua is not None and self.initiator is not None
        kind = (
            TransportKind.TCP
            if (target.transport or "").lower() == "tcp"
            else TransportKind.UDP
        )
        participant = Participant(
            room, canonicalAOR(target), str(target), dialedOut=True
        )
        contact = self.ua.contactFor(
            kind,
            user=room.name,
            headerParameters=[("isfocus", None)] if self.options.isfocus else (),
        )
        d = self.initiator.startChat(
            target,
            NameAddr(SIPURI.fromString(room.uri)),
            participant,
            acceptTypes=(_CPIM,),
            acceptWrappedTypes=self.options.wrappedTypes,
            chatroom=self.options.chatroomTokens,
            contact=contact,
        )
        d.addErrback(_dialOutFailed)

    # -- control commands ------------------------------------------------------

    def command(self, line: str) -> None:
        """
        Run one control line (module docstring).
        """
        verb, _, rest = line.strip("\r\n").partition(" ")
        try:
            handler = getattr(self, "_command_" + verb.replace("-", "_"), None)
            if not verb or handler is None:
                raise ValueError(f"unknown command {verb!r}")
            handler(rest)
        except Exception as e:
            self.emit("error", text=f"{line.strip()}: {e}")

    @staticmethod
    def _fields(rest: str, count: int) -> tuple[list[str], str]:
        parts = rest.split(" ", count)
        if len(parts) < count:
            raise ValueError(f"expected {count} fields")
        return parts[:count], (parts[count] if len(parts) > count else "")

    def _command_subject(self, rest: str) -> None:
        (name,), text = self._fields(rest, 1)
        subject = decodeText(text)
        self.room(decodeField(name) or "").setSubject(subject or None)

    def _command_say(self, rest: str) -> None:
        (name, nick), text = self._fields(rest, 2)
        nickname = decodeField(nick)
        if not nickname:
            raise ValueError("no nickname")
        if not self.room(decodeField(name) or "").say(nickname, decodeText(text)):
            raise ValueError(f"{nickname} is a real participant's nickname")

    def _command_whisper(self, rest: str) -> None:
        (name, nick, to), text = self._fields(rest, 3)
        nickname, target = decodeField(nick), decodeField(to)
        if not nickname or not target:
            raise ValueError("no nickname")
        self.room(decodeField(name) or "").whisper(nickname, target, decodeText(text))

    def _command_leave(self, rest: str) -> None:
        (name, nick), _ = self._fields(rest, 2)
        room = self.room(decodeField(name) or "")
        holder = room.holder(decodeField(nick) or "")
        if holder is None or not holder.virtual:
            raise ValueError("no such virtual participant")
        holder.ended = True
        holder.disconnection = DisconnectionMethod.DEPARTED
        room.remove(holder, announce=True)

    def _command_kick(self, rest: str) -> None:
        parts = rest.split(" ")
        if len(parts) not in (2, 3):
            raise ValueError("kick ROOM NICK [CAUSE]")
        room = self.room(decodeField(parts[0]) or "")
        cause = int(parts[2]) if len(parts) == 3 else 403
        nickname = decodeField(parts[1]) or ""
        key = nicknameKey(nickname)
        victims = [
            p
            for p in room.participants
            if p.nickname is not None and nicknameKey(p.nickname) == key
        ]
        if not victims:
            raise ValueError(f"nobody called {nickname}")
        for victim in victims:
            victim.disconnection = DisconnectionMethod.BOOTED
            victim.disconnectionReason = _reasonText(
                ChatEnd(EndCause.LOCAL, cause, "Kicked")
            )
            if victim.virtual:
                victim.ended = True
                room.remove(victim, announce=True)
            else:
                self.hangUp(victim, cause, "Kicked")

    def _command_invite(self, rest: str) -> None:
        (name, uri), _ = self._fields(rest, 2)
        target = SIPURI.fromString(decodeField(uri) or "")
        self.dialOut(self.room(decodeField(name) or ""), target)

    def _command_shutdown(self, rest: str) -> None:
        self.shutdown().addBoth(lambda _: self._stopReactor())

    def _stopReactor(self) -> None:
        if self.reactor.running:
            self.reactor.stop()

    # -- ending ----------------------------------------------------------------

    def hangUp(self, participant: Participant, cause: int, text: str) -> Deferred[Any]:
        """
        BYE with C{Reason: SIP;cause=CAUSE;text="TEXT"} (RFC 3326).

        @return: Fires when the BYE is answered (or failed).
        """
        chat = participant.chat
        if chat is None or chat.ended:
            return succeed(None)
        dialog = chat.dialog
        if (
            chat.state is ChatState.READY
            and dialog is not None
            and dialog.state is not DialogState.TERMINATED
        ):
            reason = _reasonText(ChatEnd(EndCause.LOCAL, cause, text))
            assert reason is not None
            d: Deferred[Any] = dialog.bye([("Reason", reason)])
            return d.addErrback(lambda _: None)
        chat.end(text, cause)
        return succeed(None)

    def shutdown(self) -> Deferred[None]:
        """
        RFC 7701 section 5.3: BYE every session (Reason cause 503), end
        every conference subscription (C{terminated;reason=noresource}),
        wait (bounded) for the answers, close everything, emit C{shutdown}.
        """
        if self.stopped is not None:
            return self.stopped
        self.stopping = True
        waits: list[Deferred[Any]] = []
        for room in self.rooms.values():
            for participant in list(room.participants):
                if not participant.virtual:
                    waits.append(self.hangUp(participant, 503, "Shutdown"))
        for room in self.rooms.values():
            for subscription in list(room.notifier.subscriptions):
                d = subscription.terminate(SubscriptionReason.NORESOURCE)
                if d is not None:
                    waits.append(d.addErrback(lambda _: None))
        if self.events is not None:
            self.events.shutdown()
        done: Deferred[None] = Deferred()

        def finish(_: object = None) -> None:
            if not done.called:
                done.callback(None)

        timer = self.reactor.callLater(SHUTDOWN_GRACE, finish)
        DeferredList(waits).addBoth(finish)

        def close(_: object) -> Deferred[None]:
            if timer.active():
                timer.cancel()
            return self._close()

        self.stopped = done.addBoth(close)
        return self.stopped

    def _close(self) -> Deferred[None]:
        if self.ua is not None:
            self.ua.close()
        waits: list[Deferred[Any]] = []
        if self.endpoint is not None:
            self.endpoint.disconnectAll()
            waits.append(self.endpoint.stopListening())
        if self.transport is not None:
            waits.append(self.transport.stopListening())
        self.emit("shutdown")
        return DeferredList(waits).addBoth(lambda _: None)


def _dialOutFailed(reason: Failure) -> None:
    """
    A dial-out that failed was reported (C{invite-failed}) by its
    participant; anything else is a bug.
    """
    reason.trap(ChatSessionError)  # type: ignore[no-untyped-call]


# ---------------------------------------------------------------------------
# The program


def parseOptions(argv: Sequence[str]) -> FocusOptions:
    """
    The command line (module docstring).
    """
    parser = argparse.ArgumentParser(
        prog="python -m tests.interop.focus",
        description="RFC 7701 conference focus + MSRP switch for interop tests.",
    )
    parser.add_argument("--sip-port", type=int, default=0)
    parser.add_argument("--msrp-port", type=int, default=0)
    parser.add_argument("--domain", default=DEFAULT_DOMAIN)
    parser.add_argument("--no-nickname", action="store_true")
    parser.add_argument("--no-private-messages", action="store_true")
    parser.add_argument("--no-chatroom", action="store_true")
    parser.add_argument("--no-isfocus", action="store_true")
    parser.add_argument("--reserved", action="append", default=[])
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--from-style", choices=("gruu", "aor"), default="gruu")
    parser.add_argument("--user-entity", choices=("aor", "gruu"), default="aor")
    parser.add_argument("--wrapped-types", default=" ".join(DEFAULT_WRAPPED_TYPES))
    parser.add_argument("--refer-status", type=int, choices=(200, 202), default=202)
    parser.add_argument("--dial-referred", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(list(argv))
    return FocusOptions(
        sipPort=args.sip_port,
        msrpPort=args.msrp_port,
        domain=args.domain,
        nicknames=not args.no_nickname,
        privateMessages=not args.no_private_messages,
        chatroom=not args.no_chatroom,
        isfocus=not args.no_isfocus,
        reserved=tuple(args.reserved),
        history=args.history,
        fromStyle=args.from_style,
        userEntity=args.user_entity,
        wrappedTypes=tuple(args.wrapped_types.split()),
        referStatus=args.refer_status,
        dialReferred=args.dial_referred,
        verbose=args.verbose,
    )


def _writeStdout(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _readCommands(reactor: Any, focus: Focus) -> None:
    """
    Standard input, in a thread of its own (standard output stays a
    plain blocking file): each line to L{Focus.command}, end of input to
    C{shutdown}.
    """
    for line in sys.stdin:
        reactor.callFromThread(focus.command, line)
    reactor.callFromThread(focus.command, "shutdown")


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run the focus on the global reactor until C{shutdown}, end of input or
    SIGTERM.
    """
    from twisted.internet import reactor
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    options = parseOptions(sys.argv[1:] if argv is None else argv)
    level = LogLevel.info if options.verbose else LogLevel.warn
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=level)],
            )
        ],
        redirectStandardIO=False,
    )
    focus = Focus(reactor, options, _writeStdout)
    focus.start()
    reactor.addSystemEventTrigger("before", "shutdown", focus.shutdown)
    threading.Thread(target=_readCommands, args=(reactor, focus), daemon=True).start()
    reactor.run()
    sys.stdout.flush()
    os._exit(0)


# ---------------------------------------------------------------------------
# The runner for tests


class FocusProcess:
    """
    Runs C{python -m tests.interop.focus} as a child process: reads its
    events (a reader thread keeps every line), sends commands, and stops
    exactly the process it started, every wait bounded.

    @ivar arguments: Extra command-line options.
    @ivar sipPort: The SIP port (UDP and TCP), once started.
    @ivar msrpPort: The MSRP port, once started.
    @ivar domain: The room domain.
    @ivar process: The child, while it runs.
    """

    def __init__(
        self,
        arguments: Sequence[str] = (),
        *,
        domain: str = DEFAULT_DOMAIN,
        sipPort: int = 0,
        msrpPort: int = 0,
        directory: str | None = None,
    ) -> None:
        self.arguments = tuple(arguments)
        self.domain = domain
        self.sipPort = sipPort
        self.msrpPort = msrpPort
        self.directory = os.path.abspath(
            directory or tempfile.mkdtemp(prefix="stoxgw-focus-")
        )
        os.makedirs(self.directory, exist_ok=True)
        self.logPath = os.path.join(self.directory, "focus.stderr")
        self.process: subprocess.Popen[bytes] | None = None
        self.exitCode: int | None = None
        self._lines: list[str] = []
        self._condition = threading.Condition()
        self._reader: threading.Thread | None = None
        self._eof = False

    # -- addresses ---------------------------------------------------------------

    def roomURI(self, room: str) -> SIPURI:
        """
        C{sip:ROOM@DOMAIN}.
        """
        return SIPURI("sip", self.domain, room)

    def proxyURI(self, kind: TransportKind = TransportKind.TCP) -> SIPURI:
        """
        The focus as an outbound proxy/route (C{sip:127.0.0.1:P;lr}).
        """
        params: tuple[tuple[str, str | None], ...] = (("lr", None),)
        if kind is not TransportKind.UDP:
            params = (("transport", kind.uriParameter),) + params
        return SIPURI("sip", "127.0.0.1", port=self.sipPort, parameters=params)

    def directURI(self, room: str, kind: TransportKind = TransportKind.TCP) -> SIPURI:
        """
        C{sip:ROOM@127.0.0.1:P;transport=...}: the room addressed directly.
        """
        params: tuple[tuple[str, str | None], ...] = ()
        if kind is not TransportKind.UDP:
            params = (("transport", kind.uriParameter),)
        return SIPURI("sip", "127.0.0.1", room, port=self.sipPort, parameters=params)

    # -- life ----------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """
        Start the child and wait (bounded) for its C{ready} line.

        @raise RuntimeError: It exited or did not get ready in time.
        """
        if self.process is not None:
            raise RuntimeError("already started")
        env = dict(os.environ, PYTHONPATH=TOP, PYTHONUNBUFFERED="1")
        args = [
            sys.executable,
            "-m",
            "tests.interop.focus",
            "--sip-port",
            str(self.sipPort),
            "--msrp-port",
            str(self.msrpPort),
            "--domain",
            self.domain,
            *self.arguments,
        ]
        with open(self.logPath, "ab") as log:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=TOP,
                env=env,
            )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            line = self.waitFor("ready", timeout)
        except AssertionError as e:
            self.stop()
            raise RuntimeError(str(e)) from None
        _, sip, msrp = line.split(" ")
        self.sipPort, self.msrpPort = int(sip), int(msrp)

    def _read(self) -> None:
        process = self.process
        assert process is not None and process.stdout is not None
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._condition:
                self._lines.append(line)
                self._condition.notify_all()
        with self._condition:
            self._eof = True
            self._condition.notify_all()

    @property
    def running(self) -> bool:
        """
        Whether the child is alive.
        """
        return self.process is not None and self.process.poll() is None

    def send(self, line: str) -> None:
        """
        Send one raw command line.
        """
        process = self.process
        if process is None or process.stdin is None:
            raise RuntimeError("focus not running")
        process.stdin.write(line.encode("utf-8") + b"\n")
        process.stdin.flush()

    def command(self, verb: str, *fields: str | None, text: str | None = None) -> None:
        """
        Send a command, encoding its fields (L{formatLine}).
        """
        self.send(formatLine(verb, *fields, text=text))

    # -- events --------------------------------------------------------------------

    @property
    def events(self) -> list[str]:
        """
        Every event line so far.
        """
        with self._condition:
            return list(self._lines)

    def mark(self) -> int:
        """
        The number of events so far (a C{since} for L{waitFor}/L{whenEvent}).
        """
        with self._condition:
            return len(self._lines)

    @staticmethod
    def matches(line: str, pattern: str | re.Pattern[str]) -> bool:
        """
        Whether an event matches: a string matches the whole line or its
        beginning up to a space; a compiled pattern must match it fully.
        """
        if isinstance(pattern, re.Pattern):
            return pattern.fullmatch(line) is not None
        return line == pattern or line.startswith(pattern + " ")

    def find(self, pattern: str | re.Pattern[str], since: int = 0) -> str | None:
        """
        The first matching event at index C{since} or later, or L{None}.
        """
        with self._condition:
            for line in self._lines[since:]:
                if self.matches(line, pattern):
                    return line
        return None

    def waitFor(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, since: int = 0
    ) -> str:
        """
        Block until a matching event (L{matches}) arrives.

        @raise AssertionError: Not within C{timeout} seconds, or the child
            closed its output first.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            while True:
                for line in self._lines[since:]:
                    if self.matches(line, pattern):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._eof:
                    break
                self._condition.wait(min(remaining, 0.5))
        raise AssertionError(self.describe(f"no event {pattern!r} in {timeout} s"))

    def whenEvent(
        self,
        pattern: str | re.Pattern[str],
        timeout: float = 10.0,
        since: int = 0,
        reactor: Any = None,
    ) -> Deferred[str]:
        """
        Like L{waitFor} without blocking: polls on the reactor.

        @return: Fires with the line, or fails with L{AssertionError}.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        result: Deferred[str] = Deferred()
        deadline = time.monotonic() + timeout

        def poll() -> None:
            line = self.find(pattern, since)
            if line is not None:
                result.callback(line)
            elif time.monotonic() > deadline or self._eof:
                result.errback(
                    AssertionError(
                        self.describe(f"no event {pattern!r} in {timeout} s")
                    )
                )
            else:
                reactor.callLater(0.01, poll)

        poll()
        return result

    def stderr(self) -> str:
        """
        What the child logged.
        """
        try:
            with open(self.logPath, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def describe(self, problem: str) -> str:
        """
        A failure message with the events and the log.
        """
        return (
            f"{problem}\n--- focus events:\n"
            + "\n".join(self.events)
            + f"\n--- focus stderr:\n{self.stderr()[-4000:]}"
        )

    # -- stopping ------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> int | None:
        """
        Stop the child (blocking): SIGTERM to its PID (it says BYE and
        exits), SIGKILL if it is still there after C{timeout}.

        @return: Its exit status.
        """
        process, self.process = self.process, None
        if process is None:
            return self.exitCode
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        self._closePipes(process)
        self.exitCode = process.returncode
        return self.exitCode

    def kill(self, timeout: float = 10.0) -> int | None:
        """
        Kill the child hard (SIGKILL to its PID): no BYE, no NOTIFY; its
        SIP and MSRP connections drop as the kernel closes them.

        @return: Its exit status.
        """
        process, self.process = self.process, None
        if process is None:
            return self.exitCode
        if process.poll() is None:
            process.kill()
            process.wait(timeout)
        self._closePipes(process)
        self.exitCode = process.returncode
        return self.exitCode

    def shutdown(
        self, timeout: float = 10.0, reactor: Any = None
    ) -> Deferred[int | None]:
        """
        The C{shutdown} command without blocking (the reactor keeps running
        so that in-process peers can answer the BYEs and NOTIFYs); SIGKILL
        after C{timeout}.

        @return: Fires with the exit status.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        process = self.process
        result: Deferred[int | None] = Deferred()
        if process is None:
            result.callback(self.exitCode)
            return result
        try:
            self.send("shutdown")
        except (OSError, RuntimeError):
            pass
        deadline = time.monotonic() + timeout

        def poll() -> None:
            if process.poll() is None and time.monotonic() < deadline:
                reactor.callLater(0.02, poll)
                return
            if process.poll() is None:
                process.kill()
                process.wait(5)
            if self.process is process:
                self.process = None
            self._closePipes(process)
            self.exitCode = process.returncode
            result.callback(self.exitCode)

        poll()
        return result

    def _closePipes(self, process: subprocess.Popen[bytes]) -> None:
        """
        After the child exited: let the reader drain its output (bounded),
        then close the pipes.
        """
        if self._reader is not None:
            self._reader.join(2)
        for pipe in (process.stdin, process.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:
                pass


if __name__ == "__main__":
    main()
