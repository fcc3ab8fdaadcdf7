# shellcheck shell=bash disable=SC2154,SC2034  # bench/run's globals: set there, read there
# bench/phases-shapes.sh: phases 10-12 of bench/run (issue 20's "shapes users actually run"),
# sourced by bench/run after its helpers are defined. Each phase_N takes the run number,
# records "<phase> <metric> <value>" and returns non-zero with PHASE_NOTE when it failed.
#
#   10  HTTPS to SHAPE_ORIGINS distinct origins (o1.shapes.test … on 127.0.0.1, one TLS 1.3
#       receiver, a wildcard certificate from a CA made here, SNI): relayd CPU per delivery with
#       connection reuse, without reuse (every delivery a new handshake, resumed), and without
#       reuse or resumption (every handshake a full one)
#   11  fan-out: one event to FANOUT_WEBHOOKS webhooks: intake p99 while they drain, drain rate
#   12  large payloads: LARGE_BODY-byte events: intake, drain, RSS
#
# The origins' names resolve through a hosts file that only relayd sees: relayd runs in its own
# mount namespace (unshare) with that file bound over /etc/hosts. The real /etc/hosts is never
# touched; this needs root or unprivileged user namespaces (Debian 12's default).

case "$mode" in
  smoke) SHAPE_ORIGINS=200; SHAPE_EVENTS=3; FANOUT_WEBHOOKS=100; FANOUT_EVENTS=10; LARGE_N=20 ;;
  full) SHAPE_ORIGINS=1000; SHAPE_EVENTS=20; FANOUT_WEBHOOKS=100; FANOUT_EVENTS=1000; LARGE_N=2000 ;;
  *) SHAPE_ORIGINS=1000; SHAPE_EVENTS=10; FANOUT_WEBHOOKS=100; FANOUT_EVENTS=200; LARGE_N=1000 ;;
esac
LARGE_BODY=262144
SHAPES_TIMEOUT=$DRAIN_TIMEOUT

# shapes_tls: once per bench run, a CA, a certificate for *.shapes.test signed by it, a hosts
# file naming o1…oN.shapes.test, and RELAYD_HOSTS, a wrapper that runs relayd with that file as
# its /etc/hosts. The wrapper execs, so $! of relayd_start is relayd's own pid (CPU, SIGHUP).
shapes_tls() {
  SHAPES_TLS=$WORK/shapes-tls
  [ -f "$SHAPES_TLS/ready" ] && return 0
  mkdir -p "$SHAPES_TLS"
  local d=$SHAPES_TLS i
  if ! {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
      -subj "/CN=relayd bench CA" -keyout "$d/ca-key.pem" -out "$d/ca.pem" &&
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=*.shapes.test" -keyout "$d/key.pem" -out "$d/req.pem" &&
      printf 'subjectAltName=DNS:*.shapes.test\n' >"$d/ext.cnf" &&
      openssl x509 -req -in "$d/req.pem" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" \
        -CAcreateserial -days 2 -extfile "$d/ext.cnf" -out "$d/cert.pem"
  } >"$d/openssl.log" 2>&1; then
    PHASE_NOTE="cannot make the bench certificates: $(tail -n 1 "$d/openssl.log")"
    return 1
  fi
  for ((i = 1; i <= SHAPE_ORIGINS; i++)); do echo "127.0.0.1 o$i.shapes.test"; done >"$d/hosts"
  local userns=-r
  [ "$(id -u)" = 0 ] && userns=""
  # $0 of the inner shell is the hosts file, "$@" the relayd command line.
  cat >"$d/relayd" <<EOF
#!/bin/sh
exec unshare $userns -m sh -c 'mount --bind "\$0" /etc/hosts && exec "\$@"' "$d/hosts" "$RELAYD" "\$@"
EOF
  chmod +x "$d/relayd"
  if ! "$d/relayd" --version >"$d/probe.log" 2>&1; then
    PHASE_NOTE="cannot run relayd with a private /etc/hosts (unshare: root or user namespaces needed): $(tail -n 1 "$d/probe.log")"
    return 1
  fi
  touch "$d/ready"
}

# shapes_https_webhooks PORT ENABLED: one webhook per origin.
shapes_https_webhooks() {
  local i
  for ((i = 1; i <= SHAPE_ORIGINS; i++)); do
    cat <<EOF
  - id: o$i
    url: https://o$i.shapes.test:$1/hook
    secret: $(bench_secret "o$i")
EOF
    # Only when not the default, as in bench/run's webhook(): older binaries lack the key.
    [ "$signature" = relay ] || echo "    signature: $signature"
    cat <<EOF
    events: ["*"]
    enabled: $2
    max_queued: $((SHAPE_EVENTS * 2))
EOF
  done
}

