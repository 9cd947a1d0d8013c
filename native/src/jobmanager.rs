//! The JobManager derivation of `engine/jobmanager.py` and `engine/process.py`, for the batch
//! fast path. The Python engine is the reference: the same reads in the same order, the same
//! refusals with the same words, and only the warnings that reach the batch output. Every line
//! this code answers is checked against the Python engine by `tests/unit/test_fastpath.py`.

use std::borrow::Cow;

use crate::numbers::{
    format_size, java_double_to_string, multiply, parse_java_float, parse_java_int,
    parse_memory_size, python_repr, python_strip, Bail, MAX_BYTES, MIB,
};

pub const PROCESS: usize = 0;
pub const FLINK: usize = 1;
pub const HEAP: usize = 2;
pub const OFF_HEAP: usize = 3;
pub const DIRECT_LIMIT: usize = 4;
pub const METASPACE: usize = 5;
pub const OVERHEAD_MIN: usize = 6;
pub const OVERHEAD_MAX: usize = 7;
pub const OVERHEAD_FRACTION: usize = 8;
pub const LEGACY_HEAP: usize = 9;
pub const LEGACY_HEAP_MB: usize = 10;

pub const KEYS: [&str; 11] = [
    "jobmanager.memory.process.size",
    "jobmanager.memory.flink.size",
    "jobmanager.memory.heap.size",
    "jobmanager.memory.off-heap.size",
    "jobmanager.memory.enable-jvm-direct-memory-limit",
    "jobmanager.memory.jvm-metaspace.size",
    "jobmanager.memory.jvm-overhead.min",
    "jobmanager.memory.jvm-overhead.max",
    "jobmanager.memory.jvm-overhead.fraction",
    "jobmanager.heap.size",
    "jobmanager.heap.mb",
];

const SIZE_DEFAULTS: [Option<u64>; 11] = [
    None,
    None,
    None,
    Some(128 * MIB),
    None,
    Some(256 * MIB),
    Some(192 * MIB),
    Some(1024 * MIB),
    None,
    None,
    None,
];
/// 0.1f widened to double, as Flink widens the Float option's default.
const DEFAULT_FRACTION: f64 = 0.10000000149011612;
const MIN_HEAP: u64 = 128 * MIB;
const ROLE: &str = "JobManager";
const MEMORY_FIX: &str =
    "write a whole number followed by a unit, for example '1600m' or '2g' (a bare number means bytes)";
const SUM_OVERFLOW: &str = "the sum of the memory sizes exceeds 2^63-1 bytes";
const SCALE_OVERFLOW: &str = "the scaled memory size exceeds 2^63-1 bytes";

/// A configured value: the text of the line, or a byte count the 1.x legacy mapping put there.
pub enum Raw<'a> {
    Text(Cow<'a, str>),
    Bytes(u64),
}

#[derive(Default)]
pub struct Config<'a> {
    pub values: [Option<Raw<'a>>; 11],
}

#[derive(Clone, Copy)]
pub struct Version {
    pub major: u32,
    /// None for a whole major line such as `v2_x`.
    pub minor: Option<u32>,
}

pub struct Resolved {
    pub heap: u64,
    pub off_heap: u64,
    pub metaspace: u64,
    pub overhead: u64,
    pub total_flink: u64,
    pub total_process: u64,
    pub direct_limit: bool,
    pub warnings: Vec<String>,
}

