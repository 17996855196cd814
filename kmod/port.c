// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap ports and rings.
 *
 * Owns what every port type shares: finding a port by name (the lookup
 * chain), port references, the krings and their netmap_rings in the port's
 * region, binding an open file to (some of) a port's rings, and the sync
 * path: the prologue that validates head and cur as userspace left them,
 * the call into the port type, the epilogue that publishes tail, and poll.
 *
 * Userspace may write anything into a ring at any time. A sync reads head
 * and cur once, checks them against the kernel's copies (rhead, rtail), and
 * on garbage reinitialises the ring from the kernel's state instead of
 * trusting it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/ktime.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/timekeeping.h>

#include "ptnetmap_kern.h"

/* Serialises port lookup, creation, registration; see the lock order. */
DEFINE_MUTEX(ptnm_lock);

/*
 * The lookup chain, in netmap's order: null ports (by mode), pipes, then
 * (later) VALE ports and network interfaces.
 */
static const struct ptnm_port_type *const ptnm_port_types[] = {
	&ptnm_null_type,
	&ptnm_pipe_type,
	&ptnm_vale_type,
	&ptnm_ptg_type,
	&ptnm_nic_type,
};

static int ptnm_port_lookup_chain(const char *name,
				  const struct ptnm_port_req *req,
				  struct ptnm_port **portp, bool pipes)
{
	int i, err;

	lockdep_assert_held(&ptnm_lock);
	*portp = NULL;
	for (i = 0; i < ARRAY_SIZE(ptnm_port_types); i++) {
		if (!pipes && ptnm_port_types[i] == &ptnm_pipe_type)
			continue;
		err = ptnm_port_types[i]->lookup(name, req, portp);
		if (err || *portp)
			return err;
	}
	return -ENXIO;
}

int ptnm_port_lookup(const char *name, const struct ptnm_port_req *req,
		     struct ptnm_port **portp)
{
	return ptnm_port_lookup_chain(name, req, portp, true);
}

int ptnm_port_lookup_parent(const char *name, const struct ptnm_port_req *req,
			    struct ptnm_port **portp)
{
	return ptnm_port_lookup_chain(name, req, portp, false);
}

int ptnm_port_init(struct ptnm_port *port, const char *name,
		   const struct ptnm_port_ops *ops, struct ptnm_region *region,
		   const struct ptnm_port_req *geometry)
{
	u32 max_slots = ptnm_mem_max_slots(region);
	int d;

	if (strscpy(port->name, name, sizeof(port->name)) < 0)
		return -EINVAL;
	for (d = 0; d < PTNM_DIRS; d++) {
		if (geometry->num_rings[d] > PTNM_MAX_RINGS ||
		    geometry->num_host_rings[d] > PTNM_MAX_HOST_RINGS)
			return -EINVAL;
		port->num_rings[d] = geometry->num_rings[d] ?: 1;
		port->num_host_rings[d] = geometry->num_host_rings[d];
		/* Like netmap, clamp slot counts rather than refuse them. */
		port->num_slots[d] = clamp_t(u32, geometry->num_slots[d],
					     PTNM_MIN_SLOTS, max_slots);
	}
	port->ops = ops;
	port->region = ptnm_region_get(region);
	port->refs = 1;
	INIT_LIST_HEAD(&port->list);
	INIT_LIST_HEAD(&port->pipes);
	return 0;
}

void ptnm_port_get(struct ptnm_port *port)
{
	lockdep_assert_held(&ptnm_lock);
	port->refs++;
}

void ptnm_port_put(struct ptnm_port *port)
{
	lockdep_assert_held(&ptnm_lock);
	if (WARN_ON_ONCE(!port->refs) || --port->refs)
		return;
	WARN_ON_ONCE(port->active_users);
	port->ops->destroy(port);
}

void ptnm_port_fini(struct ptnm_port *port)
{
	ptnm_region_put(port->region);
	port->region = NULL;
}

/* ---------------------------------------------------------------------- */
/* Krings and rings                                                        */
/* ---------------------------------------------------------------------- */

