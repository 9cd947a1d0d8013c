//! One `resolve --batch` line: the JSON shapes the fast path reads, and the answer it writes in
//! exactly the bytes `batch.py` writes (msgspec's compact encoding of the same dict). Any other
//! shape (unknown members, non-string values, float ids, non-ASCII option values, roles other
//! than exactly "jobmanager"/"taskmanager", extended resources, input errors) is a `Bail`, and
//! `batch.py` answers that line itself.
//!
//! Flink lines (`engine/lines.py`): the JobManager's batch answer is the same on every line from
//! 1.13 to 2.3 apart from the legacy heap keys (1.x), which this crate knows; the TaskManager's
//! follows the rules of 1.19 and later only. So JobManager lines of 1.13 to 2.3 (and `2.x`) and
//! TaskManager lines of 1.19 to 2.3 (and `2.x`) are answered here; TaskManager lines of 1.13 to
//! 1.18, unreleased lines (their answer carries a warning) and unsupported ones go to Python.

use std::borrow::Cow;
use std::fmt::Write;

use crate::numbers::{java_double_to_string, Bail};
use crate::process::{Config, Failure, Raw, Version};
use crate::{jobmanager, taskmanager};

/// A config member's (key, value) pairs, in order.
type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

enum Id<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Str(Cow<'a, str>),
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), Bail> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), Bail> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(Bail)
        }
    }

    fn hex4(&mut self) -> Result<u32, Bail> {
        let digits = self.text.get(self.at..self.at + 4).ok_or(Bail)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Bail);
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).map_err(|_| Bail)
    }

    /// A JSON string, unescaped; raw control characters and lone surrogates are left to Python.
    fn string(&mut self) -> Result<Cow<'a, str>, Bail> {
        self.expect(b'"')?;
        let bytes = self.text.as_bytes();
        let mut owned: Option<String> = None;
        loop {
            let run_start = self.at;
            while bytes
                .get(self.at)
                .is_some_and(|&b| b != b'"' && b != b'\\' && b >= 0x20)
            {
                self.at += 1;
            }
            let run = &self.text[run_start..self.at];
            match bytes.get(self.at) {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(run),
                        Some(mut text) => {
                            text.push_str(run);
                            Cow::Owned(text)
                        }
                    });
                }
                Some(b'\\') => {
                    let text = owned.get_or_insert_with(String::new);
                    text.push_str(run);
                    let escape = *bytes.get(self.at + 1).ok_or(Bail)?;
                    self.at += 2;
                    let unescaped = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\x08',
                        b'f' => '\x0c',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let unit = self.hex4()?;
                            let code = match unit {
                                0xd800..=0xdbff => {
                                    self.literal("\\u")?;
                                    let low = self.hex4()?;
                                    if !(0xdc00..=0xdfff).contains(&low) {
                                        return Err(Bail);
                                    }
                                    0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                                }
                                0xdc00..=0xdfff => return Err(Bail),
                                _ => unit,
                            };
                            char::from_u32(code).ok_or(Bail)?
                        }
                        _ => return Err(Bail),
                    };
                    text.push(unescaped);
                }
                _ => return Err(Bail), // end of line, or a raw control character
            }
        }
    }

    fn id(&mut self) -> Result<Id<'a>, Bail> {
        self.skip_whitespace();
        match self.peek().ok_or(Bail)? {
            b'"' => Ok(Id::Str(self.string()?)),
            b'n' => self.literal("null").map(|()| Id::Null),
            b't' => self.literal("true").map(|()| Id::Bool(true)),
            b'f' => self.literal("false").map(|()| Id::Bool(false)),
            b'-' | b'0'..=b'9' => {
                let start = self.at;
                if self.peek() == Some(b'-') {
                    self.at += 1;
                }
                let digits_start = self.at;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.at += 1;
                }
                let digits = &self.text[digits_start..self.at];
                let canonical = !digits.is_empty() && (digits == "0" || !digits.starts_with('0'));
                if !canonical
                    || digits.len() > 18
                    || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
                {
                    return Err(Bail);
                }
                self.text[start..self.at]
                    .parse()
                    .map(Id::Int)
                    .map_err(|_| Bail)
            }
            _ => Err(Bail),
        }
    }

    /// `null` (absent) or a string.
    fn optional_string(&mut self) -> Result<Option<Cow<'a, str>>, Bail> {
        self.skip_whitespace();
        if self.peek() == Some(b'n') {
            self.literal("null")?;
            return Ok(None);
        }
        self.string().map(Some)
    }

    /// Comma-separated members up to the closing brace, each handed to `member`.
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, Cow<'a, str>) -> Result<(), Bail>,
    ) -> Result<(), Bail> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            member(self, key)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// The config member as (key, value) pairs in order; which keys matter depends on the role.
    fn config(&mut self) -> Result<Pairs<'a>, Bail> {
        let mut pairs = Vec::with_capacity(8);
        self.members(|parser, key| {
            let value = parser.string()?;
            pairs.push((key, value));
            Ok(())
        })?;
        Ok(pairs)
    }
}

