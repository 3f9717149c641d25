//! Networking constructs: a VPC that builds its subnets, gateways and routes, and
//! security groups whose rules are added as typed connections.

use crate::core::{Expr, Handle, LogicalId, Scope};
use crate::resources::{self as res, CidrEgress, Tag};

/// Where one subnet goes: its VPC, block and zone.
struct SubnetPlace<'a> {
    vpc: &'a LogicalId,
    cidr: String,
    az: u8,
}

/// Where a subnet's default route goes.
enum DefaultRoute<'a> {
    Internet(&'a Handle<res::InternetGateway>),
    Nat(&'a Handle<res::NatGateway>),
}

struct BuiltSubnet {
    subnet: Handle<res::Subnet>,
    route: Handle<res::Route>,
}

impl SubnetPlace<'_> {
    /// The subnet, its route table and association, and a default route to `target`.
    fn build(self, scope: &mut Scope<'_>, target: DefaultRoute, public: bool) -> BuiltSubnet {
        let path = scope.path();
        let subnet = scope.add(
            "Subnet",
            res::Subnet {
                vpc_id: self.vpc.r#ref(),
                cidr_block: self.cidr,
                availability_zone: Expr::Az(self.az.into()),
                map_public_ip_on_launch: public,
                tags: Tag::name(&path),
            },
        );
        let table = scope.add("RouteTable", res::RouteTable { vpc_id: self.vpc.r#ref(), tags: Tag::name(&path) });
        scope.add(
            "RouteTableAssociation",
            res::SubnetRouteTableAssociation { route_table_id: table.r#ref(), subnet_id: subnet.r#ref() },
        );
        let (gateway_id, nat_gateway_id) = match target {
            DefaultRoute::Internet(gateway) => (Some(gateway.r#ref()), None),
            DefaultRoute::Nat(nat) => (None, Some(nat.r#ref())),
        };
        let route = scope.add(
            "DefaultRoute",
            res::Route {
                route_table_id: table.r#ref(),
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id,
                nat_gateway_id,
            },
        );
        BuiltSubnet { subnet, route }
    }
}

/// A VPC across `azs` availability zones, each with a public subnet (internet
/// gateway route) and a private subnet (route through that zone's NAT gateway).
pub struct Vpc {
    pub id: Handle<res::Vpc>,
    pub public_subnets: Vec<Handle<res::Subnet>>,
    pub private_subnets: Vec<Handle<res::Subnet>>,
    /// The public subnets' address blocks (where the load balancer's nodes live).
    pub public_cidrs: Vec<String>,
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
        let vpc = scope.add(
            "Resource",
            res::Vpc {
                cidr_block: cidr.into(),
                enable_dns_hostnames: true,
                enable_dns_support: true,
                instance_tenancy: "default".into(),
                tags: Tag::name(&path),
            },
        );
        let igw = scope.add("IGW", res::InternetGateway { tags: Tag::name(&path) });
        let attachment =
            scope.add("VPCGW", res::VpcGatewayAttachment { vpc_id: vpc.r#ref(), internet_gateway_id: igw.r#ref() });
        let mut public_subnets = Vec::new();
        let mut private_subnets = Vec::new();
        let mut public_cidrs = Vec::new();
        for az in 0..azs {
            let n = az + 1;
            let mut public = scope.child(&format!("PublicSubnet{n}"));
            public_cidrs.push(subnet_cidr(cidr, az));
            let place = SubnetPlace { vpc: &vpc, cidr: subnet_cidr(cidr, az), az };
            let subnet = place.build(&mut public, DefaultRoute::Internet(&igw), true);
            public.depend(&subnet.route, &attachment);
            let public_path = public.path();
            let eip = public.add("EIP", res::Eip { domain: "vpc".into(), tags: Tag::name(&public_path) });
            let nat = public.add(
                "NATGateway",
                res::NatGateway {
                    allocation_id: eip.attr(res::EipAttr::AllocationId),
                    subnet_id: subnet.subnet.r#ref(),
                    tags: Tag::name(&public_path),
                },
            );
            public.depend(&nat, &attachment);
            public_subnets.push(subnet.subnet);

            let mut private = scope.child(&format!("PrivateSubnet{n}"));
            let place = SubnetPlace { vpc: &vpc, cidr: subnet_cidr(cidr, az + azs), az };
            private_subnets.push(place.build(&mut private, DefaultRoute::Nat(&nat), false).subnet);
        }
        Self { id: vpc, public_subnets, private_subnets, public_cidrs }
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
        let rule = |cidr: &str, description: &str, protocol: &str, from_port: i32, to_port: i32| CidrEgress {
            cidr_ip: cidr.into(),
            description: description.into(),
            ip_protocol: protocol.into(),
            from_port,
            to_port,
        };
        let egress = match egress {
            Egress::None => rule("255.255.255.255/32", "Disallow all traffic", "icmp", 252, 86),
            Egress::AwsApis => rule("0.0.0.0/0", "AWS APIs over HTTPS", "tcp", 443, 443),
        };
        let group = scope.add(
            id,
            res::SecurityGroup {
                group_description: description.into(),
                vpc_id: vpc.id.r#ref(),
                security_group_egress: vec![egress],
            },
        );
        Self { id: group, name: id.to_string() }
    }

    pub fn group_id(&self) -> Expr {
        self.id.attr(res::SecurityGroupAttr::GroupId)
    }

    /// Lets `source` reach this group on TCP `port`.
    pub fn allow_from(&self, scope: &mut Scope<'_>, source: &SecurityGroup, port: u16, description: &str) {
        scope.add(
            &format!("{}From{}Port{port}", self.name, source.name),
            res::SecurityGroupIngress {
                group_id: self.group_id(),
                source_security_group_id: Some(source.group_id()),
                cidr_ip: None,
                ip_protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                description: description.into(),
            },
        );
        scope.add(
            &format!("{}To{}Port{port}", source.name, self.name),
            res::SecurityGroupEgress {
                group_id: source.group_id(),
                destination_security_group_id: self.group_id(),
                ip_protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                description: description.into(),
            },
        );
    }

    /// Lets any IPv4 address reach this group on TCP `port` (internet-facing ALB).
    pub fn allow_from_anywhere(&self, scope: &mut Scope<'_>, port: u16, description: &str) {
        scope.add(
            &format!("{}FromAnywherePort{port}", self.name),
            res::SecurityGroupIngress {
                group_id: self.group_id(),
                source_security_group_id: None,
                cidr_ip: Some("0.0.0.0/0".into()),
                ip_protocol: "tcp".into(),
                from_port: port,
                to_port: port,
                description: description.into(),
            },
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
        assert_eq!(stack.resources_of::<res::NatGateway>().count(), 2);
        assert_eq!(stack.resources_of::<res::Route>().count(), 4);
        assert_eq!(stack.resources_of::<res::InternetGateway>().count(), 1);
        let cidrs: Vec<&str> = stack.resources_of::<res::Subnet>().map(|(_, s)| s.cidr_block.as_str()).collect();
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
        let ingress: Vec<_> =
            stack.resources_of::<res::SecurityGroupIngress>().map(|(_, r)| (r.from_port, r.to_port)).collect();
        let egress: Vec<_> =
            stack.resources_of::<res::SecurityGroupEgress>().map(|(_, r)| (r.from_port, r.to_port)).collect();
        assert_eq!((ingress, egress), (vec![(5432, 5432)], vec![(5432, 5432)]));
    }
}
