"""Open a rendered report in headless Chromium, as a reviewer would.

Drives Chromium through the DevTools protocol over ``--remote-debugging-pipe`` (NUL-delimited
JSON on file descriptors 3 and 4), so no websocket client or extra package is needed. Checks:
no console errors, no uncaught exceptions, no JavaScript dialog (the report contains
``<script>alert(1)</script>`` in user strings), no network request other than ``file:`` /
``data:``, the verdict text visible at the top of the first screen, a non-blank screenshot with
the verdict banner's colour, and that the page prints to PDF.

Skipped with a reason when no Chromium is installed on a developer machine; under ``CI=true``
a missing browser FAILS instead (``.ci/run`` installs Debian's ``chromium``:
``apt-get update && apt-get install -y --no-install-recommends chromium``), so CI can never
pass without having looked at the report.
"""
from __future__ import annotations

import base64
import copy
import fcntl
import io
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from reports.render import render_all

DATA = Path(__file__).parent / "data"
EXAMPLE = Path(__file__).parent.parent / "docs" / "example-report" / "results.json"   # a real reference run
XSS = "<script>alert(1)</script>"
XSS_IMG = '<img src=x onerror="alert(2)">'


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


CHROMIUM = _find_chromium()
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="headless Chromium not installed "
                                "(apt-get install -y chromium); the browser check needs it")


