// SPDX-License-Identifier: GPL-2.0
/*
 * shmem: shared memory and file pages under the swap storm.  This is the
 * side of swapoff that walks inodes instead of mms (shmem_unuse() over the
 * shmem swap list) and the truncation side of rmap (unmap_mapping_range()
 * under i_mmap_rwsem, then the page table locks).  Each worker owns a
 * memfd of M MiB mapped twice with MAP_SHARED and once MAP_PRIVATE (only
 * ever read: /proc/<pid>/smaps then looks the file's swap up page by page
 * under the page table lock) and runs a random mix of:
 *   - MADV_PAGEOUT of windows (shmem pages go to swap),
 *   - pread/pwrite through the file (swap-in by the page cache lookup,
 *     not by a fault),
 *   - FALLOC_FL_PUNCH_HOLE and MADV_REMOVE of ranges (swap entries and
 *     swap cache pages freed while swapoff may be reading them in),
 *   - ftruncate of the tail down and back up (both mappings unmapped by
 *     unmap_mapping_range, swapped pages truncated),
 *   - a fork whose child reads random pages through its own faults (fork
 *     copies no page tables of a shared mapping) and exits,
 *   - checks of random pages through any mapping, rewrites through a
 *     shared one.
 * With --dir D each worker also keeps a MAP_SHARED file of M/4 MiB on D (a
 * disk filesystem: page cache, writeback and the filesystem's own locks
 * under mmap_lock) and does the same to it, with msync(MS_SYNC) instead of
 * pageouts.  Every page's expected content is tracked (a hole reads zero),
 * so a page lost or stale after a swap-in is a corruption, not noise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_FILE_MB, K_PAGEOUTS, K_PREADS, K_PWRITES,
	K_PUNCHES, K_REMOVES, K_TRUNCATES, K_FORKS, K_CHILD_READS, K_SYNCS,
	K_SPLICES, K_FADVISES, K_SEEKS, K_POPULATES, K_MREMAPS, K_DIRECT_READS,
	K_SYSV_MB, K_SYSV_LOCKS, K_SYSV_ATTACHES, K_PRIVATE_COWS, K_TOUCHES,
	K_REWRITES, K_SWAP_KB_MAX, K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "file_mb", "pageouts", "preads", "pwrites",
	"punches", "removes", "truncates", "forks", "child_reads", "syncs",
	"splices", "fadvises", "seeks", "populates", "mremaps", "direct_reads",
	"sysv_mb", "sysv_locks", "sysv_attaches", "private_cows", "touches",
	"rewrites", "swap_kb_max", "corruptions",
};

#ifndef MADV_REMOVE
#define MADV_REMOVE	9
#endif
#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE	0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE	0x02
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif
#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC	0x0001U
#endif

/*
 * One file mapped three times: map[0] and map[1] MAP_SHARED, map[2]
 * MAP_PRIVATE and writable but never written (it shows the file).  state[i]: 0 = a hole (reads zero), else the
 * generation of the pattern page i holds (1..255).
 */
struct region {
	const char *what;	/* "memfd", "file" */
	int fd;
	int dfd;		/* file: an O_DIRECT descriptor, or -1 */
	char *dbuf;		/* file: its page-aligned anonymous buffer */
	int is_file;
	size_t npages;
	char *map[3];
	uint8_t *state;
	uint8_t *how;		/* the SET_* that last set state[i] */
};

/* What last set a page's expected content: named in a corruption. */
enum { SET_NONE, SET_PWRITE, SET_STORE, SET_PUNCH, SET_REMOVE, SET_TRUNCATE };
static const char *const set_names[] = {
	"nothing (never written)", "pwrite", "a store through a shared view",
	"a punched hole", "MADV_REMOVE", "a truncation",
};

struct shmem_arg {
	size_t npages, file_pages;
	const char *dir;
	uint64_t seed;
};

