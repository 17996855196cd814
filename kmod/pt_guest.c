// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap guest driver: a network interface over a passthrough port.
 *
 * Binds QEMU ivshmem-doorbell devices (1af4:1110) whose BAR2 starts with a
 * ptnetmap layout header (docs/shm-layout.md) and leaves every other ivshmem
 * device alone. Owns, per device: the BAR mappings, the MSI-X vectors (0 for
 * the control mailbox, 1 + i for ring i), the control mailbox protocol
 * (START/STOP) and the net_device.
 *
 * The interface uses TX ring 0 and RX ring 0 of the port through the CSB
 * (docs/shm-layout.md): frames are copied between skbs and the port's
 * buffers, notifications go both ways only when the other side asked for
 * them (need_kick flags, with the store-load double check).
 *
 * Everything the host writes in shared memory is read once and validated:
 * a host that lies about the layout makes probe or open fail, and a bad
 * index or length at run time drops that frame, never crashes the guest.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/etherdevice.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/mutex.h>
#include <linux/netdevice.h>
#include <linux/pci.h>
#include <linux/wait.h>

#include <net/netmap.h>
#include <net/ptnetmap.h>

#include "pt_guest.h"

#define PTG_BAR_REGS		0
#define PTG_BAR_SHM		2
#define PTG_REG_IVPOSITION	8
#define PTG_REG_DOORBELL	12

/* A host that leaves a control request unanswered this long is gone. */
#define PTG_CTRL_TIMEOUT_MS	1000

/*
 * One ring as the guest sees it. Geometry is read from shared memory once,
 * at open, and validated; head is the guest's own copy of what it publishes.
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

struct ptg_dev {
	struct pci_dev *pdev;
	struct net_device *netdev;
	void __iomem *regs;		/* BAR0: IVPosition, Doorbell */
	void *shm;			/* BAR2, mapped write-back */
	resource_size_t shm_size;
	struct ptnm_port_desc *port;		/* our descriptor inside shm */
	u32 peer_id;
	u16 num_tx_rings;
	u16 num_rx_rings;
	unsigned int nvec;

	u32 buf_size;

	struct ptg_ring tx;		/* tx ring 0; Protected by the tx queue lock */
	struct ptg_ring rx;		/* rx ring 0; owned by NAPI */
	struct napi_struct napi;
	bool broken;			/* the host broke the protocol: stay down */

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

