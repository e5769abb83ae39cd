// SPDX-License-Identifier: GPL-2.0
/*
 * uaccess: user copies that fault while the kernel holds another
 * subsystem's lock.  Each worker keeps patterned source pages and a
 * receive buffer, pages both out (MADV_PAGEOUT) before most operations,
 * and hands them to system calls that copy to or from user memory under
 * locks of their own:
 *
 *   pipe write/read          pipe->mutex
 *   TCP over loopback        the socket lock (lock_sock) around each copy
 *   pty master to slave      the tty's write lock, n_tty's read lock and
 *                            termios_rwsem
 *   vmsplice into a pipe     GUP of swapped pages, then pipe->mutex
 *   unix stream send/recv    u->iolock, the socket lock
 *   SysV msgsnd/msgrcv       the message queue's copies
 *   /proc seq_file reads     m->lock (and mmap_lock for maps and smaps)
 *   getdents64               the directory's i_rwsem (ext4, tmpfs, procfs,
 *                            sysfs, cgroupfs, devtmpfs; kernfs's rwsem)
 *   file pwrite/pread        i_rwsem, invalidate_lock, the page lock (an
 *                            ext4 file and a tmpfs one)
 *   write from the file's    a fault on a page of the file being written
 *   own shared mapping
 *   epoll_wait               ep->mtx while the events are copied out
 *   futex wait, bad value    a swapped futex word (private and shared)
 *   mm attribute reads       sysfs's active reference and of->mutex, the
 *                            attribute's own lock (/sys/kernel/mm, nodes,
 *                            zram and the swap disks, memory cgroups,
 *                            /proc/sys/vm, /proc's mm tables)
 *   xattr set/get, rename    the inode's xattr lock and journal, the
 *                            directory's i_rwsem and rename lock
 *   SIOCGIFCONF, TIOCGWINSZ, rtnl_mutex, the tty's winsize_mutex, the
 *   /dev/kmsg reads          kmsg reader's lock, each held over its copy
 *   hole punched in the      invalidate_lock, i_mmap_rwsem and the page
 *   mapped file              table lock (unmap_mapping_range), then the
 *                            refault allocating blocks under the journal
 *
 * Every such fault swaps the page back in (swap cache, zswap, zram, the
 * page lock, the memcg) with the other subsystem's lock held: the lock
 * chains from the rest of the kernel into the mm, where lock-order
 * inversions against mmap_lock have shipped before.  What goes through a
 * pipe, socket, message queue or file comes back checked page by page.
 *
 * --dir D puts each worker's file and directory on D (a disk filesystem);
 * without it they go on /tmp.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/xattr.h>
#include <termios.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_PIPE, K_VMSPLICE, K_UNIX, K_MSG, K_PROC, K_GETDENTS,
	K_FILE, K_FILE_SELF, K_EPOLL, K_FUTEX, K_TCP, K_PTY, K_ATTR,
	K_ATTR_FILES, K_ATTR_DROPPED, K_XATTR, K_RENAME, K_PUNCH, K_IFCONF,
	K_WINSZ, K_KMSG, K_PAGEOUTS, K_SWAPPED_BUFS,
	K_PAGES_CHECKED, K_CORRUPTIONS, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "pipe", "vmsplice", "unix", "msg", "proc", "getdents",
	"file", "file_self", "epoll", "futex", "tcp", "pty", "attr",
	"attr_files", "attr_dropped", "xattr", "rename", "punch", "ifconf",
	"winsz", "kmsg", "pageouts", "swapped_bufs",
	"pages_checked", "corruptions",
};

#define SRC_PAGES	16	/* a pipe holds 16 pages by default */
#define FILE_PAGES	32
#define DIR_ENTRIES	48
#define MSG_MAX		8192	/* under the default msgmax */
#define ATTR_FILES	512
#define ATTR_DEPTH	3
#define ATTR_BATCH	4	/* files read per op, one page each */
#define XATTR_BYTES	1024	/* fits ext4's in-inode or block xattrs */

