"""A bake whose image tests cannot reach the app says why in the app's own words (issue 21, item 3).

The sample app's image tests (tests/image/test_app.py) run as a bake runs
them (``toolkit.bake.image_tests``) against a build instance of the sample
layers (cached, as the live release tests bake them) whose app.py has a
syntax error: the error names the test and shows the app's SyntaxError, the
hint names the app.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support import livebuilds
from toolkit import config
from toolkit.bake import image_tests
from toolkit.errors import SandboxError, VerifyError
from toolkit.hosts import sandbox
from toolkit.hosts.ssh import SshHost

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[3]


def test_a_crashing_app_fails_its_image_test_with_its_own_error(tmp_path):
    from tests.integration.bakes import CACHE

    try:
        layers = livebuilds.sample_layers(ROOT, CACHE, sandbox.ensure_rootfs(sandbox.rootfs_path(CACHE)))
    except SandboxError as exc:
        pytest.fail(f"no local build instance here: {exc}", pytrace=False)
    broken = tmp_path / "broken"
    (broken / "opt/web").mkdir(parents=True)
    source = (layers["app"] / "opt/web/app.py").read_text()
    (broken / "opt/web/app.py").write_text(
        source.replace("def app(environ, start_response):", "def app(environ, start_response)", 1)
    )
    (broken / "opt/web/app.py").chmod(0o644)
    cfg = config.load("local", livebuilds.project(tmp_path / "project", ROOT))
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, timeout=30)
    with sandbox.build_instance(
        [layers["rootfs"], layers["base"], layers["app"], broken],
        tmp_path / "upper",
        key.with_suffix(".pub").read_text(),
    ) as instance:
        with pytest.raises(VerifyError) as caught:
            image_tests.run(
                cfg,
                "app",
                SshHost(instance.host, instance.port, instance.user, key),
                tmp_path / "bake",
                stdout=subprocess.DEVNULL,
            )
    lines = caught.value.message.splitlines()
    assert lines[0].startswith(
        "image test failed: test_health_answers (tests/image/test_app.py) and 1 more: GET /health: curl: (7)"
    ), lines
    assert lines[0].endswith("; the app exited, its last output:"), lines
    assert f"    {livebuilds.SYNTAX_ERROR}" in lines, lines
    assert "_stdout=b" not in caught.value.message and "CommandResult" not in caught.value.message
    assert caught.value.hint.startswith("the error above is app web's (examples/webapp): fix the app"), (
        caught.value.hint
    )
    print("\n".join([*lines, f"hint: {caught.value.hint}"]))
