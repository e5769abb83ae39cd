// SPDX-License-Identifier: GPL-2.0
/*
 * numa: page migration between NUMA nodes under the swap storm.  Each
 * worker keeps M MiB of patterned memory (half private anonymous, half
 * shmem) and moves it between the guest's nodes: move_pages(2) of random
 * pages to random nodes, mbind(2) of sub-ranges with MPOL_MF_MOVE (bind,
 * interleave or preferred: splits the VMA and migrates what is there),
 * home nodes set on small ranges of a bound one, cutting it into many
 * VMAs, and on the whole of it (set_mempolicy_home_node(2) splits and
 * merges them as it walks them), mbind back
 * to the default policy (the VMAs merge again), and
 * migrate_pages(2) of the whole worker now and then; meanwhile it pages
 * windows out (migration meets swap entries) and verifies and rewrites
 * random pages.  Needs two online nodes: on one node there is nothing to
 * migrate between, and that is an error, not a skip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_NODES, K_MOVE_CALLS, K_PAGES_MOVED, K_MOVE_ENOENT,
	K_MOVE_BUSY, K_MBINDS, K_UNBINDS, K_HOME_NODES, K_MIGRATE_CALLS,
	K_MIGRATE_LEFT,
	K_PAGEOUTS, K_TOUCHES, K_REWRITES, K_MIGRATED, K_VMSTAT_EVENTS,
	K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "nodes", "move_calls", "pages_moved", "move_enoent",
	"move_busy", "mbinds", "unbinds", "home_nodes", "migrate_calls",
	"migrate_left",
	"pageouts", "touches", "rewrites", "migrated", "vmstat_events",
	"corruptions",
};

/* linux/mempolicy.h, without libnuma. */
#define POL_DEFAULT	0
#define POL_PREFERRED	1
#define POL_BIND	2
#define POL_INTERLEAVE	3
#define POL_MF_MOVE	(1 << 1)
#ifndef __NR_set_mempolicy_home_node
#define __NR_set_mempolicy_home_node 450	/* every arch's table since 5.17 */
#endif
#define MOVE_PAGES_MAX	64
#define HOME_CUTS	32	/* home node calls on small ranges per bind */
#define MAX_NODES	(8 * (int)sizeof(unsigned long))

struct numa_arg {
	size_t npages;
	uint64_t seed;
	int nodes[MAX_NODES];
	int nnodes;
};

/* Online nodes from /sys/devices/system/node/online ("0-1", "0,2-3"). */
static int online_nodes(int *nodes)
{
	char buf[128], *p, *end;
	long a, b;
	int n = 0;

	if (sys_read_buf("/sys/devices/system/node/online", buf,
			 sizeof(buf)) < 0)
		return -1;
	for (p = buf; *p && *p != '\n'; p = *end ? end + 1 : end) {
		a = strtol(p, &end, 10);
		b = a;
		if (*end == '-')
			b = strtol(end + 1, &end, 10);
		for (; a <= b && n < MAX_NODES && a < MAX_NODES; a++)
			nodes[n++] = (int)a;
		if (end == p)
			break;
	}
	return n;
}

static long do_mbind(void *addr, size_t len, int mode, unsigned long mask,
		     unsigned int flags)
{
	return syscall(__NR_mbind, addr, len, mode, mode ? &mask : NULL,
		       mode ? MAX_NODES + 1 : 0, flags);
}

static int missing(const char *what, int err)
{
	if (err == ENOSYS) {
		note_missing(what, ENOSYS, "CONFIG_NUMA");
		return 1;
	}
	return 0;
}

/*
 * Bind [start, start + n) to one node, then set home nodes on it: small
 * ranges with random nodes cut it into many VMAs (a VMA's home node is part
 * of its policy, so neighbours with different ones do not merge), and a
 * call over the whole range walks them all, splitting the ends and merging
 * the rest back into one as it goes: the VMA tree changes under the walk at
 * every step.  A VMA of the range with another policy (an interleave or
 * preferred mbind raced in) is EOPNOTSUPP, one without a policy ENOENT:
 * both are the call's answer, not an error.  Nonzero only on an error.
 */
