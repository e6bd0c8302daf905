#!/usr/bin/env bash
# An on-CPU profile of a Node process, from Linux perf's cpu-clock event (no hardware counters needed, so it works on
# this VM), with JavaScript frames named from V8's jitdump (--perf-prof, merged by `perf inject --jit`):
#   bash tools/bench/perf-profile.sh record OUT.data -- NODE [node args...]   # runs it, then prints the summary
#   bash tools/bench/perf-profile.sh summary OUT.data                         # the summary of an earlier recording
# e.g. with the migrator as the bench starts it (environment as in Runs.ts migratorEnv):
#   bash tools/bench/perf-profile.sh record /tmp/m.data -- node_modules/.bin/node --max-semi-space-size=8 \
#     apps/migrator/dist/main.js --skip-batch-job-check
# Why not `node --cpu-prof` (the bench's `profile`): V8's sampler takes wall-clock samples of the JavaScript thread only,
# so on a busy machine a long native call (writev, a hash update) also collects the time the process waited for a core,
# and the V8 worker threads (optimizing compilers, concurrent GC) are not seen at all. cpu-clock samples only a thread
# that is on a core, every thread of the process, kernel included.
# Printed: samples per thread (the JavaScript thread is the one with the most; the others are V8's and libuv's
# workers); the JavaScript thread's samples by kind of code; and by the innermost named JavaScript frame's package,
# which charges the builtins and V8 runtime calls a function makes to it. Inlined functions are charged to the
# function they were inlined into. At 999 samples per CPU-second (the recording's rate is read back).
# Why jitdump and not --perf-basic-prof's map (session 7's version): the map is a list of address ranges that V8 reuses
# once code is collected or moved, and perf names a sample after whichever entry it finds, so hot code was charged to
# functions that had once lived at its address (a queue function showed 3% of a run that never waited on that path).
# The jitdump records each code object with its load time, so every sample gets the code that was there then.
set -euo pipefail
usage() { echo "usage: $0 record OUT.data -- NODE [args...] | $0 summary OUT.data" >&2; exit 2; }
command -v perf >/dev/null || { echo "perf not found: apt-get install linux-perf" >&2; exit 1; }
[[ $# -ge 2 ]] || usage
mode=$1 data=$2
shift 2
if [[ $mode == record ]]; then
  [[ ${1:-} == -- && $# -ge 2 ]] || usage
  shift
  node=$1
  shift
  # the jitdump and the symbol files `perf inject` makes of it stay in jit-symbols.OUT.data next to OUT.data: `summary`
  # reads them (not in OUT.data.jit: perf takes any file under /tmp/perf-* for a perf map, and /tmp/perf-x.data.jit/
  # is one)
  jitdir="$(dirname "$data")/jit-symbols.$(basename "$data")"
  rm -rf "$jitdir" && mkdir -p "$jitdir"
  # -k 1: the monotonic clock, which the jitdump's timestamps use
  perf record -k 1 -e cpu-clock -F 999 -g -o "$data.raw" -- "$node" --perf-prof --perf-prof-path="$jitdir" \
    --no-logfile-per-isolate --logfile=/dev/null "$@" || echo "(the command exited $?)" >&2
  perf inject --jit -i "$data.raw" -o "$data" 2>/dev/null || { echo "perf inject --jit failed" >&2; exit 1; }
  rm -f "$data.raw" "$jitdir"/jit-*.dump
elif [[ $mode != summary ]]; then
  usage
fi
[[ -f $data ]] || { echo "no recording at $data" >&2; exit 1; }

script=$(mktemp)
trap 'rm -f "$script"' EXIT
perf script -i "$data" -F tid,ip,sym 2>/dev/null >"$script"
hz=$(perf evlist -i "$data" -F 2>/dev/null | grep -oE 'sample_freq=[0-9]+' | head -1 | cut -d= -f2)
hz=${hz:-999}

echo "== samples per thread ($hz per CPU-second)"
awk '/^ *[0-9]+ *$/ { n[$1]++ } END { for (t in n) print n[t], "tid " t }' "$script" | sort -nr | head -8
main=$(awk '/^ *[0-9]+ *$/ { n[$1]++ } END { for (t in n) print n[t], t }' "$script" | sort -nr | head -1 | cut -d' ' -f2)

# One sample: a header line with the thread id, then its frames (innermost first), then a blank line.
awk -v main="$main" -v hz="$hz" '
function kind(s) {
  if (s ~ /md5|sha1_|sha256_|sha512|EVP_|digest/) return "hashing (OpenSSL)"
  if (s ~ /compiler::|maglev|Maglev|turboshaft|Parser|Scanner|interpreter::|Bytecode|baseline::|CompileLazy/) return "V8 compilers and parser"
  if (s ~ /Scaveng|Mark|Sweep|Heap|GC|Evacuat|Remembered|SlotSet|Minor|Compactor|MemoryChunk/) return "V8 garbage collector"
  if (s ~ /JS:/) return "JavaScript (JIT code)"
  if (s ~ /Builtins_|Builtin:/) return "V8 builtins (ICs, calls, property access)"
  if (s ~ /v8::/) return "V8 runtime (C++)"
  if (s ~ /malloc|free|memmove|memcpy|memset|realloc/) return "libc memory"
  if (s ~ /node::|uv_/) return "Node/libuv (C++)"
  if (s ~ /\[unknown\]/) return "unknown"
  return "kernel and other native"
}
function pkg(s) {
  if (match(s, /@(smithy|aws-sdk|aws-crypto|effect)\/[^\/]+/)) return substr(s, RSTART, RLENGTH)
  if (match(s, /node_modules\/effect\/dist\/[^ :]+/)) return "effect: " substr(s, RSTART + 25, RLENGTH - 25)
  if (match(s, /node_modules\/[^\/]+/)) return substr(s, RSTART + 13, RLENGTH - 13)
  if (match(s, /(libs|apps|tools)\/[^ :]+/)) return substr(s, RSTART, RLENGTH)
  if (match(s, /node:[^ :]+/)) return substr(s, RSTART, RLENGTH)
  return "other JavaScript"
}
function flush() {
  if (tid == main) {
    total++
    byKind[kind(leaf)]++
    byPkg[js == "" ? "(no JavaScript frame: GC, compiler, I/O callbacks)" : pkg(js)]++
  }
  tid = ""
}
/^ *[0-9]+ *$/ { if (tid != "") flush(); tid = $1 + 0; leaf = ""; js = ""; next }
/^$/ { if (tid != "") flush(); next }
{ if (tid == "") next; if (leaf == "") leaf = $0; if (js == "" && $0 ~ /JS:/) js = $0 }
END {
  if (tid != "") flush()
  printf "\n== JavaScript thread %s: %d samples (%.1f CPU-s), by kind of code\n", main, total, total / hz
  for (k in byKind) printf "%7d %5.1f%%  %s\n", byKind[k], 100 * byKind[k] / total, k | "sort -nr"
  close("sort -nr")
  printf "\n== JavaScript thread, by the innermost JavaScript frame (builtins and runtime calls charged to their caller)\n"
  for (k in byPkg) printf "%7d %5.1f%%  %s\n", byPkg[k], 100 * byPkg[k] / total, k | "sort -nr | head -30"
  close("sort -nr | head -30")
}' "$script"
