#!/usr/bin/env python3
"""moto_server, with two fixes to moto's CloudFormation:
- an AWS::ElasticLoadBalancingV2::LoadBalancer's `Type` is honoured (moto 5.2 creates
  every one as an application load balancer, so the TCP listeners of a network load
  balancer are refused with "Listener protocol 'TCP' must be one of 'HTTP, HTTPS'"). The
  stack uses an internal network load balancer when there is no Cloud Map
  (service-discovery=false, which is how it deploys to moto);
- `Fn::GetAtt` of a load balancer's `LoadBalancerFullName` and a target group's
  `TargetGroupFullName` (the CloudWatch dimensions the stack's alarms use) answer as
  AWS does, the ARN's resource part (moto 5.2 raises NotImplementedError for the first
  and has no attributes at all for the second, which fails CreateStack with a 500).
Arguments are moto_server's (-H host -p port)."""
import sys

from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup, elbv2_backends
from moto.server import main


def create_load_balancer(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    return elbv2_backends[account_id][region_name].create_load_balancer(
        resource_name,
        properties.get("SecurityGroups"),
        properties.get("Subnets"),
        scheme=properties.get("Scheme", "internet-facing"),
        loadbalancer_type=properties.get("Type"),
    )


FakeLoadBalancer.create_from_cloudformation_json = classmethod(create_load_balancer)

moto_load_balancer_attribute = FakeLoadBalancer.get_cfn_attribute


def load_balancer_attribute(self, attribute_name):
    # arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>
    if attribute_name == "LoadBalancerFullName":
        return self.arn.split(":loadbalancer/", 1)[1]
    return moto_load_balancer_attribute(self, attribute_name)


def target_group_attribute(self, attribute_name):
    # arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>
    if attribute_name == "TargetGroupFullName":
        return self.arn.rsplit(":", 1)[1]
    from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

    raise UnformattedGetAttTemplateException()


FakeLoadBalancer.get_cfn_attribute = load_balancer_attribute
FakeTargetGroup.get_cfn_attribute = target_group_attribute
FakeTargetGroup.has_cfn_attr = classmethod(lambda cls, attr: attr == "TargetGroupFullName")

if __name__ == "__main__":
    sys.exit(main())