static int home_node_call(struct numa_arg *arg, struct rng *rng, char *addr,
			  size_t pages)
{
	int home = arg->nodes[rng_below(rng, (uint64_t)arg->nnodes)];
	long r;

	r = syscall(__NR_set_mempolicy_home_node, addr, pages * page_size,
		    home, 0);
	if (r && missing("set_mempolicy_home_node", errno))
		return 1;
	if (r && errno != EOPNOTSUPP && errno != ENOENT && errno != ENOMEM) {
		note_error("set_mempolicy_home_node", errno);
		return 1;
	}
	if (r)
		note_transient();
	else
		stat_add(K_HOME_NODES, 1);
	return 0;
}

static int home_nodes(struct numa_arg *arg, struct rng *rng, char *region,
		      size_t start, size_t n)
{
	unsigned long mask = 1UL << arg->nodes[rng_below(rng,
					(uint64_t)arg->nnodes)];
	size_t from;
	int k;

	if (n < 8)
		return 0;
	if (do_mbind(region + start * page_size, n * page_size, POL_BIND,
		     mask, 0)) {
		if (missing("mbind", errno))
			return 1;
		if (errno != ENOMEM) {
			note_error("mbind(MPOL_BIND)", errno);
			return 1;
		}
		note_transient();
		return 0;
	}
	stat_add(K_MBINDS, 1);
	for (k = 0; k < HOME_CUTS && !should_stop(); k++) {
		from = start + 1 + rng_below(rng, n - 2);
		if (home_node_call(arg, rng, region + from * page_size,
				   1 + rng_below(rng, start + n - from)))
			return 1;
		if ((k & 3) == 3 &&
		    home_node_call(arg, rng, region + (start + 1) * page_size,
				   n - 2))
			return 1;
	}
	return 0;
}

