"""The Dockerfile subset hubstack's images are written in, read into stages.

The images are built by hubstack.assemble (one container and one layer per
image), not by the engine's legacy builder, which makes a container and a
layer commit for every instruction, ARG and ENV included: about 8 s each on
fuse-overlayfs. The Dockerfiles stay plain Dockerfiles (`docker build` makes
the same images elsewhere); anything outside this subset is refused by name.

Supported: ARG (before and after FROM), FROM ... [AS name], RUN (shell
form), COPY [--from=stage] src... dest, ENV, WORKDIR, USER, ENTRYPOINT, CMD
(JSON or shell form), EXPOSE, STOPSIGNAL; variables as $NAME, ${NAME} and
${NAME:-default} where Docker substitutes them (not in RUN: the shell does).
"""

import json
import re
import shlex
from dataclasses import dataclass, field

INSTRUCTIONS = {"ARG", "FROM", "RUN", "COPY", "ENV", "WORKDIR", "USER", "ENTRYPOINT", "CMD", "EXPOSE", "STOPSIGNAL"}
_VARIABLE = re.compile(r"\\\$|\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


class DockerfileError(ValueError):
    pass


@dataclass
class Step:
    keyword: str
    args: str  # as written, continuation lines joined
    line: int

    def __str__(self):
        return f"{self.keyword} {self.args}"


@dataclass
class Stage:
    base: str  # as written in FROM, before substitution
    name: str
    steps: list = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict  # ARGs before the first FROM: name -> default (None: no default)
    stages: list

    def stage(self, name):
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise DockerfileError(f"COPY --from={name}: no stage of that name")


def substitute(text, values):
    """Docker's variable substitution: $NAME, ${NAME}, ${NAME:-word}, ${NAME:+word}; \\$ is a dollar."""

    def one(match):
        if match.group(0) == "\\$":
            return "$"
        name, operator, word = match.group(1) or match.group(4), match.group(2), match.group(3) or ""
        value = values.get(name) or ""
        if operator == "-":
            return value or word
        if operator == "+":
            return word if value else ""
        return value

    return _VARIABLE.sub(one, text)


def logical_lines(text):
    """(line number, instruction text): comments and blank lines dropped, continuations joined."""
    pending, start = [], None
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if start is None:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        yield start, " ".join(part for part in pending if part)
        pending, start = [], None
    if pending:
        yield start, " ".join(pending)


def parse_args_line(args):
    """'A B=1' -> {'A': None, 'B': '1'}."""
    found = {}
    for word in shlex.split(args):
        name, eq, default = word.partition("=")
        found[name] = default if eq else None
    return found


def parse_env(args):
    """ENV k=v k2="v 2", or the old form ENV k v."""
    words = shlex.split(args, posix=True)
    if words and "=" not in words[0]:
        return {words[0]: args.split(None, 1)[1] if len(words) > 1 else ""}
    pairs = {}
    for word in words:
        name, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(f"ENV {args}: expected NAME=value")
        pairs[name] = value
    return pairs


def exec_form(args):
    """CMD/ENTRYPOINT: a JSON list as written, or the shell form wrapped in sh -c."""
    if args.lstrip().startswith("["):
        try:
            value = json.loads(args)
        except json.JSONDecodeError as err:
            raise DockerfileError(f"not a JSON list: {args} ({err})") from None
        if not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"not a list of strings: {args}")
        return value
    return ["/bin/sh", "-c", args]


def parse(text):
    global_args, stages = {}, []
    for line, instruction in logical_lines(text):
        keyword, _, args = instruction.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword not in INSTRUCTIONS:
            raise DockerfileError(f"line {line}: {keyword} is not in the subset hubstack builds ({__name__})")
        if keyword == "FROM":
            words = args.split()
            if len(words) == 3 and words[1].upper() == "AS":
                stages.append(Stage(words[0], words[2]))
            elif len(words) == 1:
                stages.append(Stage(words[0], str(len(stages))))
            else:
                raise DockerfileError(f"line {line}: FROM image [AS name], not {args!r}")
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"line {line}: only ARG may come before FROM")
            global_args.update(parse_args_line(args))
        else:
            if keyword == "COPY" and any(w.startswith("--") and not w.startswith("--from=") for w in args.split()):
                raise DockerfileError(f"line {line}: COPY takes only --from here")
            if keyword == "RUN" and args.startswith("["):
                raise DockerfileError(f"line {line}: RUN in shell form only")
            stages[-1].steps.append(Step(keyword, args, line))
    if not stages:
        raise DockerfileError("no FROM")
    return Dockerfile(global_args, stages)
