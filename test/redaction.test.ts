/**
 * Redaction of free-form error text: a password never shows, and a short password does not garble
 * the words that happen to contain it.
 */
import { redactText } from '../src/core/target';

describe('redactText', () => {
  test('a long secret is removed wherever it occurs, even inside a word', () => {
    expect(redactText('auth failed for s3cretPassw0rd (xs3cretPassw0rdx)', ['s3cretPassw0rd'])).toBe(
      'auth failed for REDACTED (xREDACTEDx)',
    );
  });

  test('a short secret is removed where it stands alone, and words that contain it stay readable', () => {
    // Before: password "p" turned "unexpectedly" into "unexREDACTEDectedly".
    expect(redactText('connection closed unexpectedly; password p rejected', ['p'])).toBe(
      'connection closed unexpectedly; password REDACTED rejected',
    );
    expect(redactText('bad option "pw=ab1" near ab12', ['ab1'])).toBe('bad option "pw=REDACTED" near ab12');
  });

  test('a short secret with regular-expression characters is matched literally', () => {
    expect(redactText('token a.b*, not axb', ['a.b*'])).toBe('token REDACTED, not axb');
    expect(redactText('value (x) and x', ['(x)'])).toBe('value REDACTED and x');
  });

  test('credentials inside any URL are removed whatever the secrets list says', () => {
    expect(redactText('dial redis://user:hunter2@db:6379 failed', [])).toBe(
      'dial redis://user:REDACTED@db:6379 failed',
    );
  });

  test('empty and missing secrets change nothing', () => {
    expect(redactText('nothing to hide', ['', undefined])).toBe('nothing to hide');
  });
});
