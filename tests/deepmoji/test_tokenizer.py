"""DeepMoji tokenizer: the published conformance cases, original-text spans, vocabulary errors.

The conformance file holds the reference tokenization (Python 2 semantics) of 666 texts over
the real vocabulary; the other tests use the small vocabulary from conftest and run anywhere.
"""

from __future__ import annotations

import gc
import json
import random
import string
import tracemalloc

import pytest

from bot.deepmoji.tokenizer import Token, Tokenizer, VocabularyError
from bot.errors import WhymojiError
from tests.conftest import small_vocabulary

UNKNOWN_ID = 1

#: Texts that are hard on spans: emoji (with variation selectors, ZWJ, skin tones, flags),
#: combining accents, CRLF, repeated characters, smart quotes, odd whitespace.
HOSTILE_TEXTS = [
    "I ❤️ you ♥ ☺️ ✌️",
    "👨‍👩‍👧 family, 👍🏽 thumbs, 🇫🇷 flag, 1️⃣ keycap",
    "cafe\u0301 nai\u0308ve re\u0301sume\u0301 and café naïve résumé",
    "crlf\r\nline\r\n\r\nend",
    "sooooo gooood!!!!!! ....... ???? okkkk",
    "“Smart quotes” — and ‘single’ ones… ‼ don’t",
    "«guillemets» and „low quotes“ ¡Hola! ¿Qué?",
    "tabs\tand\u00a0nbsp\u3000ideographic\u2003em space",
    "zero\u200bwidth and\u200dzwj",
    "ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ！ and ﬁ ligature",
    "今日はとても楽しかった！😂😂😂",
    "check https://example.com/x?y=1 @bob #blessed 12345 www.google.com",
    "hello\\nworld <br> and \\\\n escaped",
    "ΟΔΟΣ İstanbul kapı",
    "   ",
    "",
]


#: Texts where one typed character or cluster becomes several tokens: spans stay sound, but
#: the first token takes what was typed and the others get empty spans after it.
EXPANDING_TEXTS = [
    "Z\u0351\u0359a\u0310\u0344l\u0300g\u0301o\u0301",  # marks NFKC reorders: z + two tokens
    "½ ⑴ ㈱ ﷺ",
]


@pytest.fixture(scope="module")
def small() -> Tokenizer:
    return Tokenizer(small_vocabulary())


