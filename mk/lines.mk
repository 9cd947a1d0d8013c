# Every Flink line from 1.12 to 2.3 against flinkmem (tests/lines/). Not part of `make test`:
# `make flink` still fetches only the suite's versions (FLINK_VERSIONS).

.PHONY: flink-lines lines lines-patches lines-options test-lines

LINES_CASES ?= 3000
LINES_OUT ?= $(FLINKMEM_CACHE)/lines

# flink-dist and bash-java-utils of the newest and the first patch of every line (about 220-310 MB
# downloaded and 20 s per version; 100-190 MB kept per version).
flink-lines: install
	$(PY) -m tests.support.flinkdist ensure --lines --first-patches --jars-only

# Agreement per line, role and mode, then every mismatch run again with each known line rule taken out.
lines: flink-lines
	$(PY) -m tests.lines.compare --cases $(LINES_CASES) --out $(LINES_OUT)
	$(PY) -m tests.lines.explain --in $(LINES_OUT)

# The first patch of every line against its newest, on the same records.
lines-patches: flink-lines
	$(PY) -m tests.lines.compare --patches --cases $(LINES_CASES) --out $(LINES_OUT)

# Option keys, defaults and deprecated keys that differ between lines.
lines-options: flink-lines
	$(PY) -m tests.lines.options

# The same as pytest tests: every mismatch explained by a known line rule, patches alike.
test-lines: flink-lines
	FLINKMEM_LINES=1 $(PY) -m pytest tests/lines -q
