// SPDX-License-Identifier: GPL-2.0
/*
 * mmlock - kernel-side half of the mm locking storm.
 *
 * debugfs interface (/sys/kernel/debug/mmlock/):
 *
 *   storm   write "start [pid ...]" or "stop"; read gives the state.
 *   stats   read gives one line of key=value pairs.
 *   inject  read lists the report kinds, one per line; write a kind
 *           (optionally followed by a number of seconds for the timed
 *           kinds) to trigger exactly one kernel report of that kind.
 *
 * The storm threads are:
 *
 *   mmlock-notif/N  pick a live user mm, register a no-op mmu notifier
 *                   on it (mm_take_all_locks under mmap_write_lock) and
 *                   unregister it again.
 *   mmlock-gup/N    pick a live user mm and fault its pages in remotely
 *                   with get_user_pages_remote() under mmap_read_lock,
 *                   a few pages at a time, dropping every page again.
 *   mmlock-walk/N   pick a live user mm and walk its page tables in
 *                   mm/rmap.c's lock order: mmap_read_lock, the VMA's
 *                   i_mmap_rwsem and anon_vma rwsem for read, then each
 *                   PTE table's lock, counting present and swap entries
 *                   (the ones swapoff's unuse_pte replaces under the same
 *                   lock).
 *   mmlock-pcpu/N   update per-CPU counters with preemption disabled and
 *                   check that no other task touched them meanwhile.
 *
 * See README.md for the details.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/ctype.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/mmu_notifier.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/nmi.h>
#include <linux/percpu.h>
#include <linux/pid.h>
#include <linux/random.h>
#include <linux/rcupdate.h>
#include <linux/rmap.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(5, 9, 0)
#error "mmlock needs Linux 5.9 or later (mmap_lock API, tsk-less GUP)"
#endif

static unsigned int notifier_threads = 1;
module_param(notifier_threads, uint, 0644);
MODULE_PARM_DESC(notifier_threads, "mmu notifier churn threads (default 1)");

static unsigned int gup_threads = 2;
module_param(gup_threads, uint, 0644);
MODULE_PARM_DESC(gup_threads, "remote GUP threads (default 2)");

static unsigned int walk_threads = 4;
module_param(walk_threads, uint, 0644);
MODULE_PARM_DESC(walk_threads, "rmap-order page-table walkers (default 4)");

static unsigned int walk_budget = 512;
module_param(walk_budget, uint, 0644);
MODULE_PARM_DESC(walk_budget, "PMD-sized steps walked per picked mm");

static unsigned int percpu_threads;
module_param(percpu_threads, uint, 0644);
MODULE_PARM_DESC(percpu_threads,
		 "per-CPU counter threads (default 0 = one per online CPU)");

static unsigned int notifier_delay_ms = 10;
module_param(notifier_delay_ms, uint, 0644);
MODULE_PARM_DESC(notifier_delay_ms, "sleep between notifier rounds");

static unsigned int gup_delay_ms = 5;
module_param(gup_delay_ms, uint, 0644);
MODULE_PARM_DESC(gup_delay_ms, "sleep between GUP rounds");

static unsigned int gup_budget = 1024;
module_param(gup_budget, uint, 0644);
MODULE_PARM_DESC(gup_budget, "pages faulted in per picked mm");

static unsigned int lockup_max_secs = 60;
module_param(lockup_max_secs, uint, 0644);
MODULE_PARM_DESC(lockup_max_secs,
		 "soft-lockup: longest spin if no soft lockup gets reported");

static unsigned int rcu_stall_secs = 30;
module_param(rcu_stall_secs, uint, 0644);
MODULE_PARM_DESC(rcu_stall_secs,
		 "rcu-stall: spin time, must exceed rcu_cpu_stall_timeout");

#define MMLOCK_MAX_PIDS		64
#define MMLOCK_MAX_THREADS	64
#define MMLOCK_GUP_CHUNK	16
#define MMLOCK_WALK_CHUNK	16	/* PMD steps per mmap_lock hold */

/* Statistics, kept per CPU so that every update is itself a per-CPU op. */
enum mmlock_stat {
	ST_MM_PICKED,
	ST_MM_GONE,
	ST_MM_NONE,
	ST_NOTIFIER_REGISTER,
	ST_NOTIFIER_UNREGISTER,
	ST_NOTIFIER_FAIL,
	ST_NOTIFIER_BUSY,
	ST_MMAP_WRITE_LOCKS,
	ST_GUP_CALLS,
	ST_GUP_PAGES,
	ST_GUP_FAULT,
	ST_GUP_TRANSIENT,
	ST_WALK_CHUNKS,
	ST_WALK_TABLES,
	ST_WALK_HUGE,
	ST_WALK_PRESENT,
	ST_WALK_SWAP,
	ST_PERCPU_UPDATES,
	ST_PERCPU_CHECKS,
	ST_ERRORS,
	ST_NR,
};

