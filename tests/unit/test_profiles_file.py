"""access/profiles.toml and groups.toml: what a good file gives, who may choose what, one line per mistake."""

from pathlib import Path

import pytest

from hubstack.common import groups
from hubstack.common.parse import SettingsError
from hubstack.common.profiles import DEFAULT, Refused, choose, form_html, load
from hubstack.common.settings import UserLimits

LIMITS = UserLimits(mem_bytes=2 * 1024**3, cpus=1.0, pids=512, idle_timeout=0, spawn_concurrency=2, max_servers=0)

GOOD = """
[profiles.standard]
description = "Notebooks and small analyses"
default = true

[profiles.large]
description = "Whole-genome work"
memory = "8G"
cpus = 2
pids = 1024
groups = ["genomics"]

[profiles.sql]
description = "With a private database"
memory = "1G"
database = true
database_memory = "512M"
"""

GROUPS = """
[groups.genomics]
members = ["Ann@Example.org", "ben@example.org"]
"""


def folder_with(tmp_path, profiles=None, groups=None):
    if profiles is not None:
        (tmp_path / "profiles.toml").write_text(profiles)
    if groups is not None:
        (tmp_path / "groups.toml").write_text(groups)
    return tmp_path


def load_from(tmp_path, profiles=None, operator_groups=None):
    folder = folder_with(tmp_path, profiles, operator_groups)
    return load(folder, "./access", LIMITS, groups.load(folder, "./access"))


def test_no_file_is_one_default_profile_with_the_env_limits_and_no_form(tmp_path):
    found = load_from(tmp_path)
    assert [p.name for p in found.offered("ann@example.org")] == [DEFAULT]  # one offered: no form
    assert (found.default.mem_bytes, found.default.cpus, found.default.pids) == (2 * 1024**3, 1.0, 512)


def test_a_good_file(tmp_path):
    found = load_from(tmp_path, GOOD, GROUPS)
    large, sql = found.get("large"), found.get("sql")
    assert found.default.name == "standard" and found.default.mem_bytes == 2 * 1024**3  # .env's where unsaid
    assert (large.mem_bytes, large.cpus, large.pids, large.groups) == (8 * 1024**3, 2.0, 1024, ("genomics",))
    assert (sql.database, sql.database_mem_bytes, sql.mem_bytes) == (True, 512 * 1024**2, 1024**3)
    assert found.groups.members == {"genomics": frozenset({"ann@example.org", "ben@example.org"})}


def test_the_profiles_offered_follow_the_groups_from_the_file_and_from_the_hub(tmp_path):
    found = load_from(tmp_path, GOOD, GROUPS)
    assert [p.name for p in found.offered("ann@example.org")] == ["standard", "large", "sql"]
    assert [p.name for p in found.offered("cal@example.org")] == ["standard", "sql"]
    # the OIDC groups claim or a GitHub team, as the hub knows them
    assert [p.name for p in found.offered("cal@example.org", ["genomics"])] == ["standard", "large", "sql"]


@pytest.mark.parametrize(
    "user,options,chosen",
    [
        ("cal@example.org", {}, "standard"),  # nothing asked: the default
        ("cal@example.org", {"profile": "sql"}, "sql"),
        ("cal@example.org", {"profile": ["sql"]}, "sql"),  # as a form sends it
        ("ann@example.org", {"profile": "large"}, "large"),
    ],
)
def test_choose(tmp_path, user, options, chosen):
    assert choose(load_from(tmp_path, GOOD, GROUPS), user, [], options).name == chosen


@pytest.mark.parametrize(
    "user,options,said",
    [
        ("cal@example.org", {"profile": "large"}, "is for genomics only"),
        ("cal@example.org", {"profile": "huge"}, "there is no such profile"),
        ("ann@example.org", {"profile": "standard", "image": "evil/image"}, "not 'image'"),
        ("ann@example.org", {"mem_limit": "64G"}, "not 'mem_limit'"),
        ("ann@example.org", {"profile": ["large", "sql"]}, "one name"),
        ("ann@example.org", {"profile": 3}, "one name"),
    ],
)
def test_choose_refuses_what_is_not_offered(tmp_path, user, options, said):
    with pytest.raises(Refused, match=said):
        choose(load_from(tmp_path, GOOD, GROUPS), user, [], options)


def test_a_forged_option_is_refused_even_without_profiles(tmp_path):
    with pytest.raises(Refused, match="not 'image'"):
        choose(load_from(tmp_path), "ann@example.org", [], {"image": "other"})


def test_the_form_lists_only_the_offered_profiles_escaped_and_the_default_checked(tmp_path):
    found = load_from(tmp_path, GOOD.replace("Whole-genome work", "<b>Whole</b> genome"), GROUPS)
    form = form_html(found.offered("ann@example.org"))
    assert form.count('type="radio"') == 3 and form.count("checked") == 1
    assert 'value="standard" checked' in form
    assert "&lt;b&gt;Whole&lt;/b&gt;" in form and "<b>Whole" not in form
    assert 'value="large"' not in form_html(found.offered("cal@example.org"))


@pytest.mark.parametrize(
    "text,said",
    [
        ("[profiles.a]\ndescription = 'x'\n[profiles.b]\ndescription = 'y'\n", "exactly one profile must say default"),
        (GOOD.replace('description = "Whole-genome work"', 'description = "x"\ndefault = true'), "are"),
        ('[profiles.a]\ndescription = "x"\nmemory = "lots"\n', "memory='lots' is not a memory size"),
        ('[profiles.a]\ndescription = "x"\nmemory = 8\n', "memory must be a size in quotes"),
        ('[profiles.a]\ndescription = "x"\ncpus = 0\n', "cpus='0' is not a number from 0.1"),
        ('[profiles.a]\ndescription = "x"\ncpus = true\n', "cpus must be a number"),
        ('[profiles.a]\ndescription = "x"\ngpu = 1\n', "'gpu', which is not known"),
        ('[profiles."Big One"]\ndescription = "x"\n', "is not a profile name"),
        ("[profiles.a]\n", "needs a description"),
        ('[profiles.a]\ndescription = "x"\ngroups = "genomics"\n', "groups must be a list"),
        ('[profiles.a]\ndescription = "x"\ndefault = true\ngroups = ["g"]\n', "the default profile is for everyone"),
        ('[profiles.a]\ndescription = "x"\ndatabase = "yes"\n', "database must be true or false"),
        ("[profiles\n", "is not valid TOML"),
        ("[other]\n", "declares no profile"),
    ],
)
def test_one_line_for_each_mistake(tmp_path, text, said):
    with pytest.raises(SettingsError, match=said) as err:
        load_from(tmp_path, text)
    assert "\n" not in str(err.value) and "./access/profiles.toml" in str(err.value)


def readme_example(name):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return readme.split(f"```toml\n# access/{name}\n", 1)[1].split("```", 1)[0]


def test_the_readme_examples_are_valid_files(tmp_path):
    found = load_from(tmp_path, readme_example("profiles.toml"), readme_example("groups.toml"))
    assert [p.name for p in found.offered("ann@example.org")] == ["standard", "large", "sql"]
    assert [p.name for p in found.offered("cal@example.org")] == ["standard", "sql"]
    assert found.get("sql").database and found.get("large").mem_bytes == 8 * 1024**3