static void ptnm_kring_free_ring(struct ptnm_kring *kring)
{
	struct ptnm_region *region = kring->port->region;
	u32 i;

	/* Whatever buffers the slots hold now go back; bad ones are ignored. */
	for (i = 0; i < kring->num_slots; i++)
		ptnm_obj_free(region, PTNM_POOL_BUF,
			      READ_ONCE(kring->ring->slot[i].buf_idx));
	ptnm_obj_free(region, PTNM_POOL_RING, kring->ring_idx);
}

static int ptnm_kring_init(struct ptnm_port *port, struct ptnm_kring *kring,
			   enum ptnm_dir dir, u32 id)
{
	struct ptnm_region *region = port->region;
	struct netmap_ring *ring;
	u32 n = port->num_slots[dir];
	int idx, i;

	idx = ptnm_obj_alloc(region, PTNM_POOL_RING);
	if (idx < 0)
		return idx;
	ring = ptnm_obj_vaddr(region, PTNM_POOL_RING, idx);
	memset(ring, 0, sizeof(*ring) + n * sizeof(struct netmap_slot));

	kring->port = port;
	kring->ring = ring;
	kring->ring_idx = idx;
	kring->ring_ofs = ptnm_obj_offset(region, PTNM_POOL_RING, idx);
	kring->num_slots = n;
	kring->ring_id = id;
	kring->dir = dir;
	kring->host = id >= port->num_rings[dir];
	mutex_init(&kring->sync_lock);
	init_waitqueue_head(&kring->wq);
	kring->notify = ptnm_kring_notify;
	u64_stats_init(&kring->stats.syncp);

	/* TX starts with n - 1 free slots, RX with nothing received. */
	kring->nr_hwcur = 0;
	kring->nr_hwtail = dir == PTNM_TX ? n - 1 : 0;
	kring->rhead = kring->rcur = 0;
	kring->rtail = kring->nr_hwtail;

	ring->buf_ofs = (s64)region->pools[PTNM_POOL_BUF].offset -
			(s64)kring->ring_ofs;
	ring->num_slots = n;
	ring->nr_buf_size = ptnm_buf_size(region);
	ring->ringid = id;
	ring->dir = dir;
	ring->tail = kring->rtail;

	for (i = 0; i < n; i++) {
		int b = ptnm_obj_alloc(region, PTNM_POOL_BUF);

		if (b < 0) {
			ptnm_kring_free_ring(kring);
			return b;
		}
		ring->slot[i].buf_idx = b;
	}
	return 0;
}

int ptnm_port_rings_create(struct ptnm_port *port)
{
	int d, i, err;

	lockdep_assert_held(&ptnm_lock);
	if (port->active)
		return 0;
	for (d = 0; d < PTNM_DIRS; d++) {
		port->krings[d] = kcalloc(ptnm_port_all_rings(port, d),
					  sizeof(struct ptnm_kring), GFP_KERNEL);
		if (!port->krings[d]) {
			err = -ENOMEM;
			goto err_free;
		}
	}
	for (d = 0; d < PTNM_DIRS; d++) {
		for (i = 0; i < ptnm_port_all_rings(port, d); i++) {
			err = ptnm_kring_init(port, &port->krings[d][i], d, i);
			if (err)
				goto err_rings;
		}
	}
	port->active = true;
	return 0;

err_rings:
	/* Unwind the rings made so far: all of earlier directions, i of d. */
	while (d >= 0) {
		while (i-- > 0)
			ptnm_kring_free_ring(&port->krings[d][i]);
		if (--d >= 0)
			i = ptnm_port_all_rings(port, d);
	}
err_free:
	for (d = 0; d < PTNM_DIRS; d++) {
		kfree(port->krings[d]);
		port->krings[d] = NULL;
	}
	return err;
}

void ptnm_port_rings_delete(struct ptnm_port *port)
{
	int d, i;

	lockdep_assert_held(&ptnm_lock);
	if (!port->active)
		return;
	for (d = 0; d < PTNM_DIRS; d++) {
		for (i = 0; i < ptnm_port_all_rings(port, d); i++)
			ptnm_kring_free_ring(&port->krings[d][i]);
		kfree(port->krings[d]);
		port->krings[d] = NULL;
	}
	port->active = false;
}

