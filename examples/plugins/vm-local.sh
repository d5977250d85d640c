#!/usr/bin/env bash
# vm-local.sh — a dflow VM-backend plugin (protocol 1, docs/plugins.md) that makes
# nodes on this machine, like the built-in "local" backend: each node is a
# detached `$DFLOW_EXE agent` process with its own directory and loopback address.
#
#   node N  ->  address 127.0.0.(100+N)   (N = 0..154)
#               directory $DFLOW_STATE_DIR/plugin-nodes/N/
#                 node.json        the Node answered to vm.create
#                 authorized_keys  NodeSpec.keys
#                 agent.log        the agent's output
#                 agent.pid/.lock  written and held by the agent while it runs
#
# Needs bash and coreutils; setsid and flock (util-linux) are used when present
# (without flock, liveness falls back to a pid check). No jq, no python.
#
# Usage: dflow set 3 --vm-backend ./examples/plugins/vm-local.sh
#        echo '{}' | vm-local.sh vm.list     (by hand; see docs/plugins.md §6)
set -u

NAME=vm-local.sh
BASE=100 # node N gets 127.0.0.(BASE+N)
PORT=${DFLOW_AGENT_PORT:-7077}
STATE=${DFLOW_STATE_DIR:-${DFLOW_PROJECT:-.}/.dflow}
NODES=$STATE/plugin-nodes
START_TIMEOUT=${VM_LOCAL_START_TIMEOUT:-15} # seconds to wait for an agent

# --- answers ---------------------------------------------------------------

# json_str S: S as a JSON string literal.
json_str() {
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\n'/\\n}
	s=${s//$'\r'/\\r}
	s=${s//$'\t'/\\t}
	printf '"%s"' "$s"
}

result() { printf '{"result":%s}\n' "$1"; exit 0; }

# MADE is the node directory this vm.create made: a create that fails
# removes it (and the agent it started) before it answers.
MADE=

# fail MESSAGE [RETRYABLE [CODE]]
fail() {
	if [ -n "$MADE" ]; then
		local pid
		pid=$(cat "$MADE/agent.pid" 2>/dev/null)
		case $pid in '' | *[!0-9]* | 0 | 1) ;; *) kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null ;; esac
		rm -rf "$MADE"
		MADE=
	fi
	printf '{"error":{"message":%s,"retryable":%s,"code":%s}}\n' \
		"$(json_str "$1")" "${2:-false}" "$(json_str "${3:-}")"
	exit 0
}

# --- requests --------------------------------------------------------------

