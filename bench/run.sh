#!/usr/bin/env bash
# bench/run.sh: stund on one core against coturn and against the least work
# a STUN Binding server can do (bench/floor/floor.c). See --help.
set -euo pipefail

usage() {
	cat <<'USAGE'
Usage: bench/run.sh [--rounds N] [--seconds S] [--long] [--requests LIST]
                    [--servers LIST] [--generator G] [--connections N]
                    [--window W]

Builds stund, stuncheck and the minimal C server bench/floor/floor.c, then
load-tests each server over UDP on loopback, one at a time:

  every round, for every request shape, for every server in turn:
    start the server alone, confined to CPU 0 (taskset -c 0), as a pinned
    service or a one-CPU pod runs it; wait until it answers;
    run the generator on CPU 1 for S seconds;
    stop the server.

Servers (--servers, comma-separated, default all four):
  stund      stund with its defaults, --rate-limit 0 (one generator
             address would otherwise be rate-limited) and --drain-timeout 0s
             (it is stopped after each run): on one CPU that is
             one UDP socket and GOMAXPROCS 1
  coturn     turnserver --stun-only with Debian's /etc/turnserver.conf (its
             STUN defaults: no RFC 5780, no RFC 3489 answers) and coturn's
             default ("optimal") number of relay threads
  floor      the minimal C server: recvmmsg, rewrite the header, append
             XOR-MAPPED-ADDRESS, sendmmsg; not a server to deploy, the cost
             floor
  stund-2on1 stund forced to more workers than CPUs: GOMAXPROCS=2 and
             --udp-sockets 2 on CPU 0 alone (its tail latency must stay
             below coturn's all the same)

Request shapes (--requests, comma-separated, default both):
  bare         a Binding request with no attributes (20 bytes): what
               Chromium sends to a STUN server when it gathers candidates
  fingerprint  a Binding request with FINGERPRINT (28 bytes)

The generator (--generator) is `stuncheck load --spin` (stuncheck, the
default) or bench/floor/gen.c (c), a second generator that shares no code
with stuncheck, to check one harness's figures with another. Both poll
their sockets from one thread that never sleeps, so the generator is never
the one that waits, and both validate every answer (transaction,
XOR-MAPPED-ADDRESS, FINGERPRINT). Each run records
responses/s, p99 round trip, lost and invalid answers, and the server's CPU
time (user + system of all its threads, /proc/PID/stat) per valid response.
Prints medians and the ratios to quote (each ratio taken within a round,
then the median over rounds), and writes everything as JSON to
bench/results/.

Run it on a quiet machine: other work on CPU 0 or 1 takes time from the
server or the generator. The "others" column shows how much of the two CPUs
other processes used during each run; over 10% prints a warning.

Options:
  --rounds N        rounds (default 3, at least 3)
  --seconds S       seconds per run (default 5)
  --long            7 rounds of 10 s
  --requests LIST   request shapes (default bare,fingerprint)
  --servers LIST    servers (default stund,coturn,floor,stund-2on1)
  --generator G     stuncheck (default) or c
  --connections N   generator sockets (default 16)
  --window W        requests in flight per socket (default 32)
  -h, --help        this help

It also measures what one system call costs on CPU 0 (bench/floor/syscall.c)
and prints it: coturn makes two system calls per response, stund and the
floor two per batch of up to 64, so the cost of a system call on the
machine moves coturn's figures far more than the others'.

Needs: go, gcc, taskset (util-linux), turnserver (coturn), jq, CPUs 0 and 1.
Installs nothing.
USAGE
}

rounds=3 seconds=5 conns=16 window=32
requests=bare,fingerprint
generator=stuncheck
servers_arg=stund,coturn,floor,stund-2on1
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds | --seconds | --connections | --window | --requests | --servers | --generator)
		[ $# -ge 2 ] || { echo "run.sh: $1 needs a value (see --help)" >&2; exit 2; } ;;
	esac
	case "$1" in
	--rounds) rounds=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--long) rounds=7; seconds=10; shift ;;
	--connections) conns=$2; shift 2 ;;
	--window) window=$2; shift 2 ;;
	--requests) requests=$2; shift 2 ;;
	--servers) servers_arg=$2; shift 2 ;;
	--generator) generator=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$rounds$seconds$conns$window" in *[!0-9]*) echo "run.sh: --rounds, --seconds, --connections and --window take whole numbers (see --help)" >&2; exit 2 ;; esac
