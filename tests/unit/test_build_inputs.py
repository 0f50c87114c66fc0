"""What makes `hubstack build` rebuild an image: the digest of its inputs."""

from hubstack.build import input_digest


def context(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM x\nCOPY app.py /\n")
    (tmp_path / "app.py").write_text("print(1)\n")
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(b"\x00" * 4096)
    (tmp_path / ".dockerignore").write_text("# not sent\nnotes.txt\n**/__pycache__\n")
    return tmp_path


def test_digest_follows_what_docker_would_be_sent(tmp_path):
    ctx = context(tmp_path)
    args = {"PYTHON_IMAGE": "hubstack-python:1", "parent id": "sha256:aaa"}
    first = input_digest(ctx, "Dockerfile", args)
    assert input_digest(ctx, "Dockerfile", args) == first  # stable

    (ctx / "notes.txt").write_text("ignored by .dockerignore")
    (ctx / "__pycache__").mkdir()
    (ctx / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"x")
    assert input_digest(ctx, "Dockerfile", args) == first

    changed = []
    (ctx / "app.py").write_text("print(2)\n")  # same size, other content
    changed.append(input_digest(ctx, "Dockerfile", args))
    (ctx / "app.py").chmod(0o755)
    changed.append(input_digest(ctx, "Dockerfile", args))
    (ctx / "wheels" / "b-2.0-py3-none-any.whl").write_bytes(b"")
    changed.append(input_digest(ctx, "Dockerfile", args))
    changed.append(input_digest(ctx, "Dockerfile", {**args, "parent id": "sha256:bbb"}))  # parent rebuilt
    (ctx / "Dockerfile").write_text("FROM x\nCOPY app.py /app.py\n")
    changed.append(input_digest(ctx, "Dockerfile", args))
    assert len({first, *changed}) == 6
