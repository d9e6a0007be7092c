"""The metadata service's key pair and dated API versions, as EC2 answers them (what cloud-init reads)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from toolkit.local.imds import Identity, Tokens, answer

NOW = 1_800_000_000.0
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1aWxkLWhvc3Qta2V5LWJvZHktZm9yLXRlc3Rz rodeo-test-made-it"
WHO = Identity(
    instance_id="i-0abc",
    image_id="ami-1",
    instance_type="t3.micro",
    region="us-east-1",
    zone="us-east-1a",
    account="123456789012",
    private_ip="10.0.1.5",
    role="rodeo-local",
    key_name="rodeo-base-1",
    public_key=KEY,
)


@pytest.mark.parametrize(
    "path, who, status, body",
    [
        ("/latest/meta-data/public-keys/", WHO, 200, b"0=rodeo-base-1"),
        ("/latest/meta-data/public-keys", WHO, 200, b"0=rodeo-base-1"),
        ("/latest/meta-data/public-keys/0/", WHO, 200, b"openssh-key"),
        # The key pair's name as the comment, whatever the key was made with.
        (
            "/latest/meta-data/public-keys/0/openssh-key",
            WHO,
            200,
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1aWxkLWhvc3Qta2V5LWJvZHktZm9yLXRlc3Rz rodeo-base-1",
        ),
        ("/latest/meta-data/public-keys/", replace(WHO, key_name="", public_key=""), 404, None),
        ("/latest/meta-data/public-keys/0/openssh-key", replace(WHO, public_key="garbage"), 404, None),
        # cloud-init asks dated versions (2009-04-04 first when it cannot tell it runs on AWS).
        ("/2009-04-04/meta-data/instance-id", WHO, 200, b"i-0abc"),
        (
            "/2021-03-23/meta-data/public-keys/0/openssh-key",
            WHO,
            200,
            b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJ1aWxkLWhvc3Qta2V5LWJvZHktZm9yLXRlc3Rz rodeo-base-1",
        ),
        ("/2009-04-04/user-data", replace(WHO, user_data=b"#cloud-config\n"), 200, b"#cloud-config\n"),
        ("/2009-04-04/dynamic/instance-identity/document", WHO, 200, None),
        # cloud-init told it runs on AWS (hosts/cloudimage.py) crawls the folders above the document.
        ("/2021-03-23/dynamic/", WHO, 200, b"instance-identity/"),
        ("/2021-03-23/dynamic/instance-identity", WHO, 200, b"document"),
        ("/2021-03-23/dynamic/instance-identity/pkcs7", WHO, 404, None),
        ("/2009-04-04x/meta-data/instance-id", WHO, 404, None),
    ],
)
def test_keys_and_versions(path, who, status, body):
    got = answer("GET", path, {}, who, Tokens(), NOW)
    assert got[0] == status
    if body is not None:
        assert got[2] == body


def test_listing_names_public_keys_only_with_a_key():
    assert b"public-keys/" in answer("GET", "/latest/meta-data/", {}, WHO, Tokens(), NOW)[2].split(b"\n")
    assert b"public-keys/" not in answer("GET", "/latest/meta-data/", {}, replace(WHO, key_name=""), Tokens(), NOW)[
        2
    ].split(b"\n")