static int region_open(struct region *r, const char *what, int fd,
		       size_t npages, int is_file)
{
	int k;

	r->what = what;
	r->fd = fd;
	r->is_file = is_file;
	r->npages = npages;
	r->state = calloc(npages, 1);
	r->how = calloc(npages, 1);
	if (!r->state || !r->how)
		return -1;
	if (ftruncate(fd, (off_t)(npages * page_size)))
		return -1;
	for (k = 0; k < 3; k++) {
		r->map[k] = mmap(NULL, npages * page_size,
				 PROT_READ | PROT_WRITE,
				 k < 2 ? MAP_SHARED : MAP_PRIVATE, fd, 0);
		if (r->map[k] == MAP_FAILED)
			return -1;
	}
	return 0;
}

static void region_close(struct region *r)
{
	int k;

	for (k = 0; k < 3; k++)
		if (r->map[k] && r->map[k] != MAP_FAILED)
			munmap(r->map[k], r->npages * page_size);
	if (r->fd >= 0)
		close(r->fd);
	if (r->dfd >= 0)
		close(r->dfd);
	if (r->dbuf && r->dbuf != MAP_FAILED)
		munmap(r->dbuf, page_size);
	free(r->state);
	free(r->how);
}

static uint8_t next_gen(uint8_t gen)
{
	return gen == 255 ? 1 : gen + 1;
}

/* Compare a page with what it should hold: -1 if it does, else the word. */
static long page_check(const void *page, size_t i, uint8_t state,
		       uint64_t salt, uint64_t *got, uint64_t *want)
{
	const uint64_t *w = page;
	size_t k;

	if (state)
		return pat_check(page, i, state, salt, got, want);
	for (k = 0; k < page_size / sizeof(*w); k++) {
		if (w[k]) {
			*got = w[k];
			*want = 0;
			return (long)k;
		}
	}
	return -1;
}

/*
 * The private view is never written here, but another task may write it:
 * a FOLL_WRITE GUP from outside (the test module's remote GUP, a debugger)
 * breaks COW and leaves this view an anonymous copy of the page as it was.
 * That copy is not the file's page: drop it (the view shows the file
 * again) and do not call it a corruption.
 */
static int private_cow(struct region *r, const void *page)
{
	const char *p = page;
	uint64_t pm;

	if (p < r->map[2] || p >= r->map[2] + r->npages * page_size ||
	    pagemap_entry(page, &pm) || !(pm >> 63 & 1) || (pm >> 61 & 1))
		return 0;	/* not the private view, or a file page */
	stat_add(K_PRIVATE_COWS, 1);
	madvise((void *)((uintptr_t)p & ~(page_size - 1)), page_size,
		MADV_DONTNEED);
	return 1;
}

static int check_page(struct region *r, const void *page, size_t i,
		      uint64_t salt, int idx, int mapped)
{
	uint64_t got, want;
	char who[96];
	long w;

	w = page_check(page, i, r->state[i], salt, &got, &want);
	if (w < 0)
		return 0;
	if (mapped && private_cow(r, page))
		return 0;
	stat_add(K_CORRUPTIONS, 1);
	snprintf(who, sizeof(who), "shmem worker %d (%s, last set by %s)", idx,
		 r->what, set_names[r->how[i]]);
	note_corruption(who, page, mapped, i, r->state[i], salt, w, got, want);
	return 1;
}

/* Pages [from, to) became a hole. */
static void mark_hole(struct region *r, size_t from, size_t to, int how)
{
	memset(r->state + from, 0, to - from);
	memset(r->how + from, how, to - from);
}

/* A child reads random pages through its own faults and exits. */
static int fork_reader(struct region *r, struct rng *rng, uint64_t salt,
		       int idx)
{
	pid_t pid;
	int status, k;

	pid = fork();
	if (pid < 0) {
		note_transient();
		return 0;
	}
	if (pid == 0) {
		for (k = 0; k < 32; k++) {
			size_t i = rng_below(rng, r->npages);

			stat_add(K_CHILD_READS, 1);
			if (check_page(r, r->map[k % 3] + i * page_size, i,
				       salt, idx, 1))
				_exit(1);
		}
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid) {
		note_error("waitpid (shmem)", errno);
		return 1;
	}
	stat_add(K_FORKS, 1);
	return WIFEXITED(status) && WEXITSTATUS(status);
}

