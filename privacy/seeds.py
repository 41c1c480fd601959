"""The drill's made-up pupils and phrases: names in no roster and words in no dictionary."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from privacy.matching import Needle, adult_name_needles, name_needles, normalise
from testing.school import DemoPupil

_ONSETS = "b br ch d dr f fl g gl gr k kl m n p pl qu r s sk sn st t th tr v w z".split()
_VOWELS = "a e i o u ae ei ou y".split()
_CODAS = ["", "n", "r", "x", "th", "ck", "l", "m", "sk"]
_RARE_ONSETS = ("zh", "kv", "xh", "vr", "dz", "pf")


def made_up_word(rng: secrets.SystemRandom, syllables: int = 4) -> str:
    """A pronounceable word in no dictionary and no roster (it starts as no English word
    does, so it cannot turn up in Vigil's own wording by chance)."""
    parts = [
        rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables)
    ]
    return (rng.choice(_RARE_ONSETS) + rng.choice(_VOWELS) + "".join(parts)).capitalize()


@dataclass
class Seeds:
    """The made-up pupils and phrases of one exercise, and the needles they make."""

    rng: secrets.SystemRandom = field(default_factory=secrets.SystemRandom)
    pupils: list[DemoPupil] = field(default_factory=list)
    needles: list[Needle] = field(default_factory=list)
    words: list[Needle] = field(default_factory=list)  # looked for in the search tables

    def add_pupils(self, groups: Sequence[str], *, with_preferred: Sequence[int]) -> None:
        for index, group in enumerate(groups):
            age = 4 + ("R1", "1A", "2A", "3A", "4B", "5C", "6D").index(group)
            pupil = DemoPupil(
                upn=f"Z{self.rng.randrange(10**11):011d}{'ABCDEFGHJK'[index % 10]}",
                forename=made_up_word(self.rng, 2),
                surname=made_up_word(self.rng, 3),
                date_of_birth=dt.date(dt.date.today().year - age, 9, 1)
                + dt.timedelta(days=index * 37),
                year_group={"R1": "Reception"}.get(group, group[0]),
                registration_group=group,
                preferred_name=made_up_word(self.rng, 2) if index in with_preferred else "",
            )
            self.pupils.append(pupil)
            self.needles += name_needles(
                forename=pupil.forename,
                surname=pupil.surname,
                preferred_name=pupil.preferred_name or None,
                label=f"made-up pupil {index + 1}",
                whole_only=False,
            )

    def person(self, kind: str) -> str:
        """A made-up person's name (a social worker's) that must never be found in plain
        text: it is stored only encrypted, and never sent to Slack or logged."""
        name = f"{made_up_word(self.rng, 2)} {made_up_word(self.rng, 3)}"
        self.needles.append(Needle(normalise(name), kind))
        self.needles.append(Needle(normalise(name.split()[1]), kind))
        return name

    def phrase(self, kind: str) -> str:
        """A distinctive phrase that must never be found, recorded as a needle."""
        word = made_up_word(self.rng, 3).lower()
        text = f"{word}-{secrets.token_hex(3)}"
        self.needles.append(Needle(normalise(text), kind))
        self.words.append(Needle(normalise(word), f"a word of {kind}"))
        return text

    def adult_name(self) -> str:
        """A made-up adult's name, typed for an allegation: must appear nowhere but the
        adult picker's answer."""
        name = f"{made_up_word(self.rng, 2)} {made_up_word(self.rng, 3)}"
        self.needles += adult_name_needles(name, kind="typed name of an adult")
        return name

    def text(self, kind: str, middle: str) -> str:
        """A realistic text opening and closing with a distinctive phrase."""
        return f"{self.phrase(kind)} {middle} {self.phrase(kind)}"
