"""access/datasets.toml: what a good file gives, and one line for each kind of mistake."""

import pytest

from hubstack.common.contract import Names
from hubstack.common.datasets import Catalogue, check_sources, check_volumes, load
from hubstack.common.login import Login
from hubstack.common.parse import SettingsError

GOOD = """
[passports]
allowed_by = ["dac"]
clock_skew_seconds = 30
issuers = [{ iss = "https://visas.example.org/", jku = "https://visas.example.org/jwks.json" }]

[datasets.pcawg]
title = "PCAWG somatic calls"
description = "ICGC controlled data"
folder = "FOLDER"
grant = "registry"
cloud_access = true

[datasets.cohort]
volume = "cohort-2024"
grant = "passport"
key = "https://ega-archive.org/datasets/EGAD00001000001"

[datasets.listed]
volume = "listed"
grant = "list"

[datasets.grch38]
volume = "reference-genomes"
grant = "open"
mount = "reference"
"""


def write(tmp_path, text):
    folder = tmp_path / "data"
    folder.mkdir(exist_ok=True)
    (tmp_path / "datasets.toml").write_text(text.replace("FOLDER", str(folder)))
    return tmp_path


def test_a_good_file(tmp_path):
    catalogue = load(write(tmp_path, GOOD))
    by_name = {d.name: d for d in catalogue.datasets}
    assert list(by_name) == ["pcawg", "cohort", "listed", "grch38"]
    assert by_name["pcawg"].folder == str(tmp_path / "data") and by_name["pcawg"].cloud_access is True
    assert by_name["cohort"].key == "https://ega-archive.org/datasets/EGAD00001000001"
    assert by_name["listed"].key == "listed"  # the approvals.csv dataset column defaults to the name
    assert by_name["grch38"].mount_point == "/data/reference"
    names = Names("ci")
    assert by_name["pcawg"].volume_name(names) == "ci-dataset-pcawg"
    assert by_name["cohort"].volume_name(names) == "cohort-2024"
    assert catalogue.passports.issuers == {"https://visas.example.org/": "https://visas.example.org/jwks.json"}
    assert catalogue.passports.clock_skew == 30


def test_no_file_no_datasets(tmp_path):
    assert load(tmp_path) == Catalogue()


@pytest.mark.parametrize(
    "text,says",
    [
        ("[datasets.x\n", "is not valid TOML"),
        ('[datasets."Bad Name"]\nvolume = "v"\ngrant = "open"\n', "'Bad Name' is not a dataset name"),
        ('[datasets."../etc"]\nvolume = "v"\ngrant = "open"\n', "'../etc' is not a dataset name"),
        ('[datasets.readme]\nvolume = "v"\ngrant = "open"\n', "'readme' is not a dataset name"),
        ('[datasets.x]\nvolume = "v"\n', "grant = '': use one of open, registry, list, passport"),
        ('[datasets.x]\nvolume = "v"\ngrant = "daco"\n', "grant = 'daco'"),
        ('[datasets.x]\ngrant = "open"\n', "needs exactly one source"),
        ('[datasets.x]\nvolume = "v"\nfolder = "/srv"\ngrant = "open"\n', "needs exactly one source"),
        ('[datasets.x]\nfolder = "/nonexistent/hubstack-ci"\ngrant = "open"\n', "does not exist on this machine"),
        ('[datasets.x]\nfolder = "relative/path"\ngrant = "open"\n', "use an absolute host path"),
        ('[datasets.x]\nvolume = "no/slashes"\ngrant = "open"\n', "is not a Docker volume name"),
        ('[datasets.x]\nvolume = "v"\ngrant = "open"\ngrnat = "list"\n', "has 'grnat', which is not known"),
        ('[datasets.x]\nvolume = "v"\ngrant = "passport"\n', "needs key = the identifier"),
        ('[datasets.x]\nvolume = "v"\ngrant = "open"\nkey = "k"\n', "key only applies to grant = list or passport"),
        ('[datasets.x]\nvolume = "v"\ngrant = "list"\ncloud_access = true\n', "cloud_access only applies"),
        ('[datasets.x]\nvolume = "v"\ngrant = "registry"\ncloud_access = "yes"\n', "must be true or false"),
        (
            '[datasets.a]\nvolume = "v"\ngrant = "open"\n[datasets.b]\nvolume = "w"\ngrant = "open"\nmount = "a"\n',
            "datasets 'a' and 'b' both mount at /data/a",
        ),
        ('[dataset.x]\nvolume = "v"\n', "has [dataset]: use [datasets.NAME] and [passports]"),
        ('[datasets.x]\nvolume = "v"\ngrant = "passport"\nkey = "k"\n', "lists no trusted issuers"),
        ('[passports]\nissuers = [{ iss = "https://i/" }]\n', "each of issuers is"),
        ('[passports]\nissuers = [{ iss = "https://i/", jku = "http://visas.example.org/j" }]\n', "is plain http"),
        ('[passports]\nallowed_by = ["dac", "anyone"]\n', "allowed_by must be a list of"),
        ("[passports]\nclock_skew_seconds = 9999\n", "clock_skew_seconds must be a whole number"),
    ],
)
def test_each_mistake_is_one_line_naming_the_file(tmp_path, text, says):
    with pytest.raises(SettingsError) as err:
        load(write(tmp_path, text), "access")
    message = str(err.value)
    assert says in message
    assert "\n" not in message and message.startswith(("access/datasets.toml", "dataset"))


