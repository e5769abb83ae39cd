// SPDX-License-Identifier: GPL-2.0
/*
 * mmap: churn the VMA tree.  Each worker keeps a small set of mappings,
 * anonymous or backed by an unlinked file in --dir (tmpfs in the guest,
 * so shmem pages that swap), private or shared, and keeps mapping,
 * touching, mprotect()ing, mremap()ing, mlock()ing, madvise()ing and
 * (partly) unmapping them.
 *
 * --churn N adds N workers that do the same to a few small regions at a
 * high rate: split and merge them with mprotect and mlock, move them with
 * mremap, page them out and fault them back, unmap and map them again.
 * Every one of those takes mmap_lock for write and the anon_vma or
 * i_mmap rwsem of a region whose pages are in swap, so swapoff's walk of
 * the same mm (and fork copying it) keeps meeting VMAs that change under
 * it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

#include "mmstress.h"

#ifndef MADV_COLD
#define MADV_COLD	20
#endif
#ifndef MREMAP_MAYMOVE
#define MREMAP_MAYMOVE	1
#endif
#ifndef MREMAP_FIXED
#define MREMAP_FIXED	2
#endif

enum {
	K_WORKERS, K_MB, K_MAPS, K_MUNMAPS, K_MUNMAP_PARTIAL, K_TOUCHES,
	K_MPROTECTS, K_RESTORES, K_MLOCKS, K_MUNLOCKS, K_MLOCK_FAIL,
	K_MREMAP_GROW, K_MREMAP_SHRINK, K_MREMAP_MOVED, K_MREMAP_FIXED,
	K_MREMAP_FAIL, K_PAGEOUT, K_COLD, K_DONTNEED, K_WILLNEED,
	K_MADVISE_FAIL, K_CHURN_WORKERS, K_CHURN_SPLITS, K_CHURN_LOCKS,
	K_CHURN_MOVES, K_CHURN_PAGEOUTS, K_CHURN_FAULTS, K_CHURN_REMAPS,
	K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "maps", "munmaps", "munmap_partial", "touches",
	"mprotects", "restores", "mlocks", "munlocks", "mlock_fail",
	"mremap_grow", "mremap_shrink", "mremap_moved", "mremap_fixed",
	"mremap_fail", "pageout", "cold", "dontneed", "willneed",
	"madvise_fail", "churn_workers", "churn_splits", "churn_locks",
	"churn_moves", "churn_pageouts", "churn_faults", "churn_remaps",
};

#define MAX_REGIONS	12
#define MAX_LOCK_PAGES	64
#define MAX_ADVISE_PAGES	256

enum { R_ANON_PRIVATE, R_ANON_SHARED, R_FILE_PRIVATE, R_FILE_SHARED };

struct region {
	char *addr;
	size_t pages;
	size_t off;		/* offset in the backing object, pages */
	size_t obj_pages;	/* backing object size: file or shmem */
	int kind;
	int split;		/* mprotect/mlock made several VMAs of it */
};

struct mm_worker {
	struct region r[MAX_REGIONS];
	int nr;
	size_t budget;		/* pages */
	size_t used;		/* pages */
	int fd;
	struct rng rng;
};

struct mmap_arg {
	long workers;		/* the first ones; the rest churn */
	size_t budget_pages;
	uint64_t seed;
	const char *dir;
};

static size_t bytes(size_t pages)
{
	return pages * page_size;
}

/*
 * Anything but private anonymous memory is backed by an object of fixed
 * size (the file, or the shmem object behind MAP_SHARED|MAP_ANONYMOUS):
 * growing the mapping past its end would SIGBUS on touch.
 */
static int has_object(const struct region *r)
{
	return r->kind != R_ANON_PRIVATE;
}

/*
 * Errors that racing or pressure make normal (ENOSPC: a shmem object's
 * inode, for MAP_SHARED|MAP_ANONYMOUS, not allocated).
 */
static int transient_errno(int err)
{
	return err == ENOMEM || err == EAGAIN || err == EINVAL ||
	       err == EBUSY || err == EPERM || err == EFAULT || err == ENOSPC;
}

static void syscall_failed(const char *what, int err, int fail_key)
{
	if (err != ENOSYS && transient_errno(err)) {
		note_transient();
		if (fail_key >= 0)
			stat_add(fail_key, 1);
		return;
	}
	note_error(what, err);
}

