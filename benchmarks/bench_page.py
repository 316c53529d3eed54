"""The browser page on the 256-track demo: time to the first track lane and to interactive.

``dawserver serve --demo`` serves its demo project (``dsp_core.demo``: 256 tracks, 3,280
clips, 16 source files) and headless Debian Chromium opens it once per run, each time in
a fresh browser context (no cache), with the page bundle under test and, in the same
run, a baseline bundle read from git (by default the last one before the lanes were
virtualised). Both are served to the browser by the same Playwright route, so only the
bundle differs; the order alternates from round to round. Per run, in the page's own
clock (``performance.now()``, from navigation start):

``first_lane_ms``
    until the first frame with a track lane in it has been painted: a MutationObserver
    sees the first ``.row[data-track]``; the time is taken in a task posted from the next
    ``requestAnimationFrame`` callback, so after that frame's style, layout and paint.
``interactive_ms``
    until the page has answered a fader move made as soon as it looked ready: the moment
    the document is synced (``body[data-ready]``) and every clip of the lanes in view
    shows its waveform from the server's peaks (``canvas[data-peaks=drawn]``), taken the
    same way after the frame that shows it, plus ``fader_ms``: from the ``pointerdown``
    of a real mouse click on the first fader in view (its event timestamp, when the
    browser received it) until the frame after the document and the fader's readout
    hold the new value. Adding the two leaves out the harness's own delay in clicking.

The server is the working tree's for both bundles, so the baseline's figures leave out
what its peaks route cost before (``docs/browser-page.md`` has that separately).

The page sets Performance marks of its own (``daw:synced``, ``daw:first-lane``,
``daw:interactive``); they are reported too, where the bundle has them. So are the DOM's
size, the peaks requests, and the long tasks' total.

Run by hand (figures in docs/browser-page.md)::

    python -m benchmarks.bench_page --runs 7 --out docs/benchmarks-page.json

``--smoke`` (or ``DAW_BENCH_SMOKE=1`` under pytest) runs one round and checks behaviour only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.conftest import SMOKE
from tests.pagebrowser import CHROMIUM, CHROMIUM_FLAGS, browser_missing

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "dawserver" / "static"
BUNDLE = ("index.html", "app.js", "app.css")  # index.html: only compared
#: The last commit of the bundle before virtual lanes and lazy peaks (the "before").
BASELINE = "4af7704a6978f0c6adcb624001dee6da13b0613f"
VIEWPORT = {"width": 1400, "height": 900}

#: Installed before the page's own scripts: the measurements described above.
PROBE = """(() => {
  const t = window.__bench = { longTasks: 0, longTaskMs: 0, longTaskSpans: [] }
  const afterPaint = (fn) => requestAnimationFrame(() => {
    const channel = new MessageChannel()
    channel.port1.onmessage = () => fn(performance.now())
    channel.port2.postMessage(null)
  })
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      t.longTasks++
      t.longTaskMs += e.duration
      t.longTaskSpans.push([Math.round(e.startTime), Math.round(e.duration)])
    }
  }).observe({ type: 'longtask', buffered: true })
  // The lanes' visible area: the timeline, right of the track headers, below the ruler.
  const view = () => {
    const r = document.querySelector('.timeline').getBoundingClientRect()
    const header = document.querySelector('.ruler-row .track-header').getBoundingClientRect()
    const ruler = document.querySelector('.ruler-row').getBoundingClientRect()
    return { left: header.right, right: Math.min(r.right, innerWidth), top: ruler.bottom,
      bottom: Math.min(r.bottom, innerHeight) }
  }
  const visible = (el, v) => {
    const r = el.getBoundingClientRect()
    return r.width > 0 && r.right > v.left && r.left < v.right &&
      r.bottom > v.top && r.top < v.bottom
  }
  let checking = false
  const check = () => {
    checking = false
    if (t.drawnAt || document.body.dataset.ready !== 'true') return
    const v = view()
    const clips = [...document.querySelectorAll('.timeline .clip')].filter((c) => visible(c, v))
    if (!clips.length || !clips.every((c) => c.querySelector('canvas[data-peaks=drawn]'))) return
    t.drawnAt = -1
    t.visibleClips = clips.length
    afterPaint((now) => { t.drawnAt = now })
  }
  new MutationObserver(() => {
    if (!t.laneSeen && document.querySelector('.row[data-track]')) {
      t.laneSeen = true
      afterPaint((now) => { t.firstLaneAt = now })
    }
    if (!checking && !t.drawnAt) {
      checking = true
      requestAnimationFrame(check)
    }
  }).observe(document, { subtree: true, childList: true, attributes: true,
    attributeFilter: ['data-peaks', 'data-ready'] })
  // The fader click: pointerdown's timestamp, then the frame after the page has answered.
  document.addEventListener('pointerdown', (e) => {
    if (e.target.classList?.contains('fader')) t.pointerDownAt = e.timeStamp
  }, true)
  window.addEventListener('input', (e) => {
    const el = e.target
    if (!el.classList?.contains('fader') || t.faderAt) return
    const id = el.closest('[data-track]').dataset.track
    const value = window.daw.project.roots.tracks.get(id).get('gain_db')
    const readout = el.parentElement.querySelector('.gain').textContent
    t.faderValue = { id, value, shown: Number(el.value), readout }
    afterPaint((now) => { t.faderAt = now })
  })
})()"""


def bundle_files(ref: str | None) -> dict[str, bytes] | None:
    """The page bundle in the working tree (``ref`` None) or at a git commit (None if absent)."""
    if ref is None:
        return {name: (STATIC / name).read_bytes() for name in BUNDLE}
    files = {}
    for name in BUNDLE:
        shown = subprocess.run(["git", "show", f"{ref}:dawserver/static/{name}"], cwd=ROOT,
                               capture_output=True, check=False)
        if shown.returncode != 0:
            return None
        files[name] = shown.stdout
    return files


@contextlib.contextmanager
def demo_server(data: Path) -> Iterator[tuple[int, str]]:
    """``dawserver serve --demo`` on a free port; yields (its pid, the demo's page URL)."""
    from tests.loopback import free_port

    port = free_port()
    log_path = data / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dawserver", "serve", "--demo", "--data", str(data),
             "--port", str(port), "--idle-unload", "3600"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # the demo's audio is synthesised once
        while True:
            found = re.search(r"browser:\s+(\S+)", log_path.read_text())
            with contextlib.suppress(OSError):
                if found:
                    urllib.request.urlopen(base + "/healthz", timeout=2).close()
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dawserver serve --demo did not start: {log_path.read_text()}")
            time.sleep(0.1)
        yield proc.pid, found.group(1)
    finally:
        proc.terminate()
        proc.wait(20)


def cpu_seconds(browser_cdp: Any, server_pid: int) -> dict[str, float]:
    """CPU time so far of Chromium's renderers, its other processes, and the server."""
    cpu = {"renderer": 0.0, "other_chromium": 0.0}
    for process in browser_cdp.send("SystemInfo.getProcessInfo")["processInfo"]:
        kind = "renderer" if process["type"] == "renderer" else "other_chromium"
        cpu[kind] += process["cpuTime"]
    fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu["server"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return cpu


def open_once(browser: Any, url: str, files: dict[str, bytes], server_pid: int,
              marks: bool = False) -> dict[str, Any]:
    """Open the page with ``files`` as its bundle in a fresh context; the figures of one run.

    With ``marks`` (a bundle that sets them), the figures wait for the page's own
    ``daw:interactive`` mark: it follows every mounted clip's peaks, rows just out of view
    included, so on a loaded machine it can come after the harness's own "drawn".
    """
    browser_cdp = browser.new_browser_cdp_session()
    context = browser.new_context(viewport=VIEWPORT)
    types = {"js": "text/javascript", "css": "text/css"}

    def serve(route: Any) -> None:
        name = route.request.url.split("?")[0].rsplit("/", 1)[-1]
        route.fulfill(status=200, body=files[name], headers={
            "Content-Type": types[name.rsplit(".", 1)[-1]], "Cache-Control": "no-cache"})

    # The document itself comes from the server (one the route made up would count as a
    # public page, which Chromium then keeps from opening a WebSocket to 127.0.0.1).
    base = url.split("?")[0].rstrip("/")
    context.route(re.compile(re.escape(base) + r"/static/app\.(js|css)(\?.*)?$"), serve)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.add_init_script(PROBE)
    try:
        before = cpu_seconds(browser_cdp, server_pid)
        page.goto(url)
        page.wait_for_function("window.__bench.drawnAt > 0", timeout=120_000)
        after = cpu_seconds(browser_cdp, server_pid)
        fader = page.evaluate("""() => {
          const v = document.querySelector('.ruler-row').getBoundingClientRect()
          const el = [...document.querySelectorAll('.row[data-track] .fader')]
            .find((f) => f.getBoundingClientRect().top >= v.bottom)
          const r = el.getBoundingClientRect()
          const at = (Number(el.value) - Number(el.min)) / (Number(el.max) - Number(el.min))
          return { x: r.left + r.width * (at < 0.5 ? 0.8 : 0.2), y: r.top + r.height / 2 }
        }""")
        page.mouse.click(fader["x"], fader["y"])
        page.wait_for_function("window.__bench.faderAt > 0", timeout=60_000)
        if marks:
            page.wait_for_function(
                "performance.getEntriesByName('daw:interactive').length > 0", timeout=60_000)
        figures = page.evaluate("""() => {
          const t = window.__bench
          const mark = (name) => performance.getEntriesByName(name)[0]?.startTime ?? null
          const peaks = performance.getEntriesByType('resource')
            .filter((r) => r.name.includes('/peaks?'))
          const mounted = new Set([...document.querySelectorAll('.clip')].map((c) =>
            c.dataset.source))
          const asked = peaks.map((r) => new URL(r.name).searchParams.get('source'))
          return {
            first_lane_ms: t.firstLaneAt, drawn_ms: t.drawnAt,
            fader_ms: t.faderAt - t.pointerDownAt, fader: t.faderValue,
            interactive_ms: t.drawnAt + (t.faderAt - t.pointerDownAt),
            marks: { synced: mark('daw:synced'), first_lane: mark('daw:first-lane'),
              interactive: mark('daw:interactive') },
            visible_clips: t.visibleClips,
            rows: document.querySelectorAll('.row[data-track]').length,
            clips: document.querySelectorAll('.clip').length,
            elements: document.getElementsByTagName('*').length,
            peaks_requests: peaks.length,
            peaks_for_unmounted: asked.filter((s) => !mounted.has(s)).length,
            long_tasks: t.longTasks, long_task_ms: t.longTaskMs,
            long_task_spans: t.longTaskSpans, pointer_down_ms: t.pointerDownAt
          }
        }""")
    finally:
        context.close()
    figures["errors"] = errors
    # Work, whatever the load: CPU from navigation until the harness saw the lanes drawn
    # (closed contexts' renderers count as 0 after; none does work meanwhile).
    figures["cpu_ms"] = {kind: round(1000 * (after[kind] - before.get(kind, 0.0)))
                         for kind in after}
    browser_cdp.detach()
    return figures


def median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def run(args: argparse.Namespace) -> dict:
    from playwright.sync_api import sync_playwright

    bundles = {"current": bundle_files(None)}
    baseline = None if args.baseline == "none" else bundle_files(args.baseline)
    if baseline is not None:
        bundles["baseline"] = baseline
    # The server serves the current index.html to both: they must load the same way.
    same_html = baseline is None or baseline["index.html"] == bundles["current"]["index.html"]
    report: dict = {"baseline": args.baseline if baseline is not None else None,
                    "same_index_html": same_html,
                    "runs_per_bundle": args.runs, "cpus": os.cpu_count(),
                    "viewport": VIEWPORT, "load_average_before": os.getloadavg(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp, \
            demo_server(Path(tmp)) as (server_pid, url), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        report["chromium"] = browser.version
        try:
            for name, files in bundles.items():  # warm-up: the room loads, peaks are cached
                open_once(browser, url, files, server_pid, marks=name == "current")
            names = list(bundles)
            for round_ in range(args.runs):
                for name in names if round_ % 2 == 0 else names[::-1]:
                    figures = open_once(browser, url, bundles[name], server_pid,
                                        marks=name == "current")
                    report["runs"].append({"bundle": name, "round": round_,
                                           "load_average": os.getloadavg()[0], **figures})
                    print(f"{name:8s} first lane {figures['first_lane_ms']:7.1f} ms, interactive "
                          f"{figures['interactive_ms']:7.1f} ms (fader {figures['fader_ms']:.1f} "
                          f"ms), {figures['elements']} elements, {figures['peaks_requests']} "
                          f"peaks requests, cpu {figures['cpu_ms']}", file=sys.stderr)
        finally:
            browser.close()
    report["load_average_after"] = os.getloadavg()
    summary = {}
    for name in bundles:
        runs = [r for r in report["runs"] if r["bundle"] == name]
        summary[name] = {key: median(runs, key) for key in (
            "first_lane_ms", "interactive_ms", "fader_ms", "elements", "peaks_requests",
            "long_task_ms", "load_average")}
        for kind in ("renderer", "other_chromium", "server"):
            summary[name][f"cpu_{kind}_ms"] = statistics.median(r["cpu_ms"][kind] for r in runs)
    if "baseline" in summary:
        summary["speed-up"] = {
            key: summary["baseline"][key] / summary["current"][key]
            for key in ("first_lane_ms", "interactive_ms")}
    report["median"] = summary
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="page loads per bundle")
    parser.add_argument("--baseline", default=BASELINE,
                        help="git commit whose dawserver/static/ is the 'before' ('none': skip)")
    parser.add_argument("--smoke", action="store_true", help="one round, to check it works")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.runs = 1
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = run(args)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(json.dumps(report["median"], indent=1))
    return report


def formatted_db(db: float) -> str:
    """A fader's readout, as web/src/dom.js formatDb writes it."""
    return "-inf dB" if db <= -60 else f"{'+' if db > 0 else ''}{db:.1f} dB"


@pytest.mark.timeout(900)
@pytest.mark.alone  # drives Chromium: see tests/pagebrowser.BROWSER_TEST
@pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))
def test_page_shows_the_demo_and_answers_a_fader() -> None:
    """Pytest entry: one round under DAW_BENCH_SMOKE=1; checks behaviour, never time."""
    report = run(parse_args(["--smoke"] if SMOKE else []))
    for entry in report["runs"]:
        assert entry["errors"] == []
        assert 0 < entry["first_lane_ms"] <= entry["drawn_ms"] < entry["interactive_ms"]
        fader = entry["fader"]  # the click reached the document and the readout
        assert fader["value"] == pytest.approx(fader["shown"])
        assert fader["readout"] == formatted_db(fader["shown"])
    for entry in (r for r in report["runs"] if r["bundle"] == "current"):
        assert entry["rows"] < 256 and entry["clips"] < 3280  # only the lanes in view
        assert entry["peaks_for_unmounted"] == 0
        assert None not in entry["marks"].values()


if __name__ == "__main__":
    main()
