# -*- test-case-name: tests.rooms.test_model -*-
"""
Tests for L{stoxgw.rooms.model}: roster with RFC 7700 keys, events, diffs,
subject, bounded history and XEP-0045 section 7.2.15 history selection.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta, timezone

from twisted.trial.unittest import SynchronousTestCase

from stoxgw.rooms.model import (
    Affiliation,
    HistoryEntry,
    HistoryRequest,
    NickChanged,
    NickConflict,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantUpdated,
    RemovalReason,
    Role,
    Room,
    RoomSettings,
    Subject,
    SubjectChanged,
    UnknownParticipant,
    diffRoster,
    selectHistory,
)
from stoxgw.rooms.nicks import InvalidNickname

T0 = datetime(2015, 10, 15, 18, 0, 0, tzinfo=timezone.utc)


def entry(n: int, body: str = "") -> HistoryEntry:
    """
    History entry number C{n}, C{n} minutes after L{T0}.
    """
    return HistoryEntry(
        f"nick{n}", body or f"message {n}", T0 + timedelta(minutes=n), messageID=f"m{n}"
    )


class ValueTests(SynchronousTestCase):
    """
    The value types are frozen, slotted and checked.
    """

    def test_frozen(self) -> None:
        """
        Participants and entries cannot be changed in place.
        """
        participant = Participant("Romeo")
        self.assertRaises(FrozenInstanceError, setattr, participant, "nick", "x")
        self.assertFalse(hasattr(participant, "__dict__"))

    def test_defaults(self) -> None:
        """
        RFC 7702 section 5.4 (R-214): participant / none by default.
        """
        participant = Participant("Romeo")
        self.assertEqual(
            (participant.role, participant.affiliation),
            (Role.PARTICIPANT, Affiliation.NONE),
        )
        self.assertEqual(participant.key, "romeo")

    def test_awareTimestamps(self) -> None:
        """
        Times must be timezone-aware (XEP-0203 stamps are UTC; R-204).
        """
        self.assertRaises(ValueError, HistoryEntry, "a", "b", datetime(2015, 1, 1))
        self.assertRaises(ValueError, Subject, "s", None, datetime(2015, 1, 1))
        self.assertRaises(ValueError, HistoryRequest, since=datetime(2015, 1, 1))
        self.assertRaises(ValueError, HistoryRequest, maxStanzas=-1)
        self.assertRaises(ValueError, RoomSettings, historySize=-1)


class RosterTests(SynchronousTestCase):
    """
    L{Room}'s roster operations and the events they return.
    """

    def setUp(self) -> None:
        self.room = Room("montague@chat.example.org", "sip:montague@chat.example.org")

    def test_join(self) -> None:
        """
        Joining enforces the nick (RFC 7700) and returns the event.
        """
        event = self.room.join(Participant(" Romeo  Montague "))
        self.assertEqual(event, ParticipantJoined(Participant("Romeo Montague")))
        self.assertEqual(self.room.participants, (Participant("Romeo Montague"),))
        self.assertIn("romeo montague", self.room)
        self.assertEqual(self.room.get("ROMEO MONTAGUE"), Participant("Romeo Montague"))

    def test_joinConflict(self) -> None:
        """
        A nick equal under RFC 7700 comparison is taken (R-083, R-087).
        """
        self.room.join(Participant("JuliC"))
        e = self.assertRaises(
            NickConflict, self.room.join, Participant("\uff2a\uff55\uff4c\uff49\uff43")
        )
        self.assertEqual(e.nick, "Julic")

    def test_joinInvalid(self) -> None:
        """
        An invalid nick is refused.
        """
        self.assertRaises(InvalidNickname, self.room.join, Participant("  "))
        self.assertEqual(self.room.participants, ())
        self.assertIsNone(self.room.get("  "))
        self.assertNotIn(3, self.room)

    def test_leave(self) -> None:
        """
        Leaving returns the participant and the removal reason.
        """
        self.room.join(Participant("Romeo"))
        self.assertEqual(
            self.room.leave("romeo", RemovalReason.KICKED),
            ParticipantLeft(Participant("Romeo"), RemovalReason.KICKED),
        )
        self.assertRaises(UnknownParticipant, self.room.leave, "Romeo")

    def test_changeNick(self) -> None:
        """
        A nick change keeps the participant's place and other attributes;
        the old nick is free afterwards (RFC 7701 section 7.2, R-090).
        """
        self.room.join(Participant("Romeo", realAddress="romeo@example.com"))
        self.room.join(Participant("Juliet"))
        event = self.room.changeNick("Romeo", "montecchi")
        self.assertEqual(
            event,
            NickChanged(
                Participant("Romeo", realAddress="romeo@example.com"),
                Participant("montecchi", realAddress="romeo@example.com"),
            ),
        )
        self.assertEqual(
            [p.nick for p in self.room.participants], ["montecchi", "Juliet"]
        )
        self.room.join(Participant("Romeo"))

    def test_changeNickCase(self) -> None:
        """
        Changing only the case of one's own nick is no conflict.
        """
        self.room.join(Participant("romeo"))
        self.room.changeNick("romeo", "Romeo")
        self.assertEqual(self.room.get("ROMEO"), Participant("Romeo"))

    def test_changeNickConflict(self) -> None:
        """
        A failed change leaves the current nick in effect (R-090).
        """
        self.room.join(Participant("Romeo"))
        self.room.join(Participant("Juliet"))
        self.assertRaises(NickConflict, self.room.changeNick, "Romeo", "JULIET")
        self.assertRaises(UnknownParticipant, self.room.changeNick, "Tybalt", "x")
        self.assertEqual([p.nick for p in self.room.participants], ["Romeo", "Juliet"])

    def test_update(self) -> None:
        """
        An update replaces the participant and keeps the stored nick form.
        """
        self.room.join(Participant("Romeo"))
        event = self.room.update(Participant("ROMEO", show="away"))
        self.assertEqual(
            event,
            ParticipantUpdated(Participant("Romeo"), Participant("Romeo", show="away")),
        )
        self.assertRaises(UnknownParticipant, self.room.update, Participant("Tybalt"))

    def test_subject(self) -> None:
        """
        Setting the subject returns old and new.
        """
        subject = Subject("Today in Verona", "Romeo", T0)
        self.assertEqual(self.room.setSubject(subject), SubjectChanged(None, subject))
        self.assertEqual(self.room.subject, subject)

    def test_diffRoster(self) -> None:
        """
        A full roster becomes leaves, nick changes (same real address),
        updates and joins (SPEC C.1.1 step 12).
        """
        old = {
            "romeo": Participant("Romeo", realAddress="sip:romeo@example.com"),
            "juliet": Participant("Juliet"),
            "tybalt": Participant("Tybalt"),
        }
        events = diffRoster(
            old,
            [
                Participant("montecchi", realAddress="sip:romeo@example.com"),
                Participant("Juliet", show="away"),
                Participant("Mercutio"),
            ],
        )
        self.assertEqual(
            events,
            [
                NickChanged(
                    old["romeo"],
                    Participant("montecchi", realAddress="sip:romeo@example.com"),
                ),
                ParticipantLeft(old["tybalt"]),
                ParticipantUpdated(old["juliet"], Participant("Juliet", show="away")),
                ParticipantJoined(Participant("Mercutio")),
            ],
        )
        self.assertRaises(
            NickConflict, diffRoster, {}, [Participant("a"), Participant("A")]
        )

    def test_replaceRoster(self) -> None:
        """
        L{Room.replaceRoster} applies the diff.
        """
        self.room.join(Participant("Romeo", realAddress="r"))
        self.room.join(Participant("Tybalt"))
        events = self.room.replaceRoster(
            [Participant("montecchi", realAddress="r"), Participant("Nurse")]
        )
        self.assertEqual(len(events), 3)
        self.assertEqual(
            [p.nick for p in self.room.participants], ["montecchi", "Nurse"]
        )


class HistoryTests(SynchronousTestCase):
    """
    Bounded history and its selection (XEP-0045 section 7.2.15; R-195).
    """

    def test_bounded(self) -> None:
        """
        The room keeps the last C{historySize} entries.
        """
        room = Room("r@h", settings=RoomSettings(historySize=3))
        for n in range(5):
            room.record(entry(n))
        self.assertEqual(room.history, (entry(2), entry(3), entry(4)))
        empty = Room("r@h", settings=RoomSettings(historySize=0))
        empty.record(entry(1))
        self.assertEqual(empty.history, ())

    def test_noLimits(self) -> None:
        """
        Without a request everything kept is sent, oldest first.
        """
        entries = [entry(n) for n in range(3)]
        self.assertEqual(selectHistory(entries, None, T0), entries)
        self.assertEqual(selectHistory(entries, HistoryRequest(), T0), entries)

    def test_maxStanzas(self) -> None:
        """
        C{maxstanzas} keeps the newest ones; 0 sends none.
        """
        entries = [entry(n) for n in range(5)]
        self.assertEqual(
            selectHistory(entries, HistoryRequest(maxStanzas=2), T0), entries[3:]
        )
        self.assertEqual(selectHistory(entries, HistoryRequest(maxStanzas=0), T0), [])
        self.assertEqual(
            selectHistory(entries, HistoryRequest(maxStanzas=9), T0), entries
        )

    def test_maxChars(self) -> None:
        """
        C{maxchars} bounds the total size as measured; 0 sends none.
        """
        entries = [entry(n, "x" * 10) for n in range(5)]
        self.assertEqual(
            selectHistory(entries, HistoryRequest(maxChars=25), T0), entries[3:]
        )
        self.assertEqual(selectHistory(entries, HistoryRequest(maxChars=0), T0), [])
        self.assertEqual(
            selectHistory(entries, HistoryRequest(maxChars=25), T0, size=lambda e: 100),
            [],
        )

    def test_secondsAndSince(self) -> None:
        """
        C{seconds} and C{since} drop older entries; all limits apply.
        """
        entries = [entry(n) for n in range(10)]
        now = T0 + timedelta(minutes=10)
        self.assertEqual(
            selectHistory(entries, HistoryRequest(seconds=180), now), entries[7:]
        )
        since = T0 + timedelta(minutes=5)
        self.assertEqual(
            selectHistory(entries, HistoryRequest(since=since), now), entries[6:]
        )
        both = HistoryRequest(since=since, maxStanzas=2, seconds=600)
        self.assertEqual(selectHistory(entries, both, now), entries[8:])

    def test_roomSelect(self) -> None:
        """
        L{Room.selectHistory} selects from the kept history.
        """
        room = Room("r@h")
        for n in range(4):
            room.record(entry(n))
        self.assertEqual(
            room.selectHistory(HistoryRequest(maxStanzas=1), T0), [entry(3)]
        )
