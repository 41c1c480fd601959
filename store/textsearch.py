"""Searching the encrypted narrative and action text (DESIGN §12, issue 13).

Narratives and actions are stored only encrypted (`store.crypto`), so the database cannot
search them. Instead each word of a concern's narrative and of every action on it is
stored as a token in `narrative_tokens`: the first 8 bytes of HMAC-SHA256 of the
normalised word (casefolded, accents folded; common words dropped), keyed by the
workspace's search key. A search hashes each word typed the same way and asks for the
concerns holding every token (AND), an index range per word.

The search key is 32 random bytes per workspace, made on first use and stored in
`search_keys` encrypted with the data key (like any narrative): a database copy alone
cannot test a guessed word against the tokens, and because the key itself never
changes, tokens survive a data-key rotation (a new key in front still decrypts it, and
re-encrypting it with the new key leaves it the same key). No extra setting to keep.

Tokens are written in the same transaction as the incident (`store.incidents`) or action
(`store.actions`, `store.casework`); `reindex` fills them for concerns stored before
(`vigil search reindex`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, false, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from store import keyring
from store.crypto import Cipher, bind
from store.models import Incident, IncidentAction, NarrativeToken, SearchKey, Workspace, utcnow

TOKEN_BYTES = 8
MAX_QUERY_WORDS = 12
REINDEX_BATCH = 500
COUNT_CAP = 2_000  # a word's concerns are counted up to this (`holding_every`)

# Words too common to narrow a search (and so not worth a row each).
STOP_WORDS = frozenset(
    """
    a an and are as at be been but by did do does for from had has have he her hers him his
    i if in into is it its me my no not of on or our she so that the their them then there
    they this to us was we were what when which who will with would you your
    """.split()
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


def words(text: str) -> list[str]:
    """The distinct searchable words of `text`: casefolded, accents folded, apostrophes
    dropped ("Zoë's" → "zoes"), without stop words or single letters, in order."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    found: dict[str, None] = {}
    for match in _WORD.finditer(plain):
        word = match.group().replace("'", "")
        if len(word) > 1 and word not in STOP_WORDS:
            found[word] = None
    return list(found)


def token(key: bytes, word: str) -> int:
    """A normalised word's token: its keyed hash, as a signed 64-bit integer."""
    digest = hmac.new(key, word.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:TOKEN_BYTES], "big", signed=True)


def tokens(key: bytes, texts: Iterable[str]) -> set[int]:
    """The tokens of every word of `texts`."""
    return {token(key, word) for text in texts for word in words(text)}


def query_tokens(key: bytes, typed: str) -> list[int]:
    """The tokens a search for `typed` requires (its first MAX_QUERY_WORDS words)."""
    return list(dict.fromkeys(token(key, w) for w in words(typed)[:MAX_QUERY_WORDS]))


def exact_hash(key: bytes, kind: str, value: str) -> str:
    """The keyed hash of an exact-match value (a pupil's UPN, an agency's reference), under
    the workspace's search key, separated by `kind` from each other and from the word
    tokens: 64 hex characters. `value` is compared as given (callers normalise it)."""
    message = f"vigil/exact/{kind}".encode() + b"\0" + value.encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


UPN_HASH_CHARS = 13  # 65 bits, in the `pupils.upn` column's 13 characters


def upn_hash(key: bytes, upn: str) -> str:
    """A UPN (trimmed, upper case) as `pupils.upn` holds it: its keyed hash, as 13
    lower-case base32 characters (never a UPN's shape: a letter and 12 digits)."""
    digest = bytes.fromhex(exact_hash(key, "upn", upn.strip().upper()))
    return base64.b32encode(digest).decode("ascii")[:UPN_HASH_CHARS].lower()


def new_key(cipher: Cipher, workspace_id: int) -> bytes:
    """A fresh search key, as stored (`SearchKey.key_ct`): sealed with the data key, bound
    to the workspace's row."""
    return cipher.encrypt(os.urandom(32).hex(), bind(SearchKey.key_ct, workspace_id))


def read_key(cipher: Cipher, key_ct: bytes, workspace_id: int) -> bytes:
    """The search key the workspace's `SearchKey.key_ct` holds."""
    return bytes.fromhex(cipher.decrypt(key_ct, bind(SearchKey.key_ct, workspace_id)))


async def search_key(session: AsyncSession, *, workspace_id: int, cipher: Cipher) -> bytes:
    """The workspace's search key, made (and stored encrypted) on first use."""
    await keyring.ensure_data_key(session, cipher)  # also from `vigil search reindex`
    stored = await session.get(SearchKey, workspace_id)
    if stored is None:
        # Made once per workspace: the workspace row's lock keeps two first uses from
        # making two keys (SQLite's write lock does the same). FOR NO KEY UPDATE: a
        # filing already holds the row's key-share lock (its incident's foreign key), and
        # two filings each asking FOR UPDATE over their own key-share would deadlock.
        await session.execute(
            select(Workspace.id).where(Workspace.id == workspace_id).with_for_update(key_share=True)
        )
        stored = await session.get(SearchKey, workspace_id, populate_existing=True)
    if stored is None:
        stored = SearchKey(
            workspace_id=workspace_id,
            key_ct=new_key(cipher, workspace_id),
            created_at=utcnow(),
        )
        session.add(stored)
        await session.flush()
    return read_key(cipher, stored.key_ct, workspace_id)


