"""The monitor's dashboard in a real browser: headless Chromium renders it offline.

A small simulated log (the tiny model, ``mangaassist simulate``'s ``sale_event`` with a
labelled sample) and a registry with a promotion and a rollback go through the monitor; the
page it writes is then opened in headless Chromium with every network request refused, and
the test checks what a user relies on: every section of the team's dashboard list is in the
rendered DOM, each chart image decodes to a real picture from the page alone (no external
request), no script error is logged, and a screenshot is not blank.

Skipped when no Chromium binary is found (``apt-get install chromium``; or set CHROMIUM to
its path). Each Chromium run is bounded by a timeout and killed by its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from mangaassist.monitor.monitor import run_monitor, write_report
from mangaassist.monitor.simulate import simulate

TIMEOUT_S = 90
CONSOLE = re.compile(r"CONSOLE[:(]|Uncaught")  # Chromium's --enable-logging console lines
BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# The team's production dashboard list -> the section (h2) that shows it.
SECTIONS = {
    "P50/P95/P99": "Latency P50 / P95 / P99",
    "volume": "Volume",
    "error rate": "Error rate",
    "low-confidence rate": "Low-confidence and fallback rate",
    "fallback rate": "Low-confidence and fallback rate",
    "intent distribution over time": "Intent distribution over time",
    "KL": "KL divergence",
    "sampled accuracy": "Sampled accuracy",
    "rare-class recall": "Rare-class recall",
    "switches and rollbacks": "Model switches and rollbacks",
}
CHART_TITLES = [v for v in dict.fromkeys(SECTIONS.values()) if v != "Model switches and rollbacks"]
# Put into a copy of the page, HEAD_PROBE first in <head> and PROBE last in <body>: a script
# error is counted on <html>; after load, what the browser made of the images and which
# resources it fetched, as JSON in <pre id="probe">.
HEAD_PROBE = """<script>
window.addEventListener('error', function () {
  var d = document.documentElement.dataset; d.jsErrors = String(Number(d.jsErrors || 0) + 1);
});
</script>"""
PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var res = performance.getEntriesByType('resource').map(function (r) { return r.name; });
  var out = {
    images: imgs.map(function (i) {
      return {alt: i.alt, ok: i.complete && i.naturalWidth > 0,
              w: i.naturalWidth, h: i.naturalHeight, data: i.src.indexOf('data:') === 0};
    }),
    fetched: res.filter(function (n) { return n.indexOf('data:') !== 0; })
  };
  var pre = document.createElement('pre');
  pre.id = 'probe'; pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>
"""


def chromium_binary() -> str | None:
    if os.environ.get("CHROMIUM"):
        return shutil.which(os.environ["CHROMIUM"])
    return next((p for b in BINARIES if (p := shutil.which(b))), None)


def run_chromium(binary: str, url: str, profile: Path, *extra: str) -> tuple[str, str]:
    """Headless Chromium on ``url`` with the network refused; (stdout, stderr)."""
    cmd = [
        binary,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        f"--user-data-dir={profile}",
        # Offline: no name resolves and every proxied request goes to a closed port.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--proxy-server=http://127.0.0.1:9",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",  # let the load event and its handlers run first
        *extra,
        url,
    ]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the renderer and GPU children too
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"chromium did not finish in {TIMEOUT_S}s: {' '.join(cmd)}")
    finally:
        # By its pid's process group: Chromium itself if still running, and any child left.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {err[-2000:]}"
    return out, err


@pytest.fixture(scope="module")
def browser() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            "no Chromium binary found (looked for "
            f"{', '.join(BINARIES)} on PATH and $CHROMIUM); install it with "
            "`apt-get install -y --no-install-recommends chromium`"
        )
    return binary


