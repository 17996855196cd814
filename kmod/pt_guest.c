// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap guest driver: a network interface and a netmap port over a
 * passthrough port.
 *
 * Binds QEMU ivshmem-doorbell devices (1af4:1110) whose BAR2 starts with a
 * ptnetmap layout header (docs/shm-layout.md) and leaves every other ivshmem
 * device alone. Owns, per device: the BAR mappings, the layout of the port
 * (read and validated once, at probe), the MSI-X vectors (0 for the control
 * mailbox, 1 + i for ring i), the control mailbox protocol (START/STOP), the
 * net_device, and the netmap port of the same name.
 *
 * The interface uses TX ring 0 and RX ring 0 of the port through the CSB
 * (docs/shm-layout.md): frames are copied between skbs and the port's
 * buffers, notifications go both ways only when the other side asked for
 * them (need_kick flags, with the store-load double check).
 *
 * Netmap mode: a netmap application in the guest that opens the interface
 * (`netmap:eth1`) gets the host port itself: all its rings, mapped from
 * BAR2 (a PHYS region, mem.c), with the host's netmap_if. Our txsync and
 * rxsync never touch a slot; they publish the application's head and cur
 * in the CSB, kick the host when it asked, and take the host's hwtail as
 * the ring's tail. While netmap mode holds the port, the interface keeps
 * away from the rings (carrier off, queue and NAPI stopped); every switch
 * between the two goes through a STOP/START cycle of the mailbox, after
 * which the host has written the rings' indexes back where both sides
 * agree (pt_host.c, ptnh_peer_stop_rings).
 *
 * Everything the host writes in shared memory is read once and validated:
 * a host that lies about the layout makes probe fail, a bad index at run
 * time drops that frame or fails that sync, never crashes the guest.
 *
 * Locking (lock order ptnm_lock > rtnl > ctrl_lock):
 *   ptnm_lock      g->nm, g->removing; netmap mode entry and exit.
 *   rtnl           dp_on, nm_mode: who uses the rings (the netdev's
 *                  datapath or netmap mode).
 *   nm->sync_rw    syncs (read) against device removal (write): a sync
 *                  that finds nm->g set may use the device until it ends.
 *   nm_irq_lock    g->nm_active, the port whose krings ring interrupts wake.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/rtnetlink.h>
#include <linux/rwsem.h>
#include <linux/slab.h>
#include <linux/wait.h>
#include <net/net_namespace.h>

#include <net/netmap.h>
#include <net/ptnetmap.h>

#include "ptnetmap_kern.h"
#include "pt_guest.h"

#define PTG_BAR_REGS		0
#define PTG_BAR_SHM		2
#define PTG_REG_IVPOSITION	8
#define PTG_REG_DOORBELL	12

/* A host that leaves a control request unanswered this long is gone. */
#define PTG_CTRL_TIMEOUT_MS	1000

/* Most slots we accept in a host ring: netmap's own limit. */
#define PTG_MAX_SLOTS		16384
#define PTG_MAX_RINGS		(2 * PTNM_PORT_MAX_RINGS)

/*
 * One ring of the port as the host laid it out, checked at probe: the ring
 * and its slots lie in the netmap region, its CSB entries in BAR2.
 */
struct ptg_shring {
	struct netmap_ring *ring;
	u64 offset;			/* of the ring in BAR2 */
	struct nm_csb_atok *atok;	/* what we publish */
	struct nm_csb_ktoa *ktoa;	/* what the host publishes */
	u32 num_slots;
	unsigned int vector;
};

/*
 * One ring as the interface sees it, set up from a ptg_shring when the
 * datapath starts; head is the guest's own copy of what it publishes.
 */
struct ptg_ring {
	struct netmap_ring *ring;
	struct nm_csb_atok *atok;	/* what we publish */
	struct nm_csb_ktoa *ktoa;	/* what the host publishes */
	char *bufs;			/* buffer 0 of this ring's region */
	u32 num_bufs;			/* valid buffer indexes: [0, num_bufs) */
	u32 num_slots;
	u32 head;
	unsigned int vector;
};

struct ptg_dev;

/* The context of a ring vector's interrupt handler. */
struct ptg_vec {
	struct ptg_dev *g;
	u32 ring;			/* CSB index: TX rings, then RX rings */
};

/*
 * The netmap port of a device. Lives while files hold it (ptnm_port refs);
 * g->nm points to it until it is destroyed or the device goes away.
 */
struct ptg_nm {
	struct ptnm_port port;
	struct rw_semaphore sync_rw;
	struct ptg_dev *g;		/* NULL once the device is gone; sync_rw */
	u64 nifp_ofs;			/* the host's netmap_if in the region */
	u32 pub_cur[PTG_MAX_RINGS];	/* cur last published; kring sync_lock */
};

struct ptg_dev {
	struct pci_dev *pdev;
	struct net_device *netdev;
	void __iomem *regs;		/* BAR0: IVPosition, Doorbell */
	void *shm;			/* BAR2, mapped write-back */
	phys_addr_t shm_phys;
	resource_size_t shm_size;
	struct ptnm_port_desc *port;		/* our descriptor inside shm */
	u32 peer_id;
	u16 num_tx_rings;
	u16 num_rx_rings;
	unsigned int nvec;

	/* The layout, validated at probe; constant. */
	u32 buf_size;
	u64 region_off, region_size;	/* the netmap region in BAR2 */
	u64 nifp_off;			/* the host's netmap_if in BAR2 */
	u64 bufs_off;			/* buffer 0 in BAR2 */
	u32 num_slots[PTNM_DIRS];
	struct ptg_shring sh[PTG_MAX_RINGS];	/* TX rings, then RX rings */
	struct ptg_vec vecs[PTG_MAX_RINGS];