@pytest.fixture(scope="module")
def conformance(shared_dir) -> list[dict]:
    path = shared_dir / "conformance" / "tokenizer.json"
    return json.loads(path.read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def real(shared_dir) -> Tokenizer:
    return Tokenizer.from_file(shared_dir / "deepmoji" / "vocabulary.json")


def assert_spans_are_sound(text: str, tokens: list[Token]) -> None:
    """Spans lie in the text, increase and never overlap; an empty one only shares a character
    with the token before it (one typed character that became several tokens)."""
    previous_end = 0
    for index, token in enumerate(tokens):
        assert previous_end <= token.start <= token.end <= len(text), (text, tokens)
        if token.start == token.end:
            assert index > 0 and token.start == tokens[index - 1].end, (text, token)
        previous_end = token.end


def assert_spans_retokenize(tokenizer: Tokenizer, text: str) -> None:
    """Each token's span, tokenized alone, gives that token back.

    Breaks typed as real newlines are the exception: alone they are stripped, like any
    surrounding whitespace of a message.
    """
    for token in tokenizer.tokenize(text):
        typed = text[token.start : token.end]
        assert typed, (text, token)
        if token.word == "CUSTOM_BREAK" and typed in ("\n", "\r"):
            continue
        assert tokenizer.token_words(typed) == [token.word], (text, token, typed)


# --- conformance --------------------------------------------------------------------------


def test_every_conformance_case_gives_the_reference_words_and_ids(real, conformance):
    assert len(conformance) == 666
    failures = []
    for case in conformance:
        tokens = real.tokenize(case["text"])
        words, ids = [token.word for token in tokens], [token.id for token in tokens]
        if words != case["words"] or ids != case["ids"]:
            want = f"{case['words']} {case['ids']}"
            failures.append(f"{case['text']!r}: got {words} {ids}, want {want}")
    assert not failures, f"{len(failures)} cases differ:\n" + "\n".join(failures[:10])


def test_words_and_encode_agree_with_tokenize(real, conformance):
    for case in conformance[:50]:
        assert real.token_words(case["text"]) == case["words"]
        assert real.encode(case["text"]) == case["ids"]


def test_conformance_spans_are_sound_and_give_the_words_back(real, conformance):
    for case in conformance:
        tokens = real.tokenize(case["text"])
        assert_spans_are_sound(case["text"], tokens)
        assert_spans_retokenize(real, case["text"])


def test_the_real_vocabulary_has_the_published_special_ids(real):
    assert len(real.vocabulary) == 50_000
    names = ("CUSTOM_UNKNOWN", "CUSTOM_AT", "CUSTOM_URL", "CUSTOM_NUMBER", "CUSTOM_BREAK")
    assert [real.vocabulary[name] for name in names] == [1, 2, 3, 4, 5]


# --- spans --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_text_spans_are_sound_and_give_the_words_back(small, text):
    assert_spans_are_sound(text, small.tokenize(text))
    assert_spans_retokenize(small, text)


@pytest.mark.parametrize("text", EXPANDING_TEXTS)
def test_expanding_text_spans_are_sound(small, text):
    tokens = small.tokenize(text)
    assert any(token.start == token.end for token in tokens)
    assert_spans_are_sound(text, tokens)


def typed(tokenizer: Tokenizer, text: str) -> list[tuple[str, str]]:
    return [(token.word, text[token.start : token.end]) for token in tokenizer.tokenize(text)]


def test_spans_cover_what_was_typed(small):
    assert typed(small, "I ❤️ you") == [("i", "I"), ("❤", "❤️"), ("you", "you")]
    assert typed(small, "sooo happy!!!!") == [("soo", "sooo"), ("happy", "happy"), ("!!", "!!!!")]
    assert typed(small, "“Hi” — ok…") == [
        ('"', "“"),
        ("hi", "Hi"),
        ('"', "”"),
        ("--", "—"),
        ("ok", "ok"),
        ("..", "…"),
    ]
    assert typed(small, "a\r\nb") == [
        ("a", "a"),
        ("CUSTOM_BREAK", "\r"),
        ("CUSTOM_BREAK", "\n"),
        ("b", "b"),
    ]
    assert typed(small, "a\\nb") == [("a", "a"), ("CUSTOM_BREAK", "\\n"), ("b", "b")]
    assert typed(small, "go https://x.com/a?b=1 now") == [
        ("go", "go"),
        ("CUSTOM_URL", "https://x.com/a?b=1"),
        ("now", "now"),
    ]


def test_combining_accents_map_to_the_letter_and_its_marks(small):
    # "cafe" + combining acute is NFKC-composed to "café": "caf" and "é" as DeepMoji splits it.
    assert typed(small, "cafe\u0301!") == [("caf", "caf"), ("é", "e\u0301"), ("!", "!")]
    assert typed(small, "café") == [("caf", "caf"), ("é", "é")]


def test_zwj_sequences_and_skin_tones_keep_each_codepoint_apart(small):
    family = "👨\u200d👩\u200d👧"
    joiner = ("\u200d", "\u200d")
    assert typed(small, family) == [("👨", "👨"), joiner, ("👩", "👩"), joiner, ("👧", "👧")]
    assert typed(small, "👍🏽") == [("👍", "👍"), ("🏽", "🏽")]


def test_a_character_that_becomes_several_tokens_gives_it_to_the_first(small):
    # NFKC turns "½" into "1⁄2": three tokens from one typed character.
    tokens = small.tokenize("x ½ y")
    assert [token.word for token in tokens] == ["x", "CUSTOM_NUMBER", "⁄", "CUSTOM_NUMBER", "y"]
    spans = [(token.start, token.end) for token in tokens]
    assert spans == [(0, 1), (2, 3), (3, 3), (3, 3), (4, 5)]


def test_fullwidth_and_ligatures_map_back_per_character(small):
    text = "ｌｏｖｅ！ ﬁne"
    assert typed(small, text) == [("love", "ｌｏｖｅ"), ("!", "！"), ("fine", "ﬁne")]


def test_random_hostile_texts_keep_spans_sound(small):
    pieces = [
        "a",
        "B",
        "x",
        ":",
        "-",
        "D",
        "(",
        ")",
        "<",
        "3",
        "/",
        "@",
        "#",
        ".",
        "'",
        "!",
        " ",
        "\n",
        "\r\n",
        "\\n",
        "<br>",
        "www.",
        "http://",
        "é",
        "e\u0301",
        "\ufe0f",
        "❤",
        "😂",
        "\u200d",
        "…",
        "“",
        "—",
        "½",
        "ﬁ",
        "\u00a0",
        "İ",
        "Σ",
        "ㄱ",
        "ㅏ",
        "각",
        "ᄀ",
        "ᅡ",
        "\u0b47",
        "\u0b3e",
        "¨",
        "\u0344",
        "ְ",
    ]
    generator = random.Random(20240601)
    for _ in range(3000):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 12)))
        assert_spans_are_sound(text, small.tokenize(text))


