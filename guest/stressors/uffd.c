// SPDX-License-Identifier: GPL-2.0
/*
 * uffd: userfaultfd missing faults on memory that is being paged out.
 * Each worker registers a private anonymous region with userfaultfd
 * (UFFDIO_REGISTER_MODE_MISSING); a handler thread serves every missing
 * fault with UFFDIO_COPY of the page's current pattern, a pager thread
 * drops random windows (MADV_DONTNEED: the next touch is a missing fault
 * again) or pages them out (MADV_PAGEOUT: the next touch is a swap-in on a
 * registered VMA), and the main thread verifies and rewrites random pages
 * and now and then maps a fresh chunk over part of the region
 * (MAP_FIXED) and registers it again.  Every register of fresh memory
 * drops what remote readers faulted into it before (see register_fresh).
 * The contents of a page are known at any time (pattern of its
 * generation), so every page is verified.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_FAULTS, K_COPIES, K_COPY_EEXIST, K_COPY_RETRY,
	K_COPY_REMAPPED,
	K_DONTNEED, K_PAGEOUTS, K_TOUCHES, K_REWRITES, K_REMAPS,
	K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "faults", "copies", "copy_eexist", "copy_retry",
	"copy_remapped",
	"dontneed", "pageouts", "touches", "rewrites", "remaps",
	"corruptions",
};

#define REMAP_PAGES	64

struct uffd_arg {
	size_t npages;
	uint64_t seed;
};

struct uffd_ctx {
	int fd;
	char *region;
	size_t npages;
	uint64_t salt;
	uint8_t *gens;		/* generation of each page's pattern */
	int idx;
	volatile int done;	/* main thread finished: threads end */
	struct rng pager_rng;
};

/*
 * UFFDIO_COPY found no registered VMA there: a remap replaced it
 * (MAP_FIXED) after the fault was queued and has not registered the new
 * one yet.  The faulting thread (a remote reader's GUP: the main thread
 * does not fault while it remaps) still waits; wake it, and it faults
 * again on the new VMA once registered.
 */
static int remapped(struct uffd_ctx *c, unsigned long long addr)
{
	struct uffdio_range range = { .start = addr, .len = page_size };

	stat_add(K_COPY_REMAPPED, 1);
	if (ioctl(c->fd, UFFDIO_WAKE, &range)) {
		note_error("ioctl(UFFDIO_WAKE)", errno);
		return -1;
	}
	return 0;
}

/* Serve one missing fault: the page's current pattern, copied in. */
static int serve(struct uffd_ctx *c, char *buf, unsigned long long addr)
{
	struct uffdio_copy copy;
	size_t i;

	addr &= ~(unsigned long long)(page_size - 1);
	i = (size_t)((char *)(uintptr_t)addr - c->region) / page_size;
	if (i >= c->npages) {
		note_errorf("uffd worker %d: fault at %#llx outside the region",
			    c->idx, addr);
		return -1;
	}
	stat_add(K_FAULTS, 1);
	pat_fill(buf, i, __atomic_load_n(&c->gens[i], __ATOMIC_ACQUIRE),
		 c->salt);
	for (;;) {
		memset(&copy, 0, sizeof(copy));
		copy.dst = addr;
		copy.src = (uintptr_t)buf;
		copy.len = page_size;
		if (!ioctl(c->fd, UFFDIO_COPY, &copy)) {
			stat_add(K_COPIES, 1);
			return 0;
		}
		if (errno == EEXIST) {
			/* Mapped meanwhile (a racing fault was served). */
			stat_add(K_COPY_EEXIST, 1);
			return 0;
		}
		if (errno == ENOENT)
			return remapped(c, addr);
		if (errno != EAGAIN) {
			note_error("ioctl(UFFDIO_COPY)", errno);
			return -1;
		}
		stat_add(K_COPY_RETRY, 1);	/* mm changing: again */
	}
}

static void *handler(void *varg)
{
	struct uffd_ctx *c = varg;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	struct uffd_msg msg;
	char *buf;
	ssize_t n;

	buf = aligned_alloc(page_size, page_size);
	if (!buf) {
		note_error("aligned_alloc (uffd)", ENOMEM);
		return NULL;
	}
	while (!c->done) {
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(c->fd, &msg, sizeof(msg));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			note_error("read(userfaultfd)", errno);
			break;
		}
		if (n != sizeof(msg) || msg.event != UFFD_EVENT_PAGEFAULT) {
			note_errorf("uffd worker %d: unexpected message (%zd bytes, event %u)",
				    c->idx, n, msg.event);
			break;
		}
		if (serve(c, buf, msg.arg.pagefault.address))
			break;
	}
	free(buf);
	return NULL;
}

/* Drop or page out random windows while the main thread touches them. */
static void *pager(void *varg)
{
	struct uffd_ctx *c = varg;
	size_t start, len;
	int advice;

	while (!c->done) {
		start = rng_below(&c->pager_rng, c->npages);
		len = 1 + rng_below(&c->pager_rng, 64);
		if (start + len > c->npages)
			len = c->npages - start;
		advice = rng_chance(&c->pager_rng, 50) ? MADV_DONTNEED :
							 MADV_PAGEOUT;
		if (!madvise(c->region + start * page_size, len * page_size,
			     advice)) {
			stat_add(advice == MADV_DONTNEED ? K_DONTNEED :
							   K_PAGEOUTS, 1);
		} else if (errno == EINVAL && advice == MADV_PAGEOUT) {
			note_missing("madvise(MADV_PAGEOUT)", EINVAL,
				     "Linux >= 5.4");
			break;
		} else {
			note_transient();	/* ENOMEM: a remap in between */
		}
		sleep_ms(1 + (long)rng_below(&c->pager_rng, 8));
	}
	return NULL;
}

