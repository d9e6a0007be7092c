"""A team's app with only a Procfile: from a fresh repository to an answer of the load balancer (issue 21, item 1).

A fresh git repository holds the sample Procfile app (``examples/procfile-app``:
a Procfile, requirements.txt, the code; no playbook, no tests). The project
names it in three lines of rodeo.yml, and ``invoke deploy`` bakes it with
Rodeo's app role (Python from Debian, gunicorn from PyPI through the build
instance's way out, a unit per process type, the default image tests) and
releases it on the live local stack, its Procfile's ``release:`` line run by
the release phase first. Base is the cached sample layer, registered as the
AMI a bake of base would make, so only the app bakes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.integration.local.conftest import CACHE, in_instance
from tests.support import livebuilds
from toolkit import config
from toolkit.local import egress, seed, stack
from toolkit.local.environment import LocalEnvironment
from toolkit.release import ledger

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def test_a_fresh_repository_with_a_procfile_is_baked_released_and_served(layers, tmp_path):
    app_repo = livebuilds.procfile_repository(tmp_path / "shop", ROOT)
    commit = subprocess.run(
        ["git", "-C", str(app_repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()
    root = livebuilds.procfile_project(tmp_path / "project", ROOT, app_repo)
    cfg = config.load("local", root)
    assert cfg.image("app").procfile and str(cfg.image("app").tests) == "tests/image/test_procfile.py"
    st = stack.Stack(state_dir=tmp_path / "state", cache_dir=CACHE, live=True)
    url = stack.up(st, "us-east-1", seeders=(seed.seed_release(cfg),))
    try:
        aws = LocalEnvironment(region="us-east-1", endpoint=url, stack=st)
        base = livebuilds.register_base(cfg, st, aws, layers)
        env = dict(os.environ, RODEO_STATE_DIR=str(st.state_dir), RODEO_CACHE_DIR=str(CACHE), RODEO_LOCAL_LIVE="1")
        out = subprocess.run(
            [str(BIN / "invoke"), "deploy", "--json"], cwd=root, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr[-4000:]
        result = json.loads(out.stdout.strip().splitlines()[-1])
        assert result["outcome"] == "deployed" and result["release"]["outcome"] == "released"
        assert result["bake"]["parent"] == {
            "image": "base",
            "ami": {"us-east-1": base},
            "cached": True,
            "duration_s": result["bake"]["parent"]["duration_s"],
        }
        assert result["bake"]["app"]["commit"] == commit and result["bake"]["app"]["version"] == commit[:7]
        assert "Procfile: web, worker on python (requirements.txt); release: kept for the release phase" in out.stderr

        layer = st.store.layers(result["bake"]["ami"]["us-east-1"])[-1]  # what the app's build instance wrote
        assert (layer / "opt/venv/bin/gunicorn").is_file()
        assert [
            name for name in egress.configuration("ca") if (layer / name).exists()
        ] == []  # its way out stayed behind

        record = json.loads((Path(result["bake"]["artifacts"]) / "bake.json").read_text())
        assert (
            record["procfile"]["rodeo_procfile"]["release"]
            == "python -c \"print('release phase: nothing to migrate')\""
        )
        assert [p["name"] for p in record["procfile"]["rodeo_procfile"]["processes"]] == ["web", "worker"]
        # The release: line is the release phase's command (rodeo.yml sets none): recorded on the AMI, run once by
        # the image's runner on a one-off instance before any traffic moved, its output streamed to stdout.
        release_line = record["procfile"]["rodeo_procfile"]["release"]
        ami = result["bake"]["ami"]["us-east-1"]
        tags = {t["Key"]: t["Value"] for t in aws.client("ec2").describe_images(ImageIds=[ami])["Images"][0]["Tags"]}
        assert tags["rodeo:release-command"] == release_line
        assert "release phase: nothing to migrate" in out.stdout
        phase = ledger.recent(cfg, aws, 1)[0]["release_phase"]
        assert (phase["status"], phase["command"], phase["exit_code"]) == ("succeeded", release_line, 0)

        with urllib.request.urlopen(result["url"] + "/health", timeout=10) as answer:
            assert json.loads(answer.read()) == {"status": "ok", "version": "1.0.0"}
        with urllib.request.urlopen(result["url"] + "/", timeout=10) as answer:
            assert answer.read().decode() == "Hello from a Procfile (version 1.0.0)\n"

        group = cfg.release.slots[result["release"]["active_slot"]]
        found = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
            "AutoScalingGroups"
        ][0]
        ids = sorted(i["InstanceId"] for i in found["Instances"])
        assert len(ids) == cfg.release.capacity.desired, found
        for iid in ids:
            units = in_instance(iid, "systemctl", "is-active", "app-web.service", "app-worker.service")
            assert units.stdout.split() == ["active", "active"], (iid, units.stdout, units.stderr)
            port = in_instance(iid, "cat", "/etc/rodeo/procfile.json")
            assert json.loads(port.stdout)["port"] == 8080
    finally:
        stack.down(st)
