// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap VALE switches: learning Ethernet bridges between netmap ports.
 *
 * Owns the switches (`valeX:port`, any switch name starting with "vale"),
 * their ports, the forwarding path, the VALE control requests and the
 * per-port counters. A switch port is one of:
 *
 *   virtual  a netmap port with its own private region (`valeX:p`), made
 *            on first open and destroyed on last close, or made persistent
 *            by VALE_NEWIF until VALE_DELIF;
 *   NIC      a netdev attached with VALE_ATTACH (`valeX:eth0`): what the
 *            switch sends it goes out of the device, what the device
 *            receives enters the switch (nic.c does the netdev side);
 *   host     that netdev's host stack (`valeX:eth0^`, attached with mode
 *            NR_REG_NIC_SW): frames from the switch go up the stack, what
 *            the stack transmits on the device enters the switch.
 *
 * Forwarding (ptnm_vale_forward): a TX sync takes up to PTNM_VALE_BATCH
 * packets, checks each slot, learns the source MAC (unless NS_NO_LEARN),
 * looks up the destination MAC (unicast to the learned port, multicast or
 * unknown flooded, never back to the source), then visits each destination
 * once per batch and copies its packets into that port's own buffers. A
 * destination with no room drops (counted) instead of blocking the sender.
 *
 * Locking:
 *   ptnm_lock         switch table, sw->ports[] updates, sw->nports, port
 *                     creation and removal, persistence, attachments.
 *   RCU               the datapath reads sw->ports[] under rcu_read_lock
 *                     with bottom halves disabled; a port leaves the table
 *                     and a grace period passes before it is freed or its
 *                     receive rings are deleted (vp->rx_on cleared first).
 *   rxq->lock         (spinlock, bh) per destination RX ring: several
 *                     senders on several CPUs fill one ring one at a time;
 *                     the ring's rxsync takes it to return slots.
 *   fdb               no lock: each entry is one u64 (MAC and port) written
 *                     and read whole; a lost race costs one flood.
 * The sender's own TX ring is protected by its kring->sync_lock.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/err.h>
#include <linux/etherdevice.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/vmalloc.h>

#include "ptnetmap_kern.h"
#include "vale.h"

static unsigned int vale_max_switches = 16;
module_param(vale_max_switches, uint, 0444);
MODULE_PARM_DESC(vale_max_switches, "Most VALE switches at once (1..256; default 16)");

#define PTNM_VALE_PREFIX	"vale"
/* Port indexes fit the u8 of NS_PORT and leave 254/255 as markers. */
#define PTNM_VALE_MAX_PORTS	254
#define PTNM_VALE_MAX_RINGS	16
#define PTNM_VALE_SWITCHES_MAX	256
/* Packets handled per destination visit: amortises lock and wake-up. */
#define PTNM_VALE_BATCH		1024
#define PTNM_VALE_DEF_SLOTS	1024
#define PTNM_VALE_MAX_SLOTS	2048
/* Learning table entries (a power of two); collisions just flood. */
#define PTNM_VALE_FDB_BITS	10
#define PTNM_VALE_FDB_SIZE	(1 << PTNM_VALE_FDB_BITS)
/* Buffers of a private region beyond its rings' slots: extra_bufs. */
#define PTNM_VALE_SPARE_BUFS	256
/* Registrations a VALE port's region can hold (one per ring or so). */
#define PTNM_VALE_REGION_IFS	16

/* pkt->dst markers besides a port index. */
#define PTNM_VALE_NONE		0xfe
#define PTNM_VALE_FLOOD		0xff

/* Virtio-net header lengths a port may use (PORT_HDR_SET). */
#define PTNM_VNET_HDR_LEN	10
#define PTNM_VNET_HDR_MRG_LEN	12

enum ptnm_vale_kind { PTNM_VALE_VIRT, PTNM_VALE_NIC, PTNM_VALE_HOST };

struct ptnm_vale_switch;

/* What sits in a switch slot. */
struct ptnm_vale_sport {
	struct ptnm_vale_switch *sw;		/* constant */
	u8 idx;					/* in sw->ports[]; constant */
	u8 kind;				/* enum ptnm_vale_kind */
	char name[NETMAP_REQ_IFNAMSIZ];		/* after "valeX:"; constant */
	u32 hdr_len;				/* WRITE_ONCE under ptnm_lock */
	struct ptnm_counters cnt;
};

/* A virtual port: a netmap port on a switch. */
struct ptnm_vale_port {
	struct ptnm_port port;
	struct ptnm_vale_sport sp;
	bool persistent;			/* ptnm_lock */
	bool rx_on;				/* see the locking above */
};

/* A netdev (and maybe its host stack) attached to a switch. */
struct ptnm_vale_attach {
	struct ptnm_nic_bind bind;
	struct ptnm_vale_sport nic;
	struct ptnm_vale_sport host;
	bool with_host;				/* constant */
};

struct ptnm_vale_switch {
	char name[IFNAMSIZ];			/* constant */
	u16 idx;				/* in ptnm_vale_switches[] */
	unsigned int nports;			/* ptnm_lock */
	struct ptnm_vale_sport __rcu *ports[PTNM_VALE_MAX_PORTS];
	u64 fdb[PTNM_VALE_FDB_SIZE];		/* MAC | (index + 1) << 48 */
};

/* One packet of a batch: a frame in the sender's buffer. */
struct ptnm_vale_pkt {
	const u8 *buf;		/* starts with the sender's vnet header */
	u16 len;		/* header included */
	u8 dst;			/* port index, NONE or FLOOD */
	bool learn;
};

/* The switch table; protected by ptnm_lock. */
static struct ptnm_vale_switch **ptnm_vale_switches;

/* ---------------------------------------------------------------------- */
/* Counters                                                                */
/* ---------------------------------------------------------------------- */

int ptnm_counters_init(struct ptnm_counters *cnt)
{
	int cpu;

	cnt->pcpu = alloc_percpu(struct ptnm_counters_pcpu);
	if (!cnt->pcpu)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(cnt->pcpu, cpu)->syncp);
	return 0;
}

