"""The live stack's alarms read their own region's data only, as CloudWatch's (moto in this process).

Two regions of a release in waves have metrics of the same name and
dimensions (an Auto Scaling group ``web-blue`` in each, the same custom
metric): each region's alarm sees only the datapoints put in its region.
"""

from __future__ import annotations

import time

import boto3
from moto import mock_aws

from toolkit.local.monitor import Monitor

WEST = "us-west-2"
DIMENSIONS = [{"Name": "AutoScalingGroupName", "Value": "web-blue"}]


def cloudwatch(region: str):
    return boto3.client("cloudwatch", region_name=region, aws_access_key_id="a", aws_secret_access_key="b")


def test_an_alarm_reads_only_the_datapoints_of_its_own_region():
    with mock_aws():
        for region in ("us-east-1", WEST):
            cloudwatch(region).put_metric_alarm(
                AlarmName="web-errors",
                Namespace="Rodeo/Test",
                MetricName="Errors",
                Dimensions=DIMENSIONS,
                Statistic="Sum",
                Period=10,
                EvaluationPeriods=1,
                Threshold=2,
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData="notBreaching",
            )
        cloudwatch("us-east-1").put_metric_data(
            Namespace="Rodeo/Test", MetricData=[{"MetricName": "Errors", "Dimensions": DIMENSIONS, "Value": 5.0}]
        )
        Monitor().evaluate(time.time() + 1)
        states = {
            region: cloudwatch(region).describe_alarms(AlarmNames=["web-errors"])["MetricAlarms"][0]["StateValue"]
            for region in ("us-east-1", WEST)
        }
    assert states == {"us-east-1": "ALARM", WEST: "OK"}
