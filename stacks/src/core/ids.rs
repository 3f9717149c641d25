//! How a resource is named and referred to: its logical id (readable, stable and
//! unique, as CDK derives it from the construct path) and typed handles whose
//! attributes render as [`Expr`] references.

use std::{fmt, marker::PhantomData};

use crate::expr::Expr;
use crate::resources::{Attribute, ResourceType};

/// A resource's logical id in the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalId(pub(super) String);

impl LogicalId {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `Ref` of this resource.
    pub fn r#ref(&self) -> Expr {
        Expr::Ref(self.0.clone())
    }
}

/// A resource of type `T` in a stack: its logical id, and the attributes of its type.
#[derive(Debug, PartialEq, Eq)]
pub struct Handle<T> {
    pub(super) id: LogicalId,
    pub(super) _type: PhantomData<fn() -> T>,
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        Self { id: self.id.clone(), _type: PhantomData }
    }
}

impl<T> std::ops::Deref for Handle<T> {
    type Target = LogicalId;

    fn deref(&self) -> &LogicalId {
        &self.id
    }
}

impl<T: ResourceType> Handle<T> {
    /// `Fn::GetAtt` of one of the type's attributes.
    pub fn attr(&self, attribute: T::Attr) -> Expr {
        Expr::GetAtt(self.id.0.clone(), attribute.name().to_string())
    }

    pub fn id(&self) -> &LogicalId {
        &self.id
    }

    /// `${Id.Attribute}`, for an `Fn::Sub` string.
    pub fn sub(&self, attribute: T::Attr) -> String {
        format!("${{{}.{}}}", self.id, attribute.name())
    }
}

/// The logical id (as in `${Id}` of an `Fn::Sub` string).
impl<T> fmt::Display for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.fmt(f)
    }
}

impl fmt::Display for LogicalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// CDK-style logical id: the path components below the stack, alphanumerics only,
/// concatenated, then 8 hex digits of a hash of the full path (stable across runs).
pub fn logical_id(path: &[String]) -> String {
    let readable: String = path.iter().skip(1).flat_map(|c| c.chars()).filter(char::is_ascii_alphanumeric).collect();
    let readable: String = readable.chars().take(240).collect();
    format!("{readable}{:08X}", fnv1a32(path.join("/").as_bytes()))
}

fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn logical_ids_are_readable_stable_and_path_unique() {
        let a = logical_id(&["Stack".into(), "Vpc".into(), "Public-Subnet1".into()]);
        assert!(a.starts_with("VpcPublicSubnet1"));
        assert_eq!(a.len(), "VpcPublicSubnet1".len() + 8);
        assert_eq!(a, logical_id(&["Stack".into(), "Vpc".into(), "Public-Subnet1".into()]));
        // Same readable text, different path: different ids.
        let b = logical_id(&["Stack".into(), "VpcPublic".into(), "Subnet1".into()]);
        assert_ne!(a, b);
    }

    #[test]
    fn exprs_render_intrinsics() {
        let id = LogicalId("Db1234".into());
        assert_eq!(id.r#ref().to_json(), json!({"Ref": "Db1234"}));
        let handle: Handle<crate::resources::DbInstance> = Handle { id: id.clone(), _type: PhantomData };
        assert_eq!(
            handle.attr(crate::resources::DbInstanceAttr::EndpointAddress).to_json(),
            json!({"Fn::GetAtt": ["Db1234", "Endpoint.Address"]})
        );
        assert_eq!(Expr::Az(1).to_json(), json!({"Fn::Select": [1, {"Fn::GetAZs": ""}]}));
        let join = Expr::Join(":".into(), vec![Expr::lit("a"), id.r#ref()]);
        assert_eq!(join.to_json(), json!({"Fn::Join": [":", ["a", {"Ref": "Db1234"}]]}));
    }
}