void ptnm_counters_free(struct ptnm_counters *cnt)
{
	free_percpu(cnt->pcpu);
	cnt->pcpu = NULL;
}

void ptnm_counters_read(struct ptnm_counters *cnt,
			struct ptnetmap_port_stats *out)
{
	u64 *sum = (u64 *)out;
	int cpu, i;

	static_assert(PTNM_CNT_MAX * sizeof(u64) <=
		      offsetof(struct ptnetmap_port_stats, spare));
	static_assert(offsetof(struct ptnetmap_port_stats, tx_drop_xmit) ==
		      PTNM_CNT_TX_DROP_XMIT * sizeof(u64));
	static_assert(offsetof(struct ptnetmap_port_stats, rx_drop_oversize) ==
		      PTNM_CNT_RX_DROP_OVERSIZE * sizeof(u64));

	memset(out, 0, sizeof(*out));
	for_each_possible_cpu(cpu) {
		struct ptnm_counters_pcpu *p = per_cpu_ptr(cnt->pcpu, cpu);
		u64 v[PTNM_CNT_MAX];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&p->syncp);
			for (i = 0; i < PTNM_CNT_MAX; i++)
				v[i] = u64_stats_read(&p->c[i]);
		} while (u64_stats_fetch_retry(&p->syncp, start));
		for (i = 0; i < PTNM_CNT_MAX; i++)
			sum[i] += v[i];
	}
}

/* ---------------------------------------------------------------------- */
/* Receive queues                                                          */
/* ---------------------------------------------------------------------- */

int ptnm_rxq_create(struct ptnm_port *port)
{
	u32 i, n = ptnm_port_all_rings(port, PTNM_RX);

	for (i = 0; i < n; i++) {
		struct ptnm_kring *kring = &port->krings[PTNM_RX][i];
		struct ptnm_rxq *q = kzalloc(sizeof(*q), GFP_KERNEL);

		if (!q) {
			ptnm_rxq_delete(port);
			return -ENOMEM;
		}
		spin_lock_init(&q->lock);
		q->tail = kring->nr_hwtail;
		q->hwcur = kring->nr_hwcur;
		kring->priv = q;
	}
	return 0;
}

/* Nobody may fill the rings any more (a grace period has passed). */
void ptnm_rxq_delete(struct ptnm_port *port)
{
	u32 i, n = ptnm_port_all_rings(port, PTNM_RX);

	for (i = 0; i < n; i++) {
		kfree(port->krings[PTNM_RX][i].priv);
		port->krings[PTNM_RX][i].priv = NULL;
	}
}

int ptnm_rxq_rxsync(struct ptnm_kring *kring)
{
	struct ptnm_rxq *q = kring->priv;
	u32 tail;

	spin_lock_bh(&q->lock);
	q->hwcur = kring->rhead;
	tail = q->tail;
	spin_unlock_bh(&q->lock);
	kring->nr_hwcur = kring->rhead;
	/* The slots before tail were filled under q->lock, seen above. */
	smp_store_release(&kring->nr_hwtail, tail);
	return 0;
}

void *ptnm_rxq_next_buf(struct ptnm_kring *kring, enum ptnm_cnt *why)
{
	struct ptnm_rxq *q = kring->priv;
	struct ptnm_region *region = kring->port->region;
	u32 idx;

	if (q->tail == ptnm_prev(kring, q->hwcur)) {
		*why = PTNM_CNT_RX_DROP_RING_FULL;
		return NULL;
	}
	/* The application may have put any index there (BUF_CHANGED). */
	idx = READ_ONCE(kring->ring->slot[q->tail].buf_idx);
	if (!ptnm_buf_idx_ok(region, idx)) {
		*why = PTNM_CNT_RX_DROP_BAD_BUF;
		return NULL;
	}
	return ptnm_buf_vaddr(region, idx);
}

void ptnm_rxq_commit(struct ptnm_kring *kring, u16 len)
{
	struct ptnm_rxq *q = kring->priv;
	struct netmap_slot *slot = &kring->ring->slot[q->tail];

	WRITE_ONCE(slot->len, len);
	WRITE_ONCE(slot->flags, 0);
	q->tail = ptnm_next(kring, q->tail);
}

/* ---------------------------------------------------------------------- */
/* Switches and the learning table                                         */
/* ---------------------------------------------------------------------- */

static struct ptnm_vale_sport *ptnm_vale_slot(struct ptnm_vale_switch *sw,
					      unsigned int i)
{
	return rcu_dereference_protected(sw->ports[i],
					 lockdep_is_held(&ptnm_lock));
}

/*
 * Split "valeX:port". Returns 1 for a VALE name (switch name copied, port
 * name pointed at), 0 for a name of another kind, or -EINVAL.
 */
static int ptnm_vale_parse(const char *name, char *swname, const char **pname)
{
	const char *colon;

	if (strncmp(name, PTNM_VALE_PREFIX, strlen(PTNM_VALE_PREFIX)))
		return 0;
	colon = strchr(name, ':');
	if (!colon)
		return 0;
	if (colon - name >= IFNAMSIZ || !colon[1]) {
		pr_info_ratelimited("%s: a VALE name is valeX:port, switch name below %d characters\n",
				    name, IFNAMSIZ);
		return -EINVAL;
	}
	memcpy(swname, name, colon - name);
	swname[colon - name] = '\0';
	*pname = colon + 1;
	return 1;
}

/* Caller holds ptnm_lock. */
static struct ptnm_vale_switch *ptnm_vale_switch_find(const char *swname)
{
	unsigned int i;

	for (i = 0; i < vale_max_switches; i++)
		if (ptnm_vale_switches[i] &&
		    !strcmp(ptnm_vale_switches[i]->name, swname))
			return ptnm_vale_switches[i];
	return NULL;
}

