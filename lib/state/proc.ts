// Processes by pid and start time: a pid alone may have been reused by another process.

/** Start time of a process in clock ticks since boot, or undefined when it does not exist. */
export function processStartTime(pid: number): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // the command name may contain spaces and parentheses: fields start after the last ')'
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return undefined; // a zombie is not running
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True when the record's process is still the one skiff started (not exited, pid not reused). */
export function isProcessAlive(pid: number, startTime: number | undefined): boolean {
  const now = processStartTime(pid);
  return now !== undefined && (startTime === undefined || now === startTime);
}
