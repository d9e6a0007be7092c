"""One environment, two implementations: ``connect`` picks one by ``stack:``, and nothing else in Rodeo asks which."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from toolkit import config as config_mod
from toolkit.environment import IMPLEMENTATIONS, Environment, connect, url_for
from toolkit.errors import StackError
from toolkit.local.auth import LOCAL_CREDENTIALS
from toolkit.local.environment import LocalEnvironment
from toolkit.local.stack import Stack
from toolkit.packer import render

ROOT = Path(__file__).resolve().parents[2]
TOOLKIT = ROOT / "toolkit"
# The two packages that know the local stack: its implementation, and the build-host connectors.
KNOWING = ("local", "hosts")
# Where the choice is made (environment.py) and where ``stack:`` is read and checked (config.py).
READS_STACK = ("config.py", "environment.py")


@pytest.mark.parametrize(
    ("protocol", "port", "url"),
    [
        ("HTTPS", 443, "https://lb.example"),
        ("HTTPS", 8443, "https://lb.example:8443"),
        ("HTTP", 80, "http://lb.example"),
        ("HTTP", 8081, "http://lb.example:8081"),
    ],
)
def test_url_for(protocol, port, url):
    assert url_for(protocol, "lb.example", port) == url


def test_every_stack_has_one_implementation():
    assert set(IMPLEMENTATIONS) == set(config_mod.STACKS)


def test_an_aws_environment_is_the_account_boto3_finds(tmp_path):
    cfg = config_mod.load("staging", ROOT)
    env = connect(cfg, tmp_path / "state", tmp_path / "cache")
    assert type(env) is Environment
    assert (env.region, env.profile, env.endpoint, env.credentials) == (cfg.region, cfg.profile, None, None)
    assert env.packer_variables() == {}  # the template's defaults are AWS's
    assert not (tmp_path / "state").exists()  # nothing on this machine is started for it


def test_a_local_environment_that_must_not_start_says_so(tmp_path):
    cfg = config_mod.load("local", ROOT)
    with pytest.raises(StackError, match="not running"):
        connect(cfg, tmp_path / "state", tmp_path / "cache", start=False)


def test_the_local_environment_signs_as_the_stacks_admin_and_ignores_profiles():
    env = LocalEnvironment(region="us-east-1", endpoint="http://127.0.0.1:5000")
    assert env.credentials == LOCAL_CREDENTIALS and env.profile is None
    assert env.env()["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env.env()["AWS_ACCESS_KEY_ID"] == LOCAL_CREDENTIALS["aws_access_key_id"] and "AWS_PROFILE" not in env.env()


def test_the_local_environment_gives_packer_its_endpoint_through_ordinary_template_variables():
    variables = LocalEnvironment(region="us-east-1", endpoint="http://127.0.0.1:5000").packer_variables()
    assert variables["endpoint"] == "http://127.0.0.1:5000"
    assert set(variables) <= set(render.VARIABLES)
    # Each is an AWS knob whose template default is AWS's own: no template variable exists for the local stack.
    assert {name: render.VARIABLES[name][1] for name in variables} == {
        "endpoint": "",
        "skip_region_validation": False,
        "skip_metadata_api_check": False,
        "skip_credential_validation": False,
    }
    assert not [name for name in render.VARIABLES if "local" in name]


def test_a_live_local_stack_serves_listeners_from_haproxy(tmp_path):
    st = Stack(state_dir=tmp_path, cache_dir=tmp_path, live=True)
    st.live_dir.mkdir(parents=True)
    (st.live_dir / "load_balancers.json").write_text(
        '{"us-east-1": {"web": {"80": "http://127.0.0.1:4711"}}, "us-west-2": {"web": {"80": "http://127.0.0.1:4712"}}}'
    )
    env = LocalEnvironment(region="us-east-1", endpoint="http://127.0.0.1:5000", stack=st)
    assert env.listener_url("web", 80) == "http://127.0.0.1:4711"
    assert env.listener_url("web", 8081) is None  # the smoke check's listener, before HAProxy serves it
    # Two regions may each have an ALB named web: an environment's is its own region's.
    west = LocalEnvironment(region="us-west-2", endpoint="http://127.0.0.1:5000", stack=st)
    assert west.listener_url("web", 80) == "http://127.0.0.1:4712"
    assert (
        LocalEnvironment(region="eu-west-1", endpoint="http://127.0.0.1:5000", stack=st).listener_url("web", 80) is None
    )


def test_a_local_environment_without_its_stack_has_no_build_hosts():
    with pytest.raises(StackError, match="without its stack"):
        LocalEnvironment(region="us-east-1", endpoint="http://127.0.0.1:5000").hosts()


def _outside_knowing() -> list[Path]:
    return [p for p in sorted(TOOLKIT.rglob("*.py")) if p.relative_to(TOOLKIT).parts[0] not in KNOWING]


def _imports_local(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return any(a.name == "toolkit.local" or a.name.startswith("toolkit.local.") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        return (
            module == "toolkit.local"
            or module.startswith("toolkit.local.")
            or (module == "toolkit" and any(a.name == "local" for a in node.names))
        )
    if isinstance(node, ast.Call):  # importlib.import_module("toolkit.local...") or __import__(...)
        return any(
            isinstance(a, ast.Constant) and isinstance(a.value, str) and a.value.startswith("toolkit.local")
            for a in node.args
        )
    return False


def _branches_on_local(node: ast.AST, name: str) -> bool:
    if isinstance(node, ast.Attribute) and node.attr in ("is_local", "local"):
        return name != "config.py"  # where is_local is defined
    if isinstance(node, ast.Attribute) and node.attr == "stack" and isinstance(node.ctx, ast.Load):
        return name not in READS_STACK
    if isinstance(node, ast.Compare):
        return (
            any(isinstance(c, ast.Constant) and c.value == "local" for c in [node.left, *node.comparators])
            and name != "config.py"
        )
    return False


def test_nothing_outside_local_and_hosts_imports_the_local_stack_or_asks_for_it():
    found = []
    for path in _outside_knowing():
        rel = path.relative_to(TOOLKIT)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if _imports_local(node):
                found.append(f"{rel}:{node.lineno}: imports the local stack")
            elif _branches_on_local(node, str(rel)):
                found.append(f"{rel}:{node.lineno}: asks whether the environment is local")
    assert not found, (
        "only toolkit/local/ and toolkit/hosts/ know the local stack; ask the environment instead:\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source",
    [
        "from toolkit.local import stack\n",
        "import toolkit.local.stack\n",
        "from toolkit import local\n",
        "def f():\n    from toolkit.local.stack import up\n",
        "import importlib\nimportlib.import_module('toolkit.local.environment')\n",
    ],
)
def test_the_import_check_sees_every_way_in(source):
    assert any(_imports_local(node) for node in ast.walk(ast.parse(source)))


@pytest.mark.parametrize(
    "source",
    [
        "if config.is_local: pass\n",
        "creds = KEYS if self.local else {}\n",
        "if config.stack == 'local': pass\n",
        "x = cfg.stack\n",
    ],
)
def test_the_branch_check_sees_every_way_to_ask(source):
    assert any(_branches_on_local(node, "release/rollout.py") for node in ast.walk(ast.parse(source)))
