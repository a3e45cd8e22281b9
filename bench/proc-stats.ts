// What /proc says about a child process: its peak resident set and the CPU time it used (Linux; NaN elsewhere).
import { readFileSync } from "node:fs";

/** Peak resident set (VmHWM) of a live process, MiB; NaN once it is gone or without /proc. */
export function peakRssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a live process used so far; NaN once it is gone or without /proc. */
export function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime in clock ticks (USER_HZ = 100)
  } catch {
    return NaN;
  }
}

/** Samples a process's VmHWM every 250 ms so the figure survives the process (read it before stopping it). */
export function peakRssSampler(pid: number): { peakMiB(): number; stop(): void } {
  let peak = 0;
  const sample = () => {
    const v = peakRssMiB(pid);
    if (v > peak) peak = v;
  };
  const timer = setInterval(sample, 250);
  timer.unref();
  return { peakMiB: () => (sample(), peak), stop: () => clearInterval(timer) };
}
