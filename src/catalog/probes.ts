/**
 * The probe catalog: what nodediag looks at on a node. Data only; validated
 * by `loadCatalogs()`.
 *
 * Script templates: `{{sudo}}` marks a privileged command (rendered as
 * `sudo -n ` when the inventory says `sudo: true`, else nothing) and is
 * always followed by a fixed command whose arguments are literals or
 * `{{param}}` values, so that `nodediag sudoers` can list exactly what the
 * bot may run as root. Everything else runs as the SSH user. Each script
 * ends with status 0 when it observed something; the observation is in its
 * output.
 */

/** Units whose presence and command line tell the node's runtime layout. */
const LAYOUT_UNITS = 'containerd kubelet k3s k3s-agent rke2-server rke2-agent crio';
/** Flags worth reading from those command lines (see probes/layout.ts). */
const LAYOUT_FLAGS = '^--?(config|c|address|a|root|state|container-runtime-endpoint|cgroup-driver|fail-swap-on|root-dir|data-dir|d)$';

/**
 * Where things are: each unit's state, its running command line (or its
 * ExecStart and the flags its Environment= and EnvironmentFiles carry — only
 * the flags, never the rest of the environment, which may hold secrets),
 * kubelet's containerRuntimeEndpoint, the k3s/RKE2/CRI-O markers, journald
 * persistence, and the container tools' paths.
 */
