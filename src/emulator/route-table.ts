/**
 * Route descriptions. Each Dropbox route declares its endpoint style, its auth mode and its
 * argument spec. The dispatcher checks method, auth and Content-Type and decodes the argument
 * from these fields, so a handler starts from a validated argument.
 */

import type { StructSpec } from './args.js';
import type { EmulatorContext } from './context.js';
import type { Exchange } from './exchange.js';

export type RouteAuth = 'user' | 'noauth';

interface RouteBase {
  /** Name as in the URL after /2/, e.g. 'files/list_folder/continue'. */
  name: string;
  auth: RouteAuth;
  /** Argument fields, or 'void' for routes whose argument is Void. */
  arg: StructSpec | 'void';
}

/** RPC route: JSON argument in the body, JSON result in the body. */
export interface RpcRoute extends RouteBase {
  style: 'rpc';
  handle(context: EmulatorContext, arg: never): Promise<unknown>;
}

/** Download route: argument in Dropbox-API-Arg or `arg`, result header plus file bytes. */
export interface DownloadRoute extends RouteBase {
  style: 'download';
  handle(context: EmulatorContext, exchange: Exchange, arg: never): Promise<void>;
}

/** Upload route: argument in Dropbox-API-Arg or `arg`, file bytes as the body, JSON result. */
export interface UploadRoute extends RouteBase {
  style: 'upload';
  /** Reads the body itself (see upload-body.ts) and returns the JSON result. */
  handle(context: EmulatorContext, exchange: Exchange, arg: never): Promise<unknown>;
}

export type Route = RpcRoute | DownloadRoute | UploadRoute;
