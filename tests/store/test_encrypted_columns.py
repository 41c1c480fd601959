"""`store.encrypted.ENCRYPTED_COLUMNS` names every ciphertext column of the schema: what
`vigil rotate-key` re-encrypts and the start-up key check reads. A new `*_ct` column left
out of it would keep its old data key for ever, so every one is either listed or among
the few sealed another way (said why below)."""

from __future__ import annotations

from store.encrypted import ENCRYPTED_COLUMNS
from store.models import Base

# Sealed otherwise than with `Cipher.encrypt` under the data key, so not re-encrypted
# column by column: a file's own key (wrapped by the data key, `store.documents.sealing`;
# `vigil rotate-key` rewraps it on its own) and its name (sealed with that file's key).
SEALED_ANOTHER_WAY = frozenset({("files", "key_ct"), ("files", "name_ct")})


def ciphertext_columns() -> set[tuple[str, str]]:
    return {
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_ct")
    }


def test_every_ciphertext_column_of_the_models_is_listed_or_sealed_another_way() -> None:
    listed = {(c.class_.__tablename__, c.key) for c in ENCRYPTED_COLUMNS}
    found = ciphertext_columns()
    assert found - listed - SEALED_ANOTHER_WAY == set(), "add them to ENCRYPTED_COLUMNS"
    # And nothing listed that is not a ciphertext column of the models.
    assert listed <= found and SEALED_ANOTHER_WAY <= found
    assert not listed & SEALED_ANOTHER_WAY
    assert len(listed) == len(ENCRYPTED_COLUMNS)  # none listed twice
