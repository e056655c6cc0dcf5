# fleetpipe — build, test and run. `make help` lists the targets.
SHELL := /bin/bash
#
# SANITIZE=1 builds everything with AddressSanitizer and UndefinedBehaviorSanitizer into a
# separate tree (build/san, bin/san) so that sanitized and plain objects never mix.
# BYTE_LOOPS=1 builds with -DFP_BYTE_LOOPS into build/bytes, bin/bytes: the scans that read
# eight bytes at a time on a little-endian machine run the byte loops other machines run
# (common/fp_buf.h, FP_WORDS_LITTLE_ENDIAN); `make test` runs the unit tests built so.

VERSION    := 0.1.0
PREFIX     ?= /usr/local
CC         ?= cc
PKGS       := rdkafka libcurl libcjson libpq libmicrohttpd

ifeq ($(SANITIZE),1)
BUILD      := build/san
BIN        := bin/san
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT        := -O1
else ifeq ($(BYTE_LOOPS),1)
BUILD      := build/bytes
BIN        := bin/bytes
SANFLAGS   :=
OPT        := -O2
VARIANT    := -DFP_BYTE_LOOPS
else
BUILD      := build/rel
BIN        := bin
SANFLAGS   :=
OPT        := -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 \
              -Wno-missing-field-initializers
CFLAGS     ?= $(OPT) -g
ALL_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) $(VARIANT) \
              -DFP_VERSION='"$(VERSION)"' -I. $(PKG_CFLAGS) -MMD -MP
# Headers are included with their folder ("common/fp_log.h", "sink-svc/pg.h").
LDFLAGS    += $(SANFLAGS)
LDLIBS     := $(PKG_LIBS) -lpthread -lm

