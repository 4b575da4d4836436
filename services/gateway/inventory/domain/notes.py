"""Device notes: what the probes said about a device besides facts ("snmp: no answer").

A note is the collector's sentence about one probe on one host: the probe could not run,
got no answer, or failed ("icmp: not permitted", "dns: the resolver did not answer in
time"). Its *source* is the probe named before the first colon ("snmp", "dns"); a note
without one belongs to the source "" (general).

Notes are not history. They are the newest findings per source, each with the time the
device was observed and the job run: an observation replaces the stored notes of every
source it names, and of every probe its run ran (a probe that ran and said nothing has no
complaint any more: "snmp: no answer" goes once SNMP answers). A source the run did not
probe keeps its note. A second report of a device in the same run (a fragment) only
replaces the sources it names. When the probes a run ran are unknown, only named sources
are replaced.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

MAX_SOURCE_CHARS = 64


@dataclass(frozen=True)
class DeviceNote:
    source: str
    text: str
    noted_at: datetime
    job_run_id: str


@dataclass(frozen=True)
class NotesUpdate:
    """For one device: drop the stored notes of `replaced` sources, then store `notes`."""

    device_id: str
    replaced: frozenset[str]
    notes: tuple[DeviceNote, ...]


def note_source(text: str) -> str:
    """'snmp' for 'snmp: no answer'; '' for a note that names no probe."""
    head, colon, _ = text.partition(":")
    head = head.strip().lower()
    if not colon or not head or len(head) > MAX_SOURCE_CHARS or " " in head:
        return ""
    return head


def notes_update(
    device_id: str,
    notes: Collection[str],
    *,
    at: datetime,
    job_run_id: str,
    probes: Collection[str] | None,
    same_run: bool,
) -> NotesUpdate | None:
    """What one observation does to its device's notes (see the module docstring); None: nothing."""
    kept = tuple(dict.fromkeys(text for text in notes if text))
    named = {note_source(text) for text in kept}
    replaced = set(named)
    if probes is not None and not same_run:
        replaced |= set(probes)
    if not replaced and not kept:
        return None
    return NotesUpdate(
        device_id,
        frozenset(replaced),
        tuple(DeviceNote(note_source(text), text, at, job_run_id) for text in kept),
    )