# shapes_https_variant RUN NAME RECEIVER_ARGS…: SHAPE_EVENTS events (one batch) to webhooks
# on every origin, live; records relayd's CPU per delivery from just before the batch (its
# delivery rows included, no reload in the count), the drain rate and the receiver's handshakes.
shapes_https_variant() {
  local run=$1 name=$2
  shift 2
  local dir port rport n
  dir=$(new_dir "p10-$name-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  n=$((SHAPE_ORIGINS * SHAPE_EVENTS))
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "0s, 1m, 5m, 30m, 2h, 8h" \
    "$(shapes_https_webhooks "$rport" true)"
  # The bench CA as the default trust; one attempt at a time per origin, so that an origin's
  # next delivery finds the previous one's connection (or session) instead of racing it.
  sed -i -e "s|^delivery:\$|delivery:\n  ca_file: $SHAPES_TLS/ca.pem|" \
    -e "s|^  per_webhook_concurrency: .*|  per_webhook_concurrency: 1|" "$dir/relayd.yaml"
  receiver_start "$dir" "$rport" --expect-ok "$n" --max-time $((SHAPES_TIMEOUT + 30)) --quiet \
    --tls-cert "$SHAPES_TLS/cert.pem" --tls-key "$SHAPES_TLS/key.pem" "$@" || return 1
  relayd_start "$dir" "$port" || return 1
  local cpu0
  cpu0=$(cpu_ticks "$RELAYD_PID")
  T0=$(now_ns)
  fill "$port" "$SHAPE_EVENTS" ticket.created "$dir" "$name"
  [ "$FILLED" = "$SHAPE_EVENTS" ] || { PHASE_NOTE="intake accepted $FILLED/$SHAPE_EVENTS events"; return 1; }
  local complete=yes
  receiver_finish "$SHAPES_TIMEOUT" || complete=no
  record 10 "${name}_cpu_us" "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" "$n")"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  local delivered handshakes resumed sni
  delivered=$(jnum "$dir/drain.json" unique_ok)
  handshakes=$(jnum "$dir/receiver.json" tls_handshakes)
  resumed=$(jnum "$dir/receiver.json" tls_resumed)
  sni=$(jnum "$dir/receiver.json" sni_names)
  record 10 "${name}_per_s" "$(jget "$dir/drain.json" ok_per_s)"
  record 10 "${name}_handshakes_per_100" \
    "$(awk -v a="$handshakes" -v b="$delivered" 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }')"
  record 10 "${name}_resumed_pct" \
    "$(awk -v a="$resumed" -v b="$handshakes" 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }')"
  record 10 sni_names "$sni"
  relayd_alive || return 1
  record 10 "${name}_rss_peak_mb" "$(rss_mb "$RELAYD_PID" VmHWM)"
  relayd_stop || return 1
  drop_db "$dir"
  log "  10/$name/run $run: $delivered/$n delivered to $sni names at $(jget "$dir/drain.json" ok_per_s)/s, $handshakes handshakes ($resumed resumed), complete: $complete"
  [ "$delivered" -gt 0 ] || { PHASE_NOTE="$name: nothing delivered"; return 1; }
  [ "$sni" = "$SHAPE_ORIGINS" ] || { PHASE_NOTE="$name: the receiver saw $sni SNI names, not $SHAPE_ORIGINS"; return 1; }
  [ "$(jnum "$dir/receiver.json" tls_failed)" = 0 ] || { PHASE_NOTE="$name: failed TLS handshakes"; return 1; }
  [ "$complete" = yes ] || log "  WARNING: $((n - delivered)) deliveries not received within $SHAPES_TIMEOUT s"
  return 0
}

phase_10() {
  shapes_tls || return 1
  # relayd_start runs $RELAYD: for this phase, the wrapper with the private /etc/hosts.
  local real=$RELAYD rc=0
  RELAYD=$SHAPES_TLS/relayd
  shapes_https_variant "$1" reuse &&
    shapes_https_variant "$1" resumed --close &&
    shapes_https_variant "$1" full --close --tls-no-resume || rc=1
  RELAYD=$real
  return $rc
}

