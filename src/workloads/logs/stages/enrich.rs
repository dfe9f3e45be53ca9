//! The `enrich` stage: status class, hour in the `--tz` zone, bot flag and
//! user-agent family of every parsed record.

use super::enriched::{EnrichedBatch, Enrichment};
use super::parsed::ParsedBatch;
use crate::stage::{BatchInfo, Stage, StageError};
use crate::workloads::logs::dims::{family_id, NO_FAMILY};
use crate::workloads::logs::parse::is_bot;
use crate::workloads::logs::tags::Tags;
use crate::workloads::logs::zone::{LocalClock, Zone};
use rustc_hash::FxHashMap;

/// The `enrich` stage (docs/logs-workload.md §3).
///
/// User agents repeat heavily in real traffic, so the bot verdict is
/// memoized per distinct user agent (a bounded cache, cleared when full):
/// hashing a user agent costs a fraction of scanning it for four words.
#[derive(Debug, Clone)]
pub struct Enrich {
    /// Per user agent: bot or not, and its family.
    bot_cache: FxHashMap<Box<[u8]>, (bool, u32)>,
    /// The `--tz` clock, or why the zone given cannot be used.
    clock: Result<LocalClock, String>,
}

impl Default for Enrich {
    /// Hours in UTC.
    fn default() -> Self {
        Enrich {
            bot_cache: FxHashMap::default(),
            clock: Ok(LocalClock::new(Zone::Utc)),
        }
    }
}

/// Most user agents the bot cache holds before it starts over.
const BOT_CACHE_CAPACITY: usize = 4096;

impl Enrich {
    /// Hour buckets in `time_zone` (`--tz`: `UTC`, an IANA name or
    /// `±HH:MM`); a zone that cannot be read fails the stage's first batch.
    pub fn in_zone(time_zone: &str) -> Enrich {
        Enrich {
            clock: Zone::parse(time_zone).map(LocalClock::new),
            ..Enrich::default()
        }
    }

    /// Whether `user_agent` marks a bot, and its family.
    fn agent(&mut self, user_agent: &[u8]) -> (bool, u32) {
        if let Some(&known) = self.bot_cache.get(user_agent) {
            return known;
        }
        let known = (is_bot(user_agent), family_id(user_agent));
        if self.bot_cache.len() >= BOT_CACHE_CAPACITY {
            self.bot_cache.clear();
        }
        self.bot_cache.insert(user_agent.into(), known);
        known
    }
}

impl Stage for Enrich {
    type In = ParsedBatch;
    type Out = EnrichedBatch;

    fn uses_record_numbers(&self) -> bool {
        false
    }

    fn process(
        &mut self,
        parsed: ParsedBatch,
        _info: &BatchInfo,
    ) -> Result<EnrichedBatch, StageError> {
        let clock = self
            .clock
            .as_mut()
            .map_err(|e| StageError::new(e.clone()))?;
        let mut hours = Vec::with_capacity(parsed.records.len());
        for r in &parsed.records {
            hours.push(clock.local(r.utc).div_euclid(3600));
        }
        let enriched = parsed
            .records
            .iter()
            .zip(hours)
            .map(|(r, hour)| {
                let (bot, ua_family) = match r.user_agent {
                    Some(ua) => self.agent(parsed.bytes(ua)),
                    None => (false, NO_FAMILY),
                };
                Enrichment {
                    hour,
                    status_class: (r.status / 100) as u8,
                    bot,
                    ua_family,
                }
            })
            .collect();
        Ok(EnrichedBatch {
            parsed,
            enriched,
            tags: Tags::default(),
        })
    }
}
