//! Folding one [`LogsPartial`] into another: [`LogsPartial::merge`] for
//! partials computed here (sums saturate), [`LogsPartial::try_merge`] for
//! one decoded from another process (refused if it could not have come
//! from [`LogsMetrics`](super::LogsMetrics) or if a sum overflows), and
//! [`LogsPartial::check_chunk`], which tells whether a worker's partial
//! accounts for exactly the lines of its chunk.

use super::super::rejection::KEPT_LINE_BYTES;
use super::{LogsPartial, REJECTED_SAMPLES, STATUS_CODES};

/// How a merge treats a sum that does not fit.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overflow {
    /// An error naming the field: the partial came from another process.
    Refuse,
    /// The largest value: the partial was computed here, where counts of
    /// lines and sums of their sizes cannot come near the limits.
    Saturate,
}

impl Overflow {
    pub(crate) fn add_u64(self, acc: &mut u64, by: u64, what: &str) -> Result<(), String> {
        match acc.checked_add(by) {
            Some(v) => *acc = v,
            None if self == Overflow::Refuse => {
                return Err(format!("{what}: {acc} + {by} overflows u64"))
            }
            None => *acc = u64::MAX,
        }
        Ok(())
    }

    fn add_u128(self, acc: &mut u128, by: u128, what: &str) -> Result<(), String> {
        match acc.checked_add(by) {
            Some(v) => *acc = v,
            None if self == Overflow::Refuse => {
                return Err(format!("{what}: {acc} + {by} overflows u128"))
            }
            None => *acc = u128::MAX,
        }
        Ok(())
    }
}

/// The hour keys a summary can name: `hour * 3600` seconds must fit an i64.
fn valid_hour(h: i64) -> bool {
    h.checked_mul(3600).is_some()
}

impl LogsPartial {
    /// Folds `later` (the batches after these) into `self`: for partials
    /// computed in this process, where no count can overflow (a sum that
    /// would saturates). A partial decoded from another process goes
    /// through [`try_merge`](Self::try_merge).
    pub fn merge(&mut self, later: LogsPartial) {
        // Saturate never fails.
        let _ = self.merge_with(later, Overflow::Saturate);
    }

    /// Folds `later`, a partial decoded from another process, into `self`,
    /// refusing one whose numbers would overflow or that does not hold what
    /// a partial built by [`LogsMetrics`](super::LogsMetrics) holds (status
    /// codes below 1000, hours a summary can name). On an error, `self` may
    /// be partly merged.
    pub fn try_merge(&mut self, later: LogsPartial) -> Result<(), String> {
        if later.status.len() > STATUS_CODES {
            return Err(format!(
                "a status table of {} entries (codes go up to {})",
                later.status.len(),
                STATUS_CODES - 1
            ));
        }
        if later.rejected_lines.len() > REJECTED_SAMPLES
            || later
                .rejected_lines
                .iter()
                .any(|l| l.len() > KEPT_LINE_BYTES)
        {
            return Err("more rejected lines, or longer ones, than a partial keeps".into());
        }
        if let Some(h) = later.hours.keys().find(|&&h| !valid_hour(h)) {
            return Err(format!("hour {h} is out of range"));
        }
        if let Some(h) = later.traffic.keys().find(|&&h| !valid_hour(h)) {
            return Err(format!("traffic hour {h} is out of range"));
        }
        for t in later.traffic.values() {
            t.clients.check()?;
        }
        self.merge_with(later, Overflow::Refuse)
    }

