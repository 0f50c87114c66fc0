"""The Dockerfile subset hubstack builds (hubstack.dockerfile) and the commit changes of a build (hubstack.assemble)."""

import pytest

from helpers import REPO
from hubstack.assemble import final_config
from hubstack.dockerfile import DockerfileError, exec_form, logical_lines, parse, parse_env, substitute
from hubstack.images import BACKUP, IMAGES, PYTHON

TEST_IMAGES = ("tests/services", "tests/prometheus", "tests/systemd")  # built by the integration tests


@pytest.mark.parametrize("folder", [i.folder for i in (PYTHON, *IMAGES, BACKUP)] + list(TEST_IMAGES))
def test_every_image_is_written_in_the_subset(folder):
    dockerfile = parse((REPO / folder / "Dockerfile").read_text())
    final = dockerfile.stages[-1]
    assert final.steps, folder
    for stage in dockerfile.stages:
        for step in stage.steps:
            if step.keyword == "COPY" and step.args.startswith("--from="):
                dockerfile.stage(step.args.split()[0].split("=", 1)[1])  # names an earlier stage


def test_substitution_as_docker_does_it():
    values = {"A": "1", "EMPTY": ""}
    assert substitute("$A/${A}/x", values) == "1/1/x"
    assert substitute("${MISSING:-dflt} ${EMPTY:-e} ${A:-no}", values) == "dflt e 1"
    assert substitute("${A:+set} ${MISSING:+set}.", values) == "set ."
    assert substitute(r"\$A costs $MISSING", values) == "$A costs "


def test_continuations_and_comments():
    text = "# top\nRUN a \\\n  # inside\n  && b\n\nENV X=1 \\\n    Y=2\n"
    assert list(logical_lines(text)) == [(2, "RUN a && b"), (6, "ENV X=1 Y=2")]


def test_env_forms():
    assert parse_env('A=1 B="two words"') == {"A": "1", "B": "two words"}
    assert parse_env("PATH /a:/b") == {"PATH": "/a:/b"}
    with pytest.raises(DockerfileError):
        parse_env("A=1 B")


def test_exec_and_shell_forms():
    assert exec_form('["tini", "--"]') == ["tini", "--"]
    assert exec_form("echo hi") == ["/bin/sh", "-c", "echo hi"]
    with pytest.raises(DockerfileError, match="not a JSON list"):
        exec_form('["tini",')


@pytest.mark.parametrize(
    "text, message",
    [
        ("FROM x\nHEALTHCHECK CMD true\n", "line 2: HEALTHCHECK is not in the subset"),
        ("RUN true\nFROM x\n", "line 1: only ARG may come before FROM"),
        ("FROM x\nCOPY --chown=1 a /b\n", "line 2: COPY takes only --from"),
        ('FROM x\nRUN ["true"]\n', "line 2: RUN in shell form only"),
        ("FROM x y z w\n", "line 1: FROM image"),
        ("ARG A\n", "no FROM"),
    ],
)
def test_outside_the_subset_is_refused_by_line(text, message):
    with pytest.raises(DockerfileError, match=message):
        parse(text)


def test_stages_and_global_args():
    dockerfile = parse("ARG BASE=debian\nFROM ${BASE} AS build\nRUN make\nFROM ${BASE}\nCOPY --from=build /o /o\n")
    assert dockerfile.global_args == {"BASE": "debian"}
    assert [(s.name, [x.keyword for x in s.steps]) for s in dockerfile.stages] == [("build", ["RUN"]), ("1", ["COPY"])]
    with pytest.raises(DockerfileError, match="no stage of that name"):
        dockerfile.stage("nope")


def test_the_image_keeps_or_resets_what_the_base_image_runs():
    base = {"Entrypoint": None, "Cmd": ["bash"], "Env": ["PATH=/bin"], "Labels": {"a": "1"}}
    inherited = final_config(base, {}, {}, [], {})
    assert (inherited["Entrypoint"], inherited["Cmd"]) == ([], ["bash"])  # [] is sent: never the container's sleep
    # An ENTRYPOINT of the stage resets the inherited CMD, as Docker does.
    reset = final_config(base, {"entrypoint": ["tini", "--"], "cmd_reset": True}, {}, [], {})
    assert (reset["Entrypoint"], reset["Cmd"]) == (["tini", "--"], [])
    both = final_config(base, {"entrypoint": ["tini"], "cmd": ["run"], "cmd_reset": False}, {}, [], {})
    assert (both["Entrypoint"], both["Cmd"]) == (["tini"], ["run"])


def test_the_stage_adds_to_the_base_configuration():
    base = {"Env": ["PATH=/bin", "LANG=C"], "ExposedPorts": {"22/tcp": {}}, "Labels": {"a": "1"}, "User": "mysql"}
    stage = {"workdir": "/srv", "stopsignal": "SIGRTMIN+3"}
    config = final_config(base, stage, {"PATH": "/opt/x/bin:/bin", "P": 'a "b" $c'}, ["80", "53/udp"], {"k": "v"})
    assert config["Env"] == ["PATH=/opt/x/bin:/bin", "LANG=C", 'P=a "b" $c']
    assert config["ExposedPorts"] == {"22/tcp": {}, "80/tcp": {}, "53/udp": {}}
    assert config["Labels"] == {"a": "1", "k": "v"}
    assert (config["WorkingDir"], config["User"], config["StopSignal"]) == ("/srv", "mysql", "SIGRTMIN+3")
