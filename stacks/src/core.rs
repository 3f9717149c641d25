//! The construct tree, resources, typed references and synthesis (CDK's "core").
//!
//! A [`Stack`] owns resources; constructs add them through a [`Scope`], which carries
//! the construct path. A resource's logical id is its readable path plus a short hash
//! of the full path (as CDK does), so ids are stable and unique. References between
//! resources are [`Expr`] values that render `Ref` / `Fn::GetAtt` / `Fn::Sub`; the
//! validator checks that every reference resolves.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    marker::PhantomData,
};

use serde_json::{Map, Value, json};

use crate::resources::{Attribute, Properties, ResourceType};

/// A resource's logical id in the template.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalId(String);

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
    id: LogicalId,
    _type: PhantomData<fn() -> T>,
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

/// One resource of the template: its typed properties until the stack renders.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub properties: Properties,
    pub depends_on: BTreeSet<String>,
    /// `None` keeps CloudFormation's default.
    pub deletion_policy: Option<DeletionPolicy>,
    /// The construct path, for `tree.json` and the logical id.
    pub path: String,
}

/// What CloudFormation does with a resource when the stack (or the resource) is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeletionPolicy {
    Delete,
    Retain,
    /// A final snapshot (databases, volumes).
    Snapshot,
}

impl Resource {
    /// The CloudFormation type name.
    pub fn resource_type(&self) -> &'static str {
        self.properties.type_name()
    }

    /// The properties if the resource is of type `T`.
    pub fn typed<T: ResourceType>(&self) -> Option<&T> {
        T::of(&self.properties)
    }
}

impl DeletionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionPolicy::Delete => "Delete",
            DeletionPolicy::Retain => "Retain",
            DeletionPolicy::Snapshot => "Snapshot",
        }
    }
}

/// A stack output.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub description: String,
    pub value: Expr,
}

/// The stack: resources and outputs, in insertion order of their logical ids.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub name: String,
    pub description: String,
    pub resources: BTreeMap<String, Resource>,
    pub outputs: BTreeMap<String, Output>,
    /// Construct path → logical ids created under it (for `tree.json`).
    pub tree: BTreeMap<String, Vec<String>>,
    errors: Vec<String>,
    warnings: Vec<Warning>,
}

/// Something synthesis allows but the user should know (CDK's warning annotations):
/// `synth` and `deploy` print these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The construct it is about.
    pub path: String,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarningKind {
    /// The public entry is plain HTTP: passwords, tokens and records cross the internet in clear.
    PlainHttpEntry { port: u16 },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WarningKind::PlainHttpEntry { port } => write!(
                f,
                "{}: the public entry is plain HTTP on :{port}; passwords, tokens and patient records cross \
                 the internet unencrypted. Pass -c certificate-arn=<ACM certificate ARN> for HTTPS",
                self.path
            ),
        }
    }
}

/// Where a construct adds its resources: the stack and the construct path.
pub struct Scope<'a> {
    stack: &'a mut Stack,
    path: Vec<String>,
}

impl Stack {
    pub fn new(name: impl Into<String>, description: impl Into<String>) -> Self {
        Self { name: name.into(), description: description.into(), ..Default::default() }
    }

    /// The root scope (construct path = the stack name).
    pub fn scope(&mut self) -> Scope<'_> {
        let name = self.name.clone();
        Scope { stack: self, path: vec![name] }
    }

    /// The resources of type `T`, with their logical ids.
    pub fn resources_of<T: ResourceType>(&self) -> impl Iterator<Item = (&str, &T)> {
        self.resources.iter().filter_map(|(id, r)| Some((id.as_str(), r.typed::<T>()?)))
    }

    /// The same, to change them: a profile applied to what every construct built
    /// (as a CDK aspect visits the tree).
    pub fn resources_of_mut<T: ResourceType>(&mut self) -> impl Iterator<Item = (&str, &mut T)> {
        self.resources.iter_mut().filter_map(|(id, r)| Some((id.as_str(), T::of_mut(&mut r.properties)?)))
    }

    /// What the user should know about this stack before deploying it.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    pub fn add_output(&mut self, id: &str, description: &str, value: Expr) {
        if self.outputs.insert(id.into(), Output { description: description.into(), value }).is_some() {
            self.errors.push(format!("duplicate output id {id}"));
        }
    }
}

impl Scope<'_> {
    /// A child scope: constructs nest by id.
    pub fn child(&mut self, id: &str) -> Scope<'_> {
        let mut path = self.path.clone();
        path.push(id.to_string());
        Scope { stack: self.stack, path }
    }

    pub fn path(&self) -> String {
        self.path.join("/")
    }

    /// Adds a resource `id` of type `T`, with its properties, under this scope.
    pub fn add<T: ResourceType>(&mut self, id: &str, properties: T) -> Handle<T> {
        let mut path = self.path.clone();
        path.push(id.to_string());
        let logical_id = logical_id(&path);
        let resource = Resource {
            properties: properties.into(),
            depends_on: BTreeSet::new(),
            deletion_policy: None,
            path: path.join("/"),
        };
        if self.stack.resources.insert(logical_id.clone(), resource).is_some() {
            self.stack.errors.push(format!("duplicate construct id {}", path.join("/")));
        }
        self.stack.tree.entry(self.path()).or_default().push(logical_id.clone());
        Handle { id: LogicalId(logical_id), _type: PhantomData }
    }

    /// Declares that `resource` must be created after `after`.
    pub fn depend(&mut self, resource: &LogicalId, after: &LogicalId) {
        if let Some(r) = self.stack.resources.get_mut(resource.as_str()) {
            r.depends_on.insert(after.0.clone());
        }
    }

    pub fn set_deletion_policy(&mut self, resource: &LogicalId, policy: DeletionPolicy) {
        if let Some(r) = self.stack.resources.get_mut(resource.as_str()) {
            r.deletion_policy = Some(policy);
        }
    }

    /// Records a problem found while building; `synth` reports it.
    pub fn error(&mut self, message: String) {
        self.stack.errors.push(format!("{}: {message}", self.path()));
    }

    /// Records a warning about this construct.
    pub fn warn(&mut self, kind: WarningKind) {
        let path = self.path();
        self.stack.warnings.push(Warning { path, kind });
    }

    /// The properties of a resource this scope's stack holds, to change them.
    pub fn get_mut<T: ResourceType>(&mut self, handle: &Handle<T>) -> Option<&mut T> {
        T::of_mut(&mut self.stack.resources.get_mut(handle.id.as_str())?.properties)
    }

    pub fn stack_name(&self) -> &str {
        &self.stack.name
    }

    pub fn add_output(&mut self, id: &str, description: &str, value: Expr) {
        self.stack.add_output(id, description, value);
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
        let known: BTreeSet<&str> = self.resources.keys().map(String::as_str).collect();
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
        let mut template = Map::new();
        template.insert("AWSTemplateFormatVersion".into(), json!("2010-09-09"));
        template.insert("Description".into(), json!(self.description));
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
}
