#!/usr/bin/env node
// The read benchmark: `npm run bench`. Builds a data set in a temporary folder, serves it with the
// emulator on 127.0.0.1, mounts it, and measures in one run, so that figures are compared as
// ratios on the same machine at the same time. Writes the table to docs/benchmarks.md.
//
// Needs root (to drop the page cache between runs) and FUSE. Takes about three minutes.
// `node scripts/bench.mjs --only metadata` runs only the metadata section (see metadata.mjs),
// `--only read` only the read section, and `--only write` only the write section (write.mjs).
import { markdownTable, machineSummary, writeSection } from './bench/report.mjs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cleanup,
  clearCalls,
  dropCaches,
  emulatorCalls,
  run,
  sampleRss,
  setShaping,
  startDaemon,
  startEmulator,
  startNullFs,
  accessToken,
} from './bench/processes.mjs';
import { runWithCpu, sha256CoreSecondsPerGiB, startCpuMeter } from './bench/cpu.mjs';
import { runMetadataBenchmark } from './bench/metadata.mjs';
import { runWriteBenchmark } from './bench/write.mjs';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const BIG_BYTES = 1024 * MIB;
const READER_FILE_BYTES = 16 * MIB;
const SMALL_FILES = 5000;
const RANDOM_READS = 1000;
const SHAPED = { latencyMs: 20, bandwidthBytesPerSecond: 100 * MIB };
const UNSHAPED = { latencyMs: 0, bandwidthBytesPerSecond: 0 };

async function makeData(dataDir) {
  await mkdir(join(dataDir, 'readers'), { recursive: true });
  await run('sh', ['-c', `head -c ${BIG_BYTES} /dev/urandom > "${join(dataDir, 'big.bin')}"`]);
  for (let i = 0; i < 64; i++) {
    await run('sh', ['-c', `head -c ${READER_FILE_BYTES} /dev/urandom > "${join(dataDir, 'readers', `r${i}.bin`)}"`]);
  }
  for (let folder = 0; folder < SMALL_FILES / 100; folder++) {
    const dir = join(dataDir, 'small', `d${folder}`);
    await mkdir(dir, { recursive: true });
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => writeFile(join(dir, `f${i}.txt`), `${folder}/${i}\n`.repeat(400))),
    );
  }
}

/**
 * Downloads a file over plain HTTP with curl. Returns bytes per second and the CPU time of the
 * run (see cpuPerGiB) with the processes in `cpuOf` (name to PID) and `curl`.
 */
async function httpDownload(url, token, path, cpuOf = {}) {
  const meter = await startCpuMeter(cpuOf);
  const result = await runWithCpu('curl', [
    '-s', '-o', '/dev/null', '-w', '%{size_download} %{time_total}',
    '-X', 'POST', `${url}/2/files/download`,
    '-H', `Authorization: Bearer ${token}`,
    '-H', `Dropbox-API-Arg: ${JSON.stringify({ path })}`,
  ]);
  const cpu = await meter.stop();
  const [bytes, seconds] = result.stdout.split(' ').map(Number);
  if (bytes !== BIG_BYTES) throw new Error(`curl downloaded ${bytes} bytes: ${result.stderr}`);
  return { bytesPerSecond: bytes / seconds, cpu: cpuPerGiB(cpu, { curl: result.cpuSeconds }, bytes) };
}

/**
 * Empties the page cache, so that reads through a mount reach the filesystem, then reads the
 * emulator's own copies at `dataPaths` (files or folders) back into it. The emulator replaces
 * Dropbox's servers, whose disks are not part of what is measured. curl's downloads find the file
 * in the page cache. Without this step the mount's reads made the emulator read from disk. In one
 * check by hand, a cold curl ran at 430 to 1570 MiB/s against 2590 to 2970 warm.
 */
async function dropCachesKeepingData(dataPaths) {
  await dropCaches();
  for (const path of dataPaths) {
    await run('sh', ['-c', 'find "$1" -type f -exec cat {} + > /dev/null', 'sh', path]);
  }
}

/**
 * Reads a file with dd after emptying the page cache (see dropCachesKeepingData). Returns bytes
 * per second and the CPU time of the run with the processes in `cpuOf` (name to PID) and `dd`.
 */
async function ddRead(file, dataPaths, cpuOf = {}) {
  await dropCachesKeepingData(dataPaths);
  const meter = await startCpuMeter(cpuOf);
  const started = performance.now();
  const result = await runWithCpu('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M']);
  const seconds = (performance.now() - started) / 1000;
  const cpu = await meter.stop();
  if (result.code !== 0) throw new Error(`dd ${file} failed: ${result.stderr}`);
  const bytes = Number(/^(\d+) bytes/m.exec(result.stderr)?.[1]);
  return { bytesPerSecond: bytes / seconds, cpu: cpuPerGiB(cpu, { dd: result.cpuSeconds }, bytes) };
}

