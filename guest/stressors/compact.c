// SPDX-License-Identifier: GPL-2.0
/*
 * compact: memory compaction racing the storm.  Every interval/2 ..
 * 1.5 * interval ms, write 1 to /proc/sys/vm/compact_memory (all zones),
 * and every fourth time also to /sys/devices/system/node/node0/compact
 * where the kernel has NUMA: compaction isolates and migrates pages of
 * other processes under their rmap and page table locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>

#include "mmstress.h"

enum {
	K_COMPACTIONS, K_NODE_COMPACTIONS, K_COMPACT_MS, K_COMPACT_MAX_MS,
	K_MIGRATED, K_MIGRATE_FAIL, K_VMSTAT_EVENTS, K_NR
};

static const char *const keys[K_NR] = {
	"compactions", "node_compactions", "compact_ms", "compact_max_ms",
	"migrated", "migrate_fail", "vmstat_events",
};

#define COMPACT_MEMORY	"/proc/sys/vm/compact_memory"
#define NODE_COMPACT	"/sys/devices/system/node/node0/compact"

static int compact(const char *path, int key)
{
	uint64_t t0 = now_ms(), ms;
	int err;

	err = sys_write_str(path, "1");
	ms = now_ms() - t0;
	if (err == -EINTR) {
		note_transient();	/* stopped by SIGTERM */
		return 0;
	}
	if (err) {
		note_errorf("write 1 to %s: %s%s", path, errname(-err),
			    err == -EACCES || err == -EPERM ?
			    " (needs root)" : "");
		return -1;
	}
	stat_add(key, 1);
	stat_add(K_COMPACT_MS, (unsigned long)ms);
	stat_max(K_COMPACT_MAX_MS, (unsigned long)ms);
	return 0;
}

int mode_compact(struct opts *o)
{
	long interval = o->interval_ms, ok0, fail0, v;
	int node = !access(NODE_COMPACT, F_OK), n = 0;
	struct rng rng;

	if (access(COMPACT_MEMORY, F_OK)) {
		note_missing(COMPACT_MEMORY, errno, "CONFIG_COMPACTION");
		return report(o->mode, keys, K_NR);
	}
	rng_init(&rng, o->seed, 0);
	ok0 = vmstat_get("pgmigrate_success");
	fail0 = vmstat_get("pgmigrate_fail");
	/* Without CONFIG_VM_EVENT_COUNTERS migrated stays 0. */
	if (ok0 >= 0)
		stat_add(K_VMSTAT_EVENTS, 1);
	faults_begin();
	while (!should_stop()) {
		if (compact(COMPACT_MEMORY, K_COMPACTIONS))
			break;
		if (node && ++n % 4 == 0 &&
		    compact(NODE_COMPACT, K_NODE_COMPACTIONS))
			break;
		sleep_ms(interval / 2 + (long)rng_below(&rng,
						       (uint64_t)interval + 1));
	}
	v = vmstat_get("pgmigrate_success");
	if (ok0 >= 0 && v > ok0)
		stat_add(K_MIGRATED, (unsigned long)(v - ok0));
	v = vmstat_get("pgmigrate_fail");
	if (fail0 >= 0 && v > fail0)
		stat_add(K_MIGRATE_FAIL, (unsigned long)(v - fail0));
	return report(o->mode, keys, K_NR);
}