COMMON_SRC   := $(wildcard common/*.c)
PARSER_SRC   := $(wildcard parser-svc/*.c)
ENRICHER_SRC := $(wildcard enricher-svc/*.c)
SINK_SRC     := $(wildcard sink-svc/*.c)
UNIT_SRC     := $(wildcard tests/unit/*.c)
MIGRATIONS   := $(sort $(wildcard sink-svc/migrations/*.sql))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBCOMMON   := $(BUILD)/libfpcommon.a
SERVICES    := $(BIN)/parser-svc $(BIN)/enricher-svc $(BIN)/sink-svc
TOOLS       := $(BIN)/devkafka $(BIN)/fp-topics $(BIN)/fp-gen $(BIN)/fleet-sim $(BIN)/fp-dlq $(BIN)/lookup-stub
UNIT_TEST   := $(BUILD)/test-unit
MIGR_C      := $(BUILD)/gen/migrations.c
# Services' own modules without main.c, linked into the unit tests as well.
PARSER_LIB   := $(filter-out parser-svc/main.c,$(PARSER_SRC))
ENRICHER_LIB := $(filter-out enricher-svc/main.c,$(ENRICHER_SRC))
SINK_LIB     := $(filter-out sink-svc/main.c,$(SINK_SRC))

# libFuzzer harnesses, built with clang: one per payload decoder (tests/fuzz/fuzz_decoder.c),
# and record_reader, the canonical-record reader against the cJSON reference
# (tests/fuzz/fuzz_record_reader.c), also built with -DFP_BYTE_LOOPS as record_reader_bytes.
FUZZ_TARGETS := teltonika_tcp teltonika_udp senml iso15143 canonical record_reader \
                record_reader_bytes
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_CFLAGS  := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -DFP_VERSION='"$(VERSION)"' -I. $(PKG_CFLAGS)
FUZZERS      := $(addprefix $(FUZZ_BUILD)/fuzz-,$(FUZZ_TARGETS))

.PHONY: all deps kafka test test-unit test-integration demo lint format format-check clean install help \
        fuzz fuzzers bench lint-deploy chaos

all: $(SERVICES) $(TOOLS)

help:
	@echo "make            build bin/parser-svc bin/enricher-svc bin/sink-svc and the local tools"
	@echo "make demo       install missing packages, build, run the whole pipeline, print a summary"
	@echo "make test       install missing packages, build, run unit and integration tests"
	@echo "make bench      performance figures beside their baselines (build/bench/results.json)"
	@echo "make chaos      fault-injection suite: kills, broker/database/lookup outages, rebalances"
	@echo "make fuzz       run each decoder's libFuzzer harness for FUZZ_SECONDS (default 60)"
	@echo "make lint       warnings-as-errors build, clang-format check, cppcheck"
	@echo "make lint-deploy  check deploy/: kustomize, yamllint, promtool, dashboard, metric names"
	@echo "make format     reformat the C sources with clang-format"
	@echo "make install    install the binaries into PREFIX (default /usr/local)"
	@echo "SANITIZE=1      build and test with AddressSanitizer and UndefinedBehaviorSanitizer"

deps:
	@deploy/local/deps.sh

# V=1 shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(MIGR_C): $(MIGRATIONS) sink-svc/embed-sql.awk
	@mkdir -p $(dir $@)
	$(Q)awk -f sink-svc/embed-sql.awk $(MIGRATIONS) > $@.tmp && mv $@.tmp $@

$(BUILD)/obj/gen/migrations.o: $(MIGR_C)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BIN)/parser-svc: $(call obj,$(PARSER_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/enricher-svc: $(call obj,$(ENRICHER_SRC)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/sink-svc: $(call obj,$(SINK_SRC)) $(BUILD)/obj/gen/migrations.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/devkafka: $(call obj,deploy/local/devkafka.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fp-topics: $(call obj,deploy/local/fp-topics.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fp-dlq: $(call obj,deploy/local/fp-dlq.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fp-gen: $(call obj,deploy/local/fp-gen.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/lookup-stub: $(call obj,deploy/local/lookup-stub.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BIN)/fleet-sim: $(call obj,deploy/local/fleet-sim.c parser-svc/teltonika_frame.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)


$(UNIT_TEST): $(call obj,$(UNIT_SRC) $(PARSER_LIB) $(ENRICHER_LIB) $(SINK_LIB)) \
              $(BUILD)/obj/gen/migrations.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The embedded stack's Apache Kafka jars (deploy/local/kafka.sh fetch: once, then cached).
kafka: deps
	@deploy/local/kafka.sh fetch

test: deps kafka
	@$(MAKE) --no-print-directory all $(UNIT_TEST) fuzzers
	@$(MAKE) --no-print-directory BYTE_LOOPS=1 build/bytes/test-unit
	@SANITIZE=$(SANITIZE) BIN=$(BIN) UNIT_TEST=$(UNIT_TEST) BYTES_UNIT_TEST=build/bytes/test-unit \
	  FUZZ_BUILD=$(FUZZ_BUILD) \
	  FUZZ_TARGETS="$(FUZZ_TARGETS)" tests/run-all.sh

$(FUZZ_BUILD)/fuzz-%: tests/fuzz/fuzz_decoder.c $(COMMON_SRC) $(PARSER_LIB) $(wildcard common/*.h parser-svc/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -DFUZZ_DECODER=decoder_$* -o $@ tests/fuzz/fuzz_decoder.c \
	  $(COMMON_SRC) $(PARSER_LIB) $(PKG_LIBS) -lpthread -lm

$(FUZZ_BUILD)/fuzz-record_reader: tests/fuzz/fuzz_record_reader.c $(COMMON_SRC) $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_record_reader.c $(COMMON_SRC) $(PKG_LIBS) \
	  -lpthread -lm

$(FUZZ_BUILD)/fuzz-record_reader_bytes: tests/fuzz/fuzz_record_reader.c $(COMMON_SRC) \
                                        $(wildcard common/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(FUZZ_CFLAGS) -DFP_BYTE_LOOPS -o $@ tests/fuzz/fuzz_record_reader.c $(COMMON_SRC) \
	  $(PKG_LIBS) -lpthread -lm

fuzzers: $(FUZZERS)

BENCH_TOOLS := $(BUILD)/bench_decode $(BUILD)/bench_enrich $(BUILD)/passthrough

$(BUILD)/bench_decode: $(call obj,tests/bench/bench_decode.c $(PARSER_LIB)) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bench_enrich: $(call obj,tests/bench/bench_enrich.c $(PARSER_LIB) $(ENRICHER_LIB)) \
                       $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/passthrough: $(call obj,tests/bench/passthrough.c) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# make chaos: the fault-injection suite on the embedded stack (tests/chaos/chaos.sh).
chaos: deps kafka
	@$(MAKE) --no-print-directory all
	@BIN=$(BIN) tests/chaos/chaos.sh

# make bench: performance figures, each beside the baseline that bounds it (tests/bench/run.sh).
bench: deps kafka
	@$(MAKE) --no-print-directory all $(BENCH_TOOLS)
	@BIN=$(BIN) BUILD=$(BUILD) tests/bench/run.sh

# make fuzz FUZZ_SECONDS=N: runs every harness for N seconds on its seeds (tests/fuzz/seeds)
# and a growing corpus kept under build/fuzz; crashes are saved there too.
fuzz: deps fuzzers
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus-$$t $(FUZZ_BUILD)/crashes-$$t; \
	  echo "== fuzz $$t for $(FUZZ_SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/crashes-$$t/ -max_len=8192 \
	    $(FUZZ_BUILD)/corpus-$$t tests/fuzz/seeds/$$t 2>&1 | \
	    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|==.*ERROR|SUMMARY|oracle failed|Done)' ; \
	  test $${PIPESTATUS[0]} -eq 0 || exit 1; \
	done

test-unit: $(UNIT_TEST)
	$(UNIT_TEST)

test-integration: all kafka
	@for t in tests/integration/test_*.sh; do BIN=$(BIN) $$t || exit 1; done

demo: deps kafka
	@$(MAKE) --no-print-directory all
	@BIN=$(BIN) deploy/local/demo.sh

C_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find common parser-svc enricher-svc sink-svc deploy tests -name '*.[ch]')

# ctunullpointer: with every header found, cppcheck follows pointers across files and flags
# each unit test that checks a pointer with FP_CHECK (which records and goes on) before using it.
lint: all $(UNIT_TEST) format-check
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --suppress=missingIncludeSystem --suppress=ctunullpointer --inline-suppr -I. \
	  '-DFP_TEST_ENTRY(x)=' \
	  -DFUZZ_DECODER=decoder_canonical $(C_FILES)

# make lint-deploy: deploy/check.sh (manifests render, YAML and Prometheus files are valid, every
# metric the rules and the dashboard use exists in a live scrape of the services).
lint-deploy: deps kafka
	@$(MAKE) --no-print-directory all
	@BIN=$(BIN) deploy/check.sh

format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run --Werror $(C_FILES)

install: $(SERVICES)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(SERVICES) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
