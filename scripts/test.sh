#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need,
# checks formatting and vet, runs every package with the race detector, and
# runs each fuzz target for a short bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME="${FUZZTIME:-10s}"

need_apt=()
# System packages the tests use (none are optional in CI).
for pkg in $(cat scripts/apt-packages.txt 2>/dev/null); do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

modules=(.)
[ -f benchmarks/main.go ] && modules+=(benchmarks)

for m in "${modules[@]}"; do
  echo "== module $m"
  (cd "$m" && go mod download)
  unformatted=$(cd "$m" && gofmt -l .)
  if [ -n "$unformatted" ]; then
    echo "gofmt would change:"; echo "$unformatted"; exit 1
  fi
  (cd "$m" && go vet ./...)
done

echo "== go test -race ./..."
go test -race -count=1 ./...

# The race detector caps live goroutines at 8128, so the tests that hold
# thousands of connections use fewer under -race; run them at full size too.
echo "== load tests at full size (without -race)"
go test -count=1 -run 'Shutdown|Storm|Stalled|Soak|Allocs' ./...

if [ -f benchmarks/main.go ]; then
  echo "== benchmarks module tests"
  (cd benchmarks && go test -race -count=1 ./...)
fi

echo "== fuzzing, $FUZZTIME per target"
for pkgdir in $(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./benchmarks/' | xargs -n1 dirname | sort -u); do
  for target in $(grep -h '^func Fuzz' "$pkgdir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
    echo "-- $pkgdir $target"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkgdir"
  done
done
echo "== all tests passed"
