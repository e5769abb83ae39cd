// SPDX-License-Identifier: GPL-2.0
/*
 * memcg: per-cgroup reclaim and swap.  Each worker makes a memory cgroup
 * (v2) whose memory.max is below what its member process keeps in use,
 * so the member's faults reclaim and swap inside the cgroup (memory.swap.max
 * leaves room for the rest).  The member keeps M MiB of patterned memory,
 * half private anonymous and half shared anonymous (shmem), verifies and
 * rewrites random pages, pages windows out and forks children in the same
 * cgroup that verify and write what they inherited (COW of swapped pages
 * charged to the cgroup).  From outside, the worker moves memory.max up and
 * down (a lower limit reclaims in the writer's context) and asks for
 * proactive reclaim through memory.reclaim.  A member killed by the
 * cgroup's OOM killer is counted (oom_kills) and, before the end, replaced:
 * swapoff and the module's remote GUP bring its pages back charged to the
 * cgroup, at its memory.max with less swap left, so the kill is the
 * kernel's right answer.  Only a SIGKILL that memory.events counts as an
 * oom_kill is one; any other death is an error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_CGROUPS, K_MEMBERS, K_TOUCHES, K_VERIFIES,
	K_REWRITES, K_FORKS, K_PAGEOUTS, K_MAX_WRITES, K_RECLAIMS,
	K_RECLAIM_SHORT, K_MAX_EVENTS, K_SWAP_KB_MAX, K_OOM_KILLS,
	K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "cgroups", "members", "touches", "verifies",
	"rewrites", "forks", "pageouts", "max_writes", "reclaims",
	"reclaim_short", "max_events", "swap_kb_max", "oom_kills",
	"corruptions",
};

struct memcg_arg {
	size_t npages;		/* per member */
	uint64_t seed;
};

static int check(char *region, size_t i, uint8_t gen, uint64_t salt,
		 const char *who)
{
	uint64_t got, want;
	char name[64];
	long w;

	stat_add(K_VERIFIES, 1);
	w = pat_check(region + i * page_size, i, gen, salt, &got, &want);
	if (w < 0)
		return 0;
	stat_add(K_CORRUPTIONS, 1);
	snprintf(name, sizeof(name), "memcg %s", who);
	note_corruption(name, region + i * page_size, 1, i, gen, salt, w, got,
			want);
	return -1;
}

/*
 * A child of the member: verify the private pages it inherited and write
 * some (COW), read the shared ones (the member keeps rewriting those, so
 * their generation here is stale).
 */
static void member_child(char *region, size_t npages, size_t shared,
			 uint8_t *gens, uint64_t salt, uint64_t seed)
{
	volatile char sink = 0;
	struct rng rng;
	size_t i, k, n = npages / 8 + 1;

	rng_init(&rng, seed, 0xc6);
	for (k = 0; k < n; k++) {
		i = rng_below(&rng, npages);
		if (i < shared) {
			sink ^= region[i * page_size];
			continue;
		}
		if (check(region, i, gens[i], salt, "child"))
			_exit(3);
		if (rng_chance(&rng, 50)) {
			gens[i]++;	/* this copy of gens is the child's */
			pat_fill(region + i * page_size, i, gens[i], salt);
		}
	}
	_exit(0);
}

static void reap(pid_t *kids, int *nkids, int block)
{
	int status, i;
	pid_t r;

	while (*nkids > 0) {
		r = waitpid(-1, &status, block ? 0 : WNOHANG);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			return;
		}
		for (i = 0; i < *nkids; i++)
			if (kids[i] == r)
				kids[i] = kids[--*nkids];
		if (WIFEXITED(status) && WEXITSTATUS(status) == 3)
			_exit(3);	/* the child noted the corruption */
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
			continue;	/* the cgroup's OOM killer */
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			note_errorf("memcg child ended with status %#x",
				    status);
	}
}

/* The member: runs inside the cgroup until stopped; exit 3 on corruption. */
static void member_main(const char *cg, size_t npages, uint64_t seed)
{
	size_t shared = npages / 2, i, k, start, len;
	pid_t kids[4];
	int nkids = 0, err;
	struct rng rng;
	uint64_t salt;
	uint8_t *gens;
	char *region;
	pid_t pid;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	err = cg_enter(cg);
	if (err) {
		note_errorf("enter %s: %s", cg, errname(-err));
		_exit(1);
	}
	rng_init(&rng, seed, 0);
	salt = rng_next(&rng);
	/* [0, shared) is shmem, the rest private anonymous memory. */
	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, 1);
	if (region == MAP_FAILED || !gens ||
	    mmap(region, shared * page_size, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED) {
		note_error("mmap (memcg member)", errno);
		_exit(1);
	}
	for (i = 0; i < npages && !should_stop(); i++)
		pat_fill(region + i * page_size, i, 0, salt);
	while (!should_stop()) {
		for (k = 0; k < 64; k++) {
			i = rng_below(&rng, npages);
			if (check(region, i, gens[i], salt, "member"))
				_exit(3);
			stat_add(K_TOUCHES, 1);
			if (rng_chance(&rng, 30)) {
				gens[i]++;
				pat_fill(region + i * page_size, i, gens[i],
					 salt);
				stat_add(K_REWRITES, 1);
			}
		}
		if (rng_chance(&rng, 10)) {
			start = rng_below(&rng, npages);
			len = 1 + rng_below(&rng, 128);
			if (start + len > npages)
				len = npages - start;
			if (!madvise(region + start * page_size,
				     len * page_size, MADV_PAGEOUT))
				stat_add(K_PAGEOUTS, 1);
			else
				note_transient();
		}
		reap(kids, &nkids, 0);
		if (nkids < 2 && rng_chance(&rng, 20)) {
			pid = fork();
			if (pid == 0)
				member_child(region, npages, shared, gens,
					     salt, rng_next(&rng));
			if (pid > 0) {
				kids[nkids++] = pid;
				stat_add(K_FORKS, 1);
			} else {
				note_transient();	/* ENOMEM, EAGAIN */
			}
		}
		sleep_ms(1);
	}
	reap(kids, &nkids, 1);
	_exit(sh->errors ? 1 : 0);
}

