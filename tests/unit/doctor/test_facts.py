"""The facts doctor reads from this machine: the profile Packer gets (no AWS)."""

from __future__ import annotations

from toolkit.doctor.facts import _packer


def test_an_sso_profile_is_found_through_the_role_profiles_source_profile(tmp_path):
    config_file = tmp_path / "config"
    config_file.write_text(
        "[profile deploy]\nrole_arn = arn:aws:iam::1:role/Deployer\nsource_profile = team\n\n"
        "[profile team]\nsso_session = acme\nsso_account_id = 1\nsso_role_name = Dev\n\n"
        "[profile loop]\nsource_profile = loop\n"
    )
    found = _packer({}, {"AWS_PROFILE": "deploy", "AWS_CONFIG_FILE": str(config_file)}, lambda: (1, 6, 6), {})
    assert (found.profile, found.sso_keys, found.static_keys) == (
        "deploy",
        ("sso_account_id", "sso_role_name", "sso_session"),
        False,
    )
    assert (
        _packer({}, {"AWS_PROFILE": "loop", "AWS_CONFIG_FILE": str(config_file)}, lambda: (1, 6, 6), {}).sso_keys == ()
    )
