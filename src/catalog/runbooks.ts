/**
 * The runbook catalog: the documented fix sequences, step by step, with the
 * seeds' mistakes corrected. Data only; validated by `loadCatalogs()`. A
 * runbook has the id of the finding it fixes (one name per scenario).
 *
 * Script parameters (every value is shell-quoted): `{{sudo}}` (see
 * probes.ts); the node's layout — `{{socket}}`, `{{containerd}}`,
 * `{{ctr}}`, `{{crictl}}`, `{{containerdConfig}}`, `{{containerdState}}`,
 * `{{containerdRoot}}`, `{{kubeletConfig}}` (probes/layout.ts); `{{stamp}}`
 * (UTC time of the approval, for backup names: a new backup never
 * overwrites an older one); and the runbook's own parameters, taken from the
 * finding or from the preview the approver saw (`{{shim}}` in a
 * `forEach: shim` step, `{{candidateSha}}`).
 *
 * Conventions: a check passes when its script exits with `exitCode` (default
 * 0) and, if `stdout` is given, some output line matches it. A step's
 * `requires` is checked before the first step changes anything (preflight)
 * and again just before the step. Every runbook on a containerd node guards
 * the workloads: the containers running before must run after, under
 * containerd, with the same PIDs.
 */
import { LAST_GOOD, SHIMS_SCRIPT } from './probes.js';

/** The runtime answers on the CRI socket. */
const RUNTIME_ANSWERS = `[ -S {{socket}} ] && {{sudo}}{{ctr}} --address {{socket}} --connect-timeout 3s --timeout 4s version >/dev/null 2>&1 && echo runtime-ok; true`;

/** Runbooks that drive a standalone containerd (systemd unit, /etc/containerd) apply only there: not on k3s, RKE2 or CRI-O. */
const STANDALONE_CONTAINERD = { check: 'node-layout', line: '^flavour=containerd$' };

/**
 * Scripts the executor runs around every runbook: the workload guard's
 * snapshot of every shim and task before a fix, its cheap check after each
 * step that each shim is still the same process (PID and start time), and the
 * node's clock when the run ends (fresh evidence starts there). Listed here
 * so that the sudoers file and the simulated node know them too.
 */
export const supportScriptData = {
  clock: 'date +%s%3N',
  /** Which machine this is, to hold against the Node's status.nodeInfo (machineID, systemUUID). */
  identity: `echo "machine-id=$(cat /etc/machine-id 2>/dev/null)"; echo "system-uuid=$({{sudo}}cat /sys/class/dmi/id/product_uuid 2>/dev/null)"; true`,
  snapshot: SHIMS_SCRIPT,
  alive: [
    `for s in $(printf '%s' {{shims}}); do p=\${s%@*}; want=\${s#*@}`,
    `  st=$(cat /proc/$p/stat 2>/dev/null) || { echo "gone $s"; continue; }`,
    `  st=\${st##*) }; set -- $st; [ "\${20}" = "$want" ] && echo "alive $s" || echo "gone $s"`,
    `done; true`,
  ].join('\n'),
};

const stopContainerd = {
  id: 'stop-containerd',
  title: 'Stop containerd (the containers keep running in their shims)',
  why: 'Nothing may hold or recreate the socket path while it is repaired. containerd.service uses KillMode=process: the shims and their containers keep running.',
  action: { kind: 'ssh', script: '{{sudo}}systemctl stop containerd', timeoutMs: 120_000 },
  verify: { kind: 'ssh', script: '{{sudo}}systemctl is-active containerd; true', stdout: '^(inactive|failed)$', withinMs: 10_000 },
  retrySafe: true,
};

const startContainerd = {
  id: 'start-containerd',
  title: 'Start containerd and check the runtime answers',
  why: 'containerd must create a real socket and answer on it before kubelet can use it; it reconnects to the running shims. After a restart storm systemd refuses new starts until the unit is reset. A containerd that runs with its socket deleted under it creates it again only when it restarts (its containers keep running).',
  action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed containerd; {{sudo}}systemctl start containerd && { [ -S {{socket}} ] || {{sudo}}systemctl restart containerd; }', timeoutMs: 90_000 },
  verify: { kind: 'ssh', script: RUNTIME_ANSWERS, stdout: '^runtime-ok$', withinMs: 30_000 },
  retrySafe: true,
};

const NO_KUBELET_UNIT = { script: '{{sudo}}systemctl show -p LoadState --value kubelet; true', stdout: '^not-found$' };

const restartKubelet = {
  id: 'restart-kubelet',
  title: 'Restart kubelet and wait for the node to be Ready',
  why: 'kubelet reconnects to the runtime and reports the node Ready again (the seed misspelt it "kubulet"). Running containers are not touched by a kubelet restart.',
  skipIf: NO_KUBELET_UNIT,
  action: { kind: 'ssh', script: '{{sudo}}systemctl restart kubelet', timeoutMs: 90_000 },
  verify: { kind: 'kube', check: 'node-ready', withinMs: 120_000 },
  retrySafe: true,
};

function backupStep(id: string, path: string) {
  return {
    id,
    title: `Back up ${path} to a new timestamped file`,
    why: 'A way back. The backup name carries the approval time and the step refuses to overwrite an existing file.',
    skipIf: { script: `[ ! -e ${path} ]` },
    requires: {
      script: `[ ! -e ${path}.bak-{{stamp}} ]`,
      refusal: `a backup named ${path}.bak-{{stamp}} already exists; refusing to overwrite it`,
    },
    action: { kind: 'ssh', script: `{{sudo}}cp -p ${path} ${path}.bak-{{stamp}}`, timeoutMs: 15_000 },
    verify: { kind: 'ssh', script: `{{sudo}}cmp ${path} ${path}.bak-{{stamp}}` },
    retrySafe: true,
  };
}

/**
 * Builds, in a private temporary directory, the config that replaces a
 * broken config.toml — repair, not reset. Sources, best first: the node's
 * last-known-good config (kept by diagnoses while containerd ran); the newest
 * backup that loads; the broken file with the sections containerd's own
 * parser rejects dropped one by one; `containerd config default` with the old
 * file's top level and sections carried over (same config version only). A
 * candidate counts only if the node's own containerd loads it, keeps root and
 * state where they are (the old file's, else the defaults: a containerd on
 * another root has none of the running containers' metadata and removes their
 * tasks) and keeps the default runtime the old file named, with that
 * runtime's binary and cgroup driver (a GPU node keeps nvidia). Prints the
 * source, the candidate's SHA-256 and the diff, credentials masked. Leaves
 * the candidate in "$work/cand".
 */
