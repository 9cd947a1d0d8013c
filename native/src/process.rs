//! The derivation every process role shares (`engine/process.py`, `engine/options.py`,
//! `engine/legacyheap.py`): option reads with defaults and deprecated keys, ranges with a fraction,
//! and the JVM metaspace and overhead around a Total Flink Memory. A role supplies its option
//! table (`Options`); the same reads in the same order, and the same words, as the Python engine.

use std::borrow::Cow;

use crate::numbers::{
    format_size, java_double_to_string, multiply, parse_java_double, parse_java_float,
    parse_java_int, parse_memory_size, python_repr, Bail, MAX_BYTES,
};

/// Room for the largest role's option table (the TaskManager's).
pub const MAX_KEYS: usize = 32;

pub const MEMORY_FIX: &str =
    "write a whole number followed by a unit, for example '1600m' or '2g' (a bare number means bytes)";
pub const SUM_OVERFLOW: &str = "the sum of the memory sizes exceeds 2^63-1 bytes";
pub const SCALE_OVERFLOW: &str = "the scaled memory size exceeds 2^63-1 bytes";

/// A configured value: the text of the line, or a byte count the 1.x legacy mapping put there.
pub enum Raw<'a> {
    Text(Cow<'a, str>),
    Bytes(u64),
}