class Browser:
    """A minimal DevTools-protocol client over Chromium's debugging pipe (test helper)."""

    def __init__(self, user_data_dir: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        # fds the child sees as 3 (commands in) and 4 (responses out); the shell maps them.
        cmd_r, self._cmd_w = os.pipe()
        self._resp_r, resp_w = os.pipe()
        # Move the child's ends above fd 10 first, so dup2 onto 3 and 4 cannot clobber them.
        for name in ("cmd_r", "resp_w"):
            fd = locals()[name]
            high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
            os.close(fd)
            if name == "cmd_r":
                cmd_r = high
            else:
                resp_w = high
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
                "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND",     # no network, even if something tried
                f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"]
        self.stderr_path = user_data_dir / "chromium-stderr.log"
        self._stderr = open(self.stderr_path, "wb")

        def child_fds() -> None:
            # Runs in the child before exec: put the pipe ends on fds 3 and 4 (dup2 makes them
            # inheritable; every other fd Python opened is close-on-exec).
            os.dup2(cmd_r, 3)
            os.dup2(resp_w, 4)

        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                                     close_fds=False, preexec_fn=child_fds)
        os.close(cmd_r)
        os.close(resp_w)
        self._next_id = 0
        self._responses: dict[int, dict[str, Any]] = {}
        self.events: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self._cv = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.session: str | None = None

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._resp_r, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cv:
                        self._responses[msg["id"]] = msg
                        self._cv.notify_all()
                else:
                    self.events.put(msg)

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True) -> dict[str, Any]:
        self._next_id += 1
        mid = self._next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        with self._cv:
            while mid not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no answer to {method} (chromium stderr: {self.stderr_path})")
                self._cv.wait(min(left, 0.5))
            resp = self._responses.pop(mid)
        if "error" in resp:
            raise RuntimeError(f"{method}: {resp['error']}")
        return resp.get("result", {})

    def open_page(self) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def navigate(self, url: str) -> list[dict[str, Any]]:
        """Load ``url`` and return every event until the load event (dialogs are dismissed)."""
        seen: list[dict[str, Any]] = []
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                ev = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(ev)
            if ev.get("method") == "Page.javascriptDialogOpening":
                self.send("Page.handleJavaScriptDialog", {"accept": False})
            if ev.get("method") == "Page.loadEventFired":
                break
        else:
            raise TimeoutError(f"page did not load: {url}")
        time.sleep(0.3)            # late console messages / dialogs after load
        while not self.events.empty():
            ev = self.events.get_nowait()
            seen.append(ev)
            if ev.get("method") == "Page.javascriptDialogOpening":
                self.send("Page.handleJavaScriptDialog", {"accept": False})
        return seen

    def evaluate(self, expr: str) -> Any:
        r = self.send("Runtime.evaluate", {"expression": expr, "returnByValue": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        try:
            self.send("Browser.close", session=False)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self._cmd_w)
        self._stderr.close()


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions, dialogs and non-local requests among ``events``."""
    out = []
    for ev in events:
        m, p = ev.get("method"), ev.get("params", {})
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
            out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
        elif m == "Runtime.exceptionThrown":
            out.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} ({p['entry'].get('url', '')})")
        elif m == "Page.javascriptDialogOpening":
            out.append(f"dialog opened: {p.get('type')} {p.get('message')!r}")
        elif m == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.startswith(("file:", "data:", "about:")):
                out.append(f"network request: {url}")
    return out


def _with_hostile_strings(results: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``results`` with script payloads in every kind of user-controlled string."""
    r = copy.deepcopy(results)
    r["model"]["spec"] = f"./plugins/{XSS}.py:make"
    r["verdict_reason"] += " " + XSS
    a = r["audits"][1]                                  # feature_ablation: feature names in plots
    a["summary"] += " " + XSS_IMG
    a["plots"][0]["title"] = XSS
    a["plots"][0]["rows"][0]["label"] = XSS
    a["plots"][1]["rows"][0][0] = XSS                   # table cell: a feature name
    a["conditions"][0]["name"] = XSS
    a["measurements"]["per_group"] = {"image": {"delta": -0.0011, "tost_p": 0.004}}   # a folded group
    r["audits"][2]["plots"][1]["rows"].append([f"query text {XSS}", XSS_IMG, "q1", "i1", 1.0])
    return r


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    if CHROMIUM is None:
        pytest.fail("CI=true but no headless Chromium is installed: the report's browser checks cannot run. "
                    "Fix: apt-get install -y --no-install-recommends chromium (.ci/run does this).")
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        b.open_page()
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def nogo_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    results = json.loads((DATA / "results_sample_nogo.json").read_text())
    out = tmp_path_factory.mktemp("report")
    return render_all(_with_hostile_strings(results), out)["report.html"]


def _png_stats(png: bytes) -> tuple[int, tuple[int, int], set[tuple[int, int, int]]]:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    counted = img.getcolors(maxcolors=img.width * img.height) or []
    colours = {c for _, c in counted}
    return len(colours), img.size, colours


def test_report_in_chromium_no_errors_verdict_visible(browser: Browser, nogo_report: Path, tmp_path: Path) -> None:
    events = browser.navigate(nogo_report.resolve().as_uri())
    assert _problems(events) == []
    info = browser.evaluate("""(() => {
        const v = document.querySelector('#verdict .verdict-text');
        const r = v.getBoundingClientRect();
        const s = getComputedStyle(v);
        return {verdict: v.innerText, top: r.top, height: r.height, vh: window.innerHeight,
                visible: s.visibility === 'visible' && s.display !== 'none' && r.width > 0,
                firstSection: document.querySelector('main section').id,
                scripts: document.scripts.length, cards: document.querySelectorAll('section.card').length,
                svgs: document.querySelectorAll('figure.plot svg').length,
                title: document.title, bodyText: document.body.innerText};
    })()""")
    assert info["verdict"] == "NO_GO"
    assert info["visible"] and 0 <= info["top"] < info["vh"] / 3, info  # at a glance: top third of the first screen
    assert info["firstSection"] == "verdict"
    assert info["scripts"] == 0                       # the payloads stayed text
    assert info["cards"] == 6 and info["svgs"] >= 12
    assert XSS in info["bodyText"]                    # shown literally, as text
    assert "NO_GO" in info["title"]


def test_report_screenshot_not_blank(browser: Browser, nogo_report: Path, tmp_path: Path) -> None:
    browser.navigate(nogo_report.resolve().as_uri())
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 2000, "deviceScaleFactor": 1,
                                                        "mobile": False})
    try:
        png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride")
    out = Path(os.environ.get("REPORT_SCREENSHOT", tmp_path / "report.png"))
    out.write_bytes(png)
    n_colours, size, colours = _png_stats(png)
    assert size == (1280, 2000)
    assert n_colours > 200, f"screenshot looks blank ({n_colours} colours): {out}"
    # The NO_GO banner's red icon (#dc2626) is on the first screen.
    assert any(abs(c[0] - 0xdc) < 8 and abs(c[1] - 0x26) < 8 and abs(c[2] - 0x26) < 8 for c in colours)


