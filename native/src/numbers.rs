//! Java's text and number rules as the Python engine (`engine/javatext.py`, `engine/sizes.py`)
//! applies them, for ASCII text only. Anything the Python engine answers through its exact
//! (slow) paths comes back as `Bail`, and the caller hands the whole line to Python.

/// The fast path cannot answer this line; the Python engine will.
#[derive(Debug)]
pub struct Bail;

pub const MIB: u64 = 1 << 20;
pub const MAX_BYTES: u64 = i64::MAX as u64;

/// `String.trim()`: everything at or below U+0020 goes from both ends.
pub fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Python's `str.strip()` on ASCII text: the characters `str.isspace` calls whitespace.
pub fn python_strip(text: &str) -> &str {
    text.trim_matches(|c: char| {
        matches!(
            c,
            ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r' | '\x1c'..='\x1f'
        )
    })
}

/// Python's `repr()` of an ASCII string, which the engine's messages quote values with.
pub fn python_repr(text: &str, out: &mut String) {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
}

pub const UNIT_SPELLINGS: &str =
    "b | bytes, k | kb | kibibytes, m | mb | mebibytes, g | gb | gibibytes, t | tb | tebibytes";

fn unit_multiplier(unit: &str) -> Option<u64> {
    Some(match unit {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        _ => return None,
    })
}

/// `MemorySize.parse`; the error is the reason the Python engine words for the same text.
pub fn parse_memory_size(text: &str) -> Result<u64, String> {
    let trimmed = java_trim(text);
    if trimmed.is_empty() {
        return Err("the value is empty or only whitespace".to_string());
    }
    let split = trimmed
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, rest) = trimmed.split_at(split);
    let unit = java_trim(rest).to_ascii_lowercase();
    if digits.is_empty() {
        return Err(
            "the value does not start with a digit (signs and decimals are not allowed)"
                .to_string(),
        );
    }
    let significant = match digits.trim_start_matches('0') {
        "" => "0",
        s => s,
    };
    let value = if significant.len() > 19 {
        None
    } else {
        significant.parse::<u64>().ok()
    };
    let Some(value) = value.filter(|&v| v <= MAX_BYTES) else {
        let shown = if digits.len() <= 40 {
            digits.to_string()
        } else {
            format!("{}…({} digits)", &digits[..20], digits.len())
        };
        return Err(format!(
            "the number {shown} does not fit in a 64-bit integer"
        ));
    };
    let Some(multiplier) = unit_multiplier(&unit) else {
        return Err(format!(
            "'{unit}' is not a memory unit; use one of: {UNIT_SPELLINGS}"
        ));
    };
    match value.checked_mul(multiplier) {
        Some(bytes) if bytes <= MAX_BYTES => Ok(bytes),
        _ => Err(format!(
            "'{trimmed}' is more bytes than fit in a 64-bit integer"
        )),
    }
}

/// `Integer.parseInt` for ASCII text: an optional sign and digits, nothing else.
pub fn parse_java_int(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = unsigned.trim_start_matches('0');
    if digits.len() > 10 {
        return None;
    }
    let magnitude: i64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let value = if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
    };
    (-(1i64 << 31)..(1i64 << 31))
        .contains(&value)
        .then_some(value)
}

/// `Long.parseLong` for ASCII text: an optional sign and digits, nothing else.
pub fn parse_java_long(text: &str) -> Option<i64> {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = unsigned.trim_start_matches('0');
    if digits.len() > 19 {
        return None;
    }
    let magnitude: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    let value = if text.starts_with('-') {
        -magnitude
    } else {
        magnitude
    };
    i64::try_from(value).ok()
}

/// `Float.parseFloat`, widened to double: `None` when the text is not a Java number.
///
/// Rust's `str::parse::<f32>` rounds decimal text straight to float32, correctly, as Java and the
/// Python engine's exact path do; hex floats are rounded here from their exact binary value.
pub fn parse_java_float(text: &str) -> Option<f64> {
    let trimmed = java_trim(text);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let magnitude = match unsigned {
        "NaN" => return Some(f64::NAN),
        "Infinity" => f32::INFINITY,
        _ => {
            let without_suffix = unsigned
                .strip_suffix(['f', 'F', 'd', 'D'])
                .unwrap_or(unsigned);
            match without_suffix.get(..2) {
                Some("0x" | "0X") => hex_float32(&without_suffix[2..])?,
                _ => decimal_float32(without_suffix)?,
            }
        }
    };
    let widened = magnitude as f64;
    Some(if negative { -widened } else { widened })
}

