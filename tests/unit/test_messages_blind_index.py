"""The messages blind index: one Unicode-aware tokenizer for indexing and querying, and keyed digests of the
tokens under each tenant's versioned HMAC keys (shared.crypto.TenantKeys over an in-memory secret store)."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from functions.messages.logic.blind_index import MAX_TOKENS, SEARCH_KIND, BlindIndex, normalise, query_tokens, tokens
from shared.crypto import TenantKeys
from shared.secrets import SecretNotFound, TenantSecrets
from tests.fakes import FakeSecretStore, keyring

KEY_ACME_1 = b"\x01" * 32
KEY_ACME_2 = b"\x02" * 32
KEY_GLOBEX = b"\x03" * 32
DIGEST = re.compile(r"^h[0-9A-Za-z._-]+:[0-9a-f]{64}$")


def blind_index(documents: dict[str, str] | None = None) -> BlindIndex:
    documents = documents or {
        "p/acme/hmac": keyring("1", {"1": KEY_ACME_1}),
        "p/globex/hmac": keyring("1", {"1": KEY_GLOBEX}),
    }
    return BlindIndex(TenantKeys(TenantSecrets("p/", fetch=FakeSecretStore(documents))))


def expected_term(version: str, key: bytes, token: str) -> str:
    framed = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in (SEARCH_KIND, token))
    return f"h{version}:" + hmac.new(key, framed, hashlib.sha256).hexdigest()


def matches(terms: list[str], query: list[list[str]]) -> bool:
    """What the search adapter does: every query token has one of its digests among the message's terms."""
    held = set(terms)
    return bool(query) and all(any(candidate in held for candidate in candidates) for candidates in query)


# ---- normalisation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Résumé", {"resume"}),
        ("RESUME resume Résumé", {"resume"}),
        ("naïve Café crème brûlée", {"naive", "cafe", "creme", "brulee"}),
        ("Tiếng Việt", {"tieng", "viet"}),
        ("İstanbul", {"istanbul"}),
        ("Ångström", {"angstrom"}),
    ],
    ids=["french", "case-and-accents", "diaeresis-circumflex", "vietnamese-stacked", "turkish-dotted-i", "swedish"],
)
def test_accents_and_case_are_folded(text: str, expected: set[str]) -> None:
    assert tokens(text) == expected


def test_german_sharp_s_matches_ss_through_case_folding() -> None:
    assert tokens("Straße") == tokens("STRASSE") == tokens("strasse") == {"strasse"}


def test_greek_is_folded_for_case_tonos_and_final_sigma() -> None:
    assert tokens("Οδυσσέας") == tokens("ΟΔΥΣΣΕΑΣ") == {"οδυσσεασ"}
    assert tokens("Άννα") == {"αννα"}


def test_cyrillic_words_fold_case_and_yo() -> None:
    assert tokens("Привет, Мир!") == {"привет", "мир"}
    assert tokens("Ёлка") == tokens("елка") == {"елка"}


def test_arabic_harakat_and_hamza_seats_are_folded_and_words_kept_whole() -> None:
    assert tokens("مَرْحَبًا بالعالم") == {"مرحبا", "بالعالم"}
    assert tokens("أحمد") == tokens("احمد") == {"احمد"}
    assert tokens("كـتاب") == tokens("كتاب")  # the tatweel only stretches the word


def test_indic_vowel_signs_and_viramas_stay_inside_the_word() -> None:
    # Python's \w stops at combining marks; the tokenizer must not cut "हिन्दी" into "ह", "न", "द".
    assert tokens("हिन्दी भाषा") == {"हिन्दी", "भाषा"}


def test_compatibility_forms_and_digits_of_every_script_are_normalised() -> None:
    assert tokens("ＡＢＣ ２０２４") == {"abc", "2024"}
    assert tokens("٢٠٢٤") == {"2024"}
    assert tokens("ﬁnance") == {"finance"}


def test_invisible_characters_do_not_split_or_change_a_word() -> None:
    assert tokens("resu\u00adme") == {"resume"}  # soft hyphen
    assert tokens("می\u200cخواهم") == tokens("میخواهم")  # zero-width non-joiner (Persian)
    assert tokens("abc\ufe0f") == {"abc"}  # variation selector


