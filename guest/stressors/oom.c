// SPDX-License-Identifier: GPL-2.0
/*
 * oom: the OOM killer and SIGKILL against processes with swapped memory,
 * while swapoff walks their mms.  Each worker makes a memory cgroup (v2)
 * with a small memory.max and memory.swap.max, and keeps up to three
 * children in it: victims fill their memory, page half of it out and keep
 * paging and reading until the worker SIGKILLs them at a random moment;
 * hogs touch more than the cgroup may hold, so the cgroup's OOM killer
 * fires.  Only processes in that cgroup can be chosen: the worker itself,
 * storm-run, sshd and init stay in the root cgroup.  vm.oom_dump_tasks is
 * switched off for the run (the task list of every kill would flood the
 * console).
 *
 * With --group N a worker instead keeps one cgroup with memory.oom.group
 * set and no swap: a spawner enters it and forks N - 1 sleepers there,
 * the worker lowers memory.max to just above what they use, and the
 * spawner touches memory until the OOM killer kills the whole group: the
 * kernel dumps and kills N tasks in one mem_cgroup_scan_tasks() walk
 * each, the loop a missing cond_resched() turns into a stall without
 * preemption.  The worker is the sleepers' subreaper; every one of the N
 * must die of SIGKILL within the cycle's deadline, or it is an error.
 * vm.oom_dump_tasks stays at the kernel's default (on) in this form.
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
#include <time.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_LIMIT_MB, K_SWAP_MAX_MB, K_TUNED, K_VICTIMS, K_HOGS,
	K_KILLS, K_OOM_KILLED, K_HOG_DONE, K_HOGS_STOPPED, K_PAGEOUTS,
	K_CHILD_TOUCHES,
	K_OOM_EVENTS, K_OOM_KILLS, K_CORRUPTIONS,
	K_GROUP_SIZE, K_GROUP_CYCLES, K_GROUP_KILLED, K_GROUP_OOM_KILLS,
	K_GROUP_SHORT, K_GROUP_SPAWN_MS_MAX, K_GROUP_KILL_MS_MAX, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "limit_mb", "swap_max_mb", "tuned", "victims", "hogs",
	"kills", "oom_killed", "hog_done", "hogs_stopped", "pageouts",
	"child_touches",
	"oom_events", "oom_kills", "corruptions",
	"group_size", "group_cycles", "group_killed", "group_oom_kills",
	"group_short", "group_spawn_ms_max", "group_kill_ms_max",
};

#define MAX_KIDS	3

struct oom_arg {
	size_t limit_pages;
	uint64_t seed;
	long group;
};

struct kid {
	pid_t pid;
	int hog;
	int killed;		/* we sent the SIGKILL */
	uint64_t kill_at;	/* victims: when to kill it */
};

static void enter_or_die(const char *cg)
{
	int err;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	err = cg_enter(cg);
	if (err) {
		note_errorf("enter %s: %s", cg, errname(-err));
		_exit(1);
	}
}

/* Fill, page half out, then page out and verify until killed. */
static void victim_main(const char *cg, size_t npages, uint64_t seed,
			int ready_fd)
{
	uint64_t salt, got, want;
	size_t i, start, len;
	struct rng rng;
	char *region, c = 1;
	long w;

	enter_or_die(cg);
	rng_init(&rng, seed, 0x71c);
	salt = rng_next(&rng);
	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		_exit(4);	/* ENOMEM: transient */
	for (i = 0; i < npages; i++)
		pat_fill(region + i * page_size, i, 0, salt);
	madvise(region, npages / 2 * page_size, MADV_PAGEOUT);
	if (write(ready_fd, &c, 1) != 1)
		_exit(1);
	close(ready_fd);
	for (;;) {
		start = rng_below(&rng, npages);
		len = 1 + rng_below(&rng, 32);
		if (start + len > npages)
			len = npages - start;
		if (!madvise(region + start * page_size, len * page_size,
			     MADV_PAGEOUT))
			stat_add(K_PAGEOUTS, 1);
		for (i = 0; i < 8; i++) {
			start = rng_below(&rng, npages);
			w = pat_check(region + start * page_size, start, 0,
				      salt, &got, &want);
			if (w >= 0) {
				stat_add(K_CORRUPTIONS, 1);
				note_corruption("oom victim",
						region + start * page_size, 1,
						start, 0, salt, w, got, want);
				_exit(3);
			}
		}
		stat_add(K_CHILD_TOUCHES, 8);
		sleep_ms((long)rng_below(&rng, 5));
	}
}