/* memory.max somewhere in [50 %, 90 %] of the member's memory. */
static void move_max(const char *cg, size_t npages, struct rng *rng)
{
	unsigned long kb = npages * (page_size / 1024);
	char val[32];

	kb = kb / 2 + rng_below(rng, kb * 2 / 5 + 1);
	snprintf(val, sizeof(val), "%lu", kb * 1024);
	if (!cg_set(cg, "memory.max", val))
		stat_add(K_MAX_WRITES, 1);
}

static void reclaim(const char *cg, size_t npages, struct rng *rng)
{
	unsigned long kb = 64 + rng_below(rng, npages * (page_size / 1024) / 8);
	char val[32];
	int err;

	snprintf(val, sizeof(val), "%luK", kb);
	err = cg_write(cg, "memory.reclaim", val);
	if (!err)
		stat_add(K_RECLAIMS, 1);
	else if (err == -EAGAIN || err == -EINTR)
		stat_add(K_RECLAIM_SHORT, 1);	/* not all of it: normal */
	else
		note_errorf("write %s to %s/memory.reclaim: %s", val, cg,
			    errname(-err));
}

static pid_t start_member(const char *cg, size_t npages, struct rng *rng)
{
	uint64_t seed = rng_next(rng);
	pid_t pid = fork();

	if (pid == 0)
		member_main(cg, npages, seed);
	if (pid < 0)
		note_error("fork (memcg member)", errno);
	else
		stat_add(K_MEMBERS, 1);
	return pid;
}

static int memcg_worker(int idx, void *varg)
{
	struct memcg_arg *arg = varg;
	long events0, kills, v;
	char cg[256], name[64], val[32];
	int status, live;
	struct rng rng;
	pid_t member, r;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	snprintf(name, sizeof(name), "memcg.%d.%d", (int)getppid(), idx);
	if (cg_create(cg, sizeof(cg), name))
		return 1;
	stat_add(K_CGROUPS, 1);
	/* Room in swap for all of it, and memory for 70 % to start with. */
	snprintf(val, sizeof(val), "%zu", arg->npages * page_size);
	if (cg_set(cg, "memory.swap.max", val) ||
	    cg_set(cg, "memory.max", "max")) {
		cg_remove(cg);
		return 1;
	}
	snprintf(val, sizeof(val), "%zu", arg->npages * page_size / 10 * 7);
	cg_set(cg, "memory.max", val);
	events0 = cg_read(cg, "memory.events", "max");
	kills = cg_read(cg, "memory.events", "oom_kill");
	member = start_member(cg, arg->npages, &rng);
	live = member > 0;
	while (live) {
		r = waitpid(member, &status, WNOHANG);
		if (r == member) {
			live = 0;
			v = cg_read(cg, "memory.events", "oom_kill");
			if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL &&
			    v > kills) {
				kills = v;
				stat_add(K_OOM_KILLS, 1);
				if (should_stop())
					break;
				member = start_member(cg, arg->npages, &rng);
				live = member > 0;
				continue;
			}
			if (WIFSIGNALED(status))
				note_errorf("memcg member killed by signal %d (%s)",
					    WTERMSIG(status),
					    strsignal(WTERMSIG(status)));
			else if (WEXITSTATUS(status) && !sh->errors)
				note_errorf("memcg member exited with status %d",
					    WEXITSTATUS(status));
			break;
		}
		if (should_stop()) {
			kill(member, SIGTERM);
			sleep_ms(20);
			continue;
		}
		if (rng_chance(&rng, 50))
			move_max(cg, arg->npages, &rng);
		else
			reclaim(cg, arg->npages, &rng);
		v = cg_read(cg, "memory.swap.current", NULL);
		if (v > 0)
			stat_max(K_SWAP_KB_MAX, (unsigned long)v / 1024);
		sleep_ms(200 + (long)rng_below(&rng, 600));
	}
	v = cg_read(cg, "memory.events", "max");
	if (v > events0 && events0 >= 0)
		stat_add(K_MAX_EVENTS, (unsigned long)(v - events0));
	cg_remove(cg);
	return 0;
}

int mode_memcg(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 2, mb;
	struct memcg_arg arg;

	mb = default_mb(o, 4, 2);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.npages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	run_workers((int)workers, memcg_worker, &arg);
	return report(o->mode, keys, K_NR);
}
