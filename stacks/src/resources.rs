//! The CloudFormation resource types the stack uses, each with the attributes
//! `Fn::GetAtt` may read from it: [`crate::core::Scope::add`] takes the type as a Rust
//! type, and a handle reads only its own type's attributes, so a misspelt type or an
//! attribute that does not exist is a compile error. `stacks/tests/schemas.rs` checks
//! every name here, and every property the stack sets, against the resource schemas
//! that cfn-lint ships.

/// A resource type: its CloudFormation name and its attributes.
pub trait ResourceType {
    const NAME: &'static str;
    type Attr: Attribute;
}

/// An attribute of a resource type, as `Fn::GetAtt` names it.
pub trait Attribute: Copy + 'static {
    fn name(self) -> &'static str;
}

/// For types whose attributes the stack never reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAttributes {}

impl Attribute for NoAttributes {
    fn name(self) -> &'static str {
        match self {}
    }
}

macro_rules! resource_types {
    ($( $(#[$doc:meta])* $ty:ident = $name:literal $( ( $attr_ty:ident { $( $attr:ident = $attr_name:literal ),* $(,)? } ) )? ; )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq)]
            pub enum $ty {}

            $(
                #[derive(Debug, Clone, Copy, PartialEq, Eq)]
                pub enum $attr_ty { $( $attr ),* }

                impl Attribute for $attr_ty {
                    fn name(self) -> &'static str {
                        match self { $( $attr_ty::$attr => $attr_name ),* }
                    }
                }
            )?

            impl ResourceType for $ty {
                const NAME: &'static str = $name;
                type Attr = resource_types!(@attr $( $attr_ty )?);
            }
        )*

        /// Every type with its attribute names, for the schema check.
        pub const ALL: &[(&str, &[&str])] = &[ $( ($name, &[ $( $( $attr_name ),* )? ]) ),* ];
    };
    (@attr $attr_ty:ident) => { $attr_ty };
    (@attr) => { NoAttributes };
}

resource_types! {
    Vpc = "AWS::EC2::VPC";
    Subnet = "AWS::EC2::Subnet";
    InternetGateway = "AWS::EC2::InternetGateway";
    VpcGatewayAttachment = "AWS::EC2::VPCGatewayAttachment";
    Eip = "AWS::EC2::EIP" (EipAttr { AllocationId = "AllocationId" });
    NatGateway = "AWS::EC2::NatGateway";
    RouteTable = "AWS::EC2::RouteTable";
    Route = "AWS::EC2::Route";
    SubnetRouteTableAssociation = "AWS::EC2::SubnetRouteTableAssociation";
    SecurityGroup = "AWS::EC2::SecurityGroup" (SecurityGroupAttr { GroupId = "GroupId" });
    SecurityGroupIngress = "AWS::EC2::SecurityGroupIngress";
    SecurityGroupEgress = "AWS::EC2::SecurityGroupEgress";
    EcrRepository = "AWS::ECR::Repository" (EcrRepositoryAttr { RepositoryUri = "RepositoryUri", Arn = "Arn" });
    EcsCluster = "AWS::ECS::Cluster";
    EcsService = "AWS::ECS::Service";
    TaskDefinition = "AWS::ECS::TaskDefinition";
    LoadBalancer = "AWS::ElasticLoadBalancingV2::LoadBalancer" (LoadBalancerAttr { DnsName = "DNSName" });
    Listener = "AWS::ElasticLoadBalancingV2::Listener";
    TargetGroup = "AWS::ElasticLoadBalancingV2::TargetGroup";
    IamRole = "AWS::IAM::Role" (IamRoleAttr { Arn = "Arn" });
    IamPolicy = "AWS::IAM::Policy";
    LogGroup = "AWS::Logs::LogGroup" (LogGroupAttr { Arn = "Arn" });
    MskCluster = "AWS::MSK::Cluster";
    DbInstance = "AWS::RDS::DBInstance" (DbInstanceAttr { EndpointAddress = "Endpoint.Address", EndpointPort = "Endpoint.Port" });
    DbSubnetGroup = "AWS::RDS::DBSubnetGroup";
    HealthCheck = "AWS::Route53::HealthCheck";
    Secret = "AWS::SecretsManager::Secret";
    SecretTargetAttachment = "AWS::SecretsManager::SecretTargetAttachment";
    PrivateDnsNamespace = "AWS::ServiceDiscovery::PrivateDnsNamespace" (PrivateDnsNamespaceAttr { Id = "Id" });
    DiscoveryService = "AWS::ServiceDiscovery::Service" (DiscoveryServiceAttr { Arn = "Arn" });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_attributes_are_listed_once() {
        assert!(ALL.iter().any(|(name, attrs)| *name == DbInstance::NAME && attrs.contains(&"Endpoint.Port")));
        assert_eq!(DbInstanceAttr::EndpointAddress.name(), "Endpoint.Address");
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
