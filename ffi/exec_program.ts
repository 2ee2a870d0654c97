// Loads and starts exec's syscall program (lib/runtime/exec_program.ts plans and encodes it; the
// interpreter is ffi/exec_program/interpreter.c, its bytes in ./exec_program/code.ts): one mapping
// of code, program and stack, forked from the calling thread by the interpreter's skiff_fork.

import { mapAnonymous, PAGE_GRANULE, protectCode, unmap } from "./libc.ts";
import { errnoName, SysError } from "./errors.ts";
import { EXEC_PROGRAM_CODE } from "./exec_program/code.ts";

const arch = Deno.build.arch === "aarch64" ? "aarch64" : "x86_64";
let code: Uint8Array<ArrayBuffer> | undefined;

/** The interpreter's machine code for this architecture. */
export function interpreterCode(): Uint8Array<ArrayBuffer> {
  // V8's own decoder: atob and a copy by character cost exec ~1.3 ms (and loading atob's script)
  code ??= Uint8Array.fromBase64(EXEC_PROGRAM_CODE[arch]);
  return code;
}

/** A mapping for one program: `codeSize` bytes of code at its start, then data and stack. */
export interface ProgramMapping {
  pointer: Deno.PointerObject;
  base: bigint;
  size: number;
  codeSize: number;
}

/** Maps `dataSize` bytes of program and `stackSize` of stack after a page-rounded code part. */
export function mapProgram(dataSize: number, stackSize: number, shared = false): ProgramMapping {
  const round = (n: number) => Math.ceil(n / PAGE_GRANULE) * PAGE_GRANULE;
  const codeSize = round(interpreterCode().length);
  const size = codeSize + round(dataSize) + round(stackSize);
  const pointer = mapAnonymous(size, shared);
  return { pointer, base: BigInt(Deno.UnsafePointer.value(pointer)), size, codeSize };
}

/** skiff's argv strings in its memory (arg_start to arg_end: fields 48 and 49 of /proc/self/stat). */
let commandLine: Uint8Array | undefined;
function commandLineBytes(): Uint8Array {
  if (!commandLine) {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // field 3 first
    const start = BigInt(fields[48 - 3]), end = BigInt(fields[49 - 3]);
    const pointer = Deno.UnsafePointer.create(start);
    commandLine = pointer && end > start
      ? new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, Number(end - start)))
      : new Uint8Array(0);
  }
  return commandLine;
}

/**
 * Writes the code and the encoded program (placed right after the code), makes the code
 * executable, and forks: the child runs the program, the caller gets its pid.
 * `blankCommandLine`: the child's copy of skiff's argv is all zeros (skiff's own is put back at
 * once). A child forked into another container's PID namespace is seen there from its first
 * instant, and /proc/<pid>/cmdline needs no ptrace right: until the child runs (a busy host:
 * milliseconds) it showed skiff's command line, the values of -e with it.
 */
export function forkProgram(mapping: ProgramMapping, program: Uint8Array, blankCommandLine = false): number {
  const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(mapping.pointer, mapping.size));
  view.set(interpreterCode());
  view.set(program, mapping.codeSize);
  protectCode(mapping.pointer, mapping.codeSize);
  const definition = { parameters: ["pointer"], result: "i64" } as const;
  const fork = new Deno.UnsafeFnPointer(
    mapping.pointer as Deno.PointerObject<typeof definition>,
    definition,
  );
  const line = blankCommandLine ? commandLineBytes() : new Uint8Array(0);
  const saved = line.slice();
  line.fill(0);
  let pid: number;
  try {
    pid = Number(fork.call(Deno.UnsafePointer.offset(mapping.pointer, mapping.codeSize)));
  } finally {
    line.set(saved);
  }
  if (pid < 0) throw new SysError("clone", -pid, errnoName(-pid), `errno ${-pid}`);
  return pid;
}

export const unmapProgram = (mapping: ProgramMapping) => unmap(mapping.pointer, mapping.size);

/**
 * Writes `bytes` at `offset` of a shared program mapping named by its address (run's stage: a
 * later program for the forked child, written from whichever thread plans it).
 */
export function writeIntoMapping(base: bigint, size: number, offset: number, bytes: Uint8Array): void {
  if (offset < 0 || offset + bytes.length > size) throw new RangeError("program larger than its mapping");
  const pointer = Deno.UnsafePointer.create(base);
  if (pointer === null) throw new RangeError("no mapping");
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(pointer, size)).set(bytes, offset);
}

export interface RseqRegistration {
  /** From the thread pointer (glibc's __rseq_offset). */
  offset: bigint;
  size: number;
  signature: number;
}
let rseq: RseqRegistration | null | undefined;

/** glibc's rseq registration of the calling thread (the child must undo it), or null. */
export function rseqRegistration(): RseqRegistration | null {
  if (rseq !== undefined) return rseq;
  try {
    const lib = Deno.dlopen(
      "libc.so.6",
      {
        __rseq_offset: { type: "i64" },
        __rseq_size: { type: "u32" },
      } as const,
    );
    const size = Number(lib.symbols.__rseq_size);
    const offset = BigInt(lib.symbols.__rseq_offset);
    rseq = size === 0 ? null : { offset, size, signature: arch === "aarch64" ? 0xd428bc00 : 0x53053053 };
  } catch {
    rseq = null; // a glibc before 2.35 registers none
  }
  return rseq;
}
