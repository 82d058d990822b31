"""Open every page of the built book in headless Chromium and fail on what a reader would see broken.

Per page: images that did not load, error/traceback cells, unresolved glue or references, raw TeX that MathJax
did not typeset, console errors and uncaught exceptions, failed requests to the local server, and code cells
with a horizontal scrollbar at a 1280x900 desktop viewport. A full-page screenshot of each page goes to
_build/screenshots/ (for CI to keep as an artifact).

Needs the built book (`make book`), `pip install playwright` (no `playwright install`: the system Chromium is
used) and `apt-get install chromium`; skipped otherwise. Marked `browser`: run with `pytest -m browser
tests/test_browser.py`. Requests to any host but the local server are aborted and not counted as errors.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 900}
SKIPPED_NAMES = {"genindex.html", "search.html"}
SKIPPED_DIRS = {"_static", "_sources", "_images"}
MATHJAX_TIMEOUT_MS = 8000     # how long a page with math may take to load MathJax and typeset
IMAGE_TIMEOUT_MS = 10000      # how long images may take to settle (load or fail)
# Code blocks that must not scroll sideways. myst-nb renders text outputs as div.highlight pre too; the
# report says "code cell" or "output" for each.
WIDE_PRE_SELECTOR = "div.highlight pre, div.cell_input pre"


# ---------------------------------------------------------------- pure helpers (unit-tested without a browser)

def list_pages(site: Path) -> list[str]:
    """The site's pages as paths relative to site (posix, sorted): every *.html but the index/search pages and
    those under _static/, _sources/ and _images/."""
    pages = []
    for path in site.rglob("*.html"):
        rel = path.relative_to(site)
        if rel.name in SKIPPED_NAMES or SKIPPED_DIRS & set(rel.parts[:-1]):
            continue
        pages.append(rel.as_posix())
    return sorted(pages)


def screenshot_name(page: str) -> str:
    """The screenshot file name of a page path: 'book/executed/01_x.html' -> 'book__executed__01_x.png'."""
    stem = page[:-len(".html")] if page.endswith(".html") else page
    return stem.strip("/").replace("/", "__") + ".png"


def is_local(url: str, base: str) -> bool:
    """Whether url is served by the local server at base (data:, blob: and about: URLs count as local)."""
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https") and parts.netloc == urlsplit(base).netloc


_REFRESH = re.compile(r"""<meta[^>]*http-equiv=["']?refresh["']?[^>]*>""", re.I)
_REFRESH_URL = re.compile(r"""content=["']?\s*\d+\s*;\s*url=([^"'>]+)""", re.I)


def redirect_target(html: str) -> str | None:
    """The URL a <meta http-equiv="Refresh" content="0; url=..."> page sends the reader to, else None."""
    tag = _REFRESH.search(html)
    if not tag:
        return None
    url = _REFRESH_URL.search(tag.group(0))
    return url.group(1).strip() if url else ""


def _snippet(text: str, n: int = 80) -> str:
    return " ".join(text.split())[:n]


# Raw TeX still visible: delimiters, or an environment that MathJax should have turned into mjx-container.
RAW_TEX = re.compile(r"\\\(|\\\)|\\\[|\\\]|\$\$|\$[^$\n]+\$|\\begin\{")
# In prose (outside .math) a single-$ pair counts only when it holds a TeX command (so "$5 and $10" passes).
RAW_TEX_PROSE = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]|\$\$.+?\$\$|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$", re.S)
# Markers that myst-nb/sphinx leave visible when a glue, role, directive or reference did not resolve.
UNRESOLVED = re.compile(r"\?\?|\{glue(?::\w*)?\}?|\{(?:numref|doc|ref|eq|cite(?::\w+)?|term|download|prf:ref)\}"
                        r"|\{[a-zA-Z][\w:.-]*\}`|```\{|:::\{")
TRACEBACK = "Traceback (most recent call last)"


