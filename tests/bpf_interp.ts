// A small classic-BPF interpreter for seccomp programs: the compiler's unit tests and
// bench/seccomp_libseccomp.ts run filters through it (the real-kernel tests run them in the kernel).

/** Runs a classic BPF seccomp program on (arch, nr, args); returns the SECCOMP_RET value. */
export function runBpf(prog: Uint8Array, arch: number, nr: number, args: bigint[] = []): number {
  const view = new DataView(prog.buffer, prog.byteOffset, prog.byteLength);
  const data = new DataView(new ArrayBuffer(64));
  data.setUint32(0, nr >>> 0, true);
  data.setUint32(4, arch >>> 0, true);
  args.forEach((a, i) => data.setBigUint64(16 + 8 * i, BigInt.asUintN(64, a), true));
  let A = 0, X = 0, pc = 0;
  const mem = new Uint32Array(16);
  for (let steps = 0; steps < 10000; steps++) {
    const code = view.getUint16(pc * 8, true), jt = view.getUint8(pc * 8 + 2), jf = view.getUint8(pc * 8 + 3);
    const k = view.getUint32(pc * 8 + 4, true);
    pc++;
    switch (code) {
      case 0x20:
        A = data.getUint32(k, true);
        break;
      case 0x54:
        A = (A & k) >>> 0;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x15:
        pc += A === k ? jt : jf;
        break;
      case 0x25:
        pc += A > k ? jt : jf;
        break;
      case 0x35:
        pc += A >= k ? jt : jf;
        break;
      case 0x45: // jset
        pc += (A & k) !== 0 ? jt : jf;
        break;
      case 0x00: // ld imm
        A = k >>> 0;
        break;
      case 0x60: // ld M[k]
        A = mem[k];
        break;
      case 0x02: // st M[k]
        mem[k] = A;
        break;
      case 0x03: // stx M[k]
        mem[k] = X;
        break;
      case 0x61: // ldx M[k]
        X = mem[k];
        break;
      case 0x07: // tax
        X = A;
        break;
      case 0x87: // txa
        A = X;
        break;
      case 0x06:
        return k >>> 0;
      case 0x16: // ret A
        return A >>> 0;
      default:
        throw new Error(`unknown BPF opcode ${code.toString(16)} at ${pc - 1}`);
    }
    if (pc * 8 >= prog.length) throw new Error("ran off the end of the program");
  }
  throw new Error("no return");
}
