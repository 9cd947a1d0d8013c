//! The TaskManager model of `engine/taskmanager.py` and `engine/workerresources.py` on the shared
//! derivation (`process.rs`), for the batch fast path: the same numbers, refusals and warnings as
//! the Python engine. Extended resources are answered for the usual list forms only.

use std::collections::{HashMap, HashSet};

use crate::numbers::{
    format_size, java_double_to_string, parse_java_long, python_repr, python_strip, Bail, Factor,
    MAX_BYTES, MIB,
};
use crate::process::{
    bare_number_notice, clamp, fs, map_legacy_heap, refuse, version_text, Config, Failure, Options,
    Outcome, RangeOptions, Raw, Reader, Version,
};

pub const PROCESS: usize = 0;
pub const FLINK: usize = 1;
pub const FRAMEWORK_HEAP: usize = 2;
pub const FRAMEWORK_OFF_HEAP: usize = 3;
pub const TASK_HEAP: usize = 4;
pub const TASK_OFF_HEAP: usize = 5;
pub const MANAGED: usize = 6;
pub const MANAGED_OLD: usize = 7;
pub const MANAGED_FRACTION: usize = 8;
pub const NETWORK_MIN: usize = 9;
pub const NETWORK_MIN_OLD: usize = 10;
pub const NETWORK_MAX: usize = 11;
pub const NETWORK_MAX_OLD: usize = 12;
pub const NETWORK_FRACTION: usize = 13;
pub const NETWORK_FRACTION_OLD: usize = 14;
pub const METASPACE: usize = 15;
pub const OVERHEAD_MIN: usize = 16;
pub const OVERHEAD_MAX: usize = 17;
pub const OVERHEAD_FRACTION: usize = 18;
pub const SLOTS: usize = 19;
pub const CPU: usize = 20;
pub const KUBERNETES_CPU: usize = 21;
pub const KUBERNETES_CPU_OLD: usize = 22;
pub const LEGACY_HEAP: usize = 23;
pub const LEGACY_HEAP_MB: usize = 24;
pub const BUFFERS: usize = 25;
pub const SEGMENT: usize = 26;
pub const STATE_BACKEND_TYPE: usize = 27;
pub const STATE_BACKEND: usize = 28;
pub const ROCKSDB_MANAGED: usize = 29;
pub const EXTERNAL_RESOURCES: usize = 30;

pub const KEYS: [&str; 31] = [
    "taskmanager.memory.process.size",
    "taskmanager.memory.flink.size",
    "taskmanager.memory.framework.heap.size",
    "taskmanager.memory.framework.off-heap.size",
    "taskmanager.memory.task.heap.size",
    "taskmanager.memory.task.off-heap.size",
    "taskmanager.memory.managed.size",
    "taskmanager.memory.size",
    "taskmanager.memory.managed.fraction",
    "taskmanager.memory.network.min",
    "taskmanager.network.memory.min",
    "taskmanager.memory.network.max",
    "taskmanager.network.memory.max",
    "taskmanager.memory.network.fraction",
    "taskmanager.network.memory.fraction",
    "taskmanager.memory.jvm-metaspace.size",
    "taskmanager.memory.jvm-overhead.min",
    "taskmanager.memory.jvm-overhead.max",
    "taskmanager.memory.jvm-overhead.fraction",
    "taskmanager.numberOfTaskSlots",
    "taskmanager.cpu.cores",
    "kubernetes.taskmanager.cpu.amount",
    "kubernetes.taskmanager.cpu",
    "taskmanager.heap.size",
    "taskmanager.heap.mb",
    "taskmanager.network.numberOfBuffers",
    "taskmanager.memory.segment-size",
    "state.backend.type",
    "state.backend",
    "state.backend.rocksdb.memory.managed",
    "external-resources",
];

const fn size_defaults() -> [Option<u64>; 31] {
    let mut defaults = [None; 31];
    defaults[FRAMEWORK_HEAP] = Some(128 * MIB);
    defaults[FRAMEWORK_OFF_HEAP] = Some(128 * MIB);
    defaults[TASK_OFF_HEAP] = Some(0);
    defaults[NETWORK_MIN] = Some(64 * MIB);
    defaults[NETWORK_MAX] = Some(MAX_BYTES);
    defaults[METASPACE] = Some(256 * MIB);
    defaults[OVERHEAD_MIN] = Some(192 * MIB);
    defaults[OVERHEAD_MAX] = Some(1024 * MIB);
    defaults[SEGMENT] = Some(32 * 1024);
    defaults
}

const fn fallbacks() -> [Option<usize>; 31] {
    let mut fallback = [None; 31];
    fallback[MANAGED] = Some(MANAGED_OLD);
    fallback[NETWORK_MIN] = Some(NETWORK_MIN_OLD);
    fallback[NETWORK_MAX] = Some(NETWORK_MAX_OLD);
    fallback[NETWORK_FRACTION] = Some(NETWORK_FRACTION_OLD);
    fallback[KUBERNETES_CPU] = Some(KUBERNETES_CPU_OLD);
    fallback
}

