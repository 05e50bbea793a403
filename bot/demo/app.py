"""The demo page as a Gradio app, and the local server ``whymoji demo`` runs it on.

``build_demo(engine)`` is the page (also what a Hugging Face Space serves, ``bot.demo.space``):

- a text box answered as you type. A change is noted at once (``on_typed``: the page's newest
  text) and queued for ``bot.explain.explain`` with Gradio's ``trigger_mode="always_last"`` (the
  browser sends one text at a time, holding back only the newest); when its turn comes, a
  request explains its page's newest text, and one whose text is already shown does nothing, so
  typing never queues stale work. At most ``EXPLAIN_CONCURRENCY`` explanations run at once (one
  torch thread each, one per core), others wait in order;
- a top-k control (1-64), the emoji lens (the score, or one of the top five emojis, which
  reshades the words), a word pick (its effect on each top emoji and the top five without it),
  and the reading. These are drawn from the explanation kept in the session, without running the
  model again.

Offline: no analytics or update check (``analytics_enabled=False`` and
``GRADIO_ANALYTICS_ENABLED=False`` before Gradio is imported), no share link, no footer links, no
run history (it would keep the texts in the browser), no monitoring page; Gradio's own fonts are
served from the package. The page makes no request to anything but the server it came from
(tests/demo/test_browser.py checks it in Chromium).

``DemoServer(demo, bind(host, port))`` serves the app with uvicorn until Ctrl-C (pages still
connected are cut after ``STOP_WAIT_S``, quietly), or in a thread for tests and benchmarks;
``bind`` takes the address first, so a busy port is a ``DemoError`` in words before the model
loads.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# Gradio's queue keeps a local record of its last events (the API page's timings: function name,
# time, session, never the inputs) and summarises it with pandas after every event; keep the
# record short and the summary occasional, so neither grows with the traffic.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")

import gradio as gr
import uvicorn
from fastapi import FastAPI

from bot.demo import DEFAULT_HOST, DEFAULT_PORT, page
from bot.demo.render import CSS
from bot.demo.view import DEFAULT_TOP_K, MAX_TOP_K, MIN_TOP_K, SCORE
from bot.errors import WhymojiError
from bot.explain.steps import Result, Steps

if TYPE_CHECKING:
    from bot.deepmoji.engine import Engine

log = logging.getLogger(__name__)

#: Explanations running at once: one torch thread each, one per core this process may use (at
#: most 8): on a small machine or a Space's two vCPUs, 2. More would only share the same cores.
EXPLAIN_CONCURRENCY = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1, 8))
#: Requests waiting in Gradio's queue beyond which new ones are refused (each typist has at most
#: one explanation waiting, thanks to ``always_last``).
MAX_QUEUE = 64
#: How long stopping waits for open connections (a page stays connected): then they are closed.
STOP_WAIT_S = 2
TITLE = "whymoji: which words pick the emojis"
EXAMPLE = "I love you so much!!! but this weather is awful"
INTRO = (
    "Type a message. Each word the model reads is shaded by how much it moves the emojis DeepMoji "
    "picks, with its number under it, as `/why` and `whymoji why` compute them: exact leave-one-out."
)

#: The same options for the local server and a Space's ``launch``: nothing that calls out.
SERVE_OPTIONS: dict[str, object] = {
    "footer_links": [],
    "run_history": False,
    "enable_monitoring": False,
    "pwa": False,
    "mcp_server": False,
    "ssr_mode": False,
    "show_error": False,
}


#: The page's answer when the model fails on a text (the failure is logged by kind, never the text).
FAILED = page.Notice("The model failed on this text; please try again.")


class DemoError(WhymojiError):
    """The demo cannot start (its address is taken or not valid)."""


def build_demo(engine: Engine, *, concurrency: int = EXPLAIN_CONCURRENCY, example: str = EXAMPLE) -> gr.Blocks:
    """The page, explaining with ``engine``."""

    slicers = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="whymoji-demo")
    newest = NewestTexts()

    async def explained_or_notice(text: str, k: object) -> page.Explained | page.Notice:
        """The explanation, slice by slice in a worker thread (a cancelled task stops between two)."""
        steps = page.explain_text_steps(engine, text, k)
        running: Future[page.Explained | page.Notice | _Unfinished] | None = None
        try:
            while True:
                running = slicers.submit(_next_slice, steps)
                result = await asyncio.wrap_future(running)
                running = None
                if not isinstance(result, _Unfinished):
                    return result
        except Exception as error:  # the model failed: say so on the page, log the kind, never the text
            log.warning("the demo could not explain a text: %s", type(error).__name__)
            return FAILED
        finally:
            if running is None:
                steps.close()
            else:  # cancelled while a slice runs: close the work once that slice is over
                running.add_done_callback(lambda _: steps.close())

    def on_typed(text: object, request: gr.Request) -> None:
        """Runs at once (unqueued) on every change: the page's newest text."""
        newest.note(request.session_hash, text if isinstance(text, str) else "")

    async def on_text(text: object, k: object, lens: object, pick: object, request: gr.Request) -> tuple[object, ...]:
        session = request.session_hash if request is not None else None
        # When its turn comes, a page's request explains the newest text typed there, which may
        # be newer than the one it was sent with; one whose text is already shown does nothing.
        typed = newest.newest(session, text if isinstance(text, str) else "")
        if newest.shown(session, typed):
            return tuple(gr.skip() for _ in everything)
        explained = await explained_or_notice(typed, k)
        if explained is not FAILED:  # a failure may be tried again
            newest.answered(session, typed)
        answer = page.answer(explained, k, lens, pick)
        return (
            explained,
            answer.words,
            answer.reading,
            answer.emojis,
            gr.Radio(choices=answer.lens_choices, value=answer.lens),
            gr.Dropdown(choices=answer.word_choices, value=answer.pick),
            answer.word,
        )

    def on_top_k(explained: page.Explained | page.Notice | None, k: object) -> tuple[object, str]:
        """Another top-k: the 64 probabilities are computed the first time it goes past five."""
        if isinstance(explained, page.Explained):
            explained = page.with_probabilities(engine, explained, k)
        return explained, page.emojis_html(explained, k)

    with gr.Blocks(analytics_enabled=False, title=TITLE) as demo:
        gr.Markdown(f"## {TITLE}\n{INTRO}")
        state = gr.State(None)
        with gr.Row():
            text = gr.Textbox(
                value=example,
                label="Message",
                lines=3,
                max_length=page.MAX_TEXT_CHARS,
                placeholder="Type a message",
                elem_id="wm-message",
                autofocus=True,
                scale=3,
            )
            top_k = gr.Slider(
                MIN_TOP_K, MAX_TOP_K, value=DEFAULT_TOP_K, step=1, label="Top emojis", elem_id="wm-topk", scale=1
            )
        lens = gr.Radio(choices=page.lens_choices(None), value=SCORE, label="Shade by", elem_id="wm-lens")
        words = gr.HTML(elem_id="wm-words", css_template=CSS)
        reading = gr.HTML(elem_id="wm-reading", css_template=CSS)
        with gr.Row():
            emojis = gr.HTML(elem_id="wm-emojis", css_template=CSS)
            with gr.Column():
                pick = gr.Dropdown(choices=[], value=None, label="Pick a word", elem_id="wm-pick")
                word = gr.HTML(elem_id="wm-word", css_template=CSS)

        everything = [state, words, reading, emojis, lens, pick, word]
        inputs = [text, top_k, lens, pick]
        # A new text: explained, at most `concurrency` at once. The browser holds back a newer
        # text while one is on its way (always_last: the newest replaces any held back), and
        # `on_typed` tells the server at once, so that the request explains the newest text when
        # its turn comes, and the one held back then finds it shown.
        text.change(
            on_typed, [text], None, queue=False, show_progress="hidden", api_name="typed", api_visibility="undocumented"
        )
        for listen, name in ((text.change, "explain"), (demo.load, None)):
            listen(
                on_text,
                inputs,
                everything,
                api_name=name,
                api_visibility="public" if name else "private",
                show_progress="hidden",
                trigger_mode="always_last",
                concurrency_limit=concurrency,
                concurrency_id="explain",
            )
        # Another view of the same explanation: no model run (but one prediction for a top-k
        # past five), so no limit.
        for listen, function, given, shown in (
            (top_k.change, on_top_k, top_k, [state, emojis]),
            (lens.input, page.words_html, lens, words),
            (pick.input, page.word_html, pick, word),
        ):
            listen(
                function,
                [state, given],
                shown,
                api_visibility="private",
                show_progress="hidden",
                trigger_mode="always_last",
                concurrency_limit=None,
            )
    demo.queue(max_size=MAX_QUEUE)
    return demo