def raw_tex_in_math(text: str) -> str | None:
    """The first 80 characters of text (an element of class math, minus what MathJax typeset) when it still
    shows raw TeX, else None."""
    return _snippet(text) if RAW_TEX.search(text) else None


def raw_tex_in_prose(text: str) -> list[str]:
    """Raw TeX fragments (first 80 characters each) in visible prose text outside math elements."""
    return [_snippet(m.group(0)) for m in RAW_TEX_PROSE.finditer(text)]


def unresolved_markers(text: str) -> list[str]:
    """Unresolved glue/reference markers in prose text, each with up to 40 characters around it."""
    found = []
    for m in UNRESOLVED.finditer(text):
        found.append(f"{m.group(0)!r} in {_snippet(text[max(0, m.start() - 40):m.end() + 40])!r}")
    return found


# ---------------------------------------------------------------- the in-page inspection

# Runs in the page once it has loaded, MathJax has typeset and images have settled; returns plain data that
# the Python side turns into problems.
INSPECT_JS = r"""
(widePreSelector) => {
  const text = (el) => (el.textContent || "");
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.classList.length) s += "." + [...el.classList].join(".");
    return s;
  };
  const SKIP = "script, style, noscript, template, textarea";
  const CODE = "pre, code, kbd, samp, .highlight, .math, mjx-container, .output";
  const prose = [], all = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const p = n.parentElement;
    if (!p || p.closest(SKIP)) continue;
    all.push(n.nodeValue);
    if (!p.closest(CODE)) prose.push(n.nodeValue);
  }
  const images = [...document.images].map((img) => ({
    src: img.getAttribute("src") || img.currentSrc || "",
    url: img.currentSrc || img.src || "",
    ok: img.complete && img.naturalWidth > 0,
    svgDecoded: !!img.dataset.browserTestDecoded,
  }));
  const errors = [...document.querySelectorAll(
      ".output.traceback, .output.error, .error:not(.admonition), .system-message")]
    .map((el) => ({what: describe(el), text: text(el)}));
  const refs = [...document.querySelectorAll(".problematic, .xref")]
    .filter((el) => el.matches(".problematic") || !el.closest("a"))
    .map((el) => ({what: describe(el), text: text(el)}));
  const maths = [...document.querySelectorAll(".math")].map((el) => {
    const clone = el.cloneNode(true);
    clone.querySelectorAll("mjx-container, .eqno, .headerlink").forEach((c) => c.remove());
    const merror = el.querySelector("mjx-merror");
    return {what: describe(el), left: clone.textContent || "",
            texError: merror ? (merror.getAttribute("data-mjx-error") || merror.textContent || "?") : null};
  });
  const wide = [...document.querySelectorAll(widePreSelector)]
    .filter((pre) => pre.scrollWidth > pre.clientWidth + 1)
    .map((pre) => {
      const lines = (pre.textContent || "").split("\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      return {where: pre.closest(".cell_output, .output") ? "output" : "code cell",
              scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth, line: longest};
    });
  return {prose: prose.join(" "), all: all.join(" "), images, errors, refs, maths, wide,
          mjx: document.querySelectorAll("mjx-container").length};
}
"""

# Make lazy images load now, then wait (bounded) until every image has loaded or failed; an SVG without
# intrinsic size reports naturalWidth 0 even when fine, so record whether it decoded.
SETTLE_IMAGES_JS = r"""
async (timeout) => {
  const imgs = [...document.images];
  imgs.forEach((img) => { if (img.loading === "lazy") img.loading = "eager"; });
  const one = (img) => (img.complete ? Promise.resolve()
      : new Promise((r) => { img.addEventListener("load", r, {once: true});
                             img.addEventListener("error", r, {once: true}); }))
    .then(() => img.decode().then(() => { img.dataset.browserTestDecoded = "1"; }, () => {}));
  await Promise.race([Promise.all(imgs.map(one)), new Promise((r) => setTimeout(r, timeout))]);
}
"""


