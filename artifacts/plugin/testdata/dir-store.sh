#!/bin/sh
# An artifact-store plugin in plain sh (docs/artifacts.md): it keeps bundles
# as files named by their digest in $ARTIFACTS_DIR (default
# $DFLOW_STATE_DIR/artifact-plugin). The tests run dflow's conformance suite
# against it. Needs coreutils (sha256sum) and sed; no jq.
set -u
dir=${ARTIFACTS_DIR:-${DFLOW_STATE_DIR:-.}/artifact-plugin}
mkdir -p "$dir" || exit 1
req=$(cat)
field() { # the value of the string field "$1" in the request (no escapes in ours)
	printf '%s' "$req" | sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p'
}
fail() { # code message
	printf '{"error":{"code":"%s","message":"%s","retryable":false}}\n' "$1" "$2"
	exit 0
}
digest=$(field digest)
case "$1" in
artifacts.put|artifacts.get|artifacts.stat|artifacts.delete)
	printf '%s' "$digest" | grep -Eqx '[0-9a-f]{64}' || fail invalid_digest "invalid digest \\\"$digest\\\"" ;;
esac
case "$1" in
describe)
	echo '{"result":{"protocol":1,"name":"dir-store.sh","kinds":["artifacts"]}}' ;;
artifacts.put)
	path=$(field path)
	tmp=$(mktemp "$dir/.put-XXXXXX") || exit 1
	cp "$path" "$tmp" || { rm -f "$tmp"; exit 1; }
	got=$(sha256sum "$tmp" | cut -d' ' -f1)
	if [ "$got" != "$digest" ]; then
		rm -f "$tmp"
		fail digest_mismatch "content hashes to $got, not $digest"
	fi
	mv -f "$tmp" "$dir/$digest" || exit 1
	echo '{"result":{}}' ;;
artifacts.get)
	[ -f "$dir/$digest" ] || fail not_found "no bundle $digest in $dir"
	cp "$dir/$digest" "$(field path)" || exit 1
	echo '{"result":{}}' ;;
artifacts.stat)
	[ -f "$dir/$digest" ] || fail not_found "no bundle $digest in $dir"
	printf '{"result":{"digest":"%s","size":%s}}\n' "$digest" "$(stat -c %s "$dir/$digest")" ;;
artifacts.list)
	list=$(ls "$dir" | grep -Ex '[0-9a-f]{64}' | sed 's/.*/"&"/' | paste -sd, -)
	printf '{"result":{"digests":[%s]}}\n' "$list" ;;
artifacts.delete)
	rm -f "$dir/$digest" || exit 1
	echo '{"result":{}}' ;;
*)
	fail unknown_verb "unknown verb $1" ;;
esac