void ptnm_port_get_stats(struct ptnm_port *port, struct ptnm_port_stats *st)
{
	int d, i;

	lockdep_assert_held(&ptnm_lock);
	memset(st, 0, sizeof(*st));
	if (!port->active)
		return;
	for (d = 0; d < PTNM_DIRS; d++) {
		for (i = 0; i < ptnm_port_all_rings(port, d); i++) {
			struct ptnm_ring_stats *s = &port->krings[d][i].stats;
			u64 packets, bytes, drops;
			unsigned int start;

			do {
				start = u64_stats_fetch_begin(&s->syncp);
				packets = u64_stats_read(&s->packets);
				bytes = u64_stats_read(&s->bytes);
				drops = u64_stats_read(&s->drops);
			} while (u64_stats_fetch_retry(&s->syncp, start));
			if (d == PTNM_TX) {
				st->tx_packets += packets;
				st->tx_bytes += bytes;
				st->tx_drops += drops;
			} else {
				st->rx_packets += packets;
				st->rx_bytes += bytes;
				st->rx_drops += drops;
			}
		}
	}
}

void ptnm_kring_notify(struct ptnm_kring *kring)
{
	if (kring->dir == PTNM_TX)
		wake_up_interruptible_poll(&kring->wq, EPOLLOUT | EPOLLWRNORM);
	else
		wake_up_interruptible_poll(&kring->wq, EPOLLIN | EPOLLRDNORM);
}

/* ---------------------------------------------------------------------- */
/* Binding a file to a port                                                */
/* ---------------------------------------------------------------------- */

/* The rings a registration binds, from its mode, ring id and flags. */
static int ptnm_file_ring_range(struct ptnm_file *pf, struct ptnm_port *port,
				const struct nmreq_register *reg)
{
	u32 id = reg->nr_ringid;
	int d;

	for (d = 0; d < PTNM_DIRS; d++) {
		u32 nic = port->num_rings[d], host = port->num_host_rings[d];
		u32 first, last;

		switch (reg->nr_mode) {
		case NR_REG_DEFAULT:
		case NR_REG_ALL_NIC:
		case NR_REG_NULL:
			first = 0;
			last = nic;
			break;
		case NR_REG_SW:
			if (!host)
				return -EINVAL;
			first = nic;
			last = nic + host;
			break;
		case NR_REG_NIC_SW:
			first = 0;
			last = nic + host;
			break;
		case NR_REG_ONE_NIC:
			if (id >= nic)
				return -EINVAL;
			first = id;
			last = id + 1;
			break;
		case NR_REG_ONE_SW:
			if (id >= host)
				return -EINVAL;
			first = nic + id;
			last = first + 1;
			break;
		default:
			return -EINVAL;
		}
		if ((d == PTNM_TX && (reg->nr_flags & NR_RX_RINGS_ONLY)) ||
		    (d == PTNM_RX && (reg->nr_flags & NR_TX_RINGS_ONLY)))
			last = first;
		pf->first[d] = first;
		pf->last[d] = last;
	}
	return 0;
}

#define ptnm_for_each_bound(pf, d, i) \
	for (d = 0; d < PTNM_DIRS; d++) \
		for (i = (pf)->first[d]; i < (pf)->last[d]; i++)

/* The netmap_if of a registration: names, counts and every ring's offset. */
static void ptnm_file_fill_if(struct ptnm_file *pf, struct ptnm_port *port,
			      struct netmap_if *nifp)
{
	u32 ntx = ptnm_port_all_rings(port, PTNM_TX);
	u32 nrx = ptnm_port_all_rings(port, PTNM_RX);
	u32 i;

	memset(nifp, 0, PTNM_IF_OBJSIZE);
	strscpy(nifp->ni_name, port->name, sizeof(nifp->ni_name));
	nifp->ni_version = NETMAP_API;
	nifp->ni_flags = (port->region->flags & PTNM_REGION_PRIVATE) ?
			 NI_PRIV_MEM : 0;
	nifp->ni_tx_rings = port->num_rings[PTNM_TX];
	nifp->ni_rx_rings = port->num_rings[PTNM_RX];
	nifp->ni_host_tx_rings = port->num_host_rings[PTNM_TX];
	nifp->ni_host_rx_rings = port->num_host_rings[PTNM_RX];
	/* Order: NIC TX, host TX, NIC RX, host RX, as the krings are. */
	for (i = 0; i < ntx; i++)
		nifp->ring_ofs[i] = port->krings[PTNM_TX][i].ring_ofs - pf->if_ofs;
	for (i = 0; i < nrx; i++)
		nifp->ring_ofs[ntx + i] =
			port->krings[PTNM_RX][i].ring_ofs - pf->if_ofs;
}