static void touch(struct mm_worker *w, struct region *r, int all)
{
	size_t i, n = 0;

	if (r->split) {
		/* Make the whole region writable (and mergeable) again. */
		if (mprotect(r->addr, bytes(r->pages), PROT_READ | PROT_WRITE))
			syscall_failed("mprotect (restore)", errno, -1);
		stat_add(K_RESTORES, 1);
	}
	for (i = 0; i < r->pages; i++) {
		if (!all && !rng_chance(&w->rng, 25))
			continue;
		r->addr[bytes(i) + rng_below(&w->rng, page_size)] =
			(char)rng_next(&w->rng);
		n++;
	}
	stat_add(K_TOUCHES, n);
}

static void restore(struct region *r)
{
	if (!r->split)
		return;
	if (munlock(r->addr, bytes(r->pages)))
		syscall_failed("munlock (restore)", errno, -1);
	if (mprotect(r->addr, bytes(r->pages), PROT_READ | PROT_WRITE))
		syscall_failed("mprotect (restore)", errno, -1);
	r->split = 0;
	stat_add(K_RESTORES, 1);
}

static void do_map(struct mm_worker *w)
{
	struct region *r = &w->r[w->nr];
	size_t left = w->budget - w->used, pages;
	int flags, fd = -1;
	void *p;

	if (w->nr >= MAX_REGIONS || left == 0)
		return;
	pages = 1 + rng_below(&w->rng, left < w->budget / 4 + 1 ?
				       left : w->budget / 4 + 1);
	memset(r, 0, sizeof(*r));
	r->kind = (int)rng_below(&w->rng, w->fd >= 0 ? 4 : 2);
	flags = (r->kind == R_ANON_SHARED || r->kind == R_FILE_SHARED) ?
		MAP_SHARED : MAP_PRIVATE;
	if (r->kind == R_FILE_PRIVATE || r->kind == R_FILE_SHARED) {
		fd = w->fd;
		r->off = rng_below(&w->rng, w->budget - pages + 1);
		r->obj_pages = w->budget;
	} else {
		flags |= MAP_ANONYMOUS;
		r->obj_pages = pages;
	}
	if (rng_chance(&w->rng, 20))
		flags |= MAP_POPULATE;
	p = mmap(NULL, bytes(pages), PROT_READ | PROT_WRITE, flags, fd,
		 (off_t)bytes(r->off));
	if (p == MAP_FAILED) {
		syscall_failed("mmap", errno, -1);
		return;
	}
	r->addr = p;
	r->pages = pages;
	w->used += pages;
	w->nr++;
	stat_add(K_MAPS, 1);
	touch(w, r, 1);
}

static void drop_region(struct mm_worker *w, int i)
{
	w->used -= w->r[i].pages;
	w->r[i] = w->r[--w->nr];
}

/*
 * munmap() that said yes must have unmapped: mincore() of the range then
 * fails with ENOMEM.  A range that is still mapped in full is a kernel that
 * lost an error on its way out (an unmap that failed half way, say on an
 * allocation, and returned 0).  ENOMEM from munmap itself is an answer
 * under memory pressure or fault injection, not an error; it is tried
 * again up to @tries times in all.  Nonzero when the caller must keep the
 * region as it was.
 */
static int unmap_tried(char *addr, size_t pages, const char *what, int tries)
{
	unsigned char vec[1024];
	int failed = 0;

	while (munmap(addr, bytes(pages))) {
		if (errno != ENOMEM || ++failed >= tries) {
			syscall_failed(what, errno, -1);
			return 1;
		}
		note_transient();
	}
	if (pages <= sizeof(vec) && !mincore(addr, bytes(pages), vec)) {
		note_errorf("mmap worker (pid %d): %s of %zu pages at %p returned 0, but they are still mapped",
			    (int)getpid(), what, pages, (void *)addr);
		return 1;
	}
	return 0;
}

static int unmap_checked(char *addr, size_t pages, const char *what)
{
	return unmap_tried(addr, pages, what, 1);
}

/*
 * An unmap the worker needs done (a region it drops, or its last): ENOMEM
 * (an allocation in the split or the tree store refused) is tried again, a
 * few hundred times at most; then checked like any other.
 */
static int unmap_retried(char *addr, size_t pages, const char *what)
{
	return unmap_tried(addr, pages, what, 200);
}

