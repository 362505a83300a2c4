.PHONY: build test chaos compat fuzz fuzz-quick bench run screenshots
build:
	go build -o bin/userstream ./cmd/userstream
# The whole suite: vet, unit, end-to-end and the quick form of the fault
# suite (chaos/), against a throwaway PostgreSQL when one is installed.
test:
	./scripts/test.sh
# The long forms: the fault suite at the sizes of docs/reliability.md, and
# ten minutes of fuzzing for each decoder (corpora kept in testdata/fuzz).
chaos:
	USERSTREAM_CHAOS=long USERSTREAM_CHAOS_REPORT=$(CURDIR)/chaos-report.jsonl PKGS=./chaos/ ./scripts/test.sh -v -timeout 90m
	FUZZTIME=10m ./scripts/fuzz.sh
# The fidelity tests, long form: the originals' own clients and published
# specs against ours, from the pinned compat/requirements-compat.txt, then
# the original's Spark job (compat/spark/, compat/requirements-spark.txt;
# needs USERSTREAM_TEST_POSTGRES) (docs/compatibility.md).
compat:
	./scripts/compat.sh long
fuzz:
	FUZZTIME=$${FUZZTIME:-10m} ./scripts/fuzz.sh
fuzz-quick:
	FUZZTIME=10s FUZZ_KEEP=0 ./scripts/fuzz.sh
bench:
	go test -run '^$$' -bench . -benchmem ./...
# The built binary, so that Ctrl-C exits 0 (go run reports a signalled
# child as exit status 1).
run: build
	./bin/userstream dev
# The UI's screenshots in docs/ui (docs/ui.md), taken by the browser test
# in headless Chromium.
screenshots:
	USERSTREAM_SCREENSHOTS=$(CURDIR)/docs/ui go test -count=1 -run '^TestBrowser(SearchProduce)?$$' ./internal/web/