/// 0.1f and 0.4f widened to double, as Flink widens the Float options' defaults.
const FLOAT_0_1: f64 = 0.10000000149011612;
const FLOAT_0_4: f64 = 0.4000000059604645;
const MIN_TASK_HEAP: u64 = 128 * MIB;

pub static OPTIONS: Options = Options {
    role: "TaskManager",
    keys: &KEYS,
    size_defaults: &size_defaults(),
    fallback: &fallbacks(),
    fine_grained: &[TASK_HEAP, MANAGED],
    process: PROCESS,
    flink: FLINK,
    metaspace: METASPACE,
    overhead: RangeOptions {
        min: OVERHEAD_MIN,
        max: OVERHEAD_MAX,
        fraction: OVERHEAD_FRACTION,
        fraction_default: FLOAT_0_1,
        rule: "overhead-range-inconsistent",
    },
    example_size: "1728m",
};

const NETWORK: RangeOptions = RangeOptions {
    min: NETWORK_MIN,
    max: NETWORK_MAX,
    fraction: NETWORK_FRACTION,
    fraction_default: FLOAT_0_1,
    rule: "network-range-inconsistent",
};
const NETWORK_KEYS: [usize; 6] = [
    NETWORK_MIN,
    NETWORK_MIN_OLD,
    NETWORK_MAX,
    NETWORK_MAX_OLD,
    NETWORK_FRACTION,
    NETWORK_FRACTION_OLD,
];

pub struct Resolved {
    pub framework_heap: u64,
    pub framework_off_heap: u64,
    pub task_heap: u64,
    pub task_off_heap: u64,
    pub network: u64,
    pub managed: u64,
    pub metaspace: u64,
    pub overhead: u64,
    pub total_flink: u64,
    pub total_process: u64,
    pub cpu: f64,
    pub slots: i64,
    /// Extended resources with their amounts, in Flink's iteration order.
    pub resources: Vec<(String, i64)>,
    pub warnings: Vec<String>,
}

impl Resolved {
    pub fn jvm_heap(&self) -> u64 {
        self.framework_heap + self.task_heap
    }

    pub fn jvm_direct(&self) -> u64 {
        self.framework_off_heap + self.task_off_heap + self.network
    }
}

#[derive(Clone, Copy)]
struct Flink {
    framework_heap: u64,
    framework_off_heap: u64,
    task_heap: u64,
    task_off_heap: u64,
    network: u64,
    managed: u64,
}

#[derive(Clone, Copy)]
enum Derive {
    Fraction,
    Inverse,
}

struct Model<'r, 'c, 'a> {
    reader: &'r Reader<'c, 'a>,
    /// 1.x sizes the network from `taskmanager.network.numberOfBuffers` when no network option is set.
    legacy_network: bool,
    warnings: Vec<String>,
}

fn key(option: usize) -> &'static str {
    KEYS[option]
}

