"""A second `hubstack build` with nothing changed rebuilds nothing and changes nothing."""

from helpers import run_hubstack
from hubstack.common.contract import LABEL_INPUTS
from hubstack.images import IMAGES


def test_build_again_keeps_every_image(hub, docker_client, settings):
    before = {i.role: docker_client.images.get(settings.names.image(i.role)) for i in IMAGES}
    out = run_hubstack("build").stdout
    for image in IMAGES:
        tag = settings.names.image(image.role)
        assert f"{tag}: unchanged" in out, out
        after = docker_client.images.get(tag)
        assert after.id == before[image.role].id and len(after.labels[LABEL_INPUTS]) == 64
    assert "is current" in out  # the shared environment volume is not copied again
