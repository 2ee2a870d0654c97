// skiff's --init: PID 1 of the container when docker would run docker-init (tini). It runs the
// command as its child, forwards every signal it can catch to it, reaps every zombie the container
// leaves to PID 1, and exits with the child's exit code (128 + the signal when a signal killed it),
// as tini does.
//
// Invoked as `/sbin/docker-init -- CMD ARGS...` (docker's argv; the init stage executes it from a
// sealed memfd, lib/runtime/init_program.ts). Freestanding: no libc, no globals written, no
// relocations; a static ELF for x86-64 and arm64 built by scripts/build-init-program.sh, its bytes in
// lib/runtime/init_program/binary.ts.

typedef unsigned long u64;
typedef long i64;

#if defined(__x86_64__)
#define NR_WRITE 1
#define NR_RT_SIGACTION 13
#define NR_RT_SIGPROCMASK 14
#define NR_IOCTL 16
#define NR_GETPID 39
#define NR_CLONE 56
#define NR_EXECVE 59
#define NR_WAIT4 61
#define NR_KILL 62
#define NR_SETPGID 109
#define NR_PRCTL 157
#define NR_RT_SIGTIMEDWAIT 128
#define NR_EXIT_GROUP 231
static inline i64 sys6(u64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) {
  register u64 r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
  i64 ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
// the kernel starts us with the stack pointer at argc; hand that to start()
__asm__(".text\n.global _start\n_start:\n xor %ebp, %ebp\n mov %rsp, %rdi\n and $-16, %rsp\n call start\n hlt\n");
#elif defined(__aarch64__)
#define NR_WRITE 64
#define NR_RT_SIGACTION 134
#define NR_RT_SIGPROCMASK 135
#define NR_IOCTL 29
#define NR_GETPID 172
#define NR_CLONE 220
#define NR_EXECVE 221
#define NR_WAIT4 260
#define NR_KILL 129
#define NR_SETPGID 154
#define NR_PRCTL 167
#define NR_RT_SIGTIMEDWAIT 137
#define NR_EXIT_GROUP 94
static inline i64 sys6(u64 n, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f) {
  register u64 x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b, x2 __asm__("x2") = c,
                               x3 __asm__("x3") = d, x4 __asm__("x4") = e, x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return (i64)x0;
}
__asm__(".text\n.global _start\n_start:\n mov x29, #0\n mov x30, #0\n mov x0, sp\n bl start\n brk #0\n");
#else
#error "x86-64 and arm64 only"
#endif

#define SIGCHLD 17
#define SIGTTIN 21
#define SIGTTOU 22
#define TIOCSPGRP 0x5410
#define WNOHANG 1
#define ENOENT 2
#define EINTR 4
#define EAGAIN 11
#define EACCES 13
#define ENOTDIR 20

#define BIT(sig) (1UL << ((sig) - 1))
// tini's set: everything but what a fault raises (it must kill us, not wait) and the tty stops
#define SYNCHRONOUS (BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(8) | BIT(11) | BIT(31) | BIT(SIGTTIN) | BIT(SIGTTOU))
#define WAITED (~0UL & ~SYNCHRONOUS)

__attribute__((noreturn)) static void leave(int code) {
  for (;;) sys6(NR_EXIT_GROUP, (u64)code, 0, 0, 0, 0, 0);
}

static u64 length(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}

static void say(const char *s) { sys6(NR_WRITE, 2, (u64)s, length(s), 0, 0, 0); }

static void sigaction_to(int sig, u64 handler) {
  volatile u64 action[4] = {handler, 0, 0, 0}; // struct kernel_sigaction: handler, flags, restorer, mask
  sys6(NR_RT_SIGACTION, (u64)sig, (u64)action, 0, 8, 0, 0);
}

static int starts_with(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}

// execvp: a name without "/" is looked for in $PATH (glibc's default when unset); EACCES on one
// candidate does not stop the search, but is what is reported if nothing runs.
static i64 exec_path(char **argv, char **envp) {
  const char *name = argv[0];
  for (const char *c = name; *c; c++)
    if (*c == '/') return sys6(NR_EXECVE, (u64)name, (u64)argv, (u64)envp, 0, 0, 0);
  const char *path = "/bin:/usr/bin";
  for (char **e = envp; *e; e++)
    if (starts_with(*e, "PATH=")) path = *e + 5;
  u64 n = length(name);
  i64 err = -ENOENT;
  int denied = 0;
  char candidate[4096];
  while (1) {
    const char *end = path;
    while (*end && *end != ':') end++;
    u64 dir = (u64)(end - path);
    // "dir/name\0", an empty dir meaning "."; a candidate that does not fit is skipped
    if ((dir ? dir : 1) + 1 + n + 1 <= sizeof candidate) {
      u64 i = 0;
      if (dir == 0) candidate[i++] = '.';
      for (const char *c = path; c < end; c++) candidate[i++] = *c;
      candidate[i++] = '/';
      for (u64 k = 0; k <= n; k++) candidate[i++] = name[k];
      err = sys6(NR_EXECVE, (u64)candidate, (u64)argv, (u64)envp, 0, 0, 0);
      if (err == -EACCES) denied = 1;
      else if (err != -ENOENT && err != -ENOTDIR) return err;
    }
    if (!*end) break;
    path = end + 1;
  }
  return denied ? -EACCES : err;
}

static void say_number(u64 n) {
  char digits[24];
  int i = sizeof digits;
  digits[--i] = 0;
  do digits[--i] = (char)('0' + n % 10); while ((n /= 10) && i > 0);
  say(digits + i);
}

// tini's words: "[FATAL tini (PID)] exec CMD failed: REASON"
static void fatal_exec(const char *name, i64 err) {
  say("[FATAL tini (");
  say_number((u64)sys6(NR_GETPID, 0, 0, 0, 0, 0, 0));
  say(")] exec ");
  say(name);
  say(err == -ENOENT ? " failed: No such file or directory\n"
                     : err == -EACCES ? " failed: Permission denied\n" : " failed\n");
}

// the child: a process group of its own that becomes the terminal's foreground group (so ^C reaches
// it, not us), the tty signals back to default, the caller's signal mask, then the command
__attribute__((noreturn)) static void child(char **argv, char **envp, u64 mask) {
  i64 pid = sys6(NR_GETPID, 0, 0, 0, 0, 0, 0);
  sys6(NR_SETPGID, 0, 0, 0, 0, 0, 0);
  int pgrp = (int)pid;
  sys6(NR_IOCTL, 0, TIOCSPGRP, (u64)&pgrp, 0, 0, 0); // ENOTTY without a terminal: fine
  sigaction_to(SIGTTIN, 0);
  sigaction_to(SIGTTOU, 0);
  sys6(NR_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, (u64)&mask, 0, 8, 0, 0);
  i64 err = exec_path(argv, envp);
  fatal_exec(argv[0], err);
  leave(err == -ENOENT ? 127 : 126);
}

__attribute__((noreturn, used)) void start(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  int first = 1;
  if (first < argc && argv[first][0] == '-' && argv[first][1] == '-' && argv[first][2] == 0) first++;
  if (first >= argc) {
    say("usage: docker-init -- COMMAND [ARG...]\n");
    leave(1);
  }

  // the name `ps` shows: the memfd's would read "memfd:docker-in"
  sys6(NR_PRCTL, 15 /* PR_SET_NAME */, (u64) "docker-init", 0, 0, 0, 0);
  u64 waited = WAITED, old = 0;
  sys6(NR_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, (u64)&waited, (u64)&old, 8, 0, 0);
  sigaction_to(SIGTTIN, 1 /* SIG_IGN */);
  sigaction_to(SIGTTOU, 1);

  i64 pid = sys6(NR_CLONE, SIGCHLD, 0, 0, 0, 0, 0); // fork
  if (pid == 0) child(argv + first, envp, old);
  if (pid < 0) {
    say("[FATAL tini] fork failed\n");
    leave(1);
  }

  for (;;) {
    u64 info[16]; // siginfo_t
    i64 sig = sys6(NR_RT_SIGTIMEDWAIT, (u64)&waited, (u64)info, 0, 8, 0, 0);
    if (sig > 0 && sig != SIGCHLD) sys6(NR_KILL, (u64)pid, (u64)sig, 0, 0, 0, 0);
    else if (sig < 0 && sig != -EINTR && sig != -EAGAIN) leave(1);
    // reap every zombie there is; when the command is one of them, its status is ours
    for (;;) {
      int status = 0;
      i64 w = sys6(NR_WAIT4, (u64)-1, (u64)&status, WNOHANG, 0, 0, 0);
      if (w <= 0) break;
      if (w == pid) {
        int signal = status & 0x7f;
        leave(signal ? 128 + signal : (status >> 8) & 0xff);
      }
    }
  }
}