# str_field NAME: the string field NAME of the request, unescaped ("" if absent).
str_field() {
	local re="\"$1\"[[:space:]]*:[[:space:]]*\"(([^\"\\\\]|\\\\.)*)\""
	[[ $REQ =~ $re ]] || { printf ''; return; }
	local s=${BASH_REMATCH[1]}
	s=${s//\\\"/\"}
	s=${s//\\\//\/}
	# What is left (\\ \n \t \r \uXXXX) is what printf %b understands.
	printf '%b' "$s"
}

# int_field NAME: the integer field NAME of the request ("" if absent).
int_field() {
	local re="\"$1\"[[:space:]]*:[[:space:]]*(-?[0-9]+)"
	[[ $REQ =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
}

# node_field FILE NAME: a string field of a node.json we wrote ourselves.
node_field() {
	local REQ
	REQ=$(cat "$1" 2>/dev/null) || return 0
	str_field "$2"
}

# --- nodes -----------------------------------------------------------------

# alive DIR: does an agent run in the node directory DIR? The agent holds an
# flock on agent.lock for as long as it lives (even a zombie has let go).
alive() {
	local dir=$1
	[ -e "$dir/agent.lock" ] || return 1
	if command -v flock >/dev/null 2>&1; then
		! flock -n "$dir/agent.lock" true 2>/dev/null
		return
	fi
	local pid state
	pid=$(cat "$dir/agent.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	state=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1)
	[ "$state" != Z ]
}

# port_open ADDR: does something accept connections at ADDR:PORT?
port_open() { (exec 3<>"/dev/tcp/$1/$PORT") 2>/dev/null; }

# lock_index N: serialize calls about node N (no-op without flock).
lock_index() {
	mkdir -p "$NODES" || fail "cannot create $NODES"
	command -v flock >/dev/null 2>&1 || return 0
	exec 9>"$NODES/$1.lock" && flock 9 || fail "cannot lock $NODES/$1.lock" true
}

# start_agent DIR INDEX ID ADDR: start the node's agent detached (own session,
# output to agent.log, none of our file descriptors) and wait until it runs
# and its port answers.
start_agent() {
	local dir=$1 index=$2 id=$3 addr=$4
	[ -n "${DFLOW_EXE:-}" ] && [ -x "$DFLOW_EXE" ] || fail "DFLOW_EXE ($DFLOW_EXE) is not an executable"
	rm -f "$dir/agent.pid"
	local setsid=
	command -v setsid >/dev/null 2>&1 && setsid=setsid
	(
		cd "$dir" || exit 1
		exec $setsid nohup "$DFLOW_EXE" agent --dir "$dir" --listen "$addr:$PORT" \
			--index "$index" --node-id "$id" </dev/null >>"$dir/agent.log" 2>&1 9>&-
	) &
	local child=$! tries=$((START_TIMEOUT * 20))
	while [ "$tries" -gt 0 ]; do
		if [ -s "$dir/agent.pid" ] && alive "$dir" && port_open "$addr"; then
			return 0
		fi
		if ! kill -0 "$child" 2>/dev/null && ! alive "$dir"; then
			wait "$child" 2>/dev/null
			fail "node $index: agent exited; last lines of $dir/agent.log:
$(tail -n 10 "$dir/agent.log" 2>/dev/null)" true
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	fail "node $index: agent at $addr:$PORT not ready after ${START_TIMEOUT}s; last lines of $dir/agent.log:
$(tail -n 10 "$dir/agent.log" 2>/dev/null)" true
}

# stop_agent DIR: SIGTERM the agent's process group (the agent and its
# apps), SIGKILL after 5 s.
stop_agent() {
	local dir=$1 pid i
	alive "$dir" || return 0
	pid=$(cat "$dir/agent.pid" 2>/dev/null)
	case $pid in '' | *[!0-9]* | 0 | 1) fail "agent in $dir runs but its pid file holds '$pid'" ;; esac
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do alive "$dir" || return 0; sleep 0.05; done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do alive "$dir" || return 0; sleep 0.05; done
	fail "agent pid $pid in $dir survived SIGKILL" true
}

# --- verbs -----------------------------------------------------------------

vm_create() {
	local index image keys
	index=$(int_field index)
	[ -n "$index" ] || fail "vm.create: the request has no index"
	[ "$index" -ge 0 ] && [ "$index" -le $((254 - BASE)) ] ||
		fail "vm.create: index $index out of range: $NAME makes nodes 0..$((254 - BASE)) (127.0.0.$BASE..254)"
	image=$(str_field image)
	keys=$(str_field keys)
	lock_index "$index"
	local dir=$NODES/$index addr=127.0.0.$((BASE + index)) id
	if [ -s "$dir/node.json" ]; then
		# The node exists: answer it as it is, restarting its agent if it died.
		id=$(node_field "$dir/node.json" id)
		[ -n "$id" ] || fail "vm.create: $dir/node.json is unreadable"
	else
		mkdir -p "$dir" || fail "vm.create: cannot create $dir"
		MADE=$dir
		id=vm-local-$index-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
		local node
		node=$(printf '{"index":%d,"id":%s,"address":%s,"agent_url":%s,"backend":%s' \
			"$index" "$(json_str "$id")" "$(json_str "$addr")" "$(json_str "http://$addr:$PORT")" "$(json_str "$NAME")")
		[ -n "$image" ] && node+=",\"image\":$(json_str "$image")"
		node+=",\"created_at\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"
		printf '%s\n' "$node" >"$dir/node.json.tmp" && mv "$dir/node.json.tmp" "$dir/node.json" ||
			fail "vm.create: cannot write $dir/node.json" true
	fi
	if ! alive "$dir"; then
		printf '%s' "$keys" >"$dir/authorized_keys" && chmod 600 "$dir/authorized_keys" ||
			fail "vm.create: cannot write $dir/authorized_keys" true
		start_agent "$dir" "$index" "$id" "$addr"
	fi
	result "$(cat "$dir/node.json")"
}

vm_destroy() {
	local index id dir cur
	index=$(int_field index)
	[ -n "$index" ] || fail "vm.destroy: the request has no index"
	id=$(str_field id)
	dir=$NODES/$index
	[ -d "$dir" ] || result '{}'
	lock_index "$index"
	cur=$(node_field "$dir/node.json" id)
	if [ -n "$id" ] && [ -n "$cur" ] && [ "$cur" != "$id" ]; then
		result '{}' # another incarnation lives there: the one asked for is gone
	fi
	stop_agent "$dir"
	rm -rf "$dir" || fail "vm.destroy: cannot remove $dir" true
	result '{}'
}

vm_list() {
	local out='' i dir
	for i in $(ls "$NODES" 2>/dev/null | grep -E '^[0-9]+$' | sort -n); do
		dir=$NODES/$i
		[ -s "$dir/node.json" ] && alive "$dir" || continue
		out+=${out:+,}$(cat "$dir/node.json")
	done
	result "[$out]"
}

# --- main ------------------------------------------------------------------

[ $# -eq 1 ] || { echo "usage: $0 VERB < request.json (dflow plugin protocol 1)" >&2; exit 2; }
REQ=$(cat)
case $1 in
describe) result "{\"protocol\":1,\"name\":\"$NAME\",\"kinds\":[\"vm\"]}" ;;
vm.create) vm_create ;;
vm.destroy) vm_destroy ;;
vm.list) vm_list ;;
*) fail "unknown verb $1" false unknown_verb ;;
esac
