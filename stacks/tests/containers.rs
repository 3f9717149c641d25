//! The container build agrees with the stack model: each service's Dockerfile builds its
//! binary to the path and ports its ECS task definition uses, and docker-compose.yml
//! runs the services with the same environment variable names, ports and health checks.
//!
//! The checks return their findings as lists, so the tests at the end can show that a
//! broken Dockerfile or compose file is caught. hadolint runs when installed
//! (scripts/ensure-python-tools.sh installs it); under CI it must be. `docker-compose
//! config` runs in compose_secrets.rs.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use pulsetrack_stacks::{
    Context,
    dockerfile::{self, BIN_DIR},
    ecs::{ContainerDefinition, containers},
    pulsetrack::{CALLS, NAMESPACE, SERVICES, ServiceDef},
    pulsetrack_stack,
    rds::RDS_CA_BUNDLE_PATH,
};
use serde_json::Value;
use support::{missing, root, run};

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// ContainerDefinitions[0] of every synthesized `AWS::ECS::TaskDefinition`, by container name.
fn task_definitions() -> BTreeMap<String, ContainerDefinition> {
    let containers = containers(&pulsetrack_stack("PulseTrack", &Context::default()));
    assert_eq!(containers.len(), SERVICES.len(), "one task definition per service");
    containers
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

/// The names the task definition sets: `Environment` and `Secrets`.
fn task_variable_names(task: &ContainerDefinition) -> BTreeSet<String> {
    task.environment.iter().map(|v| v.name.clone()).chain(task.secrets.iter().map(|v| v.name.clone())).collect()
}

fn task_ports(task: &ContainerDefinition) -> BTreeSet<u16> {
    task.ports().into_iter().collect()
}

/// The task definition's health check command (`["CMD", program, args…]`).
fn task_check(task: &ContainerDefinition) -> Vec<String> {
    task.health_check.as_ref().map(|h| h.command.clone()).unwrap_or_default()
}

// ---------------------------------------------------------------- Dockerfiles

/// One Dockerfile instruction: the keyword (upper case) and its arguments, with
/// continuation lines joined and comment lines dropped.
#[derive(Debug, Clone, PartialEq)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse_dockerfile(text: &str) -> Vec<Instruction> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                let (keyword, args) = current.trim().split_once(char::is_whitespace).unwrap_or((current.trim(), ""));
                instructions.push(Instruction { keyword: keyword.to_ascii_uppercase(), args: args.trim().to_string() });
                current.clear();
            }
        }
    }
    instructions
}

/// The stages, each starting with its `FROM`.
fn stages(instructions: &[Instruction]) -> Vec<&[Instruction]> {
    let starts: Vec<usize> =
        instructions.iter().enumerate().filter(|(_, i)| i.keyword == "FROM").map(|(n, _)| n).collect();
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| &instructions[s..starts.get(k + 1).copied().unwrap_or(instructions.len())])
        .collect()
}

/// Whether a `RUN` builds `name` in release mode: `cargo build --release` with `--bin`
/// and/or `-p`/`--package`, each of them naming `name` (and at least one given).
fn builds_release_binary(run: &str, name: &str) -> bool {
    run.split("&&").any(|command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        let cargo_build = words.windows(2).any(|w| w == ["cargo", "build"]);
        // `--bin x` and `--bin=x` alike, as (flag, value) pairs.
        let mut selectors: Vec<(&str, &str)> =
            words.windows(2).filter(|w| matches!(w[0], "--bin" | "-p" | "--package")).map(|w| (w[0], w[1])).collect();
        selectors.extend(
            words.iter().filter_map(|w| w.split_once('=')).filter(|(f, _)| matches!(*f, "--bin" | "--package")),
        );
        cargo_build
            && words.contains(&"--release")
            && !selectors.is_empty()
            && selectors.iter().all(|(_, v)| *v == name)
    })
}

/// The exec-form command of a `HEALTHCHECK` (`[OPTIONS] CMD ["...", ...]`).
fn healthcheck_command(args: &str) -> Result<Vec<String>, String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "CMD").ok_or_else(|| format!("HEALTHCHECK without CMD: {args}"))?;
    let json = words[at + 1..].join(" ");
    serde_json::from_str::<Vec<String>>(&json).map_err(|_| format!("HEALTHCHECK CMD is not exec form: {json}"))
}