impl Model<'_, '_, '_> {
    fn configured(&self, option: usize) -> bool {
        self.reader.config.values[option].is_some()
    }

    fn uses_buffer_count(&self) -> bool {
        self.legacy_network
            && self.configured(BUFFERS)
            && !NETWORK_KEYS.iter().any(|&o| self.configured(o))
    }

    fn buffers_size(&self) -> Outcome<u64> {
        let reader = self.reader;
        let buffers = reader.int(BUFFERS, 2048, "write a whole number such as 2048")?;
        let segment = reader.memory(SEGMENT)?;
        let problem = if segment >= 1 << 31 {
            "larger than Flink's 2 GiB maximum"
        } else if segment < 4096 {
            "smaller than the minimum of 4096 bytes"
        } else if !segment.is_power_of_two() {
            "not a power of two"
        } else {
            ""
        };
        let segment_key = key(SEGMENT);
        if !problem.is_empty() {
            return refuse(
                "invalid-value",
                format!("{segment_key} is {}, {problem}.", fs(segment)),
                format!("set {segment_key} to a power of two of at least 4096 bytes, such as 32k"),
            );
        }
        if buffers < 0 {
            let buffers_key = key(BUFFERS);
            return refuse(
                "invalid-value",
                format!("{buffers_key} is {buffers}, a negative count."),
                format!(
                    "remove {buffers_key} and set {} and {} instead",
                    key(NETWORK_MIN),
                    key(NETWORK_MAX)
                ),
            );
        }
        Ok(buffers as u64 * segment)
    }

    /// The network size from a fraction before and after the silent cap, and the range's max.
    fn network_size(&self, base: u64, derive: Derive) -> Outcome<(u64, u64, u64)> {
        let rf = self.reader.range(&NETWORK, "0.1")?;
        let raw = match derive {
            Derive::Fraction => self.reader.fraction_of(base, rf.fraction)?,
            Derive::Inverse => self.reader.inverse_fraction_of(base, rf.fraction)?,
        };
        Ok((raw, clamp(raw, &rf), rf.max))
    }

    fn network_from_fraction(&mut self, base: u64, derive: Derive) -> Outcome<u64> {
        if self.uses_buffer_count() {
            return self.buffers_size();
        }
        let (raw, network, max) = self.network_size(base, derive)?;
        if network != raw {
            let (bound, bound_key) = if raw > max {
                ("capped at", key(NETWORK_MAX))
            } else {
                ("raised to", key(NETWORK_MIN))
            };
            self.warnings.push(format!(
                "network memory: the fraction gives {}, {bound} {bound_key} {}",
                fs(raw),
                fs(network)
            ));
        }
        Ok(network)
    }

    fn check_network_remainder(
        &self,
        network: u64,
        total_flink: u64,
        task_heap: u64,
    ) -> Outcome<()> {
        if self.uses_buffer_count() {
            let expected = self.buffers_size()?;
            if network != expected {
                let heap_for_match = task_heap as i128 + network as i128 - expected as i128;
                let set_heap = if heap_for_match >= 0 {
                    format!(
                        "set {} to {} so the network memory is {}, ",
                        key(TASK_HEAP),
                        format_size(heap_for_match as u128),
                        fs(expected)
                    )
                } else {
                    String::new()
                };
                return refuse(
                    "network-buffers-mismatch",
                    format!(
                        "The network memory is what the other components leave of the Total Flink Memory ({}): {}, but {} x {} is {}.",
                        fs(total_flink),
                        fs(network),
                        key(BUFFERS),
                        key(SEGMENT),
                        fs(expected)
                    ),
                    format!(
                        "{set_heap}or replace {} by {} and {}",
                        key(BUFFERS),
                        key(NETWORK_MIN),
                        key(NETWORK_MAX)
                    ),
                );
            }
            return Ok(());
        }
        let rf = self.reader.range(&NETWORK, "0.1")?;
        if network > rf.max || network < rf.min {
            let fix = if network > rf.max {
                format!(
                    "raise {} to {} (the network keeps its max), or raise {} to {}",
                    key(TASK_HEAP),
                    fs(task_heap + network - rf.max),
                    key(NETWORK_MAX),
                    fs(network)
                )
            } else if task_heap >= rf.min - network {
                format!(
                    "lower {} to {} (the network gets its min), or lower {} to {}",
                    key(TASK_HEAP),
                    fs(task_heap - (rf.min - network)),
                    key(NETWORK_MIN),
                    fs(network)
                )
            } else {
                format!(
                    "lower {} to {}, or raise the Total Flink Memory",
                    key(NETWORK_MIN),
                    fs(network)
                )
            };
            return refuse(
                "derived-network-out-of-range",
                format!(
                    "The network memory is what the other components leave of the Total Flink Memory ({}): {}, outside [{}, {}] ({}/max).",
                    fs(total_flink),
                    fs(network),
                    fs(rf.min),
                    fs(rf.max),
                    key(NETWORK_MIN)
                ),
                fix,
            );
        }
        Ok(())
    }

    fn managed(&self, total_flink: u64) -> Outcome<u64> {
        let reader = self.reader;
        if reader.has(MANAGED) {
            return reader.memory(MANAGED);
        }
        let fraction = reader.float(MANAGED_FRACTION, FLOAT_0_4, "0.4")?;
        if !(0.0..1.0).contains(&fraction) {
            let fraction_key = key(MANAGED_FRACTION);
            return refuse(
                "managed-fraction-out-of-range",
                format!(
                    "{fraction_key} is {}, outside the allowed range [0, 1).",
                    java_double_to_string(fraction)
                ),
                format!("set {fraction_key} to a fraction such as 0.4 (at least 0, below 1)"),
            );
        }
        reader.fraction_of(total_flink, fraction)
    }

    fn split_required_fine_grained(&mut self) -> Outcome<Flink> {
        let reader = self.reader;
        let task_heap = reader.memory(TASK_HEAP)?;
        let managed = reader.memory(MANAGED)?;
        let framework_heap = reader.memory(FRAMEWORK_HEAP)?;
        let framework_off_heap = reader.memory(FRAMEWORK_OFF_HEAP)?;
        let task_off_heap = reader.memory(TASK_OFF_HEAP)?;
        let parts = [
            framework_heap,
            framework_off_heap,
            task_heap,
            task_off_heap,
            managed,
        ];
        let base = reader.sum(&parts)?;
        let network = if reader.has(FLINK) {
            let total_flink = reader.memory(FLINK)?;
            if base > total_flink {
                return Err(self.fine_grained_exceed(parts, base, total_flink, FLINK, false));
            }
            let network = total_flink - base;
            self.check_network_remainder(network, total_flink, task_heap)?;
            network
        } else {
            self.network_from_fraction(base, Derive::Inverse)?
        };
        Ok(Flink {
            framework_heap,
            framework_off_heap,
            task_heap,
            task_off_heap,
            network,
            managed,
        })
    }

    fn split_total_flink(&mut self, total_flink: u64, source: usize) -> Outcome<Flink> {
        let reader = self.reader;
        let framework_heap = reader.memory(FRAMEWORK_HEAP)?;
        let framework_off_heap = reader.memory(FRAMEWORK_OFF_HEAP)?;
        let task_off_heap = reader.memory(TASK_OFF_HEAP)?;
        let (task_heap, network, managed);
        if reader.has(TASK_HEAP) {
            task_heap = reader.memory(TASK_HEAP)?;
            managed = self.managed(total_flink)?;
            let parts = [
                framework_heap,
                framework_off_heap,
                task_heap,
                task_off_heap,
                managed,
            ];
            let base = reader.sum(&parts)?;
            if base > total_flink {
                return Err(self.fine_grained_exceed(parts, base, total_flink, source, true));
            }
            network = total_flink - base;
            self.check_network_remainder(network, total_flink, task_heap)?;
        } else {
            managed = self.managed(total_flink)?;
            network = self.network_from_fraction(total_flink, Derive::Fraction)?;
            let parts = [
                framework_heap,
                framework_off_heap,
                task_off_heap,
                managed,
                network,
            ];
            let rest = reader.sum(&parts)?;
            if rest > total_flink {
                return Err(self.no_room_for_task_heap(parts, rest, total_flink, source));
            }
            task_heap = total_flink - rest;
        }
        Ok(Flink {
            framework_heap,
            framework_off_heap,
            task_heap,
            task_off_heap,
            network,
            managed,
        })
    }

    // --- refusals with the size that would work -------------------------------------------------

    fn network_floor(&self) -> u64 {
        let floor = if self.uses_buffer_count() {
            self.buffers_size()
        } else {
            self.reader.memory(NETWORK_MIN)
        };
        floor.unwrap_or(0)
    }

    fn derived_note(total_flink: u64, source: usize) -> String {
        let derived = if source == FLINK {
            String::new()
        } else {
            format!(", what {} leaves after metaspace and overhead", key(source))
        };
        format!("{}{derived}", fs(total_flink))
    }

    fn fine_grained_exceed(
        &self,
        parts: [u64; 5],
        base: u64,
        total_flink: u64,
        source: usize,
        managed_from_fraction: bool,
    ) -> Failure {
        let [framework_heap, framework_off_heap, task_heap, task_off_heap, managed] = parts;
        let floor = self.network_floor() as u128;
        let needed: Option<u128> = if managed_from_fraction {
            let fixed = framework_heap as u128
                + framework_off_heap as u128
                + task_heap as u128
                + task_off_heap as u128
                + floor;
            let managed_of = self.managed_of();
            least_total_flink(|flink| match managed_of(flink) {
                Some(managed) => (flink - managed) as u128 >= fixed,
                None => false,
            })
            .map(u128::from)
        } else {
            Some(base as u128 + floor)
        };
        let problem = format!(
            "Framework heap ({}), framework off-heap ({}), task heap ({}), task off-heap ({}) and managed memory ({}) add up to {}, more than the Total Flink Memory ({}).",
            fs(framework_heap),
            fs(framework_off_heap),
            fs(task_heap),
            fs(task_off_heap),
            fs(managed),
            fs(base),
            Self::derived_note(total_flink, source)
        );
        let lower = format!("lower {} or the managed memory", key(TASK_HEAP));
        failure(
            "fine-grained-exceeds-flink",
            problem,
            self.raise_total_fix(source, needed, &lower),
        )
    }

    fn no_room_for_task_heap(
        &self,
        parts: [u64; 5],
        rest: u64,
        total_flink: u64,
        source: usize,
    ) -> Failure {
        let [framework_heap, framework_off_heap, task_off_heap, managed, network] = parts;
        let fixed = framework_heap as u128 + framework_off_heap as u128 + task_off_heap as u128;
        let managed_of = self.managed_of();
        let network_of = self.network_of();
        let fits = |flink: u64| -> bool {
            match (managed_of(flink), network_of(flink)) {
                (Some(managed_part), Some(network_part)) => {
                    fixed + managed_part as u128 + network_part as u128 <= flink as u128
                }
                _ => false,
            }
        };
        let problem = format!(
            "Framework heap ({}), framework off-heap ({}), task off-heap ({}), managed ({}) and network memory ({}) add up to {}, more than the Total Flink Memory ({}), leaving nothing for the task heap.",
            fs(framework_heap),
            fs(framework_off_heap),
            fs(task_off_heap),
            fs(managed),
            fs(network),
            fs(rest),
            Self::derived_note(total_flink, source)
        );
        let lower = format!(
            "lower {} or {}",
            key(MANAGED_FRACTION),
            key(NETWORK_FRACTION)
        );
        let needed = least_total_flink(fits).map(u128::from);
        failure(
            "no-room-for-task-heap",
            problem,
            self.raise_total_fix(source, needed, &lower),
        )
    }

    fn raise_total_fix(&self, source: usize, needed_flink: Option<u128>, lower: &str) -> String {
        let source_key = key(source);
        let Some(needed_flink) = needed_flink else {
            return format!("{lower}; no {source_key} is large enough as configured");
        };
        let needed = if source == FLINK {
            Some(needed_flink)
        } else {
            self.least_process_for(needed_flink).map(u128::from)
        };
        match needed {
            None => lower.to_string(),
            Some(needed) => format!(
                "raise {source_key} to at least {}, or {lower}",
                format_size(needed)
            ),
        }
    }

    fn least_process_for(&self, total_flink: u128) -> Option<u64> {
        let reader = self.reader;
        let metaspace = reader.memory(METASPACE).ok()?;
        let rf = reader.range(&OPTIONS.overhead, "0.1").ok()?;
        let factor = Factor::new(rf.fraction).ok()?;
        least_total_flink(|process| {
            let Some(raw) = factor.apply(process) else {
                return false;
            };
            let overhead = clamp(raw, &rf);
            process as i128 - metaspace as i128 - overhead as i128 >= total_flink as i128
        })
    }

    /// Managed memory as a function of total Flink memory, read once (for the fix searches).
    fn managed_of(&self) -> impl Fn(u64) -> Option<u64> {
        let fixed = if self.reader.has(MANAGED) {
            self.reader.memory(MANAGED).ok()
        } else {
            None
        };
        let factor = self
            .reader
            .float(MANAGED_FRACTION, FLOAT_0_4, "0.4")
            .ok()
            .filter(|f| (0.0..1.0).contains(f))
            .and_then(|f| Factor::new(f).ok());
        move |flink| match (fixed, &factor) {
            (Some(size), _) => Some(size),
            (None, Some(factor)) => factor.apply(flink),
            (None, None) => None,
        }
    }

    /// Network memory from its fraction (capped) or the 1.x buffer count, read once.
    fn network_of(&self) -> impl Fn(u64) -> Option<u64> {
        let buffers = if self.uses_buffer_count() {
            Some(self.buffers_size().ok())
        } else {
            None
        };
        let range = self.reader.range(&NETWORK, "0.1").ok();
        let factor = range.as_ref().and_then(|rf| Factor::new(rf.fraction).ok());
        move |flink| match (buffers, &range, &factor) {
            (Some(size), _, _) => size,
            (None, Some(rf), Some(factor)) => factor.apply(flink).map(|raw| clamp(raw, rf)),
            _ => None,
        }
    }
}

