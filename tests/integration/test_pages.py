"""The pages a researcher sees: the operator's title, logo and text on the log-in page, and dev mode's banner.

The operator's files go in share/ (mounted into the hub), as README.md, 'Pages', says;
the hub is started again to read them, and afterwards as it was.
"""

import struct
import zlib

import pytest
import requests

from helpers import REPO, operator_files, run_hubstack
from hubclient import BrowserUser
from hubstack.common.contract import SHARE_FOLDER, SHARE_LOGO, WELCOME_TEMPLATE

TITLE = "CI Genome Hub"
WELCOME = (
    '<p class="ci-welcome">Somatic calls of the CI cohort. Access needs a DACO approval: '
    '<a href="https://daco.example.org/apply">apply here</a>.</p>'
)


def png(width=4, height=2):
    """A small valid PNG, made here."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def operator_pages(hub):
    share = REPO / SHARE_FOLDER
    with operator_files({share / "templates" / WELCOME_TEMPLATE: WELCOME.encode(), share / SHARE_LOGO: png()}) as files:
        run_hubstack("up", env={"HUBSTACK_TITLE": TITLE}, timeout=600)
        yield files
    run_hubstack("up", timeout=600)


def test_the_login_page_has_the_operators_title_text_and_logo(operator_pages, hub):
    page = requests.get(f"{hub}/hub/login", timeout=30)
    assert page.status_code == 200
    assert f"<title>{TITLE}</title>" in page.text.replace("\n", "").replace("  ", "")
    assert WELCOME in page.text  # the operator's HTML as written
    logo = requests.get(f"{hub}/hub/logo", timeout=30)
    assert logo.status_code == 200 and logo.content == operator_pages[REPO / SHARE_FOLDER / SHARE_LOGO]


def test_dev_mode_says_so_on_every_page(operator_pages, hub):
    assert "hubstack-dev-banner" in requests.get(f"{hub}/hub/login", timeout=30).text
    person = BrowserUser(hub, "paige")
    person.login()
    home = person.session.get(person.url("/hub/home"), timeout=30).text
    assert "hubstack-dev-banner" in home and "never put controlled data on this hub" in home
    assert f'class="nav-link text-muted hubstack-title">{TITLE}<' in home  # in the bar, once logged in
