"""Bad input: one line that says what to fix, a meaningful exit code, nothing changed."""

import pytest

from helpers import run_hubstack

BAD = [
    ({"HUBSTACK_PORT": "eighty"}, ["up", "--dev"], 2, "HUBSTACK_PORT='eighty' is not a port number"),
    ({"DEV_MODE": "maybe"}, ["up"], 2, "DEV_MODE='maybe' is not a yes/no value: use 1 or 0"),
    (
        {"HUBSTACK_PROT": "8000"},
        ["up", "--dev"],
        2,
        "unknown setting HUBSTACK_PROT in the environment: did you mean HUBSTACK_PORT?",
    ),
    ({"HUBSTACK_BIND": "0.0.0.0"}, ["up", "--dev"], 2, "dev mode lets anyone log in, so it only binds to loopback"),
    ({"DEV_MODE": "0"}, ["up"], 2, "production log-in is not configured"),
    (
        {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
        ["up", "--dev"],
        3,
        "cannot reach the Docker engine at unix:///nonexistent/docker.sock",
    ),
    ({"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, ["build"], 3, "point DOCKER_HOST at one that runs"),
]


def snapshot(client):
    return (
        sorted((c.name, c.status) for c in client.containers.list(all=True)),
        sorted(v.name for v in client.volumes.list()),
        sorted(n.name for n in client.networks.list()),
        sorted(i.id for i in client.images.list(all=True)),
    )


@pytest.mark.parametrize("env,args,code,message", BAD, ids=[b[3][:30] for b in BAD])
def test_bad_input_is_one_line_and_changes_nothing(docker_client, env, args, code, message):
    before = snapshot(docker_client)
    result = run_hubstack(*args, env={"HUBSTACK_NAME": "hubci-bad", **env}, check=False, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert snapshot(docker_client) == before


@pytest.mark.parametrize(
    "env,message",
    [
        ({"DEV_MODE": "1", "HUBSTACK_BIND": "0.0.0.0"}, "hubstack: dev mode lets anyone log in"),
        ({"DEV_MODE": "perhaps"}, "hubstack: DEV_MODE='perhaps' is not a yes/no value"),
        ({"DEV_MODE": "0"}, "hubstack: production log-in is not configured"),
    ],
)
def test_the_hub_itself_refuses_an_open_configuration(built_stack, docker_client, settings, env, message):
    """Even started by hand, past the CLI, the hub image will not run open."""
    container = docker_client.containers.run(
        settings.names.image("hub"), environment={"HUBSTACK_NAME": "hubci-bad", **env}, detach=True
    )
    try:
        assert container.wait(timeout=120)["StatusCode"] != 0
        log = container.logs(stdout=False, stderr=True).decode().strip().splitlines()
        assert log[-1].startswith(message), log[-5:]
    finally:
        container.remove(force=True)


def test_a_failed_build_step_is_named_with_its_log(docker_client):
    before = snapshot(docker_client)
    result = run_hubstack(
        "build",
        env={"HUBSTACK_NAME": "hubci-bad", "HUBSTACK_BASE_IMAGE": "hubci-no-such-base:1"},
        check=False,
        timeout=120,
    )
    first, *rest = result.stderr.strip().splitlines()
    assert result.returncode == 4, result.stderr
    assert first.startswith("hubstack: base image failed: base image hubci-no-such-base:1 is not on this host")
    assert "unset HUBSTACK_BASE_IMAGE" in first
    assert rest[0].startswith("--- last lines of") and rest[0].endswith("base-image.log ---")
    assert snapshot(docker_client) == before
