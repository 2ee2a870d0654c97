// The start of dist/skiff-linux-*: a freestanding static program (no libc, only system calls) that
// finds the payload appended to its own file, unpacks it once into a cache directory named after the
// payload's hash, and from then on only checks that directory and execs the Deno inside it, with the
// command line that scripts/dist.sh wrote into <cache>/<key>/start ("./x" is <cache>/<key>/x), then
// the caller's arguments, and DENO_DIR=<cache>/<key>/deno-dir:
//
//   <cache>/<key>/deno run -A --cached-only --config <cache>/<key>/skiff/deno.json
//     <cache>/<key>/skiff/main.ts ARGS...
//
// File layout: [this program][payload: an uncompressed ustar archive][80-byte trailer]. The trailer:
// "skiff-dist-v1" padded to 16 bytes, the payload's offset, its size and the size of its first entry
// (the Deno runtime, `deno`) as little-endian u64s, 8 bytes of zeros, the payload's SHA-256.
//
// <cache> is $SKIFF_CACHE_DIR, else for root /var/cache/skiff, else $XDG_CACHE_HOME/skiff, else
// $HOME/.cache/skiff, else /var/cache/skiff; <key> is the first 24 hex digits of the SHA-256. It must be
// in the hands of this user (or root) alone, all the way from /: the runtime there is run as this user.
//
// At every start (a few system calls): the path to the directory is trusted, the directory's `ok`
// marker exists and its runtime has the size the trailer says. Once, when that fails (first run, or a damaged cache), under an exclusive
// flock on <cache>/<key>.lock: the old directory is moved aside and removed, the payload is unpacked
// into <cache>/.tmp-<key>-<pid> while its SHA-256 is computed (a mismatch: the file itself is damaged,
// nothing is installed), every file is checked to have its full size, the marker is written, the file
// system is synced, and the directory is renamed into place. Concurrent first runs wait on the lock
// and then find the directory ready. scripts/dist/build-launcher.sh builds it for x86-64 and arm64.

typedef unsigned long u64;
typedef long i64;
typedef unsigned int u32;
typedef unsigned char u8;

#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_EXCL 0200
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#ifdef __aarch64__
#define O_DIRECTORY 040000
#else
#define O_DIRECTORY 0200000
#endif
#define LOCK_EX 2
#define EINTR 4
#define EEXIST 17
#define EISDIR 21

#ifdef __x86_64__
enum {
  SYS_read = 0, SYS_write = 1, SYS_close = 3, SYS_fstat = 5, SYS_lseek = 8, SYS_pread64 = 17,
  SYS_getpid = 39, SYS_execve = 59, SYS_flock = 73, SYS_getdents64 = 217, SYS_exit_group = 231,
  SYS_openat = 257, SYS_mkdirat = 258, SYS_newfstatat = 262, SYS_unlinkat = 263, SYS_symlinkat = 266,
  SYS_syncfs = 306, SYS_renameat2 = 316, SYS_geteuid = 107,
};
#define ST_MODE 24 // offsets in struct stat
#define ST_UID 28
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 r10 __asm__("r10") = d;
  register i64 r8 __asm__("r8") = e;
  register i64 r9 __asm__("r9") = f;
  i64 ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
__asm__(".text\n.global _start\n_start:\n  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n"
        "  call launcher_main\n  hlt\n");
#elif defined(__aarch64__)
enum {
  SYS_read = 63, SYS_write = 64, SYS_close = 57, SYS_fstat = 80, SYS_lseek = 62, SYS_pread64 = 67,
  SYS_getpid = 172, SYS_execve = 221, SYS_flock = 32, SYS_getdents64 = 61, SYS_exit_group = 94,
  SYS_openat = 56, SYS_mkdirat = 34, SYS_newfstatat = 79, SYS_unlinkat = 35, SYS_symlinkat = 36,
  SYS_syncfs = 267, SYS_renameat2 = 276, SYS_geteuid = 175,
};
#define ST_MODE 16 // offsets in struct stat
#define ST_UID 24
static i64 sys6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f) {
  register i64 x8 __asm__("x8") = n;
  register i64 x0 __asm__("x0") = a;
  register i64 x1 __asm__("x1") = b;
  register i64 x2 __asm__("x2") = c;
  register i64 x3 __asm__("x3") = d;
  register i64 x4 __asm__("x4") = e;
  register i64 x5 __asm__("x5") = f;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory");
  return x0;
}
__asm__(".text\n.global _start\n_start:\n  mov x0, sp\n  and sp, x0, #-16\n  bl launcher_main\n"
        "  brk #0\n");