class NewestTexts:
    """Each page's newest text and the last one answered, for the last ``capacity`` pages.

    In memory only, as long as the page's session (like the page's own state, which holds its
    explanation); never written anywhere or logged. The one answered is kept as a digest.
    """

    def __init__(self, capacity: int = 1000) -> None:
        self.capacity = capacity
        self._pages: OrderedDict[str, tuple[str | None, bytes | None]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def digest(text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def _update(self, session: str, text: str | None = None, answered: bytes | None = None) -> None:
        with self._lock:
            newest, shown = self._pages.get(session, (None, None))
            self._pages[session] = (text if text is not None else newest, answered or shown)
            self._pages.move_to_end(session)
            while len(self._pages) > self.capacity:
                self._pages.popitem(last=False)

    def note(self, session: str | None, text: str) -> None:
        """``text`` is the newest typed on the page."""
        if session is not None:
            self._update(session, text=text)

    def newest(self, session: str | None, sent: str) -> str:
        """The page's newest text, or ``sent`` for a page not seen typing (an API client)."""
        with self._lock:
            newest = self._pages.get(session, (None, None))[0] if session is not None else None
        return sent if newest is None else newest

    def answered(self, session: str | None, text: str) -> None:
        if session is not None:
            self._update(session, answered=self.digest(text))

    def shown(self, session: str | None, text: str) -> bool:
        """Whether ``text`` is the last one answered on this page (a page seen typing: an API
        client asking twice is answered twice)."""
        with self._lock:
            newest, shown = self._pages.get(session, (None, None)) if session is not None else (None, None)
        return newest is not None and shown is not None and shown == self.digest(text)


class _Unfinished:
    """What a slice returns while there are more to run."""


def _next_slice(steps: Steps[Result]) -> Result | _Unfinished:
    """Run one slice of ``steps``: its result at the end, else ``_Unfinished``."""
    try:
        next(steps)
    except StopIteration as finished:
        return finished.value
    return _Unfinished()


class _Server(uvicorn.Server):
    """uvicorn's server, quiet when it stops: a page still connected after ``STOP_WAIT_S`` has its
    stream cut, which uvicorn would log as an error with a traceback."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
        await super().shutdown(sockets)


class DemoServer:
    """``demo`` served by uvicorn on a bound socket (``bind``); ``.port`` is the port it got."""

    def __init__(self, demo: gr.Blocks, sock: socket.socket) -> None:
        self.socket = sock
        address = sock.getsockname()
        self.host, self.port = address[0], address[1]
        app = gr.mount_gradio_app(
            FastAPI(),
            demo,
            path="",
            server_name=self.host,
            server_port=self.port,
            **SERVE_OPTIONS,
        )
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=STOP_WAIT_S
        )
        self.server = _Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def serve(self) -> None:
        """Serve until Ctrl-C or SIGTERM (uvicorn finishes open requests, then returns)."""
        try:
            self.server.run(sockets=[self.socket])
        finally:
            self.socket.close()

    def start(self, timeout: float = 30.0) -> DemoServer:
        """Serve in a daemon thread; returns once the app answers (or raises ``DemoError``)."""
        self._thread = threading.Thread(target=self.serve, name="whymoji-demo", daemon=True)
        self._thread.start()
        _wait(lambda: self.server.started, timeout, "the demo server did not start")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> DemoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one), or ``DemoError`` in words."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise DemoError(f"--host {host}: not an address to listen on ({error.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        busy = " (another program uses it; choose another with --port)" if error.errno == errno.EADDRINUSE else ""
        raise DemoError(f"cannot listen on {host}:{port}: {error.strerror or error}{busy}") from None
    sock.listen(128)
    return sock


def _wait(ready: Callable[[], bool], timeout: float, problem: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise DemoError(problem)
        time.sleep(0.05)
