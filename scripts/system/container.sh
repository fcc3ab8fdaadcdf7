# shellcheck shell=bash
# Sourced by scripts/test-system and bench/journal: a Debian root booted with systemd as PID 1
# (systemd-nspawn -b, private network) and commands run inside it. The caller defines
# fail MESSAGE (exits) and calls container_stop from its EXIT trap.
nspawn_pid=
init_pid=

# container_boot ROOT MACHINE CONSOLE_LOG: boots ROOT and returns once `systemctl
# is-system-running` says running or degraded (printed as "booted: STATE").
container_boot() {
  local root=$1 machine=$2 console=$3 state=unknown
  systemd-nspawn -q -b -D "$root" --register=no --keep-unit --private-network \
    --machine="$machine" >"$console" 2>&1 </dev/null &
  nspawn_pid=$!
  # nspawn's first child is a short-lived helper that forks the container's PID 1 and exits
  # (nspawn, a subreaper, then adopts it): wait for the child that runs systemd. Taking the
  # helper made nsenter fail once in CI ("stat of /proc/N/ns/user failed").
  for _ in $(seq 1 100); do
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited during boot: $(sed 's/\x1b\[[0-9;]*m//g' "$console" | tail -5)"
    init_pid=
    for child in $(pgrep -P "$nspawn_pid" || true); do
      [ "$(cat "/proc/$child/comm" 2>/dev/null)" = systemd ] && init_pid=$child
    done
    [ -n "$init_pid" ] && break
    sleep 0.1
  done
  [ -n "$init_pid" ] || fail "no systemd process under systemd-nspawn within 10 s"
  # systemctl needs PID 1's private bus socket, which exists a moment after the container starts.
  for _ in $(seq 1 120); do
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited during boot"
    state=$(in_ct systemctl is-system-running 2>&1 || true)
    case "$state" in
      running | degraded) break ;;
    esac
    sleep 0.5
  done
  case "$state" in
    running | degraded) ;;
    *) fail "the container did not boot (systemctl is-system-running: $state)" ;;
  esac
  [ "$(in_ct cat /proc/1/comm)" = systemd ] || fail "PID 1 in the container is not systemd"
  echo "booted: $state"
  [ "$state" = running ] || in_ct systemctl --failed --no-legend >&2 || true
}

# A clean environment inside: nothing of the caller's shell (JOURNAL_STREAM, NOTIFY_SOCKET…)
# leaks in.
in_ct() {
  nsenter -t "$init_pid" -a env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"
}
sh_ct() { in_ct sh -c "$1"; }

# Powers the container off (nspawn does on SIGTERM), then makes sure it is gone.
container_stop() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    wait "$nspawn_pid" 2>/dev/null || true
  fi
}
