"""Bad input, end to end: each case breaks the project or the command line and runs ``invoke``.

Every case must end with a non-zero exit, exactly one ``error: ...`` line on
stderr that names the problem (and, where given, a ``hint: ...`` line that says
what to do), no traceback, no mount or process left behind, and the local
stack's AWS state exactly as before. A case that shows a bug is written as
the command should behave and marked ``xfail(strict=True, reason="BUG: ...")``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from tests.bad_input.conftest import NOWHERE, aws_state
from tests.integration.bakes import Project, residue
from toolkit.local.environment import LocalEnvironment

RODEO_YML = "inventories/local/rodeo.yml"
STAGING = ("--env", "staging")


@dataclass(frozen=True)
class Case:
    """One bad input: how to break the project, the command, and what the user must be told."""

    id: str
    args: tuple[str, ...]  # invoke's arguments; "{base_ami}" becomes the seeded, unverified AMI
    message: str | re.Pattern  # the error line holds this (a pattern is searched)
    hint: str = ""  # the hint line holds this
    edit: Callable[[Project], None] | None = None
    env: dict[str, str | None] = field(default_factory=dict)  # None unsets
    bug: str = ""  # "BUG: ..." marks the case xfail(strict=True)
    seconds: float = 60  # the command must end within this
    prefix: str = "error: "  # invoke's own parser errors are one plain line
    here: bool = False  # run in this process (bad config and flags: no interpreter start-up per case)


# --- ways to break a project ------------------------------------------------------------


class CaseBroken(Exception):
    """The case itself no longer applies (the project changed under it); never an expected failure."""


def replace(old: str, new: str, rel: str = RODEO_YML) -> Callable[[Project], None]:
    def edit(p: Project) -> None:
        text = p.read(rel)
        if old not in text:
            raise CaseBroken(f"{rel} no longer holds {old!r}: update the case")
        p.write(rel, text.replace(old, new, 1))

    return edit


def settings(path: str, value: Any = None, delete: bool = False) -> Callable[[Project], None]:
    """Set (or delete) the dotted key ``path`` of rodeo.yml, keeping the rest."""

    def edit(p: Project) -> None:
        data = yaml.safe_load(p.read(RODEO_YML))
        *parents, last = path.split(".")
        node = data
        try:
            for key in parents:
                node = node[key]
        except (KeyError, TypeError):
            raise CaseBroken(f"{RODEO_YML} has no {path!r}: update the case") from None
        if delete:
            del node[last]
        else:
            node[last] = value
        p.write(RODEO_YML, yaml.safe_dump(data, sort_keys=False))

    return edit


def rename_image(old: str, new: str) -> Callable[[Project], None]:
    def edit(p: Project) -> None:
        data = yaml.safe_load(p.read(RODEO_YML))
        data["images"] = {new if k == old else k: v for k, v in data["images"].items()}
        p.write(RODEO_YML, yaml.safe_dump(data, sort_keys=False))

    return edit


def write(rel: str, content: str | bytes) -> Callable[[Project], None]:
    def edit(p: Project) -> None:
        path = p.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())

    return edit


def chain(*edits: Callable[[Project], None]) -> Callable[[Project], None]:
    def edit(p: Project) -> None:
        for e in edits:
            e(p)

    return edit


def symlink(rel: str, target: str) -> Callable[[Project], None]:
    return lambda p: os.symlink(target, p.root / rel)


def mkdir(rel: str) -> Callable[[Project], None]:
    return lambda p: (p.root / rel).mkdir(parents=True)


def git_repo(rel: str) -> Callable[[Project], None]:
    """A git repository at ``rel`` with one commit on main (an app's own repository)."""

    def edit(p: Project) -> None:
        import subprocess

        repo = p.root / rel
        repo.mkdir(parents=True)
        (repo / "app.py").write_text("print('hello')\n")
        env = {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.invalid",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.invalid",
            "PATH": "/usr/bin:/bin",
            "HOME": str(repo),
        }
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "one"]):
            subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    return edit


NO_CREDENTIALS = "no AWS credentials found"
PLAYBOOK_HINT = "fix playbooks/base.yml"

# --- the corpus ----------------------------------------------------------------------------

