"""WCAG 2.2 AA checks of every console page in headless Chromium, against a real ``netmon console``
(waitress) over invented incidents: at 320 CSS px no page scrolls sideways (1.4.10); every field has a
label (1.3.1, 3.3.2); every target is at least 24 x 24 px unless it is a link in a sentence (2.5.8); text
and field borders have enough contrast as rendered (1.4.3, 1.4.11); one h1, no skipped heading level, a
main landmark and lang="en" (1.3.1, 2.4.6, 3.1.1); every table has a caption and scoped headers (1.3.1);
Tab reaches every control from the skip link on, each with a visible focus indicator, not obscured, and
leaves every one (2.1.1, 2.1.2, 2.4.1, 2.4.7, 2.4.11); a rejected review names its error and the field
(3.3.1). The checks run in the page from a11y.js beside this file. When axe-core is installed (the
axe-selenium-python package ships axe.min.js), it runs on every page too with the WCAG 2.2 A/AA rules and
must find nothing. The palette in console.css is checked by arithmetic as well. docs/console.md
"Accessibility" lists what is left to people."""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netmon.store.db import upgrade
from tests.console.conftest import PASSWORD
from tests.console.live import browser_sign_in, js, live_console, load, seed_demo, set_width
from tests.portal import browser as browser_mod
from tests.portal.browser import Browser

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(browser_mod.executable() is None, reason="chromium not installed"),
]
CSS = Path(__file__).resolve().parents[2] / "console" / "static" / "console.css"
CHECKS = (Path(__file__).with_name("a11y.js")).read_text(encoding="utf-8")
AUDIT_JS = "a11y.audit()"
# A page is judged only once its stylesheet is in force: after a form post the new document can be
# found by a selector before console.css has loaded, and its unstyled controls are the browser's size.
STYLED = "document.readyState === 'complete' && [...document.styleSheets].some(s => s.href && s.cssRules.length)"
Browsers = dict[str | None, Browser]
Site = tuple[str, dict[str, str]]
AXE_RUN = (
    "axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',"
    " 'wcag22aa']}}).then(r => r.violations.map(v => ({id: v.id, help: v.help,"
    " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})))"
)
FOCUS_JS = "a11y.focus()"
TABBABLE_JS = "a11y.tabbable()"

# (name, who is signed in, path; {uid} names from seed_demo)
PAGES = [
    ("queue", "dsl", "/incidents"),
    ("queue, all, miss form open", "dsl", "/incidents?status=all&miss=Thank+you%3A+kept."),
    ("incident with capture", "dsl", "/incidents/{top}"),
    ("incident with an error", "dsl", "/incidents/{reviewed}?error=closing+an+incident+needs+an+outcome"),
    ("false alarm with suggestions", "dsl", "/incidents/{false_alarm}"),
    ("dashboard", "dsl", "/dashboard?weeks=8"),
    ("library suggestions", "dsl", "/library"),
    ("audit log", "dsl", "/audit"),
    ("not found", "dsl", "/incidents/no-such-incident"),
    ("incident, network admin", "netadmin", "/incidents/{top}"),
    ("sign in", None, "/signin"),
]


def axe_source() -> str | None:
    """axe.min.js as shipped in the axe-selenium-python wheel, when installed (only the script is used)."""
    spec = importlib.util.find_spec("axe_selenium_python")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "node_modules" / "axe-core" / "axe.min.js"
    return path.read_text(encoding="utf-8") if path.is_file() else None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    work = tmp_path_factory.mktemp("a11y")
    url = f"sqlite:///{work / 'demo.db'}"
    upgrade(url)
    uids = seed_demo(url, work)
    with live_console(url, work) as base:
        yield base, uids


@pytest.fixture(scope="module")
def browsers(
    site: tuple[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str | None, Browser]]:
    base, _ = site
    opened: dict[str | None, Browser] = {}
    try:
        for who in ("dsl", "netadmin", None):
            browser = Browser(tmp_path_factory.mktemp(f"profile-{who}"))
            opened[who] = browser
            browser.send("Page.setBypassCSP", enabled=True)  # lets axe be injected; the page is unchanged
            if who is not None:
                browser_sign_in(browser, base, who)
        yield opened
    finally:
        for browser in opened.values():
            browser.close()


def open_page(browsers: dict[str | None, Browser], site: tuple[str, dict[str, str]], who: str | None,
              path: str, width: int = 320) -> Browser:  # fmt: skip
    base, uids = site
    browser = browsers[who]
    set_width(browser, width, 640, mobile=width < 500)
    load(browser, base + path.format(**uids))
    browser.evaluate(CHECKS)
    return browser