@pytest.fixture(scope="module")
def page(tiny_run: Path, tiny_bundle: Path, tmp_path_factory) -> Path:
    """The dashboard of two simulated days (a sale on day 1) with a promotion and a rollback."""
    tmp = tmp_path_factory.mktemp("dashboard")
    sim = tmp / "sim"
    simulate(
        sim,
        "sale_event",
        bundle=tiny_bundle,
        days=2,
        rate_per_hour=120,
        label_share=0.1,
        scenarios_path=_one_day_sale(tmp),
    )
    registry = tmp / "registry"
    registry.mkdir()
    events = [
        {"time": "2026-03-02T09:00:00+00:00", "event": "promote", "version": "v2", "from": "v1"},
        {"time": "2026-03-02T15:00:00+00:00", "event": "rollback", "version": "v1", "from": "v2"},
    ]
    (registry / "history.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    report = run_monitor(sim / "logs", tiny_run, labels=sim / "labels.jsonl", registry=registry)
    return write_report(report, tmp / "out")["dashboard"]


def _one_day_sale(tmp: Path) -> Path:
    """conf/monitor/scenarios.yaml with the sale moved to day 1, so two days show it."""
    from omegaconf import OmegaConf

    from mangaassist.monitor.scenarios import SCENARIOS_FILE

    cfg = OmegaConf.load(SCENARIOS_FILE)
    cfg.scenarios.sale_event.start_day = 1
    path = tmp / "scenarios.yaml"
    OmegaConf.save(cfg, path)
    return path


def test_page_renders_offline_with_every_section_and_decoded_charts(browser, page, tmp_path):
    html = page.read_text(encoding="utf-8")
    # Self-contained: nothing to fetch, and no script of its own that could fail.
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html and "@import" not in html and "url(" not in html

    dom, err = run_chromium(browser, page.as_uri(), tmp_path / "p1", "--dump-dom")
    assert "<html>" in dom[:200] and dom.rstrip().endswith("</html>")
    headings = re.findall(r"<h2>(.*?)</h2>", dom)
    for item, title in SECTIONS.items():
        assert title in headings, f"{item!r}: no section {title!r} in the rendered page"
    assert "MangaAssist production monitor" in dom
    # Switches and rollbacks from the registry, in the table the browser rendered.
    assert "<td>promote</td><td>v2</td><td>v1</td>" in dom
    assert "<td>rollback</td><td>v1</td><td>v2</td>" in dom
    assert not CONSOLE.search(err), "the page logged to the console:\n" + err[-2000:]

    # The same page plus a probe script: every chart decodes from its data: URI, offline.
    probe_page = tmp_path / "probe.html"
    probed = html.replace("<head>", "<head>" + HEAD_PROBE, 1).replace("</body>", PROBE + "</body>")
    probe_page.write_text(probed, encoding="utf-8")
    dom, err = run_chromium(browser, probe_page.as_uri(), tmp_path / "p2", "--dump-dom")
    m = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert m, "the probe did not run (no load event?)\n" + err[-2000:]
    probe = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert "data-js-errors" not in dom, "a script error was raised:\n" + err[-2000:]
    assert not CONSOLE.search(err), "the page logged to the console:\n" + err[-2000:]
    assert probe["fetched"] == [], f"the page fetched resources: {probe['fetched']}"
    by_alt = {i["alt"]: i for i in probe["images"]}
    for title in CHART_TITLES:
        img = by_alt.get(title)
        assert img is not None, f"no chart image for {title!r}"
        assert img["data"] and img["ok"], f"{title!r}: the image did not decode: {img}"
        assert img["w"] > 400 and img["h"] > 100, f"{title!r}: a {img['w']}x{img['h']} image"


def test_screenshot_is_not_blank(browser, page, tmp_path):
    from PIL import Image

    shot = tmp_path / "dashboard.png"
    run_chromium(
        browser,
        page.as_uri(),
        tmp_path / "p3",
        f"--screenshot={shot}",
        "--window-size=1200,2400",
        "--hide-scrollbars",
    )
    assert shot.is_file() and shot.stat().st_size > 10_000
    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    small = img.resize((120, 240))
    pixels = list(small.getdata())
    ink = sum(1 for p in pixels if sum(p) < 600) / len(pixels)  # not near-white
    colours = len(set(small.quantize(64).getdata()))
    assert ink > 0.02, f"the screenshot is {100 * (1 - ink):.1f}% white"
    assert colours >= 8, f"the screenshot has {colours} colours: text and charts missing?"
