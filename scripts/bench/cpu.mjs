// CPU accounting for benchmark runs on Linux: CPU time of named processes and of the whole
// machine over a run from procfs, CPU time of a command run to completion, and the speed of
// SHA-256 on one core. Times are in seconds of one core (core-seconds).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { run } from './processes.mjs';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

let clockTicks;

/** Returns USER_HZ, the unit of the times in /proc/PID/stat and /proc/stat. */
async function ticksPerSecond() {
  if (clockTicks === undefined) {
    const result = await run('getconf', ['CLK_TCK']);
    clockTicks = Number(result.stdout.trim());
    if (!(clockTicks > 0)) throw new Error(`getconf CLK_TCK returned "${result.stdout.trim()}"`);
  }
  return clockTicks;
}

/**
 * Splits a /proc/PID/stat line into its fields from field 3 (state) on. The command name in
 * field 2 is in brackets and may contain spaces, so the split starts after the last ')'.
 * Field N of proc(5) is at index N - 3.
 */
function statFields(line) {
  return line.slice(line.lastIndexOf(')') + 2).trim().split(' ').map(Number);
}

/**
 * Returns utime + stime of `pid` in ticks. For a process ID, as opposed to a thread ID, the
 * kernel sums these over all threads, including threads that have exited.
 */
async function processTicks(pid) {
  const fields = statFields(await readFile(`/proc/${pid}/stat`, 'utf8'));
  return fields[14 - 3] + fields[15 - 3];
}

/**
 * Returns the busy ticks of all CPUs from the `cpu` line of /proc/stat: user, nice, system, irq,
 * softirq and steal, which is the total minus idle and iowait. guest and guest_nice are left out
 * because user and nice already contain them.
 */
async function machineBusyTicks() {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((text) => text.startsWith('cpu '));
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return user + nice + system + irq + softirq + steal;
}

/**
 * Starts measuring the CPU time of `processes` (an object of name to PID, all running until
 * `stop`) and of the machine. `stop()` returns wall seconds, machine busy core-seconds, average
 * busy cores and each process's core-seconds, all over the time between the two calls.
 */
export async function startCpuMeter(processes) {
  const hz = await ticksPerSecond();
  const names = Object.keys(processes);
  const processesBefore = await Promise.all(names.map((name) => processTicks(processes[name])));
  const machineBefore = await machineBusyTicks();
  const started = performance.now();
  return {
    async stop() {
      const wallSeconds = (performance.now() - started) / 1000;
      const machineAfter = await machineBusyTicks();
      const processesAfter = await Promise.all(names.map((name) => processTicks(processes[name])));
      const machineSeconds = (machineAfter - machineBefore) / hz;
      const processSeconds = Object.fromEntries(
        names.map((name, i) => [name, (processesAfter[i] - processesBefore[i]) / hz]),
      );
      return { wallSeconds, machineSeconds, busyCores: machineSeconds / wallSeconds, processSeconds };
    },
  };
}

/**
 * Runs a command to completion like `run` and adds `cpuSeconds`, its user + system CPU time
 * including all its threads and any children it waited for.
 *
 * Node's child_process does not return a child's rusage, and reading /proc/PID/stat of the child
 * just before it exits is racy. So a shell runs the command, waits for it, and then reads its
 * own /proc/$$/stat: cutime and cstime hold the CPU time of the children it has reaped, which is
 * only the command here because `read` is a shell builtin. The shell sends that line on fd 3 so
 * that the command's stdout and stderr stay as the command wrote them.
 */
export async function runWithCpu(cmd, args) {
  const hz = await ticksPerSecond();
  const script = '"$@" 3>&-; status=$?; read -r stat < /proc/$$/stat; printf "%s\\n" "$stat" >&3; exit $status';
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', script, 'sh', cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let statLine = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.stdio[3].on('data', (chunk) => (statLine += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (!statLine.includes(')')) {
        reject(new Error(`${cmd} exited with ${code}, but its shell sent no /proc/PID/stat line, so its CPU time is unknown: ${stderr}`));
        return;
      }
      const fields = statFields(statLine);
      const cpuSeconds = (fields[16 - 3] + fields[17 - 3]) / hz;
      resolve({ code, stdout, stderr, cpuSeconds });
    });
  });
}

/**
 * Hashes 1 GiB with SHA-256 on this thread, in 128 KiB chunks taken in turn from a 4 MiB random
 * buffer, and returns the CPU seconds it took. The CPU time of the process, not wall time, is
 * measured, so other work on the machine does not count, and the other threads of this process
 * are idle during the synchronous loop.
 */
export function sha256CoreSecondsPerGiB() {
  const chunkBytes = 128 * 1024;
  const source = randomBytes(4 * MIB);
  const hash = createHash('sha256');
  const before = process.cpuUsage();
  for (let offset = 0; offset < GIB; offset += chunkBytes) {
    const start = offset % source.length;
    hash.update(source.subarray(start, start + chunkBytes));
  }
  hash.digest();
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}
