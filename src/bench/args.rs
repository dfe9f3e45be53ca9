//! The bench's command-line lists: `--sizes` ([`parse_sizes`]) and
//! `--modes` ([`parse_modes`]).

use crate::mode::Mode;

/// Parses `25000,50k,1M` into sizes (sorted, deduplicated, all ≥ 1).
pub fn parse_sizes(text: &str) -> Result<Vec<u64>, String> {
    let mut sizes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let lower = part.to_ascii_lowercase().replace('_', "");
        let (digits, factor) = match lower.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => match lower.strip_suffix('m') {
                Some(d) => (d, 1_000_000),
                None => (lower.as_str(), 1),
            },
        };
        let n: u64 = digits
            .parse()
            .map_err(|_| format!("'{part}' is not a size (use e.g. 25000, 50k or 1M)"))?;
        let n = n
            .checked_mul(factor)
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("size '{part}' is out of range"))?;
        sizes.push(n);
    }
    if sizes.is_empty() {
        return Err("no size given".into());
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

/// Parses `serial,pipeline,multiprocess` into modes (deduplicated, in the
/// order given).
pub fn parse_modes(text: &str) -> Result<Vec<Mode>, String> {
    let mut modes = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mode = match part.to_ascii_lowercase().as_str() {
            "serial" => Mode::Serial,
            "pipeline" => Mode::Pipelined,
            "multiprocess" => Mode::Multiprocess,
            _ => {
                return Err(format!(
                    "unknown mode '{part}' (serial, pipeline, multiprocess)"
                ))
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    if modes.is_empty() {
        return Err("no mode given".into());
    }
    Ok(modes)
}
