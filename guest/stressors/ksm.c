// SPDX-License-Identifier: GPL-2.0
/*
 * ksm: kernel samepage merging under the swap storm.  Workers fill
 * MADV_MERGEABLE regions with pages of a few identical contents (the same
 * across workers), ksmd is tuned to scan fast through /sys/kernel/mm/ksm,
 * and the merged pages are then swapped out (MADV_PAGEOUT), written (COW
 * break of a KSM page), unmerged (MADV_UNMERGEABLE) and merged again, and
 * inherited by short-lived forked children (ksm_fork/ksm_exit).  Every
 * page is verified against its pattern.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_TUNED, K_MAPS, K_MERGEABLE, K_UNMERGEABLE,
	K_WRITES, K_VERIFIES, K_PAGEOUTS, K_FORKS, K_MUNMAPS,
	K_PAGES_SHARING_MAX, K_FULL_SCANS, K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "tuned", "maps", "mergeable", "unmergeable",
	"writes", "verifies", "pageouts", "forks", "munmaps",
	"pages_sharing_max", "full_scans", "corruptions",
};

#define KSM_DIR		"/sys/kernel/mm/ksm"
#define NR_SAME		8	/* distinct shared contents */

struct ksm_arg {
	size_t npages;		/* per worker */
	uint64_t salt;		/* the same for every worker: cross merges */
	uint64_t seed;
};

static char *region;
static uint32_t *ids;		/* content of each page */
static size_t npages;
static uint64_t salt;
static int worker_idx;

static uint32_t new_id(struct rng *rng, size_t i)
{
	if (rng_chance(rng, 10))	/* unique: never merges */
		return NR_SAME + (uint32_t)(worker_idx * npages + i);
	return (uint32_t)rng_below(rng, NR_SAME);
}

static int verify(size_t i)
{
	uint64_t got, want;
	long w;

	stat_add(K_VERIFIES, 1);
	w = pat_check(region + i * page_size, ids[i], 0, salt, &got, &want);
	if (w < 0)
		return 0;
	stat_add(K_CORRUPTIONS, 1);
	note_errorf("ksm worker %d: data corruption at page %zu (content %u) word %ld: got %#llx want %#llx",
		    worker_idx, i, ids[i], w, (unsigned long long)got,
		    (unsigned long long)want);
	pat_fill(region + i * page_size, ids[i], 0, salt);
	return -1;
}

static int advise(char *p, size_t n, int advice, const char *what)
{
	if (!madvise(p, n * page_size, advice))
		return 0;
	if (errno == EINVAL)
		note_missing(what, errno, "CONFIG_KSM");
	else if (errno == ENOMEM || errno == EAGAIN || errno == EINTR)
		note_transient();	/* unmerge without memory, or stopped */
	else
		note_error(what, errno);
	return errno == ENOMEM || errno == EAGAIN || errno == EINTR ? 0 : -1;
}

static int map_region(struct rng *rng)
{
	size_t i;

	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED) {
		region = NULL;
		if (errno == ENOMEM || errno == EAGAIN) {
			note_transient();
			return 0;
		}
		note_error("mmap (ksm)", errno);
		return -1;
	}
	for (i = 0; i < npages; i++) {
		ids[i] = new_id(rng, i);
		pat_fill(region + i * page_size, ids[i], 0, salt);
	}
	stat_add(K_MAPS, 1);
	if (advise(region, npages, MADV_MERGEABLE, "madvise(MADV_MERGEABLE)"))
		return -1;
	stat_add(K_MERGEABLE, 1);
	return 0;
}

static void unmap_region(void)
{
	size_t i;

	for (i = 0; i < npages; i++)
		verify(i);
	munmap(region, npages * page_size);
	region = NULL;
	stat_add(K_MUNMAPS, 1);
}

/* A child inherits the merged pages, reads some, writes a few, exits. */
static void fork_child(struct rng *rng)
{
	uint64_t seed = rng_next(rng);
	int status, bad = 0, k;
	struct rng crng;
	size_t i;
	pid_t pid;

	pid = fork();
	if (pid < 0) {
		if (errno == EAGAIN || errno == ENOMEM)
			note_transient();
		else
			note_error("fork (ksm)", errno);
		return;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		rng_init(&crng, seed, 0);
		for (k = 0; k < 64; k++) {
			i = rng_below(&crng, npages);
			bad |= verify(i);
			if (rng_chance(&crng, 25)) {
				ids[i] = new_id(&crng, i);
				pat_fill(region + i * page_size, ids[i], 0,
					 salt);
			}
		}
		_exit(bad ? 3 : 0);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			note_error("waitpid (ksm)", errno);
			return;
		}
	}
	stat_add(K_FORKS, 1);
	if (WIFSIGNALED(status))
		note_errorf("ksm child killed by signal %d (%s)",
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) && !sh->errors)
		note_errorf("ksm child exited with %d", WEXITSTATUS(status));
}

