"""Every patch of moto is listed in toolkit.local.motopatches, and moto still has what each one replaces, as it was checked.

A failure here after a moto upgrade names the patch to look at again: moto
renamed or removed what it replaces, changed its parameters, or grew a call
the local stack adds. The behaviour of each patch is proven by the tests its
entry names (``proof``), which run it in a moto server.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from toolkit.local import motopatches
from toolkit.local.motopatches import ADDED, PATCHES, SETTING, original, replace, targets

ROOT = Path(__file__).resolve().parents[3]
PATCHING_MODULES = ("motoserver", "awsrules", "auth", "iamsim", "motostate", "classicpatches")


@pytest.mark.parametrize("target, params", sorted(targets().items()), ids=sorted(targets()))
def test_moto_still_has_what_the_patch_replaces_with_the_parameters_relied_on(target, params):
    found = original(target)
    if params is ADDED:
        assert found is None, (
            f"moto {motopatches.MOTO_CHECKED}+ has {target} itself: drop the patch, check moto's against AWS"
        )
    elif params == SETTING:
        assert isinstance(found, (int, float)) and not isinstance(found, bool)
    else:
        assert callable(found), f"{target} is gone from moto"
        assert tuple(inspect.signature(found).parameters) == params


@pytest.mark.parametrize("patch", PATCHES, ids=[p.installer.rsplit(":", 1)[1] for p in PATCHES])
def test_each_patch_is_made_by_a_function_and_names_tests_that_exist(patch):
    module, _, name = patch.installer.partition(":")
    assert callable(getattr(importlib.import_module(module), name))
    assert patch.what and patch.why and patch.proof
    for proof in patch.proof:
        path, _, test = proof.partition("::")
        assert (ROOT / path).is_file(), proof
        if test:
            assert re.search(rf"^def {re.escape(test)}\(", (ROOT / path).read_text(), re.M), proof


INSTALL_ALL = """
import json
from toolkit.local import auth, awsrules, classicpatches, iamsim, motopatches, motoserver, motostate
for name in dir(motoserver):
    if name.startswith("_") and name not in ("_go_live", "_private_folder") and callable(getattr(motoserver, name)) \\
            and getattr(getattr(motoserver, name), "__module__", "") == "toolkit.local.motoserver":
        fn = getattr(motoserver, name)
        fn(None) if fn.__code__.co_argcount else fn()
classicpatches.attachments_as_aws(); classicpatches.instance_health_as_aws()
auth.enforce(); awsrules.apply(); iamsim.install(); motostate.one_request_at_a_time()
print(json.dumps(sorted(motopatches.ORIGINALS)))
"""


def test_the_patches_made_are_exactly_the_ones_listed():
    """Every function that patches moto, run in a fresh process: what it replaced is what PATCHES lists, no more, no less."""
    done = subprocess.run(
        [sys.executable, "-c", INSTALL_ALL], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True
    )
    assert json.loads(done.stdout) == sorted(targets())


def test_a_patch_not_listed_is_refused():
    from moto.sns.responses import SNSResponse

    with pytest.raises(
        LookupError, match="moto.sns.responses:SNSResponse.subscribe is not in toolkit.local.motopatches.PATCHES"
    ):
        replace(SNSResponse, "subscribe", lambda self: None)


@pytest.mark.parametrize("module", PATCHING_MODULES)
def test_no_module_patches_moto_around_the_registry(module):
    """An assignment to a moto class's attribute, or a setattr, outside motopatches.replace would go unlisted."""
    source = (ROOT / "toolkit" / "local" / f"{module}.py").read_text()
    assert re.findall(r"^\s+(?:[\w.]*[A-Z]\w*\.\w+ = |setattr\()", source, re.M) == []


LISTINGS = """
import os
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from toolkit.local import motoserver
motoserver._moto_modules_listed_once()
listed = []
real = os.listdir
os.listdir = lambda path: listed.append(path) or real(path)
app = DomainDispatcherApplication(create_backend_app)
print([app.get_backend_for_host(host) for host in ("ec2", "elbv2", "ec2", "autoscaling")], len(listed))
"""


def test_the_server_lists_motos_folder_once():
    """Three requests' dispatch, after the patch: each finds its backend, and moto's folder is not listed again."""
    done = subprocess.run(
        [sys.executable, "-c", LISTINGS], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["['ec2',", "'elbv2',", "'ec2',", "'autoscaling']", "0"]


RESCANS = """
import copy, inspect
from moto.core import DEFAULT_ACCOUNT_ID, responses
from moto.ec2.models import ec2_backends
from moto.elbv2.responses import ELBV2Response
from toolkit.local import motoserver
ec2 = ec2_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
ami = next(iter(ec2.amis))
made = [i.id for r in range(3) for i in ec2.run_instances(ami, 2, None, [], is_instance_type_default=True).instances]
motoserver._requests_without_rescans()
copies, listings = [], []
real_copy, real_members = copy.copy, inspect.getmembers
copy.copy = lambda obj: copies.append(obj) or real_copy(obj)
inspect.getmembers = lambda *a, **k: listings.append(a) or real_members(*a, **k)
found = [ec2.get_instance_by_id(i).id for i in made]
names = [responses.method_names_from_class(ELBV2Response) for _ in range(3)]
print(found == made, ec2.get_instance_by_id("i-0123456789abcdef0"), len(copies))
print("describe_target_health" in names[0], names[0] == names[2], len(listings))
"""


def test_an_instance_is_found_without_copies_and_methods_listed_once():
    """Six instances in three reservations: each found by id (an unknown id is None) with no reservation copied;
    a class's methods listed three times with one look at the class."""
    done = subprocess.run(
        [sys.executable, "-c", RESCANS], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    assert done.stdout.split() == ["True", "None", "0", "True", "True", "1"]


def test_a_dynamodb_request_is_answered_under_the_lock():
    """While one DynamoDB request is answered, another thread cannot take the lock; after it, it can."""
    from toolkit.local.motoserver import DYNAMODB, one_at_a_time

    free: list[bool] = []

    def try_lock() -> None:
        taken = DYNAMODB.acquire(timeout=0.05)
        free.append(taken)
        if taken:
            DYNAMODB.release()

    def action(self):
        taker = threading.Thread(target=try_lock)
        taker.start()
        taker.join()
        return "answer"

    assert one_at_a_time(action, DYNAMODB)(None) == "answer"
    try_lock()
    assert free == [False, True]