/* Touch @npages fresh pages: exit 5 if the cgroup's limit let them all in. */
static _Noreturn void touch_until_killed(size_t npages)
{
	size_t i;
	char *p;

	p = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		_exit(4);
	for (i = 0; i < npages; i++)
		memset(p + i * page_size, (int)(i | 1), 64);
	_exit(5);	/* survived: the limit did not hold */
}

/* Touch more than memory.max + memory.swap.max: the OOM killer's turn. */
static void hog_main(const char *cg, size_t npages)
{
	enter_or_die(cg);
	touch_until_killed(npages);
}

static int start_kid(struct kid *k, int hog, const char *cg,
		     size_t limit_pages, struct rng *rng)
{
	uint64_t seed = rng_next(rng);
	int fds[2];
	char c;

	k->hog = hog;
	k->killed = 0;
	if (!hog && pipe(fds)) {
		note_error("pipe", errno);
		return -1;
	}
	k->pid = fork();
	if (k->pid < 0) {
		if (!hog) {
			close(fds[0]);
			close(fds[1]);
		}
		k->pid = 0;
		note_transient();
		return 0;
	}
	if (k->pid == 0) {
		if (hog)
			hog_main(cg, limit_pages * 3);
		close(fds[0]);
		victim_main(cg, limit_pages / 3, seed, fds[1]);
	}
	stat_add(k->hog ? K_HOGS : K_VICTIMS, 1);
	if (k->hog)
		return 0;
	close(fds[1]);
	/* Not ready: it died first (the OOM killer may pick a victim). */
	if (read(fds[0], &c, 1) != 1)
		k->kill_at = 0;
	else
		k->kill_at = now_ms() + 20 + rng_below(rng, 1500);
	close(fds[0]);
	return 0;
}

static void reaped(struct kid *k, int status)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		if (!k->killed)
			stat_add(K_OOM_KILLED, 1);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 5) {
		stat_add(K_HOG_DONE, 1);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 4) {
		note_transient();	/* mmap ENOMEM */
	} else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 3)) {
		note_errorf("oom %s ended with status %#x",
			    k->hog ? "hog" : "victim", status);
	}
	k->pid = 0;
}

static int oom_worker(int idx, void *varg)
{
	struct oom_arg *arg = varg;
	struct kid kids[MAX_KIDS] = { { 0, 0, 0, 0 } };
	long ev0, kill0, v;
	char cg[256], name[64], val[32];
	uint64_t next_hog = 0;
	int i, status, hog;
	struct rng rng;
	pid_t r;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	snprintf(name, sizeof(name), "oom.%d.%d", (int)getppid(), idx);
	if (cg_create(cg, sizeof(cg), name))
		return 1;
	snprintf(val, sizeof(val), "%zu", arg->limit_pages * page_size / 2);
	if (cg_set(cg, "memory.swap.max", val)) {
		cg_remove(cg);
		return 1;
	}
	snprintf(val, sizeof(val), "%zu", arg->limit_pages * page_size);
	if (cg_set(cg, "memory.max", val) ||
	    cg_set(cg, "memory.oom.group", "0")) {
		cg_remove(cg);
		return 1;
	}
	ev0 = cg_read(cg, "memory.events", "oom");
	kill0 = cg_read(cg, "memory.events", "oom_kill");
	while (!should_stop() && !sh->errors) {
		for (i = 0; i < MAX_KIDS; i++) {
			struct kid *k = &kids[i];

			if (!k->pid) {
				/*
				 * The first slot is the hog's (one at a time, at
				 * most every 2 s), the others the victims': a
				 * short or slow run still sees the OOM killer.
				 */
				hog = i == 0;
				if (hog && now_ms() < next_hog)
					continue;
				if (start_kid(k, hog, cg, arg->limit_pages, &rng))
					break;
				if (k->pid && hog)
					next_hog = now_ms() + 2000;
				continue;
			}
			r = waitpid(k->pid, &status, WNOHANG);
			if (r == k->pid) {
				reaped(k, status);
				continue;
			}
			if (!k->hog && !k->killed && now_ms() >= k->kill_at) {
				kill(k->pid, SIGKILL);
				k->killed = 1;
				stat_add(K_KILLS, 1);
			}
		}
		sleep_ms(5 + (long)rng_below(&rng, 20));
	}
	for (i = 0; i < MAX_KIDS; i++) {
		if (!kids[i].pid)
			continue;
		if (kids[i].hog)	/* not over the limit yet: no verdict */
			stat_add(K_HOGS_STOPPED, 1);
		kill(kids[i].pid, SIGKILL);
		kids[i].killed = 1;
		while (waitpid(kids[i].pid, &status, 0) < 0 && errno == EINTR)
			;
		reaped(&kids[i], status);
	}
	v = cg_read(cg, "memory.events", "oom");
	if (ev0 >= 0 && v > ev0)
		stat_add(K_OOM_EVENTS, (unsigned long)(v - ev0));
	v = cg_read(cg, "memory.events", "oom_kill");
	if (kill0 >= 0 && v > kill0)
		stat_add(K_OOM_KILLS, (unsigned long)(v - kill0));
	cg_remove(cg);
	return 0;
}

