#!/usr/bin/env bash
# Installs the test dependencies, runs the whole test suite as root against the real kernel, then
# checks the whole machine for anything skiff left behind. Exit 0 only when every test passed and
# nothing leaked. .ci/run calls exactly this.
#
#   sudo bash scripts/test.sh                 all tests
#   sudo bash scripts/test.sh tests/x_test.ts one file (any `deno test` arguments)
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$SKIFF_REPO" || exit 1
# CI reads deno test's closing "ok | N passed | N failed" line: keep it free of colour codes
[ -t 1 ] || export NO_COLOR=1

# No test may reach the internet: Docker Hub names go to a closed loopback port (see lib/registry/reference.ts)
export SKIFF_DOCKER_HUB_HOST=127.0.0.1:2

bash scripts/install.sh --test || { echo "test.sh: install.sh failed" >&2; exit 1; }

# Leaks that were already there (another run on this machine) are reported but are not this run's.
leaks_before=$(bash scripts/leakcheck.sh)
if [ -n "$leaks_before" ]; then
  echo "test.sh: already on this machine before the tests (not counted):"
  echo "$leaks_before" | sed 's/^/  /'
fi

# A hung test must not eat CI's whole budget (90 min): stop after 70 and still run the leak check.
limit=${SKIFF_TEST_TIMEOUT:-4200}
echo "test.sh: deno test -A ${*:-tests/}"
if [ $# -gt 0 ]; then
  timeout --kill-after=30 "$limit" deno test -A --no-check=remote "$@" </dev/null
else
  timeout --kill-after=30 "$limit" deno task --quiet test </dev/null
fi
test_status=$?
[ "$test_status" != 124 ] || echo "test.sh: deno test timed out after ${limit} s"

# Processes of the last test may still be on their way out: give them a moment before judging.
new_leaks=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  new_leaks=$(comm -13 <(echo "$leaks_before" | sort) <(bash scripts/leakcheck.sh | sort) | sed '/^$/d')
  [ -z "$new_leaks" ] && break
  sleep 0.5
done

status=$test_status
if [ -n "$new_leaks" ]; then
  echo "test.sh: LEAK CHECK FAILED: left on the machine after the tests:"
  echo "$new_leaks" | sed 's/^/  /'
  status=1
else
  echo "test.sh: leak check ok (no skiff mounts, cgroups, processes, links or nft tables left)"
fi
[ "$test_status" = 0 ] || echo "test.sh: deno test failed (exit $test_status)"
exit "$status"
