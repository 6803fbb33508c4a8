//! The value parsers of the `weft` command line (sizes, durations, seed ranges),
//! in the library only so that the fuzz targets (`fuzz/`) reach them: not part of
//! weft's API, which may change them at any time.

use std::time::Duration;

/// Parse `123`, `64K`, `64KiB`, `16M`, `16MiB`, `1G`, `1GiB` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size (e.g. 64MiB)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!("`{s}`: unknown unit `{unit}` (use KiB, MiB or GiB)"));
        }
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

/// Parse seeds: `A..B` (B excluded), `A..=B`, or a count `N` (0..N). Never empty.
pub fn parse_seeds(s: &str) -> Result<std::ops::Range<u64>, String> {
    let t = s.trim();
    let number = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{s}`: `{n}` is not a seed (expected A..B, A..=B or a count N)"))
    };
    let range = if let Some((a, b)) = t.split_once("..=") {
        let end = number(b)?
            .checked_add(1)
            .ok_or_else(|| format!("`{s}`: the range ends past the largest seed"))?;
        number(a)?..end
    } else if let Some((a, b)) = t.split_once("..") {
        number(a)?..number(b)?
    } else {
        0..number(t)?
    };
    if range.is_empty() {
        return Err(format!("`{s}` holds no seed"));
    }
    Ok(range)
}

/// Parse `5s`, `500ms`, `2m`, `1h30m`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"));
    }
    humantime::parse_duration(t).map_err(|e| format!("`{s}` is not a duration (e.g. 5s, 500ms, 2m): {e}"))
}
