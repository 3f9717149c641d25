//! CloudWatch alarms and a dashboard for the deployed system (issue 16), an L2
//! construct over the load balancer, the databases and patient-service's outbox gauges
//! (published as embedded-metric-format log lines, `CLOUDWATCH_METRICS_NAMESPACE`):
//! - the ALB answering 5xx itself, or the targets answering 5xx;
//! - an unhealthy target behind the ALB;
//! - a database's CPU high, or its free storage low;
//! - an outbox destination whose oldest pending row has waited too long (or that is
//!   not reported at all: patient-service down counts as breaching).
//!
//! Every alarm notifies (and reports recovery to) one SNS topic, encrypted at rest,
//! whose ARN is a stack output for operators to subscribe to.

use serde_json::{Value, json};

use crate::{
    core::{Expr, Handle, Scope},
    elb::PublicLoadBalancer,
    rds::Database,
    resources::{self as res, LoadBalancerAttr, TargetGroupAttr},
};

/// The namespace patient-service publishes the outbox's gauges to.
pub const METRICS_NAMESPACE: &str = "PulseTrack";
/// The outbox's destinations, as patient-service names them in its gauges.
pub const OUTBOX_DESTINATIONS: [&str; 3] = ["billing", "billing-close", "patient-event"];
/// An outbox row older than this means a destination is not being delivered to.
const OUTBOX_AGE_LIMIT_S: f64 = 120.0;

pub struct Monitoring {
    pub topic: Handle<res::Topic>,
    pub alarms: Vec<Handle<res::Alarm>>,
    pub dashboard: Handle<res::Dashboard>,
}

/// What one alarm watches, and when it fires.
struct Watch<'a> {
    id: String,
    description: String,
    namespace: &'a str,
    metric: &'a str,
    dimensions: Vec<(&'a str, Expr)>,
    statistic: &'a str,
    comparison: &'a str,
    threshold: f64,
    /// Fires when `datapoints` of the last `periods` minutes breach.
    periods: u32,
    datapoints: u32,
    missing: &'a str,
}

impl Monitoring {
    pub fn new(scope: &mut Scope<'_>, alb: &PublicLoadBalancer, databases: &[(&str, &Database)]) -> Self {
        let topic = scope.add(
            "AlarmTopic",
            res::Topic { display_name: "PulseTrack alarms".into(), kms_master_key_id: "alias/aws/sns".into() },
        );
        let mut watches = load_balancer_watches(alb);
        for (name, db) in databases {
            watches.extend(database_watches(name, db));
        }
        watches.extend(OUTBOX_DESTINATIONS.map(outbox_watch));
        let alarms = watches.into_iter().map(|w| alarm(scope, &topic, w)).collect();
        let dashboard = scope.add(
            "Dashboard",
            res::Dashboard {
                dashboard_name: Expr::Sub("${AWS::StackName}".into()),
                dashboard_body: Expr::Sub(dashboard_body(alb, databases)),
            },
        );
        scope.add_output("AlarmTopicArn", "SNS topic every alarm notifies (subscribe to it)", topic.r#ref());
        Self { topic, alarms, dashboard }
    }
}

/// The public entry's alarms: 5xx answers, and unhealthy gateway tasks.
fn load_balancer_watches(alb: &PublicLoadBalancer) -> Vec<Watch<'static>> {
    let lb = || ("LoadBalancer", alb.load_balancer.attr(LoadBalancerAttr::LoadBalancerFullName));
    let tg = || ("TargetGroup", alb.target_group.attr(TargetGroupAttr::TargetGroupFullName));
    // 5xx from the load balancer itself, or from the gateway through it.
    let errors = |id: &str, description: &str, metric: &'static str| Watch {
        id: id.into(),
        description: description.into(),
        namespace: "AWS/ApplicationELB",
        metric,
        dimensions: vec![lb()],
        statistic: "Sum",
        comparison: "GreaterThanOrEqualToThreshold",
        threshold: 10.0,
        periods: 5,
        datapoints: 3,
        missing: "notBreaching",
    };
    vec![
        errors(
            "AlbErrorsAlarm",
            "The public load balancer answered 5xx itself (no healthy target, or one failing)",
            "HTTPCode_ELB_5XX_Count",
        ),
        errors(
            "TargetErrorsAlarm",
            "The gateway answered 5xx through the public load balancer",
            "HTTPCode_Target_5XX_Count",
        ),
        Watch {
            id: "UnhealthyTargetsAlarm".into(),
            description: "A gateway task behind the public load balancer fails its health check".into(),
            namespace: "AWS/ApplicationELB",
            metric: "UnHealthyHostCount",
            dimensions: vec![tg(), lb()],
            statistic: "Maximum",
            comparison: "GreaterThanOrEqualToThreshold",
            threshold: 1.0,
            periods: 3,
            datapoints: 3,
            missing: "notBreaching",
        },
    ]
}