	struct ptg_ring tx;		/* tx ring 0; Protected by the tx queue lock */
	struct ptg_ring rx;		/* rx ring 0; owned by NAPI */
	struct napi_struct napi;
	bool broken;			/* the host broke the protocol: stay down */
	bool dp_on;			/* the interface uses the rings; rtnl */
	bool nm_mode;			/* netmap mode holds the rings; rtnl */

	bool removing;			/* ptnm_lock */
	struct ptg_nm *nm;		/* ptnm_lock */
	spinlock_t nm_irq_lock;
	struct ptg_nm *nm_active;	/* Protected by nm_irq_lock */

	struct mutex ctrl_lock;		/* one mailbox request at a time */
	u32 ctrl_seq;			/* Protected by ctrl_lock */
	wait_queue_head_t ctrl_wq;	/* woken by the vector 0 interrupt */
};

static void ptg_kick(struct ptg_dev *g, unsigned int vector)
{
	writel((PTNM_HOST_PEER << 16) | vector, g->regs + PTG_REG_DOORBELL);
}

/*
 * Post one request to the host's control mailbox and wait for the answer.
 * Returns the host's status (0 or a negative errno) or -ETIMEDOUT.
 * May sleep.
 */
static int ptg_ctrl(struct ptg_dev *g, u32 request)
{
	struct ptnm_ctrl *ctrl = &g->port->ctrl;
	s32 status;
	u32 seq;
	long left;

	mutex_lock(&g->ctrl_lock);
	seq = ++g->ctrl_seq;
	WRITE_ONCE(ctrl->request, request);
	smp_wmb();	/* the request before its sequence number */
	WRITE_ONCE(ctrl->req_seq, seq);
	ptg_kick(g, PTNM_CTRL_VECTOR);

	left = wait_event_timeout(g->ctrl_wq, READ_ONCE(ctrl->resp_seq) == seq,
				  msecs_to_jiffies(PTG_CTRL_TIMEOUT_MS));
	if (!left) {
		status = -ETIMEDOUT;
	} else {
		smp_rmb();	/* the sequence number before the status */
		status = READ_ONCE(ctrl->status);
		if (status > 0 || status < -MAX_ERRNO)
			status = -EPROTO;
	}
	mutex_unlock(&g->ctrl_lock);
	if (status)
		netdev_warn(g->netdev, "host refused control request %u: %d\n",
			    request, status);
	return status;
}

/* Carrier: the host serves the port and the interface has the rings. */
static void ptg_update_carrier(struct ptg_dev *g)
{
	if (READ_ONCE(g->port->link) == PTNM_LINK_UP && !g->broken &&
	    READ_ONCE(g->dp_on))
		netif_carrier_on(g->netdev);
	else
		netif_carrier_off(g->netdev);
}

static irqreturn_t ptg_ctrl_interrupt(int irq, void *data)
{
	struct ptg_dev *g = data;

	wake_up(&g->ctrl_wq);
	if (netif_running(g->netdev))
		ptg_update_carrier(g);
	return IRQ_HANDLED;
}

static bool ptg_in_shm(const struct ptg_dev *g, u64 offset, u64 len)
{
	return offset <= g->shm_size && len <= g->shm_size - offset;
}

static bool ptg_in_region(const struct ptg_dev *g, u64 offset, u64 len)
{
	return offset >= g->region_off &&
	       offset - g->region_off <= g->region_size &&
	       len <= g->region_size - (offset - g->region_off);
}

/*
 * Ring i (CSB order) as the host's netmap_if names it: it, its slots and
 * its CSB entries must lie where they belong, its geometry must be the
 * descriptor's, and every ring must see the same buffers.
 */
static int ptg_shring_check(struct ptg_dev *g, u32 i)
{
	const struct netmap_if *nifp = g->shm + g->nifp_off;
	u32 rings = g->num_tx_rings + g->num_rx_rings;
	struct ptg_shring *sh = &g->sh[i];
	u64 csb_off = READ_ONCE(g->port->csb_offset);
	u32 slots = g->num_slots[i < g->num_tx_rings ? PTNM_TX : PTNM_RX];
	s64 ofs = READ_ONCE(nifp->ring_ofs[i]);
	s64 bofs;
	u64 bufs;

	if (ofs <= 0 || ofs > g->region_size)
		return -EPROTO;
	sh->offset = g->nifp_off + ofs;
	if (!IS_ALIGNED(sh->offset, 8) ||
	    !ptg_in_region(g, sh->offset, sizeof(struct netmap_ring) +
			   (u64)slots * sizeof(struct netmap_slot)))
		return -EPROTO;
	sh->ring = g->shm + sh->offset;
	if (READ_ONCE(sh->ring->num_slots) != slots ||
	    READ_ONCE(sh->ring->nr_buf_size) != g->buf_size)
		return -EPROTO;
	bofs = READ_ONCE(sh->ring->buf_ofs);
	if (bofs <= 0 || bofs > g->region_size)
		return -EPROTO;
	bufs = sh->offset + bofs;
	if (i == 0) {
		if (!ptg_in_region(g, bufs, g->buf_size))
			return -EPROTO;
		g->bufs_off = bufs;
	} else if (bufs != g->bufs_off) {
		return -EPROTO;
	}
	sh->num_slots = slots;

	if (!IS_ALIGNED(csb_off, 64) ||
	    !ptg_in_shm(g, csb_off, (u64)rings * (sizeof(*sh->atok) + sizeof(*sh->ktoa))))
		return -EPROTO;
	sh->atok = (struct nm_csb_atok *)(g->shm + csb_off) + i;
	sh->ktoa = (struct nm_csb_ktoa *)(g->shm + csb_off +
					  rings * sizeof(*sh->atok)) + i;
	sh->vector = PTNM_RING_VECTOR(i);
	return 0;
}

/*
 * Read the host's layout of the port once: the region, the netmap_if and
 * every ring. Anything inconsistent is -EPROTO and the device stays unbound.
 */
