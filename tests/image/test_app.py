"""The app image: the web user, its code, its systemd unit, and a live /health.

Run by testinfra against a build instance (``--hosts=ssh://admin@...``).
``web.service`` needs this release's config vars (its config loader reads
them from SSM with the instance's role), which a build instance has not: the
health check starts the app by hand, as the web user, on a free port.
"""

import json
import time

import pytest

UNIT = "/etc/systemd/system/web.service"
WANTS = "/etc/systemd/system/multi-user.target.wants/web.service"
LOG = "/tmp/rodeo-web-test.log"  # the app's output while these tests run it
FREE_PORT = "python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"


def test_web_user_cannot_log_in(host):
    web = host.user("web")
    assert web.exists
    assert web.shell == "/usr/sbin/nologin"
    assert web.uid < 1000


def test_code_belongs_to_root(host):
    for path in ("/opt/web/app.py", "/opt/web/config.json"):
        f = host.file(path)
        assert f.is_file
        assert (f.user, f.group, f.mode) == ("root", "root", 0o644)


def test_unit_file(host):
    unit = host.file(UNIT).content_string.splitlines()
    for line in (
        "User=web",
        "ExecStart=/usr/bin/python3 /opt/web/app.py",
        "Requires=rodeo-config.service",
        "After=network-online.target rodeo-config.service",
        "EnvironmentFile=/run/rodeo-config/config.env",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "WantedBy=multi-user.target",
    ):
        assert line in unit


def test_config_vars_are_for_the_web_group(host):
    dropin = host.file("/etc/systemd/system/rodeo-config.service.d/50-webapp.conf").content_string.splitlines()
    assert "Environment=RODEO_CONFIG_GROUP=web" in dropin


def test_unit_enabled_at_boot(host):
    wants = host.file(WANTS)
    assert wants.is_symlink
    assert wants.linked_to == UNIT
    assert host.check_output("systemctl is-enabled web.service") == "enabled"


@pytest.fixture(scope="module")
def running_app(host):
    """The app started once for this file's tests, as user web on a free port; yields its port and pid."""
    port = int(host.check_output(FREE_PORT))
    with host.sudo():
        pid = host.check_output(
            f"timeout 60 runuser -u web -- python3 /opt/web/app.py --host 127.0.0.1 --port {port} >{LOG} 2>&1 & echo $!"
        )
    try:
        yield port, pid
    finally:
        with host.sudo():
            host.run(f"kill {pid}; rm -f {LOG}")


def _get(host, app, path):
    """GET ``path`` of the running app; an assertion that shows the app's own last lines when it does not answer."""
    port, pid = app
    deadline = time.monotonic() + 15
    while True:
        result = host.run(f"curl -fsS http://127.0.0.1:{port}{path}")
        if result.rc == 0:
            return result
        with host.sudo():
            ended = host.run(f"kill -0 {pid}").rc != 0
        if ended or time.monotonic() > deadline:  # a crashed app never answers: no need to wait for it
            break
        time.sleep(0.05)  # the app is up within a few tenths of a second: poll often, not long
    with host.sudo():
        output = host.run(f"tail -n 20 {LOG}").stdout.rstrip()
    state = "the app exited" if ended else "the app runs but does not answer"
    raise AssertionError(f"GET {path}: {result.stderr.strip()}; {state}, its last output:\n{output or '(none)'}")


def test_health_answers(host, running_app):
    result = _get(host, running_app, "/health")
    expected = json.loads(host.file("/opt/web/config.json").content_string)["version"]
    assert json.loads(result.stdout) == {"status": "ok", "version": expected}


def test_home_page_says_hello(host, running_app):
    result = _get(host, running_app, "/")
    assert "Hello from Rodeo" in result.stdout