/// Everything wrong with `text` as the Dockerfile of `def`, whose task definition is `task`.
fn dockerfile_problems(def: &ServiceDef, task: &ContainerDefinition, text: &str) -> Vec<String> {
    let name = def.name;
    let binary = format!("{BIN_DIR}/{name}");
    let mut problems = Vec::new();
    let instructions = parse_dockerfile(text);
    let stages = stages(&instructions);
    if stages.len() < 2 {
        problems.push(format!("{name}: not multi-stage ({} FROM)", stages.len()));
    }
    if !instructions.iter().any(|i| i.keyword == "RUN" && builds_release_binary(&i.args, name)) {
        problems.push(format!("{name}: no RUN `cargo build --release ... --bin {name}` (or -p {name})"));
    }
    let Some(runtime) = stages.last() else {
        problems.push(format!("{name}: no FROM"));
        return problems;
    };
    let of = |keyword: &'static str| runtime.iter().filter(move |i| i.keyword == keyword);

    if !of("COPY").any(|i| i.args.split_whitespace().last() == Some(binary.as_str())) {
        problems.push(format!("{name}: the runtime stage does not COPY the binary to {binary}"));
    }
    // The RDS CA bundle, where DATABASE_SSL_ROOT_CERT points on AWS.
    let bundle = format!("certs/rds-global-bundle.pem {RDS_CA_BUNDLE_PATH}");
    if !of("COPY").any(|i| i.args.split_whitespace().collect::<Vec<_>>().join(" ") == bundle) {
        problems.push(format!("{name}: the runtime stage does not COPY {bundle}"));
    }

    let exposed: BTreeSet<u16> = of("EXPOSE")
        .flat_map(|i| i.args.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter_map(|p| p.trim_end_matches("/tcp").parse().ok())
        .collect();
    let wanted: BTreeSet<u16> = def.ports().into_iter().collect();
    if exposed != wanted {
        problems.push(format!("{name}: EXPOSE {exposed:?}, the service listens on {wanted:?}"));
    }
    if task_ports(task) != wanted {
        problems.push(format!("{name}: task definition PortMappings {:?} != {wanted:?}", task_ports(task)));
    }

    // The task definition's health check is ["CMD", binary, "healthcheck"].
    let task_check = task_check(task);
    let expected = vec![binary.clone(), "healthcheck".to_string()];
    if task_check.first().map(String::as_str) != Some("CMD") || task_check[1..] != expected[..] {
        problems.push(format!("{name}: task definition health check is {task_check:?}"));
    }
    match of("HEALTHCHECK").next_back().map(|i| healthcheck_command(&i.args)) {
        None => problems.push(format!("{name}: no HEALTHCHECK in the runtime stage")),
        Some(Err(e)) => problems.push(format!("{name}: {e}")),
        Some(Ok(command)) if command != expected => {
            problems.push(format!("{name}: HEALTHCHECK runs {command:?}, expected {expected:?}"))
        }
        Some(Ok(_)) => {}
    }

    match of("USER").next_back() {
        None => problems.push(format!("{name}: the runtime stage runs as root (no USER)")),
        Some(user) => {
            let who = user.args.split(':').next().unwrap_or_default().trim();
            if who.is_empty() || who == "root" || who == "0" {
                problems.push(format!("{name}: USER {} is root", user.args));
            }
        }
    }

    let entrypoint = of("ENTRYPOINT").next_back().and_then(|i| serde_json::from_str::<Vec<String>>(&i.args).ok());
    if entrypoint.as_ref().and_then(|e| e.first()) != Some(&binary) {
        problems.push(format!("{name}: ENTRYPOINT is {entrypoint:?}, expected [\"{binary}\"]"));
    }
    problems
}

#[test]
fn every_service_has_a_dockerfile_matching_its_task_definition() {
    let tasks = task_definitions();
    let mut problems = Vec::new();
    for def in &SERVICES {
        let path = root().join(dockerfile::path(def.name));
        assert!(path.is_file(), "{} is missing", path.display());
        let task = tasks.get(def.name).unwrap_or_else(|| panic!("no task definition for {}", def.name));
        problems.extend(dockerfile_problems(def, task, &read(&dockerfile::path(def.name))));
    }
    assert!(problems.is_empty(), "Dockerfiles:\n  {}", problems.join("\n  "));
}

/// The five Dockerfiles are the template's output for the model's services;
/// `PULSETRACK_BLESS=1` writes them (after a change to the template or the model).
#[test]
fn the_dockerfiles_are_generated_from_the_template_and_the_model() {
    let bless = std::env::var_os("PULSETRACK_BLESS").is_some();
    let mut stale = Vec::new();
    for def in &SERVICES {
        let path = root().join(dockerfile::path(def.name));
        let wanted = dockerfile::render(def);
        if bless {
            std::fs::write(&path, &wanted).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(wanted.as_str()) {
            stale.push(dockerfile::path(def.name));
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from stacks/templates/service.Dockerfile rendered for the model: \
         PULSETRACK_BLESS=1 cargo test -p pulsetrack-stacks --test containers writes them"
    );
}

#[test]
fn the_build_context_leaves_out_build_output_and_git() {
    let ignore = read(".dockerignore");
    let lines: Vec<&str> = ignore.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for wanted in ["target", ".git", ".pulsetrack"] {
        assert!(
            lines.iter().any(|l| l.trim_matches('/') == wanted),
            ".dockerignore does not leave out {wanted}: {lines:?}"
        );
    }
}

// ---------------------------------------------------------------- docker-compose.yml

fn compose() -> Value {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("docker-compose.yml is YAML")
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A compose service's `environment`, in either the mapping or the `KEY=value` list form.
fn environment(service: &Value) -> BTreeMap<String, String> {
    match &service["environment"] {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), scalar(v).unwrap_or_default())).collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|entry| entry.split_once('=').unwrap_or((entry, "")))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// `depends_on` as name -> condition (`service_started` for the short list form).
fn depends_on(service: &Value) -> BTreeMap<String, String> {
    match &service["depends_on"] {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v["condition"].as_str().unwrap_or("service_started").to_string()))
            .collect(),
        Value::Array(list) => {
            list.iter().filter_map(Value::as_str).map(|k| (k.to_string(), "service_started".to_string())).collect()
        }
        _ => BTreeMap::new(),
    }
}