static const char * const mmlock_stat_names[ST_NR] = {
	[ST_MM_PICKED]		= "mm_picked",
	[ST_MM_GONE]		= "mm_gone",
	[ST_MM_NONE]		= "mm_none",
	[ST_NOTIFIER_REGISTER]	= "notifier_register",
	[ST_NOTIFIER_UNREGISTER] = "notifier_unregister",
	[ST_NOTIFIER_FAIL]	= "notifier_fail",
	[ST_NOTIFIER_BUSY]	= "notifier_busy",
	[ST_MMAP_WRITE_LOCKS]	= "mmap_write_locks",
	[ST_GUP_CALLS]		= "gup_calls",
	[ST_GUP_PAGES]		= "gup_pages",
	[ST_GUP_FAULT]		= "gup_fault",
	[ST_GUP_TRANSIENT]	= "gup_transient",
	[ST_WALK_CHUNKS]	= "walk_chunks",
	[ST_WALK_TABLES]	= "walk_tables",
	[ST_WALK_HUGE]		= "walk_huge",
	[ST_WALK_PRESENT]	= "walk_present",
	[ST_WALK_SWAP]		= "walk_swap",
	[ST_PERCPU_UPDATES]	= "percpu_updates",
	[ST_PERCPU_CHECKS]	= "percpu_checks",
	[ST_ERRORS]		= "errors",
};

struct mmlock_pcpu {
	unsigned long stat[ST_NR];
	/* Scratch state of the per-CPU checker. */
	struct task_struct *owner;
	unsigned long seq;
};

static DEFINE_PER_CPU(struct mmlock_pcpu, mmlock_pcpu);

static void stat_add(enum mmlock_stat s, unsigned long n)
{
	this_cpu_add(mmlock_pcpu.stat[s], n);
}

static void stat_inc(enum mmlock_stat s)
{
	stat_add(s, 1);
}

static unsigned long stat_sum(enum mmlock_stat s)
{
	unsigned long sum = 0;
	int cpu;

	for_each_possible_cpu(cpu)
		sum += per_cpu(mmlock_pcpu.stat[s], cpu);
	return sum;
}

/* Storm state, protected by storm_mutex. */
static DEFINE_MUTEX(storm_mutex);
static bool storm_running;
static struct task_struct *storm_tasks[MMLOCK_MAX_THREADS];
static unsigned int storm_nr_tasks;
static struct pid *storm_pids[MMLOCK_MAX_PIDS];
static unsigned int storm_nr_pids;
static atomic_t storm_generation = ATOMIC_INIT(0);

static const char *last_injected = "none";

static struct dentry *mmlock_dir;

/* Sleep interruptibly so that kthread_stop() cuts the nap short. */
static void storm_nap(unsigned int ms)
{
	if (!ms) {
		cond_resched();
		return;
	}
	schedule_timeout_interruptible(msecs_to_jiffies(ms));
}

static u32 rnd_below(u32 n)
{
	return n ? get_random_u32() % n : 0;
}

/*
 * Pick a live user mm and take a reference on mm_users.  With pids given,
 * one of those tasks; otherwise any user task with an mm except init.
 * The caller reads storm_pids without storm_mutex: they only change while
 * no storm thread is running.
 */
/* Take @p's mm (an mm_users reference) and drop the task reference. */
static struct mm_struct *storm_take_mm(struct task_struct *p)
{
	struct mm_struct *mm = get_task_mm(p);

	put_task_struct(p);
	if (!mm) {
		/* Exited between being picked and get_task_mm(). */
		stat_inc(ST_MM_GONE);
		return NULL;
	}
	stat_inc(ST_MM_PICKED);
	return mm;
}

static struct mm_struct *storm_pick_mm(void)
{
	struct task_struct *p, *victim = NULL;
	unsigned int n = 0, k;

	if (storm_nr_pids) {
		p = get_pid_task(storm_pids[rnd_below(storm_nr_pids)],
				 PIDTYPE_PID);
		if (!p) {
			stat_inc(ST_MM_GONE);
			return NULL;
		}
		return storm_take_mm(p);
	}

	rcu_read_lock();
	for_each_process(p) {
		if (!(p->flags & PF_KTHREAD) && !is_global_init(p) &&
		    READ_ONCE(p->mm))
			n++;
	}
	if (n) {
		k = rnd_below(n);
		for_each_process(p) {
			if ((p->flags & PF_KTHREAD) || is_global_init(p) ||
			    !READ_ONCE(p->mm))
				continue;
			if (k-- == 0) {
				victim = p;
				get_task_struct(victim);
				break;
			}
		}
	}
	rcu_read_unlock();

	if (!victim) {
		stat_inc(ST_MM_NONE);
		return NULL;
	}
	return storm_take_mm(victim);
}

/*
 * (a) mmu notifier churn: mm_take_all_locks() under mmap_write_lock.
 *
 * The write lock is taken with a few trylocks first and only then, on one
 * round in four, with a killable wait.  A writer queued on mmap_lock makes
 * every later reader wait behind it, and swapoff holds a big mm's
 * mmap_lock for read for as long as it takes to swap that mm back in
 * (tens of seconds under TCG): an uninterruptible wait here, or readers
 * stuck behind it, would look like a hung task in a clean storm.
 */
#ifdef MMLOCK_HAVE_MMAP_WRITE_TRYLOCK
#define mmlock_write_trylock(mm)	mmap_write_trylock(mm)
#else
/* The same rwsem trylock, minus the mmap_lock tracepoint. */
#define mmlock_write_trylock(mm)	down_write_trylock(&(mm)->mmap_lock)
#endif

static int notifier_lock(struct mm_struct *mm)
{
	int i;

	for (i = 0; i < 10; i++) {
		if (mmlock_write_trylock(mm))
			return 0;
		if (kthread_should_stop())
			return -EINTR;
		usleep_range(1000, 2000);
	}
	if (rnd_below(4))
		return -EBUSY;
	return mmap_write_lock_killable(mm);
}

#if IS_ENABLED(CONFIG_MMU_NOTIFIER)
static const struct mmu_notifier_ops mmlock_mn_ops = {
};

