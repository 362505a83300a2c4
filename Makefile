.PHONY: build test bench run
build:
	go build -o bin/userstream ./cmd/userstream
test:
	./scripts/test.sh
bench:
	go test -run '^$$' -bench . -benchmem ./...
run:
	go run ./cmd/userstream dev
