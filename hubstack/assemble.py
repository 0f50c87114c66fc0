"""Build an image from its Dockerfile in one container, as one layer.

The engine's legacy builder (the only one on Docker 20.10 without BuildKit)
makes a container and commits a layer for every instruction: about 8 s each
on fuse-overlayfs, metadata instructions included, so the hub image's eleven
instructions cost 87 s to copy a few kilobytes. Here each stage runs in one
container: COPY puts files in with the engine's archive API, RUN executes in
it, and the final stage is committed once with its configuration (ENV,
WORKDIR, USER, ENTRYPOINT, CMD, EXPOSE, STOPSIGNAL and the labels).
A stage named by COPY --from stays up until the final stage has copied from
it, then goes, as in a multi-stage build.
"""

import hashlib
import posixpath
import tarfile
import tempfile
import time
from pathlib import Path

from docker.errors import NotFound
from docker.types import Mount

from . import dockerfile as dockerfile_module
from .dockerfile import DockerfileError, exec_form, parse, parse_args_line, parse_env, substitute

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A volume of its own in every build container, removed with it: what a step leaves
# there is in no image (the Dockerfiles here clean it anyway), and the wheels and
# uv's unpacking of them are written beside the storage driver, not through its FUSE
# mount (an install of the notebook's wheels: 84 s through it, 34 s with this).
SCRATCH = "/tmp"
SPOOL = 64 << 20  # archives bigger than this go to a temporary file


class StepFailed(RuntimeError):
    pass