/// `Double.parseDouble`: `Ok(None)` when the text is not a Java number; hex floats are left to
/// Python. Rust's `str::parse::<f64>` rounds decimal text correctly, as Java does.
pub fn parse_java_double(text: &str) -> Result<Option<f64>, Bail> {
    let trimmed = java_trim(text);
    let (negative, unsigned) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let magnitude = match unsigned {
        "NaN" => return Ok(Some(f64::NAN)),
        "Infinity" => f64::INFINITY,
        _ => {
            let without_suffix = unsigned
                .strip_suffix(['f', 'F', 'd', 'D'])
                .unwrap_or(unsigned);
            if matches!(without_suffix.get(..2), Some("0x" | "0X")) {
                return Err(Bail);
            }
            if !java_decimal_grammar(without_suffix) {
                return Ok(None);
            }
            match without_suffix.parse::<f64>() {
                Ok(value) => value,
                Err(_) => return Ok(None),
            }
        }
    };
    Ok(Some(if negative { -magnitude } else { magnitude }))
}

/// Java's decimal grammar: digits with at most one point and at least one digit, then an
/// optional exponent with digits (Rust's own grammar also takes `inf` and `nan`; Java's does not).
fn decimal_float32(text: &str) -> Option<f32> {
    if !java_decimal_grammar(text) {
        return None;
    }
    text.parse().ok()
}