#else
#error "x86-64 and arm64 only"
#endif

#define sys3(n, a, b, c) sys6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

// gcc may emit calls to these for struct copies and zeroing
void *memset(void *d, int c, u64 n) {
  u8 *p = d;
  while (n--) *p++ = (u8)c;
  return d;
}
void *memcpy(void *d, const void *s, u64 n) {
  u8 *p = d;
  const u8 *q = s;
  while (n--) *p++ = *q++;
  return d;
}

static u64 slen(const char *s) {
  u64 n = 0;
  while (s[n]) n++;
  return n;
}
static int starts(const char *s, const char *prefix) {
  while (*prefix)
    if (*s++ != *prefix++) return 0;
  return 1;
}
/** Appends src to the NUL-terminated string at dst (capacity cap); 0 when it does not fit. */
static int cat(char *dst, u64 cap, const char *src) {
  u64 n = slen(dst), m = slen(src);
  if (n + m + 1 > cap) return 0;
  memcpy(dst + n, src, m + 1);
  return 1;
}

static void put(const char *s) { sys3(SYS_write, 2, s, slen(s)); }
static void rmtree(int dirfd, const char *name);
/** The temp dir of an unpack under way: a failure removes it (a killed run's goes at the next unpack). */
static const char *unpacking;
static void __attribute__((noreturn)) die(const char *what, const char *detail) {
  if (unpacking) rmtree(AT_FDCWD, unpacking);
  put("skiff: ");
  put(what);
  if (detail) {
    put(": ");
    put(detail);
  }
  put("\n");
  for (;;) sys3(SYS_exit_group, 125, 0, 0);
}

// ---- SHA-256 (the payload's integrity, checked once when unpacking) ----
static const u32 K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
struct sha {
  u32 h[8];
  u8 block[64];
  u64 used, total;
};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
static void sha_block(struct sha *s, const u8 *p) {
  u32 w[64], a, b, c, d, e, f, g, h;
  for (int i = 0; i < 16; i++) w[i] = (u32)p[4 * i] << 24 | (u32)p[4 * i + 1] << 16 | (u32)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    u32 s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    u32 s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    u32 t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    u32 t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
  }
  s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}
static void sha_init(struct sha *s) {
  static const u32 iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  for (int i = 0; i < 8; i++) s->h[i] = iv[i];
  s->used = s->total = 0;
}
static void sha_update(struct sha *s, const u8 *p, u64 n) {
  s->total += n;
  if (s->used) {
    while (n && s->used < 64) s->block[s->used++] = *p++, n--;
    if (s->used < 64) return;
    sha_block(s, s->block);
    s->used = 0;
  }
  for (; n >= 64; p += 64, n -= 64) sha_block(s, p);
  while (n--) s->block[s->used++] = *p++;
}
static void sha_final(struct sha *s, u8 out[32]) {
  u64 bits = s->total * 8;
  u8 pad = 0x80;
  sha_update(s, &pad, 1);
  pad = 0;
  while (s->used != 56) sha_update(s, &pad, 1);
  u8 len[8];
  for (int i = 0; i < 8; i++) len[i] = (u8)(bits >> (56 - 8 * i));
  sha_update(s, len, 8);
  for (int i = 0; i < 32; i++) out[i] = (u8)(s->h[i / 4] >> (24 - 8 * (i % 4)));
}

