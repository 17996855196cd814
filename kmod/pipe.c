// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap pipes: `parent{id` (master end) and `parent}id` (slave end).
 *
 * A pipe is two ports in the parent's memory region; TX ring i of one end
 * feeds RX ring i of the other. Packets move without copies: a TX sync
 * swaps the buffer indexes of the sent slots with free slots of the peer RX
 * ring. Both ends' rings exist from the first registration of either end to
 * the last unregistration of both, so what one end sends waits for the
 * other end to open.
 *
 * A parent is any port the lookup chain finds (VALE, NIC, later); when the
 * name is unknown, an auto-created parent with a private region stands in,
 * and goes away with its last pipe. A parent holds any number of pipes.
 *
 * Locking: the pair's datapath state (nr_hwcur/nr_hwtail of both ends'
 * rings) is protected by pipe->lock, taken inside kring->sync_lock.
 * Creation and destruction happen under ptnm_lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "ptnetmap_kern.h"

/* Slots of a pipe ring when the request leaves it to us. */
#define PTNM_PIPE_DEFAULT_SLOTS	1024

enum { PTNM_PIPE_MASTER, PTNM_PIPE_SLAVE, PTNM_PIPE_ENDS };

struct ptnm_pipe {
	struct list_head node;		/* in parent->pipes; ptnm_lock */
	struct ptnm_port *parent;	/* a reference */
	char id[NETMAP_REQ_IFNAMSIZ];
	struct ptnm_port ends[PTNM_PIPE_ENDS];
	unsigned int active_ends;	/* ptnm_lock */
	spinlock_t lock;		/* both ends' hwcur/hwtail */
};

/* Auto-created parents, by name; protected by ptnm_lock. */
static LIST_HEAD(ptnm_pipe_parents);

/* ---------------------------------------------------------------------- */
/* Datapath                                                                */
/* ---------------------------------------------------------------------- */

/*
 * Send [nr_hwcur, rhead) into the peer RX ring, as far as it has room:
 * each sent slot's buffer trades places with the peer slot's free buffer.
 * A slot with a buffer index outside the region or a length beyond the
 * buffer size stops the sync as an error of this ring. Caller holds
 * kring->sync_lock.
 */
static int ptnm_pipe_txsync(struct ptnm_kring *kring)
{
	struct ptnm_pipe *pipe = kring->port->priv;
	struct ptnm_region *region = kring->port->region;
	struct ptnm_kring *rx = kring->priv;
	u32 bufsize = ptnm_buf_size(region);
	u32 ti, ri, todo, room, k;
	u64 bytes = 0;
	int err = 0;

	spin_lock(&pipe->lock);
	ti = kring->nr_hwcur;
	ri = rx->nr_hwtail;
	todo = ptnm_dist(kring, ti, kring->rhead);
	room = ptnm_dist(rx, ri, ptnm_prev(rx, rx->nr_hwcur));
	for (k = 0; k < min(todo, room); k++) {
		struct netmap_slot *ts = &kring->ring->slot[ti];
		struct netmap_slot *rs = &rx->ring->slot[ri];
		u32 tidx = READ_ONCE(ts->buf_idx);
		u16 tlen = READ_ONCE(ts->len);
		u16 tflags = READ_ONCE(ts->flags);
		u32 ridx = READ_ONCE(rs->buf_idx);

		if (!ptnm_buf_idx_ok(region, tidx) || tlen > bufsize) {
			pr_info_ratelimited("%s tx ring %u slot %u: bad buffer %u len %u\n",
					    kring->port->name, kring->ring_id,
					    ti, tidx, tlen);
			err = -EINVAL;
			break;
		}
		/* The receiver may have left garbage in a released slot. */
		if (!ptnm_buf_idx_ok(region, ridx))
			ridx = 0;
		rs->buf_idx = tidx;
		rs->len = tlen;
		rs->flags = (tflags & NS_MOREFRAG) | NS_BUF_CHANGED;
		rs->ptr = 0;
		ts->buf_idx = ridx;
		ts->flags = NS_BUF_CHANGED;
		bytes += tlen;
		ti = ptnm_next(kring, ti);
		ri = ptnm_next(rx, ri);
	}
	kring->nr_hwcur = ti;
	/* Sent slots hold the peer's free buffers now: all of them are ours. */
	kring->nr_hwtail = ptnm_prev(kring, ti);
	/* The slots are written before the peer can see them. */
	smp_store_release(&rx->nr_hwtail, ri);
	spin_unlock(&pipe->lock);

	if (k) {
		ptnm_kring_count(kring, k, bytes, 0);
		rx->notify(rx);
	}
	return err;
}

