// SPDX-License-Identifier: GPL-2.0
/*
 * procwalk: page-table walkers from /proc racing the storm.  Workers read
 * /proc/<pid>/{smaps,smaps_rollup,pagemap,numa_maps,maps,status} of every
 * process that has an mm (or of the pids given) and write 1..4 to
 * /proc/<pid>/clear_refs, so the walkers take mmap_lock and the page table
 * locks of other processes while those fault, swap, fork and exit.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_PIDS, K_SCANS, K_SMAPS, K_SMAPS_ROLLUP, K_PAGEMAP,
	K_NUMA_MAPS, K_MAPS, K_STATUS, K_CLEAR_REFS, K_BYTES, K_GONE,
	K_DENIED, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "pids", "scans", "smaps", "smaps_rollup", "pagemap",
	"numa_maps", "maps", "status", "clear_refs", "bytes", "gone",
	"denied",
};

/* File kinds, in the order of their counters. */
enum {
	F_SMAPS, F_SMAPS_ROLLUP, F_PAGEMAP, F_NUMA_MAPS, F_MAPS, F_STATUS,
	F_CLEAR_REFS, F_NR
};

static const char *const files[F_NR] = {
	"smaps", "smaps_rollup", "pagemap", "numa_maps", "maps", "status",
	"clear_refs",
};

#define MAX_PIDS	1024
#define BUF_SIZE	(64 * 1024)
#define MAX_VMAS	256

struct walk_arg {
	const char *pids;
	int have_numa_maps;
	uint64_t seed;
};

static int is_number(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return 0;
	return 1;
}

/* A process with an mm has a non-zero size in statm; kernel threads not. */
static int has_mm(int pid)
{
	char path[64];
	long size;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	return !sys_read_long(path, &size) && size > 0;
}

static int scan_pids(const struct walk_arg *arg, int *pids)
{
	struct dirent *de;
	int n = 0;
	DIR *d;

	if (arg->pids) {
		const char *p = arg->pids;

		while (*p && n < MAX_PIDS) {
			int pid = (int)strtol(p, NULL, 10);

			if (pid > 0)
				pids[n++] = pid;
			p += strcspn(p, ",");
			p += *p == ',';
		}
		return n;
	}
	d = opendir("/proc");
	if (!d) {
		note_error("opendir /proc", errno);
		return 0;
	}
	while ((de = readdir(d)) && n < MAX_PIDS) {
		if (!is_number(de->d_name))
			continue;
		pids[n] = atoi(de->d_name);
		if (has_mm(pids[n]))
			n++;
	}
	closedir(d);
	return n;
}

/* Errors that only mean the process went away or is not ours. */
static int benign(int err)
{
	if (err == ENOENT || err == ESRCH) {
		stat_add(K_GONE, 1);
		return 1;
	}
	if (err == EACCES || err == EPERM) {
		stat_add(K_DENIED, 1);
		return 1;
	}
	return 0;
}

static void read_all(int pid, int kind, char *buf)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, files[kind]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!benign(errno))
			note_error(path, errno);
		return;
	}
	while ((n = read(fd, buf, BUF_SIZE)) > 0)
		stat_add(K_BYTES, (unsigned long)n);
	/* ESRCH: the mm went away while we walked it. */
	if (n < 0 && !benign(errno))
		note_error(path, errno);
	else if (n == 0)
		stat_add(K_SMAPS + kind, 1);
	close(fd);
}

/* Read the pagemap entries of up to 512 pages of a random VMA. */
static void read_pagemap(int pid, char *buf, struct rng *rng)
{
	unsigned long start[MAX_VMAS], end[MAX_VMAS], s, e, first, count;
	char path[64], *line, *next;
	int fd, nvma = 0, v;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!benign(errno))
			note_error(path, errno);
		return;
	}
	n = read(fd, buf, BUF_SIZE - 1);
	if (n < 0 && !benign(errno))
		note_error(path, errno);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (line = buf; line && *line && nvma < MAX_VMAS; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%lx-%lx", &s, &e) == 2 && e > s) {
			start[nvma] = s;
			end[nvma] = e;
			nvma++;
		}
	}
	if (!nvma)
		return;
	v = (int)rng_below(rng, (uint64_t)nvma);
	count = (end[v] - start[v]) / page_size;
	first = start[v] / page_size + rng_below(rng, count);
	count = end[v] / page_size - first;
	if (count > 512)
		count = 1 + rng_below(rng, 512);

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (!benign(errno))
			note_error(path, errno);
		return;
	}
	n = pread(fd, buf, count * 8, (off_t)(first * 8));
	if (n < 0 && !benign(errno))
		note_error(path, errno);
	else if (n >= 0) {
		stat_add(K_BYTES, (unsigned long)n);
		stat_add(K_PAGEMAP, 1);
	}
	close(fd);
}

static void clear_refs(int pid, struct rng *rng)
{
	char path[64], val[2];
	int err;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", pid);
	val[0] = (char)('1' + rng_below(rng, 4));
	val[1] = '\0';
	err = sys_write_str(path, val);
	if (!err)
		stat_add(K_CLEAR_REFS, 1);
	else if (!benign(-err))
		note_errorf("write %s to %s: %s", val, path, errname(-err));
}

static int walk_worker(int idx, void *varg)
{
	struct walk_arg *arg = varg;
	uint64_t next_scan = 0;
	int *pids, npids = 0, pid, kind;
	struct rng rng;
	char *buf;

	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	pids = calloc(MAX_PIDS, sizeof(*pids));
	buf = malloc(BUF_SIZE);
	if (!pids || !buf) {
		note_error("malloc (procwalk)", errno);
		return 1;
	}
	while (!should_stop()) {
		if (now_ms() >= next_scan || !npids) {
			npids = scan_pids(arg, pids);
			stat_add(K_SCANS, 1);
			stat_max(K_PIDS, (unsigned long)npids);
			next_scan = now_ms() + 500;
			if (!npids) {
				if (arg->pids) {
					note_errorf("none of --pids %s exists",
						    arg->pids);
					break;
				}
				sleep_ms(50);
				continue;
			}
		}
		pid = pids[rng_below(&rng, (uint64_t)npids)];
		kind = (int)rng_below(&rng, F_NR);
		if (kind == F_NUMA_MAPS && !arg->have_numa_maps)
			kind = F_SMAPS;
		if (kind == F_PAGEMAP)
			read_pagemap(pid, buf, &rng);
		else if (kind == F_CLEAR_REFS)
			clear_refs(pid, &rng);
		else
			read_all(pid, kind, buf);
		/* Leave the CPU to the storm now and then. */
		if (rng_chance(&rng, 10))
			sleep_ms(1);
	}
	free(buf);
	free(pids);
	return 0;
}

int mode_procwalk(struct opts *o)
{
	static const char *const needed[] = {
		"/proc/self/smaps", "/proc/self/smaps_rollup",
		"/proc/self/pagemap", "/proc/self/clear_refs",
	};
	long workers = o->workers > 0 ? o->workers : 2;
	struct walk_arg arg;
	size_t i;

	stat_add(K_WORKERS, (unsigned long)workers);
	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (access(needed[i], F_OK)) {
			note_missing(needed[i], errno, "CONFIG_PROC_PAGE_MONITOR");
			return report(o->mode, keys, K_NR);
		}
	}
	arg.pids = o->pids;
	arg.have_numa_maps = !access("/proc/self/numa_maps", F_OK);
	arg.seed = o->seed;
	run_workers((int)workers, walk_worker, &arg);
	return report(o->mode, keys, K_NR);
}