RODEO_YML_CASES = [
    Case(
        "yml-only-comments",
        ("bake",),
        f"{RODEO_YML}: must be a mapping of settings, got nothing (empty)",
        "start from inventories/local/rodeo.yml",
        edit=write(RODEO_YML, "# settings go here\n"),
    ),
    Case(
        "yml-a-string",
        ("bake",),
        f"{RODEO_YML}: must be a mapping of settings, got a string",
        "start from inventories/local/rodeo.yml",
        edit=write(RODEO_YML, "app web region us-east-1\n"),
    ),
    Case(
        "yml-list-at-top",
        ("bake",),
        f"{RODEO_YML}: must be a mapping of settings, got a list",
        "start from inventories/local/rodeo.yml",
        edit=write(RODEO_YML, "- app: web\n- region: us-east-1\n"),
    ),
    Case(
        "yml-tab-indented",
        ("bake",),
        f"{RODEO_YML}: not valid YAML at line",
        "indentation",
        edit=replace("\n  base:\n", "\n\tbase:\n"),
    ),
    Case(
        "yml-not-utf8",
        ("bake",),
        re.compile(rf"{RODEO_YML}: .*(UTF-8|utf-8|encoding)"),
        edit=write(RODEO_YML, b"app: w\xff\xfeb\nregion: us-east-1\n"),
    ),
    Case(
        "yml-duplicate-key",
        ("bake", "--image", "app"),
        re.compile(rf"{RODEO_YML}: .*duplicate.*'?images'?"),
        edit=lambda p: p.append(
            RODEO_YML,
            "\nimages:\n  base:\n    source_ami: ami-0123456789abcdef0\n"
            "    playbook: playbooks/base.yml\n    tests: tests/image/test_base.py\n",
        ),
    ),
    Case(
        "type-region-number",
        ("bake",),
        f"{RODEO_YML}: region: expected a string, got int 1",
        "fix the value's type",
        edit=settings("region", 1),
    ),
    Case(
        "type-images-list",
        ("bake",),
        f"{RODEO_YML}: images: expected a mapping, got a list",
        "name: value",
        edit=settings("images", ["base", "app"]),
    ),
    Case(
        "type-capacity-word",
        ("status",),
        f"{RODEO_YML}: release.capacity.desired: expected a whole number, got 'two'",
        "without quotes",
        edit=settings("release.capacity.desired", "two"),
    ),
    Case(
        "type-bool-word",
        ("status",),
        f"{RODEO_YML}: release.keep_old_slot_warm: expected true or false",
        "fix the value's type",
        edit=settings("release.keep_old_slot_warm", "sometimes"),
    ),
    Case(
        "type-required-region-missing",
        ("bake",),
        f"{RODEO_YML}: region: required key is missing",
        "add 'region:'",
        edit=settings("region", delete=True),
    ),
    Case(
        "unknown-key-top",
        ("bake",),
        f"{RODEO_YML}: copy_to_region: unknown key",
        "did you mean 'copy_to_regions'?",
        edit=replace("copy_to_regions:", "copy_to_region:"),
    ),
    Case(
        "unknown-key-image",
        ("bake",),
        f"{RODEO_YML}: images.app.playbooks: unknown key",
        "did you mean 'playbook'?",
        edit=replace("    playbook: playbooks/app.yml", "    playbooks: playbooks/app.yml"),
    ),
    Case(
        "unknown-key-release",
        ("status",),
        f"{RODEO_YML}: release.pause_second: unknown key",
        "did you mean 'pause_seconds'?",
        edit=replace("  pause_seconds:", "  pause_second:"),
    ),
    Case(
        "unknown-key-capacity",
        ("status",),
        f"{RODEO_YML}: release.capacity.maximum: unknown key",
        "did you mean 'max'?",
        edit=replace("capacity: {min: 2, max: 4,", "capacity: {min: 2, maximum: 4,"),
    ),
    Case(
        "unknown-key-smoke-check",
        ("status",),
        f"{RODEO_YML}: release.smoke_check.pth: unknown key",
        "did you mean 'path'?",
        edit=replace("smoke_check: {path:", "smoke_check: {pth:"),
    ),
    Case(
        "unknown-key-image-name",
        ("render", "--image", "app"),
        f"{RODEO_YML}: images.app.name",
        edit=settings("images.app.name", "web-app"),
    ),
    Case(
        "path-tests-absolute",
        ("bake",),
        f"{RODEO_YML}: images.base.tests: /etc/hostname is outside the project",
        "inside the project",
        edit=replace("tests: tests/image/test_base.py", "tests: /etc/hostname"),
    ),
    Case(
        "path-playbook-symlink-out",
        ("bake",),
        f"{RODEO_YML}: images.app.playbook: playbooks/evil.yml is outside the project",
        "inside the project",
        edit=chain(
            symlink("playbooks/evil.yml", "/etc/passwd"),
            replace("playbook: playbooks/app.yml", "playbook: playbooks/evil.yml"),
        ),
    ),
    Case(
        "path-playbook-directory",
        ("bake",),
        re.compile(rf"{RODEO_YML}: images\.app\.playbook: playbooks (is a directory|is not a file)"),
        edit=replace("playbook: playbooks/app.yml", "playbook: playbooks"),
    ),
    Case(
        "path-tests-missing",
        ("bake",),
        f"{RODEO_YML}: images.app.tests: tests/image/test_nope.py does not exist",
        "relative to the project root",
        edit=replace("tests: tests/image/test_app.py", "tests: tests/image/test_nope.py"),
    ),
    Case(
        "steps-out-of-order",
        ("status",),
        f"{RODEO_YML}: release.steps: [10, 100, 50] must increase and end at 100",
        "[10, 50, 100]",
        edit=settings("release.steps", [10, 100, 50]),
    ),
    Case(
        "steps-not-ending-at-100",
        ("status",),
        f"{RODEO_YML}: release.steps: [25, 75] must increase and end at 100",
        "percentages",
        edit=settings("release.steps", [25, 75]),
    ),
    Case(
        "steps-duplicate",
        ("status",),
        f"{RODEO_YML}: release.steps: [10, 10, 100] must increase",
        "percentages",
        edit=settings("release.steps", [10, 10, 100]),
    ),
    Case(
        "capacity-negative",
        ("status",),
        f"{RODEO_YML}: release.capacity: counts must be positive",
        "fix the capacity numbers",
        edit=settings("release.capacity", {"min": 2, "max": 4, "desired": -2}),
    ),
    Case(
        "capacity-min-above-desired",
        ("status",),
        f"{RODEO_YML}: release.capacity: need min <= desired <= max, got 4/2/4",
        "fix the capacity numbers",
        edit=settings("release.capacity", {"min": 4, "max": 4, "desired": 2}),
    ),
    Case(
        "region-typo",
        ("render",),
        f"{RODEO_YML}: region: 'us-esat-1' is not an AWS region",
        edit=settings("region", "us-esat-1"),
    ),
    Case(
        "region-typo-copy",
        ("render",),
        f"{RODEO_YML}: copy_to_regions[0]: 'us-wset-2' is not an AWS region",
        edit=settings("copy_to_regions", ["us-wset-2"]),
    ),
    Case(
        "copy-to-regions-mapping",
        ("bake",),
        f"{RODEO_YML}: copy_to_regions: expected a list, got a mapping",
        "[a, b]",
        edit=settings("copy_to_regions", {"us-west-2": True}),
    ),
    Case(
        "image-name-shell",
        ("bake",),
        f"{RODEO_YML}: images.app`reboot`: 'app`reboot`' is not a valid image name",
        "lowercase",
        edit=rename_image("app", "app`reboot`"),
    ),
    Case(
        "ssh-username-shell",
        ("render", "--image", "base"),
        f"{RODEO_YML}: images.base.ssh_username",
        edit=settings("images.base.ssh_username", "admin;touch /tmp/rodeo-pwned"),
    ),
    Case(
        "parent-loop",
        ("bake", "--image", "base"),
        re.compile(rf"{RODEO_YML}: images\.\w+\.parent: images form a loop"),
        "end at an image with a source_ami",
        edit=chain(settings("images.base.source_ami", delete=True), settings("images.base.parent", "app")),
    ),
    Case(
        "parent-missing",
        ("bake",),
        f"{RODEO_YML}: images.app.parent: no image named 'bsae'",
        "choose one of: app, base",
        edit=settings("images.app.parent", "bsae"),
    ),
    Case(
        "parent-and-source",
        ("bake",),
        f"{RODEO_YML}: images.app: set exactly one of 'parent' or 'source_ami'",
        "layered",
        edit=settings("images.app.source_ami", "ami-0123456789abcdef0"),
    ),
    Case(
        "source-ami-malformed",
        ("bake",),
        f"{RODEO_YML}: images.base.source_ami: 'ami-12345' is not an AMI id",
        "ami-0abc1234",
        edit=settings("images.base.source_ami", "ami-12345"),
    ),
    Case(
        "source-ami-filter-without-name",
        ("bake",),
        f"{RODEO_YML}: images.base.source_ami.name: required key is missing",
        "add 'name:'",
        edit=settings("images.base.source_ami", {"owners": ["self"]}),
    ),
    Case(
        "slots-missing-green",
        ("status",),
        f"{RODEO_YML}: release.slots: must name exactly 'blue' and 'green'",
        "{blue: <target group>, green: <target group>}",
        edit=settings("release.slots", {"blue": "web-blue"}),
    ),
    Case(
        "slots-same-target-group",
        ("status",),
        f"{RODEO_YML}: release.slots",
        edit=settings("release.slots", {"blue": "web-blue", "green": "web-blue"}),
    ),
    Case(
        "smoke-check-port",
        ("status",),
        f"{RODEO_YML}: release.smoke_check.port: 70000 is not a port",
        "between 1 and 65535",
        edit=settings("release.smoke_check.port", 70000),
    ),
    Case(
        "release-image-unknown",
        ("status",),
        f"{RODEO_YML}: release.image: no image named 'web'",
        "choose one of: app, base",
        edit=settings("release.image", "web"),
    ),
    # notify:
    Case(
        "notify-webhook-not-http",
        ("status",),
        f"{RODEO_YML}: notify.webhooks[0]: a ftp: URL is not an http(s) URL",
        "${NAME}",
        edit=settings("notify", {"webhooks": ["ftp://hooks.example.com/x"]}),
    ),
    Case(
        "notify-webhook-no-scheme",
        ("release",),
        f"{RODEO_YML}: notify.webhooks[1]: 'hooks.slack.com/services/T0' is not an http(s) URL",
        "https://",
        edit=settings("notify", {"webhooks": ["${SLACK_HOOK}", "hooks.slack.com/services/T0"]}),
    ),
    Case(
        "notify-sns-topic-name",
        ("status",),
        f"{RODEO_YML}: notify.sns_topic: 'deploys' is not an SNS topic ARN",
        "arn:aws:sns:",
        edit=settings("notify", {"sns_topic": "deploys"}),
    ),
]

