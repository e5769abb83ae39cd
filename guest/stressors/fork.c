// SPDX-License-Identifier: GPL-2.0
/*
 * fork: a parent holding M MiB of patterned, partly swapped memory keeps
 * up to N children alive, created by fork(), vfork() (+ exec) or clone()
 * (plain, or sharing the mm with CLONE_VM).  Children touch a random
 * subset of the pages (COW breaks and swap-ins) and verify the pattern,
 * then exit at once, after a random delay, or get SIGKILLed.
 *
 * The parent also holds --vmas small mappings that never merge: private
 * anonymous pages alternating with shared pages of a tmpfs file.  Every
 * fork then links each one into the child (anon_vma_fork() under the
 * anon_vma rwsem, the file VMA into i_mmap under i_mmap_rwsem) inside
 * dup_mmap(), with mmap_lock held for write, and every exit unlinks them
 * again: the rmap locks swapoff's unuse path and reclaim take too.
 *
 * With --quick N, N more workers (forked from the parent, so holding the
 * same small VMAs, with a small region of their own) fork short-lived
 * children back to back, waiting for each: one touch at most, then exit
 * (or SIGKILL).  Each child copies its worker's swap entries
 * (swap_duplicate() under the swap device or cluster lock, the new mm put
 * on the mmlist under mmlist_lock) and frees them again at exit, so
 * swapoff's walk of the mmlist keeps meeting mms that come and go.
 *
 * With --big-exit V one more worker forks, one after the other, children
 * that cut a fresh anonymous region into V single-page VMAs (every other
 * page made read-only, so no two neighbours merge; nothing is touched) and
 * exit: exit_mmap() then unmaps, frees the page tables of and removes V
 * VMAs, the last two under mmap_lock for write, in loops that yield the
 * CPU only where the kernel says so (without full preemption a missing
 * cond_resched() there is a soft lockup).  vm.max_map_count is raised to
 * fit.  big_exit_ms is the time from the child's last VMA to its reaping.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_FORKS, K_VFORKS, K_EXECS, K_CLONES, K_CLONE_VM,
	K_EXITS, K_KILLS, K_CHILD_TOUCHES, K_CHILD_COW, K_PARENT_TOUCHES,
	K_PAGEOUTS, K_CORRUPTIONS, K_VMAS, K_QUICK_WORKERS, K_QUICK_FORKS,
	K_QUICK_KILLS, K_BIG_EXITS, K_BIG_EXIT_VMAS, K_BIG_BUILD_MS,
	K_BIG_EXIT_MS, K_BIG_EXIT_MS_MAX, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "forks", "vforks", "execs", "clones", "clone_vm",
	"exits", "kills", "child_touches", "child_cow", "parent_touches",
	"pageouts", "corruptions", "vmas", "quick_workers", "quick_forks",
	"quick_kills", "big_exits", "big_exit_vmas", "big_build_ms",
	"big_exit_ms", "big_exit_ms_max",
};

#define CHILD_STACK	(64 * 1024)
#define EXIT_CORRUPT	3
#define EXIT_EXEC	127

struct child {
	pid_t pid;
	int killed;
	int kind;	/* 0 fork, 1 vfork, 2 clone, 3 clone_vm */
	void *stack;
};

static char *region;
static uint8_t *gens;
static size_t npages;
static uint64_t salt;

static int child_verify(size_t i)
{
	uint64_t got, want;

	return pat_check(region + i * page_size, i, gens[i], salt, &got,
			 &want) >= 0;
}