/* Caller holds ptnm_lock. A switch exists while it has ports. */
static struct ptnm_vale_switch *ptnm_vale_switch_get(const char *swname)
{
	struct ptnm_vale_switch *sw = ptnm_vale_switch_find(swname);
	unsigned int i;

	if (sw)
		return sw;
	for (i = 0; i < vale_max_switches; i++)
		if (!ptnm_vale_switches[i])
			break;
	if (i == vale_max_switches) {
		pr_info_ratelimited("%s: too many VALE switches (vale_max_switches=%u)\n",
				    swname, vale_max_switches);
		return ERR_PTR(-ENOSPC);
	}
	sw = kvzalloc(sizeof(*sw), GFP_KERNEL);
	if (!sw)
		return ERR_PTR(-ENOMEM);
	strscpy(sw->name, swname, sizeof(sw->name));
	sw->idx = i;
	ptnm_vale_switches[i] = sw;
	return sw;
}

/* Caller holds ptnm_lock; no sender can see the switch (no ports). */
static void ptnm_vale_switch_put_if_empty(struct ptnm_vale_switch *sw)
{
	if (sw->nports)
		return;
	ptnm_vale_switches[sw->idx] = NULL;
	kvfree(sw);
}

/* Caller holds ptnm_lock. */
static struct ptnm_vale_sport *ptnm_vale_find(struct ptnm_vale_switch *sw,
					      const char *pname)
{
	unsigned int i;

	for (i = 0; i < PTNM_VALE_MAX_PORTS; i++) {
		struct ptnm_vale_sport *sp = ptnm_vale_slot(sw, i);

		if (sp && !strcmp(sp->name, pname))
			return sp;
	}
	return NULL;
}

/* A free index, or -ENOSPC. Caller holds ptnm_lock. */
static int ptnm_vale_free_idx(struct ptnm_vale_switch *sw, unsigned int from)
{
	unsigned int i;

	for (i = from; i < PTNM_VALE_MAX_PORTS; i++)
		if (!ptnm_vale_slot(sw, i))
			return i;
	pr_info_ratelimited("%s: a VALE switch has at most %d ports\n",
			    sw->name, PTNM_VALE_MAX_PORTS);
	return -ENOSPC;
}

static int ptnm_vale_sport_init(struct ptnm_vale_sport *sp,
				struct ptnm_vale_switch *sw, int idx,
				const char *pname, enum ptnm_vale_kind kind)
{
	if (strscpy(sp->name, pname, sizeof(sp->name)) < 0)
		return -EINVAL;
	sp->sw = sw;
	sp->idx = idx;
	sp->kind = kind;
	return ptnm_counters_init(&sp->cnt);
}

/* Caller holds ptnm_lock. */
static void ptnm_vale_link(struct ptnm_vale_sport *sp)
{
	rcu_assign_pointer(sp->sw->ports[sp->idx], sp);
	sp->sw->nports++;
}

static void ptnm_vale_fdb_forget(struct ptnm_vale_switch *sw, u8 idx)
{
	unsigned int i;

	for (i = 0; i < PTNM_VALE_FDB_SIZE; i++)
		if ((READ_ONCE(sw->fdb[i]) >> 48) == (u64)idx + 1)
			WRITE_ONCE(sw->fdb[i], 0);
}

/*
 * Take sp out of its switch's table. Once a grace period has passed no
 * datapath sees it any more; then ptnm_vale_forget() clears what was
 * learned about it (senders in flight may have relearned it until then).
 * Caller holds ptnm_lock.
 */
static void ptnm_vale_unpublish(struct ptnm_vale_sport *sp)
{
	RCU_INIT_POINTER(sp->sw->ports[sp->idx], NULL);
	sp->sw->nports--;
}

static void ptnm_vale_forget(struct ptnm_vale_sport *sp)
{
	ptnm_vale_fdb_forget(sp->sw, sp->idx);
}

static void ptnm_vale_learn(struct ptnm_vale_switch *sw, const u8 *src, u8 idx)
{
	u64 mac = ether_addr_to_u64(src);
	u64 entry = ptnm_rm_fdb_entry(mac, idx);
	u64 *e = &sw->fdb[ptnm_rm_fdb_slot(mac, PTNM_VALE_FDB_BITS)];

	if (is_multicast_ether_addr(src) || is_zero_ether_addr(src))
		return;
	/* Write only on change: the line stays shared between senders. */
	if (READ_ONCE(*e) != entry)
		WRITE_ONCE(*e, entry);
}

static u8 ptnm_vale_lookup_dst(struct ptnm_vale_switch *sw, const u8 *dst,
			       u8 src_idx)
{
	u64 mac = ether_addr_to_u64(dst);
	u64 e;

	if (is_multicast_ether_addr(dst))
		return PTNM_VALE_FLOOD;
	e = READ_ONCE(sw->fdb[ptnm_rm_fdb_slot(mac, PTNM_VALE_FDB_BITS)]);
	/* A frame for an address behind its own port goes nowhere. */
	return ptnm_rm_fdb_dst(e, mac, src_idx, PTNM_VALE_FLOOD, PTNM_VALE_NONE);
}

/* ---------------------------------------------------------------------- */
/* Forwarding                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Write the destination's virtio-net header: the sender's when both use the
 * same length, else an empty one (no offloads; one buffer).
 */
static void ptnm_vale_put_hdr(u8 *to, u32 dst_hl, const u8 *from, u32 src_hl)
{
	if (!dst_hl)
		return;
	if (src_hl == dst_hl) {
		memcpy(to, from, dst_hl);
		return;
	}
	memset(to, 0, dst_hl);
	if (dst_hl == PTNM_VNET_HDR_MRG_LEN)
		to[PTNM_VNET_HDR_LEN] = 1;	/* num_buffers, little endian */
}