static int ptg_layout(struct ptg_dev *g)
{
	const struct ptnm_global *global = g->shm;
	const struct netmap_if *nifp;
	u32 rings = g->num_tx_rings + g->num_rx_rings;
	u32 i;
	int err;

	g->buf_size = READ_ONCE(global->buf_size);
	g->region_off = READ_ONCE(global->region_offset);
	g->region_size = READ_ONCE(global->region_size);
	g->nifp_off = READ_ONCE(g->port->nifp_offset);
	g->num_slots[PTNM_TX] = READ_ONCE(g->port->num_tx_slots);
	g->num_slots[PTNM_RX] = READ_ONCE(g->port->num_rx_slots);
	if (g->buf_size < ETH_ZLEN || g->buf_size > 65536 ||
	    !g->region_size || !PAGE_ALIGNED(g->region_off) ||
	    !PAGE_ALIGNED(g->region_size) ||
	    !ptg_in_shm(g, g->region_off, g->region_size) ||
	    g->num_slots[PTNM_TX] < PTNM_MIN_SLOTS ||
	    g->num_slots[PTNM_TX] > PTG_MAX_SLOTS ||
	    g->num_slots[PTNM_RX] < PTNM_MIN_SLOTS ||
	    g->num_slots[PTNM_RX] > PTG_MAX_SLOTS)
		return -EPROTO;
	if (!IS_ALIGNED(g->nifp_off, 8) ||
	    !ptg_in_region(g, g->nifp_off, sizeof(*nifp) + rings * sizeof(s64)))
		return -EPROTO;
	nifp = g->shm + g->nifp_off;
	/* The rings the netmap_if lists must be the descriptor's, no more. */
	if (READ_ONCE(nifp->ni_tx_rings) != g->num_tx_rings ||
	    READ_ONCE(nifp->ni_rx_rings) != g->num_rx_rings ||
	    READ_ONCE(nifp->ni_host_tx_rings) || READ_ONCE(nifp->ni_host_rx_rings))
		return -EPROTO;
	for (i = 0; i < rings; i++) {
		err = ptg_shring_check(g, i);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Before a START: every ring restarts at the head the host wrote back at
 * STOP (or 0, before the first START), which is what the host checks.
 */
static int ptg_rings_reset(struct ptg_dev *g, u32 *heads)
{
	u32 rings = g->num_tx_rings + g->num_rx_rings;
	u32 i;

	for (i = 0; i < rings; i++) {
		struct ptg_shring *sh = &g->sh[i];
		u32 head = READ_ONCE(sh->ring->head);

		if (head >= sh->num_slots)
			return -EPROTO;
		WRITE_ONCE(sh->atok->head, head);
		WRITE_ONCE(sh->atok->cur, head);
		WRITE_ONCE(sh->atok->appl_need_kick, 0);
		heads[i] = head;
	}
	return 0;
}

/* The interface's view of ring i, starting at head. */
static void ptg_ring_init(struct ptg_dev *g, struct ptg_ring *r, u32 i, u32 head)
{
	struct ptg_shring *sh = &g->sh[i];

	r->ring = sh->ring;
	r->atok = sh->atok;
	r->ktoa = sh->ktoa;
	r->vector = sh->vector;
	r->num_slots = sh->num_slots;
	r->bufs = g->shm + g->bufs_off;
	r->num_bufs = div_u64(g->region_off + g->region_size - g->bufs_off,
			      g->buf_size);
	r->head = head;
}

/* Kernel address of the buffer a slot names, or NULL if it is not ours. */
static void *ptg_slot_buf(const struct ptg_dev *g, const struct ptg_ring *r,
			  u32 slot_idx)
{
	u32 buf_idx = READ_ONCE(r->ring->slot[slot_idx].buf_idx);

	if (buf_idx >= r->num_bufs)
		return NULL;
	return r->bufs + (size_t)buf_idx * g->buf_size;
}

/* The host's hwtail, or num_slots if the host wrote garbage. */
static u32 ptg_hwtail(const struct ptg_ring *r)
{
	u32 hwtail = READ_ONCE(r->ktoa->hwtail);

	smp_rmb();	/* hwtail before the slots it covers */
	return hwtail < r->num_slots ? hwtail : r->num_slots;
}

static u32 ptg_dist(const struct ptg_ring *r, u32 from, u32 to)
{
	return to >= from ? to - from : to + r->num_slots - from;
}

/* Publish our head (and cur) and kick the host if it asked for it. */
static void ptg_publish(struct ptg_dev *g, struct ptg_ring *r)
{
	WRITE_ONCE(r->atok->cur, r->head);
	smp_wmb();	/* cur before head, as the host reads them reversed */
	WRITE_ONCE(r->atok->head, r->head);
	smp_mb();	/* publish before reading the host's need_kick */
	if (READ_ONCE(r->ktoa->kern_need_kick))
		ptg_kick(g, r->vector);
}

static void ptg_broken(struct ptg_dev *g, const char *what)
{
	if (!g->broken)
		netdev_err(g->netdev, "host broke the ring protocol (%s): link down\n",
			   what);
	g->broken = true;
	netif_carrier_off(g->netdev);
}

/* Free TX slots: [head, hwtail) belongs to us. Caller holds the tx lock. */
static u32 ptg_tx_space(struct ptg_dev *g)
{
	u32 hwtail = ptg_hwtail(&g->tx);

	if (hwtail == g->tx.num_slots) {
		ptg_broken(g, "tx hwtail");
		return 0;
	}
	return ptg_dist(&g->tx, g->tx.head, hwtail);
}

static netdev_tx_t ptg_start_xmit(struct sk_buff *skb, struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);
	struct ptg_ring *r = &g->tx;
	void *buf;

	if (g->broken || !ptg_tx_space(g)) {
		netif_stop_queue(netdev);
		return NETDEV_TX_BUSY;
	}
	if (skb_put_padto(skb, ETH_ZLEN)) {
		netdev->stats.tx_dropped++;
		return NETDEV_TX_OK;
	}
	buf = ptg_slot_buf(g, r, r->head);
	if (!buf || skb->len > g->buf_size) {
		netdev->stats.tx_dropped++;
		dev_kfree_skb_any(skb);
		return NETDEV_TX_OK;
	}
	skb_copy_bits(skb, 0, buf, skb->len);
	WRITE_ONCE(r->ring->slot[r->head].len, skb->len);
	WRITE_ONCE(r->ring->slot[r->head].flags, 0);
	r->head = r->head + 1 == r->num_slots ? 0 : r->head + 1;
	netdev->stats.tx_packets++;
	netdev->stats.tx_bytes += skb->len;
	dev_consume_skb_any(skb);

	if (!netdev_xmit_more() || !ptg_tx_space(g))
		ptg_publish(g, r);

	if (!ptg_tx_space(g)) {
		/* Full: sleep until the host returns slots, without losing
		 * a wake-up that races with going to sleep. */
		netif_stop_queue(netdev);
		WRITE_ONCE(r->atok->appl_need_kick, 1);
		smp_mb();
		if (ptg_tx_space(g)) {
			WRITE_ONCE(r->atok->appl_need_kick, 0);
			netif_start_queue(netdev);
		}
	}
	return NETDEV_TX_OK;
}

/* Interrupts of TX and RX ring 0 while the interface has the rings. */
static void ptg_tx_interrupt(struct ptg_dev *g)
{
	WRITE_ONCE(g->tx.atok->appl_need_kick, 0);
	if (netif_running(g->netdev) && netif_queue_stopped(g->netdev))
		netif_wake_queue(g->netdev);
}

static void ptg_rx_interrupt(struct ptg_dev *g)
{
	/* NAPI takes over: no more interrupts until it goes idle again. */
	WRITE_ONCE(g->rx.atok->appl_need_kick, 0);
	napi_schedule(&g->napi);
}

static int ptg_rx_poll(struct napi_struct *napi, int budget)
{
	struct ptg_dev *g = container_of(napi, struct ptg_dev, napi);
	struct net_device *netdev = g->netdev;
	struct ptg_ring *r = &g->rx;
	int done = 0;
	u32 hwtail = ptg_hwtail(r);

	if (hwtail == r->num_slots) {
		ptg_broken(g, "rx hwtail");
		napi_complete(napi);
		return 0;
	}
	while (done < budget && r->head != hwtail) {
		u16 len = READ_ONCE(r->ring->slot[r->head].len);
		void *buf = ptg_slot_buf(g, r, r->head);
		struct sk_buff *skb;

		r->head = r->head + 1 == r->num_slots ? 0 : r->head + 1;
		done++;
		if (!buf || len < ETH_HLEN || len > g->buf_size) {
			netdev->stats.rx_errors++;
			continue;
		}
		skb = napi_alloc_skb(napi, len);
		if (!skb) {
			netdev->stats.rx_dropped++;
			continue;
		}
		skb_put_data(skb, buf, len);
		skb->protocol = eth_type_trans(skb, netdev);
		netdev->stats.rx_packets++;
		netdev->stats.rx_bytes += len;
		napi_gro_receive(napi, skb);
		if (r->head == hwtail) {
			u32 newer = ptg_hwtail(r);

			if (newer != r->num_slots)
				hwtail = newer;
		}
	}
	if (done)
		ptg_publish(g, r);	/* the host may refill the slots */

	if (done < budget && napi_complete_done(napi, done)) {
		/* Ask for an interrupt, then look once more: a frame that
		 * arrived in between would otherwise wait for the next one. */
		WRITE_ONCE(r->atok->appl_need_kick, 1);
		smp_mb();
		if (ptg_hwtail(r) != r->head && napi_schedule_prep(napi)) {
			WRITE_ONCE(r->atok->appl_need_kick, 0);
			__napi_schedule(napi);
		}
	}
	return done;
}

/* ---------------------------------------------------------------------- */
/* Who uses the rings: the interface's datapath, or netmap mode            */
/* ---------------------------------------------------------------------- */

/*
 * The interface takes TX/RX ring 0: every ring restarts where the host left
 * it, the host STARTs, NAPI and the queue run. Caller holds rtnl.
 */
static int ptg_datapath_start(struct ptg_dev *g)
{
	u32 heads[PTG_MAX_RINGS];
	int err;

	err = ptg_rings_reset(g, heads);
	if (err) {
		netdev_err(g->netdev, "the host left a ring head out of range\n");
		return err;
	}
	ptg_ring_init(g, &g->tx, 0, heads[0]);
	ptg_ring_init(g, &g->rx, g->num_tx_rings, heads[g->num_tx_rings]);
	WRITE_ONCE(g->rx.atok->appl_need_kick, 1);
	g->broken = false;

	err = ptg_ctrl(g, PTNM_CTRL_START);
	if (err)
		return err;
	napi_enable(&g->napi);
	WRITE_ONCE(g->dp_on, true);
	ptg_update_carrier(g);
	netif_start_queue(g->netdev);
	napi_schedule(&g->napi);	/* frames that came before START */
	return 0;
}

/* The interface lets go of the rings and the host STOPs. Caller holds rtnl. */
static void ptg_datapath_stop(struct ptg_dev *g)
{
	u32 i;

	if (!g->dp_on)
		return;
	WRITE_ONCE(g->dp_on, false);
	/* No ring interrupt wakes the queue or NAPI after this. */
	for (i = 0; i < g->nvec - 1; i++)
		synchronize_irq(pci_irq_vector(g->pdev, PTNM_RING_VECTOR(i)));
	netif_tx_disable(g->netdev);
	netif_carrier_off(g->netdev);
	napi_disable(&g->napi);
	/* The interface stops whatever the host says. */
	ptg_ctrl(g, PTNM_CTRL_STOP);
}

static int ptg_open(struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);

	/* Netmap mode has the rings: the datapath starts when it ends. */
	if (g->nm_mode)
		return 0;
	return ptg_datapath_start(g);
}