CLI_CASES = [
    Case(
        "flag-image-unknown",
        ("bake", "--image", "nope"),
        f"{RODEO_YML}: no image named 'nope'",
        "choose one of: app, base",
    ),
    Case(
        "flag-image-shell",
        ("bake", "--image", "a;rm -rf /"),
        f"{RODEO_YML}: no image named 'a;rm -rf /'",
        "choose one of: app, base",
    ),
    Case(
        "flag-release-image-unknown",
        ("release", "--image", "nope"),
        f"{RODEO_YML}: no image named 'nope'",
        "choose one of",
    ),
    Case(
        "flag-env-unknown",
        ("bake", "--env", "nope"),
        "no environment 'nope': inventories/nope/rodeo.yml does not exist",
        "choose one of: local, staging",
    ),
    Case(
        "flag-env-traversal", ("bake", "--env", "../x"), "--env '../x' is not a valid environment name", "choose one of"
    ),
    Case(
        "flag-env-shell",
        ("status", "--env", "local;id"),
        "--env 'local;id' is not a valid environment name",
        "choose one of",
    ),
    Case(
        "flag-env-folder-without-file",
        ("release", "--env", "prod", "--plan"),
        "no environment 'prod'",
        "choose one of: local, staging",
        edit=mkdir("inventories/prod"),
    ),
    Case("flag-keep-zero", ("prune", "--image", "app", "--keep", "0"), "--keep 0 would keep no AMI", "at least 1"),
    Case(
        "flag-keep-negative", ("prune", "--image", "app", "--keep", "-1"), "--keep -1 would keep no AMI", "at least 1"
    ),
    Case(
        "flag-keep-not-a-number",
        ("prune", "--image", "app", "--keep", "abc"),
        "--keep 'abc' is not a number",
        "at least 1",
    ),
    # invoke's parser answers these before any task runs; a word it does not know gets Rodeo's hint (toolkit/argv.py).
    Case("flag-unknown", ("bake", "--imgae", "app"), "bake has no flag --imgae", "did you mean --image?"),
    Case(
        "heroku-ps-scale",
        ("ps:scale", "web=3"),
        "no command 'ps:scale' (Heroku's)",
        "Rodeo's form: invoke scale web=3",
        here=True,
    ),
    Case("heroku-logs-num", ("logs", "-n", "200"), "logs has no flag -n", "--since 10m", here=True),
    Case(
        "heroku-config-set-colon",
        ("config:set", "A=1", "B=2"),
        "no command 'config:set' (Heroku's)",
        "invoke config.set A=1 B=2",
        here=True,
    ),
    Case("scale-other-process", ("scale", "worker=2"), "no process type 'worker'", "write web=2", here=True),
    Case(
        "scale-instance-size",
        ("scale", "web=2:standard-2x"),
        "'web=2:standard-2x' is not a process and a count",
        "release.instance_type",
        here=True,
    ),
    Case("flag-ami-required", ("verify",), "'verify' did not receive required positional arguments: 'ami'", prefix=""),
    Case(
        "flag-var-malformed",
        ("bake", "--var", "webapp_fault"),
        "--var 'webapp_fault' is not KEY=VALUE",
        "--var app_version=1.2.3",
    ),
    Case(
        "flag-var-bad-name",
        ("bake", "--var", "app-version=1"),
        "--var 'app-version=1' is not KEY=VALUE",
        "letters, digits",
    ),
    Case(
        "flag-prune-unknown-image",
        ("prune", "--image", "nope", "--keep", "1"),
        f"{RODEO_YML}: no image named 'nope'",
        "choose one of",
    ),
]

