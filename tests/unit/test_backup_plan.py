"""Backups, the pure parts: the settings, restic's commands and tags, which snapshots a restore
takes, the checkout's files put back, the backup container's own steps, and the CLI's refusals."""

import importlib.machinery
import importlib.util
import json
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from hubstack import cli, restic
from hubstack.common.contract import BACKUP_HOMES, BACKUP_PASSWORD
from hubstack.common.parse import SettingsError
from hubstack.common.settings import load
from hubstack.restore import place

REPO = Path(__file__).resolve().parents[2]


def backup_settings(**environ):
    return load(environ=environ).backup


# -- settings ---------------------------------------------------------------------------------
def test_repository_is_a_folder_or_a_restic_url():
    assert not backup_settings().configured
    folder = backup_settings(HUBSTACK_BACKUP_REPOSITORY="/srv/backups/hub")
    assert folder.folder == "/srv/backups/hub" and folder.folder_path("/x") == Path("/srv/backups/hub")
    relative = backup_settings(HUBSTACK_BACKUP_REPOSITORY="./backups")
    assert relative.folder_path("/work/hub") == Path("/work/hub/backups")
    assert backup_settings(HUBSTACK_BACKUP_REPOSITORY="local:/srv/b").folder == "/srv/b"
    for url in ("sftp:backup@host:/srv/hub", "rest:https://backup.example.org/hub", "s3:s3.amazonaws.com/bucket/hub"):
        remote = backup_settings(HUBSTACK_BACKUP_REPOSITORY=url)
        assert remote.repository == url and remote.folder == "" and remote.folder_path("/x") is None


@pytest.mark.parametrize(
    "value,says",
    [
        ("backups", "neither a folder"),
        ("ftp:host/x", "neither a folder"),
        ("rclone:remote:hub", "neither a folder"),  # needs rclone, which the image does not have
        ("sftp:", "neither a folder"),
        ("local:backups", "absolute path"),
        ("/srv/my backups", "Compose can mount"),
    ],
)
def test_a_repository_that_is_neither_is_refused_in_one_line(value, says):
    with pytest.raises(SettingsError, match=says) as err:
        load(environ={"HUBSTACK_BACKUP_REPOSITORY": value})
    assert "\n" not in str(err.value) and "HUBSTACK_BACKUP_REPOSITORY" in str(err.value)


def test_a_password_in_a_repository_url_is_never_shown():
    shown = backup_settings(HUBSTACK_BACKUP_REPOSITORY="rest:https://hub:s3cret@backup.example.org/hub").shown
    assert "s3cret" not in shown and shown == "rest:https://hub:***@backup.example.org/hub"
    assert backup_settings(HUBSTACK_BACKUP_REPOSITORY="sftp:u@h:/x").shown == "sftp:u@h:/x"


