/**
 * Open handles by number. FUSE returns the number to read and release; numbers are reused only
 * after 2^31 opens, so a late call on a released handle finds nothing instead of another file.
 */
export class HandleTable<T> {
  readonly #entries = new Map<number, T>();
  #next = 1;

  get size(): number {
    return this.#entries.size;
  }

  add(value: T): number {
    while (this.#entries.has(this.#next)) this.#advance();
    const fh = this.#next;
    this.#entries.set(fh, value);
    this.#advance();
    return fh;
  }

  get(fh: number): T | undefined {
    return this.#entries.get(fh);
  }

  values(): IterableIterator<T> {
    return this.#entries.values();
  }

  remove(fh: number): T | undefined {
    const value = this.#entries.get(fh);
    this.#entries.delete(fh);
    return value;
  }

  // fuse-native passes the handle as an int32 to open's callback, so numbers stay positive and
  // below 2^31.
  #advance(): void {
    this.#next = this.#next >= 0x7fffffff ? 1 : this.#next + 1;
  }
}
