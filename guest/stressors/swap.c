// SPDX-License-Identifier: GPL-2.0
/*
 * swap: cycle swap areas on and off while the other modes keep memory
 * pressure up.  swapoff() runs try_to_unuse(), which walks every mm on
 * the mmlist under swap_lock/mmlist_lock and takes each mm's mmap_lock.
 *
 * Block devices come from --dev PATH:PRIO; --mkswap writes a v1 swap
 * header ("SWAPSPACE2") for the running page size first.  Swap files come
 * from --file PATH:SIZE_MB:PRIO; they are created (fallocate, or zeros
 * where fallocate is unsupported) with a header, on a filesystem that can
 * hold swap files (tmpfs cannot; that is reported as an error).  A file
 * that already has that size and every block is reused.
 *
 * A swapoff is only attempted when the pages in use on that area fit in
 * MemAvailable plus the free space of the other active areas, and the
 * last active area is only swapped off now and then, so swapping goes on
 * most of the time and swapoff does not invoke the OOM killer.
 *
 * With --fill N every Nth cycle drives the highest-priority active area
 * (where the kernel allocates first) completely full: a child faults in
 * anonymous memory and pushes it out with MADV_PAGEOUT until /proc/swaps
 * says the area is full (within 1/64 of its size: the other modes'
 * swap-ins keep freeing slots).  Then, at once, the child exits (its
 * entries on the full area are freed, which puts a full area back on the
 * allocation lists) and the area's swapoff begins, while the other modes
 * allocate: the races of a swapoff that starts on a full device.
 * swapoff_full counts the swapoffs that began on a full area.
 * Once the area is full the child goes on paging out, into the other
 * areas, until so little swap is free that the kernel stops caching swap
 * slots per CPU (below): from then on slots are taken and freed one at a
 * time, and a full area is still full when a swapoff of it gives up.
 * Before that swapoff, up to INTERRUPTED swapoffs of the full area are cut
 * short by a timer signal (try_to_unuse() gives up with EINTR and the area
 * is put back: reinsert_swap_info()), each taking the area off the
 * allocation lists and back while the filler frees one of its pages and
 * pages another out, again and again (flips): every free on the full area
 * puts it back on those lists, every allocation takes it off; the races
 * of a swapoff's start against both, many times a fill instead of once.
 * swapoff_eintr counts them.
 *
 * At the end every area is swapped off again (same fit check) within
 * --final-timeout seconds in total; a swapoff still running then is
 * killed (it aborts cleanly) and that area is left on.  --keep-on leaves
 * everything on.  Swap files that end up off are deleted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmstress.h"

#ifndef SWAP_FLAG_PREFER
#define SWAP_FLAG_PREFER	0x8000
#endif
#ifndef SWAP_FLAG_PRIO_MASK
#define SWAP_FLAG_PRIO_MASK	0x7fff
#endif
#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC		0x01021994
#endif
#ifndef RAMFS_MAGIC
#define RAMFS_MAGIC		0x858458f6
#endif

enum {
	K_AREAS, K_MKSWAP, K_SWAPON, K_SWAPON_FAIL, K_SWAPOFF,
	K_SWAPOFF_ENOMEM, K_SWAPOFF_FAIL, K_SWAPOFF_SKIPPED, K_SWAPOFF_MS,
	K_SWAPOFF_MAX_MS, K_FINAL_SWAPOFF, K_FINAL_LEFT_ON, K_FILLS,
	K_FILL_FULL, K_SWAPOFF_FULL, K_FILL_MS, K_SWAPOFF_EINTR, K_FLIPS,
	K_FILL_UNCACHED, K_EINTR_STILL_FULL, K_NR
};

static const char *const keys[K_NR] = {
	"areas", "mkswap", "swapon", "swapon_fail", "swapoff",
	"swapoff_enomem", "swapoff_fail", "swapoff_skipped", "swapoff_ms",
	"swapoff_max_ms", "final_swapoff", "final_left_on", "fills",
	"fill_full", "swapoff_full", "fill_ms", "swapoff_eintr", "flips",
	"fill_uncached", "eintr_still_full",
};

struct area {
	const struct swap_spec *spec;
	int usable;		/* set up fine (or was already active) */
	int on;
	int created;		/* a swap file we made */
};

