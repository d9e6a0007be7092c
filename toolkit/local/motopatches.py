"""Every change the local stack makes to moto's internals, in one list, checked against one moto release.

The local stack is moto's server with fixes where moto 5.2.6 differs from
AWS (``toolkit.local.motoserver``, ``toolkit.local.classicpatches`` for Classic ELBs), AWS's rules moto skips
(``toolkit.local.awsrules``), IAM enforced (``toolkit.local.auth``), two
calls moto lacks (``toolkit.local.iamsim``), the live stack's instances and
health (``motoserver._go_live``) and one lock over the state the live stack
shares with moto's request threads (``toolkit.local.motostate``). Each of
those functions changes moto only through ``replace``, which refuses a moto
attribute ``PATCHES`` does not list, so this list is the whole of it.

Each ``Patch`` says which moto attributes it replaces (or adds, where moto
has no such call), with the parameters of moto's own function it relies on,
what it changes and why, and the tests that prove its behaviour through a
running server. ``tests/unit/local/test_motopatches.py`` fails when moto
moves under a patch (an attribute gone, renamed or given other parameters,
or a call moto now has itself) or when a patch is made outside this list;
the tests named by each patch fail when its behaviour goes. ``MOTO_CHECKED``
is the release all of this was checked against, the one pyproject pins
(``tests/unit/local/test_moto_pin.py``): a new moto is taken on purpose, by
running those tests against it and updating what moved.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any

MOTO_CHECKED = "5.2.6"
ADDED = None  # a target's parameters when moto has no such attribute (the patch adds it)
SETTING = ("<a value, not a function>",)  # a target's "parameters" when it is a setting


@dataclass(frozen=True)
class Patch:
    """One change to moto: the function that makes it, the attributes it replaces, what and why, its proof."""

    installer: str  # "toolkit.local.<module>:<function>"
    targets: dict[
        str, tuple[str, ...] | None
    ]  # "moto.<module>:<Class>.<attr>" -> its parameter names, or ADDED, or SETTING
    what: str
    why: str
    proof: tuple[str, ...]  # tests ("path::name") that fail when the behaviour goes
    live: bool = False  # made only by the live stack (motoserver --live)


M, AW, AU = "toolkit.local.motoserver", "toolkit.local.awsrules", "toolkit.local.auth"
CP = "toolkit.local.classicpatches"
RUN_INSTANCES = {
    "moto.ec2.models.instances:InstanceBackend.run_instances": (
        "self",
        "image_id",
        "count",
        "user_data",
        "security_group_names",
        "kwargs",
    )
}
ACTION = ("self",)  # a moto response method: it reads the request from self
LIVE_TESTS = "tests/integration/local/test_live.py"
# moto's SSM put_parameter, which two patches wrap (its parameters as moto 5.2.6 names them)
SSM_PUT_PARAMETER = (
    "self",
    "name",
    "description",
    "value",
    "parameter_type",
    "allowed_pattern",
    "keyid",
    "overwrite",
    "tags",
    "data_type",
    "tier",
    "policies",
)

PATCHES: tuple[Patch, ...] = (
    Patch(
        f"{M}:_moto_modules_listed_once",
        {"moto.backends:list_of_moto_modules": ()},
        "the server lists moto's package folder once, at start",
        "moto's dispatcher listed it (a stat of each of ~200 entries) at every request: about a tenth of the server's CPU",
        ("tests/unit/local/test_motopatches.py::test_the_server_lists_motos_folder_once",),
    ),
    Patch(
        f"{M}:_requests_without_rescans",
        {
            "moto.ec2.models.instances:InstanceBackend.get_instance_by_id": ("self", "instance_id"),
            "moto.core.responses:method_names_from_class": ("clazz",),
        },
        "an instance is found without copying every reservation; a response class's methods are listed once",
        "each target health answer copied every reservation ever made (a tenth of the release tests' server CPU, "
        "growing with the server's age), and each request listed its class's methods with inspect",
        ("tests/unit/local/test_motopatches.py::test_an_instance_is_found_without_copies_and_methods_listed_once",),
    ),
    Patch(
        f"{M}:_atomic_dynamodb_requests",
        {"moto.dynamodb.responses:DynamoHandler.call_action": ACTION},
        "the server answers one DynamoDB request at a time",
        "DynamoDB's writes and their conditions are atomic; moto's threads are not: a GetItem saw an UpdateItem's "
        "item before its attribute, and two conditional PutItems of one new key could both succeed",
        ("tests/unit/local/test_motopatches.py::test_a_dynamodb_request_is_answered_under_the_lock",),
    ),
    Patch(
        f"{M}:_zones_balanced",
        {
            "moto.autoscaling.models:FakeAutoScalingGroup.replace_autoscaling_group_instances": (
                "self",
                "count_needed",
                "propagated_tags",
            ),
            "moto.autoscaling.models:FakeAutoScalingGroup.set_desired_capacity": ("self", "new_capacity"),
        },
        "a group launches each instance in the zone with the fewest, and scales in by AWS's default termination "
        "policy (the fullest zone first, then another template's or the oldest version's, then the next billing hour)",
        "moto launches every instance in the group's first subnet and ends the first it holds: one zone held them all",
        (
            "tests/unit/local/test_zones.py",
            "tests/integration/local/test_motopatches.py::test_a_group_over_two_zones_launches_and_scales_in_balanced",
        ),
    ),
    Patch(
        f"{M}:_ebs_backed_amis",
        {
            "moto.ec2.models.amis:Ami.__init__": (
                "self",
                "ec2_backend",
                "ami_id",
                "instance",
                "source_ami",
                "name",
                "description",
                "owner_id",
                "owner_alias",
                "public",
                "virtualization_type",
                "architecture",
                "state",
                "creation_date",
                "platform",
                "image_type",
                "image_location",
                "hypervisor",
                "root_device_type",
                "root_device_name",
                "sriov",
                "region_name",
                "snapshot_description",
                "product_codes",
                "boot_mode",
                "tags",
            )
        },
        "RegisterImage and CreateImage make EBS-backed AMIs (root_device_type defaults to ebs)",
        "moto calls them standard, which Packer refuses as the source of a layered bake",
        ("tests/integration/local/test_motopatches.py::test_images_are_ebs_backed",),
    ),
    Patch(
        f"{M}:_idempotent_launch_template_versions",
        {"moto.ec2.responses.launch_templates:LaunchTemplates.create_launch_template_version": ACTION},
        "CreateLaunchTemplateVersion returns the version a ClientToken already made",
        "botocore sends one token per call and repeats it on retries: moto made a duplicate version",
        (
            "tests/integration/local/test_motopatches.py::test_a_launch_template_version_retried_with_its_token_is_made_once",
        ),
    ),
    Patch(
        f"{M}:_user_data_in_launch_template_versions",
        {"moto.ec2.models.launch_templates:LaunchTemplate.create_version": ("self", "data", "description")},
        "a new launch template version's UserData is parsed as CreateLaunchTemplate's is",
        "moto stores it unparsed and fails to launch an instance from the version",
        (
            "tests/integration/local/test_motopatches.py::test_user_data_of_a_new_launch_template_version_reaches_its_instances",
        ),
    ),
    Patch(
        f"{M}:_exact_dimensions_in_statistics",
        {
            "moto.cloudwatch.models:CloudWatchBackend.get_all_metrics": ("self",),
            "moto.cloudwatch.models:CloudWatchBackend.get_metric_statistics": (
                "self",
                "namespace",
                "metric_name",
                "start_time",
                "end_time",
                "period",
                "stats",
                "dimensions",
                "unit",
            ),
        },
        "GetMetricStatistics reads the metric with exactly the dimensions asked for",
        "moto matches metrics with more dimensions too, adding an ALB's per-target-group datapoints into its own",
        ("tests/integration/local/test_motopatches.py::test_statistics_read_exactly_the_dimensions_asked_for",),
    ),
    Patch(
        f"{M}:_cloudwatch_logs_as_aws",
        {
            "moto.logs.models:LogsBackend.put_log_events": ("self", "log_group_name", "log_stream_name", "log_events"),
            "moto.logs.responses:LogsResponse.filter_log_events": ACTION,
        },
        "PutLogEvents refuses a batch over AWS's limits; FilterLogEvents honours logStreamNamePrefix; both under one lock",
        "moto takes any batch, ignores the prefix, and counts event ids in an unlocked class counter",
        (
            "tests/integration/local/test_motopatches.py::test_log_batches_over_aws_limits_are_refused_and_prefixes_filter",
            "tests/integration/local/test_logs_live.py",
        ),
    ),
    Patch(
        f"{M}:_scaling_names_per_group",
        {
            "moto.autoscaling.models:AutoScalingBackend.put_scheduled_update_group_action": (
                "self",
                "name",
                "desired_capacity",
                "max_size",
                "min_size",
                "scheduled_action_name",
                "start_time",
                "end_time",
                "recurrence",
                "timezone",
            ),
            "moto.autoscaling.models:AutoScalingBackend.delete_scheduled_action": (
                "self",
                "auto_scaling_group_name",
                "scheduled_action_name",
            ),
            "moto.autoscaling.models:AutoScalingBackend.put_scaling_policy": (
                "self",
                "name",
                "policy_type",
                "metric_aggregation_type",
                "adjustment_type",
                "as_name",
                "min_adjustment_magnitude",
                "scaling_adjustment",
                "cooldown",
                "target_tracking_config",
                "step_adjustments",
                "estimated_instance_warmup",
                "predictive_scaling_configuration",
            ),
            "moto.autoscaling.models:AutoScalingBackend.delete_policy": ("self", "group_name"),
            "moto.autoscaling.models:AutoScalingBackend.execute_policy": ("self", "group_name"),
            "moto.autoscaling.responses:AutoScalingResponse.delete_policy": ACTION,
        },
        "scheduled action and scaling policy names are per Auto Scaling group",
        "moto keys both by name alone: the same name on a second group replaced the first group's",
        (
            "tests/integration/local/test_motopatches.py::test_scheduled_action_and_policy_names_are_per_group",
            "tests/integration/release/test_scaling.py::test_setup_puts_scaling_on_the_live_slot_and_a_release_moves_it",
        ),
    ),
    Patch(
        f"{M}:_standard_tier_value_limit",
        {"moto.ssm.models:SimpleSystemManagerBackend.put_parameter": SSM_PUT_PARAMETER},
        "PutParameter refuses a standard-tier value over 4096 characters",
        "moto stores any size, so a config var too big for SSM passed here",
        ("tests/integration/local/test_motopatches.py::test_a_standard_parameter_over_4096_characters_is_refused",),
    ),
    Patch(
        f"{M}:_custom_network_ids",
        {
            "moto.ec2.models.subnets:random_subnet_id": (),
            "moto.ec2.models.security_groups:random_security_group_id": (),
            "moto.ec2.models.subnets:SubnetBackend.create_subnet": (
                "self",
                "vpc_id",
                "cidr_block",
                "ipv6_cidr_block",
                "availability_zone",
                "availability_zone_id",
                "ipv6_native",
                "tags",
            ),
            "moto.ec2.models.security_groups:SecurityGroupBackend.create_security_group": (
                "self",
                "name",
                "description",
                "vpc_id",
                "tags",
                "force",
                "is_default",
            ),
        },
        "CreateSubnet and CreateSecurityGroup take the id a _custom_id_ tag names",
        "moto's other resources honour the tag, EC2's do not; the local inventory names the seeded subnets and group by id",
        (
            "tests/unit/local/test_netfacts.py",
            "tests/integration/local/test_motopatches.py::test_a_custom_id_tag_names_a_subnet_and_a_security_group",
        ),
    ),
    Patch(
        f"{M}:_pending_until_booted",
        RUN_INSTANCES,
        "RunInstances (an Auto Scaling group's launches too) of a locally bootable AMI starts pending",
        "the live stack boots the instance and sets it running once its systemd is up; moto starts every instance running",
        (LIVE_TESTS,),
        live=True,
    ),
    Patch(
        f"{M}:_copies_boot_as_their_source",
        {
            "moto.ec2.models.amis:AmiBackend.copy_image": (
                "self",
                "source_image_id",
                "source_region",
                "name",
                "description",
            )
        },
        "CopyImage of an AMI with a local image gives the copy the same layers in the image store",
        "an AMI's contents are its layers on this machine: without them the live stack would not boot the copy",
        ("tests/unit/local/test_image_copies.py::test_a_copy_boots_from_its_sources_layers",),
        live=True,
    ),
    Patch(
        f"{M}:_register_pending_targets",
        {"moto.elbv2.models:FakeTargetGroup.register": ("self", "targets")},
        "RegisterTargets accepts a pending instance",
        "AWS does (an Auto Scaling group registers its launches at once); moto refuses anything not running",
        (LIVE_TESTS,),
        live=True,
    ),
    Patch(
        f"{M}:_live_target_health",
        {
            "moto.elbv2.models:FakeTargetGroup.health_for": ("self", "target", "ec2_backend"),
            "moto.elbv2.models:ELBv2Backend.describe_target_health": ("self", "target_group_arn", "targets"),
        },
        "DescribeTargetHealth answers from HAProxy's checks for the instances the live stack boots, draining ones included",
        "the live stack's load balancer is HAProxy: its checks are the targets' health",
        (LIVE_TESTS, "tests/integration/local/test_release_live.py"),
        live=True,
    ),
    Patch(
        f"{M}:_deregistered_targets_drain_at_once",
        {
            "moto.elbv2.models:FakeTargetGroup.deregister": ("self", "targets"),
            "moto.elbv2.models:FakeTargetGroup.deregister_terminated_instances": ("self", "instance_ids"),
        },
        "a target deregistered (or of an instance terminated) is drained in HAProxy and draining before moto answers",
        "AWS's load balancer sends a deregistered target no new request from the moment DeregisterTargets answers; "
        "the controller's loop would act a poll later, and a caller that waited for the target to leave saw it serve",
        (f"{LIVE_TESTS}::test_a_deregistered_target_is_draining_and_gets_no_request_once_deregister_targets_answers",),
        live=True,
    ),
    Patch(
        f"{AU}:_iam_action_prefixes",
        {
            "moto.iam.access_control:IAMRequestBase.__init__": (
                "self",
                "account_id",
                "method",
                "path",
                "data",
                "body",
                "headers",
                "action",
            )
        },
        "the action moto authorizes is named as IAM names it: IAM's prefix (monitoring:* is cloudwatch:*), and an S3 "
        "operation's IAM action (s3:ListObjectsV2 is s3:ListBucket)",
        "moto takes the prefix from the signing name and S3's action from the operation: it refused every CloudWatch "
        "call and every object listing a policy allows",
        ("tests/integration/test_iam.py", "tests/unit/local/test_auth.py"),
    ),
    Patch(
        f"{AU}:_unknown_resource_checks_action_only",
        {"moto.iam.access_control:IAMPolicyStatement._check_element_matches": ("self", "statement_element", "value")},
        "a request whose resource moto does not know is authorized on its action alone",
        "moto checks it against '*', which no scoped statement matches: least-privilege policies were refused everything",
        ("tests/integration/test_iam.py",),
    ),
    Patch(
        f"{AU}:_access_denied_in_the_protocol",
        {"moto.iam.access_control:IAMRequest._raise_access_denied": ("self",)},
        "AccessDenied comes in the request's protocol (JSON, CBOR, EC2's UnauthorizedOperation)",
        "moto answers XML to all, which JSON clients read as a bare 403",
        ("tests/integration/test_iam.py", "tests/unit/local/test_auth.py"),
    ),
    Patch(
        f"{AU}:_instance_profiles_from_launch_templates",
        RUN_INSTANCES,
        "an instance launched from a launch template has the template's instance profile",
        "moto associates a profile only when RunInstances names one, so the metadata service had no role",
        ("tests/integration/local/test_config_unit_boot.py", LIVE_TESTS),
    ),
    Patch(
        f"{AU}:enforce",
        {"moto.settings:INITIAL_NO_AUTH_ACTION_COUNT": SETTING},
        "authorization from the first request (moto's documented setting, set before the server starts)",
        "every request is signed by a known principal and allowed by its policies, as on AWS",
        ("tests/integration/test_iam.py",),
    ),
    Patch(
        f"{AW}:fully_formed_launch_templates",
        {
            "moto.autoscaling.responses:AutoScalingResponse.create_auto_scaling_group": ACTION,
            "moto.autoscaling.responses:AutoScalingResponse.update_auto_scaling_group": ACTION,
            "moto.ec2.responses.instances:InstanceResponse.run_instances": ACTION,
        },
        "a group or RunInstances on a launch template version without ImageId is refused",
        "see the function's docstring (AWS's rule, moto launches with no AMI)",
        (
            "tests/integration/local/test_awsrules.py::test_a_template_without_an_ami_is_refused_by_auto_scaling_and_run_instances",
        ),
    ),
    Patch(
        f"{AW}:settling_launch_template_versions",
        {
            "moto.ec2.models.launch_templates:LaunchTemplateVersion.__init__": (
                "self",
                "template",
                "number",
                "data",
                "description",
            ),
            "moto.autoscaling.responses:AutoScalingResponse.create_auto_scaling_group": ACTION,
            "moto.autoscaling.responses:AutoScalingResponse.update_auto_scaling_group": ACTION,
            "moto.ec2.responses.instances:InstanceResponse.run_instances": ACTION,
        },
        "a launch template version made a moment ago is refused at its first use",
        "see the function's docstring (EC2's eventual consistency)",
        (
            "tests/integration/local/test_awsrules.py::test_a_new_launch_template_version_is_refused_at_its_first_use_then_settles",
        ),
    ),
    Patch(
        f"{AW}:settling_security_groups",
        {
            "moto.ec2.models.security_groups:SecurityGroupBackend.create_security_group": (
                "self",
                "name",
                "description",
                "vpc_id",
                "tags",
                "force",
                "is_default",
            ),
            "moto.ec2.responses.security_groups:SecurityGroups.describe_security_groups": ACTION,
            "moto.ec2.responses.security_groups:SecurityGroups.authorize_security_group_ingress": ACTION,
            "moto.ec2.responses.instances:InstanceResponse.run_instances": ACTION,
            "moto.ec2.responses.launch_templates:LaunchTemplates.create_launch_template": ACTION,
            "moto.ec2.responses.launch_templates:LaunchTemplates.create_launch_template_version": ACTION,
        },
        "a security group made a moment ago is InvalidGroup.NotFound at its first use",
        "see the function's docstring (EC2's eventual consistency)",
        ("tests/integration/local/test_awsrules.py::test_a_new_security_group_is_not_found_at_its_first_use",),
    ),
    Patch(
        f"{AW}:settling_deregistered_image_snapshots",
        {
            "moto.ec2.models.amis:AmiBackend.deregister_image": ("self", "ami_id"),
            "moto.ec2.responses.elastic_block_store:ElasticBlockStore.delete_snapshot": ACTION,
        },
        "a snapshot of an image deregistered a moment ago is InvalidSnapshot.InUse at its first DeleteSnapshot",
        "see the function's docstring (EC2's eventual consistency)",
        (
            "tests/integration/local/test_awsrules.py::test_a_deregistered_images_snapshot_is_in_use_at_its_first_delete",
        ),
    ),
    Patch(
        f"{AW}:image_copies_as_aws",
        {
            "moto.ec2.responses.amis:AmisResponse.copy_image": ACTION,
            "moto.ec2.models.amis:AmiBackend.describe_images": ("self", "ami_ids", "filters", "exec_users", "owners"),
        },
        "CopyImage refuses a name in use, tags the copy and its snapshots (TagSpecifications), and the copy is pending at first",
        "see the function's docstring (moto reuses names, drops the tags, and copies at once)",
        (
            "tests/integration/local/test_awsrules.py::test_an_image_copy_is_named_once_tagged_at_once_and_pending_at_first",
        ),
    ),
    Patch(
        f"{AW}:sns_subject_rules",
        {"moto.sns.responses:SNSResponse.publish": ACTION},
        "Publish refuses a Subject AWS refuses",
        "see the function's docstring (moto checks the length only)",
        ("tests/integration/local/test_awsrules.py::test_sns_subjects_as_aws_takes_them",),
    ),
    Patch(
        f"{AW}:ssm_type_changes_refused",
        {"moto.ssm.models:SimpleSystemManagerBackend.put_parameter": SSM_PUT_PARAMETER},
        "PutParameter with Overwrite refuses to change a parameter's type",
        "see the function's docstring (moto changes it)",
        ("tests/integration/local/test_awsrules.py::test_ssm_refuses_to_change_a_parameters_type",),
    ),
    Patch(
        f"{AW}:listener_rules_checked",
        {
            "moto.elbv2.responses:ELBV2Response.create_rule": ACTION,
            "moto.elbv2.responses:ELBV2Response.modify_rule": ACTION,
            "moto.elbv2.responses:ELBV2Response.set_rule_priorities": ACTION,
        },
        "a listener rule's priority is 1-50000; its host-header and path-pattern values have AWS's characters and form, "
        "at most 5 values and 5 wildcards a rule",
        "moto takes any priority and checks a value's length only; review apps make rules (toolkit.review)",
        (
            "tests/unit/local/test_awsrules.py::test_listener_rules_as_aws_refuses_them",
            "tests/integration/local/test_awsrules.py::test_listener_rules_are_refused_as_aws_refuses_them",
        ),
    ),
    Patch(
        f"{AW}:targets_checked_before_healthy",
        {
            "moto.elbv2.models:ELBv2Backend.register_targets": ("self", "target_group_arn", "instances"),
            "moto.elbv2.models:FakeTargetGroup.health_for": ("self", "target", "ec2_backend"),
        },
        "a registered target is initial until its checks could pass; unused once its instance is terminated",
        "see the function's docstring (moto calls every registered target healthy at once)",
        (
            "tests/integration/local/test_awsrules.py::test_a_registered_target_is_initial_until_its_checks_pass_and_not_healthy_once_terminated",
            "tests/integration/local/test_awsrules.py::test_a_target_whose_instance_an_auto_scaling_group_terminated_is_not_healthy",
            "tests/integration/release/test_scaling.py::test_an_instance_replaced_mid_release_is_initial_and_the_gate_rolls_back",
        ),
    ),
    Patch(
        f"{AW}:classic_load_balancers_checked",
        {
            "moto.elb.responses:ELBResponse.create_load_balancer": ACTION,
            "moto.elb.responses:ELBResponse.create_load_balancer_listeners": ACTION,
            "moto.elb.responses:ELBResponse.configure_health_check": ACTION,
            "moto.elb.responses:ELBResponse.modify_load_balancer_attributes": ACTION,
            "moto.elb.responses:ELBResponse.describe_load_balancer_attributes": ACTION,
            "moto.elb.responses:ELBResponse.register_instances_with_load_balancer": ACTION,
            "moto.elb.responses:ELBResponse.deregister_instances_from_load_balancer": ACTION,
            "moto.autoscaling.responses:AutoScalingResponse.create_auto_scaling_group": ACTION,
            "moto.autoscaling.responses:AutoScalingResponse.attach_load_balancers": ACTION,
        },
        "Classic ELB names, listeners, health checks, draining timeouts, registered instances and the ELBs an Auto "
        "Scaling group names are refused as AWS refuses them",
        "see the function's docstring (moto takes them, or fails with an internal error)",
        (
            "tests/unit/local/test_classic.py::test_classic_rules_as_aws_refuses_them",
            "tests/integration/local/test_classic_rules.py::test_classic_calls_aws_refuses_are_refused",
        ),
    ),
    Patch(
        f"{CP}:attachments_as_aws",
        {
            "moto.autoscaling.models:AutoScalingBackend.update_attached_elbs": ("self", "group_name"),
            "moto.autoscaling.models:AutoScalingBackend.attach_load_balancers": (
                "self",
                "group_name",
                "load_balancer_names",
            ),
            "moto.autoscaling.models:AutoScalingBackend.detach_load_balancers": (
                "self",
                "group_name",
                "load_balancer_names",
            ),
            "moto.autoscaling.responses:AutoScalingResponse.describe_load_balancers": ACTION,
        },
        "a group registers and deregisters only its own instances with a Classic ELB; a detached ELB is Removing "
        "until they are deregistered (drained), then gone; an attached one Adding, Added, then InService",
        "moto deregistered every other group's instances from a shared ELB (attaching a second group emptied it), "
        "dropped a detached ELB at once and answered Added for all",
        (
            "tests/integration/local/test_classic_rules.py::test_two_groups_share_a_classic_elb_and_a_detached_one_is_removing_then_gone",
            "tests/integration/local/test_classic_live.py",
        ),
    ),
    Patch(
        f"{CP}:instance_health_as_aws",
        {
            "moto.elb.models:ELBBackend.register_instances": (
                "self",
                "load_balancer_name",
                "instance_ids",
                "from_autoscaling",
            ),
            "moto.elb.responses:ELBResponse.describe_instance_health": ACTION,
            "moto.elb.responses:ELBResponse.register_instances_with_load_balancer": ACTION,
            "moto.elb.responses:ELBResponse.deregister_instances_from_load_balancer": ACTION,
        },
        "DescribeInstanceHealth says AWS's ReasonCode and Description, leaves terminated instances out, and a new "
        "instance is OutOfService until its checks could pass (the live stack: HAProxy's checks); an instance is "
        "registered once, and (de)registering answers the instances registered",
        "moto answers InService at once with N/A for reason and description, lists an instance again at each "
        "registration, and answers (de)registration with a nested list clients read as none",
        (
            "tests/integration/local/test_classic_rules.py::test_a_registered_instance_is_out_of_service_until_its_checks_could_pass",
            "tests/integration/local/test_classic_live.py",
        ),
    ),
    Patch(
        "toolkit.local.iamsim:install",
        {
            "moto.iam.responses:IamResponse.simulate_principal_policy": ADDED,
            "moto.ec2.responses.elastic_block_store:ElasticBlockStore.get_ebs_default_kms_key_id": ADDED,
        },
        "adds iam:SimulatePrincipalPolicy and ec2:GetEbsDefaultKmsKeyId",
        "invoke doctor calls both; moto has neither",
        ("tests/unit/doctor/test_iamsim.py::test_simulate_principal_policy_through_boto",),
    ),
    Patch(
        "toolkit.local.motostate:one_request_at_a_time",
        {"moto.moto_server.werkzeug_app:DomainDispatcherApplication.__call__": ("self", "environ", "start_response")},
        "a request to a service whose state the live stack shares runs under motostate.LOCK",
        "moto has no lock of its own over its backends; the live stack's threads read and change them under the same one",
        ("tests/unit/local/test_motostate.py",),
        live=True,
    ),
)

ORIGINALS: dict[str, Any] = {}  # target -> moto's own attribute, before any patch replaced it
_ABSENT = object()


def targets() -> dict[str, tuple[str, ...] | None]:
    """Every moto attribute some patch replaces or adds, with moto's parameters."""
    return {target: params for patch in PATCHES for target, params in patch.targets.items()}


def target_of(owner: Any, attr: str) -> str:
    """``"module:Class.attr"`` (or ``"module:attr"`` for a module) of ``owner.attr``."""
    if isinstance(owner, types.ModuleType):
        return f"{owner.__name__}:{attr}"
    return f"{owner.__module__}:{owner.__qualname__}.{attr}"


def replace(owner: Any, attr: str, new: Any) -> None:
    """Set moto's ``owner.attr`` (a class or module) to ``new``; LookupError unless ``PATCHES`` lists it."""
    target = target_of(owner, attr)
    if target not in targets():
        raise LookupError(
            f"moto patch {target} is not in toolkit.local.motopatches.PATCHES: add it, with why and a test"
        )
    ORIGINALS.setdefault(target, getattr(owner, attr, _ABSENT))
    setattr(owner, attr, new)


def original(target: str) -> Any:
    """moto's own attribute ``target`` (None when it has none), whether or not a patch replaced it in this process."""
    import importlib

    if target in ORIGINALS:
        found = ORIGINALS[target]
        return None if found is _ABSENT else found
    module, _, path = target.partition(":")
    found = importlib.import_module(module)
    for part in path.split("."):
        found = getattr(found, part, None)
    return found
