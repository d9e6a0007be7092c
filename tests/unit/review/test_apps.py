"""What review.up prints and refuses before it touches AWS: the URL and its curl, the name, a ref's collision."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from toolkit import config
from toolkit.errors import ReviewError
from toolkit.review.apps import App, DownResult, ReviewList, UpResult, _same_ref, names_for, where_of
from toolkit.review.names import Names
from toolkit.review.record import Record

ROOT = Path(__file__).resolve().parents[3]
LOCAL = config.load("local", ROOT)
NAMES = Names("web", "local", "pr-7", "review.localhost")


@pytest.mark.parametrize(
    "listener,url,curl",
    [
        (
            "http://127.0.0.1:40157",
            "http://pr-7.review.localhost:40157/",
            "curl -H 'Host: pr-7.review.localhost' http://127.0.0.1:40157/",
        ),
        (
            "https://web-1.eu-west-1.elb.amazonaws.com",
            "https://pr-7.review.localhost/",
            "curl --connect-to pr-7.review.localhost:443:web-1.eu-west-1.elb.amazonaws.com:443 https://pr-7.review.localhost/",
        ),
        (None, None, None),
    ],
)
def test_the_url_is_the_listeners_with_the_review_host(listener, url, curl):
    aws = SimpleNamespace(listener_url=lambda lb, port: listener)
    where = where_of(aws, LOCAL, NAMES)
    assert (where.url, where.curl) == (url, curl)


def test_a_name_comes_from_the_flag_or_the_ref_and_one_is_needed():
    assert names_for(LOCAL, "pr-7", "feature/x").name == "pr-7"
    assert names_for(LOCAL, None, "feature/X").name == "feature-x"
    with pytest.raises(ReviewError, match="needs a name"):
        names_for(LOCAL, None, None)


@pytest.mark.parametrize(
    "found,name,ref,refused",
    [
        (None, None, "feature/x", False),
        (Record("feature-x", ref="feature/x"), None, "feature/x", False),
        (Record("feature-x", ref="feature-x"), None, "feature/x", True),  # two branches, one name
        (Record("pr-7", ref="abc123"), "pr-7", "def456", False),  # a name given: the ref moves (CI's commits)
        (Record("feature-x", ref=""), None, "feature/x", False),
    ],
)
def test_a_derived_name_never_takes_over_another_refs_review_app(found, name, ref, refused):
    names = Names("web", "local", found.name if found else "feature-x", "review.localhost")
    if refused:
        with pytest.raises(ReviewError, match="gives the same name") as err:
            _same_ref(found, names, name, ref)
        assert "--name feature-x-2" in err.value.hint
    else:
        _same_ref(found, names, name, ref)


def test_what_the_commands_print():
    up = UpResult("pr-7", "created", NAMES.host, "http://pr-7.review.localhost:1/", "curl x", ami="ami-1", seconds=12)
    assert up.lines() == [
        "review app pr-7 created: ami-1 in 12s",
        "  answers at http://pr-7.review.localhost:1/",
        "  where that name does not resolve: curl x",
        "  remove it with: invoke review.down pr-7",
    ]
    assert DownResult("pr-7", "absent").lines() == ["no review app pr-7: nothing to remove"]
    listing = ReviewList("local", (App("pr-7", "", "ami-1", None, "2026-12-05T10:00:00", "", "incomplete"),))
    assert listing.lines()[1].split() == ["pr-7", "-", "ami-1", "-", "2026-12-05", "10:00", "-", "incomplete"]
