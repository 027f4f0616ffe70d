import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A credential kept out of logs and error messages. `String(secret)`, JSON, template literals and
 * `util.inspect` all print `[redacted]`; only `reveal()` returns the value, and only the code that
 * puts it on the wire calls it.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}
