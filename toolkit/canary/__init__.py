"""Canary analysis: is the new slot worse than the old one? (``release.analysis``; ``toolkit.release.judging`` runs it)

``samples`` holds what is compared (each slot's requests and datapoints over
one window), ``sources`` reads it from what AWS keeps (``accesslogs``: the
load balancer's access logs in S3; ``metrics``: named CloudWatch metrics),
and ``judge`` compares, as a pure function.
"""