/**
 * Scales a CPU meter result and the reading command's CPU time to core-seconds per GiB read.
 * `other` is the machine's busy time outside the listed processes: kernel threads, this script,
 * and any other work on the machine.
 */
function cpuPerGiB(cpu, command, bytes) {
  const gibibytes = bytes / GIB;
  const processes = { ...cpu.processSeconds, ...command };
  const listed = Object.values(processes).reduce((sum, seconds) => sum + seconds, 0);
  const perGiB = Object.fromEntries(Object.entries(processes).map(([name, seconds]) => [name, seconds / gibibytes]));
  return {
    ...perGiB,
    listed: listed / gibibytes,
    other: (cpu.machineSeconds - listed) / gibibytes,
    machine: cpu.machineSeconds / gibibytes,
    busyCores: cpu.busyCores,
  };
}

async function randomReads(file, url, dataPaths) {
  await dropCachesKeepingData(dataPaths);
  await clearCalls(url);
  const script = `
    const fs = require('node:fs');
    const fd = fs.openSync(process.argv[1], 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(4096);
    let x = 12345;
    const times = [];
    for (let i = 0; i < ${RANDOM_READS}; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const offset = Math.floor((x / 2147483648) * (size / 4096 - 1)) * 4096;
      const t = process.hrtime.bigint();
      fs.readSync(fd, buf, 0, 4096, offset);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    times.sort((a, b) => a - b);
    console.log(JSON.stringify({ p50: times[times.length >> 1], p99: times[Math.floor(times.length * 0.99)] }));
  `;
  const result = await run('node', ['-e', script, file]);
  const latency = JSON.parse(result.stdout);
  const downloads = (await emulatorCalls(url)).filter((call) => call.route === 'files/download');
  const fetched = downloads.reduce((sum, call) => {
    const match = /bytes=(\d+)-(\d+)/.exec(call.range ?? '');
    return sum + (match ? Number(match[2]) - Number(match[1]) + 1 : 0);
  }, 0);
  return {
    requestsPerRead: downloads.length / RANDOM_READS,
    kibPerRead: fetched / RANDOM_READS / 1024,
    ...latency,
  };
}

