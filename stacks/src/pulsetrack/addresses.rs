//! How a service finds the services it calls: Cloud Map names, or an internal load
//! balancer where there is no Cloud Map.

use super::catalog::{CALLS, NAMESPACE};
use crate::{
    core::Expr,
    elb::{InternalLoadBalancer, Route},
};

/// How a service finds the services it calls ([`CALLS`]).
pub enum Addresses {
    /// `https://<callee>.pulsetrack.local:<port>`: Cloud Map A records of the callee's
    /// tasks (the name its certificate holds).
    CloudMap,
    /// `https://<nlb-dns>:<port>`: an internal NLB listener passing TLS through to the
    /// callee (where there is no Cloud Map, such as moto).
    Internal(InternalLoadBalancer),
}

impl Addresses {
    pub(super) fn url(&self, callee: &str, port: u16) -> Expr {
        match self {
            Addresses::CloudMap => Expr::lit(format!("https://{callee}.{NAMESPACE}:{port}")),
            Addresses::Internal(nlb) => nlb.url(port),
        }
    }
}

/// The internal load balancer's listeners: one per called port of [`CALLS`].
pub(super) fn internal_routes() -> Vec<Route> {
    CALLS.iter().map(|&(_, callee, port)| Route { callee, port }).collect()
}
