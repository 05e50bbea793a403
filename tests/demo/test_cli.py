"""`whymoji demo` as a user meets it: other commands never load Gradio, errors are one line, and
the page is served on the address asked for until Ctrl-C."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.cli.test_cli import clean_environ, modules_loaded_by, python
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["demo", "--help"], ["predict", "--help"], ["why", "--help"], ["demo", "--port", "x"]],
    ids=["help", "version", "demo-help", "predict-help", "why-help", "demo-usage-error"],
)
def test_the_cli_never_imports_gradio_unless_serving_the_demo(argv):
    assert modules_loaded_by(argv, ("gradio", "fastapi", "uvicorn", "torch")) == []


def test_predict_and_why_run_without_gradio(model_args):
    done = python(
        "import sys\n"
        "from bot.cli import main\n"
        f"main(['predict', *{model_args!r}, 'i love you'])\n"
        f"main(['why', *{model_args!r}, 'i love you'])\n"
        "print(sorted(name for name in ('gradio', 'fastapi', 'uvicorn') if name in sys.modules))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_without_gradio_the_demo_says_how_to_install_it(model_args):
    done = python(
        "import sys\n"
        "sys.modules['gradio'] = None  # as if the demo extra were not installed\n"
        "from bot.cli import main\n"
        f"sys.exit(main(['demo', *{model_args!r}]))\n"
    )
    assert done.returncode == 1
    assert (
        done.stderr
        == "whymoji: error: whymoji demo needs Gradio: install the demo extra with `pip install -e '.[demo]'`\n"
    )


def test_a_busy_port_is_one_line_before_the_model_loads(model_args):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = python(
            "import sys\n"
            "from bot.cli import main\n"
            f"sys.exit(main(['demo', '--port', '{port}', '--weights', '/nonexistent/weights.bin']))\n"
        )
    assert done.returncode == 1
    # The port is refused before any model file is looked at: nothing about the missing weights.
    assert done.stderr.startswith(f"whymoji: error: cannot listen on 127.0.0.1:{port}: ")
    assert done.stderr.endswith("(another program uses it; choose another with --port)\n")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("port", ["-1", "65536", "http"])
def test_a_bad_port_is_a_usage_error(port):
    done = python(f"from bot.cli import main\nmain(['demo', '--port', {port!r}])\n")
    assert done.returncode == 2
    assert "whymoji: error: demo: argument --port: must be a port number from 0 to 65535" in done.stderr


def test_an_unknown_host_is_one_line():
    done = python("import sys\nfrom bot.cli import main\nsys.exit(main(['demo', '--host', 'no such host']))\n")
    assert done.returncode == 1
    assert done.stderr.startswith("whymoji: error: --host no such host: not an address to listen on")
    assert done.stderr.count("\n") == 1


def test_whymoji_demo_serves_the_page_until_ctrl_c(model_args):
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "demo", "--port", "0", *model_args],
        cwd=REPO_ROOT,
        env=clean_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()  # the note with the address, once the server listens
        assert line.startswith("whymoji: note: the demo page is at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    page = response.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert "gradio_config" in page and "whymoji: which words pick the emojis" in page
        # A page stays connected (its heartbeat stream): Ctrl-C still ends the server, quietly.
        address = urllib.parse.urlsplit(url)
        stream = http.client.HTTPConnection(address.hostname, address.port, timeout=30)
        stream.request("GET", "/gradio_api/heartbeat/test-page")
        assert stream.getresponse().status == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, 130)
        stream.close()
        rest = process.stderr.read()
        assert "Traceback" not in rest and "ERROR" not in rest, rest
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
        process.stderr.close()