/// One database's alarms: its CPU high, its free storage low.
fn database_watches(name: &str, db: &Database) -> [Watch<'static>; 2] {
    let pascal = pascal(name);
    let instance = || ("DBInstanceIdentifier", db.instance.r#ref());
    [
        Watch {
            id: format!("{pascal}DbCpuAlarm"),
            description: format!("The {name} database's CPU is above 80%"),
            namespace: "AWS/RDS",
            metric: "CPUUtilization",
            dimensions: vec![instance()],
            statistic: "Average",
            comparison: "GreaterThanThreshold",
            threshold: 80.0,
            periods: 5,
            datapoints: 5,
            missing: "missing",
        },
        Watch {
            id: format!("{pascal}DbStorageAlarm"),
            description: format!("The {name} database has less than 2 GiB of free storage"),
            namespace: "AWS/RDS",
            metric: "FreeStorageSpace",
            dimensions: vec![instance()],
            statistic: "Minimum",
            comparison: "LessThanThreshold",
            threshold: 2.0 * 1024.0 * 1024.0 * 1024.0,
            periods: 3,
            datapoints: 3,
            missing: "missing",
        },
    ]
}

/// An outbox destination whose oldest pending row waits too long; patient-service
/// reporting nothing breaches too.
fn outbox_watch(destination: &'static str) -> Watch<'static> {
    Watch {
        id: format!("Outbox{}AgeAlarm", pascal(destination)),
        description: format!(
            "patient-service's outbox row for {destination} has waited more than {OUTBOX_AGE_LIMIT_S} s, or \
             patient-service reports nothing"
        ),
        namespace: METRICS_NAMESPACE,
        metric: "OutboxOldestPendingAgeSeconds",
        dimensions: vec![("Destination", Expr::lit(destination))],
        statistic: "Maximum",
        comparison: "GreaterThanThreshold",
        threshold: OUTBOX_AGE_LIMIT_S,
        periods: 3,
        datapoints: 3,
        missing: "breaching",
    }
}

fn alarm(scope: &mut Scope<'_>, topic: &Handle<res::Topic>, w: Watch<'_>) -> Handle<res::Alarm> {
    scope.add(
        &w.id,
        res::Alarm {
            alarm_description: w.description,
            namespace: w.namespace.into(),
            metric_name: w.metric.into(),
            dimensions: w
                .dimensions
                .into_iter()
                .map(|(name, value)| res::MetricDimension { name: name.into(), value })
                .collect(),
            statistic: w.statistic.into(),
            period: 60,
            evaluation_periods: w.periods,
            datapoints_to_alarm: w.datapoints,
            threshold: w.threshold,
            comparison_operator: w.comparison.into(),
            treat_missing_data: w.missing.into(),
            alarm_actions: vec![topic.r#ref()],
            ok_actions: vec![topic.r#ref()],
        },
    )
}

/// `patient-event` → `PatientEvent`.
fn pascal(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The dashboard's JSON, with `${Id.Attr}` placeholders for `Fn::Sub`.
fn dashboard_body(alb: &PublicLoadBalancer, databases: &[(&str, &Database)]) -> String {
    let lb = alb.load_balancer.sub(LoadBalancerAttr::LoadBalancerFullName);
    let tg = alb.target_group.sub(TargetGroupAttr::TargetGroupFullName);
    let widget = |title: &str, metrics: Vec<Value>, stat: &str, x: u32, y: u32| {
        json!({
            "type": "metric", "x": x, "y": y, "width": 12, "height": 6,
            "properties": { "title": title, "region": "${AWS::Region}", "stat": stat, "period": 60, "metrics": metrics }
        })
    };
    let per_db = |metric: &str| -> Vec<Value> {
        databases
            .iter()
            .map(|(_, db)| json!(["AWS/RDS", metric, "DBInstanceIdentifier", format!("${{{}}}", db.instance.id())]))
            .collect()
    };
    let outbox: Vec<Value> = OUTBOX_DESTINATIONS
        .iter()
        .map(|d| json!([METRICS_NAMESPACE, "OutboxOldestPendingAgeSeconds", "Destination", d]))
        .collect();
    let widgets = vec![
        widget(
            "Requests through the load balancer",
            vec![json!(["AWS/ApplicationELB", "RequestCount", "LoadBalancer", lb])],
            "Sum",
            0,
            0,
        ),
        widget(
            "5xx: load balancer and gateway",
            vec![
                json!(["AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count", "LoadBalancer", lb]),
                json!(["AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "LoadBalancer", lb]),
            ],
            "Sum",
            12,
            0,
        ),
        widget(
            "Gateway response time p99 (s)",
            vec![json!(["AWS/ApplicationELB", "TargetResponseTime", "LoadBalancer", lb])],
            "p99",
            0,
            6,
        ),
        widget(
            "Healthy and unhealthy gateway tasks",
            vec![
                json!(["AWS/ApplicationELB", "HealthyHostCount", "TargetGroup", tg, "LoadBalancer", lb]),
                json!(["AWS/ApplicationELB", "UnHealthyHostCount", "TargetGroup", tg, "LoadBalancer", lb]),
            ],
            "Maximum",
            12,
            6,
        ),
        widget("Database CPU (%)", per_db("CPUUtilization"), "Average", 0, 12),
        widget("Database free storage (bytes)", per_db("FreeStorageSpace"), "Minimum", 12, 12),
        widget("Outbox: oldest pending row (s)", outbox, "Maximum", 0, 18),
    ];
    json!({ "widgets": widgets }).to_string()
}

#[cfg(test)]
mod tests {
    use super::pascal;

    #[test]
    fn names_become_pascal_case_ids() {
        assert_eq!(pascal("patient-event"), "PatientEvent");
        assert_eq!(pascal("billing_service"), "BillingService");
        assert_eq!(pascal("billing"), "Billing");
    }
}