static void ptnm_vale_deliver_virt(struct ptnm_vale_sport *dst,
				   struct ptnm_vale_sport *src, u32 src_hl,
				   u32 src_ring,
				   const struct ptnm_vale_pkt *pkts, u32 n)
{
	struct ptnm_vale_port *vp = container_of(dst, struct ptnm_vale_port, sp);
	u32 dst_hl = READ_ONCE(dst->hdr_len);
	u64 drops[PTNM_CNT_MAX] = {};
	u64 packets = 0, bytes = 0;
	struct ptnm_kring *kring;
	struct ptnm_rxq *q;
	u32 bufsize, i;

	/* Pairs with the release in activate: the krings are complete. */
	if (!smp_load_acquire(&vp->rx_on)) {
		for (i = 0; i < n; i++)
			if (pkts[i].dst == dst->idx || pkts[i].dst == PTNM_VALE_FLOOD)
				drops[PTNM_CNT_RX_DROP_INACTIVE]++;
		ptnm_count(&dst->cnt, PTNM_CNT_RX_DROP_INACTIVE,
			   drops[PTNM_CNT_RX_DROP_INACTIVE]);
		return;
	}
	kring = &vp->port.krings[PTNM_RX][src_ring % vp->port.num_rings[PTNM_RX]];
	q = kring->priv;
	bufsize = ptnm_buf_size(vp->port.region);

	spin_lock(&q->lock);
	for (i = 0; i < n; i++) {
		const struct ptnm_vale_pkt *p = &pkts[i];
		u32 plen = p->len - src_hl;
		enum ptnm_cnt why;
		u8 *buf;

		if (p->dst != dst->idx && p->dst != PTNM_VALE_FLOOD)
			continue;
		if (dst_hl + plen > bufsize) {
			drops[PTNM_CNT_RX_DROP_OVERSIZE]++;
			continue;
		}
		buf = ptnm_rxq_next_buf(kring, &why);
		if (!buf) {
			drops[why]++;
			continue;
		}
		ptnm_vale_put_hdr(buf, dst_hl, p->buf, src_hl);
		memcpy(buf + dst_hl, p->buf + src_hl, plen);
		ptnm_rxq_commit(kring, dst_hl + plen);
		packets++;
		bytes += dst_hl + plen;
	}
	spin_unlock(&q->lock);

	ptnm_count(&dst->cnt, PTNM_CNT_RX_PACKETS, packets);
	ptnm_count(&dst->cnt, PTNM_CNT_RX_BYTES, bytes);
	for (i = PTNM_CNT_RX_DROP_RING_FULL; i <= PTNM_CNT_RX_DROP_OVERSIZE; i++)
		ptnm_count(&dst->cnt, i, drops[i]);
	if (packets)
		kring->notify(kring);
}

/* NIC and host ports: one skb per frame, vnet header dropped. */
static void ptnm_vale_deliver_nic(struct ptnm_vale_sport *dst, u32 src_hl,
				  const struct ptnm_vale_pkt *pkts, u32 n)
{
	struct ptnm_vale_attach *at = dst->kind == PTNM_VALE_NIC ?
		container_of(dst, struct ptnm_vale_attach, nic) :
		container_of(dst, struct ptnm_vale_attach, host);
	u64 packets = 0, bytes = 0, down = 0, refused = 0;
	u32 i;

	for (i = 0; i < n; i++) {
		const struct ptnm_vale_pkt *p = &pkts[i];
		u32 plen = p->len - src_hl;
		int err;

		if (p->dst != dst->idx && p->dst != PTNM_VALE_FLOOD)
			continue;
		if (dst->kind == PTNM_VALE_NIC)
			err = ptnm_nic_xmit(&at->bind, p->buf + src_hl, plen);
		else
			err = ptnm_nic_to_stack(&at->bind, p->buf + src_hl, plen);
		if (!err) {
			packets++;
			bytes += plen;
		} else if (err == -ENETDOWN) {
			down++;
		} else {
			refused++;
		}
	}
	ptnm_count(&dst->cnt, PTNM_CNT_RX_PACKETS, packets);
	ptnm_count(&dst->cnt, PTNM_CNT_RX_BYTES, bytes);
	ptnm_count(&dst->cnt, PTNM_CNT_RX_DROP_INACTIVE, down);
	ptnm_count(&dst->cnt, PTNM_CNT_TX_DROP_XMIT, refused);
}

/*
 * Forward a batch from src, whose frames start with a src_hl-byte vnet
 * header (the length the caller checked them against). Caller is in an RCU
 * read-side section with bottom halves disabled; src is linked in its
 * switch (or being unlinked).
 */
static void ptnm_vale_forward(struct ptnm_vale_sport *src, u32 src_hl,
			      u32 src_ring, struct ptnm_vale_pkt *pkts, u32 n)
{
	struct ptnm_vale_switch *sw = src->sw;
	DECLARE_BITMAP(dsts, PTNM_VALE_MAX_PORTS);
	bool flood = false;
	unsigned int d;
	u32 i;

	bitmap_zero(dsts, PTNM_VALE_MAX_PORTS);
	for (i = 0; i < n; i++) {
		const struct ethhdr *eth = (const void *)(pkts[i].buf + src_hl);

		if (pkts[i].learn)
			ptnm_vale_learn(sw, eth->h_source, src->idx);
		pkts[i].dst = ptnm_vale_lookup_dst(sw, eth->h_dest, src->idx);
		if (pkts[i].dst == PTNM_VALE_FLOOD)
			flood = true;
		else if (pkts[i].dst != PTNM_VALE_NONE)
			__set_bit(pkts[i].dst, dsts);
	}
	if (flood)
		bitmap_fill(dsts, PTNM_VALE_MAX_PORTS);
	__clear_bit(src->idx, dsts);

	for_each_set_bit(d, dsts, PTNM_VALE_MAX_PORTS) {
		struct ptnm_vale_sport *dst = rcu_dereference(sw->ports[d]);

		if (!dst)
			continue;
		if (dst->kind == PTNM_VALE_VIRT)
			ptnm_vale_deliver_virt(dst, src, src_hl, src_ring, pkts, n);
		else
			ptnm_vale_deliver_nic(dst, src_hl, pkts, n);
	}
}

/* ---------------------------------------------------------------------- */
/* Virtual ports                                                           */
/* ---------------------------------------------------------------------- */