@pytest.mark.parametrize(("name", "who", "path"), PAGES, ids=[p[0] for p in PAGES])
@pytest.mark.parametrize("width", [320, 1280])
def test_page_passes_the_checks(
    browsers: Browsers, site: Site, name: str, who: str | None, path: str, width: int
) -> None:
    browser = open_page(browsers, site, who, path, width)
    assert browser.evaluate("document.querySelector('main') !== null")
    problems = browser.evaluate(AUDIT_JS)
    assert problems == {}, json.dumps(problems, indent=1)


@pytest.mark.parametrize(("name", "who", "path"), PAGES, ids=[p[0] for p in PAGES])
def test_keyboard_reaches_everything_with_visible_focus(
    browsers: dict[str | None, Browser],
    site: tuple[str, dict[str, str]],
    name: str,
    who: str | None,
    path: str,
) -> None:
    browser = open_page(browsers, site, who, path, 320)
    if browser.evaluate("!!document.querySelector('details.miss')"):
        browser.evaluate("document.querySelector('details.miss').open = true")  # its fields take part too
    wanted = set(browser.evaluate(TABBABLE_JS))
    seen: list[dict[str, Any]] = []
    for _ in range(2 * len(wanted) + 6):
        press(browser, "Tab")
        state = browser.evaluate(FOCUS_JS)
        if state is not None:
            seen.append(state)
        if wanted <= {s["key"] for s in seen} and len(seen) > len(wanted):
            break
    autofocus = browser.evaluate("(e => e && e.id)(document.querySelector('[autofocus]'))")
    if autofocus:  # the sign-in form focuses its first field: Tab starts there, the skip link comes round
        assert seen and seen[0]["key"].startswith("input#password"), seen[:1]
        assert any(s["skip"] for s in seen)
    else:
        assert seen and seen[0]["skip"], f"the first Tab should reach the skip link, got {seen[:1]}"
    assert wanted <= {s["key"] for s in seen}, (
        f"never reached by Tab: {sorted(wanted - {s['key'] for s in seen})}"
    )
    if browser.evaluate("!!document.querySelector('iframe#capture')"):  # Chromium's Tab passes by a sandboxed
        assert "a#capture-page|" in " ".join(wanted)  # frame: its page of its own is reached instead
    no_ring = [s["key"] for s in seen if not (s["outline"] or s["shadow"])]
    assert no_ring == [], "focus not visible on these"
    hidden = [s["key"] for s in seen if not s["inView"] or s["covered"]]
    assert hidden == [], "focused but out of view or covered"


def press(browser: Browser, key: str, shift: bool = False) -> None:
    codes = {"Tab": 9, "Enter": 13}
    for kind in ("rawKeyDown", "keyUp"):
        browser.send(
            "Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=codes[key],
            modifiers=8 if shift else 0,
        )  # fmt: skip


def test_skip_link_moves_focus_into_main(
    browsers: dict[str | None, Browser], site: tuple[str, dict[str, str]]
) -> None:
    browser = open_page(browsers, site, "dsl", "/incidents/{top}", 320)
    press(browser, "Tab")
    assert browser.evaluate("document.activeElement.className") == "skip"
    box = browser.evaluate(
        "(r => [r.left, r.top, r.width, r.height])(document.activeElement.getBoundingClientRect())"
    )
    assert box[0] >= 0 and box[1] >= 0 and box[2] >= 24 and box[3] >= 24, box  # shown where it can be seen
    press(browser, "Enter")
    press(browser, "Tab")
    first = browser.evaluate(
        "document.activeElement.closest('main') !== null && document.activeElement.innerText"
    )
    assert first == "← Triage queue"  # the first link of the page's own content, past the menu


