import shutil
import socket
import subprocess

import pytest

from hubstack import doctor
from hubstack.common.contract import AUDIT_FAILED
from hubstack.common.settings import load


def self_signed(tmp_path, days):
    cert, key = tmp_path / f"cert-{days}.pem", tmp_path / f"key-{days}.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=hub.example.org",
            "-days",
            str(days),
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert


def test_a_port_in_use_by_another_program_fails():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        row = doctor.port_free("hub port", "127.0.0.1", port)
        assert (row.status, row.found) == (doctor.FAIL, f"127.0.0.1:{port} is in use by another program")
        assert "choose another port" in row.fix
    assert doctor.port_free("hub port", "127.0.0.1", port).status == doctor.OK


def test_an_address_not_of_this_machine_fails():
    row = doctor.port_free("hub port", "192.0.2.1", 8000)  # TEST-NET-1: never assigned here; bind() only
    assert row.status == doctor.FAIL and "HUBSTACK_BIND" in row.fix


def test_secret_files_must_be_private(tmp_path):
    assert doctor.secret_files(tmp_path / "none", "secrets").status == doctor.WARN
    (tmp_path / "ok").write_text("x")
    (tmp_path / "ok").chmod(0o600)
    assert doctor.secret_files(tmp_path, "secrets").status == doctor.OK
    (tmp_path / "loose").write_text("x")
    (tmp_path / "loose").chmod(0o640)
    row = doctor.secret_files(tmp_path, "secrets")
    assert (row.status, row.fix) == (doctor.FAIL, "chmod 600 secrets/loose")


@pytest.mark.parametrize("days,status", [(1, doctor.FAIL), (10, doctor.WARN), (365, doctor.OK)])
def test_certificate_expiry(tmp_path, days, status):
    row = doctor.certificate(doctor.decode_pem(self_signed(tmp_path, days)), "tls_fullchain.pem")
    assert row.status == status and any(f"({d} days)" in row.found for d in (days - 1, days))


def test_a_self_signed_certificate_of_hours_is_fine_until_it_runs_out(tmp_path):
    short = doctor.decode_pem(self_signed(tmp_path, 1))  # Caddy's local certificates last 12 hours
    assert doctor.certificate(short, "served", renews_itself=True).status == doctor.OK
    assert doctor.certificate(short, "served").status == doctor.FAIL  # a certificate someone must renew
    expired = {"notAfter": "Jan  1 00:00:00 2020 GMT"}
    assert doctor.certificate(expired, "served", renews_itself=True).status == doctor.FAIL


def test_files_mode_without_the_chain_fails(tmp_path):
    settings = load(environ={"HUBSTACK_HTTPS": "files", "HUBSTACK_DOMAIN": "hub.example.org"})
    row = doctor.https_certificate(settings, tmp_path, "secrets")
    assert row.status == doctor.FAIL and "secrets/tls/tls_fullchain.pem" in row.found


def test_plain_http_on_a_public_address_fails_outside_dev_mode():
    settings = load(environ={"HUBSTACK_BIND": "0.0.0.0"})
    row = doctor.https_certificate(settings, "/nonexistent", "secrets")
    assert row.status == doctor.FAIL and "HUBSTACK_HTTPS" in row.fix
    assert doctor.https_certificate(load(environ={}), "/nonexistent", "secrets").status == doctor.OK


def test_public_name(monkeypatch):
    settings = load(environ={"HUBSTACK_DOMAIN": "localhost"})  # resolved from /etc/hosts, no DNS traffic
    row = doctor.public_name(settings)
    assert row.status == doctor.OK and "127.0.0.1" in row.found

    def no_such_name(*_):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    row = doctor.public_name(load(environ={"HUBSTACK_DOMAIN": "hub.example.org"}))
    assert row.status == doctor.FAIL and "add an A/AAAA record for hub.example.org" in row.fix


