"""The host/container contract said once: compose.yml, .env.example and the
README hold to hubstack.common, and no other file spells its literals."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from hubstack import compose
from hubstack.common import contract, registry
from hubstack.common.contract import Names, Role
from hubstack.common.settings import load

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "compose.yml").read_text())
SUBSTITUTION = re.compile(r"^\$\{([A-Z0-9_]+):-(.*)\}$")


def substituted(value):
    """'${HUBSTACK_PORT:-8000}' -> ('HUBSTACK_PORT', '8000')"""
    match = SUBSTITUTION.match(str(value))
    assert match, f"{value!r} is not ${{NAME:-default}}"
    return match[1], match[2]


@pytest.mark.parametrize("service", [registry.HUB, registry.TLS, registry.EGRESS])
def test_compose_passes_each_container_exactly_the_settings_it_reads(service):
    environment = dict(COMPOSE["services"][service]["environment"])
    for key in compose.derived(load(environ={})):  # computed by the CLI, not settings
        environment.pop(key, None)
    assert sorted(environment) == sorted(registry.read_by(service))
    for key, value in environment.items():
        name, default = substituted(value)
        assert name == key
        assert default == registry.DEFAULTS[key], f"compose.yml's default for {key} is not the registry's"


def test_compose_names_mounts_port_and_labels_as_the_contract_does():
    names = Names("hubstack")  # compose.yml's defaults are those of HUBSTACK_NAME's default
    assert registry.DEFAULTS["HUBSTACK_NAME"] == names.instance
    hub, tls = COMPOSE["services"]["hub"], COMPOSE["services"]["tls"]
    default_name = lambda value: value.replace("${HUBSTACK_NAME:-hubstack}", names.instance)  # noqa: E731
    assert default_name(hub["image"]) == names.image("hub") and default_name(tls["image"]) == names.image("tls")
    assert default_name(hub["container_name"]) == names.hub_container
    assert default_name(tls["container_name"]) == names.tls_container
    assert default_name(COMPOSE["networks"]["default"]["name"]) == names.network
    assert default_name(COMPOSE["volumes"]["hub-data"]["name"]) == names.hub_data_volume
    assert default_name(COMPOSE["volumes"]["tls-data"]["name"]) == names.tls_data_volume
    assert list(COMPOSE["services"])[0] == contract.HUB_SERVICE
    (published,) = hub["ports"]
    assert published.endswith(f":{contract.HUB_PORT}")
    assert (
        published
        == f"${{HUBSTACK_HUB_BIND:-127.0.0.1}}:${{HUBSTACK_PORT:-{registry.DEFAULTS['HUBSTACK_PORT']}}}:{contract.HUB_PORT}"
    )
    hub_mounts = {
        volume.split(":")[-2] if volume.endswith(":ro") else volume.split(":")[-1] for volume in hub["volumes"]
    }
    assert {contract.HUB_DATA, contract.SHARE_MOUNT, contract.SECRETS_MOUNT, contract.ACCESS_MOUNT} <= hub_mounts
    assert f"./{contract.SHARE_FOLDER}:{contract.SHARE_MOUNT}" in hub["volumes"]
    tls_mounts = {
        volume.split(":")[-2] if volume.endswith(":ro") else volume.split(":")[-1] for volume in tls["volumes"]
    }
    assert tls_mounts == {contract.TLS_DATA, contract.SECRETS_MOUNT, contract.TLS_CA_ROOT}
    assert f"${{HUBSTACK_TLS_FILES_DIR:-{contract.NO_TLS_FILES}}}:{contract.SECRETS_MOUNT}:ro" in tls["volumes"]
    assert tls["profiles"] == [contract.TLS_PROFILE]
    for service, role in ((hub, Role.HUB), (tls, Role.TLS)):
        labels = {k: default_name(v) for k, v in service["labels"].items()}
        assert labels == names.labels(role)
    assert hub["healthcheck"]["test"] == ["CMD", "python3", "-m", "hubstack_hub.health"]


def test_every_service_logs_to_capped_files_as_user_servers_do():
    capped = {
        "driver": contract.LOG_DRIVER,
        "options": {"max-size": contract.LOG_MAX_SIZE, "max-file": contract.LOG_MAX_FILES},
    }
    for name, service in COMPOSE["services"].items():
        assert service["logging"] == capped, name
    user_server = load(environ={}).limits.host_config()["log_config"]
    assert user_server == {"type": capped["driver"], "config": capped["options"]}


def test_env_example_is_generated_from_the_registry():
    assert (REPO / ".env.example").read_text() == registry.env_example(), (
        "run: python3 -m hubstack.common.registry --env-example > .env.example"
    )


def test_readme_configuration_table_is_generated_from_the_registry():
    readme = (REPO / "README.md").read_text()
    begin, end = "<!-- settings table: begin -->\n", "<!-- settings table: end -->"
    table = readme[readme.index(begin) + len(begin) : readme.index(end)]
    assert table == registry.readme_table(), (
        "run: python3 -m hubstack.common.registry --readme-table, paste it into README.md"
    )


def test_every_setting_has_help_and_a_known_section():
    for setting in registry.SETTINGS:
        assert setting.help and setting.section in registry.SECTIONS and setting.name not in ("", None)
    assert len(registry.KNOWN) == len(registry.SETTINGS)


# Literals of the contract that no other shipped file may spell (tests and docs may).
LITERALS = {
    contract.HUB_DATA: "HUB_DATA",
    contract.SECRETS_MOUNT: "SECRETS_MOUNT",
    contract.ACCESS_MOUNT: "ACCESS_MOUNT",
    contract.ENV_MOUNT: "ENV_MOUNT",
    contract.USER_HOME: "USER_HOME",
    contract.HUB_HOME: "HUB_HOME",
    contract.TLS_CA_ROOT: "TLS_CA_ROOT",
    contract.LABEL_INSTANCE: "LABEL_INSTANCE",
    contract.LABEL_ROLE: "LABEL_ROLE",
    contract.LABEL_USER: "LABEL_USER",
    contract.LABEL_SERVER: "LABEL_SERVER",
    contract.TLS_CHAIN: "TLS_CHAIN",
    contract.TLS_KEY: "TLS_KEY",
    f":{contract.HUB_PORT}": "HUB_PORT",
    f":{contract.HUB_API_PORT}": "HUB_API_PORT",
    contract.COOKIE_SECRET: "COOKIE_SECRET",
    contract.AUDIT_LOG: "AUDIT_LOG",
}
# compose.yml is data, held to the contract by the tests above.
CHECKED_ELSEWHERE = {"compose.yml", "hubstack/common/contract.py"}


def shipped_files():
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True
    ).stdout.split()
    for name in listed:
        path = REPO / name
        top = name.split("/")[0]
        if (
            top in ("tests", "README.md")
            or name.endswith((".md", ".ipynb", ".tsv", ".lock", ".in"))
            or not path.is_file()
        ):
            continue
        if name not in CHECKED_ELSEWHERE:
            yield name, path


def test_no_shipped_file_retypes_a_path_name_label_or_port_of_the_contract():
    found = []
    for name, path in shipped_files():
        text = path.read_text(errors="replace")
        for literal, constant in LITERALS.items():
            for line in text.splitlines():
                if literal in line and not line.lstrip().startswith("#"):
                    found.append(f"{name}: {line.strip()[:100]}  (use contract.{constant})")
    assert not found, "\n".join(found)
