"""`whymoji agreement` and the measurement behind it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from bot.cli import main
from bot.deepmoji.agreement import measure_agreement


@pytest.fixture(autouse=True)
def restore_threads():
    """The command sets the process's model threads (use_threads); later tests expect one."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


class FixedModel:
    """Stands in for DeepMoji: fixed fp32 and int8 rows, to check the counting."""

    def __init__(self, fp32: np.ndarray, int8: np.ndarray) -> None:
        self.rows = {"fp32": fp32, "int8": int8}

    def predict(self, batch, *, precision="fp32"):
        return self.rows[precision][[ids[0] for ids in batch]]


def test_agreement_counts_top_one_top_k_and_differences():
    fp32 = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.3, 0.2], [0.7, 0.1, 0.1, 0.1]])
    int8 = np.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.2, 0.45, 0.25], [0.25, 0.2, 0.35, 0.2], [0.6, 0.1, 0.1, 0.2]])
    result = measure_agreement(FixedModel(fp32, int8), [[0], [1], [2], [3]], top_k=2, batch_size=3)
    assert result.messages == 4
    assert result.same_top == 3  # row 1's top emoji moved from class 3 to class 2
    assert result.same_top_k == 3  # row 3's second emoji changed (class 1 -> 3); row 1 keeps {2, 3}
    assert result.max_difference == pytest.approx(0.15)
    assert result.median_difference == pytest.approx(0.075)
    assert result.fp32_per_second > 0 and result.int8_per_second > 0


def test_agreement_needs_messages():
    with pytest.raises(ValueError, match="no messages"):
        measure_agreement(FixedModel(np.zeros((1, 4)), np.zeros((1, 4))), [])


def test_the_command_prints_agreement_and_speed(tmp_path, capsys, model_args):
    messages = tmp_path / "messages.txt"
    messages.write_text("i love you !!\n\nso sad :(\n   \nwhat a day lol\nhate this\n", encoding="utf-8")
    assert main(["agreement", str(messages), "--top-k", "2", *model_args]) == 0
    out = capsys.readouterr().out
    assert f"int8 against fp32 on 4 messages of {messages}:" in out
    top = re.search(r"same top emoji: +(\d+\.\d)% \((\d) of 4\)", out)
    assert top and float(top.group(1)) == pytest.approx(int(top.group(2)) / 4 * 100)
    assert re.search(r"same top-2 set: +\d+\.\d% \(\d of 4\)", out)
    assert re.search(r"largest difference: +0\.\d{4} \(a probability; median per message 0\.\d{4}\)", out)
    assert re.search(r"fp32 \d+ messages/s, int8 \d+ messages/s \(\d+\.\d\dx\), \d+ thread\(s\)", out)


def test_the_command_reads_the_text_field_of_json_lines_and_honours_the_limit(tmp_path, capsys, model_args):
    messages = tmp_path / "corpus.jsonl"
    rows = [{"text": text, "source": "test"} for text in ("i love you", "   ", "so sad", "lol", "why")]
    messages.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    assert main(["agreement", str(messages), "--limit", "3", *model_args]) == 0
    out = capsys.readouterr().out
    assert "on 2 messages" in out and "(1 without tokens skipped)" in out


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (None, "absent.txt", "cannot read the messages file"),
        ("   \n\n", "blank.txt", "no message with words or symbols"),
        ('{"body": "hi"}\n', "bad.jsonl", 'bad.jsonl, line 1: expected a JSON object with a "text" field'),
    ],
)
def test_bad_message_files_are_one_line_errors(tmp_path, capsys, model_args, content, name, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["agreement", str(path), *model_args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("whymoji: error: ") and message in err[0]


def test_int8_needs_the_cpu(tmp_path, capsys, model_args):
    path = tmp_path / "messages.txt"
    path.write_text("hello\n", encoding="utf-8")
    assert main(["agreement", str(path), "--device", "cuda", *model_args]) == 1
    assert "int8 runs on ONNX Runtime on the CPU only" in capsys.readouterr().err


def test_a_limit_below_one_is_refused(tmp_path, capsys, model_args):
    path = tmp_path / "messages.txt"
    path.write_text("hello\n", encoding="utf-8")
    assert main(["agreement", str(path), "--limit", "0", *model_args]) == 1
    assert "whymoji: error: --limit must be at least 1, got 0" in capsys.readouterr().err


def test_threads_follow_the_shared_option(tmp_path, capsys, model_args):
    path = tmp_path / "messages.txt"
    path.write_text("hello\nlol\n", encoding="utf-8")
    assert main(["agreement", str(path), "--threads", "3", *model_args]) == 0
    assert "3 thread(s)" in capsys.readouterr().out
