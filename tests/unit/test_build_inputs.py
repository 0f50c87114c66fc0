"""What `hubstack build` builds an image from (its context), and what makes it rebuild one."""

from hubstack.images import IMAGES, Context, Image

IMAGE = Image("app", "app", wheels=True)


def project(tmp_path):
    ctx = tmp_path / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM x\nCOPY app.py /\n")
    (ctx / "app.py").write_text("print(1)\n")
    (ctx / ".dockerignore").write_text("# not sent\nnotes.txt\n**/__pycache__\nwheels\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "a-1.0-py3-none-any.whl").write_bytes(b"\x00" * 4096)
    return tmp_path, [cache / "a-1.0-py3-none-any.whl"]


def sent(context):
    return dict(context.entries)


def test_the_context_is_the_folder_less_ignored_files_plus_the_locked_wheels(tmp_path):
    root, wheels = project(tmp_path)
    (root / "app" / "notes.txt").write_text("ignored")
    (root / "app" / "wheels").mkdir()
    (root / "app" / "wheels" / "stale-0.1-py3-none-any.whl").write_bytes(b"old")  # a leftover of an old checkout
    members = sent(Context(root, IMAGE, wheels))
    assert set(members) == {"Dockerfile", "app.py", ".dockerignore", "wheels/a-1.0-py3-none-any.whl"}


def test_images_that_import_the_shared_package_get_all_of_it(tmp_path):
    root, _ = project(tmp_path)
    members = sent(Context(root, Image("app", "app", common=True)))
    shared = {name for name in members if name.startswith("lib/")}
    assert {
        "lib/hubstack/__init__.py",
        "lib/hubstack/common/contract.py",
        "lib/hubstack/common/settings.py",
        "lib/hubstack/common/registry.py",
    } <= shared
    assert not any(name.startswith("lib/hubstack/") and name.endswith(("cli.py", "build.py")) for name in shared)


def test_digest_follows_what_the_engine_is_sent(tmp_path):
    root, wheels = project(tmp_path)
    ctx = root / "app"
    args = {"PYTHON_IMAGE": "hubstack-python:1", "parent id": "sha256:aaa"}
    first = Context(root, IMAGE, wheels).digest(args)
    assert Context(root, IMAGE, wheels).digest(args) == first  # stable

    (ctx / "notes.txt").write_text("ignored by .dockerignore")
    (ctx / "__pycache__").mkdir()
    (ctx / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    assert Context(root, IMAGE, wheels).digest(args) == first

    changed = []
    (ctx / "app.py").write_text("print(2)\n")  # same size, other content
    changed.append(Context(root, IMAGE, wheels).digest(args))
    (ctx / "app.py").chmod(0o755)
    changed.append(Context(root, IMAGE, wheels).digest(args))
    other = wheels[0].with_name("b-2.0-py3-none-any.whl")
    other.write_bytes(b"")
    changed.append(Context(root, IMAGE, [*wheels, other]).digest(args))
    changed.append(Context(root, IMAGE, wheels).digest({**args, "parent id": "sha256:bbb"}))  # parent rebuilt
    (ctx / "Dockerfile").write_text("FROM x\nCOPY app.py /app.py\n")
    changed.append(Context(root, IMAGE, wheels).digest(args))
    assert len({first, *changed}) == 6


def test_every_image_has_a_folder_named_as_its_role_with_a_dockerfile():
    from hubstack.images import PACKAGE, PYTHON

    for image in (PYTHON, *IMAGES):
        assert image.folder == image.role
        assert (PACKAGE.parent / image.folder / "Dockerfile").is_file()
        assert (PACKAGE.parent / image.folder / "requirements.lock").is_file() == image.wheels