def test_empty_and_whitespace_only_texts_have_no_tokens(small):
    for text in ("", " ", "\t\n\r ", "\u00a0\u3000", "\ufe0f", "\n\n"):
        assert small.tokenize(text) == []


# --- DeepMoji's rules, on the small vocabulary --------------------------------------------


def test_unknown_words_get_the_unknown_id(small):
    tokens = small.tokenize("love zyzzyva")
    assert [token.word for token in tokens] == ["love", "zyzzyva"]
    assert tokens[0].id == small.vocabulary["love"]
    assert tokens[1].id == UNKNOWN_ID


def test_runs_of_three_or_more_are_shortened_to_two(small):
    words = small.token_words("sooo happyyyy!!!! ... ?????? hmm")
    assert words == ["soo", "happyy", "!!", "..", "??", "hmm"]
    assert small.encode("lol!!!!!!")[-1] == small.vocabulary["!!"]
    # The original replaced run by run, so a shorter run's text also hits a longer one.
    assert small.token_words("aaa-aaaaaa") == ["aa-aaaa"]


def test_only_ascii_tokens_are_shortened(small):
    assert small.token_words("😂😂😂 ééé") == ["😂", "😂", "😂", "é", "é", "é"]


def test_special_tokens(small):
    words = small.token_words("see http://x.co/a @bob me@mail.com 123 4th line\nnext $5")
    assert words == [
        "see",
        "CUSTOM_URL",
        "CUSTOM_AT",
        "CUSTOM_AT",
        "CUSTOM_NUMBER",
        "CUSTOM_NUMBER",
        "th",
        "line",
        "CUSTOM_BREAK",
        "next",
        "$",
        "CUSTOM_NUMBER",
    ]
    ids = small.encode("http://x.co @bob 7 a\nb")
    names = ("CUSTOM_URL", "CUSTOM_AT", "CUSTOM_NUMBER")
    assert ids[:3] == [small.vocabulary[name] for name in names]
    assert small.vocabulary["CUSTOM_BREAK"] in ids


def test_line_breaks_in_every_form(small):
    for text in ("a\nb", "a\rb", "a\\nb", "a\\\\nb", "a\\rb", "a<br>b", "a<BR>b"):
        assert small.token_words(text) == ["a", "CUSTOM_BREAK", "b"], text
    assert small.token_words("\nhi\n") == ["hi"]  # the message is stripped first


def test_www_urls_are_shortened_before_the_url_check_and_stay_words(small):
    assert small.token_words("www.google.com") == ["ww.google.com"]
    assert small.token_words("http://www.google.com") == ["CUSTOM_URL"]


def test_emoticons_hearts_hashtags_and_mentions(small):
    assert small.token_words(":) :-D ;p =( >:( :'( <3 </3 <<33 ^_^ -_- x_x o.o XD") == [
        ":)",
        ":-d",
        ";p",
        "=(",
        ">:(",
        ":'(",
        "<3",
        "</3",
        "<<33",
        "^_^",
        "-_-",
        "x_x",
        "o.o",
        "xd",
    ]
    assert small.token_words("##hello @@user #hash#tag @a@b") == [
        "#",
        "#hello",
        "@",
        "CUSTOM_AT",
        "#hash",
        "#tag",
        "CUSTOM_AT",
        "CUSTOM_AT",
    ]


def test_contractions_titles_abbreviations_and_compounds(small):
    assert small.token_words("I'm Mr. Smith, e.g. U.S.A. red-haired well_known etc.") == [
        "i'm",
        "mr.",
        "smith",
        ",",
        "e.g.",
        "u.s.a.",
        "red-haired",
        "well_known",
        "etc",
        ".",
    ]


def test_unicode_punctuation_becomes_ascii_but_letters_stay(small):
    words = small.token_words("“Hi” — ok… ‼ ¡Qué!")
    assert words == ['"', "hi", '"', "--", "ok", "..", "!!", "!", "qu", "é", "!"]
    # "€€" is one run of a symbol; "£" is no symbol in DeepMoji, so "££" are two tokens.
    assert small.token_words("€€ ££") == ["€€", "£", "£"]