const LAYOUT_SCRIPT = [
  // One systemctl and one awk: the awk also reads each running unit's command line (NUL-separated
  // records), its EnvironmentFiles and kubelet's config file. Every process counts here: this probe
  // runs first, and the probes that need its paths wait for it.
  `flags='${LAYOUT_FLAGS}'`,
  `nl='`,
  `'`,
  `all=$({{sudo}}systemctl show ${LAYOUT_UNITS} --no-pager -p Id -p LoadState -p ActiveState -p MainPID -p ExecStart -p Environment -p EnvironmentFiles 2>/dev/null | awk -v flags="$flags" '`,
  `  function flag(t,   k) { k = t; sub(/=.*/, "", k); return k ~ flags }`,
  `  function add(l) { more = more (more == "" ? "" : "\\n") l }`,
  `  function note(l, src, v) { if (l ~ /^flag kubelet [a-z]+ --config=/) { v = l; sub(/^flag kubelet [a-z]+ --config=/, "", v); if (src == "cmdline") kc = v; else if (src == "envfile" && ke == "") ke = v; else if (src == "environment" && kv == "") kv = v } }`,
  `  function cmdline(u, pid,   f, l, n, want) { f = "/proc/" pid "/cmdline"; RS = "\\0"; n = 0`,
  `    while ((getline l < f) > 0) { gsub(/\\n/, " ", l); n++`,
  `      if (n == 1) { add("exec " u " running " l); if (u == "containerd") { split(l, a, " "); cr = a[1] } }`,
  `      else if (want != "") { add("flag " u " cmdline " want "=" l); note("flag " u " cmdline " want "=" l, "cmdline"); want = "" }`,
  `      else if (flag(l)) { if (index(l, "=")) { add("flag " u " cmdline " l); note("flag " u " cmdline " l, "cmdline") } else want = l } }`,
  `    close(f); RS = "\\n" }`,
  `  function envfile(u, f,   l, m, k) { while ((getline l < f) > 0) while (match(l, /--[a-z-]+(=| )[^ "]+/)) { m = substr(l, RSTART, RLENGTH); l = substr(l, RSTART + RLENGTH); k = m; sub(/[= ].*/, "", k); if (k ~ flags) { sub(/ /, "=", m); add("flag " u " envfile " m); note("flag " u " envfile " m, "envfile") } }; close(f) }`,
  `  function flush(   i) { if (id != "") { sub(/\\.service$/, "", id); units++; out = out sprintf("unit %s load=%s active=%s pid=%s\\n", id, load, act, pid)`,
  `      if (exec != "") { out = out "exec " id " unit " exec "\\n"; if (id == "containerd" && cu == "") { split(exec, a, " "); cu = a[1] } }`,
  `      for (i = 1; i <= nf; i++) { out = out "flag " id " environment " fl[i] "\\n"; note("flag " id " environment " fl[i], "environment") }`,
  `      if (pid ~ /^[0-9]+$/ && pid > 0) cmdline(id, pid); for (i = 1; i <= ne; i++) envfile(id, ef[i]) }`,
  `    id = load = act = pid = exec = ""; nf = ne = 0 }`,
  `  /^$/ { flush(); next }`,
  `  /^Id=/ { id = substr($0, 4); next }`,
  `  /^LoadState=/ { load = substr($0, 11); next }`,
  `  /^ActiveState=/ { act = substr($0, 13); next }`,
  `  /^MainPID=/ { pid = substr($0, 9); next }`,
  `  /^ExecStart=/ { if (match($0, /argv\\[\\]=[^;]*/)) { exec = substr($0, RSTART + 7, RLENGTH - 7); sub(/ +$/, "", exec) }; next }`,
  `  /^Environment=/ { n = split(substr($0, 13), kv2, " "); for (i = 1; i <= n; i++) { gsub(/\\\\x20/, " ", kv2[i]); m = split(kv2[i], w, " "); for (j = 1; j <= m; j++) { t = w[j]; sub(/^[A-Za-z_][A-Za-z0-9_]*=/, "", t); if (flag(t)) fl[++nf] = t } }; next }`,
  `  /^EnvironmentFiles=/ { f = substr($0, 18); sub(/ \\(ignore_errors=.*$/, "", f); if (f != "") ef[++ne] = f; next }`,
  `  END { flush(); printf "%s", (units ? out : "\\n"); print more`,
  // kubelet's own config file names the CRI endpoint when no flag does.
  `    k = kc != "" ? kc : ke != "" ? ke : kv; if (k != "") { while ((getline l < k) > 0) if (l ~ /^[ \\t]*(containerRuntimeEndpoint|cgroupDriver):/) { sub(/^[ \\t]*/, "", l); print "kubelet-config " l }; close(k) }`,
  `    print "@@cd " (cr != "" ? cr : cu) }')`,
  `case "$all" in *"$nl@@cd "*) cd_exe=\${all##*"$nl@@cd "}; all=\${all%"$nl@@cd "*} ;; *) cd_exe= ;; esac`,
  // systemctl prints a block for every unit asked, even one not installed: none at all means it could not
  // answer (no D-Bus, no systemd, sudo refused). Said first, so the check fails with that reason: without the
  // units, the flags kubelet runs with are unknown, not absent.
  `case "$nl$all" in *"$nl"'unit '*) ;; *) why=$({{sudo}}systemctl show -p Id containerd 2>&1 >/dev/null); echo "units=unreadable: \${why:-systemctl show printed no unit}" | head -n 1 ;; esac`,
  `printf '%s\\n' "$all"`,
  `for p in /run/containerd/containerd.sock /var/run/crio/crio.sock /run/k3s/containerd/containerd.sock /var/lib/rancher/k3s /var/lib/rancher/rke2; do [ -e "$p" ] && echo "path $p"; done`,
  `if [ -d /var/log/journal ]; then j=persistent; else j=volatile; fi`,
  // The last Storage= of journald.conf and its drop-ins, read by the shell itself.
  `s=; for f in /etc/systemd/journald.conf /etc/systemd/journald.conf.d/*.conf; do [ -r "$f" ] || continue; while IFS= read -r l || [ -n "$l" ]; do t=\${l#"\${l%%[! \t]*}"}; case $t in Storage=*) s=\${t#Storage=} ;; esac; done < "$f"; done`,
  `echo "journal storage=\${s:-auto} dir=$j"`,
  // The tools next to containerd first (an upstream tarball in /usr/local/bin), then PATH.
  `cd_exe=\${cd_exe:-/usr/bin/containerd}; case $cd_exe in */*) cd_dir=\${cd_exe%/*}; cd_dir=\${cd_dir:-/} ;; *) cd_dir=. ;; esac`,
  `for b in containerd ctr crictl; do p=-; for d in "$cd_dir" /usr/local/bin /usr/bin /usr/local/sbin /usr/sbin /bin; do [ -x "$d/$b" ] && { p="$d/$b"; break; }; done`,
  `  if [ "$p" = - ]; then IFS=:; for d in $PATH; do [ -f "$d/$b" ] && [ -x "$d/$b" ] && { p="$d/$b"; break; }; done; unset IFS; fi; echo "bin $b $p"; done`,
].join('\n');