static struct ptnm_vale_port *ptnm_vale_port_of(struct ptnm_port *port)
{
	return container_of(port, struct ptnm_vale_port, port);
}

/*
 * Send [nr_hwcur, rhead) into the switch, in batches. Bad slots are dropped
 * and counted, never followed. Every slot is returned to the application at
 * once: its data has been copied. Caller holds kring->sync_lock.
 */
static int ptnm_vale_txsync(struct ptnm_kring *kring)
{
	struct ptnm_vale_port *vp = ptnm_vale_port_of(kring->port);
	struct ptnm_vale_sport *sp = &vp->sp;
	struct ptnm_region *region = kring->port->region;
	struct ptnm_vale_pkt *pkts = kring->priv;
	u32 hdr_len = READ_ONCE(sp->hdr_len);	/* once: PORT_HDR_SET races */
	u32 min_len = hdr_len + ETH_HLEN;
	u32 cur = kring->nr_hwcur, head = kring->rhead;
	u64 drops[PTNM_CNT_MAX] = {};
	u64 packets = 0, bytes = 0;
	bool in_frag = false;
	u32 n, i;

	local_bh_disable();
	rcu_read_lock();
	while (cur != head) {
		for (n = 0; cur != head && n < PTNM_VALE_BATCH;
		     cur = ptnm_next(kring, cur)) {
			u16 len, flags;
			void *buf;

			buf = ptnm_tx_slot_frame(region, &kring->ring->slot[cur],
						 min_len, &in_frag, drops, &len,
						 &flags);
			if (!buf)
				continue;
			pkts[n].buf = buf;
			pkts[n].len = len;
			pkts[n].learn = !(flags & NS_NO_LEARN);
			n++;
			packets++;
			bytes += len;
		}
		if (n)
			ptnm_vale_forward(sp, hdr_len, kring->ring_id, pkts, n);
	}
	ptnm_count(&sp->cnt, PTNM_CNT_TX_PACKETS, packets);
	ptnm_count(&sp->cnt, PTNM_CNT_TX_BYTES, bytes);
	for (i = PTNM_CNT_TX_DROP_BAD_BUF; i <= PTNM_CNT_TX_DROP_FRAG; i++)
		ptnm_count(&sp->cnt, i, drops[i]);
	rcu_read_unlock();
	local_bh_enable();

	kring->nr_hwcur = head;
	smp_store_release(&kring->nr_hwtail, ptnm_prev(kring, head));
	return 0;
}

static void ptnm_vale_tx_batches_free(struct ptnm_port *port)
{
	u32 i;

	for (i = 0; i < ptnm_port_all_rings(port, PTNM_TX); i++) {
		kvfree(port->krings[PTNM_TX][i].priv);
		port->krings[PTNM_TX][i].priv = NULL;
	}
}

/* The first registration: rings, batch arrays, receive queues. */
static int ptnm_vale_activate(struct ptnm_port *port)
{
	struct ptnm_vale_port *vp = ptnm_vale_port_of(port);
	u32 i;
	int err;

	err = ptnm_port_rings_create(port);
	if (err)
		return err;
	for (i = 0; i < ptnm_port_all_rings(port, PTNM_TX); i++) {
		struct ptnm_kring *kring = &port->krings[PTNM_TX][i];

		kring->priv = kvmalloc_array(PTNM_VALE_BATCH,
					     sizeof(struct ptnm_vale_pkt),
					     GFP_KERNEL);
		if (!kring->priv) {
			err = -ENOMEM;
			goto err_batches;
		}
	}
	err = ptnm_rxq_create(port);
	if (err)
		goto err_batches;
	/* Senders may fill the RX rings from now on. */
	smp_store_release(&vp->rx_on, true);
	return 0;

err_batches:
	ptnm_vale_tx_batches_free(port);
	ptnm_port_rings_delete(port);
	return err;
}

static void ptnm_vale_deactivate(struct ptnm_port *port)
{
	struct ptnm_vale_port *vp = ptnm_vale_port_of(port);

	WRITE_ONCE(vp->rx_on, false);
	/* Senders that saw rx_on have left the RX rings after this. */
	synchronize_rcu();
	ptnm_rxq_delete(port);
	ptnm_vale_tx_batches_free(port);
	ptnm_port_rings_delete(port);
}

/* The last reference: leave the switch, then free. Caller holds ptnm_lock. */
static void ptnm_vale_destroy(struct ptnm_port *port)
{
	struct ptnm_vale_port *vp = ptnm_vale_port_of(port);

	struct ptnm_vale_switch *sw = vp->sp.sw;

	ptnm_vale_unpublish(&vp->sp);
	synchronize_rcu();
	ptnm_vale_forget(&vp->sp);
	ptnm_vale_switch_put_if_empty(sw);
	ptnm_counters_free(&vp->sp.cnt);
	ptnm_port_fini(port);
	kfree(vp);
}

static const struct ptnm_port_ops ptnm_vale_ops = {
	.activate = ptnm_vale_activate,
	.deactivate = ptnm_vale_deactivate,
	.txsync = ptnm_vale_txsync,
	.rxsync = ptnm_rxq_rxsync,
	.destroy = ptnm_vale_destroy,
};

/*
 * A new virtual port on sw with the geometry asked for (0: defaults), in a
 * private region sized for it (or the request's EXTMEM region). The caller
 * gets the only reference. Caller holds ptnm_lock.
 */
static int ptnm_vale_port_create(struct ptnm_vale_switch *sw,
				 const char *pname,
				 const struct ptnm_port_req *req,
				 struct ptnm_vale_port **vpp)
{
	struct ptnm_port_req geo = {};
	char fullname[NETMAP_REQ_IFNAMSIZ];
	struct ptnm_region *region;
	struct ptnm_vale_port *vp;
	u32 nbufs = PTNM_RESERVED_BUFS + PTNM_VALE_SPARE_BUFS;
	int d, idx, err;

