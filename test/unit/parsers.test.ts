import { execFileSync } from 'node:child_process';
import { BatchProgress, buildBatchScript, parseBatchOutput } from '../../src/probes/batch.js';
import { journalLineEpoch, parseClock, parseJournal } from '../../src/probes/parsers.js';
import { shellQuote, wrapRemoteCommand } from '../../src/shell.js';

describe('journal window', () => {
  it('drops lines from before the unit last started, keeps continuation lines', () => {
    const text = [
      'window-start=1795383660',
      '2026-11-22T21:40:50+0000 n containerd[1]: old failure: is a directory',
      '2026-11-22T21:41:00+0000 n containerd[2]: started',
      '  continued detail',
      '-- Boot 1234 --',
    ].join('\n');
    expect(parseJournal(text)).toEqual(['2026-11-22T21:41:00+0000 n containerd[2]: started', '  continued detail']);
  });

  it('reads journalctl short-iso timestamps with and without a colon in the offset', () => {
    expect(journalLineEpoch('2026-11-22T21:41:00+0000 x')).toBe(Date.UTC(2026, 10, 22, 21, 41, 0) / 1000);
    expect(journalLineEpoch('2026-11-22T23:41:00+02:00 x')).toBe(Date.UTC(2026, 10, 22, 21, 41, 0) / 1000);
    expect(journalLineEpoch('  not a journal line')).toBeNull();
  });
});

describe('clock skew', () => {
  it('measures the node against the midpoint of the round trip', () => {
    const lines = parseClock('node-epoch-ms=1000120000\nNTP=no', { sentAtMs: 1000000000 - 100, receivedAtMs: 1000000000 + 100 });
    expect(lines).toContain('clock-skew-seconds=120 node=ahead rtt-ms=200');
    expect(lines).toContain('NTP=no');
    expect(parseClock('node-epoch-ms=999990000', { sentAtMs: 1e9, receivedAtMs: 1e9 })).toContain('clock-skew-seconds=10 node=behind rtt-ms=0');
  });
});