/// The role's option values; later duplicates win, as in a JSON object decoded to a dict.
/// `extra_prefix` keeps the options whose keys are not fixed (TaskManager resource amounts).
fn role_config<'a>(
    pairs: Pairs<'a>,
    keys: &[&str],
    extra_prefix: Option<&str>,
) -> Result<Config<'a>, Bail> {
    let mut config = Config::default();
    for (key, value) in pairs {
        if let Some(option) = keys.iter().position(|k| *k == key) {
            // Non-ASCII values need Python's Unicode-aware quoting, casing and stripping.
            if !value.is_ascii() {
                return Err(Bail);
            }
            config.values[option] = Some(Raw::Text(value));
        } else if extra_prefix.is_some_and(|prefix| key.starts_with(prefix)) {
            if !value.is_ascii() || !key.is_ascii() {
                return Err(Bail);
            }
            config.extra.push((key, value));
        }
    }
    Ok(config)
}

fn parse_version(text: &str) -> Result<Version, Bail> {
    // `v?(\d+)[._](\d+|x)(?:[._]\d+)?`, ASCII only; whitespace and anything unsupported go to Python.
    let body = text.strip_prefix(['v', 'V']).unwrap_or(text);
    let mut parts = body.splitn(3, ['.', '_']);
    let number = |part: Option<&str>| -> Result<u32, Bail> {
        let part = part.ok_or(Bail)?;
        if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Bail);
        }
        part.parse().map_err(|_| Bail)
    };
    let major = number(parts.next())?;
    let minor = match parts.next().ok_or(Bail)? {
        "x" | "X" => None,
        part => Some(number(Some(part))?),
    };
    if let Some(patch) = parts.next() {
        number(Some(patch))?;
    }
    Ok(Version { major, minor })
}

/// Whether this crate implements the rules of `version` for the role (see the module comment).
fn answers_line(version: Version, taskmanager: bool) -> bool {
    let first_minor = if taskmanager { 19 } else { 13 };
    match (version.major, version.minor) {
        (1, Some(minor)) => (first_minor..=20).contains(&minor),
        (2, None) => true,
        (2, Some(minor)) => minor <= 3,
        _ => false,
    }
}

fn standalone_mode(text: Option<&str>) -> Result<bool, Bail> {
    match text {
        None | Some("") | Some("native") => Ok(false),
        Some("standalone") => Ok(true),
        _ => Err(Bail),
    }
}

/// msgspec's JSON string encoding: quotes, backslashes and control characters escaped, nothing else.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    let mut clean = 0;
    for (i, b) in text.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[clean..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        clean = i + 1;
    }
    out.push_str(&text[clean..]);
    out.push('"');
}

fn push_id(out: &mut String, id: &Id<'_>) {
    match id {
        Id::Null => out.push_str("null"),
        Id::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
        Id::Int(value) => {
            let _ = write!(out, "{value}");
        }
        Id::Str(text) => push_json_string(out, text),
    }
}

fn push_warnings(out: &mut String, warnings: &[String]) {
    out.push_str("\"warnings\":[");
    for (i, warning) in warnings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_string(out, warning);
    }
    out.push_str("],\"error\":null,\"rule\":null}");
}

