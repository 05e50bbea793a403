"""`whymoji why`: terminal text, --json, and one-line errors with a non-zero exit."""

from __future__ import annotations

import io
import json

import pytest

from bot.cli import main


def test_why_prints_the_message_emojis_and_method(model_args, capsys):
    assert main(["why", *model_args, "i love you so much"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "i love you so much"
    assert "\x1b[" not in "\n".join(lines)
    assert "%" in lines[2]
    assert lines[-1].startswith("occlusion:")


def test_off_a_terminal_the_output_is_plain_text(model_args, capsys):
    """No bold and no markers in a pipe or a file: the scored words are listed anyway."""
    assert main(["why", *model_args, "--method", "attention", "i love you"]) == 0
    out = capsys.readouterr().out
    assert "**" not in out and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0] == "i love you"
    assert any(line.split()[0] in ("i", "love", "you") and line.split()[1].startswith("+") for line in lines[3:])


def test_a_typed_asterisk_is_kept_in_plain_text(model_args, capsys):
    assert main(["why", *model_args, "--method", "attention", "i **love** you"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "i **love** you"


def test_why_json_has_words_spans_scores_and_emojis(model_args, capsys):
    text = "you are so stupid !!"
    assert main(["why", *model_args, "--json", "--method", "attention", text]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["text"] == text and result["method"] == "attention" and result["approximate"] is False
    assert [text[w["start"] : w["end"]] for w in result["words"]] == ["you", "are", "so", "stupid", "!!"]
    assert sum(w["score"] for w in result["words"]) == pytest.approx(1.0)
    assert len(result["top_emojis"]) == 5
    probabilities = [e["probability"] for e in result["top_emojis"]]
    assert probabilities == sorted(probabilities, reverse=True)


def test_why_json_has_what_was_typed_beside_the_token_the_model_read(model_args, capsys):
    text = "I LOVE you!!!"
    assert main(["why", *model_args, "--json", text]) == 0
    words = json.loads(capsys.readouterr().out)["words"]
    assert [(w["word"], w["text"]) for w in words] == [("i", "I"), ("love", "LOVE"), ("you", "you"), ("!!", "!!!")]
    assert all(w["text"] == text[w["start"] : w["end"]] for w in words)
    assert list(words[0]) == ["word", "text", "start", "end", "score", "exact", "effects", "without_top"]


def test_words_are_joined_into_one_message(model_args, capsys):
    assert main(["why", *model_args, "--json", "hello", "world"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello world"


def test_empty_text_is_a_one_line_error(model_args, capsys):
    assert main(["why", *model_args, "   "]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("whymoji: error:") and "empty" in error and "\n" not in error


def test_missing_weights_is_a_one_line_error(small_model_dir, tmp_path, capsys):
    code = main(
        [
            "why",
            "--weights",
            str(tmp_path / "nope.bin"),
            "--vocabulary",
            str(small_model_dir / "vocabulary.json"),
            "--offline",
            "hi",
        ]
    )
    assert code == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("whymoji: error:") and "nope.bin" in error and "\n" not in error


def test_unknown_method_is_refused_by_the_parser(model_args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["why", *model_args, "--method", "magic", "hi"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'magic'" in capsys.readouterr().err


def test_terminal_gets_ansi_bold(model_args, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["why", *model_args, "--method", "attention", "i love you"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "\x1b[1m" in first and "**" not in first
    assert first.replace("\x1b[1m", "").replace("\x1b[0m", "") == "i love you"


def test_no_color_keeps_a_terminal_plain(model_args, capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["why", *model_args, "--method", "attention", "i love you"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[" not in out and "**" not in out and out.splitlines()[0] == "i love you"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stderr_is_a_terminal", [True, False])
def test_a_long_explanation_shows_progress_on_a_terminal_only(model_args, capsys, monkeypatch, stderr_is_a_terminal):
    import sys

    monkeypatch.setattr("bot.cli.progress.PROGRESS_AFTER_S", 0.0)  # every explanation counts as long
    stderr = Terminal() if stderr_is_a_terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    text = " ".join(["i love you so much"] * 10)
    assert main(["why", *model_args, "--json", text]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == text
    drawn = stderr.getvalue()
    if not stderr_is_a_terminal:
        assert drawn == ""
        return
    frames = [frame for frame in drawn.split("\r") if frame.strip()]
    assert frames and all(frame.startswith("explaining ") and frame.endswith("%") for frame in frames)
    percents = [int(frame.removeprefix("explaining ").removesuffix("%")) for frame in frames]
    assert percents == sorted(percents) and percents[-1] <= 100
    assert drawn.endswith("\r") and drawn.rsplit("\r", 2)[-2].strip() == ""  # erased at the end


def test_a_quick_explanation_draws_nothing_even_on_a_terminal(model_args, capsys, monkeypatch):
    import sys

    monkeypatch.setattr("bot.cli.progress.PROGRESS_AFTER_S", 3600.0)
    stderr = Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["why", *model_args, "i love you"]) == 0
    assert stderr.getvalue() == ""


@pytest.mark.parametrize(
    ("argv", "verbose"),
    [
        (["-v", "why", "hi"], True),
        (["why", "-v", "hi"], True),
        (["why", "hi", "--verbose"], True),
        (["why", "hi"], False),
    ],
)
def test_verbose_works_before_or_after_the_subcommand(argv, verbose):
    from bot.cli import build_parser

    assert build_parser().parse_args(argv).verbose is verbose


def top_five(model_args, capsys, text: str) -> list[dict]:
    assert main(["why", *model_args, "--json", text]) == 0
    return json.loads(capsys.readouterr().out)["top_emojis"]


@pytest.mark.parametrize("spelling", ["index", "name", "emoji"])
def test_emoji_shows_why_one_of_the_top_five(model_args, capsys, spelling):
    text = "i love you so much"
    second = top_five(model_args, capsys, text)[1]
    typed = {"index": str(second["index"]), "name": second["name"], "emoji": second["emoji"]}[spelling]
    assert main(["why", *model_args, "--emoji", typed, text]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].replace("**", "").replace("__", "") == text
    assert lines[2].startswith(f"{second['emoji']} {second['name'].replace('_', ' ')}: ")
    assert lines[3].startswith("Raise it most: ") and lines[4].startswith("Lower it most: ")
    assert lines[-1].startswith(f"occlusion for {second['emoji']}:")


def test_an_emoji_outside_the_top_five_is_a_clear_error_listing_them(model_args, capsys):
    text = "i love you so much"
    top = top_five(model_args, capsys, text)
    outside = next(index for index in range(64) if index not in {e["index"] for e in top})
    assert main(["why", *model_args, "--emoji", str(outside), text]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("whymoji: error: --emoji") and "is not one of the top five here" in error
    assert all(e["name"] in error for e in top) and "\n" not in error


@pytest.mark.parametrize(("typed", "words"), [("64", "from 0 to 63"), ("nope", "not one of DeepMoji's 64 emojis")])
def test_an_emoji_that_is_none_of_the_64_is_refused_before_the_model_runs(model_args, capsys, typed, words):
    assert main(["why", *model_args, "--emoji", typed, "i love you"]) == 1
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("typed", ["love", "LOVE", "1"])
def test_word_shows_what_one_word_does(model_args, capsys, typed):
    text = "i love you so much"
    assert main(["why", *model_args, "--json", text]) == 0
    love = json.loads(capsys.readouterr().out)["words"][1]
    assert main(["why", *model_args, "--word", typed, text]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "i love you so much"  # plain text off a terminal
    assert lines[2].startswith("What love does: ")
    for effect in love["effects"]:
        assert f"{effect:+.3f}" in lines[2]
    assert lines[3].startswith("Without love: ")
    assert lines[4] == "Top five without it: " + "  ·  ".join(
        f"{e['emoji']} {e['probability']:.1%}" for e in love["without_top"]
    )


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("hate", "is not a word of this text; the model reads: 0:i 1:love 2:you 3:i 4:love"),
        ("love", "is here 2 times (words 1, 4); give the index"),
        ("9", "numbered 0 to 4"),
    ],
)
def test_a_word_that_is_not_there_or_twice_is_a_clear_error(model_args, capsys, typed, words):
    assert main(["why", *model_args, "--word", typed, "i love you i love"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("whymoji: error: --word") and words in error and "\n" not in error


def test_emoji_and_word_need_occlusion_and_exclude_json(model_args, capsys):
    assert main(["why", *model_args, "--method", "attention", "--word", "love", "i love you"]) == 1
    assert "need --method occlusion" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["why", *model_args, "--json", "--emoji", "1", "i love you"])
    assert exit_info.value.code == 2


def test_json_words_carry_effects_and_the_top_five_without_them(model_args, capsys):
    assert main(["why", *model_args, "--json", "i love you so much"]) == 0
    result = json.loads(capsys.readouterr().out)
    for word in result["words"]:
        assert len(word["effects"]) == 5 and sum(word["effects"]) == pytest.approx(word["score"])
        assert [set(entry) for entry in word["without_top"]] == [set(result["top_emojis"][0])] * 5
