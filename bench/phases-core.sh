# shellcheck shell=bash disable=SC2154,SC2034  # bench/run's globals: set there, read there
# bench/phases-core.sh: phases 1-9 of bench/run, sourced by bench/run after its helpers are
# defined (bench/phases-shapes.sh has 10-12). Each phase function takes the run number, records
# "<phase> <metric> <value>" lines and returns non-zero (with PHASE_NOTE) when it failed
# outright. bench/README.md describes what each phase measures.

intake_webhooks() {
  case "$intake_webhook" in
    none) echo "" ;;
    paused) webhook bench "http://127.0.0.1:$1/hook" '"*"' false 1000000000 ;;
    live) webhook bench "http://127.0.0.1:$1/hook" '"*"' true 1000000000 ;;
  esac
}

# intake PHASE RUN LOADGEN_ARGS…
intake() {
  local phase=$1 run=$2
  shift 2
  local dir port rport
  dir=$(new_dir "p$phase-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "0s, 1m, 5m, 30m, 2h, 8h" \
    "$(intake_webhooks "$rport")"
  if [ "$intake_webhook" = live ]; then receiver_start "$dir" "$rport" --quiet || return 1; fi
  relayd_start "$dir" "$port" || return 1
  local cpu0
  cpu0=$(cpu_ticks "$RELAYD_PID")
  "$LOADGEN" --port "$port" --duration "$duration" --body-size "$BODY_SIZE" --json "$@" \
    >"$dir/loadgen.json" 2>"$dir/loadgen.err"
  record "$phase" cpu_us "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" \
    "$(jnum "$dir/loadgen.json" events_acked)")"
  local eps
  eps=$(jget "$dir/loadgen.json" events_per_s)
  record "$phase" events_per_s "${eps:-0}"
  record "$phase" p50_ms "$(jget "$dir/loadgen.json" p50_ms)"
  record "$phase" p99_ms "$(jget "$dir/loadgen.json" p99_ms)"
  local non_2xx=$(($(jnum "$dir/loadgen.json" responses) - $(jnum "$dir/loadgen.json" status_2xx)))
  if [ "$phase" = 2 ]; then non_2xx=$((non_2xx + $(jnum "$dir/loadgen.json" errors))); fi
  record "$phase" non_2xx "$non_2xx"
  record "$phase" errors "$(jnum "$dir/loadgen.json" errors)"
  relayd_alive || return 1
  record "$phase" rss_peak_mb "$(rss_mb "$RELAYD_PID" VmHWM)"
  relayd_stop || return 1
  receiver_finish 0
  drop_db "$dir"
  log "  $phase/run $run: $eps events/s acked, p99 $(jget "$dir/loadgen.json" p99_ms) ms"
  [ "$(jnum "$dir/loadgen.json" events_acked)" -gt 0 ] || { PHASE_NOTE="no event acknowledged"; return 1; }
}

phase_1() { intake 1 "$1" --connections "$INTAKE_CONNECTIONS"; }
phase_2() { intake 2 "$1" --connections "$BATCH_CONNECTIONS" --batch "$BATCH"; }