fn push_refused(out: &mut String, empty: &str, rule: &str, message: &str) {
    out.push_str(empty);
    push_json_string(out, message);
    out.push_str(",\"rule\":");
    push_json_string(out, rule);
    out.push('}');
}

fn push_taskmanager(out: &mut String, m: &taskmanager::Resolved) {
    let _ = write!(
        out,
        "\"totalProcessMemory\":{},\"totalFlinkMemory\":{},\"frameworkHeap\":{},\"frameworkOffHeap\":{},\
         \"taskHeap\":{},\"taskOffHeap\":{},\"networkMemory\":{},\"managedMemory\":{},\"jvmMetaspace\":{},\
         \"jvmOverhead\":{},\"jvmHeap\":{},\"jvmDirectMemory\":{},",
        m.total_process,
        m.total_flink,
        m.framework_heap,
        m.framework_off_heap,
        m.task_heap,
        m.task_off_heap,
        m.network,
        m.managed,
        m.metaspace,
        m.overhead,
        m.jvm_heap(),
        m.jvm_direct()
    );
    let _ = write!(
        out,
        "\"jvmArgs\":\"-Xmx{0} -Xms{0} -XX:MaxDirectMemorySize={1} -XX:MaxMetaspaceSize={2}\",",
        m.jvm_heap(),
        m.jvm_direct(),
        m.metaspace
    );
    if !m.resources.is_empty() {
        out.push_str("\"dynamicConfigs\":");
        push_json_string(out, &taskmanager::dynamic_configs_with_resources(m));
        out.push(',');
        push_warnings(out, &m.warnings);
        return;
    }
    // Flink's HashMap order of the thirteen dynamic configs (`_BASE_ORDER` in engine/taskmanager.py).
    let _ = write!(
        out,
        "\"dynamicConfigs\":\"-D taskmanager.memory.network.min={net}b -D taskmanager.cpu.cores={cpu} \
         -D taskmanager.memory.task.off-heap.size={to}b -D taskmanager.memory.jvm-metaspace.size={meta}b \
         -D external-resources=none -D taskmanager.memory.jvm-overhead.min={ovh}b \
         -D taskmanager.memory.framework.off-heap.size={fo}b -D taskmanager.memory.network.max={net}b \
         -D taskmanager.memory.framework.heap.size={fh}b -D taskmanager.memory.managed.size={man}b \
         -D taskmanager.memory.task.heap.size={th}b -D taskmanager.numberOfTaskSlots={slots} \
         -D taskmanager.memory.jvm-overhead.max={ovh}b\",",
        net = m.network,
        cpu = java_double_to_string(m.cpu),
        to = m.task_off_heap,
        meta = m.metaspace,
        ovh = m.overhead,
        fo = m.framework_off_heap,
        fh = m.framework_heap,
        man = m.managed,
        th = m.task_heap,
        slots = m.slots
    );
    push_warnings(out, &m.warnings);
}

const TASKMANAGER_REFUSED: &str = ",\"valid\":false,\"totalProcessMemory\":null,\"totalFlinkMemory\":null,\
    \"frameworkHeap\":null,\"frameworkOffHeap\":null,\"taskHeap\":null,\"taskOffHeap\":null,\
    \"networkMemory\":null,\"managedMemory\":null,\"jvmMetaspace\":null,\"jvmOverhead\":null,\
    \"jvmHeap\":null,\"jvmDirectMemory\":null,\"jvmArgs\":null,\"dynamicConfigs\":null,\"warnings\":[],\
    \"error\":";

const JOBMANAGER_REFUSED: &str =
    ",\"valid\":false,\"totalProcessMemory\":null,\"totalFlinkMemory\":null,\"jvmHeap\":null,\
    \"offHeap\":null,\"jvmMetaspace\":null,\"jvmOverhead\":null,\"jvmDirectMemory\":null,\
    \"jvmArgs\":null,\"dynamicConfigs\":null,\"warnings\":[],\"error\":";

