//! [`LogsMetrics`], the `metrics` aggregate: counting each enriched batch
//! into a [`LogsPartial`] (and rendering its records and rejects with
//! `--emit-records`), renumbering and checking a worker's partial, and
//! keeping the key maps of a sealed partial for the next one.

use super::super::counts::{bump_map, SpareKeys};
use super::super::dims::{for_each_family, referrer_key, PathStats, UaClass, NO_FAMILY};
use super::super::distinct::client_hash;
use super::super::latency::Histogram;
use super::super::rejection::KEPT_LINE_BYTES;
use super::super::render::{write_record, write_reject};
use super::super::stages::EnrichedBatch;
use super::super::tags::CustomCounts;
use super::{LogsPartial, SummaryView, REJECTED_SAMPLES};
use crate::sources::BatchPool;
use crate::stage::{Aggregate, BatchInfo, StageError};
use rustc_hash::FxHashMap;

std::thread_local! {
    /// The key maps (methods, paths, clients) of the partial this thread
    /// sealed last, for its next chunk's partial: see
    /// [`Counts::seal`](super::super::counts::Counts::seal).
    static SPARE_KEYS: std::cell::RefCell<[Option<SpareKeys>; 3]> =
        const { std::cell::RefCell::new([None, None, None]) };
}

/// The `metrics` aggregate.
#[derive(Debug, Clone, Default)]
pub struct LogsMetrics {
    /// Also render `records.jsonl` and `rejects.txt` lines.
    pub emit_records: bool,
    /// Where the line buffers go back once counted (shared with the source).
    pub pool: BatchPool,
    /// `--top` and the `--tz` label, carried by every partial.
    pub view: SummaryView,
    /// The tag names counted per value (see [`CustomCounts`]).
    pub dimensions: Vec<String>,
}

impl Aggregate for LogsMetrics {
    type In = EnrichedBatch;
    type Partial = LogsPartial;

    fn empty(&self) -> LogsPartial {
        LogsPartial {
            view: self.view.clone(),
            custom: CustomCounts::declare(&self.dimensions),
            ..LogsPartial::default()
        }
    }

