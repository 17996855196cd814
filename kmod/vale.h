/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What vale.c (VALE switches) and nic.c (netdev ports) share.
 *
 *   Port counters   per-CPU, one set per port, read by
 *                   PTNETMAP_REQ_PORT_STATS_GET (<net/ptnetmap_ctl.h>).
 *   Receive queues  an RX kring filled by other contexts (senders on other
 *                   CPUs, a NIC's receive softirq) and drained by the
 *                   ring's own rxsync (vale.c).
 *   NIC binding     holding a netdev, taking its received frames (an
 *                   rx_handler), optionally what the stack transmits on it
 *                   (the host rings), and sending frames out of it or up
 *                   the stack (nic.c).
 *
 * Lock order (adds to ptnetmap_kern.h): ptnm_lock -> rtnl_lock. The netdev
 * notifier runs under rtnl and never takes ptnm_lock.
 */
#ifndef _PTNETMAP_VALE_H_
#define _PTNETMAP_VALE_H_

#include <linux/netdevice.h>
#include <linux/percpu.h>
#include <linux/u64_stats_sync.h>

#include <net/ptnetmap_ctl.h>

#include "ptnetmap_kern.h"

/* ---------------------------------------------------------------------- */
/* Port counters (vale.c)                                                  */
/* ---------------------------------------------------------------------- */

/* Indexes in the order of struct ptnetmap_port_stats. */
enum ptnm_cnt {
	PTNM_CNT_RX_PACKETS,
	PTNM_CNT_RX_BYTES,
	PTNM_CNT_TX_PACKETS,
	PTNM_CNT_TX_BYTES,
	PTNM_CNT_RX_DROP_RING_FULL,
	PTNM_CNT_RX_DROP_INACTIVE,
	PTNM_CNT_RX_DROP_BAD_BUF,
	PTNM_CNT_RX_DROP_OVERSIZE,
	PTNM_CNT_TX_DROP_BAD_BUF,
	PTNM_CNT_TX_DROP_BAD_LEN,
	PTNM_CNT_TX_DROP_FRAG,
	PTNM_CNT_TX_DROP_XMIT,
	PTNM_CNT_MAX,
};

struct ptnm_counters_pcpu {
	u64_stats_t c[PTNM_CNT_MAX];
	struct u64_stats_sync syncp;
};

struct ptnm_counters {
	struct ptnm_counters_pcpu __percpu *pcpu;
};

int ptnm_counters_init(struct ptnm_counters *cnt);
void ptnm_counters_free(struct ptnm_counters *cnt);
void ptnm_counters_read(struct ptnm_counters *cnt,
			struct ptnetmap_port_stats *out);

/* Caller has bottom halves disabled (one writer per CPU). */
static inline void ptnm_count(struct ptnm_counters *cnt, enum ptnm_cnt what,
			      u64 n)
{
	struct ptnm_counters_pcpu *p = this_cpu_ptr(cnt->pcpu);

	if (!n)
		return;
	u64_stats_update_begin(&p->syncp);
	u64_stats_add(&p->c[what], n);
	u64_stats_update_end(&p->syncp);
}

/* ---------------------------------------------------------------------- */
/* Receive queues (vale.c)                                                 */
/* ---------------------------------------------------------------------- */

/*
 * kring->priv of an RX kring that others fill. Writers take lock (with
 * bottom halves disabled), find room in [tail, hwcur - 1), fill slots and
 * advance tail. The ring's rxsync takes lock, hands hwcur over and takes
 * tail as nr_hwtail; so nr_hwcur/nr_hwtail stay the sync path's own.
 */
struct ptnm_rxq {
	spinlock_t lock;
	u32 tail;	/* next slot to fill; protected by lock */
	u32 hwcur;	/* first slot the application still owns; by lock */
};

/* Give every RX kring of an active port a receive queue. ptnm_lock held. */
int ptnm_rxq_create(struct ptnm_port *port);
void ptnm_rxq_delete(struct ptnm_port *port);
/* The rxsync of such a ring. Caller holds kring->sync_lock. */
int ptnm_rxq_rxsync(struct ptnm_kring *kring);
/*
 * Caller holds the queue's lock. The buffer of the next free slot, or NULL
 * with *why set to the drop cause (ring full, bad buffer index).
 */
void *ptnm_rxq_next_buf(struct ptnm_kring *kring, enum ptnm_cnt *why);
/* Caller holds the queue's lock; publishes the slot next_buf returned. */
void ptnm_rxq_commit(struct ptnm_kring *kring, u16 len);

/* ---------------------------------------------------------------------- */
/* NIC binding (nic.c)                                                     */
/* ---------------------------------------------------------------------- */

struct ptnm_nic_bind;

struct ptnm_nic_bind_ops {
	/*
	 * A frame the device received, or (stack_tx) one the stack is
	 * transmitting on it. skb->data is the Ethernet header, the frame is
	 * linear, unsegmented, checksummed. The callee consumes skb. Called
	 * in softirq or with bottom halves disabled, inside rcu_read_lock.
	 */
	void (*wire_rx)(struct ptnm_nic_bind *b, struct sk_buff *skb);
	void (*stack_tx)(struct ptnm_nic_bind *b, struct sk_buff *skb);
};

/*
 * A netdev held by a port. `dev` is set by ptnm_nic_bind_init() and cleared
 * (under rtnl, then an RCU grace period) when the device unregisters; the
 * datapath reads it with rcu_dereference().
 */
struct ptnm_nic_bind {
	struct net_device __rcu *dev;
	netdevice_tracker tracker;
	const struct ptnm_nic_bind_ops *ops;	/* constant */
	bool started;				/* rtnl */
	bool host;				/* stack tx captured; rtnl */
	const struct net_device_ops *orig_ops;	/* rtnl */
	struct net_device_ops host_ops;		/* orig_ops, our xmit */
	struct list_head node;			/* ptnm_nic_binds; rtnl */
};

int ptnm_nic_init(void);
void ptnm_nic_exit(void);

/* The netdev `name` of the caller's namespace, held by b, or an errno. */
int ptnm_nic_bind_init(struct ptnm_nic_bind *b, const char *name,
		       const struct ptnm_nic_bind_ops *ops);
void ptnm_nic_bind_fini(struct ptnm_nic_bind *b);
/* Start (stop) taking frames; with host, also what the stack sends. */
int ptnm_nic_bind_start(struct ptnm_nic_bind *b, bool host);
void ptnm_nic_bind_stop(struct ptnm_nic_bind *b);
bool ptnm_nic_bind_is(struct ptnm_nic_bind *b, const char *name);

/*
 * Send a frame out of the device, or up its stack as if received. 0 or a
 * negative errno (device gone or down, no memory, refused). Any context
 * with bottom halves disabled, inside rcu_read_lock.
 */
int ptnm_nic_xmit(struct ptnm_nic_bind *b, const void *frame, u32 len);
int ptnm_nic_to_stack(struct ptnm_nic_bind *b, const void *frame, u32 len);

/* The counters of the NIC port of netdev `name`. Caller holds ptnm_lock. */
int ptnm_nic_port_stats(const char *name, struct ptnetmap_port_stats *st);

/* ---------------------------------------------------------------------- */
/* VALE (vale.c)                                                           */
/* ---------------------------------------------------------------------- */

int ptnm_vale_init(void);
/* Removes what outlives open files: persistent ports, attached NICs. */
void ptnm_vale_exit(void);

/*
 * The VALE requests (ATTACH, DETACH, LIST, NEWIF, DELIF, PORT_HDR_SET/GET)
 * and PTNETMAP_REQ_PORT_STATS_GET, on kernel copies of header and body.
 * Caller holds ptnm_lock.
 */
int ptnm_vale_request(struct nmreq_header *hdr, void *body);

/*
 * One TX slot of a port whose frames leave by copy (VALE, NIC): the frame's
 * buffer, or NULL when it must be dropped, with the cause counted in
 * drops[]. Multi-slot packets are dropped whole and counted once, at their
 * last slot. The slot is read once; *lenp and *flagsp get what was read.
 * Caller holds the ring's sync_lock.
 */
static inline void *ptnm_tx_slot_frame(const struct ptnm_region *region,
				       const struct netmap_slot *slot,
				       u32 min_len, bool *in_frag, u64 *drops,
				       u16 *lenp, u16 *flagsp)
{
	u32 idx = READ_ONCE(slot->buf_idx);
	u16 len = READ_ONCE(slot->len);
	u16 flags = READ_ONCE(slot->flags);

	*lenp = len;
	*flagsp = flags;
	if (flags & NS_MOREFRAG) {
		*in_frag = true;
		return NULL;
	}
	if (*in_frag) {
		*in_frag = false;
		drops[PTNM_CNT_TX_DROP_FRAG]++;
		return NULL;
	}
	if (!ptnm_buf_idx_ok(region, idx)) {
		drops[PTNM_CNT_TX_DROP_BAD_BUF]++;
		return NULL;
	}
	if (len < min_len || len > ptnm_buf_size(region)) {
		drops[PTNM_CNT_TX_DROP_BAD_LEN]++;
		return NULL;
	}
	return ptnm_buf_vaddr(region, idx);
}

#endif /* _PTNETMAP_VALE_H_ */
