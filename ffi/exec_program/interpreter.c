// exec's syscall program interpreter: the only code a forked child of `skiff exec` ever runs.
//
// `skiff exec` (Deno) plans the whole way into the container as a table of system calls
// (lib/runtime/exec_program.ts), lays it out with every byte its arguments point to in one mapping
// (this code, the table and data, a stack), and calls skiff_fork(). The child leaves Deno's memory
// at once (it unmaps all but the program's pages: a container with CAP_SYS_PTRACE could read a copy
// of skiff's heap otherwise) and runs the entries in order. A failing entry writes {index + 1, errno}
// to the error pipe and exit_groups with the entry's code; an OP_FORK entry continues in the child
// and sends the parent to another entry.
//
// Freestanding: no libc, no globals, no relocations (built by scripts/build-exec-program.sh for
// x86-64 and arm64; the bytes are in ffi/exec_program/code.ts). Keep it small and obvious.

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;

enum { OP_SYSCALL = 0, OP_FORK = 1, OP_UNMAP_OTHERS = 2, OP_RESET_SIGNALS = 3, OP_RSEQ_UNREGISTER = 4, OP_CHAIN = 5 };
// F_ZERO_FAILS: a result of 0 fails too (a read that met EOF: the parent is gone), as EPIPE
// F_RESULT_ARG(k): arg[k] names an earlier entry of this program whose result is passed instead
// (an fd a pidfd_getfd gave, for the calls that use it)
enum { F_IGNORE_ERROR = 1, F_ZERO_FAILS = 2 };
#define F_RESULT_ARG(k) (0x100u << (k))

struct entry { // 80 bytes
  u32 op;
  u32 flags;
  u32 exit_code; // of the process, when this entry fails
  u32 jump; // OP_FORK: the entry the parent goes on with
  u64 nr;
  u64 arg[6];
  i64 result; // OP_FORK's parent: the child's pid << 32 (a record {0, pid} for the pipe)
};

