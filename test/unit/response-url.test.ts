import { isSlackResponseUrl } from '../../src/adapters/slack-web.js';

describe('which response_url the bot will call', () => {
  it.each([
    ['https://hooks.slack.com/commands/T0001/123/abc', undefined, true],
    ['https://hooks.slack-gov.com/commands/T0001/123/abc', undefined, true],
    ['http://hooks.slack.com/commands/T0001/123/abc', undefined, false],
    ['https://hooks.slack.com.evil.example/commands/x', undefined, false],
    ['https://evilslack.com/commands/x', undefined, false],
    ['https://169.254.169.254/latest/meta-data', undefined, false],
    ['not a url', undefined, false],
    ['http://127.0.0.1:4000/commands/T0001/1/resp', 'http://127.0.0.1:4000/api/', true],
    ['http://127.0.0.1:4001/commands/T0001/1/resp', 'http://127.0.0.1:4000/api/', false],
  ])('%s (API at %s): %s', (url, api, ok) => {
    expect(isSlackResponseUrl(url, api)).toBe(ok);
  });
});
