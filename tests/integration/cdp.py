# Copyright 2026 Async Lab contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A tiny client of the Chrome DevTools protocol: headless Chromium for the integration tests.

Only what the tests need: open a page with a session cookie, evaluate
JavaScript, wait for a condition, take a screenshot. It speaks the protocol
over ``websocket-client`` (a dependency of Odoo's own browser tests).
"""

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-port=0",
)


class CdpError(RuntimeError):
    pass


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise CdpError("no Chromium on PATH (%s)" % ", ".join(CHROMIUM_NAMES))


class Chromium:
    """One headless Chromium with one page; use it as a context manager."""

    def __init__(self, width=1440, height=900, timeout=30):
        self.width, self.height, self.timeout = width, height, timeout
        self.profile = None
        self.proc = None
        self.ws = None
        self._next_id = 0

    # -- life ----------------------------------------------------------------
    def __enter__(self):
        self.profile = Path(tempfile.mkdtemp(prefix="async_lab_chromium_"))
        self.proc = subprocess.Popen(
            [
                find_chromium(),
                *CHROMIUM_FLAGS,
                "--user-data-dir=%s" % self.profile,
                "--window-size=%d,%d" % (self.width, self.height),
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._devtools_port()
            self.ws = websocket.create_connection(self._page_url(port), timeout=self.timeout, suppress_origin=True)
            self.send("Page.enable")
            self.send("Runtime.enable")
            self.resize(self.width, self.height)
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info):
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)

    def _devtools_port(self):
        """Chromium writes the port it chose into the profile's DevToolsActivePort."""
        path = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CdpError("Chromium exited with code %s" % self.proc.returncode)
            if path.exists() and path.read_text().strip():
                return int(path.read_text().split()[0])
            time.sleep(0.1)
        raise CdpError("Chromium did not open its DevTools port within %ss" % self.timeout)

    def _page_url(self, port):
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            with urllib.request.urlopen("http://127.0.0.1:%d/json/list" % port, timeout=5) as resp:
                pages = [t for t in json.load(resp) if t["type"] == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            time.sleep(0.1)
        raise CdpError("Chromium opened no page")

    # -- protocol --------------------------------------------------------------
    def send(self, method, **params):
        """Call ``method`` and return its result (events in between are dropped)."""
        self._next_id += 1
        call_id = self._next_id
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise CdpError("%s: %s" % (method, message["error"]))
                return message.get("result", {})

    # -- helpers -----------------------------------------------------------------
    def resize(self, width, height):
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def set_cookie(self, name, value, url):
        self.send("Network.setCookie", name=name, value=value, url=url)

    def navigate(self, url):
        self.send("Page.navigate", url=url)

    def evaluate(self, expression):
        """The JSON value of a JavaScript expression (awaited if it is a promise).

        A DOM node has no JSON value (it comes back as ``{}``): test for one
        with ``!!document.querySelector(...)``.
        """
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(
                "%s: %s"
                % (
                    expression,
                    result["exceptionDetails"].get("exception", {}).get("description", result["exceptionDetails"]),
                )
            )
        return result["result"].get("value")

    def wait_for(self, expression, timeout=30, interval=0.25, what=None):
        """Evaluate ``expression`` until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CdpError("timed out after %ss waiting for %s" % (timeout, what or expression))
            time.sleep(interval)

    def screenshot(self, path):
        data = self.send("Page.captureScreenshot", format="png")["data"]
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)
