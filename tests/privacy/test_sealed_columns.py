"""`vigil privacy-check` knows every encrypted column: each of
`store.encrypted.ENCRYPTED_COLUMNS` is named in `privacy.school.SEALED`, looked for or
said to be a key (a new encrypted column must say which)."""

from __future__ import annotations

from privacy.school import SEALED
from store.encrypted import ENCRYPTED_COLUMNS


def test_the_privacy_check_names_every_encrypted_column() -> None:
    names = {f"{c.class_.__tablename__}.{c.key}" for c in ENCRYPTED_COLUMNS}
    assert names == set(SEALED)