const BUILD_CANDIDATE = [
  `set -u`,
  `work=$(mktemp -d 2>/dev/null || mktemp -d -p /dev/shm) || { echo "error: no temporary directory"; exit 1; }`,
  `trap 'rm -rf "$work"' EXIT`,
  `umask 077`,
  `{{sudo}}cat {{containerdConfig}} > "$work/old" 2>/dev/null || : > "$work/old"`,
  `qs="[\\"']"`,
  `rt_of() { sed -n "s/^[[:space:]]*default_runtime_name[[:space:]]*=[[:space:]]*$qs\\([^\\"']*\\)$qs.*/\\1/p" "$1"; }`,
  `opts() { awk -v rt="$want" '/^[[:space:]]*\\[/ { h = $0; gsub(/[[:space:]\\047\\042]/, "", h); s = (h ~ ("\\\\.runtimes\\\\." rt "\\\\.options\\\\]$")) } s && /^[[:space:]]*(BinaryName|SystemdCgroup)[[:space:]]*=/ { l = $0; gsub(/[[:space:]\\047\\042]/, "", l); if (l ~ /^[A-Za-z]+=[^=]*$/) print l }' "$1" | sort -u; }`,
  `want=$(rt_of "$work/old" | tail -n 1)`,
  `keep=""; [ -n "$want" ] && keep=$(opts "$work/old")`,
  `ver=$(sed -n 's/^[[:space:]]*version[[:space:]]*=[[:space:]]*\\([0-9]*\\).*/\\1/p' "$work/old" | head -n 1)`,
  // A top-level key (before the first table), unquoted.
  `top() { awk -v k="$2" '/^[[:space:]]*\\[/ { exit } { l = $0; sub(/^[[:space:]]+/, "", l) } index(l, k) == 1 && substr(l, length(k) + 1) ~ /^[[:space:]]*=/ { sub(/^[^=]*=[[:space:]]*/, "", l); sub(/[[:space:]]+#.*$/, "", l); sub(/[[:space:]]+$/, "", l); gsub(/^[\\042\\047]|[\\042\\047]$/, "", l); print l; exit }' "$1"; }`,
  `{{sudo}}{{containerd}} config default > "$work/default" 2>/dev/null || : > "$work/default"`,
  // Where the running containers' metadata (root) and tasks (state) are: a containerd started elsewhere
  // has none of them and removes their tasks. Read from the files' own text (unset: the default), not from
  // containerd's dump, which adds the drop-ins the file imports: they stay the same whichever file is installed.
  `eff() { v=$(top "$1" "$2"); [ -n "$v" ] || v=$(top "$work/default" "$2"); printf '%s' "$v"; }`,
  `want_root=$(eff "$work/old" root); want_state=$(eff "$work/old" state)`,
  // The file containerd names in its error (2.x: file=… row=…; 1.x: failed to load TOML: <file>: (row, column)).
  `errfile() { sed -n -e 's/.* file=\\([^ ]*\\) row=.*/\\1/p' -e 's/.*failed to load TOML: \\(.*\\): ([0-9][0-9]*, [0-9][0-9]*).*/\\1/p' "$1" | head -n 1; }`,
  // A broken file that config.toml imports (a conf.d drop-in) is not repaired by editing config.toml:
  // its error rows are that file's, and dropping config.toml's lines at them would lose root, state or imports.
  `if ! {{sudo}}{{containerd}} --config {{containerdConfig}} config dump > /dev/null 2> "$work/err"; then`,
  `  f=$(errfile "$work/err"); [ -z "$f" ] || [ "$f" = {{containerdConfig}} ] || { echo "error: containerd fails on $f, a file config.toml imports, not on config.toml itself: fix or move that file (nodediag repairs only config.toml): $(tr '\\n' ' ' < "$work/err" | cut -c1-300)"; exit 1; }`,
  `fi`,
  // The files a config imports (nvidia-ctk's conf.d drop-in) override it: where they set the default runtime,
  // containerd runs that one whatever config.toml names, with the old file as with the candidate. So a candidate
  // whose own text keeps the old default, and whose imports alone give what containerd reports, keeps it too.
  `by_imports() {`,
  `  [ "$(rt_of "$1" | tail -n 1)" = "$want" ] || return 1`,
  `  awk '/^[[:space:]]*\\[/ { exit } /^[[:space:]]*(version|imports)[[:space:]]*=/' "$1" > "$work/imports-only.toml"`,
  `  alone=$({{sudo}}{{containerd}} --config "$work/imports-only.toml" config dump 2>/dev/null | rt_of - | head -n 1)`,
  `  [ -n "$alone" ] && [ "$alone" = "$2" ] && [ "$alone" != "$(rt_of "$work/default" | head -n 1)" ]`,
  `}`,
  `valid() {`,
  `  {{sudo}}{{containerd}} --config "$1" config dump > "$work/dump" 2> "$work/err" || return 1`,
  `  g=$(eff "$1" root); [ "$g" = "$want_root" ] || { echo "containerd's root would be \\"$g\\", not \\"$want_root\\" where the running containers' metadata is" > "$work/err"; return 1; }`,
  `  g=$(eff "$1" state); [ "$g" = "$want_state" ] || { echo "containerd's state would be \\"$g\\", not \\"$want_state\\" where the running containers' tasks are" > "$work/err"; return 1; }`,
  `  [ -n "$want" ] || return 0`,
  `  got=$(rt_of "$work/dump" | head -n 1)`,
  `  from="$work/dump"`,
  // Where the imports decide, 1.x also replaces config.toml's whole CRI section with theirs: the options it
  // keeps for the old default are compared in the text, which the old file and the candidate share the fate of.
  `  if [ "$got" != "$want" ]; then by_imports "$1" "$got" || { echo "the default runtime would be \\"$got\\", not \\"$want\\"" > "$work/err"; return 1; }; from=$1; fi`,
  `  have=$(opts "$from")`,
  `  lost=$(printf '%s\\n' "$keep" | while read -r k; do [ -z "$k" ] || printf '%s\\n' "$have" | grep -qxF "$k" || printf '%s ' "$k"; done)`,
  `  [ -z "$lost" ] || { echo "the default runtime \\"$want\\" would lose: $lost" > "$work/err"; return 1; }`,
  `}`,
  `repair() {`,
  `  n=0; dropped=""`,
  `  while [ $n -lt 12 ]; do`,
  `    valid "$work/cand" && { echo "$dropped"; return 0; }`,
  `    row=$(sed -n -e 's/.*failed to unmarshal TOML at row \\([0-9][0-9]*\\).*/\\1/p' -e 's/.*failed to load TOML: .*: (\\([0-9][0-9]*\\), [0-9][0-9]*).*/\\1/p' -e 's/.*failed to unmarshal TOML: (\\([0-9][0-9]*\\), [0-9][0-9]*).*/\\1/p' "$work/err" | head -n 1)`,
  `    [ -n "$row" ] || return 1`,
  `    f=$(errfile "$work/err"); [ -z "$f" ] || [ "$f" = "$work/cand" ] || return 1`,
  `    hdr=$(awk -v r="$row" 'NR <= r && /^[[:space:]]*\\[/ { h = $0 } END { gsub(/^[[:space:]]+|[[:space:]]+$/, "", h); print (h == "" ? "line " r : h) }' "$work/cand")`,
  `    awk -v r="$row" '{ l[NR] = $0; if ($0 ~ /^[[:space:]]*\\[/) hd[NR] = 1 } END { s = 0; for (i = 1; i <= r; i++) if (hd[i]) s = i; e = NR + 1; for (i = r + 1; i <= NR; i++) if (hd[i]) { e = i; break }; if (s == 0) { s = r; e = r + 1 }; for (i = 1; i <= NR; i++) if (i < s || i >= e) print l[i] }' "$work/cand" > "$work/next" && mv "$work/next" "$work/cand"`,
  `    dropped="$dropped $hdr;"; n=$((n + 1))`,
  `  done`,
  `  return 1`,
  `}`,
  `src=""`,
  `if {{sudo}}cat ${LAST_GOOD} > "$work/cand" 2>/dev/null && [ -s "$work/cand" ] && ! cmp -s "$work/cand" "$work/old" && valid "$work/cand"; then src="last-good ${LAST_GOOD}"; fi`,
  `if [ -z "$src" ]; then`,
  `  for b in $(ls -1t {{containerdConfig}}.bak* {{containerdConfig}}.orig {{containerdConfig}}.backup 2>/dev/null | head -n 10); do`,
  `    {{sudo}}cat "$b" > "$work/cand" 2>/dev/null && ! cmp -s "$work/cand" "$work/old" && valid "$work/cand" && { src="backup $b"; break; }`,
  `  done`,
  `fi`,
  `if [ -z "$src" ]; then cp "$work/old" "$work/cand"; if d=$(repair); then src="repaired (dropped:$d)"; fi; fi`,
  `if [ -z "$src" ] && [ -n "$ver" ]; then`,
  `  if [ "$(sed -n 's/^version[[:space:]]*=[[:space:]]*\\([0-9]*\\).*/\\1/p' "$work/default" | head -n 1)" = "$ver" ]; then`,
  `    awk 'function key(h) { gsub(/[[:space:]]/, "", h); gsub(/\\047/, "\\042", h); return h }`,
  `      FNR == 1 { f++; cur = "" }`,
  `      /^[[:space:]]*\\[/ { k = key($0); if (!(k in head)) order[++n] = k; cur = k; head[k] = $0; if (f == 2) { body[k] = ""; old[k] = 1 } else if (!(k in body)) body[k] = ""; next }`,
  `      cur == "" { if (f == 2) pre = pre $0 "\\n"; next }`,
  `      f == 1 && old[cur] { next }`,
  `      { body[cur] = body[cur] $0 "\\n" }`,
  `      END { printf "%s", pre; for (i = 1; i <= n; i++) printf "%s\\n%s", head[order[i]], body[order[i]] }' "$work/default" "$work/old" > "$work/cand"`,
  `    if d=$(repair); then src="default with the old top level and sections carried over (dropped:$d)"; fi`,
  `  fi`,
  `fi`,
  `[ -n "$src" ] || { echo "error: no candidate config loads and keeps what the old one had: $(tr '\\n' ' ' < "$work/err" | cut -c1-300)"; exit 1; }`,
  `sha=$(sha256sum "$work/cand" | cut -d' ' -f1)`,
].join('\n');