fn push_resolved(out: &mut String, m: &jobmanager::Resolved) {
    let _ = write!(
        out,
        "\"totalProcessMemory\":{},\"totalFlinkMemory\":{},\"jvmHeap\":{},\"offHeap\":{},\"jvmMetaspace\":{},\"jvmOverhead\":{},",
        m.total_process, m.total_flink, m.heap, m.off_heap, m.metaspace, m.overhead
    );
    if m.direct_limit {
        let _ = write!(out, "\"jvmDirectMemory\":{},", m.off_heap);
        let _ = write!(
            out,
            "\"jvmArgs\":\"-Xmx{0} -Xms{0} -XX:MaxDirectMemorySize={1} -XX:MaxMetaspaceSize={2}\",",
            m.heap, m.off_heap, m.metaspace
        );
    } else {
        let _ = write!(
            out,
            "\"jvmDirectMemory\":null,\"jvmArgs\":\"-Xmx{0} -Xms{0} -XX:MaxMetaspaceSize={1}\",",
            m.heap, m.metaspace
        );
    }
    // Flink's order of the dynamic configs (see `_DYNAMIC_CONFIGS` in engine/jobmanager.py).
    let _ = write!(
        out,
        "\"dynamicConfigs\":\"-D jobmanager.memory.off-heap.size={}b -D jobmanager.memory.jvm-overhead.min={}b \
         -D jobmanager.memory.jvm-metaspace.size={}b -D jobmanager.memory.heap.size={}b \
         -D jobmanager.memory.jvm-overhead.max={}b\",",
        m.off_heap, m.overhead, m.metaspace, m.heap, m.overhead
    );
    push_warnings(out, &m.warnings);
}

/// The answer to one input line, or `Bail` when `batch.py` must answer it; the caller then drops
/// whatever was already written to `out`.
pub fn answer(line: &[u8], default_version: Version, out: &mut String) -> Result<(), Bail> {
    let text = std::str::from_utf8(line).map_err(|_| Bail)?;
    let mut parser = Parser { text, at: 0 };
    let mut id = Id::Null;
    let mut config = None;
    let mut version = None;
    let mut mode = None;
    let mut role = None;
    parser.members(|parser, key| {
        match key.as_ref() {
            "id" => id = parser.id()?,
            "config" => config = Some(parser.config()?),
            "flinkVersion" => version = parser.optional_string()?,
            "mode" => mode = parser.optional_string()?,
            "role" => role = parser.optional_string()?,
            _ => return Err(Bail),
        }
        Ok(())
    })?;
    parser.skip_whitespace();
    if parser.at != text.len() {
        return Err(Bail);
    }
    let pairs = config.ok_or(Bail)?;
    let version = match version {
        Some(text) => parse_version(&text)?,
        None => default_version,
    };
    let standalone = standalone_mode(mode.as_deref())?;
    let taskmanager = match role.as_deref() {
        None | Some("jobmanager") => false,
        Some("taskmanager") => true,
        Some(_) => return Err(Bail),
    };
    if !answers_line(version, taskmanager) {
        return Err(Bail);
    }
    if taskmanager {
        let config = role_config(pairs, &taskmanager::KEYS, Some("external-resource."))?;
        let outcome = taskmanager::resolve(config, version, standalone);
        out.push_str("{\"id\":");
        push_id(out, &id);
        match outcome {
            Ok(memory) => {
                out.push_str(",\"valid\":true,");
                push_taskmanager(out, &memory);
            }
            Err(Failure::Refused { rule, message }) => {
                push_refused(out, TASKMANAGER_REFUSED, rule, &message)
            }
            Err(Failure::Bail) => return Err(Bail),
        }
        return Ok(());
    }
    let config = role_config(pairs, &jobmanager::KEYS, None)?;
    out.push_str("{\"id\":");
    push_id(out, &id);
    match jobmanager::resolve(config, version, standalone) {
        Ok(memory) => {
            out.push_str(",\"valid\":true,");
            push_resolved(out, &memory);
        }
        Err(Failure::Refused { rule, message }) => {
            push_refused(out, JOBMANAGER_REFUSED, rule, &message)
        }
        Err(Failure::Bail) => return Err(Bail),
    }
    Ok(())
}
