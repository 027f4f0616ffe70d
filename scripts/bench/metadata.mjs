// The metadata benchmark: a cold and a warm `find` that stats 20,000 files in 1,000 folders,
// with the emulator adding 20 ms to every request, once with the whole-tree prefetch and once
// with --no-prefetch. Records wall time and API calls (from the emulator's call log) in
// docs/benchmarks.md between the metadata-benchmark markers. Then a restart with
// --metadata-cache of a tree of 100,000 entries: the walk after the restart, and its calls.
import { markdownTable, machineSummary, writeSection } from './report.mjs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cleanup,
  clearCalls,
  emulatorCalls,
  run,
  setShaping,
  startDaemon,
  startEmulator,
} from './processes.mjs';

const FOLDERS = 1000;
const FILES_PER_FOLDER = 20;
const FILES = FOLDERS * FILES_PER_FOLDER;
const LATENCY_MS = 20;
// 1,000 folders of 99 files: 100,000 entries with the folders, the default --prefetch-limit.
const RESTART_FOLDERS = 1000;
const RESTART_FILES_PER_FOLDER = 99;
const RESTART_ENTRIES = RESTART_FOLDERS * (RESTART_FILES_PER_FOLDER + 1);
// Longer than the daemon's default --attr-timeout of 1 s, so that a warm walk is served by the daemon
// and not the kernel's attribute cache.
const KERNEL_CACHE_EXPIRY_MS = 1_200;

