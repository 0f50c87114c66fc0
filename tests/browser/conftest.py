"""A real browser for the hub's pages: Playwright for Python driving Debian's chromium, headless.

Playwright's own browser download is not reachable from these machines, so the
browser is Debian's (`scripts/setup-host --test` installs it), launched by
path with --no-sandbox (it runs as root here). Every step of a test is a
screenshot in .hubstack/browser/<test>/; the folder is kept when the test
fails, and removed when it passes.
"""

import shutil
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from helpers import REPO

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # the production set-up of test_access

TIMEOUT_MS = 30_000  # as JupyterHub's own browser tests
SHOTS = REPO / ".hubstack" / "browser"


@pytest.fixture(scope="module")  # Playwright's sync API holds an event loop open: never past these modules
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the browser tests need Debian's chromium: run scripts/setup-host --test (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"], headless=True)
        yield launched
        launched.close()


class Steps:
    """Numbered screenshots of one test."""

    def __init__(self, folder):
        self.folder, self.count = folder, 0
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def shot(self, page, name):
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.passed_call = report.passed
    return report


@pytest.fixture
def steps(request):
    folder = SHOTS / request.node.name.replace("/", "_")
    recorded = Steps(folder)
    yield recorded
    if getattr(request.node, "passed_call", False):
        shutil.rmtree(folder, ignore_errors=True)
    else:
        print(f"screenshots of {request.node.name}: {folder}")


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    yield opened
    context.close()
