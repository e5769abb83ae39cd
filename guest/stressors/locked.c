// SPDX-License-Identifier: GPL-2.0
/*
 * locked: mlocked and pre-populated memory cycling beside the swap storm.
 * Each worker keeps a few regions within its budget, made with MAP_LOCKED
 * or MAP_POPULATE (private or shared anonymous), and cycles
 * mlockall(MCL_CURRENT | MCL_FUTURE [| MCL_ONFAULT]) / munlockall,
 * mlock2(MLOCK_ONFAULT) / munlock, mremap of locked regions (the new part
 * is populated under mmap_lock), MADV_PAGEOUT and munmap.  The first word
 * of every page carries a pattern that is checked before each munmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_MAP_LOCKED, K_MAP_POPULATE, K_MAP_SHARED,
	K_MLOCKALL, K_MUNLOCKALL, K_MLOCK_ONFAULT, K_MUNLOCKS, K_MREMAPS,
	K_MUNMAPS, K_TOUCHES, K_PAGEOUTS, K_PAGEOUT_LOCKED, K_MLOCK_FAIL,
	K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "map_locked", "map_populate", "map_shared",
	"mlockall", "munlockall", "mlock_onfault", "munlocks", "mremaps",
	"munmaps", "touches", "pageouts", "pageout_locked", "mlock_fail",
	"corruptions",
};

#ifndef MCL_ONFAULT
#define MCL_ONFAULT	4
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT	1
#endif

#define MAX_REGIONS	8
#define MAX_REGION_PAGES 512

struct lregion {
	char *base;
	size_t npages;
	int shared;
	int locked;	/* made with MAP_LOCKED */
	uint64_t salt;
};

struct locked_arg {
	size_t budget;		/* pages per worker */
	uint64_t seed;
};

static struct lregion regs[MAX_REGIONS];
static size_t used;
static int worker_idx;

static uint64_t word_of(const struct lregion *r, size_t i)
{
	return r->salt ^ (i * 0x9e3779b97f4a7c15ULL) ^ 1;
}

static void fill(struct lregion *r, size_t from)
{
	size_t i;

	for (i = from; i < r->npages; i++)
		*(uint64_t *)(r->base + i * page_size) = word_of(r, i);
}

static void check(struct lregion *r, size_t i)
{
	uint64_t got = *(volatile uint64_t *)(r->base + i * page_size);

	stat_add(K_TOUCHES, 1);
	if (got == word_of(r, i))
		return;
	stat_add(K_CORRUPTIONS, 1);
	note_errorf("locked worker %d: data corruption at page %zu of a %s region: got %#llx want %#llx",
		    worker_idx, i, r->shared ? "shared" : "private",
		    (unsigned long long)got,
		    (unsigned long long)word_of(r, i));
	*(uint64_t *)(r->base + i * page_size) = word_of(r, i);
}

/* mlock family: out of RLIMIT_MEMLOCK or memory is transient. */
static int lock_failed(const char *what, int err)
{
	if (err == ENOMEM || err == EAGAIN || err == EPERM) {
		stat_add(K_MLOCK_FAIL, 1);
		note_transient();
		return 0;
	}
	if (err == ENOSYS)
		note_missing(what, err, "Linux >= 4.4");
	else
		note_error(what, err);
	return -1;
}

static struct lregion *free_slot(void)
{
	int i;

	for (i = 0; i < MAX_REGIONS; i++)
		if (!regs[i].base)
			return &regs[i];
	return NULL;
}

static struct lregion *random_region(struct rng *rng)
{
	int i, start = (int)rng_below(rng, MAX_REGIONS);

	for (i = 0; i < MAX_REGIONS; i++)
		if (regs[(start + i) % MAX_REGIONS].base)
			return &regs[(start + i) % MAX_REGIONS];
	return NULL;
}

static void unmap(struct lregion *r)
{
	size_t i;

	for (i = 0; i < r->npages; i++)
		check(r, i);
	if (munmap(r->base, r->npages * page_size))
		note_error("munmap (locked)", errno);
	used -= r->npages;
	memset(r, 0, sizeof(*r));
	stat_add(K_MUNMAPS, 1);
}

/* kind: 0 MAP_LOCKED, 1 MAP_POPULATE, 2 shared MAP_POPULATE, 3 plain */
static int new_region(struct rng *rng, size_t budget, int kind)
{
	struct lregion *r = free_slot();
	int flags = MAP_ANONYMOUS;
	size_t n;
	char *p;

	if (!r || used >= budget)
		return 0;
	n = 1 + rng_below(rng, budget - used);
	if (n > MAX_REGION_PAGES)
		n = 1 + rng_below(rng, MAX_REGION_PAGES);
	flags |= kind == 2 ? MAP_SHARED : MAP_PRIVATE;
	if (kind == 0)
		flags |= MAP_LOCKED;
	else if (kind != 3)
		flags |= MAP_POPULATE;
	p = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		if (kind == 0)
			return lock_failed("mmap(MAP_LOCKED)", errno);
		if (errno == ENOMEM || errno == EAGAIN) {
			note_transient();
			return 0;
		}
		note_error("mmap (locked)", errno);
		return -1;
	}
	r->base = p;
	r->npages = n;
	r->shared = kind == 2;
	r->locked = kind == 0;
	r->salt = rng_next(rng);
	used += n;
	fill(r, 0);
	if (kind != 3)	/* counted as mlockall */
		stat_add(kind == 0 ? K_MAP_LOCKED : kind == 2 ? K_MAP_SHARED :
			 K_MAP_POPULATE, 1);
	return 0;
}

