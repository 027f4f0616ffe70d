import { describe, expect, it } from 'vitest';
import { optionText } from '../../src/cli/option-text.js';

describe('optionText', () => {
  it('reads a separate value', () => {
    expect(optionText('request-timeout', ['node', 'main', '--request-timeout', 'abc'])).toBe('abc');
  });

  it('reads an attached value', () => {
    expect(optionText('request-timeout', ['node', 'main', '--request-timeout=', 'x'])).toBe('');
    expect(optionText('memory-limit', ['--memory-limit=12x'])).toBe('12x');
  });

  it('takes the last occurrence', () => {
    expect(optionText('op-timeout', ['--op-timeout', '1', '--op-timeout=two'])).toBe('two');
  });

  it('ignores other options', () => {
    expect(optionText('op-timeout', ['--op-timeouts', '3', '--other=4'])).toBeUndefined();
  });
});
