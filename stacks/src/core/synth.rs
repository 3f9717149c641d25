//! Synthesis: the stack rendered as a CloudFormation template, after checking that
//! every reference resolves and that the template is within CloudFormation's limits.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::stack::Stack;

/// Why a stack cannot be synthesized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stack is invalid:\n  - {}", .0.join("\n  - "))]
pub struct ValidationErrors(pub Vec<String>);

/// CloudFormation's limits (AWS documentation, "CloudFormation quotas").
pub const MAX_RESOURCES: usize = 500;
pub const MAX_OUTPUTS: usize = 200;
pub const MAX_TEMPLATE_BYTES: usize = 1_000_000;

impl Stack {
    /// The CloudFormation template, after validation.
    pub fn synth(&self) -> Result<Value, ValidationErrors> {
        let mut errors = self.errors.clone();
        let template = self.render(&mut errors);
        let known: BTreeSet<&str> = self.resources.keys().chain(self.parameters.keys()).map(String::as_str).collect();
        for id in self.parameters.keys().filter(|id| self.resources.contains_key(*id)) {
            errors.push(format!("{id} is both a parameter and a resource"));
        }
        for (id, resource) in &self.resources {
            let mut refs = Vec::new();
            collect_refs(&template["Resources"][id]["Properties"], &mut refs);
            for target in refs.iter().chain(resource.depends_on.iter()) {
                if !target.starts_with("AWS::") && !known.contains(target.as_str()) {
                    errors.push(format!("{id} ({}) references {target}, which is not in the stack", resource.path));
                }
                if target == id {
                    errors.push(format!("{id} references itself"));
                }
            }
        }
        for (id, output) in &self.outputs {
            let mut refs = Vec::new();
            collect_refs(&output.value.to_json(), &mut refs);
            for target in refs {
                if !target.starts_with("AWS::") && !known.contains(target.as_str()) {
                    errors.push(format!("output {id} references {target}, which is not in the stack"));
                }
            }
        }
        if self.resources.len() > MAX_RESOURCES {
            errors.push(format!("{} resources; CloudFormation allows {MAX_RESOURCES}", self.resources.len()));
        }
        if self.outputs.len() > MAX_OUTPUTS {
            errors.push(format!("{} outputs; CloudFormation allows {MAX_OUTPUTS}", self.outputs.len()));
        }
        let size = serde_json::to_vec(&template).map(|v| v.len()).unwrap_or(usize::MAX);
        if size > MAX_TEMPLATE_BYTES {
            errors.push(format!("template is {size} bytes; CloudFormation allows {MAX_TEMPLATE_BYTES}"));
        }
        if errors.is_empty() { Ok(template) } else { Err(ValidationErrors(errors)) }
    }

    /// The template; a resource whose properties do not render is an error.
    fn render(&self, errors: &mut Vec<String>) -> Value {
        let resources: Map<String, Value> = self
            .resources
            .iter()
            .map(|(id, r)| {
                let mut body = Map::new();
                body.insert("Type".into(), json!(r.resource_type()));
                match r.properties.to_json() {
                    Ok(properties) if properties.is_empty() => {}
                    Ok(properties) => {
                        body.insert("Properties".into(), Value::Object(properties));
                    }
                    Err(e) => errors.push(format!("{id} ({}): properties do not render: {e}", r.path)),
                }
                if !r.depends_on.is_empty() {
                    body.insert("DependsOn".into(), json!(r.depends_on));
                }
                if let Some(policy) = r.deletion_policy {
                    body.insert("DeletionPolicy".into(), json!(policy.as_str()));
                    body.insert("UpdateReplacePolicy".into(), json!(policy.as_str()));
                }
                body.insert("Metadata".into(), json!({ "pulsetrack:path": r.path }));
                (id.clone(), Value::Object(body))
            })
            .collect();
        let outputs: Map<String, Value> = self
            .outputs
            .iter()
            .map(|(id, o)| (id.clone(), json!({ "Description": o.description, "Value": o.value.to_json() })))
            .collect();
        let parameters: Map<String, Value> = self
            .parameters
            .iter()
            .map(|(id, p)| {
                let body =
                    json!({ "Type": "String", "Description": p.description, "AllowedPattern": p.allowed_pattern });
                (id.clone(), body)
            })
            .collect();
        let mut template = Map::new();
        template.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        template.insert("Description".into(), json!(self.description));
        if !parameters.is_empty() {
            template.insert("Parameters".into(), Value::Object(parameters));
        }
        template.insert("Resources".into(), Value::Object(resources));
        if !outputs.is_empty() {
            template.insert("Outputs".into(), Value::Object(outputs));
        }
        Value::Object(template)
    }
}

