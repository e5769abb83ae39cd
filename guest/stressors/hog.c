// SPDX-License-Identifier: GPL-2.0
/*
 * hog: allocate anonymous memory, fill every page with a pattern, then
 * keep re-touching random pages and verifying the pattern, so that pages
 * travel to swap and back.  A pattern mismatch is data corruption.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_PAGES, K_FILLED, K_TOUCHES, K_VERIFIES,
	K_REWRITES, K_SWEEPS, K_PAGEOUTS, K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "pages", "filled", "touches", "verifies",
	"rewrites", "sweeps", "pageouts", "corruptions",
};

struct hog_arg {
	size_t pages_per_worker;
	uint64_t seed;
	int corrupt;
};

static void check_page(char *base, uint8_t *gen, size_t i, uint64_t salt,
		       int worker)
{
	uint64_t got, want;
	char who[32];
	long w;

	w = pat_check(base + i * page_size, i, gen[i], salt, &got, &want);
	stat_add(K_VERIFIES, 1);
	if (w < 0)
		return;
	stat_add(K_CORRUPTIONS, 1);
	snprintf(who, sizeof(who), "hog worker %d", worker);
	note_corruption(who, base + i * page_size, 1, i, gen[i], salt, w, got,
			want);
	/* Repair so that one bad page is reported once. */
	pat_fill(base + i * page_size, i, gen[i], salt);
}

/*
 * Self-test of the check: what a kernel that loses data would do to page
 * @i behind the worker's back.  zero: the page comes back zero-filled;
 * stale: the last rewrite is lost (the page holds the generation before);
 * zeropage: the page is dropped and the next read maps the shared zero
 * page.  The next check of the page must report it.
 */
static void inject_corruption(char *base, uint8_t *gen, size_t i,
			      uint64_t salt, int kind, int worker)
{
	if (kind == CORRUPT_ZERO) {
		memset(base + i * page_size, 0, page_size);
	} else if (kind == CORRUPT_ZEROPAGE) {
		if (madvise(base + i * page_size, page_size, MADV_DONTNEED))
			note_error("madvise(MADV_DONTNEED) (inject)", errno);
	} else {
		pat_fill(base + i * page_size, i, gen[i], salt);
		gen[i]++;
	}
	check_page(base, gen, i, salt, worker);
}

static int hog_worker(int idx, void *varg)
{
	struct hog_arg *arg = varg;
	size_t n = arg->pages_per_worker, i, j, start, len;
	uint64_t salt, batch = 0;
	struct rng rng;
	uint8_t *gen;
	char *base;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	salt = rng_next(&rng);
	base = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED) {
		note_error("mmap (hog)", errno);
		return 1;
	}
	gen = calloc(n, 1);
	if (!gen) {
		note_error("calloc (hog)", errno);
		return 1;
	}

	for (i = 0; i < n; i++) {
		if (i % 256 == 0 && should_stop())
			break;
		pat_fill(base + i * page_size, i, 0, salt);
		stat_add(K_FILLED, 1);
	}
	/* Pages never filled are skipped by the checks below. */
	n = i;
	if (arg->corrupt && !idx && n)
		inject_corruption(base, gen, n / 2, salt, arg->corrupt, idx);

	while (n && !should_stop()) {
		if (++batch % 64 == 0) {
			/* A sequential sweep over a random window. */
			start = rng_below(&rng, n);
			len = 1 + rng_below(&rng, 256);
			for (j = start; j < n && j < start + len; j++)
				check_page(base, gen, j, salt, idx);
			stat_add(K_SWEEPS, 1);
			/*
			 * Push the window out to swap as well, so swap-in
			 * traffic does not depend on sizing alone.
			 */
			if (batch % 256 == 0) {
				if (start + len > n)
					len = n - start;
				if (!madvise(base + start * page_size,
					     len * page_size, MADV_PAGEOUT))
					stat_add(K_PAGEOUTS, 1);
				else if (errno == EINVAL)
					note_transient();	/* < 5.4 */
				else
					note_error("madvise(MADV_PAGEOUT)", errno);
			}
			continue;
		}
		for (j = 0; j < 32; j++) {
			i = rng_below(&rng, n);
			check_page(base, gen, i, salt, idx);
			stat_add(K_TOUCHES, 1);
			if (rng_chance(&rng, 30)) {
				gen[i]++;
				pat_fill(base + i * page_size, i, gen[i], salt);
				stat_add(K_REWRITES, 1);
			}
		}
	}
	/* Final full verification, bounded by a short grace period. */
	for (i = 0; i < n; i++) {
		if (i % 256 == 0 && deadline_ms &&
		    now_ms() > deadline_ms + 5000)
			break;
		check_page(base, gen, i, salt, idx);
	}
	munmap(base, arg->pages_per_worker * page_size);
	free(gen);
	return 0;
}

int mode_hog(struct opts *o)
{
	struct hog_arg arg;
	long mb, workers = o->workers > 0 ? o->workers : 2;

	mb = default_mb(o, 50, 1);
	arg.pages_per_worker = (size_t)mb * (1024 * 1024 / page_size) /
			       (size_t)workers;
	if (!arg.pages_per_worker)
		arg.pages_per_worker = 1;
	arg.seed = o->seed;
	arg.corrupt = o->corrupt;
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	stat_add(K_PAGES, arg.pages_per_worker * (unsigned long)workers);

	run_workers((int)workers, hog_worker, &arg);
	return report(o->mode, keys, K_NR);
}