/* A page through a pipe (splice from the page cache), checked. */
static int pipefd[2] = { -1, -1 };

static int splice_check(struct region *r, size_t i, uint64_t salt, int idx,
			char *buf)
{
	loff_t off = (loff_t)(i * page_size);
	ssize_t n, got = 0;

	if (pipefd[0] < 0 && pipe(pipefd)) {
		note_error("pipe (shmem)", errno);
		return 1;
	}
	n = splice(r->fd, &off, pipefd[1], NULL, page_size, 0);
	if (n < 0) {
		note_error("splice (shmem)", errno);
		return 1;
	}
	while (got < n) {
		ssize_t m = read(pipefd[0], buf + got, (size_t)(n - got));

		if (m <= 0) {
			note_error("read (pipe)", m < 0 ? errno : EIO);
			return 1;
		}
		got += m;
	}
	stat_add(K_SPLICES, 1);
	if (n != (ssize_t)page_size) {
		note_transient();	/* short: nothing to check */
		return 0;
	}
	return check_page(r, buf, i, salt, idx, 0);
}

/*
 * A page read with O_DIRECT into a buffer that was just paged out: the
 * kernel pins the buffer (a swap-in under GUP) and writes the file's
 * dirty pages back before it reads the disk.  Reads only: a direct write
 * under the shared views would race their page cache by design.
 */
static int direct_read_check(struct region *r, size_t i, uint64_t salt,
			     int idx)
{
	ssize_t n;

	madvise(r->dbuf, page_size, MADV_PAGEOUT);
	n = pread(r->dfd, r->dbuf, page_size, (off_t)(i * page_size));
	if (n != (ssize_t)page_size) {
		note_error("pread(O_DIRECT)", n < 0 ? errno : EIO);
		return 1;
	}
	stat_add(K_DIRECT_READS, 1);
	return check_page(r, r->dbuf, i, salt, idx, 0);
}

/*
 * A SysV shared memory segment (a shmem file of its own) attached twice,
 * swapped out, checked and rewritten, locked in memory and unlocked
 * (SHM_LOCK: its pages leave and rejoin the evictable LRUs), one view
 * detached and attached again.
 */
struct sysv {
	int id;
	size_t npages;
	char *at[2];
	uint8_t *state;
	int locked;
};

static int sysv_open(struct sysv *v, size_t npages)
{
	int k;

	v->npages = npages;
	v->state = calloc(npages, 1);
	v->id = shmget(IPC_PRIVATE, npages * page_size, IPC_CREAT | 0600);
	if (v->id < 0) {
		if (errno == ENOSYS)
			note_missing("shmget", ENOSYS, "CONFIG_SYSVIPC");
		else
			note_error("shmget", errno);
		return -1;
	}
	for (k = 0; k < 2; k++) {
		v->at[k] = shmat(v->id, NULL, 0);
		if (v->at[k] == (void *)-1) {
			note_error("shmat", errno);
			return -1;
		}
	}
	/* Gone once the last view is detached, even if this worker dies. */
	shmctl(v->id, IPC_RMID, NULL);
	stat_add(K_SYSV_MB, npages * page_size / (1024 * 1024));
	return v->state ? 0 : -1;
}

static void sysv_close(struct sysv *v)
{
	int k;

	for (k = 0; k < 2; k++)
		if (v->at[k] && v->at[k] != (void *)-1)
			shmdt(v->at[k]);
	free(v->state);
}

