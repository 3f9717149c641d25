//! `AWS::CloudWatch::Alarm`, `AWS::CloudWatch::Dashboard`.

use serde::{Deserialize, Serialize};

use crate::expr::Expr;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Alarm {
    pub alarm_description: String,
    pub namespace: String,
    pub metric_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dimensions: Vec<MetricDimension>,
    /// `Sum`, `Average`, `Minimum`, `Maximum`, `SampleCount`.
    pub statistic: String,
    /// Seconds.
    pub period: u32,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub threshold: f64,
    /// `GreaterThanOrEqualToThreshold`, `LessThanThreshold`, ...
    pub comparison_operator: String,
    /// `breaching`, `notBreaching`, `ignore` or `missing`.
    pub treat_missing_data: String,
    pub alarm_actions: Vec<Expr>,
    #[serde(rename = "OKActions")]
    pub ok_actions: Vec<Expr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDimension {
    pub name: String,
    pub value: Expr,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dashboard {
    pub dashboard_name: Expr,
    /// The dashboard's JSON, as a string (an `Fn::Sub` naming the stack's resources).
    pub dashboard_body: Expr,
}
