//! Prometheus metrics (`GET /metrics`, the text exposition format): requests by model, protocol
//! and outcome; request latency per model and protocol; time per stage (queue, decode,
//! preprocess, inference, postprocess) per model; queue depth; batch sizes; connections.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// A request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    model: String,
    protocol: &'static str,
    status: &'static str,
}

/// A request latency's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    model: String,
    protocol: &'static str,
}

/// A stage's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    model: String,
    stage: &'static str,
}

/// A per-model label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabel {
    model: String,
}

/// A per-protocol label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabel {
    protocol: &'static str,
}

/// A request counted in `tensorcv_requests_in_flight` while this lives.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The stages a request's time is split into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// waiting in the model's queue
    Queue,
    /// decoding an encoded image
    Decode,
    /// image (or request tensor) to model input
    Preprocess,
    /// the model (the whole batch)
    Inference,
    /// outputs to answers
    Postprocess,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Queue => "queue",
            Stage::Decode => "decode",
            Stage::Preprocess => "preprocess",
            Stage::Inference => "inference",
            Stage::Postprocess => "postprocess",
        }
    }
}

fn latency() -> Histogram {
    // 0.1 ms to about 26 s
    Histogram::new(exponential_buckets(1e-4, 2.0, 19))
}

fn batch_sizes() -> Histogram {
    // 1, 2, 4, … 1024
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    stage_seconds: Family<StageLabels, Histogram, fn() -> Histogram>,
    batch_size: Family<ModelLabel, Histogram, fn() -> Histogram>,
    queue_depth: Family<ModelLabel, Gauge>,
    connections: Family<ProtocolLabel, Gauge>,
    in_flight: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered under `tensorcv_`.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tensorcv");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let stage_seconds = Family::new_with_constructor(latency as fn() -> Histogram);
        let batch_size = Family::new_with_constructor(batch_sizes as fn() -> Histogram);
        let queue_depth = Family::<ModelLabel, Gauge>::default();
        let connections = Family::<ProtocolLabel, Gauge>::default();
        let in_flight = Gauge::default();
        registry.register(
            "requests",
            "Requests answered, by model, protocol and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer, by model and protocol",
            request_seconds.clone(),
        );
        registry.register(
            "stage_duration_seconds",
            "Time per stage of a request (queue, decode, preprocess, inference, postprocess), by model",
            stage_seconds.clone(),
        );
        registry.register(
            "batch_size",
            "Requests (batch entries) run together, by model",
            batch_size.clone(),
        );
        registry.register(
            "queue_depth",
            "Requests waiting in a model's queue",
            queue_depth.clone(),
        );
        registry.register(
            "connections",
            "Open client connections, by protocol",
            connections.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            stage_seconds,
            batch_size,
            queue_depth,
            connections,
            in_flight,
        }
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // writing into a String cannot fail
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// One request answered, `error` what it failed with: counted under its model, or under
    /// `""` when no model of that name is served (names clients make up must not grow the
    /// metrics without bound), and its status (`ok` or the error's kind).
    pub fn answered(
        &self,
        model: &str,
        protocol: &'static str,
        error: Option<&crate::Error>,
        took: Duration,
    ) {
        let (model, status) = match error {
            None => (model, "ok"),
            Some(e @ crate::Error::UnknownModel { .. }) => ("", e.kind()),
            Some(e) => (model, e.kind()),
        };
        self.requests
            .get_or_create(&RequestLabels {
                model: model.to_string(),
                protocol,
                status,
            })
            .inc();
        self.request_seconds
            .get_or_create(&LatencyLabels {
                model: model.to_string(),
                protocol,
            })
            .observe(took.as_secs_f64());
    }

    /// Time spent in a stage.
    pub fn stage(&self, model: &str, stage: Stage, took: Duration) {
        self.stage_seconds
            .get_or_create(&StageLabels {
                model: model.to_string(),
                stage: stage.name(),
            })
            .observe(took.as_secs_f64());
    }

    /// A batch run.
    pub fn batch(&self, model: &str, size: usize) {
        self.batch_size
            .get_or_create(&ModelLabel {
                model: model.to_string(),
            })
            .observe(size as f64);
    }

    /// A model's queue now holds `depth` requests.
    pub fn queue_depth(&self, model: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&ModelLabel {
                model: model.to_string(),
            })
            .set(depth as i64);
    }

    /// A connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, protocol: &'static str, delta: i64) {
        self.connections
            .get_or_create(&ProtocolLabel { protocol })
            .inc_by(delta);
    }

    /// A request under way until the guard is dropped (a request whose client went away is
    /// dropped mid-way: the count still comes down).
    pub fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_holds_each_family_with_its_labels() {
        let m = Metrics::new();
        m.answered("face", "kserve-http", None, Duration::from_millis(3));
        m.stage("face", Stage::Inference, Duration::from_millis(2));
        m.batch("face", 4);
        m.queue_depth("face", 7);
        m.connection("http", 1);
        let text = m.render();
        for line in [
            r#"tensorcv_requests_total{model="face",protocol="kserve-http",status="ok"} 1"#,
            r#"tensorcv_request_duration_seconds_count{model="face",protocol="kserve-http"} 1"#,
            r#"tensorcv_stage_duration_seconds_count{model="face",stage="inference"} 1"#,
            r#"tensorcv_batch_size_sum{model="face"} 4.0"#,
            r#"tensorcv_queue_depth{model="face"} 7"#,
            r#"tensorcv_connections{protocol="http"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in:\n{text}");
        }
    }
}
