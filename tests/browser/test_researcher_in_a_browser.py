"""A researcher in a real browser: log in, JupyterLab, the demo notebook run top to bottom with its plots
drawn, the server stopped from the hub's home page; the busy page that lets them in by itself; the page
that denies a production log-in.
"""

import re
import threading
import time

import pytest
import requests
from test_access import APPLY_URL, HUB, OIDC, production, services  # noqa: F401 - the production hub, its provider

from helpers import run_hubstack, user_servers
from hubclient import BrowserUser

SPAWN_TIMEOUT_MS = 180_000


def log_in(page, hub, name, next_url=None):
    page.goto(f"{hub}/hub/login" + (f"?next={requests.utils.quote(next_url, safe='')}" if next_url else ""))
    page.fill("#username_input", name)
    page.click("#login_submit")


def test_log_in_run_the_demo_and_stop_the_server(hub, page, steps, docker_client):
    log_in(page, hub, "brenda")
    steps.shot(page, "after-log-in")
    page.wait_for_url(re.compile(r"/user/brenda/lab"), timeout=SPAWN_TIMEOUT_MS)
    page.wait_for_selector("#jp-main-dock-panel")
    steps.shot(page, "jupyterlab")

    page.goto(f"{hub}/user/brenda/lab/tree/demo.ipynb")
    page.locator(".jp-StatusBar-Widget", has_text="| Idle").wait_for(timeout=120_000)  # its kernel is up
    steps.shot(page, "demo-open")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
    summary = page.locator(".jp-OutputArea-output", has_text="Summary:")
    summary.wait_for(timeout=240_000)
    steps.shot(page, "demo-run")
    assert page.locator(".jp-OutputArea-output img").count() >= 3  # the figures, drawn by the browser
    assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
    assert "synthetic variant calls" in summary.inner_text()

    page.goto(f"{hub}/hub/home")
    page.click("#stop")
    page.wait_for_selector("#start:has-text('Start My Server')", timeout=120_000)
    steps.shot(page, "stopped")
    assert not user_servers(docker_client, "brenda")


@pytest.fixture
def one_at_a_time(hub):
    run_hubstack("up", env={"HUBSTACK_SPAWN_CONCURRENCY": "1"}, timeout=600)
    yield hub
    run_hubstack("up", timeout=600)


def test_the_line_says_why_and_lets_them_in_by_itself(one_at_a_time, page, steps, docker_client):
    hub = one_at_a_time
    log_in(page, hub, "lena", next_url="/hub/home")
    page.wait_for_url(re.compile(r"/hub/home"))
    early = [BrowserUser(hub, name) for name in ("ezra", "finn")]
    for person in early:
        person.login()
    # Ezra's and Finn's spawns come first (one starts at a time): Lena waits behind them.
    holding = [threading.Thread(target=lambda p=p: p.session.get(p.url("/hub/spawn"), timeout=120)) for p in early]
    for thread in holding:
        thread.start()
        time.sleep(0.2)
    page.goto(f"{hub}/hub/spawn")
    page.wait_for_selector("text=Waiting for a free place: the hub starts 1 server(s) at once", timeout=30_000)
    steps.shot(page, "in-line")
    for thread in holding:
        thread.join()
    page.wait_for_url(re.compile(r"/user/lena/lab"), timeout=SPAWN_TIMEOUT_MS)  # let in by itself
    page.wait_for_selector("#jp-main-dock-panel")
    steps.shot(page, "let-in")
    assert all(user_servers(docker_client, name) for name in ("lena", "ezra", "finn"))
    for person in early:
        person.stop_server()
    page.goto(f"{hub}/hub/home")
    page.click("#stop")
    page.wait_for_selector("#start:has-text('Start My Server')", timeout=120_000)


def test_a_production_log_in_that_is_not_approved_is_told_why(production, page, steps):  # noqa: F811
    stranger = "stranger@example.org"
    claims = {"email": stranger, "email_verified": True}
    requests.put(f"{OIDC}/users/{requests.utils.quote(stranger, safe='')}", json=claims, timeout=10).raise_for_status()
    page.goto(f"{HUB}/hub/login")
    steps.shot(page, "login")
    page.click("a[href*='oauth_login']")
    page.wait_for_selector("input[name='sub']")
    steps.shot(page, "provider")
    page.fill("input[name='sub']", stranger)
    with page.expect_navigation(url=re.compile(r"/hub/oauth_callback")):
        page.press("input[name='sub']", "Enter")
    steps.shot(page, "denied")
    assert "Not approved for data access" in page.content()
    denial = page.locator(".hubstack-denial")
    assert denial.get_attribute("data-outcome") == "denied"
    assert page.locator(".hubstack-denial a").get_attribute("href") == APPLY_URL