/* A member of the group that only waits for the OOM killer. */
static _Noreturn void sleeper_main(void)
{
	for (;;)
		pause();
}

/*
 * The group's first process: in the cgroup, fork @n - 1 sleepers there,
 * say how many it made on @ready_fd, wait for the worker's go on @go_fd,
 * then touch memory until the OOM killer kills the group.
 */
static _Noreturn void
spawner_main(const char *cg, long n, int ready_fd, int go_fd)
{
	long made = 1;
	pid_t pid;
	char c;

	enter_or_die(cg);
	for (; made < n; made++) {
		pid = fork();
		if (pid < 0)
			break;		/* EAGAIN, ENOMEM: a smaller group */
		if (pid == 0)
			sleeper_main();
	}
	if (write(ready_fd, &made, sizeof(made)) != sizeof(made))
		_exit(6);
	if (read(go_fd, &c, 1) != 1)
		_exit(6);
	touch_until_killed(((size_t)64 << 20) / page_size);	/* 64 MiB */
}

/*
 * Reap the group: 0 when every member died of SIGKILL, -1 otherwise
 * (error noted), -2 when @deadline passed first.
 */
static int reap_group(long members, uint64_t deadline, long *killed)
{
	int status, other = 0;
	long reaped = 0;
	pid_t r;

	while (reaped < members) {
		r = waitpid(-1, &status, WNOHANG);
		if (r > 0) {
			reaped++;
			if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
				(*killed)++;
			else if (!other++)
				note_errorf("oom group member ended with status %#x, not SIGKILL",
					    status);
			continue;
		}
		if (r < 0 && errno != EINTR)
			break;		/* ECHILD: fewer than counted */
		if (now_ms() >= deadline)
			return -2;
		sleep_ms(10);
	}
	return other ? -1 : 0;
}

