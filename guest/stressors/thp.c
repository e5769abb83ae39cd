// SPDX-License-Identifier: GPL-2.0
/*
 * thp: transparent huge pages under the swap storm.  Workers keep a few
 * PMD-aligned MADV_HUGEPAGE regions, fault them in as huge pages, and
 * split them again: partial munmap, mprotect of a sub-range, MADV_DONTNEED
 * of a few small pages, mremap to a misaligned address; MADV_PAGEOUT swaps
 * huge pages out whole (THP_SWAP) and MADV_COLLAPSE / khugepaged (tuned to
 * scan fast through sysfs) put them together again.  The first word of
 * every small page carries a pattern that is checked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_WORKERS, K_MB, K_TUNED, K_MAPS, K_MUNMAPS, K_MUNMAP_PARTIAL,
	K_MPROTECTS, K_DONTNEED, K_MREMAPS, K_MREMAP_MISALIGNED, K_PAGEOUTS,
	K_COLLAPSES, K_COLLAPSE_FAIL, K_TOUCHES, K_CORRUPTIONS,
	K_ANON_HUGE_KB_MAX, K_KHUGEPAGED_COLLAPSED, K_KHUGEPAGED_SCANS,
	K_VMSTAT_EVENTS, K_THP_FAULT_ALLOC, K_THP_COLLAPSE_ALLOC, K_THP_SPLIT_PMD,
	K_THP_SPLIT_PAGE, K_THP_SWPOUT, K_NR
};

static const char *const keys[K_NR] = {
	"workers", "mb", "tuned", "maps", "munmaps", "munmap_partial",
	"mprotects", "dontneed", "mremaps", "mremap_misaligned", "pageouts",
	"collapses", "collapse_fail", "touches", "corruptions",
	"anon_huge_kb_max", "khugepaged_collapsed", "khugepaged_scans",
	"vmstat_events", "thp_fault_alloc", "thp_collapse_alloc", "thp_split_pmd",
	"thp_split_page", "thp_swpout",
};

/* /proc/vmstat counters reported as deltas over the run. */
static const struct {
	const char *name;
	int key;
} vmstat_keys[] = {
	{ "thp_fault_alloc", K_THP_FAULT_ALLOC },
	{ "thp_collapse_alloc", K_THP_COLLAPSE_ALLOC },
	{ "thp_split_pmd", K_THP_SPLIT_PMD },
	{ "thp_split_page", K_THP_SPLIT_PAGE },
	{ "thp_swpout", K_THP_SWPOUT },
};

#define NR_VMSTAT	(sizeof(vmstat_keys) / sizeof(vmstat_keys[0]))

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif

#define THP_DIR		"/sys/kernel/mm/transparent_hugepage"
#define KH_DIR		THP_DIR "/khugepaged"
#define MAX_REGIONS	4
#define MAX_HUGE	4	/* huge pages per region */

enum { P_UNMAPPED, P_PATTERN, P_ZERO };

struct tregion {
	char *base;
	size_t npages;		/* small pages */
	uint8_t *state;
	int holes;
	uint64_t salt;
};

struct thp_arg {
	size_t budget;		/* small pages per worker */
	size_t hpage;		/* bytes */
	uint64_t seed;
};

static struct tregion regs[MAX_REGIONS];
static size_t used, hpages;	/* hpages: small pages per huge page */
static int worker_idx;

static uint64_t word_of(const struct tregion *r, size_t i)
{
	return r->salt ^ (i * 0x9e3779b97f4a7c15ULL) ^ 1;
}

static void touch(struct tregion *r, size_t i)
{
	uint64_t *w = (uint64_t *)(r->base + i * page_size), want = 0;

	if (r->state[i] == P_UNMAPPED)
		return;
	if (r->state[i] == P_PATTERN)
		want = word_of(r, i);
	stat_add(K_TOUCHES, 1);
	if (*(volatile uint64_t *)w != want) {
		stat_add(K_CORRUPTIONS, 1);
		note_errorf("thp worker %d: data corruption at page %zu: got %#llx want %#llx",
			    worker_idx, i, (unsigned long long)*w,
			    (unsigned long long)want);
	}
	*w = word_of(r, i);
	r->state[i] = P_PATTERN;
}

/* A page-aligned sub-range of mapped pages, or 0 if there is none here. */
static size_t pick_range(struct tregion *r, struct rng *rng, size_t max,
			 size_t *first)
{
	size_t f = rng_below(rng, r->npages), n = 0;

	while (f + n < r->npages && n < max && r->state[f + n] != P_UNMAPPED)
		n++;
	*first = f;
	return n ? 1 + rng_below(rng, n) : 0;
}

