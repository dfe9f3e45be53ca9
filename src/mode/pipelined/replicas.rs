//! The [`Replicas`] setting of pipeline mode (`--replicas STAGE=N`,
//! repeatable, or `--replicas auto`) and the `auto` planner for the stage
//! actors (`auto` over plain files runs reading lanes instead: `lanes.rs`).
//!
//! `auto` measures, then decides: pipeline mode first runs a short serial
//! probe over the first batches (timing every part), then [`plan_auto`]
//! hands the spare cores, one at a time, to the most expensive actor when
//! that actor is a replicable stage (a pipeline runs at the pace of its
//! slowest actor); it stops when the slowest actor is the source or the
//! aggregate, which cannot be split. When no stage got a spare core,
//! [`pack`] puts the parts onto at most one actor per core.

use crate::error::RunError;
use std::fmt;

/// How many actors run each transforming stage in pipeline mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Replicas {
    /// No counts given: over plain files that the pipeline can read by
    /// byte ranges, one reading lane per core (as `Auto`); otherwise one
    /// actor per stage.
    #[default]
    None,
    /// Given counts per stage name; unnamed stages get one. Always the
    /// stage actors.
    Fixed(Vec<(String, usize)>),
    /// Over plain files that the pipeline can read by byte ranges, one
    /// reading lane per core (each reads its own ranges and runs every
    /// part on them); otherwise measure the stages on the first batches,
    /// then give the spare cores to the busiest replicable stage, or, if
    /// none is worth one, pack the parts onto fewer actors where that
    /// cannot slow the run (docs/plan.md).
    Auto,
}

impl Replicas {
    /// Parses one `--replicas` value: `STAGE=N` (N ≥ 1) or `auto`.
    pub fn parse_one(value: &str) -> Result<Replicas, String> {
        if value == "auto" {
            return Ok(Replicas::Auto);
        }
        let (stage, count) = value
            .split_once('=')
            .ok_or_else(|| format!("expected STAGE=N or 'auto', got '{value}'"))?;
        let stage = stage.trim();
        if stage.is_empty() {
            return Err(format!("missing stage name in '{value}'"));
        }
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| format!("'{count}' in '{value}' is not a whole number"))?;
        if count == 0 || count > 256 {
            return Err(format!("replica count in '{value}' must be 1 to 256"));
        }
        Ok(Replicas::Fixed(vec![(stage.to_string(), count)]))
    }

    /// Combines repeated `--replicas` values (`auto` cannot be mixed with counts).
    pub fn combine(values: impl IntoIterator<Item = Replicas>) -> Result<Replicas, String> {
        let mut out = Replicas::None;
        for v in values {
            out = match (out, v) {
                (Replicas::None, v) | (v, Replicas::None) => v,
                (Replicas::Auto, Replicas::Auto) => Replicas::Auto,
                (Replicas::Fixed(mut a), Replicas::Fixed(b)) => {
                    for (name, n) in b {
                        if a.iter().any(|(x, _)| *x == name) {
                            return Err(format!("stage '{name}' is given twice"));
                        }
                        a.push((name, n));
                    }
                    Replicas::Fixed(a)
                }
                _ => return Err("'auto' cannot be combined with STAGE=N".into()),
            };
        }
        Ok(out)
    }

    /// Replica counts per stage for a pipeline whose transforming stages are
    /// `stages` and whose other parts are `others` (not replicable).
    /// `Auto` gives all ones here: [`plan_auto`] decides after the probe.
    pub(crate) fn counts(
        &self,
        stages: &[String],
        others: &[String],
    ) -> Result<Vec<usize>, RunError> {
        let mut counts = vec![1; stages.len()];
        if let Replicas::Fixed(list) = self {
            for (name, n) in list {
                match stages.iter().position(|s| s == name) {
                    Some(i) => counts[i] = *n,
                    None if others.contains(name) => {
                        return Err(RunError::Config(format!(
                            "--replicas {name}={n}: '{name}' cannot be replicated \
                             (only transforming stages can: {})",
                            stages.join(", ")
                        )))
                    }
                    None => {
                        return Err(RunError::Config(format!(
                            "--replicas {name}={n}: no stage named '{name}' (stages: {})",
                            stages.join(", ")
                        )))
                    }
                }
            }
        }
        Ok(counts)
    }
}

