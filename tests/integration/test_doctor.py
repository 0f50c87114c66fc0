"""`hubstack doctor` on this host, against the real engine and the running test hub."""

import socket

from helpers import NAME, PORT, run_hubstack


def rows(output):
    """{check name: (status, what was found)} from doctor's table: status, name, found in fixed columns."""
    return {
        line[6:24].strip(): (line[:5].strip(), line[25:].strip())
        for line in output.splitlines()
        if line[:5].strip() in ("ok", "warn", "fail")
    }


def test_doctor_finds_nothing_to_fix_with_the_running_hub(hub):
    result = run_hubstack("doctor", "--dev", check=False)
    table = rows(result.stdout)
    assert result.returncode == 0, result.stdout
    assert table["Docker engine"][0] == "ok" and table["Compose"][0] == "ok"
    assert table["configuration"] == ("ok", f"dev mode, instance {NAME}")
    assert table["hub port"] == ("ok", f"127.0.0.1:{PORT} is published by {NAME}-hub")
    assert result.stdout.rstrip().endswith("nothing to fix")


def test_doctor_names_what_to_fix(built_stack, tmp_path):
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "oauth_client_secret").write_text("shown to everyone")
    (secrets_dir / "oauth_client_secret").chmod(0o644)
    with socket.socket() as squatter:  # another program on the port the hub wants
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {
            "HUBSTACK_NAME": f"{NAME}-bad",
            "HUBSTACK_PORT": str(port),
            "DEV_MODE": "0",
            "HUBSTACK_SECRETS_DIR": str(secrets_dir),
        }
        result = run_hubstack("doctor", env=env, check=False)
    table = rows(result.stdout)
    assert result.returncode == 1, result.stdout
    assert table["hub port"] == ("fail", f"127.0.0.1:{port} is in use by another program")
    assert table["secrets"] == ("fail", "readable by others: oauth_client_secret")
    assert f"fix: chmod 600 {secrets_dir}/oauth_client_secret" in result.stdout
    assert table["configuration"][0] == "fail" and "HUBSTACK_OAUTH_PROVIDER" in result.stdout
    assert result.stdout.splitlines()[-1].startswith(f"{len(table)} checks: fix configuration, hub port")