/// Published ports as `host:container` strings (short or long syntax).
fn published(service: &Value) -> Vec<String> {
    service["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| match p {
            Value::Object(_) => Some(format!(
                "{}:{}",
                scalar(&p["published"]).unwrap_or_default(),
                scalar(&p["target"]).unwrap_or_default()
            )),
            other => scalar(other),
        })
        .collect()
}

/// Everything wrong with the compose file `doc` against the task definitions.
fn compose_problems(doc: &Value, tasks: &BTreeMap<String, ContainerDefinition>) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(services) = doc["services"].as_object() else {
        return vec!["no services".into()];
    };

    match services.get("postgres") {
        Some(pg) if pg["image"].as_str().is_some_and(|i| i.starts_with("postgres:")) => {}
        _ => problems.push("no `postgres` service running a postgres image".into()),
    }
    let kafka = services.get("kafka");
    let kafka_env = kafka.map(environment).unwrap_or_default();
    if !kafka.and_then(|k| k["image"].as_str()).is_some_and(|i| i.starts_with("apache/kafka:")) {
        problems.push("no `kafka` service running apache/kafka".into());
    }
    let roles: BTreeSet<&str> =
        kafka_env.get("KAFKA_PROCESS_ROLES").map(|r| r.split(',').map(str::trim).collect()).unwrap_or_default();
    if roles != BTreeSet::from(["broker", "controller"]) || kafka_env.contains_key("KAFKA_ZOOKEEPER_CONNECT") {
        problems.push(format!("kafka is not a KRaft broker+controller: KAFKA_PROCESS_ROLES {roles:?}"));
    }
    let advertised = kafka_env.get("KAFKA_ADVERTISED_LISTENERS").cloned().unwrap_or_default();

    let expected_names: BTreeSet<&str> = SERVICES.iter().map(|d| d.name).chain(["postgres", "kafka"]).collect();
    let actual_names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    if expected_names != actual_names {
        problems.push(format!("compose services {actual_names:?}, expected {expected_names:?}"));
    }
    for (name, service) in services {
        // The gateway is the only published entry.
        let ports = published(service);
        // On loopback unless told otherwise.
        let wanted: Vec<String> = if name == "api-gateway" {
            vec!["${PULSETRACK_PUBLISH_ADDRESS:-127.0.0.1}:4004:4004".into()]
        } else {
            vec![]
        };
        if ports != wanted {
            problems.push(format!("{name}: publishes {ports:?}, expected {wanted:?}"));
        }
        for (dependency, condition) in depends_on(service) {
            match services.get(&dependency) {
                None => problems.push(format!("{name}: depends on unknown {dependency}")),
                Some(d) if d["healthcheck"]["test"].is_null() => {
                    problems.push(format!("{name}: depends on {dependency}, which has no healthcheck"))
                }
                Some(_) if condition != "service_healthy" => {
                    problems.push(format!("{name}: waits for {dependency} with {condition}, not service_healthy"))
                }
                Some(_) => {}
            }
        }
        // A secret is required from the caller (no default: none is well known), or
        // empty (not used here).
        for (variable, value) in environment(service) {
            let secret = (variable.contains("PASSWORD") || variable.contains("SECRET") || variable.ends_with("_KEY"))
                && variable != pulsetrack_settings::PASSWORD_POLICY.name();
            let required = value.starts_with("${") && value.contains(":?");
            if secret && !value.is_empty() && !required {
                problems.push(format!("{name}: {variable} is a literal or has a default; use ${{{variable}:?…}}"));
            }
        }
    }

    for def in &SERVICES {
        let name = def.name;
        let (Some(service), Some(task)) = (services.get(name), tasks.get(name)) else {
            problems.push(format!("{name}: missing from compose or from the task definitions"));
            continue;
        };
        let dockerfile = dockerfile::path(name);
        if service["build"]["context"].as_str() != Some(".")
            || service["build"]["dockerfile"].as_str() != Some(&dockerfile)
        {
            problems.push(format!("{name}: build is {}, expected context . and {dockerfile}", service["build"]));
        }
        let image = Context::default().image(name);
        if service["image"].as_str() != Some(image.as_str()) {
            problems.push(format!("{name}: image {}, expected {image} (the stack's default)", service["image"]));
        }
        let check = strings(&service["healthcheck"]["test"]);
        if check != task_check(task) {
            problems.push(format!("{name}: healthcheck {check:?} differs from the task definition's"));
        }

        let env = environment(service);
        let names: BTreeSet<String> = env.keys().cloned().collect();
        let task_names = task_variable_names(task);
        if names != task_names {
            let missing: Vec<_> = task_names.difference(&names).collect();
            let extra: Vec<_> = names.difference(&task_names).collect();
            problems.push(format!("{name}: environment lacks {missing:?} and has extra {extra:?} (task definition)"));
        }
        let mut wanted: Vec<(&str, String)> = vec![("HOST", "0.0.0.0".into()), ("PORT", def.http_port.to_string())];
        if let Some(grpc) = def.grpc_port {
            wanted.push(("GRPC_PORT", grpc.to_string()));
        }
        let mut needs: BTreeSet<String> = BTreeSet::new();
        if let Some(database) = def.database {
            wanted.extend([
                ("DATABASE_HOST", "postgres".into()),
                ("DATABASE_PORT", "5432".into()),
                ("DATABASE_NAME", database.into()),
            ]);
            needs.insert("postgres".into());
        }
        if def.kafka {
            wanted.extend([("KAFKA_BROKERS", "kafka:9092".into()), ("KAFKA_REPLICATION_FACTOR", "1".into())]);
            if !advertised.split(',').any(|l| l.ends_with("://kafka:9092")) {
                problems.push(format!("{name}: kafka does not advertise kafka:9092 ({advertised})"));
            }
            needs.insert("kafka".into());
        }
        // Callers reach the service under its compose name on the port of the call, in
        // the variable whose task definition value is the call's Cloud Map URL.
        // Compose keeps plain HTTP on its private network (no TLS identity).
        for (_, to, port) in CALLS.iter().filter(|c| c.0 == name) {
            let url = format!("https://{to}.{NAMESPACE}:{port}");
            match task.environment.iter().find(|v| v.value.as_str() == Some(url.as_str())).map(|v| v.name.as_str()) {
                Some(variable) => wanted.push((variable, format!("http://{to}:{port}"))),
                None => problems.push(format!("{name}: the task definition has no {url}")),
            }
            needs.insert((*to).into());
        }
        for (variable, value) in wanted {
            if env.get(variable) != Some(&value) {
                problems.push(format!("{name}: {variable} is {:?}, expected {value:?}", env.get(variable)));
            }
        }
        let waits: BTreeSet<String> = depends_on(service).into_keys().collect();
        if waits != needs {
            problems.push(format!("{name}: depends_on {waits:?}, expected {needs:?}"));
        }
    }
    problems
}