static struct rng hdr_rng;	/* swap header UUIDs */

/* Usage of one area from /proc/swaps, in KiB; -1 if not listed. */
static int proc_swaps(const char *path, long *size_kb, long *used_kb)
{
	char line[512], name[400], real[PATH_MAX];
	long size, used;
	int found = 0;
	FILE *f;

	if (!realpath(path, real))
		snprintf(real, sizeof(real), "%s", path);
	f = fopen("/proc/swaps", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%399s %*s %ld %ld", name, &size, &used) != 3)
			continue;
		if (strcmp(name, real) && strcmp(name, path))
			continue;
		if (size_kb)
			*size_kb = size;
		if (used_kb)
			*used_kb = used;
		found = 1;
		break;
	}
	fclose(f);
	return found;
}

static int write_header(int fd, const char *path, uint64_t size)
{
	uint64_t pages = size / page_size;
	unsigned char *hdr;
	uint32_t v;
	size_t i;
	int ret = -1;

	if (pages < 10) {
		note_errorf("%s: too small for swap (%llu bytes)", path,
			    (unsigned long long)size);
		return -1;
	}
	hdr = calloc(1, page_size);
	if (!hdr) {
		note_error("calloc", errno);
		return -1;
	}
	/*
	 * struct swap_header: 1024 bytes bootbits, then __u32 version,
	 * last_page, nr_badpages, 16 bytes uuid, 16 bytes label, ... and
	 * the 10-byte magic at the very end of the first page.
	 */
	v = 1;
	memcpy(hdr + 1024, &v, 4);
	v = (uint32_t)(pages - 1);
	memcpy(hdr + 1028, &v, 4);
	v = 0;
	memcpy(hdr + 1032, &v, 4);
	for (i = 0; i < 16; i++)
		hdr[1036 + i] = (unsigned char)rng_next(&hdr_rng);
	snprintf((char *)hdr + 1052, 16, "mmstress");
	memcpy(hdr + page_size - 10, "SWAPSPACE2", 10);
	if (pwrite(fd, hdr, page_size, 0) != (ssize_t)page_size)
		note_errorf("write swap header to %s: %s", path,
			    strerror(errno));
	else if (fsync(fd))
		note_errorf("fsync %s: %s", path, strerror(errno));
	else
		ret = 0;
	free(hdr);
	return ret;
}