AMI_CASES = [
    Case("ami-release-malformed", ("release", "--ami", "not-an-ami"), "'not-an-ami' is not an AMI id"),
    Case("ami-verify-malformed", ("verify", "--ami", "not-an-ami"), "'not-an-ami' is not an AMI id"),
    Case(
        "ami-release-missing",
        ("release", "--ami", "ami-0123456789abcdef0"),
        "ami-0123456789abcdef0 does not exist in us-east-1",
        "check the id",
    ),
    Case(
        "ami-release-plan-missing",
        ("release", "--plan", "--ami", "ami-0123456789abcdef0"),
        "ami-0123456789abcdef0 does not exist in us-east-1",
        "check the id",
    ),
    Case(
        "ami-verify-missing",
        ("verify", "--ami", "ami-0123456789abcdef0"),
        "ami-0123456789abcdef0 does not exist in us-east-1",
        "--env",
    ),
    Case(
        "ami-release-unverified",
        ("release", "--ami", "{base_ami}"),
        "is not a verified Rodeo image",
        "--allow-unverified",
    ),
    Case("ami-verify-no-image-tag", ("verify", "--ami", "{base_ami}"), "has no rodeo:image tag", "--image NAME"),
    Case(
        "ami-verify-image-unknown",
        ("verify", "--ami", "{base_ami}", "--image", "nope"),
        f"{RODEO_YML}: no image named 'nope'",
        "choose one of",
    ),
]

ENV_CASES = [
    Case("env-staging-no-credentials-status", ("status", *STAGING), NO_CREDENTIALS, "AWS_PROFILE", seconds=20),
    Case(
        "env-staging-no-credentials-release",
        ("release", *STAGING, "--ami", "ami-0123456789abcdef0"),
        NO_CREDENTIALS,
        "AWS_PROFILE",
        seconds=20,
    ),
    Case(
        "env-staging-no-credentials-bake",
        ("bake", *STAGING, "--image", "base"),
        NO_CREDENTIALS,
        "AWS_PROFILE",
        seconds=20,
    ),
    Case(
        "env-staging-profile-missing",
        ("prune", *STAGING, "--image", "app", "--keep", "2"),
        "The config profile (nope) could not be found",
        "AWS_PROFILE",
        env={"AWS_PROFILE": "nope"},
        seconds=20,
    ),
    Case(
        "env-staging-unreachable",
        ("status", *STAGING),
        f'AWS is unreachable: Could not connect to the endpoint URL: "{NOWHERE}/"',
        "AWS_ENDPOINT_URL",
        seconds=60,
        # AWS_MAX_ATTEMPTS: the user's own retry count wins (Rodeo's 10 attempts take ~20 s to give up).
        env={"AWS_ACCESS_KEY_ID": "rodeo-test", "AWS_SECRET_ACCESS_KEY": "rodeo-test", "AWS_MAX_ATTEMPTS": "2"},
    ),
]