#[test]
fn compose_runs_the_services_as_the_task_definitions_do() {
    let problems = compose_problems(&compose(), &task_definitions());
    assert!(problems.is_empty(), "docker-compose.yml:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------- the checks catch mistakes

fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "fixture lacks {from:?}");
    text.replacen(from, to, 1)
}

#[test]
fn a_wrong_dockerfile_is_caught() {
    let tasks = task_definitions();
    let billing = SERVICES.iter().find(|d| d.name == "billing-service").expect("billing");
    let task = &tasks["billing-service"];
    let good = read(&dockerfile::path("billing-service"));
    assert!(dockerfile_problems(billing, task, &good).is_empty());

    let cases = [
        ("EXPOSE 4001 9001", "EXPOSE 4001", "EXPOSE"),
        ("USER 10001:10001", "USER root", "is root"),
        ("\"healthcheck\"]", "\"health\"]", "HEALTHCHECK runs"),
        ("--bin billing-service", "--bin patient-service", "cargo build --release"),
        ("/usr/local/bin/billing-service\n", "/usr/bin/billing-service\n", "does not COPY"),
        ("/etc/ssl/certs/rds-global-bundle.pem", "/etc/ssl/rds.pem", "does not COPY certs/rds-global-bundle.pem"),
    ];
    for (from, to, finding) in cases {
        let problems = dockerfile_problems(billing, task, &replace_once(&good, from, to));
        assert!(problems.iter().any(|p| p.contains(finding)), "{from} -> {to}: {problems:?}");
    }
    // Another service's Dockerfile does not pass for billing-service.
    assert!(!dockerfile_problems(billing, task, &read(&dockerfile::path("patient-service"))).is_empty());
}

