"""The base image: admin group and users, sshd hardening, no unattended upgrades, time sync, logs, the config loader.

Run by testinfra against a build instance (``--hosts=ssh://admin@...``): a
booted instance, on EC2 and on the local stack alike (systemd and cloud-init run).
"""

import json

import pytest

WANTS = "/etc/systemd/system/sysinit.target.wants/systemd-timesyncd.service"


def test_ops_group_and_deploy_user(host):
    assert host.group("ops").exists
    deploy = host.user("deploy")
    assert deploy.exists
    assert deploy.shell == "/bin/bash"
    assert host.file(deploy.home).is_directory
    assert "ops" not in deploy.groups


def test_ops_may_sudo(host):
    with host.sudo():
        sudoers = host.file("/etc/sudoers.d/50-ops")
        assert sudoers.mode == 0o440
        assert "%ops ALL=(ALL:ALL) NOPASSWD: ALL" in sudoers.content_string
        assert host.run("visudo -c").rc == 0


def test_sshd_dropin(host):
    dropin = host.file("/etc/ssh/sshd_config.d/50-rodeo.conf")
    assert dropin.user == "root"
    assert dropin.mode == 0o644
    lines = dropin.content_string.splitlines()
    assert "PermitRootLogin no" in lines
    assert "PasswordAuthentication no" in lines


@pytest.mark.parametrize("setting", ["permitrootlogin no", "passwordauthentication no"])
def test_sshd_effective_settings(host, setting):
    with host.sudo():
        effective = host.check_output("/usr/sbin/sshd -T").splitlines()
    assert setting in effective


def test_no_unattended_upgrades(host):
    assert not host.package("unattended-upgrades").is_installed
    periodic = host.file("/etc/apt/apt.conf.d/20auto-upgrades").content_string
    assert 'APT::Periodic::Update-Package-Lists "0";' in periodic
    assert 'APT::Periodic::Unattended-Upgrade "0";' in periodic


def test_timesyncd_enabled_at_boot(host):
    assert host.package("systemd-timesyncd").is_installed
    wants = host.file(WANTS)
    assert wants.is_symlink
    assert wants.linked_to.endswith("/lib/systemd/system/systemd-timesyncd.service")
    assert host.check_output("systemctl is-enabled systemd-timesyncd.service") == "enabled"


def test_timesyncd_uses_amazon_time_sync(host):
    conf = host.file("/etc/systemd/timesyncd.conf.d/rodeo.conf").content_string.splitlines()
    assert "[Time]" in conf
    assert "NTP=169.254.169.123" in conf
    assert any(line.startswith("FallbackNTP=") and len(line) > len("FallbackNTP=") for line in conf)


def test_log_directory(host):
    logs = host.file("/var/log/rodeo")
    assert logs.is_directory
    assert logs.user == "root"
    assert logs.group == "ops"
    assert logs.mode == 0o2775


def test_ssh_host_keys_are_made_at_boot(host):
    """cloud-init makes them at each instance's first boot (the seal removes the build instance's)."""
    assert host.service("cloud-init").is_enabled
    assert host.file("/etc/ssh/ssh_host_ed25519_key").exists
    assert not host.file("/etc/systemd/system/ssh.service.d/10-rodeo-host-keys.conf").exists


@pytest.mark.parametrize("package", ["python3-boto3", "python3-systemd"])
def test_agent_packages(host, package):
    assert host.package(package).is_installed


def test_log_shipper_starts_at_boot_and_reads_the_journal(host):
    unit = host.file("/etc/systemd/system/rodeo-logs.service").content_string.splitlines()
    assert "ExecStart=/usr/bin/python3 /usr/local/sbin/rodeo-logs" in unit and "User=rodeo-logs" in unit
    assert host.check_output("systemctl is-enabled rodeo-logs.service") == "enabled"
    assert "systemd-journal" in host.user("rodeo-logs").groups
    # The image's own Python compiles it and has what it imports (nothing is written: no __pycache__ in /usr/local/sbin).
    check = "compile(open('/usr/local/sbin/rodeo-logs').read(), 'rodeo-logs', 'exec'); import boto3, botocore.config, systemd.journal"
    assert host.run(f'python3 -c "{check}"').rc == 0


def test_config_loader_runs_at_boot(host):
    loader = host.file("/usr/local/lib/rodeo/rodeo-config-loader.py")
    assert (loader.user, loader.group, loader.mode) == ("root", "root", 0o755)
    assert (
        host.run(
            "python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read())' /usr/local/lib/rodeo/rodeo-config-loader.py"
        ).rc
        == 0
    )
    unit = host.file("/etc/systemd/system/rodeo-config.service").content_string.splitlines()
    for line in (
        "Type=oneshot",
        "RemainAfterExit=yes",
        "ExecStart=/usr/bin/python3 /usr/local/lib/rodeo/rodeo-config-loader.py",
        "RuntimeDirectory=rodeo-config",
        "WantedBy=multi-user.target",
        "Restart=on-failure",
        "RestartSec=10",
        "StartLimitIntervalSec=900",
        "StartLimitBurst=5",
    ):
        assert line in unit
    assert host.check_output("systemctl is-enabled rodeo-config.service") == "enabled"


def test_the_build_instance_is_booted_and_made_by_cloud_init(host):
    """systemd runs sshd; cloud-init's first boot made the login user (this test's) and the host keys, and ended without error."""
    if not host.file("/run/systemd/system").is_directory:
        pytest.skip("not a booted instance: a chroot sandbox (bench/bake.py --fixed, the provisioning speed test)")
    assert host.service("ssh").is_running
    # What "cloud-init status --wait" waits for, without starting cloud-init's Python: its result, written when it ends.
    waited = host.run("timeout 120 sh -c 'until [ -e /run/cloud-init/result.json ]; do sleep 0.2; done'")
    assert waited.rc == 0, "cloud-init did not finish within 120 s"
    result = json.loads(host.file("/run/cloud-init/result.json").content_string)["v1"]
    assert result["errors"] == [] and result["datasource"].startswith("DataSourceEc2")
    assert host.user("admin").exists
