import base64
import json

import pytest

from toolkit.config import Config
from toolkit.release import userdata


def test_document_names_app_and_env_and_round_trips():
    config = Config(app="web", region="us-east-1", images={}, env="production")
    doc = userdata.document(config, config_version=3)
    assert doc == {"rodeo": {"app": "web", "env": "production", "config_version": 3}}
    encoded = userdata.encode(doc)
    assert json.loads(base64.b64decode(encoded)) == doc
    assert userdata.decode(encoded) == doc


@pytest.mark.parametrize(
    "data",
    [
        None,
        "",
        base64.b64encode(b"#!/bin/sh\necho hi").decode(),
        base64.b64encode(b'{"other": 1}').decode(),
        "not base64!",
    ],
)
def test_user_data_that_is_not_rodeos_decodes_to_none(data):
    assert userdata.decode(data) is None