# A real bake each (a few seconds to ~15 s): broken playbooks and image tests of the base image.
BAKE = ("bake", "--image", "base")
# The image-test cases need a provisioned host, not the whole base role: one task is enough.
ONE_TASK = write(
    "playbooks/base.yml",
    "- name: Base image\n  hosts: all\n  gather_facts: false\n  tasks:\n    - ansible.builtin.ping:\n",
)
BAKE_CASES = [
    Case(
        "playbook-yaml-syntax",
        BAKE,
        "YAML parsing failed",
        PLAYBOOK_HINT,
        edit=write("playbooks/base.yml", "- name: Base image\n  hosts: all\n   become: true\n  roles: [base]\n"),
        seconds=180,
    ),
    Case(
        "playbook-missing-role",
        BAKE,
        "the role 'no-such-role' was not found",
        PLAYBOOK_HINT,
        edit=write("playbooks/base.yml", "- name: Base image\n  hosts: all\n  roles: [base, no-such-role]\n"),
        seconds=180,
    ),
    Case("playbook-empty", BAKE, "Empty playbook", PLAYBOOK_HINT, edit=write("playbooks/base.yml", ""), seconds=180),
    Case(
        "image-test-syntax-error",
        BAKE,
        re.compile(
            r"tests/image/test_base\.py.*(SyntaxError|syntax error)|(SyntaxError|syntax error).*tests/image/test_base\.py"
        ),
        "fix the playbook or the test",
        edit=chain(ONE_TASK, write("tests/image/test_base.py", "def test_x(host)\n    assert True\n")),
        seconds=180,
    ),
    Case(
        "image-test-none",
        BAKE,
        "no test ran (tests/image/test_base.py)",
        "fix the playbook or the test",
        edit=chain(ONE_TASK, write("tests/image/test_base.py", '"""Nothing to check yet."""\n\nimport pytest\n')),
        seconds=180,
    ),
]

# An image's app source (images.app.app_source): each case fails before anything is baked.
APP = ("bake", "--image", "app")
APP_SOURCE_CASES = [
    Case(
        "app-source-repo-missing",
        APP,
        "image app: app source no/such/repo: no such folder",
        "a URL, or a path relative to the project",
        edit=settings("images.app.app_source", {"git": "no/such/repo", "ref": "main"}),
    ),
    Case(
        "app-source-ref-unresolved",
        APP,
        "image app: ref 'relase-1' does not resolve in apprepo",
        "git ls-remote apprepo",
        edit=chain(git_repo("apprepo"), settings("images.app.app_source", {"git": "apprepo", "ref": "relase-1"})),
    ),
    Case(
        "app-source-flag-ref-unresolved",
        (*APP, "--ref", "deadbeef"),
        "image app: ref 'deadbeef' does not resolve in apprepo",
        "name a branch, a tag or a commit",
        edit=chain(git_repo("apprepo"), settings("images.app.app_source", {"git": "apprepo"})),
    ),
    Case(
        "app-source-archive-sha-differs",
        APP,
        "image app: app source archive app.tar.gz has sha256",
        "put its sha256 in app_source.sha256",
        edit=chain(
            write("app.tar.gz", b"not the archive you named"),
            settings("images.app.app_source", {"archive": "app.tar.gz", "sha256": "0" * 64}),
        ),
    ),
    Case(
        "app-source-archive-no-sha",
        APP,
        f"{RODEO_YML}: images.app.app_source.sha256: an archive needs its SHA-256",
        "sha256sum app.tar.gz",
        edit=settings("images.app.app_source", {"archive": "app.tar.gz"}),
    ),
    Case(
        "app-source-dir-missing",
        APP,
        "image app: app source folder examples/nope does not exist",
        "app_source.dir",
        edit=settings("images.app.app_source", {"dir": "examples/nope"}),
    ),
    Case(
        "app-source-dir-empty",
        APP,
        "image app: app source folder examples/empty is empty",
        "put the app's code in it",
        edit=chain(mkdir("examples/empty/sub"), settings("images.app.app_source", {"dir": "examples/empty"})),
    ),
    Case(
        "app-source-two-kinds",
        APP,
        f"{RODEO_YML}: images.app.app_source: set exactly one of 'git', 'dir' or 'archive' (found git, dir)",
        edit=settings("images.app.app_source", {"git": "apprepo", "dir": "examples/webapp"}),
    ),
    Case(
        "app-source-ref-without-git",
        APP,
        f"{RODEO_YML}: images.app.app_source.ref: only a git source has a ref",
        "remove 'ref:'",
        edit=settings("images.app.app_source", {"dir": "examples/webapp", "ref": "main"}),
    ),
    Case(
        "app-source-flag-ref-no-source",
        ("bake", "--image", "base", "--ref", "main"),
        "image base has no app_source, so --ref main has nothing to choose",
        "add app_source",
    ),
]

