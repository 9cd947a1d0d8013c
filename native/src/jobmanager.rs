//! The JobManager model of `engine/jobmanager.py` on the shared derivation (`process.rs`), for
//! the batch fast path: the same reads in the same order, the same refusals with the same words,
//! and only the warnings that reach the batch output.

use crate::numbers::MIB;
use crate::process::{
    bare_number_notice, fs, map_legacy_heap, refuse, version_text, Config, Options, Outcome,
    RangeOptions, Reader, Version,
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

pub static OPTIONS: Options = Options {
    role: "JobManager",
    keys: &KEYS,
    size_defaults: &SIZE_DEFAULTS,
    fallback: &[None; 11],
    fine_grained: &[HEAP],
    process: PROCESS,
    flink: FLINK,
    metaspace: METASPACE,
    overhead: RangeOptions {
        min: OVERHEAD_MIN,
        max: OVERHEAD_MAX,
        fraction: OVERHEAD_FRACTION,
        fraction_default: DEFAULT_FRACTION,
        rule: "overhead-range-inconsistent",
    },
    example_size: "1600m",
};

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

struct Model<'r, 'c, 'a> {
    reader: &'r Reader<'c, 'a>,
    warnings: Vec<String>,
}

impl Model<'_, '_, '_> {
    fn direct_limit(&self) -> Outcome<bool> {
        match self.reader.text(DIRECT_LIMIT) {
            None => Ok(false),
            Some((_, text)) => match text.to_ascii_uppercase().as_str() {
                "TRUE" => Ok(true),
                "FALSE" => Ok(false),
                _ => crate::process::invalid(
                    KEYS[DIRECT_LIMIT],
                    text,
                    "only true or false (in any letter case, without spaces) are booleans",
                    "write true or false",
                ),
            },
        }
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
        let reader = self.reader;
        let heap = reader.memory(HEAP)?;
        let mut off_heap = reader.memory(OFF_HEAP)?;
        if reader.has(FLINK) {
            let total_flink = reader.memory(FLINK)?;
            let (heap_key, off_key, flink_key) = (KEYS[HEAP], KEYS[OFF_HEAP], KEYS[FLINK]);
            if reader.has(OFF_HEAP) {
                let derived = reader.sum(&[heap, off_heap])?;
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
        let off_heap = self.reader.memory(OFF_HEAP)?;
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
        if let Some(raw) = &config.values[option] {
            bare_number_notice(KEYS[option], raw, &mut notices);
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

pub fn resolve(mut config: Config<'_>, version: Version, standalone: bool) -> Outcome<Resolved> {
    let mut warnings = input_notices(&config, version);
    if version.major == 1 {
        // Native mode reads the legacy value as total process memory, standalone as the heap.
        let target = if standalone { HEAP } else { PROCESS };
        if let Some(notice) =
            map_legacy_heap(&OPTIONS, &mut config, LEGACY_HEAP, LEGACY_HEAP_MB, target)?
        {
            warnings.push(notice);
        }
    }
    let reader = Reader {
        opts: &OPTIONS,
        config: &config,
        without_totals: false,
    };
    let mut model = Model {
        reader: &reader,
        warnings,
    };
    let (heap, off_heap, metaspace, overhead, total_flink);
    if reader.has(HEAP) {
        (heap, off_heap) = model.split_required_fine_grained()?;
        total_flink = reader.sum(&[heap, off_heap])?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if reader.has(FLINK) {
        total_flink = reader.memory(FLINK)?;
        (heap, off_heap) = model.split_total_flink(total_flink, FLINK)?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if reader.has(PROCESS) {
        let total_process = reader.memory(PROCESS)?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_process(total_process)?;
        total_flink = total_process - metaspace - overhead;
        (heap, off_heap) = model.split_total_flink(total_flink, PROCESS)?;
    } else {
        return reader.no_sizing_option();
    }
    let total_process = reader.sum(&[total_flink, metaspace, overhead])?;
    let direct_limit = model.direct_limit()?;
    Ok(Resolved {
        heap,
        off_heap,
        metaspace,
        overhead,
        total_flink,
        total_process,
        direct_limit,
        warnings: model.warnings,
    })
}
