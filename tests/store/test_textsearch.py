"""The narrative search's words and tokens (`store.textsearch`), without a database."""

from __future__ import annotations

from store.textsearch import MAX_QUERY_WORDS, query_tokens, token, tokens, words

KEY = bytes(range(32))


def test_words_are_folded_and_common_words_dropped() -> None:
    found = words("Zoë's CAFÉ visit: she said the café was shut, and Zoe cried.")
    assert found == ["zoes", "cafe", "visit", "said", "shut", "zoe", "cried"]
    assert words("a I of the and x") == []
    assert words("Ünder_score 4B 10:40") == ["under", "score", "4b", "10", "40"]


def test_tokens_depend_on_the_key_and_the_folded_word() -> None:
    assert token(KEY, "bruise") == tokens(KEY, ["BRUISE"]).pop()
    assert token(KEY, "bruise") != token(bytes(32), "bruise")
    assert token(KEY, "bruise") != token(KEY, "bruised")
    assert -(2**63) <= token(KEY, "bruise") < 2**63
    assert query_tokens(KEY, "Café cafe CAFE") == [token(KEY, "cafe")]
    assert len(query_tokens(KEY, " ".join(f"word{i}" for i in range(40)))) == MAX_QUERY_WORDS