	if (snprintf(fullname, sizeof(fullname), "%s:%s", sw->name, pname) >=
	    sizeof(fullname))
		return -EINVAL;
	for (d = 0; d < PTNM_DIRS; d++) {
		geo.num_rings[d] = req->num_rings[d] ?: 1;
		if (geo.num_rings[d] > PTNM_VALE_MAX_RINGS) {
			pr_info_ratelimited("%s: a VALE port has at most %d rings per direction\n",
					    fullname, PTNM_VALE_MAX_RINGS);
			return -EINVAL;
		}
		geo.num_slots[d] = clamp_t(u32, req->num_slots[d] ?:
					   PTNM_VALE_DEF_SLOTS,
					   PTNM_MIN_SLOTS, PTNM_VALE_MAX_SLOTS);
		nbufs += geo.num_rings[d] * geo.num_slots[d];
	}
	idx = ptnm_vale_free_idx(sw, 0);
	if (idx < 0)
		return idx;

	if (req->region)
		region = ptnm_region_get(req->region);
	else
		region = ptnm_region_new_private_sized(PTNM_VALE_REGION_IFS,
				geo.num_rings[PTNM_TX] + geo.num_rings[PTNM_RX],
				nbufs);
	if (IS_ERR(region))
		return PTR_ERR(region);

	err = -ENOMEM;
	vp = kzalloc(sizeof(*vp), GFP_KERNEL);
	if (!vp)
		goto out;
	err = ptnm_port_init(&vp->port, fullname, &ptnm_vale_ops, region, &geo);
	if (err) {
		kfree(vp);
		goto out;
	}
	vp->port.priv = vp;
	err = ptnm_vale_sport_init(&vp->sp, sw, idx, pname, PTNM_VALE_VIRT);
	if (err) {
		ptnm_port_fini(&vp->port);
		kfree(vp);
		goto out;
	}
	ptnm_vale_link(&vp->sp);
	*vpp = vp;
out:
	ptnm_region_put(region);
	return err;
}

/*
 * The lookup chain entry: "valeX:port" finds the port or creates it (and
 * the switch). A name taken by an attached NIC is EBUSY. Caller holds
 * ptnm_lock.
 */
static int ptnm_vale_lookup(const char *name, const struct ptnm_port_req *req,
			    struct ptnm_port **portp)
{
	struct ptnm_vale_switch *sw;
	struct ptnm_vale_sport *sp;
	struct ptnm_vale_port *vp;
	char swname[IFNAMSIZ];
	const char *pname;
	int err;

	err = ptnm_vale_parse(name, swname, &pname);
	if (err <= 0)
		return err;
	sw = ptnm_vale_switch_get(swname);
	if (IS_ERR(sw))
		return PTR_ERR(sw);
	sp = ptnm_vale_find(sw, pname);
	if (sp) {
		if (sp->kind != PTNM_VALE_VIRT)
			return -EBUSY;
		vp = container_of(sp, struct ptnm_vale_port, sp);
		ptnm_port_get(&vp->port);
		*portp = &vp->port;
		return 0;
	}
	err = ptnm_vale_port_create(sw, pname, req, &vp);
	if (err) {
		ptnm_vale_switch_put_if_empty(sw);
		return err;
	}
	*portp = &vp->port;
	return 0;
}

const struct ptnm_port_type ptnm_vale_type = {
	.name = "vale",
	.lookup = ptnm_vale_lookup,
};

/* ---------------------------------------------------------------------- */
/* Attached NICs                                                           */
/* ---------------------------------------------------------------------- */

static void ptnm_vale_nic_input(struct ptnm_vale_sport *src, struct sk_buff *skb)
{
	struct ptnm_vale_pkt pkt = {
		.buf = skb->data, .len = skb->len, .learn = true,
	};

	/* Attached NICs have no vnet header; a runt has no addresses. */
	if (skb->len < ETH_HLEN || skb->len > U16_MAX) {
		ptnm_count(&src->cnt, PTNM_CNT_TX_DROP_BAD_LEN, 1);
	} else {
		ptnm_count(&src->cnt, PTNM_CNT_TX_PACKETS, 1);
		ptnm_count(&src->cnt, PTNM_CNT_TX_BYTES, skb->len);
		ptnm_vale_forward(src, 0, skb_get_rx_queue(skb), &pkt, 1);
	}
	consume_skb(skb);
}

static void ptnm_vale_wire_rx(struct ptnm_nic_bind *b, struct sk_buff *skb)
{
	struct ptnm_vale_attach *at = container_of(b, struct ptnm_vale_attach, bind);

	ptnm_vale_nic_input(&at->nic, skb);
}

static void ptnm_vale_stack_tx(struct ptnm_nic_bind *b, struct sk_buff *skb)
{
	struct ptnm_vale_attach *at = container_of(b, struct ptnm_vale_attach, bind);

	ptnm_vale_nic_input(&at->host, skb);
}

static const struct ptnm_nic_bind_ops ptnm_vale_bind_ops = {
	.wire_rx = ptnm_vale_wire_rx,
	.stack_tx = ptnm_vale_stack_tx,
};

static void ptnm_vale_attach_free(struct ptnm_vale_attach *at)
{
	ptnm_counters_free(&at->nic.cnt);
	ptnm_counters_free(&at->host.cnt);
	kfree(at);
}

/* Caller holds ptnm_lock. */
static void ptnm_vale_detach_one(struct ptnm_vale_attach *at)
{
	struct ptnm_vale_switch *sw = at->nic.sw;

	ptnm_nic_bind_stop(&at->bind);
	ptnm_vale_unpublish(&at->nic);
	if (at->with_host)
		ptnm_vale_unpublish(&at->host);
	synchronize_rcu();
	ptnm_vale_forget(&at->nic);
	if (at->with_host)
		ptnm_vale_forget(&at->host);
	ptnm_nic_bind_fini(&at->bind);
	ptnm_vale_attach_free(at);
	ptnm_vale_switch_put_if_empty(sw);
}