static int do_register(struct uffd_ctx *c, char *start, size_t len)
{
	struct uffdio_register reg;

	memset(&reg, 0, sizeof(reg));
	reg.range.start = (uintptr_t)start;
	reg.range.len = len;
	reg.mode = UFFDIO_REGISTER_MODE_MISSING;
	if (!ioctl(c->fd, UFFDIO_REGISTER, &reg))
		return 0;
	if (errno == EINVAL)
		note_missing("ioctl(UFFDIO_REGISTER)", EINVAL,
			     "CONFIG_USERFAULTFD");
	else
		note_error("ioctl(UFFDIO_REGISTER)", errno);
	return -1;
}

/*
 * Register fresh anonymous memory.  Until the register it was a plain
 * anonymous VMA: a remote reader (the module's GUP, /proc/<pid>/mem)
 * faulting it then got the shared zero page, or a zeroed page for a write
 * GUP, and registering does not remove them; the next touch here would read
 * zeros without a missing fault.  Drop whatever is there: from now on every
 * fault is ours to serve.  (Both were seen: "data corruption ... got 0",
 * the PTE on the zero page's PFN, in the first half second of a worker.)
 */
static int register_fresh(struct uffd_ctx *c, char *start, size_t len)
{
	if (do_register(c, start, len))
		return -1;
	if (madvise(start, len, MADV_DONTNEED)) {
		note_error("madvise(MADV_DONTNEED) (uffd register)", errno);
		return -1;
	}
	return 0;
}

static int uffd_open(void)
{
	struct uffdio_api api;
	int fd;

	fd = (int)syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		if (errno == ENOSYS)
			note_missing("userfaultfd", ENOSYS,
				     "CONFIG_USERFAULTFD");
		else
			note_error("userfaultfd", errno);
		return -1;
	}
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	if (ioctl(fd, UFFDIO_API, &api)) {
		if (errno == EINVAL)
			note_missing("ioctl(UFFDIO_API)", EINVAL,
				     "CONFIG_USERFAULTFD");
		else
			note_error("ioctl(UFFDIO_API)", errno);
		close(fd);
		return -1;
	}
	return fd;
}

static int touch(struct uffd_ctx *c, struct rng *rng)
{
	uint64_t got, want;
	size_t i = rng_below(rng, c->npages);
	uint8_t gen = c->gens[i];
	char who[32];
	long w;

	/* The read may fault: the handler copies generation gen in. */
	w = pat_check(c->region + i * page_size, i, gen, c->salt, &got,
		      &want);
	stat_add(K_TOUCHES, 1);
	if (w >= 0) {
		stat_add(K_CORRUPTIONS, 1);
		snprintf(who, sizeof(who), "uffd worker %d", c->idx);
		note_corruption(who, c->region + i * page_size, 1, i, gen,
				c->salt, w, got, want);
		return -1;
	}
	if (rng_chance(rng, 30)) {
		/* New generation first: a page dropped meanwhile comes back
		 * from the handler with it. */
		__atomic_store_n(&c->gens[i], (uint8_t)(gen + 1),
				 __ATOMIC_RELEASE);
		pat_fill(c->region + i * page_size, i, (uint8_t)(gen + 1),
			 c->salt);
		stat_add(K_REWRITES, 1);
	}
	return 0;
}

/* A fresh chunk over part of the region: every page of it faults again. */
static int remap(struct uffd_ctx *c, struct rng *rng)
{
	size_t n = REMAP_PAGES < c->npages ? REMAP_PAGES : c->npages;
	size_t start = rng_below(rng, c->npages - n + 1);
	char *p = c->region + start * page_size;

	if (mmap(p, n * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		note_error("mmap MAP_FIXED (uffd remap)", errno);
		return -1;
	}
	if (register_fresh(c, p, n * page_size))
		return -1;
	stat_add(K_REMAPS, 1);
	return 0;
}

static int uffd_worker(int idx, void *varg)
{
	struct uffd_arg *arg = varg;
	struct uffd_ctx c;
	pthread_t th, tp;
	struct rng rng;
	int k, err, have_pager = 0;

	memset(&c, 0, sizeof(c));
	c.idx = idx;
	c.npages = arg->npages;
	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	rng_init(&c.pager_rng, arg->seed, (uint64_t)idx + 0x9a6e);
	c.salt = rng_next(&rng);
	c.gens = calloc(c.npages, 1);
	c.region = mmap(NULL, c.npages * page_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!c.gens || c.region == MAP_FAILED) {
		note_error("mmap/calloc (uffd)", errno);
		return 1;
	}
	c.fd = uffd_open();
	if (c.fd < 0 || register_fresh(&c, c.region, c.npages * page_size))
		return 1;
	err = pthread_create(&th, NULL, handler, &c);
	if (err) {
		note_error("pthread_create (uffd handler)", err);
		return 1;
	}
	err = pthread_create(&tp, NULL, pager, &c);
	if (err)
		note_error("pthread_create (uffd pager)", err);
	else
		have_pager = 1;
	while (!should_stop() && !sh->errors) {
		for (k = 0; k < 32; k++)
			if (touch(&c, &rng))
				break;
		if (rng_chance(&rng, 2) && remap(&c, &rng))
			break;
		sleep_ms((long)rng_below(&rng, 3));
	}
	c.done = 1;
	if (have_pager)
		pthread_join(tp, NULL);
	pthread_join(th, NULL);
	munmap(c.region, c.npages * page_size);
	close(c.fd);
	free(c.gens);
	return 0;
}

int mode_uffd(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb;
	struct uffd_arg arg;

	mb = default_mb(o, 3, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.npages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	run_workers((int)workers, uffd_worker, &arg);
	return report(o->mode, keys, K_NR);
}