/** Journal window: lines since the unit last started (to the tenth of a second), at most 30 minutes back, and never before `{{since}}` (after a fix: only what came after it counts). */
function journalScript(unit: string): string {
  // Sub-second: a unit in a restart loop logs its last failure moments before the current start, and that line is history.
  return [
    `now=$(date +%s.%N); read up _ < /proc/uptime`,
    `mono=$({{sudo}}systemctl show -p InactiveExitTimestampMonotonic --value ${unit} 2>&1) || { echo "journal-window=unknown: $mono"; exit 0; }`,
    // In microseconds, by the shell's own arithmetic when every reading is as expected (else by awk, as a process).
    `n0=\${now%.*} ns=\${now#*.} u0=\${up%.*} u1=\${up#*.} m=\${mono:-0} f={{since}}`,
    `case "$now|$up" in *.*"|"*.*) ;; *) ns= ;; esac; case "$n0$u0$u1$m$f" in *[!0-9]*) ns= ;; esac; case $u1 in [0-9][0-9]) ;; *) ns= ;; esac`,
    `case $ns in [0-9][0-9][0-9][0-9][0-9][0-9]*) ns=\${ns%"\${ns#??????}"} ;; *) ns= ;; esac`,
    `if [ -n "$ns" ]; then n=$(( n0 * 1000000 + 1$ns - 1000000 ))`,
    `  s=$(( n - u0 * 1000000 - (1$u1 - 100) * 10000 + m - 50000 )); w=$(( n - 1800000000 ))`,
    `  if [ "$m" -eq 0 ] || [ "$s" -lt "$w" ]; then s=$w; fi; if [ $(( f * 1000000 )) -gt "$s" ]; then s=$(( f * 1000000 )); fi`,
    `  ms=$(( s % 1000000 / 1000 + 1000 )); start="$(( s / 1000000 )).\${ms#1}"`,
    `else start=$(awk -v n="$now" -v u="$up" -v m="$m" -v f="$f" 'BEGIN { m += 0; s = n - u + m / 1000000 - 0.05; w = n - 1800; if (m == 0 || s < w) s = w; if (f > s) s = f; printf "%.3f", s }'); fi`,
    `echo "window-start=\${start%.*} now=\${now%.*}"`,
    `{{sudo}}journalctl -u ${unit} --no-pager -o short-iso -n 300 --since "@$start" 2>&1; echo "journal-exit=$?"`,
  ].join('\n');
}

/**
 * `df` of the runtime, kubelet and log paths, each row labelled with the path
 * asked about: one `df` for all of them, and one per path only when that one
 * did not answer for each (a row can then be matched to its path no other way).
 */
function dfScript(flags: string): string {
  return [
    `set --; for p in {{containerdRoot}} /var/lib/kubelet /var/log /; do [ -e "$p" ] && set -- "$@" "$p"; done`,
    // The shell's own string operations count and label the rows: a process costs more than the whole loop.
    `nl='`,
    `'; c=-1; if out=$(df ${flags} "$@" 2>/dev/null); then c=0; r=$out; while [ "$r" != "\${r#*"$nl"}" ]; do r=\${r#*"$nl"}; c=$((c + 1)); done; fi`,
    `if [ "$c" -eq $# ]; then`,
    `  r=\${out#*"$nl"}; for p in "$@"; do printf '%s: %s\\n' "$p" "\${r%%"$nl"*}"; r=\${r#*"$nl"}; done`,
    `else for p in "$@"; do df ${flags} "$p" 2>&1 | awk -v p="$p" 'NR == 2 { print p ": " $0 }'; done; fi; true`,
  ].join('\n');
}

function serviceScript(unit: string): string {
  return `{{sudo}}systemctl show ${unit} --no-pager -p LoadState -p ActiveState -p SubState -p Result -p MainPID -p NRestarts -p ExecMainStatus`;
}

/** Where a diagnosis keeps the node's last config that loaded (root-only; the config repair's first source). */
export const LAST_GOOD = '/var/lib/nodediag/containerd-config.last-good.toml';

/**
 * containerd's effective config (`containerd config dump`, so keys 2.x
 * ignores in the wrong place do not count): whether it loads, its version,
 * the plugins it disables (the CRI plugin among them?), the default runtime
 * and each runtime's SystemdCgroup. When it loads, keeps the CRI plugin on
 * and containerd is running, the file is kept as the node's last-known-good
 * config (root-only, on the node, never printed): the config repair's first
 * source.
 */