/** The config-repair preview: what will be written and why, credentials masked. */
const PREVIEW_CANDIDATE = [
  BUILD_CANDIDATE,
  `echo "source=$src"`,
  `echo "default-runtime=\${want:-(not set)}"`,
  `in_effect=$({{sudo}}{{containerd}} --config "$work/cand" config dump 2>/dev/null | rt_of - | head -n 1)`,
  `[ -z "$want" ] || [ -z "$in_effect" ] || [ "$in_effect" = "$want" ] || echo "default-runtime-in-effect=$in_effect (set by a file config.toml imports, as before)"`,
  `echo "candidate-sha256=$sha"`,
  `diff -u "$work/old" "$work/cand" | sed 1,2d | awk '{ l = tolower($0) } l ~ /^[-+ ].*(password|passwd|auth|token|secret|identitytoken)[^=]*=/ { sub(/=.*/, "= \\"[MASKED]\\"") } { print }' | head -n 120`,
].join('\n');

/** Rebuilds the candidate, refuses unless it is byte for byte the one approved, and installs it atomically. */
const INSTALL_CANDIDATE = [
  BUILD_CANDIDATE,
  `[ "$sha" = {{candidateSha}} ] || { echo "refused: the config built now (sha256 $sha, from $src) is not the one approved ({{candidateSha}}): the node changed since the approval"; exit 3; }`,
  `mode=$(stat -c %a {{containerdConfig}} 2>/dev/null || echo 600)`,
  `{{sudo}}install -m "$mode" "$work/cand" {{containerdConfig}}.nodediag-new && {{sudo}}mv -f {{containerdConfig}}.nodediag-new {{containerdConfig}} && echo "installed config from $src"`,
].join('\n');

/** The effective SystemdCgroup of containerd's default runtime (what kubelet's driver must match), with `config` as its config. */
const systemdCgroupWith = (config: string) => [
  `{{sudo}}{{containerd}} --config ${config} config dump 2>/dev/null | awk '`,
  `  /^ *\\[/ { s = $0; gsub(/[ \\047\\042]/, "", s) }`,
  `  /^ *default_runtime_name *=/ { d = $3; gsub(/[\\047\\042]/, "", d) }`,
  `  /^ *SystemdCgroup *=/ { sc[s] = $3 }`,
  `  END { for (k in sc) if (k ~ ("\\\\.runtimes\\\\." d "\\\\.options\\\\]$")) v = sc[k]; print "default-runtime-systemd-cgroup=" (v == "" ? "false" : v) }'`,
].join('\n');
const DEFAULT_RUNTIME_SYSTEMD_CGROUP = systemdCgroupWith('{{containerdConfig}}');

/**
 * Whether the edit the cgroup fix makes to config.toml would make the default runtime use the systemd driver:
 * not where a file config.toml imports sets it (nvidia-ctk's conf.d drop-in overrides config.toml), nor where
 * config.toml has no `SystemdCgroup = false` to change. Checked on a copy, before the node is cordoned.
 */
