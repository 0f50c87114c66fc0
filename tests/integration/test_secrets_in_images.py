"""Nothing secret is baked into an image.

The session made the generated secrets in the checkout's secrets/ before
`hubstack build` ran (conftest.checkout_secrets), as an operator has them.
Every image of the instance is exported with `docker save` (all layers, the
config and history) and searched for them.
"""

import pytest

from hubstack.common.contract import GENERATED_SECRETS
from hubstack.images import IMAGES


def saved_image_contains(image, needles):
    """Stream `docker save` of the image; which needles occur anywhere in it."""
    found, tail, keep = set(), b"", max(len(n) for n in needles)
    size = 0
    for chunk in image.save(chunk_size=4 * 1024 * 1024):
        block = tail + chunk
        size += len(chunk)
        found.update(n for n in needles if n in block)
        tail = block[-keep:]
    return found, size


def test_the_canary_is_found_where_it_is(docker_client, settings, built_stack):
    """The search itself works: a value written into a layer is found."""
    canary = b"hubstack-canary-5b0d7c1e"
    container = docker_client.containers.run(
        settings.names.image("hub"),
        ["sh", "-c", f"echo {canary.decode()} > /tmp/c"],
        detach=True,
        user="0",
        labels=settings.names.labels(),
    )
    container.wait(timeout=60)
    image = container.commit(repository=f"{settings.name}-canary", tag="test")
    try:
        found, _ = saved_image_contains(image, [canary, b"never-written-anywhere-9f2c"])
        assert found == {canary}
    finally:
        container.remove(force=True)
        docker_client.images.remove(image.id, force=True)


@pytest.mark.parametrize("role", [i.role for i in IMAGES])
def test_no_generated_secret_in_any_image(docker_client, settings, built_stack, checkout_secrets, role):
    needles = [value.encode() for value in checkout_secrets.values()]
    assert len(needles) == len(GENERATED_SECRETS) and all(len(n) == 64 for n in needles)
    image = docker_client.images.get(settings.names.image(role))
    found, size = saved_image_contains(image, needles)
    print(f"{settings.names.image(role)}: {size / 1e6:.0f} MB searched")
    assert not found
    history = " ".join(str(step) for step in image.history())
    assert not any(n.decode() in history for n in needles)