/*
 * Extra buffers: a list linked through the first u32 of each buffer,
 * ending with 0, its head in ni_bufs_head. Returns how many were obtained.
 */
static u32 ptnm_file_extra_bufs(struct ptnm_file *pf, struct netmap_if *nifp,
				u32 wanted)
{
	struct ptnm_region *region = pf->region;
	u32 head = 0, n;
	int b;

	for (n = 0; n < wanted; n++) {
		b = ptnm_obj_alloc(region, PTNM_POOL_BUF);
		if (b < 0)
			break;
		*(u32 *)ptnm_buf_vaddr(region, b) = head;
		head = b;
	}
	nifp->ni_bufs_head = head;
	pf->extra_head = head;
	return n;
}

/*
 * Give back the extra buffers. The list is in shared memory, so it is
 * walked defensively: at most as many entries as were handed out, each
 * index checked; anything the application lost stays with the region.
 */
static void ptnm_file_free_extra_bufs(struct ptnm_file *pf,
				      struct netmap_if *nifp)
{
	struct ptnm_region *region = pf->region;
	u32 idx = READ_ONCE(nifp->ni_bufs_head);
	u32 n;

	for (n = 0; n < pf->extra_bufs && idx >= PTNM_RESERVED_BUFS &&
	     ptnm_buf_idx_ok(region, idx); n++) {
		u32 next = READ_ONCE(*(u32 *)ptnm_buf_vaddr(region, idx));

		ptnm_obj_free(region, PTNM_POOL_BUF, idx);
		idx = next;
	}
	pf->extra_bufs = 0;
}

/* Caller holds ptnm_lock; the caller's reference on port passes to pf. */
int ptnm_file_register(struct ptnm_file *pf, struct ptnm_port *port,
		       struct nmreq_register *reg)
{
	struct ptnm_region *region = port->region;
	struct netmap_if *nifp;
	bool activated = false;
	int d, i, idx, err;

	lockdep_assert_held(&ptnm_lock);
	if (ptnm_port_all_rings(port, PTNM_TX) +
	    ptnm_port_all_rings(port, PTNM_RX) >
	    (PTNM_IF_OBJSIZE - sizeof(struct netmap_if)) / sizeof(s64))
		return -EINVAL;
	err = ptnm_file_ring_range(pf, port, reg);
	if (err)
		return err;

	if (!port->active_users) {
		err = port->ops->activate(port);
		if (err)
			return err;
		activated = true;
	}

	ptnm_for_each_bound(pf, d, i) {
		struct ptnm_kring *kring = &port->krings[d][i];

		if (kring->exclusive ||
		    ((reg->nr_flags & NR_EXCLUSIVE) && kring->users)) {
			err = -EBUSY;
			goto err_deactivate;
		}
	}

	if (port->ops->nifp_offset) {
		/* The port's own netmap_if, shared by its files. */
		pf->region = ptnm_region_get(region);
		pf->if_idx = U32_MAX;
		pf->if_ofs = port->ops->nifp_offset(port);
		pf->extra_bufs = 0;
		goto bind;
	}
	idx = ptnm_obj_alloc(region, PTNM_POOL_IF);
	if (idx < 0) {
		err = idx;
		goto err_deactivate;
	}
	pf->region = ptnm_region_get(region);
	pf->if_idx = idx;
	pf->if_ofs = ptnm_obj_offset(region, PTNM_POOL_IF, idx);
	nifp = ptnm_obj_vaddr(region, PTNM_POOL_IF, idx);
	ptnm_file_fill_if(pf, port, nifp);
	pf->extra_bufs = ptnm_file_extra_bufs(pf, nifp, reg->nr_extra_bufs);

bind:
	ptnm_for_each_bound(pf, d, i) {
		struct ptnm_kring *kring = &port->krings[d][i];

		kring->users++;
		if (reg->nr_flags & NR_EXCLUSIVE)
			kring->exclusive = true;
	}
	port->active_users++;
	pf->mode = reg->nr_mode;
	pf->flags = reg->nr_flags;