struct ua_arg {
	const char *dir;
	uint64_t seed;
};

struct ua {
	int idx;
	struct rng rng;
	uint64_t salt;
	uint32_t gen;
	char *src;		/* SRC_PAGES patterned pages */
	char *dst;		/* SRC_PAGES receive pages */
	char *fmap;		/* the file, MAP_SHARED */
	int pipe[2], sock[2], tcp[2], pty[2], file, tfile, ep, msq;
	int have_xattr;		/* 0 where the filesystem has no user xattrs */
	char dirpath[200], path[256];
};

/* The mm attribute files every worker reads from, found once. */
static char *attr_files[ATTR_FILES];
static int nr_attr_files;

static int failed(const char *what, int err, const char *feature)
{
	if (err == ENOSYS || err == EAFNOSUPPORT)
		note_missing(what, err, feature);
	else if (err == ENOMEM || err == EINTR || err == EAGAIN ||
		 err == ENOSPC)
		note_transient();
	else
		note_error(what, err);
	return sh->errors ? -1 : 0;
}

/* Page a buffer out, counting when its first page really went to swap. */
static void pageout(char *buf, size_t pages)
{
	uint64_t pm;

	if (madvise(buf, pages * page_size, MADV_PAGEOUT))
		return;
	stat_add(K_PAGEOUTS, 1);
	if (!pagemap_entry(buf, &pm) && (pm >> 62 & 1))
		stat_add(K_SWAPPED_BUFS, 1);
}

/* New source contents (a new generation), then both buffers out. */
static void refill(struct ua *u, size_t n)
{
	size_t i;

	u->gen++;
	for (i = 0; i < n; i++)
		pat_fill(u->src + i * page_size, i, u->gen, u->salt);
	if (rng_chance(&u->rng, 80))
		pageout(u->src, n);
	if (rng_chance(&u->rng, 80))
		pageout(u->dst, n);
}

static void check(struct ua *u, const char *how, size_t n)
{
	uint64_t got, want;
	char who[64];
	size_t i;
	long w;

	for (i = 0; i < n; i++) {
		w = pat_check(u->dst + i * page_size, i, u->gen, u->salt,
			      &got, &want);
		stat_add(K_PAGES_CHECKED, 1);
		if (w < 0)
			continue;
		stat_add(K_CORRUPTIONS, 1);
		snprintf(who, sizeof(who), "uaccess worker %d (%s)", u->idx,
			 how);
		note_corruption(who, u->dst + i * page_size, 1, i, u->gen,
				u->salt, w, got, want);
	}
}

/*
 * Move n pages from src to dst through a non-blocking pair (write side,
 * read side), writing and reading in turn: a pty's line discipline holds
 * only 4 KiB. With use_vmsplice the write side is vmsplice() into a pipe.
 */
static int transfer(struct ua *u, int wfd, int rfd, size_t n, const char *how,
		    int use_vmsplice)
{
	size_t len = n * page_size, sent = 0, got = 0;
	uint64_t until = now_ms() + 10000;
	struct pollfd p[2];
	struct iovec iov;
	ssize_t r;

	while (got < len) {
		if (sent < len) {
			iov.iov_base = u->src + sent;
			iov.iov_len = len - sent;
			r = use_vmsplice ? vmsplice(wfd, &iov, 1, SPLICE_F_NONBLOCK) :
					   write(wfd, iov.iov_base, iov.iov_len);
			if (r > 0)
				sent += (size_t)r;
			else if (r < 0 && errno != EAGAIN)
				return failed(use_vmsplice ? "vmsplice" : how,
					      errno, "");
		}
		r = read(rfd, u->dst + got, len - got);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r == 0) {
			note_errorf("uaccess worker %d: %s ended early", u->idx,
				    how);
			return -1;
		}
		if (errno != EAGAIN)
			return failed(how, errno, "");
		if (now_ms() > until) {
			note_errorf("uaccess worker %d: %s moved %zu of %zu bytes in 10 s",
				    u->idx, how, got, len);
			return -1;
		}
		p[0].fd = rfd;
		p[0].events = POLLIN;
		p[1].fd = wfd;
		p[1].events = sent < len ? POLLOUT : 0;
		poll(p, 2, 100);
	}
	check(u, how, n);
	return 0;
}