IN_PROCESS = [dataclasses.replace(c, here=True) for c in RODEO_YML_CASES + CLI_CASES + AMI_CASES + APP_SOURCE_CASES]
CASES = IN_PROCESS + ENV_CASES + BAKE_CASES

# --- the zone drill (issue 24, item 2) -------------------------------------------------------------
CASES += [
    Case(
        "fail-zone-unknown",
        ("local.fail-zone", "us-east-1q"),
        "us-east-1 has no zone 'us-east-1q'",
        "choose one of: us-east-1a",
        here=True,
    ),
]

# --- logs (issue 12, item 2): invoke logs' flags, logs.retention_days --------------------------------
LOGS_CASES = [
    Case(
        "logs-retention-not-accepted",
        ("logs",),
        f"{RODEO_YML}: logs.retention_days: 10 is not a retention CloudWatch Logs accepts",
        "(nearest: 7 or 14)",
        edit=settings("logs.retention_days", 10),
    ),
    Case(
        "logs-retention-word",
        ("setup",),
        f"{RODEO_YML}: logs.retention_days: expected a whole number, got 'month'",
        "without quotes",
        edit=settings("logs.retention_days", "month"),
    ),
    Case(
        "logs-since-word",
        ("logs", "--since", "yesterday"),
        "--since 'yesterday' is not a duration or a time",
        "10m, 2h or 1d",
    ),
    Case(
        "logs-since-future",
        ("logs", "--follow", "--since", "2999-01-01T00:00:00Z"),
        "--since '2999-01-01T00:00:00Z' is in the future",
        "10m, 2h or 1d",
    ),
    Case(
        "logs-slot-unknown", ("logs", "--slot", "purple"), "--slot 'purple' is not a slot", "choose one of: blue, green"
    ),
    Case(
        "logs-instance-malformed",
        ("logs", "--instance", "web-1;id"),
        "--instance 'web-1;id' is not an instance id",
        "i-0abc1234def567890",
    ),
    Case(
        "logs-grep-not-a-regex",
        ("logs", "--grep", "(oops"),
        "--grep '(oops' is not a regular expression",
        "escape special characters",
    ),
]
CASES += [dataclasses.replace(c, here=True) for c in LOGS_CASES] + [
    Case("env-staging-no-credentials-logs", ("logs", *STAGING), NO_CREDENTIALS, "AWS_PROFILE", seconds=20),
]
# --- bakes of several images (issue 13, item 4): --image a,b, --all, --jobs ----------------------------------
CASES += [
    dataclasses.replace(c, here=True)
    for c in [
        Case(
            "images-one-unknown",
            ("bake", "--image", "base,nope"),
            f"{RODEO_YML}: no image named 'nope'",
            "choose one of: app, base",
        ),
        Case(
            "images-empty-name",
            ("bake", "--image", "base,"),
            "--image 'base,' names an empty image",
            "separate image names with commas",
        ),
        Case(
            "images-all-and-image",
            ("bake", "--all", "--image", "app"),
            "--all and --image app both say which images to bake",
            "--all bakes every image",
        ),
        Case(
            "images-jobs-negative",
            ("bake", "--image", "base,app", "--jobs", "-1"),
            "--jobs -1 is not a number of bakes",
            "give 1 or more",
        ),
        Case(
            "images-ref",
            ("bake", "--image", "base,app", "--ref", "main"),
            "--ref is for one image, and this bake names 2 (base, app)",
            "bake the image it is for on its own: invoke bake --image NAME --ref REF",
        ),
        Case(
            "images-var",
            ("bake", "--all", "--var", "webapp_fault=root"),
            "--var is for one image, and this bake names 2 (base, app)",
            "invoke bake --image NAME --var KEY=VALUE",
        ),
    ]
]
# --- scaling by clock and load (issue 12, item 3): a bad scaling: section is refused when rodeo.yml loads,
# before `invoke setup` or `invoke release` changes anything.
SCALING = {
    "time_zone": "Europe/Berlin",
    "schedules": [
        {"name": "night", "cron": "0 22 * * *", "min": 2, "max": 4, "desired": 2},
        {"name": "peak", "cron": "0 9 * * MON-FRI", "min": 4, "max": 8, "desired": 4},
    ],
    "target_tracking": [
        {"name": "cpu", "metric": "cpu", "target": 50},
        {"name": "requests", "metric": "requests_per_target", "target": 1000},
    ],
}


def scaling_with(path: str, value: Any) -> Callable[[Project], None]:
    """rodeo.yml with ``SCALING`` whose dotted ``path`` (``schedules.1.cron``) is ``value``."""
    data = yaml.safe_load(yaml.safe_dump(SCALING))
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[int(key) if key.isdigit() else key]
    node[int(last) if last.isdigit() else last] = value
    return settings("scaling", data)


