"""Review apps on the live stack: one answers through HAProxy on its own host beside the app, then goes.

One deploy (the minimal app image: ``test_deploy.quick``), then ``review.up``
of the same commit, which reuses its AMI: no second bake. Each instance
serves its own user data, so a request shows which one answered: the review
app's names it and its config override.
"""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
import uuid
from urllib.parse import urlsplit

import pytest

from tests.integration.bakes import Project
from tests.integration.test_deploy import deploy, last_json, quick

pytestmark = pytest.mark.integration
LIVE = {"RODEO_LOCAL_LIVE": "1"}  # the commands report HAProxy's URLs (the shared stack is live)

# The served folder gets the instance's user data at each start (the minimal app serves that folder).
USER_DATA_TASKS = """\
    - name: A script writes the instance's user data where the app serves
      ansible.builtin.copy:
        dest: /usr/local/bin/minimal-user-data
        mode: "0755"
        content: |
          #!/usr/bin/python3
          import time
          import urllib.request as u
          IMDS = "http://169.254.169.254/latest/"
          for _ in range(60):
              try:
                  ask = u.Request(IMDS + "api/token", method="PUT", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
                  token = u.urlopen(ask, timeout=2).read().decode()
                  data = u.urlopen(u.Request(IMDS + "user-data", headers={"X-aws-ec2-metadata-token": token}), timeout=2).read()
                  break
              except OSError:
                  time.sleep(1)
          else:
              data = b"{}"
          open("/srv/minimal/user-data", "wb").write(data)
      become: true
    - name: The app's drop-in folder exists
      ansible.builtin.file: {path: /etc/systemd/system/minimal-web.service.d, state: directory, mode: "0755"}
      become: true
    - name: The app writes it before it serves
      ansible.builtin.copy:
        dest: /etc/systemd/system/minimal-web.service.d/user-data.conf
        mode: "0644"
        content: "[Service]\\nExecStartPre=/usr/local/bin/minimal-user-data\\n"
      become: true
"""


def user_data(base: str, host: str | None = None) -> dict:
    """GET /user-data through the listener at ``base``, with ``host`` as the Host header."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", "/user-data", headers={"Host": host or parts.netloc})
        answer = conn.getresponse()
        assert answer.status == 200, (answer.status, answer.read()[:200])
        return json.loads(answer.read()).get("rodeo", {})
    finally:
        conn.close()


def eventually(check, seconds: float = 10.0):
    """``check()``'s first true answer within ``seconds`` (HAProxy follows moto within a poll and a reload)."""
    deadline = time.monotonic() + seconds
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_a_review_app_answers_on_its_host_beside_the_app_until_review_down(project: Project, ec2):
    quick(project)
    project.append("playbooks/app.yml", USER_DATA_TASKS)
    first = deploy(project)
    assert first.returncode == 0, first.stderr[-3000:]
    ami = last_json(first.stdout)["bake"]["ami"]["us-east-1"]
    name = f"it-{uuid.uuid4().hex[:6]}"
    # The parent's config vars (a worker's stack is shared: other modules may have set some), GREETING overridden.
    parent = last_json(project.invoke("config.list", "--json", env=LIVE).stdout)["vars"]
    inherited = [f"/rodeo/web/local/{k}:{v['parameter_version']}" for k, v in parent.items() if k != "GREETING"]

    up = project.invoke("review.up", "--name", name, "--set", "GREETING=Review", "--json", env=LIVE)
    assert up.returncode == 0, up.stderr[-3000:]
    made = last_json(up.stdout)
    assert made["outcome"] == "created" and made["ami"] == ami and made["reused"] is True  # the deploy's bake
    host = f"{name}.review.localhost"
    assert made["host"] == host and made["url"].startswith(f"http://{host}:")
    base = made["curl"].split()[-1].rstrip("/")  # curl -H 'Host: <host>' http://127.0.0.1:<port>/
    assert made["curl"] == f"curl -H 'Host: {host}' {base}/"

    review = user_data(base, host)
    assert review["review"] == name
    assert sorted(review["config_parameters"]) == sorted([*inherited, f"/rodeo/web/local/review/{name}/GREETING:1"])
    assert "review" not in user_data(base)  # the app itself, on the listener's own address
    if shutil.which("curl"):  # the printed URL itself: curl takes *.localhost as this machine (Python does not)
        shown = subprocess.run(["curl", "-sf", made["url"] + "user-data"], capture_output=True, text=True, timeout=30)
        assert json.loads(shown.stdout)["rodeo"]["review"] == name

    listed = last_json(project.invoke("review.list", "--json", env=LIVE).stdout)["apps"]
    (mine,) = [a for a in listed if a["name"] == name]
    assert mine["state"] == "up" and mine["ami"] == ami and mine["url"] == made["url"]
    kept = project.invoke("prune", "--image", "app", "--keep", "1", "--plan")
    assert f"run by review app rodeo-web-local-review-{name}" in kept.stdout, kept.stdout + kept.stderr

    again = project.invoke("review.up", "--name", name, "--json", env=LIVE)
    assert again.returncode == 0 and last_json(again.stdout)["outcome"] == "unchanged", again.stderr[-2000:]
    # A new value: a new instance beside the old one; once up returns, only the new one answers.
    changed = project.invoke("review.up", "--name", name, "--set", "GREETING=Again", "--json", env=LIVE)
    assert changed.returncode == 0 and last_json(changed.stdout)["outcome"] == "updated", changed.stderr[-2000:]
    for _ in range(5):
        assert sorted(user_data(base, host)["config_parameters"]) == sorted(
            [*inherited, f"/rodeo/web/local/review/{name}/GREETING:2"]
        )

    down = project.invoke("review.down", name, "--json", env=LIVE)
    assert down.returncode == 0, down.stderr[-3000:]
    assert last_json(down.stdout)["outcome"] == "removed"
    assert eventually(lambda: "review" not in user_data(base, host))  # its host falls through to the app
    assert name not in [a["name"] for a in last_json(project.invoke("review.list", "--json").stdout)["apps"]]
    assert last_json(project.invoke("review.down", name, "--json").stdout)["outcome"] == "absent"