pub struct Config<'a> {
    pub values: [Option<Raw<'a>>; MAX_KEYS],
    /// Options whose keys are not fixed (`external-resource.<name>.amount`), in input order.
    pub extra: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl Default for Config<'_> {
    fn default() -> Self {
        Config {
            values: std::array::from_fn(|_| None),
            extra: Vec::new(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Version {
    pub major: u32,
    /// None for a whole major line such as `v2_x`.
    pub minor: Option<u32>,
}

pub fn version_text(version: Version) -> String {
    match version.minor {
        Some(minor) => format!("{}.{minor}", version.major),
        None => format!("{}.x", version.major),
    }
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

pub type Outcome<T> = Result<T, Failure>;

pub fn refuse<T>(rule: &'static str, problem: String, fix: String) -> Outcome<T> {
    Err(Failure::Refused {
        rule,
        message: format!("{problem} Fix: {fix}"),
    })
}

pub fn invalid<T>(key: &str, text: &str, problem: &str, fix: &str) -> Outcome<T> {
    let mut shown = String::new();
    python_repr(text, &mut shown);
    refuse(
        "invalid-value",
        format!("{key} has the value {shown}, which Flink cannot read: {problem}."),
        fix.into(),
    )
}

pub fn overflow<T>(role: &str, detail: &str) -> Outcome<T> {
    refuse(
        "size-overflow",
        format!("The {role} memory sizes add up to more than 2^63-1 bytes ({detail})."),
        "use realistic sizes; no component may be larger than a few TiB".into(),
    )
}

pub fn fs(size: u64) -> String {
    format_size(size as u128)
}

/// One range with a fraction (`RangeOptions`): option indices, the fraction's default and the rule.
pub struct RangeOptions {
    pub min: usize,
    pub max: usize,
    pub fraction: usize,
    pub fraction_default: f64,
    pub rule: &'static str,
}

/// One role's options (`ProcessMemoryOptions` plus the option table of its module).
pub struct Options {
    pub role: &'static str,
    pub keys: &'static [&'static str],
    pub size_defaults: &'static [Option<u64>],
    /// The deprecated key Flink reads in place of an option, by option index.
    pub fallback: &'static [Option<usize>],
    pub fine_grained: &'static [usize],
    pub process: usize,
    pub flink: usize,
    pub metaspace: usize,
    pub overhead: RangeOptions,
    pub example_size: &'static str,
}

pub struct RangeFraction {
    pub min: u64,
    pub max: u64,
    pub fraction: f64,
}

pub fn clamp(raw: u64, rf: &RangeFraction) -> u64 {
    if raw > rf.max {
        rf.max
    } else if raw < rf.min {
        rf.min
    } else {
        raw
    }
}

/// The options and the configuration of one line, and the reads Flink makes from them.
pub struct Reader<'c, 'a> {
    pub opts: &'static Options,
    pub config: &'c Config<'a>,
    /// The native resource manager's view: total process and total Flink sizes removed.
    pub without_totals: bool,
}

impl<'a> Reader<'_, 'a> {
    pub fn key(&self, option: usize) -> &'static str {
        self.opts.keys[option]
    }

    /// Flink's `contains`: the option's key or its deprecated key is set.
    pub fn has(&self, option: usize) -> bool {
        if self.without_totals && (option == self.opts.process || option == self.opts.flink) {
            return false;
        }
        self.config.values[option].is_some()
            || self.opts.fallback[option].is_some_and(|old| self.config.values[old].is_some())
    }

    /// The raw value and the index of the key that set it (the main key first).
    pub fn lookup(&self, option: usize) -> Option<(usize, &Raw<'a>)> {
        if let Some(raw) = &self.config.values[option] {
            return Some((option, raw));
        }
        let old = self.opts.fallback[option]?;
        self.config.values[old].as_ref().map(|raw| (old, raw))
    }

    pub fn text(&self, option: usize) -> Option<(usize, &str)> {
        match self.lookup(option)? {
            (index, Raw::Text(text)) => Some((index, text.as_ref())),
            _ => None,
        }
    }

    pub fn sum(&self, sizes: &[u64]) -> Outcome<u64> {
        let total: u128 = sizes.iter().map(|&s| s as u128).sum();
        if total > MAX_BYTES as u128 {
            return overflow(self.opts.role, SUM_OVERFLOW);
        }
        Ok(total as u64)
    }

    /// A size option as Flink reads it: its default when absent, else its parsed value.
    pub fn memory(&self, option: usize) -> Outcome<u64> {
        match self.lookup(option) {
            None => self.opts.size_defaults[option].ok_or(Failure::Bail),
            Some((_, Raw::Bytes(bytes))) => Ok(*bytes),
            Some((index, Raw::Text(text))) => match parse_memory_size(text) {
                Ok(bytes) => Ok(bytes),
                Err(reason) => invalid(self.key(index), text, &reason, MEMORY_FIX),
            },
        }
    }

    pub fn float(&self, option: usize, default: f64, example: &str) -> Outcome<f64> {
        match self.lookup(option) {
            None => Ok(default),
            Some((_, Raw::Bytes(_))) => Err(Failure::Bail),
            Some((index, Raw::Text(text))) => match parse_java_float(text) {
                Some(value) => Ok(value),
                None => invalid(
                    self.key(index),
                    text,
                    "it is not a decimal number",
                    &format!("write a decimal fraction such as {example}"),
                ),
            },
        }
    }

    pub fn double(&self, option: usize, default: f64, example: &str) -> Outcome<f64> {
        match self.lookup(option) {
            None => Ok(default),
            Some((_, Raw::Bytes(_))) => Err(Failure::Bail),
            Some((index, Raw::Text(text))) => match parse_java_double(text)? {
                Some(value) => Ok(value),
                None => invalid(
                    self.key(index),
                    text,
                    "it is not a decimal number",
                    &format!("write a number such as {example}"),
                ),
            },
        }
    }

    pub fn int(&self, option: usize, default: i64, fix: &str) -> Outcome<i64> {
        match self.lookup(option) {
            None => Ok(default),
            Some((_, Raw::Bytes(_))) => Err(Failure::Bail),
            Some((index, Raw::Text(text))) => match parse_java_int(text) {
                Some(value) => Ok(value),
                None => invalid(
                    self.key(index),
                    text,
                    "it is not a 32-bit whole number",
                    fix,
                ),
            },
        }
    }

    /// Min, max and fraction in Flink's order; min <= max and 0 <= fraction < 1 (`read_range`).
    pub fn range(&self, range: &RangeOptions, example: &str) -> Outcome<RangeFraction> {
        let min = self.memory(range.min)?;
        let max = self.memory(range.max)?;
        let fraction = self.float(range.fraction, range.fraction_default, "0.1")?;
        if min <= max && (0.0..1.0).contains(&fraction) {
            return Ok(RangeFraction { min, max, fraction });
        }
        let (min_key, max_key, fraction_key) = (
            self.key(range.min),
            self.key(range.max),
            self.key(range.fraction),
        );
        if min > max {
            return refuse(
                range.rule,
                format!(
                    "{min_key} ({}) is larger than {max_key} ({}).",
                    fs(min),
                    fs(max)
                ),
                format!("make {min_key} less than or equal to {max_key}"),
            );
        }
        refuse(
            range.rule,
            format!(
                "{fraction_key} is {}, outside the allowed range [0, 1).",
                java_double_to_string(fraction)
            ),
            format!("set {fraction_key} to a fraction such as {example} (at least 0, below 1)"),
        )
    }

    /// `base` times the fraction, truncated (overflow refused as Flink's ArithmeticException).
    pub fn fraction_of(&self, base: u64, fraction: f64) -> Outcome<u64> {
        match multiply(base, fraction)? {
            Some(product) => Ok(product),
            None => overflow(self.opts.role, SCALE_OVERFLOW),
        }
    }

    pub fn inverse_fraction_of(&self, base: u64, fraction: f64) -> Outcome<u64> {
        self.fraction_of(base, fraction / (1.0 - fraction))
    }

    pub fn no_sizing_option<T>(&self) -> Outcome<T> {
        let opts = self.opts;
        let fine_grained: Vec<&str> = opts.fine_grained.iter().map(|&o| self.key(o)).collect();
        let (flink, process) = (self.key(opts.flink), self.key(opts.process));
        let needs = if fine_grained.len() == 1 {
            format!("one of {}, {flink}, {process}", fine_grained[0])
        } else {
            format!(
                "{} together, or {flink}, or {process}",
                fine_grained.join(" and ")
            )
        };
        refuse(
            "no-sizing-option",
            format!(
                "No {} memory size is configured: Flink needs {needs}.",
                opts.role
            ),
            format!(
                "set {process} (for example '{}'), the size of the whole {} process",
                opts.example_size, opts.role
            ),
        )
    }

    pub fn metaspace_and_overhead_from_total_process(
        &self,
        total_process: u64,
    ) -> Outcome<(u64, u64)> {
        let opts = self.opts;
        let metaspace = self.memory(opts.metaspace)?;
        let rf = self.range(&opts.overhead, "0.1")?;
        let overhead = clamp(self.fraction_of(total_process, rf.fraction)?, &rf);
        let jvm_total = self.sum(&[metaspace, overhead])?;
        if jvm_total > total_process {
            let (process_key, meta_key, min_key) = (
                self.key(opts.process),
                self.key(opts.metaspace),
                self.key(opts.overhead.min),
            );
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
                    "raise {process_key} well above {} (the default '{}' is a good start), or lower {meta_key} / {min_key}",
                    fs(jvm_total),
                    opts.example_size
                ),
            );
        }
        Ok((metaspace, overhead))
    }

    pub fn metaspace_and_overhead_from_total_flink(&self, total_flink: u64) -> Outcome<(u64, u64)> {
        let opts = self.opts;
        let metaspace = self.memory(opts.metaspace)?;
        let flink_and_meta = self.sum(&[total_flink, metaspace])?;
        if self.has(opts.process) {
            return Ok((
                metaspace,
                self.overhead_as_remainder(total_flink, metaspace, flink_and_meta)?,
            ));
        }
        let rf = self.range(&opts.overhead, "0.1")?;
        let raw = self.inverse_fraction_of(flink_and_meta, rf.fraction)?;
        Ok((metaspace, clamp(raw, &rf)))
    }

    fn overhead_as_remainder(
        &self,
        total_flink: u64,
        metaspace: u64,
        flink_and_meta: u64,
    ) -> Outcome<u64> {
        let opts = self.opts;
        let total_process = self.memory(opts.process)?;
        let (process_key, min_key, max_key) = (
            self.key(opts.process),
            self.key(opts.overhead.min),
            self.key(opts.overhead.max),
        );
        if total_process < flink_and_meta {
            // For advice only: an unreadable minimum counts as zero.
            let with_min =
                flink_and_meta as u128 + self.memory(opts.overhead.min).map_or(0, |m| m as u128);
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
        let rf = self.range(&opts.overhead, "0.1")?;
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

    /// 1.x: the legacy heap value and where it came from (the batch has no environment variable).
    pub fn legacy_heap(
        &self,
        heap: usize,
        heap_mb: usize,
        replacement: usize,
    ) -> Outcome<Option<(u64, &'static str)>> {
        if self.config.values[heap].is_some() {
            return Ok(Some((self.memory(heap)?, self.key(heap))));
        }
        let Some(raw) = &self.config.values[heap_mb] else {
            return Ok(None);
        };
        let Raw::Text(text) = raw else {
            return Err(Failure::Bail);
        };
        let key = self.key(heap_mb);
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
                format!("remove {key} and set {} instead", self.key(replacement)),
            ),
            Some(mebibytes) => Ok(Some(((mebibytes as u64) << 20, key))),
        }
    }
}

