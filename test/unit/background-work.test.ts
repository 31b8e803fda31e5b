/** Work started behind a reply: shutdown and tests wait for all of it, failures are reported, not lost. */
import { BackgroundWork } from '../../src/concurrency.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('background work', () => {
  it('idle waits for work, and for the work that work started', async () => {
    const done: string[] = [];
    const work = new BackgroundWork(() => undefined);
    work.spawn(async () => {
      await tick(20);
      done.push('outer');
      work.spawn(async () => {
        await tick(20);
        done.push('inner');
      });
    });
    await work.idle();
    expect(done).toEqual(['outer', 'inner']);
  });

  it('a failure of spawned work goes to the error handler; a tracked one to its caller; idle still settles', async () => {
    const errors: unknown[] = [];
    const work = new BackgroundWork((err) => errors.push(err));
    work.spawn(async () => {
      throw new Error('spawned boom');
    });
    await expect(work.track(async () => Promise.reject(new Error('tracked boom')))).rejects.toThrow('tracked boom');
    await work.idle();
    expect(errors.map(String)).toEqual(['Error: spawned boom']);
    expect(await work.track(async () => 42)).toBe(42);
  });
});
