//! [`Expr`], a value in a template: a literal or one of the intrinsic functions the
//! stack renders. It depends on nothing else in the crate, so that both the
//! resource types ([`crate::resources`]) and the construct tree ([`crate::core`])
//! can hold references without depending on each other.

use serde_json::{Value, json};

/// A value in a template: a literal or an intrinsic function.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Literal(Value),
    Ref(String),
    GetAtt(String, String),
    /// `Fn::Sub` with `${LogicalId}` / `${LogicalId.Attr}` / `${AWS::Region}` placeholders.
    Sub(String),
    Join(String, Vec<Expr>),
    /// `Fn::Select [index, Fn::GetAZs ""]`: the n-th availability zone of the region.
    Az(usize),
}

impl Expr {
    pub fn lit(value: impl Into<Value>) -> Self {
        Expr::Literal(value.into())
    }

    pub fn stack_name() -> Self {
        Expr::Ref("AWS::StackName".into())
    }

    pub fn region() -> Self {
        Expr::Ref("AWS::Region".into())
    }

    pub fn to_json(&self) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Ref(id) => json!({ "Ref": id }),
            Expr::GetAtt(id, attr) => json!({ "Fn::GetAtt": [id, attr] }),
            Expr::Sub(s) => json!({ "Fn::Sub": s }),
            Expr::Join(sep, parts) => json!({ "Fn::Join": [sep, parts.iter().map(Expr::to_json).collect::<Vec<_>>()] }),
            Expr::Az(i) => json!({ "Fn::Select": [i, { "Fn::GetAZs": "" }] }),
        }
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

/// Reads a rendered value back: a literal, or one of the intrinsics [`Expr`] renders.
impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Expr::from_json(&value)
            .ok_or_else(|| serde::de::Error::custom(format!("not a value or known intrinsic: {value}")))
    }
}

impl Expr {
    /// The inverse of [`Expr::to_json`]: `None` for an intrinsic it does not render.
    pub fn from_json(value: &Value) -> Option<Expr> {
        let Value::Object(map) = value else { return Some(Expr::Literal(value.clone())) };
        let (key, arg) = map.iter().next().filter(|_| map.len() == 1)?;
        match key.as_str() {
            "Ref" => Some(Expr::Ref(arg.as_str()?.to_string())),
            "Fn::GetAtt" => Some(Expr::GetAtt(arg.get(0)?.as_str()?.to_string(), arg.get(1)?.as_str()?.to_string())),
            "Fn::Sub" => Some(Expr::Sub(arg.as_str()?.to_string())),
            "Fn::Join" => Some(Expr::Join(
                arg.get(0)?.as_str()?.to_string(),
                arg.get(1)?.as_array()?.iter().map(Expr::from_json).collect::<Option<Vec<_>>>()?,
            )),
            "Fn::Select" if arg.get(1)?.get("Fn::GetAZs").is_some() => {
                Some(Expr::Az(usize::try_from(arg.get(0)?.as_u64()?).ok()?))
            }
            _ => None,
        }
    }

    /// The text of a string literal.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Expr::Literal(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

impl From<Expr> for Value {
    fn from(e: Expr) -> Self {
        e.to_json()
    }
}

impl From<&str> for Expr {
    fn from(s: &str) -> Self {
        Expr::lit(s)
    }
}

impl From<String> for Expr {
    fn from(s: String) -> Self {
        Expr::lit(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_exprs_read_back_to_the_same_exprs() {
        let exprs = [
            Expr::lit("text"),
            Expr::lit(4004),
            Expr::Ref("Db1234".into()),
            Expr::GetAtt("Db1234".into(), "Endpoint.Port".into()),
            Expr::Sub("http://${Lb.DNSName}:4004".into()),
            Expr::Join(":".into(), vec![Expr::Ref("S".into()), Expr::lit("username::")]),
            Expr::Az(1),
        ];
        for expr in exprs {
            let back: Expr = serde_json::from_value(expr.to_json()).expect("reads back");
            assert_eq!(back, expr);
        }
        assert!(serde_json::from_value::<Expr>(json!({ "Fn::ImportValue": "x" })).is_err());
        assert_eq!(Expr::lit("a").as_str(), Some("a"));
    }
}