/* A COW child: verify and rewrite a random subset, then go away. */
static int child_body(uint64_t seed, uint64_t index)
{
	struct rng rng;
	size_t k, i, touched = 0, cow = 0;
	int bad = 0, how;

	rng_init(&rng, seed, index);
	k = 1 + rng_below(&rng, npages / 4 + 1);
	for (; k > 0 && !stop_requested; k--) {
		i = rng_below(&rng, npages);
		if (child_verify(i))
			bad = 1;
		touched++;
		if (rng_chance(&rng, 50)) {
			gens[i]++;
			pat_fill(region + i * page_size, i, gens[i], salt);
			cow++;
		}
	}
	stat_add(K_CHILD_TOUCHES, touched);
	stat_add(K_CHILD_COW, cow);
	if (bad) {
		stat_add(K_CORRUPTIONS, 1);
		return EXIT_CORRUPT;
	}
	how = (int)rng_below(&rng, 3);
	if (how == 1) {
		sleep_ms((long)rng_below(&rng, 200));
	} else if (how == 2) {
		/* Linger (still touching) until killed or told to stop. */
		while (!should_stop()) {
			i = rng_below(&rng, npages);
			if (child_verify(i)) {
				stat_add(K_CORRUPTIONS, 1);
				return EXIT_CORRUPT;
			}
			stat_add(K_CHILD_TOUCHES, 1);
			sleep_ms(5);
		}
	}
	return 0;
}

static uint64_t child_seed;
static uint64_t child_index;

static int clone_fn(void *arg)
{
	(void)arg;
	return child_body(child_seed, child_index);
}

/* Shares the parent's mm: read-only touches (faults, swap-ins). */
static int clone_vm_fn(void *arg)
{
	struct rng rng;
	volatile char sink = 0;
	size_t k;

	(void)arg;
	rng_init(&rng, child_seed, child_index);
	for (k = 1 + rng_below(&rng, npages / 8 + 1); k > 0; k--)
		sink ^= region[rng_below(&rng, npages) * page_size];
	(void)sink;
	return 0;
}

static void parent_touch(struct rng *rng, unsigned int n)
{
	uint64_t got, want;
	size_t i;
	long w;

	while (n--) {
		i = rng_below(rng, npages);
		w = pat_check(region + i * page_size, i, gens[i], salt, &got,
			      &want);
		if (w >= 0) {
			stat_add(K_CORRUPTIONS, 1);
			note_corruption("fork parent", region + i * page_size,
					1, i, gens[i], salt, w, got, want);
			pat_fill(region + i * page_size, i, gens[i], salt);
		}
		if (rng_chance(rng, 30)) {
			gens[i]++;
			pat_fill(region + i * page_size, i, gens[i], salt);
		}
		stat_add(K_PARENT_TOUCHES, 1);
	}
}

/* Keep part of the parent's memory in swap for the children to fault. */
static void parent_pageout(struct rng *rng)
{
	size_t start = rng_below(rng, npages), len = 1 + rng_below(rng, 256);

	if (start + len > npages)
		len = npages - start;
	if (!madvise(region + start * page_size, len * page_size,
		     MADV_PAGEOUT))
		stat_add(K_PAGEOUTS, 1);
	else if (errno == EINVAL)
		note_transient();	/* kernels before 5.4 */
	else
		note_error("madvise(MADV_PAGEOUT)", errno);
}

