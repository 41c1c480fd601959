"""Body maps: marks seen on a child, placed on a front and a back outline.

A mark has a side (front or back), a position on that figure (in the figure's own
coordinates, `WIDTH` × `HEIGHT`: from a click or the keyboard on the figure, or the
centre of a named region for anyone not using the figure), a type, an approximate size
and a note. A body map's marks are stored together, encrypted with the data key, and a
body map never changes: a later one is a new body map. `read_marks` is the one place
they are decrypted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from store import keyring
from store.crypto import Cipher, bind
from store.models import BodyMap

WIDTH, HEIGHT = 200, 400
SIDES = ("front", "back")
TYPES = ("bruise", "cut", "burn", "scratch", "bite", "swelling", "other")
SIZES = ("under 1 cm", "1 to 2 cm", "2 to 5 cm", "over 5 cm")
NOTE_MAX = 300
MARKS_MAX = 12  # rows on the form
# Named regions (the child's left and right), and where each sits on the front figure
# (the child facing the viewer: their right on the viewer's left); mirrored on the back.
REGIONS: dict[str, tuple[int, int]] = {
    "head": (100, 38),
    "face": (100, 44),
    "neck": (100, 78),
    "right shoulder": (64, 96),
    "left shoulder": (136, 96),
    "chest or upper back": (100, 120),
    "tummy or lower back": (100, 170),
    "right upper arm": (50, 130),
    "left upper arm": (150, 130),
    "right forearm or wrist": (38, 185),
    "left forearm or wrist": (162, 185),
    "right hand": (32, 222),
    "left hand": (168, 222),
    "bottom or groin": (100, 212),
    "right thigh": (82, 255),
    "left thigh": (118, 255),
    "right knee": (82, 292),
    "left knee": (118, 292),
    "right lower leg": (82, 330),
    "left lower leg": (118, 330),
    "right foot": (80, 380),
    "left foot": (120, 380),
}
GUIDANCE = (
    "Record what you have seen or what the child has shown you. Do not examine the "
    "child, ask them to remove clothing, or photograph their injuries. Write the child's "
    "own words in the note if they said anything."
)


@dataclass(frozen=True)
class Mark:
    side: str
    x: int
    y: int
    type: str
    size: str
    note: str
    region: str = ""  # the named region, when placed by name rather than on the figure


class InvalidBodyMap(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


def _coordinate(raw: str, limit: int) -> int | None:
    try:
        value = round(float(raw))
    except ValueError:
        return None
    return value if 0 <= value <= limit else None


def parse_marks(rows: list[Mapping[str, str]]) -> list[Mark]:
    """The marks of a form's rows (a row counts once a type is chosen); `InvalidBodyMap`
    names each field at fault, as `mark-N-field`."""
    marks: list[Mark] = []
    errors: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        kind = row.get("type", "").strip()
        if not kind:
            continue
        field = f"mark-{number}"
        if kind not in TYPES:
            errors[f"{field}-type"] = "Choose a type."
        side = row.get("side", "").strip()
        if side not in SIDES:
            errors[f"{field}-side"] = "Choose front or back."
        size = row.get("size", "").strip()
        if size not in SIZES:
            errors[f"{field}-size"] = "Choose an approximate size."
        note = row.get("note", "").strip()
        if len(note) > NOTE_MAX:
            errors[f"{field}-note"] = f"At most {NOTE_MAX} characters."
        region = row.get("region", "").strip()
        x = _coordinate(row.get("x", ""), WIDTH)
        y = _coordinate(row.get("y", ""), HEIGHT)
        if region in REGIONS and (x is None or y is None):
            x, y = REGIONS[region]
            if side == "back":  # seen from behind, the child's left is on the viewer's left
                x = WIDTH - x
        elif region not in REGIONS:
            region = ""
        if x is None or y is None:
            errors[f"{field}-region"] = "Place the mark on the figure or choose where it is."
            continue
        marks.append(Mark(side, x, y, kind, size, note, region))
    if not marks and not errors:
        errors["marks"] = "Place at least one mark."
    if errors:
        raise InvalidBodyMap(errors)
    return marks


async def add(
    session: AsyncSession,
    *,
    cipher: Cipher,
    incident_id: int,
    workspace_id: int,
    author_id: int,
    marks: list[Mark],
) -> BodyMap:
    """Store a body map (its marks encrypted together)."""
    body = json.dumps([asdict(m) for m in marks], ensure_ascii=False)
    row = BodyMap(
        workspace_id=workspace_id,
        incident_id=incident_id,
        author_id=author_id,
    )
    await keyring.seal(session, cipher, row, {BodyMap.marks_ct: body})
    return row


@dataclass(frozen=True)
class BodyMapView:
    id: int
    author: str
    created_at: dt.datetime
    marks: list[Mark]

    def on(self, side: str) -> list[tuple[int, Mark]]:
        """The marks on one side, with their numbers in the list."""
        return [(n, m) for n, m in enumerate(self.marks, start=1) if m.side == side]


def read_marks(cipher: Cipher, row: BodyMap) -> list[Mark]:
    return [
        Mark(**mark)
        for mark in json.loads(cipher.decrypt(row.marks_ct, bind(BodyMap.marks_ct, row.id)))
    ]


async def body_maps_of(
    session: AsyncSession, *, incident_id: int, cipher: Cipher
) -> list[BodyMapView]:
    """An incident's body maps, oldest first, marks decrypted."""
    rows = await session.scalars(
        select(BodyMap)
        .where(BodyMap.incident_id == incident_id)
        .order_by(BodyMap.created_at, BodyMap.id)
    )
    return [BodyMapView(r.id, r.author.name, r.created_at, read_marks(cipher, r)) for r in rows]


async def body_maps_of_incidents(
    session: AsyncSession, *, incident_ids: list[int], cipher: Cipher
) -> list[tuple[int, BodyMapView]]:
    """The body maps of these incidents (with each one's incident id), oldest first."""
    if not incident_ids:
        return []
    rows = await session.scalars(
        select(BodyMap)
        .where(BodyMap.incident_id.in_(incident_ids))
        .order_by(BodyMap.created_at, BodyMap.id)
    )
    return [
        (r.incident_id, BodyMapView(r.id, r.author.name, r.created_at, read_marks(cipher, r)))
        for r in rows
    ]