/* lo up (the storm's guest has it up unless NET=0): TCP needs it. */
static int loopback_up(void)
{
	struct ifreq ifr;
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		ret = -errno;
	else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			ret = -errno;
	}
	close(fd);
	return ret;
}

static int tcp_pair(int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l, err;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	err = loopback_up();
	if (err)
		return err;
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -errno;
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen)) {
		err = -errno;
		close(l);
		return err;
	}
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sv[0] < 0 || (connect(sv[0], (struct sockaddr *)&a, sizeof(a)) &&
			  errno != EINPROGRESS)) {
		err = -errno;
		close(l);
		return err;
	}
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	err = sv[1] < 0 ? -errno : 0;
	close(l);
	return err;
}

static int pty_pair(int pv[2])
{
	struct termios t;

	pv[0] = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (pv[0] < 0 || grantpt(pv[0]) || unlockpt(pv[0]))
		return -errno;
	pv[1] = open(ptsname(pv[0]), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (pv[1] < 0 || tcgetattr(pv[1], &t))
		return -errno;
	cfmakeraw(&t);
	return tcsetattr(pv[1], TCSANOW, &t) ? -errno : 0;
}

static int op_msg(struct ua *u)
{
	size_t n = MSG_MAX / page_size ? MSG_MAX / page_size : 1;
	ssize_t r;

	/* mtype is the last word of the page before each buffer. */
	refill(u, n);
	if (msgsnd(u->msq, u->src - sizeof(long), n * page_size, IPC_NOWAIT))
		return failed("msgsnd", errno, "CONFIG_SYSVIPC");
	r = msgrcv(u->msq, u->dst - sizeof(long), n * page_size, 0,
		   IPC_NOWAIT);
	if (r < 0)
		return failed("msgrcv", errno, "CONFIG_SYSVIPC");
	if ((size_t)r != n * page_size) {
		note_errorf("uaccess worker %d: msgrcv returned %zd of %zu bytes",
			    u->idx, r, n * page_size);
		return -1;
	}
	check(u, "msgsnd/msgrcv", n);
	return 0;
}

static int op_proc(struct ua *u)
{
	static const char *const files[] = {
		"/proc/self/maps", "/proc/self/smaps_rollup", "/proc/self/status",
		"/proc/self/numa_maps", "/proc/vmstat", "/proc/meminfo",
		"/proc/swaps", "/proc/self/smaps",
	};
	const char *file = files[rng_below(&u->rng, 8)];
	ssize_t r;
	int fd;

	pageout(u->dst, SRC_PAGES);
	fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : failed(file, errno, "");
	do {
		r = read(fd, u->dst, SRC_PAGES * page_size);
	} while (r > 0 && !should_stop());
	close(fd);
	return r < 0 ? failed(file, errno, "") : 0;
}

/*
 * Readable regular files under dir (depth levels down), found without
 * reading any (a read can take a while on a busy guest); symbolic links are
 * followed only with follow (the disks under /sys/block), never below,
 * where sysfs links back up its tree.
 */
static void find_attrs(const char *dir, int depth, int follow)
{
	char path[512];
	struct dirent *e;
	struct stat st;
	DIR *d;

	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d)) && nr_attr_files < ATTR_FILES) {
		if (e->d_name[0] == '.' || strstr(e->d_name, "trace") ||
		    !strcmp(e->d_name, "subsystem") ||
		    !strcmp(e->d_name, "device") || !strcmp(e->d_name, "bdi"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (follow ? stat(path, &st) : lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode) && depth > 0)
			find_attrs(path, depth - 1, 0);
		else if (S_ISREG(st.st_mode) && (st.st_mode & 0444))
			attr_files[nr_attr_files++] = strdup(path);
	}
	closedir(d);
}