static void do_munmap(struct mm_worker *w, int i)
{
	struct region *r = &w->r[i];
	size_t start, len;

	if (r->pages < 3 || rng_chance(&w->rng, 40)) {
		if (unmap_checked(r->addr, r->pages, "munmap"))
			return;
		stat_add(K_MUNMAPS, 1);
		drop_region(w, i);
		return;
	}
	start = rng_below(&w->rng, 3);	/* 0 head, 1 tail, 2 middle */
	len = 1 + rng_below(&w->rng, r->pages - 2);
	if (start == 2 && w->nr < MAX_REGIONS) {
		/* Punch a hole; the part above becomes its own region. */
		size_t at = 1 + rng_below(&w->rng, r->pages - 2);
		struct region *hi = &w->r[w->nr];

		if (len > r->pages - at - 1)
			len = r->pages - at - 1;
		if (!len)
			len = 1;
		if (at + len >= r->pages)
			return;
		if (unmap_checked(r->addr + bytes(at), len, "munmap (hole)"))
			return;
		*hi = *r;
		hi->addr = r->addr + bytes(at + len);
		hi->pages = r->pages - at - len;
		hi->off = r->off + at + len;
		r->pages = at;
		w->used -= len;
		w->nr++;
	} else if (start == 0) {
		if (unmap_checked(r->addr, len, "munmap (head)"))
			return;
		r->addr += bytes(len);
		r->off += len;
		r->pages -= len;
		w->used -= len;
	} else {
		if (unmap_checked(r->addr + bytes(r->pages - len), len,
				  "munmap (tail)"))
			return;
		r->pages -= len;
		w->used -= len;
	}
	stat_add(K_MUNMAP_PARTIAL, 1);
}

static void sub_range(struct mm_worker *w, struct region *r, size_t max,
		      size_t *start, size_t *len)
{
	*start = rng_below(&w->rng, r->pages);
	*len = 1 + rng_below(&w->rng, r->pages - *start);
	if (max && *len > max)
		*len = max;
}

static void do_mprotect(struct mm_worker *w, struct region *r)
{
	static const int prots[] = { PROT_NONE, PROT_READ,
				     PROT_READ | PROT_WRITE };
	size_t start, len;

	sub_range(w, r, 0, &start, &len);
	if (mprotect(r->addr + bytes(start), bytes(len),
		     prots[rng_below(&w->rng, 3)])) {
		syscall_failed("mprotect", errno, -1);
		return;
	}
	r->split = 1;
	stat_add(K_MPROTECTS, 1);
}

static void do_mlock(struct mm_worker *w, struct region *r)
{
	size_t start, len;

	sub_range(w, r, MAX_LOCK_PAGES, &start, &len);
	if (rng_chance(&w->rng, 50)) {
		if (mlock(r->addr + bytes(start), bytes(len))) {
			syscall_failed("mlock", errno, K_MLOCK_FAIL);
			return;
		}
		r->split = 1;
		stat_add(K_MLOCKS, 1);
	} else {
		if (munlock(r->addr + bytes(start), bytes(len))) {
			syscall_failed("munlock", errno, K_MLOCK_FAIL);
			return;
		}
		stat_add(K_MUNLOCKS, 1);
	}
}

static void do_madvise(struct mm_worker *w, struct region *r)
{
	static const struct {
		int advice;
		int key;
		const char *name;
	} adv[] = {
		{ MADV_PAGEOUT, K_PAGEOUT, "madvise(MADV_PAGEOUT)" },
		{ MADV_COLD, K_COLD, "madvise(MADV_COLD)" },
		{ MADV_DONTNEED, K_DONTNEED, "madvise(MADV_DONTNEED)" },
		{ MADV_WILLNEED, K_WILLNEED, "madvise(MADV_WILLNEED)" },
	};
	int a = (int)rng_below(&w->rng, 4);
	size_t start, len;

	/* Bounded: MADV_PAGEOUT holds mmap_lock while it writes to swap. */
	sub_range(w, r, MAX_ADVISE_PAGES, &start, &len);
	if (madvise(r->addr + bytes(start), bytes(len), adv[a].advice)) {
		syscall_failed(adv[a].name, errno, K_MADVISE_FAIL);
		return;
	}
	stat_add(adv[a].key, 1);
}

