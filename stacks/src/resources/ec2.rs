//! `AWS::EC2::*`: the network.

use serde::{Deserialize, Serialize};

use super::values::Tag;
use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Vpc {
    pub cidr_block: String,
    pub enable_dns_hostnames: bool,
    pub enable_dns_support: bool,
    pub instance_tenancy: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subnet {
    pub vpc_id: Expr,
    pub cidr_block: String,
    pub availability_zone: Expr,
    pub map_public_ip_on_launch: bool,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InternetGateway {
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VpcGatewayAttachment {
    pub vpc_id: Expr,
    pub internet_gateway_id: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Eip {
    /// `vpc`.
    pub domain: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NatGateway {
    pub allocation_id: Expr,
    pub subnet_id: Expr,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RouteTable {
    pub vpc_id: Expr,
    pub tags: Vec<Tag>,
}

/// A route: to an internet gateway or to a NAT gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Route {
    pub route_table_id: Expr,
    pub destination_cidr_block: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_id: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_gateway_id: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubnetRouteTableAssociation {
    pub route_table_id: Expr,
    pub subnet_id: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroup {
    pub group_description: String,
    pub vpc_id: Expr,
    pub security_group_egress: Vec<CidrEgress>,
}

/// An egress rule of a security group, to a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CidrEgress {
    pub cidr_ip: String,
    pub description: String,
    pub ip_protocol: String,
    pub from_port: i32,
    pub to_port: i32,
}

/// Traffic into a group: from another group, or from a CIDR block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupIngress {
    pub group_id: Expr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_security_group_id: Option<Expr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cidr_ip: Option<String>,
    pub ip_protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub description: String,
}

/// Traffic out of a group to another group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SecurityGroupEgress {
    pub group_id: Expr,
    pub destination_security_group_id: Expr,
    pub ip_protocol: String,
    pub from_port: u16,
    pub to_port: u16,
    pub description: String,
}