// ---- the trailer and the cache directory ----
#define TRAILER 80
struct trailer {
  char magic[16];
  u64 offset, size, runtime_size, zero;
  u8 sha[32];
};

static char self_path[] = "/proc/self/exe";
static char base[4096], dir[4200], key[25];

static u64 file_size_at(int dirfd, const char *path, int *exists) {
  u64 st[32]; // struct stat: st_size is at byte 48 on x86-64 and on arm64
  i64 r = sys6(SYS_newfstatat, dirfd, (i64)path, (i64)st, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0, 0);
  *exists = r == 0;
  return r == 0 ? st[6] : 0;
}

/** The every-start check: the marker is there and the runtime has its full size. */
static int cache_ready(const struct trailer *t) {
  char path[4300];
  int exists;
  path[0] = 0;
  cat(path, sizeof path, dir), cat(path, sizeof path, "/ok");
  file_size_at(AT_FDCWD, path, &exists);
  if (!exists) return 0;
  path[0] = 0;
  cat(path, sizeof path, dir), cat(path, sizeof path, "/deno");
  u64 size = file_size_at(AT_FDCWD, path, &exists);
  return exists && size == t->runtime_size;
}

static const char *env_value(char **envp, const char *name) {
  u64 n = slen(name);
  for (; *envp; envp++)
    if (starts(*envp, name) && (*envp)[n] == '=') return *envp + n + 1;
  return 0;
}

static u32 euid;

/**
 * As root the cache is /var/cache/skiff (never a $HOME that `sudo -E` kept: a user could put a
 * runtime there that root would then run), else $SKIFF_CACHE_DIR, $XDG_CACHE_HOME/skiff or
 * $HOME/.cache/skiff; trusted() checks whichever it is at every start.
 */
static void choose_base(char **envp) {
  const char *v;
  base[0] = 0;
  if ((v = env_value(envp, "SKIFF_CACHE_DIR")) && v[0] == '/') cat(base, sizeof base, v);
  else if (euid == 0) cat(base, sizeof base, "/var/cache/skiff");
  else if ((v = env_value(envp, "XDG_CACHE_HOME")) && v[0] == '/') cat(base, sizeof base, v), cat(base, sizeof base, "/skiff");
  else if ((v = env_value(envp, "HOME")) && v[0] == '/' && v[1]) cat(base, sizeof base, v), cat(base, sizeof base, "/.cache/skiff");
  else cat(base, sizeof base, "/var/cache/skiff");
  if (slen(base) > 3000) die("the cache directory's path is too long", base);
  for (u64 n = slen(base); n > 1 && base[n - 1] == '/';) base[--n] = 0;
}

/**
 * Whether nobody but this user (or root) can change what `path` names: every directory on the way
 * is owned by one of them and writable by no one else (or sticky, as /tmp, for the ones above the
 * cache), and so are the cache's own directories and the runtime; a symlink on the way is one of
 * theirs too (its target is then checked as well). Missing components (not made yet)
 * pass when `may_miss`. A few stats at every start: the runtime found there is run as this user.
 */
static void trusted(const char *path, u64 cache_from, int may_miss) {
  char prefix[4300];
  u64 n = slen(path);
  for (u64 i = 1; i <= n; i++) {
    if (i < n && path[i] != '/') continue;
    memcpy(prefix, path, i), prefix[i] = 0;
    u64 st[32];
    // a link itself first: one of another user's (in a sticky /tmp, say) may lead elsewhere at any
    // moment after the check, and every later use of the path goes through it again
    if (sys6(SYS_newfstatat, AT_FDCWD, (i64)prefix, (i64)st, 0x100 /* AT_SYMLINK_NOFOLLOW */, 0, 0) == 0) {
      u32 lmode = *(u32 *)((u8 *)st + ST_MODE), luid = *(u32 *)((u8 *)st + ST_UID);
      if ((lmode & 0170000) == 0120000 && luid != 0 && luid != euid)
        die("the cache directory can be changed by another user: set SKIFF_CACHE_DIR to one only root can write",
            prefix);
    }
    if (sys6(SYS_newfstatat, AT_FDCWD, (i64)prefix, (i64)st, 0, 0, 0) < 0) {
      if (may_miss) return;
      die("the cache directory is gone", prefix);
    }
    u32 mode = *(u32 *)((u8 *)st + ST_MODE), uid = *(u32 *)((u8 *)st + ST_UID);
    int others_write = (mode & 022) != 0, sticky = (mode & 01000) != 0;
    if ((uid != 0 && uid != euid) || (others_write && (i >= cache_from || !sticky)))
      die("the cache directory can be changed by another user: set SKIFF_CACHE_DIR to one only root can write",
          prefix);
  }
}

