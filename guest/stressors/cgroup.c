// SPDX-License-Identifier: GPL-2.0
/*
 * Memory cgroups (v2) for the memcg and oom modes: the cgroup2 hierarchy
 * is mounted at /sys/fs/cgroup when nothing is there yet, the memory
 * controller is enabled for the root's children, and each worker makes
 * its own leaf cgroup, sets its limits, puts processes in it and removes
 * it at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mmstress.h"

#define CG_ROOT		"/sys/fs/cgroup"

static int cg2_mounted(void)
{
	char line[512], dir[256], type[64];
	int found = 0;
	FILE *f;

	f = fopen("/proc/mounts", "r");
	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %255s %63s", dir, type) == 2 &&
		    !strcmp(dir, CG_ROOT) && !strcmp(type, "cgroup2"))
			found = 1;
	fclose(f);
	return found;
}

/* cgroup2 at /sys/fs/cgroup with the memory controller on: 0 or -1. */
static int cg_prepare(void)
{
	char buf[512];
	ssize_t n;
	int err;

	if (!cg2_mounted()) {
		if (access(CG_ROOT, F_OK)) {
			note_missing(CG_ROOT, errno, "CONFIG_CGROUPS");
			return -1;
		}
		/* Two modes may race to mount it: the loser sees EBUSY. */
		if (mount("cgroup2", CG_ROOT, "cgroup2", 0, NULL) &&
		    !cg2_mounted()) {
			if (errno == ENODEV)
				note_missing("mount cgroup2", ENODEV,
					     "CONFIG_CGROUPS");
			else
				note_error("mount cgroup2 on " CG_ROOT, errno);
			return -1;
		}
	}
	n = sys_read_buf(CG_ROOT "/cgroup.controllers", buf, sizeof(buf));
	if (n < 0) {
		note_error(CG_ROOT "/cgroup.controllers", (int)-n);
		return -1;
	}
	if (!strstr(buf, "memory")) {
		note_missing(CG_ROOT "/cgroup.controllers has no memory",
			     ENOENT, "CONFIG_MEMCG");
		return -1;
	}
	err = sys_write_str(CG_ROOT "/cgroup.subtree_control", "+memory");
	if (err) {
		note_error("write +memory to " CG_ROOT "/cgroup.subtree_control",
			   -err);
		return -1;
	}
	return 0;
}

/* Make the leaf cgroup <root>/mmstress-<name>: 0 or -1 (error noted). */
int cg_create(char *path, size_t len, const char *name)
{
	if (cg_prepare())
		return -1;
	snprintf(path, len, CG_ROOT "/mmstress-%s", name);
	if (mkdir(path, 0755) && errno != EEXIST) {
		note_error(path, errno);
		return -1;
	}
	return 0;
}

/* Write a value to one of the cgroup's files: 0 or -errno. */
int cg_write(const char *cg, const char *file, const char *val)
{
	char path[320];

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	return sys_write_str(path, val);
}

/* Like cg_write, but a failure is an error naming the file: 0 or -1. */
int cg_set(const char *cg, const char *file, const char *val)
{
	int err = cg_write(cg, file, val);

	if (!err)
		return 0;
	if (err == -ENOENT && !strncmp(file, "memory.swap", 11))
		note_missing(file, ENOENT, "CONFIG_SWAP");
	else
		note_errorf("write %s to %s/%s: %s", val, cg, file,
			    errname(-err));
	return -1;
}

/* Move the calling process into the cgroup: 0 or -errno. */
int cg_enter(const char *cg)
{
	return cg_write(cg, "cgroup.procs", "0");
}

/* A "key value" line of memory.events or memory.stat, or a one-number
 * file such as memory.swap.current (key NULL); -1 if missing. */
long cg_read(const char *cg, const char *file, const char *key)
{
	char path[320], buf[4096], *p;
	size_t klen;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", cg, file);
	n = sys_read_buf(path, buf, sizeof(buf));
	if (n < 0)
		return -1;
	if (!key)
		return strtol(buf, NULL, 10);
	klen = strlen(key);
	for (p = buf; p && *p; p = strchr(p, '\n')) {
		if (*p == '\n')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == ' ')
			return strtol(p + klen + 1, NULL, 10);
	}
	return -1;
}

/*
 * Remove the cgroup once its processes are gone (they may take a moment
 * to leave it after they were reaped).  A cgroup still busy after 5 s is
 * an error.
 */
void cg_remove(const char *cg)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (!rmdir(cg) || errno == ENOENT)
			return;
		if (errno != EBUSY)
			break;
		sleep_ms(50);
	}
	note_error(cg, errno);
}
