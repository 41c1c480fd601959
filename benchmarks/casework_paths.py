"""The key-holders' caseload and search (issue 13), in the web group: "with 100,000
concerns stored, the caseload page and search answer in under 100 ms p99, one user at a
time", beside the floor's constant page at one user.

The seeded concerns carry statuses shaped like a school's (`seed.History.case_statuses`:
most concerns older than 60 days closed, newer ones often open or monitoring). One
key-holder GETs:

- `/caseload`: half unfiltered (the first page, oldest first), the rest filtered by
  status, category, year group, open referral, or the second page;
- `/search`: by pupil (a 3-letter surname prefix), category, status, outcome, a date
  range, agency, the status and category together, or nothing (newest first).

- `/search?text=…`: words of the narratives and actions (`TEXT_QUERIES`: one word, two
  words of one text, a narrative's and an action's, a word in none), every third with a
  status (`store.textsearch`: each word an index range of `narrative_tokens`).

Every answer must be a 200 showing the list (`id="caseload"`/`id="results"`, or the
"No concerns" line).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from urllib.parse import urlencode

from testing.school import DemoPupil

OUTCOMES = ("no further action", "referred", "early help", "resolved in school")
AGENCIES = ("Police", "Children's social care (MASH)", "CAMHS")


def caseload_paths(
    count: int, rng: random.Random, *, categories: Sequence[str], years: Sequence[str]
) -> list[str]:
    """Caseload paths: half the first page unfiltered, the rest with one filter each."""
    found = []
    for i in range(count):
        choice = i % 10
        query: dict[str, str] = {}
        if choice == 5:
            query = {"status": "monitoring"}
        elif choice == 6:
            query = {"category": rng.choice(categories)}
        elif choice == 7:
            query = {"year": rng.choice(years)}
        elif choice == 8:
            query = {"referral": "yes"}
        elif choice == 9:
            query = {"page": "2"}
        found.append("/caseload" + ("?" + urlencode(query) if query else ""))
    return found


def search_paths(
    count: int,
    rng: random.Random,
    *,
    categories: Sequence[str],
    pupils: Sequence[DemoPupil],
    today: dt.date,
) -> list[str]:
    """Search paths, each kind of filter in turn."""
    found = []
    for i in range(count):
        choice = i % 8
        query: dict[str, str]
        if choice == 0:
            query = {"pupil": rng.choice(pupils).surname[:3]}
        elif choice == 1:
            query = {"category": rng.choice(categories)}
        elif choice == 2:
            query = {"status": rng.choice(("open", "monitoring", "closed"))}
        elif choice == 3:
            query = {"outcome": rng.choice(OUTCOMES)}
        elif choice == 4:
            first = today - dt.timedelta(days=rng.randint(30, 700))
            query = {"from": first.isoformat(), "to": (first + dt.timedelta(days=30)).isoformat()}
        elif choice == 5:
            query = {"agency": rng.choice(AGENCIES)}
        elif choice == 6:
            query = {"status": "open", "category": rng.choice(categories)}
        else:
            query = {}
        found.append("/search" + ("?" + urlencode(query) if query else ""))
    return found


# Words of the seeded narratives (`seed.NARRATIVES`, each in a sixth of the concerns) and
# actions (`seed.ACTION_TEXTS`, on a fifth of them), and a word in none.
TEXT_QUERIES = (
    "bruise",
    "Trampoline",
    "coat breakfast",
    "alcohol pick-up",
    "secret phone",
    "bruise GP",
    "shouting monitoring",
    "xylophone",
)


def text_search_paths(count: int, rng: random.Random) -> list[str]:
    """Text search paths: each of TEXT_QUERIES in turn, every third with a status too."""
    found = []
    for i in range(count):
        query = {"text": TEXT_QUERIES[i % len(TEXT_QUERIES)]}
        if i % 3 == 2:
            query["status"] = rng.choice(("open", "monitoring", "closed"))
        found.append("/search?" + urlencode(query))
    return found


def is_caseload(_path: str, body: bytes) -> bool:
    return b'<table id="caseload"' in body or b'id="caseload-none"' in body


def is_search(_path: str, body: bytes) -> bool:
    return b'<table id="results"' in body or b'id="results-none"' in body
