//! The environment contract between the stack model and the services, defined once.
//!
//! Every variable a service reads is a [`Var`] constant whose name is its identifier,
//! declared by the one settings field that holds it (the name is written nowhere
//! else), and every service's settings are a struct generic over the value type: the
//! services read them with `V` = the raw environment value
//! (`pulsetrack_common::config::Raw`), the stack model (`pulsetrack-stacks`) builds
//! them with `V` = a task-definition value and renders `Environment` and `Secrets`
//! from [`Settings::vars`]. A renamed field or variable is a compile error on both sides; a
//! new task-definition variable does not compile until the stack fills it.
//!
//! Variables the task definitions leave unset (tuning knobs with defaults, aliases) sit
//! in each struct's `tuning` group, which the stack fills as a whole with "unset", so a
//! new knob needs no stack change.

use std::fmt;

mod values;

pub use self::values::{
    KafkaSecurityProtocol, MigrationMode, PasswordPolicy, SignupMode, TLS_LOCAL_NAME, TlsClientAuth,
};

/// The name of one environment variable; only this crate makes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Var(&'static str);

impl Var {
    pub const fn name(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// A group of settings: built from one value per variable, and listed again as
/// `(variable, value)` pairs, nested groups flattened, both in declaration order.
pub trait Settings<V>: Sized {
    /// Builds every field with `f` of its variable, in declaration order.
    fn from_fn(f: impl FnMut(Var) -> V) -> Self;

    /// Calls `f` with every variable and its value, in declaration order.
    fn for_each<'a>(&'a self, f: &mut dyn FnMut(Var, &'a V));

    /// Every variable with its value, in declaration order.
    fn vars(&self) -> Vec<(Var, &V)> {
        let mut out = Vec::new();
        self.for_each(&mut |var, value| out.push((var, value)));
        out
    }
}

/// Declares settings structs generic over the value type `V`: `field = VAR` is one
/// variable (a `V`) and declares `pub const VAR: Var` named "VAR" with the field's
/// docs; `field: Group` is a nested group (a `Group<V>`).
macro_rules! settings {
    (@const = $var:ident $(#[$doc:meta])*) => { $(#[$doc])* pub const $var: Var = Var(stringify!($var)); };
    (@const : $group:ident $(#[$doc:meta])*) => {};
    (@type = $var:ident $v:ident) => { $v };
    (@type : $group:ident $v:ident) => { $group<$v> };
    (@build = $var:ident $f:ident) => { $f($var) };
    (@build : $group:ident $f:ident) => { $group::from_fn(&mut $f) };
    (@visit = $var:ident $value:expr, $f:ident) => { $f($var, &$value) };
    (@visit : $group:ident $value:expr, $f:ident) => { $value.for_each($f) };
    ($( $(#[$doc:meta])* pub struct $name:ident {
        $( $(#[$field_doc:meta])* $field:ident $kind:tt $what:ident ),* $(,)?
    } )*) => {$(
        $(#[$doc])*
        pub struct $name<V> {
            $( $(#[$field_doc])* pub $field: settings!(@type $kind $what V), )*
        }

        /// The variables and their values, flattened.
        impl<V: fmt::Debug> fmt::Debug for $name<V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map().entries(self.vars()).finish()
            }
        }

        $( settings!(@const $kind $what $(#[$field_doc])*); )*

        impl<V> Settings<V> for $name<V> {
            fn from_fn(mut f: impl FnMut(Var) -> V) -> Self {
                Self { $( $field: settings!(@build $kind $what f), )* }
            }

            fn for_each<'a>(&'a self, f: &mut dyn FnMut(Var, &'a V)) {
                $( settings!(@visit $kind $what self.$field, f); )*
            }
        }
    )*};
}

settings! {
    /// Where a service listens.
    pub struct Listen {
        /// Address to bind (default `127.0.0.1`).
        host = HOST,
        /// HTTP port (default: the service's).
        port = PORT,
        tls: Tls,
        tuning: ListenTuning,
    }

    /// The service's TLS identity on its listener and on its calls to other services
    /// (all three or none; none: plain HTTP, as `deployer up` keeps on loopback). The
    /// stack injects them from a secret the deployer issues per service.
    pub struct Tls {
        /// PEM certificate chain the service presents, as a server and as a client.
        cert = TLS_CERT,
        /// PEM private key of that certificate; a secret.
        key = TLS_KEY,
        /// PEM certificate of the internal CA: the servers a service calls, and (with
        /// `TLS_CLIENT_AUTH=required`) its clients, must present a certificate it signed.
        ca = TLS_CA,
        /// A [`TlsClientAuth`]: `required` (default) or `none` (api-gateway behind the
        /// ALB, which presents no certificate).
        client_auth = TLS_CLIENT_AUTH,
    }

    pub struct ListenTuning {
        /// The seed's name for `PORT`, read when `PORT` is unset.
        server_port = SERVER_PORT,
        /// Time a connection has to send a whole request header; it also bounds the
        /// wait for the next request on an idle keep-alive connection (default 10 000).
        header_read_timeout_ms = HTTP_HEADER_READ_TIMEOUT_MS,
        /// Time a request has from its header to its whole response, body read
        /// included (default 30 000); past it the answer is 503.
        request_timeout_ms = HTTP_REQUEST_TIMEOUT_MS,
        /// Requests handled at once; one more is refused with 503 at once instead of
        /// queueing (default 1 024).
        max_in_flight = HTTP_MAX_IN_FLIGHT,
    }

    pub struct Logging {
        /// `json` for one JSON object per log line.
        format = LOG_FORMAT,
        /// The tracing filter (default `info`).
        filter = RUST_LOG,
        /// An OTLP/gRPC collector (`http://host:4317`): spans are exported there when
        /// set; trace context is propagated and logged either way.
        otlp_endpoint = OTEL_EXPORTER_OTLP_ENDPOINT,
    }

    /// The service's Postgres database; user and passwords are secrets.
    pub struct Database {
        host = DATABASE_HOST,
        port = DATABASE_PORT,
        name = DATABASE_NAME,
        /// The service's own least-privileged role, which it serves with.
        user = DATABASE_USER,
        password = DATABASE_PASSWORD,
        /// `disable`, `prefer` (default), `require`, `verify-ca` or `verify-full`.
        ssl_mode = DATABASE_SSL_MODE,
        /// PEM file of the CAs the server's certificate must chain to (`verify-*`).
        ssl_root_cert = DATABASE_SSL_ROOT_CERT,
        /// The role that owns the schema: runs the migrations and creates or updates
        /// `DATABASE_USER` at start-up (both or neither; unset: `DATABASE_USER` migrates).
        admin_user = DATABASE_ADMIN_USER,
        admin_password = DATABASE_ADMIN_PASSWORD,
        tuning: DatabaseTuning,
    }

    pub struct DatabaseTuning {
        /// The whole Postgres URL, instead of the `DATABASE_*` parts.
        url = DATABASE_URL,
        max_connections = DATABASE_MAX_CONNECTIONS,
        acquire_timeout_ms = DATABASE_ACQUIRE_TIMEOUT_MS,
        /// A [`MigrationMode`]: `run` (default: the service migrates at start-up) or
        /// `check` (`<service> migrate` did; the service only checks).
        migrations = DATABASE_MIGRATIONS,
    }

    pub struct Kafka {
        /// Comma-separated `host:port` of the brokers.
        brokers = KAFKA_BROKERS,
        replication_factor = KAFKA_REPLICATION_FACTOR,
        /// A [`KafkaSecurityProtocol`]: `plaintext` (default), `ssl` (TLS to the
        /// brokers), `sasl_plaintext` or `sasl_ssl` (the same with a SCRAM-SHA-512 login).
        security_protocol = KAFKA_SECURITY_PROTOCOL,
        tuning: KafkaTuning,
    }

    pub struct KafkaTuning {
        /// Another name for `KAFKA_BROKERS`.
        bootstrap_servers = KAFKA_BOOTSTRAP_SERVERS,
        topic_partitions = KAFKA_TOPIC_PARTITIONS,
        /// With `ssl`: a PEM file of the CAs that sign the brokers' certificates;
        /// unset: the system trust store (MSK's certificates chain to Amazon's public CA).
        ssl_ca_file = KAFKA_SSL_CA_FILE,
        /// With `sasl_plaintext` or `sasl_ssl`: the service's SCRAM-SHA-512 user at the
        /// brokers (both or neither).
        sasl_username = KAFKA_SASL_USERNAME,
        /// That user's password; a secret.
        sasl_password = KAFKA_SASL_PASSWORD,
    }

    /// An audited service's trail: the key its entries are sealed with and where its
    /// signed head is anchored, both outside the database.
    pub struct Audit {
        /// A secret (at least 32 characters) from which the trail's HMAC key and its
        /// anchor signing key (Ed25519) are derived (HKDF-SHA256); never stored in the
        /// database. The stack generates one per service in Secrets Manager, `up` keeps
        /// them in its data folder.
        key = AUDIT_KEY,
        /// Where the trail's signed head is appended: `file:<path>` (an append-only
        /// file; `up` keeps it in its data folder) or `s3://<bucket>/<prefix>` (a bucket
        /// with Object Lock, which the stack creates).
        anchors = AUDIT_ANCHORS,
        tuning: AuditTuning,
    }

    pub struct AuditTuning {
        /// Seconds between two anchors of the trail's head (default 30, 1 to 60).
        anchor_interval_seconds = AUDIT_ANCHOR_INTERVAL_SECONDS,
    }

    /// The secret of the gateway's calls that record its refusals in auth-service's
    /// trail: a group of its own, so that api-gateway (which mints the credentials) and
    /// auth-service (which verifies them) read the one variable.
    pub struct GatewayAuditCaller {
        /// A secret (at least 32 characters) from which the key of those credentials is
        /// derived (HKDF-SHA256); the stack generates it in Secrets Manager for these two
        /// services only, `up` keeps it in its data folder.
        secret = GATEWAY_AUDIT_SECRET,
    }

    /// The admin account auth-service seeds (both or neither); the password is a secret.
    pub struct Admin {
        email = PULSETRACK_ADMIN_EMAIL,
        password = PULSETRACK_ADMIN_PASSWORD,
    }

    /// What auth-service writes into tokens and api-gateway expects.
    pub struct JwtClaims {
        issuer = JWT_ISSUER,
        audience = JWT_AUDIENCE,
    }

    /// What a service verifies its callers' tokens with: auth-service's published keys
    /// and its revocation feed.
    pub struct TokenCheck {
        /// auth-service's base URL (default `http://127.0.0.1:4005`): its JWKS and its
        /// revocation feed, and for the gateway where `/auth/**` goes.
        auth_service_url = AUTH_SERVICE_URL,
        tuning: TokenCheckTuning,
    }

    pub struct TokenCheckTuning {
        jwt: JwtClaims,
        /// Default: auth-service's `/.well-known/jwks.json`.
        jwks_url = AUTH_JWKS_URL,
        /// An Ed25519 SPKI PEM used instead of the JWKS.
        jwt_public_key = JWT_PUBLIC_KEY,
    }

    /// The secret of the service credentials on billing-service's gRPC calls: a group of
    /// its own, so that patient-service (which mints them) and billing-service (which
    /// verifies them) read the one variable.
    pub struct BillingCaller {
        /// A secret (at least 32 characters) from which the key of the service
        /// credentials is derived (HKDF-SHA256); the stack generates it in Secrets
        /// Manager for these two services only, `up` keeps it in its data folder.
        secret = BILLING_GRPC_SECRET,
    }

    pub struct BillingService {
        listen: Listen,
        logging: Logging,
        /// billing-service's gRPC port.
        grpc_port = GRPC_PORT,
        database: Database,
        audit: Audit,
        token_check: TokenCheck,
        billing_caller: BillingCaller,
        tuning: BillingTuning,
    }

    pub struct BillingTuning {
        /// `true` to serve gRPC server reflection on the gRPC port, for a person with
        /// grpcurl (default `false`: it tells anyone who connects every method).
        grpc_reflection = GRPC_REFLECTION,
    }

    pub struct AnalyticsService {
        listen: Listen,
        logging: Logging,
        database: Database,
        audit: Audit,
        kafka: Kafka,
        token_check: TokenCheck,
        tuning: AnalyticsTuning,
    }

    pub struct AnalyticsTuning {
        group_id = KAFKA_GROUP_ID,
    }

    pub struct AuthService {
        listen: Listen,
        logging: Logging,
        database: Database,
        audit: Audit,
        admin: Admin,
        gateway_audit_caller: GatewayAuditCaller,
        /// A secret (at least 32 characters) from which the token signing key is derived
        /// (HKDF-SHA256); the stack generates it in Secrets Manager.
        jwt_signing_secret = JWT_SIGNING_SECRET,
        /// A [`SignupMode`]: what a self-signed-up account may do (default `approval`).
        signup_mode = SIGNUP_MODE,
        /// A [`PasswordPolicy`]: what a new password must be (default `strong`).
        password_policy = PASSWORD_POLICY,
        /// A secret (at least 32 characters) from which the key that encrypts TOTP
        /// secrets at rest is derived (HKDF-SHA256); the stack generates it in Secrets
        /// Manager, `up` keeps it in its data folder. Unset: TOTP enrolment is refused.
        mfa_encryption_key = MFA_ENCRYPTION_KEY,
        /// Comma-separated roles whose accounts must use a second factor: until they
        /// enrol, their login gets a token that may only enrol (default: none; the
        /// stack's production profile sets `ADMIN,AUDITOR`).
        require_mfa_roles = REQUIRE_MFA_ROLES,
        tuning: AuthTuning,
    }

    pub struct AuthTuning {
        jwt: JwtClaims,
        /// An access token's life in seconds (default 600, at most 900).
        jwt_ttl_seconds = JWT_TTL_SECONDS,
        /// A session with no refresh for this long ends (default 1 800).
        session_idle_timeout_seconds = SESSION_IDLE_TIMEOUT_SECONDS,
        /// A session ends this long after its login, whatever its use (default 43 200).
        session_max_age_seconds = SESSION_MAX_AGE_SECONDS,
        /// Ed25519 PKCS#8 PEM, instead of `JWT_SIGNING_SECRET`.
        jwt_private_key = JWT_PRIVATE_KEY,
        /// Failed logins one client address may make per minute before it gets 429
        /// (default 10; the same number is its burst).
        login_failures_per_minute = LOGIN_FAILURES_PER_MINUTE,
    }

    pub struct PatientService {
        listen: Listen,
        logging: Logging,
        database: Database,
        audit: Audit,
        kafka: Kafka,
        token_check: TokenCheck,
        billing_grpc_url = BILLING_GRPC_URL,
        billing_caller: BillingCaller,
        /// The CloudWatch namespace the outbox's age and backlog are published to, as
        /// embedded-metric-format log lines (the stack sets `PulseTrack`, and alarms on
        /// them); unset: not published.
        cloudwatch_metrics_namespace = CLOUDWATCH_METRICS_NAMESPACE,
        tuning: PatientTuning,
    }

    /// The outbox dispatcher's timings.
    pub struct PatientTuning {
        outbox_poll_interval_ms = OUTBOX_POLL_INTERVAL_MS,
        outbox_base_backoff_ms = OUTBOX_BASE_BACKOFF_MS,
        outbox_max_backoff_ms = OUTBOX_MAX_BACKOFF_MS,
        billing_deadline_ms = BILLING_DEADLINE_MS,
        kafka_delivery_timeout_ms = KAFKA_DELIVERY_TIMEOUT_MS,
    }

    pub struct ApiGateway {
        listen: Listen,
        logging: Logging,
        token_check: TokenCheck,
        gateway_audit_caller: GatewayAuditCaller,
        patient_service_url = PATIENT_SERVICE_URL,
        billing_service_url = BILLING_SERVICE_URL,
        analytics_service_url = ANALYTICS_SERVICE_URL,
        /// Requests per second one caller may make (an account by its token, or a client
        /// address on the public routes); past it, 429 with Retry-After.
        rate_limit_per_second = RATE_LIMIT_PER_SECOND,
        /// Comma-separated CIDRs of the proxies in front of the gateway (the ALB's
        /// subnets); only from these is `X-Forwarded-For` believed (default: none).
        trusted_proxies = TRUSTED_PROXIES,
        tuning: GatewayTuning,
    }

    pub struct GatewayTuning {
        upstream_timeout_ms = UPSTREAM_TIMEOUT_MS,
        max_body_bytes = MAX_BODY_BYTES,
        /// Requests one caller may make at once above `RATE_LIMIT_PER_SECOND`
        /// (default: twice the rate).
        rate_limit_burst = RATE_LIMIT_BURST,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The variables of `S`, in declaration order.
    fn names<S: Settings<Var>>() -> Vec<Var> {
        S::from_fn(|var| var).vars().into_iter().map(|(var, _)| var).collect()
    }

    /// Every service's variables; `from_fn` visits them in the order `vars` lists them,
    /// each once, and each field holds the value made for its own variable.
    fn check<S: Settings<String>>() -> Vec<Var> {
        let mut built = Vec::new();
        let settings = S::from_fn(|var| {
            built.push(var);
            format!("value of {var}")
        });
        let listed: Vec<Var> = settings.vars().into_iter().map(|(var, _)| var).collect();
        assert_eq!(built, listed, "from_fn and vars agree on the order");
        for (var, value) in settings.vars() {
            assert_eq!(value, &format!("value of {var}"));
        }
        let unique: BTreeSet<&str> = listed.iter().map(|v| v.name()).collect();
        assert_eq!(unique.len(), listed.len(), "a variable twice in one service: {listed:?}");
        listed
    }

    /// Every service's first variables: where it listens, and its TLS identity.
    const LISTEN: [Var; 10] = [
        HOST,
        PORT,
        TLS_CERT,
        TLS_KEY,
        TLS_CA,
        TLS_CLIENT_AUTH,
        SERVER_PORT,
        HTTP_HEADER_READ_TIMEOUT_MS,
        HTTP_REQUEST_TIMEOUT_MS,
        HTTP_MAX_IN_FLIGHT,
    ];

    #[test]
    fn every_service_round_trips_with_unique_names() {
        for vars in [
            check::<BillingService<String>>(),
            check::<AnalyticsService<String>>(),
            check::<AuthService<String>>(),
            check::<PatientService<String>>(),
            check::<ApiGateway<String>>(),
        ] {
            assert!(vars.starts_with(&[&LISTEN[..], &[LOG_FORMAT, RUST_LOG]].concat()), "{vars:?}");
        }
    }

    #[test]
    fn vars_are_in_declaration_order_with_groups_flattened() {
        assert_eq!(names::<Listen<Var>>(), LISTEN);
        assert_eq!(
            names::<BillingService<Var>>(),
            [
                names::<Listen<Var>>(),
                names::<Logging<Var>>(),
                vec![GRPC_PORT],
                names::<Database<Var>>(),
                names::<Audit<Var>>(),
                names::<TokenCheck<Var>>(),
                vec![BILLING_GRPC_SECRET, GRPC_REFLECTION]
            ]
            .concat()
        );
        // One variable, read by the service that mints the credentials and the one that
        // verifies them.
        assert!(names::<PatientService<Var>>().contains(&BILLING_GRPC_SECRET));
        assert!(names::<ApiGateway<Var>>().contains(&GATEWAY_AUDIT_SECRET));
        assert!(names::<AuthService<Var>>().contains(&GATEWAY_AUDIT_SECRET));
        // Every service with a trail has its key and its anchors.
        assert_eq!(names::<Audit<Var>>(), [AUDIT_KEY, AUDIT_ANCHORS, AUDIT_ANCHOR_INTERVAL_SECONDS]);
        assert_eq!(
            names::<TokenCheck<Var>>(),
            [AUTH_SERVICE_URL, JWT_ISSUER, JWT_AUDIENCE, AUTH_JWKS_URL, JWT_PUBLIC_KEY]
        );
        let urls = [PATIENT_SERVICE_URL, BILLING_SERVICE_URL, ANALYTICS_SERVICE_URL];
        let after = names::<Listen<Var>>().len()
            + names::<Logging<Var>>().len()
            + names::<TokenCheck<Var>>().len()
            + names::<GatewayAuditCaller<Var>>().len();
        assert_eq!(names::<ApiGateway<Var>>()[after..after + 3], urls);
    }

    #[test]
    fn the_kafka_security_protocol_round_trips() {
        for p in KafkaSecurityProtocol::ALL {
            assert_eq!(p.as_str().parse(), Ok(p));
            assert_eq!(p.with_sasl().tls(), p.tls(), "{p}");
            assert!(p.with_sasl().sasl(), "{p}");
        }
        assert_eq!(" SSL ".parse(), Ok(KafkaSecurityProtocol::Ssl));
        assert_eq!("SASL_SSL".parse(), Ok(KafkaSecurityProtocol::SaslSsl));
        assert!("sasl_gssapi".parse::<KafkaSecurityProtocol>().is_err());
    }

    #[test]
    fn the_signup_mode_round_trips() {
        for m in SignupMode::ALL {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        assert_eq!(" Open ".parse(), Ok(SignupMode::Open));
        assert!("invite".parse::<SignupMode>().is_err());
    }

    #[test]
    fn a_variable_is_named_by_its_identifier() {
        assert_eq!(PULSETRACK_ADMIN_EMAIL.name(), "PULSETRACK_ADMIN_EMAIL");
        assert_eq!(KAFKA_BROKERS.to_string(), "KAFKA_BROKERS");
    }
}
