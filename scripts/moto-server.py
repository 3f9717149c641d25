#!/usr/bin/env python3
"""moto_server, with one fix to moto's CloudFormation: an
AWS::ElasticLoadBalancingV2::LoadBalancer's `Type` is honoured (moto 5.2 creates every
one as an application load balancer, so the TCP listeners of a network load balancer
are refused with "Listener protocol 'TCP' must be one of 'HTTP, HTTPS'"). The stack
uses an internal network load balancer when there is no Cloud Map (service-discovery=false,
which is how it deploys to moto). Arguments are moto_server's (-H host -p port)."""
import sys

from moto.elbv2.models import FakeLoadBalancer, elbv2_backends
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

if __name__ == "__main__":
    sys.exit(main())