/*
 * Release [nr_hwcur, rhead) to the peer's sender; what it sent is already
 * in [rtail, nr_hwtail). A sender waiting for room is woken. Caller holds
 * kring->sync_lock.
 */
static int ptnm_pipe_rxsync(struct ptnm_kring *kring)
{
	struct ptnm_pipe *pipe = kring->port->priv;
	struct ptnm_kring *tx = kring->priv;
	bool released, tx_pending;
	u32 arrived;

	spin_lock(&pipe->lock);
	released = kring->nr_hwcur != kring->rhead;
	kring->nr_hwcur = kring->rhead;
	tx_pending = tx->nr_hwcur != READ_ONCE(tx->rhead);
	arrived = ptnm_dist(kring, kring->rtail, kring->nr_hwtail);
	spin_unlock(&pipe->lock);

	if (arrived)
		ptnm_kring_count(kring, arrived, 0, 0);
	if (released && tx_pending)
		tx->notify(tx);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Pairs                                                                   */
/* ---------------------------------------------------------------------- */

static struct ptnm_pipe *ptnm_pipe_of(struct ptnm_port *end)
{
	return end->priv;
}

static struct ptnm_port *ptnm_pipe_peer(struct ptnm_port *end)
{
	struct ptnm_pipe *pipe = ptnm_pipe_of(end);

	return end == &pipe->ends[PTNM_PIPE_MASTER] ?
	       &pipe->ends[PTNM_PIPE_SLAVE] : &pipe->ends[PTNM_PIPE_MASTER];
}

/* Point each TX kring at the peer's RX kring of the same index. */
static void ptnm_pipe_link(struct ptnm_pipe *pipe)
{
	struct ptnm_port *m = &pipe->ends[PTNM_PIPE_MASTER];
	struct ptnm_port *s = &pipe->ends[PTNM_PIPE_SLAVE];
	u32 i;

	for (i = 0; i < m->num_rings[PTNM_TX]; i++) {
		m->krings[PTNM_TX][i].priv = &s->krings[PTNM_RX][i];
		s->krings[PTNM_RX][i].priv = &m->krings[PTNM_TX][i];
	}
	for (i = 0; i < s->num_rings[PTNM_TX]; i++) {
		s->krings[PTNM_TX][i].priv = &m->krings[PTNM_RX][i];
		m->krings[PTNM_RX][i].priv = &s->krings[PTNM_TX][i];
	}
}

/* Caller holds ptnm_lock. */
static int ptnm_pipe_activate(struct ptnm_port *end)
{
	struct ptnm_pipe *pipe = ptnm_pipe_of(end);
	int err;

	if (pipe->active_ends++)
		return 0;
	err = ptnm_port_rings_create(&pipe->ends[PTNM_PIPE_MASTER]);
	if (err)
		goto err;
	err = ptnm_port_rings_create(&pipe->ends[PTNM_PIPE_SLAVE]);
	if (err)
		goto err_master;
	ptnm_pipe_link(pipe);
	return 0;

err_master:
	ptnm_port_rings_delete(&pipe->ends[PTNM_PIPE_MASTER]);
err:
	pipe->active_ends--;
	return err;
}

/* Caller holds ptnm_lock. */
static void ptnm_pipe_deactivate(struct ptnm_port *end)
{
	struct ptnm_pipe *pipe = ptnm_pipe_of(end);

	if (--pipe->active_ends)
		return;
	ptnm_port_rings_delete(&pipe->ends[PTNM_PIPE_MASTER]);
	ptnm_port_rings_delete(&pipe->ends[PTNM_PIPE_SLAVE]);
}

/*
 * An end lost its last reference; the pair goes when both have. Caller
 * holds ptnm_lock.
 */
static void ptnm_pipe_destroy(struct ptnm_port *end)
{
	struct ptnm_pipe *pipe = ptnm_pipe_of(end);
	struct ptnm_port *peer = ptnm_pipe_peer(end);

	if (peer->refs)
		return;
	list_del(&pipe->node);
	ptnm_port_fini(&pipe->ends[PTNM_PIPE_MASTER]);
	ptnm_port_fini(&pipe->ends[PTNM_PIPE_SLAVE]);
	ptnm_port_put(pipe->parent);
	kfree(pipe);
}

static const struct ptnm_port_ops ptnm_pipe_ops = {
	.activate = ptnm_pipe_activate,
	.deactivate = ptnm_pipe_deactivate,
	.txsync = ptnm_pipe_txsync,
	.rxsync = ptnm_pipe_rxsync,
	.destroy = ptnm_pipe_destroy,
};

/* ---------------------------------------------------------------------- */
/* Auto-created parents                                                    */
/* ---------------------------------------------------------------------- */

static int ptnm_pipe_parent_activate(struct ptnm_port *port)
{
	return -EOPNOTSUPP;	/* never registered: not findable by name */
}

static void ptnm_pipe_parent_deactivate(struct ptnm_port *port)
{
}

static int ptnm_pipe_parent_sync(struct ptnm_kring *kring)
{
	return -EOPNOTSUPP;
}

static void ptnm_pipe_parent_destroy(struct ptnm_port *port)
{
	list_del(&port->list);
	ptnm_port_fini(port);
	kfree(port);
}

static const struct ptnm_port_ops ptnm_pipe_parent_ops = {
	.activate = ptnm_pipe_parent_activate,
	.deactivate = ptnm_pipe_parent_deactivate,
	.txsync = ptnm_pipe_parent_sync,
	.rxsync = ptnm_pipe_parent_sync,
	.destroy = ptnm_pipe_parent_destroy,
};

/*
 * The parent called `name`: an existing port, an existing auto parent, or
 * a new auto parent in its own private region (or in the region the
 * request names). Returns a reference. Caller holds ptnm_lock.
 */
static int ptnm_pipe_parent_get(const char *name,
				const struct ptnm_port_req *req,
				struct ptnm_port **parentp)
{
	struct ptnm_port_req none = { .mem_id = 0 };
	struct ptnm_region *region;
	struct ptnm_port *parent;
	int err;

	err = ptnm_port_lookup_parent(name, &none, &parent);
	if (!err) {
		*parentp = parent;
		return 0;
	}
	if (err != -ENXIO)
		return err;

	list_for_each_entry(parent, &ptnm_pipe_parents, list) {
		if (!strcmp(parent->name, name)) {
			ptnm_port_get(parent);
			*parentp = parent;
			return 0;
		}
	}

	if (req->region)
		region = ptnm_region_get(req->region);
	else if (req->mem_id)
		region = ptnm_region_get_by_id(req->mem_id);
	else
		region = ptnm_region_new_private();
	if (IS_ERR(region))
		return PTR_ERR(region) == -ENOENT ? -EINVAL : PTR_ERR(region);

	parent = kzalloc(sizeof(*parent), GFP_KERNEL);
	err = -ENOMEM;
	if (!parent)
		goto out;
	err = ptnm_port_init(parent, name, &ptnm_pipe_parent_ops, region, &none);
	if (err) {
		kfree(parent);
		goto out;
	}
	list_add(&parent->list, &ptnm_pipe_parents);
	*parentp = parent;
out:
	ptnm_region_put(region);
	return err;
}

/* Split "parent{id" / "parent}id"; returns the end, or a negative errno. */
static int ptnm_pipe_parse(const char *name, char *parent, char *id)
{
	const char *sep = strpbrk(name, "{}");
	size_t plen;

	if (!sep)
		return -ENOENT;
	plen = sep - name;
	if (!plen || !sep[1] || strpbrk(sep + 1, "{}"))
		return -EINVAL;
	memcpy(parent, name, plen);
	parent[plen] = '\0';
	strscpy(id, sep + 1, NETMAP_REQ_IFNAMSIZ);
	return *sep == '{' ? PTNM_PIPE_MASTER : PTNM_PIPE_SLAVE;
}

static int ptnm_pipe_create(struct ptnm_port *parent, const char *pname,
			    const char *id, int end,
			    const struct ptnm_port_req *req,
			    struct ptnm_pipe **pipep)
{
	struct ptnm_port_req geo[PTNM_PIPE_ENDS] = {};
	struct ptnm_pipe *pipe;
	char name[NETMAP_REQ_IFNAMSIZ];
	int d, e, err;

	/* The requested end gets what it asked for; the peer the mirror. */
	for (d = 0; d < PTNM_DIRS; d++) {
		geo[end].num_rings[d] = req->num_rings[d];
		geo[end].num_slots[d] = req->num_slots[d] ?:
					PTNM_PIPE_DEFAULT_SLOTS;
		geo[!end].num_rings[!d] = geo[end].num_rings[d];
		geo[!end].num_slots[!d] = geo[end].num_slots[d];
	}

	pipe = kzalloc(sizeof(*pipe), GFP_KERNEL);
	if (!pipe)
		return -ENOMEM;
	spin_lock_init(&pipe->lock);
	strscpy(pipe->id, id, sizeof(pipe->id));
	for (e = 0; e < PTNM_PIPE_ENDS; e++) {
		snprintf(name, sizeof(name), "%s%c%s", pname,
			 e == PTNM_PIPE_MASTER ? '{' : '}', id);
		err = ptnm_port_init(&pipe->ends[e], name, &ptnm_pipe_ops,
				     parent->region, &geo[e]);
		if (err)
			goto err;
		pipe->ends[e].priv = pipe;
		pipe->ends[e].refs = 0;
	}
	ptnm_port_get(parent);
	pipe->parent = parent;
	list_add(&pipe->node, &parent->pipes);
	*pipep = pipe;
	return 0;
err:
	if (e == PTNM_PIPE_SLAVE)
		ptnm_port_fini(&pipe->ends[PTNM_PIPE_MASTER]);
	kfree(pipe);
	return err;
}

/* Caller holds ptnm_lock. */
static int ptnm_pipe_lookup(const char *name, const struct ptnm_port_req *req,
			    struct ptnm_port **portp)
{
	char pname[NETMAP_REQ_IFNAMSIZ], id[NETMAP_REQ_IFNAMSIZ];
	struct ptnm_port *parent;
	struct ptnm_pipe *pipe;
	int end, err;

	end = ptnm_pipe_parse(name, pname, id);
	if (end == -ENOENT)
		return 0;
	if (end < 0) {
		pr_info_ratelimited("bad pipe name %s\n", name);
		return end;
	}
	err = ptnm_pipe_parent_get(pname, req, &parent);
	if (err)
		return err;
	if (req->region && req->region != parent->region) {
		err = -EINVAL;
		goto out;
	}
	if (req->mem_id && req->mem_id != parent->region->id) {
		err = -EINVAL;
		goto out;
	}

	list_for_each_entry(pipe, &parent->pipes, node)
		if (!strcmp(pipe->id, id))
			goto found;
	err = ptnm_pipe_create(parent, pname, id, end, req, &pipe);
	if (err)
		goto out;
found:
	ptnm_port_get(&pipe->ends[end]);
	*portp = &pipe->ends[end];
out:
	ptnm_port_put(parent);
	return err;
}

const struct ptnm_port_type ptnm_pipe_type = {
	.name = "pipe",
	.lookup = ptnm_pipe_lookup,
};