struct program {
  u64 fork_nr; // skiff_fork's system call (clone), its arguments: a stack in these pages
  u64 fork_arg[5];
  u64 base, end; // the program's pages: all OP_UNMAP_OTHERS keeps
  u64 error_fd;
  u64 count;
  struct entry entries[];
};

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_MUNMAP 11
#define NR_RT_SIGACTION 13
#define NR_RT_SIGPROCMASK 14
#define NR_EXIT_GROUP 231
#define NR_ARCH_PRCTL 158
#define NR_RSEQ 334
static inline i64 sys6(u64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) {
  register u64 r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  i64 ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
#define NR_WRITE 64
#define NR_MUNMAP 215
#define NR_RT_SIGACTION 134
#define NR_RT_SIGPROCMASK 135
#define NR_EXIT_GROUP 94
#define NR_RSEQ 293
static inline i64 sys6(u64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) {
  register u64 x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                               x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return (i64)x0;
}
#else
#error "x86-64 and arm64 only"
#endif

static inline int failed(i64 r) { return r < 0 && r > -4096; }

__attribute__((noreturn)) static void fail(struct program *p, u32 index, i64 err, u32 code) {
  u32 record[2] = {index + 1, (u32)err};
  sys6(NR_WRITE, p->error_fd, (u64)record, sizeof record, 0, 0, 0);
  for (;;) sys6(NR_EXIT_GROUP, code, 0, 0, 0, 0, 0);
}

// Every address the kernel may give a process ends below one of these (x86-64 with 4- or 5-level
// page tables, arm64 with 39-, 42-, 47-, 48- or 52-bit addresses): unmapping [end, top) for each
// that the kernel accepts leaves nothing above the program.
static i64 unmap_others(struct program *p) {
  static const u64 tops[] = {1UL << 39, 1UL << 42, (1UL << 47) - 4096, 1UL << 47, 1UL << 48, 1UL << 52,
                             (1UL << 56) - 4096, 1UL << 57};
  i64 r = p->base ? sys6(NR_MUNMAP, 0, p->base, 0, 0, 0, 0) : 0;
  if (failed(r)) return r;
  int any = 0;
  for (unsigned i = 0; i < sizeof tops / sizeof tops[0]; i++) {
    if (tops[i] > p->end && !failed(sys6(NR_MUNMAP, p->end, tops[i] - p->end, 0, 0, 0, 0))) any = 1;
  }
  return any ? 0 : -22;
}

// glibc registered the thread's rseq area (in its TLS) with the kernel, and a fork keeps it: once
// the area is unmapped the kernel's next update of it kills the process (SIGSEGV). arg[0] is
// glibc's __rseq_offset from the thread pointer, arg[1] __rseq_size, arg[2] the signature; glibc
// 2.35+ registers 32 bytes whatever the size it shows.
static i64 rseq_unregister(struct entry *e) {
  u64 tp;
#if defined(__x86_64__)
  i64 r = sys6(NR_ARCH_PRCTL, 0x1003 /* ARCH_GET_FS */, (u64)&tp, 0, 0, 0, 0);
  if (failed(r)) return r;
#else
  __asm__ volatile("mrs %0, tpidr_el0" : "=r"(tp));
#endif
  i64 r2 = sys6(NR_RSEQ, tp + e->arg[0], e->arg[1], 1 /* RSEQ_FLAG_UNREGISTER */, e->arg[2], 0, 0);
  if (r2 == -22 && e->arg[1] != 32) r2 = sys6(NR_RSEQ, tp + e->arg[0], 32, 1, e->arg[2], 0, 0);
  return r2;
}

static void reset_signals(void) {
  volatile u64 dfl[4] = {0, 0, 0, 0}; // struct kernel_sigaction: SIG_DFL, no flags, empty mask
  for (u64 sig = 1; sig <= 64; sig++) sys6(NR_RT_SIGACTION, sig, (u64)dfl, 0, 8, 0, 0);
}

__attribute__((noreturn, used)) void skiff_run(struct program *p) {
  for (u32 i = 0; i < p->count;) {
    struct entry *e = &p->entries[i];
    i64 r;
    if (e->op == OP_CHAIN) { // the next program (run's stage: written into shared pages after the fork)
      p = (struct program *)e->arg[0];
      i = 0;
      continue;
    }
    if (e->op == OP_UNMAP_OTHERS) r = unmap_others(p);
    else if (e->op == OP_RSEQ_UNREGISTER) r = rseq_unregister(e);
    else if (e->op == OP_RESET_SIGNALS) {
      reset_signals();
      r = 0;
    } else {
      u64 a[6];
      for (int k = 0; k < 6; k++) a[k] = (e->flags & F_RESULT_ARG(k)) ? (u64)p->entries[e->arg[k]].result : e->arg[k];
      r = sys6(e->nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    }
    if (failed(r) && !(e->flags & F_IGNORE_ERROR)) fail(p, i, -r, e->exit_code);
    if (r == 0 && (e->flags & F_ZERO_FAILS)) fail(p, i, 32 /* EPIPE */, e->exit_code);
    if (e->op == OP_FORK && r > 0) {
      e->result = (i64)((u64)r << 32);
      i = e->jump;
      continue;
    }
    e->result = r;
    i++;
  }
  for (;;) sys6(NR_EXIT_GROUP, 0, 0, 0, 0, 0, 0);
}

// long skiff_fork(struct program *p), at offset 0: forks with p->fork_nr (clone onto the program's
// stack, fork semantics otherwise) with every signal blocked (Deno's handlers are about to be
// unmapped in the child), and returns the child's pid (or -errno) to the caller. The child runs
// skiff_run(p) on the new stack and never returns. Registers kept across the system call carry p.
#if defined(__x86_64__)
__asm__(".section .text.entry,\"ax\"\n"
        ".globl skiff_fork\n"
        "skiff_fork:\n"
        "  push %rbx\n"
        "  sub $16, %rsp\n" // the old mask at (%rsp); the new one below it is all ones
        "  mov %rdi, %rbx\n"
        "  movq $-1, %rax\n"
        "  push %rax\n"
        "  mov $14, %eax\n" // rt_sigprocmask(SIG_SETMASK, all, &old, 8)
        "  mov $2, %edi\n"
        "  mov %rsp, %rsi\n"
        "  lea 8(%rsp), %rdx\n"
        "  mov $8, %r10d\n"
        "  syscall\n"
        "  pop %rax\n"
        "  mov %rbx, %r9\n"
        "  mov 0(%r9), %rax\n"
        "  mov 8(%r9), %rdi\n"
        "  mov 16(%r9), %rsi\n"
        "  mov 24(%r9), %rdx\n"
        "  mov 32(%r9), %r10\n"
        "  mov 40(%r9), %r8\n"
        "  syscall\n"
        "  test %rax, %rax\n"
        "  jnz 1f\n"
        "  mov %r9, %rdi\n" // the child, on the program's stack
        "  and $-16, %rsp\n"
        "  call skiff_run\n"
        "  ud2\n"
        "1:\n"
        "  mov %rax, %rbx\n"
        "  mov $14, %eax\n" // the old mask back
        "  mov $2, %edi\n"
        "  mov %rsp, %rsi\n"
        "  xor %edx, %edx\n"
        "  mov $8, %r10d\n"
        "  syscall\n"
        "  mov %rbx, %rax\n"
        "  add $16, %rsp\n"
        "  pop %rbx\n"
        "  ret\n"
        ".text\n");
#else
__asm__(".section .text.entry,\"ax\"\n"
        ".globl skiff_fork\n"
        "skiff_fork:\n"
        "  stp x29, x30, [sp, #-32]!\n"
        "  mov x29, sp\n"
        "  str x19, [sp, #16]\n"
        "  mov x19, x0\n"
        "  mov x9, #-1\n"
        "  str x9, [sp, #24]\n" // the new mask: all ones
        "  sub sp, sp, #16\n" // the old mask at [sp], the new one at [sp, #40]
        "  mov x0, #2\n" // rt_sigprocmask(SIG_SETMASK, all, &old, 8)
        "  add x1, sp, #40\n"
        "  mov x2, sp\n"
        "  mov x3, #8\n"
        "  mov x8, #135\n"
        "  svc 0\n"
        "  mov x9, x19\n"
        "  ldr x8, [x9, #0]\n"
        "  ldr x0, [x9, #8]\n"
        "  ldr x1, [x9, #16]\n"
        "  ldr x2, [x9, #24]\n"
        "  ldr x3, [x9, #32]\n"
        "  ldr x4, [x9, #40]\n"
        "  svc 0\n"
        "  cbnz x0, 1f\n"
        "  mov x0, x9\n" // the child, on the program's stack
        "  bl skiff_run\n"
        "  brk #0\n"
        "1:\n"
        "  mov x19, x0\n"
        "  mov x0, #2\n" // the old mask back
        "  mov x1, sp\n"
        "  mov x2, #0\n"
        "  mov x3, #8\n"
        "  mov x8, #135\n"
        "  svc 0\n"
        "  mov x0, x19\n"
        "  add sp, sp, #16\n"
        "  ldr x19, [sp, #16]\n"
        "  ldp x29, x30, [sp], #32\n"
        "  ret\n"
        ".text\n");
#endif
