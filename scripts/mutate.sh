#!/usr/bin/env bash
# Mutation testing: each mutation in scripts/mutations.txt breaks one security or
# integrity claim of README.md on purpose; the tests named for that claim must fail.
#
#   scripts/mutate.sh                   every mutation
#   scripts/mutate.sh ID...             those mutations
#   scripts/mutate.sh --shard K/N       mutations number K, K+N, K+2N, ... (from 0; CI's rotation)
#   MUTATE_FULL=1 scripts/mutate.sh     the whole suite per mutation instead of its tests (slow)
#
# Each runs in a scratch copy of the working tree (.build-mutate/src, with its own
# .build kept between runs, so only the mutated module and the tests rebuild). The
# named tests are first run once unmutated: they must pass. Then, per mutation, the
# file is patched, rebuilt and tested, and restored. A mutation is `killed` when its
# tests fail, `survived` when they pass, `stale` when its text no longer occurs
# exactly once in the file (the code moved: update the entry), `broken` when the
# mutated code does not compile, `no-tests` when its filter matches no test. Exit
# status 0 only when every mutation was killed.
# The table goes to stdout and to .build-mutate/results.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PATH="$PATH:/opt/swift/usr/bin"
SWIFT="${SWIFT:-$(command -v swift)}"
PYTHON=/usr/bin/python3
list="$repo/scripts/mutations.txt"
work="${MUTATE_DIR:-$repo/.build-mutate}"
src="$work/src"

shard=""
wanted=()
while [ $# -gt 0 ]; do
    case "$1" in
        --shard) shard="$2"; shift 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) wanted+=("$1"); shift ;;
    esac
done

# The mutations, one per line: id<TAB>file<TAB>find<TAB>replace<TAB>tests<TAB>claim.
records="$work/records.tsv"
mkdir -p "$work"
"$PYTHON" - "$list" "$shard" "${wanted[@]}" >"$records" <<'EOF'
import sys
path, shard, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
keys = ["id", "claim", "file", "find", "replace", "tests"]
records, current = [], {}
for number, line in enumerate(open(path, encoding="utf-8").read().split("\n") + [""], 1):
    if line.startswith("#"):
        continue
    if not line.strip():
        if current:
            missing = [k for k in keys if k not in current]
            if missing:
                sys.exit(f"{path}:{number}: mutation {current.get('id', '?')} lacks {', '.join(missing)}")
            records.append(current)
            current = {}
        continue
    key, sep, value = line.partition(": ")
    if not sep or key not in keys:
        sys.exit(f"{path}:{number}: expected one of {keys} then ': ', got {line!r}")
    if "\t" in value:
        sys.exit(f"{path}:{number}: no tabs in values")
    current[key] = value
ids = [r["id"] for r in records]
if len(set(ids)) != len(ids):
    sys.exit(f"{path}: duplicate ids")
unknown = [w for w in wanted if w not in ids]
if unknown:
    sys.exit(f"unknown mutation ids: {unknown}")
if wanted:
    records = [r for r in records if r["id"] in wanted]
if shard:
    k, n = map(int, shard.split("/"))
    records = [r for i, r in enumerate(records) if i % n == k % n]
for r in records:
    print("\t".join(r[k] for k in ["id", "file", "find", "replace", "tests", "claim"]))
EOF
[ -s "$records" ] || { echo "mutate: no mutations selected" >&2; exit 2; }

# The scratch copy: files whose bytes differ are rewritten (so their mtime moves on
# and the incremental build sees them); .git and build directories stay out.
echo "mutate: syncing $src" >&2
"$PYTHON" - "$repo" "$src" <<'EOF'
import os, sys
repo, dest = sys.argv[1], sys.argv[2]
skip = lambda name: name == ".git" or name.startswith(".build") or name == "results"
seen = set()
for root, dirs, files in os.walk(repo):
    dirs[:] = [d for d in dirs if not skip(d)]
    rel = os.path.relpath(root, repo)
    os.makedirs(os.path.join(dest, rel), exist_ok=True)
    for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
        a, b = os.path.join(root, name), os.path.join(dest, rel, name)
        seen.add(os.path.normpath(b))
        if os.path.islink(a):
            if not os.path.islink(b) or os.readlink(a) != os.readlink(b):
                if os.path.lexists(b): os.remove(b)
                os.symlink(os.readlink(a), b)
            continue
        data = open(a, "rb").read()
        if os.path.islink(b) or not os.path.isfile(b) or open(b, "rb").read() != data:
            if os.path.lexists(b): os.remove(b)
            open(b, "wb").write(data)
        os.chmod(b, os.stat(a).st_mode & 0o7777)
for root, dirs, files in os.walk(dest):
    dirs[:] = [d for d in dirs if not skip(d)]
    for name in files:
        p = os.path.normpath(os.path.join(root, name))
        if p not in seen: os.remove(p)
EOF

cd "$src"
build() {
    "$SWIFT" build --product stockade-launcher </dev/null >"$work/build.log" 2>&1 &&
        "$SWIFT" build --build-tests </dev/null >>"$work/build.log" 2>&1
}
run_tests() {
    if [ "${MUTATE_FULL:-0}" = 1 ]; then "$SWIFT" test --skip-build </dev/null >"$work/test.log" 2>&1
    else "$SWIFT" test --skip-build --filter "$1" </dev/null >"$work/test.log" 2>&1; fi
}
# Mutates a file by rewriting it (a new mtime, so the build sees it), keeping the original.
patch() {
    cp "$1" "$work/original"
    "$PYTHON" - "$@" <<'EOF'
import sys
path, find, replace = sys.argv[1:4]
text = open(path, encoding="utf-8").read()
count = text.count(find)
if count != 1:
    print(f"{find!r} occurs {count} times in {path}", file=sys.stderr); sys.exit(3)
open(path, "w", encoding="utf-8").write(text.replace(find, replace))
EOF
}
# Writing the bytes back (never the old mtime) makes the next build recompile the file.
restore() { cat "$work/original" >"$1"; }

echo "mutate: building the scratch copy" >&2
build || { echo "mutate: the unmutated copy does not build, see $work/build.log" >&2; exit 2; }
filters="$(cut -f5 "$records" | paste -sd'|')"
echo "mutate: the selected tests, unmutated" >&2
run_tests "$filters" || { echo "mutate: the tests fail without any mutation, see $work/test.log" >&2; exit 2; }
cp "$work/test.log" "$work/unmutated.test.log"

results="$work/results.md"
{ echo "| mutation | claim | tests | result |"; echo "|---|---|---|---|"; } >"$results"
failed=0
while IFS=$'\t' read -r -u 3 id file find replace tests claim; do
    if ! patch "$file" "$find" "$replace" 2>"$work/patch.log"; then
        result=stale
    else
        if ! build; then result=broken
        elif run_tests "$tests"; then result=survived
        else result=killed; fi
        # A filter that matches nothing passes: that is no test of the claim.
        grep -q "Test run with 0 tests" "$work/test.log" && result=no-tests
        restore "$file"
    fi
    [ "$result" = killed ] || failed=1
    echo "mutate: $id: $result" >&2
    # Each mutation's logs stay, to see what killed it (or why nothing did).
    [ "$result" = stale ] || cp "$work/build.log" "$work/$id.build.log"
    [ "$result" = stale ] || [ "$result" = broken ] || cp "$work/test.log" "$work/$id.test.log"
    echo "| \`$id\` | $claim | \`$tests\` | $result |" >>"$results"
done 3<"$records"
cat "$results"
exit "$failed"
