// SPDX-License-Identifier: GPL-2.0
/*
 * remote: remote access to swapped memory.  Each worker forks a child that
 * owns M MiB of patterned anonymous memory and keeps paging random windows
 * of it out (MADV_PAGEOUT); the worker reads and writes that memory from
 * outside with process_vm_readv/process_vm_writev and through
 * /proc/<child>/mem (remote GUP: swap-ins in another mm under its
 * mmap_lock), verifying the pattern.  The child is replaced now and then,
 * so remote access also meets a fresh mm and exit_mmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_CHILDREN, K_VM_READS, K_VM_WRITES, K_MEM_READS,
	K_MEM_WRITES, K_PAGES_READ, K_PAGES_WRITTEN, K_PAGEOUTS,
	K_CHILD_TOUCHES, K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "children", "vm_reads", "vm_writes", "mem_reads",
	"mem_writes", "pages_read", "pages_written", "pageouts",
	"child_touches", "corruptions",
};

#define MAX_PAGES	16	/* per remote access */
#define CHILD_LIFE_MS	3000

struct remote_arg {
	size_t npages;
	uint64_t seed;
};

/* The child: fill, tell the parent, then page out and read until killed. */
static void child_main(char *region, size_t npages, uint64_t salt,
		       uint64_t seed, int ready_fd)
{
	volatile char sink = 0;
	struct rng rng;
	size_t i, start, len;
	char c = 1;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	rng_init(&rng, seed, 0x5eed);
	for (i = 0; i < npages; i++)
		pat_fill(region + i * page_size, i, 0, salt);
	/* Half of it goes to swap at once. */
	madvise(region, npages / 2 * page_size, MADV_PAGEOUT);
	if (write(ready_fd, &c, 1) != 1)
		_exit(2);
	close(ready_fd);
	for (;;) {
		start = rng_below(&rng, npages);
		len = 1 + rng_below(&rng, 64);
		if (start + len > npages)
			len = npages - start;
		if (!madvise(region + start * page_size, len * page_size,
			     MADV_PAGEOUT)) {
			stat_add(K_PAGEOUTS, 1);
		} else if (errno == EINVAL) {
			note_missing("madvise(MADV_PAGEOUT)", EINVAL,
				     "Linux >= 5.4");
			_exit(1);
		}
		/* Reads only: the parent owns the contents. */
		for (i = 0; i < 4; i++)
			sink ^= region[rng_below(&rng, npages) * page_size];
		stat_add(K_CHILD_TOUCHES, 4);
		sleep_ms(1 + (long)rng_below(&rng, 10));
	}
}

struct target {
	pid_t pid;
	int mem_fd;
	uint64_t born;
};