static int sysv_op(struct sysv *v, struct rng *rng, uint64_t salt, int idx)
{
	int op = (int)rng_below(rng, 100), k = (int)rng_below(rng, 2);
	size_t i, j, start, n;
	uint64_t got, want;
	char who[48];
	long w;

	start = rng_below(rng, v->npages);
	n = 1 + rng_below(rng, 32);
	if (start + n > v->npages)
		n = v->npages - start;
	if (op < 15) {
		madvise(v->at[!k] + start * page_size, n * page_size,
			MADV_DONTNEED);
		if (!madvise(v->at[k] + start * page_size, n * page_size,
			     MADV_PAGEOUT))
			stat_add(K_PAGEOUTS, 1);
		else
			note_transient();
	} else if (op < 22) {
		if (shmctl(v->id, v->locked ? SHM_UNLOCK : SHM_LOCK, NULL)) {
			if (errno != ENOMEM && errno != EPERM) {
				note_error("shmctl(SHM_LOCK)", errno);
				return 1;
			}
			note_transient();
		} else {
			v->locked = !v->locked;
			stat_add(K_SYSV_LOCKS, 1);
		}
	} else if (op < 27) {
		if (shmdt(v->at[1])) {
			note_error("shmdt", errno);
			return 1;
		}
		v->at[1] = shmat(v->id, NULL, 0);
		if (v->at[1] == (void *)-1) {
			note_error("shmat", errno);
			return 1;
		}
		stat_add(K_SYSV_ATTACHES, 1);
	} else {
		for (j = 0; j < 16; j++) {
			i = rng_below(rng, v->npages);
			stat_add(K_TOUCHES, 1);
			w = page_check(v->at[k] + i * page_size, i, v->state[i],
				       salt, &got, &want);
			if (w >= 0) {
				stat_add(K_CORRUPTIONS, 1);
				snprintf(who, sizeof(who),
					 "shmem worker %d (sysv)", idx);
				note_corruption(who, v->at[k] + i * page_size,
						1, i, v->state[i], salt, w,
						got, want);
				return 1;
			}
			if (rng_chance(rng, 30)) {
				v->state[i] = next_gen(v->state[i]);
				pat_fill(v->at[!k] + i * page_size, i,
					 v->state[i], salt);
				stat_add(K_REWRITES, 1);
			}
		}
	}
	return 0;
}