def test_a_memory_limit_above_half_the_machine_warns():
    assert doctor.memory(load(environ={"HUBSTACK_USER_MEM_LIMIT": "256M"})).status == doctor.OK
    row = doctor.memory(load(environ={"HUBSTACK_USER_MEM_LIMIT": "100T"}))
    assert row.status == doctor.WARN and "HUBSTACK_USER_MEM_LIMIT" in row.fix


class FakeHub:
    status = "running"

    def __init__(self, log):
        self.log = log

    def logs(self, tail):
        return self.log.encode()


def test_doctor_fails_when_the_hub_could_not_write_its_audit_log():
    production = load(environ={})
    said = f"[E 2026-12-02 JupyterHub access:230] {AUDIT_FAILED} (No space left on device): {{...}}\n"
    row = doctor.audit_log(FakeHub("[I ok]\n" + said), production)
    assert row.status == doctor.FAIL and "1 decision(s) not written" in row.found and "free space" in row.fix
    assert doctor.audit_log(FakeHub("[I ok]\n"), production).status == doctor.OK


def test_dataset_folders_researchers_cannot_read_are_named(tmp_path):
    access, open_folder, closed_folder = tmp_path / "access", tmp_path / "open", tmp_path / "closed"
    for folder, mode in ((access, 0o755), (open_folder, 0o755), (closed_folder, 0o700)):
        folder.mkdir()
        folder.chmod(mode)
    (access / "datasets.toml").write_text(
        f'[datasets.a]\nfolder = "{open_folder}"\ngrant = "open"\n[datasets.b]\nfolder = "{closed_folder}"\ngrant = "open"\n'
    )
    settings = load(environ={"HUBSTACK_ACCESS_DIR": str(access)}, dotenv_path=tmp_path / "none")
    instance = type("Instance", (), {"project": tmp_path})()
    row = doctor.datasets(instance, settings)
    assert (row.status, row.found) == (doctor.WARN, "2: a (open), b (open)")
    assert "cannot read the folder of b:" in row.fix
    closed_folder.chmod(0o705)
    assert doctor.datasets(instance, settings).status == doctor.OK
    (access / "datasets.toml").write_text('[datasets.c]\nfolder = "/nonexistent/x"\ngrant = "open"\n')
    row = doctor.datasets(instance, settings)
    assert row.status == doctor.FAIL and "does not exist on this machine" in row.fix


@pytest.mark.parametrize(
    "env,free,status",
    [
        ({}, 100 * 1024**3, doctor.OK),
        ({}, 4 * 1024**3, doctor.FAIL),  # under the 5G default: the hub refuses new servers
        ({"HUBSTACK_MIN_FREE_DISK": "50%"}, 60 * 1024**3, doctor.FAIL),
        ({"HUBSTACK_HOME_QUOTA": "10G"}, 12 * 1024**3, doctor.WARN),  # no room for another home
    ],
)
def test_docker_disk_row_says_when_the_hub_refuses_spawns(monkeypatch, env, free, status):
    usage = shutil._ntuple_diskusage(200 * 1024**3, 200 * 1024**3 - free, free)
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda path: usage)
    row = doctor.docker_disk("/var/lib/docker", load(environ=env).disk)
    assert row.status == status, row
    assert f"{free / 1024**3:.1f} GiB free of 200.0 GiB at /var/lib/docker" in row.found
    assert ("LOW" in row.found) == (status == doctor.FAIL)


def test_home_quota_row(tmp_path):
    assert doctor.home_quota(None, load(environ={"DEV_MODE": "1"})).status == doctor.OK
    row = doctor.home_quota(None, load(environ={}))
    assert row.status == doctor.WARN and "can fill Docker's disk" in row.found
    on = load(environ={"HUBSTACK_HOME_QUOTA": "10G"})
    assert doctor.home_quota(None, on, loop_control=str(tmp_path / "none")).status == doctor.FAIL
    control = tmp_path / "loop-control"
    control.touch()
    assert doctor.home_quota(None, on, loop_control=str(control)) == doctor.Check(
        "home quota", doctor.OK, "10.0 GiB per home"
    )