fn failure(rule: &'static str, problem: String, fix: String) -> Failure {
    Failure::Refused {
        rule,
        message: format!("{problem} Fix: {fix}"),
    }
}

/// The smallest whole-MiB size for which `fits` holds (None if none does); `_least_total_flink`.
fn least_total_flink(fits: impl Fn(u64) -> bool) -> Option<u64> {
    if !fits(MAX_BYTES) {
        return None;
    }
    let (mut low, mut high) = (0u64, MAX_BYTES);
    while low < high {
        let middle = low + (high - low) / 2;
        if fits(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    let first = low.div_ceil(MIB) as u128;
    for mebibytes in first..first + 64 {
        let candidate = mebibytes * MIB as u128;
        if candidate > MAX_BYTES as u128 {
            return Some(low);
        }
        if fits(candidate as u64) {
            return Some(candidate as u64);
        }
    }
    Some(low)
}

// --- CPU ------------------------------------------------------------------------------------------

/// The CPU value and the key it came from (`_cpu_source`).
fn cpu_source(reader: &Reader<'_, '_>, fallback: f64) -> Outcome<(f64, usize)> {
    if reader.has(CPU) {
        return Ok((reader.double(CPU, -1.0, "2")?, CPU));
    }
    if fallback > 0.0 {
        let source = reader
            .lookup(KUBERNETES_CPU)
            .map_or(KUBERNETES_CPU, |(index, _)| index);
        return Ok((fallback, source));
    }
    let slots = reader.int(SLOTS, 1, "write a whole number of slots such as 2")?;
    Ok((slots as f64, SLOTS))
}

fn raw_text(reader: &Reader<'_, '_>, source: usize) -> Option<String> {
    let option = if source == CPU { CPU } else { KUBERNETES_CPU };
    match reader.lookup(option)? {
        (_, Raw::Text(text)) => Some(text.to_string()),
        _ => None,
    }
}

fn read_cpu(reader: &Reader<'_, '_>, fallback: f64) -> Outcome<f64> {
    let (value, source) = cpu_source(reader, fallback)?;
    let source_key = key(source);
    if value <= 0.0 {
        let (problem, fix) = if source == SLOTS {
            (
                format!(
                    "The TaskManager's CPU cores default to {source_key}, which is {}; Flink needs a positive number of CPU cores.",
                    value as i64
                ),
                format!(
                    "set {source_key} to 1 or more (or {} to a positive number such as 2)",
                    key(CPU)
                ),
            )
        } else {
            (
                format!(
                    "{source_key} is {}; Flink needs a positive number of CPU cores.",
                    java_double_to_string(value)
                ),
                format!("set {source_key} to a positive number such as 2"),
            )
        };
        return refuse("cpu-cores-not-positive", problem, fix);
    }
    if !value.is_finite() {
        let raw = raw_text(reader, source).unwrap_or_else(|| java_double_to_string(value));
        let mut shown = String::new();
        python_repr(&raw, &mut shown);
        return refuse(
            "invalid-value",
            format!("{source_key} has the value {shown}, which Flink cannot use as CPU cores: it is not a finite number."),
            format!("set {source_key} to a positive number such as 2"),
        );
    }
    Ok(truncate_cpu(value)?)
}

/// `CPUResource(value)` read back as a double: `Double.toString`'s decimal cut to 8 decimals.
fn truncate_cpu(value: f64) -> Result<f64, Bail> {
    let text = java_double_to_string(value);
    let (mantissa, exponent) = match text.split_once('E') {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().map_err(|_| Bail)?),
        None => (text.as_str(), 0),
    };
    let (whole, fraction) = mantissa.split_once('.').ok_or(Bail)?;
    // digits * 10^(exponent - fraction.len()) as a digit string with a decimal point position.
    let digits = format!("{whole}{fraction}");
    let point = whole.len() as i64 + exponent; // digits before the decimal point
    let kept = point + 8;
    let truncated = if kept <= 0 {
        "0".to_string()
    } else if kept as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(kept as usize - digits.len()))
    } else {
        digits[..kept as usize].to_string()
    };
    // truncated holds the value times 10^8.
    format!("{truncated}e-8").parse::<f64>().map_err(|_| Bail)
}