pub enum Failure {
    Refused { rule: &'static str, message: String },
    Bail,
}

impl From<Bail> for Failure {
    fn from(_: Bail) -> Self {
        Failure::Bail
    }
}

type Outcome<T> = Result<T, Failure>;

fn refuse<T>(rule: &'static str, problem: String, fix: String) -> Outcome<T> {
    Err(Failure::Refused {
        rule,
        message: format!("{problem} Fix: {fix}"),
    })
}

fn invalid<T>(key: &str, text: &str, problem: &str, fix: &str) -> Outcome<T> {
    let mut shown = String::new();
    python_repr(text, &mut shown);
    refuse(
        "invalid-value",
        format!("{key} has the value {shown}, which Flink cannot read: {problem}."),
        fix.into(),
    )
}

fn overflow<T>(detail: &str) -> Outcome<T> {
    refuse(
        "size-overflow",
        format!("The {ROLE} memory sizes add up to more than 2^63-1 bytes ({detail})."),
        "use realistic sizes; no component may be larger than a few TiB".into(),
    )
}

fn sum(sizes: &[u64]) -> Outcome<u64> {
    let total: u128 = sizes.iter().map(|&s| s as u128).sum();
    if total > MAX_BYTES as u128 {
        return overflow(SUM_OVERFLOW);
    }
    Ok(total as u64)
}

fn fs(size: u64) -> String {
    format_size(size as u128)
}

/// A size option as Flink reads it: its default when absent, else its parsed text.
fn read_memory(config: &Config<'_>, option: usize) -> Outcome<u64> {
    match &config.values[option] {
        None => SIZE_DEFAULTS[option].ok_or(Failure::Bail),
        Some(Raw::Bytes(bytes)) => Ok(*bytes),
        Some(Raw::Text(text)) => match parse_memory_size(text) {
            Ok(bytes) => Ok(bytes),
            Err(reason) => invalid(KEYS[option], text, &reason, MEMORY_FIX),
        },
    }
}

struct RangeFraction {
    min: u64,
    max: u64,
    fraction: f64,
}

struct Deriver<'c, 'a> {
    config: &'c Config<'a>,
    warnings: Vec<String>,
}

impl Deriver<'_, '_> {
    fn has(&self, option: usize) -> bool {
        self.config.values[option].is_some()
    }

    fn memory(&self, option: usize) -> Outcome<u64> {
        read_memory(self.config, option)
    }

    fn fraction(&self) -> Outcome<f64> {
        match &self.config.values[OVERHEAD_FRACTION] {
            None => Ok(DEFAULT_FRACTION),
            Some(Raw::Bytes(_)) => Err(Failure::Bail),
            Some(Raw::Text(text)) => match parse_java_float(text) {
                Some(value) => Ok(value),
                None => invalid(
                    KEYS[OVERHEAD_FRACTION],
                    text,
                    "it is not a decimal number",
                    "write a decimal fraction such as 0.1",
                ),
            },
        }
    }

    fn direct_limit(&self) -> Outcome<bool> {
        match &self.config.values[DIRECT_LIMIT] {
            None => Ok(false),
            Some(Raw::Bytes(_)) => Err(Failure::Bail),
            Some(Raw::Text(text)) => {
                let upper = text.to_ascii_uppercase();
                match upper.as_str() {
                    "TRUE" => Ok(true),
                    "FALSE" => Ok(false),
                    _ => invalid(
                        KEYS[DIRECT_LIMIT],
                        text,
                        "only true or false (in any letter case, without spaces) are booleans",
                        "write true or false",
                    ),
                }
            }
        }
    }

    fn range_fraction(&self) -> Outcome<RangeFraction> {
        let min = self.memory(OVERHEAD_MIN)?;
        let max = self.memory(OVERHEAD_MAX)?;
        let fraction = self.fraction()?;
        let in_range = (0.0..1.0).contains(&fraction);
        if min <= max && in_range {
            return Ok(RangeFraction { min, max, fraction });
        }
        let (min_key, max_key, fraction_key) = (
            KEYS[OVERHEAD_MIN],
            KEYS[OVERHEAD_MAX],
            KEYS[OVERHEAD_FRACTION],
        );
        if min > max {
            return refuse(
                "overhead-range-inconsistent",
                format!(
                    "{min_key} ({}) is larger than {max_key} ({}).",
                    fs(min),
                    fs(max)
                ),
                format!("make {min_key} less than or equal to {max_key}"),
            );
        }
        let shown = java_double_to_string(fraction);
        refuse(
            "overhead-range-inconsistent",
            format!("{fraction_key} is {shown}, outside the allowed range [0, 1)."),
            format!("set {fraction_key} to a fraction such as 0.1 (at least 0, below 1)"),
        )
    }

