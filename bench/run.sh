#!/usr/bin/env bash
# bench/run.sh: how stund compares on one core with coturn and with the
# least work a STUN Binding server can do (bench/floor/floor.c), and how it
# scales to two cores. See --help.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: bench/run.sh [--rounds N] [--seconds S] [--long] [--connections N] [--window W] [--no-rt]

Builds stund, stuncheck and the minimal C server bench/floor/floor.c, then
load-tests, over UDP on loopback, in alternation A B C D, round after round:
  stund   --udp-sockets 1, pinned to core 0
  coturn  turnserver --stun-only, one relay thread, Debian's STUN defaults,
          pinned to core 0
  floor   the minimal C server (recvmmsg/sendmmsg, header rewrite and
          XOR-MAPPED-ADDRESS only), pinned to core 0
  stund2  --udp-sockets 2, unpinned (for the two-core figure)
with `stuncheck load` (closed loop) pinned to core 1 (unpinned for stund2).
stund runs with --rate-limit 0 (its per-source limit would stop a single
generator address after 100 answers). Each run measures responses/s, p99 RTT and the server's CPU time (user +
system from /proc/PID/stat) per valid response. Prints the medians and their
ratios, and writes everything as JSON to bench/results/.

Servers and generator run with real-time priority (SCHED_RR 10, needs root
or CAP_SYS_NICE) so that other work on the machine, such as a build, cannot
take their cores: a server that sleeps when idle (coturn, the C floor) would
otherwise lose its core to that work and look several times slower. The CPU
time per response does not depend on it.

Only ratios are meant to be quoted: absolute figures depend on the machine
and on whatever else runs on it.

Options:
  --rounds N        rounds (default 3)
  --seconds S       seconds per run (default 5)
  --long            7 rounds of 10 s (about 5 minutes)
  --connections N   generator sockets (default 16)
  --window W        requests in flight per socket (default 32)
  --no-rt           normal scheduling priority
  -h, --help        this help

Needs: go, gcc, taskset (util-linux), turnserver (coturn), jq, 2+ CPUs.
Installs nothing.
USAGE
}

rounds=3 seconds=5 conns=16 window=32 rt=yes
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--long) rounds=7; seconds=10; shift ;;
	--connections) conns=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--no-rt) rt=no; shift ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$rounds$seconds$conns$window" in *[!0-9]*) echo "run.sh: numbers only (see --help)" >&2; exit 2 ;; esac
