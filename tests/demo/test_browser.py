"""The demo page in a real browser: headless Chromium (Debian's ``chromium`` and ``chromium-driver``)
driven by Selenium, against the page served on 127.0.0.1 (port 0) by ``DemoServer``.

It types a message and checks the shaded words and their numbers against ``whymoji why --json``
on the same text, picks an emoji, a word and a top-k and checks what they show, types markup
that would run if it were not escaped, checks that the page asked nothing of any other host
(Chrome's performance log), and saves a screenshot. Skips where there is no browser, unless
``WHYMOJI_TEST_REQUIRE_BROWSER=1`` (CI sets it: there the test must run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.explain.render import format_probability, format_score
from tests.conftest import REPO_ROOT

REQUIRED = os.environ.get("WHYMOJI_TEST_REQUIRE_BROWSER") == "1"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def _missing() -> str | None:
    try:
        import gradio  # noqa: F401
        import selenium  # noqa: F401
    except ImportError as error:
        return f"{error.name} is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not CHROMEDRIVER:
        return "no chromium and chromedriver (apt-get install chromium chromium-driver)"
    return None


if (why_not := _missing()) is not None:
    if REQUIRED:
        raise RuntimeError(f"WHYMOJI_TEST_REQUIRE_BROWSER=1 but {why_not}")
    pytest.skip(why_not, allow_module_level=True)

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT_S = 60  # a shared 2-core machine: generous, and never a timing assertion

MESSAGE = "i love you so much !! but this day was bad :("
ATTACK = (
    '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script> '
    "${window.pwned=3} {{constructor.constructor('window.pwned=4')()}} `x` <b>bold</b> &amp;"
)


@pytest.fixture(scope="module")
def server(engine) -> Iterator[object]:
    from bot.demo.app import DemoServer, bind, build_demo

    with DemoServer(build_demo(engine, example=""), bind("127.0.0.1", 0)) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,1500"):
        options.add_argument(argument)
    for argument in ("--no-first-run", "--disable-background-networking", "--disable-component-update"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(server.url)
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#wm-message textarea"))
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def why_json(small_model_dir) -> Callable[[str], dict]:
    def run(text: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "bot", "why", "--json", "--offline", "--weights",
             str(small_model_dir / "pytorch_model.bin"), "--vocabulary", str(small_model_dir / "vocabulary.json"), text],
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=True,
        )  # fmt: skip
        return json.loads(done.stdout)

    return run


def wait(driver: WebDriver, condition: Callable[[WebDriver], object]) -> object:
    # A late answer to the typing may redraw what a condition looks at: then it looks again.
    waiting = WebDriverWait(driver, WAIT_S, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
    return waiting.until(condition)


def type_message(driver: WebDriver, text: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, "#wm-message textarea")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text)


def shown_words(driver: WebDriver) -> list[tuple[str, str, str]]:
    """(word as shown, number under it, data-shade) of every shaded word on the page."""
    return [
        (
            word.find_element(By.CLASS_NAME, "wm-t").text,
            word.find_element(By.CLASS_NAME, "wm-s").text,
            word.get_attribute("data-shade"),
        )
        for word in driver.find_elements(By.CSS_SELECTOR, "#wm-words .wm-w")
    ]


def expected_words(result: dict, values: list[float]) -> list[tuple[str, str, str]]:
    scale = max(abs(value) for value in values)
    return [
        (result["text"][word["start"] : word["end"]], format_score(value), f"{value / scale:.3f}")
        for word, value in zip(result["words"], values)
    ]


def pick_word(driver: WebDriver, index: int) -> str:
    """Open the word pick, choose word ``index``, wait for its view; the option's label.
    (A late answer to the typing may redraw the list while it is open: then try again.)"""

    def pick(d: WebDriver) -> str | None:
        try:
            d.find_element(By.CSS_SELECTOR, "#wm-pick input").click()
            option = WebDriverWait(d, 5).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, f"[role=option][data-index='{index}']")
            )[0]
            label = option.get_attribute("aria-label")
            option.click()
            WebDriverWait(d, 5).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, f"#wm-word .wm-word[data-index='{index}']")
            )
            return label
        except (StaleElementReferenceException, TimeoutException):
            return None

    return wait(driver, pick)


def table(driver: WebDriver, selector: str) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, f"{selector} tbody tr")
    ]


def requested_hosts(driver: WebDriver) -> set[str]:
    """Every origin the page asked for since the last call (Chrome's performance log)."""
    urls = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.add(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.add(message["params"]["url"])
    return {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for url in urls if not url.startswith("data:")}


def local_origins(server) -> set[str]:
    origin = server.url.rstrip("/")
    return {origin, origin.replace("http://", "ws://", 1)}


def test_typed_message_shows_the_words_and_numbers_of_why_json(browser, server, why_json, tmp_path):
    result = why_json(MESSAGE)
    type_message(browser, MESSAGE)
    expected = expected_words(result, [word["score"] for word in result["words"]])
    wait(browser, lambda d: shown_words(d) == expected)
    # The top emojis, as /why prints them, and the reading.
    emojis = [(e["emoji"], e["name"], format_probability(e["probability"])) for e in result["top_emojis"]]
    assert [(row[1], row[2], row[3]) for row in table(browser, "#wm-emojis")] == emojis
    reading = browser.find_element(By.CSS_SELECTOR, "#wm-reading .wm-reading").text
    known, words = result["reading"]["known"], result["reading"]["words"]
    assert f"knows {known} of {words} words here ({format_probability(result['known_words'])})" in reading
    assert f"It reads all {result['reading']['tokens']} words and symbols." in reading
    # The shade is a colour too: warm for a word that raises the emojis, cool for one that lowers them.
    for element, word in zip(browser.find_elements(By.CSS_SELECTOR, "#wm-words .wm-w"), result["words"]):
        background = element.value_of_css_property("background-color")
        assert background.startswith("rgba(234, 88, 12" if word["score"] >= 0 else "rgba(37, 99, 235")
    browser.save_screenshot(str(tmp_path / "demo.png"))
    assert (tmp_path / "demo.png").read_bytes().startswith(b"\x89PNG")
    if target := os.environ.get("WHYMOJI_TEST_SCREENSHOT_DIR"):
        shutil.copy(tmp_path / "demo.png", Path(target) / "demo-test.png")
    hosts = requested_hosts(browser)  # everything since the page was opened
    assert server.url.rstrip("/") in hosts
    assert hosts <= local_origins(server)


def test_picking_an_emoji_reshades_the_words_by_their_effect_on_it(browser, server, why_json):
    result = why_json(MESSAGE)
    type_message(browser, MESSAGE)
    wait(browser, lambda d: shown_words(d) == expected_words(result, [word["score"] for word in result["words"]]))
    for rank in (1, 4):
        emoji = result["top_emojis"][rank]
        label = f"{emoji['emoji']} {format_probability(emoji['probability'])}"
        choice = wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, f"#wm-lens input[value='{rank}']"))
        assert wait(browser, lambda d: choice.find_element(By.XPATH, "..").text) == label
        choice.click()
        expected = expected_words(result, [word["effects"][rank] for word in result["words"]])
        wait(browser, lambda d: shown_words(d) == expected)
        legend = browser.find_element(By.CSS_SELECTOR, "#wm-words .wm-lens").text
        assert legend.startswith(f"effect on {emoji['emoji']} {emoji['name']}")
    assert requested_hosts(browser) <= local_origins(server)