static void end_child(struct target *t)
{
	int status = 0;
	pid_t r;

	if (t->mem_fd >= 0)
		close(t->mem_fd);
	t->mem_fd = -1;
	if (t->pid <= 0)
		return;
	kill(t->pid, SIGKILL);
	do {
		r = waitpid(t->pid, &status, 0);
	} while (r < 0 && errno == EINTR);
	t->pid = 0;
	if (r < 0)
		return;
	if (WIFEXITED(status) && WEXITSTATUS(status))
		note_errorf("remote child exited with status %d",
			    WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
		note_errorf("remote child killed by signal %d (%s)",
			    WTERMSIG(status), strsignal(WTERMSIG(status)));
}

static int new_child(struct target *t, char *region, size_t npages,
		     uint64_t salt, uint64_t seed, uint8_t *gens)
{
	char path[64], c;
	int fds[2];
	pid_t pid;

	if (pipe(fds)) {
		note_error("pipe", errno);
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		if (errno == EAGAIN || errno == ENOMEM)
			note_transient();
		else
			note_error("fork (remote child)", errno);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		child_main(region, npages, salt, seed, fds[1]);
		_exit(0);
	}
	close(fds[1]);
	t->pid = pid;
	t->mem_fd = -1;
	t->born = now_ms();
	if (read(fds[0], &c, 1) != 1) {
		close(fds[0]);
		end_child(t);
		if (!sh->errors)
			note_errorf("remote child died before it was ready");
		return -1;
	}
	close(fds[0]);
	memset(gens, 0, npages);
	stat_add(K_CHILDREN, 1);
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	t->mem_fd = open(path, O_RDWR | O_CLOEXEC);
	if (t->mem_fd < 0)
		note_error(path, errno);
	return 0;
}

static void verify(char *buf, size_t first, size_t n, uint8_t *gens,
		   uint64_t salt, int worker, const char *how)
{
	uint64_t got, want;
	char who[64];
	size_t i;
	long w;

	for (i = 0; i < n; i++) {
		w = pat_check(buf + i * page_size, first + i, gens[first + i],
			      salt, &got, &want);
		if (w < 0)
			continue;
		stat_add(K_CORRUPTIONS, 1);
		snprintf(who, sizeof(who), "remote worker %d (%s)", worker,
			 how);
		note_corruption(who, buf + i * page_size, 0, first + i,
				gens[first + i], salt, w, got, want);
	}
}

static int remote_worker(int idx, void *varg)
{
	struct remote_arg *arg = varg;
	size_t npages = arg->npages, first, n, i, len;
	struct target t = { 0, -1, 0 };
	struct iovec local, remote;
	uint64_t salt, seed;
	int write_op, use_mem;
	struct rng rng;
	char *region, *buf;
	uint8_t *gens;
	ssize_t r;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	salt = rng_next(&rng);
	/* Reserved here, populated only in the child (same address there). */
	region = mmap(NULL, npages * page_size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	buf = mmap(NULL, MAX_PAGES * page_size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gens = calloc(npages, 1);
	if (region == MAP_FAILED || buf == MAP_FAILED || !gens) {
		note_error("mmap/calloc (remote)", errno);
		return 1;
	}

	while (!should_stop()) {
		if (!t.pid || now_ms() - t.born > CHILD_LIFE_MS) {
			end_child(&t);
			seed = rng_next(&rng);
			if (new_child(&t, region, npages, salt, seed, gens)) {
				if (sh->errors)
					break;
				sleep_ms(50);
				continue;
			}
		}
		first = rng_below(&rng, npages);
		n = 1 + rng_below(&rng, MAX_PAGES);
		if (first + n > npages)
			n = npages - first;
		len = n * page_size;
		write_op = rng_chance(&rng, 40);
		use_mem = rng_chance(&rng, 40) && t.mem_fd >= 0;
		if (write_op) {
			for (i = 0; i < n; i++)
				pat_fill(buf + i * page_size, first + i,
					 (uint8_t)(gens[first + i] + 1), salt);
		}
		local.iov_base = buf;
		local.iov_len = len;
		remote.iov_base = region + first * page_size;
		remote.iov_len = len;
		if (use_mem && write_op)
			r = pwrite(t.mem_fd, buf, len,
				   (off_t)(uintptr_t)remote.iov_base);
		else if (use_mem)
			r = pread(t.mem_fd, buf, len,
				  (off_t)(uintptr_t)remote.iov_base);
		else if (write_op)
			r = process_vm_writev(t.pid, &local, 1, &remote, 1, 0);
		else
			r = process_vm_readv(t.pid, &local, 1, &remote, 1, 0);
		if (r < 0) {
			const char *what = use_mem ?
				(write_op ? "pwrite /proc/<pid>/mem" :
					    "pread /proc/<pid>/mem") :
				(write_op ? "process_vm_writev" :
					    "process_vm_readv");

			if (!use_mem && errno == ENOSYS)
				note_missing(what, ENOSYS,
					     "CONFIG_CROSS_MEMORY_ATTACH");
			else if (errno == ENOMEM || errno == EINTR)
				note_transient();
			else
				note_error(what, errno);
			if (errno != ENOMEM && errno != EINTR)
				break;
			continue;
		}
		if ((size_t)r != len) {
			note_errorf("remote worker %d: short %s: %zd of %zu bytes",
				    idx, write_op ? "write" : "read", r, len);
			break;
		}
		if (write_op) {
			for (i = 0; i < n; i++)
				gens[first + i]++;
			stat_add(use_mem ? K_MEM_WRITES : K_VM_WRITES, 1);
			stat_add(K_PAGES_WRITTEN, n);
		} else {
			verify(buf, first, n, gens, salt, idx,
			       use_mem ? "/proc/pid/mem" : "process_vm_readv");
			stat_add(use_mem ? K_MEM_READS : K_VM_READS, 1);
			stat_add(K_PAGES_READ, n);
		}
	}
	end_child(&t);
	munmap(buf, MAX_PAGES * page_size);
	munmap(region, npages * page_size);
	free(gens);
	return 0;
}

int mode_remote(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb;
	struct remote_arg arg;

	mb = default_mb(o, 4, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.npages = (size_t)mb * (1024 * 1024 / page_size);
	arg.seed = o->seed;
	run_workers((int)workers, remote_worker, &arg);
	return report(o->mode, keys, K_NR);
}