static void do_mremap(struct mm_worker *w, struct region *r)
{
	size_t newpages, limit;
	int how = (int)rng_below(&w->rng, 3);
	void *p, *target;

	/* mremap wants a single VMA: undo mprotect/mlock splits first. */
	restore(r);
	if (how == 0) {
		limit = w->budget - w->used;
		if (has_object(r) && r->obj_pages - r->off - r->pages < limit)
			limit = r->obj_pages - r->off - r->pages;
		if (!limit)
			return;
		newpages = r->pages + 1 + rng_below(&w->rng, limit);
		p = mremap(r->addr, bytes(r->pages), bytes(newpages),
			   MREMAP_MAYMOVE);
		if (p == MAP_FAILED) {
			syscall_failed("mremap (grow)", errno, K_MREMAP_FAIL);
			return;
		}
		stat_add(K_MREMAP_GROW, 1);
		if (p != r->addr)
			stat_add(K_MREMAP_MOVED, 1);
		w->used += newpages - r->pages;
		r->addr = p;
		r->pages = newpages;
	} else if (how == 1) {
		if (r->pages < 2)
			return;
		newpages = 1 + rng_below(&w->rng, r->pages - 1);
		p = mremap(r->addr, bytes(r->pages), bytes(newpages), 0);
		if (p == MAP_FAILED) {
			syscall_failed("mremap (shrink)", errno, K_MREMAP_FAIL);
			return;
		}
		stat_add(K_MREMAP_SHRINK, 1);
		w->used -= r->pages - newpages;
		r->pages = newpages;
	} else {
		/* Move to a fresh place reserved with a PROT_NONE mapping. */
		target = mmap(NULL, bytes(r->pages), PROT_NONE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (target == MAP_FAILED) {
			syscall_failed("mmap (mremap target)", errno, -1);
			return;
		}
		p = mremap(r->addr, bytes(r->pages), bytes(r->pages),
			   MREMAP_MAYMOVE | MREMAP_FIXED, target);
		if (p == MAP_FAILED) {
			syscall_failed("mremap (fixed)", errno, K_MREMAP_FAIL);
			munmap(target, bytes(r->pages));
			return;
		}
		stat_add(K_MREMAP_FIXED, 1);
		r->addr = p;
	}
}

static int open_backing(struct mm_worker *w, const struct mmap_arg *arg,
			int idx)
{
	char path[512];
	int tries = 0, r;

	snprintf(path, sizeof(path), "%s/mmstress-mmap.%d.%d", arg->dir,
		 (int)getpid(), idx);
	/* ENOMEM, ENOSPC (FAULTS= failing the worker's allocations, tmpfs's
	 * inode among them): try again. */
	do {
		w->fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	} while (w->fd < 0 && (errno == ENOMEM || errno == ENOSPC) &&
		 ++tries < 100);
	if (w->fd < 0) {
		note_errorf("open %s: %s", path, strerror(errno));
		return -1;
	}
	unlink(path);
	do {
		r = ftruncate(w->fd, (off_t)bytes(w->budget));
	} while (r && errno == ENOMEM && ++tries < 200);
	if (r) {
		note_errorf("ftruncate %s: %s", path, strerror(errno));
		close(w->fd);
		w->fd = -1;
		return -1;
	}
	return 0;
}

static int mmap_worker(int idx, void *varg)
{
	struct mmap_arg *arg = varg;
	struct mm_worker w;
	struct region *r;
	int op, i;

	memset(&w, 0, sizeof(w));
	rng_init(&w.rng, arg->seed, (uint64_t)idx + 1);
	w.budget = arg->budget_pages;
	if (open_backing(&w, arg, idx))
		return 1;

	while (!should_stop()) {
		if (w.nr == 0 || (w.nr < MAX_REGIONS && rng_chance(&w.rng, 15))) {
			do_map(&w);
			continue;
		}
		i = (int)rng_below(&w.rng, (uint64_t)w.nr);
		r = &w.r[i];
		op = (int)rng_below(&w.rng, 100);
		if (op < 25)
			touch(&w, r, 0);
		else if (op < 37)
			do_mprotect(&w, r);
		else if (op < 47)
			do_mlock(&w, r);
		else if (op < 67)
			do_madvise(&w, r);
		else if (op < 85)
			do_mremap(&w, r);
		else
			do_munmap(&w, i);
	}
	while (w.nr > 0) {
		unmap_retried(w.r[0].addr, w.r[0].pages, "munmap (final)");
		drop_region(&w, 0);
	}
	close(w.fd);
	return 0;
}

#define CHURN_REGIONS	4
#define CHURN_PAGES	16

struct churn_region {
	char *addr;
	int shared;		/* MAP_SHARED on the backing file, else anon */
};

static int churn_map(struct mm_worker *w, struct churn_region *c, int i)
{
	size_t len = bytes(CHURN_PAGES), k;
	void *p;

	if (c->shared)
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, w->fd,
			 (off_t)bytes((size_t)i * CHURN_PAGES));
	else
		p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		c->addr = NULL;
		syscall_failed("mmap (churn)", errno, -1);
		return -1;
	}
	c->addr = p;
	for (k = 0; k < CHURN_PAGES; k++)
		c->addr[bytes(k)] = (char)rng_next(&w->rng);
	return 0;
}

