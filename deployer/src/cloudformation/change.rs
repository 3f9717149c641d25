//! One resource-level change of a change set: how it reads (CDK's lines), and whether
//! it widens what can reach what.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

/// One resource-level change of a change set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceChange {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: bool,
}

/// Resource types whose addition or change widens what can reach what.
const SECURITY_TYPES: [&str; 6] = [
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
];

/// The values of a string-or-array field, as a set.
fn set_of(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Array(items) => items.iter().map(Value::to_string).collect(),
        Value::Null => BTreeSet::new(),
        other => std::iter::once(other.to_string()).collect(),
    }
}

/// Whether grant `old` already allows everything grant `new` does: the same effect
/// and principal, and at least its actions on at least its resources. Anything else
/// (security group rules) must match exactly.
fn covers(old: &Value, new: &Value) -> bool {
    if old == new {
        return true;
    }
    if new.get("Effect").is_none() {
        return false;
    }
    old["Effect"] == new["Effect"]
        && old["Principal"] == new["Principal"]
        && set_of(&old["Action"]).is_superset(&set_of(&new["Action"]))
        && set_of(&old["Resource"]).is_superset(&set_of(&new["Resource"]))
}

impl ResourceChange {
    pub fn security_relevant(&self) -> bool {
        SECURITY_TYPES.contains(&self.resource_type.as_str())
    }

    /// Whether this change widens access: a new security resource, or a modified one
    /// whose new properties hold a rule or statement the old ones did not (as CDK
    /// compares statements). `old`/`new` are the deployed and proposed templates.
    pub fn broadening(&self, old: &Value, new: &Value) -> bool {
        if !self.security_relevant() {
            return false;
        }
        match self.action.as_str() {
            "Add" => true,
            "Remove" => false,
            _ => {
                let props = |t: &Value| t["Resources"][&self.logical_id]["Properties"].clone();
                let (before, after) = (props(old), props(new));
                let grants = |p: &Value| -> Vec<Value> {
                    let mut items = Vec::new();
                    for key in ["SecurityGroupIngress", "SecurityGroupEgress", "Policies"] {
                        items.extend(p[key].as_array().cloned().unwrap_or_default());
                    }
                    for doc in ["PolicyDocument", "AssumeRolePolicyDocument"] {
                        items.extend(p[doc]["Statement"].as_array().cloned().unwrap_or_default());
                    }
                    items
                };
                match self.resource_type.as_str() {
                    // A standalone rule that changed is a different rule.
                    "AWS::EC2::SecurityGroupIngress" | "AWS::EC2::SecurityGroupEgress" => before != after,
                    _ => {
                        let old_grants = grants(&before);
                        grants(&after).iter().any(|g| !old_grants.iter().any(|o| covers(o, g)))
                    }
                }
            }
        }
    }

    /// CDK-style line: `[+] AWS::EC2::VPC VpcResource1234` (`[-]` removed,
    /// `[~]` modified, `[~] ... (replacement)`), `!` marking security changes.
    pub fn line(&self) -> String {
        let mark = match self.action.as_str() {
            "Add" => "[+]",
            "Remove" => "[-]",
            _ => "[~]",
        };
        let security = if self.security_relevant() { " (!) security" } else { "" };
        let replacement = if self.replacement { " (replacement)" } else { "" };
        format!("{mark} {} {}{replacement}{security}", self.resource_type, self.logical_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: &str, ty: &str) -> ResourceChange {
        ResourceChange { action: action.into(), logical_id: "X1".into(), resource_type: ty.into(), replacement: false }
    }

    #[test]
    fn lines_are_cdk_style_and_mark_security() {
        assert_eq!(change("Add", "AWS::EC2::VPC").line(), "[+] AWS::EC2::VPC X1");
        assert_eq!(change("Remove", "AWS::EC2::VPC").line(), "[-] AWS::EC2::VPC X1");
        let mut replaced = change("Modify", "AWS::RDS::DBInstance");
        replaced.replacement = true;
        assert_eq!(replaced.line(), "[~] AWS::RDS::DBInstance X1 (replacement)");
        assert!(change("Add", "AWS::EC2::SecurityGroupIngress").line().ends_with("(!) security"));
    }

    fn policy(statements: Value) -> Value {
        serde_json::json!({ "Resources": { "X1": { "Properties": { "PolicyDocument": { "Statement": statements } } } } })
    }

    #[test]
    fn broadening_is_new_access_only() {
        let none = Value::Null;
        assert!(change("Add", "AWS::IAM::Policy").broadening(&none, &none));
        assert!(!change("Remove", "AWS::EC2::SecurityGroupIngress").broadening(&none, &none));
        assert!(!change("Add", "AWS::Logs::LogGroup").broadening(&none, &none));
        let a = serde_json::json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"});
        let b = serde_json::json!({"Effect": "Allow", "Action": "s3:PutObject", "Resource": "*"});
        let modify = change("Modify", "AWS::IAM::Policy");
        assert!(
            modify.broadening(
                &policy(serde_json::json!([a.clone()])),
                &policy(serde_json::json!([a.clone(), b.clone()]))
            )
        );
        assert!(
            !modify.broadening(&policy(serde_json::json!([a.clone(), b])), &policy(serde_json::json!([a]))),
            "narrowing"
        );
    }
}