const EDIT_GIVES_SYSTEMD_CGROUP = [
  `t=$(mktemp) || exit 1; trap 'rm -f "$t"' EXIT`,
  `{{sudo}}cat {{containerdConfig}} | sed 's/SystemdCgroup = false/SystemdCgroup = true/' > "$t" || exit 1`,
  `${systemdCgroupWith('"$t"')} | grep -qx 'default-runtime-systemd-cgroup=true'`,
].join('\n');

export const runbookCatalogData: unknown = [
  {
    id: 'containerd-socket-is-directory',
    title: 'Replace the directory at the containerd socket path with a live socket',
    finding: 'containerd-socket-is-directory',
    impact:
      'Stops containerd for a few seconds (running containers keep running in their shims and containerd reconnects to them), restarts kubelet, and deletes the crash-looping pods the diagnosis named (only those incarnations) so their controllers recreate them. Config files are not touched.',
    appliesWhen: STANDALONE_CONTAINERD,
    params: {
      pods: { finding: 'pod-crashloop', from: 'podRef', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?@[0-9a-f-]{36}$', min: 0, max: 50 },
    },
    steps: [
      {
        id: 'check-socket-directory-empty',
        title: 'Check the directory at the socket path is empty',
        why: 'The seed used `rm -rf`; only an empty directory is removed. If it holds files, the whole plan is refused before anything is stopped.',
        skipIf: { script: '[ ! -d {{socket}} ]' },
        requires: {
          script: '[ -d {{socket}} ] && [ -z "$({{sudo}}ls -A {{socket}})" ]',
          refusal: 'the socket path is a directory that holds files; refusing to delete it — inspect it by hand',
        },
        verify: { kind: 'ssh', script: '[ ! -d {{socket}} ] || [ -z "$({{sudo}}ls -A {{socket}})" ]' },
        retrySafe: true,
      },
      stopContainerd,
      {
        id: 'remove-socket-directory',
        title: 'Remove the directory at the socket path (only while it is an empty directory)',
        why: '`rmdir` removes only an empty directory; the emptiness is checked again just before.',
        skipIf: { script: '[ ! -d {{socket}} ]' },
        requires: {
          script: '[ -d {{socket}} ] && [ -z "$({{sudo}}ls -A {{socket}})" ]',
          refusal: 'the socket path is a directory that holds files; refusing to delete it — inspect it by hand',
        },
        action: { kind: 'ssh', script: '{{sudo}}rmdir {{socket}}', timeoutMs: 10_000 },
        verify: { kind: 'ssh', script: '[ ! -d {{socket}} ]' },
        retrySafe: true,
      },
      startContainerd,
      restartKubelet,
      {
        id: 'delete-crashloop-pods',
        title: 'Delete the crash-looping pods the diagnosis named, so their controllers recreate them',
        why: 'Pods that crash-looped while the runtime was broken stay in back-off; fresh pods start at once. Only the pods named in the plan are deleted, each only if it is still the same pod (UID precondition); pods without a controller are left alone.',
        action: { kind: 'kube', op: 'delete-pods' },
        verify: { kind: 'kube', check: 'pods-recreated', withinMs: 120_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 000 §6.1–6.2; rm -rf replaced by a preflight emptiness check and rmdir, kubulet corrected, socket and runtime verified, only the named pods deleted',
  },
  {
    id: 'containerd-hung',
    title: 'Restart the hung containerd (config untouched)',
    finding: 'containerd-hung',
    impact:
      'Kills the hung containerd main process and starts a new one; the shims and their containers keep running and containerd reconnects to them. Config files are not touched (seed case B).',
    appliesWhen: STANDALONE_CONTAINERD,
    steps: [
      {
        id: 'kill-hung-containerd',
        title: 'Kill the hung containerd main process (SIGKILL, main process only)',
        why: 'A hung daemon does not act on SIGTERM, so `systemctl restart` would wait TimeoutStopSec (90 s by default) first. Only the main process is killed: shims and containers survive.',
        skipIf: { script: '{{sudo}}systemctl is-active containerd; true', stdout: '^(inactive|failed)$' },
        action: { kind: 'ssh', script: '{{sudo}}systemctl kill --kill-who=main --signal=SIGKILL containerd', timeoutMs: 15_000 },
        retrySafe: true,
      },
      startContainerd,
    ],
    source: 'seed 000 case B (restart only, do not touch config)',
  },
  {
    id: 'containerd-config-invalid',
    title: 'Repair containerd config.toml (keep what the node had) and start containerd',
    finding: 'containerd-config-invalid',
    impact:
      'Replaces /etc/containerd/config.toml with the candidate shown below — the last config that loaded on this node, else the newest backup that loads, else the broken file with only the sections containerd rejects removed — after a timestamped backup. Runtimes (and which is default), registries, mirrors and auth, sandbox image, root and state stay as they were. If containerd does not start on it, the old file is put back. The running containers keep running.',
    appliesWhen: STANDALONE_CONTAINERD,
    preview: {
      title: 'The config that will be written (diff against the broken file, credentials masked)',
      script: PREVIEW_CANDIDATE,
      captures: { candidateSha: '^candidate-sha256=(?<value>[0-9a-f]{64})$' },
    },
    params: { candidateSha: { preview: 'candidateSha', pattern: '^[0-9a-f]{64}$', min: 1, max: 1 } },
    steps: [
      { ...backupStep('backup-config', '{{containerdConfig}}'), skipIf: undefined },
      {
        id: 'install-repaired-config',
        title: 'Install the approved config (rebuilt now, checked byte for byte against the approval, moved into place atomically)',
        why: 'The seed reset the file to the default and its sed set `systemdCgroup`, a key that does not exist: mirrors, registry auth and the nvidia runtime were lost and the cgroup driver unchanged. Here nothing the node had is dropped unless the approver saw it in the diff.',
        requires: {
          script: `{{sudo}}test -f {{containerdConfig}}.bak-{{stamp}}`,
          refusal: 'no backup of the current config.toml was made; refusing to replace it',
          preflight: false,
        },
        action: { kind: 'ssh', script: INSTALL_CANDIDATE, timeoutMs: 60_000 },
        verify: {
          kind: 'ssh',
          script: `{{sudo}}{{containerd}} --config {{containerdConfig}} config dump >/dev/null 2>&1 && [ "$({{sudo}}sha256sum {{containerdConfig}} | cut -d' ' -f1)" = {{candidateSha}} ] && echo config-ok; true`,
          stdout: '^config-ok$',
        },
        undo: { script: '{{sudo}}cp -p {{containerdConfig}}.bak-{{stamp}} {{containerdConfig}}', timeoutMs: 15_000, note: 'the previous config.toml was put back from its backup' },
        retrySafe: true,
      },
      startContainerd,
    ],
    source: 'seed 000 §4.1 and case C; reset replaced by repair (last-known-good, backup, or only the rejected sections dropped), validated by the node\'s own containerd, timestamped backup, atomic install, restored on failure',
  },
  {
    id: 'containerd-leftover-shims',
    title: 'Kill the orphaned shims (containerd does not know their tasks) and their containers',
    finding: 'containerd-leftover-shims',
    impact:
      'Kills only the shims listed below — processes whose container containerd no longer manages — and the container processes they run (named per shim: with the bundle gone nothing else would stop them, and they keep their GPU). Each shim is checked and killed in one command, by PID and start time, so a reused PID is never hit. Every other container keeps running. Never `pkill -f containerd`.',
    appliesWhen: STANDALONE_CONTAINERD,
    params: { shim: { from: 'shim', pattern: '^[1-9][0-9]{0,9}@[0-9]{1,20}$', min: 1, max: 64 } },
    expectToEnd: 'shim',
    steps: [
      {
        id: 'kill-orphan-shim',
        title: 'Kill orphaned shim {{shim}}',
        why: 'The seed\'s `pkill -9 -f containerd` kills every container on the node. Only a shim containerd has lost is killed, after checking it is the same process and still lost.',
        forEach: 'shim',
        skipIf: {
          script: `p=$(printf '%s' {{shim}} | cut -d@ -f1); st=$(cat /proc/$p/stat 2>/dev/null) || exit 0; st=\${st##*) }; set -- $st; [ "\${20}" != "$(printf '%s' {{shim}} | cut -d@ -f2)" ]`,
        },
        requires: {
          script: [
            `p=$(printf '%s' {{shim}} | cut -d@ -f1); want=$(printf '%s' {{shim}} | cut -d@ -f2)`,
            `st=$(cat /proc/$p/stat 2>/dev/null) || exit 1; c=$(cat /proc/$p/comm); st=\${st##*) }; set -- $st; [ "\${20}" = "$want" ] || exit 1`,
            `case "$c" in containerd-shim*) ;; *) exit 1;; esac`,
            `ns=-; id=-; ad=-; set -- $(tr '\\000' ' ' < /proc/$p/cmdline); while [ $# -gt 1 ]; do case "$1" in -namespace) ns=$2;; -id) id=$2;; -address) ad=$2;; esac; shift; done`,
            `case "$({{sudo}}readlink "/proc/$p/cwd")" in *" (deleted)") exit 0;; esac`,
            `t=$({{sudo}}{{ctr}} --address "$ad" --connect-timeout 2s --timeout 3s -n "$ns" tasks ls -q) || exit 1`,
            `! printf '%s\\n' "$t" | grep -qxF "$id"`,
          ].join('\n'),
          refusal: 'shim {{shim}} is not an orphan any more (gone, a different process, or containerd knows its task again); refusing to kill it',
        },
        action: {
          kind: 'ssh',
          script: [
            `p=$(printf '%s' {{shim}} | cut -d@ -f1); want=$(printf '%s' {{shim}} | cut -d@ -f2)`,
            `st=$(cat /proc/$p/stat) && st=\${st##*) } && set -- $st && [ "\${20}" = "$want" ] || { echo "PID $p is not the shim approved any more" >&2; exit 3; }`,
            `case "$(cat /proc/$p/comm)" in containerd-shim*) ;; *) echo "PID $p is not a shim any more" >&2; exit 3;; esac`,
            // Its containers' init processes: with containerd's bundle gone nothing would stop them, and they hold the GPU.
            `kids=$(ps -eo pid=,ppid= | awk -v p="$p" '$2 == p { print $1 }')`,
            `{{sudo}}kill -KILL "$p" || exit 1`,
            `for k in $kids; do echo "killing container process $k: $(tr '\\000' ' ' < /proc/$k/cmdline 2>/dev/null | cut -c1-120)"; {{sudo}}kill -KILL "$k"; done`,
            `i=0; while [ $i -lt 50 ]; do left=""; for k in $kids; do [ -d /proc/$k ] && [ "$(awk '{ print $3 }' /proc/$k/stat 2>/dev/null)" != Z ] && left="$left $k"; done; [ -z "$left" ] && exit 0; sleep 0.1; i=$((i + 1)); done`,
            `echo "still running:$left" >&2; exit 1`,
          ].join('\n'),
          timeoutMs: 15_000,
        },
        verify: {
          kind: 'ssh',
          script: `p=$(printf '%s' {{shim}} | cut -d@ -f1); st=$(cat /proc/$p/stat 2>/dev/null) || exit 0; st=\${st##*) }; set -- $st; [ "$1" = Z ] || [ "\${20}" != "$(printf '%s' {{shim}} | cut -d@ -f2)" ]`,
          withinMs: 10_000,
        },
        retrySafe: true,
      },
    ],
    source: 'seed 000 §8; pkill -9 -f containerd replaced by a checked kill of each orphaned shim (PID and start time); a failed or start-limited containerd is containerd-down, not this',
  },
  {
    id: 'containerd-down',
    title: 'Start containerd again (reset its failed state)',
    finding: 'containerd-down',
    impact: 'Clears the unit\'s failed state and starts containerd (restarts it when it runs without its socket); the containers that kept running in their shims are picked up again. Nothing is killed.',
    appliesWhen: STANDALONE_CONTAINERD,
    steps: [startContainerd],
    source: 'seed 000 §3.3 and §8 (a restart storm leaves containerd start-limited, with its shims and containers still running)',
  },
  {
    id: 'kubelet-down',
    title: 'Start kubelet again (reset its failed state)',
    finding: 'kubelet-down',
    // A kubelet that exits at start on its own error (its config, its certificates) is not fixed by starting it again;
    // one systemd is already restarting (auto-restart) is in such a loop, even when the probe lands between its attempts.
    appliesWhen: {
      allOf: [
        STANDALONE_CONTAINERD,
        { not: { check: 'kubelet-service', line: '^SubState=auto-restart$' } },
        { not: { check: 'kubelet-journal', line: '"command failed"|failed to run Kubelet|failed to load kubelet config' } },
      ],
    },
    impact:
      'Clears the unit\'s failed state and starts kubelet; the node reports Ready again and kubelet takes over its pods as the API server has them (a pod deleted meanwhile has its containers stopped, as kubelet always does). containerd and its containers are not touched.',
    steps: [
      {
        id: 'start-kubelet',
        title: 'Start kubelet and check it stays up',
        why: 'A started kubelet that exits again within seconds (its config, certificates or runtime endpoint) is not fixed: the same process must still run after a while. After repeated failures systemd refuses new starts until the unit is reset.',
        action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed kubelet; {{sudo}}systemctl start kubelet', timeoutMs: 90_000 },
        verify: {
          kind: 'ssh',
          script: [
            `p=$({{sudo}}systemctl show -p MainPID --value kubelet); [ "\${p:-0}" -gt 0 ] || exit 0`,
            `sleep 8`,
            `[ "$({{sudo}}systemctl show -p MainPID --value kubelet)" = "$p" ] && [ "$({{sudo}}systemctl is-active kubelet)" = active ] && echo kubelet-steady; true`,
          ].join('\n'),
          stdout: '^kubelet-steady$',
          timeoutMs: 20_000,
          withinMs: 30_000,
        },
        retrySafe: true,
      },
    ],
    source: 'systemd: `systemctl reset-failed` then `systemctl start` for a stopped or start-limited unit (as for containerd-down)',
  },
  {
    id: 'cgroup-driver-mismatch',
    title: 'Use the systemd cgroup driver in both kubelet and containerd, on a drained node',
    finding: 'cgroup-driver-mismatch',
    impact:
      'Cordons the node and drains it through the Eviction API (PodDisruptionBudgets respected; DaemonSet and static pods stay), backs up and edits containerd\'s config (SystemdCgroup = true for its default runtime) and kubelet\'s config (cgroupDriver: systemd), restarts both, and uncordons once the node is Ready. Refused when kubelet sets its cgroup driver by flag or runs with another config file, or when the edit of config.toml would not change the driver of the default runtime in effect (a file it imports sets it).',
    appliesWhen: STANDALONE_CONTAINERD,
    steps: [
      {
        id: 'check-kubelet-config-in-use',
        title: 'Check kubelet runs with the config file this fix edits',
        why: 'Editing a config kubelet does not read changes nothing; a --cgroup-driver flag would override the file.',
        requires: {
          script: [
            `[ {{kubeletConfig}} != - ] || exit 1`,
            `pid=$({{sudo}}systemctl show -p MainPID --value kubelet) || exit 1; [ "\${pid:-0}" -gt 0 ] || exit 0`,
            `args=$(tr '\\000' ' ' < /proc/$pid/cmdline)`,
            `case " $args " in *" --cgroup-driver"*) exit 1;; esac`,
            `case " $args " in *" --config="{{kubeletConfig}}" "*|*" --config "{{kubeletConfig}}" "*) exit 0;; *) exit 1;; esac`,
          ].join('\n'),
          refusal: 'kubelet does not run with {{kubeletConfig}} as its --config (or sets --cgroup-driver by flag); change the cgroup driver where kubelet reads it, by hand',
        },
        verify: { kind: 'ssh', script: `[ -f {{kubeletConfig}} ] || {{sudo}}test -f {{kubeletConfig}}` },
        retrySafe: true,
      },
      {
        id: 'cordon',
        title: 'Cordon the node',
        why: 'No new pods are scheduled here while its cgroup driver changes.',
        action: { kind: 'kube', op: 'cordon' },
        retrySafe: true,
      },
      {
        id: 'drain',
        title: 'Drain the node through the Eviction API (PodDisruptionBudgets respected, DaemonSet and static pods stay)',
        why: 'Containers started under one cgroup driver are not managed correctly under the other; the workloads move elsewhere first. A budget that blocks an eviction stops the run (bounded wait) instead of being overridden.',
        action: { kind: 'kube', op: 'drain' },
        verify: { kind: 'kube', check: 'node-drained', withinMs: 300_000 },
        retrySafe: true,
      },
      backupStep('backup-containerd-config', '{{containerdConfig}}'),
      {
        id: 'set-systemd-cgroup',
        title: 'Set SystemdCgroup = true for containerd\'s default runtime',
        why: 'containerd 2.x silently ignores a misplaced key, so the effective value of the default runtime (nvidia on a GPU node) is checked, not the file.',
        skipIf: { script: DEFAULT_RUNTIME_SYSTEMD_CGROUP, stdout: '^default-runtime-systemd-cgroup=true$' },
        requires: {
          script: EDIT_GIVES_SYSTEMD_CGROUP,
          refusal:
            "setting SystemdCgroup = true in {{containerdConfig}} would not give containerd's default runtime the systemd cgroup driver (a file it imports sets it, e.g. nvidia-ctk's conf.d drop-in, or it has no `SystemdCgroup = false` to change): set it where it is decided, by hand",
        },
        action: {
          kind: 'ssh',
          script: [
            `t=$(mktemp) || exit 1; trap 'rm -f "$t" "$t.new"' EXIT`,
            `{{sudo}}cat {{containerdConfig}} > "$t" || exit 1`,
            `grep -q 'SystemdCgroup = false' "$t" || { echo 'config.toml has no "SystemdCgroup = false" to change: add SystemdCgroup = true under the default runtime options by hand' >&2; exit 1; }`,
            `sed 's/SystemdCgroup = false/SystemdCgroup = true/' "$t" > "$t.new" && [ -s "$t.new" ] && mode=$(stat -c %a {{containerdConfig}}) && {{sudo}}install -m "$mode" "$t.new" {{containerdConfig}}.nodediag-new && {{sudo}}mv -f {{containerdConfig}}.nodediag-new {{containerdConfig}}`,
          ].join('\n'),
          timeoutMs: 15_000,
        },
        verify: { kind: 'ssh', script: DEFAULT_RUNTIME_SYSTEMD_CGROUP, stdout: '^default-runtime-systemd-cgroup=true$' },
        undo: { script: '{{sudo}}cp -p {{containerdConfig}}.bak-{{stamp}} {{containerdConfig}}', timeoutMs: 15_000, note: 'containerd\'s previous config was put back from its backup' },
        retrySafe: true,
      },
      backupStep('backup-kubelet-config', '{{kubeletConfig}}'),
      {
        id: 'set-kubelet-cgroup-driver',
        title: 'Set cgroupDriver: systemd in the kubelet config',
        why: 'Both sides must agree; systemd is the driver kubeadm and the seed recommend.',
        skipIf: { script: `{{sudo}}cat {{kubeletConfig}} | grep -E '^cgroupDriver:'; true`, stdout: '^cgroupDriver: *"?systemd"?$' },
        action: {
          kind: 'ssh',
          script: [
            `t=$(mktemp) || exit 1; trap 'rm -f "$t" "$t.new"' EXIT`,
            `{{sudo}}cat {{kubeletConfig}} > "$t" || exit 1`,
            `if grep -q '^cgroupDriver:' "$t"; then sed 's/^cgroupDriver:.*/cgroupDriver: systemd/' "$t" > "$t.new"; else { cat "$t"; echo 'cgroupDriver: systemd'; } > "$t.new"; fi`,
            `[ -s "$t.new" ] && mode=$(stat -c %a {{kubeletConfig}}) && {{sudo}}install -m "$mode" "$t.new" {{kubeletConfig}}.nodediag-new && {{sudo}}mv -f {{kubeletConfig}}.nodediag-new {{kubeletConfig}}`,
          ].join('\n'),
          timeoutMs: 15_000,
        },
        verify: { kind: 'ssh', script: `{{sudo}}cat {{kubeletConfig}} | grep -E '^cgroupDriver:'; true`, stdout: '^cgroupDriver: systemd$' },
        undo: { script: '{{sudo}}cp -p {{kubeletConfig}}.bak-{{stamp}} {{kubeletConfig}}', timeoutMs: 15_000, note: 'kubelet\'s previous config was put back from its backup' },
        retrySafe: true,
      },
      {
        id: 'restart-containerd',
        title: 'Restart containerd and check the runtime answers',
        why: 'containerd reads its config only at start. The node is drained; DaemonSet containers keep running in their shims.',
        action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed containerd; {{sudo}}systemctl restart containerd', timeoutMs: 120_000 },
        verify: { kind: 'ssh', script: RUNTIME_ANSWERS, stdout: '^runtime-ok$', withinMs: 30_000 },
        retrySafe: true,
      },
      restartKubelet,
      {
        id: 'uncordon',
        title: 'Uncordon the node',
        why: 'The node takes pods again once both sides agree and it is Ready. (If a step before fails, the node stays cordoned: it is not fit for pods.)',
        action: { kind: 'kube', op: 'uncordon' },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.3 and §7; drain first (seed 002 §10: changes only on a drained node)',
  },
  {
    id: 'pleg-unhealthy',
    title: 'Restart containerd after checking the disk (PLEG)',
    finding: 'pleg-unhealthy',
    impact: 'Restarts containerd (the containers keep running in their shims and containerd reconnects to them) and waits for kubelet to report the node Ready with a fresh status.',
    appliesWhen: STANDALONE_CONTAINERD,
    steps: [
      {
        id: 'restart-containerd',
        title: 'Restart containerd and check the runtime answers',
        why: "A fresh containerd process; containers keep running in their shims (KillMode=process). kubelet's relist recovers once the runtime answers quickly again.",
        requires: {
          script: `df -P {{containerdRoot}} 2>/dev/null | awk 'NR == 2 { sub(/%/, "", $5); exit ($5 >= 95) }'`,
          refusal: 'the runtime disk is 95% full or more: free space first (disk-pressure), a restart will not help',
        },
        action: { kind: 'ssh', script: '{{sudo}}systemctl reset-failed containerd; {{sudo}}systemctl restart containerd', timeoutMs: 120_000 },
        verify: { kind: 'ssh', script: RUNTIME_ANSWERS, stdout: '^runtime-ok$', withinMs: 30_000 },
        retrySafe: true,
      },
      {
        id: 'wait-node-ready',
        title: 'Wait for the node to report Ready',
        why: 'kubelet reports PLEG healthy at its next relist and status update.',
        verify: { kind: 'kube', check: 'node-ready', withinMs: 180_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.4 and §11.3',
  },
  {
    id: 'cni-not-ready',
    title: 'Load br_netfilter and enable the bridge and forwarding sysctls, persistently',
    finding: 'cni-not-ready',
    impact:
      'Loads br_netfilter, sets net.bridge.bridge-nf-call-iptables=1 and net.ipv4.ip_forward=1 now and in /etc/modules-load.d and /etc/sysctl.d. Does not install a CNI config (that is the network add-on\'s job). Containers are not touched.',
    appliesWhen: {
      anyOf: [
        { check: 'bridge-netfilter', line: '^br_netfilter=missing' },
        { check: 'bridge-netfilter', line: '^net\\.bridge\\.bridge-nf-call-iptables=0$' },
        { check: 'bridge-netfilter', line: '^net\\.ipv4\\.ip_forward=0$' },
      ],
    },
    steps: [
      {
        id: 'load-br-netfilter',
        title: 'Load the br_netfilter module',
        why: 'Without it bridged pod traffic bypasses iptables and Services break.',
        skipIf: { script: '[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]' },
        action: { kind: 'ssh', script: '{{sudo}}modprobe br_netfilter', timeoutMs: 15_000 },
        verify: { kind: 'ssh', script: '[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]' },
        retrySafe: true,
      },
      {
        id: 'persist-br-netfilter',
        title: 'Load br_netfilter at boot (/etc/modules-load.d)',
        why: 'A fix that a reboot undoes is not a fix.',
        skipIf: { script: `grep -rqsx 'br_netfilter' /etc/modules-load.d /etc/modules` },
        action: { kind: 'ssh', script: `echo br_netfilter | {{sudo}}tee /etc/modules-load.d/nodediag-br_netfilter.conf >/dev/null`, timeoutMs: 10_000 },
        verify: { kind: 'ssh', script: `grep -rqsx 'br_netfilter' /etc/modules-load.d` },
        retrySafe: true,
      },
      {
        id: 'set-sysctls',
        title: 'Set net.bridge.bridge-nf-call-iptables=1 and net.ipv4.ip_forward=1',
        why: 'Kubernetes networking needs both (kubeadm checks them in preflight).',
        action: { kind: 'ssh', script: '{{sudo}}sysctl -w net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1', timeoutMs: 10_000 },
        verify: {
          kind: 'ssh',
          script: 'echo "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables) $(cat /proc/sys/net/ipv4/ip_forward)"',
          stdout: '^1 1$',
        },
        retrySafe: true,
      },
      {
        id: 'persist-sysctls',
        title: 'Persist the sysctls (/etc/sysctl.d/99-nodediag-k8s.conf)',
        why: 'A fix that a reboot undoes is not a fix.',
        action: {
          kind: 'ssh',
          script: `printf 'net.bridge.bridge-nf-call-iptables = 1\\nnet.ipv4.ip_forward = 1\\n' | {{sudo}}tee /etc/sysctl.d/99-nodediag-k8s.conf >/dev/null`,
          timeoutMs: 10_000,
        },
        verify: { kind: 'ssh', script: 'grep -c ' + `'= 1$'` + ' /etc/sysctl.d/99-nodediag-k8s.conf', stdout: '^2$' },
        retrySafe: true,
      },
      {
        id: 'wait-node-ready',
        title: 'Wait for the node to report Ready',
        why: 'kubelet notices the network at its next status update; until then the Node still says NetworkPluginNotReady.',
        verify: { kind: 'kube', check: 'node-ready', withinMs: 90_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.9 and §11.1',
  },
  {
    id: 'disk-pressure',
    title: 'Free disk: vacuum the journal and remove images no container uses',
    finding: 'disk-pressure',
    impact:
      'Shrinks the systemd journal to 200 MB and removes container images that no container uses (crictl rmi --prune, or the ctr equivalent, which refuses to remove anything when it cannot list the containers). Images are pulled again when needed; running containers are not touched. When that is not enough, it lists what uses the space.',
    appliesWhen: STANDALONE_CONTAINERD,
    steps: [
      {
        id: 'vacuum-journal',
        title: 'Vacuum the systemd journal to 200 MB',
        why: 'Journals grow without bound on busy nodes (seed 002 §4.10: logs).',
        action: { kind: 'ssh', script: '{{sudo}}journalctl --vacuum-size=200M', timeoutMs: 120_000 },
        retrySafe: true,
      },
      {
        id: 'prune-images',
        title: 'Remove images that no container uses',
        why: 'Unused images are the usual bulk of /var/lib/containerd (seed 002 §11.3). An image in use is never removed: if the containers cannot be listed, nothing is removed.',
        action: {
          kind: 'ssh',
          script: [
            `if [ {{crictl}} != - ]; then {{sudo}}{{crictl}} --runtime-endpoint unix://{{socket}} rmi --prune; exit $?; fi`,
            // Without crictl: an image can have several references (its name, the CRI's sha256 ID);
            // keep every reference whose target digest a container in any namespace uses, remove the rest.
            `refs=$({{sudo}}{{ctr}} --address {{socket}} -n k8s.io images ls) || { echo "cannot list images; nothing removed" >&2; exit 1; }`,
            `nss=$({{sudo}}{{ctr}} --address {{socket}} namespaces ls -q) || { echo "cannot list namespaces; nothing removed" >&2; exit 1; }`,
            `used=""`,
            `for ns in $nss; do c=$({{sudo}}{{ctr}} --address {{socket}} -n "$ns" containers ls) || { echo "cannot list the containers of namespace $ns; nothing removed" >&2; exit 1; }; used="$used$(printf '%s\\n' "$c" | awk 'NR > 1 { print $2 }')\n"; done`,
            `refs=$(printf '%s\\n' "$refs" | awk 'NR > 1 { print $1, $3 }')`,
            `keep=$(printf '%s\\n' "$refs" | while read -r ref digest; do printf '%s\\n' "$used" | grep -qxF "$ref" && echo "$digest"; done | sort -u)`,
            `printf '%s\\n' "$refs" | while read -r ref digest; do`,
            `  [ -n "$ref" ] || continue`,
            `  printf '%s\\n' "$keep" | grep -qxF "$digest" && continue`,
            `  echo "removing unused image $ref"; {{sudo}}{{ctr}} --address {{socket}} -n k8s.io images rm --sync "$ref" >/dev/null || exit 1`,
            `done`,
          ].join('\n'),
          timeoutMs: 300_000,
        },
        verify: {
          kind: 'ssh',
          script: [
            `out=$(for p in {{containerdRoot}} /var/lib/kubelet /var/log /; do [ -e "$p" ] && df -P "$p" && df -Pi "$p"; done | awk '$5 ~ /%$/ { sub(/%/, "", $5); if ($5 + 0 >= 90) print "still " $5 "% on " $6 }')`,
            `if [ -z "$out" ]; then echo disk-ok; exit 0; fi`,
            `printf '%s\\n' "$out" | sort -u`,
            `echo "what uses the space:"; {{sudo}}du -xh --max-depth=2 {{containerdRoot}} /var/lib/kubelet /var/log 2>/dev/null | sort -rh | head -n 12`,
          ].join('\n'),
          stdout: '^disk-ok$',
          timeoutMs: 60_000,
        },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.10 and §11.3',
  },
  {
    id: 'clock-skew',
    title: 'Enable NTP time synchronisation',
    finding: 'clock-skew',
    impact: 'Turns on systemd-timesyncd (timedatectl set-ntp true) and waits for the clock to synchronise. Containers are not touched.',
    appliesWhen: { check: 'time-sync', line: '^NTP=no$' },
    steps: [
      {
        id: 'set-ntp',
        title: 'Enable NTP (timedatectl set-ntp true)',
        why: 'A clock that is not synchronised drifts again after any manual correction.',
        action: { kind: 'ssh', script: '{{sudo}}timedatectl set-ntp true', timeoutMs: 30_000 },
        verify: { kind: 'ssh', script: 'timedatectl show -p NTPSynchronized --value; true', stdout: '^yes$', withinMs: 120_000 },
        retrySafe: true,
      },
    ],
    source: 'seed 002 §4.6 and §4.12',
  },
  {
    id: 'swap-enabled',
    title: 'Turn swap off now and at boot',
    finding: 'swap-enabled',
    impact: 'Runs swapoff -a (memory pressure rises if swap was in use), comments the swap entries in /etc/fstab after a timestamped backup, restarts kubelet. Containers are not touched.',
    steps: [
      {
        id: 'swapoff',
        title: 'Turn all swap off (swapoff -a)',
        why: 'kubelet refuses to run with swap on (failSwapOn).',
        action: { kind: 'ssh', script: '{{sudo}}swapoff -a', timeoutMs: 300_000 },
        verify: { kind: 'ssh', script: `awk 'NR > 1' /proc/swaps | wc -l`, stdout: '^0$' },
        retrySafe: true,
      },
      {
        ...backupStep('backup-fstab', '/etc/fstab'),
        skipIf: { script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
      },
      {
        id: 'comment-fstab-swap',
        title: 'Comment out the swap entries in /etc/fstab',
        why: 'Otherwise swap comes back at the next boot.',
        skipIf: { script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
        action: {
          kind: 'ssh',
          script: `{{sudo}}sed -i -E 's|^([^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$|#\\1|' /etc/fstab`,
          timeoutMs: 10_000,
        },
        verify: { kind: 'ssh', script: `grep -Eq '^[^#[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]]' /etc/fstab`, exitCode: 1 },
        retrySafe: true,
      },
      { ...restartKubelet, verify: { kind: 'ssh', script: '{{sudo}}systemctl is-active kubelet; true', stdout: '^active$', withinMs: 30_000 } },
    ],
    source: 'seed 002 §4.13; the fstab edit keeps a timestamped backup',
  },
];

