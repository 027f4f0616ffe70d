// Writing benchmark results: a Markdown table, a one-line description of the machine, and a
// section of docs/benchmarks.md between `<!-- NAME:start -->` and `<!-- NAME:end -->` markers,
// replaced on each run so other sections and the prose around them stay as they are.
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './processes.mjs';

/** Formats `rows` (arrays of cells) under `header` as a Markdown table. */
export function markdownTable(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

/** Describes this machine: cores, memory, kernel and Node.js version. */
export function machineSummary() {
  const model = cpus()[0]?.model ?? 'unknown';
  const memoryGiB = (totalmem() / 2 ** 30).toFixed(0);
  return `${cpus().length} cores (${model}), ${memoryGiB} GiB, Linux ${release()}, Node ${process.version}`;
}

/** Replaces the section `name` of docs/benchmarks.md with `lines`, or appends it. */
export async function writeSection(name, lines) {
  const file = join(REPO_ROOT, 'docs', 'benchmarks.md');
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const section = [start, ...lines, end].join('\n');
  let text = await readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const index = text.indexOf(start);
  const endIndex = text.indexOf(end);
  if (index >= 0 && endIndex > index) {
    text = text.slice(0, index) + section + text.slice(endIndex + end.length);
  } else {
    text = `${text.trimEnd()}\n\n${section}\n`;
  }
  await writeFile(file, text);
  console.log(`wrote ${file}`);
}