[ "$rounds" -ge 3 ] || { echo "run.sh: at least 3 rounds (medians of fewer say little)" >&2; exit 2; }
[ "$seconds" -ge 1 ] || { echo "run.sh: --seconds: at least 1" >&2; exit 2; }
IFS=, read -r -a shapes <<<"$requests"
IFS=, read -r -a servers <<<"$servers_arg"
for r in "${shapes[@]}"; do
	case "$r" in bare | fingerprint) ;; *) echo "run.sh: --requests: unknown shape \"$r\": want bare or fingerprint" >&2; exit 2 ;; esac
done
for s in "${servers[@]}"; do
	case "$s" in stund | coturn | floor | stund-2on1) ;; *) echo "run.sh: --servers: unknown server \"$s\": want stund, coturn, floor or stund-2on1" >&2; exit 2 ;; esac
done
case "$generator" in stuncheck | c) ;; *) echo "run.sh: --generator: unknown generator \"$generator\": want stuncheck or c" >&2; exit 2 ;; esac
[ ${#shapes[@]} -gt 0 ] && [ ${#servers[@]} -gt 0 ] || { echo "run.sh: --requests and --servers must name at least one" >&2; exit 2; }

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1 (Debian package: $2)"); }
need go golang-go
need gcc gcc
need taskset util-linux
need jq jq
for s in "${servers[@]}"; do [ "$s" != coturn ] || need turnserver coturn; done
if [ ${#missing[@]} -gt 0 ]; then
	echo "run.sh: missing tools; install them and run again:" >&2
	printf '  %s\n' "${missing[@]}" >&2
	exit 1
fi
if ! taskset -c 0,1 true 2>/dev/null; then
	echo "run.sh: needs CPUs 0 and 1 (one for the server, one for the generator)" >&2
	exit 1
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "building stund, stuncheck and bench/floor/floor.c ..."
(cd "$repo" && go build -o "$work/stund" ./cmd/stund && go build -o "$work/stuncheck" ./cmd/stuncheck)
gcc -O2 -Wall -o "$work/floor" "$repo/bench/floor/floor.c"
gcc -O2 -Wall -o "$work/syscall" "$repo/bench/floor/syscall.c"
gcc -O2 -Wall -o "$work/gen" "$repo/bench/floor/gen.c"
load_help=$("$work/stuncheck" load --help 2>&1 || true)
for f in --spin --request; do
	grep -q -- "$f" <<<"$load_help" || { echo "run.sh: this stuncheck load has no $f flag: build it from a newer tree" >&2; exit 1; }
done

# coturn's configuration: Debian's packaged file as installed, or, where
# there is none, the same STUN options.
coturn_conf=/etc/turnserver.conf
if [ ! -r "$coturn_conf" ]; then
	coturn_conf="$work/turnserver.conf"
	printf '%s\n' no-rfc5780 no-stun-backward-compatibility response-origin-only-with-rfc5780 >"$coturn_conf"
fi

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
# core_ticks: busy (user+nice+system) and total ticks of CPU 0, then CPU 1.
core_ticks() { awk '$1 == "cpu0" || $1 == "cpu1" {b = $2 + $3 + $4; t = 0; for (i = 2; i <= NF; i++) t += $i; printf "%d %d ", b, t}' /proc/stat; }

# start NAME PORT: starts server NAME confined to CPU 0, sets server_pid.
start() {
	local name=$1 port=$2
	local cmd
	case "$name" in
	stund) cmd=("$work/stund" --listen "127.0.0.1:$port" --http-listen "" --log-level error --rate-limit 0 --drain-timeout 0s) ;;
	stund-2on1) cmd=(env GOMAXPROCS=2 "$work/stund" --listen "127.0.0.1:$port" --http-listen "" --log-level error --rate-limit 0 --drain-timeout 0s --udp-sockets 2) ;;
	coturn)
		rm -rf "$work/coturn" && mkdir -p "$work/coturn"
		cmd=(turnserver -c "$coturn_conf" --stun-only --listening-ip 127.0.0.1 --listening-port "$port"
			--no-cli --no-tls --no-dtls --no-stdout-log --simple-log --log-file "$work/coturn/turn.log"
			--pidfile "$work/coturn/turn.pid" --userdb "$work/coturn/turndb")
		;;
	floor) cmd=("$work/floor" 127.0.0.1 "$port") ;;
	esac
	taskset -c 0 "${cmd[@]}" >"$work/$name.log" 2>&1 &
	server_pid=$!
	for _ in $(seq 100); do
		kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: $name exited; its log:" >&2; cat "$work/$name.log" >&2; exit 1; }
		if "$work/stuncheck" load --duration 100ms --timeout 100ms --connections 1 --window 1 \
			--max-loss 100% "127.0.0.1:$port" >/dev/null 2>&1; then
			return
		fi
		sleep 0.1
	done
	echo "run.sh: $name on port $port does not answer; its log:" >&2
	cat "$work/$name.log" >&2
	exit 1
}