def test_sign_in_errors_and_the_code_page_pass_the_checks(site: Site, tmp_path: Path) -> None:
    """The pages before sign-in: a wrong password, then the code page (password right), at 320 px."""
    base, _ = site
    browser = Browser(tmp_path / "profile")
    try:
        browser.send("Page.setBypassCSP", enabled=True)
        set_width(browser, 320, 640, mobile=True)
        load(browser, base + "/signin")
        js(browser, "#username", "value = 'pat'")
        js(browser, "#password", "value = 'not the password'")
        js(browser, "#signin", "click()")
        browser.wait_for(f"!!document.querySelector('#error') && {STYLED}")
        pages = {"wrong password": browser.evaluate(CHECKS + ";a11y.audit()")}
        js(browser, "#password", f"value = {json.dumps(PASSWORD)}")
        js(browser, "#signin", "click()")
        browser.wait_for(f"location.pathname === '/signin/totp' && !!document.querySelector('#verify') && {STYLED}")
        pages["code"] = browser.evaluate(CHECKS + ";a11y.audit()")
        source = axe_source()
        if source is not None:
            browser.evaluate(source + ";0")
            pages["code, axe"] = browser.evaluate(AXE_RUN)
    finally:
        browser.close()
    clean: dict[str, Any] = {"wrong password": {}, "code": {}} | ({} if source is None else {"code, axe": []})
    assert pages == clean, json.dumps(pages, indent=1)


def test_a_rejected_review_names_the_error_and_the_field(
    browsers: dict[str | None, Browser], site: tuple[str, dict[str, str]]
) -> None:
    base, uids = site
    browser = open_page(browsers, site, "dsl", f"/incidents/{uids['reviewed']}", 1280)
    js(browser, "#status", "value = 'closed'")
    js(browser, "#outcome", "value = ''")
    js(browser, "#save", "click()")
    browser.wait_for(f"!!document.querySelector('#error') && {STYLED}")
    browser.evaluate(CHECKS)
    error = browser.evaluate("(e => [e.getAttribute('role'), e.innerText])(document.querySelector('#error'))")
    assert error == ["alert", "closing an incident needs an outcome"]
    outcome = browser.evaluate(
        "(o => [o.getAttribute('aria-invalid'), o.getAttribute('aria-describedby')])"
        "(document.querySelector('#outcome'))"
    )
    assert outcome == ["true", "error"]
    problems = browser.evaluate(AUDIT_JS)
    assert problems == {}, json.dumps(problems, indent=1)


@pytest.mark.skipif(axe_source() is None, reason="axe-core not installed (pip install axe-selenium-python)")
@pytest.mark.parametrize(("name", "who", "path"), PAGES, ids=[p[0] for p in PAGES])
@pytest.mark.parametrize("width", [320, 1280])
def test_axe_finds_no_wcag_22_aa_violation(
    browsers: Browsers, site: Site, name: str, who: str | None, path: str, width: int
) -> None:
    browser = open_page(browsers, site, who, path, width)
    if not browser.evaluate("typeof axe !== 'undefined'"):
        browser.evaluate(axe_source() + ";0")  # type: ignore[operator]
    result = browser.evaluate(AXE_RUN)
    assert result == [], json.dumps(result, indent=1)


def _hex(value: str) -> tuple[int, int, int]:
    value = value.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def contrast(a: str, b: str) -> float:
    def lum(c: str) -> float:
        channels = [v / 255 for v in _hex(c)]
        lin = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_of_the_palette() -> None:
    """Every foreground/background pair console.css uses, by arithmetic (WCAG 2.x relative luminance)."""
    css = CSS.read_text(encoding="utf-8")
    var = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{3,6})", css))
    pairs = {  # (foreground, background, minimum): text 4.5, large text and UI parts 3
        "text": (var["fg"], var["bg"], 4.5),
        "muted text": (var["muted"], var["bg"], 4.5),
        "muted text on the excerpt": (var["muted"], var["panel"], 4.5),
        "links": (var["accent"], var["bg"], 4.5),
        "error text": (var["bad"], var["bg"], 4.5),
        "button label": ("#ffffff", var["go"], 4.5),
        "header text": ("#ffffff", var["top"], 4.5),
        "count pill": ("#ffffff", var["fg"], 4.5),
        "severity 5 badge": ("#ffffff", var["bad"], 4.5),
        "severity 4 badge": (var["top"], var["warn"], 4.5),
        "flag text": (var["fg"], var["flag"], 4.5),
        "field border": (var["fg"], var["bg"], 3),
        "focus ring (dark) on the page": (var["fg"], var["bg"], 3),
        "focus ring (yellow) on the header": (var["focus"], var["top"], 3),
        "chart bar": (var["accent"], var["bg"], 3),
        "open bar": (var["bad"], var["bg"], 3),
        "closed bar": (var["go"], var["bg"], 3),
    }
    low = {name: round(contrast(f, b), 2) for name, (f, b, need) in pairs.items() if contrast(f, b) < need}
    assert low == {}
    assert (
        round(contrast("#ffffff", "#000000"), 1) == 21.0 and round(contrast("#767676", "#ffffff"), 2) == 4.54
    )