static void find_all_attrs(void)
{
	static const char *const roots[] = {
		"/sys/kernel/mm", "/sys/devices/system/node", "/proc/sys/vm",
		"/sys/block", "/sys/fs/cgroup", "/proc/pressure",
	};
	static const char *const files[] = {
		"/proc/slabinfo", "/proc/zoneinfo", "/proc/pagetypeinfo",
		"/proc/buddyinfo", "/proc/vmallocinfo", "/proc/diskstats",
		"/proc/locks", "/proc/self/environ", "/proc/self/cmdline",
		"/proc/self/stat", "/proc/self/statm", "/proc/self/io",
		"/proc/self/limits", "/proc/self/mountinfo", "/proc/self/cgroup",
		"/proc/self/oom_score", "/proc/self/wchan", "/proc/self/stack",
		"/proc/self/auxv", "/proc/self/sched",
	};
	size_t i;

	for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++)
		find_attrs(roots[i], ATTR_DEPTH,
			   !strcmp(roots[i], "/sys/block"));
	for (i = 0; i < sizeof(files) / sizeof(files[0]) &&
		    nr_attr_files < ATTR_FILES; i++)
		if (!access(files[i], R_OK))
			attr_files[nr_attr_files++] = strdup(files[i]);
	stat_add(K_ATTR_FILES, (unsigned long)nr_attr_files);
}

/*
 * An attribute that answers a read with an error has no show() for it, or
 * none in this state (EIO, EINVAL, EPERM, EOPNOTSUPP, ENXIO, ENODEV,
 * EBUSY): it leaves this worker's list.
 */
static int attr_refuses(int err)
{
	return err == EIO || err == EINVAL || err == EPERM || err == EACCES ||
	       err == EOPNOTSUPP || err == ENXIO || err == ENODEV ||
	       err == EBUSY || err == ENOENT;
}

/*
 * ATTR_BATCH mm attribute files, each read whole into its own page of the
 * paged-out buffer: each read's first copy faults under that attribute's
 * locks.
 */
static int op_attr(struct ua *u)
{
	uint64_t pick;
	const char *file;
	size_t k;
	ssize_t r;
	int fd;

	if (!nr_attr_files)
		return op_proc(u);
	pageout(u->dst, ATTR_BATCH);
	for (k = 0; k < ATTR_BATCH && nr_attr_files && !should_stop(); k++) {
		pick = rng_below(&u->rng, (uint64_t)nr_attr_files);
		file = attr_files[pick];
		fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd >= 0) {
			do {
				r = read(fd, u->dst + k * page_size, page_size);
			} while (r > 0 && !should_stop());
			close(fd);
			if (r >= 0) {
				stat_add(K_ATTR, 1);
				continue;
			}
		}
		if (!attr_refuses(errno))
			return failed(file, errno, "");
		attr_files[pick] = attr_files[--nr_attr_files];
		stat_add(K_ATTR_DROPPED, 1);
	}
	return 0;
}

/*
 * A user xattr whose value comes from a swapped page and goes back to
 * another, then a rename of a directory entry and back: the file's xattr
 * lock and journal, the directory's i_rwsem and the rename lock.
 */
