from pathlib import Path

from hubstack import wheelhouse

REPO = Path(__file__).resolve().parents[2]


def test_wheel_pin_normalises_names():
    assert wheelhouse.wheel_pin("Jinja2-3.1.4-py3-none-any.whl") == ("jinja2", "3.1.4")
    assert wheelhouse.wheel_pin("python_dotenv-1.2.4-py3-none-any.whl") == ("python-dotenv", "1.2.4")


def test_read_lock_skips_comments(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# generated\nJinja2==3.1.4\npython_dotenv==1.2.4  # why\n\n")
    assert wheelhouse.read_lock(lock) == {"jinja2": "3.1.4", "python-dotenv": "1.2.4"}


def test_missing_wheels_and_stale_removal(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==3.1.4\nclick==8.1.0\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "Jinja2-3.1.4-py3-none-any.whl").write_text("")
    (wheels / "click-7.0-py3-none-any.whl").write_text("")
    assert wheelhouse.missing_wheels(lock, wheels) == {"click": "8.1.0"}


def test_complete_wheelhouse_downloads_nothing_and_drops_stale(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("jinja2==3.1.4\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "Jinja2-3.1.4-py3-none-any.whl").write_text("")
    (wheels / "old-1.0-py3-none-any.whl").write_text("")
    assert wheelhouse.fill(lock, wheels, log=None) == 0
    assert sorted(p.name for p in wheels.iterdir()) == ["Jinja2-3.1.4-py3-none-any.whl"]


def test_platform_args_target_the_image_python():
    args = wheelhouse.pip_platform_args()
    assert args[args.index("--python-version") + 1] == "3.11.2"
    assert "--only-binary=:all:" in args


def test_locks_leave_out_what_no_server_needs(tmp_path, capsys):
    for name in ("rfc3987_syntax-1.1.0-py3-none-any.whl", "lark-1.3.1-py3-none-any.whl", "jsonschema-4.26.0-py3-none-any.whl"):
        (tmp_path / name).write_bytes(b"")
    wheelhouse._main(["--list-wheels", str(tmp_path)])
    assert capsys.readouterr().out.split() == ["jsonschema==4.26.0"]
    for lock in ("hub/core", "notebook", "notebook/environment"):
        pins = wheelhouse.read_lock(REPO / lock / "requirements.lock")
        assert pins and not set(pins) & set(wheelhouse.LEFT_OUT), lock
