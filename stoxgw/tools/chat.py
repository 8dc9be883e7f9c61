# -*- test-case-name: tests.tools.test_chat,tests.interop.test_chat_client -*-
"""
C{stoxgw-chat}: a small command-line SIP/MSRP chat client.

It joins one chat room (a SIP conference focus such as the gateway's
RFC 7702 section 6 side) as a SIP/MSRP user: INVITE with an MSRP offer
(RFC 4975 section 8, C{accept-types: message/cpim text/plain},
RFC 7701 C{a=chatroom:nickname private-messages}), then reads lines from
standard input and sends each as a C{message/cpim} (RFC 3862) wrapping
C{text/plain}.  C{/nick NAME} sends an RFC 7701 NICKNAME; C{/quit} or the
end of input hangs up with BYE; C{//text} sends C{/text}.  Lines are sent
one after the other, each once the previous one is answered.

Status lines go to standard output, one per event, in fixed formats that
the demo, the documentation and the tests parse::

    joined sip:room@host          the session is ready
    failed: 486 Busy Here         joining failed (exit status 1)
    nickname Alice: 200           the NICKNAME response (or the error code)
    echo hello                    a received message: sender, text
    [12:00:00] echo hello         a history message (DateTime before we
                                  started), with its time of day
    not sent: 413 Too large       a message was refused
    ended: remote BYE             the far end ended the session

The exit status is 0 after C{/quit}, end of input or a remote BYE, 1 when
joining fails or the session fails, 2 for bad options.  Warnings and
errors are logged to standard error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any

from twisted.internet.defer import (
    Deferred,
    TimeoutError as DeferredTimeoutError,
    succeed,
)
from twisted.internet.error import TimeoutError as InternetTimeoutError
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.internet.protocol import connectionDone
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    Logger,
    globalLogBeginner,
    textFileLogObserver,
)
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from stoxgw.chat.session import (
    ChatEnd,
    ChatInitiator,
    ChatSession,
    ChatSessionError,
    ChatSettings,
    EndCause,
    IChatSessionHandler,
)
from stoxgw.formats.cpim import (
    CPIM_CONTENT_TYPE,
    CPIMAddress,
    CPIMError,
    CPIMMessage,
    MediaType,
)
from stoxgw.msrp.endpoint import MSRPEndpoint
from stoxgw.msrp.session import IncomingMessage, MSRPSendError
from stoxgw.sip.transport import SIPTransport, TransportKind
from stoxgw.sip.uri import NameAddr
from stoxgw.sip.useragent import SIPTrust, SIPUserAgent, UserAgentSettings
from stoxgw.tools.chatoptions import DEFAULT_USER, ClientOptions, parseOptions

#: What we accept (RFC 7702 section 5.1, example F2).
ACCEPT_TYPES = ("message/cpim", "text/plain")

#: The C{a=chatroom} tokens we offer (RFC 7701 section 8).
CHATROOM = ("nickname", "private-messages")

#: Seconds to wait, when leaving, for the BYE's response and for standard
#: output to drain.
LEAVE_TIMEOUT = 5.0

#: How much older than the start of joining a CPIM DateTime must be to count
#: as history: DateTimes are often whole seconds, and clocks differ a little.
HISTORY_SLACK = timedelta(seconds=2)


def buildMessage(
    text: str, fromAddress: CPIMAddress, toAddress: CPIMAddress, now: datetime
) -> bytes:
    """
    One line of input as a C{message/cpim} body (RFC 3862, RFC 7701
    section 5.2): From us, To the room, DateTime now, wrapping
    C{text/plain; charset=utf-8}.

    @param now: An aware datetime (sent to the second).
    """
    return CPIMMessage.build(
        contentType="text/plain; charset=utf-8",
        body=text.encode("utf-8"),
        fromAddress=fromAddress,
        toAddresses=[toAddress],
        dateTime=now.replace(microsecond=0),
    ).toBytes()


def _text(mediaType: MediaType, body: bytes) -> str | None:
    """
    The text of a C{text/*} body (its charset, else UTF-8), or L{None}
    for other types.
    """
    if mediaType.type.lower() != "text":
        return None
    charset = mediaType.parameter("charset") or "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def formatMessage(
    contentType: str,
    body: bytes,
    *,
    defaultSender: str,
    since: datetime,
    zone: tzinfo | None = None,
) -> str | None:
    """
    The output line for a received message: C{<sender> <text>}, or
    C{[HH:MM:SS] <sender> <text>} for history (a CPIM C{DateTime} before
    C{since}, shown in C{zone}).

    The sender is the C{gr} parameter of the CPIM C{From} URI (the nick in
    RFC 7702 addresses), else that URI; C{defaultSender} for plain text.

    @param since: When we started joining.
    @param zone: The time zone of history times (default: local time).
    @return: The line, or L{None} for a message without text (e.g. an
        RFC 3994 isComposing).
    @raise CPIMError: A malformed C{message/cpim} body.
    """
    mediaType = MediaType.parse(contentType)
    sender = defaultSender
    stamp = ""
    if mediaType.mimeType == CPIM_CONTENT_TYPE:
        message = CPIMMessage.parse(body)
        text = _text(message.contentType, message.body)
        fromAddress = message.fromAddress
        if fromAddress is not None:
            sender = fromAddress.gruu or fromAddress.uri
        dateTime = message.dateTime
        if dateTime is not None and dateTime < since - HISTORY_SLACK:
            stamp = f"[{dateTime.astimezone(zone):%H:%M:%S}] "
    else:
        text = _text(mediaType, body)
    if text is None:
        return None
    text = text.replace("\r\n", "\n").rstrip("\n")
    return f"{stamp}{sender} {text}"


def formatFailure(reason: Failure) -> str:
    """
    The C{failed:} line for a failed join: C{failed: <status> <reason>}
    (408 for our own C{--timeout}); the end cause stands in for a status
    when the failure was local.
    """
    error = reason.value
    if isinstance(error, (DeferredTimeoutError, InternetTimeoutError)):
        return "failed: 408 Request Timeout"
    if isinstance(error, ChatSessionError):
        end = error.end
        if end.status is not None:
            return f"failed: {end.status} {end.text or end.cause.value}".rstrip()
        detail = f": {end.text}" if end.text else ""
        return f"failed: {end.cause.value}{detail}"
    return f"failed: {reason.getErrorMessage() or type(reason.value).__name__}"


def formatEnd(end: ChatEnd) -> str:
    """
    The C{ended:} line: the cause, with the SIP status and a detail if
    any (C{ended: remote BYE}, C{ended: MSRP session failed 503: ...}).
    """
    status = f" {end.status}" if end.status is not None else ""
    detail = f": {end.text}" if end.text and end.text != end.cause.value else ""
    return f"ended: {end.cause.value}{status}{detail}"


def parseCommand(line: str) -> tuple[str, str]:
    """
    An input line as C{(command, argument)}: C{("nick", NAME)},
    C{("quit", "")}, or C{("say", text)} (C{//text} sends C{/text}).
    """
    if line.startswith("//"):
        return "say", line[1:]
    if line.startswith("/nick ") and line[6:].strip():
        return "nick", line[6:].strip()
    if line.strip() == "/quit":
        return "quit", ""
    return "say", line


@implementer(IChatSessionHandler)
class ChatClient:
    """
    The client's chat session handler and command loop.

    @ivar options: The command line.
    @ivar output: Writes one status line.
    @ivar clock: Time source (DateTime of sent messages, bounded waits).
    @ivar session: The chat session once joined.
    @ivar startedAt: When joining started (older DateTimes are history).
    @ivar done: Fires with the exit status.
    """

    _log = Logger()

    def __init__(
        self,
        options: ClientOptions,
        output: Callable[[str], None],
        clock: Any,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.options = options
        self.output = output
        self.clock = clock
        self.now = now
        self.session: ChatSession | None = None
        self.startedAt = now()
        self.done: Deferred[int] = Deferred()
        self._pending: Deferred[None] = succeed(None)
        self._leaving = False
        self._joined = False
        self.fromAddress = CPIMAddress(str(options.fromURI), options.name)
        self.toAddress = CPIMAddress(str(options.target))

    # -- joining -------------------------------------------------------------

    def join(self, initiator: ChatInitiator) -> Deferred[None]:
        """
        INVITE the room; print C{joined} or C{failed:}; then set the
        nickname if asked.

        @return: Fires once joined (and the nickname answered), or fails
            with the reason joining failed (already printed, C{done} fired
            with 1).
        """
        self.startedAt = self.now()
        starting = initiator.startChat(
            self.options.inviteTarget,
            NameAddr(self.options.fromURI, self.options.name),
            self,
            acceptTypes=ACCEPT_TYPES,
            chatroom=CHATROOM,
        )
        starting.addTimeout(self.options.timeout, self.clock)

        def joined(session: ChatSession) -> Deferred[None] | None:
            self.session = session
            self._joined = True
            self.output(f"joined {self.options.target}")
            if self.options.nick is not None:
                return self._nickname(self.options.nick)
            return None

        def failed(reason: Failure) -> Failure:
            self.output(formatFailure(reason))
            self._finish(1)
            return reason

        result: Deferred[None] = starting.addCallbacks(joined, failed)
        return result

    # -- commands ------------------------------------------------------------

    def lineReceived(self, line: str) -> None:
        """
        A line of input: queue its command behind the previous ones.
        """
        if self._leaving:
            return
        command, argument = parseCommand(line)
        if command == "quit":
            self.leave()
        elif command == "nick":
            self._queue(lambda: self._nickname(argument))
        else:
            self._queue(lambda: self._say(argument))

    def inputEnded(self) -> None:
        """
        End of input: leave once the queued commands are done.
        """
        self.leave()

    def _queue(self, action: Callable[[], Deferred[None]]) -> None:
        """
        Run C{action} after the previous commands (so messages go out in
        order and their results print in order).
        """
        self._pending.addCallback(lambda _: action())
        self._pending.addErrback(
            lambda reason: self._log.failure("Command failed", reason)
        )

    def _say(self, text: str) -> Deferred[None]:
        """
        Send one line as CPIM; print C{not sent:} if refused.
        """
        session = self.session
        if session is None or session.ended:
            return succeed(None)
        body = buildMessage(text, self.fromAddress, self.toAddress, self.now())
        sending = session.sendMessage(CPIM_CONTENT_TYPE, body)

        def refused(reason: Failure) -> None:
            error = reason.value
            if isinstance(error, MSRPSendError):
                self.output(f"not sent: {error.code} {error.reason}")
            else:
                self.output(f"not sent: {reason.getErrorMessage()}")

        return sending.addCallbacks(lambda _: None, refused)

    def _nickname(self, nickname: str) -> Deferred[None]:
        """
        Send NICKNAME; print C{nickname <nick>: <code>}.
        """
        session = self.session
        if session is None or session.ended:
            return succeed(None)

        def answered(code: int) -> None:
            self.output(f"nickname {nickname}: {code}")

        def refused(reason: Failure) -> None:
            error = reason.value
            code = error.code if isinstance(error, MSRPSendError) else 500
            self.output(f"nickname {nickname}: {code}")

        return session.sendNickname(nickname).addCallbacks(answered, refused)

    def leave(self) -> None:
        """
        After the queued commands: BYE, wait for its response (bounded),
        exit 0.
        """
        if self._leaving:
            return
        self._leaving = True

        def bye(_: object) -> Deferred[None] | None:
            session = self.session
            if session is None or session.ended:
                self._finish(0)
                return None
            dialog = session.dialog
            if dialog is None:
                session.end()
                self._finish(0)
                return None
            # Our own BYE (rather than session.end()) so that we can wait
            # for its response before exiting; the session hears the
            # dialog end and closes MSRP.
            answered = dialog.bye()
            answered.addTimeout(LEAVE_TIMEOUT, self.clock)

            def finished(result: object) -> None:
                self._finish(0)

            return answered.addBoth(finished)

        self._pending.addCallback(bye)

    def _finish(self, status: int) -> None:
        """
        Report the exit status (once).
        """
        if not self.done.called:
            self.done.callback(status)

    # -- IChatSessionHandler -----------------------------------------------

    def chatStarted(self, session: ChatSession) -> None:
        """
        Nothing to do before the INVITE goes out.
        """

    def messageReceived(self, session: ChatSession, message: IncomingMessage) -> Any:
        """
        Print a message (400 for malformed CPIM).
        """
        try:
            line = formatMessage(
                message.contentType,
                message.body,
                defaultSender=str(self.options.target),
                since=self.startedAt,
            )
        except (CPIMError, ValueError) as e:
            self._log.warn("Malformed message: {error}", error=str(e))
            return 400
        if line is not None:
            self.output(line)
        return 200

    def nicknameRequested(self, session: ChatSession, nickname: str) -> Any:
        """
        Only a focus takes NICKNAME (RFC 7701 section 7.1).
        """
        return 501

    def chatEnded(self, session: ChatSession, reason: ChatEnd) -> None:
        """
        Print C{ended:} when the far end or a failure ended a joined
        session; exit 0 for a remote BYE, 1 otherwise.
        """
        if not self._joined or self._leaving:
            return
        self.output(formatEnd(reason))
        self._finish(0 if reason.cause is EndCause.REMOTE_BYE else 1)


@implementer(IHalfCloseableProtocol)
class InputLines(LineReceiver):
    """
    Standard input and output: lines in go to the client, status lines
    out go to standard output as they happen.
    """

    delimiter = b"\n"

    def __init__(self) -> None:
        self.client: ChatClient | None = None
        self._early: list[str] = []
        self._ended = False
        self.closed: Deferred[None] = Deferred()

    def attach(self, client: ChatClient) -> None:
        """
        Hand input to C{client} from now on (lines typed earlier first).
        """
        self.client = client
        early, self._early = self._early, []
        for line in early:
            client.lineReceived(line)
        if self._ended:
            client.inputEnded()

    def writeLine(self, line: str) -> None:
        """
        Write one status line.
        """
        if self.transport is not None:
            self.transport.write(line.encode("utf-8", errors="replace") + b"\n")

    def lineReceived(self, line: bytes) -> None:
        text = line.decode("utf-8", errors="replace").rstrip("\r")
        if self.client is None:
            self._early.append(text)
        else:
            self.client.lineReceived(text)

    def readConnectionLost(self) -> None:
        """
        End of input.
        """
        self._ended = True
        if self.client is not None:
            self.client.inputEnded()

    def writeConnectionLost(self) -> None:
        """
        Standard output closed: nothing more to say.
        """

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Standard input and output are closed (after L{run} let go).
        """
        if not self.closed.called:
            self.closed.callback(None)


async def run(reactor: Any, options: ClientOptions) -> int:
    """
    Join, chat, leave; tear everything down.

    @return: The exit status.
    """
    from twisted.internet.stdio import StandardIO

    io = InputLines()
    stdio = StandardIO(io, reactor=reactor)  # type: ignore[no-untyped-call]
    transport = SIPTransport(reactor, options.localIP)
    endpoint: MSRPEndpoint | None = None
    ua: SIPUserAgent | None = None
    try:
        if options.transport is TransportKind.TCP:
            transport.listenTCP(options.sipPort)
        else:
            transport.listenUDP(options.sipPort)
        ua = SIPUserAgent(
            reactor,
            transport,
            settings=UserAgentSettings(
                contactUser=options.fromURI.user or DEFAULT_USER,
                userAgent="stoxgw-chat",
                outboundProxy=options.proxyURI,
            ),
            admission=SIPTrust.fromStrings(options.trust),
        )
        # Interrupted (SIGINT, SIGTERM): still say BYE.
        reactor.addSystemEventTrigger("before", "shutdown", ua.shutdown)
        endpoint = MSRPEndpoint(reactor, options.localIP, options.msrpPort)
        endpoint.startListening()
        client = ChatClient(options, io.writeLine, reactor)
        initiator = ChatInitiator(
            ua, endpoint, reactor, ChatSettings(connectTimeout=options.timeout)
        )
        joining = client.join(initiator)
        joining.addCallbacks(lambda _: io.attach(client), lambda _: None)
        status = await client.done
    except Exception as e:
        io.writeLine(f"failed: {e}")
        status = 1
    finally:
        if ua is not None:
            ua.close()
        if endpoint is not None:
            endpoint.disconnectAll()
            await endpoint.stopListening()
        await transport.stopListening()
        stdio.loseConnection()  # type: ignore[no-untyped-call]
        closing = io.closed
        closing.addTimeout(LEAVE_TIMEOUT, reactor)
        closing.addErrback(lambda _: None)
        await closing
    return status


def _startLogging() -> None:
    """
    Warnings and errors to standard error.
    """
    observer = FilteringLogObserver(
        textFileLogObserver(sys.stderr),
        [LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)],
    )
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


def main(argv: Sequence[str] | None = None) -> None:
    """
    Entry point of C{stoxgw-chat}: parse options, run on the global
    reactor, exit with the status.
    """
    from twisted.internet.task import react

    options = parseOptions(sys.argv[1:] if argv is None else argv)
    _startLogging()

    async def _main(reactor: Any) -> None:
        status = await run(reactor, options)
        if status:
            raise SystemExit(status)

    react(_main)


if __name__ == "__main__":
    main()