/* Move shared view 1 elsewhere: its page tables go with it. */
static int move_view(struct region *r)
{
	size_t len = r->npages * page_size;
	void *to, *p;

	to = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (to == MAP_FAILED) {
		note_transient();
		return 0;
	}
	p = mremap(r->map[1], len, len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
	if (p == MAP_FAILED) {
		munmap(to, len);
		if (errno == ENOMEM) {
			note_transient();
			return 0;
		}
		note_error("mremap (shmem)", errno);
		return 1;
	}
	r->map[1] = p;
	stat_add(K_MREMAPS, 1);
	return 0;
}

/* One random operation on r; non-zero when the worker must stop. */
static int region_op(struct region *r, struct rng *rng, uint64_t salt,
		     int idx, char *buf)
{
	size_t i, k, n, start, keep;
	int op = (int)rng_below(rng, 100);
	char *map = r->map[rng_below(rng, 2)];	/* a shared view */
	char *view = r->map[rng_below(rng, 3)];	/* any view */

	start = rng_below(rng, r->npages);
	n = 1 + rng_below(rng, 64);
	if (start + n > r->npages)
		n = r->npages - start;

	if (op < 14) {
		/* Pageout (memfd) or writeback (file) of a window. */
		if (r->is_file) {
			if (msync(map + start * page_size, n * page_size,
				  MS_SYNC)) {
				note_error("msync(MS_SYNC)", errno);
				return 1;
			}
			stat_add(K_SYNCS, 1);
		} else {
			/*
			 * Reclaim takes only pages mapped once: the other
			 * views let go of the window first (the page cache
			 * keeps it).
			 */
			for (k = 0; k < 3; k++)
				if (r->map[k] != view)
					madvise(r->map[k] + start * page_size,
						n * page_size, MADV_DONTNEED);
			if (!madvise(view + start * page_size,
				     n * page_size, MADV_PAGEOUT))
				stat_add(K_PAGEOUTS, 1);
			else
				note_transient();
		}
	} else if (op < 26) {
		/* Read pages back through the file, not a fault. */
		for (k = 0; k < n && k < 8; k++) {
			i = start + k;
			if (pread(r->fd, buf, page_size,
				  (off_t)(i * page_size)) != (ssize_t)page_size) {
				note_error("pread (shmem)", errno);
				return 1;
			}
			stat_add(K_PREADS, 1);
			if (check_page(r, buf, i, salt, idx, 0))
				return 1;
		}
	} else if (op < 36) {
		/* New contents through the file. */
		for (k = 0; k < n && k < 8; k++) {
			uint8_t gen;

			i = start + k;
			gen = next_gen(r->state[i]);
			pat_fill(buf, i, gen, salt);
			if (pwrite(r->fd, buf, page_size,
				   (off_t)(i * page_size)) != (ssize_t)page_size) {
				note_error("pwrite (shmem)", errno);
				return 1;
			}
			r->state[i] = gen;
			r->how[i] = SET_PWRITE;
			stat_add(K_PWRITES, 1);
		}
	} else if (op < 44) {
		/* Punch a hole: swap entries and cached pages freed. */
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(start * page_size),
			      (off_t)(n * page_size))) {
			if (errno == EOPNOTSUPP && r->is_file) {
				note_transient();	/* ext2: no holes */
				return 0;
			}
			note_error("fallocate(PUNCH_HOLE)", errno);
			return 1;
		}
		mark_hole(r, start, start + n, SET_PUNCH);
		stat_add(K_PUNCHES, 1);
	} else if (op < 49 && !r->is_file) {
		/* The same through a mapping. */
		if (madvise(map + start * page_size, n * page_size,
			    MADV_REMOVE)) {
			note_error("madvise(MADV_REMOVE)", errno);
			return 1;
		}
		mark_hole(r, start, start + n, SET_REMOVE);
		stat_add(K_REMOVES, 1);
	} else if (op < 54) {
		/* Truncate the tail away and grow the file back. */
		keep = r->npages / 2 + rng_below(rng, r->npages / 2);
		if (ftruncate(r->fd, (off_t)(keep * page_size)) ||
		    ftruncate(r->fd, (off_t)(r->npages * page_size))) {
			note_error("ftruncate (shmem)", errno);
			return 1;
		}
		mark_hole(r, keep, r->npages, SET_TRUNCATE);
		stat_add(K_TRUNCATES, 1);
	} else if (op < 57) {
		return fork_reader(r, rng, salt, idx);
	} else if (op < 60) {
		return splice_check(r, start, salt, idx, buf);
	} else if (op < 62) {
		/* Drop the clean page cache of a window (file: re-read). */
		if (posix_fadvise(r->fd, (off_t)(start * page_size),
				  (off_t)(n * page_size), POSIX_FADV_DONTNEED)) {
			note_error("posix_fadvise(DONTNEED)", errno);
			return 1;
		}
		stat_add(K_FADVISES, 1);
	} else if (op < 63) {
		/* Walk the file's data and holes (the page cache's index). */
		int whence = rng_chance(rng, 50) ? SEEK_DATA : SEEK_HOLE;
		off_t next;

		next = lseek(r->fd, (off_t)(start * page_size), whence);
		if (next < 0 && errno != ENXIO) {
			note_error("lseek(SEEK_DATA/SEEK_HOLE)", errno);
			return 1;
		}
		stat_add(K_SEEKS, 1);
	} else if (op < 65) {
		/* Fault a window in without touching it (5.14+). */
		if (madvise(view + start * page_size, n * page_size,
			    view == r->map[2] ? MADV_POPULATE_READ :
						MADV_POPULATE_WRITE)) {
			if (errno != EINVAL && errno != ENOMEM &&
			    errno != EFAULT) {
				note_error("madvise(MADV_POPULATE)", errno);
				return 1;
			}
			note_transient();
		} else {
			stat_add(K_POPULATES, 1);
		}
	} else if (op < 66) {
		return move_view(r);
	} else if (op < 67 && r->is_file) {
		if (fdatasync(r->fd)) {
			note_error("fdatasync", errno);
			return 1;
		}
		stat_add(K_SYNCS, 1);
	} else if (op < 70 && r->dfd >= 0) {
		return direct_read_check(r, start, salt, idx);
	} else {
		/* Check random pages through any view, rewrite shared. */
		for (k = 0; k < 32; k++) {
			i = rng_below(rng, r->npages);
			stat_add(K_TOUCHES, 1);
			if (check_page(r, view + i * page_size, i, salt, idx,
				       1))
				return 1;
			if (rng_chance(rng, 30)) {
				r->state[i] = next_gen(r->state[i]);
				r->how[i] = SET_STORE;
				pat_fill(map + i * page_size, i, r->state[i],
					 salt);
				stat_add(K_REWRITES, 1);
			}
		}
	}
	return 0;
}

