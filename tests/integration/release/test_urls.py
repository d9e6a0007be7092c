"""The URLs Rodeo prints (deploy, status, the smoke check) use the listener's protocol (issue 19, item 16).

The table of schemes and ports is in tests/unit/test_environment.py; here, the environment reads the listener's protocol.
"""

from __future__ import annotations


def test_an_https_listener_gets_an_https_url(world):
    elbv2 = world.aws.client("elbv2")
    lb = elbv2.describe_load_balancers(Names=[world.cfg.release.load_balancer])["LoadBalancers"][0]
    cert = world.aws.client("acm").request_certificate(DomainName="web.example.com")["CertificateArn"]
    blue = elbv2.describe_target_groups(Names=[world.cfg.release.slots["blue"]])["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTPS",
        Port=443,
        Certificates=[{"CertificateArn": cert}],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": blue}],
    )
    assert world.aws.listener_url(world.cfg.release.load_balancer, 443) == f"https://{lb['DNSName']}"
    assert world.aws.listener_url(world.cfg.release.load_balancer, 80) == f"http://{lb['DNSName']}"
