# Tools for Flink lines beyond `make test` (which runs every supported line: tests/differential).
# Use them when PyPI serves a new patch or a new line (docs/flink-lines.md, "Adding a line").

.PHONY: flink-lines lines-patches lines-options

# flink-dist and bash-java-utils of the newest and the first patch of every line from 1.12 (about
# 220-310 MB downloaded and 20 s per version; 100-190 MB kept per version).
flink-lines: install ## download flink-dist of every Flink line (newest and first patches) into the cache
	$(PY) -m tests.support.flinkdist ensure --lines --first-patches --jars-only

# The first patch of every line against its newest, on the same records (answers compared whole).
lines-patches: flink-lines ## the first patch of every line against its newest (does the patch matter?)
	$(PY) -m tests.differential.patches

# Option keys, defaults and deprecated keys that differ between lines.
lines-options: flink-lines ## option keys and defaults that differ between lines
	$(PY) -m tests.differential.options
