"""`whymoji predict` and `whymoji download`, driven through bot.cli.main and the console script."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.deepmoji.emojis import EMOJIS, top_emojis
from bot.deepmoji.engine import Engine
from bot.deepmoji.files import ModelFiles
from tests.conftest import REPO_ROOT


def configures_whymoji(name: str) -> bool:
    return name.startswith("WHYMOJI_") or name in ("HF_HUB_OFFLINE", "NO_COLOR")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No setting leaks in from the machine running the tests."""
    for name in [name for name in os.environ if configures_whymoji(name)]:
        monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def engine(small_model_dir) -> Engine:
    return Engine.load(ModelFiles(small_model_dir / "pytorch_model.bin", small_model_dir / "vocabulary.json"))


def expected_top(engine: Engine, text: str, k: int) -> list[tuple[int, float]]:
    picks = top_emojis(engine.predict([text])[0], k)
    return [(emoji.index, p) for emoji, p in picks]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def test_predict_prints_the_top_emojis_of_each_text(capsys, model_args, engine):
    code = main(["predict", *model_args, "--top", "3", "i love you !!", "so sad"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "i love you !!" and lines[4] == "so sad"
    assert len(lines) == 8
    for block, text in ((lines[1:4], "i love you !!"), (lines[5:8], "so sad")):
        for line, (index, probability) in zip(block, expected_top(engine, text, 3)):
            percent, _reaction, name = line.split()
            assert float(percent.rstrip("%")) == pytest.approx(100 * probability, abs=0.051)
            assert name == top_emojis(np.eye(64)[index], 1)[0][0].name


def test_predict_json_has_text_known_words_and_top_emojis(capsys, model_args, engine):
    assert main(["predict", *model_args, "--json", "--top", "4", "omg haha :)"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    record = json.loads(line)
    assert record["text"] == "omg haha :)"
    assert record["known_words"] == engine.read("omg haha :)").known_share == 1.0
    expected = expected_top(engine, "omg haha :)", 4)
    assert [entry["index"] for entry in record["top_emojis"]] == [index for index, _ in expected]
    for entry, (index, probability) in zip(record["top_emojis"], expected):
        assert set(entry) == {"index", "name", "emoji", "probability"}
        assert entry["emoji"] == EMOJIS[index].reaction
        assert entry["probability"] == pytest.approx(probability, rel=1e-6)


def test_predict_and_why_json_speak_one_vocabulary(capsys, model_args):
    text = "i love you so much !!"
    assert main(["predict", *model_args, "--json", text]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert main(["why", *model_args, "--json", text]) == 0
    explained = json.loads(capsys.readouterr().out)
    shared = {"text", "known_words", "reading", "top_emojis"}
    assert shared <= set(predicted) and shared <= set(explained)
    for key in ("text", "known_words", "reading"):
        assert predicted[key] == explained[key], key
    assert [set(entry) for entry in predicted["top_emojis"]] == [set(entry) for entry in explained["top_emojis"]]
    assert [e["index"] for e in predicted["top_emojis"]] == [e["index"] for e in explained["top_emojis"]]


def test_predict_and_why_write_emoji_the_same_way(capsys, model_args):
    """All 64 emojis, those with a variation selector (❤️, ✌️) included, in both outputs."""
    text = "i love you so much !!"
    assert main(["predict", *model_args, "--json", "--top", "64", text]) == 0
    line = capsys.readouterr().out
    predicted = {entry["index"]: entry for entry in json.loads(line)["top_emojis"]}
    assert "\\u" not in line  # emoji written as themselves, not escaped
    assert predicted[8]["emoji"] == "\u2764\ufe0f" == EMOJIS[8].reaction
    assert main(["why", *model_args, "--json", text]) == 0
    line = capsys.readouterr().out
    assert "\\u" not in line
    for entry in json.loads(line)["top_emojis"]:
        assert {key: entry[key] for key in ("index", "name", "emoji")} == {
            key: predicted[entry["index"]][key] for key in ("index", "name", "emoji")
        }


def test_a_text_the_model_mostly_cannot_read_says_so_in_typed_words(capsys, model_args):
    assert main(["predict", *model_args, "--top", "1", "love xyzzy plugh quux", "i love you"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  (the model knows only 1 of the 4 words here: it learned English, so this guess is weak)"
    assert lines[3] == "i love you" and "knows" not in lines[4]
    assert main(["predict", *model_args, "--json", "love xyzzy plugh quux"]) == 0
    assert json.loads(capsys.readouterr().out)["known_words"] == 0.25


@pytest.mark.parametrize(
    ("text", "note"),
    [
        # 15 tokens (a letter each, and the known ',' and '?'), 3 typed words, none known.
        ("Привет, как дела?", "the model knows none of the 3 words here"),
        ("Привет!", "the model does not know the word here"),
        ("love Привет как дела", "the model knows only 1 of the 4 words here"),
    ],
)
def test_words_are_counted_as_typed(capsys, model_args, engine, text, note):
    assert engine.read(text).word_count > len(text.split())  # the model reads more tokens than words
    assert main(["predict", *model_args, "--top", "1", text]) == 0
    assert capsys.readouterr().out.splitlines()[1] == f"  ({note}: it learned English, so this guess is weak)"


def test_a_cut_text_says_so_in_text_and_json_as_why_does(capsys, model_args, monkeypatch):
    monkeypatch.setenv("WHYMOJI_MODEL_MAX_TOKENS", "5")
    text = "i love you so much , my friend !!"
    assert main(["predict", *model_args, "--top", "1", text, "i love you"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == "  (long text: the model read only its first 5 of 9 words and symbols, model.max_tokens)"
    assert "long text" not in "\n".join(lines[2:])
    assert main(["predict", *model_args, "--json", text]) == 0
    predicted = json.loads(capsys.readouterr().out)
    assert predicted["reading"] == {"tokens": 5, "total_tokens": 9, "truncated": True, "known": 5, "words": 5}
    assert main(["why", *model_args, "--json", text]) == 0
    assert json.loads(capsys.readouterr().out)["reading"] == predicted["reading"]


def test_control_characters_in_the_echoed_text_cannot_drive_the_terminal(capsys, model_args):
    text = "\x1b]0;pwned\x07hello \x1b[2Jworld"
    assert main(["predict", *model_args, "--top", "1", text]) == 0
    echoed = capsys.readouterr().out.splitlines()[0]
    assert echoed == "\ufffd]0;pwned\ufffdhello \ufffd[2Jworld"
    assert main(["predict", *model_args, "--json", text]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == text  # JSON escapes them itself


def test_predict_reads_one_message_per_stdin_line(capsys, model_args, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("i love you\nhate it\r\nwow\n"))
    assert main(["predict", *model_args, "--json", "--top", "1"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["text"] for record in records] == ["i love you", "hate it", "wow"]
    assert all(len(record["top_emojis"]) == 1 for record in records)


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_message_argument_is_one_error_line(capsys, model_args, text):
    assert main(["predict", *model_args, "hello", text]) == 1
    captured = capsys.readouterr()
    assert error_lines(captured.err) == [
        "whymoji: error: message 2 is empty: there are no words or symbols for the model to read"
    ]


def test_blank_stdin_lines_are_skipped_with_a_note_and_the_rest_answered(capsys, model_args, monkeypatch):
    monkeypatch.setattr("bot.cli.predict.CHUNK_SIZE", 2)
    monkeypatch.setattr(sys, "stdin", io.StringIO("a\nb\nc\n\n   \ne\n"))
    assert main(["predict", *model_args, "--json"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["text"] for line in captured.out.splitlines()] == ["a", "b", "c", "e"]
    assert error_lines(captured.err) == [
        "whymoji: note: line 4 is blank: skipped",
        "whymoji: note: line 5 is blank: skipped",
    ]


class TerminalInput:
    """Lines typed at a terminal: before handing out a line, it records how many were answered."""

    def __init__(self, lines: list[str], output: io.StringIO) -> None:
        self.lines = lines
        self.output = output
        self.answered_before: list[int] = []

    def isatty(self) -> bool:
        return True

    def __iter__(self):
        for line in self.lines:
            self.answered_before.append(len(self.output.getvalue().splitlines()))
            yield line


def test_on_a_terminal_each_line_is_answered_before_the_next_is_read(model_args, monkeypatch):
    output = io.StringIO()
    typed = TerminalInput(["i love you\n", "so sad\n", "wow\n"], output)
    monkeypatch.setattr(sys, "stdin", typed)
    monkeypatch.setattr(sys, "stdout", output)
    assert main(["predict", *model_args, "--json"]) == 0
    assert typed.answered_before == [0, 1, 2]
    assert len(output.getvalue().splitlines()) == 3


class ArrivingInput:
    """A pipe whose lines arrive one at a time, as from ``tail -f``: the next line appears only
    once the previous one was answered (or after ``patience_s``, which only a failing run waits)."""

    def __init__(self, lines: list[str], output: io.StringIO, patience_s: float = 20.0) -> None:
        self.lines = lines
        self.output = output
        self.patience_s = patience_s
        self.answered_before_next_line: list[bool] = []

    def isatty(self) -> bool:
        return False

    def __iter__(self):
        for number, line in enumerate(self.lines):
            if number:
                self.answered_before_next_line.append(self._wait_for_answers(number))
            yield line

    def _wait_for_answers(self, count: int) -> bool:
        deadline = time.monotonic() + self.patience_s
        while time.monotonic() < deadline:
            if len(self.output.getvalue().splitlines()) >= count:
                return True
            time.sleep(0.01)
        return False


def test_piped_lines_are_answered_as_they_arrive(model_args, monkeypatch):
    output = io.StringIO()
    piped = ArrivingInput(["i love you\n", "so sad\n", "wow\n"], output)
    monkeypatch.setattr(sys, "stdin", piped)
    monkeypatch.setattr(sys, "stdout", output)
    assert main(["predict", *model_args, "--json"]) == 0
    assert piped.answered_before_next_line == [True, True]
    assert [json.loads(line)["text"] for line in output.getvalue().splitlines()] == ["i love you", "so sad", "wow"]


def test_a_real_pipe_is_answered_line_by_line(model_args):
    """``tail -f chat.log | whymoji predict``: each line is answered before the next is written."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "predict", *model_args, "--json", "--top", "1"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not configures_whymoji(k)},
    )
    try:
        for text in ("i love you", "so sad"):
            process.stdin.write(text + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], 60)
            assert ready, f"no answer to {text!r} while the pipe stays open"
            assert json.loads(process.stdout.readline())["text"] == text
        process.stdin.close()
        assert process.wait(60) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_lines_that_have_arrived_run_together_in_batches(model_args, monkeypatch, capsys):
    """A file piped in still goes to the model in batches of up to CHUNK_SIZE lines."""
    from bot.deepmoji.engine import Engine

    monkeypatch.setattr("bot.cli.predict.CHUNK_SIZE", 4)
    read_all = threading.Event()

    class Pipe:
        def __init__(self, text: str) -> None:
            self.lines = text.splitlines(keepends=True)

        def isatty(self) -> bool:
            return False

        def __iter__(self):
            yield from self.lines
            read_all.set()

    real_read, real_predict, sizes = Engine.read, Engine.predict, []

    def read_once_all_arrived(self, text):
        assert read_all.wait(20), "the reader thread did not read ahead"
        return real_read(self, text)

    def predict(self, texts):
        sizes.append(len(texts))
        return real_predict(self, texts)

    monkeypatch.setattr(Engine, "read", read_once_all_arrived)
    monkeypatch.setattr(Engine, "predict", predict)
    monkeypatch.setattr(sys, "stdin", Pipe("".join(f"i love you {n}\n" for n in range(10))))
    assert main(["predict", *model_args, "--json"]) == 0
    assert sizes == [4, 4, 2]
    assert len(capsys.readouterr().out.splitlines()) == 10


def test_stdin_that_is_not_utf8_is_one_error_line(model_args):
    """Where Python reads stdin strictly (a UTF-8 locale; in its UTF-8 mode it passes the bytes
    through instead, and the line is answered)."""
    done = subprocess.run(
        [sys.executable, "-m", "bot", "predict", *model_args],
        input="i love you\ncaf\xe9\n".encode("latin-1"),
        capture_output=True,
        timeout=120,
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if not configures_whymoji(k)} | {"PYTHONIOENCODING": "utf-8:strict"},
    )
    assert done.returncode == 1 and b"Traceback" not in done.stderr
    [line] = error_lines(done.stderr.decode())
    assert line.startswith("whymoji: error: stdin is not UTF-8 text (invalid continuation byte)")


@pytest.mark.parametrize(("args", "threads"), [([], 1), (["--threads", "2"], 2)])
def test_threads_default_to_one_and_follow_the_option(model_args, monkeypatch, args, threads):
    import torch

    chosen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", chosen.append)
    assert main(["predict", *model_args, *args, "hello"]) == 0
    assert chosen == [threads]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--top", "0", "argument --top: must be from 1 to 64, got 0"),
        ("--top", "65", "argument --top: must be from 1 to 64, got 65"),
        ("--top", "many", "argument --top: must be an integer, got 'many'"),
        ("--device", "mps", "argument --device: must be one of cpu, cuda, got 'mps'"),
        ("--device", "CPU", "argument --device: must be one of cpu, cuda, got 'CPU'"),
        ("--threads", "-1", "argument --threads: must be an integer >= 0, got -1"),
        ("--repo-id", "x/y/z", "argument --repo-id: must be a Hub repository id"),
    ],
)
def test_a_bad_option_is_one_usage_error_line(capsys, model_args, option, value, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", *model_args, option, value, "hello"])
    assert exit_info.value.code == 2
    [line] = error_lines(capsys.readouterr().err)
    assert line.startswith(f"whymoji: error: predict: {message}")
    assert line.endswith("(see `whymoji predict --help`)")


def test_a_missing_weights_file_is_one_error_line(capsys, small_model_dir, tmp_path):
    missing = tmp_path / "missing.bin"
    code = main(
        ["predict", "--weights", str(missing), "--vocabulary", str(small_model_dir / "vocabulary.json"), "hello"]
    )
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert line.startswith("whymoji: error:") and str(missing) in line


def test_offline_without_cached_files_says_how_to_get_them(capsys, tmp_path):
    code = main(["predict", "--offline", "--cache-dir", str(tmp_path / "empty"), "hello"])
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert "offline mode is on" in line and "whymoji download" in line


@pytest.fixture
def hub(hub, monkeypatch):
    """The suite's fake Hub, with the CLI's environment pointing at it."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    return hub


def test_download_fetches_into_the_cache_and_predict_then_works_offline(capsys, hub, tmp_path, small_model_dir):
    cache = tmp_path / "cache"
    hub_args = ["--repo-id", hub.repo_id, "--cache-dir", str(cache)]
    assert main(["download", *hub_args]) == 0
    out = capsys.readouterr().out.splitlines()
    weights = Path(out[0].removeprefix("weights:").strip())
    vocabulary = Path(out[1].removeprefix("vocabulary:").strip())
    assert weights.is_relative_to(cache) and vocabulary.is_relative_to(cache)
    assert weights.read_bytes() == (small_model_dir / "pytorch_model.bin").read_bytes()

    hub.stop()
    assert main(["predict", "--offline", *hub_args, "--json", "hello world"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "hello world"


def test_download_failure_is_one_error_line(capsys, hub, tmp_path):
    code = main(["download", "--repo-id", "nobody/nothing", "--cache-dir", str(tmp_path)])
    assert code == 1
    [line] = error_lines(capsys.readouterr().err)
    assert "could not get pytorch_model.bin" in line


def run_console_script(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "whymoji"
    environ = {k: v for k, v in os.environ.items() if not configures_whymoji(k)}
    return subprocess.run([str(script), *args], input=stdin, capture_output=True, text=True, timeout=120, env=environ)


def test_the_console_script_predicts_from_stdin_and_fails_cleanly(model_args):
    done = run_console_script("predict", *model_args, "--json", stdin="i love you\nhate\n")
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["text"] for line in done.stdout.splitlines()] == ["i love you", "hate"]

    failed = run_console_script("predict", *model_args, "  ")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert error_lines(failed.stderr) == [
        "whymoji: error: message 1 is empty: there are no words or symbols for the model to read"
    ]