static void notifier_round(struct mm_struct *mm)
{
	struct mmu_notifier *mn;
	int ret;

	mn = kzalloc(sizeof(*mn), GFP_KERNEL);
	if (!mn) {
		stat_inc(ST_NOTIFIER_FAIL);
		return;
	}
	mn->ops = &mmlock_mn_ops;
	ret = notifier_lock(mm);
	if (ret) {
		stat_inc(ST_NOTIFIER_BUSY);
		kfree(mn);
		return;
	}
	/* What mmu_notifier_register() does, with our own locking. */
	ret = __mmu_notifier_register(mn, mm);
	mmap_write_unlock(mm);
	if (ret) {
		/* kthread_stop() makes mm_take_all_locks() see a signal. */
		if (ret != -EINTR || !kthread_should_stop())
			stat_inc(ST_NOTIFIER_FAIL);
		if (ret != -ENOMEM && ret != -EINTR)
			stat_inc(ST_ERRORS);
		kfree(mn);
		return;
	}
	stat_inc(ST_NOTIFIER_REGISTER);
	/* We hold mm_users, so ->release cannot run before this. */
	mmu_notifier_unregister(mn, mm);
	stat_inc(ST_NOTIFIER_UNREGISTER);
	kfree(mn);
}
#else
/* Without MMU notifiers, at least cycle the write side of mmap_lock. */
static void notifier_round(struct mm_struct *mm)
{
	if (notifier_lock(mm)) {
		stat_inc(ST_NOTIFIER_BUSY);
		return;
	}
	find_vma(mm, 0);
	mmap_write_unlock(mm);
	stat_inc(ST_MMAP_WRITE_LOCKS);
}
#endif

/*
 * The loop of a storm thread that works on one picked mm at a time: @round
 * on each, then a nap of *@delay_ms (a module parameter, read every time;
 * NULL: only cond_resched()).
 */
static int storm_each_mm(void (*round)(struct mm_struct *mm),
			 const unsigned int *delay_ms)
{
	struct mm_struct *mm;

	while (!kthread_should_stop()) {
		mm = storm_pick_mm();
		if (mm) {
			round(mm);
			mmput(mm);
		}
		storm_nap(delay_ms ? READ_ONCE(*delay_ms) : 0);
	}
	return 0;
}

static int notifier_thread(void *unused)
{
	return storm_each_mm(notifier_round, &notifier_delay_ms);
}

/* (b) remote GUP, a few pages per mmap_read_lock hold. */
/*
 * With @locked, a fault that has to wait for I/O (a swap-in) drops
 * mmap_lock and retries, as user faults do: mmap_lock is not held
 * across disk I/O, so writers queued behind us do not look hung.
 */
static long gup_remote(struct mm_struct *mm, unsigned long start,
		       unsigned long nr, unsigned int flags,
		       struct page **pages, int *locked)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
	return get_user_pages_remote(mm, start, nr, flags, pages, locked);
#else
	return get_user_pages_remote(mm, start, nr, flags, pages, NULL,
				     locked);
#endif
}

static bool gup_transient(long ret)
{
	return ret == -ENOMEM || ret == -EINTR || ret == -EAGAIN ||
	       ret == -EBUSY || ret == -EHWPOISON;
}

/*
 * mmap_lock waits are killable, like access_remote_vm()'s: nobody kills a
 * kthread, but a wait behind a writer queued behind swapoff's long read
 * hold is then not reported as a hung task.
 */

/* The start of a random VMA of @mm, so big mms are not only seen from below. */
static unsigned long storm_random_start(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	unsigned long addr = 0;
	unsigned int skip;

	if (mmap_read_lock_killable(mm))
		return 0;
	skip = rnd_below(mm->map_count);
	for (vma = find_vma(mm, 0); vma && skip; skip--)
		vma = find_vma(mm, vma->vm_end);
	if (vma)
		addr = vma->vm_start;
	mmap_read_unlock(mm);
	return addr;
}

/*
 * mmap_read_lock @mm and find the VMA at or after @addr.  NULL (and the
 * lock not held) if the wait was killed or no VMA is left.
 */
static struct vm_area_struct *storm_lock_vma(struct mm_struct *mm,
					     unsigned long addr)
{
	struct vm_area_struct *vma;

	if (mmap_read_lock_killable(mm))
		return NULL;
	vma = find_vma(mm, addr);
	if (!vma)
		mmap_read_unlock(mm);
	return vma;
}

static void gup_mm(struct mm_struct *mm, struct page **pages)
{
	struct vm_area_struct *vma;
	unsigned long addr = storm_random_start(mm), start, nr;
	unsigned long budget = gup_budget;
	unsigned int flags;
	long ret, i;
	int locked;

	while (budget && !kthread_should_stop()) {
		vma = storm_lock_vma(mm, addr);
		if (!vma)
			break;
		start = max(addr, vma->vm_start);
		if (vma->vm_flags & (VM_IO | VM_PFNMAP)) {
			addr = vma->vm_end;
			mmap_read_unlock(mm);
			continue;
		}
		nr = min3((vma->vm_end - start) >> PAGE_SHIFT,
			  (unsigned long)MMLOCK_GUP_CHUNK, budget);
		flags = 0;
		if ((vma->vm_flags & VM_WRITE) && !rnd_below(4))
			flags |= FOLL_WRITE;
		locked = 1;
		ret = gup_remote(mm, start, nr, flags, pages, &locked);
		if (locked)
			mmap_read_unlock(mm);

		stat_inc(ST_GUP_CALLS);
		if (ret > 0) {
			for (i = 0; i < ret; i++)
				put_page(pages[i]);
			stat_add(ST_GUP_PAGES, ret);
			addr = start + (ret << PAGE_SHIFT);
			budget -= ret;
		} else {
			if (ret == -EFAULT || ret == 0)
				stat_inc(ST_GUP_FAULT);
			else if (gup_transient(ret))
				stat_inc(ST_GUP_TRANSIENT);
			else
				stat_inc(ST_ERRORS);
			/* Skip the page that failed, not the whole VMA. */
			addr = start + PAGE_SIZE;
			budget--;
		}
		cond_resched();
	}
}

