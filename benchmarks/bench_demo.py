"""The demo page's answer times (one person, ten typing at once) and its memory, against the bot's.

A ``whymoji demo`` process (full-size seeded checkpoint, ``benchmarks/memory.py``'s; the real
vocabulary when ``shared/`` is there) serves on 127.0.0.1 with ``--threads 1``; clients talk to
it over HTTP as a browser's page does (Gradio's queue, through ``gradio_client``):

* one person: a 40-token text (a corpus message cut to 40 tokens) sent ``--rounds`` times, each
  answer timed from the request to its arrival; beside it, ``explain`` on the same text in this
  process on one thread (the work alone);
* ``--people`` (10) typing at once: each types a 40-token message a word every ``--word-s``
  (0.6 s: 100 words a minute, a fast typist), starting within ``--stagger-s`` (3 s) of the
  others, and its page does what the browser's does: each change noted at once (``/typed``),
  one explanation at a time (``always_last``); the server explains the page's newest text when
  a request's turn comes. Each answer is timed from the moment the text it explains was typed;
  the last one from the last keystroke. Then the stress case: a word every 0.3 s, all in
  lockstep;
* memory: VmRSS and VmHWM of the demo process, started, after one person and after the ten;
  beside it, a process that only loads the same engine and explains the same texts (what the
  model side costs without Gradio), against the bot's 600 MB budget.

    .venv/bin/python -m benchmarks.bench_demo [--people 10] [--rounds 10] [--screenshot docs/demo.png]

``--screenshot PATH`` also saves the page in headless Chromium (``chromium``, ``chromium-driver``)
after typing ``--screenshot-text``, with the most influential word picked: the README's picture.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("WHYMOJI_SHARED", REPO.parent / "shared"))
BUDGET_MB = 600
#: The stress case, always run after the chosen one: 200 words a minute, everyone in lockstep.
STRESS_WORD_S = 0.3
#: The vocabulary the typists count tokens with (``start_demo``'s model folder sets it).
TOKENIZER_FILE = Path()
SCREENSHOT_TEXT = "I love you so much!!! but this weather is awful, I'm soaked 😭"


def status_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0]) * 1024 / 1e6
    return values


def messages(count: int, tokens: int = 40) -> list[str]:
    """Corpus messages of at least ``tokens`` tokens cut to that many (synthetic ones without shared/)."""
    from bot.deepmoji.tokenizer import Tokenizer

    corpus = SHARED / "corpus" / "messages.jsonl"
    vocabulary = SHARED / "deepmoji" / "vocabulary.json"
    found: list[str] = []
    if corpus.is_file() and vocabulary.is_file():
        tokenizer = Tokenizer.from_file(vocabulary)
        for line in corpus.read_text(encoding="utf-8").splitlines():
            text = json.loads(line).get("text", "")
            read = tokenizer.tokenize(text)
            if len(read) >= tokens and len(text) <= 4000:
                found.append(text[: read[tokens - 1].end])
            if len(found) == count:
                return found
    words = "i love this so much what a day lol not happy at all why would you do that to me".split()
    while len(found) < count:
        i = len(found)
        found.append(" ".join(words[(i * 7 + j) % len(words)] for j in range(tokens)))
    return found


def start_demo(folder: Path) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "bot", "demo", "--port", "0", "--threads", "1", "--offline"]
    command += ["--weights", str(folder / "pytorch_model.bin"), "--vocabulary", str(folder / "vocabulary.json")]
    process = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = process.stderr.readline()
    if " at http" not in line:
        process.kill()
        sys.exit(f"the demo did not start: {line}{process.stderr.read()}")
    return process, line.split(" at ", 1)[1].split()[0]


def client(url: str):
    from gradio_client import Client

    return Client(url, verbose=False)


def one_person(url: str, text: str, rounds: int) -> list[float]:
    page = client(url)
    page.predict(text, 5, -1, None, api_name="/explain")  # warm: the first call sets the session up
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        page.predict(text, 5, -1, None, api_name="/explain")
        seconds.append(time.perf_counter() - started)
    return seconds


def typist(
    url: str, text: str, word_s: float, start: float, results: list, refused: list, dropped: list, index: int
) -> None:
    """Types ``text`` a word every ``word_s`` from ``start``, and sends what the browser's page
    sends: every change to ``/typed`` at once (the page's newest text), and one explanation at a
    time (``always_last``). The server explains the page's newest text when a request's turn
    comes; each answer is timed from the moment the text it explains was typed (known by the
    number of tokens it says it read)."""
    from gradio_client.utils import QueueError

    from bot.deepmoji.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_file(TOKENIZER_FILE)
    page = client(url)
    words = text.split(" ")
    prefixes = [" ".join(words[: count + 1]) for count in range(len(words))]
    by_tokens = {len(tokenizer.tokenize(prefix)): count for count, prefix in enumerate(prefixes)}
    typed_at = [start + word_s * i for i in range(len(words))]
    answers, noted, answered, job = [], -1, -1, None
    while answered < len(words) - 1:
        now = time.perf_counter()
        latest = max((i for i, at in enumerate(typed_at) if at <= now), default=-1)
        if latest > noted:
            page.predict(prefixes[latest], api_name="/typed")
            noted = latest
        if job is not None and job.done():
            try:
                shown = job.result()
            except QueueError:
                refused[index] += 1
            except concurrent.futures.CancelledError:
                dropped[index] += 1
            else:
                if isinstance(shown[1], str) and (read := re.search(r"reads all (\d+) words", shown[1])):
                    count = by_tokens[int(read.group(1))]
                    answers.append(time.perf_counter() - typed_at[count])
                    answered = max(answered, count)
            job = None
        if job is None and noted > answered:
            job = page.submit(prefixes[noted], 5, -1, None, api_name="/explain")
        time.sleep(0.005)
    results[index] = answers


def ten_people(url: str, texts: list[str], word_s: float, stagger_s: float) -> list[list[float]]:
    """Everyone types at once; each starts within ``stagger_s`` of the others (0: in lockstep)."""
    results: list = [[] for _ in texts]
    refused, dropped = [0] * len(texts), [0] * len(texts)
    rng = random.Random(1)
    start = time.perf_counter() + 2.0  # every page connected first
    threads = [
        threading.Thread(
            target=typist, args=(url, text, word_s, start + rng.uniform(0, stagger_s), results, refused, dropped, index)
        )
        for index, text in enumerate(texts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if any(refused) or any(dropped):
        print(f"  requests refused (queue full): {sum(refused)}; dropped by Gradio: {sum(dropped)} (sent again)")
    return results


def model_only(folder: Path, texts: list[str]) -> dict:
    """In a fresh child: the engine alone, explaining the same texts (no Gradio)."""
    code = (
        "import json, sys, os\n"
        "from pathlib import Path\n"
        "from benchmarks.bench_demo import status_mb\n"
        "from bot.deepmoji.engine import Engine\n"
        "from bot.deepmoji.files import ModelFiles\n"
        "from bot.deepmoji.threads import use_threads\n"
        "from bot.explain import explain\n"
        "use_threads(1)\n"
        f"folder = Path({str(folder)!r})\n"
        "engine = Engine.load(ModelFiles(folder / 'pytorch_model.bin', folder / 'vocabulary.json'))\n"
        "loaded = status_mb(os.getpid())\n"
        f"for text in {texts!r}:\n"
        "    explain(engine, text)\n"
        "    engine.model.predict([engine.encode(text)])\n"
        "print(json.dumps({'loaded': loaded, 'explained': status_mb(os.getpid())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def gradio_alone() -> dict:
    """In a fresh child: the page served with no model loaded (Gradio, FastAPI, uvicorn, the app)."""
    code = (
        "import json, os, urllib.request\n"
        "from benchmarks.bench_demo import status_mb\n"
        "from bot.demo.app import DemoServer, bind, build_demo\n"
        "with DemoServer(build_demo(None, example=''), bind('127.0.0.1', 0)) as server:\n"
        "    urllib.request.urlopen(server.url, timeout=30).read()\n"
        "    print(json.dumps(status_mb(os.getpid())))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def explain_alone(folder: Path, text: str, rounds: int) -> list[float]:
    """``explain`` on ``text`` in this process, one torch thread: the work without the server."""
    from bot.deepmoji.engine import Engine
    from bot.deepmoji.files import ModelFiles
    from bot.deepmoji.threads import use_threads
    from bot.explain import explain

    use_threads(1)
    engine = Engine.load(ModelFiles(folder / "pytorch_model.bin", folder / "vocabulary.json"))
    explain(engine, text)
    seconds = []
    for _ in range(rounds):
        started = time.perf_counter()
        explain(engine, text)
        seconds.append(time.perf_counter() - started)
    return seconds


def screenshot(url: str, path: Path, text: str) -> None:
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1250"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 60, poll_frequency=0.1)
        box = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#wm-message textarea"))
        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)
        driver.execute_script(
            "const box = arguments[0]; box.value = arguments[1];"
            "box.dispatchEvent(new Event('input', {bubbles: true}));",
            box,
            text,
        )
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#wm-lens input[value='4']"))
        time.sleep(1.0)
        shades = [float(w.get_attribute("data-shade")) for w in driver.find_elements(By.CSS_SELECTOR, ".wm-w")]
        best = max(range(len(shades)), key=lambda index: shades[index])
        driver.find_element(By.CSS_SELECTOR, "#wm-pick input").click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"[role=option][data-index='{best}']"))[0].click()
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f"#wm-word .wm-word[data-index='{best}']"))
        time.sleep(0.5)
        path.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(path))
    finally:
        driver.quit()


def summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s ({len(ordered)} answers)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--word-s", type=float, default=0.6, help="seconds between two typed words (0.6: 100 wpm)")
    parser.add_argument("--stagger-s", type=float, default=3.0, help="people start within this many seconds")
    parser.add_argument("--screenshot", type=Path, help="also save the page as a PNG here")
    parser.add_argument("--screenshot-text", default=SCREENSHOT_TEXT)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from benchmarks.memory import write_model

    with tempfile.TemporaryDirectory(prefix="whymoji-demo-") as tmp:
        folder = Path(tmp)
        write_model(folder)
        global TOKENIZER_FILE
        TOKENIZER_FILE = folder / "vocabulary.json"
        texts = messages(args.people + 1)
        print(f"full-size seeded checkpoint; {os.cpu_count()} CPUs; 40-token texts; the demo on --threads 1")
        alone = explain_alone(folder, texts[0], args.rounds)
        print(f"explain alone, in this process, one thread: {summary(alone)}")
        process, url = start_demo(folder)
        try:
            memory = {"started": status_mb(process.pid)}
            single = one_person(url, texts[0], args.rounds)
            memory["after one person"] = status_mb(process.pid)
            print(f"one person, a 40-token text through the page: {summary(single)}")
            for word_s, stagger_s in ((args.word_s, args.stagger_s), (STRESS_WORD_S, 0.0)):
                typed = ten_people(url, texts[1 : args.people + 1], word_s, stagger_s)
                memory[f"after {args.people} typing, a word per {word_s} s"] = status_mb(process.pid)
                every = [second for answers in typed for second in answers]
                start = f"starting within {stagger_s} s" if stagger_s else "in lockstep"
                print(f"{args.people} people typing at once, a word every {word_s} s, {start}:")
                print(f"  every answer: {summary(every)}")
                worst = max(every)
                finals = [answers[-1] for answers in typed]
                print(f"  the last answer, after the last keystroke: {summary(finals)}; slowest of all {worst:.2f} s")
            if args.screenshot:
                screenshot(url, args.screenshot, args.screenshot_text)
                print(f"screenshot: {args.screenshot}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print("the demo did not stop within 30 s of SIGTERM: killed")
                process.kill()
                process.wait()
        model = model_only(folder, texts[: args.people + 1])
        served = gradio_alone()
    print(f"\n{'process':<44}{'RSS MB':>10}{'peak MB':>10}")
    for stage, values in memory.items():
        print(f"{'demo, ' + stage:<44}{values['VmRSS']:>10.0f}{values['VmHWM']:>10.0f}")
    for stage, values in model.items():
        print(f"{'engine alone (no Gradio), ' + stage:<44}{values['VmRSS']:>10.0f}{values['VmHWM']:>10.0f}")
    print(f"{'the page alone (Gradio, no model), serving':<44}{served['VmRSS']:>10.0f}{served['VmHWM']:>10.0f}")
    peak = max(values["VmHWM"] for values in memory.values())
    engine = model["explained"]["VmHWM"]
    print(
        f"demo peak {peak:.0f} MB; the engine alone peaks at {engine:.0f} MB, the page alone takes {served['VmRSS']:.0f} MB"
    )
    print(f"the engine alone is {'within' if engine < BUDGET_MB else 'OVER'} the bot's {BUDGET_MB} MB budget")


if __name__ == "__main__":
    main()
