/**
 * files/export and files/get_temporary_link.
 *
 * Export serves the Paper documents of this emulator (files named `*.paper`, see
 * metadata.ts): the bytes on disk are Markdown; `html` wraps them in a minimal page and
 * `plain_text` returns them unchanged. The result header is
 * `{export_metadata: {name, size, export_hash}, file_metadata}`. A downloadable file is
 * `non_exportable`; a format outside `export_options` is `invalid_export_format`.
 *
 * A temporary link points at /_emulator/link/<token> on the emulator's own origin and names
 * the file by id, so it follows the file through moves. It expires after the configured
 * lifetime (4 hours by default) and then answers 410.
 */

import { open } from 'node:fs/promises';
import { contentHashOf } from '../dropbox/content-hash.js';
import { toHeaderSafeJson } from '../dropbox/header-json.js';
import { contentArgSource } from './args.js';
import type { EmulatorContext } from './context.js';
import { pathLookupError, routeError } from './errors.js';
import { sendBody, type Exchange } from './exchange.js';
import { describeFile, lookupEntry } from './lookup.js';
import { PAPER_EXPORT_FORMATS, type FileMetadata } from './metadata.js';
import { parsePath } from './paths.js';
import type { DownloadRoute, RpcRoute } from './route-table.js';

const EXTENSIONS: Record<string, string> = { markdown: '.md', html: '.html', plain_text: '.txt' };

export const exportRoute: DownloadRoute = {
  name: 'files/export',
  style: 'download',
  auth: 'user',
  arg: { path: { type: 'string', required: true }, export_format: { type: 'string' } },
  async handle(context: EmulatorContext, exchange: Exchange, arg: { path: string; export_format?: string }) {
    const argument = `${contentArgSource(exchange.req.headers)}: path`;
    const { metadata, diskPath } = await findFile(context, 'files/export', arg.path, argument);
    if (metadata.is_downloadable || metadata.export_info === undefined) {
      throw routeError({ '.tag': 'non_exportable' });
    }
    const format = arg.export_format ?? metadata.export_info.export_as;
    if (!PAPER_EXPORT_FORMATS.includes(format)) {
      throw routeError({ '.tag': 'invalid_export_format' });
    }
    const markdown = await readAll(diskPath);
    const body = format === 'html'
      ? Buffer.from(`<!doctype html><html><body><pre>${escapeHtml(markdown.toString('utf8'))}</pre></body></html>\n`)
      : markdown;
    const exportMetadata = {
      name: metadata.name.replace(/\.paper$/i, '') + (EXTENSIONS[format] ?? ''),
      size: body.length,
      export_hash: contentHashOf(body),
    };
    const result = { export_metadata: exportMetadata, file_metadata: metadata };
    sendBody(exchange, 200, 'application/octet-stream', body, { 'Dropbox-API-Result': toHeaderSafeJson(result) });
  },
};

export const getTemporaryLinkRoute: RpcRoute = {
  name: 'files/get_temporary_link',
  style: 'rpc',
  auth: 'user',
  arg: { path: { type: 'string', required: true } },
  async handle(context: EmulatorContext, arg: { path: string }): Promise<{ metadata: FileMetadata; link: string }> {
    const { metadata } = await findFile(context, 'files/get_temporary_link', arg.path);
    if (!metadata.is_downloadable) {
      throw routeError({ '.tag': 'unsupported_file' });
    }
    return { metadata, link: context.state.baseUrl + context.state.links.create(metadata.id) };
  },
};

async function findFile(context: EmulatorContext, route: string, path: string, argument = 'request body: path') {
  const ref = parsePath(path, {
    route,
    pattern: 'readPath',
    rootNamespaceId: context.account.rootNamespaceId,
    argument,
  });
  const entry = await lookupEntry(context, ref);
  if (entry === null) {
    throw pathLookupError('not_found');
  }
  if (entry.kind !== 'file') {
    throw pathLookupError('not_file');
  }
  const metadata = await describeFile(context, entry);
  if (metadata === null) {
    throw pathLookupError('not_found');
  }
  return { metadata, diskPath: entry.diskPath };
}

async function readAll(diskPath: string): Promise<Buffer> {
  const handle = await open(diskPath, 'r');
  try {
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