impl fmt::Display for Replicas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Replicas::None => f.write_str("none"),
            Replicas::Auto => f.write_str("auto"),
            Replicas::Fixed(list) => {
                let parts: Vec<String> = list.iter().map(|(s, n)| format!("{s}={n}")).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

/// Replicas are given only to a stage whose cost per replica is above this
/// fraction of an even per-core share of the work (tiny stages stay single).
const MIN_SHARE: f64 = 0.5;

/// The `auto` decision. `stage_costs` are the measured busy times of the
/// replicable stages; `others` those of the other actors (the source, the
/// aggregate with the sink), which cannot be replicated; `cores` the
/// machine's cores. Returns replicas per stage.
///
/// Each spare core goes to the most expensive actor if that is a replicable
/// stage (per replica) — the actor that limits the pipeline's throughput —
/// and is above `MIN_SHARE` of a core's share. When the most expensive
/// actor cannot be replicated, more replicas would not shorten the run.
pub fn plan_auto(stage_costs: &[f64], others: &[f64], cores: usize) -> Vec<usize> {
    let mut counts = vec![1usize; stage_costs.len()];
    let total: f64 = stage_costs.iter().sum::<f64>() + others.iter().sum::<f64>();
    let floor = MIN_SHARE * total / cores.max(1) as f64;
    let fixed_max = others.iter().copied().fold(0.0, f64::max);
    // Spare cores: all but the one the rest of the pipeline needs.
    for _ in 0..cores.saturating_sub(1) {
        let per_replica = |i: usize| stage_costs[i] / counts[i] as f64;
        let busiest = (0..counts.len())
            .max_by(|&a, &b| per_replica(a).total_cmp(&per_replica(b)))
            .filter(|&i| per_replica(i) > fixed_max && per_replica(i) > floor);
        match busiest {
            Some(i) => counts[i] += 1,
            None => break,
        }
    }
    // Lanes: replica r of a stage takes the batches with seq % n == r. A
    // single actor right after n replicas takes them all in order, so one
    // replica's batch waits in its reorder buffer for the other's; giving
    // the cheaper stages that follow the same count keeps the lanes apart
    // up to the aggregate. (On 2 cores, 1 M log lines, two loops of 13
    // interleaved rounds: parse=2 with enrich=2 ran 1.47x and 1.49x
    // serial, parse=2 alone 1.38x and 1.50x; the grid search's best
    // replicates enrich too. A small gain at most, never a loss seen.)
    for i in 1..counts.len() {
        let lanes = counts[i - 1];
        if lanes > 1 && counts[i] == 1 && stage_costs[i] < stage_costs[i - 1] / lanes as f64 {
            counts[i] = lanes;
        }
    }
    counts
}

/// Where `auto` puts the parts when no stage got replicas: `costs` are
/// the measured costs of the parts in order (the source, each stage, the
/// aggregate with the sink). Returns how many parts each actor runs, in
/// order: contiguous groups, at most `cores` of them (at least two: the
/// source's actor and the sink's), cut where the largest group's cost is
/// least (ties: fewer actors). The first group is the source and the
/// stages after it on the source's thread, the last the stages before the
/// aggregate on the sink's thread. An actor per part (all ones) when
/// packing would make the run's pace slower: when the largest group
/// would cost more than both the costliest part and an even share of
/// the whole per core (what an actor per part may reach with the cores
/// shared among its threads).
///
/// Why: an actor per part puts more busy threads than cores on the
/// machine, and every hand-off moves a batch to another core, where its
/// records are read out of another core's cache and freed into another
/// thread's allocator. A chain the spare cores cannot speed up runs at
/// the pace of its costliest part, so parts are packed together as long
/// as that does not make the pace slower.
pub fn pack(costs: &[f64], cores: usize) -> Vec<usize> {
    let parts = costs.len();
    if parts <= 2 {
        return vec![1; parts];
    }
    let most = cores.clamp(2, parts);
    // best[g][i]: the least largest group over the first i parts in g
    // groups; cut[g][i]: where the last of those groups starts.
    let sum = |a: usize, b: usize| costs[a..b].iter().sum::<f64>();
    let mut best = vec![vec![f64::INFINITY; parts + 1]; most + 1];
    let mut cut = vec![vec![0usize; parts + 1]; most + 1];
    best[0][0] = 0.0;
    for g in 1..=most {
        for i in g..=parts {
            for j in (g - 1)..i {
                let worst = best[g - 1][j].max(sum(j, i));
                if worst < best[g][i] {
                    best[g][i] = worst;
                    cut[g][i] = j;
                }
            }
        }
    }
    // The fewest groups (two at least) whose largest is the least.
    let least = (2..=most)
        .map(|g| best[g][parts])
        .fold(f64::INFINITY, f64::min);
    let costliest = costs.iter().copied().fold(0.0, f64::max);
    let share = sum(0, parts) / cores.max(1) as f64;
    if least > costliest.max(share) {
        return vec![1; parts];
    }
    let groups = (2..=most)
        .find(|&g| best[g][parts] <= least)
        .unwrap_or(most);
    let mut sizes = Vec::with_capacity(groups);
    let mut end = parts;
    for g in (1..=groups).rev() {
        let start = cut[g][end];
        sizes.push(end - start);
        end = start;
    }
    sizes.reverse();
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_auto() {
        assert_eq!(Replicas::parse_one("auto"), Ok(Replicas::Auto));
        assert_eq!(
            Replicas::parse_one("parse=3"),
            Ok(Replicas::Fixed(vec![("parse".into(), 3)]))
        );
        for bad in [
            "parse",
            "=2",
            "parse=0",
            "parse=x",
            "parse=-1",
            "parse=1000",
        ] {
            assert!(Replicas::parse_one(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn combines_repeated_flags() {
        let a = Replicas::parse_one("parse=2").unwrap();
        let b = Replicas::parse_one("enrich=3").unwrap();
        let both = Replicas::combine([a.clone(), b]).unwrap();
        assert_eq!(both.to_string(), "parse=2,enrich=3");
        assert!(Replicas::combine([a.clone(), a.clone()]).is_err());
        assert!(Replicas::combine([a, Replicas::Auto]).is_err());
        assert_eq!(Replicas::combine([]).unwrap(), Replicas::None);
    }

    #[test]
    fn counts_check_stage_names() {
        let stages = vec!["parse".to_string(), "enrich".to_string()];
        let others = vec!["read".to_string(), "metrics".to_string()];
        let r = Replicas::combine([Replicas::parse_one("enrich=3").unwrap()]).unwrap();
        assert_eq!(r.counts(&stages, &others).unwrap(), vec![1, 3]);
        let bad = Replicas::parse_one("nope=2").unwrap();
        let e = bad.counts(&stages, &others).unwrap_err().to_string();
        assert!(e.contains("no stage named 'nope'"), "{e}");
        let src = Replicas::parse_one("read=2").unwrap();
        let e = src.counts(&stages, &others).unwrap_err().to_string();
        assert!(e.contains("cannot be replicated"), "{e}");
        assert_eq!(Replicas::Auto.counts(&stages, &others).unwrap(), vec![1, 1]);
    }

    #[test]
    fn auto_replicates_the_limiting_stage_and_keeps_its_lanes_apart() {
        // logs from a file on 2 cores: parse is the most expensive actor;
        // enrich, cheaper, follows it in two lanes.
        assert_eq!(plan_auto(&[4.8, 1.0], &[2.8, 1.4], 2), vec![2, 2]);
        // logs from the generator: the source limits the run; replicas cannot help.
        assert_eq!(plan_auto(&[3.9, 1.0], &[7.0, 1.5], 2), vec![1, 1]);
        // 4 cores, parse 70%: parse gets all three spare cores.
        assert_eq!(plan_auto(&[7.0, 1.0], &[1.0, 1.0], 4), vec![4, 4]);
        // A stage before the replicated one stays single.
        assert_eq!(plan_auto(&[0.5, 4.8], &[2.8, 1.4], 2), vec![1, 2]);
        // Two heavy stages share the spare cores; then the source limits.
        assert_eq!(plan_auto(&[2.0, 2.0], &[1.0, 1.0], 4), vec![2, 2]);
        // Balanced: nothing to gain.
        assert_eq!(plan_auto(&[1.0, 1.0], &[1.0, 1.0], 4), vec![1, 1]);
        // One core: nothing to give.
        assert_eq!(plan_auto(&[9.0], &[1.0], 1), vec![1]);
    }

    #[test]
    fn pack_balances_the_parts_on_the_cores() {
        // A source costlier than everything after it: the stages go
        // with the aggregate.
        assert_eq!(pack(&[4.0, 0.5, 0.5, 1.0], 2), vec![1, 3]);
        // Balanced enough that two contiguous groups would be slower than
        // four threads sharing two cores (a CSV job measured in serial
        // mode; logs from the generator): an actor per part.
        assert_eq!(pack(&[0.37, 0.06, 0.14, 0.39], 2), vec![1, 1, 1, 1]);
        assert_eq!(pack(&[1.19, 1.17, 0.15, 0.85], 2), vec![1, 1, 1, 1]);
        // Enough cores: an actor per part.
        assert_eq!(pack(&[1.0, 1.0, 1.0, 1.0], 4), vec![1, 1, 1, 1]);
        // More actors would not lower the largest: the fewest that reach it.
        assert_eq!(pack(&[5.0, 0.1, 0.1, 0.1], 4), vec![1, 3]);
        // A middle stage heavy enough for an actor of its own.
        assert_eq!(pack(&[1.0, 3.0, 1.0, 1.0], 3), vec![1, 1, 2]);
        // One core still has the source's actor and the sink's.
        assert_eq!(pack(&[1.0, 1.0, 1.0], 1), vec![1, 2]);
        // Source and sink only: nothing to pack.
        assert_eq!(pack(&[1.0, 1.0], 2), vec![1, 1]);
        for (costs, cores) in [(&[0.2, 0.5, 0.1, 0.9, 0.3][..], 3), (&[1.0; 7][..], 2)] {
            let sizes = pack(costs, cores);
            assert_eq!(sizes.iter().sum::<usize>(), costs.len());
            let unpacked = sizes.len() == costs.len();
            assert!(unpacked || (sizes.len() >= 2 && sizes.len() <= cores.max(2)));
            assert!(sizes.iter().all(|&n| n > 0));
        }
    }
}
