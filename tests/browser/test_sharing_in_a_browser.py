"""Two researchers in two browsers: Ada shares her server with Bea on the hub's Share page, Bea opens
Ada's notebook from the link she was given, and what Bea types appears in Ada's page as she types it
(jupyter-collaboration). The latency of 20 such edits is measured and printed."""

import re
import statistics
import time
import uuid

from test_researcher_in_a_browser import SPAWN_TIMEOUT_MS, log_in

from helpers import user_servers

EDITS = 20
SEEN_IN_A_CELL = """m => Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell .cm-content'))
    .some(e => e.textContent.includes(m))"""


def test_a_colleague_edits_a_shared_notebook_in_real_time(hub, browser, steps, docker_client, record_property):
    contexts = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(2)]
    try:
        ada, bea = (context.new_page() for context in contexts)
        log_in(ada, hub, "ada")
        ada.wait_for_url(re.compile(r"/user/ada/lab"), timeout=SPAWN_TIMEOUT_MS)
        log_in(bea, hub, "bea", next_url="/hub/home")  # Bea needs no server of her own
        bea.wait_for_url(re.compile(r"/hub/home"))

        ada.goto(f"{hub}/hub/share")
        ada.fill("#hubstack-share-with", "bea")
        ada.click("#hubstack-share-form button[type=submit]")
        ada.wait_for_selector("#hubstack-share-done")
        steps.shot(ada, "ada-shared")
        link = ada.inner_text("#hubstack-share-link").strip()
        assert link == f"{hub}/user/ada/lab"
        assert ada.locator("#hubstack-shares tr[data-share=bea]").count() == 1

        ada.goto(f"{hub}/user/ada/lab/tree/demo.ipynb")
        ada.wait_for_selector(".jp-Notebook .jp-CodeCell .cm-content")
        bea.goto(f"{link}/tree/demo.ipynb")
        bea.get_by_role("button", name="Authorize").click()  # the hub asks once before Ada's server may know her
        bea.wait_for_url(re.compile(r"/user/ada/lab"))
        bea.wait_for_selector(".jp-Notebook .jp-CodeCell .cm-content")
        steps.shot(bea, "bea-in-adas-notebook")
        bea.goto(f"{hub}/hub/share")
        assert bea.locator("#hubstack-shared-with-me a", has_text="ada's server").count() == 1
        bea.go_back()
        bea.wait_for_selector(".jp-Notebook .jp-CodeCell .cm-content")

        first_cell = bea.locator(".jp-Notebook .jp-CodeCell .cm-content").first
        first_cell.click()
        bea.keyboard.press("Control+Home")
        latencies = []
        for i in range(EDITS):
            marker = f"#e{i}-{uuid.uuid4().hex[:6]}"
            started = time.perf_counter()
            bea.keyboard.insert_text(marker)
            ada.wait_for_function(SEEN_IN_A_CELL, arg=marker, polling=5)
            latencies.append(time.perf_counter() - started)
        steps.shot(ada, "ada-sees-beas-edits")
        median = statistics.median(latencies)
        record_property("edit_latency_median_ms", round(median * 1000))
        print(
            f"real-time edit latency, Bea -> Ada, {EDITS} edits: median {median * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )
        assert len(latencies) == EDITS

        ada.goto(f"{hub}/hub/home")
        ada.click("#stop")
        ada.wait_for_selector("#start:has-text('Start My Server')", timeout=120_000)
        assert not user_servers(docker_client, "ada")
    finally:
        for context in contexts:
            context.close()
