# Benchmark targets (bench/README.md). The top-level Makefile includes this file:
#     include bench/bench.mk
# It uses VENV and BIN from there and assumes `$(VENV)/.installed` installs the project.
# Nothing here runs as part of `make test`.
#
#   make bench                 every scenario, every server (10 s warm-up + 10 s each)
#   make bench-quick           2 s per scenario (3 s warm-up)
#   make bench-profile         scenarios 1, 3, 4 and 6 again under py-spy; profile summaries in bench/results/
#   make bench-spray           scenario 8 only: a user's sign-in idle and under a 32-connection password
#                              spray, one source address and then rotating X-Forwarded-For (AuthGate only)
#   make bench-crypto-floor    ES256/RS256 signatures per second on core 1 (joserfc)
#   make bench-framework-floor a do-nothing WSGI app, bare and in Flask, under granian on core 1
#   make bench-wsgi            AuthGate under gunicorn sync, gunicorn gthread and granian (granian
#                              must be installed in .venv); results kept as authgate@<server>
#   BENCH_ARGS="--only-authgate --scenario 6 --server granian" make bench-quick

BENCH_ARGS ?=
BENCH_DATE = $(shell date +%F)

.PHONY: bench bench-quick bench-profile bench-spray bench-crypto-floor bench-framework-floor bench-deps bench-readme \
	bench-wsgi

bench-deps:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk; \
	  else echo "wrk is missing: sudo apt-get install -y wrk" >&2; exit 1; fi; }
	bench/peers/oidc-provider/run.sh --install-only
	bench/peers/dot/run.sh --install-only

bench: $(VENV)/.installed bench-deps bench-crypto-floor
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: $(VENV)/.installed bench-deps bench-crypto-floor
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

bench-profile: $(VENV)/.installed bench-deps
	$(BIN)/python -m bench.run --profile --scenario 1 --scenario 3 --scenario 4 --scenario 6 $(BENCH_ARGS)

# Needs neither wrk nor the peers: the spray and the user are bench/spray.py's own clients.
bench-spray: $(VENV)/.installed
	$(BIN)/python -m bench.run --only-authgate --scenario 8 $(BENCH_ARGS)

BENCH_WSGI_SERVERS ?= gunicorn-sync gunicorn-gthread granian
bench-wsgi: $(VENV)/.installed bench-deps
	for server in $(BENCH_WSGI_SERVERS); do \
	  $(BIN)/python -m bench.run --only-authgate --server $$server $(BENCH_ARGS) || exit $$?; done

bench-framework-floor: $(VENV)/.installed bench-deps
	$(BIN)/python -m bench.framework_floor --json bench/results/$(BENCH_DATE)-framework-floor.json

bench-crypto-floor: $(VENV)/.installed
	taskset -c 1 $(BIN)/python -m bench.crypto_floor --json bench/results/$(BENCH_DATE)-crypto-floor.json

bench-readme:
	$(BIN)/python -m bench.run --readme-only