#[test]
fn a_wrong_compose_file_is_caught() {
    let tasks = task_definitions();
    let good = read("docker-compose.yml");
    let problems_of = |text: &str| compose_problems(&serde_yaml_ng::from_str(text).expect("yaml"), &tasks);
    assert!(problems_of(&good).is_empty());
    let cases = [
        (
            "BILLING_GRPC_URL: http://billing-service:9001",
            "BILLING_GRPC_URL: http://billing-service:4001",
            "BILLING_GRPC_URL",
        ),
        ("      GRPC_PORT: \"9001\"\n", "", "environment lacks"),
        ("KAFKA_PROCESS_ROLES: broker,controller", "KAFKA_PROCESS_ROLES: broker", "KRaft"),
        ("DATABASE_NAME: auth_service", "DATABASE_NAME: auth", "DATABASE_NAME"),
        (
            "PULSETRACK_ADMIN_PASSWORD: ${PULSETRACK_ADMIN_PASSWORD:?",
            "PULSETRACK_ADMIN_PASSWORD: hunter22 #",
            "literal",
        ),
        (
            "JWT_SIGNING_SECRET: ${JWT_SIGNING_SECRET:?",
            "JWT_SIGNING_SECRET: ${JWT_SIGNING_SECRET:-well-known #",
            "default",
        ),
        ("\"${PULSETRACK_PUBLISH_ADDRESS:-127.0.0.1}:4004:4004\"", "\"4004:4004\"", "publishes"),
        (
            "      auth-service:\n        condition: service_healthy\n    healthcheck:\n      test: [\"CMD\", \"/usr/local/bin/patient-service\"",
            "    healthcheck:\n      test: [\"CMD\", \"/usr/local/bin/patient-service\"",
            "depends_on",
        ),
    ];
    for (from, to, finding) in cases {
        let problems = problems_of(&replace_once(&good, from, to));
        assert!(problems.iter().any(|p| p.contains(finding)), "{from} -> {to}: {problems:?}");
    }
}

// ---------------------------------------------------------------- external linters

#[test]
fn dockerfiles_pass_hadolint() {
    if run("hadolint", &["--version"]).is_none_or(|o| !o.status.success()) {
        return missing("hadolint");
    }
    let files: Vec<String> = SERVICES.iter().map(|d| dockerfile::path(d.name)).collect();
    let args: Vec<&str> = files.iter().map(String::as_str).collect();
    let output = run("hadolint", &[&["--no-color"], &args[..]].concat()).expect("hadolint runs");
    assert!(
        output.status.success(),
        "hadolint findings:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