const CONFIG_SCRIPT = [
  `out=$({{sudo}}{{containerd}} --config {{containerdConfig}} config dump 2>&1); rc=$?`,
  `echo "config-dump-exit=$rc path="{{containerdConfig}}`,
  `if [ "$rc" -ne 0 ]; then printf '%s\\n' "$out" | grep -v '^time=' | tail -n 5; printf '%s\\n' "$out" | grep '^time=.*level=error' | tail -n 2; exit 0; fi`,
  `sum=$(printf '%s\\n' "$out" | awk '`,
  `  /^version *=/ { v = $3 }`,
  // Top level (before any section): a Docker-packaged config.toml disables the CRI plugin kubelet needs.
  // Without the CRI plugin there is no default runtime, and so no cgroup driver to compare: unknown, not false.
  `  /^disabled_plugins *=/ && s == "" { x = $0; sub(/^disabled_plugins *= */, "", x); print "disabled-plugins=" x; if (x ~ /[\\042\\047](cri|io\\.containerd\\.grpc\\.v1\\.cri|io\\.containerd\\.cri\\.v1\\.runtime)[\\042\\047]/) cri = "disabled" }`,
  `  /^ *\\[/ { s = $0; gsub(/^ +| +$/, "", s); gsub(/\\047/, "\\042", s) }`,
  `  /^ *default_runtime_name *=/ { d = $3; gsub(/[\\047\\042]/, "", d) }`,
  `  /^ *SystemdCgroup *=/ && s ~ /\\.runtimes\\.[^.]+\\.options\\]$/ { r = s; sub(/^.*\\.runtimes\\./, "", r); sub(/\\.options\\]$/, "", r); gsub(/[\\042]/, "", r); sc[r] = $3; print "runtime " r " SystemdCgroup=" $3 }`,
  `  /^ *(systemd_cgroup|SystemdCgroup|default_runtime_name|config_path) *=/ { x = $0; gsub(/^ +/, "", x); print s " " x }`,
  `  END { print "config-version=" (v == "" ? 1 : v); print "cri-plugin=" (cri == "" ? "enabled" : cri); print "default-runtime=" d; print "effective-systemd-cgroup=" (d == "" ? "unknown" : (d in sc) ? sc[d] : "false") }')`,
  `printf '%s\\n' "$sum"`,
  // A config that keeps kubelet's runtime API off is no config to go back to.
  `case "$sum" in *"cri-plugin=disabled"*) exit 0 ;; esac`,
  `if [ "$({{sudo}}systemctl is-active {{runtimeUnit}} 2>/dev/null)" = active ]; then`,
  `  {{sudo}}cmp -s {{containerdConfig}} ${LAST_GOOD} 2>/dev/null || { {{sudo}}install -d -m 0700 /var/lib/nodediag && {{sudo}}cp {{containerdConfig}} ${LAST_GOOD}.tmp && {{sudo}}mv -f ${LAST_GOOD}.tmp ${LAST_GOOD} && echo "last-good=saved"; }`,
  `fi; true`,
].join('\n');

/**
 * Every containerd shim and what it runs: its PID and start time (so a
 * reused PID is never mistaken for it), namespace and id, whether its bundle
 * still exists (the shim's working directory), whether the containerd it
 * belongs to still knows its task, its age, the container processes under
 * it and whether they hold NVIDIA devices. A shim whose task containerd does
 * not know, or whose bundle is gone, is an orphan: its container runs
 * unmanaged. Each task containerd knows is listed too (the workload guard
 * compares them before and after a fix).
 */
