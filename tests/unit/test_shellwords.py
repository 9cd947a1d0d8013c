"""Shell words as shlex splits them, in linear time (`flinkmem.sources.shellwords`)."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings

from flinkmem.sources import shellwords
from flinkmem.sources.model import dynamic_properties
from tests.support.budget import cpu_deadline
from tests.support.shellref import SHELL_TEXT, shlex_or_split


@settings(max_examples=3000)
@given(SHELL_TEXT)
def test_words_are_the_ones_shlex_gives(text: str) -> None:
    assert shellwords.split(text) == shlex_or_split(text)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a\x0bb  c", ["a\x0bb", "c"]),  # only space, tab, CR and LF separate words
        ('-Dk=\'a b\' "x\\"y" z\\ w', ["-Dk=a b", 'x"y', "z w"]),
        ("unclosed 'quote", ["unclosed", "'quote"]),  # shlex raises: split at whitespace
        ("", []),
    ],
)
def test_words(text: str, words: list[str]) -> None:
    assert shellwords.split(text) == words == shlex_or_split(text)


@pytest.mark.parametrize(
    "text",
    [
        "a" * 3_000_000,  # one word: shlex takes minutes
        "'" + "a" * 3_000_000 + "'",
        "-D" + "k=" + "\\ " * 1_000_000,
    ],
)
def test_megabyte_words_in_linear_time(text: str) -> None:
    with cpu_deadline(f"splitting {len(text):,} characters"):
        assert len(shellwords.split(text)) == 1


def test_a_command_line_argument_of_megabytes_is_read_in_linear_time() -> None:
    # A pod's `bash -c` argument is read for Flink's -D options; a tenant chooses its length.
    container = {"args": ["bash", "-c", "jobmanager.sh -D jobmanager.memory.process.size=2g -Dx=" + "y" * 2_000_000]}
    with cpu_deadline("the -D options of a 2 MB argument"):
        properties = dynamic_properties(container)
    assert properties["jobmanager.memory.process.size"] == "2g"


@pytest.mark.parametrize("text", ["b'b'\\\\\"", "a'\\'\"b", 'x "a\\"b" \'c d\'e', '-Xmx1g \'-Dk=v w\' "-Dq=\\"r\\""'])
def test_quotes_and_escapes_inside_words_split_as_shlex_does(text: str) -> None:
    # Words mixing quotes and escapes: possessive groups made Debian bookworm's Python 3.11.2 split these wrongly.
    try:
        expected = shlex.split(text)
    except ValueError:
        assert shellwords.raw_words(text) is None
        assert shellwords.split(text) == text.split()  # where shlex raises
    else:
        assert shellwords.split(text) == expected
