import { execFileSync } from 'node:child_process';
import { InvalidNodeNameError } from '../../src/errors.js';
import { suggestNames, validateNodeName } from '../../src/inventory/node-name.js';
import { shellQuote } from '../../src/shell.js';
import { parseDiagText } from '../../src/slack/command-parse.js';

describe('shellQuote (checked by a real shell)', () => {
  it.each(["plain", "it's", "a b", '$(rm -rf /)', '`id`', '"; reboot; "', "'\\''", '\n\t*?[]', 'ünïcødé'])('round-trips %j', (v) => {
    expect(execFileSync('/bin/sh', ['-c', `printf %s ${shellQuote(v)}`], { encoding: 'utf8' })).toBe(v);
  });
});

describe('node names', () => {
  it('accepts RFC 1123 names', () => {
    expect(validateNodeName('gpu-node-7')).toBe('gpu-node-7');
    expect(validateNodeName('ip-10-0-1-17.eu-west-1.compute.internal')).toBe('ip-10-0-1-17.eu-west-1.compute.internal');
  });

  it.each([
    ['node; rm -rf /', /shell metacharacters/],
    ['$(reboot)', /shell metacharacters/],
    ['Node-1', /uppercase/],
    ['-node', /only a-z/],
    ['', /empty/],
    ['a'.repeat(254), /longer than 253/],
    [`${'a'.repeat(64)}.b`, /longer than 63/],
    ['node\u0000x', /only a-z/],
  ])('refuses %j', (name, why) => {
    expect(() => validateNodeName(name)).toThrow(InvalidNodeNameError);
    expect(() => validateNodeName(name)).toThrow(why);
  });

  it('never echoes control characters back', () => {
    try {
      validateNodeName('evil\u001b[31m');
    } catch (err) {
      expect((err as Error).message).not.toContain('\u001b');
      expect((err as Error).message).toContain('\\u{1b}');
    }
  });

  it('suggests close names for typos and prefixes', () => {
    const known = ['gpu-node-1', 'gpu-node-2', 'gpu-node-12', 'cpu-node-1'];
    expect(suggestNames('gpu-ndoe-1', known)).toContain('gpu-node-1');
    expect(suggestNames('gpu-node-1', known)[0]).toBe('gpu-node-1');
    expect(suggestNames('zzzz', known)).toEqual([]);
  });
});

describe('/diag text as people type and paste it', () => {
  it.each([
    ['gpu-node-7', 'gpu-node-7'],
    ['  gpu-node-7\u00a0', 'gpu-node-7'],
    ['`gpu-node-7`', 'gpu-node-7'],
    ['*gpu-node-7*', 'gpu-node-7'],
    ['"gpu-node-7"', 'gpu-node-7'],
    ['\u201cgpu-node-7\u201d', 'gpu-node-7'],
    ['GPU-Node-7', 'gpu-node-7'],
    ['<http://ip-10-0-1-23.ec2.internal|ip-10-0-1-23.ec2.internal>', 'ip-10-0-1-23.ec2.internal'],
    ['<http://ip-10-0-1-23.ec2.internal>', 'ip-10-0-1-23.ec2.internal'],
  ])('reads %j as the node %j', (text, node) => {
    expect(parseDiagText(text)).toEqual({ kind: 'node', node });
  });

  it.each([
    ['-l pool=gpu', 'pool=gpu'],
    ['-l "pool in (a,b)"', 'pool in (a,b)'],
    ['--selector=node.kubernetes.io/instance-type=p4d.24xlarge', 'node.kubernetes.io/instance-type=p4d.24xlarge'],
  ])('reads %j as the selector %j', (text, selector) => {
    expect(parseDiagText(text)).toEqual({ kind: 'fleet', selector });
  });

  it.each([
    ['`gpu-node-7;reboot`', /shell metacharacters/],
    ['<http://evil.example/$(reboot)|$(reboot)>', /shell metacharacters/],
    ['<@U0123ABC>', /not a valid node name/],
    ['`a` `b`', /One node at a time/],
    ['-l "pool=gpu; reboot"', /not a valid label selector/],
  ])('still refuses %j', (text, why) => {
    const r = parseDiagText(text);
    expect(r.kind).toBe('invalid');
    expect(r.kind === 'invalid' && r.reason).toMatch(why);
  });

  it('answers help for empty text and help words', () => {
    for (const t of ['', '  ', 'help', '--help', '-h']) expect(parseDiagText(t)).toEqual({ kind: 'help' });
  });
});