def login(sources, provider="oidc"):
    fields = {name: None for name in Login.__dataclass_fields__}
    return Login(**{**fields, "sources": sources, "provider": provider})


def test_every_grant_needs_its_source_in_production(tmp_path):
    catalogue = load(write(tmp_path, GOOD))
    check_sources(catalogue, None)  # dev mode: only open datasets will mount, nothing to check
    check_sources(catalogue, login(("registry", "list")))
    with pytest.raises(SettingsError, match="grant = list, but HUBSTACK_ACCESS_SOURCES \\(registry\\)"):
        check_sources(catalogue, login(("registry",)))
    with pytest.raises(SettingsError, match="grant = registry, but"):
        check_sources(catalogue, login(("list",)))
    with pytest.raises(SettingsError, match="needs HUBSTACK_OAUTH_PROVIDER=oidc"):
        check_sources(catalogue, login(("registry", "list"), provider="github"))


def test_volumes_must_exist_and_be_what_the_file_says(tmp_path):
    catalogue = load(write(tmp_path, GOOD))
    folder = str(tmp_path / "data")
    names = Names("ci")
    volumes = {
        "ci-dataset-pcawg": {"Options": {"device": folder}, "Labels": {"hubstack.role": "dataset"}},
        "cohort-2024": {},
        "listed": {"Labels": None},
        "reference-genomes": {},
    }
    check_volumes(catalogue, names, volumes.get)
    with pytest.raises(SettingsError, match="the Docker volume cohort-2024 does not exist"):
        check_volumes(catalogue, names, {**volumes, "cohort-2024": None}.get)
    with pytest.raises(SettingsError, match="that binds .* does not exist: run `hubstack up`"):
        check_volumes(catalogue, names, {**volumes, "ci-dataset-pcawg": None}.get)
    moved = {"Options": {"device": "/elsewhere"}, "Labels": {"hubstack.role": "dataset"}}
    with pytest.raises(SettingsError, match="binds /elsewhere, not"):
        check_volumes(catalogue, names, {**volumes, "ci-dataset-pcawg": moved}.get)
    home = {"Labels": {"hubstack.instance": "ci", "hubstack.role": "home"}}
    with pytest.raises(SettingsError, match="is hubstack's own \\(home of ci\\), never a dataset"):
        check_volumes(catalogue, names, {**volumes, "listed": home}.get)
