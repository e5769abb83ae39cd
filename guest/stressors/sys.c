// SPDX-License-Identifier: GPL-2.0
/*
 * Small helpers for /proc and /sys knobs: read and write one number,
 * read a /proc/vmstat counter, and tune a set of knobs that are put back
 * as they were at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mmstress.h"

/* Read a small proc/sysfs file, NUL-terminated: length or -errno. */
ssize_t sys_read_buf(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* 0 or -errno. */
int sys_read_long(const char *path, long *val)
{
	char buf[64];
	ssize_t n = sys_read_buf(path, buf, sizeof(buf));

	if (n < 0)
		return (int)n;
	*val = strtol(buf, NULL, 10);
	return 0;
}

/* 0 or -errno. */
int sys_write_str(const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, val, len);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EIO;
	close(fd);
	return err;
}

int sys_write_long(const char *path, long val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%ld", val);
	return sys_write_str(path, buf);
}

/* A /proc/vmstat counter, or -1 if the kernel does not have it. */
long vmstat_get(const char *key)
{
	size_t klen = strlen(key);
	char line[128];
	long val = -1;
	FILE *f;

	f = fopen("/proc/vmstat", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ' ') {
			val = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return val;
}

/* Keep the largest value seen in a counter (gauges such as pages_sharing). */
void stat_max(int key, unsigned long n)
{
	unsigned long cur = stat_get(key);

	while (n > cur &&
	       !__atomic_compare_exchange_n(&sh->val[key], &cur, n, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
}

/*
 * Set every knob to its wanted value, remembering the old one.  Returns
 * the number of knobs changed; 0 without errors when not allowed to (not
 * root: the host tests), and notes an error for anything else.
 */
int knobs_set(struct knob *k, int n, const char *feature)
{
	int i, err, changed = 0;

	for (i = 0; i < n; i++) {
		k[i].changed = 0;
		err = sys_read_long(k[i].path, &k[i].saved);
		if (err == -ENOENT) {
			note_missing(k[i].path, ENOENT, feature);
			break;
		}
		if (err) {
			note_error(k[i].path, -err);
			break;
		}
		if (k[i].saved == k[i].want)
			continue;
		err = sys_write_long(k[i].path, k[i].want);
		if (err == -EACCES || err == -EPERM)
			continue;
		if (err) {
			note_errorf("write %ld to %s: %s", k[i].want,
				    k[i].path, strerror(-err));
			break;
		}
		k[i].changed = 1;
		changed++;
	}
	return changed;
}

void knobs_restore(struct knob *k, int n)
{
	int i;

	for (i = n - 1; i >= 0; i--) {
		if (!k[i].changed)
			continue;
		if (sys_write_long(k[i].path, k[i].saved))
			note_errorf("cannot restore %s to %ld", k[i].path,
				    k[i].saved);
		k[i].changed = 0;
	}
}
