import subprocess
import zipfile
from pathlib import Path

import pytest

from hubstack import wheelhouse

REPO = Path(__file__).resolve().parents[2]


def test_wheel_pin_normalises_names():
    assert wheelhouse.wheel_pin("Jinja2-3.1.4-py3-none-any.whl") == ("jinja2", "3.1.4")
    assert wheelhouse.wheel_pin("python_dotenv-1.2.4-py3-none-any.whl") == ("python-dotenv", "1.2.4")


def test_read_lock_skips_comments(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# generated\nJinja2==3.1.4\npython_dotenv==1.2.4  # why\n\n")
    assert wheelhouse.read_lock(lock) == {"jinja2": "3.1.4", "python-dotenv": "1.2.4"}


def lock(tmp_path, text="jinja2==3.1.4\nclick==8.1.0\n"):
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return path


class FakeIndex:
    """Stands in for `pip download`: answers with nothing for the first `empty` calls, as the index sometimes does."""

    def __init__(self, empty=0):
        self.empty, self.calls = empty, []

    def __call__(self, pins, dest, log):
        self.calls.append(dict(pins))
        if len(self.calls) <= self.empty:
            raise subprocess.CalledProcessError(1, "pip download", "No matching distribution found")
        for name, version in pins.items():
            (Path(dest) / f"{name}-{version}-py3-none-any.whl").write_bytes(b"wheel")


def test_a_cached_wheel_is_never_downloaded_again(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "Jinja2-3.1.4-py3-none-any.whl").write_bytes(b"")
    index = FakeIndex()
    files, count = wheelhouse.ensure(lock(tmp_path), cache, None, download=index, sleep=lambda s: None)
    assert index.calls == [{"click": "8.1.0"}] and count == 1
    assert [f.name for f in files] == ["Jinja2-3.1.4-py3-none-any.whl", "click-8.1.0-py3-none-any.whl"]
    again = FakeIndex()
    assert wheelhouse.ensure(lock(tmp_path), cache, None, download=again)[1] == 0 and again.calls == []
    assert sorted(p.name for p in cache.iterdir()) == [f.name for f in files]  # no download folder left


def test_an_empty_answer_from_the_index_is_retried_with_back_off(tmp_path):
    index, slept = FakeIndex(empty=2), []
    files, count = wheelhouse.ensure(
        lock(tmp_path), tmp_path / "cache", None, download=index, backoff=(5, 15, 45), sleep=slept.append
    )
    assert slept == [5, 15] and len(index.calls) == 3 and count == 2 and len(files) == 2


def test_a_download_that_keeps_failing_names_what_is_missing(tmp_path):
    index, slept = FakeIndex(empty=10), []
    with pytest.raises(RuntimeError, match=r"no wheel downloaded for click==8.1.0, jinja2==3.1.4 after 3 attempts"):
        wheelhouse.ensure(lock(tmp_path), tmp_path / "cache", None, download=index, backoff=(1, 2), sleep=slept.append)
    assert slept == [1, 2]


def test_the_cache_is_shared_per_host_unless_set(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert wheelhouse.cache_folder("") == tmp_path / "hubstack" / "wheels"
    assert wheelhouse.cache_folder("/var/cache/wheels") == Path("/var/cache/wheels")


def test_platform_args_target_the_image_python():
    args = wheelhouse.pip_platform_args()
    assert args[args.index("--python-version") + 1] == "3.11.2"
    assert "--only-binary=:all:" in args


def test_locks_leave_out_what_no_server_needs(tmp_path, capsys):
    resolved = tmp_path / "resolved.txt"  # as uv pip compile writes it
    resolved.write_text("rfc3987-syntax==1.1.0\nLark==1.3.1\njsonschema==4.26.0\nJinja2==3.1.6\n")
    wheelhouse._main(["--lock-from", str(resolved)])
    assert capsys.readouterr().out.split() == ["jinja2==3.1.6", "jsonschema==4.26.0"]
    for folder in ("hub-core", "notebook", "environment"):
        pins = wheelhouse.read_lock(REPO / folder / "requirements.lock")
        assert pins and not set(pins) & set(wheelhouse.LEFT_OUT), folder


def test_a_program_is_taken_out_of_its_wheel_once(tmp_path):
    wheel = tmp_path / "tool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("tool-1.0.data/scripts/tool", b"#!/bin/sh\necho tool\n")
        archive.writestr("tool/__init__.py", b"")
    program = wheelhouse.script_of(wheel, "tool", tmp_path / "cache")
    assert program.read_bytes() == b"#!/bin/sh\necho tool\n" and program.stat().st_mode & 0o777 == 0o755
    with pytest.raises(RuntimeError, match="carries no program other"):
        wheelhouse.script_of(wheel, "other", tmp_path / "cache")
    wheel.unlink()  # a second build finds it unpacked
    assert wheelhouse.script_of(wheel, "tool", tmp_path / "cache") == program