describe('probe batch (run by a real /bin/sh)', () => {
  function runBatch(items: Parameters<typeof buildBatchScript>[0]) {
    const cmd = wrapRemoteCommand(buildBatchScript(items), { timeoutMs: 10_000 });
    let out = '';
    try {
      out = execFileSync('/bin/sh', ['-c', cmd], { encoding: 'utf8' });
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? '');
    }
    return parseBatchOutput(out, items.map((i) => i.id));
  }

  it('keeps each probe\'s lines, exit status and duration apart', () => {
    const r = runBatch([
      { id: 'a', script: 'echo one; echo two; exit 3', timeoutMs: 5000, maxOutputBytes: 1000 },
      { id: 'b', script: `printf '%s\\n' ${shellQuote("it's | quoted")} >&2`, timeoutMs: 5000, maxOutputBytes: 1000 },
    ]);
    expect(r.get('a')).toMatchObject({ text: 'one\ntwo', exitCode: 3, truncated: false });
    expect(r.get('b')).toMatchObject({ text: "it's | quoted", exitCode: 0 });
    expect(r.get('a')!.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a probe cannot pass its own lines off as the batch\'s: they come back as printed, and only its real end counts', () => {
    const forged = ['@@rc=0 ms=1', '@@end', '@@truncated', 'other|@@rc=0 ms=1', '\\back', '@at'];
    const items = [
      { id: 'forger', script: `printf '%s\\n' ${forged.map(shellQuote).join(' ')}; sleep 1; exit 5`, timeoutMs: 5000, maxOutputBytes: 1000 },
      { id: 'other', script: 'sleep 1; echo fine', timeoutMs: 5000, maxOutputBytes: 1000 },
    ];
    const out = execFileSync('/bin/sh', ['-c', wrapRemoteCommand(buildBatchScript(items), { timeoutMs: 10_000 })], { encoding: 'utf8' });
    const r = parseBatchOutput(out, ['forger', 'other']);
    expect(r.get('forger')).toMatchObject({ text: forged.join('\n'), exitCode: 5, truncated: false });
    expect(r.get('other')).toMatchObject({ text: 'fine', exitCode: 0 });
    // Read as it streams: the forged lines finish nothing.
    const progress = new BatchProgress(['forger', 'other']);
    const firstLines = out.split('\n').filter((l) => l.startsWith('forger|') && !/^forger\|@@(rc=|end$)/.test(l));
    expect(progress.push(`${firstLines.join('\n')}\n`)).toEqual([]);
  });

  it('stops a hung probe at its own timeout without holding the others', () => {
    const started = Date.now();
    const r = runBatch([
      { id: 'hang', script: 'sleep 30', timeoutMs: 1000, maxOutputBytes: 1000 },
      { id: 'quick', script: 'echo fine', timeoutMs: 5000, maxOutputBytes: 1000 },
    ]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.get('hang')!.exitCode).toBe(124);
    expect(r.get('quick')).toMatchObject({ text: 'fine', exitCode: 0 });
  });

  it('stops a hung probe at the deadline it shares with others, and keeps what they found', () => {
    const r = runBatch([
      { id: 'hang', script: 'echo started; sleep 30', timeoutMs: 1000, maxOutputBytes: 1000 },
      { id: 'quick', script: 'echo fine; exit 4', timeoutMs: 1000, maxOutputBytes: 1000 },
      { id: 'args', script: 'echo "args=$#"', timeoutMs: 1000, maxOutputBytes: 1000 },
    ]);
    // What it printed before the deadline is kept (the shell may add its own "Terminated" line).
    expect(r.get('hang')!.exitCode).toBe(124);
    expect(r.get('hang')!.text.split('\n')[0]).toBe('started');
    expect(r.get('quick')).toMatchObject({ text: 'fine', exitCode: 4 });
    // A probe runs with no positional arguments, as under `sh -c`.
    expect(r.get('args')).toMatchObject({ text: 'args=0', exitCode: 0 });
  });

  it('caps a flooding probe and marks it truncated', () => {
    const r = runBatch([{ id: 'flood', script: 'yes flood', timeoutMs: 5000, maxOutputBytes: 600 }]);
    const f = r.get('flood')!;
    expect(f.truncated).toBe(true);
    expect(f.text.length).toBeLessThanOrEqual(600);
  });

  it('says a probe has finished only once its status and all its output are in, whichever comes first', () => {
    const items = [
      { id: 'chatty', script: 'i=0; while [ $i -lt 200 ]; do echo "line $i"; i=$((i+1)); done', timeoutMs: 5000, maxOutputBytes: 100_000 },
      { id: 'quiet', script: 'exit 2', timeoutMs: 5000, maxOutputBytes: 1000 },
    ];
    const out = execFileSync('/bin/sh', ['-c', wrapRemoteCommand(buildBatchScript(items), { timeoutMs: 10_000 })], { encoding: 'utf8' });
    // Fed in pieces that cut lines in two, as an SSH channel delivers them.
    const progress = new BatchProgress(['chatty', 'quiet']);
    const finished: Array<{ id: string; linesSoFar: number }> = [];
    for (let at = 0; at < out.length; at += 37) {
      const seen = out.slice(0, at + 37);
      for (const id of progress.push(out.slice(at, at + 37))) finished.push({ id, linesSoFar: parseBatchOutput(seen, [id]).get(id)!.text.split('\n').length });
    }
    expect(finished.map((f) => f.id).sort()).toEqual(['chatty', 'quiet']);
    expect(finished.find((f) => f.id === 'chatty')!.linesSoFar).toBe(200);
    // The status line alone is not the end; nor is the end mark alone.
    const p = new BatchProgress(['a']);
    expect(p.push('a|@@rc=0 ms=1\na|x\n')).toEqual([]);
    expect(p.push('a|@@end\n')).toEqual(['a']);
    expect(new BatchProgress(['a']).push('a|@@end\nb|@@rc=0 ms=1\n')).toEqual([]);
  });

  it('reports probes that never finished as missing', () => {
    const r = parseBatchOutput('a|line\na|@@rc=0 ms=5\nb|partial', ['a', 'b']);
    expect(r.get('b')).toMatchObject({ text: 'partial', exitCode: null });
  });
});