[ "$rounds" -ge 3 ] || { echo "run.sh: at least 3 rounds" >&2; exit 2; }

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package: $2)"); }
need go golang-go
need gcc gcc
need taskset util-linux
need turnserver coturn
need jq jq
if [ ${#missing[@]} -gt 0 ]; then
	echo "run.sh: missing tools; install them and run again:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
if [ "$(nproc --all)" -lt 2 ] || ! taskset -c 0,1 true 2>/dev/null; then
	echo "run.sh: needs CPUs 0 and 1 (one for the server, one for the load generator)" >&2
	exit 1
fi

prio=()
if [ "$rt" = yes ]; then
	if chrt -r 10 true 2>/dev/null; then
		prio=(chrt -r 10)
	else
		echo "note: cannot use real-time priority (not root?): other work on the machine will skew the rates" >&2
		rt=no
	fi
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building stund, stuncheck and bench/floor/floor.c ..."
(cd "$repo" && go build -o "$work/stund" ./cmd/stund && go build -o "$work/stuncheck" ./cmd/stuncheck)
gcc -O2 -Wall -o "$work/floor" "$repo/bench/floor/floor.c"

# stund limits answers per source IP by default; the generator is one
# source, so the limit is turned off: the figure is capacity, not policy.
# (The help is read whole first: grep -q would close the pipe early.)
stund_help=$("$work/stund" --help 2>&1 || true)
stund_flags=(--http-listen "" --log-level error)
if grep -q -- --rate-limit <<<"$stund_help"; then
	stund_flags+=(--rate-limit 0)
fi
scaling=yes
if ! grep -q -- --udp-sockets <<<"$stund_help"; then
	echo "note: this stund has no --udp-sockets flag: one-core figures only" >&2
	scaling=no
fi
sockets() { [ "$scaling" = yes ] && echo "--udp-sockets $1"; true; }

port_free() {
	local hex
	hex=$(printf ':%04X ' "$1")
	! grep -qs "$hex" /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6
}
pick_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if port_free "$p"; then echo "$p"; return; fi
	done
}
clk=$(getconf CLK_TCK)
# proc_cpu PID: user+system ticks of the whole process (every thread).
proc_cpu() { sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
# core_ticks: user+nice+system ticks of CPU 0 and CPU 1, then their totals.
core_ticks() { awk '$1 == "cpu0" || $1 == "cpu1" {b = $2 + $3 + $4; t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d ", b, t}' /proc/stat; }

wait_ready() { # NAME PORT PID
	for _ in $(seq 50); do
		kill -0 "$3" 2>/dev/null || { echo "run.sh: $1 exited; its log:" >&2; cat "$work/$1.log" >&2; exit 1; }
		if "$work/stuncheck" load --duration 100ms --timeout 100ms --connections 1 --window 1 \
			--max-loss 100% "127.0.0.1:$2" >/dev/null 2>&1; then
			return
		fi
		sleep 0.1
	done
	echo "run.sh: $1 on port $2 does not answer; its log:" >&2
	cat "$work/$1.log" >&2
	exit 1
}

declare -A port pid pinned
start() { # NAME PIN(yes|no) COMMAND...
	local name=$1 pin=$2
	shift 2
	if [ "$pin" = yes ]; then
		taskset -c 0 "${prio[@]}" "$@" >"$work/$name.log" 2>&1 &
	else
		"${prio[@]}" "$@" >"$work/$name.log" 2>&1 &
	fi
	pid[$name]=$!
	pinned[$name]=$pin
	pids+=("$!")
}

port[stund]=$(pick_port)
# shellcheck disable=SC2046 # sockets prints flags to split
start stund yes "$work/stund" --listen "127.0.0.1:${port[stund]}" "${stund_flags[@]}" $(sockets 1)
port[coturn]=$(pick_port)
mkdir -p "$work/coturn"
# -n: no config file; the STUN options are those of Debian's
# /etc/turnserver.conf (no RFC 5780, no RFC 3489 compatibility).
start coturn yes turnserver -n --stun-only --listening-ip 127.0.0.1 --listening-port "${port[coturn]}" \
	--relay-threads 1 --no-cli --no-tls --no-dtls --no-rfc5780 --no-stun-backward-compatibility \
	--response-origin-only-with-rfc5780 --no-stdout-log --simple-log --log-file "$work/coturn/turn.log" \
	--pidfile "$work/coturn/turn.pid" --userdb "$work/coturn/turndb"
port[floor]=$(pick_port)
start floor yes "$work/floor" 127.0.0.1 "${port[floor]}"
servers=(stund coturn floor)
if [ "$scaling" = yes ]; then
	port[stund2]=$(pick_port)
	start stund2 no "$work/stund" --listen "127.0.0.1:${port[stund2]}" "${stund_flags[@]}" --udp-sockets 2
	servers+=(stund2)
fi
for s in "${servers[@]}"; do wait_ready "$s" "${port[$s]}" "${pid[$s]}"; done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average before: $load_before (other work on these cores makes the figures noisy)"
echo "$rounds rounds x ${#servers[@]} servers x ${seconds}s, $conns connections x window $window, UDP on loopback, real-time priority: $rt"

runs="$work/runs.jsonl"
: >"$runs"
for round in $(seq "$rounds"); do
	for s in "${servers[@]}"; do
		gen=(taskset -c 1 "${prio[@]}" "$work/stuncheck")
		[ "${pinned[$s]}" = yes ] || gen=("${prio[@]}" "$work/stuncheck")
		c0=$(proc_cpu "${pid[$s]}")
		k0=$(core_ticks)
		t0=$(date +%s%N)
		rc=0
		"${gen[@]}" load --duration "${seconds}s" --connections "$conns" --window "$window" --max-loss 100% \
			-o json "127.0.0.1:${port[$s]}" >"$work/out.json" 2>"$work/err.txt" || rc=$?
		t1=$(date +%s%N)
		k1=$(core_ticks)
		c1=$(proc_cpu "${pid[$s]}")
		# Busy time on each core that neither the server (core 0) nor the
		# generator (core 1) accounts for: other processes. Softirq time
		# is left out (it is the servers' and generator's packets).
		read -r b0 tt0 b1 tt1 <<<"$k0"
		read -r e0 te0 e1 te1 <<<"$k1"
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
			echo "run.sh: load against $s failed (exit $rc):" >&2
			cat "$work/err.txt" >&2
			exit 1
		fi
		jq -c --arg server "$s" --argjson round "$round" --arg pinned "${pinned[$s]}" \
			--argjson cpu "$(awk -v a="$c0" -v b="$c1" -v k="$clk" 'BEGIN{print (b-a)/k}')" \
			--argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print (b-a)/1e9}')" \
			--argjson core0 "$(awk -v a="$b0" -v b="$e0" -v x="$tt0" -v y="$te0" -v p="$c0" -v q="$c1" 'BEGIN{print (y > x) ? ((b-a) - (q-p)) / (y-x) : 0}')" \
			--argjson core1 "$(awk -v a="$b1" -v b="$e1" -v x="$tt1" -v y="$te1" 'BEGIN{print (y > x) ? (b-a) / (y-x) : 0}')" \
			--argjson clk "$clk" '
			{server: $server, round: $round, pinned: ($pinned == "yes"),
			 responses_per_s, responses, sent, lost, invalid, p99_ms: .rtt_ms.p99, p50_ms: .rtt_ms.p50,
			 server_cpu_s: $cpu, wall_s: $wall,
			 server_cores_busy: ($cpu / $wall),
			 server_cpu_us_per_response: (if .responses > 0 then $cpu / .responses * 1e6 else null end),
			 generator_cores_busy: (.client_cpu_s / .duration_s),
			 others_on_core0: (if $pinned == "yes" then ([$core0, 0] | max) else null end),
			 others_on_core1: (if $pinned == "yes" then ([$core1 - .client_cpu_s / $wall, 0] | max) else null end)}' "$work/out.json" >>"$runs"
		tail -n1 "$runs" | jq -r '"  round \(.round) \(.server | . + "      " | .[:7]) \(.responses_per_s | floor) responses/s  p99 \(.p99_ms * 1000 | floor)µs  \(.server_cpu_us_per_response * 100 | floor / 100)µs CPU/response  server \(.server_cores_busy * 100 | floor)% generator \(.generator_cores_busy * 100 | floor)%  others \(if .others_on_core0 == null then "-" else "\(.others_on_core0 * 100 | floor)%/\(.others_on_core1 * 100 | floor)%" end)  invalid \(.invalid) lost \(.lost)"'
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$repo/bench/results"
out="$repo/bench/results/bench-$(date -u +%Y%m%dT%H%M%SZ).json"
jq -s \
	--arg cpu "$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)" \
	--arg kernel "$(uname -r)" --argjson ncpu "$(nproc --all)" \
	--arg stund "$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg coturn "$(turnserver --version 2>/dev/null | head -n1)" \
	--arg before "$load_before" --arg after "$load_after" \
	--arg stund_flags "${stund_flags[*]}" --arg rt "$rt" --argjson rounds "$rounds" --argjson seconds "$seconds" --argjson conns "$conns" --argjson window "$window" '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	def med($s; f): [.[] | select(.server == $s) | f | select(. != null)] | median;
	. as $runs
	| def rr($a; $b; f): [range(1; $rounds + 1) as $i
		| ([$runs[] | select(.round == $i and .server == $a) | f][0]) as $x
		| ([$runs[] | select(.round == $i and .server == $b) | f][0]) as $y
		| select($x != null and $y != null and $y != 0) | $x / $y]
		| if length == 0 then null else {median: median, min: min, max: max, rounds: .} end;
	(reduce ("stund", "coturn", "floor", "stund2") as $s ({};
		if ([$runs[] | select(.server == $s)] | length) == 0 then . else
		.[$s] = {responses_per_s: ($runs | med($s; .responses_per_s)), p99_ms: ($runs | med($s; .p99_ms)),
		         server_cpu_us_per_response: ($runs | med($s; .server_cpu_us_per_response)),
		         server_cores_busy: ($runs | med($s; .server_cores_busy)),
		         generator_cores_busy: ($runs | med($s; .generator_cores_busy)),
		         others_on_core0: ($runs | med($s; .others_on_core0)),
		         others_on_core1: ($runs | med($s; .others_on_core1)),
		         invalid: ([$runs[] | select(.server == $s) | .invalid] | add),
		         lost: ([$runs[] | select(.server == $s) | .lost] | add)} end)) as $m
	| {machine: {cpu: $cpu, cpus: $ncpu, kernel: $kernel, load_average_before: $before, load_average_after: $after},
	   versions: {stund: $stund, coturn: $coturn},
	   settings: {rounds: $rounds, seconds: $seconds, connections: $conns, window: $window, transport: "udp", target: "loopback",
	              stund_flags: $stund_flags, realtime_priority: ($rt == "yes"), servers_pinned_to: "cpu 0", generator_pinned_to: "cpu 1", stund2: "--udp-sockets 2, server and generator unpinned"},
	   medians: $m,
	   # Each ratio is taken within a round (runs minutes apart see different
	   # machines), then the median over the rounds, with the range.
	   ratios: {
	     stund_over_coturn_rate: rr("stund"; "coturn"; .responses_per_s),
	     floor_over_coturn_rate: rr("floor"; "coturn"; .responses_per_s),
	     stund_over_floor_rate: rr("stund"; "floor"; .responses_per_s),
	     stund_over_coturn_p99: rr("stund"; "coturn"; .p99_ms),
	     stund_over_floor_cpu_per_response: rr("stund"; "floor"; .server_cpu_us_per_response),
	     coturn_over_floor_cpu_per_response: rr("coturn"; "floor"; .server_cpu_us_per_response),
	     two_cores_measured: rr("stund2"; "stund"; .responses_per_s),
	     two_sockets_cpu_efficiency: rr("stund"; "stund2"; .server_cpu_us_per_response)},
	   noisy: ([$runs[] | select(.others_on_core0 != null) | .others_on_core0, .others_on_core1] | max > 0.1),
	   runs: $runs}' "$runs" >"$out"

jq -r '
	def f(x; d): if x == null then "n/a" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
	def r(x): if x == null then "n/a" else "\(f(x.median; 2))x  (rounds \(f(x.min; 2))-\(f(x.max; 2)))" end;
	def pad(n): tostring | . + (" " * (n - length | if . < 0 then 0 else . end));
	.medians as $m | .ratios as $r |
	"",
	"Medians over \(.settings.rounds) rounds of \(.settings.seconds) s (\(.machine.cpu), \(.machine.cpus) CPUs, Linux \(.machine.kernel)):",
	"  " + ("server" | pad(8)) + ("responses/s" | pad(13)) + ("p99 RTT" | pad(11)) + ("CPU/response" | pad(14)) + ("server busy" | pad(13)) + ("generator busy" | pad(16)) + ("others 0/1" | pad(12)) + "invalid  lost",
	( ["stund", "coturn", "floor", "stund2"][] as $s | select($m[$s] != null) | $m[$s] |
	  "  " + ($s | pad(8)) + (.responses_per_s | floor | pad(13)) + ((f(.p99_ms * 1000; 0) + "µs") | pad(11))
	  + ((f(.server_cpu_us_per_response; 2) + "µs") | pad(14)) + ((f(.server_cores_busy * 100; 0) + "%") | pad(13))
	  + ((f(.generator_cores_busy * 100; 0) + "%") | pad(16))
	  + ((if .others_on_core0 == null then "-" else f(.others_on_core0 * 100; 0) + "%/" + f(.others_on_core1 * 100; 0) + "%" end) | pad(12))
	  + (.invalid | pad(9)) + (.lost | tostring)),
	"",
	def sat($s): $m[$s] != null and $m[$s].server_cores_busy >= 0.9;
	def mark($a; $b): if sat($a) and sat($b) then "" else "  *" end;
	"Ratios (the figures to quote; each taken within a round, median over the rounds):",
	"  stund / coturn responses/s            \(r($r.stund_over_coturn_rate))   (issue 7 goal: >= 1.5)\(mark("stund"; "coturn"))",
	"  stund p99 / coturn p99                \(r($r.stund_over_coturn_p99))   (goal: <= 1, same window)\(mark("stund"; "coturn"))",
	"  floor / coturn responses/s            \(r($r.floor_over_coturn_rate))\(mark("floor"; "coturn"))",
	"  stund / floor responses/s             \(r($r.stund_over_floor_rate))\(mark("stund"; "floor"))",
	"  stund / floor CPU per response        \(r($r.stund_over_floor_cpu_per_response))   (goal: <= 1.25)",
	"  coturn / floor CPU per response       \(r($r.coturn_over_floor_cpu_per_response))",
	(if sat("stund") and sat("coturn") and sat("floor") then empty else
	"  * a server in this ratio was under 90% busy (median): not saturated, so the rate",
	"    ratio understates it; CPU per response does not depend on saturation." end),
	(if $m.stund2 == null then empty else
	"  two cores, measured                   \(r($r.two_cores_measured))   (goal: >= 1.8)",
	"  two sockets: CPU per response, 1 / 2  \(r($r.two_sockets_cpu_efficiency))   (1 = no cost to a second worker)",
	"",
	"Caveat on two cores: this machine has two, and the generator needs one. \"measured\" is",
	"stund --udp-sockets 2 with stund and the generator both unpinned, sharing the two cores,",
	"over stund pinned to one core: a lower bound, since the generator takes a good part of",
	"the second core. The CPU line compares the CPU per response with one socket and with",
	"two: about 1 means a second worker costs nothing per request, so two dedicated cores",
	"would give about twice the rate; that is an argument, not a measurement." end),
	"",
	"CPU per response is the server process'"'"'s user+system time over the valid responses. On",
	"loopback the kernel work of delivering a datagram runs on the sender'"'"'s core, partly as",
	"softirq time that is charged to no process: the figures are comparable with each other,",
	"not with measurements on a real NIC. A server under ~90% busy was not saturated (the",
	"generator or the machine was the limit); a generator near 100% means the same.",
	"\"others\" is the share of cores 0 and 1 used by other processes during the runs.",
	"Load average before/after: \(.machine.load_average_before) / \(.machine.load_average_after).",
	(if .noisy then "WARNING: other processes took over 10% of a benchmark core: rerun on a quiet machine." else empty end)
	' "$out"
echo
echo "results: ${out#"$repo"/}"
