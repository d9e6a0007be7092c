"""Config vars on the live stack: booted instances load them at boot, under load, through the release's gates.

One live stack for the module (``world``, as in test_release_live.py): the
sample app (1.0.0) is released first, then each test changes its config with
``config.set`` and looks inside every instance (its own /run, its processes,
its metadata service) and at the counted load: zero failed requests.
"""

from __future__ import annotations

import html

import pytest

from tests.integration.local.conftest import in_instance
from tests.integration.local.test_release_live import assert_no_failures, world  # noqa: F401 (the module's live stack)
from toolkit.configvars import change, store
from toolkit.errors import ReleaseError
from toolkit.release import rollout, slots
from toolkit.ui import Silent

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

GREETING = 'Howdy, "partner": $HOME \\ `id` it\'s <b>'  # what systemd's EnvironmentFile quoting must keep verbatim
SECRET = 'pa$$ "w0rd"\nsecond line \\ end'
ENV_FILE = "/run/rodeo-config/config.env"
IMDS_USER_DATA = ('T=$(curl -sS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 60" http://169.254.169.254/latest/api/token) && '
                  'curl -sS -H "X-aws-ec2-metadata-token: $T" http://169.254.169.254/latest/user-data')


@pytest.fixture(scope="module")
def app(world):  # noqa: F811
    """The world with the sample app (whose unit requires the config loader) live, and no config yet."""
    result = rollout.release(world.cfg, world.aws, ami=world.build("1.0.0"), reporter=Silent(), lb_urls=world.urls)
    assert result.outcome == "released" and result.config_version == 0
    return world


def live_instances(w) -> list[str]:
    ids = slots.instance_ids(w.env, w.aws, w.state().active.name)
    assert len(ids) == w.cfg.release.capacity.desired
    return ids


def test_a_greeting_lands_on_every_instance_without_a_failed_request(app):
    result, load = app.under_load(change.set_vars, app.cfg, app.aws, {"GREETING": GREETING})
    assert not isinstance(result, ReleaseError), (result, app.steps.lines)
    assert (result.outcome, result.version, result.release.steps) == ("released", 1, [10, 50, 100])
    assert_no_failures(load, app.steps)
    for iid in live_instances(app):
        page = in_instance(iid, "curl", "-sS", "http://127.0.0.1:8080/")
        assert f"<h1>{html.escape(GREETING)}</h1>" in page.stdout, (iid, page)


def test_a_secret_reaches_the_app_through_a_private_file_and_nowhere_else(app):
    result = change.set_vars(app.cfg, app.aws, {"DB_PASSWORD": SECRET}, secret=True, reporter=Silent(), lb_urls=app.urls)
    assert (result.outcome, result.version, result.secrets) == ("released", 2, ["DB_PASSWORD"])
    for iid in live_instances(app):
        assert in_instance(iid, "stat", "-c", "%U:%G %a", ENV_FILE).stdout.strip() == "root:web 640"
        pid = in_instance(iid, "systemctl", "show", "-p", "MainPID", "--value", "web.service").stdout.strip()
        environ = in_instance(iid, "cat", f"/proc/{pid}/environ").stdout.split("\0")
        assert f"DB_PASSWORD={SECRET}" in environ and f"GREETING={GREETING}" in environ  # systemd read the file back exactly
        user_data = in_instance(iid, "sh", "-c", IMDS_USER_DATA).stdout
        assert "/rodeo/web/local/DB_PASSWORD:1" in user_data and '"config_version":2' in user_data
        assert "pa$$" not in user_data and "w0rd" not in user_data
        journal = in_instance(iid, "journalctl", "-u", "rodeo-config.service", "--no-pager").stdout
        assert "DB_PASSWORD" in journal and "w0rd" not in journal  # keys logged, values never
    # never on a disk: every instance's upper layer, the stack's state and logs (the file is on the instance's /run, in memory)
    on_disk = [p for p in app.st.state_dir.rglob("*") if p.is_file() and not p.is_symlink() and b"w0rd" in p.read_bytes()]
    assert on_disk == []


def test_a_value_the_app_refuses_is_rolled_back_by_the_health_gate_without_a_failed_request(app):
    before = app.state().active
    result, load = app.under_load(change.set_vars, app.cfg, app.aws, {"PORT": "eighty"})
    assert isinstance(result, ReleaseError) and result.result.outcome == "rolled_back", (result, app.steps.lines)
    assert "config version 3 was recorded but rolled back" in result.message and "healthy" in result.message
    assert "stays the newest" in result.hint and result.result.release.steps == []
    assert_no_failures(load, app.steps)
    after = app.state().active
    assert (after.name, after.ami, after.config, after.weight) == (before.name, before.ami, 2, 100)
    assert store.newest(app.cfg, app.aws).number == 3  # the bad version stays the newest until a new change