static int ptg_stop(struct net_device *netdev)
{
	ptg_datapath_stop(netdev_priv(netdev));
	return 0;
}

static const struct net_device_ops ptg_netdev_ops = {
	.ndo_open = ptg_open,
	.ndo_stop = ptg_stop,
	.ndo_start_xmit = ptg_start_xmit,
	.ndo_set_mac_address = eth_mac_addr,
	.ndo_validate_addr = eth_validate_addr,
};

/* ---------------------------------------------------------------------- */
/* Netmap mode: the host port's rings for netmap applications in the guest */
/* ---------------------------------------------------------------------- */

static struct ptg_nm *ptg_nm_of(struct ptnm_port *port)
{
	return container_of(port, struct ptg_nm, port);
}

/* The CSB index of a kring: TX rings first, then RX rings. */
static u32 ptg_nm_index(const struct ptnm_kring *kring)
{
	return kring->dir == PTNM_TX ? kring->ring_id :
	       kring->port->num_rings[PTNM_TX] + kring->ring_id;
}

/*
 * The host's hwtail, checked: it only moves forward, and never past the
 * slot before the head we published (the host cannot return or fill slots
 * it was not given). Caller holds kring->sync_lock.
 */
static int ptg_nm_hwtail(struct ptnm_kring *kring, const struct ptg_shring *sh,
			 u32 *tailp)
{
	u32 tail = READ_ONCE(sh->ktoa->hwtail);

	smp_rmb();	/* hwtail before the slots it covers */
	if (tail >= kring->num_slots ||
	    ptnm_dist(kring, kring->nr_hwtail, tail) >
	    ptnm_dist(kring, kring->nr_hwtail, ptnm_prev(kring, kring->rhead))) {
		pr_info_ratelimited("%s %s ring %u: host wrote hwtail %u (tail %u, head %u)\n",
				    kring->port->name,
				    kring->dir == PTNM_TX ? "tx" : "rx",
				    kring->ring_id, tail, kring->nr_hwtail,
				    kring->rhead);
		return -EPROTO;
	}
	*tailp = tail;
	return 0;
}

