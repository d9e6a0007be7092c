"""Rodeo's default image tests for an app baked from its Procfile (``playbooks/roles/procfile``).

Run by testinfra against the build instance. The app's units need this
release's config vars (the config loader reads them with the instance's
role), which a build instance has not: so each unit is checked enabled, and
``web`` is started by hand, as the app's user through its own start script, on
a free port, and must answer the health path.
"""

import json
import time

import pytest

RECORD = "/etc/rodeo/procfile.json"
LOG = "/tmp/rodeo-procfile-web.log"  # web's output while these tests run it
FREE_PORT = "python3 -c 'import socket; s = socket.socket(); s.bind((\"127.0.0.1\", 0)); print(s.getsockname()[1])'"


@pytest.fixture(scope="module")
def app(host):
    """What the role wrote: the process types, runtime, port and health path."""
    return json.loads(host.file(RECORD).content_string)


def test_app_user_cannot_log_in(host):
    user = host.user("app")
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"


def test_each_process_type_is_enabled_at_boot(host, app):
    assert app["units"], "the Procfile names no process type"
    for unit in app["units"]:
        assert host.check_output(f"systemctl is-enabled {unit}") == "enabled", unit


def test_units_wait_for_the_config_vars(host, app):
    for unit in app["units"]:
        lines = host.file(f"/etc/systemd/system/{unit}").content_string.splitlines()
        for line in ("Requires=rodeo-config.service", "EnvironmentFile=/run/rodeo-config/config.env", "User=app"):
            assert line in lines, f"{unit}: {line}"
    dropin = host.file("/etc/systemd/system/rodeo-config.service.d/50-app.conf").content_string.splitlines()
    assert "Environment=RODEO_CONFIG_GROUP=app" in dropin


def test_the_release_line_has_its_runner(host, app):
    """The release phase runs it (toolkit.release.phase.PROCFILE_RUNNER) as the app's user, in the app's folder."""
    runner = host.file("/usr/local/lib/rodeo/release-phase")
    if not app.get("release"):
        assert not runner.exists, "a runner without a release: line"
        return
    assert runner.exists and runner.user == "root" and runner.mode == 0o755
    text = runner.content_string
    assert "exec runuser -u app -- " in text and "cd /opt/app" in text, text
    assert host.run("sh -n /usr/local/lib/rodeo/release-phase").rc == 0


@pytest.fixture(scope="module")
def web(host, app):
    """``web`` started once, as the app's user on a free port; yields its port and pid."""
    if not any(p["name"] == "web" for p in app["processes"]):
        pytest.skip("the Procfile has no web process")
    port = int(host.check_output(FREE_PORT))
    with host.sudo():
        pid = host.check_output(
            f"cd / && RODEO_PORT={port} timeout 60 runuser -u app -- /usr/local/lib/rodeo/procfile/web >{LOG} 2>&1 & echo $!"
        )
    try:
        yield port, pid
    finally:
        with host.sudo():
            host.run(f"pkill -u app; kill {pid}; rm -f {LOG}")


def test_web_answers_the_health_path(host, app, web):
    port, pid = web
    path = app["health_path"]
    deadline = time.monotonic() + 30
    while True:
        result = host.run(f"curl -fsS -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}{path}")
        if result.rc == 0:
            return
        with host.sudo():
            ended = host.run(f"kill -0 {pid}").rc != 0
        if ended or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    with host.sudo():
        output = host.run(f"tail -n 20 {LOG}").stdout.rstrip()
    state = "web exited" if ended else "web runs but does not answer"
    raise AssertionError(
        f"GET {path} on web's $PORT: {result.stderr.strip()}; {state}, its last output:\n{output or '(none)'}"
    )