static int ptnm_vale_attach(const char *name, struct nmreq_vale_attach *a)
{
	struct ptnm_vale_switch *sw;
	struct ptnm_vale_attach *at;
	char swname[IFNAMSIZ], hname[NETMAP_REQ_IFNAMSIZ];
	const char *pname;
	bool host;
	int idx, hidx = -1, err;

	err = ptnm_vale_parse(name, swname, &pname);
	if (err <= 0)
		return -EINVAL;
	switch (a->reg.nr_mode) {
	case NR_REG_DEFAULT:
	case NR_REG_ALL_NIC:
		host = false;
		break;
	case NR_REG_NIC_SW:
		host = true;
		break;
	default:
		pr_info_ratelimited("%s: attach mode %u: only NIC or NIC+host\n",
				    name, a->reg.nr_mode);
		return -EINVAL;
	}
	if (snprintf(hname, sizeof(hname), "%s^", pname) >= sizeof(hname))
		return -EINVAL;

	sw = ptnm_vale_switch_get(swname);
	if (IS_ERR(sw))
		return PTR_ERR(sw);
	err = -EBUSY;
	if (ptnm_vale_find(sw, pname) || (host && ptnm_vale_find(sw, hname)))
		goto out_sw;
	idx = ptnm_vale_free_idx(sw, 0);
	if (idx < 0) {
		err = idx;
		goto out_sw;
	}
	if (host) {
		hidx = ptnm_vale_free_idx(sw, idx + 1);
		if (hidx < 0) {
			err = hidx;
			goto out_sw;
		}
	}

	err = -ENOMEM;
	at = kzalloc(sizeof(*at), GFP_KERNEL);
	if (!at)
		goto out_sw;
	at->with_host = host;
	err = ptnm_vale_sport_init(&at->nic, sw, idx, pname, PTNM_VALE_NIC);
	if (!err)
		err = ptnm_vale_sport_init(&at->host, sw, host ? hidx : 0,
					   hname, PTNM_VALE_HOST);
	if (err)
		goto out_free;
	err = ptnm_nic_bind_init(&at->bind, pname, &ptnm_vale_bind_ops);
	if (err)
		goto out_free;

	/* Linked first: frames may arrive as soon as the bind starts. */
	ptnm_vale_link(&at->nic);
	if (host)
		ptnm_vale_link(&at->host);
	err = ptnm_nic_bind_start(&at->bind, host);
	if (err) {
		ptnm_vale_detach_one(at);
		return err;
	}
	a->port_index = idx;
	return 0;

out_free:
	ptnm_vale_attach_free(at);
out_sw:
	ptnm_vale_switch_put_if_empty(sw);
	return err;
}

/* Caller holds ptnm_lock. */
static struct ptnm_vale_sport *ptnm_vale_find_name(const char *name, int *errp)
{
	struct ptnm_vale_switch *sw;
	struct ptnm_vale_sport *sp;
	char swname[IFNAMSIZ];
	const char *pname;
	int r;

	r = ptnm_vale_parse(name, swname, &pname);
	if (r <= 0) {
		*errp = r ?: -ENXIO;
		return NULL;
	}
	sw = ptnm_vale_switch_find(swname);
	sp = sw ? ptnm_vale_find(sw, pname) : NULL;
	if (!sp)
		*errp = -ENXIO;
	return sp;
}