fn check_truncated_cpu(reader: &Reader<'_, '_>, cpu: f64, fallback: f64) -> Outcome<()> {
    if cpu > 0.0 {
        return Ok(());
    }
    let (_, source) = cpu_source(reader, fallback)?;
    let source_key = key(source);
    let raw = raw_text(reader, source).unwrap_or_else(|| "?".to_string());
    refuse(
        "cpu-cores-not-positive",
        format!("{source_key} is {raw}, which Flink cuts to 0 CPU cores at 8 decimals; native pods need more than 0."),
        format!("set {source_key} to at least 0.00000001, for example 1"),
    )
}

// --- notices ---------------------------------------------------------------------------------------

const BARE_NUMBER_KEYS: [usize; 16] = [
    PROCESS,
    FLINK,
    FRAMEWORK_HEAP,
    FRAMEWORK_OFF_HEAP,
    TASK_HEAP,
    TASK_OFF_HEAP,
    MANAGED,
    MANAGED_OLD,
    NETWORK_MIN,
    NETWORK_MIN_OLD,
    NETWORK_MAX,
    NETWORK_MAX_OLD,
    METASPACE,
    OVERHEAD_MIN,
    OVERHEAD_MAX,
    LEGACY_HEAP,
];

fn input_notices(config: &Config<'_>, version: Version) -> Vec<String> {
    let mut notices = Vec::new();
    for option in BARE_NUMBER_KEYS {
        if let Some(raw) = &config.values[option] {
            bare_number_notice(KEYS[option], raw, &mut notices);
        }
    }
    let buffers = config.values[BUFFERS].is_some();
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
        if buffers {
            notices.push(format!(
                "{} is ignored by Flink {}; use taskmanager.memory.network.min/max",
                KEYS[BUFFERS],
                version_text(version)
            ));
        }
    } else if buffers && NETWORK_KEYS.iter().any(|&o| config.values[o].is_some()) {
        notices.push(format!(
            "{} is ignored because taskmanager.memory.network.* options are set",
            KEYS[BUFFERS]
        ));
    }
    notices
}