static int mkswap_dev(const char *path)
{
	uint64_t size = 0;
	int fd, ret;

	fd = open(path, O_RDWR | O_EXCL | O_CLOEXEC);
	if (fd < 0) {
		note_errorf("open %s for mkswap: %s", path, strerror(errno));
		return -1;
	}
	if (ioctl(fd, BLKGETSIZE64, &size)) {
		note_errorf("BLKGETSIZE64 %s: %s (not a block device?)", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	ret = write_header(fd, path, size);
	close(fd);
	if (!ret)
		stat_add(K_MKSWAP, 1);
	return ret;
}

static int fs_refuses_swapfile(const char *path)
{
	char dir[PATH_MAX];
	struct statfs sfs;

	snprintf(dir, sizeof(dir), "%s", path);
	if (statfs(dirname(dir), &sfs)) {
		note_errorf("statfs for %s: %s", path, strerror(errno));
		return 1;
	}
	if ((unsigned long)sfs.f_type == (unsigned long)TMPFS_MAGIC ||
	    (unsigned long)sfs.f_type == (unsigned long)RAMFS_MAGIC) {
		note_errorf("%s is on %s, which cannot hold swap files; mount a disk filesystem (e.g. ext4) there",
			    path, (unsigned long)sfs.f_type ==
			    (unsigned long)TMPFS_MAGIC ? "tmpfs" : "ramfs");
		return 1;
	}
	return 0;
}

/* Give the file all its blocks: fallocate, or zeros where unsupported. */
static int fill_swapfile(int fd, const struct swap_spec *sp, uint64_t size)
{
	uint64_t done;
	char *zero;
	ssize_t n;

	if (ftruncate(fd, 0)) {
		note_errorf("truncate %s: %s", sp->path, strerror(errno));
		return -1;
	}
	if (!fallocate(fd, 0, 0, (off_t)size))
		return 0;
	if (errno != EOPNOTSUPP && errno != ENOSYS) {
		note_errorf("fallocate %s: %s", sp->path, strerror(errno));
		return -1;
	}
	/* No fallocate: write zeros, swap files must not have holes. */
	zero = calloc(1, 1 << 20);
	if (!zero) {
		note_error("calloc", errno);
		return -1;
	}
	for (done = 0; done < size; done += (uint64_t)n) {
		n = write(fd, zero, 1 << 20);
		if (n <= 0) {
			note_errorf("write zeros to %s: %s", sp->path,
				    strerror(errno));
			free(zero);
			return -1;
		}
	}
	free(zero);
	return 0;
}

static int make_swapfile(const struct swap_spec *sp)
{
	uint64_t size = (uint64_t)sp->size_mb << 20;
	struct stat st;
	int fd, ret;

	if (fs_refuses_swapfile(sp->path))
		return -1;
	fd = open(sp->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		note_errorf("create %s: %s", sp->path, strerror(errno));
		return -1;
	}
	/*
	 * A file made ahead of the storm (storm-run writes them before the
	 * memory hogs start) is reused when it has every block: only the
	 * header is rewritten.
	 */
	if (fstat(fd, &st) || (uint64_t)st.st_size != size ||
	    (uint64_t)st.st_blocks * 512 < size) {
		if (fill_swapfile(fd, sp, size)) {
			close(fd);
			return -1;
		}
	}
	ret = write_header(fd, sp->path, size);
	/*
	 * Written back and dropped from the page cache now, so the zeros
	 * do not compete with the storm for the guest's little memory.
	 */
	if (!ret && fsync(fd)) {
		note_errorf("fsync %s: %s", sp->path, strerror(errno));
		ret = -1;
	}
	if (!ret)
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	if (!ret)
		stat_add(K_MKSWAP, 1);
	return ret;
}

static int do_swapon(struct area *a)
{
	int flags = 0;

	if (a->spec->prio >= 0)
		flags = SWAP_FLAG_PREFER |
			(a->spec->prio & SWAP_FLAG_PRIO_MASK);
	if (swapon(a->spec->path, flags)) {
		stat_add(K_SWAPON_FAIL, 1);
		if (errno == EBUSY && proc_swaps(a->spec->path, NULL, NULL)) {
			a->on = 1;	/* someone else swapped it on */
			note_transient();
		} else if (errno == EINVAL) {
			note_errorf("swapon %s: %s (no valid swap header? try --mkswap)",
				    a->spec->path, strerror(errno));
		} else {
			char what[300];

			snprintf(what, sizeof(what), "swapon %s", a->spec->path);
			note_error(what, errno);
		}
		return -1;
	}
	a->on = 1;
	stat_add(K_SWAPON, 1);
	return 0;
}

/* Would swapping this area off fit without running out of memory? */
static int swapoff_fits(struct area *areas, int n, int idx, int final)
{
	long size, used, avail, others = 0;
	int i, active = 0;

	if (!proc_swaps(areas[idx].spec->path, &size, &used))
		return 1;	/* not listed: swapoff will just fail */
	avail = meminfo_kb("MemAvailable");
	if (avail < 0)
		avail = meminfo_kb("MemFree");
	for (i = 0; i < n; i++) {
		long s, u;

		if (i == idx || !areas[i].on)
			continue;
		if (proc_swaps(areas[i].spec->path, &s, &u)) {
			others += s - u;
			active++;
		}
	}
	if (!active && !final)
		/* The last area on: only now and then, and only if small. */
		return used < avail / 2;
	return used + used / 4 + 16384 < avail / 2 + others;
}

static int do_swapoff(struct area *a)
{
	uint64_t t0 = now_ms(), dt;
	int err;

	if (!swapoff(a->spec->path)) {
		dt = now_ms() - t0;
		a->on = 0;
		stat_add(K_SWAPOFF, 1);
		stat_add(K_SWAPOFF_MS, dt);
		if (dt > stat_get(K_SWAPOFF_MAX_MS))
			stat_add(K_SWAPOFF_MAX_MS, dt - stat_get(K_SWAPOFF_MAX_MS));
		return 0;
	}
	err = errno;
	if (err == ENOMEM) {
		stat_add(K_SWAPOFF_ENOMEM, 1);
		note_transient();
	} else if (err == EBUSY || err == EINTR ||
		   (err == EINVAL && !proc_swaps(a->spec->path, NULL, NULL))) {
		/* Raced with someone else, or interrupted. */
		stat_add(K_SWAPOFF_FAIL, 1);
		note_transient();
		if (err == EINVAL)
			a->on = 0;
	} else {
		char what[300];

		stat_add(K_SWAPOFF_FAIL, 1);
		snprintf(what, sizeof(what), "swapoff %s", a->spec->path);
		note_error(what, err);
	}
	return -1;
}

#define FILL_CHUNK	(1UL << 20)

/*
 * Is the area full?  Within 1/64 of its size: under a storm the other
 * modes' swap-ins free slots as the filler takes them, so the area flips
 * between completely full (the kernel takes it off the allocation lists)
 * and a few slots free; a check between two chunks rarely sees the moment.
 */
static int area_full(const char *path)
{
	long size, used;

	return proc_swaps(path, &size, &used) && size > 0 &&
	       used + size / 64 >= size;
}

/*
 * The kernel keeps per-CPU caches of swap slots while free swap is more
 * than 320 pages a CPU (mm/swap_slots.c): slots taken in batches of 64 and
 * freed in batches.  A full area's swapoff drains them first, which frees
 * some of the area's slots again; with less free swap than that, slots are
 * taken and freed one by one, and a full area stays full to its swapoff's
 * end.  (A little below the kernel's threshold: pages in flight.)
 */
static int slot_caches_on(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN), free_kb;

	free_kb = meminfo_kb("SwapFree");
	return free_kb < 0 || free_kb > (cpus > 0 ? cpus : 1) * 1024;
}

static long swap_total_kb(void)
{
	long kb = meminfo_kb("SwapTotal");

	return kb > 0 ? kb : 0;
}

/*
 * While the area is full and its swapoffs are being cut short: free one
 * page of the last chunk (its swap slot with it) and page another out
 * (taking a slot), until the parent writes to go.
 */
static void flip_until_go(char *chunk, int go)
{
	size_t pages = FILL_CHUNK / page_size, k = 0;
	char c;

	if (fcntl(go, F_SETFL, O_NONBLOCK))
		return;
	while (read(go, &c, 1) < 0 && errno == EAGAIN && !should_stop()) {
		char *q = chunk + (k++ % pages) * page_size;

		if (madvise(q, page_size, MADV_DONTNEED)) {
			note_transient();
			continue;
		}
		*(volatile char *)q = (char)k;
		if (madvise(q, page_size, MADV_PAGEOUT)) {
			note_transient();
			continue;
		}
		stat_add(K_FLIPS, 1);
	}
	_exit(0);	/* told to go (or to stop) */
}

/*
 * The filler child: anonymous memory written and paged out, chunk by
 * chunk, until the area is full or twice its size went out, then on into
 * the other areas until the slot caches are off (or half as much again as
 * all swap went out); then it says so ('F' full, 'N' not), flips pages on
 * the full area while its swapoffs are cut short, and exits when told,
 * freeing every entry at once.
 */
static void filler(const char *path, long size_kb, int ready, int go)
{
	unsigned long limit = (unsigned long)size_kb * 2048 + (16UL << 20), done;
	char answer = 'N', *p = MAP_FAILED;

	for (done = 0; done < limit && !should_stop(); done += FILL_CHUNK) {
		p = mmap(NULL, FILL_CHUNK, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			break;
		memset(p, 0x5a, FILL_CHUNK);
		if (madvise(p, FILL_CHUNK, MADV_PAGEOUT))
			break;
		if (answer != 'F' && area_full(path)) {
			answer = 'F';
			/* Then the rest of swap, until the slot caches are off. */
			limit = done + (unsigned long)swap_total_kb() * 1536 +
				(16UL << 20);
		}
		if (answer == 'F' && !slot_caches_on()) {
			stat_add(K_FILL_UNCACHED, 1);
			break;
		}
	}
	if (write(ready, &answer, 1) != 1)
		_exit(1);
	if (answer == 'F' && p != MAP_FAILED)
		flip_until_go(p, go);
	if (read(go, &answer, 1) < 0)
		_exit(1);
	_exit(0);
}

/* The active area the kernel allocates from first: the highest priority. */
static int highest_active(struct area *areas, int n)
{
	int i, best = -1;

	for (i = 0; i < n; i++) {
		if (!areas[i].on)
			continue;
		if (best < 0 || areas[i].spec->prio > areas[best].spec->prio)
			best = i;
	}
	return best;
}

#define INTERRUPTED	50

static void on_alarm(int sig)
{
	(void)sig;
}

/*
 * Swapoffs of a full area cut short (see the top of the file): a timer
 * signal every 100 us, with no SA_RESTART, makes try_to_unuse() give up
 * with EINTR.  It looks for a signal only between two mms of the mmlist,
 * and the filler's mm, the newest there, comes first and holds most of the
 * area: the signal must be pending before the walk starts, so the timer
 * is short, and periodic (one that fires while the task waits to enter
 * swapoff() is handled in user space; the next lands inside).  One that
 * finishes first (nothing left on the area) is a swapoff like any other.
 * Nonzero when the area went off.
 */
static int interrupted_swapoffs(struct area *a)
{
	struct itimerval it = { { 0, 100 }, { 0, 100 } }, off = { 0 };
	struct sigaction sa, old;
	int k, err, gone = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, &old))
		return 0;
	for (k = 0; k < INTERRUPTED && !should_stop(); k++) {
		setitimer(ITIMER_REAL, &it, NULL);
		if (!swapoff(a->spec->path)) {
			a->on = 0;
			stat_add(K_SWAPOFF, 1);
			gone = 1;
			break;
		}
		err = errno;
		setitimer(ITIMER_REAL, &off, NULL);
		if (err == EINTR) {
			long size, used;

			stat_add(K_SWAPOFF_EINTR, 1);
			/* Put back with not one slot free. */
			if (proc_swaps(a->spec->path, &size, &used) &&
			    used >= size)
				stat_add(K_EINTR_STILL_FULL, 1);
		} else if (err == ENOMEM || err == EBUSY) {
			note_transient();
		} else {
			char what[300];

			snprintf(what, sizeof(what), "swapoff %s (interrupted)",
				 a->spec->path);
			note_error(what, err);
			break;
		}
	}
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	return gone;
}

