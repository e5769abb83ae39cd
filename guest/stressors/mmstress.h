/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmstress - multi-call userland stressor for the mm locking storm.
 */
#ifndef MMSTRESS_H
#define MMSTRESS_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/mman.h>

/* Newer than some libcs' headers: the values are the kernel's ABI. */
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif

#define MMSTRESS_MAX_KEYS	40
#define MMSTRESS_MAX_SWAP	16
#define MMSTRESS_REASON_MAX	400

/* Option bits: which options a mode accepts. */
#define OPT_DURATION	(1u << 0)
#define OPT_SEED	(1u << 1)
#define OPT_WORKERS	(1u << 2)
#define OPT_MB		(1u << 3)
#define OPT_PERCENT	(1u << 4)
#define OPT_DEV		(1u << 5)
#define OPT_FILE	(1u << 6)
#define OPT_MKSWAP	(1u << 7)
#define OPT_KEEP_ON	(1u << 8)
#define OPT_INTERVAL	(1u << 9)
#define OPT_FINAL_TMO	(1u << 10)
#define OPT_DIR		(1u << 11)
#define OPT_PIDS	(1u << 12)
#define OPT_NO_TUNE	(1u << 13)
#define OPT_VMAS	(1u << 14)
#define OPT_CHURN	(1u << 24)
#define OPT_QUICK	(1u << 25)
#define OPT_CORRUPT	(1u << 26)
#define OPT_FILL	(1u << 27)
#define OPT_BIG_EXIT	(1u << 28)
#define OPT_GROUP	(1u << 29)

struct swap_spec {
	const char *path;
	long size_mb;		/* files only */
	int prio;		/* -1: no SWAP_FLAG_PREFER */
	int is_file;
};

struct opts {
	const char *mode;
	double duration;	/* seconds; 0 = until SIGTERM */
	uint64_t seed;
	long workers;		/* -1: mode default */
	long mb;		/* -1: mode default */
	double percent;		/* < 0: mode default */
	struct swap_spec swap[MMSTRESS_MAX_SWAP];
	int nswap;
	int mkswap;
	int keep_on;
	long interval_ms;
	double final_timeout;
	const char *dir;
	const char *pids;	/* procwalk: comma-separated, NULL: all */
	int no_tune;		/* thp, ksm: leave the sysfs knobs alone */
	long vmas;		/* fork: extra small VMAs in the parent */
	long churn;		/* mmap: small-VMA churn workers */
	long quick;		/* fork: workers forking short-lived children */
	int corrupt;		/* hog: 0, or a corruption to inject (self-test) */
	long fill;		/* swap: every Nth cycle fills an area, then swapoff; 0 = never */
	long big_exit;		/* fork: VMAs of the big children that exit; 0 = none */
	long group;		/* oom: processes of an oom.group cgroup; 0 = none */
};

/* Counters shared by every process of a run (MAP_SHARED memory). */
struct shared {
	unsigned long val[MMSTRESS_MAX_KEYS];
	unsigned long errors;
	unsigned long transient;
	int reason_set;
	char reason[MMSTRESS_REASON_MAX];
};

extern struct shared *sh;
extern volatile sig_atomic_t stop_requested;
extern uint64_t deadline_ms;	/* 0: none */
extern size_t page_size;
extern const char *self_exe;

/* Counters and errors. */
void stat_add(int key, unsigned long n);
unsigned long stat_get(int key);
void note_transient(void);
void note_error(const char *what, int err);
void note_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note_missing(const char *what, int err, const char *feature);
void faults_begin(void);
const char *errname(int err);
int report(const char *mode, const char *const *keys, int nkeys);

/* Time and stopping. */
uint64_t now_ms(void);
int should_stop(void);
void sleep_ms(long ms);

/* Random numbers: xoshiro256** seeded with splitmix64. */
struct rng {
	uint64_t s[4];
};

void rng_init(struct rng *r, uint64_t seed, uint64_t index);
uint64_t rng_next(struct rng *r);
uint64_t rng_below(struct rng *r, uint64_t n);
int rng_chance(struct rng *r, unsigned int percent);

/* System information. */
long meminfo_kb(const char *key);
long default_mb(const struct opts *o, double def_percent, long min_mb);

/* /proc and /sys knobs (sys.c). */
ssize_t sys_read_buf(const char *path, char *buf, size_t len);
int sys_read_long(const char *path, long *val);
int sys_write_str(const char *path, const char *val);
int sys_write_long(const char *path, long val);
long vmstat_get(const char *key);
void stat_max(int key, unsigned long n);

struct knob {
	const char *path;
	long want;
	long saved;
	int changed;
};

int knobs_set(struct knob *k, int n, const char *feature);
void knobs_restore(struct knob *k, int n);

/* Memory cgroups v2 (cgroup.c): 0 or -1 (error noted) unless told. */
int cg_create(char *path, size_t len, const char *name);
int cg_write(const char *cg, const char *file, const char *val); /* -errno */
int cg_set(const char *cg, const char *file, const char *val);
int cg_enter(const char *cg);					/* -errno */
long cg_read(const char *cg, const char *file, const char *key);
void cg_remove(const char *cg);

/* @addr's /proc/self/pagemap entry in *pm: 0, or -1 if unreadable. */
int pagemap_entry(const void *addr, uint64_t *pm);

/* Page patterns for data verification. */
enum { CORRUPT_NONE, CORRUPT_ZERO, CORRUPT_STALE, CORRUPT_ZEROPAGE };
void pat_fill(void *page, uint64_t pageno, uint32_t gen, uint64_t salt);
long pat_check(const void *page, uint64_t pageno, uint32_t gen,
	       uint64_t salt, uint64_t *got, uint64_t *want);
void note_corruption(const char *who, const void *page, int mapped,
		     uint64_t pageno, uint32_t gen, uint64_t salt, long word,
		     uint64_t got, uint64_t want);

/* Run fn(idx, arg) in n child processes and wait for them. */
void run_workers(int n, int (*fn)(int idx, void *arg), void *arg);

/* Modes. */
int mode_swap(struct opts *o);
int mode_hog(struct opts *o);
int mode_fork(struct opts *o);
int mode_mmap(struct opts *o);
int mode_procwalk(struct opts *o);
int mode_remote(struct opts *o);
int mode_locked(struct opts *o);
int mode_thp(struct opts *o);
int mode_ksm(struct opts *o);
int mode_compact(struct opts *o);
int mode_memcg(struct opts *o);
int mode_oom(struct opts *o);
int mode_uffd(struct opts *o);
int mode_numa(struct opts *o);
int mode_shmem(struct opts *o);
int mode_uaccess(struct opts *o);

#endif
