"""The user-name rules of hubstack_hub.names (the integration test drives them through the real log-in)."""

import re

import pytest

from hubstack_hub.names import DEV_PATTERN, MAX_ESCAPED, PRODUCTION_PATTERN, SafeUserNames, docker_escape


class Upstream:
    """JupyterHub's own rules, as far as these tests need them: lower-case, then the pattern."""

    pattern = PRODUCTION_PATTERN

    def normalize_username(self, username):
        return username.lower()

    def validate_username(self, username):
        return bool(re.match(self.pattern, username))


class Rules(SafeUserNames, Upstream):
    pass


def accepted(name):
    rules = Rules()
    return rules.validate_username(rules.normalize_username(name))


@pytest.mark.parametrize("name", ["jane@example.org", "Jane.Doe+x@Example.ORG", "a_b-c@sub.example.co.uk"])
def test_ascii_addresses_pass(name):
    assert accepted(name)


@pytest.mark.parametrize(
    "name",
    [
        "\u212aate@example.org",  # the Kelvin sign: lower() would make it kate@example.org
        "m\u0430llory@example.org",  # Cyrillic a
        "jane@example.org\n",
        "a{prefix}@example.org",
        "a/b@example.org",
        "a%2fb@example.org",
        "jane",
        "x@" + ".".join(["b"] * 120) + ".org",  # too long once escaped
    ],
)
def test_look_alikes_templates_paths_and_giants_are_refused(name):
    assert not accepted(name)


def test_dev_mode_also_takes_plain_names_but_nothing_else():
    assert re.match(DEV_PATTERN, "alice") and re.match(DEV_PATTERN, "b1a2b3hub0")
    assert not re.match(DEV_PATTERN, "alice\n") and not re.match(DEV_PATTERN, "-x") and not re.match(DEV_PATTERN, "a b")


def test_escaping_keeps_distinct_names_apart():
    names = ["a-@example.org", "a-2d@example.org", "a.b@example.org", "a-2eb@example.org", "a+b@example.org"]
    assert len({docker_escape(n) for n in names}) == len(names)
    assert all(len(docker_escape(n)) <= MAX_ESCAPED for n in names)