static int gup_thread(void *unused)
{
	struct page **pages;
	struct mm_struct *mm;

	pages = kcalloc(MMLOCK_GUP_CHUNK, sizeof(*pages), GFP_KERNEL);
	if (!pages) {
		stat_inc(ST_ERRORS);
		while (!kthread_should_stop())
			storm_nap(1000);
		return -ENOMEM;
	}
	while (!kthread_should_stop()) {
		mm = storm_pick_mm();
		if (mm) {
			gup_mm(mm, pages);
			mmput(mm);
		}
		storm_nap(gup_delay_ms);
	}
	kfree(pages);
	return 0;
}

#ifdef MMLOCK_RISCV_PXD_OFFSET_UNEXPORTED
static p4d_t *walk_p4d_offset(pgd_t *pgd, unsigned long addr)
{
	if (pgtable_l5_enabled)
		return pgd_pgtable(pgdp_get(pgd)) + p4d_index(addr);
	return (p4d_t *)pgd;
}

static pud_t *walk_pud_offset(p4d_t *p4d, unsigned long addr)
{
	if (pgtable_l4_enabled)
		return p4d_pgtable(p4dp_get(p4d)) + pud_index(addr);
	return (pud_t *)p4d;
}
#else
#define walk_p4d_offset p4d_offset
#define walk_pud_offset pud_offset
#endif

/*
 * (c) page-table walker in mm/rmap.c's lock order: mmap_lock, then the
 * VMA's i_mmap_rwsem and anon_vma rwsem (read), then each PTE table's
 * lock (or the PMD lock of a huge PMD).  It holds the locks swapoff's
 * unuse_vma and the reclaim and khugepaged rmap walks hold, on the same
 * tables, and counts the swap entries it finds under the PTE lock.
 * mmap_lock is held for MMLOCK_WALK_CHUNK PMD steps at a time.
 */
static pmd_t *walk_find_pmd(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;

	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return NULL;
	p4d = walk_p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return NULL;
	pud = walk_pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_bad(*pud))
		return NULL;
	return pmd_offset(pud, addr);
}

/*
 * pte_lockptr() finds a split PTE lock through pmd_page(), which ppc64 has
 * out of line and does not export.  For a PMD that points to a PTE table
 * (the callers have ruled out huge and bad ones) that is the page at
 * pmd_page_vaddr(), which is inline.
 */
#ifdef CONFIG_PPC64
static inline struct page *storm_pmd_table(pmd_t *pmd)
{
	return virt_to_page((void *)pmd_page_vaddr(*pmd));
}

/* Without split PTE locks (NR_CPUS < 4) every table has mm's lock. */
static spinlock_t *storm_pte_lockptr(struct mm_struct *mm, pmd_t *pmd)
{
#if defined(CONFIG_SPLIT_PTE_PTLOCKS)
	return ptlock_ptr(page_ptdesc(storm_pmd_table(pmd)));
#elif defined(USE_SPLIT_PTE_PTLOCKS) && USE_SPLIT_PTE_PTLOCKS
	return ptlock_ptr(storm_pmd_table(pmd));
#else
	return &mm->page_table_lock;
#endif
}
#else
#define storm_pte_lockptr pte_lockptr
#endif

/*
 * pte_offset_map_lock() is a macro over inline parts up to 6.4.  Since 6.5
 * it calls __pte_offset_map_lock(), which is not exported to modules: do
 * what it does with the parts that are inline.  rcu_read_lock() keeps a
 * table that khugepaged retracts meanwhile valid (it is freed by RCU), and
 * the PMD is read again under the lock; a table that went away, or a PMD
 * that is no longer a table, gives NULL.  pte_unmap_unlock() undoes both.
 * Up to 6.4 it is the macro's body, with the lock found as above.
 */
#ifdef MMLOCK_PTE_MAP_LOCK_UNEXPORTED
static pte_t *storm_pte_map_lock(struct mm_struct *mm, pmd_t *pmd,
				 unsigned long addr, spinlock_t **ptlp)
{
	unsigned long flags;
	spinlock_t *ptl;
	pmd_t pmdval;
	pte_t *pte;

	rcu_read_lock();
	/* A two-word PMD (x86 PAE) is read whole only with IRQs off. */
	local_irq_save(flags);
	pmdval = pmdp_get_lockless(pmd);
	local_irq_restore(flags);
	if (pmd_none(pmdval) || !pmd_present(pmdval) ||
	    pmd_trans_huge(pmdval) || pmd_leaf(pmdval) || pmd_bad(pmdval)) {
		rcu_read_unlock();
		return NULL;
	}
	pte = __pte_map(&pmdval, addr);
	ptl = storm_pte_lockptr(mm, &pmdval);
	spin_lock(ptl);
	if (unlikely(!pmd_same(pmdval, pmdp_get_lockless(pmd)))) {
		pte_unmap_unlock(pte, ptl);
		return NULL;
	}
	*ptlp = ptl;
	return pte;
}
#else
static pte_t *storm_pte_map_lock(struct mm_struct *mm, pmd_t *pmd,
				 unsigned long addr, spinlock_t **ptlp)
{
	spinlock_t *ptl = storm_pte_lockptr(mm, pmd);
	pte_t *pte = pte_offset_map(pmd, addr);

	spin_lock(ptl);
	*ptlp = ptl;
	return pte;
}
#endif