def test_picking_a_word_shows_its_effects_and_the_top_five_without_it(browser, server, why_json):
    result = why_json(MESSAGE)
    type_message(browser, MESSAGE)
    expected = expected_words(result, [word["score"] for word in result["words"]])
    wait(browser, lambda d: shown_words(d) == expected)
    index = 3
    word = result["words"][index]
    label = pick_word(browser, index)
    assert label == f"{index + 1}. {MESSAGE[word['start'] : word['end']]}"
    assert browser.find_element(By.CSS_SELECTOR, "#wm-word .wm-word-score").text == format_score(word["score"])
    assert table(browser, "#wm-word .wm-effects") == [
        [e["emoji"], e["name"], format_probability(e["probability"]), format_score(effect)]
        for e, effect in zip(result["top_emojis"], word["effects"])
    ]
    assert table(browser, "#wm-word .wm-without") == [
        [str(rank), e["emoji"], e["name"], format_probability(e["probability"])]
        for rank, e in enumerate(word["without_top"], start=1)
    ]
    assert requested_hosts(browser) <= local_origins(server)


def test_top_k_lists_that_many_emojis(browser, server, why_json):
    result = why_json(MESSAGE)
    type_message(browser, MESSAGE)
    wait(browser, lambda d: shown_words(d) == expected_words(result, [word["score"] for word in result["words"]]))
    assert len(table(browser, "#wm-emojis")) == 5
    number = browser.find_element(By.CSS_SELECTOR, "#wm-topk input[type=number]")
    number.send_keys(Keys.CONTROL, "a")
    number.send_keys("12", Keys.ENTER)
    wait(browser, lambda d: len(table(d, "#wm-emojis")) == 12)
    rows = table(browser, "#wm-emojis")
    assert [row[1] for row in rows[:5]] == [e["emoji"] for e in result["top_emojis"]]
    assert [row[0] for row in rows] == [str(rank) for rank in range(1, 13)]


def test_typed_markup_is_shown_as_text_and_never_runs(browser, server, why_json):
    result = why_json(ATTACK)
    type_message(browser, ATTACK)
    expected = expected_words(result, [word["score"] for word in result["words"]])
    wait(browser, lambda d: shown_words(d) == expected)
    assert browser.execute_script("return window.pwned") is None
    area = browser.find_element(By.CSS_SELECTOR, "#wm-words .wm-text")
    assert not area.find_elements(By.CSS_SELECTOR, "img, script, b, svg, a")
    shown = browser.execute_script(
        "const area = arguments[0].cloneNode(true);"
        "area.querySelectorAll('.wm-s, .wm-cut').forEach(e => e.remove());"
        "return area.textContent;",
        area,
    )
    assert shown == ATTACK
    assert requested_hosts(browser) <= local_origins(server)