/* One quick child (see the top of the file), reaped before returning. */
static void quick_fork(struct rng *rng)
{
	unsigned int how = (unsigned int)rng_below(rng, 4);
	size_t i = rng_below(rng, npages);
	int status;
	pid_t pid;

	pid = fork();
	if (pid == 0) {
		if (how == 0)
			_exit(0);
		/* A read (swap-in into the new mm), or a COW write. */
		if (child_verify(i))
			_exit(EXIT_CORRUPT);
		if (how == 2)
			pat_fill(region + i * page_size, i, gens[i] + 1, salt);
		_exit(0);
	}
	if (pid < 0) {
		if (errno == EAGAIN || errno == ENOMEM)
			note_transient();
		else
			note_error("fork (quick)", errno);
		return;
	}
	stat_add(K_QUICK_FORKS, 1);
	if (how == 3) {
		/* Killed while faulting or already exiting. */
		kill(pid, SIGKILL);
		stat_add(K_QUICK_KILLS, 1);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			note_error("waitpid (quick fork child)", errno);
			return;
		}
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CORRUPT) {
		stat_add(K_CORRUPTIONS, 1);
		note_errorf("quick fork child saw data corruption at page %zu", i);
	} else if (WIFEXITED(status) && WEXITSTATUS(status)) {
		note_errorf("quick fork child exited with %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status) &&
		   !(how == 3 && WTERMSIG(status) == SIGKILL)) {
		note_errorf("quick fork child killed by signal %d (%s)",
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
	}
}

static void reap(struct child *kids, int max, int *live, int block)
{
	int status, i;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, block ? 0 : WNOHANG);
		if (pid <= 0) {
			if (pid < 0 && errno == EINTR && block)
				continue;
			if (pid < 0 && errno == ECHILD)
				*live = 0;	/* nothing left to wait for */
			return;
		}
		for (i = 0; i < max; i++)
			if (kids[i].pid == pid)
				break;
		if (i == max)
			continue;
		if (WIFEXITED(status)) {
			stat_add(K_EXITS, 1);
			if (WEXITSTATUS(status) == EXIT_CORRUPT)
				note_errorf("fork child (kind %d) saw data corruption",
					    kids[i].kind);
			else if (WEXITSTATUS(status) == EXIT_EXEC)
				note_errorf("vfork child: exec of %s failed",
					    self_exe);
			else if (WEXITSTATUS(status))
				note_errorf("fork child exited with %d",
					    WEXITSTATUS(status));
		} else if (WIFSIGNALED(status) &&
			   !(kids[i].killed && WTERMSIG(status) == SIGKILL)) {
			note_errorf("fork child (kind %d) killed by signal %d (%s)",
				    kids[i].kind, WTERMSIG(status),
				    strsignal(WTERMSIG(status)));
		}
		free(kids[i].stack);
		memset(&kids[i], 0, sizeof(kids[i]));
		(*live)--;
		if (block)
			return;
	}
}

static int spawn(struct child *c, struct rng *rng, uint64_t seed,
		 uint64_t index)
{
	unsigned int r = (unsigned int)rng_below(rng, 100);
	char *argv[] = { "mmstress", "__noop", NULL };
	char *envp[] = { NULL };
	int flags;
	pid_t pid;

	memset(c, 0, sizeof(*c));
	child_seed = seed;
	child_index = index;
	if (r < 55) {
		c->kind = 0;
		pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			_exit(child_body(seed, index));
		}
		if (pid < 0)
			goto fail;
		stat_add(K_FORKS, 1);
	} else if (r < 75) {
		c->kind = 1;
		/* vfork child: only _exit() or execve() are allowed. */
		if (r < 65) {
			pid = vfork();
			if (pid == 0)
				_exit(0);
		} else {
			pid = vfork();
			if (pid == 0) {
				execve(self_exe, argv, envp);
				_exit(EXIT_EXEC);
			}
			if (pid > 0)
				stat_add(K_EXECS, 1);
		}
		if (pid < 0)
			goto fail;
		stat_add(K_VFORKS, 1);
	} else {
		c->stack = malloc(CHILD_STACK);
		if (!c->stack) {
			note_error("malloc (clone stack)", errno);
			return -1;
		}
		if (r < 90) {
			c->kind = 2;
			flags = SIGCHLD;
			pid = clone(clone_fn, (char *)c->stack + CHILD_STACK,
				    flags, NULL);
		} else {
			c->kind = 3;
			flags = CLONE_VM | SIGCHLD;
			pid = clone(clone_vm_fn, (char *)c->stack + CHILD_STACK,
				    flags, NULL);
		}
		if (pid < 0) {
			free(c->stack);
			c->stack = NULL;
			goto fail;
		}
		stat_add(c->kind == 2 ? K_CLONES : K_CLONE_VM, 1);
	}
	c->pid = pid;
	return 0;
fail:
	if (errno == EAGAIN || errno == ENOMEM)
		note_transient();
	else
		note_error(c->kind == 1 ? "vfork" : c->kind ? "clone" : "fork",
			   errno);
	return -1;
}

/*
 * Map n single pages, anon private and file shared in turn, so that no two
 * neighbours can merge.  Each is touched once, so the anon ones have an
 * anon_vma and the file ones a page in the page cache.
 */