stop() {
	kill "$server_pid" 2>/dev/null || true
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
syscall_ns=$(taskset -c 0 "$work/syscall")
echo "one system call costs ${syscall_ns} ns on CPU 0 (coturn makes two per response; stund and the floor two per batch of up to 64)"
echo "load average before: $load_before (run on a quiet machine: other work on CPUs 0 and 1 skews the figures)"
echo "$rounds rounds x ${#shapes[@]} request shapes x ${#servers[@]} servers x ${seconds}s, generator $generator: $conns sockets x window $window, UDP on loopback"

runs="$work/runs.jsonl"
: >"$runs"
for round in $(seq "$rounds"); do
	for shape in "${shapes[@]}"; do
		for s in "${servers[@]}"; do
			port=$(pick_port)
			start "$s" "$port"
			c0=$(proc_cpu "$server_pid")
			k0=$(core_ticks)
			t0=$(date +%s%N)
			rc=0
			if [ "$generator" = c ]; then
				taskset -c 1 "$work/gen" "$port" "$conns" "$window" "$seconds" "$shape" \
					>"$work/out.json" 2>"$work/err.txt" || rc=$?
			else
				taskset -c 1 "$work/stuncheck" load --spin --request "$shape" --duration "${seconds}s" \
					--connections "$conns" --window "$window" --max-loss 100% -o json \
					"127.0.0.1:$port" >"$work/out.json" 2>"$work/err.txt" || rc=$?
			fi
			t1=$(date +%s%N)
			k1=$(core_ticks)
			c1=$(proc_cpu "$server_pid")
			stop
			if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
				echo "run.sh: load against $s failed (exit $rc):" >&2
				cat "$work/err.txt" >&2
				exit 1
			fi
			# Busy time on each CPU that neither the server (CPU 0) nor
			# the generator (CPU 1) accounts for: other processes.
			read -r b0 tt0 b1 tt1 <<<"$k0"
			read -r e0 te0 e1 te1 <<<"$k1"
			jq -c --arg server "$s" --arg request "$shape" --argjson round "$round" \
				--argjson cpu "$(awk -v a="$c0" -v b="$c1" -v k="$clk" 'BEGIN{print (b-a)/k}')" \
				--argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print (b-a)/1e9}')" \
				--argjson busy0 "$(awk -v a="$b0" -v b="$e0" -v x="$tt0" -v y="$te0" 'BEGIN{print (y > x) ? (b-a)/(y-x) : 0}')" \
				--argjson busy1 "$(awk -v a="$b1" -v b="$e1" -v x="$tt1" -v y="$te1" 'BEGIN{print (y > x) ? (b-a)/(y-x) : 0}')" '
				{server: $server, request: $request, round: $round,
				 responses_per_s, responses, sent, lost, invalid, p50_ms: .rtt_ms.p50, p99_ms: .rtt_ms.p99,
				 server_cpu_s: $cpu, wall_s: $wall,
				 server_cores_busy: ($cpu / $wall),
				 server_cpu_us_per_response: (if .responses > 0 then $cpu / .responses * 1e6 else null end),
				 generator_cores_busy: (.client_cpu_s / .duration_s),
				 others_on_cpu0: ([$busy0 - $cpu / $wall, 0] | max),
				 others_on_cpu1: ([$busy1 - .client_cpu_s / $wall, 0] | max)}' "$work/out.json" >>"$runs"
			tail -n1 "$runs" | jq -r '"  round \(.round) \(.request | . + "            " | .[:12]) \(.server | . + "           " | .[:11]) \(.responses_per_s | floor) responses/s  p99 \(.p99_ms * 1000 | floor)µs  \(.server_cpu_us_per_response // 0 | . * 100 | floor / 100)µs CPU/response  server \(.server_cores_busy * 100 | floor)%  others \(.others_on_cpu0 * 100 | floor)%/\(.others_on_cpu1 * 100 | floor)%  invalid \(.invalid) lost \(.lost)"'
		done
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$repo/bench/results"
out="$repo/bench/results/bench-$(date -u +%Y%m%dT%H%M%SZ).json"
jq -s \
	--arg cpu "$(awk -F': *' '/^model name/{print $2; exit}' /proc/cpuinfo)" \
	--arg kernel "$(uname -r)" --argjson ncpu "$(nproc --all)" \
	--arg stund "$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg coturn "$(turnserver --version 2>/dev/null | head -n1 || true)" \
	--arg coturn_conf "$coturn_conf" \
	--arg before "$load_before" --arg after "$load_after" --argjson syscall_ns "$syscall_ns" \
	--arg generator "$generator" --argjson rounds "$rounds" --argjson seconds "$seconds" --argjson conns "$conns" --argjson window "$window" '
	def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
	. as $runs
	| ([$runs[].request] | unique) as $shapes
	| ([$runs[].server] | unique) as $servers
	| def med($s; $q; f): [$runs[] | select(.server == $s and .request == $q) | f | select(. != null)] | median;
	  def rr($q; $a; $b; f): [range(1; $rounds + 1) as $i
		| ([$runs[] | select(.round == $i and .request == $q and .server == $a) | f][0]) as $x
		| ([$runs[] | select(.round == $i and .request == $q and .server == $b) | f][0]) as $y
		| select($x != null and $y != null and $y != 0) | $x / $y]
		| if length == 0 then null else {median: median, min: min, max: max, rounds: .} end;
	{machine: {cpu: $cpu, cpus: $ncpu, kernel: $kernel, syscall_ns: $syscall_ns, load_average_before: $before, load_average_after: $after},
	 versions: {stund: $stund, coturn: $coturn},
	 settings: {rounds: $rounds, seconds: $seconds, connections: $conns, window: $window, transport: "udp", target: "loopback",
	            generator: (if $generator == "c" then "bench/floor/gen.c, CPU 1" else "stuncheck load --spin, CPU 1" end), servers_confined_to: "CPU 0", coturn_config: $coturn_conf,
	            stund_flags: "--rate-limit 0 (defaults otherwise)", stund_2on1: "GOMAXPROCS=2 --udp-sockets 2 --rate-limit 0"},
	 medians: (reduce $shapes[] as $q ({}; .[$q] = (reduce $servers[] as $s ({};
		.[$s] = {responses_per_s: med($s; $q; .responses_per_s), p99_ms: med($s; $q; .p99_ms),
		         server_cpu_us_per_response: med($s; $q; .server_cpu_us_per_response),
		         server_cores_busy: med($s; $q; .server_cores_busy),
		         invalid: ([$runs[] | select(.server == $s and .request == $q) | .invalid] | add),
		         lost: ([$runs[] | select(.server == $s and .request == $q) | .lost] | add)})))),
	 ratios: (reduce $shapes[] as $q ({}; .[$q] = {
		stund_over_coturn_rate: rr($q; "stund"; "coturn"; .responses_per_s),
		stund_over_coturn_p99: rr($q; "stund"; "coturn"; .p99_ms),
		stund_over_floor_cpu_per_response: rr($q; "stund"; "floor"; .server_cpu_us_per_response),
		coturn_over_floor_cpu_per_response: rr($q; "coturn"; "floor"; .server_cpu_us_per_response),
		stund_over_floor_rate: rr($q; "stund"; "floor"; .responses_per_s),
		stund_2on1_over_coturn_p99: rr($q; "stund-2on1"; "coturn"; .p99_ms),
		stund_2on1_over_stund_rate: rr($q; "stund-2on1"; "stund"; .responses_per_s)})),
	 noisy: ([$runs[] | .others_on_cpu0, .others_on_cpu1] | max > 0.1),
	 runs: $runs}' "$runs" >"$out"