def test_retention_policy_is_parsed_into_restic_order():
    default = backup_settings()
    assert default.keep == (("daily", 7), ("weekly", 4), ("monthly", 6))
    assert default.keep_args() == ["--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "6"]
    mixed = backup_settings(HUBSTACK_BACKUP_KEEP=" yearly=2, last=3 ,hourly=24")
    assert mixed.keep == (("last", 3), ("hourly", 24), ("yearly", 2))
    assert mixed.keep_text == "last=3,hourly=24,yearly=2"


@pytest.mark.parametrize(
    "value,says",
    [
        ("daily=0", "not <unit>=<count>"),
        ("daily", "not <unit>=<count>"),
        ("days=7", "not <unit>=<count>"),
        ("daily=7,daily=3", "names daily twice"),
        ("daily=-1", "not <unit>=<count>"),
        ("", "is empty"),
        (" , ", "is empty"),
    ],
)
def test_a_bad_retention_policy_is_refused_in_one_line(value, says):
    with pytest.raises(SettingsError, match=says) as err:
        load(environ={"HUBSTACK_BACKUP_KEEP": value})
    assert "\n" not in str(err.value)


# -- restic's commands -----------------------------------------------------------------------
def test_a_home_snapshot_is_tagged_with_instance_run_kind_and_user_and_dated_to_the_run():
    args = restic.backup_args("hub1", "2026-05-01T02:00:00Z", restic.HOME, [f"{BACKUP_HOMES}/jane"], "jane@x.org")
    assert args[:2] == ["backup", "--json"]
    assert args[args.index("--host") + 1] == "hub1"
    assert args[args.index("--time") + 1] == "2026-05-01 02:00:00"
    tags = args[args.index("--tag") + 1].split(",")
    assert tags == ["hubstack", "instance=hub1", "run=2026-05-01T02:00:00Z", "kind=home", "user=jane@x.org"]
    assert args[-1] == f"{BACKUP_HOMES}/jane" and "--parent" not in args
    second = restic.backup_args("hub1", "r", restic.HOME, ["/p"], "jane@x.org", parent="abc")
    assert second[second.index("--parent") + 1] == "abc"
    first = restic.backup_args("hub1", "r", restic.HOME, ["/p"], "jane@x.org", pre=True)
    assert first[first.index("--tag") + 1].endswith(",pre")


def test_retention_touches_only_this_instance_and_prunes():
    args = restic.forget_args("hub1", backup_settings().keep_args())
    assert args[:2] == ["forget", "--json"] and args[-1] == "--prune"
    assert args[args.index("--host") + 1] == "hub1" and args[args.index("--tag") + 1] == "instance=hub1"
    assert "--keep-weekly" in args


# -- which snapshots a restore takes ---------------------------------------------------------
def snap(id, run, kind, instance="hub1", user=None, pre=False):
    tags = ["hubstack", f"instance={instance}", f"run={run}", f"kind={kind}"]
    tags += [f"user={user}"] if user else []
    tags += ["pre"] if pre else []
    path = f"{BACKUP_HOMES}/{user}" if user else "/backup/hub"
    return {"id": id * 8, "time": run, "paths": [path], "tags": tags}


RUN1, RUN2, RUN3 = "2026-05-01T02:00:00Z", "2026-05-02T02:00:00Z", "2026-05-03T02:00:00Z"
SNAPSHOTS = restic.parse_snapshots(
    json.dumps(
        [
            snap("a", RUN1, "home", user="jane"),
            snap("b", RUN1, "home", user="bob"),
            snap("c", RUN1, "hub"),
            snap("d", RUN2, "home", user="jane"),
            snap("e", RUN2, "home", user="bob", pre=True),  # a first pass, never restored
            snap("f", RUN2, "home", user="bob"),
            snap("g", RUN2, "hub"),
            snap("h", RUN3, "home", user="jane"),  # a run that stopped before the hub: not complete
            snap("i", RUN3, "hub", instance="other"),
        ]
    )
)


def test_the_whole_instance_comes_from_the_newest_complete_run():
    hub, homes = restic.choose(SNAPSHOTS, "hub1")
    assert hub.run == RUN2 and hub.id.startswith("g")
    assert [(s.user, s.id[0]) for s in homes] == [("bob", "f"), ("jane", "d")]


def test_a_named_run_or_snapshot_id_chooses_its_run():
    assert restic.choose(SNAPSHOTS, "hub1", snapshot=RUN1)[0].id.startswith("c")
    hub, homes = restic.choose(SNAPSHOTS, "hub1", snapshot="bbbb")  # a home's id: its whole run
    assert hub.run == RUN1 and {s.user for s in homes} == {"jane", "bob"}
    with pytest.raises(SettingsError, match="no backup of hub1 matches 'zzz'"):
        restic.choose(SNAPSHOTS, "hub1", snapshot="zzz")
    with pytest.raises(SettingsError, match="that run did not finish"):
        restic.choose(SNAPSHOTS, "hub1", snapshot=RUN3)


def test_one_home_is_the_newest_of_that_user_even_from_an_unfinished_run():
    assert restic.choose(SNAPSHOTS, "hub1", user="jane") == (None, [SNAPSHOTS[7]])
    assert restic.choose(SNAPSHOTS, "hub1", user="jane", snapshot=RUN1)[1][0].id.startswith("a")
    with pytest.raises(SettingsError, match="no backup of the home of carol"):
        restic.choose(SNAPSHOTS, "hub1", user="carol")


def test_another_instance_is_named_when_this_one_has_no_backup():
    with pytest.raises(SettingsError, match="holds no backup of hub2; it holds hub1, other: name one with --from"):
        restic.choose(SNAPSHOTS, "hub2")
    assert restic.choose(SNAPSHOTS, "other")[0].id.startswith("i")


def test_the_list_shows_runs_newest_first_with_their_homes():
    assert restic.run_table(SNAPSHOTS, "hub1") == [
        (RUN3, "", ["jane"]),
        (RUN2, "gggggggg", ["bob", "jane"]),
        (RUN1, "cccccccc", ["bob", "jane"]),
    ]


def test_progress_lines_and_sizes():
    status = restic.message('{"message_type":"status","percent_done":0.5,"total_bytes":2097152,"bytes_done":1048576}')
    assert "50.0%" in restic.status_text(status) and "1.0 MiB of 2.0 MiB" in restic.status_text(status)
    assert restic.message("using parent snapshot 1234") is None and restic.message("{not json") is None
    assert restic.size(512) == "512 B" and restic.size(1536) == "1.5 KiB" and restic.size(None) == "0 B"
    text = restic.summary_text(
        {"total_files_processed": 3, "files_new": 1, "data_added": 10, "total_bytes_processed": 0}
    )
    assert text == "3 files, 0 B (1 new, 0 changed), 10 B added"


# -- the checkout's files put back ---------------------------------------------------------------
def test_the_checkouts_files_come_back_only_where_there_are_none(tmp_path):
    staging, checkout = tmp_path / "staging", tmp_path / "checkout"
    (staging / "access").mkdir(parents=True)
    (staging / "secrets").mkdir()
    (staging / ".env").write_text("HUBSTACK_NAME=prod\n")
    (staging / "access" / "approvals.csv").write_text("backup's\n")
    (staging / "access" / "datasets.toml").write_text("[datasets]\n")
    (staging / "secrets" / "jupyterhub_crypt_key").write_text("k\n")
    (checkout / "access").mkdir(parents=True)
    (checkout / "access" / "approvals.csv").write_text("the operator's newer list\n")
    (checkout / "access" / "datasets.toml").write_text("[datasets]\n")
    targets = {".env": checkout / ".env", "access": checkout / "access", "secrets": checkout / "secrets"}
    placed, differ = place(staging, targets, private={"secrets"})
    assert sorted(p.relative_to(checkout).as_posix() for p in placed) == [".env", "secrets/jupyterhub_crypt_key"]
    assert differ == [checkout / "access" / "approvals.csv"]
    assert (checkout / "access" / "approvals.csv").read_text() == "the operator's newer list\n"
    assert oct((checkout / "secrets").stat().st_mode & 0o777) == "0o700"
    assert place(staging, targets, private={"secrets"}) == ([], [checkout / "access" / "approvals.csv"])


# -- the backup container's own steps ----------------------------------------------------------
def backup_script():
    loader = importlib.machinery.SourceFileLoader("hubstack_backup", str(REPO / "backup/hubstack-backup"))
    spec = importlib.util.spec_from_loader("hubstack_backup", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_audit_log_is_copied_in_whole_lines(tmp_path):
    script = backup_script()
    source = tmp_path / "audit"
    source.mkdir()
    (source / "access.jsonl.1").write_text('{"n": 1}\n{"n": 2}\n')
    (source / "access.jsonl").write_text('{"n": 3}\n{"n": 4, "half')  # a line being written
    assert script.whole_lines(source, tmp_path / "copy") == 3
    assert (tmp_path / "copy" / "access.jsonl").read_text() == '{"n": 3}\n'
    assert (tmp_path / "copy" / "access.jsonl.1").read_text() == '{"n": 1}\n{"n": 2}\n'


def test_the_database_copy_is_consistent_while_a_writer_holds_a_transaction(tmp_path):
    script = backup_script()
    source, target = tmp_path / "jupyterhub.sqlite", tmp_path / "copy.sqlite"
    db = sqlite3.connect(source, isolation_level=None)
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    db.execute("INSERT INTO users (name) VALUES ('jane'), ('bob')")
    db.execute("BEGIN IMMEDIATE")  # a write in progress, not committed
    db.execute("INSERT INTO users (name) VALUES ('half-made')")
    assert script.online_copy(source, target) > 0
    db.execute("ROLLBACK")
    copied = sqlite3.connect(target).execute("SELECT name FROM users ORDER BY id").fetchall()
    assert copied == [("jane",), ("bob",)]


def test_a_restored_hub_names_its_users_and_drops_their_tokens_only_when_asked(tmp_path):
    script = backup_script()
    path = tmp_path / "jupyterhub.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE api_tokens (id INTEGER PRIMARY KEY, user_id INTEGER, service_id INTEGER);"
        "INSERT INTO users (name) VALUES ('jane'), ('bob');"
        "INSERT INTO api_tokens (user_id, service_id) VALUES (1, NULL), (2, NULL), (NULL, 1);"
    )
    db.commit()
    assert script.restored_hub(path, revoke_tokens=False) == {"users": ["bob", "jane"], "revoked_tokens": 0}
    assert script.restored_hub(path, revoke_tokens=True)["revoked_tokens"] == 2
    assert sqlite3.connect(path).execute("SELECT count(*) FROM api_tokens").fetchone() == (1,)  # the service's


# -- the CLI's refusals, before the engine is asked anything ---------------------------------------
def checkout(tmp_path, dotenv=""):
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "Dockerfile").write_text("")
    (tmp_path / "compose.yml").write_text("")
    (tmp_path / ".env").write_text(dotenv)
    return tmp_path