/* One fill cycle: fill area i, then free the filler's entries and swapoff. */
static void fill_and_swapoff(struct area *areas, int i)
{
	int ready[2], go[2], status, full;
	uint64_t t0 = now_ms();
	long size, used;
	char answer = 'N';
	pid_t pid;

	if (!proc_swaps(areas[i].spec->path, &size, &used) || pipe(ready))
		return;
	if (pipe(go)) {
		close(ready[0]);
		close(ready[1]);
		return;
	}
	stat_add(K_FILLS, 1);
	pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		filler(areas[i].spec->path, size, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	if (pid > 0 && read(ready[0], &answer, 1) != 1)
		answer = 'N';
	stat_add(K_FILL_MS, now_ms() - t0);
	full = answer == 'F' && area_full(areas[i].spec->path);
	if (full)
		stat_add(K_FILL_FULL, 1);
	if (full && !should_stop() && interrupted_swapoffs(&areas[i]))
		full = 0;	/* it went off: nothing left for the swapoff */
	/* Go: the filler's exit frees its entries as the swapoff starts. */
	if (write(go[1], "g", 1) != 1)
		note_transient();
	close(go[1]);
	close(ready[0]);
	if (full && !should_stop()) {
		stat_add(K_SWAPOFF_FULL, 1);
		do_swapoff(&areas[i]);
	}
	if (pid > 0)
		waitpid(pid, &status, 0);
}

/* Final swapoff in a child so that a slow one can be killed. */
static void final_swapoff(struct area *areas, int n, double timeout)
{
	uint64_t end = now_ms() + (uint64_t)(timeout * 1000);
	int i, status;
	pid_t pid;

	for (i = 0; i < n; i++) {
		if (!areas[i].on)
			continue;
		if (now_ms() >= end || !swapoff_fits(areas, n, i, 1)) {
			stat_add(K_FINAL_LEFT_ON, 1);
			continue;
		}
		pid = fork();
		if (pid == 0)
			_exit(swapoff(areas[i].spec->path) ? 1 : 0);
		if (pid < 0) {
			stat_add(K_FINAL_LEFT_ON, 1);
			continue;
		}
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (now_ms() >= end) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			sleep_ms(20);
		}
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
		    !proc_swaps(areas[i].spec->path, NULL, NULL)) {
			areas[i].on = 0;
			stat_add(K_FINAL_SWAPOFF, 1);
		} else {
			stat_add(K_FINAL_LEFT_ON, 1);
		}
	}
}