jq -r '
	def f(x; d): if x == null then "n/a" else (x * pow(10; d) | round / pow(10; d) | tostring) end;
	def r(x): if x == null then "n/a" else "\(f(x.median; 2))x  (rounds \(f(x.min; 2))-\(f(x.max; 2)))" end;
	def pad(n): tostring | . + (" " * (n - length | if . < 0 then 0 else . end));
	"",
	"Medians over \(.settings.rounds) rounds of \(.settings.seconds) s (\(.machine.cpu), \(.machine.cpus) CPUs, Linux \(.machine.kernel), \(.versions.coturn | if . == "" then "coturn not run" else "coturn " + . end)); one system call: \(.machine.syscall_ns) ns:",
	(.medians | to_entries[] | .key as $q | .value as $m |
	  "  request \($q):",
	  "    " + ("server" | pad(12)) + ("responses/s" | pad(13)) + ("p99 RTT" | pad(11)) + ("CPU/response" | pad(14)) + ("server busy" | pad(13)) + "invalid  lost",
	  (["stund", "coturn", "floor", "stund-2on1"][] as $s | select($m[$s] != null) | $m[$s] |
	   "    " + ($s | pad(12)) + (.responses_per_s // 0 | floor | pad(13)) + ((f(.p99_ms * 1000; 0) + "µs") | pad(11))
	   + ((f(.server_cpu_us_per_response; 2) + "µs") | pad(14)) + ((f(.server_cores_busy * 100; 0) + "%") | pad(13))
	   + (.invalid | pad(9)) + (.lost | tostring))),
	"",
	"Ratios (each taken within a round, median over the rounds; the figures to quote):",
	(.ratios | to_entries[] | .key as $q | .value as $r |
	  "  request \($q):",
	  "    stund / coturn responses/s          \(r($r.stund_over_coturn_rate))   (target >= 1.5)",
	  "    stund p99 / coturn p99              \(r($r.stund_over_coturn_p99))   (target <= 1)",
	  "    stund / floor CPU per response      \(r($r.stund_over_floor_cpu_per_response))   (target <= 1.25)",
	  "    coturn / floor CPU per response     \(r($r.coturn_over_floor_cpu_per_response))",
	  "    stund / floor responses/s           \(r($r.stund_over_floor_rate))",
	  "    stund-2on1 p99 / coturn p99         \(r($r.stund_2on1_over_coturn_p99))   (target <= 1)",
	  "    stund-2on1 / stund responses/s      \(r($r.stund_2on1_over_stund_rate))"),
	"",
	"CPU per response is the server process'"'"'s user+system time over its valid responses.",
	"On loopback part of the kernel'"'"'s delivery work runs as softirq time charged to no",
	"process: the figures compare servers with each other, not with a real NIC. A server",
	"under ~90% busy was not saturated. Only ratios are meant to be quoted.",
	"Load average before/after: \(.machine.load_average_before) / \(.machine.load_average_after).",
	(if .noisy then "WARNING: other processes took over 10% of a benchmark CPU: rerun on a quiet machine." else empty end),
	(if ([.medians[][] | .invalid + .lost] | add) > 0 then "WARNING: some answers were invalid or lost (see the table)." else empty end)
	' "$out"
echo
echo "results: ${out#"$repo"/}"
