"""access/groups.toml: members, shared folders, and one line for each kind of mistake."""

import pytest

from hubstack.common.groups import load
from hubstack.common.parse import SettingsError

GOOD = """
[groups.genomics]
members = ["Ann@Example.org", "ben@example.org"]
folder = true

[groups.imaging]
folder = true            # members from the OIDC groups claim only

[groups.reviewers]
members = ["cal@example.org"]
"""


def load_text(tmp_path, text):
    (tmp_path / "groups.toml").write_text(text)
    return load(tmp_path, "./access")


def test_no_file_is_no_group(tmp_path):
    found = load(tmp_path, "./access")
    assert found.members == {} and found.folders == () and found.folders_of("ann@example.org") == {}


def test_members_and_folders(tmp_path):
    found = load_text(tmp_path, GOOD)
    assert found.members["genomics"] == {"ann@example.org", "ben@example.org"}
    assert found.folders == ("genomics", "imaging")
    assert found.of("cal@example.org") == {"reviewers"}
    assert found.folders_of("ann@example.org") == {"genomics": "/shared/genomics"}
    assert found.folders_of("cal@example.org") == {}  # a group without a folder
    # the hub's groups (an OIDC claim, a GitHub team) count as much as the file's
    assert found.folders_of("dan@example.org", ["imaging"]) == {"imaging": "/shared/imaging"}


@pytest.mark.parametrize(
    "text,said",
    [
        ('genomics = ["a"]\n', "write each group as"),
        ('[groups]\ngenomics = ["a"]\n', "must be a table"),
        ('[groups."Gen Omics"]\nmembers = ["a"]\n', "is not a group name"),
        ('[groups.genomics]\nmembers = "ann"\n', "members must be a list of user names"),
        ('[groups.genomics]\nfolder = "yes"\n', "folder must be true or false"),
        ('[groups.genomics]\nowner = "ann"\n', "'owner', which is not known"),
        ("[groups\n", "is not valid TOML"),
    ],
)
def test_one_line_for_each_mistake(tmp_path, text, said):
    with pytest.raises(SettingsError, match=said) as err:
        load_text(tmp_path, text)
    assert "\n" not in str(err.value) and "./access/groups.toml" in str(err.value)
