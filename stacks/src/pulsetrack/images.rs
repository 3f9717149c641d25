//! The images' ECR repositories: their own stack, deployed before the main one, and
//! the names both stacks (and the deployer) agree on.

use super::catalog::{SERVICES, ServiceDef};
use crate::{core::Stack, ecr::Repository};

/// The stack of the images' ECR repositories (`<name>Images`), deployed before the
/// main stack so that its task definitions can name pushed images (as `cdk bootstrap`
/// provides CDK's asset repository). Outputs `<Construct>RepositoryUri`.
pub fn image_repositories_stack(name: &str) -> Stack {
    let mut stack = Stack::new(format!("{name}Images"), format!("PulseTrack service images of stack {name}"));
    let mut scope = stack.scope();
    for def in &SERVICES {
        let repository =
            Repository::new(&mut scope, &format!("{}Repository", def.construct), &ecr_repository_name(name, def));
        scope.add_output(&repository_output(def), &format!("ECR repository of {}", def.name), repository.uri());
    }
    stack
}

/// The ECR repository of `def`'s image in stack `stack`: `<stack>/<service>`, lower case.
pub fn ecr_repository_name(stack: &str, def: &ServiceDef) -> String {
    format!("{}/{}", stack.to_lowercase(), def.name)
}

/// The output of [`image_repositories_stack`] that holds `def`'s repository URI.
pub fn repository_output(def: &ServiceDef) -> String {
    format!("{}RepositoryUri", def.construct)
}