SCALING_KEY = f"{RODEO_YML}: scaling"
SCALING_CASES = [
    Case(
        "scaling-time-zone-unknown",
        ("setup",),
        f"{SCALING_KEY}.time_zone: 'Europe/Berln' is not a known time zone",
        "did you mean 'Europe/Berlin'",
        edit=scaling_with("time_zone", "Europe/Berln"),
    ),
    Case(
        "scaling-time-zone-path",
        ("release", "--plan"),
        f"{SCALING_KEY}.time_zone: '../../../etc/passwd' is not a known time zone",
        "IANA",
        edit=scaling_with("time_zone", "../../../etc/passwd"),
    ),
    Case(
        "scaling-cron-four-fields",
        ("setup",),
        f"{SCALING_KEY}.schedules[1].cron: '0 9 * *' has 4 field(s), not 5",
        "0 9 * * MON-FRI",
        edit=scaling_with("schedules.1.cron", "0 9 * *"),
    ),
    Case(
        "scaling-cron-hour-25",
        ("release",),
        f"{SCALING_KEY}.schedules[0].cron: hour field: 25 is outside 0-23",
        "minute hour",
        edit=scaling_with("schedules.0.cron", "0 25 * * *"),
    ),
    Case(
        "scaling-cron-quartz",
        ("setup",),
        f"{SCALING_KEY}.schedules[1].cron: day of month field '?'",
        "5 fields",
        edit=scaling_with("schedules.1.cron", "0 9 ? * MON-FRI"),
    ),
    Case(
        "scaling-cron-day-name",
        ("status",),
        f"{SCALING_KEY}.schedules[1].cron: day of week field: 'fry' is not a number or a name",
        "",
        edit=scaling_with("schedules.1.cron", "0 9 * * MON-FRY"),
    ),
    Case(
        "scaling-cpu-target-150",
        ("setup",),
        f"{SCALING_KEY}.target_tracking[0].target: 150 is out of range for cpu",
        "1 to 100",
        edit=scaling_with("target_tracking.0.target", 150),
    ),
    Case(
        "scaling-requests-target-zero",
        ("release",),
        f"{SCALING_KEY}.target_tracking[1].target: 0 is out of range for requests_per_target",
        "at least 1",
        edit=scaling_with("target_tracking.1.target", 0),
    ),
    Case(
        "scaling-metric-unknown",
        ("setup",),
        f"{SCALING_KEY}.target_tracking[0].metric: 'cpu_percent' is not known",
        "choose one of: cpu, requests_per_target",
        edit=scaling_with("target_tracking.0.metric", "cpu_percent"),
    ),
    Case(
        "scaling-desired-above-max",
        ("setup",),
        f"{SCALING_KEY}.schedules[1]: need min <= desired <= max, got min 4, desired 9, max 8",
        "fix the sizes",
        edit=scaling_with("schedules.1.desired", 9),
    ),
    Case(
        "scaling-below-capacity-min",
        ("release",),
        f"{SCALING_KEY}.schedules[0]: min 1, desired 1 is below release.capacity.min (2)",
        "health gate",
        edit=scaling_with("schedules.0", {"name": "night", "cron": "0 22 * * *", "min": 1, "max": 4, "desired": 1}),
    ),
    Case(
        "scaling-same-minute",
        ("setup",),
        f"{SCALING_KEY}.schedules[1].cron: 'peak' can fire at the same minute as 'night'",
        "move one by a minute",
        edit=scaling_with("schedules.1.cron", "0 22 * * 1-5"),
    ),
    Case(
        "scaling-name-twice",
        ("setup",),
        f"{SCALING_KEY}.target_tracking[0].name: 'night' is also scaling.schedules[0]",
        "its own name",
        edit=scaling_with("target_tracking.0.name", "night"),
    ),
]
CASES += [dataclasses.replace(c, here=True) for c in SCALING_CASES]


@pytest.mark.integration
def test_the_snapshot_sees_scaling_changes(seeded_stack):
    """The corpus's "nothing changed in AWS" covers scheduled actions, policies and suspended processes too."""
    asg = LocalEnvironment(region="us-east-1", endpoint=seeded_stack[1]).client("autoscaling")
    before = aws_state(seeded_stack[1])
    asg.put_scheduled_update_group_action(
        AutoScalingGroupName="web-blue", ScheduledActionName="rodeo-probe", Recurrence="0 3 * * *", DesiredCapacity=2
    )
    asg.suspend_processes(AutoScalingGroupName="web-green", ScalingProcesses=["AZRebalance"])
    try:
        assert aws_state(seeded_stack[1])["scaling"] != before["scaling"]
    finally:
        asg.delete_scheduled_action(AutoScalingGroupName="web-blue", ScheduledActionName="rodeo-probe")
        asg.resume_processes(AutoScalingGroupName="web-green", ScalingProcesses=["AZRebalance"])
    assert aws_state(seeded_stack[1]) == before