async function currentRss(pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

async function concurrentReaders(mountpoint, count, daemonPid, dataPaths) {
  await dropCachesKeepingData(dataPaths);
  const rss = sampleRss(daemonPid);
  const started = performance.now();
  const files = Array.from({ length: count }, (_, i) => join(mountpoint, 'readers', `r${i % 64}.bin`));
  const results = await Promise.all(files.map((file) => run('dd', [`if=${file}`, 'of=/dev/null', 'bs=1M'])));
  const seconds = (performance.now() - started) / 1000;
  if (results.some((result) => result.code !== 0)) throw new Error('a concurrent reader failed');
  return { bytesPerSecond: (count * READER_FILE_BYTES) / seconds, peakRss: rss.stop() };
}

async function smallFiles(mountpoint, url, dataPaths) {
  await dropCachesKeepingData(dataPaths);
  await clearCalls(url);
  const started = performance.now();
  const result = await run('sh', ['-c', `find "${join(mountpoint, 'small')}" -type f -print0 | xargs -0 cat | wc -c`]);
  const seconds = (performance.now() - started) / 1000;
  const calls = await emulatorCalls(url);
  if (Number(result.stdout.trim()) <= 0) throw new Error('small files read nothing');
  return { filesPerSecond: SMALL_FILES / seconds, callsPerFile: calls.length / SMALL_FILES };
}

const mb = (bytesPerSecond) => (bytesPerSecond / MIB).toFixed(0);
const ratio = (a, b) => (a / b).toFixed(2);

async function main() {
  const only = onlySection(process.argv.slice(2));
  if (only === undefined || only === 'metadata') await runMetadataBenchmark();
  if (only === undefined || only === 'read') await readBenchmark(only === 'read' ? 'npm run bench -- --only read' : 'npm run bench');
  if (only === undefined || only === 'write') await runWriteBenchmark();
}

function onlySection(args) {
  const index = args.indexOf('--only');
  if (index === -1) return undefined;
  const section = args[index + 1];
  if (section !== 'read' && section !== 'metadata' && section !== 'write') {
    throw new Error(`--only takes "read", "metadata" or "write", not "${section}"`);
  }
  return section;
}

/** Runs the read section; `command` is the command line recorded with the figures. */
async function readBenchmark(command) {
  const workDir = await mkdtemp(join(tmpdir(), 'dropbox-mount-bench-'));
  const dataDir = join(workDir, 'data');
  const mountpoint = join(workDir, 'mnt');
  const nullMount = join(workDir, 'null');
  const configFile = join(workDir, 'config.json');
  try {
    await mkdir(mountpoint);
    await mkdir(nullMount);
    console.log('making data (1 GiB file, 64 x 16 MiB files, 5,000 small files)');
    await makeData(dataDir);
    const emulator = await startEmulator(dataDir, configFile);
    let daemon = await startDaemon(mountpoint, configFile);
    const token = await accessToken(configFile);
    const big = join(mountpoint, 'big.bin');
    const bigData = join(dataDir, 'big.bin');
    // The first download hashes the file in the emulator; keep that out of the figures.
    await httpDownload(emulator.url, token, '/big.bin');

    console.log('sequential, unshaped');
    const httpRun = await httpDownload(emulator.url, token, '/big.bin', { emulator: emulator.child.pid });
    const mountRun = await ddRead(big, [bigData], { emulator: emulator.child.pid, daemon: daemon.child.pid });
    const nullFs = await startNullFs(nullMount, BIG_BYTES);
    const nullRun = await ddRead(join(nullMount, 'zero'), [], { 'null fs': nullFs.child.pid });
    await nullFs.stop();
    const httpUnshaped = httpRun.bytesPerSecond;
    const mountUnshaped = mountRun.bytesPerSecond;
    const nullRead = nullRun.bytesPerSecond;
    logCpu('plain HTTP', httpRun.cpu);
    logCpu('mount', mountRun.cpu);
    logCpu('null filesystem', nullRun.cpu);

    console.log('SHA-256 on one core');
    const sha256PerGiB = sha256CoreSecondsPerGiB();

    console.log('sequential, shaped (20 ms, 100 MiB/s)');
    await setShaping(emulator.url, SHAPED);
    const httpShaped = (await httpDownload(emulator.url, token, '/big.bin')).bytesPerSecond;
    const mountShaped = (await ddRead(big, [bigData])).bytesPerSecond;

    console.log('random 4 KiB reads, shaped');
    const random = await randomReads(big, emulator.url, [bigData]);
    await setShaping(emulator.url, UNSHAPED);

    console.log('concurrent readers, unshaped');
    // Listing the folder first makes the emulator hash its files, which the first reader would
    // otherwise wait for.
    await run('ls', ['-l', join(mountpoint, 'readers')]);
    // Each reader count gets a fresh daemon, so its peak RSS is that workload's own and not
    // what the 1 GiB reads before it left allocated.
    await daemon.stop();
    let fresh = await startDaemon(mountpoint, configFile);
    const idleRss = await currentRss(fresh.child.pid);
    const readers8 = await concurrentReaders(mountpoint, 8, fresh.child.pid, [join(dataDir, 'readers')]);
    await fresh.stop();
    fresh = await startDaemon(mountpoint, configFile);
    const readers64 = await concurrentReaders(mountpoint, 64, fresh.child.pid, [join(dataDir, 'readers')]);
    await fresh.stop();
    daemon = await startDaemon(mountpoint, configFile);

    console.log('5,000 small files, unshaped');
    const small = await smallFiles(mountpoint, emulator.url, [join(dataDir, 'small')]);

    const rows = [
      ['sequential 1 GiB, unshaped: mount / plain HTTP', `${mb(mountUnshaped)} / ${mb(httpUnshaped)} MiB/s`, ratio(mountUnshaped, httpUnshaped)],
      ['sequential 1 GiB, unshaped: mount / null filesystem', `${mb(mountUnshaped)} / ${mb(nullRead)} MiB/s`, ratio(mountUnshaped, nullRead)],
      ['sequential 1 GiB, unshaped: plain HTTP / null filesystem', `${mb(httpUnshaped)} / ${mb(nullRead)} MiB/s`, ratio(httpUnshaped, nullRead)],
      ...cpuRows({ httpRun, mountRun, nullRun, sha256PerGiB }),
      ['sequential 1 GiB, shaped: mount / plain HTTP', `${mb(mountShaped)} / ${mb(httpShaped)} MiB/s`, ratio(mountShaped, httpShaped)],
      ['random 4 KiB preads, shaped: range requests per read', random.requestsPerRead.toFixed(2), ''],
      ['random 4 KiB preads, shaped: KiB fetched per read', random.kibPerRead.toFixed(0), ''],
      ['random 4 KiB preads, shaped: p50 / p99 latency', `${random.p50.toFixed(1)} / ${random.p99.toFixed(1)} ms`, ''],
      ['fresh daemon, idle: RSS', `${mb(idleRss)} MiB`, ''],
      ['8 readers, unshaped: aggregate, daemon peak RSS', `${mb(readers8.bytesPerSecond)} MiB/s, ${mb(readers8.peakRss)} MiB`, ''],
      ['64 readers, unshaped: aggregate, daemon peak RSS', `${mb(readers64.bytesPerSecond)} MiB/s, ${mb(readers64.peakRss)} MiB`, ''],
      ['5,000 small files, unshaped: files per second', small.filesPerSecond.toFixed(0), ''],
      ['5,000 small files, unshaped: API calls per file', small.callsPerFile.toFixed(2), ''],
    ];
    const table = markdownTable(['measurement', 'figures', 'ratio'], rows);
    console.log(table);
    await writeReport(table, command);
    await daemon.stop();
    await emulator.stop();
  } finally {
    await cleanup();
    await rm(workDir, { recursive: true, force: true });
  }
}

const cores = (seconds) => seconds.toFixed(2);

function logCpu(run, cpu) {
  const figures = Object.entries(cpu).map(([name, value]) => `${name} ${value.toFixed(3)}`);
  console.log(`CPU per GiB, ${run} run: ${figures.join(', ')}`);
}

/** Formats per-GiB CPU figures as `a / b / ... core-s, N busy cores`. */
function cpuFigures(cpu, names) {
  return `${names.map((name) => cores(cpu[name])).join(' / ')} core-s, ${cpu.busyCores.toFixed(1)} busy cores`;
}

/**
 * Builds the CPU rows and the ceiling rows. Reading through the mount takes at least the CPU of
 * the plain HTTP transfer, the CPU of the FUSE transfer (the null filesystem run) and a SHA-256
 * pass over every byte for the content hash check. With all cores busy and no overhead of its
 * own, the mount therefore reads at most cores / (that sum) GiB per second.
 *
 * The first ceiling takes the transfers' CPU from machine busy time, which also contains any
 * other work on the machine, so on a shared machine it is too low. The second takes only the
 * listed processes and leaves out kernel threads. It is therefore too high, which makes it the
 * safe bound.
 */
function cpuRows({ httpRun, mountRun, nullRun, sha256PerGiB }) {
  const coreCount = availableParallelism();
  const measured = `measured ${mb(mountRun.bytesPerSecond)} MiB/s, ratio ${ratio(mountRun.bytesPerSecond, nullRun.bytesPerSecond)}`;
  const ceilingRow = (source, neededPerGiB) => {
    const ceiling = (coreCount / neededPerGiB) * GIB;
    return [
      `ceiling for the mount on ${coreCount} cores from ${source} above: MiB/s and ratio to null filesystem`,
      `${mb(ceiling)} MiB/s from ${cores(neededPerGiB)} core-s per GiB; ${measured}`,
      ratio(ceiling, nullRun.bytesPerSecond),
    ];
  };
  return [
    ['CPU per GiB, unshaped: plain HTTP run (emulator / curl / other / machine)', cpuFigures(httpRun.cpu, ['emulator', 'curl', 'other', 'machine']), ''],
    ['CPU per GiB, unshaped: mount run (emulator / daemon / dd / other / machine)', cpuFigures(mountRun.cpu, ['emulator', 'daemon', 'dd', 'other', 'machine']), ''],
    ['CPU per GiB, unshaped: null filesystem run (null fs / dd / other / machine)', cpuFigures(nullRun.cpu, ['null fs', 'dd', 'other', 'machine']), ''],
    ['SHA-256 on one core: core-seconds per GiB', `${cores(sha256PerGiB)} core-s (${mb(GIB / sha256PerGiB)} MiB/s)`, ''],
    ceilingRow('machine busy time', httpRun.cpu.machine + nullRun.cpu.machine + sha256PerGiB),
    ceilingRow('listed processes only', httpRun.cpu.listed + nullRun.cpu.listed + sha256PerGiB),
  ];
}

async function writeReport(table, command) {
  await writeSection('read-benchmark', [
    '## Read path (`npm run bench`)',
    '',
    `Run on ${new Date().toISOString().slice(0, 10)}, ${machineSummary()}. Command: \`${command}\` as root.`,
    'Shaped means the emulator adds 20 ms per request and caps bandwidth at 100 MiB/s.',
    'CPU rows are core-seconds per GiB read: utime + stime of each process over all its threads,',
    'the reading command from its waiting shell, and the busy time of all CPUs from /proc/stat',
    '(total minus idle and iowait). Other is machine busy time outside the listed processes:',
    'kernel threads, the bench script, and other work on the machine. A ceiling assumes the mount',
    'needs at least the CPU of the plain HTTP run plus that of the null filesystem run plus one',
    'SHA-256 pass for the content hash check, and can use every core fully. From machine busy',
    'time it counts other work on a shared machine too. From the listed processes only, it leaves',
    'out kernel threads, so it is the higher and safe bound.',
    '',
    table,
  ]);
}

main().catch(async (err) => {
  console.error(err);
  await cleanup();
  process.exit(1);
});