static int map_vmas(const char *dir, long n)
{
	char path[512];
	long i, file = 0;
	char *p;
	int fd;

	if (n <= 0)
		return 0;
	snprintf(path, sizeof(path), "%s/mmstress-fork.%d", dir, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		note_errorf("open %s: %s", path, strerror(errno));
		return -1;
	}
	unlink(path);
	if (ftruncate(fd, (off_t)((n + 1) / 2 * page_size))) {
		note_errorf("ftruncate %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (i % 2)
			p = mmap(NULL, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				 (off_t)(file++ * page_size));
		else
			p = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			note_errorf("mmap of small VMA %ld of %ld: %s", i + 1, n,
				    strerror(errno));
			close(fd);
			return -1;
		}
		*(volatile char *)p = (char)i;
		stat_add(K_VMAS, 1);
	}
	close(fd);
	return 0;
}

struct fork_arg {
	long workers;
	long quick;
	long big_exit;
	uint64_t seed;
};

/* Worker 0: keeps up to N children alive (see the top of the file). */
static int parent_loop(struct fork_arg *a)
{
	long workers = a->workers;
	struct child *kids;
	uint64_t index = 0;
	struct rng rng;
	int live = 0, i;

	kids = calloc((size_t)workers, sizeof(*kids));
	if (!kids) {
		note_error("calloc (fork)", errno);
		return 1;
	}
	rng_init(&rng, a->seed, 1);
	while (!should_stop()) {
		reap(kids, (int)workers, &live, 0);
		if (live < workers) {
			for (i = 0; i < workers && kids[i].pid; i++)
				;
			if (!spawn(&kids[i], &rng, a->seed, ++index))
				live++;
			else
				sleep_ms(10);
		} else if (rng_chance(&rng, 30)) {
			/* SIGKILL a random fork/clone child. */
			i = (int)rng_below(&rng, (uint64_t)workers);
			if (kids[i].pid && !kids[i].killed &&
			    kids[i].kind != 1 && kids[i].kind != 3) {
				kill(kids[i].pid, SIGKILL);
				kids[i].killed = 1;
				stat_add(K_KILLS, 1);
			}
		} else {
			sleep_ms((long)rng_below(&rng, 5));
		}
		parent_touch(&rng, 8);
		if (rng_chance(&rng, 3))
			parent_pageout(&rng);
	}

	for (i = 0; i < workers; i++) {
		if (kids[i].pid && kids[i].kind != 1 && kids[i].kind != 3) {
			kill(kids[i].pid, SIGKILL);
			kids[i].killed = 1;
			stat_add(K_KILLS, 1);
		}
	}
	while (live > 0)
		reap(kids, (int)workers, &live, 1);
	free(kids);
	return 0;
}

/*
 * Workers 1..quick: fork quick children back to back.  A fork costs a
 * page-table copy of the whole mm, so a quick worker trades the parent's
 * region for a small one of its own (QUICK_MB) and keeps the small VMAs:
 * like a process with many mappings and little memory.  Now and then a
 * touch (verify, COW) and a pageout keep part of it in swap, so that every
 * child copies swap entries and goes on the mmlist.
 */
#define QUICK_MB	2

static int quick_worker(struct fork_arg *a, int idx)
{
	size_t n = (size_t)QUICK_MB * (1024 * 1024 / page_size), p;
	struct rng rng;
	char *mine;

	rng_init(&rng, a->seed, 1000 + (uint64_t)idx);
	if (n < npages) {
		mine = mmap(NULL, n * page_size, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mine == MAP_FAILED) {
			note_error("mmap (quick fork worker)", errno);
			return 1;
		}
		munmap(region, npages * page_size);
		region = mine;
		npages = n;
		memset(gens, 0, n);
		for (p = 0; p < n; p++)
			pat_fill(region + p * page_size, p, 0, salt);
		parent_pageout(&rng);
	}
	while (!should_stop()) {
		quick_fork(&rng);
		if (rng_chance(&rng, 5))
			parent_touch(&rng, 1);
		if (rng_chance(&rng, 2))
			parent_pageout(&rng);
	}
	return 0;
}

/*
 * A big child: V single-page VMAs, then it says so and exits.  Exit 0
 * when built, 1 on an error (printed by the child: note_error is shared).
 */