/*
 * txsync and rxsync alike: publish what the application did (TX: new
 * packets; RX: released slots), kick the host if it asked, and take its
 * hwtail. With nothing for the application, ask for an interrupt and look
 * once more (the host looks at appl_need_kick after publishing hwtail).
 * Caller holds kring->sync_lock; the core validated rhead and rcur.
 */
static int ptg_nm_sync(struct ptnm_kring *kring)
{
	struct ptg_nm *nm = ptg_nm_of(kring->port);
	u32 i = ptg_nm_index(kring);
	const struct ptg_shring *sh;
	struct ptg_dev *g;
	u32 tail, sent;
	int err = -ENXIO;

	down_read(&nm->sync_rw);
	g = nm->g;
	if (!g)
		goto out;
	sh = &g->sh[i];
	if (kring->rhead != kring->nr_hwcur || kring->rcur != nm->pub_cur[i]) {
		WRITE_ONCE(sh->atok->cur, kring->rcur);
		smp_wmb();	/* cur before head, as the host reads them reversed */
		WRITE_ONCE(sh->atok->head, kring->rhead);
		sent = ptnm_dist(kring, kring->nr_hwcur, kring->rhead);
		kring->nr_hwcur = kring->rhead;
		nm->pub_cur[i] = kring->rcur;
		smp_mb();	/* publish before reading the host's need_kick */
		if (READ_ONCE(sh->ktoa->kern_need_kick))
			ptg_kick(g, sh->vector);
		if (kring->dir == PTNM_TX)
			ptnm_kring_count(kring, sent, 0, 0);
	}
	err = ptg_nm_hwtail(kring, sh, &tail);
	if (err)
		goto out;
	if (tail == kring->rcur) {
		WRITE_ONCE(sh->atok->appl_need_kick, 1);
		smp_mb();	/* the flag before the second look */
		err = ptg_nm_hwtail(kring, sh, &tail);
		if (err)
			goto out;
		if (tail != kring->rcur)
			WRITE_ONCE(sh->atok->appl_need_kick, 0);
	}
	if (kring->dir == PTNM_RX)
		ptnm_kring_count(kring, ptnm_dist(kring, kring->nr_hwtail, tail),
				 0, 0);
	/* Pairs with the core's acquire in its finalize. */
	smp_store_release(&kring->nr_hwtail, tail);
out:
	up_read(&nm->sync_rw);
	return err;
}

/* A ring interrupt in netmap mode. Hard irq, nm_irq_lock held. */
static void ptg_nm_interrupt(struct ptg_nm *nm, struct ptg_dev *g, u32 i)
{
	u32 ntx = nm->port.num_rings[PTNM_TX];
	struct ptnm_kring *kring = i < ntx ? &nm->port.krings[PTNM_TX][i] :
					     &nm->port.krings[PTNM_RX][i - ntx];

	/* The waiter syncs and asks again if it still has nothing. */
	WRITE_ONCE(g->sh[i].atok->appl_need_kick, 0);
	kring->notify(kring);
}

static irqreturn_t ptg_ring_interrupt(int irq, void *data)
{
	struct ptg_vec *v = data;
	struct ptg_dev *g = v->g;
	struct ptg_nm *nm;

	spin_lock(&g->nm_irq_lock);
	nm = g->nm_active;
	if (nm)
		ptg_nm_interrupt(nm, g, v->ring);
	spin_unlock(&g->nm_irq_lock);
	if (nm || !READ_ONCE(g->dp_on))
		return IRQ_HANDLED;
	if (v->ring == 0)
		ptg_tx_interrupt(g);
	else if (v->ring == g->num_tx_rings)
		ptg_rx_interrupt(g);
	return IRQ_HANDLED;
}