def fingerprint():
    """sha256 of this builder's own code: part of every image's inputs, so that a build made
    by another version of it is never taken for up to date."""
    digest = hashlib.sha256()
    for module in (__file__, dockerfile_module.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()


def _split_tag(tag):
    repo, _, name = tag.rpartition(":")
    if not repo or "/" in name:
        return tag, "latest"
    return repo, name


class Box:
    """A container kept up (sleep) for execs and files: a stage of a build, or the environment's fill."""

    def __init__(self, client, image, log, **create):
        self.api, self.log = client.api, log
        self.container = client.containers.create(
            image.id,
            entrypoint=["sleep"],
            command=["infinity"],
            detach=True,
            mounts=[Mount(SCRATCH, None, type="volume")],
            **create,
        )
        try:
            self.container.start()
        except Exception:
            self.remove()
            raise

    def exec(self, command, user="", workdir="/", env=None):
        exec_id = self.api.exec_create(
            self.container.id, command, user=user or "0", workdir=workdir, environment=env or None
        )["Id"]
        output = []
        for chunk in self.api.exec_start(exec_id, stream=True):
            output.append(chunk.decode(errors="replace"))
            self.log.write(output[-1])
        self.log.flush()
        code = self.api.exec_inspect(exec_id)["ExitCode"]
        if code:
            raise StepFailed(f"{' '.join(command)[:200]} returned a non-zero code: {code}")
        return "".join(output)

    def put(self, fill_tar, what):
        """Write a tar into the container at /: fill_tar(tar) adds the members."""
        with tempfile.SpooledTemporaryFile(SPOOL) as buffer:
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                fill_tar(tar)
            buffer.seek(0)
            if not self.api.put_archive(self.container.id, "/", buffer):
                raise StepFailed(f"{what}: the engine refused the files")

    def remove(self):
        try:
            self.container.remove(force=True, v=True)  # and its scratch volume
        except NotFound:
            pass


def add_file(tar, path, arcname):
    """A file of this machine into tar at arcname, owned by root, as COPY puts it."""
    info = tar.gettarinfo(str(path), arcname=arcname.lstrip("/"))
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if info.isreg():
        with open(path, "rb") as f:
            tar.addfile(info, f)
    else:
        tar.addfile(info)


class StageRun(Box):
    """One stage in its container: what the Dockerfile says, step by step."""

    def __init__(self, client, stage, base_image, build_args, declared_globals, context, log, say):
        super().__init__(client, base_image, log)
        self.stage, self.context, self.say = stage, context, say
        config = base_image.attrs["Config"] or {}
        self.base_config = config
        self.env = dict(item.split("=", 1) for item in config.get("Env") or [])
        self.env_set, self.exposed = {}, []
        if "PATH" not in self.env:  # as Docker's builder does on FROM an image without one (an imported base)
            self.env["PATH"] = self.env_set["PATH"] = DEFAULT_PATH
        self.args = {}  # ARGs declared in this stage, with their values
        self.build_args, self.declared_globals = build_args, declared_globals
        self.workdir = config.get("WorkingDir") or "/"
        self.user = config.get("User") or ""
        self.set = {}  # what the stage sets for the image: workdir, user, entrypoint, cmd

    # -- values ------------------------------------------------------------------
    def values(self):
        """What Docker substitutes in a step: the ARGs of the stage, then ENV (which wins)."""
        return {**self.args, **self.env}

    def sub(self, text):
        return substitute(text, self.values())

    # -- steps -----------------------------------------------------------------------
    def run_steps(self, stages_by_name, total, first_number):
        for number, step in enumerate(self.stage.steps, first_number):
            started = time.monotonic()
            self.say(f"Step {number}/{total} : {str(step)[:100]}")
            self.log.write(f"Step {number}/{total} : {step}\n")
            self.log.flush()
            getattr(self, f"do_{step.keyword.lower()}")(step.args, stages_by_name)
            self.log.write(f"  ({time.monotonic() - started:.1f} s)\n")

    def do_arg(self, args, _):
        for name, default in parse_args_line(args).items():
            if name in self.build_args:
                self.args[name] = self.build_args[name]
            elif default is not None:
                self.args[name] = self.sub(default)
            elif self.declared_globals.get(name) is not None:
                self.args[name] = self.declared_globals[name]

    def do_env(self, args, _):
        for name, value in parse_env(args).items():
            self.env[name] = self.env_set[name] = self.sub(value)

    def do_workdir(self, args, _):
        path = posixpath.join(self.workdir, self.sub(args))
        self.exec(["mkdir", "-p", path], user="0", workdir="/")
        self.workdir = self.set["workdir"] = path

    def do_user(self, args, _):
        self.user = self.set["user"] = self.sub(args)

    def do_entrypoint(self, args, _):
        self.set["entrypoint"] = exec_form(args)
        self.set.setdefault("cmd_reset", True)

    def do_cmd(self, args, _):
        self.set["cmd"] = exec_form(args)
        self.set["cmd_reset"] = False

    def do_stopsignal(self, args, _):
        self.set["stopsignal"] = self.sub(args)

    def do_expose(self, args, _):
        self.exposed += self.sub(args).split()

    def do_run(self, args, _):
        self.exec(["/bin/sh", "-c", args], user=self.user, workdir=self.workdir, env={**self.args, **self.env})

    def do_copy(self, args, stages_by_name):
        words = self.sub(args).split()
        source_stage = None
        if words[0].startswith("--from="):
            source_stage = stages_by_name.get(words[0][len("--from=") :])
            if source_stage is None:
                raise DockerfileError(f"COPY {args}: no earlier stage of that name")
            words = words[1:]
        *sources, dest = words
        if any(ch in s for s in sources for ch in "*?["):
            raise DockerfileError(f"COPY {args}: wildcards are not in the subset")
        dest = posixpath.join(self.workdir, dest)
        into_dir = dest.endswith("/") or len(sources) > 1

        def fill(tar):
            for source in sources:
                if source_stage is not None:
                    source_stage.export(source, dest, into_dir, tar)
                else:
                    self.context_files(source, dest, into_dir, tar)

        self.put(fill, f"COPY {args}")

    # -- files -----------------------------------------------------------------------
    def context_files(self, source, dest, into_dir, tar):
        source = posixpath.normpath(source).lstrip("/")
        found = False
        for name, path in self.context.entries:
            if name == source and not path.is_dir():
                target = posixpath.join(dest, posixpath.basename(name)) if into_dir else dest
            elif name.startswith(source + "/") or source == ".":
                target = posixpath.join(dest, name if source == "." else name[len(source) + 1 :])
            else:
                continue
            found = True
            add_file(tar, path, target)
        if not found:
            raise DockerfileError(f"COPY {source}: not in the build context")

    def export(self, source, dest, into_dir, tar):
        """Copy `source` of this stage's container into tar as COPY --from puts it at dest (owned by root)."""
        stream, stat = self.api.get_archive(self.container.id, source)
        is_dir = stat["mode"] & (1 << 31) != 0  # Go's os.ModeDir
        top = posixpath.basename(source.rstrip("/"))

        def rename(name):
            rest = name[len(top) :].lstrip("/") if name == top or name.startswith(top + "/") else name
            if is_dir:
                return posixpath.join(dest, rest).lstrip("/") if rest else dest.lstrip("/")
            return (posixpath.join(dest, top) if into_dir else dest).lstrip("/")

        with tempfile.SpooledTemporaryFile(SPOOL) as raw:
            for chunk in stream:
                raw.write(chunk)
            raw.seek(0)
            with tarfile.open(fileobj=raw, mode="r|") as archive:
                for member in archive:
                    member.name = rename(member.name)
                    if member.islnk():
                        member.linkname = rename(member.linkname)
                    member.uid = member.gid = 0
                    member.uname = member.gname = ""
                    tar.addfile(member, archive.extractfile(member) if member.isreg() else None)

    # -- the image ------------------------------------------------------------------
    def config(self, labels):
        return final_config(self.base_config, self.set, self.env_set, self.exposed, labels)

    def commit(self, tag, labels):
        repo, name = _split_tag(tag)
        result = self.api.commit(self.container.id, repository=repo, tag=name, conf=self.config(labels))
        return result["Id"]


def relabel(client, image, tag, labels):
    """tag: image with other labels (one empty layer more); its container is never started."""
    container = client.api.create_container(image.id)
    try:
        repo, name = _split_tag(tag)
        config = image.attrs["Config"]
        conf = {**config, "Labels": {**(config.get("Labels") or {}), **labels}}
        return client.api.commit(container["Id"], repository=repo, tag=name, conf=conf)["Id"]
    finally:
        client.api.remove_container(container["Id"], force=True)


def final_config(base_config, stage_set, env_set, exposed, labels):
    """The committed image's configuration: the base image's, with what the final stage set.

    Given whole to the commit (the container ran `sleep`, which must not stay): an
    ENTRYPOINT of the stage resets the inherited CMD, as in a Dockerfile, and an
    empty ENTRYPOINT is sent as [] (none), never left out (the engine would take
    the container's)."""
    config = {key: base_config.get(key) for key in ("Env", "Entrypoint", "Cmd", "WorkingDir", "User", "StopSignal")}
    env = dict(item.split("=", 1) for item in base_config.get("Env") or [])
    env.update(env_set)
    config["Env"] = [f"{k}={v}" for k, v in env.items()]
    config["Entrypoint"] = stage_set.get("entrypoint", base_config.get("Entrypoint")) or []
    if "cmd" in stage_set:
        config["Cmd"] = stage_set["cmd"]
    elif stage_set.get("cmd_reset"):
        config["Cmd"] = []
    for key, name in (("WorkingDir", "workdir"), ("User", "user"), ("StopSignal", "stopsignal")):
        if name in stage_set:
            config[key] = stage_set[name]
    ports = dict(base_config.get("ExposedPorts") or {})
    ports.update({(p if "/" in p else f"{p}/tcp"): {} for p in exposed})
    config["ExposedPorts"] = ports or None
    config["Labels"] = {**(base_config.get("Labels") or {}), **labels}
    return {k: v for k, v in config.items() if v is not None}


def build(client, dockerfile_text, context, build_args, tag, labels, log, say=lambda _: None):
    """Build tag from the Dockerfile's text and the context's files; returns the image id."""
    dockerfile = parse(dockerfile_text)
    declared = {
        name: build_args.get(name, default) for name, default in dockerfile.global_args.items()
    }  # the global ARGs, for FROM lines
    total = sum(len(s.steps) + 1 for s in dockerfile.stages)
    runs, number = {}, 1
    started = time.monotonic()
    try:
        for stage in dockerfile.stages:
            base = substitute(stage.base, {k: v for k, v in declared.items() if v is not None})
            say(f"Step {number}/{total} : FROM {base}" + (f" AS {stage.name}" if not stage.name.isdigit() else ""))
            log.write(f"Step {number}/{total} : FROM {base}\n")
            run = StageRun(client, stage, client.images.get(base), build_args, declared, context, log, say)
            runs[stage.name] = run
            run.run_steps(runs, total, number + 1)
            number += len(stage.steps) + 1
        final = runs[dockerfile.stages[-1].name]
        say("committing the image")
        image_id = final.commit(tag, labels)
        log.write(f"committed {tag} ({image_id}) in all {time.monotonic() - started:.1f} s\n")
        return image_id
    finally:
        for run in runs.values():
            run.remove()
