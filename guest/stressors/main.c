// SPDX-License-Identifier: GPL-2.0
/*
 * mmstress - multi-call userland stressor for the mm locking storm.
 *
 * mmstress <mode> [--duration S] [--seed N] [mode options]
 *
 * Every mode prints exactly one KTAP-style line on stdout at the end:
 *   ok 1 <mode> # key=value ...
 *   not ok 1 <mode> # reason="..." key=value ...
 * and exits 0 (ok) or 1 (not ok).  Usage errors without a valid mode
 * exit 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmstress.h"

struct shared *sh;
volatile sig_atomic_t stop_requested;
uint64_t deadline_ms;
size_t page_size;
const char *self_exe = "/proc/self/exe";

static uint64_t start_ms;
static struct opts opts;

struct mode {
	const char *name;
	int (*run)(struct opts *o);
	unsigned int allowed;
	const char *help;
};

static const struct mode modes[] = {
	{ "swap", mode_swap,
	  OPT_DURATION | OPT_SEED | OPT_DEV | OPT_FILE | OPT_MKSWAP |
	  OPT_KEEP_ON | OPT_INTERVAL | OPT_FINAL_TMO | OPT_FILL,
	  "--dev PATH:PRIO [--dev ...] [--file PATH:SIZE_MB:PRIO] "
	  "[--mkswap] [--interval MS] [--final-timeout S] [--keep-on] [--fill N]" },
	{ "hog", mode_hog,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_CORRUPT,
	  "[--percent P | --mb N] [--workers N] "
	  "[--inject-corruption zero|stale|zeropage]" },
	{ "fork", mode_fork,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_DIR | OPT_VMAS | OPT_QUICK | OPT_BIG_EXIT,
	  "[--workers N] [--mb M | --percent P] [--vmas N] [--quick N] "
	  "[--big-exit VMAS] [--dir D]" },
	{ "mmap", mode_mmap,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_DIR | OPT_CHURN,
	  "[--workers N] [--mb M | --percent P] [--churn N] [--dir D]" },
	{ "procwalk", mode_procwalk,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_PIDS,
	  "[--workers N] [--pids PID,PID,...]" },
	{ "remote", mode_remote,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT,
	  "[--workers N] [--mb M | --percent P]" },
	{ "locked", mode_locked,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT,
	  "[--workers N] [--mb M | --percent P]" },
	{ "thp", mode_thp,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_NO_TUNE,
	  "[--workers N] [--mb M | --percent P] [--no-tune]" },
	{ "ksm", mode_ksm,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_NO_TUNE,
	  "[--workers N] [--mb M | --percent P] [--no-tune]" },
	{ "compact", mode_compact,
	  OPT_DURATION | OPT_SEED | OPT_INTERVAL,
	  "[--interval MS]" },
	{ "memcg", mode_memcg,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT,
	  "[--workers N] [--mb M | --percent P]" },
	{ "oom", mode_oom,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_GROUP,
	  "[--workers N] [--mb M | --percent P] [--group N]" },
	{ "uffd", mode_uffd,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT,
	  "[--workers N] [--mb M | --percent P]" },
	{ "numa", mode_numa,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT,
	  "[--workers N] [--mb M | --percent P]" },
	{ "shmem", mode_shmem,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_MB | OPT_PERCENT |
	  OPT_DIR,
	  "[--workers N] [--mb M | --percent P] [--dir D]" },
	{ "uaccess", mode_uaccess,
	  OPT_DURATION | OPT_SEED | OPT_WORKERS | OPT_DIR,
	  "[--workers N] [--dir D]" },
};

#define NR_MODES (sizeof(modes) / sizeof(modes[0]))

static void usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: mmstress <mode> [--duration S] [--seed N] [options]\n"
		"modes:\n");
	for (i = 0; i < NR_MODES; i++)
		fprintf(f, "  %-8s %s\n", modes[i].name, modes[i].help);
	fprintf(f, "--duration 0 runs until SIGTERM. Output: one line\n"
		"'ok 1 <mode> # key=value ...' or 'not ok 1 <mode> # reason=\"...\" ...'\n");
}

/* Counters. */
void stat_add(int key, unsigned long n)
{
	__atomic_fetch_add(&sh->val[key], n, __ATOMIC_RELAXED);
}

unsigned long stat_get(int key)
{
	return __atomic_load_n(&sh->val[key], __ATOMIC_RELAXED);
}

void note_transient(void)
{
	__atomic_fetch_add(&sh->transient, 1, __ATOMIC_RELAXED);
}