static void ptg_update_carrier(struct ptg_dev *g)
{
	if (READ_ONCE(g->port->link) == PTNM_LINK_UP && !g->broken)
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

/*
 * Find ring `index` of the port's netmap_if (TX rings first, as ring_ofs[])
 * and check that it, its slots and its buffers lie inside BAR2.
 */
static int ptg_ring_setup(struct ptg_dev *g, struct ptg_ring *r,
			  unsigned int index, unsigned int csb_index,
			  u32 num_slots)
{
	u64 nifp_off = READ_ONCE(g->port->nifp_offset);
	u32 rings = g->num_tx_rings + g->num_rx_rings;
	u64 csb_off = READ_ONCE(g->port->csb_offset);
	struct netmap_if *nifp;
	u64 ring_off, bufs_off;
	s64 ofs;

	if (!ptg_in_shm(g, nifp_off, sizeof(*nifp) + rings * sizeof(s64)) ||
	    !IS_ALIGNED(nifp_off, 8))
		return -EPROTO;
	nifp = g->shm + nifp_off;
	ofs = READ_ONCE(nifp->ring_ofs[index]);
	ring_off = nifp_off + ofs;
	if (ofs <= 0 || !IS_ALIGNED(ring_off, 8) ||
	    !ptg_in_shm(g, ring_off, sizeof(struct netmap_ring) +
			(u64)num_slots * sizeof(struct netmap_slot)))
		return -EPROTO;
	r->ring = g->shm + ring_off;
	if (READ_ONCE(r->ring->num_slots) != num_slots ||
	    READ_ONCE(r->ring->nr_buf_size) != g->buf_size)
		return -EPROTO;

	ofs = READ_ONCE(r->ring->buf_ofs);
	bufs_off = ring_off + ofs;
	if (ofs <= 0 || bufs_off >= g->shm_size)
		return -EPROTO;
	r->bufs = g->shm + bufs_off;
	r->num_bufs = div_u64(g->shm_size - bufs_off, g->buf_size);
	r->num_slots = num_slots;

	if (!IS_ALIGNED(csb_off, 64) ||
	    !ptg_in_shm(g, csb_off, (u64)rings * (sizeof(*r->atok) + sizeof(*r->ktoa))))
		return -EPROTO;
	r->atok = (struct nm_csb_atok *)(g->shm + csb_off) + csb_index;
	r->ktoa = (struct nm_csb_ktoa *)(g->shm + csb_off +
					 rings * sizeof(*r->atok)) + csb_index;
	r->vector = PTNM_RING_VECTOR(csb_index);
	r->head = READ_ONCE(r->ring->head);
	if (r->head >= num_slots)
		return -EPROTO;
	return 0;
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

static irqreturn_t ptg_tx_interrupt(int irq, void *data)
{
	struct ptg_dev *g = data;

	WRITE_ONCE(g->tx.atok->appl_need_kick, 0);
	if (netif_running(g->netdev) && netif_queue_stopped(g->netdev))
		netif_wake_queue(g->netdev);
	return IRQ_HANDLED;
}

static irqreturn_t ptg_rx_interrupt(int irq, void *data)
{
	struct ptg_dev *g = data;

	/* NAPI takes over: no more interrupts until it goes idle again. */
	WRITE_ONCE(g->rx.atok->appl_need_kick, 0);
	napi_schedule(&g->napi);
	return IRQ_HANDLED;
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

static int ptg_open(struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);
	int err;

	g->buf_size = READ_ONCE(((struct ptnm_global *)g->shm)->buf_size);
	if (g->buf_size < ETH_ZLEN || g->buf_size > 65536)
		return -EPROTO;
	err = ptg_ring_setup(g, &g->tx, 0, 0, READ_ONCE(g->port->num_tx_slots));
	if (!err)
		err = ptg_ring_setup(g, &g->rx, g->num_tx_rings, g->num_tx_rings,
				     READ_ONCE(g->port->num_rx_slots));
	if (err) {
		netdev_err(netdev, "the host's ring layout is inconsistent\n");
		return err;
	}
	WRITE_ONCE(g->tx.atok->head, g->tx.head);
	WRITE_ONCE(g->tx.atok->cur, g->tx.head);
	WRITE_ONCE(g->tx.atok->appl_need_kick, 0);
	WRITE_ONCE(g->rx.atok->head, g->rx.head);
	WRITE_ONCE(g->rx.atok->cur, g->rx.head);
	WRITE_ONCE(g->rx.atok->appl_need_kick, 1);
	g->broken = false;

	err = ptg_ctrl(g, PTNM_CTRL_START);
	if (err)
		return err;
	napi_enable(&g->napi);
	ptg_update_carrier(g);
	netif_start_queue(netdev);
	napi_schedule(&g->napi);	/* frames that came before START */
	return 0;
}

static int ptg_stop(struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);

	netif_stop_queue(netdev);
	netif_carrier_off(netdev);
	napi_disable(&g->napi);
	/* The interface goes down whatever the host says. */
	ptg_ctrl(g, PTNM_CTRL_STOP);
	return 0;
}

static const struct net_device_ops ptg_netdev_ops = {
	.ndo_open = ptg_open,
	.ndo_stop = ptg_stop,
	.ndo_start_xmit = ptg_start_xmit,
	.ndo_set_mac_address = eth_mac_addr,
	.ndo_validate_addr = eth_validate_addr,
};

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
	int err;

	netdev = devm_alloc_etherdev(&pdev->dev, sizeof(*g));
	if (!netdev)
		return -ENOMEM;
	g = netdev_priv(netdev);
	g->pdev = pdev;
	g->netdev = netdev;
	mutex_init(&g->ctrl_lock);
	init_waitqueue_head(&g->ctrl_wq);

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
	g->shm_size = pci_resource_len(pdev, PTG_BAR_SHM);
	g->shm = devm_memremap(&pdev->dev, pci_resource_start(pdev, PTG_BAR_SHM),
			       g->shm_size, MEMREMAP_WB);
	if (IS_ERR(g->shm))
		return PTR_ERR(g->shm);

	err = ptg_find_port(g);
	if (err)
		return err;

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

	/* Vectors of rings the interface does not use stay without a handler. */
	err = devm_request_irq(&pdev->dev, pci_irq_vector(pdev, PTNM_RING_VECTOR(0)),
			       ptg_tx_interrupt, 0, KBUILD_MODNAME "-tx", g);
	if (err)
		return err;
	err = devm_request_irq(&pdev->dev,
			       pci_irq_vector(pdev, PTNM_RING_VECTOR(g->num_tx_rings)),
			       ptg_rx_interrupt, 0, KBUILD_MODNAME "-rx", g);
	if (err)
		return err;

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

static void ptg_remove(struct pci_dev *pdev)
{
	struct ptg_dev *g = pci_get_drvdata(pdev);

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