/// `config` with the 1.x legacy heap written under `target` when `target` is unset; the notice.
pub fn map_legacy_heap(
    opts: &'static Options,
    config: &mut Config<'_>,
    heap: usize,
    heap_mb: usize,
    target: usize,
) -> Outcome<Option<String>> {
    if config.values[target].is_some() {
        return Ok(None);
    }
    let reader = Reader {
        opts,
        config,
        without_totals: false,
    };
    let Some((size, source)) = reader.legacy_heap(heap, heap_mb, opts.process)? else {
        return Ok(None);
    };
    config.values[target] = Some(Raw::Bytes(size));
    let target_key = opts.keys[target];
    Ok(Some(format!(
        "{source} ({}) is used as {target_key}; set {target_key} directly instead",
        fs(size)
    )))
}

/// The `bare-number-size` warning of a size given without a unit.
pub fn bare_number_notice(key: &str, raw: &Raw<'_>, notices: &mut Vec<String>) {
    if let Raw::Text(raw) = raw {
        let text = crate::numbers::python_strip(raw);
        if !text.is_empty()
            && text.bytes().all(|b| b.is_ascii_digit())
            && text.bytes().any(|b| b != b'0')
        {
            notices.push(format!(
                "{key}={text} has no unit, so Flink reads it as {text} bytes; add a unit like 'm'"
            ));
        }
    }
}
