"""PostgreSQL roles: a migration role owns the schema, a runtime role only uses it.

`vigil db upgrade` runs as the owner (the migration role). `vigil serve` should run as a
role that owns nothing: it may read and write rows, never TRUNCATE, ALTER or DROP, and
never DELETE or UPDATE rows of the append-only tables (the incidents, their parts and
actions, the audit log, referral events), beyond re-encrypting a text with a new key.
`runtime_grants` writes the GRANT statements that give it exactly that.

One exception: destroying a record past its retention date (`store.flows.retention`,
DESIGN §14) deletes its rows, so the role may DELETE rows of the append-only tables but
the audit log, and set the audit log's `incident_id` to NULL; the row triggers
(migration 0018) refuse both unless that transaction holds a destruction permit, which
only the destruction flow writes. It can never delete an audit entry.
"""

from __future__ import annotations

import re

from store.models import CIPHERTEXT_COLUMNS, IMMUTABLE_TABLES, Base

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
ALEMBIC_TABLE = "alembic_version"

# Append-only tables whose ciphertexts are written just after their row (bound to its id)
# and rewritten by `vigil rotate-key` (the database's row triggers refuse any other change).
REENCRYPTED = {table: tuple(sorted(columns)) for table, columns in CIPHERTEXT_COLUMNS.items()}
# Data keys are never deleted by the server: a deleted data key is every value it sealed lost.
NO_DELETE = {"data_keys"}
# Append-only tables no destruction deletes from, and the column it sets to NULL there.
NEVER_DELETED = {"audit_log"}
UNLINKED = {"audit_log": "incident_id"}


class RoleNameError(ValueError):
    """Not a plain PostgreSQL role name."""


def check_role_name(role: str) -> str:
    """The role name, if plain (lower-case letters, digits, underscores), else an error."""
    if not ROLE_NAME.match(role):
        raise RoleNameError(
            f"{role!r} is not a plain role name (lower-case letters, digits and _, "
            "starting with a letter)"
        )
    return role


def runtime_grants(role: str, *, database: str, schema: str = "public") -> list[str]:
    """The statements giving `role` what `vigil serve` needs, and nothing more.

    Idempotent: revokes what the role had on Vigil's tables first, then grants.
    """
    check_role_name(role)
    tables = [table.name for table in Base.metadata.sorted_tables]
    append_only = set(IMMUTABLE_TABLES)
    statements = [
        f'GRANT CONNECT ON DATABASE "{database}" TO {role}',
        f"GRANT USAGE ON SCHEMA {schema} TO {role}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}",
        f"GRANT SELECT ON {ALEMBIC_TABLE} TO {role}",
    ]
    for table in tables:
        if table in NO_DELETE:
            statements.append(f"GRANT SELECT, INSERT, UPDATE ON {table} TO {role}")
            continue
        if table not in append_only:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {role}")
            continue
        if table in NEVER_DELETED:
            statements.append(f"GRANT SELECT, INSERT ON {table} TO {role}")
        else:  # by a destruction only (the triggers check its permit)
            statements.append(f"GRANT SELECT, INSERT, DELETE ON {table} TO {role}")
        if table in UNLINKED:
            statements.append(f"GRANT UPDATE ({UNLINKED[table]}) ON {table} TO {role}")
        if table in REENCRYPTED:
            columns = ", ".join(REENCRYPTED[table])
            statements.append(f"GRANT UPDATE ({columns}) ON {table} TO {role}")
    statements.append(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    return statements