static void big_child(long vmas, int ready)
{
	size_t len = (size_t)vmas * page_size, i;
	char *p;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		note_error("mmap (big exit child)", errno);
		_exit(1);
	}
	for (i = 1; i < (size_t)vmas && !should_stop(); i += 2) {
		if (mprotect(p + i * page_size, page_size, PROT_READ)) {
			note_errorf("mprotect of VMA %zu of %ld (big exit child): %s",
				    i, vmas, strerror(errno));
			_exit(1);
		}
	}
	if (write(ready, "r", 1) != 1)
		_exit(1);
	_exit(0);
}

/* Raise vm.max_map_count to fit V more VMAs; -1 if it cannot be. */
static int fit_map_count(long vmas)
{
	const char *knob = "/proc/sys/vm/max_map_count";
	char buf[32];
	long cur;

	if (sys_read_buf(knob, buf, sizeof(buf)) < 0)
		return 0;	/* no knob: the default limit applies */
	cur = strtol(buf, NULL, 10);
	if (cur >= vmas + 4096)
		return 0;
	if (sys_write_long(knob, vmas + 4096)) {
		note_errorf("--big-exit %ld needs %s >= %ld: %s", vmas, knob,
			    vmas + 4096, strerror(errno));
		return -1;
	}
	return 0;
}

/* The big-exit worker (see the top of the file). */
static int big_exit_worker(long vmas)
{
	uint64_t t0, t1, dt;
	int ready[2], status;
	char c;
	pid_t pid;

	if (fit_map_count(vmas))
		return 1;
	while (!should_stop()) {
		if (pipe(ready)) {
			note_error("pipe (big exit)", errno);
			return 1;
		}
		t0 = now_ms();
		pid = fork();
		if (pid == 0) {
			close(ready[0]);
			big_child(vmas, ready[1]);
		}
		close(ready[1]);
		if (pid < 0) {
			close(ready[0]);
			if (errno != EAGAIN && errno != ENOMEM) {
				note_error("fork (big exit)", errno);
				return 1;
			}
			note_transient();
			sleep_ms(100);
			continue;
		}
		if (read(ready[0], &c, 1) != 1)
			c = 0;
		t1 = now_ms();
		close(ready[0]);
		if (waitpid(pid, &status, 0) < 0) {
			note_error("waitpid (big exit)", errno);
			return 1;
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			return WIFEXITED(status) ? 1 : 0;	/* its error, or killed */
		if (c != 'r')
			continue;	/* told to stop while building */
		dt = now_ms() - t1;
		stat_add(K_BIG_EXITS, 1);
		stat_add(K_BIG_EXIT_VMAS, (unsigned long)vmas);
		stat_add(K_BIG_BUILD_MS, t1 - t0);
		stat_add(K_BIG_EXIT_MS, dt);
		stat_max(K_BIG_EXIT_MS_MAX, dt);
	}
	return 0;
}

static int fork_worker(int idx, void *varg)
{
	struct fork_arg *a = varg;

	if (!idx)
		return parent_loop(a);
	if (idx <= a->quick)
		return quick_worker(a, idx);
	return big_exit_worker(a->big_exit);
}

int mode_fork(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 4, mb;
	struct fork_arg arg = { .workers = workers, .quick = o->quick,
				.big_exit = o->big_exit, .seed = o->seed };
	struct rng rng;
	size_t p;

	mb = default_mb(o, 10, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	stat_add(K_QUICK_WORKERS, (unsigned long)o->quick);
	rng_init(&rng, o->seed, 0);
	salt = rng_next(&rng);
	npages = (size_t)mb * (1024 * 1024 / page_size);
	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, 1);
	if (region == MAP_FAILED || !gens) {
		note_error("mmap/calloc (fork)", errno);
		return report(o->mode, keys, K_NR);
	}
	for (p = 0; p < npages; p++)
		pat_fill(region + p * page_size, p, 0, salt);
	if (map_vmas(o->dir, o->vmas))
		return report(o->mode, keys, K_NR);
	/* The workers inherit the region and the small VMAs. */
	run_workers((int)(1 + o->quick + (o->big_exit > 0)), fork_worker, &arg);
	return report(o->mode, keys, K_NR);
}