static void walk_ptes(struct mm_struct *mm, pmd_t *pmd, unsigned long addr,
		      unsigned long end)
{
	unsigned long present = 0, swap = 0;
	pte_t *start, *pte, val;
	swp_entry_t entry;
	spinlock_t *ptl;
	pmd_t pmdval = READ_ONCE(*pmd);

	if (pmd_none(pmdval) || !pmd_present(pmdval))
		return;		/* empty, or a THP migration entry */
	if (pmd_trans_huge(pmdval)) {
		ptl = pmd_lock(mm, pmd);
		stat_inc(ST_WALK_HUGE);
		spin_unlock(ptl);
		return;
	}
	if (pmd_bad(pmdval))
		return;
	start = storm_pte_map_lock(mm, pmd, addr, &ptl);
	if (!start)
		return;
	for (pte = start; addr < end; pte++, addr += PAGE_SIZE) {
		val = ptep_get(pte);
		if (pte_none(val))
			continue;
		if (pte_present(val)) {
			present++;
			continue;
		}
		entry = pte_to_swp_entry(val);
		if (!non_swap_entry(entry))
			swap++;
	}
	pte_unmap_unlock(start, ptl);
	stat_inc(ST_WALK_TABLES);
	stat_add(ST_WALK_PRESENT, present);
	stat_add(ST_WALK_SWAP, swap);
}

/* Up to MMLOCK_WALK_CHUNK PMD steps of @vma from @addr; returns the end. */
static unsigned long walk_vma(struct vm_area_struct *vma, unsigned long addr,
			      unsigned int *budget)
{
	struct address_space *mapping = NULL;
	struct anon_vma *anon_vma = READ_ONCE(vma->anon_vma);
	unsigned long next, end = vma->vm_end;
	unsigned int steps = 0;
	pmd_t *pmd;

	if (vma->vm_file)
		mapping = vma->vm_file->f_mapping;
	if (mapping)
		i_mmap_lock_read(mapping);
	if (anon_vma)
		anon_vma_lock_read(anon_vma);
	while (addr < end && steps < MMLOCK_WALK_CHUNK && *budget) {
		next = pmd_addr_end(addr, end);
		pmd = walk_find_pmd(vma->vm_mm, addr);
		if (pmd)
			walk_ptes(vma->vm_mm, pmd, addr, next);
		addr = next;
		steps++;
		(*budget)--;
	}
	if (anon_vma)
		anon_vma_unlock_read(anon_vma);
	if (mapping)
		i_mmap_unlock_read(mapping);
	return addr;
}

static void walk_mm(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	unsigned int budget = walk_budget;
	unsigned long addr = storm_random_start(mm);

	while (budget && !kthread_should_stop()) {
		vma = storm_lock_vma(mm, addr);
		if (!vma)
			break;
		addr = max(addr, vma->vm_start);
		if (is_vm_hugetlb_page(vma) ||
		    (vma->vm_flags & (VM_IO | VM_PFNMAP)))
			addr = vma->vm_end;
		else
			addr = walk_vma(vma, addr, &budget);
		mmap_read_unlock(mm);
		stat_inc(ST_WALK_CHUNKS);
		cond_resched();
	}
}

static int walk_thread(void *unused)
{
	return storm_each_mm(walk_mm, NULL);
}

/*
 * (d) per-CPU counters, only ever touched with preemption disabled.  The
 * owner/seq pair detects another task running on this CPU inside our
 * preempt-disabled section, i.e. a preemption leak.
 */
static int percpu_thread(void *unused)
{
	struct mmlock_pcpu *pc;
	unsigned long seq, round = 0;
	int cpu, i;

	while (!kthread_should_stop()) {
		preempt_disable();
		__this_cpu_write(mmlock_pcpu.owner, current);
		seq = __this_cpu_read(mmlock_pcpu.seq);
		for (i = 0; i < 64; i++)
			__this_cpu_inc(mmlock_pcpu.seq);
		if (__this_cpu_read(mmlock_pcpu.owner) != current ||
		    __this_cpu_read(mmlock_pcpu.seq) != seq + 64)
			__this_cpu_inc(mmlock_pcpu.stat[ST_ERRORS]);
		__this_cpu_write(mmlock_pcpu.owner, NULL);
		__this_cpu_add(mmlock_pcpu.stat[ST_PERCPU_UPDATES], 64);
		__this_cpu_inc(mmlock_pcpu.stat[ST_PERCPU_CHECKS]);
		preempt_enable();

		cpu = get_cpu();
		pc = per_cpu_ptr(&mmlock_pcpu, cpu);
		pc->seq++;
		pc->stat[ST_PERCPU_UPDATES]++;
		put_cpu();

		/*
		 * A few thousand checked windows a second are plenty; busier,
		 * these threads took a fair share of every vCPU from the
		 * paths that take the mm locks.
		 */
		if (++round % 8 == 0)
			storm_nap(1);
		else
			cond_resched();
	}
	return 0;
}

