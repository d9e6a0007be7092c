"""``invoke doctor``: a read-only preflight of an environment's account.

``facts.gather`` reads the account (Describe*, Get*, List* and the IAM policy
simulator; never a write), ``checks`` turns those facts into one line per
check, and ``run.doctor`` ties them together into a ``DoctorResult``.
"""

# Every AWS action doctor calls: all reads. (``toolkit.iam`` grants them as ``--for doctor``.)
ACTIONS = (
    "sts:GetCallerIdentity",
    "iam:GetRole",  # an assumed role's ARN with its path, for the simulator
    "iam:SimulatePrincipalPolicy",
    "ec2:DescribeImages",
    "ec2:DescribeSubnets",
    "ec2:DescribeRouteTables",
    "ec2:DescribeNatGateways",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeSecurityGroups",
    "ec2:GetEbsEncryptionByDefault",
    "ec2:GetEbsDefaultKmsKeyId",
    "kms:DescribeKey",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "cloudwatch:DescribeAlarms",
    "dynamodb:DescribeTable",
)
