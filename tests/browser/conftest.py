"""Browser-test harness: Debian chromium driven by Playwright (sync API) against
pytest-django's live server, a sign-in helper that goes through the real login form and its
TOTP step, and an axe-core check that fails on serious or critical findings.

The Playwright sync API runs an asyncio loop in the test thread, and Django refuses ORM
calls from a thread with a running loop unless DJANGO_ALLOW_ASYNC_UNSAFE is set; the ORM
calls here are the test's own set-up, never concurrent with the loop. The variable is set
only while a browser is open (per test module), so the rest of the suite keeps the check.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyotp
import pytest

from tests.factories import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
AXE_JS = REPO / "node_modules" / "axe-core" / "axe.min.js"
RESULTS = REPO / "test-results"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
BLOCKING_IMPACTS = {"serious", "critical"}
# Upper bounds on waiting, not expectations of speed: generous because CI machines are
# shared and a live server on a loaded two-core box can take seconds to answer.
WAIT_MS = 20_000


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip = pytest.mark.skip(reason=f"Debian chromium not installed at {CHROMIUM} "
                                   "(apt-get install chromium)")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if not CHROMIUM.exists():
                item.add_marker(skip)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=LAUNCH_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server, transactional_db):
    context = browser.new_context(base_url=live_server.url,
                                  viewport={"width": 1440, "height": 900},
                                  timezone_id="UTC", locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    # axe-core is loaded into every document by the browser itself (not a <script> tag the
    # page's Content-Security-Policy would refuse: the tests run under the real policy).
    context.add_init_script(path=str(AXE_JS))
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    # Anything the CSP blocked (an inline script, handler, style or eval) fails the test.
    pg.on("console", lambda msg: errors.append(f"CSP: {msg.text}") if msg.type == "error"
          and "Content Security Policy" in msg.text else None)
    pg.js_errors = errors
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _next_totp(user) -> str:
    """A code the server will accept now: it refuses a step already used, so a second
    sign-in within the same 30 s uses the next step (inside the allowed drift)."""
    from watchkeeper.core import crypto
    from watchkeeper.core.models import User

    user = User.objects.get(pk=user.pk)
    totp = pyotp.TOTP(crypto.decrypt(user.totp_secret_enc, "totp"))
    import datetime

    step = totp.timecode(datetime.datetime.now(tz=datetime.UTC))
    if user.totp_last_step is not None and user.totp_last_step >= step:
        step = user.totp_last_step + 1
    return totp.generate_otp(step)


def sign_in_through_form(page, user, password: str = PASSWORD):
    """Sign in like a person: e-mail and password, then the authentication code."""
    page.goto("/login/")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    if "/login/code/" in page.url:
        page.get_by_label("Authentication code").fill(_next_totp(user))
        page.get_by_role("button", name="Verify").click()
        page.wait_for_load_state()
    assert "/login/" not in page.url, f"sign-in failed, still on {page.url}"
    return page


@pytest.fixture
def signed_in_page(page):
    def _sign_in(user):
        return sign_in_through_form(page, user)

    return _sign_in


def axe_violations(page) -> list[dict]:
    """Serious and critical axe-core violations on the current page."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, which the page's Content-Security-Policy
        # does not govern (a <script> tag would be refused: the tests run under the policy).
        page.evaluate(AXE_JS.read_text() + "\n;undefined")
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' +
                                                 (n.failureSummary || ''))}));
    }""")
    return [v for v in result if v["impact"] in BLOCKING_IMPACTS]


def describe_violations(blocking: list[dict], label: str) -> str:
    lines = [f"axe found {len(blocking)} serious/critical violation(s) on {label}:"]
    for v in blocking:
        lines.append(f"  [{v['impact']}] {v['id']}: {v['help']}")
        lines.extend(f"      {n}" for n in v["nodes"])
    return "\n".join(lines)


def axe_check(page, label: str = "") -> None:
    """Run axe-core on the current page; fail on any serious or critical violation."""
    blocking = axe_violations(page)
    if blocking:
        message = describe_violations(blocking, label or page.url)
        print(message)
        pytest.fail(message)


def screenshot(page, name: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