static void ptg_nm_krings_free(struct ptnm_port *port)
{
	int d;

	for (d = 0; d < PTNM_DIRS; d++) {
		kfree(port->krings[d]);
		port->krings[d] = NULL;
	}
}

/* Krings over the host's rings; no ring or buffer is allocated. */
static int ptg_nm_krings_create(struct ptg_nm *nm)
{
	struct ptnm_port *port = &nm->port;
	struct ptg_dev *g = nm->g;
	u32 i, d;

	for (d = 0; d < PTNM_DIRS; d++) {
		port->krings[d] = kcalloc(port->num_rings[d],
					  sizeof(struct ptnm_kring), GFP_KERNEL);
		if (!port->krings[d]) {
			ptg_nm_krings_free(port);
			return -ENOMEM;
		}
		for (i = 0; i < port->num_rings[d]; i++) {
			struct ptnm_kring *kring = &port->krings[d][i];
			const struct ptg_shring *sh =
				&g->sh[d == PTNM_TX ? i : g->num_tx_rings + i];

			kring->port = port;
			kring->ring_ofs = sh->offset - g->region_off;
			kring->ring = port->region->vaddr + kring->ring_ofs;
			kring->ring_idx = U32_MAX;	/* not from the ring pool */
			kring->num_slots = sh->num_slots;
			kring->ring_id = i;
			kring->dir = d;
			mutex_init(&kring->sync_lock);
			init_waitqueue_head(&kring->wq);
			kring->notify = ptnm_kring_notify;
			u64_stats_init(&kring->stats.syncp);
		}
	}
	return 0;
}

/*
 * The rings after START: the application starts where the host left them,
 * head = cur = the head we published, tail = the host's hwtail.
 */
static int ptg_nm_krings_start(struct ptg_nm *nm, const u32 *heads)
{
	struct ptnm_port *port = &nm->port;
	struct ptg_dev *g = nm->g;
	u32 i, d;

	for (d = 0; d < PTNM_DIRS; d++) {
		for (i = 0; i < port->num_rings[d]; i++) {
			struct ptnm_kring *kring = &port->krings[d][i];
			u32 idx = ptg_nm_index(kring);
			u32 tail = READ_ONCE(g->sh[idx].ktoa->hwtail);

			if (tail >= kring->num_slots)
				return -EPROTO;
			kring->rhead = kring->rcur = kring->nr_hwcur = heads[idx];
			kring->nr_hwtail = kring->rtail = tail;
			nm->pub_cur[idx] = heads[idx];
			WRITE_ONCE(kring->ring->head, heads[idx]);
			WRITE_ONCE(kring->ring->cur, heads[idx]);
			WRITE_ONCE(kring->ring->tail, tail);
		}
	}
	return 0;
}

/*
 * Netmap mode ends (or never began): the host STOPs, and the interface
 * takes ring 0 again if it is up. Caller holds ptnm_lock; g is present.
 */
static void ptg_nm_leave(struct ptg_dev *g)
{
	int err;

	ptg_ctrl(g, PTNM_CTRL_STOP);
	rtnl_lock();
	g->nm_mode = false;
	if (netif_running(g->netdev)) {
		err = ptg_datapath_start(g);
		if (err)
			netdev_warn(g->netdev, "cannot resume after netmap mode: %d\n",
				    err);
	}
	rtnl_unlock();
}

/*
 * The first registration: the interface lets go, a STOP/START cycle puts
 * every ring where both sides agree, and ring interrupts go to the krings.
 * Caller holds ptnm_lock.
 */
static int ptg_nm_activate(struct ptnm_port *port)
{
	struct ptg_nm *nm = ptg_nm_of(port);
	struct ptg_dev *g = nm->g;
	u32 heads[PTG_MAX_RINGS];
	int err;

	if (!g)
		return -ENXIO;
	err = ptg_nm_krings_create(nm);
	if (err)
		return err;

	rtnl_lock();
	g->nm_mode = true;
	ptg_datapath_stop(g);
	rtnl_unlock();

	err = ptg_ctrl(g, PTNM_CTRL_STOP);
	if (!err)
		err = ptg_rings_reset(g, heads);
	if (!err)
		err = ptg_ctrl(g, PTNM_CTRL_START);
	if (!err)
		err = ptg_nm_krings_start(nm, heads);
	if (err) {
		netdev_warn(g->netdev, "cannot enter netmap mode: %d\n", err);
		ptg_nm_leave(g);
		ptg_nm_krings_free(port);
		return err;
	}
	spin_lock_irq(&g->nm_irq_lock);
	g->nm_active = nm;
	spin_unlock_irq(&g->nm_irq_lock);
	port->active = true;
	netdev_info(g->netdev, "netmap mode\n");
	return 0;
}

/* The last registration is gone. Caller holds ptnm_lock. */
static void ptg_nm_deactivate(struct ptnm_port *port)
{
	struct ptg_nm *nm = ptg_nm_of(port);
	struct ptg_dev *g = nm->g;

	if (g) {
		spin_lock_irq(&g->nm_irq_lock);
		g->nm_active = NULL;
		spin_unlock_irq(&g->nm_irq_lock);
		ptg_nm_leave(g);
		netdev_info(g->netdev, "netmap mode ends\n");
	}
	ptg_nm_krings_free(port);
	port->active = false;
}

/* The files share the host's netmap_if: it lists every ring of the port. */
static u64 ptg_nm_nifp_offset(struct ptnm_port *port)
{
	return ptg_nm_of(port)->nifp_ofs;
}

/* Caller holds ptnm_lock. */
static void ptg_nm_destroy(struct ptnm_port *port)
{
	struct ptg_nm *nm = ptg_nm_of(port);

	if (nm->g)
		nm->g->nm = NULL;
	ptnm_port_fini(port);
	kfree(nm);
}

static const struct ptnm_port_ops ptg_nm_ops = {
	.activate = ptg_nm_activate,
	.deactivate = ptg_nm_deactivate,
	.txsync = ptg_nm_sync,
	.rxsync = ptg_nm_sync,
	.destroy = ptg_nm_destroy,
	.nifp_offset = ptg_nm_nifp_offset,
};