# Fan-out: FANOUT_WEBHOOKS webhooks on one receiver (each its own path), all live; intake of
# FANOUT_EVENTS single events from 16 clients while the deliveries drain.
phase_11() {
  local run=$1 dir port rport i hooks="" n
  dir=$(new_dir "p11-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  n=$((FANOUT_WEBHOOKS * FANOUT_EVENTS))
  for ((i = 1; i <= FANOUT_WEBHOOKS; i++)); do
    hooks+="$(webhook "fan$i" "http://127.0.0.1:$rport/hook/$i" '"*"' true $((FANOUT_EVENTS * 2)))"$'\n'
  done
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "0s, 1m, 5m, 30m, 2h, 8h" "$hooks"
  receiver_start "$dir" "$rport" --expect-ok "$n" --max-time $((SHAPES_TIMEOUT + 30)) --quiet ||
    return 1
  relayd_start "$dir" "$port" || return 1
  local cpu0
  cpu0=$(cpu_ticks "$RELAYD_PID")
  T0=$(now_ns)
  "$LOADGEN" --port "$port" --requests "$FANOUT_EVENTS" --connections 16 \
    --body-size "$BODY_SIZE" --json >"$dir/loadgen.json" 2>"$dir/loadgen.err"
  local complete=yes
  receiver_finish "$SHAPES_TIMEOUT" || complete=no
  record 11 cpu_us "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" "$n")"
  record 11 intake_per_s "$(jget "$dir/loadgen.json" events_per_s)"
  record 11 intake_p99_ms "$(jget "$dir/loadgen.json" p99_ms)"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  record 11 drain_per_s "$(jget "$dir/drain.json" ok_per_s)"
  relayd_alive || return 1
  record 11 rss_peak_mb "$(rss_mb "$RELAYD_PID" VmHWM)"
  relayd_stop || return 1
  drop_db "$dir"
  local delivered
  delivered=$(jnum "$dir/drain.json" unique_ok)
  log "  11/run $run: $(jnum "$dir/loadgen.json" events_acked) events × $FANOUT_WEBHOOKS webhooks, intake p99 $(jget "$dir/loadgen.json" p99_ms) ms, $delivered/$n delivered at $(jget "$dir/drain.json" ok_per_s)/s, complete: $complete"
  [ "$(jnum "$dir/loadgen.json" events_acked)" -gt 0 ] || { PHASE_NOTE="no event acknowledged"; return 1; }
  [ "$delivered" -gt 0 ] || { PHASE_NOTE="nothing delivered"; return 1; }
  [ "$complete" = yes ] || log "  WARNING: $((n - delivered)) deliveries not received within $SHAPES_TIMEOUT s"
  return 0
}

# Large payloads: LARGE_N single events of LARGE_BODY bytes into a paused webhook (intake), then
# enabled (drain); RSS with the backlog pending and at its peak.
phase_12() {
  local run=$1 dir port rport
  dir=$(new_dir "p12-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  local schedule="0s, 1m, 5m, 30m, 2h, 8h"
  write_config "$dir/enabled.yaml" "$port" "$dir/relayd.db" "$schedule" \
    "$(webhook large "http://127.0.0.1:$rport/hook" '"*"' true $((LARGE_N * 2)))"
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "$schedule" \
    "$(webhook large "http://127.0.0.1:$rport/hook" '"*"' false $((LARGE_N * 2)))"
  relayd_start "$dir" "$port" || return 1
  local cpu0 acked
  cpu0=$(cpu_ticks "$RELAYD_PID")
  "$LOADGEN" --port "$port" --requests "$LARGE_N" --connections 8 --body-size "$LARGE_BODY" \
    --timeout 30 --json >"$dir/loadgen.json" 2>"$dir/loadgen.err"
  acked=$(jnum "$dir/loadgen.json" events_acked)
  [ "$acked" -gt 0 ] || { PHASE_NOTE="no 256 KiB event acknowledged"; return 1; }
  record 12 intake_cpu_us "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" "$acked")"
  record 12 intake_per_s "$(jget "$dir/loadgen.json" events_per_s)"
  record 12 intake_mb_per_s "$(awk -v e="$(jget "$dir/loadgen.json" events_per_s)" -v b="$LARGE_BODY" 'BEGIN { printf "%.1f", e * b / 1048576 }')"
  record 12 intake_p99_ms "$(jget "$dir/loadgen.json" p99_ms)"
  sleep 1
  relayd_alive || return 1
  record 12 rss_pending_mb "$(rss_mb "$RELAYD_PID" VmRSS)"
  receiver_start "$dir" "$rport" --expect-ok "$acked" --max-time $((SHAPES_TIMEOUT + 30)) --quiet ||
    return 1
  cpu0=$(cpu_ticks "$RELAYD_PID")
  enable_all "$dir" "$port" "$dir/enabled.yaml" || return 1
  [ "$ENABLE_METHOD" = reload ] || cpu0=0
  local complete=yes
  receiver_finish "$SHAPES_TIMEOUT" || complete=no
  record 12 drain_cpu_us "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" "$acked")"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  record 12 drain_per_s "$(jget "$dir/drain.json" ok_per_s)"
  relayd_alive || return 1
  record 12 rss_peak_mb "$(rss_mb "$RELAYD_PID" VmHWM)"
  relayd_stop || return 1
  drop_db "$dir"
  local delivered
  delivered=$(jnum "$dir/drain.json" unique_ok)
  log "  12/run $run: $acked events of $LARGE_BODY bytes at $(jget "$dir/loadgen.json" events_per_s)/s (p99 $(jget "$dir/loadgen.json" p99_ms) ms), $delivered delivered at $(jget "$dir/drain.json" ok_per_s)/s, complete: $complete"
  [ "$delivered" -gt 0 ] || { PHASE_NOTE="nothing delivered"; return 1; }
  [ "$complete" = yes ] || log "  WARNING: $((acked - delivered)) deliveries not received within $SHAPES_TIMEOUT s"
  return 0
}