# drain PHASE PREFIX N RUN: backlog of N paused deliveries → enable → time until the receiver
# has acknowledged all of them (every attempt is logged by relayd as it goes).
drain() {
  local phase=$1 prefix=$2 n=$3 run=$4
  local dir port rport
  dir=$(new_dir "p$phase-$prefix-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  local schedule="0s, 1m, 5m, 30m, 2h, 8h"
  write_config "$dir/enabled.yaml" "$port" "$dir/relayd.db" "$schedule" \
    "$(webhook bench "http://127.0.0.1:$rport/hook" '"*"' true $((n * 2)))"
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "$schedule" \
    "$(webhook bench "http://127.0.0.1:$rport/hook" '"*"' false $((n * 2)))"
  relayd_start "$dir" "$port" || return 1
  fill "$port" "$n" ticket.created "$dir" bench
  [ "$FILLED" -gt 0 ] || { PHASE_NOTE="intake accepted no event (fill)"; return 1; }
  record "$phase" "${prefix}_fill_per_s" "$(jget "$dir/fill-bench.json" events_per_s)"
  sleep 1
  relayd_alive || return 1
  record "$phase" "${prefix}_rss_pending_mb" "$(rss_mb "$RELAYD_PID" VmRSS)"
  receiver_start "$dir" "$rport" --expect-ok "$FILLED" --max-time $((DRAIN_TIMEOUT + 30)) ||
    return 1
  local cpu0
  cpu0=$(cpu_ticks "$RELAYD_PID")
  enable_all "$dir" "$port" "$dir/enabled.yaml" || return 1
  local complete=yes
  receiver_finish "$DRAIN_TIMEOUT" || complete=no
  # enable_all may have restarted relayd (then the count starts at that start: cpu0 = 0).
  [ "$ENABLE_METHOD" = reload ] || cpu0=0
  record "$phase" "${prefix}_cpu_us" "$(cpu_us_per "$cpu0" "$(cpu_ticks "$RELAYD_PID")" "$FILLED")"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  local rate drained
  rate=$(jget "$dir/drain.json" ok_per_s)
  drained=$(jget "$dir/drain.json" unique_ok)
  record "$phase" "${prefix}_per_s" "${rate:-0}"
  record "$phase" "${prefix}_delivered_pct" \
    "$(awk -v a="${drained:-0}" -v b="$FILLED" 'BEGIN { printf "%.1f", 100 * a / b }')"
  record "$phase" "${prefix}_duplicates" "$(jget "$dir/drain.json" duplicate_ok)"
  relayd_alive || return 1
  record "$phase" "${prefix}_rss_peak_mb" "$(rss_mb "$RELAYD_PID" VmHWM)"
  sleep 0.5  # the last attempts' rows are committed a few ms after the receipts
  relayd_stop || return 1
  local attempts
  attempts=$(sql "$dir/relayd.db" "SELECT count(*) FROM attempts")
  [ -n "$attempts" ] && record "$phase" "${prefix}_attempts_logged_pct" \
    "$(awk -v a="$attempts" -v b="$FILLED" 'BEGIN { printf "%.1f", 100 * a / b }')"
  drop_db "$dir"
  log "  $phase/$prefix/run $run: $drained/$FILLED delivered at $rate/s (enabled by $ENABLE_METHOD), attempts rows: ${attempts:-n/a}, complete: $complete"
  [ "$(jnum "$dir/drain.json" unique_ok)" -gt 0 ] || { PHASE_NOTE="nothing delivered"; return 1; }
  [ "$complete" = yes ] || log "  WARNING: $((FILLED - drained)) deliveries not received within ${DRAIN_TIMEOUT} s"
  return 0
}

phase_3() { drain 3 drain "$DRAIN_N" "$1"; }

phase_4() {
  local run=$1 dir rport
  dir=$(new_dir "p4-r$run")
  rport=$($TOOL free-port)
  receiver_start "$dir" "$rport" --quiet || return 1
  "$LOADGEN" --port "$rport" --path /hook --connections 64 --duration "$duration" \
    --body-size "$BODY_SIZE" --json >"$dir/loadgen.json" 2>"$dir/loadgen.err"
  receiver_finish 0
  local rps
  rps=$(jget "$dir/loadgen.json" requests_per_s)
  record 4 ceiling_per_s "${rps:-0}"
  log "  4/run $run: receiver ceiling $rps req/s"
  [ "$(jnum "$dir/loadgen.json" responses)" -gt 0 ] || { PHASE_NOTE="the receiver answered nothing"; return 1; }
}

phase_5() {
  local run=$1 dir port rport
  dir=$(new_dir "p5-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "0s, 1m, 5m, 30m, 2h, 8h" \
    "$(webhook bench "http://127.0.0.1:$rport/hook" '"*"' true 100000)"
  receiver_start "$dir" "$rport" --expect-ok "$E2E_N" --quiet || return 1
  relayd_start "$dir" "$port" || return 1
  "$LOADGEN" --port "$port" --rate "$E2E_RATE" --requests "$E2E_N" --connections 16 \
    --body-size "$BODY_SIZE" --id-prefix "e2e$run-" --ids-out "$dir/ids.txt" --json \
    >"$dir/loadgen.json" 2>"$dir/loadgen.err"
  receiver_finish 15
  "$TOOL" join "$dir/ids.txt" "$dir/receiver.log" >"$dir/join.json"
  record 5 e2e_p50_ms "$(jget "$dir/join.json" ack_to_receipt_p50_ms)"
  record 5 e2e_p99_ms "$(jget "$dir/join.json" ack_to_receipt_p99_ms)"
  record 5 e2e_max_ms "$(jget "$dir/join.json" ack_to_receipt_max_ms)"
  record 5 send_p50_ms "$(jget "$dir/join.json" send_to_receipt_p50_ms)"
  record 5 send_p99_ms "$(jget "$dir/join.json" send_to_receipt_p99_ms)"
  record 5 before_ack_pct "$(awk -v a="$(jnum "$dir/join.json" receipt_before_ack)" \
    -v b="$(jnum "$dir/join.json" received)" 'BEGIN { printf "%.1f", b ? 100 * a / b : 0 }')"
  record 5 ack_p99_ms "$(jget "$dir/loadgen.json" p99_ms)"
  record 5 missing "$(jget "$dir/join.json" missing)"
  relayd_alive || return 1
  record 5 rss_peak_mb "$(rss_mb "$RELAYD_PID" VmHWM)"
  relayd_stop || return 1
  drop_db "$dir"
  local received
  received=$(jget "$dir/join.json" received)
  log "  5/run $run: $received/$(jget "$dir/join.json" sent) received, 202→receipt p99 $(jget "$dir/join.json" ack_to_receipt_p99_ms) ms"
  [ "$(jnum "$dir/join.json" received)" -gt 0 ] || { PHASE_NOTE="no event reached the receiver"; return 1; }
}

phase_6() {
  drain 6 small "$SMALL_N" "$1" || return 1
  if [ "$BIG_N" = "$DRAIN_N" ] && [[ ",$phases," == *,3,* ]]; then
    return 0  # the large case is phase 3's drain; the table reuses it
  fi
  drain 6 big "$BIG_N" "$1"
}

# Phase 7 has no run of its own: every phase records relayd's VmHWM, the drains its VmRSS with
# the backlog pending.
phase_7() { return 0; }

phase_8() {
  local run=$1 dir port rport
  dir=$(new_dir "p8-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  local schedule="0s, 1s, 1s, 1s, 1s, 1s" attempts=6
  local on off
  on="$(webhook failing "http://127.0.0.1:$rport/fail/hook" ticket.created true $((STORM_FAIL * 2)))
$(webhook healthy "http://127.0.0.1:$rport/ok/hook" message.created true $((STORM_OK * 2)))"
  off="$(webhook failing "http://127.0.0.1:$rport/fail/hook" ticket.created false $((STORM_FAIL * 2)))
$(webhook healthy "http://127.0.0.1:$rport/ok/hook" message.created false $((STORM_OK * 2)))"
  write_config "$dir/enabled.yaml" "$port" "$dir/relayd.db" "$schedule" "$on"
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "$schedule" "$off"
  relayd_start "$dir" "$port" || return 1
  fill "$port" "$STORM_FAIL" ticket.created "$dir" failing
  local failing=$FILLED
  fill "$port" "$STORM_OK" message.created "$dir" healthy
  local healthy=$FILLED
  if [ "$failing" -eq 0 ] || [ "$healthy" -eq 0 ]; then PHASE_NOTE="fill failed"; return 1; fi
  # Done when the healthy webhook's backlog is in: the failing one's circuit breaker (issue 16)
  # holds its deliveries back, so its attempts never reach failing × attempts.
  receiver_start "$dir" "$rport" --fail-path /fail --expect-ok "$healthy" \
    --max-time $((STORM_TIMEOUT + 30)) || return 1
  enable_all "$dir" "$port" "$dir/enabled.yaml" || return 1
  receiver_finish "$STORM_TIMEOUT"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  local healthy_rate fail_attempts
  healthy_rate=$(jget "$dir/drain.json" ok_per_s)
  fail_attempts=$(jget "$dir/drain.json" not_ok)
  record 8 healthy_per_s "${healthy_rate:-0}"
  record 8 storm_attempts_pct \
    "$(awk -v a="${fail_attempts:-0}" -v b="$((failing * attempts))" 'BEGIN { printf "%.1f", 100 * a / b }')"
  record 8 storm_peak_1s "$(jget "$dir/drain.json" not_ok_peak_1s)"
  record 8 storm_per_s "$(jget "$dir/drain.json" not_ok_per_s)"
  relayd_alive || return 1
  record 8 rss_peak_mb "$(rss_mb "$RELAYD_PID" VmHWM)"
  sleep 0.5
  relayd_stop || return 1
  local failed
  failed=$(sql "$dir/relayd.db" "SELECT count(*) FROM deliveries WHERE webhook_id = 'failing' AND status = 'failed'")
  [ -n "$failed" ] && record 8 failed_final_pct \
    "$(awk -v a="$failed" -v b="$failing" 'BEGIN { printf "%.1f", 100 * a / b }')"
  drop_db "$dir"
  log "  8/run $run: healthy $healthy_rate/s, $fail_attempts/$((failing * attempts)) failing attempts (peak $(jget "$dir/drain.json" not_ok_peak_1s)/s), failed deliveries: ${failed:-n/a}"
  [ "$(jnum "$dir/drain.json" unique_ok)" -gt 0 ] || { PHASE_NOTE="the healthy webhook received nothing"; return 1; }
  [ "$(jnum "$dir/drain.json" not_ok)" -gt 0 ] || { PHASE_NOTE="no attempt reached the failing webhook"; return 1; }
}

# Isolation (issue 7): a dead endpoint — it accepts connections and never answers, so every
# attempt runs into delivery.timeout — with DEAD_N deliveries pending, beside a healthy webhook
# draining STORM_OK (enabled once the dead backlog is pending). The healthy rate is compared
# with phase 6's drain alone.
phase_9() {
  local run=$1 dir port rport dport
  dir=$(new_dir "p9-r$run")
  port=$($TOOL free-port)
  rport=$($TOOL free-port)
  dport=$($TOOL free-port)
  local schedule="0s, 1m, 5m, 30m, 2h, 8h" on off
  on="$(webhook dead "http://127.0.0.1:$dport/hook" ticket.created true $((DEAD_N * 2)))
$(webhook healthy "http://127.0.0.1:$rport/ok/hook" message.created true $((STORM_OK * 2)))"
  off="$(webhook dead "http://127.0.0.1:$dport/hook" ticket.created false $((DEAD_N * 2)))
$(webhook healthy "http://127.0.0.1:$rport/ok/hook" message.created false $((STORM_OK * 2)))"
  write_config "$dir/enabled.yaml" "$port" "$dir/relayd.db" "$schedule" "$on"
  write_config "$dir/relayd.yaml" "$port" "$dir/relayd.db" "$schedule" "$off"
  write_config "$dir/dead-only.yaml" "$port" "$dir/relayd.db" "$schedule" \
    "$(webhook dead "http://127.0.0.1:$dport/hook" ticket.created true $((DEAD_N * 2)))
$(webhook healthy "http://127.0.0.1:$rport/ok/hook" message.created false $((STORM_OK * 2)))"
  relayd_start "$dir" "$port" || return 1
  fill "$port" "$DEAD_N" ticket.created "$dir" dead
  local dead=$FILLED
  fill "$port" "$STORM_OK" message.created "$dir" healthy
  local healthy=$FILLED
  if [ "$dead" -eq 0 ] || [ "$healthy" -eq 0 ]; then PHASE_NOTE="fill failed"; return 1; fi
  "$TOOL" blackhole "$dport" $((STORM_TIMEOUT + 30)) &
  local hole=$!
  # The dead endpoint first, until its whole backlog is pending and its attempts hang: what is
  # measured is the steady state beside it, not the one-off resume of its paused deliveries.
  cp "$dir/dead-only.yaml" "$dir/relayd.yaml"
  kill -HUP "$RELAYD_PID"
  local i left
  for ((i = 0; i < 300; i++)); do
    left=$(sql "$dir/relayd.db" "SELECT count(*) FROM deliveries WHERE webhook_id = 'dead' AND status = 'paused'")
    [ "${left:-1}" = 0 ] && break
    sleep 0.1
  done
  sleep 1
  receiver_start "$dir" "$rport" --expect-ok "$healthy" --max-time $((STORM_TIMEOUT + 30)) ||
    { kill "$hole" 2>/dev/null; return 1; }
  enable_all "$dir" "$port" "$dir/enabled.yaml" || { kill "$hole" 2>/dev/null; return 1; }
  receiver_finish "$STORM_TIMEOUT"
  "$TOOL" drain "$dir/receiver.log" --since "$T0" >"$dir/drain.json"
  local rate
  rate=$(jget "$dir/drain.json" ok_per_s)
  record 9 healthy_per_s "${rate:-0}"
  relayd_alive || { kill "$hole" 2>/dev/null; return 1; }
  relayd_stop
  kill "$hole" 2>/dev/null
  wait "$hole" 2>/dev/null
  local waiting
  waiting=$(sql "$dir/relayd.db" "SELECT count(*) FROM deliveries WHERE webhook_id = 'dead' AND status IN ('pending', 'delivering')")
  record 9 dead_waiting "${waiting:-0}"
  drop_db "$dir"
  log "  9/run $run: healthy $rate/s beside a dead endpoint with $dead pending (${waiting:-n/a} still waiting at the end)"
  [ "$(jnum "$dir/drain.json" unique_ok)" -gt 0 ] || { PHASE_NOTE="the healthy webhook received nothing"; return 1; }
}