static void mkdir_p(char *path) {
  for (char *p = path + 1;; p++) {
    if (*p == '/' || *p == 0) {
      char c = *p;
      *p = 0;
      i64 r = sys3(SYS_mkdirat, AT_FDCWD, path, 0755);
      *p = c;
      if (r < 0 && r != -EEXIST) die("cannot create the cache directory (set SKIFF_CACHE_DIR)", path);
      if (!c) return;
    }
  }
}

// ---- removing a directory tree (a damaged cache, a temp dir left by a killed unpack) ----
static void rmtree(int dirfd, const char *name) {
  if (sys3(SYS_unlinkat, dirfd, name, 0) == 0) return;
  int fd = (int)sys6(SYS_openat, dirfd, (i64)name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
  if (fd < 0) return;
  char buf[4096];
  for (int removed = 1; removed;) { // rescan until a pass removes nothing: deletions move offsets
    removed = 0;
    sys3(SYS_lseek, fd, 0, 0);
    i64 n;
    while ((n = sys3(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
      for (i64 off = 0; off < n;) {
        unsigned short reclen = *(unsigned short *)(buf + off + 16);
        const char *entry = buf + off + 19;
        if (!(entry[0] == '.' && (!entry[1] || (entry[1] == '.' && !entry[2])))) rmtree(fd, entry), removed = 1;
        off += reclen;
      }
    }
  }
  sys3(SYS_close, fd, 0, 0);
  sys3(SYS_unlinkat, dirfd, name, AT_REMOVEDIR);
}

/** Removes what earlier unpacks of this key left: temp dirs of killed runs, damaged dirs moved aside. */
static void sweep_leftovers(void) {
  int fd = (int)sys6(SYS_openat, AT_FDCWD, (i64)base, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
  if (fd < 0) return;
  char tmp_prefix[64] = ".tmp-", old_prefix[64] = ".old-", buf[4096];
  cat(tmp_prefix, sizeof tmp_prefix, key), cat(tmp_prefix, sizeof tmp_prefix, "-");
  cat(old_prefix, sizeof old_prefix, key), cat(old_prefix, sizeof old_prefix, "-");
  i64 n;
  while ((n = sys3(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
    for (i64 off = 0; off < n;) {
      unsigned short reclen = *(unsigned short *)(buf + off + 16);
      const char *entry = buf + off + 19;
      if (starts(entry, tmp_prefix) || starts(entry, old_prefix)) rmtree(fd, entry);
      off += reclen;
    }
  }
  sys3(SYS_close, fd, 0, 0);
}

// ---- unpacking: the payload read once, in order, hashed as it goes ----
static u8 iobuf[1 << 20];
struct reader {
  int fd;
  u64 at, left; // file offset of the next read, payload bytes not read yet
  u64 pos, end; // unconsumed bytes of iobuf
  struct sha sha;
};
static void refill(struct reader *r) {
  if (!r->left) die("this file is damaged (its payload ends early): download it again", 0);
  u64 want = r->left < sizeof iobuf ? r->left : sizeof iobuf;
  i64 got = sys6(SYS_pread64, r->fd, (i64)iobuf, (i64)want, (i64)r->at, 0, 0);
  if (got <= 0) die("cannot read this file's payload", 0);
  sha_update(&r->sha, iobuf, (u64)got);
  r->at += (u64)got, r->left -= (u64)got, r->pos = 0, r->end = (u64)got;
}
/** Consumes n bytes: copied to dst, written to fd out (when >= 0), or skipped. */
static void take(struct reader *r, u8 *dst, int out, u64 n, const char *name) {
  while (n) {
    if (r->pos == r->end) refill(r);
    u64 k = r->end - r->pos < n ? r->end - r->pos : n;
    if (dst) memcpy(dst, iobuf + r->pos, k), dst += k;
    for (u64 done = 0; out >= 0 && done < k;) {
      i64 w = sys3(SYS_write, out, iobuf + r->pos + done, k - done);
      if (w == -EINTR) continue;
      if (w <= 0) die("cannot write the unpacked file (disk full?)", name);
      done += (u64)w;
    }
    r->pos += k, n -= k;
  }
}
static u64 octal(const u8 *p, int n) {
  u64 v = 0;
  while (n && *p == ' ') p++, n--;
  for (; n && *p >= '0' && *p <= '7'; p++, n--) v = v * 8 + (u64)(*p - '0');
  return v;
}
static int safe_path(const char *p) {
  if (!p[0] || p[0] == '/') return 0;
  for (const char *c = p; *c; c++)
    if ((c == p || c[-1] == '/') && c[0] == '.' && c[1] == '.' && (c[2] == '/' || !c[2])) return 0;
  return 1;
}

static void unpack(int self, const struct trailer *t, int into) {
  struct reader r;
  memset(&r, 0, sizeof r);
  r.fd = self, r.at = t->offset, r.left = t->size;
  sha_init(&r.sha);
  u8 h[512];
  char name[300], link[101];
  for (;;) {
    take(&r, h, -1, 512, 0);
    int empty = 1;
    for (int i = 0; i < 512; i++) empty &= !h[i];
    if (empty) break; // the archive's end: the rest (the second zero block, padding) is hashed below
    name[0] = 0;
    if (h[345]) {
      char prefix[156];
      memcpy(prefix, h + 345, 155), prefix[155] = 0;
      cat(name, sizeof name, prefix), cat(name, sizeof name, "/");
    }
    char last[101];
    memcpy(last, h + 0, 100), last[100] = 0;
    cat(name, sizeof name, last);
    char *path = name;
    while (path[0] == '.' && path[1] == '/') path += 2;
    u64 n = slen(path);
    while (n && path[n - 1] == '/') path[--n] = 0;
    u64 size = octal(h + 124, 12), mode = octal(h + 100, 8) & 0777;
    char type = (char)h[156];
    int skip = !path[0] || (path[0] == '.' && !path[1]);
    if (!skip && !safe_path(path)) die("this file is damaged (a path leaves the archive)", path);
    if (skip || type == 'x' || type == 'g') {
      take(&r, 0, -1, (size + 511) & ~511UL, 0);
    } else if (type == '5') {
      i64 e = sys3(SYS_mkdirat, into, path, 0755);
      if (e < 0 && e != -EEXIST) die("cannot create a directory of the cache", path);
    } else if (type == '2') {
      memcpy(link, h + 157, 100), link[100] = 0;
      if (sys3(SYS_symlinkat, link, into, path) < 0) die("cannot create a link in the cache", path);
    } else if (type == '0' || type == 0) {
      int fd = (int)sys6(SYS_openat, into, (i64)path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         (i64)mode, 0, 0);
      if (fd < 0) die("cannot create a file of the cache", path);
      take(&r, 0, fd, size, path);
      u64 st[32];
      if (sys3(SYS_fstat, fd, st, 0) < 0 || st[6] != size) die("a file of the cache is short", path);
      sys3(SYS_close, fd, 0, 0);
      take(&r, 0, -1, (512 - size % 512) % 512, 0);
    } else {
      die("this file is damaged (an unknown archive entry)", path);
    }
  }
  for (r.pos = r.end; r.left; r.pos = r.end) refill(&r);
  u8 sum[32];
  sha_final(&r.sha, sum);
  for (int i = 0; i < 32; i++)
    if (sum[i] != t->sha[i]) die("this file is damaged (its payload does not match its SHA-256): download it again", 0);
}

static void install(int self, const struct trailer *t) {
  mkdir_p(base);
  trusted(base, slen(base), 0); // made by this run, or already there: in the hands of no one else
  char lock[4300] = "";
  cat(lock, sizeof lock, base), cat(lock, sizeof lock, "/"), cat(lock, sizeof lock, key), cat(lock, sizeof lock, ".lock");
  int lockfd = (int)sys6(SYS_openat, AT_FDCWD, (i64)lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600, 0, 0);
  if (lockfd < 0) die("cannot create the cache's lock file", lock);
  while (sys3(SYS_flock, lockfd, LOCK_EX, 0) == -EINTR) {}
  if (cache_ready(t)) return; // another run unpacked it while this one waited (the lock goes at exec)
  // a damaged directory: moved aside first, so that no run sees it half removed
  char num[24], *p = num + sizeof num;
  i64 pid = sys3(SYS_getpid, 0, 0, 0);
  *--p = 0;
  do *--p = (char)('0' + pid % 10), pid /= 10;
  while (pid);
  char aside[4300] = "";
  cat(aside, sizeof aside, base), cat(aside, sizeof aside, "/.old-"), cat(aside, sizeof aside, key);
  cat(aside, sizeof aside, "-"), cat(aside, sizeof aside, p);
  sys6(SYS_renameat2, AT_FDCWD, (i64)dir, AT_FDCWD, (i64)aside, 0, 0);
  sweep_leftovers();
  char tmp[4300] = "";
  cat(tmp, sizeof tmp, base), cat(tmp, sizeof tmp, "/.tmp-"), cat(tmp, sizeof tmp, key);
  cat(tmp, sizeof tmp, "-"), cat(tmp, sizeof tmp, p);
  if (sys3(SYS_mkdirat, AT_FDCWD, tmp, 0755) < 0) die("cannot create a directory in the cache", tmp);
  unpacking = tmp;
  int into = (int)sys6(SYS_openat, AT_FDCWD, (i64)tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0, 0, 0);
  if (into < 0) die("cannot open a directory in the cache", tmp);
  unpack(self, t, into);
  int ok = (int)sys6(SYS_openat, into, (i64)"ok", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644, 0, 0);
  static const char hex[] = "0123456789abcdef";
  char line[65];
  for (int i = 0; i < 32; i++) line[2 * i] = hex[t->sha[i] >> 4], line[2 * i + 1] = hex[t->sha[i] & 15];
  line[64] = '\n';
  if (ok < 0 || sys3(SYS_write, ok, line, 65) != 65) die("cannot write the cache's marker", tmp);
  sys3(SYS_close, ok, 0, 0);
  sys3(SYS_syncfs, into, 0, 0); // the data is on disk before the directory gets its name
  sys3(SYS_close, into, 0, 0);
  if (sys6(SYS_renameat2, AT_FDCWD, (i64)tmp, AT_FDCWD, (i64)dir, 0, 0) < 0) die("cannot move the unpacked cache into place", dir);
  unpacking = 0;
}

void __attribute__((noreturn, used)) launcher_main(i64 *sp) {
  int argc = (int)sp[0];
  char **argv = (char **)(sp + 1);
  char **envp = argv + argc + 1;
  int self = (int)sys6(SYS_openat, AT_FDCWD, (i64)self_path, O_RDONLY | O_CLOEXEC, 0, 0, 0);
  if (self < 0) die("cannot open /proc/self/exe (is /proc mounted?)", 0);
  u64 st[32];
  struct trailer t;
  if (sys3(SYS_fstat, self, st, 0) < 0 || st[6] < TRAILER ||
      sys6(SYS_pread64, self, (i64)&t, TRAILER, (i64)(st[6] - TRAILER), 0, 0) != TRAILER ||
      !starts(t.magic, "skiff-dist-v1") || t.offset + t.size + TRAILER != st[6])
    die("this file is damaged (no payload at its end): download it again", 0);
  static const char hex[] = "0123456789abcdef";
  for (int i = 0; i < 12; i++) key[2 * i] = hex[t.sha[i] >> 4], key[2 * i + 1] = hex[t.sha[i] & 15];
  euid = (u32)sys3(SYS_geteuid, 0, 0, 0);
  choose_base(envp);
  cat(dir, sizeof dir, base), cat(dir, sizeof dir, "/"), cat(dir, sizeof dir, key);
  trusted(dir, slen(base), 1);
  if (!cache_ready(&t)) install(self, &t);
  sys3(SYS_close, self, 0, 0);

  static char deno[4300], deno_dir[4300];
  cat(deno, sizeof deno, dir), cat(deno, sizeof deno, "/deno");
  trusted(deno, slen(base), 0);
  cat(deno_dir, sizeof deno_dir, "DENO_DIR="), cat(deno_dir, sizeof deno_dir, dir), cat(deno_dir, sizeof deno_dir, "/deno-dir");
  // the command line: <dir>/start, one argument a line, "./x" meaning <dir>/x (written by dist.sh)
  static char start[8192], paths[16384];
  char path[4300] = "";
  cat(path, sizeof path, dir), cat(path, sizeof path, "/start");
  int fd = (int)sys6(SYS_openat, AT_FDCWD, (i64)path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0, 0, 0);
  u64 fst[32];
  if (fd < 0 || sys3(SYS_fstat, fd, fst, 0) < 0) die("the cache has no start file", path);
  u32 fmode = *(u32 *)((u8 *)fst + ST_MODE), fuid = *(u32 *)((u8 *)fst + ST_UID);
  if ((fuid != 0 && fuid != euid) || (fmode & 022))
    die("the cache directory can be changed by another user: set SKIFF_CACHE_DIR to one only root can write", path);
  i64 len = sys3(SYS_read, fd, start, sizeof start - 1);
  sys3(SYS_close, fd, 0, 0);
  if (len <= 0 || len >= (i64)sizeof start - 1) die("the cache's start file is damaged", path);
  start[len] = 0;
  char *args[argc + 64];
  int n = 0;
  u64 used = 0;
  for (char *line = start; *line && n < 60;) {
    char *end = line;
    while (*end && *end != '\n') end++;
    char next = *end;
    *end = 0;
    if (line[0] == '.' && line[1] == '/') {
      u64 need = slen(dir) + slen(line);
      if (used + need + 1 > sizeof paths) die("the cache's start file is damaged", path);
      char *p = paths + used;
      p[0] = 0;
      cat(p, need + 1, dir), cat(p, need + 1, line + 1);
      args[n++] = p, used += need + 1;
    } else if (line[0]) {
      args[n++] = line;
    }
    line = next ? end + 1 : end;
  }
  if (!n) die("the cache's start file is damaged", path);
  for (int i = 1; i < argc; i++) args[n++] = argv[i];
  args[n] = 0;
  int envc = 0;
  while (envp[envc]) envc++;
  char *env[envc + 4];
  int m = 0;
  for (int i = 0; i < envc; i++)
    if (!starts(envp[i], "DENO_DIR=") && !starts(envp[i], "DENO_NO_UPDATE_CHECK=") && !starts(envp[i], "DENO_NO_PROMPT="))
      env[m++] = envp[i];
  env[m++] = deno_dir, env[m++] = "DENO_NO_UPDATE_CHECK=1", env[m++] = "DENO_NO_PROMPT=1";
  env[m] = 0;
  if (sys3(SYS_execve, args[0], args, env) == -13 /* EACCES */)
    die("cannot start the Deno runtime of the cache (a noexec mount? set SKIFF_CACHE_DIR)", args[0]);
  die("cannot start the Deno runtime of the cache", args[0]);
}