/* Split the region in three and merge it back. */
static void churn_split(struct mm_worker *w, struct churn_region *c)
{
	size_t at = 1 + rng_below(&w->rng, CHURN_PAGES - 2);
	size_t len = 1 + rng_below(&w->rng, CHURN_PAGES - 1 - at);
	int locked = rng_chance(&w->rng, 30);

	if (locked ? mlock(c->addr + bytes(at), bytes(len)) :
		     mprotect(c->addr + bytes(at), bytes(len), PROT_READ)) {
		syscall_failed(locked ? "mlock (churn)" : "mprotect (churn)",
			       errno, -1);
		return;
	}
	if (locked ? munlock(c->addr + bytes(at), bytes(len)) :
		     mprotect(c->addr + bytes(at), bytes(len),
			      PROT_READ | PROT_WRITE))
		syscall_failed(locked ? "munlock (churn)" :
			       "mprotect (churn restore)", errno, -1);
	stat_add(locked ? K_CHURN_LOCKS : K_CHURN_SPLITS, 1);
}

/* Move the region, swap entries and all, to a freshly reserved place. */
static void churn_move(struct mm_worker *w, struct churn_region *c)
{
	size_t len = bytes(CHURN_PAGES);
	void *target, *p;

	(void)w;
	target = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (target == MAP_FAILED) {
		syscall_failed("mmap (churn target)", errno, -1);
		return;
	}
	p = mremap(c->addr, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, target);
	if (p == MAP_FAILED) {
		syscall_failed("mremap (churn)", errno, K_MREMAP_FAIL);
		munmap(target, len);
		return;
	}
	c->addr = p;
	stat_add(K_CHURN_MOVES, 1);
}

static void churn_op(struct mm_worker *w, struct churn_region *c, int i)
{
	size_t k, n;
	int op = (int)rng_below(&w->rng, 100);

	if (op < 35) {
		churn_split(w, c);
	} else if (op < 55) {
		churn_move(w, c);
	} else if (op < 70) {
		if (madvise(c->addr, bytes(CHURN_PAGES), MADV_PAGEOUT))
			syscall_failed("madvise(MADV_PAGEOUT) (churn)", errno,
				       K_MADVISE_FAIL);
		else
			stat_add(K_CHURN_PAGEOUTS, 1);
	} else if (op < 90) {
		/* Fault some pages back, from swap if the pageout got them. */
		n = 1 + rng_below(&w->rng, 4);
		for (k = 0; k < n; k++)
			c->addr[bytes(rng_below(&w->rng, CHURN_PAGES))]++;
		stat_add(K_CHURN_FAULTS, n);
	} else {
		if (unmap_retried(c->addr, CHURN_PAGES, "munmap (churn)"))
			return;
		c->shared = rng_chance(&w->rng, 50);
		if (!churn_map(w, c, i))
			stat_add(K_CHURN_REMAPS, 1);
	}
}

static int churn_worker(int idx, struct mmap_arg *arg)
{
	struct churn_region c[CHURN_REGIONS];
	struct mm_worker w;
	int i;

	memset(&w, 0, sizeof(w));
	memset(c, 0, sizeof(c));
	rng_init(&w.rng, arg->seed, (uint64_t)idx + 1);
	w.budget = CHURN_REGIONS * CHURN_PAGES;
	if (open_backing(&w, arg, idx))
		return 1;
	for (i = 0; i < CHURN_REGIONS; i++) {
		c[i].shared = i & 1;
		if (churn_map(&w, &c[i], i))
			goto out;
	}
	while (!should_stop()) {
		i = (int)rng_below(&w.rng, CHURN_REGIONS);
		if (c[i].addr)
			churn_op(&w, &c[i], i);
		else if (!churn_map(&w, &c[i], i))
			stat_add(K_CHURN_REMAPS, 1);
	}
out:
	for (i = 0; i < CHURN_REGIONS; i++)
		if (c[i].addr)
			unmap_retried(c[i].addr, CHURN_PAGES, "munmap (churn final)");
	close(w.fd);
	return 0;
}

static int mmap_or_churn(int idx, void *varg)
{
	struct mmap_arg *arg = varg;

	return idx < arg->workers ? mmap_worker(idx, arg) :
				    churn_worker(idx, arg);
}

int mode_mmap(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 2, mb;
	struct mmap_arg arg;

	mb = default_mb(o, 6, 1);
	arg.workers = workers;
	arg.budget_pages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	arg.dir = o->dir;
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	stat_add(K_CHURN_WORKERS, (unsigned long)o->churn);
	run_workers((int)(workers + o->churn), mmap_or_churn, &arg);
	return report(o->mode, keys, K_NR);
}