fn lower_text(reader: &Reader<'_, '_>, option: usize) -> Option<String> {
    match &reader.config.values[option] {
        Some(Raw::Text(text)) => Some(python_strip(text).to_ascii_lowercase()),
        _ => None,
    }
}

fn uses_rocksdb(reader: &Reader<'_, '_>) -> bool {
    for option in [STATE_BACKEND_TYPE, STATE_BACKEND] {
        if let Some(name) = lower_text(reader, option) {
            if name != "rocksdb"
                && name
                    != "org.apache.flink.contrib.streaming.state.embeddedrocksdbstatebackendfactory"
            {
                return false;
            }
            return lower_text(reader, ROCKSDB_MANAGED).is_none_or(|managed| managed != "false");
        }
    }
    false
}

// --- resolution ------------------------------------------------------------------------------------

pub fn resolve(mut config: Config<'_>, version: Version, standalone: bool) -> Outcome<Resolved> {
    let mut warnings = input_notices(&config, version);
    let legacy = version.major == 1;
    if legacy {
        // Standalone reads the legacy heap as Total Flink Memory, native as Total Process Memory.
        let target = if standalone { FLINK } else { PROCESS };
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
        legacy_network: legacy,
        warnings: Vec::new(),
    };
    let (flink, total_flink, mut metaspace, mut overhead);
    if reader.has(TASK_HEAP) && reader.has(MANAGED) {
        flink = model.split_required_fine_grained()?;
        total_flink = reader.sum(&[
            flink.framework_heap,
            flink.framework_off_heap,
            flink.task_heap,
            flink.task_off_heap,
            flink.network,
            flink.managed,
        ])?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if reader.has(FLINK) {
        total_flink = reader.memory(FLINK)?;
        flink = model.split_total_flink(total_flink, FLINK)?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_flink(total_flink)?;
    } else if reader.has(PROCESS) {
        let total_process = reader.memory(PROCESS)?;
        (metaspace, overhead) = reader.metaspace_and_overhead_from_total_process(total_process)?;
        total_flink = total_process - metaspace - overhead;
        flink = model.split_total_flink(total_flink, PROCESS)?;
    } else {
        return reader.no_sizing_option();
    }
    let mut total_process = reader.sum(&[total_flink, metaspace, overhead])?;
    let mut cpu = read_cpu(&reader, -1.0)?;
    let slots = reader.int(SLOTS, 1, "write a whole number of slots such as 2")?;
    let resources = external_resources(&reader)?;
    let mut memory_notices = std::mem::take(&mut model.warnings);
    if !standalone {
        let fallback = reader.double(KUBERNETES_CPU, -1.0, "2")?;
        cpu = read_cpu(&reader, fallback)?;
        check_truncated_cpu(&reader, cpu, fallback)?;
        if slots <= 0 {
            let slots_key = key(SLOTS);
            return refuse(
                "slots-not-positive",
                format!("{slots_key} is {slots}; a native Kubernetes cluster needs at least one slot per TaskManager."),
                format!("set {slots_key} to 1 or more"),
            );
        }
        let pod = Reader {
            opts: &OPTIONS,
            config: &config,
            without_totals: true,
        };
        (metaspace, overhead) = pod.metaspace_and_overhead_from_total_flink(total_flink)?;
        total_process = pod.sum(&[total_flink, metaspace, overhead])?;
        if reader.has(PROCESS) {
            let configured = reader.memory(PROCESS)?;
            if configured >> 20 != total_process >> 20 {
                memory_notices.push(format!(
                    "native pod: {} MiB, not {} {} MiB; Flink re-derives the JVM overhead",
                    total_process >> 20,
                    key(PROCESS),
                    configured >> 20
                ));
            }
        }
    }
    warnings.append(&mut memory_notices);
    if flink.task_heap < MIN_TASK_HEAP {
        warnings.push(format!(
            "task heap {} is below the recommended minimum of 128 MiB",
            fs(flink.task_heap)
        ));
    }
    if flink.managed == 0 && uses_rocksdb(&reader) {
        warnings.push(format!(
            "managed memory is 0 but the RocksDB state backend uses it; raise {}",
            key(MANAGED_FRACTION)
        ));
    }
    if standalone && (slots == 0 || slots < -1) {
        warnings.push(format!(
            "{}={slots}: the TaskManager process refuses to start; use 1 or more",
            key(SLOTS)
        ));
    }
    Ok(Resolved {
        framework_heap: flink.framework_heap,
        framework_off_heap: flink.framework_off_heap,
        task_heap: flink.task_heap,
        task_off_heap: flink.task_off_heap,
        network: flink.network,
        managed: flink.managed,
        metaspace,
        overhead,
        total_flink,
        total_process,
        cpu,
        slots,
        resources,
        warnings,
    })
}

// --- extended resources -------------------------------------------------------------------------------
// `engine/workerresources.py` and `engine/javamap.py`, for the list forms seen in practice: `none`,
// `;`-separated names, and YAML flow lists of plain names; any other form is left to Python, and so
// is a list longer than Python reads (`MAX_LIST_CHARS`), which Python refuses.

/// `MAX_LIST_CHARS` of `engine/workerresources.py` (the texts answered here are ASCII: bytes are characters).
const MAX_LIST_CHARS: usize = 4096;

fn is_plain_name(name: &str) -> bool {
    name.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !matches!(name, "null" | "Null" | "NULL")
}

fn resource_names(text: &str) -> Result<Vec<String>, Bail> {
    if text.len() > MAX_LIST_CHARS {
        return Err(Bail);
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b" \t;_.-[],".contains(&b))
    {
        return Err(Bail);
    }
    let trimmed = text.trim_matches([' ', '\t']);
    if let Some(inner) = trimmed.strip_prefix('[') {
        // A YAML flow list of plain names (YAML allows one trailing comma).
        let inner = inner.strip_suffix(']').ok_or(Bail)?;
        let mut items: Vec<&str> = inner
            .split(',')
            .map(|i| i.trim_matches([' ', '\t']))
            .collect();
        if items.last().is_some_and(|last| last.is_empty()) {
            items.pop();
        }
        if !items.iter().all(|item| is_plain_name(item)) {
            return Err(Bail);
        }
        return Ok(items.into_iter().map(String::from).collect());
    }
    if trimmed.starts_with('-') || text.contains(['[', ']', ',']) {
        return Err(Bail);
    }
    // Flink's legacy list syntax: `;` separates, blanks around a name go, `;;` is an empty name.
    let mut tokens: Vec<Option<&str>> = Vec::new(); // None: a delimiter
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b';' => {
                tokens.push(None);
                at += 1;
            }
            b' ' | b'\t' => at += 1,
            _ => {
                let end = text[at..].find(';').map_or(text.len(), |i| at + i);
                tokens.push(Some(text[at..end].trim_matches([' ', '\t'])));
                at = end;
            }
        }
    }
    let mut names = Vec::new();
    for (index, token) in tokens.iter().enumerate() {
        match token {
            Some(name) => names.push(name.to_string()),
            None if matches!(tokens.get(index + 1), Some(None)) => names.push(String::new()),
            None => {}
        }
    }
    Ok(names)
}

