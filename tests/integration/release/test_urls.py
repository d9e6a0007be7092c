"""The URLs Rodeo prints (deploy, status, the smoke check) use the listener's protocol (issue 19, item 16)."""

from __future__ import annotations

import pytest

from toolkit.release import slots


@pytest.mark.parametrize(("protocol", "port", "url"), [
    ("HTTPS", 443, "https://lb.example"), ("HTTPS", 8443, "https://lb.example:8443"),
    ("HTTP", 80, "http://lb.example"), ("HTTP", 8081, "http://lb.example:8081"),
])
def test_listener_url(protocol, port, url):
    assert slots.listener_url(protocol, "lb.example", port) == url


def test_an_https_listener_gets_an_https_url(world):
    elbv2 = world.aws.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[world.cfg.release.load_balancer])["LoadBalancers"][0]
    cert = world.aws.client("acm").request_certificate(DomainName="web.example.com")["CertificateArn"]
    blue = elbv2.describe_target_groups(Names=[world.cfg.release.slots["blue"]])["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTPS", Port=443, Certificates=[{"CertificateArn": cert}],
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}])
    assert slots.dns_url(world.aws, world.cfg.release, 443) == f"https://{lb['DNSName']}"
    assert slots.dns_url(world.aws, world.cfg.release, 80) == f"http://{lb['DNSName']}"