static void drop(struct tregion *r)
{
	size_t i;

	for (i = 0; i < r->npages; i++)
		touch(r, i);
	/* Holes are already unmapped: munmap of the whole span is fine. */
	if (munmap(r->base, r->npages * page_size))
		note_error("munmap (thp)", errno);
	used -= r->npages;
	free(r->state);
	memset(r, 0, sizeof(*r));
	stat_add(K_MUNMAPS, 1);
}

/* An address aligned to @align with @len bytes of room (PROT_NONE). */
static char *reserve(size_t len, size_t align, size_t *rlen)
{
	char *p;

	*rlen = len + align;
	p = mmap(NULL, *rlen, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return p;
}

static int new_region(struct rng *rng, const struct thp_arg *arg)
{
	size_t k, len, rlen, i;
	struct tregion *r = NULL;
	char *res, *base;

	for (i = 0; i < MAX_REGIONS && !r; i++)
		if (!regs[i].base)
			r = &regs[i];
	if (!r || used + hpages > arg->budget)
		return 0;
	k = 1 + rng_below(rng, MAX_HUGE);
	while (k > 1 && used + k * hpages > arg->budget)
		k--;
	len = k * arg->hpage;
	res = reserve(len, arg->hpage, &rlen);
	if (res == MAP_FAILED)
		goto transient;
	base = (char *)(((uintptr_t)res + arg->hpage - 1) &
			~(uintptr_t)(arg->hpage - 1));
	base = mmap(base, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (base == MAP_FAILED) {
		munmap(res, rlen);
		goto transient;
	}
	if (base > res)
		munmap(res, (size_t)(base - res));
	if (res + rlen > base + len)
		munmap(base + len, (size_t)(res + rlen - (base + len)));
	if (madvise(base, len, MADV_HUGEPAGE)) {
		if (errno == EINVAL)
			note_missing("madvise(MADV_HUGEPAGE)", errno,
				     "CONFIG_TRANSPARENT_HUGEPAGE");
		else
			note_error("madvise(MADV_HUGEPAGE)", errno);
		munmap(base, len);
		return -1;
	}
	r->state = calloc(len / page_size, 1);
	if (!r->state) {
		munmap(base, len);
		goto transient;
	}
	r->base = base;
	r->npages = len / page_size;
	r->salt = rng_next(rng);
	r->holes = 0;
	used += r->npages;
	for (i = 0; i < r->npages; i++)
		r->state[i] = P_ZERO;
	for (i = 0; i < r->npages; i++)
		touch(r, i);
	stat_add(K_MAPS, 1);
	return 0;
transient:
	if (errno == ENOMEM || errno == EAGAIN) {
		note_transient();
		return 0;
	}
	note_error("mmap (thp)", errno);
	return -1;
}

static int split_munmap(struct tregion *r, struct rng *rng)
{
	size_t first, n, i;

	n = pick_range(r, rng, hpages / 4, &first);
	if (!n)
		return 0;
	if (munmap(r->base + first * page_size, n * page_size)) {
		note_error("munmap (thp, partial)", errno);
		return -1;
	}
	for (i = first; i < first + n; i++)
		r->state[i] = P_UNMAPPED;
	r->holes = 1;
	stat_add(K_MUNMAP_PARTIAL, 1);
	return 0;
}

static int split_mprotect(struct tregion *r, struct rng *rng)
{
	size_t first, n, i;
	char *p;

	n = pick_range(r, rng, hpages, &first);
	if (!n)
		return 0;
	p = r->base + first * page_size;
	if (mprotect(p, n * page_size, PROT_READ)) {
		if (errno == ENOMEM) {
			note_transient();
			return 0;
		}
		note_error("mprotect (thp)", errno);
		return -1;
	}
	for (i = first; i < first + n; i++) {
		uint64_t got = *(volatile uint64_t *)(r->base + i * page_size);
		uint64_t want = r->state[i] == P_PATTERN ? word_of(r, i) : 0;

		stat_add(K_TOUCHES, 1);
		if (got != want) {
			stat_add(K_CORRUPTIONS, 1);
			note_errorf("thp worker %d: data corruption at read-only page %zu: got %#llx want %#llx",
				    worker_idx, i, (unsigned long long)got,
				    (unsigned long long)want);
		}
	}
	if (mprotect(p, n * page_size, PROT_READ | PROT_WRITE)) {
		note_error("mprotect (thp, restore)", errno);
		return -1;
	}
	stat_add(K_MPROTECTS, 1);
	return 0;
}

static int split_dontneed(struct tregion *r, struct rng *rng)
{
	size_t first, n, i;

	n = pick_range(r, rng, 8, &first);
	if (!n)
		return 0;
	if (madvise(r->base + first * page_size, n * page_size,
		    MADV_DONTNEED)) {
		note_error("madvise(MADV_DONTNEED)", errno);
		return -1;
	}
	for (i = first; i < first + n; i++)
		r->state[i] = P_ZERO;
	stat_add(K_DONTNEED, 1);
	return 0;
}

/* Move the whole region, half of the time to a misaligned address. */
static int move(struct tregion *r, struct rng *rng, size_t hpage)
{
	size_t len = r->npages * page_size, rlen, off;
	char *res, *dst, *p;

	if (r->holes)
		return 0;
	res = reserve(len + hpage, hpage, &rlen);
	if (res == MAP_FAILED) {
		note_transient();
		return 0;
	}
	dst = (char *)(((uintptr_t)res + hpage - 1) & ~(uintptr_t)(hpage - 1));
	off = rng_chance(rng, 50) ? page_size * (1 + rng_below(rng, 4)) : 0;
	dst += off;
	p = mremap(r->base, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
	if (p == MAP_FAILED) {
		munmap(res, rlen);
		if (errno == ENOMEM || errno == EAGAIN) {
			note_transient();
			return 0;
		}
		note_error("mremap (thp)", errno);
		return -1;
	}
	if (dst > res)
		munmap(res, (size_t)(dst - res));
	if (res + rlen > dst + len)
		munmap(dst + len, (size_t)(res + rlen - (dst + len)));
	r->base = dst;
	stat_add(K_MREMAPS, 1);
	if (off)
		stat_add(K_MREMAP_MISALIGNED, 1);
	return 0;
}

static int pageout(struct tregion *r)
{
	if (!madvise(r->base, r->npages * page_size, MADV_PAGEOUT) ||
	    (errno == ENOMEM && r->holes)) {
		stat_add(K_PAGEOUTS, 1);
		return 0;
	}
	if (errno == EINVAL)
		note_missing("madvise(MADV_PAGEOUT)", errno,
			     "Linux >= 5.4");
	else
		note_error("madvise(MADV_PAGEOUT)", errno);
	return -1;
}

static void collapse(struct tregion *r)
{
	/* Fails for many good reasons (holes, misaligned, swapped pages). */
	if (!madvise(r->base, r->npages * page_size, MADV_COLLAPSE)) {
		stat_add(K_COLLAPSES, 1);
		return;
	}
	stat_add(K_COLLAPSE_FAIL, 1);
	note_transient();
}

static int thp_worker(int idx, void *varg)
{
	struct thp_arg *arg = varg;
	uint64_t next_sample = 0;
	struct tregion *r;
	struct rng rng;
	int op, err = 0, i;
	size_t j, n;
	long kb;

	worker_idx = idx;
	rng_init(&rng, arg->seed, (uint64_t)idx + 1);
	while (!should_stop() && !err) {
		if (idx == 0 && now_ms() >= next_sample) {
			kb = meminfo_kb("AnonHugePages");
			if (kb > 0)
				stat_max(K_ANON_HUGE_KB_MAX, (unsigned long)kb);
			next_sample = now_ms() + 200;
		}
		r = &regs[rng_below(&rng, MAX_REGIONS)];
		if (!r->base) {
			err = new_region(&rng, arg);
			continue;
		}
		op = (int)rng_below(&rng, 12);
		switch (op) {
		case 0:
			err = split_munmap(r, &rng);
			break;
		case 1:
		case 2:
			err = split_mprotect(r, &rng);
			break;
		case 3:
			err = split_dontneed(r, &rng);
			break;
		case 4:
			err = move(r, &rng, arg->hpage);
			break;
		case 5:
		case 6:
			err = pageout(r);
			break;
		case 7:
			collapse(r);
			break;
		case 8:
			drop(r);
			break;
		default:
			j = rng_below(&rng, r->npages);
			n = 1 + rng_below(&rng, 64);
			for (; j < r->npages && n; j++, n--)
				touch(r, j);
			break;
		}
		if (rng_chance(&rng, 20))
			sleep_ms(1 + (long)rng_below(&rng, 5));
	}
	for (i = 0; i < MAX_REGIONS; i++)
		if (regs[i].base)
			drop(&regs[i]);
	return err ? 1 : 0;
}

/* The bracketed choice of a THP sysfs file: "always [madvise] never". */
static int read_choice(const char *path, char *buf, size_t len)
{
	char line[128], *lb, *rb;
	ssize_t n = sys_read_buf(path, line, sizeof(line));

	if (n < 0)
		return (int)n;
	if (n == 0)
		return -EIO;
	lb = strchr(line, '[');
	rb = lb ? strchr(lb, ']') : NULL;
	if (!rb || (size_t)(rb - lb) >= len)
		return -EIO;
	memcpy(buf, lb + 1, (size_t)(rb - lb - 1));
	buf[rb - lb - 1] = '\0';
	return 0;
}

/*
 * Kernels with less than 512 MiB of RAM start with THP off ("never", and
 * no khugepaged); the storm guest has 256 MiB.  Switch "never" to
 * "madvise" for the run.  Returns 1 if changed.  defrag is left as it is
 * (also "never" there: faults do not compact directly, the compact mode
 * and khugepaged make the huge pages).
 */
static int choice_set(const char *path, char *saved, size_t len)
{
	int err;

	err = read_choice(path, saved, len);
	if (err) {
		note_errorf("read %s: %s", path, errname(-err));
		return 0;
	}
	if (strcmp(saved, "never"))
		return 0;
	err = sys_write_str(path, "madvise");
	if (err == -EACCES || err == -EPERM)
		return 0;
	if (err) {
		note_errorf("write madvise to %s: %s", path, errname(-err));
		return 0;
	}
	return 1;
}

static void choice_restore(const char *path, const char *saved, int changed)
{
	if (changed && sys_write_str(path, saved))
		note_errorf("cannot restore %s to %s", path, saved);
}

int mode_thp(struct opts *o)
{
	char enabled[32] = "";
	int enabled_set = 0;
	long scans0 = -1, collapsed0 = -1;
	struct knob knobs[] = {
		{ KH_DIR "/scan_sleep_millisecs", 10, 0, 0 },
		{ KH_DIR "/alloc_sleep_millisecs", 10, 0, 0 },
		{ KH_DIR "/pages_to_scan", 4096, 0, 0 },
		{ KH_DIR "/max_ptes_swap", 256, 0, 0 },
	};
	long workers = o->workers > 0 ? o->workers : 1, mb, hpage, before[NR_VMSTAT], v;
	int nknobs = sizeof(knobs) / sizeof(knobs[0]);
	struct thp_arg arg;
	size_t i;

	mb = default_mb(o, 8, 4);
	stat_add(K_WORKERS, (unsigned long)workers);
	stat_add(K_MB, (unsigned long)mb);
	if (access(THP_DIR, F_OK)) {
		note_missing(THP_DIR, errno, "CONFIG_TRANSPARENT_HUGEPAGE");
		return report(o->mode, keys, K_NR);
	}
	if (sys_read_long(THP_DIR "/hpage_pmd_size", &hpage) || hpage <= 0)
		hpage = 2 * 1024 * 1024;
	if (!o->no_tune) {
		enabled_set = choice_set(THP_DIR "/enabled", enabled,
					 sizeof(enabled));
		stat_add(K_TUNED, (unsigned long)enabled_set);
		stat_add(K_TUNED, (unsigned long)knobs_set(knobs, nknobs,
					"CONFIG_TRANSPARENT_HUGEPAGE"));
	}
	for (i = 0; i < NR_VMSTAT; i++)
		before[i] = vmstat_get(vmstat_keys[i].name);
	/* Without CONFIG_VM_EVENT_COUNTERS the thp_* keys stay 0. */
	if (before[0] >= 0)
		stat_add(K_VMSTAT_EVENTS, 1);
	sys_read_long(KH_DIR "/full_scans", &scans0);
	sys_read_long(KH_DIR "/pages_collapsed", &collapsed0);

	hpages = (size_t)hpage / page_size;
	arg.hpage = (size_t)hpage;
	arg.budget = (size_t)mb * (1024 * 1024 / page_size) / (size_t)workers;
	arg.seed = o->seed;
	if (arg.budget < hpages)
		note_errorf("--mb %ld over %ld workers is less than one huge page (%ld KiB)",
			    mb, workers, hpage / 1024);
	if (!sh->errors)
		run_workers((int)workers, thp_worker, &arg);

	for (i = 0; i < NR_VMSTAT; i++) {
		v = vmstat_get(vmstat_keys[i].name);
		if (v >= 0 && before[i] >= 0 && v > before[i])
			stat_add(vmstat_keys[i].key, (unsigned long)(v - before[i]));
	}
	if (scans0 >= 0 && !sys_read_long(KH_DIR "/full_scans", &v) &&
	    v > scans0)
		stat_add(K_KHUGEPAGED_SCANS, (unsigned long)(v - scans0));
	if (collapsed0 >= 0 && !sys_read_long(KH_DIR "/pages_collapsed", &v) &&
	    v > collapsed0)
		stat_add(K_KHUGEPAGED_COLLAPSED,
			 (unsigned long)(v - collapsed0));
	knobs_restore(knobs, nknobs);
	choice_restore(THP_DIR "/enabled", enabled, enabled_set);
	return report(o->mode, keys, K_NR);
}