/// `String.hashCode()` of ASCII text, spread as `HashMap.hash` does.
fn spread_hash(text: &str) -> u32 {
    let h = text
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    h ^ (h >> 16)
}

fn capacity_after_puts(count: usize, mut capacity: usize) -> usize {
    while count as f64 > capacity as f64 * 0.75 {
        capacity *= 2;
    }
    capacity
}

fn sort_by_bucket<T>(items: &mut [T], capacity: usize, key: impl Fn(&T) -> &str) {
    items.sort_by_key(|item| spread_hash(key(item)) as usize & (capacity - 1));
}

/// `new HashSet<>(list)` iteration order (duplicates dropped, first one kept).
fn hash_set_order(names: &[String]) -> Vec<String> {
    let wanted = ((names.len() as f32 / 0.75f32) as usize + 1).max(16);
    let mut seen: HashSet<&str> = HashSet::with_capacity(names.len());
    let mut unique: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        if seen.insert(name) {
            unique.push(name.clone());
        }
    }
    let capacity = capacity_after_puts(unique.len(), wanted.next_power_of_two());
    sort_by_bucket(&mut unique, capacity, |name| name);
    unique
}

/// An amount as Flink hands it on: through a double, then a wrapping `longValue()`.
fn resource_amount(amount: i64) -> Result<i64, Bail> {
    if amount < 1 << 53 {
        return Ok(amount);
    }
    let text = java_double_to_string(amount as f64);
    let (mantissa, exponent) = text.split_once('E').ok_or(Bail)?;
    let exponent: usize = exponent.parse().map_err(|_| Bail)?;
    let (whole, fraction) = mantissa.split_once('.').ok_or(Bail)?;
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > exponent {
        return Err(Bail);
    }
    let digits = format!("{whole}{fraction}{}", "0".repeat(exponent - fraction.len()));
    let value: u128 = digits.parse().map_err(|_| Bail)?;
    Ok(value as u64 as i64)
}

