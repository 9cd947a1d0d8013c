//! `flinkmem._fastpath`: answers the common `resolve --batch` lines natively.
//!
//! The Python engine (`operator/flinkmem/engine/`) is the reference and the only place the rules
//! are documented. This crate mirrors it for the lines that make up almost every batch: a JSON
//! object with an id, a config of ASCII option values, and an optional version and mode. Whatever
//! it is not sure of, it leaves to Python, line by line, so answers never depend on whether the
//! extension is installed; the tests compare the two on every generated case.

mod jobmanager;
mod line;
mod numbers;
mod process;
mod taskmanager;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::process::Version;

fn version(major: u32, minor: i64) -> Version {
    Version {
        major,
        minor: u32::try_from(minor).ok(),
    }
}

/// `line::answer`, with a panic (a bug here) treated like any other line left to Python.
fn answer(line: &[u8], default_version: Version, out: &mut String) -> bool {
    let start = out.len();
    let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        line::answer(line, default_version, out).is_ok()
    }))
    .unwrap_or(false);
    if !answered {
        out.truncate(start);
    }
    answered
}

/// The answer to one line (no newline), or None when Python must answer it.
#[pyfunction]
fn resolve_line<'py>(
    py: Python<'py>,
    line: &[u8],
    major: u32,
    minor: i64,
) -> Option<Bound<'py, PyBytes>> {
    let mut out = String::with_capacity(512);
    if !answer(line, version(major, minor), &mut out) {
        return None;
    }
    Some(PyBytes::new(py, out.as_bytes()))
}

/// Every line of `chunk` answered, each followed by a newline; `fallback(line)` answers the
/// lines this module leaves to Python.
#[pyfunction]
fn resolve_chunk<'py>(
    py: Python<'py>,
    chunk: &[u8],
    major: u32,
    minor: i64,
    fallback: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let default_version = version(major, minor);
    let mut lines: Vec<&[u8]> = chunk.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let mut out: Vec<u8> = Vec::with_capacity(chunk.len() * 3);
    let mut text = String::with_capacity(1024);
    for line in lines {
        text.clear();
        if answer(line, default_version, &mut text) {
            out.extend_from_slice(text.as_bytes());
        } else {
            let python_answer = fallback.call1((PyBytes::new(py, line),))?;
            out.extend_from_slice(python_answer.cast::<PyBytes>()?.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(PyBytes::new(py, &out))
}

#[pymodule]
fn _fastpath(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_function(wrap_pyfunction!(resolve_line, module)?)?;
    module.add_function(wrap_pyfunction!(resolve_chunk, module)?)?;
    Ok(())
}