def test_python2_lower_case_and_letters(small):
    # Python 2 maps İ to i and Σ to σ even at a word's end; "ı" is no ASCII letter.
    assert small.token_words("İ ΟΔΟΣ kapı") == ["i", "ο", "δ", "ο", "σ", "kap", "ı"]
    assert small.encode("İ")[0] == small.vocabulary["i"]


def test_variation_selectors_are_dropped(small):
    assert small.token_words("❤️ ❤ ☺\ufe0e") == ["❤", "❤", "☺"]


def test_each_tokenizer_keeps_its_own_ids():
    other = dict(small_vocabulary())
    other["love"], other["hate"] = other["hate"], other["love"]
    first, second = Tokenizer(small_vocabulary()), Tokenizer(other)
    assert first.encode("love")[0] == second.encode("hate")[0]
    assert first.encode("love") != second.encode("love")


def test_non_text_is_a_type_error(small):
    with pytest.raises(TypeError, match="str"):
        small.tokenize(b"bytes")


def test_the_vocabulary_is_read_only(small):
    with pytest.raises(TypeError):
        small.vocabulary["new"] = 5  # type: ignore[index]


# --- vocabulary files ---------------------------------------------------------------------


def test_from_file_reads_a_vocabulary(tmp_path):
    path = tmp_path / "vocabulary.json"
    path.write_text(json.dumps(small_vocabulary()), encoding="utf-8")
    tokenizer = Tokenizer.from_file(path)
    assert dict(tokenizer.vocabulary) == small_vocabulary()
    assert tokenizer.encode("love")[0] == small_vocabulary()["love"]
    path.write_text(json.dumps(small_vocabulary()), encoding="utf-8-sig")  # with a BOM
    assert dict(Tokenizer.from_file(path).vocabulary) == small_vocabulary()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
        (b"[1, 2, 3]", "must map words to ids"),
        (json.dumps({**small_vocabulary(), "bad": "seven"}).encode(), "'bad': 'seven'"),
        (json.dumps({**small_vocabulary(), "neg": -1}).encode(), "'neg': -1"),
        (
            json.dumps({"hello": 0, "CUSTOM_UNKNOWN": 1}).encode(),
            "CUSTOM_AT, CUSTOM_URL, CUSTOM_NUMBER, CUSTOM_BREAK",
        ),
    ],
)
def test_a_bad_vocabulary_file_names_the_file_and_the_problem(tmp_path, content, problem):
    path = tmp_path / "vocabulary.json"
    path.write_bytes(content)
    with pytest.raises(VocabularyError) as error:
        Tokenizer.from_file(path)
    assert isinstance(error.value, WhymojiError)
    assert str(path) in str(error.value)
    assert problem in str(error.value)


def test_a_missing_or_unreadable_vocabulary_file_is_a_user_facing_error(tmp_path):
    with pytest.raises(VocabularyError, match="does not exist") as error:
        Tokenizer.from_file(tmp_path / "absent.json")
    assert str(tmp_path / "absent.json") in str(error.value)
    with pytest.raises(VocabularyError, match="cannot be read"):
        Tokenizer.from_file(tmp_path)  # a directory


def test_a_bad_vocabulary_mapping_is_refused():
    with pytest.raises(VocabularyError, match="CUSTOM_UNKNOWN"):
        Tokenizer({"hello": 0})
    with pytest.raises(VocabularyError, match="True"):
        Tokenizer({**small_vocabulary(), "flag": True})


def test_what_the_tokenizer_remembers_stays_within_its_byte_budget():
    """Long tokens (a 2,000-character "word", a letter under 500 marks) are not remembered, and
    the short ones stay within ``cache_bytes``: measured as the memory still held once the
    texts and their tokens are gone. (30,000 unique 2,000-character tokens once held 123 MB.)"""
    rng = random.Random(3)
    budget = 100_000
    tokenizer = Tokenizer(small_vocabulary(), cache_bytes=budget)

    def word(length: int) -> str:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(length))

    long_words = [word(2000) for _ in range(100)]
    marked = ["a" + "".join(chr(0x300 + rng.randrange(0x70)) for _ in range(500)) for _ in range(50)]
    short_words = [" ".join(word(rng.randint(3, 12)) for _ in range(200)) for _ in range(20)]
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for text in long_words + marked + short_words:
            assert tokenizer.tokenize(text)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 100 long words alone are 400 KB as text; 4,000 short tokens about 900 KB remembered.
    assert held <= budget * 1.25
    assert tokenizer.token_words("lol i love you") == ["lol", "i", "love", "you"]  # still the same answers