def check_page(page, url: str, screenshot: Path | None = None,
               mathjax_timeout_ms: int = MATHJAX_TIMEOUT_MS) -> list[str]:
    """Open url in page (a Playwright page whose context routes only the local server) and return every
    problem found, one line each; save a full-page screenshot to screenshot when given."""
    problems: list[str] = []
    base = url

    def on_console(msg):
        if msg.type != "error":
            return
        # Failed loads are reported by the request listeners (local) or ignored (external, aborted on purpose).
        if msg.text.startswith("Failed to load resource"):
            return
        where = (msg.location or {}).get("url", "")
        if where and not is_local(where, base):
            return
        problems.append(f"console error: {_snippet(msg.text, 200)}")

    def on_response(resp):
        if resp.status >= 400 and is_local(resp.url, base):
            problems.append(f"HTTP {resp.status} for {resp.url}")

    def on_failed(req):
        if is_local(req.url, base):
            problems.append(f"request failed: {req.url} ({req.failure})")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"uncaught exception: {_snippet(str(exc), 200)}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)

    # A redirect page (index.html's <meta http-equiv="Refresh">): follow it and check where it lands.
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            target = redirect_target(r.read().decode("utf-8", "replace"))
    except OSError:
        target = None  # the browser reports the failure below
    page.goto(url, wait_until="load")
    if target is not None:
        try:
            page.wait_for_url(lambda u: u != url, timeout=5000)
            page.wait_for_load_state("load")
        except Exception:
            problems.append(f"redirect to {target!r} did not happen")

    has_math = page.evaluate("() => !!document.querySelector('.math')")
    if has_math:
        try:
            page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                                   timeout=mathjax_timeout_ms)
            page.evaluate("() => MathJax.startup.promise")
        except Exception:
            src = page.evaluate("() => [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s))")
            problems.append(f"MathJax did not load (script: {', '.join(src) or 'none'}); math was not typeset")

    page.evaluate(SETTLE_IMAGES_JS, IMAGE_TIMEOUT_MS)
    data = page.evaluate(INSPECT_JS, WIDE_PRE_SELECTOR)

    for img in data["images"]:
        if img["url"] and not is_local(img["url"], base):
            continue  # external: blocked on purpose, not counted
        if not img["ok"] and not (img["svgDecoded"] and img["src"].split("?")[0].endswith(".svg")):
            problems.append(f"missing image: {img['src']}")
    for err in data["errors"]:
        problems.append(f"error cell {err['what']}: {_snippet(err['text'])!r}")
    if TRACEBACK in data["all"] and not data["errors"]:
        i = data["all"].index(TRACEBACK)
        problems.append(f"traceback in page text: {_snippet(data['all'][i:])!r}")
    for ref in data["refs"]:
        problems.append(f"unresolved reference {ref['what']}: {_snippet(ref['text'])!r}")
    for marker in unresolved_markers(data["prose"]):
        problems.append(f"unresolved marker {marker}")
    for m in data["maths"]:
        raw = raw_tex_in_math(m["left"])
        if raw:
            problems.append(f"raw TeX in {m['what']}: {raw!r}")
        if m["texError"]:
            problems.append(f"TeX error in {m['what']}: {_snippet(m['texError'])!r}")
    for raw in raw_tex_in_prose(data["prose"]):
        problems.append(f"raw TeX in prose: {raw!r}")
    if data["maths"] and not data["mjx"]:
        problems.append(f"page has {len(data['maths'])} math element(s) but no mjx-container (MathJax did not typeset)")
    for w in data["wide"]:
        problems.append(f"horizontal scrollbar in {w['where']} (scrollWidth {w['scrollWidth']} > clientWidth "
                        f"{w['clientWidth']}): {_snippet(w['line'])!r}")

    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    return problems


