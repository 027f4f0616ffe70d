/**
 * files/list_folder/longpoll (the notify host; no Authorization allowed). Returns
 * `{changes: true}` as soon as the journal holds a change in the cursor's scope after its
 * position, or `{changes: false}` when `timeout` seconds (30..480, default 30) pass.
 * Changes made directly in the data folder wake it through the watcher (data-watcher.ts),
 * within about 30 ms. The emulator option `longpollMaxWaitMs` bounds the real wait for
 * tests while `timeout` is still checked.
 */

import type { EmulatorContext } from './context.js';
import { badInput } from './errors.js';
import { checkEpoch, scopeOf } from './list-folder-changes.js';
import { decodeCursor } from './list-folder-cursor.js';
import { isInScope } from './journal.js';
import type { RpcRoute } from './route-table.js';

const LONGPOLL = 'files/list_folder/longpoll';

export const longpollRoute: RpcRoute = {
  name: LONGPOLL,
  style: 'rpc',
  auth: 'noauth',
  arg: { cursor: { type: 'string', required: true }, timeout: { type: 'uint64', min: 30, max: 480 } },
  async handle(context: EmulatorContext, arg: { cursor: string; timeout?: number }) {
    const cursor = decodeCursor(arg.cursor);
    if (cursor === null) {
      throw badInput(LONGPOLL, `Invalid "cursor" parameter: ${JSON.stringify(arg.cursor)}`);
    }
    checkEpoch(context, cursor);
    const { account, watcher, longpollMaxWaitMs } = context.state;
    await watcher.flush();
    const { scope, gone } = scopeOf(context, cursor);
    if (gone || account.journal.since(cursor.position, scope, 1).length > 0) {
      return { changes: true };
    }
    const waitMs = Math.min((arg.timeout ?? 30) * 1000, longpollMaxWaitMs ?? Infinity);
    const changed = await new Promise<boolean>((resolve) => {
      const finish = (changes: boolean) => {
        unsubscribe();
        clearTimeout(timer);
        resolve(changes);
      };
      // A move of a folder above the cursor's folder journals paths outside its scope. It
      // leaves the folder gone, for which a new call returns changes at once, so a waiting call
      // returns too.
      const unsubscribe = account.journal.subscribe((entry) => {
        if (isInScope(entry.pathLower, scope) || scopeOf(context, cursor).gone) {
          finish(true);
        }
      });
      const timer = setTimeout(() => finish(false), waitMs);
      // The timer must not keep a stopping process alive.
      timer.unref();
    });
    return { changes: changed };
  },
};