# --- config vars (issue 12, item 1): keys that are no environment variable name, values SSM cannot hold ---
KEY_HINT = "^[A-Z_][A-Z0-9_]*$"
CONFIG_VAR_CASES = [
    dataclasses.replace(c, here=True)
    for c in [
        Case(
            "config-key-lowercase",
            ("config.set", "greeting=hi"),
            "config key 'greeting' is not a valid environment variable name",
            KEY_HINT,
        ),
        Case(
            "config-key-dash",
            ("config.set", "DB-HOST=db"),
            "config key 'DB-HOST' is not a valid environment variable name",
            KEY_HINT,
        ),
        Case(
            "config-key-digit-first",
            ("config.set", "GREETING=hi", "--and", "2FAST=x"),
            "config key '2FAST' is not a valid environment variable name",
            KEY_HINT,
        ),
        Case(
            "config-key-shell",
            ("config.unset", "A;rm"),
            "config key 'A;rm' is not a valid environment variable name",
            KEY_HINT,
        ),
        Case(
            "config-key-reserved",
            ("config.set", "AWS_REGION=eu-west-1"),
            "config key 'AWS_REGION' starts with AWS_, which is reserved",
            "another name",
        ),
        Case(
            "config-value-over-ssm-limit",
            ("config.set", "BIG=" + "x" * 4097),
            "config key BIG: the value is 4097 bytes, over SSM's limit of 4096",
            "under 4 KB",
        ),
        Case(
            "config-value-over-ssm-limit-utf8",
            ("config.set", "BIG=" + "é" * 2049),
            "config key BIG: the value is 4098 bytes",
            "under 4 KB",
        ),
        Case(
            "config-value-empty",
            ("config.set", "GREETING="),
            "config key GREETING: the value is empty",
            "invoke config.unset GREETING",
        ),
        Case("config-not-a-pair", ("config.set", "GREETING"), "'GREETING' is not KEY=VALUE", "--secret"),
        Case(
            "config-two-values-from-stdin",
            ("config.set", "A", "--and", "B", "--secret"),
            "only one value can come from stdin",
            "--no-release",
        ),
        Case("config-unset-not-set", ("config.unset", "NOPE"), "config key NOPE is not set", "invoke config.list"),
        Case(
            "config-only-with-ami",
            ("release", "--config-only", "--ami", "{base_ami}"),
            "--config-only releases the live AMI",
            "drop --config-only",
        ),
    ]
]
CASES += CONFIG_VAR_CASES


# endpoint -> the AWS state the last passing case left (and found unchanged): the next case's "before".
LEFT_BY_THE_CASE_BEFORE: dict[str, dict] = {}


def _param(case: Case):
    # raises=AssertionError: a case that breaks for another reason (CaseBroken, a crash in the
    # test itself) fails instead of passing as the expected bug.
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


def test_ids_are_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30


@pytest.mark.integration
def test_the_snapshot_sees_a_change(seeded_stack, ec2, base_ami):
    """The "nothing changed in AWS" check is only worth something if it notices changes."""
    before = aws_state(seeded_stack[1])
    ec2.create_key_pair(KeyName="rodeo-bad-input-probe")
    ec2.create_tags(Resources=[base_ami], Tags=[{"Key": "rodeo:verified", "Value": "true"}])
    try:
        after = aws_state(seeded_stack[1])
        assert after["key_pairs"] != before["key_pairs"] and after["images"] != before["images"]
    finally:
        ec2.delete_key_pair(KeyName="rodeo-bad-input-probe")
        ec2.delete_tags(Resources=[base_ami], Tags=[{"Key": "rodeo:verified"}])
    assert aws_state(seeded_stack[1]) == before


@pytest.mark.integration
def test_the_snapshot_sees_a_config_var(seeded_stack):
    """Config vars are SSM parameters: a new one, or a new version of one, is a change the snapshot notices."""
    from tests.bad_input.conftest import _clients

    ssm = _clients(seeded_stack[1])[4]
    before = aws_state(seeded_stack[1])
    ssm.put_parameter(Name="/rodeo/web/local/BAD_INPUT_PROBE", Value="x", Type="String")
    try:
        assert aws_state(seeded_stack[1])["parameters"] != before["parameters"]
    finally:
        ssm.delete_parameter(Name="/rodeo/web/local/BAD_INPUT_PROBE")
    assert aws_state(seeded_stack[1]) == before


@pytest.mark.integration
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input_is_refused(case: Case, project: Project, seeded_stack, base_ami, monkeypatch):
    if case.edit:
        case.edit(project)
    args = [a.format(base_ami=base_ami) for a in case.args]
    # The state the case before left, checked then (a case runs alone on its worker's stack): one snapshot a case.
    before = LEFT_BY_THE_CASE_BEFORE.pop(seeded_stack[1], None) or aws_state(seeded_stack[1])

    with monkeypatch.context() as m:  # the command's environment only, not this process's clients
        for name, value in case.env.items():
            if value is None:
                m.delenv(name, raising=False)
            else:
                m.setenv(name, value)
        started = time.monotonic()
        out = project.invoke_here(*args) if case.here else project.invoke(*args, timeout=int(case.seconds) + 60)
        took = time.monotonic() - started

    shown = f"$ invoke {' '.join(args)}  (exit {out.returncode}, {took:.1f}s)\n--- stderr\n{out.stderr[-3000:]}\n--- stdout\n{out.stdout[-1500:]}"
    assert out.returncode != 0, shown
    assert "Traceback" not in out.stderr + out.stdout, shown
    lines = out.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith(case.prefix)]
    assert len(errors) == 1, shown
    error = lines[errors[0]]
    if isinstance(case.message, re.Pattern):
        assert case.message.search(error), shown
    else:
        assert case.message in error, shown
    if case.hint:
        hint = lines[errors[0] + 1] if errors[0] + 1 < len(lines) else ""
        assert hint.startswith("  hint: ") and case.hint in hint, shown
    assert took < case.seconds, f"took {took:.1f}s: {shown}"
    after = aws_state(seeded_stack[1])
    assert after == before, f"AWS changed: {shown}"
    assert residue(project.state) == {"mounts": [], "processes": []}, shown
    LEFT_BY_THE_CASE_BEFORE[seeded_stack[1]] = after  # only once the case passed: a failed one's next takes its own
