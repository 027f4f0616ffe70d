#!/usr/bin/env node
/**
 * The command-line entry point and the only place that sets the exit status: 2 for bad input
 * (config, options, mountpoint), 1 for any other failure, 0 after a clean unmount.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { DropboxMountError, UsageError } from '../errors.js';
import { mountCommand } from './mount-command.js';
import { emulatorCommand } from './emulator-command.js';
import { loginCommand } from './login-command.js';
import { checkCommand } from './check-command.js';
import { statusCommand } from './status-command.js';

async function main(argv: string[]): Promise<void> {
  await yargs(argv)
    .scriptName('dropbox-mount')
    .command(emulatorCommand)
    .command(loginCommand)
    .command(checkCommand)
    .command(statusCommand)
    .command(mountCommand)
    .strict()
    .help()
    .version()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, err) => {
      if (err) throw err;
      throw new UsageError(`${message}; run dropbox-mount --help for usage`);
    })
    .parseAsync();
}

// A reader that closes the pipe early (`dropbox-mount check | head -1`) has all it wants, so
// EPIPE on stdout ends the command quietly instead of with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

main(hideBin(process.argv)).then(
  () => {
    process.exit(process.exitCode ?? 0);
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`dropbox-mount: ${err.message}\n`);
      process.exit(2);
    }
    const message = err instanceof DropboxMountError || err instanceof Error ? err.message : String(err);
    process.stderr.write(`dropbox-mount: ${message}\n`);
    process.exit(1);
  },
);