# ---------------------------------------------------------------- fixtures

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(folder: Path):
    """Start an http.server for folder on 127.0.0.1 and a free port in a daemon thread; returns (server, base URL)."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def browser_context():
    """One headless system Chromium and one 1280x900 context that aborts every request not to 127.0.0.1."""
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip("playwright is not importable: pip install playwright")
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
        # Every page is checked as a reader's first visit (results do not depend on page order): the theme
        # remembers settings in localStorage, so clear it before each page's own scripts run.
        context.add_init_script("try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}")

        def route(r):
            host = urlsplit(r.request.url).hostname
            if host == "127.0.0.1" or r.request.url.startswith(("data:", "blob:")):
                r.continue_()
            else:
                r.abort()

        context.route("**/*", route)
        try:
            yield context
        finally:
            context.close()
            browser.close()


@pytest.fixture(scope="module")
def site_url():
    if not (SITE / "index.html").exists():
        pytest.skip("build the book first: make book")
    server, url = serve(SITE)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page(browser_context):
    p = browser_context.new_page()
    try:
        yield p
    finally:
        p.close()


# ---------------------------------------------------------------- the tests

PAGES = list_pages(SITE) if SITE.is_dir() else []


@pytest.mark.browser
@pytest.mark.parametrize("path", PAGES or ["index.html"], ids=lambda p: p)
def test_page_renders_cleanly(site_url, page, path):
    problems = check_page(page, site_url + path, SCREENSHOTS / screenshot_name(path))
    if problems:
        pytest.fail(f"{path}: {len(problems)} problem(s):\n  " + "\n  ".join(problems), pytrace=False)


BROKEN_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>broken</title></head><body>
<p>A figure: <img src="_images/does-not-exist.png" alt="gone"></p>
<p>Inline math: <span class="math notranslate nohighlight">\(x^2\)</span></p>
<p>See <span class="xref std std-ref">no-such-label</span> and {glue:}`missing_key`.</p>
<div class="cell_output"><div class="output traceback highlight-ipythontb"><pre>Traceback (most recent call last)
ZeroDivisionError: division by zero</pre></div></div>
<div class="cell_input"><div class="highlight"><pre>x = 1  # """ + "a_very_long_identifier_" * 40 + r"""</pre></div></div>
<img src="https://example.invalid/external.png" alt="external, blocked and not counted">
<script>console.error("injected console error");</script>
</body></html>
"""

CLEAN_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>clean</title></head><body>
<p>Prices went from $5 to $10.</p>
<p><img src="dot.svg" alt="an svg without intrinsic size"></p>
<div class="cell_input"><div class="highlight"><pre>x = 1</pre></div></div>
<script src="https://cdn.example.invalid/lib.js"></script>
</body></html>
"""


@pytest.mark.browser
def test_check_page_catches_each_kind_of_problem(tmp_path, page):
    """A hand-made page with one of each problem is reported for each; a clean one (an external script that is
    blocked, an SVG without intrinsic size, dollar signs in prose) is not."""
    (tmp_path / "broken.html").write_text(BROKEN_PAGE)
    (tmp_path / "clean.html").write_text(CLEAN_PAGE)
    (tmp_path / "redirect.html").write_text('<meta http-equiv="Refresh" content="0; url=clean.html" />')
    (tmp_path / "redirect-404.html").write_text('<meta http-equiv="Refresh" content="0; url=gone.html" />')
    (tmp_path / "dot.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                                      '<circle cx="5" cy="5" r="4"/></svg>')
    server, url = serve(tmp_path)
    try:
        shot = tmp_path / "shots" / screenshot_name("broken.html")
        problems = check_page(page, url + "broken.html", shot, mathjax_timeout_ms=1000)
        report = "\n".join(problems)
        expected = {
            "missing image": "missing image: _images/does-not-exist.png",
            "404": "HTTP 404 for " + url + "_images/does-not-exist.png",
            "no MathJax": "MathJax did not load",
            "raw TeX": r"raw TeX in span.math.notranslate.nohighlight: '\\(x^2\\)'",
            "no mjx-container": "but no mjx-container",
            "unresolved xref": "unresolved reference span.xref.std.std-ref: 'no-such-label'",
            "glue marker": "unresolved marker '{glue:}'",
            "traceback": "error cell div.output.traceback",
            "console error": "console error: injected console error",
            "wide code": "horizontal scrollbar in code cell",
        }
        missing = [k for k, v in expected.items() if v not in report]
        assert not missing, f"not reported: {missing}\nreport:\n{report}"
        assert "example.invalid" not in report, report
        assert shot.is_file() and shot.stat().st_size > 0

        assert check_page(page, url + "clean.html") == []
        assert check_page(page, url + "redirect.html") == [] and page.url == url + "clean.html"
        assert any(f"HTTP 404 for {url}gone.html" in p for p in check_page(page, url + "redirect-404.html"))
    finally:
        server.shutdown()
        server.server_close()


MATH_PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>math</title>
<script>window.MathJax = {"options": {"processHtmlClass": "tex2jax_process|mathjax_process|math|output_area"}}</script>
<script defer src="_static/mathjax/tex-chtml.js"></script></head><body>
<p>Fine: <span class="math notranslate nohighlight">\(x^2 + \alpha\)</span></p>
<div class="math notranslate nohighlight" id="equation-a"><span class="eqno">(1)</span>
\begin{align} a &= b \end{align}</div>
%s
</body></html>
"""