static int op_meta(struct ua *u)
{
	size_t len = 1 + rng_below(&u->rng, XATTR_BYTES);
	char from[300], to[300];
	ssize_t r;
	int e;

	if (u->have_xattr) {
		refill(u, 1);
		if (setxattr(u->path, "user.mmlock", u->src, len, 0)) {
			if (errno != EOPNOTSUPP)
				return failed("setxattr", errno, "");
			u->have_xattr = 0;	/* tmpfs before 6.6: counted out */
		} else {
			r = getxattr(u->path, "user.mmlock", u->dst,
				     XATTR_BYTES);
			if (r < 0)
				return failed("getxattr", errno, "");
			stat_add(K_XATTR, 1);
			if ((size_t)r != len || memcmp(u->src, u->dst, len)) {
				stat_add(K_CORRUPTIONS, 1);
				note_errorf("uaccess worker %d: xattr of %zu bytes read back as %zd bytes that differ",
					    u->idx, len, r);
				return -1;
			}
		}
	}
	e = (int)rng_below(&u->rng, DIR_ENTRIES);
	snprintf(from, sizeof(from), "%s/entry-with-a-longer-name-%03d",
		 u->dirpath, e);
	snprintf(to, sizeof(to), "%s/renamed-entry-%03d", u->dirpath, e);
	if (rename(from, to) || rename(to, from))
		return failed("rename", errno, "");
	stat_add(K_RENAME, 1);
	return 0;
}

/*
 * Punch a hole in the worker's file while its shared mapping is in place:
 * the mapped pages are unmapped under i_mmap_rwsem and the page table
 * lock, and the mapping must then read zeros there; writing the pattern
 * back faults blocks in again under the journal.
 */
static int op_punch(struct ua *u)
{
	size_t n = 1 + rng_below(&u->rng, FILE_PAGES / 4);
	size_t at = rng_below(&u->rng, FILE_PAGES - n + 1), i, j;
	const uint64_t *w;

	if (fallocate(u->file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(at * page_size), (off_t)(n * page_size)))
		return failed("fallocate(PUNCH_HOLE)", errno, "");
	stat_add(K_PUNCH, 1);
	for (i = at; i < at + n; i++) {
		w = (const uint64_t *)(u->fmap + i * page_size);
		for (j = 0; j < page_size / sizeof(*w); j++)
			if (w[j])
				break;
		stat_add(K_PAGES_CHECKED, 1);
		if (j < page_size / sizeof(*w)) {
			stat_add(K_CORRUPTIONS, 1);
			note_errorf("uaccess worker %d: page %zu of its file reads word %zu = %#llx after its hole was punched",
				    u->idx, i, j, (unsigned long long)w[j]);
			return -1;
		}
		pat_fill(u->fmap + i * page_size, (uint64_t)i, 0, u->salt);
	}
	return 0;
}