static int ksm_worker(int idx, void *varg)
{
	struct ksm_arg *arg = varg;
	uint64_t next_sample = 0;
	size_t i, first, n;
	struct rng rng;
	int err = 0, op;
	long v;

	worker_idx = idx;
	npages = arg->npages;
	salt = arg->salt;
	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	ids = calloc(npages, sizeof(*ids));
	if (!ids) {
		note_error("calloc (ksm)", errno);
		return 1;
	}
	while (!should_stop() && !err) {
		if (idx == 0 && now_ms() >= next_sample) {
			if (!sys_read_long(KSM_DIR "/pages_sharing", &v) && v > 0)
				stat_max(K_PAGES_SHARING_MAX, (unsigned long)v);
			next_sample = now_ms() + 200;
		}
		if (!region) {
			err = map_region(&rng);
			continue;
		}
		first = rng_below(&rng, npages);
		n = 1 + rng_below(&rng, 64);
		if (first + n > npages)
			n = npages - first;
		op = (int)rng_below(&rng, 20);
		if (op < 4) {
			/* COW break of (probably) a KSM page. */
			ids[first] = new_id(&rng, first);
			pat_fill(region + first * page_size, ids[first], 0,
				 salt);
			stat_add(K_WRITES, 1);
		} else if (op < 6) {
			if (!madvise(region + first * page_size,
				     n * page_size, MADV_PAGEOUT))
				stat_add(K_PAGEOUTS, 1);
			else if (errno == EINVAL)
				note_missing("madvise(MADV_PAGEOUT)", errno,
					     "Linux >= 5.4");
			else
				note_error("madvise(MADV_PAGEOUT)", errno);
		} else if (op < 7) {
			/* Unmerge a sub-range (splits the VMA), merge again. */
			err = advise(region + first * page_size, n,
				     MADV_UNMERGEABLE, "madvise(MADV_UNMERGEABLE)");
			if (!err)
				stat_add(K_UNMERGEABLE, 1);
			for (i = first; i < first + n && !err; i++)
				verify(i);
			if (!err)
				err = advise(region + first * page_size, n,
					     MADV_MERGEABLE,
					     "madvise(MADV_MERGEABLE)");
			if (!err)
				stat_add(K_MERGEABLE, 1);
		} else if (op < 8) {
			fork_child(&rng);
		} else if (op < 9 && rng_chance(&rng, 20)) {
			unmap_region();
		} else {
			for (i = first; i < first + n; i++)
				verify(i);
			sleep_ms(1 + (long)rng_below(&rng, 3));
		}
	}
	if (region)
		unmap_region();
	free(ids);
	return err ? 1 : 0;
}

int mode_ksm(struct opts *o)
{
	struct knob knobs[] = {
		{ KSM_DIR "/sleep_millisecs", 10, 0, 0 },
		{ KSM_DIR "/pages_to_scan", 1000, 0, 0 },
		{ KSM_DIR "/run", 1, 0, 0 },
	};
	long workers = o->workers > 0 ? o->workers : 2, mb, scans0 = -1, v;
	int nknobs = sizeof(knobs) / sizeof(knobs[0]);
	struct ksm_arg arg;
	struct rng rng;

	mb = default_mb(o, 6, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	if (access(KSM_DIR, F_OK)) {
		note_missing(KSM_DIR, errno, "CONFIG_KSM");
		return report(o->mode, keys, K_NR);
	}
	if (!o->no_tune)
		stat_add(K_TUNED, (unsigned long)knobs_set(knobs, nknobs,
							   "CONFIG_KSM"));
	sys_read_long(KSM_DIR "/full_scans", &scans0);

	rng_init(&rng, o->seed, 0);
	arg.salt = rng_next(&rng);
	arg.npages = (size_t)mb * (1024 * 1024 / page_size) / (size_t)workers;
	if (!arg.npages)
		arg.npages = 1;
	arg.seed = o->seed;
	if (!sh->errors)
		run_workers((int)workers, ksm_worker, &arg);

	if (scans0 >= 0 && !sys_read_long(KSM_DIR "/full_scans", &v) &&
	    v > scans0)
		stat_add(K_FULL_SCANS, (unsigned long)(v - scans0));
	knobs_restore(knobs, nknobs);
	return report(o->mode, keys, K_NR);
}
