# kvsupervisor — build, run, test, install.
#   make run      install what is missing, build release binaries, start the supervisor (default cluster)
#   make test     every test tier that can run here (unit, simulation, integration, external clients)
#   make simulation  10,000 seeded faulty Raft schedules from the release build (kvctl sim schedules)
#   make bench    detection / fault timing / control-call figures
#   make bench-check  the linearizability checker over the shared histories, beside Porcupine
#   make bench-raft   kvnode's raft mode beside etcd (installs etcd-server): failover, puts, reads, memory
#   make sizes    stripped size of each shipped binary against the 25 MB budget
#   make install  PREFIX=/usr DESTDIR=...
SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)
PREFIX ?= /usr
DESTDIR ?=
BIN := .build/release
SWIFT_RELEASE := swift build -c release --static-swift-stdlib
PYTHON := .venv/bin/python

.PHONY: all setup build debug run test unit simulation integration system bench bench-check bench-raft sizes install clean idl

all: build

setup:
	@bash scripts/setup.sh

build: setup
	$(SWIFT_RELEASE)

run: build
	@echo "kvsupervisor: control socket under ./run (or \$$XDG_RUNTIME_DIR/kvsupervisor); in another terminal: $(BIN)/kvctl status"
	$(BIN)/kvsupervisor $(if $(CONFIG),--config $(CONFIG),)

# The import check fails the build when a target imports a sibling target it does not declare.
# Then the Raft core is built again with its planted bugs (-DRAFT_PLANTED_BUGS, a build folder
# of its own; the shipped binaries never have them) and the simulation must catch each one.
unit: setup
	swift build --explicit-target-dependency-import-check error
	swift test
	swift test -Xswiftc -DRAFT_PLANTED_BUGS --scratch-path .build-planted --filter theSimulationCatchesAPlantedBug

# The Raft core in the deterministic simulator, 10,000 schedules (seeds 1-10000) from the release
# build: every invariant after every step, a linearizable client history at the end of each.
SIM_SCHEDULES ?= 10000
simulation: build
	$(BIN)/kvctl sim schedules --count $(SIM_SCHEDULES)

pyenv: setup
	@bash scripts/pyenv.sh

integration: build pyenv
	KV_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -ra integration-tests; rc=$$?; [[ $$rc -eq 5 ]] && { echo "integration: no tests collected"; exit 0; }; exit $$rc

# The system tier boots a real systemd in a container; it needs root (CI is) and says so otherwise.
system: build pyenv
	@if [[ $$(id -u) -eq 0 ]]; then KV_SYSTEM_TIER=1 bash scripts/setup.sh; fi
	KV_BIN=$(abspath $(BIN)) $(PYTHON) -m pytest -q -rA -s system-tests; rc=$$?; [[ $$rc -eq 5 ]] && { echo "system: no tests collected"; exit 0; }; exit $$rc

test: unit simulation integration system

bench: build pyenv
	KV_BIN=$(abspath $(BIN)) $(PYTHON) bench/bench.py
	KV_BIN=$(abspath $(BIN)) $(PYTHON) bench/check_bench.py
	KV_BIN=$(abspath $(BIN)) $(PYTHON) bench/raft_bench.py

# kvnode (raft) beside etcd 3.4 from Debian, same settings, same load generator (kvctl load).
bench-raft: build pyenv
	KV_BIN=$(abspath $(BIN)) $(PYTHON) bench/raft_bench.py

# The linearizability checker alone, beside Porcupine's anchor.
bench-check: build pyenv
	KV_BIN=$(abspath $(BIN)) $(PYTHON) bench/check_bench.py

sizes: build
	@bash scripts/sizes.sh $(BIN)

idl:
	python3 scripts/embed_idl.py

install: build
	scripts/install.sh $(BIN) $(PREFIX) "$(DESTDIR)"

clean:
	rm -rf .build .build-planted run
