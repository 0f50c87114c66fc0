"""A second `hubstack build` with nothing changed rebuilds nothing and changes nothing."""

from conftest import run_hubstack

from hubstack.build import IMAGES, INPUTS_LABEL


def test_build_again_keeps_every_image(hub, docker_client, settings):
    before = {i.role: docker_client.images.get(settings.image(i.role)) for i in IMAGES}
    out = run_hubstack("build").stdout
    for image in IMAGES:
        tag = settings.image(image.role)
        assert f"{tag}: unchanged" in out, out
        after = docker_client.images.get(tag)
        assert after.id == before[image.role].id and len(after.labels[INPUTS_LABEL]) == 64
    assert "is current" in out  # the shared environment volume is not copied again
