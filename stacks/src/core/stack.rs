//! The construct tree: a [`Stack`] owns resources and outputs; constructs add them
//! through a [`Scope`], which carries the construct path their logical ids derive from.

use std::{
    collections::{BTreeMap, BTreeSet},
    marker::PhantomData,
};

use super::ids::{Handle, LogicalId, logical_id};
use super::warning::{Warning, WarningKind};
use crate::expr::Expr;
use crate::resources::{Properties, ResourceType};

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

/// A template parameter: a string the deployer supplies with each change set (such as
/// the ARN of a secret it made before the stack).
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub description: String,
    /// A regular expression CloudFormation checks the value against.
    pub allowed_pattern: String,
}

/// The stack: resources and outputs, in insertion order of their logical ids.
#[derive(Debug, Clone, Default)]
pub struct Stack {
    pub name: String,
    pub description: String,
    pub resources: BTreeMap<String, Resource>,
    pub outputs: BTreeMap<String, Output>,
    pub parameters: BTreeMap<String, Parameter>,
    /// Construct path → logical ids created under it (for `tree.json`).
    pub tree: BTreeMap<String, Vec<String>>,
    pub(super) errors: Vec<String>,
    warnings: Vec<Warning>,
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

    /// Declares the string parameter `id` (its name as the deployer passes it) and
    /// returns its `Ref`.
    pub fn add_parameter(&mut self, id: &str, parameter: Parameter) -> Expr {
        if self.parameters.insert(id.into(), parameter).is_some() {
            self.errors.push(format!("duplicate parameter {id}"));
        }
        Expr::Ref(id.into())
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

    pub fn add_parameter(&mut self, id: &str, parameter: super::Parameter) -> Expr {
        self.stack.add_parameter(id, parameter)
    }
}