static int ptnm_vale_detach(const char *name, struct nmreq_vale_detach *d)
{
	struct ptnm_vale_sport *sp;
	int err;

	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	sp = ptnm_vale_find_name(name, &err);
	if (!sp)
		return err;
	if (sp->kind != PTNM_VALE_NIC) {
		pr_info_ratelimited("%s: not an attached NIC\n", name);
		return -EINVAL;
	}
	d->port_index = sp->idx;
	ptnm_vale_detach_one(container_of(sp, struct ptnm_vale_attach, nic));
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Other requests                                                          */
/* ---------------------------------------------------------------------- */

/*
 * With a name: that port's switch and port index. Without: the first port
 * at or after (nr_bridge_idx, nr_port_idx), its name written back into the
 * header; ENOENT past the last one.
 */
static int ptnm_vale_list(struct nmreq_header *hdr, struct nmreq_vale_list *l)
{
	unsigned int b, p;
	int err;

	if (hdr->nr_name[0]) {
		struct ptnm_vale_sport *sp = ptnm_vale_find_name(hdr->nr_name, &err);

		if (!sp)
			return err;
		l->nr_bridge_idx = sp->sw->idx;
		l->nr_port_idx = sp->idx;
		return 0;
	}
	for (b = l->nr_bridge_idx, p = l->nr_port_idx; b < vale_max_switches;
	     b++, p = 0) {
		struct ptnm_vale_switch *sw = ptnm_vale_switches[b];

		if (!sw)
			continue;
		for (; p < PTNM_VALE_MAX_PORTS; p++) {
			struct ptnm_vale_sport *sp = ptnm_vale_slot(sw, p);

			if (!sp)
				continue;
			snprintf(hdr->nr_name, sizeof(hdr->nr_name), "%s:%s",
				 sw->name, sp->name);
			l->nr_bridge_idx = b;
			l->nr_port_idx = p;
			return 0;
		}
	}
	return -ENOENT;
}

/* A persistent virtual port: it survives its last close until DELIF. */
static int ptnm_vale_newif(const char *name, struct nmreq_vale_newif *nif)
{
	struct ptnm_port_req req = {
		.num_rings = { nif->nr_tx_rings, nif->nr_rx_rings },
		.num_slots = { nif->nr_tx_slots, nif->nr_rx_slots },
	};
	struct ptnm_vale_switch *sw;
	struct ptnm_vale_port *vp;
	char swname[IFNAMSIZ];
	const char *pname;
	int err;

	/* A persistent port is kernel memory that outlives its creator. */
	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	err = ptnm_vale_parse(name, swname, &pname);
	if (err <= 0) {
		pr_info_ratelimited("%s: NEWIF takes a VALE name, valeX:port\n",
				    name);
		return -EINVAL;
	}
	if (nif->nr_mem_id) {
		pr_info_ratelimited("%s: a VALE port has its own region\n", name);
		return -EINVAL;
	}
	sw = ptnm_vale_switch_get(swname);
	if (IS_ERR(sw))
		return PTR_ERR(sw);
	if (ptnm_vale_find(sw, pname))
		return -EEXIST;
	err = ptnm_vale_port_create(sw, pname, &req, &vp);
	if (err) {
		ptnm_vale_switch_put_if_empty(sw);
		return err;
	}
	/* The creation reference is the persistence reference. */
	vp->persistent = true;
	nif->nr_tx_rings = vp->port.num_rings[PTNM_TX];
	nif->nr_rx_rings = vp->port.num_rings[PTNM_RX];
	nif->nr_tx_slots = vp->port.num_slots[PTNM_TX];
	nif->nr_rx_slots = vp->port.num_slots[PTNM_RX];
	nif->nr_mem_id = vp->port.region->id;
	return 0;
}

static int ptnm_vale_delif(const char *name)
{
	struct ptnm_vale_sport *sp;
	struct ptnm_vale_port *vp;
	int err;

	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	sp = ptnm_vale_find_name(name, &err);
	if (!sp)
		return err;
	vp = container_of(sp, struct ptnm_vale_port, sp);
	if (sp->kind != PTNM_VALE_VIRT || !vp->persistent)
		return -EINVAL;
	if (vp->port.active_users)
		return -EBUSY;
	vp->persistent = false;
	ptnm_port_put(&vp->port);
	return 0;
}

static int ptnm_vale_hdr(const char *name, struct nmreq_port_hdr *h, bool set)
{
	struct ptnm_vale_sport *sp;
	int err;

	sp = ptnm_vale_find_name(name, &err);
	if (!sp)
		return err;
	if (sp->kind != PTNM_VALE_VIRT)
		return -EINVAL;
	if (!set) {
		h->nr_hdr_len = READ_ONCE(sp->hdr_len);
		return 0;
	}
	if (h->nr_hdr_len != 0 && h->nr_hdr_len != PTNM_VNET_HDR_LEN &&
	    h->nr_hdr_len != PTNM_VNET_HDR_MRG_LEN) {
		pr_info_ratelimited("%s: virtio-net header length %u: 0, 10 or 12\n",
				    name, h->nr_hdr_len);
		return -EINVAL;
	}
	WRITE_ONCE(sp->hdr_len, h->nr_hdr_len);
	return 0;
}

static int ptnm_vale_stats(const char *name, struct ptnetmap_port_stats *st)
{
	struct ptnm_vale_sport *sp;
	int err;

	sp = ptnm_vale_find_name(name, &err);
	if (sp) {
		ptnm_counters_read(&sp->cnt, st);
		return 0;
	}
	if (err != -ENXIO || !strncmp(name, PTNM_VALE_PREFIX,
				      strlen(PTNM_VALE_PREFIX)))
		return err;
	return ptnm_nic_port_stats(name, st);
}

int ptnm_vale_request(struct nmreq_header *hdr, void *body)
{
	lockdep_assert_held(&ptnm_lock);

	switch (hdr->nr_reqtype) {
	case NETMAP_REQ_VALE_ATTACH:
		return ptnm_vale_attach(hdr->nr_name, body);
	case NETMAP_REQ_VALE_DETACH:
		return ptnm_vale_detach(hdr->nr_name, body);
	case NETMAP_REQ_VALE_LIST:
		return ptnm_vale_list(hdr, body);
	case NETMAP_REQ_VALE_NEWIF:
		return ptnm_vale_newif(hdr->nr_name, body);
	case NETMAP_REQ_VALE_DELIF:
		return ptnm_vale_delif(hdr->nr_name);
	case NETMAP_REQ_PORT_HDR_SET:
		return ptnm_vale_hdr(hdr->nr_name, body, true);
	case NETMAP_REQ_PORT_HDR_GET:
		return ptnm_vale_hdr(hdr->nr_name, body, false);
	case PTNETMAP_REQ_PORT_STATS_GET:
		return ptnm_vale_stats(hdr->nr_name, body);
	default:
		return -EINVAL;
	}
}

/* ---------------------------------------------------------------------- */

int ptnm_vale_init(void)
{
	if (!vale_max_switches || vale_max_switches > PTNM_VALE_SWITCHES_MAX) {
		pr_err("vale_max_switches %u: must be 1..%d\n",
		       vale_max_switches, PTNM_VALE_SWITCHES_MAX);
		return -EINVAL;
	}
	ptnm_vale_switches = kcalloc(vale_max_switches,
				     sizeof(*ptnm_vale_switches), GFP_KERNEL);
	return ptnm_vale_switches ? 0 : -ENOMEM;
}

/* No file is open any more: only persistent ports and attachments remain. */
void ptnm_vale_exit(void)
{
	unsigned int b, p;

	mutex_lock(&ptnm_lock);
	for (b = 0; b < vale_max_switches; b++) {
		/* The switch goes away with its last port: look again each time. */
		for (p = 0; p < PTNM_VALE_MAX_PORTS && ptnm_vale_switches[b]; p++) {
			struct ptnm_vale_sport *sp =
				ptnm_vale_slot(ptnm_vale_switches[b], p);
			struct ptnm_vale_port *vp;

			if (!sp)
				continue;
			switch (sp->kind) {
			case PTNM_VALE_NIC:
				ptnm_vale_detach_one(container_of(sp,
					struct ptnm_vale_attach, nic));
				break;
			case PTNM_VALE_VIRT:
				vp = container_of(sp, struct ptnm_vale_port, sp);
				if (WARN_ON_ONCE(!vp->persistent))
					break;
				vp->persistent = false;
				ptnm_port_put(&vp->port);
				break;
			default:
				break;	/* goes with its NIC */
			}
		}
	}
	mutex_unlock(&ptnm_lock);
	kfree(ptnm_vale_switches);
	ptnm_vale_switches = NULL;
}
