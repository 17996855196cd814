/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ptnetmap internals shared by the files of the module.
 *
 * The module is built from a few concepts, one file each:
 *
 *   core.c   /dev/netmap: file operations, NIOCCTRL dispatch, validation of
 *            the request header, body and option chain, the request handlers.
 *   mem.c    memory regions: the pages shared with userspace, the if/ring/buf
 *            pools carved out of them, mmap.
 *   port.c   ports and their krings: lookup by name, registration of a file
 *            on a port, ring creation, the sync prologue/epilogue that
 *            validates what userspace wrote, NIOC*SYNC and poll.
 *   null.c   null ports: rings that discard what is sent and never receive.
 *   pipe.c   netmap pipes: two ports whose rings swap buffers zero-copy.
 *
 * Later files plug in without changing these: vale.c (VALE switch ports),
 * nic.c (any netdev), pt_host.c (rings driven by a guest through a CSB).
 * Each provides a struct ptnm_port_type for the name lookup chain (see
 * ptnm_port_types[] in port.c) and a struct ptnm_port_ops for its ports.
 *
 * Objects and lifetimes
 *
 *   struct ptnm_region  refcounted; held by ports, registrations and vmas.
 *                       A region is only ever freed when nothing maps it.
 *   struct ptnm_port    refcounted under ptnm_lock; held by lookups, by
 *                       registered files and by child ports (pipes hold their
 *                       parent). Its krings exist while it is "active", i.e.
 *                       from the first registration to the last one (pipes
 *                       keep both ends' rings while either end is active).
 *   struct ptnm_file    one per open /dev/netmap; at most one registration.
 *
 * Lock order (outer first):
 *
 *   ptnm_lock (mutex, port.c)         lookups, port creation and destruction,
 *                                     registration, port lists of all types.
 *     kring->sync_lock (mutex)        one sync at a time on a ring.
 *       port type locks (spinlock)    e.g. the pipe lock shared by both ends.
 *         kring->wq.lock              wake-ups (wake_up_*).
 *     ptnm_region_lock (spinlock)     the region id table (mem.c).
 *     region->lock (spinlock)         the pools' free bitmaps.
 *
 *   ptnm_lock is never taken from mm paths (fault, vma close), and regions
 *   are released without it, because request handlers hold it while they
 *   copy to and from userspace (which may take mmap_lock).
 *
 * Trust: everything in a region is writable by userspace (or a guest). The
 * kernel keeps its own copy of every index and size it needs (kring fields)
 * and only ever reads head, cur, slot buf_idx/len/flags from shared memory,
 * once, checking each against the kernel's copies before use.
 */
#ifndef _PTNETMAP_KERN_H_
#define _PTNETMAP_KERN_H_

#include <linux/atomic.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/refcount.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/u64_stats_sync.h>
#include <linux/wait.h>

#include <net/netmap.h>

#include "ptnm_ring_math.h"

struct file;
struct page;
struct vm_area_struct;

/* ---------------------------------------------------------------------- */
/* Memory regions (mem.c)                                                  */
/* ---------------------------------------------------------------------- */

#define PTNM_GLOBAL_REGION_ID	1	/* the region every NIC port shares */

/* Buffers 0 and 1 exist in every region but are never handed out. */
#define PTNM_RESERVED_BUFS	2

/* Sizes of the shared objects. */
#define PTNM_MAX_RINGS		64	/* NIC rings per direction */
#define PTNM_MAX_HOST_RINGS	8	/* host rings per direction */
#define PTNM_MIN_SLOTS		4
/* netmap_if with room for every ring offset, rounded to the cache line. */
#define PTNM_IF_OBJSIZE \
	ALIGN(sizeof(struct netmap_if) + \
	      2 * (PTNM_MAX_RINGS + PTNM_MAX_HOST_RINGS) * sizeof(s64), \
	      NM_CACHE_ALIGN)

enum ptnm_pool_id {
	PTNM_POOL_IF,		/* struct netmap_if, one per registration */
	PTNM_POOL_RING,		/* struct netmap_ring + slots, one per ring */
	PTNM_POOL_BUF,		/* packet buffers */
	PTNM_POOL_COUNT,
};

/* A pool: objtotal objects of objsize bytes at offset in the region. */
struct ptnm_pool {
	u64 offset;		/* from the start of the region */
	u32 objtotal;
	u32 objsize;
	u32 nfree;		/* protected by region->lock */
	u32 hint;		/* next index to try; protected by region->lock */
	unsigned long *used;	/* bitmap; protected by region->lock */
};

#define PTNM_REGION_PRIVATE	BIT(0)	/* not the global region */
#define PTNM_REGION_EXTMEM	BIT(1)	/* pages pinned from a user process */
#define PTNM_REGION_PHYS	BIT(2)	/* a physical range: a device's memory */

/*
 * A memory region: pages shared with userspace through mmap, mapped
 * contiguously in the kernel (vmap), divided into the three pools. The same
 * structure describes kernel-allocated regions and regions built on someone
 * else's pages (EXTMEM: pinned user pages; later a memfd's pages).
 */
struct ptnm_region {
	refcount_t refs;
	u16 id;			/* constant; 1 is the global region */
	u32 flags;		/* PTNM_REGION_*; constant */
	struct page **pages;	/* constant */
	unsigned long nr_pages;
	void *vaddr;		/* kernel mapping of pages[] */
	u64 size;		/* nr_pages * PAGE_SIZE */
	struct ptnm_pool pools[PTNM_POOL_COUNT];
	spinlock_t lock;	/* see struct ptnm_pool */
	/* EXTMEM: who supplied the pages, to share the region on reuse. */
	struct mm_struct *owner_mm;
	unsigned long owner_uaddr;
	/* PHYS: where the memory is (pages is NULL, vaddr a memremap). */
	phys_addr_t phys;
	/* PHYS: set once the device is gone; protected by revoke_rw. */
	struct rw_semaphore revoke_rw;
	bool revoked;
};

int ptnm_mem_init(void);
void ptnm_mem_exit(void);

/* A reference to region `id`; the global region is created on first use. */
struct ptnm_region *ptnm_region_get_by_id(u16 id);
/* A new private region sized by the module parameters. */
struct ptnm_region *ptnm_region_new_private(void);
/*
 * A region over `info->nr_memsize` bytes of the caller's memory at uaddr
 * (EXTMEM). Validates and completes `info` (layout chosen, id assigned).
 */
struct ptnm_region *ptnm_region_new_extmem(u64 uaddr,
					   struct nmreq_pools_info *info);
/*
 * A region over `size` bytes of physical memory at `phys` that someone else
 * laid out (a passthrough guest: the host's region in BAR2). Nothing is
 * allocated from it: the if and ring pools are empty, the buffer pool
 * (buffers of buf_size bytes from buf_offset to the end) only bounds the
 * buffer indexes slots may hold, and ring_objsize bounds the slots of a
 * ring. Mapped write-back in the kernel, as a PFN range in userspace.
 */
struct ptnm_region *ptnm_region_new_phys(phys_addr_t phys, u64 size,
					 u64 buf_offset, u32 buf_size,
					 u32 ring_objsize);
/*
 * The device behind PHYS region r is going away: zap every userspace mapping
 * of it (later accesses get SIGBUS) and refuse new ones. The kernel mapping
 * stays until the last reference goes.
 */
void ptnm_region_revoke(struct ptnm_region *r);
/* Called by open(): the file maps through the module's address_space. */
void ptnm_mem_file_init(struct file *file);
struct ptnm_region *ptnm_region_get(struct ptnm_region *region);
void ptnm_region_put(struct ptnm_region *region);

void ptnm_region_info(const struct ptnm_region *region,
		      struct nmreq_pools_info *info);

/* Object allocation; an index, or -ENOMEM. Takes region->lock. */
int ptnm_obj_alloc(struct ptnm_region *region, enum ptnm_pool_id pool);
/* Frees `idx` if it is a valid, allocated, non-reserved object. */
void ptnm_obj_free(struct ptnm_region *region, enum ptnm_pool_id pool, u32 idx);

static inline u64 ptnm_obj_offset(const struct ptnm_region *region,
				  enum ptnm_pool_id pool, u32 idx)
{
	const struct ptnm_pool *p = &region->pools[pool];

	return p->offset + (u64)idx * p->objsize;
}

static inline void *ptnm_obj_vaddr(const struct ptnm_region *region,
				   enum ptnm_pool_id pool, u32 idx)
{
	return region->vaddr + ptnm_obj_offset(region, pool, idx);
}

/* Any buffer index a slot may hold without pointing outside the region. */
static inline bool ptnm_buf_idx_ok(const struct ptnm_region *region, u32 idx)
{
	return idx < region->pools[PTNM_POOL_BUF].objtotal;
}

static inline u32 ptnm_buf_size(const struct ptnm_region *region)
{
	return region->pools[PTNM_POOL_BUF].objsize;
}

/* Kernel address of a buffer; the caller checked ptnm_buf_idx_ok(). */
static inline void *ptnm_buf_vaddr(const struct ptnm_region *region, u32 idx)
{
	return ptnm_obj_vaddr(region, PTNM_POOL_BUF, idx);
}

/* Most slots a ring of this region can have. */
u32 ptnm_mem_max_slots(const struct ptnm_region *region);

/* Maps (part of) the region into vma; the vma holds a region reference. */
int ptnm_region_mmap(struct ptnm_region *region, struct vm_area_struct *vma);

/* ---------------------------------------------------------------------- */
/* Ports and krings (port.c)                                               */
/* ---------------------------------------------------------------------- */

enum ptnm_dir { PTNM_TX = NR_TX, PTNM_RX = NR_RX, PTNM_DIRS };

struct ptnm_port;
struct ptnm_kring;

/* Per-ring counters, written by the ring's single writer (the sync path). */
struct ptnm_ring_stats {
	u64_stats_t packets;
	u64_stats_t bytes;
	u64_stats_t drops;
	struct u64_stats_sync syncp;
};

/* Totals of a port's counters, as ptnm_port_get_stats() reports them. */
struct ptnm_port_stats {
	u64 tx_packets, tx_bytes, tx_drops;
	u64 rx_packets, rx_bytes, rx_drops;
};

/*
 * The kernel side of one ring. The netmap_ring itself is in the region and
 * belongs to userspace between syncs; everything the kernel relies on is
 * here.
 *
 * Index meaning (both directions): the application owns [rhead, rtail); the
 * kernel owns [rtail, rhead) and within it has processed up to nr_hwcur.
 *   TX: slots [nr_hwcur, rhead) are new packets to send; the kernel returns
 *       slots to the application by advancing nr_hwtail, at most to
 *       nr_hwcur - 1 (one slot always stays empty).
 *   RX: the kernel fills [nr_hwtail, nr_hwcur - 1) and advances nr_hwtail;
 *       a sync moves nr_hwcur to rhead (slots released by the application).
 *
 * Protected by sync_lock unless said otherwise: the port's txsync/rxsync run
 * with it held, and may touch the fields marked "peer" of another kring
 * under a lock of their own port type (e.g. the pipe lock).
 */
struct ptnm_kring {
	struct ptnm_port *port;		/* constant */
	struct netmap_ring *ring;	/* kernel address; constant */
	u64 ring_ofs;			/* offset of ring in the region */
	u32 ring_idx;			/* index of the netmap_ring pool object */
	u32 num_slots;			/* constant; never read from the ring */
	u16 ring_id;			/* index in its direction's array */
	u8 dir;				/* PTNM_TX or PTNM_RX */
	bool host;			/* a host (software) ring */

	struct mutex sync_lock;
	u32 nr_hwcur;			/* peer: under the type's lock */
	u32 nr_hwtail;			/* peer: under the type's lock */
	u32 rhead, rcur;		/* validated copies of head, cur */
	u32 rtail;			/* the tail userspace was last given */

	/* Who is bound to this ring; protected by ptnm_lock. */
	u32 users;
	bool exclusive;

	/* Woken (through notify) when the ring may have become ready. */
	wait_queue_head_t wq;
	/* Wake waiters; defaults to ptnm_kring_notify(). Any context. */
	void (*notify)(struct ptnm_kring *kring);

	struct ptnm_ring_stats stats;
	void *priv;			/* the port type's per-ring data */
};

/*
 * What a port type does. Called with ptnm_lock held unless noted.
 *
 * activate:   the first registration arrives: create the krings and rings
 *             (ptnm_port_rings_create() does the usual thing) and start the
 *             datapath. deactivate undoes it when the last one leaves.
 * txsync/rxsync: move packets for one ring. Caller holds kring->sync_lock
 *             (not ptnm_lock); rhead/rcur were validated by the prologue.
 *             They update nr_hwcur/nr_hwtail; the core then publishes tail.
 *             A negative errno marks the ring in error (it is reinitialised).
 * destroy:    the last reference is gone: call ptnm_port_fini() and free
 *             the port (and its private data); it is inactive by then.
 */
struct ptnm_port_ops {
	int (*activate)(struct ptnm_port *port);
	void (*deactivate)(struct ptnm_port *port);
	int (*txsync)(struct ptnm_kring *kring);
	int (*rxsync)(struct ptnm_kring *kring);
	void (*destroy)(struct ptnm_port *port);
	/*
	 * Optional: the port has its own netmap_if in its region (a
	 * passthrough guest port: the host's); returns its offset. Files
	 * registered on it share it and get no extra buffers.
	 */
	u64 (*nifp_offset)(struct ptnm_port *port);
};

/*
 * A netmap port (netmap calls it an adapter). Port types embed it or point
 * to it from their own structure through priv.
 */
struct ptnm_port {
	char name[NETMAP_REQ_IFNAMSIZ];		/* constant */
	const struct ptnm_port_ops *ops;	/* constant */
	struct ptnm_region *region;		/* a reference; constant */

	/* Geometry; constant once the port is created. */
	u32 num_rings[PTNM_DIRS];		/* NIC rings */
	u32 num_host_rings[PTNM_DIRS];
	u32 num_slots[PTNM_DIRS];

	/* Protected by ptnm_lock. */
	unsigned int refs;
	unsigned int active_users;		/* registrations */
	bool active;				/* krings exist */
	/*
	 * The device behind the port went away: syncs fail with ENXIO and
	 * poll with EPOLLERR. Set once, under ptnm_lock; read with READ_ONCE.
	 */
	bool dead;
	struct list_head list;			/* in its type's list */
	struct list_head pipes;			/* pipes with this parent */

	/* NIC rings then host rings; valid while active. */
	struct ptnm_kring *krings[PTNM_DIRS];

	void *priv;				/* the port type's data */
};

static inline u32 ptnm_port_all_rings(const struct ptnm_port *port,
				      enum ptnm_dir dir)
{
	return port->num_rings[dir] + port->num_host_rings[dir];
}

/* What a lookup may need to create a port: the request's wishes. */
struct ptnm_port_req {
	u32 num_rings[PTNM_DIRS];	/* 0: the type's default */
	u32 num_host_rings[PTNM_DIRS];
	u32 num_slots[PTNM_DIRS];
	u16 mem_id;			/* 0: the type's default region */
	struct ptnm_region *region;	/* EXTMEM region, or NULL */
	u32 mode;			/* NR_REG_* of a REGISTER, else 0 */
};

/*
 * A kind of port, found by name. lookup returns 0 with *portp set (a new
 * reference), 0 with *portp NULL when the name is not of its kind, or a
 * negative errno when the name is its kind but cannot be used.
 * Caller holds ptnm_lock.
 */
struct ptnm_port_type {
	const char *name;
	int (*lookup)(const char *name, const struct ptnm_port_req *req,
		      struct ptnm_port **portp);
};

extern struct mutex ptnm_lock;
extern const struct ptnm_port_type ptnm_null_type;
extern const struct ptnm_port_type ptnm_pipe_type;

/* The lookup chain: null, pipe, [VALE, netdev]. Caller holds ptnm_lock. */
int ptnm_port_lookup(const char *name, const struct ptnm_port_req *req,
		     struct ptnm_port **portp);
/* The same chain without pipes: a pipe's parent. Caller holds ptnm_lock. */
int ptnm_port_lookup_parent(const char *name, const struct ptnm_port_req *req,
			    struct ptnm_port **portp);

/*
 * Initialise a new port (refs = 1). Validates and clamps the geometry. Takes
 * a reference on region. Caller holds ptnm_lock.
 */
int ptnm_port_init(struct ptnm_port *port, const char *name,
		   const struct ptnm_port_ops *ops, struct ptnm_region *region,
		   const struct ptnm_port_req *geometry);
/* Undo ptnm_port_init() (drops the region); from ops->destroy. */
void ptnm_port_fini(struct ptnm_port *port);
/* Caller holds ptnm_lock. The last put calls ops->destroy. */
void ptnm_port_get(struct ptnm_port *port);
void ptnm_port_put(struct ptnm_port *port);

/* The default activate/deactivate: krings and rings. Caller holds ptnm_lock. */
int ptnm_port_rings_create(struct ptnm_port *port);
void ptnm_port_rings_delete(struct ptnm_port *port);

/* Totals over all rings of an active port (zero if inactive). */
void ptnm_port_get_stats(struct ptnm_port *port, struct ptnm_port_stats *st);

/* Default notify: wake poll/epoll waiters of the ring. Any context. */
void ptnm_kring_notify(struct ptnm_kring *kring);

static inline u32 ptnm_next(const struct ptnm_kring *kring, u32 i)
{
	return ptnm_rm_next(kring->num_slots, i);
}

static inline u32 ptnm_prev(const struct ptnm_kring *kring, u32 i)
{
	return ptnm_rm_prev(kring->num_slots, i);
}

/* Distance from a to b going forward, in slots. */
static inline u32 ptnm_dist(const struct ptnm_kring *kring, u32 a, u32 b)
{
	return ptnm_rm_dist(kring->num_slots, a, b);
}

/* Count traffic on a ring. Caller holds kring->sync_lock (single writer). */
static inline void ptnm_kring_count(struct ptnm_kring *kring, u64 packets,
				    u64 bytes, u64 drops)
{
	u64_stats_update_begin(&kring->stats.syncp);
	u64_stats_add(&kring->stats.packets, packets);
	u64_stats_add(&kring->stats.bytes, bytes);
	u64_stats_add(&kring->stats.drops, drops);
	u64_stats_update_end(&kring->stats.syncp);
}

/* ---------------------------------------------------------------------- */
/* Open files and their registration (core.c, port.c)                      */
/* ---------------------------------------------------------------------- */

/*
 * One open /dev/netmap. `port` is published (smp_store_release) once the
 * registration is complete and never changes until the file is released,
 * so the sync and poll paths read it without ptnm_lock.
 */
struct ptnm_file {
	struct ptnm_port *port;		/* a reference, or NULL */
	struct ptnm_region *region;	/* a reference while registered */
	u32 if_idx;			/* our netmap_if in the if pool */
	u64 if_ofs;			/* its offset in the region */
	u32 first[PTNM_DIRS], last[PTNM_DIRS];	/* bound krings [first, last) */
	u32 mode;			/* NR_REG_* */
	u64 flags;			/* NR_* register flags */
	u32 extra_bufs;			/* extra buffers handed out */
	u32 extra_head;			/* list head as handed out */
};

/* The register request, already checked for reserved bits and modes. */
int ptnm_file_register(struct ptnm_file *pf, struct ptnm_port *port,
		       struct nmreq_register *reg);
/* Caller holds ptnm_lock; the file is going away. */
void ptnm_file_unregister(struct ptnm_file *pf);

/* NIOCTXSYNC/NIOCRXSYNC and poll on a registered file. */
long ptnm_file_sync(struct ptnm_file *pf, enum ptnm_dir dir);
__poll_t ptnm_file_poll(struct file *file, struct ptnm_file *pf,
			poll_table *wait);

/* ---------------------------------------------------------------------- */
/* VALE and NIC ports (vale.c, nic.c; their shared parts are in vale.h)    */
/* ---------------------------------------------------------------------- */

/* In the lookup chain after pipes: "valeX:port", then any netdev. */
extern const struct ptnm_port_type ptnm_vale_type;
extern const struct ptnm_port_type ptnm_nic_type;
/* Before NIC ports: the netdevs of passthrough guest ports (pt_guest.c). */
extern const struct ptnm_port_type ptnm_ptg_type;

/* A private region of the given pool sizes (mem.c, for VALE ports). */
struct ptnm_region *ptnm_region_new_private_sized(u32 nifs, u32 nrings,
						  u32 nbufs);

#endif /* _PTNETMAP_KERN_H_ */