@pytest.mark.browser
def test_check_page_passes_typeset_math_and_catches_tex_errors(tmp_path, page):
    """With the MathJax the built site serves (skipped without it): typeset math passes, a TeX error is named."""
    mathjax = SITE / "_static" / "mathjax"
    if not (mathjax / "tex-chtml.js").is_file():
        pytest.skip("no _build/html/_static/mathjax/tex-chtml.js: build the book first: make book")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "mathjax").symlink_to(mathjax)
    (tmp_path / "good.html").write_text(MATH_PAGE % "")
    bad = r'<p><span class="math notranslate nohighlight">\(\frac{x}\)</span></p>'  # \frac lacks an argument
    (tmp_path / "bad.html").write_text(MATH_PAGE % bad)
    server, url = serve(tmp_path)
    try:
        assert check_page(page, url + "good.html") == []
        problems = check_page(page, url + "bad.html")
        assert any(p.startswith("TeX error in span.math") and "frac" in p for p in problems), problems
    finally:
        server.shutdown()
        server.server_close()


def test_list_pages_and_screenshot_names(tmp_path):
    for rel in ["index.html", "genindex.html", "search.html", "intro.html", "book/executed/01_a.html",
                "_static/x.html", "_sources/intro.md.html", "_images/y.html", "book/_static/z.html", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert list_pages(tmp_path) == ["book/executed/01_a.html", "index.html", "intro.html"]
    assert screenshot_name("book/executed/01_a.html") == "book__executed__01_a.png"
    assert screenshot_name("intro.html") == "intro.png"
    assert is_local("http://127.0.0.1:8000/_static/a.js", "http://127.0.0.1:8000/intro.html")
    assert not is_local("https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js", "http://127.0.0.1:8000/")


def test_redirect_target():
    assert redirect_target('<meta http-equiv="Refresh" content="0; url=book/intro.html" />') == "book/intro.html"
    assert redirect_target("<META HTTP-EQUIV=refresh CONTENT='0;URL=intro.html'>") == "intro.html"
    assert redirect_target("<html><body>no redirect</body></html>") is None


def test_text_scanners():
    assert raw_tex_in_math(r"\(x^2\)") == r"\(x^2\)"
    assert raw_tex_in_math(r"\begin{align} a &= b \end{align}")
    assert raw_tex_in_math("$x$") and raw_tex_in_math("$$x$$")
    assert raw_tex_in_math("(1)") is None and raw_tex_in_math("") is None
    assert raw_tex_in_prose(r"costs $5 and $10; the gap \(g\) and $\alpha$") == [r"\(g\)", r"$\alpha$"]
    assert unresolved_markers("see Fig. ?? for {glue:}`k` and {numref}`f`") and not unresolved_markers("see Fig. 3")
    assert len(unresolved_markers("x {doc}`y`")) == 1
