//! `tensorcv serve`: the flags become the server's configuration ([`tensorcv_serve`]); logs go
//! to standard error as text or JSON lines (`tracing`).

use crate::error::Result;
use crate::flags::ServeArgs;
use std::time::Duration;
use tensorcv_imgproc::io::DecodeLimits;
use tensorcv_serve::repository::{ModelSpec, RepositoryOptions};
use tensorcv_serve::settings::ServingSettings;
use tensorcv_serve::{Limits, Server, ServerConfig, VisionModels};

/// Log lines on standard error: tensorcv's at `level`, its libraries' warnings and errors.
fn logs(args: &ServeArgs) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let level: LevelFilter = args.log_level.parse().unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(LevelFilter::WARN.min(level))
        .with_target("tensorcv", level);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if args.log_format == "json" {
        registry.with(fmt.json()).try_init()
    } else {
        registry.with(fmt).try_init()
    };
}

/// The server's configuration from the flags.
fn config(args: &ServeArgs) -> ServerConfig {
    let defaults = ServingSettings::default();
    let mut models: Vec<ModelSpec> = args.models.iter().map(|m| ModelSpec::parse(m)).collect();
    if models.is_empty() && args.dir.is_none() {
        models = tensorcv_zoo::all()
            .map(|b| ModelSpec::parse(b.name))
            .collect();
    }
    let limits = DecodeLimits {
        max_pixels: args.max_megapixels * 1_000_000,
        ..DecodeLimits::default()
    };
    ServerConfig {
        repository: RepositoryOptions {
            models,
            dir: args.dir.clone(),
            defaults: ServingSettings {
                instances: args.instances.map_or(defaults.instances, |n| n as usize),
                threads: crate::plan::threads(args.threads),
                max_batch_size: args.max_batch as usize,
                max_queue_delay: Duration::from_secs_f64(args.batch_delay_ms / 1e3),
                max_queue_size: args.queue as usize,
                timeout: Duration::from_secs_f64(args.timeout),
            },
            limits,
        },
        http: args.http.clone(),
        grpc: args.grpc.clone(),
        limits: Limits {
            connections: args.max_connections as usize,
            max_body: (args.max_body_mib as usize) << 20,
            header_timeout: Duration::from_secs_f64(args.header_timeout),
            grace: Duration::from_secs_f64(args.grace),
            inflight_bytes: (args.max_inflight_mib as usize) << 20,
        },
        vision: VisionModels {
            detection: args.detection_model.clone(),
            face: args.face_model.clone(),
            scene: args.scene_model.clone(),
        },
        io_threads: args
            .io_threads
            .map_or(ServerConfig::default().io_threads, |n| n as usize),
    }
}

/// Serve until SIGTERM or SIGINT; `Ok(false)` when requests were still running after the
/// grace period.
pub fn run(args: &ServeArgs) -> Result<bool> {
    logs(args);
    if args.check {
        return check(args);
    }
    let server = Server::start(config(args))?;
    crate::warn(format!(
        "serving {} on http://{}{}",
        server
            .repository()
            .all()
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        server.http_addr(),
        server
            .grpc_addr()
            .map(|a| format!(" and grpc://{a}"))
            .unwrap_or_default()
    ));
    Ok(server.run_until_signal()?)
}

/// `--check`: the addresses resolved and every model loaded, a line each on standard output.
fn check(args: &ServeArgs) -> Result<bool> {
    use std::io::Write;
    use tensorcv_serve::repository::Repository;
    let config = config(args);
    tensorcv_serve::resolve(&config.http)?;
    if let Some(grpc) = &config.grpc {
        tensorcv_serve::resolve(grpc)?;
    }
    let metrics = std::sync::Arc::new(tensorcv_serve::metrics::Metrics::new());
    let repo = Repository::open(config.repository, metrics)?;
    let mut out = std::io::stdout().lock();
    for m in repo.all() {
        let shape: Vec<String> = m.input.shape.iter().map(i64::to_string).collect();
        writeln!(
            out,
            "{}: {} {} [{}] {}, {} instance{}, batches up to {}",
            m.name,
            m.task.name(),
            m.input.name,
            shape.join(", "),
            m.input.datatype,
            m.settings.instances,
            if m.settings.instances == 1 { "" } else { "s" },
            m.settings.max_batch_size
        )
        .map_err(crate::error::Error::Stdout)?;
    }
    repo.close();
    Ok(true)
}