	reg->nr_offset = pf->if_ofs;
	reg->nr_memsize = region->size;
	reg->nr_tx_slots = port->num_slots[PTNM_TX];
	reg->nr_rx_slots = port->num_slots[PTNM_RX];
	reg->nr_tx_rings = port->num_rings[PTNM_TX];
	reg->nr_rx_rings = port->num_rings[PTNM_RX];
	reg->nr_host_tx_rings = port->num_host_rings[PTNM_TX];
	reg->nr_host_rx_rings = port->num_host_rings[PTNM_RX];
	reg->nr_mem_id = region->id;
	reg->nr_extra_bufs = pf->extra_bufs;

	/* Everything is in place: the sync paths may now see the port. */
	smp_store_release(&pf->port, port);
	return 0;

err_deactivate:
	if (activated)
		port->ops->deactivate(port);
	return err;
}

void ptnm_file_unregister(struct ptnm_file *pf)
{
	struct ptnm_port *port = pf->port;
	struct netmap_if *nifp;
	int d, i;

	lockdep_assert_held(&ptnm_lock);
	if (!port)
		return;
	ptnm_for_each_bound(pf, d, i) {
		struct ptnm_kring *kring = &port->krings[d][i];

		kring->users--;
		if (pf->flags & NR_EXCLUSIVE)
			kring->exclusive = false;
	}
	if (pf->if_idx != U32_MAX) {	/* not the port's own netmap_if */
		nifp = ptnm_obj_vaddr(pf->region, PTNM_POOL_IF, pf->if_idx);
		ptnm_file_free_extra_bufs(pf, nifp);
		ptnm_obj_free(pf->region, PTNM_POOL_IF, pf->if_idx);
	}
	if (!--port->active_users)
		port->ops->deactivate(port);
	ptnm_region_put(pf->region);
	pf->region = NULL;
	pf->port = NULL;
	ptnm_port_put(port);
}

/* ---------------------------------------------------------------------- */
/* Sync                                                                    */
/* ---------------------------------------------------------------------- */

/*
 * Read head and cur once and check them: head may only move forward, up to
 * the tail last published; cur lies between head and that tail. Caller
 * holds kring->sync_lock.
 */
static int ptnm_kring_prologue(struct ptnm_kring *kring)
{
	struct netmap_ring *ring = kring->ring;
	u32 head = READ_ONCE(ring->head);
	u32 cur = READ_ONCE(ring->cur);

	if (head >= kring->num_slots || cur >= kring->num_slots)
		goto bad;
	if (ptnm_dist(kring, kring->rhead, head) >
	    ptnm_dist(kring, kring->rhead, kring->rtail))
		goto bad;
	if (ptnm_dist(kring, head, cur) > ptnm_dist(kring, head, kring->rtail))
		goto bad;
	kring->rhead = head;
	kring->rcur = cur;
	return 0;
bad:
	pr_info_ratelimited("%s %s ring %u: bad head %u cur %u (hwcur %u tail %u), ring reset\n",
			    kring->port->name,
			    kring->dir == PTNM_TX ? "tx" : "rx", kring->ring_id,
			    head, cur, kring->nr_hwcur, kring->rtail);
	return -EINVAL;
}

/* Publish the tail the port type reached. Caller holds kring->sync_lock. */
static void ptnm_kring_finalize(struct ptnm_kring *kring)
{
	/* Pairs with the port type's release of nr_hwtail after the slots. */
	u32 tail = smp_load_acquire(&kring->nr_hwtail);

	kring->rtail = tail;
	if (kring->dir == PTNM_RX && (READ_ONCE(kring->ring->flags) & NR_TIMESTAMP)) {
		struct timespec64 ts;

		ktime_get_real_ts64(&ts);
		kring->ring->ts.tv_sec = ts.tv_sec;
		kring->ring->ts.tv_usec = ts.tv_nsec / NSEC_PER_USEC;
	}
	smp_store_release(&kring->ring->tail, tail);
}