/* A netmap port over the device's BAR2. Caller holds ptnm_lock. */
static int ptg_nm_create(struct ptg_dev *g, struct ptnm_port **portp)
{
	struct ptnm_port_req geo = {
		.num_rings = { g->num_tx_rings, g->num_rx_rings },
		.num_slots = { g->num_slots[PTNM_TX], g->num_slots[PTNM_RX] },
	};
	u32 max_slots = max(g->num_slots[PTNM_TX], g->num_slots[PTNM_RX]);
	struct ptnm_region *region;
	struct ptg_nm *nm;
	int err;

	nm = kzalloc(sizeof(*nm), GFP_KERNEL);
	if (!nm)
		return -ENOMEM;
	region = ptnm_region_new_phys(g->shm_phys + g->region_off,
				      g->region_size,
				      g->bufs_off - g->region_off, g->buf_size,
				      sizeof(struct netmap_ring) +
				      max_slots * sizeof(struct netmap_slot));
	if (IS_ERR(region)) {
		kfree(nm);
		return PTR_ERR(region);
	}
	err = ptnm_port_init(&nm->port, netdev_name(g->netdev), &ptg_nm_ops,
			     region, &geo);
	ptnm_region_put(region);	/* the port has its own reference */
	if (err) {
		kfree(nm);
		return err;
	}
	nm->nifp_ofs = g->nifp_off - g->region_off;
	init_rwsem(&nm->sync_rw);
	nm->g = g;
	g->nm = nm;
	*portp = &nm->port;
	return 0;
}

/*
 * A ptnetmap interface of the caller's namespace, by name; any other name
 * is not ours. Caller holds ptnm_lock.
 */
static int ptg_nm_lookup(const char *name, const struct ptnm_port_req *req,
			 struct ptnm_port **portp)
{
	struct net_device *dev;
	struct ptg_dev *g;
	int err = 0;

	if (strlen(name) >= IFNAMSIZ)
		return 0;
	dev = dev_get_by_name(current->nsproxy->net_ns, name);
	if (!dev)
		return 0;
	if (dev->netdev_ops != &ptg_netdev_ops) {
		dev_put(dev);
		return 0;
	}
	g = netdev_priv(dev);
	if (!ns_capable(dev_net(dev)->user_ns, CAP_NET_ADMIN)) {
		err = -EPERM;	/* it sees all of the port's traffic */
	} else if (g->removing) {
		err = -ENXIO;
	} else if (g->nm) {
		ptnm_port_get(&g->nm->port);
		*portp = &g->nm->port;
	} else {
		err = ptg_nm_create(g, portp);
	}
	dev_put(dev);
	return err;
}

const struct ptnm_port_type ptnm_ptg_type = {
	.name = "ptnetmap guest",
	.lookup = ptg_nm_lookup,
};

/*
 * The device goes away under a netmap application: syncs fail with ENXIO
 * from now on (the read side of sync_rw), pollers wake up to EPOLLERR, the
 * application's mappings of BAR2 are revoked (its next access to the rings
 * or buffers gets SIGBUS, not whatever the guest-physical range holds once
 * the BAR is gone), and the host is told to STOP. The port, its krings and
 * its region live until the application lets go; the kernel does not touch
 * the memory again. Caller holds ptnm_lock.
 */
static void ptg_nm_detach(struct ptg_dev *g)
{
	struct ptg_nm *nm = g->nm;
	u32 d, i;

	g->removing = true;
	if (!nm)
		return;
	down_write(&nm->sync_rw);
	nm->g = NULL;
	up_write(&nm->sync_rw);
	WRITE_ONCE(nm->port.dead, true);
	/* BAR2 is about to be released: no process keeps a mapping of it. */
	ptnm_region_revoke(nm->port.region);
	g->nm = NULL;
	if (!nm->port.active)
		return;
	spin_lock_irq(&g->nm_irq_lock);
	g->nm_active = NULL;
	spin_unlock_irq(&g->nm_irq_lock);
	for (d = 0; d < PTNM_DIRS; d++)
		for (i = 0; i < nm->port.num_rings[d]; i++)
			ptnm_kring_notify(&nm->port.krings[d][i]);
	ptg_ctrl(g, PTNM_CTRL_STOP);
}

/* ---------------------------------------------------------------------- */
/* The PCI device                                                          */
/* ---------------------------------------------------------------------- */

/*
 * Check that BAR2 holds a ptnetmap layout we understand and find our port
 * descriptor. -ENODEV means "not a ptnetmap device": the caller leaves it.
 */
static int ptg_find_port(struct ptg_dev *g)
{
	const struct ptnm_global *global = g->shm;
	struct device *dev = &g->pdev->dev;
	u32 num_peers;
	u16 major;

	if (g->shm_size < 2 * PTNM_PAGE_SIZE ||
	    READ_ONCE(global->magic) != PTNM_MAGIC)
		return -ENODEV;
	major = READ_ONCE(global->layout_major);
	if (major != PTNM_LAYOUT_MAJOR) {
		dev_warn(dev, "ptnetmap layout %u is not supported (want %u)\n",
			 major, PTNM_LAYOUT_MAJOR);
		return -ENODEV;
	}
	num_peers = READ_ONCE(global->num_peers);
	g->peer_id = readl(g->regs + PTG_REG_IVPOSITION);
	if (g->peer_id == PTNM_HOST_PEER || g->peer_id > num_peers ||
	    g->peer_id > PTNM_MAX_PEERS ||
	    (u64)(g->peer_id + 1) * PTNM_PAGE_SIZE > g->shm_size) {
		dev_warn(dev, "peer id %u has no port descriptor (%u peers)\n",
			 g->peer_id, num_peers);
		return -ENODEV;
	}
	g->port = g->shm + (size_t)g->peer_id * PTNM_PAGE_SIZE;
	if (READ_ONCE(g->port->peer_id) != g->peer_id) {
		dev_warn(dev, "port descriptor %u names peer %u\n", g->peer_id,
			 READ_ONCE(g->port->peer_id));
		return -ENODEV;
	}
	g->num_tx_rings = READ_ONCE(g->port->num_tx_rings);
	g->num_rx_rings = READ_ONCE(g->port->num_rx_rings);
	if (!g->num_tx_rings || g->num_tx_rings > PTNM_PORT_MAX_RINGS ||
	    !g->num_rx_rings || g->num_rx_rings > PTNM_PORT_MAX_RINGS) {
		dev_warn(dev, "bad ring counts %u/%u\n", g->num_tx_rings,
			 g->num_rx_rings);
		return -ENODEV;
	}
	return 0;
}