def test_normalise_is_idempotent_on_examples() -> None:
    for text in ("Straße", "ﬁ", "Ångström", "ｶﾞｷﾞ", "ᾳ", "\u1100\u1161\u11a8"):
        assert normalise(normalise(text)) == normalise(text)


# ---- scripts without spaces -----------------------------------------------------------------------------------


def test_japanese_becomes_overlapping_bigrams_across_kanji_and_kana() -> None:
    assert query_tokens("東京都") == ["東京", "京都"]
    assert tokens("食べる") == {"食べ", "べる"}
    assert tokens("カタカナ") == tokens("ｶﾀｶﾅ") == {"カタ", "タカ", "カナ"}  # half-width kana, NFKC


def test_chinese_becomes_overlapping_bigrams() -> None:
    assert query_tokens("中华人民共和国") == ["中华", "华人", "人民", "民共", "共和", "和国"]


def test_a_run_of_one_character_is_kept_as_itself() -> None:
    assert tokens("猫") == {"猫"}
    assert tokens("2024年3月") == {"2024", "年", "月"}


def test_hangul_runs_become_bigrams_so_particles_do_not_hide_the_word() -> None:
    assert tokens("서울에서 만나요") == {"서울", "울에", "에서", "만나", "나요"}
    assert set(query_tokens("서울")) <= tokens("서울에서 만나요")


def test_thai_becomes_bigrams() -> None:
    assert query_tokens("สวัสดี") == ["สว", "วั", "ัส", "สด", "ดี"]


def test_a_no_space_run_and_a_latin_word_next_to_each_other_are_split() -> None:
    assert tokens("abc日本") == {"abc", "日本"}
    assert tokens("iPhone用のケース") == {"iphone", "用の", "のケ", "ケー", "ース"}


def test_a_query_that_is_a_substring_of_a_cjk_text_has_all_its_bigrams_in_it() -> None:
    text = "株式会社東京エンジニアリングの採用担当です"
    for query in ("東京", "エンジニア", "採用担当"):
        assert set(query_tokens(query)) <= tokens(text)


# ---- separators, symbols, short tokens --------------------------------------------------------------------


def test_emoji_and_symbols_are_never_tokens() -> None:
    assert tokens("Great job 👍🎉 🇬🇧 ❤️ 1️⃣ 👩‍💻 ★ ©") == {"great", "job"}
    assert tokens("👍🏽🎉") == set()


def test_programming_language_suffixes_are_kept() -> None:
    assert tokens("C++ and C# developer, Notepad++") == {"c++", "and", "c#", "developer", "notepad++"}
    assert query_tokens("c++") == ["c++"]
    assert tokens("c") == set()  # the bare letter is too short to search on


def test_plus_and_hash_elsewhere_are_separators() -> None:
    assert tokens("a+b issue#42 #hiring c+++") == {"issue", "42", "hiring"}


def test_apostrophes_split_words() -> None:
    assert tokens("O'Neil") == tokens("O’Neil") == {"neil"}
    assert tokens("l'entreprise") == {"entreprise"}


def test_email_addresses_split_into_their_parts() -> None:
    assert query_tokens("Jane.Doe@Acme.example") == ["jane", "doe", "acme", "example"]
    assert tokens("jane_doe+jobs@acme.example") == {"jane", "doe", "jobs", "acme", "example"}


def test_tokens_shorter_than_two_characters_are_dropped() -> None:
    assert tokens("a b c de 7 42 é") == {"de", "42"}


def test_at_most_the_first_512_distinct_tokens_are_kept() -> None:
    words = [f"word{i}" for i in range(MAX_TOKENS + 100)]

    found = tokens(" ".join(words + words))

    assert found == set(words[:MAX_TOKENS])


def test_query_tokens_keep_query_order_without_repeats() -> None:
    assert query_tokens("Berlin résumé RESUME berlin Python") == ["berlin", "resume", "python"]
    assert query_tokens("🎉 ! a") == []


# ---- keyed digests ----------------------------------------------------------------------------------------


def test_terms_are_the_tenants_search_digests_of_the_tokens_sorted() -> None:
    index = blind_index()

    terms = index.terms("acme", "Résumé from Jane")

    assert terms == sorted(expected_term("1", KEY_ACME_1, t) for t in ("resume", "from", "jane"))


