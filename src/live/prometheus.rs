//! `/metrics`: the latest [`LiveStatus`](super::LiveStatus) in the
//! OpenMetrics text format (encoded by prometheus-client at scrape time,
//! from a [`Collector`](prometheus_client::collector::Collector) reading
//! the board, so the run itself updates nothing for Prometheus), or in the
//! Prometheus text format 0.0.4, by content negotiation.
//!
//! The metric names are a contract (dashboards and alerts depend on
//! them); `docs/live.md` lists them. Every family has HELP text, and a
//! unit where one applies (in its name, and as `# UNIT` in OpenMetrics).
//!
//! This file builds the registry and holds the collector's state and the
//! helpers that write one family; its parts:
//!
//! - `format.rs`: the two formats, their negotiation, and the rewriting of
//!   OpenMetrics into the text format.
//! - `collector.rs`: what the collector encodes on a scrape; the families
//!   present in every state of a run (process, build, start time, `logs`
//!   traffic).
//! - `run.rs`: the families of a published status: the run, its stages,
//!   queues and workers.

mod collector;
mod format;
mod run;

pub(crate) use format::{render, Format};

use super::LiveBoard;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

/// The registry the server encodes on each scrape.
pub(crate) fn registry(board: LiveBoard) -> Registry {
    registry_of(board, true)
}

/// `process` false leaves out the `process_*` families: a file for
/// node_exporter's textfile collector must not repeat the names it
/// exports for itself, and describes a process that has ended.
fn registry_of(board: LiveBoard, process: bool) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StatusCollector { board, process }));
    registry
}

/// Encodes the board's latest status.
#[derive(Debug)]
struct StatusCollector {
    board: LiveBoard,
    process: bool,
}

/// One family, its samples given as (labels, value).
fn counters(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: Vec<(Vec<(&str, String)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let kind = ConstCounter::new(0.0f64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in samples {
        ConstCounter::new(v.max(0.0)).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A gauge family, its samples given as (labels, value).
fn gauges(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: Vec<(Vec<(&str, String)>, f64)>,
) -> Result<(), std::fmt::Error> {
    let kind = ConstGauge::new(0.0f64).metric_type();
    let mut family = encoder.encode_descriptor(name, help, unit, kind)?;
    for (labels, v) in samples {
        ConstGauge::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// One unlabelled sample.
fn one(v: f64) -> Vec<(Vec<(&'static str, String)>, f64)> {
    vec![(Vec::new(), v)]
}

/// The final metrics of a run for node_exporter's textfile collector
/// (text format 0.0.4, without the `process_*` families).
pub(crate) fn final_text(board: &LiveBoard) -> Result<String, std::fmt::Error> {
    render(&registry_of(board.clone(), false), Format::Text)
}