static void ptg_setup_netdev(struct ptg_dev *g)
{
	struct net_device *netdev = g->netdev;
	u8 mac[ETH_ALEN];
	u32 mtu;

	memcpy(mac, g->port->mac, ETH_ALEN);
	if (is_valid_ether_addr(mac))
		eth_hw_addr_set(netdev, mac);
	else
		eth_hw_addr_random(netdev);

	mtu = READ_ONCE(g->port->mtu);
	netdev->max_mtu = clamp_t(u32, mtu, ETH_MIN_MTU, ETH_MAX_MTU);
	netdev->mtu = min_t(u32, netdev->max_mtu, ETH_DATA_LEN);
	netdev->netdev_ops = &ptg_netdev_ops;
	SET_NETDEV_DEV(netdev, &g->pdev->dev);
}

static int ptg_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct net_device *netdev;
	struct ptg_dev *g;
	unsigned int i;
	int err;

	netdev = devm_alloc_etherdev(&pdev->dev, sizeof(*g));
	if (!netdev)
		return -ENOMEM;
	g = netdev_priv(netdev);
	g->pdev = pdev;
	g->netdev = netdev;
	mutex_init(&g->ctrl_lock);
	init_waitqueue_head(&g->ctrl_wq);
	spin_lock_init(&g->nm_irq_lock);

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(PTG_BAR_REGS), KBUILD_MODNAME);
	if (err)
		return err;
	g->regs = pcim_iomap_table(pdev)[PTG_BAR_REGS];
	err = pci_request_region(pdev, PTG_BAR_SHM, KBUILD_MODNAME);
	if (err)
		return err;
	g->shm_phys = pci_resource_start(pdev, PTG_BAR_SHM);
	g->shm_size = pci_resource_len(pdev, PTG_BAR_SHM);
	g->shm = devm_memremap(&pdev->dev, g->shm_phys, g->shm_size, MEMREMAP_WB);
	if (IS_ERR(g->shm))
		return PTR_ERR(g->shm);

	err = ptg_find_port(g);
	if (err)
		return err;
	err = ptg_layout(g);
	if (err) {
		dev_err(&pdev->dev, "the host's layout of port %u is inconsistent\n",
			g->peer_id);
		return err;
	}

	g->nvec = 1 + g->num_tx_rings + g->num_rx_rings;
	err = pci_alloc_irq_vectors(pdev, g->nvec, g->nvec, PCI_IRQ_MSIX);
	if (err < 0) {
		dev_err(&pdev->dev, "need %u MSI-X vectors (QEMU vectors=%u): %d\n",
			g->nvec, g->nvec, err);
		return err;
	}
	err = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, PTNM_CTRL_VECTOR),
			       ptg_ctrl_interrupt, 0, KBUILD_MODNAME "-ctrl", g);
	if (err)
		return err;
	/* Ring 0 serves the interface; every ring serves netmap mode. */
	for (i = 0; i < g->nvec - 1; i++) {
		g->vecs[i].g = g;
		g->vecs[i].ring = i;
		err = devm_request_irq(&pdev->dev,
				       pci_irq_vector(pdev, PTNM_RING_VECTOR(i)),
				       ptg_ring_interrupt, 0, KBUILD_MODNAME "-ring",
				       &g->vecs[i]);
		if (err)
			return err;
	}

	ptg_setup_netdev(g);
	netif_napi_add(netdev, &g->napi, ptg_rx_poll);
	netif_carrier_off(netdev);
	err = register_netdev(netdev);
	if (err)
		return err;
	pci_set_drvdata(pdev, g);
	netdev_info(netdev, "ptnetmap port %.32s, peer %u, %u+%u rings, %pM\n",
		    g->port->name, g->peer_id, g->num_tx_rings, g->num_rx_rings,
		    netdev->dev_addr);
	return 0;
}

/*
 * A netmap application may still hold the port: it loses the device (its
 * syncs fail, its mappings of BAR2 are revoked); the port lives until it
 * closes.
 */
static void ptg_remove(struct pci_dev *pdev)
{
	struct ptg_dev *g = pci_get_drvdata(pdev);

	mutex_lock(&ptnm_lock);
	ptg_nm_detach(g);
	mutex_unlock(&ptnm_lock);
	unregister_netdev(g->netdev);
	netif_napi_del(&g->napi);
}

static const struct pci_device_id ptg_pci_ids[] = {
	{ PCI_DEVICE_SUB(PCI_VENDOR_ID_REDHAT_QUMRANET, 0x1110,
			 PCI_SUBVENDOR_ID_REDHAT_QUMRANET, 0x1100) },
	{ }
};
MODULE_DEVICE_TABLE(pci, ptg_pci_ids);

static struct pci_driver ptg_pci_driver = {
	.name = KBUILD_MODNAME,
	.id_table = ptg_pci_ids,
	.probe = ptg_probe,
	.remove = ptg_remove,
};

int ptg_init(void)
{
	return pci_register_driver(&ptg_pci_driver);
}

void ptg_exit(void)
{
	pci_unregister_driver(&ptg_pci_driver);
}