static int op_getdents(struct ua *u)
{
	/* Each filesystem type's directories have an i_rwsem class of their
	 * own, and sysfs and cgroupfs walk kernfs under its rwsem. */
	static const char *const dirs[] = {
		"/proc", "/sys/kernel/mm", "/sys/fs/cgroup", "/dev", "/tmp",
	};
	const char *where = u->dirpath;
	long r;
	int fd;

	if (rng_chance(&u->rng, 50))
		where = dirs[rng_below(&u->rng, sizeof(dirs) / sizeof(dirs[0]))];
	pageout(u->dst, SRC_PAGES);
	fd = open(where, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT && where != u->dirpath ? 0 :
		       failed(where, errno, "");
	do {
		r = syscall(SYS_getdents64, fd, u->dst,
			    (1 + rng_below(&u->rng, 4)) * page_size);
	} while (r > 0 && !should_stop());
	close(fd);
	return r < 0 ? failed("getdents64", errno, "") : 0;
}

static int op_file(struct ua *u)
{
	size_t n = 1 + rng_below(&u->rng, SRC_PAGES);
	off_t off = (off_t)(rng_below(&u->rng, FILE_PAGES - n + 1) * page_size);
	int fd = u->tfile >= 0 && rng_chance(&u->rng, 50) ? u->tfile : u->file;
	ssize_t r;

	refill(u, n);
	r = pwrite(fd, u->src, n * page_size, off);
	if (r != (ssize_t)(n * page_size))
		return r < 0 ? failed("pwrite", errno, "") : 0;
	if (rng_chance(&u->rng, 30) && fdatasync(fd))
		return failed("fdatasync", errno, "");
	r = pread(fd, u->dst, n * page_size, off);
	if (r != (ssize_t)(n * page_size))
		return r < 0 ? failed("pread", errno, "") : 0;
	check(u, "file pwrite/pread", n);
	return 0;
}

/*
 * write() whose source is the file's own shared mapping, at other pages:
 * the copy faults on a page of the file it is writing, paged out first.
 */
static int op_file_self(struct ua *u)
{
	size_t n = 1 + rng_below(&u->rng, FILE_PAGES / 2);
	size_t from = rng_below(&u->rng, FILE_PAGES / 2 - n + 1);
	size_t to = FILE_PAGES / 2 + rng_below(&u->rng, FILE_PAGES / 2 - n + 1);
	char *want = u->dst;
	ssize_t r;

	if (n > SRC_PAGES)
		n = SRC_PAGES;
	memcpy(want, u->fmap + from * page_size, n * page_size);
	pageout(u->fmap, FILE_PAGES);
	r = pwrite(u->file, u->fmap + from * page_size, n * page_size,
		   (off_t)(to * page_size));
	if (r != (ssize_t)(n * page_size))
		return r < 0 ? failed("pwrite from own mapping", errno, "") : 0;
	stat_add(K_PAGES_CHECKED, n);
	if (memcmp(u->fmap + to * page_size, want, n * page_size)) {
		stat_add(K_CORRUPTIONS, 1);
		note_errorf("uaccess worker %d: pages %zu-%zu of its file differ from pages %zu-%zu written from its own mapping",
			    u->idx, to, to + n - 1, from, from + n - 1);
		return -1;
	}
	return 0;
}

/*
 * Copies to user that the kernel makes with a lock of its own held, into
 * a paged-out page: SIOCGIFCONF under rtnl_mutex, TIOCGWINSZ under the
 * tty's winsize_mutex, and /dev/kmsg records under the reader's lock.
 */
static int op_locked_copy(struct ua *u)
{
	struct ifconf ifc;
	ssize_t r;
	int fd;

	pageout(u->dst, 3);
	switch (rng_below(&u->rng, 3)) {
	case 0:
		ifc.ifc_len = (int)page_size;
		ifc.ifc_buf = u->dst;
		if (ioctl(u->tcp[0], SIOCGIFCONF, &ifc))
			return failed("ioctl(SIOCGIFCONF)", errno, "");
		stat_add(K_IFCONF, 1);
		return 0;
	case 1:
		if (ioctl(u->pty[1], TIOCGWINSZ, u->dst + page_size))
			return failed("ioctl(TIOCGWINSZ)", errno, "");
		stat_add(K_WINSZ, 1);
		return 0;
	default:
		fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return failed("/dev/kmsg", errno, "CONFIG_PRINTK");
		do {	/* EPIPE: a record overwritten meanwhile */
			r = read(fd, u->dst + 2 * page_size, page_size);
		} while ((r > 0 || (r < 0 && errno == EPIPE)) &&
			 !should_stop());
		close(fd);
		if (r < 0 && errno != EAGAIN)
			return failed("read /dev/kmsg", errno, "");
		stat_add(K_KMSG, 1);
		return 0;
	}
}

static int op_epoll(struct ua *u)
{
	struct epoll_event *ev = (void *)u->dst;
	char c = 'e';
	int r;

	pageout(u->dst, 1);
	if (write(u->pipe[1], &c, 1) != 1)
		return failed("write (epoll pipe)", errno, "");
	r = epoll_wait(u->ep, ev, (int)(page_size / sizeof(*ev)), 0);
	if (r < 0)
		return failed("epoll_wait", errno, "CONFIG_EPOLL");
	if (r != 1 || ev[0].data.u32 != 0x5eed) {
		note_errorf("uaccess worker %d: epoll_wait gave %d events (data %#x), want 1",
			    u->idx, r, r > 0 ? ev[0].data.u32 : 0);
		return -1;
	}
	if (read(u->pipe[0], &c, 1) != 1)
		return failed("read (epoll pipe)", errno, "");
	return 0;
}

static int op_futex(struct ua *u)
{
	int shared = rng_chance(&u->rng, 50);
	uint32_t *word = shared ? (void *)u->fmap : (void *)u->src;
	uint32_t wrong = *word + 1;
	long r;

	pageout(shared ? u->fmap : u->src, 1);
	r = syscall(SYS_futex, word,
		    shared ? FUTEX_WAIT : FUTEX_WAIT | FUTEX_PRIVATE_FLAG,
		    wrong, NULL, NULL, 0);
	if (r == 0 || errno != EAGAIN)
		return r ? failed("futex", errno, "CONFIG_FUTEX") : 0;
	return 0;
}

static int one_op(struct ua *u)
{
	size_t n = 1 + rng_below(&u->rng, SRC_PAGES);

	switch (rng_below(&u->rng, 17)) {
	case 0:
		refill(u, n);
		stat_add(K_PIPE, 1);
		return transfer(u, u->pipe[1], u->pipe[0], n, "pipe", 0);
	case 1:
		refill(u, n);
		stat_add(K_VMSPLICE, 1);
		return transfer(u, u->pipe[1], u->pipe[0], n, "vmsplice", 1);
	case 2:
		refill(u, n);
		stat_add(K_UNIX, 1);
		return transfer(u, u->sock[0], u->sock[1], n, "unix socket", 0);
	case 3:
		stat_add(K_MSG, 1);
		return op_msg(u);
	case 4:
	case 5:
		stat_add(K_PROC, 1);
		return op_proc(u);
	case 6:
		stat_add(K_GETDENTS, 1);
		return op_getdents(u);
	case 7:
		stat_add(K_FILE, 1);
		return op_file(u);
	case 8:
		stat_add(K_FILE_SELF, 1);
		return op_file_self(u);
	case 9:
		stat_add(K_EPOLL, 1);
		return op_epoll(u);
	case 10:
		refill(u, n);
		stat_add(K_TCP, 1);
		return transfer(u, u->tcp[0], u->tcp[1], n, "tcp over loopback", 0);
	case 11:
		refill(u, n);
		stat_add(K_PTY, 1);
		return transfer(u, u->pty[0], u->pty[1], n, "pty", 0);
	case 12:
		return op_attr(u);
	case 13:
		return op_meta(u);
	case 14:
		return op_punch(u);
	case 15:
		return op_locked_copy(u);
	default:
		stat_add(K_FUTEX, 1);
		return op_futex(u);
	}
}

static int setup(struct ua *u, const char *dir)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0x5eed };
	size_t buf = (SRC_PAGES + 1) * page_size;
	char name[300];
	int i, fd;

	/* A page before each buffer holds msgsnd's mtype word. */
	u->src = mmap(NULL, buf, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	u->dst = mmap(NULL, buf, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (u->src == MAP_FAILED || u->dst == MAP_FAILED)
		return failed("mmap (uaccess buffers)", errno, "");
	u->src += page_size;
	u->dst += page_size;
	*(long *)(u->src - sizeof(long)) = 1;
	if (pipe2(u->pipe, O_CLOEXEC | O_NONBLOCK))
		return failed("pipe2", errno, "");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0,
		       u->sock))
		return failed("socketpair(AF_UNIX)", errno, "CONFIG_UNIX");
	u->ep = epoll_create1(EPOLL_CLOEXEC);
	if (u->ep < 0)
		return failed("epoll_create1", errno, "CONFIG_EPOLL");
	if (epoll_ctl(u->ep, EPOLL_CTL_ADD, u->pipe[0], &ev))
		return failed("epoll_ctl", errno, "CONFIG_EPOLL");
	u->msq = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	if (u->msq < 0)
		return failed("msgget", errno, "CONFIG_SYSVIPC");
	i = tcp_pair(u->tcp);
	if (i)
		return failed("TCP pair over loopback", -i, "CONFIG_INET");
	i = pty_pair(u->pty);
	if (i)
		return failed("pty pair", -i, "CONFIG_UNIX98_PTYS");

	snprintf(u->dirpath, sizeof(u->dirpath), "%s/mmstress-uaccess-%d-%d",
		 dir, (int)getpid(), u->idx);
	if (mkdir(u->dirpath, 0700) && errno != EEXIST)
		return failed(u->dirpath, errno, "");
	for (i = 0; i < DIR_ENTRIES; i++) {
		snprintf(name, sizeof(name), "%s/entry-with-a-longer-name-%03d",
			 u->dirpath, i);
		fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0)
			return failed(name, errno, "");
		close(fd);
	}
	snprintf(u->path, sizeof(u->path), "%s/file", u->dirpath);
	u->file = open(u->path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (u->file < 0)
		return failed(u->path, errno, "");
	if (ftruncate(u->file, (off_t)(FILE_PAGES * page_size)))
		return failed("ftruncate", errno, "");
	u->fmap = mmap(NULL, FILE_PAGES * page_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED, u->file, 0);
	if (u->fmap == MAP_FAILED)
		return failed("mmap (uaccess file)", errno, "");
	for (i = 0; i < FILE_PAGES; i++)
		pat_fill(u->fmap + (size_t)i * page_size, (uint64_t)i, 0,
			 u->salt);
	u->have_xattr = 1;
	/* A second file on tmpfs: shmem's write path and i_rwsem class. */
	snprintf(name, sizeof(name), "/tmp/mmstress-uaccess-%d-%d",
		 (int)getpid(), u->idx);
	u->tfile = open(name, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
	if (u->tfile < 0)
		return failed(name, errno, "");
	unlink(name);
	if (ftruncate(u->tfile, (off_t)(FILE_PAGES * page_size)))
		return failed("ftruncate (tmpfs)", errno, "");
	return 0;
}

static void teardown(struct ua *u)
{
	char name[300];
	int i;

	if (u->msq >= 0)
		msgctl(u->msq, IPC_RMID, NULL);
	if (u->fmap && u->fmap != MAP_FAILED)
		munmap(u->fmap, FILE_PAGES * page_size);
	if (u->file >= 0)
		close(u->file);
	if (u->tfile >= 0)
		close(u->tfile);
	if (!u->dirpath[0])
		return;
	unlink(u->path);
	for (i = 0; i < DIR_ENTRIES; i++) {
		snprintf(name, sizeof(name), "%s/entry-with-a-longer-name-%03d",
			 u->dirpath, i);
		unlink(name);
	}
	rmdir(u->dirpath);
}

static int uaccess_worker(int idx, void *varg)
{
	struct ua_arg *arg = varg;
	struct ua u;

	memset(&u, 0, sizeof(u));
	u.idx = idx;
	u.file = u.tfile = u.msq = -1;
	rng_init(&u.rng, arg->seed, (uint64_t)idx + 1);
	u.salt = rng_next(&u.rng);
	if (!setup(&u, arg->dir)) {
		while (!should_stop() && !sh->errors)
			if (one_op(&u) < 0)
				break;
	}
	teardown(&u);
	return 0;
}

int mode_uaccess(struct opts *o)
{
	long workers = o->workers > 0 ? o->workers : 1;
	struct ua_arg arg;

	stat_add(K_WORKERS, (unsigned long)workers);
	arg.dir = o->dir ? o->dir : "/tmp";
	arg.seed = o->seed;
	find_all_attrs();
	run_workers((int)workers, uaccess_worker, &arg);
	return report(o->mode, keys, K_NR);
}