static int oom_group_worker(int idx, void *varg)
{
	struct oom_arg *arg = varg;
	int ready[2], go[2], rc = 0;
	long made, before, after, killed;
	uint64_t t0, t1;
	char cg[256], name[64], val[32];
	pid_t spawner;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	snprintf(name, sizeof(name), "oomgroup.%d.%d", (int)getppid(), idx);
	if (cg_create(cg, sizeof(cg), name))
		return 1;
	if (cg_set(cg, "memory.oom.group", "1") ||
	    cg_set(cg, "memory.swap.max", "0")) {
		cg_remove(cg);
		return 1;
	}
	while (!should_stop() && !sh->errors) {
		if (cg_set(cg, "memory.max", "max"))
			break;
		if (pipe(ready)) {
			note_error("pipe", errno);
			break;
		}
		if (pipe(go)) {
			note_error("pipe", errno);
			close(ready[0]);
			close(ready[1]);
			break;
		}
		t0 = now_ms();
		spawner = fork();
		if (spawner < 0) {
			note_transient();
			close(ready[0]);
			close(ready[1]);
			close(go[0]);
			close(go[1]);
			sleep_ms(100);
			continue;
		}
		if (spawner == 0) {
			close(ready[0]);
			close(go[1]);
			spawner_main(cg, arg->group, ready[1], go[0]);
		}
		close(ready[1]);
		close(go[0]);
		made = 0;
		if (read(ready[0], &made, sizeof(made)) != sizeof(made))
			made = 0;	/* it died before it could say */
		close(ready[0]);
		stat_max(K_GROUP_SPAWN_MS_MAX, (unsigned long)(now_ms() - t0));
		stat_max(K_GROUP_SIZE, (unsigned long)made);
		if (made < arg->group)
			stat_add(K_GROUP_SHORT, 1);
		if (should_stop()) {
			/*
			 * The run ended while the group was made: no OOM
			 * kill now that would outlast it.
			 */
			close(go[1]);
			cg_write(cg, "cgroup.kill", "1");
			break;
		}
		/*
		 * Just above what the group holds now: the spawner's
		 * touches pass it within a few MiB, with no swap to go to.
		 */
		before = cg_read(cg, "memory.events", "oom_group_kill");
		after = cg_read(cg, "memory.current", NULL);
		snprintf(val, sizeof(val), "%ld", (after > 0 ? after : 0) + (4L << 20));
		if (made && cg_set(cg, "memory.max", val)) {
			rc = 1;
			cg_write(cg, "cgroup.kill", "1");
		}
		t1 = now_ms();
		if (write(go[1], "g", 1) != 1 && made)
			note_error("write to the spawner", errno);
		close(go[1]);
		killed = 0;
		switch (reap_group(made ? made : 1, t1 + 120000, &killed)) {
		case -2:
			if (!should_stop())
				note_errorf("oom group of %ld: %ld killed in 120 s, the rest still alive",
					    made, killed);
			cg_write(cg, "cgroup.kill", "1");
			reap_group(made - killed, now_ms() + 10000, &killed);
			rc = 1;
			break;
		case -1:
			rc = 1;
			break;
		}
		if (rc)
			break;
		stat_max(K_GROUP_KILL_MS_MAX, (unsigned long)(now_ms() - t1));
		stat_add(K_GROUP_CYCLES, 1);
		stat_add(K_GROUP_KILLED, (unsigned long)killed);
		after = cg_read(cg, "memory.events", "oom_group_kill");
		if (before >= 0 && after > before)
			stat_add(K_GROUP_OOM_KILLS, (unsigned long)(after - before));
		else if (made > 1)
			note_errorf("oom group of %ld killed, but memory.events oom_group_kill did not move",
				    made);
	}
	cg_write(cg, "cgroup.kill", "1");
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	cg_remove(cg);
	return rc;
}

int mode_oom(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb;
	unsigned long hogs;
	struct knob knobs[] = {
		{ "/proc/sys/vm/oom_dump_tasks", 0, 0, 0 },
		{ "/proc/sys/kernel/threads-max", 0, 0, 0 },
	};
	struct oom_arg arg;
	long threads = 0;

	memset(&arg, 0, sizeof(arg));

	if (o->group > 0) {
		/*
		 * The task list of every group kill is part of its cost:
		 * the kernel's default.  A small guest's threads-max (RAM
		 * over 8 stacks) would refuse the group's forks.
		 */
		knobs[0].want = 1;
		sys_read_long(knobs[1].path, &threads);
		knobs[1].want = threads + 2 * o->group;
		arg.group = o->group;
		stat_add(K_WORKERS, (unsigned long)workers);
		stat_add(K_TUNED, (unsigned long)knobs_set(knobs, 2, "CONFIG_PROC_SYSCTL"));
		if (!sh->errors)
			run_workers((int)workers, oom_group_worker, &arg);
		knobs_restore(knobs, 2);
		if (!sh->errors && !stat_get(K_GROUP_CYCLES))
			note_errorf("no oom group of %ld was killed in the run", o->group);
		return report(o->mode, keys, K_NR);
	}
	mb = default_mb(o, 3, 4);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_LIMIT_MB, (unsigned long)mb);
	stat_add(K_SWAP_MAX_MB, (unsigned long)mb / 2);
	arg.limit_pages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	stat_add(K_TUNED, (unsigned long)knobs_set(knobs, 1, "CONFIG_PROC_SYSCTL"));
	if (!sh->errors)
		run_workers((int)workers, oom_worker, &arg);
	knobs_restore(knobs, 1);
	/* A hog the end of the run stopped may not have reached the limit. */
	hogs = stat_get(K_HOGS) - stat_get(K_HOGS_STOPPED);
	if (!sh->errors && hogs && !stat_get(K_OOM_KILLS))
		note_errorf("%lu hogs over memory.max + memory.swap.max, but the cgroup's OOM killer never fired",
			    hogs);
	return report(o->mode, keys, K_NR);
}
