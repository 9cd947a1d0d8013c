# Every Flink line from 1.12 to 2.3 against flinkmem (tests/lines/). Not part of `make test`:
# `make flink` still fetches only the suite's versions (FLINK_VERSIONS).

.PHONY: flink-lines lines lines-patches lines-options test-lines

LINES_CASES ?= 3000
LINES_OUT ?= $(FLINKMEM_CACHE)/lines

# flink-dist and bash-java-utils of the newest and the first patch of every line (about 220-310 MB
# downloaded and 20 s per version; 100-190 MB kept per version).
flink-lines: install ## download flink-dist of every Flink line (newest and first patches) into the cache
	$(PY) -m tests.support.flinkdist ensure --lines --first-patches --jars-only

# Agreement per line, role and mode, then every mismatch run again with each known line rule taken out.
lines: flink-lines ## agreement with every Flink line, each mismatch explained by a line rule
	$(PY) -m tests.lines.compare --cases $(LINES_CASES) --out $(LINES_OUT)
	$(PY) -m tests.lines.explain --in $(LINES_OUT)

# The first patch of every line against its newest, on the same records.
lines-patches: flink-lines ## the first patch of every line against its newest
	$(PY) -m tests.lines.compare --patches --cases $(LINES_CASES) --out $(LINES_OUT)

# Option keys, defaults and deprecated keys that differ between lines.
lines-options: flink-lines ## option keys and defaults that differ between lines
	$(PY) -m tests.lines.options

# The same as pytest tests: every mismatch explained by a known line rule, patches alike.
test-lines: flink-lines ## the per-line tests of tests/lines
	FLINKMEM_LINES=1 $(PY) -m pytest tests/lines -q
