import subprocess
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
    for name in (
        "rfc3987_syntax-1.1.0-py3-none-any.whl",
        "lark-1.3.1-py3-none-any.whl",
        "jsonschema-4.26.0-py3-none-any.whl",
    ):
        (tmp_path / name).write_bytes(b"")
    wheelhouse._main(["--list-wheels", str(tmp_path)])
    assert capsys.readouterr().out.split() == ["jsonschema==4.26.0"]
    for folder in ("hub-core", "notebook", "environment"):
        pins = wheelhouse.read_lock(REPO / folder / "requirements.lock")
        assert pins and not set(pins) & set(wheelhouse.LEFT_OUT), folder
