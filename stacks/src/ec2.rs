//! Networking constructs: a VPC that builds its subnets, gateways and routes, and
//! security groups whose rules are added as typed connections.

use serde_json::{Value, json};

use crate::core::{Expr, Handle, LogicalId, Scope};
use crate::resources as res;

fn name_tag(value: &str) -> Value {
    json!([{ "Key": "Name", "Value": value }])
}

/// Where one subnet goes: its VPC, block and zone.
struct SubnetPlace<'a> {
    vpc: &'a LogicalId,
    cidr: String,
    az: u8,
}

struct BuiltSubnet {
    subnet: Handle<res::Subnet>,
    route: Handle<res::Route>,
}

impl SubnetPlace<'_> {
    /// The subnet, its route table and association, and a default route to `target`
    /// (`{"GatewayId": ..}` or `{"NatGatewayId": ..}`).
    fn build(self, scope: &mut Scope<'_>, target: Value, public: bool) -> BuiltSubnet {
        let path = scope.path();
        let subnet = scope.add::<res::Subnet>(
            "Subnet",
            json!({ "VpcId": self.vpc.r#ref(), "CidrBlock": self.cidr, "AvailabilityZone": Expr::Az(self.az.into()),
                    "MapPublicIpOnLaunch": public, "Tags": name_tag(&path) }),
        );
        let table =
            scope.add::<res::RouteTable>("RouteTable", json!({ "VpcId": self.vpc.r#ref(), "Tags": name_tag(&path) }));
        scope.add::<res::SubnetRouteTableAssociation>(
            "RouteTableAssociation",
            json!({ "RouteTableId": table.r#ref(), "SubnetId": subnet.r#ref() }),
        );
        let mut route = json!({ "RouteTableId": table.r#ref(), "DestinationCidrBlock": "0.0.0.0/0" });
        if let (Some(route), Value::Object(target)) = (route.as_object_mut(), target) {
            route.extend(target);
        }
        let route = scope.add::<res::Route>("DefaultRoute", route);
        BuiltSubnet { subnet, route }
    }
}

/// A VPC across `azs` availability zones, each with a public subnet (internet
/// gateway route) and a private subnet (route through that zone's NAT gateway).
pub struct Vpc {
    pub id: Handle<res::Vpc>,
    pub public_subnets: Vec<Handle<res::Subnet>>,
    pub private_subnets: Vec<Handle<res::Subnet>>,
}

/// Carves `/18` blocks out of a `/16`: index 0..4.
fn subnet_cidr(vpc_cidr: &str, index: u8) -> String {
    let prefix: Vec<&str> = vpc_cidr.split('.').take(2).collect();
    format!("{}.{}.{}.0/18", prefix.first().unwrap_or(&"10"), prefix.get(1).unwrap_or(&"0"), u16::from(index) * 64)
}

impl Vpc {
    /// `cidr` must be a `/16`; two zones use its four `/18` blocks.
    pub fn new(scope: &mut Scope<'_>, id: &str, cidr: &str, azs: u8) -> Self {
        let mut scope = scope.child(id);
        let path = scope.path();
        let vpc = scope.add::<res::Vpc>(
            "Resource",
            json!({ "CidrBlock": cidr, "EnableDnsHostnames": true, "EnableDnsSupport": true,
                    "InstanceTenancy": "default", "Tags": name_tag(&path) }),
        );
        let igw = scope.add::<res::InternetGateway>("IGW", json!({ "Tags": name_tag(&path) }));
        let attachment = scope.add::<res::VpcGatewayAttachment>(
            "VPCGW",
            json!({ "VpcId": vpc.r#ref(), "InternetGatewayId": igw.r#ref() }),
        );
        let mut public_subnets = Vec::new();
        let mut private_subnets = Vec::new();
        for az in 0..azs {
            let n = az + 1;
            let mut public = scope.child(&format!("PublicSubnet{n}"));
            let place = SubnetPlace { vpc: &vpc, cidr: subnet_cidr(cidr, az), az };
            let subnet = place.build(&mut public, json!({ "GatewayId": igw.r#ref() }), true);
            public.depend(&subnet.route, &attachment);
            let public_path = public.path();
            let eip = public.add::<res::Eip>("EIP", json!({ "Domain": "vpc", "Tags": name_tag(&public_path) }));
            let nat = public.add::<res::NatGateway>(
                "NATGateway",
                json!({ "AllocationId": eip.attr(res::EipAttr::AllocationId), "SubnetId": subnet.subnet.r#ref(), "Tags": name_tag(&public_path) }),
            );
            public.depend(&nat, &attachment);
            public_subnets.push(subnet.subnet);

            let mut private = scope.child(&format!("PrivateSubnet{n}"));
            let place = SubnetPlace { vpc: &vpc, cidr: subnet_cidr(cidr, az + azs), az };
            private_subnets.push(place.build(&mut private, json!({ "NatGatewayId": nat.r#ref() }), false).subnet);
        }
        Self { id: vpc, public_subnets, private_subnets }
    }

    pub fn public_subnet_refs(&self) -> Vec<Expr> {
        self.public_subnets.iter().map(|s| s.r#ref()).collect()
    }

    pub fn private_subnet_refs(&self) -> Vec<Expr> {
        self.private_subnets.iter().map(|s| s.r#ref()).collect()
    }
}

/// What a security group lets out besides its explicit connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Egress {
    /// Nothing (CDK's "disallow all" placeholder rule, since an empty list means all).
    None,
    /// HTTPS to anywhere: AWS APIs (ECR, Secrets Manager, CloudWatch Logs) via the NAT.
    AwsApis,
}

/// A security group. Rules between groups are added with [`SecurityGroup::allow_from`],
/// which records both sides (ingress on the target, egress on the source).
#[derive(Debug, Clone)]
pub struct SecurityGroup {
    pub id: Handle<res::SecurityGroup>,
    pub name: String,
}

impl SecurityGroup {
    pub fn new(scope: &mut Scope<'_>, id: &str, vpc: &Vpc, description: &str, egress: Egress) -> Self {
        let egress = match egress {
            Egress::None => json!([{ "CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic",
                                     "IpProtocol": "icmp", "FromPort": 252, "ToPort": 86 }]),
            Egress::AwsApis => json!([{ "CidrIp": "0.0.0.0/0", "Description": "AWS APIs over HTTPS",
                                        "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443 }]),
        };
        let group = scope.add::<res::SecurityGroup>(
            id,
            json!({ "GroupDescription": description, "VpcId": vpc.id.r#ref(), "SecurityGroupEgress": egress }),
        );
        Self { id: group, name: id.to_string() }
    }

    pub fn group_id(&self) -> Expr {
        self.id.attr(res::SecurityGroupAttr::GroupId)
    }

    /// Lets `source` reach this group on TCP `port`.
    pub fn allow_from(&self, scope: &mut Scope<'_>, source: &SecurityGroup, port: u16, description: &str) {
        scope.add::<res::SecurityGroupIngress>(
            &format!("{}From{}Port{port}", self.name, source.name),
            json!({ "GroupId": self.group_id(), "SourceSecurityGroupId": source.group_id(), "IpProtocol": "tcp",
                    "FromPort": port, "ToPort": port, "Description": description }),
        );
        scope.add::<res::SecurityGroupEgress>(
            &format!("{}To{}Port{port}", source.name, self.name),
            json!({ "GroupId": source.group_id(), "DestinationSecurityGroupId": self.group_id(), "IpProtocol": "tcp",
                    "FromPort": port, "ToPort": port, "Description": description }),
        );
    }

    /// Lets any IPv4 address reach this group on TCP `port` (internet-facing ALB).
    pub fn allow_from_anywhere(&self, scope: &mut Scope<'_>, port: u16, description: &str) {
        scope.add::<res::SecurityGroupIngress>(
            &format!("{}FromAnywherePort{port}", self.name),
            json!({ "GroupId": self.group_id(), "CidrIp": "0.0.0.0/0", "IpProtocol": "tcp",
                    "FromPort": port, "ToPort": port, "Description": description }),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Stack;

    #[test]
    fn a_two_zone_vpc_builds_its_subnets_gateways_and_routes() {
        let mut stack = Stack::new("S", "t");
        let vpc = Vpc::new(&mut stack.scope(), "Vpc", "10.0.0.0/16", 2);
        assert_eq!((vpc.public_subnets.len(), vpc.private_subnets.len()), (2, 2));
        let count = |t: &str| stack.resources.values().filter(|r| r.resource_type == t).count();
        assert_eq!(count("AWS::EC2::NatGateway"), 2);
        assert_eq!(count("AWS::EC2::Route"), 4);
        assert_eq!(count("AWS::EC2::InternetGateway"), 1);
        let cidrs: Vec<String> = stack
            .resources
            .values()
            .filter(|r| r.resource_type == "AWS::EC2::Subnet")
            .map(|r| r.properties["CidrBlock"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(cidrs.len(), 4);
        let unique: std::collections::BTreeSet<_> = cidrs.iter().collect();
        assert_eq!(unique.len(), 4, "no overlapping subnets: {cidrs:?}");
        stack.synth().expect("valid");
    }

    #[test]
    fn a_connection_opens_exactly_one_port_both_ways() {
        let mut stack = Stack::new("S", "t");
        let mut scope = stack.scope();
        let vpc = Vpc::new(&mut scope, "Vpc", "10.0.0.0/16", 2);
        let a = SecurityGroup::new(&mut scope, "A", &vpc, "a", Egress::None);
        let b = SecurityGroup::new(&mut scope, "B", &vpc, "b", Egress::None);
        b.allow_from(&mut scope, &a, 5432, "a to b");
        let rules: Vec<_> = stack
            .resources
            .values()
            .filter(|r| {
                r.resource_type.starts_with("AWS::EC2::SecurityGroupIngress") || r.resource_type.ends_with("Egress")
            })
            .collect();
        assert_eq!(rules.len(), 2);
        assert!(rules.iter().all(|r| r.properties["FromPort"] == 5432 && r.properties["ToPort"] == 5432));
    }
}