/* How much of this process is in swap (shmem included): the proof. */
static void sample_swap(void)
{
	char buf[2048], *p;

	if (sys_read_buf("/proc/self/smaps_rollup", buf, sizeof(buf)) < 0)
		return;
	p = strstr(buf, "\nSwap:");
	if (p)
		stat_max(K_SWAP_KB_MAX, strtoul(p + 6, NULL, 10));
}

static int shmem_worker(int idx, void *varg)
{
	struct shmem_arg *arg = varg;
	struct sysv sysv = { .id = -1 };
	struct region r[2];
	char path[256], *buf;
	int nr = 1, fd, k, stop = 0;
	uint64_t salt, last = 0;
	struct rng rng;

	memset(r, 0, sizeof(r));
	r[0].fd = r[1].fd = r[0].dfd = r[1].dfd = -1;
	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	salt = rng_next(&rng);
	buf = malloc(page_size);
	fd = (int)syscall(__NR_memfd_create, "mmstress-shmem", MFD_CLOEXEC);
	if (fd < 0) {
		note_missing("memfd_create", errno, "CONFIG_MEMFD_CREATE");
		free(buf);
		return 1;
	}
	if (!buf || region_open(&r[0], "memfd", fd, arg->npages, 0)) {
		note_error("memfd region (shmem)", errno);
		goto out;
	}
	if (arg->dir) {
		snprintf(path, sizeof(path), "%s/mmstress-shmem.%d.%d",
			 arg->dir, (int)getpid(), idx);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || region_open(&r[1], "file", fd, arg->file_pages,
					  1)) {
			note_error(path, errno);
			if (fd >= 0)
				unlink(path);
			goto out;
		}
		r[1].dfd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
		r[1].dbuf = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (r[1].dfd < 0 || r[1].dbuf == MAP_FAILED) {
			note_error("open(O_DIRECT) (shmem)", errno);
			unlink(path);
			goto out;
		}
		unlink(path);	/* gone when the worker is */
		nr = 2;
	}
	if (sysv_open(&sysv, arg->npages / 4 ? arg->npages / 4 : 1))
		goto out;
	while (!should_stop() && !sh->errors && !stop) {
		k = (int)rng_below(&rng, (uint64_t)nr + 1);
		if (k == nr)
			stop = sysv_op(&sysv, &rng, salt, idx);
		else
			stop = region_op(&r[k], &rng, salt, idx, buf);
		if (now_ms() - last > 500) {
			sample_swap();
			last = now_ms();
		}
		sleep_ms((long)rng_below(&rng, 3));
	}
out:
	region_close(&r[0]);
	region_close(&r[1]);
	sysv_close(&sysv);
	free(buf);
	return stop;
}

int mode_shmem(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1, mb;
	struct shmem_arg arg;

	memset(&arg, 0, sizeof(arg));
	mb = default_mb(o, 4, 1);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	arg.npages = (size_t)mb * (1024 * 1024 / page_size);
	arg.dir = o->dir;
	if (arg.dir) {
		arg.file_pages = arg.npages / 4 ? arg.npages / 4 : 1;
		stat_add(K_FILE_MB, (unsigned long)(arg.file_pages * page_size /
						    (1024 * 1024)));
	}
	arg.seed = o->seed;
	run_workers((int)workers, shmem_worker, &arg);
	return report(o->mode, keys, K_NR);
}