def test_the_same_token_gives_the_same_term_in_a_tenant_and_different_terms_across_tenants() -> None:
    index = blind_index()

    assert index.terms("acme", "Résumé") == index.terms("acme", "resume")
    assert index.terms("acme", "resume") != index.terms("globex", "resume")
    assert not set(index.terms("acme", "resume jane")) & set(index.terms("globex", "resume jane"))


def test_search_terms_are_domain_separated_from_other_digests_of_the_same_string() -> None:
    keys = TenantKeys(TenantSecrets("p/", fetch=FakeSecretStore({"p/acme/hmac": keyring("1", {"1": KEY_ACME_1})})))

    assert BlindIndex(keys).terms("acme", "jane") != [keys.digest("acme", "email", "jane")]


def test_nothing_in_terms_or_query_is_a_plain_token() -> None:
    index = blind_index()
    text = "Jane O'Neil, C++ engineer, 東京 résumé jane@acme.example"
    plain = tokens(text)

    terms = index.terms("acme", text)
    query = index.query("acme", text)

    assert all(DIGEST.match(term) for term in terms)
    assert not plain & set(terms)
    assert not plain & {candidate for candidates in query for candidate in candidates}


def test_a_query_matches_the_messages_holding_all_its_words_and_only_those() -> None:
    index = blind_index()
    message = index.terms("acme", "Interview for the Senior C++ Engineer role in 東京都, Straße 5")

    assert matches(message, index.query("acme", "c++ engineer"))
    assert matches(message, index.query("acme", "STRASSE 東京"))
    assert not matches(message, index.query("acme", "python engineer"))
    assert not matches(message, index.query("globex", "engineer"))  # another tenant's key
    assert index.query("acme", "👍") == []


def test_a_query_covers_every_key_version_so_a_rotation_keeps_old_messages_searchable() -> None:
    before = blind_index({"p/acme/hmac": keyring("1", {"1": KEY_ACME_1})})
    after = blind_index({"p/acme/hmac": keyring("2", {"1": KEY_ACME_1, "2": KEY_ACME_2})})
    old_message = before.terms("acme", "Offer letter")

    query = after.query("acme", "offer")

    assert query == [[expected_term("1", KEY_ACME_1, "offer"), expected_term("2", KEY_ACME_2, "offer")]]
    assert matches(old_message, query)
    assert matches(after.terms("acme", "Offer letter"), query)
    assert after.terms("acme", "offer") == [expected_term("2", KEY_ACME_2, "offer")]


def test_a_tenant_without_an_hmac_key_is_refused() -> None:
    with pytest.raises(SecretNotFound):
        blind_index().terms("initech", "hello world")


# ---- properties -------------------------------------------------------------------------------------------

# Any code point (surrogates and unassigned ones included), weighted towards the characters the tokenizer
# treats specially: accents, marks, no-space scripts, separators, suffixes, digits of other scripts.
_SPECIAL = list("aeéßςΣİıﬁＡ２٢๒क्ि日本語ひらカタｶﾞ한국어가สวัดี+#_'@.- \u00ad\u200b\u200c\u0301\u0308\ufe0f👍🇬🇧")
TEXT = st.text(
    alphabet=st.one_of(st.characters(exclude_categories=()), st.sampled_from(_SPECIAL)),
    max_size=80,
)


@settings(max_examples=200, database=None, deadline=None)
@given(TEXT)
def test_tokens_never_raise_and_are_stable_when_tokenized_again(text: str) -> None:
    found = tokens(text)

    assert len(found) <= MAX_TOKENS
    assert tokens(" ".join(sorted(found))) == found
    for token in found:
        assert tokens(token) == {token}
        assert normalise(token) == token
    assert set(query_tokens(text)) == found
    assert normalise(normalise(text)) == normalise(text)


@settings(max_examples=200, database=None, deadline=None)
@given(TEXT)
def test_a_term_never_equals_a_plain_token(text: str) -> None:
    index = blind_index()
    plain = tokens(text)

    terms = index.terms("acme", text)

    assert len(terms) == len(plain)
    assert all(DIGEST.match(term) for term in terms)
    assert not plain & set(terms)