static void set_reason(const char *msg)
{
	int expected = 0;
	size_t i;

	if (!__atomic_compare_exchange_n(&sh->reason_set, &expected, 1, 0,
					 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		return;
	snprintf(sh->reason, sizeof(sh->reason), "%s", msg);
	for (i = 0; sh->reason[i]; i++) {
		if (sh->reason[i] == '"' || sh->reason[i] == '\\')
			sh->reason[i] = '\'';
		else if (sh->reason[i] == '\n' || sh->reason[i] == '\r')
			sh->reason[i] = ' ';
	}
}

void note_errorf(const char *fmt, ...)
{
	char msg[MMSTRESS_REASON_MAX];
	va_list ap;

	__atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_reason(msg);
}

const char *errname(int err)
{
	switch (err) {
	case ENOSYS:	return "ENOSYS";
	case EINVAL:	return "EINVAL";
	case ENOENT:	return "ENOENT";
	case EPERM:	return "EPERM";
	case EACCES:	return "EACCES";
	case ENOMEM:	return "ENOMEM";
	case EAGAIN:	return "EAGAIN";
	case EFAULT:	return "EFAULT";
	case ESRCH:	return "ESRCH";
	case EIO:	return "EIO";
	default:	return strerror(err);
	}
}

/* A kernel feature the mode needs is not there: always an error. */
void note_missing(const char *what, int err, const char *feature)
{
	if (!strncmp(feature, "CONFIG_", 7))
		note_errorf("%s: %s, %s missing from the kernel config", what,
			    errname(err), feature);
	else
		note_errorf("%s: %s, needs %s", what, errname(err), feature);
}

void note_error(const char *what, int err)
{
	if (err == ENOSYS)
		note_errorf("%s: ENOSYS, syscall missing from the kernel config",
			    what);
	else
		note_errorf("%s: %s", what, strerror(err));
}

/* CPU time of this process and its reaped workers, ms: where the guest's
 * CPUs went, to weigh a mode's op counts against. */
static void cpu_ms(unsigned long long *user, unsigned long long *sys)
{
	struct rusage self, kids;

	*user = 0;
	*sys = 0;
	if (getrusage(RUSAGE_SELF, &self) || getrusage(RUSAGE_CHILDREN, &kids))
		return;
	*user = ((unsigned long long)self.ru_utime.tv_sec + kids.ru_utime.tv_sec) * 1000 +
		((unsigned long long)self.ru_utime.tv_usec + kids.ru_utime.tv_usec) / 1000;
	*sys = ((unsigned long long)self.ru_stime.tv_sec + kids.ru_stime.tv_sec) * 1000 +
	       ((unsigned long long)self.ru_stime.tv_usec + kids.ru_stime.tv_usec) / 1000;
}

int report(const char *mode, const char *const *keys, int nkeys)
{
	unsigned long long user, sys;
	char line[4096];
	size_t len = 0;
	int ok, i;

	ok = sh->errors == 0 && !sh->reason_set;
	if (ok)
		len += snprintf(line + len, sizeof(line) - len, "ok 1 %s #",
				mode);
	else
		len += snprintf(line + len, sizeof(line) - len,
				"not ok 1 %s # reason=\"%s\"", mode,
				sh->reason_set ? sh->reason : "errors");
	for (i = 0; i < nkeys && len < sizeof(line); i++)
		len += snprintf(line + len, sizeof(line) - len, " %s=%lu",
				keys[i], stat_get(i));
	cpu_ms(&user, &sys);
	if (len < sizeof(line))
		snprintf(line + len, sizeof(line) - len,
			 " errors=%lu transient=%lu seed=%llu duration_ms=%llu user_ms=%llu sys_ms=%llu",
			 sh->errors, sh->transient,
			 (unsigned long long)opts.seed,
			 (unsigned long long)(now_ms() - start_ms), user, sys);
	printf("%s\n", line);
	fflush(stdout);
	return ok ? 0 : 1;
}

/* Time. */
uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int should_stop(void)
{
	return stop_requested || (deadline_ms && now_ms() >= deadline_ms);
}

void sleep_ms(long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);	/* EINTR on SIGTERM: fine */
}

/* RNG. */
static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void rng_init(struct rng *r, uint64_t seed, uint64_t index)
{
	uint64_t x = seed ^ (index * 0xd1b54a32d192ed03ULL);
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

int rng_chance(struct rng *r, unsigned int percent)
{
	return rng_below(r, 100) < percent;
}

/* /proc/meminfo. */
long meminfo_kb(const char *key)
{
	char line[256];
	size_t klen = strlen(key);
	long val = -1;
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			val = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/* Size in MiB from --mb, --percent or a default percent of MemTotal. */
long default_mb(const struct opts *o, double def_percent, long min_mb)
{
	double pct = o->percent >= 0 ? o->percent : def_percent;
	long total_kb, mb;

	if (o->mb >= 0)
		return o->mb;
	total_kb = meminfo_kb("MemTotal");
	if (total_kb <= 0) {
		note_errorf("cannot read MemTotal from /proc/meminfo");
		return min_mb;
	}
	mb = (long)(total_kb / 1024.0 * pct / 100.0);
	return mb < min_mb ? min_mb : mb;
}

/* Page patterns: every 64-bit word depends on page, word, gen and salt. */
static uint64_t pat_base(uint64_t pageno, uint32_t gen, uint64_t salt)
{
	uint64_t x = salt ^ (pageno * 0x9e3779b97f4a7c15ULL) ^
		     ((uint64_t)gen << 40);

	return splitmix64(&x);
}

/* Word @i of the page whose pattern starts at @base. */
static inline uint64_t pat_word(uint64_t base, size_t i)
{
	return base + i * 0x100000001b3ULL;
}

void pat_fill(void *page, uint64_t pageno, uint32_t gen, uint64_t salt)
{
	uint64_t *w = page, base = pat_base(pageno, gen, salt);
	size_t i, n = page_size / sizeof(uint64_t);

	for (i = 0; i < n; i++)
		w[i] = pat_word(base, i);
}

long pat_check(const void *page, uint64_t pageno, uint32_t gen,
	       uint64_t salt, uint64_t *got, uint64_t *want)
{
	const volatile uint64_t *w = page;
	uint64_t base = pat_base(pageno, gen, salt);
	size_t i, n = page_size / sizeof(uint64_t);

	for (i = 0; i < n; i++) {
		if (w[i] != pat_word(base, i)) {
			*got = w[i];
			*want = pat_word(base, i);
			return (long)i;
		}
	}
	return -1;
}

/* @addr's /proc/self/pagemap entry in *pm: 0, or -1 if unreadable. */
int pagemap_entry(const void *addr, uint64_t *pm)
{
	ssize_t n;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = pread(fd, pm, sizeof(*pm),
		  (off_t)((uintptr_t)addr / page_size * sizeof(*pm)));
	close(fd);
	return n == sizeof(*pm) ? 0 : -1;
}

/* The shared zero page's PFN: what a read fault of fresh memory maps. */
static uint64_t zero_pfn(void)
{
	volatile char *p;
	uint64_t pm = 0;

	p = mmap(NULL, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return 0;
	(void)p[0];
	if (pagemap_entry((const void *)p, &pm))
		pm = 0;
	munmap((void *)p, page_size);
	return pm >> 63 & 1 ? pm & ((1ULL << 55) - 1) : 0;
}

/*
 * The page's PTE as /proc/self/pagemap has it: "present pfn 0x1f3a excl",
 * "present pfn 0x23ea, the shared zero page", "swap type 1 offset 0x2c4"
 * or "none".  PFNs read as 0 without CAP_SYS_ADMIN.
 */
static void pagemap_describe(char *buf, size_t len, const void *addr)
{
	uint64_t pm, pfn;

	if (pagemap_entry(addr, &pm)) {
		snprintf(buf, len, "unknown");
		return;
	}
	pfn = pm & ((1ULL << 55) - 1);
	if (pm >> 63 & 1) {
		snprintf(buf, len, "present pfn %#llx%s%s",
			 (unsigned long long)pfn, pm >> 56 & 1 ? " excl" : "",
			 pfn && pfn == zero_pfn() ? ", the shared zero page" :
						    "");
	} else if (pm >> 62 & 1) {
		snprintf(buf, len, "swap type %llu offset %#llx",
			 (unsigned long long)(pm & 0x1f),
			 (unsigned long long)(pm >> 5 & ((1ULL << 50) - 1)));
	} else {
		snprintf(buf, len, "none");
	}
}

/*
 * A page failed pat_check() (first bad word @word: @got, not @want).  The
 * report says what the page holds now: how many words differ and how many
 * are zero, whether it is this page's pattern of a nearby generation (a
 * write lost, or an old copy come back from swap), and its PTE.  @mapped:
 * @page is the mapping itself, not a copy read from elsewhere.
 */
void note_corruption(const char *who, const void *page, int mapped,
		     uint64_t pageno, uint32_t gen, uint64_t salt, long word,
		     uint64_t got, uint64_t want)
{
	const volatile uint64_t *w = page;
	uint64_t base = pat_base(pageno, gen, salt), g2, w2;
	size_t i, n = page_size / sizeof(uint64_t), bad = 0, zero = 0;
	char holds[48] = "", pte[64] = "not looked at: a copy";
	static const int near[] = { -1, 1, -2, 2, -3, -4, -5, -6, -7, -8 };
	uint32_t other;
	size_t k;

	for (i = 0; i < n; i++) {
		bad += w[i] != pat_word(base, i);
		zero += !w[i];
	}
	for (k = 0; k < sizeof(near) / sizeof(near[0]) && !holds[0]; k++) {
		other = gen + (uint32_t)near[k];
		if ((near[k] > 0 || gen >= (uint32_t)-near[k]) &&
		    pat_check(page, pageno, other, salt, &g2, &w2) < 0)
			snprintf(holds, sizeof(holds), ", generation %u's pattern",
				 other);
	}
	if (mapped)
		pagemap_describe(pte, sizeof(pte), page);
	note_errorf("%s: data corruption at page %llu word %ld: got %#llx want %#llx (generation %u; now %zu/%zu words differ, %zu zero%s; pte %s)",
		    who, (unsigned long long)pageno, word,
		    (unsigned long long)got, (unsigned long long)want, gen,
		    bad, n, zero, holds, pte);
}

/* Workers. */
static pid_t *worker_pids;
static int nr_workers;

static void kill_workers(int sig)
{
	int i;

	for (i = 0; i < nr_workers; i++)
		if (worker_pids[i] > 0)
			kill(worker_pids[i], sig);
}

/*
 * A worker gets WORKER_GRACE_MS past the deadline to finish.  A read of
 * /proc/<pid>/smaps or a fault can wait on an mmap_lock queued behind
 * swapoff's unuse of that mm, and one swapoff took 24 s under TCG on a
 * busy host (aarch64), so the grace is well above that.
 */
#define WORKER_GRACE_MS	90000

/*
 * FAULTS=: storm-run asks through the environment, and the stressor makes
 * itself fail from where its work begins, in each worker as it starts (its
 * children inherit it): not from its exec, its setup or the fork of its
 * workers, which could then fail (a failed read of /proc/meminfo or fork
 * of a worker is no kernel bug).  Called once where each process's work
 * begins: a worker as it starts, swap's and compact's loops.
 */
void faults_begin(void)
{
	if (!getenv("MMSTRESS_MAKE_IT_FAIL"))
		return;
	if (sys_write_str("/proc/self/make-it-fail", "1") < 0)
		note_error("/proc/self/make-it-fail", errno);
}

void run_workers(int n, int (*fn)(int idx, void *arg), void *arg)
{
	int live = 0, forwarded = 0, killed = 0, i, status;
	uint64_t grace_ms = WORKER_GRACE_MS;
	pid_t pid;

	worker_pids = calloc(n, sizeof(*worker_pids));
	if (!worker_pids) {
		note_error("calloc", errno);
		return;
	}
	nr_workers = n;
	for (i = 0; i < n; i++) {
		pid = fork();
		if (pid < 0) {
			note_error("fork (worker)", errno);
			break;
		}
		if (pid == 0) {
			faults_begin();
			_exit(fn(i, arg) ? 1 : 0);
		}
		worker_pids[i] = pid;
		live++;
	}

	while (live > 0) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0) {
			if (errno == EINTR)
				continue;
			note_error("waitpid", errno);
			break;
		}
		if (pid == 0) {
			if (stop_requested && !forwarded) {
				kill_workers(SIGTERM);
				forwarded = 1;
			}
			if (!killed && deadline_ms &&
			    now_ms() > deadline_ms + grace_ms) {
				note_errorf("workers still running %llu ms after the deadline",
					    (unsigned long long)grace_ms);
				kill_workers(SIGKILL);
				killed = 1;
			}
			sleep_ms(20);
			continue;
		}
		for (i = 0; i < n; i++) {
			if (worker_pids[i] != pid)
				continue;
			worker_pids[i] = 0;
			live--;
			if (WIFSIGNALED(status) && !killed)
				note_errorf("worker %d killed by signal %d (%s)",
					    i, WTERMSIG(status),
					    strsignal(WTERMSIG(status)));
			else if (WIFEXITED(status) && WEXITSTATUS(status) &&
				 !sh->errors)
				note_errorf("worker %d exited with status %d",
					    i, WEXITSTATUS(status));
		}
	}
	free(worker_pids);
	worker_pids = NULL;
	nr_workers = 0;
}

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int parse_long(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 0);
	return errno || end == s || *end;
}

static int parse_double(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return errno || end == s || *end || *out < 0;
}

/* PATH:PRIO (dev) or PATH:SIZE_MB:PRIO (file); PATH must not contain ':' */
static int parse_swap_spec(char *arg, int is_file, struct swap_spec *sp)
{
	char *c1, *c2;
	long v;

	sp->is_file = is_file;
	sp->path = arg;
	c1 = strchr(arg, ':');
	if (!c1 || c1 == arg)
		return -1;
	*c1++ = '\0';
	if (is_file) {
		c2 = strchr(c1, ':');
		if (!c2)
			return -1;
		*c2++ = '\0';
		if (parse_long(c1, &v) || v <= 0)
			return -1;
		sp->size_mb = v;
		c1 = c2;
	}
	if (parse_long(c1, &v) || v < -1 || v > 32767)
		return -1;
	sp->prio = (int)v;
	return 0;
}

static int bad_option(const char *mode, const char *fmt, const char *arg)
{
	char msg[200];

	snprintf(msg, sizeof(msg), fmt, arg);
	fprintf(stderr, "mmstress %s: %s\n", mode, msg);
	usage(stderr);
	note_errorf("%s", msg);
	return 1;
}

static int parse_opts(const struct mode *m, int argc, char **argv)
{
	static const struct {
		const char *name;
		unsigned int bit;
		int has_arg;
	} table[] = {
		{ "--duration", OPT_DURATION, 1 },
		{ "--seed", OPT_SEED, 1 },
		{ "--workers", OPT_WORKERS, 1 },
		{ "--mb", OPT_MB, 1 },
		{ "--percent", OPT_PERCENT, 1 },
		{ "--dev", OPT_DEV, 1 },
		{ "--file", OPT_FILE, 1 },
		{ "--mkswap", OPT_MKSWAP, 0 },
		{ "--keep-on", OPT_KEEP_ON, 0 },
		{ "--interval", OPT_INTERVAL, 1 },
		{ "--final-timeout", OPT_FINAL_TMO, 1 },
		{ "--dir", OPT_DIR, 1 },
		{ "--pids", OPT_PIDS, 1 },
		{ "--no-tune", OPT_NO_TUNE, 0 },
		{ "--vmas", OPT_VMAS, 1 },
		{ "--churn", OPT_CHURN, 1 },
		{ "--quick", OPT_QUICK, 1 },
		{ "--inject-corruption", OPT_CORRUPT, 1 },
		{ "--fill", OPT_FILL, 1 },
		{ "--big-exit", OPT_BIG_EXIT, 1 },
		{ "--group", OPT_GROUP, 1 },
	};
	size_t t;
	long v;
	int i;

	for (i = 2; i < argc; i++) {
		const char *a = argv[i];
		char *val = NULL;

		for (t = 0; t < sizeof(table) / sizeof(table[0]); t++)
			if (!strcmp(a, table[t].name))
				break;
		if (t == sizeof(table) / sizeof(table[0]))
			return bad_option(m->name, "unknown option %s", a);
		if (!(m->allowed & table[t].bit))
			return bad_option(m->name, "option %s not valid for this mode", a);
		if (table[t].has_arg) {
			if (i + 1 >= argc)
				return bad_option(m->name, "option %s needs a value", a);
			val = argv[++i];
		}
		switch (table[t].bit) {
		case OPT_DURATION:
			if (parse_double(val, &opts.duration))
				return bad_option(m->name, "bad --duration %s", val);
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			opts.seed = strtoull(val, &end, 0);
			if (errno || end == val || *end)
				return bad_option(m->name, "bad --seed %s", val);
			break;
		}
		case OPT_WORKERS:
			if (parse_long(val, &v) || v < 1 || v > 256)
				return bad_option(m->name, "bad --workers %s (1..256)", val);
			opts.workers = v;
			break;
		case OPT_MB:
			if (parse_long(val, &v) || v < 1)
				return bad_option(m->name, "bad --mb %s", val);
			opts.mb = v;
			break;
		case OPT_PERCENT:
			if (parse_double(val, &opts.percent) ||
			    opts.percent <= 0 || opts.percent > 95)
				return bad_option(m->name, "bad --percent %s (0..95]", val);
			break;
		case OPT_DEV:
		case OPT_FILE:
			if (opts.nswap >= MMSTRESS_MAX_SWAP)
				return bad_option(m->name, "too many swap areas at %s", val);
			if (parse_swap_spec(val, table[t].bit == OPT_FILE,
					    &opts.swap[opts.nswap]))
				return bad_option(m->name, table[t].bit == OPT_FILE ?
					"bad --file %s (want PATH:SIZE_MB:PRIO)" :
					"bad --dev %s (want PATH:PRIO)", argv[i]);
			opts.nswap++;
			break;
		case OPT_MKSWAP:
			opts.mkswap = 1;
			break;
		case OPT_KEEP_ON:
			opts.keep_on = 1;
			break;
		case OPT_INTERVAL:
			if (parse_long(val, &v) || v < 1)
				return bad_option(m->name, "bad --interval %s", val);
			opts.interval_ms = v;
			break;
		case OPT_FINAL_TMO:
			if (parse_double(val, &opts.final_timeout))
				return bad_option(m->name, "bad --final-timeout %s", val);
			break;
		case OPT_DIR:
			opts.dir = val;
			break;
		case OPT_NO_TUNE:
			opts.no_tune = 1;
			break;
		case OPT_VMAS:
			if (parse_long(val, &v) || v < 0 || v > 4096)
				return bad_option(m->name, "bad --vmas %s (0..4096)", val);
			opts.vmas = v;
			break;
		case OPT_CHURN:
			if (parse_long(val, &v) || v < 0 || v > 16)
				return bad_option(m->name, "bad --churn %s (0..16)", val);
			opts.churn = v;
			break;
		case OPT_QUICK:
			if (parse_long(val, &v) || v < 0 || v > 64)
				return bad_option(m->name, "bad --quick %s (0..64)", val);
			opts.quick = v;
			break;
		case OPT_FILL:
			if (parse_long(val, &v) || v < 1)
				return bad_option(m->name, "bad --fill %s (every Nth cycle, N >= 1)", val);
			opts.fill = v;
			break;
		case OPT_BIG_EXIT:
			if (parse_long(val, &v) || v < 0 || v > 1000000)
				return bad_option(m->name, "bad --big-exit %s (VMAs, 0..1000000)", val);
			opts.big_exit = v;
			break;
		case OPT_GROUP:
			if (parse_long(val, &v) || v < 0 || v > 30000)
				return bad_option(m->name, "bad --group %s (processes, 0..30000)", val);
			opts.group = v;
			break;
		case OPT_CORRUPT:
			if (!strcmp(val, "zero"))
				opts.corrupt = CORRUPT_ZERO;
			else if (!strcmp(val, "stale"))
				opts.corrupt = CORRUPT_STALE;
			else if (!strcmp(val, "zeropage"))
				opts.corrupt = CORRUPT_ZEROPAGE;
			else
				return bad_option(m->name, "bad --inject-corruption %s (zero, stale or zeropage)", val);
			break;
		case OPT_PIDS:
			if (!*val || val[strspn(val, "0123456789,")])
				return bad_option(m->name, "bad --pids %s (want PID,PID,...)", val);
			opts.pids = val;
			break;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct mode *m = NULL;
	struct sigaction sa;
	size_t i;

	/* Hidden helper for fork mode's vfork+exec children. */
	if (argc >= 2 && !strcmp(argv[1], "__noop"))
		return 0;

	for (i = 0; argc >= 2 && i < NR_MODES; i++)
		if (!strcmp(argv[1], modes[i].name))
			m = &modes[i];
	if (!m) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") ||
				  !strcmp(argv[1], "-h"))) {
			usage(stdout);
			return 0;
		}
		if (argc >= 2)
			fprintf(stderr, "mmstress: unknown mode '%s'\n", argv[1]);
		usage(stderr);
		return 2;
	}

	page_size = (size_t)sysconf(_SC_PAGESIZE);
	start_ms = now_ms();
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("mmstress: mmap");
		return 1;
	}

	opts.mode = m->name;
	opts.duration = 10;
	opts.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
	opts.workers = -1;
	opts.mb = -1;
	opts.percent = -1;
	opts.interval_ms = 1000;
	opts.final_timeout = 10;
	opts.dir = "/tmp";
	opts.vmas = 128;
	if (parse_opts(m, argc, argv))
		return report(m->name, NULL, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	if (opts.duration > 0)
		deadline_ms = start_ms + (uint64_t)(opts.duration * 1000);
	return m->run(&opts);
}
