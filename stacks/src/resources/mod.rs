//! The CloudFormation resource types the stack uses (CDK's L1 layer): each type is a
//! struct of its typed properties, with the attributes `Fn::GetAtt` may read from it.
//! [`crate::core::Scope::add`] takes the properties and returns a handle that reads
//! only its own type's attributes, so a misspelt property, a value of the wrong kind or
//! an attribute that does not exist is a compile error. The model keeps these values
//! until it renders; [`Properties::read`] reads a rendered template back into them.
//! `stacks/tests/schemas.rs` checks every type, attribute and property name here
//! against the resource schemas that cfn-lint ships.

use serde::Serialize;
use serde_json::{Map, Value};

mod cloudwatch;
mod ec2;
mod ecr;
mod ecs;
mod elb;
mod iam;
mod kms;
mod logs;
mod msk;
mod rds;
mod route53;
mod s3;
mod secrets_manager;
mod service_discovery;
mod sns;
mod values;

pub use cloudwatch::*;
pub use ec2::*;
pub use ecr::*;
pub use ecs::*;
pub use elb::*;
pub use iam::*;
pub use kms::*;
pub use logs::*;
pub use msk::*;
pub use rds::*;
pub use route53::*;
pub use s3::*;
pub use secrets_manager::*;
pub use service_discovery::*;
pub use sns::*;
pub use values::*;

/// A resource type: its CloudFormation name, its attributes, and (being the struct of
/// its properties) how it is kept in [`Properties`].
pub trait ResourceType: Sized + Into<Properties> + 'static {
    const NAME: &'static str;
    type Attr: Attribute;

    /// This type's properties, if `properties` are of this type.
    fn of(properties: &Properties) -> Option<&Self>;

    /// The same, to change them (a profile hardening what constructs built).
    fn of_mut(properties: &mut Properties) -> Option<&mut Self>;
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

                fn of(properties: &Properties) -> Option<&Self> {
                    match properties {
                        Properties::$ty(p) => Some(p),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }

                fn of_mut(properties: &mut Properties) -> Option<&mut Self> {
                    match properties {
                        Properties::$ty(p) => Some(p),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }

            impl From<$ty> for Properties {
                fn from(p: $ty) -> Self {
                    Properties::$ty(p)
                }
            }
        )*

        /// The properties of one resource, of any type the stack uses.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Properties {
            $( $ty($ty) ),*
        }

        impl Properties {
            /// The CloudFormation type name.
            pub fn type_name(&self) -> &'static str {
                match self { $( Properties::$ty(_) => $name ),* }
            }

            /// Reads the rendered properties of a resource of type `type_name` back.
            pub fn read(type_name: &str, properties: Value) -> Result<Self, ReadError> {
                let properties = if properties.is_null() { Value::Object(Map::new()) } else { properties };
                match type_name {
                    $( $name => serde_json::from_value(properties).map(Properties::$ty)
                        .map_err(|e| ReadError::Properties(type_name.to_string(), e)), )*
                    other => Err(ReadError::UnknownType(other.to_string())),
                }
            }
        }

        /// Every type with its attribute names, for the schema check.
        pub const ALL: &[(&str, &[&str])] = &[ $( ($name, &[ $( $( $attr_name ),* )? ]) ),* ];
    };
    (@attr $attr_ty:ident) => { $attr_ty };
    (@attr) => { NoAttributes };
}

/// Why rendered properties do not read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("resource type {0} is not one this stack uses")]
    UnknownType(String),
    #[error("properties of a {0}: {1}")]
    Properties(String, serde_json::Error),
}

impl Properties {
    /// The properties as the template's JSON object.
    pub fn to_json(&self) -> Result<Map<String, Value>, serde_json::Error> {
        match serde_json::to_value(self)? {
            Value::Object(map) => Ok(map),
            other => Err(serde::ser::Error::custom(format!("properties rendered as {other}, not an object"))),
        }
    }
}

resource_types! {
    Alarm = "AWS::CloudWatch::Alarm";
    Dashboard = "AWS::CloudWatch::Dashboard";
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
    LoadBalancer = "AWS::ElasticLoadBalancingV2::LoadBalancer" (LoadBalancerAttr {
        DnsName = "DNSName",
        LoadBalancerFullName = "LoadBalancerFullName",
    });
    Listener = "AWS::ElasticLoadBalancingV2::Listener";
    TargetGroup = "AWS::ElasticLoadBalancingV2::TargetGroup" (TargetGroupAttr { TargetGroupFullName = "TargetGroupFullName" });
    IamRole = "AWS::IAM::Role" (IamRoleAttr { Arn = "Arn" });
    IamPolicy = "AWS::IAM::Policy";
    KmsKey = "AWS::KMS::Key" (KmsKeyAttr { Arn = "Arn" });
    LogGroup = "AWS::Logs::LogGroup" (LogGroupAttr { Arn = "Arn" });
    MskCluster = "AWS::MSK::Cluster";
    MskBatchScramSecret = "AWS::MSK::BatchScramSecret";
    DbInstance = "AWS::RDS::DBInstance" (DbInstanceAttr { EndpointAddress = "Endpoint.Address", EndpointPort = "Endpoint.Port" });
    DbSubnetGroup = "AWS::RDS::DBSubnetGroup";
    HealthCheck = "AWS::Route53::HealthCheck";
    Bucket = "AWS::S3::Bucket" (BucketAttr { Arn = "Arn" });
    BucketPolicy = "AWS::S3::BucketPolicy";
    Secret = "AWS::SecretsManager::Secret";
    SecretTargetAttachment = "AWS::SecretsManager::SecretTargetAttachment";
    PrivateDnsNamespace = "AWS::ServiceDiscovery::PrivateDnsNamespace" (PrivateDnsNamespaceAttr { Id = "Id" });
    DiscoveryService = "AWS::ServiceDiscovery::Service" (DiscoveryServiceAttr { Arn = "Arn" });
    Topic = "AWS::SNS::Topic";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    #[test]
    fn names_and_attributes_are_listed_once() {
        assert!(ALL.iter().any(|(name, attrs)| *name == DbInstance::NAME && attrs.contains(&"Endpoint.Port")));
        assert_eq!(DbInstanceAttr::EndpointAddress.name(), "Endpoint.Address");
        let mut names: Vec<&str> = ALL.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }

    #[test]
    fn properties_render_with_cloudformation_names_and_read_back() {
        let properties: Properties = SecretTargetAttachment {
            secret_id: Expr::Ref("S".into()),
            target_id: Expr::Ref("Db".into()),
            target_type: DbInstance::NAME.into(),
        }
        .into();
        let json = properties.to_json().expect("renders");
        assert_eq!(json.keys().collect::<Vec<_>>(), ["SecretId", "TargetId", "TargetType"]);
        let back = Properties::read(SecretTargetAttachment::NAME, Value::Object(json)).expect("reads back");
        assert_eq!(back, properties);
        assert!(SecretTargetAttachment::of(&back).is_some() && Secret::of(&back).is_none());
        assert!(matches!(Properties::read("AWS::SQS::Queue", Value::Null), Err(ReadError::UnknownType(_))));
        let wrong = serde_json::json!({ "SecretId": "s", "TargetId": "t" });
        assert!(matches!(Properties::read(SecretTargetAttachment::NAME, wrong), Err(ReadError::Properties(..))));
    }
}