def one_line_error(args, project, code=2):
    result = CliRunner().invoke(cli.main, ["-C", str(project), *args])
    said = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(said) == 1, result.output
    return said[0]


def test_backup_without_a_repository_says_what_to_set(tmp_path):
    project = checkout(tmp_path)
    for args in (["backup"], ["backup", "--check"], ["backup", "init"], ["restore"], ["backup", "list"]):
        assert "HUBSTACK_BACKUP_REPOSITORY is not set" in one_line_error(args, project)


def test_backup_without_its_password_says_how_to_make_it(tmp_path):
    project = checkout(tmp_path, f"HUBSTACK_BACKUP_REPOSITORY={tmp_path}/repo\n")
    said = one_line_error(["backup"], project)
    assert f"missing secret ./secrets/{BACKUP_PASSWORD}" in said and "hubstack backup init" in said
    assert "missing secret" in one_line_error(["restore", "--user", "jane"], project)
    (project / "secrets").mkdir()
    (project / "secrets" / BACKUP_PASSWORD).write_text("pw\n")
    os.chmod(project / "secrets" / BACKUP_PASSWORD, 0o644)
    assert "readable by anyone" in one_line_error(["backup"], project)
    assert not (tmp_path / "repo").exists()  # nothing made on the way


def test_check_and_secrets_go_with_the_backup_itself():
    result = CliRunner().invoke(cli.main, ["-C", str(REPO), "backup", "--check", "list"])
    assert result.exit_code == 2 and "go with `hubstack backup` alone" in result.output