async def add_text(
    session: AsyncSession,
    *,
    incident_id: int,
    workspace_id: int,
    text: str,
    cipher: Cipher,
    fresh: bool = False,
) -> None:
    """Index `text` (a narrative or an action's text) as words of the concern: the
    tokens it does not hold yet (`fresh`: a new concern, which holds none)."""
    key = await search_key(session, workspace_id=workspace_id, cipher=cipher)
    wanted = tokens(key, [text])
    if not fresh and wanted:
        stored = await session.scalars(
            select(NarrativeToken.token).where(
                NarrativeToken.incident_id == incident_id,
                NarrativeToken.token.in_(sorted(wanted)),
            )
        )
        wanted -= set(stored)
    if wanted:
        await _insert(session, incident_id, wanted)


async def _insert(session: AsyncSession, incident_id: int, wanted: set[int]) -> None:
    await session.execute(
        insert(NarrativeToken),
        [{"token": t, "incident_id": incident_id} for t in sorted(wanted)],
    )


def _holds(token_wanted: int) -> ColumnElement[bool]:
    """The incident holds the token: a probe of the primary key (token, incident_id)."""
    return exists(
        select(NarrativeToken.incident_id).where(
            NarrativeToken.token == token_wanted, NarrativeToken.incident_id == Incident.id
        )
    )


async def _postings(session: AsyncSession, token_wanted: int) -> int:
    """How many concerns hold the token (counted up to COUNT_CAP: an index-only read)."""
    capped = (
        select(NarrativeToken.incident_id)
        .where(NarrativeToken.token == token_wanted)
        .limit(COUNT_CAP)
        .subquery()
    )
    return int(await session.scalar(select(func.count()).select_from(capped)) or 0)


async def holding_every(
    session: AsyncSession, query: Select[Incident], tokens_wanted: Sequence[int]
) -> tuple[Select[Incident], tuple[Any, ...]]:
    """`query` (of incidents) narrowed to those holding every token (an AND of words),
    and the order to read it in: newest first, as the concerns were filed (by id).

    The query starts from the concerns of the rarest word (each word's counted up to
    COUNT_CAP), read backwards along the primary key (token, incident_id), and probes
    the key for each other word: a page costs at most the driving word's index entries,
    never a walk of every concern (for a word in none, nothing) nor a sort of every
    concern holding a common word. The slowest case left: words each in over COUNT_CAP
    concerns that are rarely together (every entry of one is probed)."""
    counted = [(await _postings(session, t), t) for t in tokens_wanted]
    fewest, driver = min(counted)
    if not fewest:
        return query.where(false()), (Incident.id.desc(),)
    posting = aliased(NarrativeToken)
    narrowed = query.join(
        posting, and_(posting.incident_id == Incident.id, posting.token == driver)
    ).where(*(_holds(t) for t in tokens_wanted if t != driver))
    return narrowed, (posting.incident_id.desc(),)


async def reindex(
    session: AsyncSession,
    *,
    workspace_id: int,
    cipher: Cipher,
    after_id: int = 0,
    batch: int = REINDEX_BATCH,
) -> tuple[int, int | None]:
    """Index one batch of the workspace's concerns with ids above `after_id` (their
    narratives and actions), replacing what their tokens were; idempotent. Returns how
    many were indexed and the last id (None when there were none left)."""
    key = await search_key(session, workspace_id=workspace_id, cipher=cipher)
    found = (
        await session.execute(
            select(Incident.id, Incident.narrative_ct)
            .where(Incident.workspace_id == workspace_id, Incident.id > after_id)
            .order_by(Incident.id)
            .limit(batch)
        )
    ).all()
    if not found:
        return 0, None
    ids = [incident_id for incident_id, _ in found]
    await keyring.load_record_keys(session, cipher)  # those made since (by the server)
    texts: dict[int, list[str]] = {
        incident_id: [cipher.decrypt(narrative, bind(Incident.narrative_ct, incident_id))]
        for incident_id, narrative in found
    }
    actions = await session.execute(
        select(IncidentAction.id, IncidentAction.incident_id, IncidentAction.text_ct).where(
            IncidentAction.incident_id.in_(ids)
        )
    )
    for action_id, incident_id, text_ct in actions:
        texts[incident_id].append(cipher.decrypt(text_ct, bind(IncidentAction.text_ct, action_id)))
    await session.execute(delete(NarrativeToken).where(NarrativeToken.incident_id.in_(ids)))
    rows = [
        {"token": t, "incident_id": incident_id}
        for incident_id in ids
        for t in sorted(tokens(key, texts[incident_id]))
    ]
    if rows:
        await session.execute(insert(NarrativeToken), rows)
    return len(ids), ids[-1]