fn external_resources(reader: &Reader<'_, '_>) -> Outcome<Vec<(String, i64)>> {
    let Some((_, text)) = reader.text(EXTERNAL_RESOURCES) else {
        return Ok(Vec::new());
    };
    if text == "none" {
        return Ok(Vec::new());
    }
    let names = resource_names(text)?;
    // The amounts by key, looked up once per name; a later value for a key wins, as in a JSON
    // object decoded to a dict.
    let amounts: HashMap<&str, &str> = reader
        .config
        .extra
        .iter()
        .map(|(key, value)| (key.as_ref(), value.as_ref()))
        .collect();
    let mut kept: Vec<(String, i64)> = Vec::new();
    for name in hash_set_order(&names) {
        let amount_key = format!("external-resource.{name}.amount");
        let Some(&raw) = amounts.get(amount_key.as_str()) else {
            continue;
        };
        let amount = match parse_java_long(raw) {
            Some(amount) => amount,
            None => {
                return crate::process::invalid(
                    &amount_key,
                    raw,
                    "it is not a 64-bit whole number",
                    "write a whole number of units such as 1",
                )
            }
        };
        if amount > 0 {
            kept.push((name, resource_amount(amount)?));
        }
    }
    let capacity = capacity_after_puts(kept.len(), 16);
    sort_by_bucket(&mut kept, capacity, |(name, _)| name);
    Ok(kept)
}

/// The dynamic configs with extended resources: every pair in Flink's HashMap order.
pub fn dynamic_configs_with_resources(m: &Resolved) -> String {
    let names: Vec<&str> = m.resources.iter().map(|(name, _)| name.as_str()).collect();
    let mut entries: Vec<(String, String)> = vec![
        ("taskmanager.cpu.cores".into(), java_double_to_string(m.cpu)),
        (
            KEYS[FRAMEWORK_HEAP].into(),
            format!("{}b", m.framework_heap),
        ),
        (
            KEYS[FRAMEWORK_OFF_HEAP].into(),
            format!("{}b", m.framework_off_heap),
        ),
        (KEYS[TASK_HEAP].into(), format!("{}b", m.task_heap)),
        (KEYS[TASK_OFF_HEAP].into(), format!("{}b", m.task_off_heap)),
        (KEYS[NETWORK_MIN].into(), format!("{}b", m.network)),
        (KEYS[NETWORK_MAX].into(), format!("{}b", m.network)),
        (KEYS[MANAGED].into(), format!("{}b", m.managed)),
        (KEYS[METASPACE].into(), format!("{}b", m.metaspace)),
        (KEYS[OVERHEAD_MIN].into(), format!("{}b", m.overhead)),
        (KEYS[OVERHEAD_MAX].into(), format!("{}b", m.overhead)),
        (KEYS[SLOTS].into(), m.slots.to_string()),
        (
            KEYS[EXTERNAL_RESOURCES].into(),
            format!("\"{}\"", names.join(";")),
        ),
    ];
    for (name, amount) in &m.resources {
        entries.push((
            format!("external-resource.{name}.amount"),
            amount.to_string(),
        ));
    }
    let capacity = capacity_after_puts(entries.len(), 16);
    sort_by_bucket(&mut entries, capacity, |(key, _)| key);
    let pairs: Vec<String> = entries
        .iter()
        .map(|(key, value)| format!("-D {key}={value}"))
        .collect();
    pairs.join(" ")
}
