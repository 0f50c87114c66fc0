from hubstack import wheelhouse


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
