"""Encounters → episodes: which Encounters make up one visit.

`Encounter.partOf` means two different things in real exports: a part of the
same stay (an ICU transfer, an admission continuing the ED visit it came
through) and a link to an earlier stay (a readmission pointing at the index
admission weeks before). Only the first is one visit. A sub-encounter therefore
joins its parent when their periods overlap or touch, within `gap`; otherwise
it stays a visit of its own and keeps the link (`Visit.linked_to`).

A joined episode takes the highest-acuity class of its parts (an ED visit that
became an admission is an inpatient visit), the union of their periods, and is
open when any part is still in progress without an end.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DEFAULT_EPISODE_GAP = timedelta(hours=6)
# v3-ActCode encounter classes, most acute first; unknown classes rank below all of these.
ACUITY = ("IMP", "ACUTE", "NONAC", "EMER", "OBSENC", "SS", "AMB", "HH", "FLD", "PRENC", "VR")
_RANK = {code: i for i, code in enumerate(ACUITY)}


@dataclass
class Episode:
    members: list                     # encounter records, the primary one first, then by start
    linked_to: str | None = None      # partOf target when it is a different episode
    start: datetime | None = None
    end: datetime | None = None
    open: bool = False

    @property
    def primary(self):
        return self.members[0]


def acuity(cls: str | None) -> int:
    return _RANK.get(cls or "", len(ACUITY))


def _same_episode(child, parent, gap: timedelta) -> bool | None:
    """Whether the periods overlap or touch (None when a start is missing: undecidable)."""
    if child.start is None or parent.start is None:
        return None
    parent_end = None if parent.open else (parent.end or parent.start)
    child_end = None if child.open else (child.end or child.start)
    child_starts_in_time = parent_end is None or child.start <= parent_end + gap
    parent_starts_in_time = child_end is None or parent.start <= child_end + gap
    return child_starts_in_time and parent_starts_in_time


def group_episodes(encounters: dict, report, gap: timedelta = DEFAULT_EPISODE_GAP) -> list[Episode]:
    """Episodes of all `encounters` (id → record with id, patient, start, end, open, cls, part_of)."""
    leader = {eid: eid for eid in encounters}

    def find(eid: str) -> str:
        while leader[eid] != eid:
            leader[eid] = leader[leader[eid]]
            eid = leader[eid]
        return eid

    links: dict[str, str] = {}
    for eid, enc in encounters.items():
        parent = encounters.get(enc.part_of) if enc.part_of else None
        if parent is None:
            if enc.part_of:
                report.note("Encounter.partOf naming an Encounter not in the data")
            continue
        if enc.patient and parent.patient and enc.patient != parent.patient:
            report.note("Encounter.partOf naming another patient's Encounter (not joined)")
            continue
        same = _same_episode(enc, parent, gap)
        if same is None:
            report.note("sub-encounters without a start joined to their partOf encounter")
        if same is False:
            links[eid] = parent.id
            report.note("Encounter.partOf links between separate visits (kept as Visit.linked_to)")
            continue
        leader[find(eid)] = find(parent.id)

    groups: dict[str, list] = {}
    for eid, enc in encounters.items():
        root = leader[eid]
        if root != eid:
            root = find(eid)
        group = groups.get(root)
        if group is None:
            groups[root] = [enc]
        else:
            group.append(enc)
    return [_episode(members, links) for members in groups.values()]


_LATEST = datetime.max.replace(tzinfo=timezone.utc)


def _episode(members: list, links: dict) -> Episode:
    if len(members) == 1:         # most encounters are a visit on their own
        only = members[0]
        return Episode(members, linked_to=links.get(only.id) if links else None, start=only.start,
                       end=only.end, open=bool(only.open))
    latest = _LATEST
    members.sort(key=lambda m: (m.start or latest, m.id))
    primary = min(members, key=lambda m: acuity(m.cls))      # ties: the earliest
    members.remove(primary)
    members.insert(0, primary)
    starts = [m.start for m in members if m.start is not None]
    is_open = any(m.open for m in members)
    if len(members) == 1:
        end = primary.end
    else:
        ends = [m.end or m.start for m in members if (m.end or m.start) is not None]
        end = None if is_open or not ends else max(ends)
    linked = next((links[m.id] for m in members if m.id in links), None)
    return Episode(members, linked_to=linked, start=min(starts) if starts else None, end=end, open=is_open)
