//! CloudWatch metrics as embedded metric format (EMF) log lines: Lambda sends stdout to
//! CloudWatch Logs, which turns these lines into metrics without any API call or permission.
//! `SourceLagSeconds` (how far behind its newest event a source is) feeds the module's
//! source-lag alarm; it is written per source and once without dimensions (the aggregate
//! series the alarm watches by default).

use chrono::{DateTime, Utc};
use serde_json::json;

/// The EMF lines for the lag of `sources` (name, lag in seconds) at `now`.
pub fn source_lag_lines(
    namespace: &str,
    sources: &[(String, i64)],
    now: DateTime<Utc>,
) -> Vec<String> {
    sources
        .iter()
        .map(|(name, lag)| {
            json!({
                "_aws": {
                    "Timestamp": now.timestamp_millis(),
                    "CloudWatchMetrics": [{
                        "Namespace": namespace,
                        "Dimensions": [["Source"], []],
                        "Metrics": [{"Name": "SourceLagSeconds", "Unit": "Seconds"}],
                    }],
                },
                "Source": name,
                "SourceLagSeconds": lag,
            })
            .to_string()
        })
        .collect()
}

/// Writes the lines to stdout, where Lambda's log capture picks them up.
pub fn emit(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in lines {
        // A metric line that cannot be written is not worth failing an invocation for.
        let _ = writeln!(out, "{l}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_embedded_metric_format() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let lines = source_lag_lines("Picket", &[("aws_cloudtrail:us-east-1".into(), 42)], now);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 1_800_000_000_000_i64);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Picket");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "SourceLagSeconds"
        );
        assert_eq!(v["SourceLagSeconds"], 42);
        assert_eq!(v["Source"], "aws_cloudtrail:us-east-1");
    }
}