    fn add(
        &mut self,
        acc: &mut LogsPartial,
        batch: EnrichedBatch,
        info: &BatchInfo,
    ) -> Result<(), StageError> {
        let parsed = &batch.parsed;
        let first_line = info.first_line;
        if acc.lines == 0 {
            SPARE_KEYS.with(|spares| {
                let [methods, paths, clients] = &mut *spares.borrow_mut();
                acc.methods.adopt(methods);
                acc.paths.adopt(paths);
                acc.clients.adopt(clients);
            });
        }
        acc.lines += parsed.lines.len() as u64;
        acc.rejected += parsed.rejected.len() as u64;
        acc.directives += parsed.directives as u64;
        acc.parsed += parsed.dropped as u64;
        acc.dropped += parsed.dropped as u64;
        for &i in &parsed.rejected {
            let line_no = first_line + i as u64;
            if acc.rejected_samples.len() < REJECTED_SAMPLES {
                acc.rejected_samples.push(line_no);
                let raw = parsed.lines.line(i as usize);
                acc.rejected_lines.push(serde_bytes::ByteBuf::from(
                    raw[..raw.len().min(KEPT_LINE_BYTES)].to_vec(),
                ));
            }
            if self.emit_records {
                write_reject(&mut acc.rejects_out, line_no, parsed.lines.line(i as usize));
            }
        }
        if acc.status.is_empty() && !parsed.records.is_empty() {
            acc.status = vec![0; 1000];
        }
        // Consecutive lines mostly share an hour: count runs before touching the maps.
        let mut hour_run: Option<(i64, u64)> = None;
        let mut run_bytes = 0u128;
        // Keys repeat within a batch far more than lines differ: paths,
        // referers and (hour, client) pairs are counted per batch under
        // keys borrowed from the batch (one hash per line, no allocation),
        // and go to the partial's maps once per distinct key at the end.
        let mut batch_paths: FxHashMap<&[u8], (u64, PathStats)> = FxHashMap::default();
        let mut batch_referers: FxHashMap<&[u8], u64> = FxHashMap::default();
        let mut batch_clients: FxHashMap<(i64, &[u8]), u64> = FxHashMap::default();
        let mut families: Vec<u64> = Vec::new();
        let methods = acc.methods.map_mut();
        for (r, e) in parsed.records.iter().zip(&batch.enriched) {
            acc.parsed += 1;
            acc.bytes += r.bytes as u128;
            acc.bots += e.bot as u64;
            acc.status[r.status as usize % 1000] += 1;
            acc.status_class_bytes[e.status_class as usize % 10] += r.bytes as u128;
            bump_map(methods, parsed.bytes(r.method), 1);
            let path = parsed.bytes(r.path);
            let (hits, stats) = batch_paths.entry(path).or_default();
            *hits += 1;
            stats.add(r.status, r.bytes);
            if let Some(referer) = r.referer {
                *batch_referers.entry(parsed.bytes(referer)).or_insert(0) += 1;
            }
            if e.ua_family != NO_FAMILY {
                let id = e.ua_family as usize;
                if families.len() <= id {
                    families.resize(id + 1, 0);
                }
                families[id] += 1;
            }
            if let Some(v) = r.vhost {
                acc.vhosts.bump(parsed.bytes(v), 1);
            }
            if let Some(us) = r.latency_us {
                acc.latency.record(us);
                match acc.path_latency.get_mut(path) {
                    Some(h) => h.record(us),
                    None => {
                        let mut h = Histogram::default();
                        h.record(us);
                        acc.path_latency.insert(path.into(), h);
                    }
                }
            }
            *batch_clients
                .entry((e.hour, parsed.bytes(r.client)))
                .or_insert(0) += 1;
            hour_run = match hour_run {
                Some((h, n)) if h == e.hour => Some((h, n + 1)),
                Some((h, n)) => {
                    *acc.hours.entry(h).or_insert(0) += n;
                    let t = acc.traffic.entry(h).or_default();
                    t.requests += n;
                    t.bytes += std::mem::take(&mut run_bytes);
                    Some((e.hour, 1))
                }
                None => Some((e.hour, 1)),
            };
            run_bytes += u128::from(r.bytes);
            if self.emit_records {
                write_record(
                    &mut acc.records_out,
                    first_line + r.index as u64,
                    parsed,
                    r,
                    e,
                );
            }
        }
        if let Some((h, n)) = hour_run {
            *acc.hours.entry(h).or_insert(0) += n;
            let t = acc.traffic.entry(h).or_default();
            t.requests += n;
            t.bytes += run_bytes;
        }
        let paths = acc.paths.map_mut();
        for (path, (hits, stats)) in batch_paths {
            bump_map(paths, path, hits);
            match acc.path_stats.get_mut(path) {
                // Counted here, in this process: cannot overflow.
                Some(mine) => {
                    let _ = mine.checked_merge(stats);
                }
                None => {
                    acc.path_stats.insert(path.into(), stats);
                }
            }
        }
        let mut scratch = Vec::new();
        for (raw, n) in batch_referers {
            referrer_key(raw, &mut scratch);
            acc.referrers.bump(&scratch, n);
        }
        let clients = acc.clients.map_mut();
        for ((hour, client), n) in batch_clients {
            bump_map(clients, client, n);
            if let Some(t) = acc.traffic.get_mut(&hour) {
                t.clients.insert(client_hash(client));
            }
        }
        for_each_family(&families, |class, n| match class {
            UaClass::Crawler(name) => acc.crawlers.bump(name.as_bytes(), n),
            UaClass::Browser { name, os } => {
                acc.browsers.bump(name.as_bytes(), n);
                acc.systems.bump(os.as_bytes(), n);
            }
        });
        if !acc.custom.is_empty() {
            acc.custom.count(&batch);
        }
        self.pool.give(batch.parsed.lines);
        Ok(())
    }

    fn merge(&self, acc: &mut LogsPartial, later: LogsPartial) {
        acc.merge(later);
    }

    fn try_merge(&self, acc: &mut LogsPartial, later: LogsPartial) -> Result<(), StageError> {
        acc.try_merge(later).map_err(StageError::new)
    }

    /// Yes, unless records are emitted: their rendered lines hold the
    /// line numbers as text.
    fn renumbers(&self) -> bool {
        !self.emit_records
    }

    fn renumber(&self, acc: &mut LogsPartial, lines_before: u64) -> Result<(), StageError> {
        for line in &mut acc.rejected_samples {
            *line = line.checked_add(lines_before).ok_or_else(|| {
                StageError::new(format!("rejected line {line} + {lines_before} overflows"))
            })?;
        }
        Ok(())
    }

    /// A worker's partial of a chunk: its lines are the chunk's, every
    /// line parsed or rejected, the kept lines counted once in each of the
    /// status, method and hour tables, and its rejected samples the first
    /// rejected lines' numbers, ascending, inside the chunk; it counts no
    /// custom dimension but the declared ones.
    fn check_chunk(
        &self,
        acc: &LogsPartial,
        first_line: u64,
        records: u64,
    ) -> Result<(), StageError> {
        acc.check_chunk(first_line, records)
            .and_then(|()| acc.custom.check_declared(&self.dimensions))
            .map_err(StageError::new)
    }

    fn seal(&mut self, acc: &mut LogsPartial) {
        let sealed = [acc.methods.seal(), acc.paths.seal(), acc.clients.seal()];
        SPARE_KEYS.with(|spares| *spares.borrow_mut() = sealed);
    }
}
