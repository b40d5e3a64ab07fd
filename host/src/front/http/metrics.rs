//! `/metrics`: the engine's counters and the API's own request counts in the Prometheus text
//! exposition format (version 0.0.4). Labels carry only provider names, statuses, outcomes,
//! routes (the route pattern, never the id in the path), methods and status codes: no
//! addresses, subjects or tokens.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use super::backend::EngineMetrics;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Requests answered by the API, by route pattern, method and status code.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
}

impl HttpMetrics {
    /// Counts one answered request.
    pub fn count(&self, route: &str, method: &str, code: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests
            .entry((route.to_string(), method.to_string(), code))
            .or_insert(0) += 1;
    }

    fn snapshot(&self) -> Vec<((String, String, u16), u64)> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// Renders the engine's metrics and the request counts.
pub fn render(engine: &EngineMetrics, http: &HttpMetrics) -> String {
    let mut out = String::with_capacity(4096);
    family(
        &mut out,
        "mailhost_emails",
        "gauge",
        "Emails in mail.db by status.",
    );
    for (status, count) in &engine.emails {
        sample(
            &mut out,
            "mailhost_emails",
            &[("status", status.as_str())],
            *count,
        );
    }
    family(
        &mut out,
        "mailhost_sends_total",
        "counter",
        "Provider calls by outcome (sent, failed, retried, unknown, reconciled).",
    );
    for send in &engine.sends {
        sample(
            &mut out,
            "mailhost_sends_total",
            &[("outcome", &send.outcome)],
            send.count,
        );
    }
    for (name, help, value) in [
        (
            "mailhost_retries_total",
            "Emails put back in the queue for another attempt.",
            engine.retries,
        ),
        (
            "mailhost_throttles_total",
            "Sends the provider answered with throttling.",
            engine.throttles,
        ),
        (
            "mailhost_limit_waits_total",
            "Sends held back because a sending limit was spent.",
            engine.limit_waits,
        ),
    ] {
        family(&mut out, name, "counter", help);
        sample(&mut out, name, &[], value);
    }
    family(
        &mut out,
        "mailhost_send_duration_seconds",
        "histogram",
        "How long provider sends took, by provider.",
    );
    for histogram in &engine.latency {
        let provider = histogram.provider.as_str();
        for (le, count) in &histogram.buckets {
            sample(
                &mut out,
                "mailhost_send_duration_seconds_bucket",
                &[("provider", provider), ("le", &float(*le))],
                *count,
            );
        }
        sample(
            &mut out,
            "mailhost_send_duration_seconds_bucket",
            &[("provider", provider), ("le", "+Inf")],
            histogram.count,
        );
        let _ = writeln!(
            out,
            "mailhost_send_duration_seconds_sum{{provider=\"{}\"}} {}",
            escape(provider),
            float(histogram.sum_seconds)
        );
        sample(
            &mut out,
            "mailhost_send_duration_seconds_count",
            &[("provider", provider)],
            histogram.count,
        );
    }
    family(
        &mut out,
        "mailhost_http_requests_total",
        "counter",
        "HTTP API requests answered, by route, method and status code.",
    );
    for ((route, method, code), count) in http.snapshot() {
        sample(
            &mut out,
            "mailhost_http_requests_total",
            &[
                ("route", &route),
                ("method", &method),
                ("code", &code.to_string()),
            ],
            count,
        );
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (key, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{key}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A float as Prometheus writes it (`0.05`, `1`, `+Inf`).
fn float(value: f64) -> String {
    if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if value.is_nan() {
        "NaN".to_string()
    } else {
        format!("{value}")
    }
}

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::outbox::Status;
    use crate::front::http::backend::{LatencyHistogram, SendCount};

    #[test]
    fn renders_every_family_with_escaped_labels() {
        let engine = EngineMetrics {
            emails: vec![(Status::Queued, 2), (Status::Sent, 5)],
            sends: vec![SendCount {
                outcome: "sent".into(),
                count: 5,
            }],
            retries: 1,
            throttles: 2,
            limit_waits: 3,
            latency: vec![LatencyHistogram {
                provider: "odd\"name".into(),
                buckets: vec![(0.1, 1), (1.0, 4)],
                sum_seconds: 2.5,
                count: 5,
            }],
        };
        let http = HttpMetrics::default();
        http.count("/v1/emails", "POST", 202);
        http.count("/v1/emails", "POST", 202);
        let text = render(&engine, &http);
        for line in [
            "mailhost_emails{status=\"queued\"} 2",
            "mailhost_sends_total{outcome=\"sent\"} 5",
            "mailhost_retries_total 1",
            "mailhost_throttles_total 2",
            "mailhost_limit_waits_total 3",
            "mailhost_send_duration_seconds_bucket{provider=\"odd\\\"name\",le=\"0.1\"} 1",
            "mailhost_send_duration_seconds_bucket{provider=\"odd\\\"name\",le=\"+Inf\"} 5",
            "mailhost_send_duration_seconds_sum{provider=\"odd\\\"name\"} 2.5",
            "mailhost_send_duration_seconds_count{provider=\"odd\\\"name\"} 5",
            "mailhost_http_requests_total{route=\"/v1/emails\",method=\"POST\",code=\"202\"} 2",
            "# TYPE mailhost_send_duration_seconds histogram",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}