    fn merge_with(&mut self, later: LogsPartial, overflow: Overflow) -> Result<(), String> {
        overflow.add_u64(&mut self.lines, later.lines, "lines")?;
        overflow.add_u64(&mut self.parsed, later.parsed, "parsed")?;
        overflow.add_u64(&mut self.dropped, later.dropped, "dropped")?;
        overflow.add_u64(&mut self.rejected, later.rejected, "rejected")?;
        overflow.add_u64(&mut self.directives, later.directives, "directives")?;
        let room = REJECTED_SAMPLES.saturating_sub(self.rejected_samples.len());
        self.rejected_samples
            .extend(later.rejected_samples.into_iter().take(room));
        let room = REJECTED_SAMPLES.saturating_sub(self.rejected_lines.len());
        self.rejected_lines
            .extend(later.rejected_lines.into_iter().take(room));
        overflow.add_u128(&mut self.bytes, later.bytes, "bytes")?;
        overflow.add_u64(&mut self.bots, later.bots, "bots")?;
        if self.status.len() < later.status.len() {
            self.status.resize(later.status.len(), 0);
        }
        for (mine, theirs) in self.status.iter_mut().zip(later.status) {
            overflow.add_u64(mine, theirs, "status count")?;
        }
        for (mine, theirs) in self
            .status_class_bytes
            .iter_mut()
            .zip(later.status_class_bytes)
        {
            overflow.add_u128(mine, theirs, "status class bytes")?;
        }
        self.methods
            .merge_with(later.methods, overflow)
            .map_err(|e| format!("methods: {e}"))?;
        self.paths
            .merge_with(later.paths, overflow)
            .map_err(|e| format!("paths: {e}"))?;
        self.clients
            .merge_with(later.clients, overflow)
            .map_err(|e| format!("clients: {e}"))?;
        self.vhosts
            .merge_with(later.vhosts, overflow)
            .map_err(|e| format!("vhosts: {e}"))?;
        for (k, v) in later.hours {
            overflow.add_u64(self.hours.entry(k).or_insert(0), v, "hour count")?;
        }
        for (name, mine, theirs) in [
            ("referrers", &mut self.referrers, later.referrers),
            ("browsers", &mut self.browsers, later.browsers),
            ("operating systems", &mut self.systems, later.systems),
            ("crawlers", &mut self.crawlers, later.crawlers),
        ] {
            mine.merge_with(theirs, overflow)
                .map_err(|e| format!("{name}: {e}"))?;
        }
        let refuse = |what: &str| match overflow {
            Overflow::Refuse => Err(format!("{what}: a sum overflows")),
            Overflow::Saturate => Ok(()),
        };
        self.path_stats.reserve(later.path_stats.len());
        for (path, stats) in later.path_stats {
            match self.path_stats.get_mut(&path) {
                Some(mine) => {
                    if mine.checked_merge(stats).is_none() {
                        refuse("path statistics")?;
                    }
                }
                None => {
                    self.path_stats.insert(path, stats);
                }
            }
        }
        for (hour, t) in later.traffic {
            if self
                .traffic
                .entry(hour)
                .or_default()
                .checked_merge(t)
                .is_none()
            {
                refuse("hourly traffic")?;
            }
        }
        let latency = |r: Result<(), String>| match overflow {
            Overflow::Refuse => r.map_err(|e| format!("latency: {e}")),
            Overflow::Saturate => Ok(()),
        };
        self.custom.merge_with(later.custom, overflow)?;
        latency(self.latency.try_merge(later.latency))?;
        for (path, h) in later.path_latency {
            latency(self.path_latency.entry(path).or_default().try_merge(h))?;
        }
        self.records_out.extend_from_slice(&later.records_out);
        self.rejects_out.extend_from_slice(&later.rejects_out);
        Ok(())
    }

    /// Checks that this partial, a worker's for a chunk of `records` lines
    /// from line `first_line`, is one [`LogsMetrics`](super::LogsMetrics)
    /// builds from exactly those lines (see
    /// [`Aggregate::check_chunk`](crate::stage::Aggregate::check_chunk)). It
    /// cannot tell a consistent lie (one line's status or path changed for
    /// another) from the truth.
    pub fn check_chunk(&self, first_line: u64, records: u64) -> Result<(), String> {
        let mismatch = |what: &str, got: u64, want: u64| {
            format!("it counts {got} {what}, where the chunk implies {want}")
        };
        if self.lines != records {
            return Err(format!(
                "it counts {} lines, the chunk holds {records}",
                self.lines
            ));
        }
        let classified = self
            .parsed
            .checked_add(self.rejected)
            .and_then(|n| n.checked_add(self.directives));
        if classified != Some(self.lines) {
            return Err(format!(
                "its {} parsed, {} rejected and {} directive lines are not its {} lines",
                self.parsed, self.rejected, self.directives, self.lines
            ));
        }
        let kept = self
            .parsed
            .checked_sub(self.dropped)
            .ok_or_else(|| format!("{} dropped of {} parsed lines", self.dropped, self.parsed))?;
        let tables = [
            ("status counts", total(self.status.iter().copied())),
            ("method counts", total(self.methods.iter().map(|(_, n)| n))),
            ("hour counts", total(self.hours.values().copied())),
            (
                "hourly requests",
                total(self.traffic.values().map(|t| t.requests)),
            ),
        ];
        for (what, got) in tables {
            if got != kept {
                return Err(mismatch(what, got, kept));
            }
        }
        self.custom.check(kept)?;
        if self.bots > kept {
            return Err(mismatch("bots (at most)", self.bots, kept));
        }
        let samples = self.rejected.min(REJECTED_SAMPLES as u64);
        if self.rejected_samples.len() as u64 != samples {
            return Err(mismatch(
                "rejected samples",
                self.rejected_samples.len() as u64,
                samples,
            ));
        }
        let last = first_line.saturating_add(records.saturating_sub(1));
        let ascending = self.rejected_samples.windows(2).all(|w| w[0] < w[1]);
        let inside = self
            .rejected_samples
            .iter()
            .all(|l| (first_line..=last).contains(l));
        if !ascending || !inside {
            return Err(format!(
                "its rejected samples {:?} are not ascending lines of {first_line}-{last}",
                self.rejected_samples
            ));
        }
        Ok(())
    }
}

/// The sum of `values`, or `u64::MAX` when it overflows.
fn total(mut values: impl Iterator<Item = u64>) -> u64 {
    values
        .try_fold(0u64, |a, b| a.checked_add(b))
        .unwrap_or(u64::MAX)
}