def test_the_hub_is_staged_without_runtime_files_and_without_its_secret_unless_asked(tmp_path, monkeypatch):
    script = backup_script()
    volume, staged = tmp_path / "hub-data", tmp_path / "staged"
    monkeypatch.setattr(script, "BACKUP_HUB_VOLUME", str(volume))
    monkeypatch.setattr(script, "BACKUP_HUB", str(staged))
    monkeypatch.setattr(script, "BACKUP_CHECKOUT", str(tmp_path / "checkout"))
    (volume / "audit").mkdir(parents=True)
    (volume / "audit" / "access.jsonl").write_text('{"n": 1}\n')
    db = sqlite3.connect(volume / script.DATABASE)
    db.execute("CREATE TABLE users (name TEXT)")
    db.commit()
    for name in ("hubstack-mode", "jupyterhub_cookie_secret", "jupyterhub-proxy.pid"):
        (volume / name).write_text("x\n")
    (volume / f"{script.DATABASE}-journal").write_bytes(b"")  # SQLite's, between two transactions
    result = script.stage_hub(with_secrets=False)
    assert sorted(p.name for p in staged.iterdir()) == ["audit", "hubstack-mode", script.DATABASE]
    assert result["audit_lines"] == 1 and result["database_bytes"] > 0
    assert (tmp_path / "checkout").is_dir()  # restic is given it even when the checkout has nothing to add
    script.stage_hub(with_secrets=True)
    assert (staged / "jupyterhub_cookie_secret").is_file() and not (staged / "jupyterhub-proxy.pid").exists()


def test_a_database_left_mid_write_by_a_crash_is_named_not_copied(tmp_path, capsys):
    script = backup_script()
    source = tmp_path / "jupyterhub.sqlite"
    sqlite3.connect(source).execute("CREATE TABLE users (name TEXT)").connection.commit()
    (tmp_path / "jupyterhub.sqlite-journal").write_bytes(b"x" * 512)  # a journal nobody holds a lock for
    with pytest.raises(SystemExit):
        script.online_copy(source, tmp_path / "copy.sqlite")
    said = capsys.readouterr().err.strip()
    assert said.startswith("hubstack-backup: the hub's database has an unfinished write") and "\n" not in said