/* Start or stop; caller holds storm_mutex. */
static void storm_stop_locked(void)
{
	unsigned int i;

	for (i = 0; i < storm_nr_tasks; i++) {
		kthread_stop(storm_tasks[i]);
		put_task_struct(storm_tasks[i]);
		storm_tasks[i] = NULL;
	}
	storm_nr_tasks = 0;
	for (i = 0; i < storm_nr_pids; i++) {
		put_pid(storm_pids[i]);
		storm_pids[i] = NULL;
	}
	storm_nr_pids = 0;
	storm_running = false;
}

static int storm_spawn(int (*fn)(void *), const char *name, unsigned int n)
{
	struct task_struct *t;
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (storm_nr_tasks >= MMLOCK_MAX_THREADS)
			return -E2BIG;
		t = kthread_create(fn, NULL, "mmlock-%s/%u", name, i);
		if (IS_ERR(t))
			return PTR_ERR(t);
		get_task_struct(t);
		storm_tasks[storm_nr_tasks++] = t;
		wake_up_process(t);
	}
	return 0;
}

static int storm_start_locked(char *args)
{
	unsigned int npcpu;
	char *tok;
	int pid, ret;

	if (storm_running)
		return -EBUSY;

	while ((tok = strsep(&args, " \t\n")) != NULL) {
		if (!*tok)
			continue;
		ret = kstrtoint(tok, 10, &pid);
		if (ret || pid <= 0) {
			ret = -EINVAL;
			goto fail;
		}
		if (storm_nr_pids >= MMLOCK_MAX_PIDS) {
			ret = -E2BIG;
			goto fail;
		}
		storm_pids[storm_nr_pids] = find_get_pid(pid);
		if (!storm_pids[storm_nr_pids]) {
			ret = -ESRCH;
			goto fail;
		}
		storm_nr_pids++;
	}

	npcpu = percpu_threads ? percpu_threads : num_online_cpus();
	storm_running = true;
	atomic_inc(&storm_generation);
	ret = storm_spawn(notifier_thread, "notif", notifier_threads);
	if (!ret)
		ret = storm_spawn(gup_thread, "gup", gup_threads);
	if (!ret)
		ret = storm_spawn(walk_thread, "walk", walk_threads);
	if (!ret)
		ret = storm_spawn(percpu_thread, "pcpu", npcpu);
	if (ret)
		goto fail;
	return 0;
fail:
	storm_stop_locked();
	return ret;
}

static ssize_t storm_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	char buf[512], *args;
	int ret;

	if (count >= sizeof(buf))
		return -E2BIG;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	args = strim(buf);

	mutex_lock(&storm_mutex);
	if (!strcmp(args, "stop")) {
		storm_stop_locked();
		ret = 0;
	} else if (!strncmp(args, "start", 5) &&
		   (args[5] == '\0' || isspace(args[5]))) {
		ret = storm_start_locked(args + 5);
	} else {
		ret = -EINVAL;
	}
	mutex_unlock(&storm_mutex);
	return ret ? ret : count;
}