    fn heap_notice(&mut self, heap: u64) {
        if heap < MIN_HEAP {
            self.warnings.push(format!(
                "JVM heap {} is below the recommended minimum of 128 MiB",
                fs(heap)
            ));
        }
    }

    fn split_required_fine_grained(&mut self) -> Outcome<(u64, u64)> {
        let heap = self.memory(HEAP)?;
        let mut off_heap = self.memory(OFF_HEAP)?;
        if self.has(FLINK) {
            let total_flink = self.memory(FLINK)?;
            let (heap_key, off_key, flink_key) = (KEYS[HEAP], KEYS[OFF_HEAP], KEYS[FLINK]);
            if self.has(OFF_HEAP) {
                let derived = sum(&[heap, off_heap])?;
                if derived != total_flink {
                    return refuse(
                        "heap-plus-off-heap-mismatch",
                        format!(
                            "{heap_key} ({}) plus {off_key} ({}) is {}, but {flink_key} is {}.",
                            fs(heap),
                            fs(off_heap),
                            fs(derived),
                            fs(total_flink)
                        ),
                        format!("set only two of the three options, or make heap + off-heap equal {flink_key}"),
                    );
                }
            } else {
                if heap > total_flink {
                    return refuse(
                        "heap-exceeds-flink",
                        format!(
                            "{heap_key} ({}) is larger than {flink_key} ({}), which must contain it.",
                            fs(heap),
                            fs(total_flink)
                        ),
                        format!("raise {flink_key} above {} or set only one of the two", fs(heap)),
                    );
                }
                off_heap = total_flink - heap;
            }
        }
        self.heap_notice(heap);
        Ok((heap, off_heap))
    }

    fn split_total_flink(&mut self, total_flink: u64, source: usize) -> Outcome<(u64, u64)> {
        let off_heap = self.memory(OFF_HEAP)?;
        if total_flink <= off_heap {
            let (source_key, off_key) = (KEYS[source], KEYS[OFF_HEAP]);
            let derived = if source == FLINK {
                String::new()
            } else {
                format!(", what {source_key} leaves after metaspace and overhead")
            };
            return refuse(
                "flink-not-above-off-heap",
                format!(
                    "Total Flink Memory ({}{derived}) is not larger than {off_key} ({}), so nothing is left for the JVM heap.",
                    fs(total_flink),
                    fs(off_heap)
                ),
                format!("raise {source_key} or lower {off_key} below {}", fs(total_flink)),
            );
        }
        let heap = total_flink - off_heap;
        self.heap_notice(heap);
        Ok((heap, off_heap))
    }

    fn metaspace_and_overhead_from_total_process(&self, total_process: u64) -> Outcome<(u64, u64)> {
        let metaspace = self.memory(METASPACE)?;
        let rf = self.range_fraction()?;
        let overhead = cap(
            multiply(total_process, rf.fraction)?.ok_or(Failure::Bail)?,
            &rf,
        );
        let jvm_total = sum(&[metaspace, overhead])?;
        if jvm_total > total_process {
            let (process_key, meta_key, min_key) =
                (KEYS[PROCESS], KEYS[METASPACE], KEYS[OVERHEAD_MIN]);
            return refuse(
                "metaspace-and-overhead-exceed-process",
                format!(
                    "{process_key} is {}, but JVM metaspace ({}) and JVM overhead ({}) alone need {}, leaving nothing for Flink.",
                    fs(total_process),
                    fs(metaspace),
                    fs(overhead),
                    fs(jvm_total)
                ),
                format!(
                    "raise {process_key} well above {} (the default '1600m' is a good start), or lower {meta_key} / {min_key}",
                    fs(jvm_total)
                ),
            );
        }
        Ok((metaspace, overhead))
    }