export const SHIMS_SCRIPT = [
  // A fixed handful of processes whatever the number of shims and containers (this runs in every
  // diagnosis, on nodes with a hundred pods): two awk passes, and the shell's builtins between them.
  `set -f; nl='`,
  `'; read up _ < /proc/uptime; up=\${up%.*}`,
  // One pass over the process table (the clock's tick rate first): the shims, each (address,
  // namespace) they serve, and every process under a shim. Only shims that serve containers: not one
  // that exited and waits to be reaped (ps shows "[containerd-shim] <defunct>"), nor the shim binary
  // run for a moment by containerd (2.x asks it \`-info\` at start; \`start\` launches a shim, \`delete\`
  // cleans one up). Listed, a workload guard would see them "end" during a fix. The first four lines
  // sum up what the shell needs; the rest is for the second pass.
  `scan=$({ getconf CLK_TCK 2>/dev/null || echo 100; ps -eo pid=,ppid=,comm=,args= 2>/dev/null; } | awk '`,
  `  NR == 1 { hz = $1; next }`,
  `  { pid[++np] = $1; pp[$1] = $2; l = $0; sub(/^ *[0-9]+ +[0-9]+ +[^ ]+ +/, "", l); line[$1] = substr(l, 1, 60) }`,
  `  $3 ~ /^containerd-shim/ && $4 !~ /^\\[/ && $NF != "start" && $NF != "delete" && index($0, " -namespace ") && ++n <= 200 {`,
  `    ns = id = ad = "-"; for (i = 4; i < NF; i++) { if ($i == "-namespace") ns = $(i + 1); if ($i == "-id") id = $(i + 1); if ($i == "-address") ad = $(i + 1) }`,
  `    shim[$1] = 1; shims = shims " " $1; detail = detail "shim " $1 " " ns " " id " " ad "\\n"`,
  `    if (ns != "-" && ad != "-" && !((ad " " ns) in seen)) { seen[ad " " ns] = 1; pairs = pairs " " ad " " ns } }`,
  `  END { for (j = 1; j <= np; j++) { q = pid[j]; x = pp[q]; while (x != "" && x != 1 && x != 0 && !(x in shim)) x = pp[x]`,
  `      if ((x in shim) && k++ < 2000) { kids = kids " " q; detail = detail "kid " q " " x " " line[q] "\\n" } }`,
  `    printf "hz %s\\nshims%s\\nkids%s\\npairs%s\\n%s", hz, shims, kids, pairs, detail }')`,
  `hz=\${scan%%"$nl"*}; r=\${scan#*"$nl"}; shims=\${r%%"$nl"*}; r=\${r#*"$nl"}; kids=\${r%%"$nl"*}; r=\${r#*"$nl"}; pairs=\${r%%"$nl"*}; detail=\${r#*"$nl"}`,
  `case $hz in "hz "*) hz=\${hz#hz } ;; *) shims=shims ;; esac; shims=\${shims#shims}; kids=\${kids#kids}; pairs=\${pairs#pairs}`,
  `set -- $shims; echo "shims=$#"`,
  `[ -n "$shims" ] || exit 0`,
  `{ echo "@@up $up $hz"`,
  // Start time (jiffies since boot) of each shim, so a reused PID is never mistaken for it.
  `  echo @@starts; for p in $shims; do read -r st < /proc/$p/stat 2>/dev/null || continue; st=\${st##*) }; set -- $st; echo "$p \${20}"; done`,
  `  echo @@scan; printf '%s\\n' "$detail"`,
  // Whether the containerd each shim belongs to still knows its task (its answer goes straight to the second pass).
  `  set -- $pairs; while [ $# -ge 2 ]; do ad=$1 ns=$2; shift 2; echo "@@ctr $ad $ns"`,
  `    {{sudo}}{{ctr}} --address "$ad" --connect-timeout 2s --timeout 3s -n "$ns" tasks ls 2>&1; rc=$?; echo; echo "@@ctr-rc $rc"; done`,
  // Each shim's working directory is its bundle: gone (" (deleted)") when containerd lost the task.
  `  echo @@cwd; set --; for p in $shims; do set -- "$@" "/proc/$p/cwd"; done; {{sudo}}ls -l "$@" 2>/dev/null`,
  // Which container processes hold NVIDIA devices.
  `  echo @@fd; set --; for k in $kids; do set -- "$@" "/proc/$k/fd"; done; [ $# -gt 0 ] && {{sudo}}ls -l "$@" 2>/dev/null`,
  `} | awk '`,
  `  $1 == "@@up" { up = $2; hz = $3; next }`,
  `  $1 == "@@ctr" && NF == 3 { sec = "@@ctr"; cad = $2; cns = $3; nt = 0; last = ""; next }`,
  `  sec == "@@ctr" && /^@@ctr-rc [0-9]+$/ { if ($2 == 0) { for (i = 2; i <= nt; i++) { split(tl[i], f, " "); if (f[3] != "") { known[cad " " cns " " f[1]] = 1; printf "task %s %s %s %s %s\\n", cad, cns, f[1], f[2], f[3] } }; listed[cad " " cns] = 1; print "listed " cad " " cns }`,
  `    else print "unlisted " cad " " cns " " substr(last, 1, 160); sec = ""; next }`,
  `  sec == "@@ctr" { if ($0 != "") { tl[++nt] = $0; last = $0 }; next }`,
  `  /^@@(starts|scan|cwd|fd)$/ { sec = $1; next }`,
  `  sec == "@@starts" && NF == 2 { start[$1] = $2; order[++n] = $1; next }`,
  `  sec == "@@scan" && $1 == "shim" { ns[$2] = $3; id[$2] = $4; ad[$2] = $5; next }`,
  `  sec == "@@scan" && $1 == "kid" { l = $0; sub(/^kid [0-9]+ [0-9]+ /, "", l); kid[$3] = kid[$3] " " $2; line[$2] = l; next }`,
  `  sec == "@@cwd" { for (i = 1; i <= NF; i++) if ($i ~ /^\\/proc\\/[0-9]+\\/cwd$/) { split($i, a, "/"); bundle[a[3]] = ($0 ~ / \\(deleted\\)$/) ? "deleted" : "present" }; next }`,
  `  sec == "@@fd" && /^\\/proc\\/[0-9]+\\/fd:$/ { split($0, a, "/"); k = a[3]; next }`,
  `  sec == "@@fd" && / -> \\/dev\\/nvidia/ && k != "" { gpu[k] = 1; k = ""; next }`,
  `  END {`,
  `    for (i = 1; i <= n; i++) {`,
  `      p = order[i]; if (!(p in ns)) continue; kids = ""; g = "no"`,
  `      m = split(kid[p], qs, " "); for (j = 1; j <= m; j++) { kids = kids qs[j] ":" line[qs[j]] ";"; if (qs[j] in gpu) g = "yes" }`,
  `      t = (ad[p] " " ns[p]) in listed ? (((ad[p] " " ns[p] " " id[p]) in known) ? "known" : "unknown") : "unchecked"`,
  `      printf "shim %s@%s ns=%s id=%s age=%d bundle=%s task=%s gpu=%s procs=%s\\n", p, start[p], ns[p], id[p], up - start[p] / hz, (p in bundle) ? bundle[p] : "unknown", t, g, substr(kids, 1, 300)`,
  `    }`,
  `  }'`,
].join('\n');