/// Logical ids referenced by `Ref`, `Fn::GetAtt` and `${...}` in `Fn::Sub`.
pub fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(id)) = map.get("Ref") {
                out.push(id.clone());
            }
            if let Some(Value::Array(args)) = map.get("Fn::GetAtt")
                && let Some(Value::String(id)) = args.first()
            {
                out.push(id.clone());
            }
            if let Some(Value::String(template)) = map.get("Fn::Sub") {
                for piece in template.split("${").skip(1) {
                    if let Some(end) = piece.find('}') {
                        let name = &piece[..end];
                        if !name.starts_with('!') {
                            out.push(name.split('.').next().unwrap_or(name).to_string());
                        }
                    }
                }
            }
            for v in map.values() {
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;
    use crate::resources::{HealthCheck, HealthCheckConfig, LogGroup, LogGroupAttr};

    /// A resource whose one expression property is `target`.
    fn probe(target: Expr) -> HealthCheck {
        HealthCheck {
            health_check_config: HealthCheckConfig {
                kind: "HTTP".into(),
                fully_qualified_domain_name: target,
                port: 80,
                resource_path: "/".into(),
                request_interval: 30,
                failure_threshold: 3,
            },
        }
    }

    fn log_group(name: &str) -> LogGroup {
        LogGroup { log_group_name: name.into(), retention_in_days: 1, kms_key_id: None }
    }

    #[test]
    fn dangling_references_and_duplicates_are_reported() {
        let mut stack = Stack::new("S", "test");
        let mut scope = stack.scope();
        scope.add("A", probe(Expr::Ref("Missing".into())));
        scope.add("A", log_group("a"));
        scope.add("B", probe(Expr::Sub("${Nope.Arn}-${AWS::Region}".into())));
        stack.add_output("Out", "x", Expr::Ref("Gone".into()));
        let errors = stack.synth().expect_err("invalid").0;
        assert!(errors.iter().any(|e| e.contains("duplicate construct id S/A")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("references Nope")), "{errors:?}");
        assert!(errors.iter().any(|e| e.contains("output Out references Gone")), "{errors:?}");
    }

    #[test]
    fn resource_limit_is_enforced() {
        let mut stack = Stack::new("S", "test");
        let mut scope = stack.scope();
        for i in 0..=MAX_RESOURCES {
            scope.add(&format!("T{i}"), log_group("t"));
        }
        let errors = stack.synth().expect_err("too many").0;
        assert!(errors.iter().any(|e| e.contains("501 resources")), "{errors:?}");
    }

    #[test]
    fn a_valid_stack_renders_depends_on_and_outputs() {
        let mut stack = Stack::new("S", "test");
        let mut scope = stack.scope();
        let a = scope.add("A", log_group("a"));
        let b = scope.add("B", probe(a.attr(LogGroupAttr::Arn)));
        scope.depend(&b, &a);
        scope.add_output("TopicArn", "the topic", b.r#ref());
        let template = stack.synth().expect("valid");
        assert_eq!(template["Resources"][b.as_str()]["DependsOn"], json!([a.as_str()]));
        assert_eq!(template["Outputs"]["TopicArn"]["Value"], json!({"Ref": b.as_str()}));
    }

    #[test]
    fn parameters_render_and_resolve_references() {
        let mut stack = Stack::new("S", "test");
        let arn = stack.add_parameter(
            "SecretArn",
            crate::core::Parameter { description: "a secret".into(), allowed_pattern: "^arn:.+$".into() },
        );
        let mut scope = stack.scope();
        let probed = scope.add("P", probe(arn));
        let template = stack.synth().expect("valid");
        assert_eq!(template["Parameters"]["SecretArn"]["Type"], "String");
        assert_eq!(template["Parameters"]["SecretArn"]["AllowedPattern"], "^arn:.+$");
        let target = &template["Resources"][probed.as_str()]["Properties"]["HealthCheckConfig"];
        assert_eq!(target["FullyQualifiedDomainName"], json!({"Ref": "SecretArn"}));
        let mut twice = Stack::new("S", "test");
        let p = || crate::core::Parameter { description: "x".into(), allowed_pattern: ".*".into() };
        twice.add_parameter("A", p());
        twice.add_parameter("A", p());
        assert!(twice.synth().expect_err("duplicate").0.iter().any(|e| e.contains("duplicate parameter A")));
    }
}
