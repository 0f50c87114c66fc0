"""Two instances on one host, side by side, each with its own everything."""

from helpers import INSTANCE_ENV, NAME, health_ok, run_hubstack, session_images_as, untag
from hubclient import BrowserUser
from hubstack.common.settings import load

OTHER = {"HUBSTACK_NAME": f"{NAME}2", "HUBSTACK_PORT": "8102"}


def names(client, kind, instance):
    items = getattr(client, kind).list(
        **({"all": True} if kind == "containers" else {}), filters={"label": [f"hubstack.instance={instance}"]}
    )
    return {(i.name, i.id) for i in items}


def test_two_instances_do_not_touch_each_other(hub, docker_client, settings):
    first = BrowserUser.with_server(hub, "ivan")
    kernel = first.start_kernel()
    _, error = first.run(kernel["id"], "open('/home/jovyan/where.txt', 'w').write('first')")
    assert error is None
    before = {kind: names(docker_client, kind, NAME) for kind in ("containers", "volumes")}

    # The images are the host's already (tagged for the second instance): its build makes only
    # its hub image and its own copy of the shared environment.
    tags = session_images_as(docker_client, settings, load(environ={**INSTANCE_ENV, **OTHER}))
    run_hubstack("build", env=OTHER)
    run_hubstack("up", "--dev", env=OTHER)
    other_url = "http://127.0.0.1:8102"
    assert health_ok(other_url) and health_ok(hub)
    second = BrowserUser.with_server(other_url, "ivan")
    kernel2 = second.start_kernel()
    out, error = second.run(kernel2["id"], "import os; print(os.path.exists('/home/jovyan/where.txt'))")
    assert (out.strip(), error) == ("False", None)

    assert docker_client.containers.get(f"{NAME}2-user-ivan").status == "running"
    assert docker_client.volumes.get(f"{NAME}2-home-ivan")
    assert docker_client.networks.get(f"{NAME}2-net")

    run_hubstack("down", env=OTHER)
    # The first instance: same containers, same volumes, still serving.
    after = {kind: names(docker_client, kind, NAME) for kind in ("containers", "volumes")}
    assert after == before
    out, error = first.run(kernel["id"], "print(open('/home/jovyan/where.txt').read())")
    assert (out.strip(), error) == ("first", None)
    # The second instance's hub and servers are gone, its volumes are kept.
    assert not docker_client.containers.list(filters={"label": [f"hubstack.instance={NAME}2"]})
    assert docker_client.volumes.get(f"{NAME}2-home-ivan")
    untag(docker_client, tags)