export const probeCatalogData: unknown = [
  {
    id: 'node-layout',
    title: 'where the runtime, its config and kubelet\'s config are (units, command lines, CRI endpoint)',
    transport: 'ssh',
    stage: 'layout',
    script: LAYOUT_SCRIPT,
    timeoutMs: 5000,
    // The units were read (see LAYOUT_SCRIPT) and the script ran to its end.
    ranIf: '^unit [\\s\\S]*^bin containerd ',
  },
  {
    id: 'containerd-service',
    title: 'containerd service state (systemctl show containerd, or the unit that runs it: k3s, rke2)',
    transport: 'ssh',
    script: serviceScript('{{runtimeUnit}}'),
    timeoutMs: 5000,
    ranIf: '^ActiveState=',
  },
  {
    id: 'containerd-journal',
    title: 'containerd journal since its last start (journalctl -u containerd, or the unit that runs it)',
    transport: 'ssh',
    script: journalScript('{{runtimeUnit}}'),
    timeoutMs: 8000,
    ranIf: '^journal-exit=0$',
    parser: 'journal',
  },
  {
    id: 'runtime-socket',
    title: 'runtime socket file type (stat of the CRI socket path)',
    transport: 'ssh',
    script: [
      `p={{socket}}`,
      `if [ -S "$p" ]; then echo "type=socket path=$p"`,
      `elif [ -d "$p" ]; then echo "type=directory path=$p entries=$(ls -A "$p" 2>/dev/null | wc -l)"`,
      `elif [ -e "$p" ]; then echo "type=other path=$p"`,
      `else echo "type=missing path=$p"; fi`,
      `ls -ld "$p" 2>&1 || true`,
    ].join('\n'),
    timeoutMs: 4000,
    ranIf: '^type=',
  },
  {
    id: 'runtime-ping',
    title: 'runtime answers on its socket (crictl version, else ctr version; bounded)',
    transport: 'ssh',
    script: [
      // Without a socket there is nothing to dial: gRPC would retry until its deadline.
      `if [ ! -S {{socket}} ]; then echo no socket at {{socket}}; echo "runtime-ping-exit=1"; exit 0; fi`,
      `if [ {{crictl}} != - ]; then {{sudo}}{{crictl}} --runtime-endpoint unix://{{socket}} --timeout 4s version 2>&1`,
      `else {{sudo}}{{ctr}} --address {{socket}} --connect-timeout 3s --timeout 4s version 2>&1; fi`,
      `echo "runtime-ping-exit=$?"`,
    ].join('\n'),
    timeoutMs: 6000,
    ranIf: '^runtime-ping-exit=',
  },
  {
    id: 'containerd-config',
    title: 'containerd effective config (containerd config dump): validity, default runtime and SystemdCgroup',
    transport: 'ssh',
    script: CONFIG_SCRIPT,
    timeoutMs: 6000,
    ranIf: '^config-dump-exit=',
  },
  {
    id: 'containerd-shims',
    title: 'containerd shims: their tasks, bundles, container processes and GPU devices',
    transport: 'ssh',
    script: SHIMS_SCRIPT,
    timeoutMs: 10000,
    ranIf: '^shims=',
  },
  {
    id: 'kubelet-service',
    title: 'kubelet service state (systemctl show kubelet)',
    transport: 'ssh',
    script: serviceScript('kubelet'),
    timeoutMs: 5000,
    ranIf: '^ActiveState=',
  },
  {
    id: 'kubelet-journal',
    title: 'kubelet journal since its last start (journalctl -u kubelet)',
    transport: 'ssh',
    script: journalScript('kubelet'),
    timeoutMs: 8000,
    ranIf: '^journal-exit=0$',
    parser: 'journal',
  },
  {
    id: 'kubelet-config',
    title: "kubelet's config file, the one its --config names (cgroupDriver, failSwapOn, containerRuntimeEndpoint)",
    transport: 'ssh',
    script: [
      `k={{kubeletConfig}}`,
      `if [ "$k" = - ]; then echo "kubelet-config=none (kubelet runs without --config)"; exit 0; fi`,
      `if c=$({{sudo}}cat {{kubeletConfig}} 2>&1); then echo "kubelet-config=present path=$k"`,
      `printf '%s\\n' "$c" | grep -E '^[[:space:]]*(cgroupDriver|failSwapOn|containerRuntimeEndpoint):' || true`,
      `else echo "kubelet-config=unreadable path=$k"; printf '%s\\n' "$c" | head -n 2; fi`,
    ].join('\n'),
    timeoutMs: 4000,
    ranIf: '^kubelet-config=',
  },
  {
    id: 'disk-space',
    title: 'disk usage of the runtime, kubelet and log paths (df -P)',
    transport: 'ssh',
    script: dfScript('-P'),
    timeoutMs: 5000,
    ranIf: '^/: ',
  },
  {
    id: 'disk-inodes',
    title: 'inode usage of the runtime, kubelet and log paths (df -Pi)',
    transport: 'ssh',
    script: dfScript('-Pi'),
    timeoutMs: 5000,
    ranIf: '^/: ',
  },
  {
    id: 'swap',
    title: 'swap devices (/proc/swaps)',
    transport: 'ssh',
    script: [
      `while IFS= read -r l; do printf '%s\\n' "$l"; done < /proc/swaps`,
      `t=; while read -r k v _; do [ "$k" = SwapTotal: ] && { t=$v; break; }; done < /proc/meminfo; echo "swap-total-kb=$t"`,
    ].join('\n'),
    timeoutMs: 3000,
    ranIf: '^swap-total-kb=[0-9]+$',
  },
  {
    id: 'bridge-netfilter',
    title: 'br_netfilter and the bridge/forwarding sysctls',
    transport: 'ssh',
    script: [
      `if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then echo "br_netfilter=available"`,
      `v=; read -r v < /proc/sys/net/bridge/bridge-nf-call-iptables; echo "net.bridge.bridge-nf-call-iptables=$v"`,
      `else echo "br_netfilter=missing (no /proc/sys/net/bridge)"; fi`,
      `v=; read -r v < /proc/sys/net/ipv4/ip_forward; echo "net.ipv4.ip_forward=$v"`,
    ].join('\n'),
    timeoutMs: 3000,
    ranIf: '^net\\.ipv4\\.ip_forward=[01]$',
  },
  {
    id: 'cni-config',
    title: 'CNI network config present (/etc/cni/net.d)',
    transport: 'ssh',
    script: [
      `d=/etc/cni/net.d`,
      // Regular files only (as find -type f), dot-files too (libcni reads them).
      `if [ -d "$d" ]; then n=0; for f in "$d"/*.conf "$d"/*.conflist "$d"/*.json "$d"/.*.conf "$d"/.*.conflist "$d"/.*.json; do [ -f "$f" ] && [ ! -h "$f" ] && n=$((n + 1)); done`,
      `echo "cni-config-files=$n dir=$d"; i=0; for f in "$d"/*; do [ -e "$f" ] || [ -h "$f" ] || continue; i=$((i + 1)); [ $i -le 10 ] && printf '%s\\n' "\${f##*/}"; done`,
      `else echo "cni-config-files=0 dir=$d (missing)"; fi; true`,
    ].join('\n'),
    timeoutMs: 3000,
    ranIf: '^cni-config-files=',
  },
  {
    id: 'time-sync',
    title: "node clock against the bot's clock, and NTP synchronisation",
    transport: 'ssh',
    // With the layout probe: a short round trip, so the measured skew is not blurred by slow probes.
    stage: 'layout',
    script: `echo "node-epoch-ms=$(date +%s%3N)"; timedatectl show -p NTPSynchronized -p NTP 2>&1; true`,
    timeoutMs: 4000,
    ranIf: '^node-epoch-ms=[0-9]+$',
    parser: 'clock',
  },
  {
    id: 'kubelet-cert',
    title: 'kubelet client certificate expiry',
    transport: 'ssh',
    script: [
      `out=$({{sudo}}openssl x509 -in /var/lib/kubelet/pki/kubelet-client-current.pem -noout -enddate -checkend 0 2>&1)`,
      `nl='`,
      `'; first=\${out%%"$nl"*}; rest=\${out#"$first"}; rest=\${rest#"$nl"}`,
      `case "$nl$out" in *"$nl"notAfter=*) printf '%s\\n' "$first"; [ -z "$rest" ] || printf '%s\\n' "\${rest%%"$nl"*}" ;;`,
      `*) echo "kubelet-client-cert=unreadable path=/var/lib/kubelet/pki/kubelet-client-current.pem: $first" ;; esac`,
    ].join('\n'),
    timeoutMs: 4000,
    ranIf: '^(notAfter=|kubelet-client-cert=)',
  },
  {
    id: 'security-denials',
    title: 'AppArmor / SELinux denials in the kernel log (last hour)',
    transport: 'ssh',
    // journalctl -g exits 1 when nothing matches: only its "-- No entries --" says it looked.
    script: [
      `out=$({{sudo}}journalctl -k --no-pager -o short-iso -n 20 --since -1h -g 'apparmor="DENIED"|avc: +denied' 2>&1); rc=$?`,
      // Nothing matched is journalctl's one line "-- No entries --" (the shell's own tests: no process per check).
      `if [ "$out" = '-- No entries --' ]; then echo "kernel-log=read"`,
      `elif [ "$rc" -eq 0 ] || printf '%s\\n' "$out" | grep -qx -- '-- No entries --'; then echo "kernel-log=read"; printf '%s\\n' "$out" | grep -vx -- '-- No entries --'`,
      `else echo "kernel-log=unreadable exit=$rc"; printf '%s\\n' "$out" | head -n 2; fi; true`,
    ].join('\n'),
    ranIf: '^kernel-log=read$',
    timeoutMs: 5000,
  },
  { id: 'k8s-node', title: 'Kubernetes Node: conditions, taints, addresses', transport: 'kube', resource: 'node' },
  {
    id: 'k8s-pods',
    title: 'Kubernetes pods on the node: state, restarts, runtime-socket hostPaths',
    transport: 'kube',
    resource: 'pods',
  },
  { id: 'k8s-events', title: 'Kubernetes events for the node and its pods', transport: 'kube', resource: 'events' },
];
