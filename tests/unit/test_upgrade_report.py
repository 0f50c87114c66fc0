"""What `hubstack upgrade` says about the images and the database it changed."""

from hubstack.upgrade import describe, package_changes, parse_packages


def test_packages_of_every_environment_and_debian_in_one_listing():
    listing = "jupyterhub==6.1.1\noauthenticator==17.4.0\n\nnot a package line\nsquid==5.7-2+deb12u2\n"
    assert parse_packages(listing) == {"jupyterhub": "6.1.1", "oauthenticator": "17.4.0", "squid": "5.7-2+deb12u2"}


def test_only_changed_added_and_removed_packages_are_named():
    before = {"jupyterhub": "6.1.1", "oauthenticator": "17.3.0", "lark": "1.2"}
    after = {"jupyterhub": "6.1.1", "oauthenticator": "17.4.0", "pyjwt": "2.10.1"}
    assert package_changes(before, after) == [
        "lark 1.2 -> (removed)",
        "oauthenticator 17.3.0 -> 17.4.0",
        "pyjwt (new) -> 2.10.1",
    ]


def report(**overrides):
    base = {
        "images": {
            "hub-core": {"before": "sha256:aaaaaaaaaaaa1", "after": "sha256:bbbbbbbbbbbb2", "packages": ["x 1 -> 2"]},
            "hub": {"before": "sha256:cccccccccccc3", "after": "sha256:dddddddddddd4", "packages": []},
            "notebook": {"before": "sha256:eeeeeeeeeeee5", "after": "sha256:eeeeeeeeeeee5", "packages": []},
        },
        "schema": {"before": "4621fec11365", "after": "4621fec11365"},
        "servers_kept": ["hubci-jupyter-a"],
        "hub_restarted": True,
        "hub_down_seconds": 7.25,
    }
    return {**base, **overrides}


def test_the_report_names_each_image_its_changes_the_schema_and_the_servers_kept():
    lines = describe(report())
    assert lines[0] == "hub-core: aaaaaaaaaaaa -> bbbbbbbbbbbb"
    assert lines[1] == "    x 1 -> 2"
    assert lines[2] == "hub: cccccccccccc -> dddddddddddd"
    assert "hubstack's own files" in lines[3]
    assert lines[4] == "notebook: unchanged (eeeeeeeeeeee)"
    assert lines[5] == "hub database schema: 4621fec11365 (nothing to migrate)"
    assert lines[6].startswith("the hub was down 7.2 s; 1 running server(s) kept")


def test_a_migration_and_an_unrestarted_hub_are_said_as_such():
    lines = describe(report(schema={"before": "0eee8c825d24", "after": "4621fec11365"}, hub_restarted=False))
    assert "hub database schema: 0eee8c825d24 -> 4621fec11365 (a copy of the old one is beside it)" in lines
    assert lines[-1] == "the hub image is unchanged: the hub was not restarted"


def test_a_long_list_of_changes_is_cut_with_a_count():
    many = [f"p{i} 1 -> 2" for i in range(45)]
    lines = describe(report(images={"environment": {"before": "a", "after": "b", "packages": many}}))
    assert lines[41] == "    ... and 5 more"
