"""A small fictional school for the demo, the tests, the privacy drill and the benchmarks.

Every name here is invented. Rosters are produced as CSV text in the contract format, so
the demo exercises the same importer a school uses.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from dataclasses import dataclass

from store.roster import PUPIL_OPTIONAL, PUPIL_REQUIRED

TEAM_ID = "T0LARKSPUR"
TEAM_NAME = "Larkspur Primary School"


@dataclass(frozen=True)
class DemoStaff:
    slack_user_id: str
    email: str
    name: str
    roles: str
    classes: str = ""


STAFF = (
    DemoStaff("U0DSL0HUGH", "a.hughes@larkspur.example", "Alys Hughes", "dsl;slt"),
    DemoStaff("U0DDSLOKAF", "b.okafor@larkspur.example", "Ben Okafor", "keyholder;slt"),
    DemoStaff("U0HEADMORG", "f.morgan@larkspur.example", "Ffion Morgan", "head;keyholder"),
    DemoStaff("U0PASTPRIC", "g.price@larkspur.example", "Gareth Price", "pastoral;keyholder"),
    DemoStaff("U0TCHPATEL", "c.patel@larkspur.example", "Chitra Patel", "teacher", "4B"),
    DemoStaff("U0TCHEVANS", "d.evans@larkspur.example", "Dylan Evans", "teacher", "3A"),
    DemoStaff("U0TCHJONES", "h.jones@larkspur.example", "Hana Jones", "teacher", "4B;5C"),
    DemoStaff("U0TALEWIS0", "e.lewis@larkspur.example", "Eleri Lewis", "staff"),
    DemoStaff("U0OFFICE00", "office@larkspur.example", "Iwan Rees", "staff"),
)

FORENAMES = (
    "Amara Cerys Dafydd Elin Finn Gwen Harri Isla Jac Kai Lowri Mabli Nia Osian Poppy "
    "Rhys Seren Tomos Wren Zain Aled Bethan Caio Ffion Idris Lili Macsen Nel Owain Tegan"
).split()
SURNAMES = (
    "Ashdown Brightwater Carrow Dunmore Ellery Fairweather Glynne Hartwell Ivensby "
    "Jessop Kettering Larkham Merriman Northcote Ollerton Pennant Quarrie Rowntree "
    "Stainforth Thornbury Upcott Vellacott Whitlock Yarwood"
).split()
CLASSES = ("R1", "1A", "2A", "3A", "4B", "5C", "6D")
YEAR_OF = {"R1": "Reception", "1A": "1", "2A": "2", "3A": "3", "4B": "4", "5C": "5", "6D": "6"}


@dataclass(frozen=True)
class DemoPupil:
    upn: str
    forename: str
    surname: str
    date_of_birth: dt.date
    year_group: str
    registration_group: str
    preferred_name: str = ""


def fictional_pupils(count: int, *, seed: int = 7) -> list[DemoPupil]:
    """`count` invented pupils with well-formed, unique UPNs."""
    rng = random.Random(seed)
    pupils = []
    for index in range(count):
        group = CLASSES[index % len(CLASSES)]
        age = 4 + CLASSES.index(group)
        born = dt.date(2026 - age, 9, 1) + dt.timedelta(days=rng.randrange(365))
        pupils.append(
            DemoPupil(
                upn=f"Z{index:011d}{'ABCDEFGHJK'[index % 10]}",
                forename=rng.choice(FORENAMES),
                surname=rng.choice(SURNAMES),
                date_of_birth=born,
                year_group=YEAR_OF[group],
                registration_group=group,
                preferred_name="Bee" if index == 3 else "",
            )
        )
    return pupils


def staff_csv(staff: tuple[DemoStaff, ...] = STAFF) -> str:
    """The staff roster in the `vigil import staff` format."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "name", "roles", "classes", "slack_user_id"])
    for person in staff:
        writer.writerow([person.email, person.name, person.roles, person.classes, ""])
    return out.getvalue()


def pupils_csv(pupils: list[DemoPupil]) -> str:
    """The pupil roster in the `vigil import pupils` format (its columns, in its order)."""
    columns = (*PUPIL_REQUIRED, *PUPIL_OPTIONAL)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for pupil in pupils:
        writer.writerow([getattr(pupil, column) for column in columns])
    return out.getvalue()