    fn metaspace_and_overhead_from_total_flink(&self, total_flink: u64) -> Outcome<(u64, u64)> {
        let metaspace = self.memory(METASPACE)?;
        let flink_and_meta = sum(&[total_flink, metaspace])?;
        if self.has(PROCESS) {
            return Ok((
                metaspace,
                self.overhead_as_remainder(total_flink, metaspace, flink_and_meta)?,
            ));
        }
        let rf = self.range_fraction()?;
        let inverse = rf.fraction / (1.0 - rf.fraction);
        match multiply(flink_and_meta, inverse)? {
            Some(raw) => Ok((metaspace, cap(raw, &rf))),
            None => overflow(SCALE_OVERFLOW),
        }
    }

    fn overhead_as_remainder(
        &self,
        total_flink: u64,
        metaspace: u64,
        flink_and_meta: u64,
    ) -> Outcome<u64> {
        let total_process = self.memory(PROCESS)?;
        let (process_key, min_key, max_key) =
            (KEYS[PROCESS], KEYS[OVERHEAD_MIN], KEYS[OVERHEAD_MAX]);
        if total_process < flink_and_meta {
            // For advice only: an unreadable minimum counts as zero.
            let with_min =
                flink_and_meta as u128 + self.memory(OVERHEAD_MIN).map_or(0, |m| m as u128);
            return refuse(
                "process-below-flink-plus-metaspace",
                format!(
                    "{process_key} ({}) is smaller than the Total Flink Memory ({}) plus JVM metaspace ({}) it must contain.",
                    fs(total_process),
                    fs(total_flink),
                    fs(metaspace)
                ),
                format!(
                    "raise {process_key} to at least {} (Flink memory, metaspace and the minimum JVM overhead), lower the heap/Flink memory, or remove {process_key} and let Flink derive it",
                    format_size(with_min)
                ),
            );
        }
        let overhead = total_process - flink_and_meta;
        let rf = self.range_fraction()?;
        if overhead > rf.max || overhead < rf.min {
            let low = flink_and_meta as u128 + rf.min as u128;
            let high = flink_and_meta as u128 + rf.max as u128;
            return refuse(
                "derived-overhead-out-of-range",
                format!(
                    "{process_key} ({}) minus Total Flink Memory ({}) and JVM metaspace ({}) leaves {} of JVM overhead, outside the allowed range [{}, {}].",
                    fs(total_process),
                    fs(total_flink),
                    fs(metaspace),
                    fs(overhead),
                    fs(rf.min),
                    fs(rf.max)
                ),
                format!(
                    "set {process_key} between {} and {}, adjust {min_key}/{max_key}, or remove {process_key} so Flink derives it",
                    format_size(low),
                    format_size(high)
                ),
            );
        }
        Ok(overhead)
    }
}

fn cap(raw: u64, rf: &RangeFraction) -> u64 {
    raw.clamp(rf.min, rf.max.max(rf.min))
}

fn version_text(version: Version) -> String {
    match version.minor {
        Some(minor) => format!("{}.{minor}", version.major),
        None => format!("{}.x", version.major),
    }
}

fn input_notices(config: &Config<'_>, version: Version) -> Vec<String> {
    let mut notices = Vec::new();
    for option in [
        PROCESS,
        FLINK,
        HEAP,
        OFF_HEAP,
        METASPACE,
        OVERHEAD_MIN,
        OVERHEAD_MAX,
        LEGACY_HEAP,
    ] {
        if let Some(Raw::Text(raw)) = &config.values[option] {
            let text = python_strip(raw);
            if !text.is_empty()
                && text.bytes().all(|b| b.is_ascii_digit())
                && text.bytes().any(|b| b != b'0')
            {
                notices.push(format!(
                    "{}={text} has no unit, so Flink reads it as {text} bytes; add a unit like 'm'",
                    KEYS[option]
                ));
            }
        }
    }
    if version.major != 1 {
        for option in [LEGACY_HEAP, LEGACY_HEAP_MB] {
            if config.values[option].is_some() {
                notices.push(format!(
                    "{} is ignored by Flink {}; use {}",
                    KEYS[option],
                    version_text(version),
                    KEYS[PROCESS]
                ));
            }
        }
    }
    notices
}

/// 1.x: the legacy heap value and where it came from (the batch has no FLINK_JM_HEAP).
fn legacy_heap(config: &Config<'_>) -> Outcome<Option<(u64, &'static str)>> {
    if config.values[LEGACY_HEAP].is_some() {
        return Ok(Some((read_memory(config, LEGACY_HEAP)?, KEYS[LEGACY_HEAP])));
    }
    let Some(raw) = &config.values[LEGACY_HEAP_MB] else {
        return Ok(None);
    };
    let Raw::Text(text) = raw else {
        return Err(Failure::Bail);
    };
    let key = KEYS[LEGACY_HEAP_MB];
    match parse_java_int(text) {
        None => invalid(
            key,
            text,
            "it is not a 32-bit whole number",
            "write a whole number of MiB such as 1024",
        ),
        Some(mebibytes) if mebibytes < 0 => refuse(
            "legacy-heap-invalid",
            format!("{key} is {mebibytes}, a negative size."),
            format!("remove {key} and set {} instead", KEYS[PROCESS]),
        ),
        Some(mebibytes) => Ok(Some(((mebibytes as u64) << 20, key))),
    }
}

pub fn resolve(mut config: Config<'_>, version: Version, standalone: bool) -> Outcome<Resolved> {
    let mut warnings = input_notices(&config, version);
    if version.major == 1 {
        // Native mode reads the legacy value as total process memory, standalone as the heap.
        let target = if standalone { HEAP } else { PROCESS };
        if config.values[target].is_none() {
            if let Some((size, source)) = legacy_heap(&config)? {
                config.values[target] = Some(Raw::Bytes(size));
                let target_key = KEYS[target];
                warnings.push(format!(
                    "{source} ({}) is used as {target_key}; set {target_key} directly instead",
                    fs(size)
                ));
            }
        }
    }
    let mut deriver = Deriver {
        config: &config,
        warnings,
    };
    let (heap, off_heap, metaspace, overhead, total_flink);
    if deriver.has(HEAP) {
        (heap, off_heap) = deriver.split_required_fine_grained()?;
        total_flink = sum(&[heap, off_heap])?;
        (metaspace, overhead) = deriver.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if deriver.has(FLINK) {
        total_flink = deriver.memory(FLINK)?;
        (heap, off_heap) = deriver.split_total_flink(total_flink, FLINK)?;
        (metaspace, overhead) = deriver.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if deriver.has(PROCESS) {
        let total_process = deriver.memory(PROCESS)?;
        (metaspace, overhead) = deriver.metaspace_and_overhead_from_total_process(total_process)?;
        total_flink = total_process - metaspace - overhead;
        (heap, off_heap) = deriver.split_total_flink(total_flink, PROCESS)?;
    } else {
        let keys = [KEYS[HEAP], KEYS[FLINK], KEYS[PROCESS]].join(", ");
        return refuse(
            "no-sizing-option",
            format!("No {ROLE} memory size is configured: Flink needs one of {keys}."),
            format!(
                "set {} (for example '1600m'), the size of the whole {ROLE} process",
                KEYS[PROCESS]
            ),
        );
    }
    let total_process = sum(&[total_flink, metaspace, overhead])?;
    let direct_limit = deriver.direct_limit()?;
    Ok(Resolved {
        heap,
        off_heap,
        metaspace,
        overhead,
        total_flink,
        total_process,
        direct_limit,
        warnings: deriver.warnings,
    })
}