/// Java's decimal grammar without sign and suffix: digits with at most one point (at least one
/// digit), then an optional exponent with digits.
fn java_decimal_grammar(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |from: usize| {
        bytes.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let whole = digits(0);
    let mut at = whole;
    let mut fraction = 0;
    if bytes.get(at) == Some(&b'.') {
        fraction = digits(at + 1);
        at += 1 + fraction;
    }
    if whole + fraction == 0 {
        return false;
    }
    if matches!(bytes.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(bytes.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let exponent = digits(at);
        if exponent == 0 {
            return false;
        }
        at += exponent;
    }
    at == bytes.len()
}

/// After `0x`: hex digits with at most one point and at least one digit, then `p` and a decimal
/// exponent of two.
fn hex_float32(text: &str) -> Option<f32> {
    let (body, exponent_text) = text.split_once(['p', 'P'])?;
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let hex_digits = || whole.bytes().chain(fraction.bytes());
    if whole.len() + fraction.len() == 0 || !hex_digits().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let exponent_digits = exponent_text
        .strip_prefix(['+', '-'])
        .unwrap_or(exponent_text);
    if exponent_digits.is_empty() || !exponent_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Saturated far outside the float range, as Java saturates such exponents.
    let magnitude = exponent_digits.trim_start_matches('0');
    let mut exponent: i64 = if magnitude.len() > 9 {
        1_000_000_000
    } else {
        magnitude.parse().unwrap_or(0)
    };
    if exponent_text.starts_with('-') {
        exponent = -exponent;
    }
    exponent -= 4 * fraction.len() as i64;
    // At most 30 significant hex digits (120 bits) are kept; the rest only matter as "non-zero".
    let mut mantissa: u128 = 0;
    let mut sticky = false;
    let mut kept = 0;
    for b in hex_digits() {
        let digit = (b as char).to_digit(16)? as u128;
        if kept == 0 && digit == 0 {
            continue;
        }
        if kept < 30 {
            mantissa = mantissa << 4 | digit;
            kept += 1;
        } else {
            sticky |= digit != 0;
            exponent += 4;
        }
    }
    Some(round_binary_to_float32(mantissa, exponent, sticky))
}

/// mantissa * 2^exponent (a bit more when `sticky`) rounded to float32, ties to even.
/// `mantissa` has at most 120 bits.
fn round_binary_to_float32(mantissa: u128, exponent: i64, sticky: bool) -> f32 {
    if mantissa == 0 {
        return 0.0;
    }
    let lead = exponent + 127 - mantissa.leading_zeros() as i64;
    if lead > 127 {
        return f32::INFINITY;
    }
    let mut quantum = lead.max(-126) - 23;
    let drop = quantum - exponent;
    let mut kept = if drop <= 0 {
        mantissa << (-drop) as u32
    } else if drop >= 121 {
        return 0.0; // the whole value is below half the smallest step
    } else {
        let dropped = mantissa & ((1u128 << drop) - 1);
        let half = 1u128 << (drop - 1);
        let kept = mantissa >> drop;
        let round_up = dropped > half || (dropped == half && (sticky || kept & 1 == 1));
        kept + round_up as u128
    };
    if kept >= 1 << 24 {
        kept >>= 1;
        quantum += 1;
    }
    if quantum + 23 > 127 {
        return f32::INFINITY;
    }
    (kept as f64 * f64::from_bits(((quantum + 1023) as u64) << 52)) as f32
}

/// The shortest round-trip digits of a finite, non-zero double and its scientific exponent, as
/// Python's `repr` picks them: where two candidates are equally near, Rust's shortest form may
/// take the upper one while `repr` takes the correctly rounded (half-even) one.
fn shortest_digits(value: f64) -> (String, i32) {
    let split = |text: &str| -> (String, i32) {
        let (mantissa, exponent) = text
            .split_once('e')
            .expect("LowerExp always has an exponent");
        let digits: String = mantissa
            .bytes()
            .filter(u8::is_ascii_digit)
            .map(char::from)
            .collect();
        let digits = digits.trim_end_matches('0');
        (
            if digits.is_empty() { "0" } else { digits }.to_string(),
            exponent.parse().expect("integer exponent"),
        )
    };
    let shortest = format!("{:e}", value.abs());
    let (digits, exponent) = split(&shortest);
    let rounded = format!("{:.*e}", digits.len() - 1, value.abs());
    if rounded != shortest && rounded.parse::<f64>() == Ok(value.abs()) {
        return split(&rounded);
    }
    (digits, exponent)
}

/// `Double.toString`, as the Python engine renders it.
pub fn java_double_to_string(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_string();
    }
    if value.abs() == 5e-324 {
        return if value < 0.0 { "-4.9E-324" } else { "4.9E-324" }.to_string();
    }
    let (digits, sci_exp) = shortest_digits(value);
    let prefix = if value < 0.0 { "-" } else { "" };
    let magnitude = value.abs();
    if (1e-3..1e7).contains(&magnitude) {
        let (whole, frac) = if sci_exp >= 0 {
            let cut = (sci_exp + 1) as usize;
            let whole = if digits.len() >= cut {
                digits[..cut].to_string()
            } else {
                format!("{digits:0<cut$}")
            };
            let frac = if digits.len() > cut {
                digits[cut..].to_string()
            } else {
                "0".to_string()
            };
            (whole, frac)
        } else {
            (
                "0".to_string(),
                format!("{}{}", "0".repeat((-sci_exp - 1) as usize), digits),
            )
        };
        return format!("{prefix}{whole}.{frac}");
    }
    let rest = if digits.len() > 1 { &digits[1..] } else { "0" };
    format!("{prefix}{}.{rest}E{sci_exp}", &digits[..1])
}

/// A factor of `MemorySize.multiply(double)`: the exact decimal value of `Double.toString(factor)`,
/// taken apart once so that repeated products (the searches for a fix) need no formatting.
pub struct Factor {
    numerator: u128,
    /// The value is `numerator * 10^exponent`.
    exponent: i64,
}

impl Factor {
    pub fn new(factor: f64) -> Result<Factor, Bail> {
        if factor.is_nan() || factor < 0.0 || factor.is_infinite() {
            return Err(Bail);
        }
        if factor == 0.0 {
            return Ok(Factor {
                numerator: 0,
                exponent: 0,
            });
        }
        let (digits, sci_exp) = shortest_digits(factor);
        let numerator: u128 = digits.parse().map_err(|_| Bail)?;
        // value = digits * 10^(sci_exp - (len - 1))
        let exponent = sci_exp as i64 - (digits.len() as i64 - 1);
        Ok(Factor {
            numerator,
            exponent,
        })
    }

    /// `size` times the factor, truncated; None is a 64-bit overflow.
    pub fn apply(&self, size: u64) -> Option<u64> {
        if self.numerator == 0 || size == 0 {
            return Some(0);
        }
        let product = size as u128 * self.numerator;
        if self.exponent >= 0 {
            let scaled = 10u128
                .checked_pow(self.exponent as u32)
                .and_then(|p| product.checked_mul(p));
            return scaled.filter(|&v| v <= MAX_BYTES as u128).map(|v| v as u64);
        }
        if -self.exponent > 38 {
            return Some(0); // the product stays far below 10^38
        }
        let denominator = 10u128.pow((-self.exponent) as u32);
        if let Some(limit) = (MAX_BYTES as u128).checked_mul(denominator) {
            if product > limit {
                return None;
            }
        }
        Some((product / denominator) as u64)
    }
}

/// `MemorySize.multiply(double)`: the exact product with the factor's decimal text, truncated.
/// `Ok(None)` is a 64-bit overflow.
pub fn multiply(size: u64, factor: f64) -> Result<Option<u64>, Bail> {
    Ok(Factor::new(factor)?.apply(size))
}

/// `format_size` of the Python engine: `1.56 GiB (1677721600 bytes)`, exact bytes always shown.
pub fn format_size(size: u128) -> String {
    const NAMES: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    if size < 1024 {
        return format!("{size} bytes");
    }
    let bit_length = 128 - size.leading_zeros() as u128;
    let power = ((bit_length - 1) / 10).min(4) as usize;
    let multiplier: u128 = 1 << (10 * power);
    if size.is_multiple_of(multiplier) {
        return format!("{} {}", size / multiplier, NAMES[power]);
    }
    let hundredths = (size * 200 + multiplier) / (2 * multiplier);
    format!(
        "{}.{:02} {} ({size} bytes)",
        hundredths / 100,
        hundredths % 100,
        NAMES[power]
    )
}
