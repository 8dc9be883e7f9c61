"""
Fuzz L{stoxgw.formats.conferenceinfo.ConferenceInfo.parse}: the RFC 4575
C{application/conference-info+xml} documents of a focus's NOTIFYs (the MUC
roster of an XMPP user in a SIP room, RFC 7702 section 5), and what the
subscriber does with them: L{applyNotification} (RFC 4575 section 4.6) on
the full state of a fixture, and L{diff} between two states.

Clean rejection: L{ConferenceInfoError}; C{ValueError} from
L{applyNotification} only for the cases it documents (no version, another
conference).  A parsed document with a version serializes and parses back
to an equal one; so do the merged state and the diff.

Seeds: the RFC 4575 and RFC 7702 documents of C{tests/fixtures/formats}.
"""

from __future__ import annotations

import atheris

from _harness import fixtures, main

with atheris.instrument_imports(include=["stoxgw"]):
    from stoxgw.formats.conferenceinfo import (
        ConferenceInfo,
        ConferenceInfoError,
        ElementState,
        MergeOutcome,
        applyNotification,
        diff,
    )


def roundTrip(document: ConferenceInfo) -> None:
    """
    Serialize and parse back.  What C{toBytes} refuses (no version, a full
    document without description or users, a timestamp without offset,
    text XML cannot carry) never comes out of the parser, apart from the
    version, which only a received document must have.
    """
    if document.version is None:
        return
    data = document.toBytes()
    again = ConferenceInfo.parse(data)
    assert again == document, (document, again)


_STATES: list[ConferenceInfo] = []


def states() -> list[ConferenceInfo]:
    """
    The full states of the fixtures (what a subscriber holds).
    """
    if not _STATES:
        for data in seeds():
            try:
                info = ConferenceInfo.parse(data)
            except ConferenceInfoError:
                # The uncorrected RFC 7702 examples.
                continue
            if info.state is ElementState.FULL:
                _STATES.append(info)
    return _STATES


def testOneInput(data: bytes) -> None:
    """
    Parse; apply to the fixtures' full states; diff; round-trip all.
    """
    try:
        document = ConferenceInfo.parse(data)
    except ConferenceInfoError:
        return
    document.userList
    for user in document.userList:
        document.findUser(user.entity)
    roundTrip(document)
    for current in [None, *states()]:
        if current is not None and current.entity != document.entity:
            current = ConferenceInfo(
                entity=document.entity,
                version=current.version,
                state=current.state,
                description=current.description,
                users=current.users,
            )
        try:
            result = applyNotification(current, document)
        except ValueError:
            assert document.version is None
            continue
        if result.outcome is MergeOutcome.APPLIED:
            assert result.state is not None
            roundTrip(result.state)
            if current is not None:
                change = diff(current, result.state)
                if change is not None:
                    roundTrip(change)


def seeds() -> list[bytes]:
    """
    The conference-info fixtures.
    """
    return [data for data in fixtures("formats/*.xml") if b"conference-info" in data]


if __name__ == "__main__":
    main(testOneInput, seeds)