/* mlockall, a new mapping under MCL_FUTURE, then munlockall. */
static int lock_all(struct rng *rng, size_t budget)
{
	int flags = MCL_CURRENT | MCL_FUTURE, ret;

	if (rng_chance(rng, 30))
		flags |= MCL_ONFAULT;
	if (mlockall(flags))
		return lock_failed("mlockall", errno);
	stat_add(K_MLOCKALL, 1);
	ret = new_region(rng, budget, 3);
	if (munlockall())
		return lock_failed("munlockall", errno);
	stat_add(K_MUNLOCKALL, 1);
	return ret;
}

static int lock_onfault(struct lregion *r, struct rng *rng)
{
	size_t first = rng_below(rng, r->npages), n, i;

	n = 1 + rng_below(rng, r->npages - first);
	if (syscall(SYS_mlock2, r->base + first * page_size, n * page_size,
		    MLOCK_ONFAULT))
		return lock_failed("mlock2(MLOCK_ONFAULT)", errno);
	stat_add(K_MLOCK_ONFAULT, 1);
	for (i = first; i < first + n; i++)
		check(r, i);
	if (munlock(r->base + first * page_size, n * page_size))
		return lock_failed("munlock", errno);
	stat_add(K_MUNLOCKS, 1);
	return 0;
}

/* Grow (private regions only: shared ones are fixed-size objects). */
static int remap(struct lregion *r, struct rng *rng, size_t budget)
{
	size_t grow = 1 + rng_below(rng, 16);
	char *p;

	if (r->shared || used + grow > budget)
		return 0;
	p = mremap(r->base, r->npages * page_size,
		   (r->npages + grow) * page_size, MREMAP_MAYMOVE);
	if (p == MAP_FAILED) {
		if (errno == ENOMEM || errno == EAGAIN || errno == EFAULT) {
			note_transient();
			return 0;
		}
		note_error("mremap (locked)", errno);
		return -1;
	}
	r->base = p;
	r->npages += grow;
	used += grow;
	fill(r, r->npages - grow);
	stat_add(K_MREMAPS, 1);
	return 0;
}

static int pageout(struct lregion *r, int locked)
{
	if (!madvise(r->base, r->npages * page_size, MADV_PAGEOUT)) {
		stat_add(K_PAGEOUTS, 1);
		return 0;
	}
	/* VM_LOCKED VMAs refuse MADV_PAGEOUT with EINVAL. */
	if (errno == EINVAL && locked) {
		stat_add(K_PAGEOUT_LOCKED, 1);
		note_transient();
		return 0;
	}
	if (errno == EINVAL)
		note_missing("madvise(MADV_PAGEOUT)", errno,
			     "Linux >= 5.4");
	else
		note_error("madvise(MADV_PAGEOUT)", errno);
	return -1;
}

static int locked_worker(int idx, void *varg)
{
	struct locked_arg *arg = varg;
	struct lregion *r;
	struct rng rng;
	int op, err = 0, i;

	worker_idx = idx;
	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	while (!should_stop() && !err) {
		op = (int)rng_below(&rng, 10);
		r = random_region(&rng);
		if (op < 3 || !r) {
			err = new_region(&rng, arg->budget, op < 3 ? op : 1);
			if (used >= arg->budget && (r = random_region(&rng)))
				unmap(r);
			continue;
		}
		switch (op) {
		case 3:
			err = lock_all(&rng, arg->budget);
			break;
		case 4:
			err = lock_onfault(r, &rng);
			break;
		case 5:
			err = remap(r, &rng, arg->budget);
			break;
		case 6:
			unmap(r);
			break;
		case 7:
			err = pageout(r, r->locked);
			break;
		default:
			for (i = 0; i < 16; i++)
				check(r, rng_below(&rng, r->npages));
			break;
		}
		if (rng_chance(&rng, 20))
			sleep_ms(1);
	}
	for (i = 0; i < MAX_REGIONS; i++)
		if (regs[i].base)
			unmap(&regs[i]);
	return err ? 1 : 0;
}

int mode_locked(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb;
	struct locked_arg arg;

	mb = default_mb(o, 4, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.budget = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	run_workers((int)workers, locked_worker, &arg);
	return report(o->mode, keys, K_NR);
}