static int numa_worker(int idx, void *varg)
{
	struct numa_arg *arg = varg;
	size_t npages = arg->npages, shared = npages / 2, i, k, n, start;
	int status[MOVE_PAGES_MAX], target[MOVE_PAGES_MAX];
	void *pages[MOVE_PAGES_MAX];
	unsigned long all = 0, mask;
	uint64_t salt, got, want;
	char who[32];
	struct rng rng;
	uint8_t *gens;
	char *region;
	long r, w;
	int op;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	salt = rng_next(&rng);
	for (k = 0; k < (size_t)arg->nnodes; k++)
		all |= 1UL << arg->nodes[k];
	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, 1);
	if (region == MAP_FAILED || !gens ||
	    mmap(region, shared * page_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		note_error("mmap (numa)", errno);
		return 1;
	}
	for (i = 0; i < npages; i++)
		pat_fill(region + i * page_size, i, 0, salt);

	while (!should_stop() && !sh->errors) {
		op = (int)rng_below(&rng, 100);
		start = rng_below(&rng, npages);
		n = 1 + rng_below(&rng, 256);
		if (start + n > npages)
			n = npages - start;
		if (op < 30) {
			n = 1 + rng_below(&rng, MOVE_PAGES_MAX);
			for (k = 0; k < n; k++) {
				pages[k] = region + rng_below(&rng, npages) *
						    page_size;
				target[k] = arg->nodes[rng_below(&rng,
						(uint64_t)arg->nnodes)];
			}
			r = syscall(__NR_move_pages, 0, n, pages, target,
				    status, POL_MF_MOVE);
			if (r < 0) {
				if (missing("move_pages", errno))
					break;
				if (errno != ENOMEM && errno != EBUSY) {
					note_error("move_pages", errno);
					break;
				}
				note_transient();
				continue;
			}
			stat_add(K_MOVE_CALLS, 1);
			for (k = 0; k < n; k++) {
				if (status[k] == target[k])
					stat_add(K_PAGES_MOVED, 1);
				else if (status[k] == -ENOENT ||
					 status[k] == -EFAULT)
					stat_add(K_MOVE_ENOENT, 1);	/* in swap */
				else if (status[k] < 0)
					stat_add(K_MOVE_BUSY, 1);
			}
		} else if (op < 45) {
			static const int modes[] = {
				POL_BIND, POL_INTERLEAVE, POL_PREFERRED
			};
			int mode = modes[rng_below(&rng, 3)];

			mask = 1UL << arg->nodes[rng_below(&rng,
						(uint64_t)arg->nnodes)];
			if (mode == POL_INTERLEAVE)
				mask = all;
			r = do_mbind(region + start * page_size,
				     n * page_size, mode, mask, POL_MF_MOVE);
			if (r && missing("mbind", errno))
				break;
			if (r && errno != EIO && errno != ENOMEM) {
				note_error("mbind(MPOL_MF_MOVE)", errno);
				break;
			}
			if (r)
				note_transient();	/* EIO: some not moved */
			else
				stat_add(K_MBINDS, 1);
		} else if (op < 62) {
			if (home_nodes(arg, &rng, region, start, n))
				break;
		} else if (op < 67) {
			if (do_mbind(region, npages * page_size, POL_DEFAULT,
				     0, 0)) {
				note_error("mbind(MPOL_DEFAULT)", errno);
				break;
			}
			stat_add(K_UNBINDS, 1);
		} else if (op < 70) {
			unsigned long from = all, to;

			to = 1UL << arg->nodes[rng_below(&rng,
						(uint64_t)arg->nnodes)];
			r = syscall(__NR_migrate_pages, 0, MAX_NODES + 1,
				    &from, &to);
			if (r < 0) {
				if (missing("migrate_pages", errno))
					break;
				note_error("migrate_pages", errno);
				break;
			}
			stat_add(K_MIGRATE_CALLS, 1);
			stat_add(K_MIGRATE_LEFT, (unsigned long)r);
		} else if (op < 80) {
			if (!madvise(region + start * page_size,
				     n * page_size, MADV_PAGEOUT))
				stat_add(K_PAGEOUTS, 1);
			else
				note_transient();
		} else {
			for (k = 0; k < 32; k++) {
				i = rng_below(&rng, npages);
				w = pat_check(region + i * page_size, i,
					      gens[i], salt, &got, &want);
				stat_add(K_TOUCHES, 1);
				if (w >= 0) {
					stat_add(K_CORRUPTIONS, 1);
					snprintf(who, sizeof(who),
						 "numa worker %d", idx);
					note_corruption(who,
							region + i * page_size,
							1, i, gens[i], salt,
							w, got, want);
					break;
				}
				if (rng_chance(&rng, 30)) {
					gens[i]++;
					pat_fill(region + i * page_size, i,
						 gens[i], salt);
					stat_add(K_REWRITES, 1);
				}
			}
		}
		sleep_ms((long)rng_below(&rng, 4));
	}
	munmap(region, npages * page_size);
	free(gens);
	return 0;
}

int mode_numa(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb, m0, v;
	struct numa_arg arg;

	memset(&arg, 0, sizeof(arg));
	mb = default_mb(o, 4, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.nnodes = online_nodes(arg.nodes);
	if (arg.nnodes < 0) {
		note_missing("/sys/devices/system/node/online", ENOENT,
			     "CONFIG_NUMA");
		return report(o->mode, keys, K_NR);
	}
	stat_add(K_NODES, (unsigned long)arg.nnodes);
	if (arg.nnodes < 2) {
		note_errorf("needs 2 online NUMA nodes, the guest has %d (the arch's QEMU machine gives it one node)",
			    arg.nnodes);
		return report(o->mode, keys, K_NR);
	}
	arg.npages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	m0 = vmstat_get("pgmigrate_success");
	if (m0 >= 0)
		stat_add(K_VMSTAT_EVENTS, 1);
	run_workers((int)workers, numa_worker, &arg);
	v = vmstat_get("pgmigrate_success");
	if (m0 >= 0 && v > m0)
		stat_add(K_MIGRATED, (unsigned long)(v - m0));
	return report(o->mode, keys, K_NR);
}