int mode_swap(struct opts *o)
{
	struct area areas[MMSTRESS_MAX_SWAP];
	int n = o->nswap, i, j, nr_on = 0;
	unsigned long cycle = 0;
	struct rng rng;

	if (!n) {
		note_errorf("swap needs at least one --dev PATH:PRIO or --file PATH:SIZE_MB:PRIO");
		return report(o->mode, keys, K_NR);
	}
	rng_init(&rng, o->seed, 0);
	rng_init(&hdr_rng, o->seed, 1);
	memset(areas, 0, sizeof(areas));
	stat_add(K_AREAS, (unsigned long)n);

	/* Set up: headers, then swapon everything. */
	for (i = 0; i < n; i++) {
		const struct swap_spec *sp = &o->swap[i];

		areas[i].spec = sp;
		if (proc_swaps(sp->path, NULL, NULL)) {
			areas[i].on = 1;	/* already active: keep it */
			areas[i].usable = 1;
			continue;
		}
		if (sp->is_file) {
			if (make_swapfile(sp))
				continue;
			areas[i].created = 1;
		} else if (o->mkswap && mkswap_dev(sp->path)) {
			continue;
		}
		if (!do_swapon(&areas[i]))
			areas[i].usable = 1;
	}
	for (i = 0; i < n; i++)
		nr_on += areas[i].on;
	if (!nr_on) {
		if (!sh->errors)
			note_errorf("no swap area could be activated");
		return report(o->mode, keys, K_NR);
	}

	faults_begin();
	while (!should_stop()) {
		long ms = o->interval_ms / 2 +
			  (long)rng_below(&rng, (uint64_t)o->interval_ms + 1);

		sleep_ms(ms);
		if (should_stop())
			break;
		for (nr_on = 0, j = 0; j < n; j++)
			nr_on += areas[j].on;
		/* A fill needs another area on to take the swap it leaves. */
		if (o->fill && nr_on > 1 && ++cycle % o->fill == 0) {
			i = highest_active(areas, n);
			/* Others' pages on it must fit elsewhere. */
			if (i >= 0 && swapoff_fits(areas, n, i, 0))
				fill_and_swapoff(areas, i);
			continue;
		}
		i = (int)rng_below(&rng, (uint64_t)n);
		if (!areas[i].usable)
			continue;
		if (!areas[i].on) {
			do_swapon(&areas[i]);
			continue;
		}
		for (nr_on = 0, j = 0; j < n; j++)
			nr_on += areas[j].on;
		if (nr_on == 1 && !rng_chance(&rng, 12)) {
			stat_add(K_SWAPOFF_SKIPPED, 1);
			continue;
		}
		if (!swapoff_fits(areas, n, i, 0)) {
			stat_add(K_SWAPOFF_SKIPPED, 1);
			continue;
		}
		do_swapoff(&areas[i]);
	}

	if (o->keep_on) {
		for (i = 0; i < n; i++)
			if (areas[i].on)
				stat_add(K_FINAL_LEFT_ON, 1);
	} else {
		final_swapoff(areas, n, o->final_timeout);
	}
	for (i = 0; i < n; i++)
		if (areas[i].created && !areas[i].on)
			unlink(areas[i].spec->path);
	return report(o->mode, keys, K_NR);
}