def test_report_prints_to_pdf(browser: Browser, nogo_report: Path) -> None:
    browser.navigate(nogo_report.resolve().as_uri())
    folded = "document.querySelector('#audit-feature_ablation details.more-measurements').innerText"
    # every fold shows more than its summary line
    all_unfolded = """[...document.querySelectorAll('details')].every(
        d => d.innerText.trim().length > d.querySelector('summary').innerText.trim().length + 5)"""
    assert "tost_p" not in browser.evaluate(folded)             # folded on screen ...
    assert browser.evaluate(all_unfolded) is False
    browser.send("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert "tost_p" in browser.evaluate(folded)             # ... unfolded on paper
        assert browser.evaluate(all_unfolded) is True
    finally:
        browser.send("Emulation.setEmulatedMedia", {"media": ""})
    pdf = base64.b64decode(browser.send("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True})["data"])
    assert pdf.startswith(b"%PDF")
    n_pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    assert 3 <= n_pages <= 40, n_pages


def test_harness_sees_scripts_dialogs_and_network(browser: Browser, tmp_path: Path) -> None:
    """The checks above can fail: a page that runs a script, opens a dialog, logs an error and
    requests a URL is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><p>x</p><img src='http://example.invalid/x.png'>"
                   "<script>console.error('boom'); alert('hi');</script></body></html>")
    problems = " | ".join(_problems(browser.navigate(bad.as_uri())))
    assert "dialog opened" in problems and "console.error" in problems and "network request" in problems
    csp = tmp_path / "csp.html"
    csp.write_text("<!DOCTYPE html><html><head><meta http-equiv='Content-Security-Policy' "
                   "content=\"default-src 'none'\"></head><body><script>alert(1)</script></body></html>")
    problems = " | ".join(_problems(browser.navigate(csp.as_uri())))
    assert "dialog" not in problems and "Content Security Policy" in problems


@pytest.mark.parametrize("name,verdict", [("go", "GO"), ("edge", "INCONCLUSIVE")])
def test_other_verdicts_render_cleanly(browser: Browser, tmp_path: Path, name: str, verdict: str) -> None:
    results = json.loads((DATA / f"results_sample_{name}.json").read_text())
    html = render_all(results, tmp_path)["report.html"]
    events = browser.navigate(html.resolve().as_uri())
    assert _problems(events) == []
    assert browser.evaluate("document.querySelector('#verdict .verdict-text').innerText") == verdict


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="docs/example-report/results.json not present")
def test_reference_run_report_in_chromium(browser: Browser, tmp_path: Path) -> None:
    """The committed real reference-model run, re-rendered by this code, as a reviewer opens it."""
    results = json.loads(EXAMPLE.read_text())
    html = render_all(results, tmp_path)["report.html"]
    assert html.stat().st_size < 1_000_000
    events = browser.navigate(html.resolve().as_uri())
    assert _problems(events) == []
    shown = browser.evaluate("""(() => {
        const v = document.querySelector('#verdict .verdict-text');
        return {verdict: v.innerText, top: v.getBoundingClientRect().top, vh: window.innerHeight,
                cards: [...document.querySelectorAll('section.card')].map(c => c.dataset.status)};
    })()""")
    assert shown["verdict"] == results["verdict"] and 0 <= shown["top"] < shown["vh"] / 3
    assert shown["cards"] == [a["status"] for a in results["audits"]]
    png = base64.b64decode(browser.send("Page.captureScreenshot", {"format": "png"})["data"])
    n_colours, _, _ = _png_stats(png)
    assert n_colours > 200


@pytest.mark.skipif(not EXAMPLE.is_file(), reason="docs/example-report/results.json not present")
def test_reference_report_is_a_few_screens_with_one_plot_per_audit(browser: Browser, tmp_path: Path) -> None:
    """At 1280 px the verdict, the audit table and one plot per audit come first; the rest of the
    evidence is folded (<details>), so the page is a few screens, not 19,000 px."""
    results = json.loads(EXAMPLE.read_text())
    html = render_all(results, tmp_path)["report.html"]
    browser.send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1000, "deviceScaleFactor": 1,
                                                        "mobile": False})
    try:
        browser.navigate(html.resolve().as_uri())
        page = browser.evaluate("""(() => {
            const visible = el => el.checkVisibility();
            return {height: document.documentElement.scrollHeight,
                    plots: [...document.querySelectorAll('section.card')].map(
                        c => [...c.querySelectorAll('figure.plot')].filter(visible).length),
                    openDetails: document.querySelectorAll('details[open]').length};
        })()""")
    finally:
        browser.send("Emulation.clearDeviceMetricsOverride")
    assert page["plots"] == [1 if a.get("plots") else 0 for a in results["audits"]], page
    assert page["openDetails"] == 0
    assert page["height"] < 7000, page          # 19,000 px before the evidence was folded