async function makeTree(dataDir, folders = FOLDERS, filesPerFolder = FILES_PER_FOLDER) {
  for (let folder = 0; folder < folders; folder++) {
    const dir = join(dataDir, 'tree', `d${String(folder).padStart(4, '0')}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(
      Array.from({ length: filesPerFolder }, (_, i) => writeFile(join(dir, `f${i}.txt`), `${folder}/${i}\n`)),
    );
  }
}

// `find -printf %s` stats every entry, as `ls -lR` or a backup walk does.
async function findAndStat(mountpoint, url, files = FILES) {
  await clearCalls(url);
  const started = performance.now();
  const result = await run('find', [join(mountpoint, 'tree'), '-type', 'f', '-printf', '%s %P\n']);
  const ms = performance.now() - started;
  if (result.code !== 0) throw new Error(`find failed: ${result.stderr}`);
  const lines = result.stdout.split('\n').filter(Boolean).length;
  if (lines !== files) throw new Error(`find listed ${lines} files, expected ${files}`);
  return { ms, calls: await countCalls(url) };
}

// Counts requests other than the change watcher's longpoll, which waits in the background.
async function countCalls(url) {
  const calls = await emulatorCalls(url);
  return calls.filter((call) => call.route !== 'files/list_folder/longpoll').length;
}

async function measureMount(mountpoint, configFile, url, extraArgs) {
  // The cold walk counts every call from the start of the mount, so the prefetch is included.
  await clearCalls(url);
  const mountStarted = performance.now();
  const daemon = await startDaemon(mountpoint, configFile, extraArgs);
  const mountMs = performance.now() - mountStarted;
  const callsAtMount = await countCalls(url);
  const cold = await findAndStat(mountpoint, url);
  cold.calls += callsAtMount;
  await new Promise((resolve) => setTimeout(resolve, KERNEL_CACHE_EXPIRY_MS));
  const warm = await findAndStat(mountpoint, url);
  await daemon.stop();
  await run('fusermount', ['-uz', mountpoint]);
  return { mountMs, cold, warm };
}

// Mounts with --metadata-cache, walks the tree so that every folder is cached, unmounts (which
// writes the snapshot), then measures a restart and a walk of the same tree.
async function measureRestart(workDir) {
  const dataDir = join(workDir, 'restart-data');
  const mountpoint = join(workDir, 'restart-mnt');
  const configFile = join(workDir, 'restart-config.json');
  const snapshot = join(workDir, 'metadata-cache.json');
  const files = RESTART_FOLDERS * RESTART_FILES_PER_FOLDER;
  await mkdir(mountpoint);
  console.log(`making ${files} files in ${RESTART_FOLDERS} folders`);
  await makeTree(dataDir, RESTART_FOLDERS, RESTART_FILES_PER_FOLDER);
  const emulator = await startEmulator(dataDir, configFile);
  await setShaping(emulator.url, { latencyMs: LATENCY_MS, bandwidthBytesPerSecond: 0 });
  const args = ['--metadata-cache', snapshot];
  const first = await startDaemon(mountpoint, configFile, args);
  await findAndStat(mountpoint, emulator.url, files);
  await first.stop();
  await run('fusermount', ['-uz', mountpoint]);

  console.log('restart with --metadata-cache');
  await clearCalls(emulator.url);
  const mountStarted = performance.now();
  const second = await startDaemon(mountpoint, configFile, args);
  const mountMs = performance.now() - mountStarted;
  const callsAtMount = await countCalls(emulator.url);
  const walk = await findAndStat(mountpoint, emulator.url, files);
  await second.stop();
  await run('fusermount', ['-uz', mountpoint]);
  await emulator.stop();
  return { mountMs, walkMs: walk.ms, callsAtMount, walkCalls: walk.calls };
}

export async function runMetadataBenchmark() {
  const workDir = await mkdtemp(join(tmpdir(), 'dropbox-mount-bench-metadata-'));
  const dataDir = join(workDir, 'data');
  const mountpoint = join(workDir, 'mnt');
  const configFile = join(workDir, 'config.json');
  try {
    await mkdir(mountpoint);
    console.log(`making ${FILES} files in ${FOLDERS} folders`);
    await makeTree(dataDir);
    const emulator = await startEmulator(dataDir, configFile);
    await setShaping(emulator.url, { latencyMs: LATENCY_MS, bandwidthBytesPerSecond: 0 });
    console.log('find + stat with prefetch');
    const withPrefetch = await measureMount(mountpoint, configFile, emulator.url, []);
    console.log('find + stat without prefetch');
    const withoutPrefetch = await measureMount(mountpoint, configFile, emulator.url, ['--no-prefetch']);
    await emulator.stop();
    const restart = await measureRestart(workDir);

    const seconds = (ms) => (ms / 1000).toFixed(2);
    const rows = [];
    for (const [label, result] of [['prefetch', withPrefetch], ['--no-prefetch', withoutPrefetch]]) {
      rows.push([`${label}: mount (until \`mounted\`)`, `${seconds(result.mountMs)} s`, '']);
      rows.push([`${label}: cold find + stat`, `${seconds(result.cold.ms)} s`, String(result.cold.calls)]);
      rows.push([`${label}: warm find + stat`, `${seconds(result.warm.ms)} s`, String(result.warm.calls)]);
    }
    const restartLabel = `${RESTART_ENTRIES.toLocaleString('en-US')} entries, --metadata-cache`;
    rows.push([`${restartLabel}: restart (until \`mounted\`)`, `${seconds(restart.mountMs)} s`, String(restart.callsAtMount)]);
    rows.push([`${restartLabel}: find + stat after restart`, `${seconds(restart.walkMs)} s`, String(restart.walkCalls)]);
    const table = markdownTable(['measurement', 'wall time', 'API calls'], rows);
    console.log(table);
    await writeReport(table);
  } finally {
    await cleanup();
    await rm(workDir, { recursive: true, force: true });
  }
}

async function writeReport(table) {
  await writeSection('metadata-benchmark', [
    '## Metadata walks (`node scripts/bench.mjs --only metadata`)',
    '',
    `Run on ${new Date().toISOString().slice(0, 10)}, ${machineSummary()}. Command: \`npm run build && node scripts/bench.mjs --only metadata\`.`,
    `The emulator adds ${LATENCY_MS} ms to every request. \`find -printf %s\` stats ${FILES.toLocaleString('en-US')} files in ${FOLDERS.toLocaleString('en-US')} folders.`,
    'A cold walk starts right after the mount and its API calls include those made while mounting',
    '(token, prefetch). A warm walk runs 1.2 s later, after the kernel attribute cache has expired, so',
    'it is served by the daemon. Calls leave out the change watcher\'s longpoll.',
    `The restart rows mount a tree of ${RESTART_ENTRIES.toLocaleString('en-US')} entries (${RESTART_FOLDERS.toLocaleString('en-US')} folders of ${RESTART_FILES_PER_FOLDER} files) with`,
    '`--metadata-cache`, walk it, unmount, and then measure the next mount and a walk of the whole tree.',
    '',
    table,
  ]);
}