# shapes_rows: the table rows of phases 10-12 (called from bench/run's table block).
shapes_rows() {
  local o=$SHAPE_ORIGINS
  row 10 reuse_cpu_us "HTTPS, $o origins (one attempt at a time each), connections reused: relayd CPU per delivery (µs)" 1 ""
  row 10 resumed_cpu_us "HTTPS, $o origins, a new connection per delivery, TLS resumed: CPU per delivery (µs)" 1 ""
  row 10 full_cpu_us "HTTPS, $o origins, a new connection per delivery, full handshake: CPU per delivery (µs)" 1 ""
  row 10 reuse_per_s "HTTPS, connections reused: deliveries/s" 0 ""
  row 10 resumed_per_s "HTTPS, new connection, resumed: deliveries/s" 0 ""
  row 10 full_per_s "HTTPS, new connection, full handshake: deliveries/s" 0 ""
  row 10 reuse_handshakes_per_100 "HTTPS, connections reused: TLS handshakes per 100 deliveries" 1 ""
  row 10 resumed_resumed_pct "HTTPS, new connection per delivery: handshakes that resumed (%)" 1 ""
  row 10 full_resumed_pct "HTTPS, receiver without tickets: handshakes that resumed (%)" 1 "0"
  row 10 sni_names "HTTPS: distinct SNI names the receiver saw" 0 "$o"
  row 10 full_rss_peak_mb "HTTPS, full handshakes: peak RSS of relayd (MB)" 1 ""
  row 11 intake_p99_ms "fan-out to $FANOUT_WEBHOOKS webhooks, 16 clients: intake p99 (ms)" 2 ""
  row 11 intake_per_s "fan-out: events/s acked" 0 ""
  row 11 drain_per_s "fan-out: deliveries/s (first 202 → last receipt)" 0 ""
  row 11 cpu_us "fan-out: relayd CPU per delivery, intake included (µs)" 1 ""
  row 11 rss_peak_mb "fan-out: peak RSS of relayd (MB)" 1 ""
  row 12 intake_per_s "$((LARGE_BODY / 1024)) KiB events, 8 clients: events/s acked" 0 ""
  row 12 intake_mb_per_s "$((LARGE_BODY / 1024)) KiB events: intake MiB/s" 1 ""
  row 12 intake_p99_ms "$((LARGE_BODY / 1024)) KiB events: intake p99 (ms)" 2 ""
  row 12 intake_cpu_us "$((LARGE_BODY / 1024)) KiB events: relayd CPU per event at intake (µs)" 1 ""
  row 12 drain_per_s "$((LARGE_BODY / 1024)) KiB events: deliveries/s" 0 ""
  row 12 drain_cpu_us "$((LARGE_BODY / 1024)) KiB events: relayd CPU per delivery (µs)" 1 ""
  row 12 rss_pending_mb "$((LARGE_BODY / 1024)) KiB events: RSS with $LARGE_N pending (MB)" 1 ""
  row 12 rss_peak_mb "$((LARGE_BODY / 1024)) KiB events: peak RSS of relayd (MB)" 1 ""
}