static ssize_t storm_read(struct file *file, char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	char buf[64];
	int len;

	mutex_lock(&storm_mutex);
	len = scnprintf(buf, sizeof(buf), "%s threads=%u pids=%u\n",
			storm_running ? "running" : "stopped",
			storm_nr_tasks, storm_nr_pids);
	mutex_unlock(&storm_mutex);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static const struct file_operations storm_fops = {
	.owner	= THIS_MODULE,
	.read	= storm_read,
	.write	= storm_write,
	.llseek	= default_llseek,
};

static ssize_t stats_read(struct file *file, char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	char *buf;
	size_t size = 1024;
	int len, i;
	ssize_t ret;

	buf = kmalloc(size, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	/*
	 * notifier=unsupported: a kernel without MMU_NOTIFIER (32-bit Arm:
	 * nothing selects it) has no notifier churn; its threads cycle
	 * mmap_write_lock instead (mmap_write_locks) and notifier_* stay 0.
	 */
	len = scnprintf(buf, size, "running=%d threads=%u storms=%d notifier=%s",
			READ_ONCE(storm_running) ? 1 : 0,
			READ_ONCE(storm_nr_tasks),
			atomic_read(&storm_generation),
			IS_ENABLED(CONFIG_MMU_NOTIFIER) ? "yes" : "unsupported");
	for (i = 0; i < ST_NR; i++)
		len += scnprintf(buf + len, size - len, " %s=%lu",
				 mmlock_stat_names[i], stat_sum(i));
	len += scnprintf(buf + len, size - len, " injected=%s\n",
			 READ_ONCE(last_injected));
	ret = simple_read_from_buffer(ubuf, count, ppos, buf, len);
	kfree(buf);
	return ret;
}

static const struct file_operations stats_fops = {
	.owner	= THIS_MODULE,
	.read	= stats_read,
	.llseek	= default_llseek,
};

/*
 * Injections.  Kinds that only warn run in the writer's context and are
 * finished when write() returns.  Kinds that kill their context (bug,
 * null-deref) or block it for a long time (hung-task, soft-lockup,
 * rcu-stall) run in a dedicated kthread and write() returns at once.
 */
static DEFINE_MUTEX(abba_a);
static DEFINE_MUTEX(abba_b);
static struct mutex recursive_locks[2];
static DEFINE_SPINLOCK(atomic_sleep_lock);
static DECLARE_COMPLETION(hung_release);
static DECLARE_WAIT_QUEUE_HEAD(inject_wq);
static atomic_t inject_threads = ATOMIC_INIT(0);
static int *mmlock_null_ptr;	/* always NULL */

/*
 * Tracked injection kthreads call inject_thread_done() when they finish
 * and module exit waits for them.  Untracked ones (bug, null-deref) die
 * in their Oops and are never waited for.
 */
static int inject_spawn(int (*fn)(void *), unsigned long arg,
			const char *name, bool tracked)
{
	struct task_struct *t;

	if (tracked)
		atomic_inc(&inject_threads);
	t = kthread_run(fn, (void *)arg, "mmlock-%s", name);
	if (IS_ERR(t)) {
		if (tracked)
			atomic_dec(&inject_threads);
		return PTR_ERR(t);
	}
	return 0;
}

static void inject_thread_done(void)
{
	if (atomic_dec_and_test(&inject_threads))
		wake_up_all(&inject_wq);
}

static int abba_thread(void *arg)
{
	struct completion *done = arg;

	mutex_lock(&abba_b);
	mutex_lock(&abba_a);	/* lockdep: circular dependency */
	mutex_unlock(&abba_a);
	mutex_unlock(&abba_b);
	complete(done);
	inject_thread_done();
	return 0;
}

static int inject_abba(unsigned long arg)
{
	DECLARE_COMPLETION_ONSTACK(done);
	int ret;

	/* A -> B here, then B -> A in a kthread; never concurrently. */
	mutex_lock(&abba_a);
	mutex_lock(&abba_b);
	mutex_unlock(&abba_b);
	mutex_unlock(&abba_a);
	ret = inject_spawn(abba_thread, (unsigned long)&done, "abba", true);
	if (ret)
		return ret;
	wait_for_completion(&done);
	return 0;
}

static int inject_recursive(unsigned long arg)
{
	/* Two instances of one lock class: a report, but no deadlock. */
	mutex_lock(&recursive_locks[0]);
	mutex_lock(&recursive_locks[1]);
	mutex_unlock(&recursive_locks[1]);
	mutex_unlock(&recursive_locks[0]);
	return 0;
}

static int inject_atomic_sleep(unsigned long arg)
{
	/*
	 * might_sleep() is the check msleep()/mutex_lock() would make;
	 * calling it directly reports "sleeping function called from
	 * invalid context" without really scheduling, which would add a
	 * second "scheduling while atomic" report.
	 */
	spin_lock(&atomic_sleep_lock);
	might_sleep();
	spin_unlock(&atomic_sleep_lock);
	return 0;
}

static int inject_smp_processor_id(unsigned long arg)
{
	int cpu;

	/* Writer context, preemptible: DEBUG_PREEMPT complains. */
	cpu = smp_processor_id();
	pr_info("inject smp-processor-id ran on CPU %d\n", cpu);
	return 0;
}

static int inject_warn(unsigned long arg)
{
	WARN(1, "mmlock: injected warning\n");
	return 0;
}

static int bug_thread(void *arg)
{
	/* Oopses; this kthread dies and never returns. */
	BUG();
	return 0;
}

static int inject_bug(unsigned long arg)
{
	return inject_spawn(bug_thread, 0, "bug", false);
}

static int null_thread(void *arg)
{
	int *p = READ_ONCE(mmlock_null_ptr);

	/*
	 * s390 keeps the lowcore at address 0, readable by the kernel: only
	 * a write through NULL faults there (low-address protection).
	 */
	if (IS_ENABLED(CONFIG_S390)) {
		pr_info("inject null-deref write\n");
		WRITE_ONCE(*p, 1);
		return 0;
	}
	pr_info("inject null-deref read %d\n", READ_ONCE(*p));
	return 0;
}

static int inject_null_deref(unsigned long arg)
{
	return inject_spawn(null_thread, 0, "null", false);
}

static int hung_thread(void *arg)
{
	unsigned long secs = (unsigned long)arg;

	/* TASK_UNINTERRUPTIBLE until module unload (or secs, if given). */
	if (secs)
		wait_for_completion_timeout(&hung_release, secs * HZ);
	else
		wait_for_completion(&hung_release);
	inject_thread_done();
	return 0;
}

static int inject_hung_task(unsigned long secs)
{
	return inject_spawn(hung_thread, secs, "hung", true);
}

/*
 * Let RCU see a quiescent state on this CPU while preemption stays
 * disabled, so that a soft lockup is not also an RCU stall.  Kbuild
 * detects which name this kernel uses.
 */
static void mmlock_rcu_qs(void)
{
#if IS_ENABLED(CONFIG_TREE_RCU) && \
	(defined(MMLOCK_HAVE_RCU_MOMENTARY_EQS) || \
	 defined(MMLOCK_HAVE_RCU_MOMENTARY_DYNTICK_IDLE))
	unsigned long flags;

	local_irq_save(flags);
#ifdef MMLOCK_HAVE_RCU_MOMENTARY_EQS
	rcu_momentary_eqs();
#else
	rcu_momentary_dyntick_idle();
#endif
	local_irq_restore(flags);
#endif
}

static int softlockup_thread(void *arg)
{
	unsigned long secs = (unsigned long)arg;
	unsigned long end, next_qs;
	bool tainted_before = test_taint(TAINT_SOFTLOCKUP);

	preempt_disable();
	end = jiffies + secs * HZ;
	next_qs = jiffies;
	while (time_before(jiffies, end)) {
		/* Stop as soon as the detector has reported (it taints). */
		if (!tainted_before && test_taint(TAINT_SOFTLOCKUP))
			break;
		if (time_after_eq(jiffies, next_qs)) {
			mmlock_rcu_qs();
			next_qs = jiffies + HZ / 10 + 1;
		}
		cpu_relax();
	}
	preempt_enable();
	inject_thread_done();
	return 0;
}

static int inject_soft_lockup(unsigned long secs)
{
	return inject_spawn(softlockup_thread, secs ? secs : lockup_max_secs,
			    "softlock", true);
}

static struct rcu_head rcustall_head;
static atomic_t rcustall_busy = ATOMIC_INIT(0);

static void rcustall_cb(struct rcu_head *head)
{
}

static int stall_reader_thread(void *arg)
{
	unsigned long secs = (unsigned long)arg;
	bool nopreempt = num_online_cpus() > 1;
	unsigned long end;

	/*
	 * With more than one CPU, spin with preemption disabled: this CPU
	 * stops reporting quiescent states.  With a single CPU that would
	 * also starve the grace-period kthread, so no grace period could
	 * start and nothing would be reported: stay preemptible there, a
	 * preempted reader blocks the grace period just as well.
	 */
	rcu_read_lock();
	if (nopreempt)
		preempt_disable();
	/* Make sure a grace period is waiting for us. */
	call_rcu(&rcustall_head, rcustall_cb);
	end = jiffies + secs * HZ;
	while (time_before(jiffies, end)) {
		/* Only RCU may complain, not the soft lockup detector. */
		touch_softlockup_watchdog();
		cpu_relax();
	}
	touch_softlockup_watchdog();
	if (nopreempt)
		preempt_enable();
	rcu_read_unlock();
	rcu_barrier();
	atomic_set(&rcustall_busy, 0);
	inject_thread_done();
	return 0;
}

static int inject_rcu_stall(unsigned long secs)
{
	int ret;

	if (atomic_cmpxchg(&rcustall_busy, 0, 1))
		return -EBUSY;
	ret = inject_spawn(stall_reader_thread, secs ? secs : rcu_stall_secs,
			   "rcustall", true);
	if (ret)
		atomic_set(&rcustall_busy, 0);
	return ret;
}

static int inject_panic(unsigned long arg)
{
	panic("mmlock: injected panic");
	return 0;
}

struct mmlock_inject {
	const char *name;
	int (*fn)(unsigned long secs);
};

static const struct mmlock_inject injects[] = {
	{ "abba",		inject_abba },
	{ "recursive",		inject_recursive },
	{ "atomic-sleep",	inject_atomic_sleep },
	{ "smp-processor-id",	inject_smp_processor_id },
	{ "warn",		inject_warn },
	{ "bug",		inject_bug },
	{ "null-deref",		inject_null_deref },
	{ "hung-task",		inject_hung_task },
	{ "soft-lockup",	inject_soft_lockup },
	{ "rcu-stall",		inject_rcu_stall },
	{ "panic",		inject_panic },
};

static ssize_t inject_read(struct file *file, char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	char buf[256];
	int len = 0;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(injects); i++)
		len += scnprintf(buf + len, sizeof(buf) - len, "%s\n",
				 injects[i].name);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static ssize_t inject_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	char buf[64], *args, *kind;
	unsigned int secs = 0, i;
	int ret;

	if (count >= sizeof(buf))
		return -E2BIG;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	args = strim(buf);
	kind = strsep(&args, " \t");
	if (args) {
		args = strim(args);
		if (*args && kstrtouint(args, 10, &secs))
			return -EINVAL;
	}

	for (i = 0; i < ARRAY_SIZE(injects); i++) {
		if (strcmp(kind, injects[i].name))
			continue;
		WRITE_ONCE(last_injected, injects[i].name);
		pr_info("inject %s\n", injects[i].name);
		ret = injects[i].fn(secs);
		return ret ? ret : count;
	}
	return -EINVAL;
}

static const struct file_operations inject_fops = {
	.owner	= THIS_MODULE,
	.read	= inject_read,
	.write	= inject_write,
	.llseek	= default_llseek,
};

static int __init mmlock_init(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(recursive_locks); i++)
		mutex_init(&recursive_locks[i]);	/* one class for both */

	mmlock_dir = debugfs_create_dir("mmlock", NULL);
	if (IS_ERR(mmlock_dir))
		return PTR_ERR(mmlock_dir);
	debugfs_create_file("storm", 0600, mmlock_dir, NULL, &storm_fops);
	debugfs_create_file("stats", 0400, mmlock_dir, NULL, &stats_fops);
	debugfs_create_file("inject", 0600, mmlock_dir, NULL, &inject_fops);
	pr_info("loaded (notifier=%s, cpus=%u)\n",
		IS_ENABLED(CONFIG_MMU_NOTIFIER) ? "yes" : "no",
		num_online_cpus());
	return 0;
}

static void __exit mmlock_exit(void)
{
	/* No new writers after this; in-flight ones are waited for. */
	debugfs_remove_recursive(mmlock_dir);

	mutex_lock(&storm_mutex);
	storm_stop_locked();
	mutex_unlock(&storm_mutex);

	complete_all(&hung_release);
	wait_event(inject_wq, atomic_read(&inject_threads) == 0);
	pr_info("unloaded\n");
}

module_init(mmlock_init);
module_exit(mmlock_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("mmlock-harness");
MODULE_DESCRIPTION("mm locking storm and kernel report injection for tests");
