/**
 * The root error class of dropbox-mount. Every error the program raises on purpose carries a
 * stable `code`, so callers branch on the code and never on message text.
 */
export class DropboxMountError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Invalid configuration or command-line input. The CLI prints the message and exits 2. */
export class UsageError extends DropboxMountError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('USAGE', message, options);
  }
}