/*
 * Put the ring back in the state the kernel knows: head and cur at the
 * kernel's hwcur, tail at hwtail, and every slot holding a buffer of this
 * region with a sane length. Caller holds kring->sync_lock.
 */
static void ptnm_kring_reinit(struct ptnm_kring *kring)
{
	struct ptnm_region *region = kring->port->region;
	struct netmap_ring *ring = kring->ring;
	u32 bufsize = ptnm_buf_size(region);
	u32 i;

	kring->rhead = kring->rcur = kring->nr_hwcur;
	WRITE_ONCE(ring->head, kring->rhead);
	WRITE_ONCE(ring->cur, kring->rcur);
	for (i = 0; i < kring->num_slots; i++) {
		struct netmap_slot *slot = &ring->slot[i];

		if (!ptnm_buf_idx_ok(region, READ_ONCE(slot->buf_idx))) {
			WRITE_ONCE(slot->buf_idx, 0);
			WRITE_ONCE(slot->len, 0);
		}
		if (READ_ONCE(slot->len) > bufsize)
			WRITE_ONCE(slot->len, 0);
	}
	ptnm_kring_finalize(kring);
}

/*
 * One sync of one ring. Returns true if the ring had to be reinitialised;
 * *ready tells whether the application has slots beyond cur.
 */
static bool ptnm_kring_sync(struct ptnm_kring *kring, bool *ready)
{
	const struct ptnm_port_ops *ops = kring->port->ops;
	int err;

	mutex_lock(&kring->sync_lock);
	err = ptnm_kring_prologue(kring);
	if (!err)
		err = kring->dir == PTNM_TX ? ops->txsync(kring) :
					      ops->rxsync(kring);
	if (err)
		ptnm_kring_reinit(kring);
	else
		ptnm_kring_finalize(kring);
	*ready = kring->rcur != kring->rtail;
	mutex_unlock(&kring->sync_lock);
	return err != 0;
}

/*
 * NIOCTXSYNC/NIOCRXSYNC. Like netmap, a ring found in a bad state is
 * reinitialised and the call still succeeds; the application sees the
 * reset indexes.
 */
long ptnm_file_sync(struct ptnm_file *pf, enum ptnm_dir dir)
{
	struct ptnm_port *port = smp_load_acquire(&pf->port);
	bool ready;
	u32 i;

	if (!port || READ_ONCE(port->dead))
		return -ENXIO;
	for (i = pf->first[dir]; i < pf->last[dir]; i++)
		ptnm_kring_sync(&port->krings[dir][i], &ready);
	return 0;
}

/*
 * poll: TX rings are synced (pushing pending packets) unless NO_TX_POLL,
 * RX rings are synced when POLLIN is wanted; a ring is ready when the
 * application has slots beyond cur. The wait queues are registered before
 * the rings are looked at, so a notify after the check is never lost.
 */
__poll_t ptnm_file_poll(struct file *file, struct ptnm_file *pf,
			poll_table *wait)
{
	struct ptnm_port *port = smp_load_acquire(&pf->port);
	__poll_t events = poll_requested_events(wait);
	__poll_t want_tx = events & (EPOLLOUT | EPOLLWRNORM);
	__poll_t want_rx = events & (EPOLLIN | EPOLLRDNORM);
	__poll_t revents = 0;
	bool ready;
	int d;
	u32 i;

	if (!port)
		return EPOLLERR;
	ptnm_for_each_bound(pf, d, i)
		poll_wait(file, &port->krings[d][i].wq, wait);
	if (READ_ONCE(port->dead))
		return EPOLLERR;

	if (want_tx || !(pf->flags & NR_NO_TX_POLL)) {
		for (i = pf->first[PTNM_TX]; i < pf->last[PTNM_TX]; i++) {
			if (ptnm_kring_sync(&port->krings[PTNM_TX][i], &ready))
				revents |= EPOLLERR;
			if (ready)
				revents |= want_tx;
		}
	}
	if (want_rx) {
		for (i = pf->first[PTNM_RX]; i < pf->last[PTNM_RX]; i++) {
			if (ptnm_kring_sync(&port->krings[PTNM_RX][i], &ready))
				revents |= EPOLLERR;
			if (ready)
				revents |= want_rx;
		}
	}
	return revents;
}
