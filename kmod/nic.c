// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap NIC ports: netmap rings over any Linux netdev, no driver changes.
 *
 * Owns the NIC binding (holding a netdev and taking its traffic) and the
 * netdev port type (`netmap:eth0`).
 *
 *   Received frames   an rx_handler (netdev_rx_handler_register) takes every
 *                     frame the device receives away from the stack, while a
 *                     netmap client or a VALE switch holds the device.
 *   Transmit          frames from slots become skbs sent with
 *                     dev_queue_xmit(), through the qdisc and the driver.
 *   Host stack        with host rings (or a VALE host port) what the stack
 *                     transmits on the device is captured: the device's
 *                     netdev_ops are replaced by a copy whose ndo_start_xmit
 *                     hands the skb to us; frames we send pass through to
 *                     the driver. Frames for the stack are skbs given to
 *                     netif_rx() as if the device had received them.
 *   Our own skbs      carry PTNM_NIC_MAGIC_PRIO as skb->priority, which
 *                     the rx_handler and the xmit hook recognise and reset,
 *                     so they are not captured again. (A value, not a code
 *                     pointer: an skb may outlive the module in a queue.)
 *
 * A NIC port uses the global region (id 1), or the region its creator's
 * request names (a passthrough attachment's memfd, EXTMEM), and has one
 * NIC ring and one host ring in each direction. Its counters are per port
 * (vale.h).
 *
 * Locking: binds are listed under rtnl; starting and stopping a bind takes
 * rtnl (inside ptnm_lock: ptnm_lock -> rtnl). The netdev notifier (rtnl
 * held) lets go of a device that unregisters: it stops the bind, clears
 * b->dev and waits a grace period, without ptnm_lock. The datapath reads
 * b->dev and dev->rx_handler_data under RCU. A port's RX rings are filled
 * under their ptnm_rxq lock (vale.h).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/etherdevice.h>
#include <linux/if_arp.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/rtnetlink.h>
#include <linux/skbuff.h>
#include <linux/slab.h>
#include <net/net_namespace.h>

#include "ptnetmap_kern.h"
#include "vale.h"

/* Slots of a NIC ring when the request leaves it to us. */
#define PTNM_NIC_DEF_SLOTS	1024

/* skb->priority of the skbs we make; reset to 0 when recognised. */
#define PTNM_NIC_MAGIC_PRIO	0x7e7a1e00

/* All binds; protected by rtnl. */
static LIST_HEAD(ptnm_nic_binds);

/* ---------------------------------------------------------------------- */
/* Binding a netdev                                                        */
/* ---------------------------------------------------------------------- */

/*
 * Bring a frame to the form the ops expect (skb->data at the Ethernet
 * header): own it, put a stripped VLAN tag back, software segmentation and
 * checksum, linear. Consumes skb. bh disabled, RCU.
 */
static void ptnm_nic_normalize(struct ptnm_nic_bind *b, struct sk_buff *skb,
			       void (*deliver)(struct ptnm_nic_bind *,
					       struct sk_buff *))
{
	struct sk_buff *segs, *next;

	skb = skb_share_check(skb, GFP_ATOMIC);
	if (!skb)
		return;
	if (skb_vlan_tag_present(skb)) {
		skb = __vlan_hwaccel_push_inside(skb);
		if (!skb)
			return;
	}
	if (skb_is_gso(skb)) {
		segs = skb_gso_segment(skb, 0);
		if (IS_ERR_OR_NULL(segs)) {
			kfree_skb(skb);
			return;
		}
		consume_skb(skb);
	} else {
		segs = skb;
	}
	skb_list_walk_safe(segs, skb, next) {
		skb_mark_not_on_list(skb);
		if ((skb->ip_summed == CHECKSUM_PARTIAL &&
		     skb_checksum_help(skb)) || skb_linearize(skb)) {
			kfree_skb(skb);
			continue;
		}
		deliver(b, skb);
	}
}

static rx_handler_result_t ptnm_nic_rx_handler(struct sk_buff **pskb)
{
	struct sk_buff *skb = *pskb;
	struct ptnm_nic_bind *b = rcu_dereference(skb->dev->rx_handler_data);

	/* A frame we injected for the stack: let it through, once. */
	if (skb->priority == PTNM_NIC_MAGIC_PRIO) {
		skb->priority = 0;
		return RX_HANDLER_PASS;
	}
	if (unlikely(skb->pkt_type == PACKET_LOOPBACK))
		return RX_HANDLER_PASS;
	skb_push(skb, skb->data - skb_mac_header(skb));
	ptnm_nic_normalize(b, skb, b->ops->wire_rx);
	return RX_HANDLER_CONSUMED;
}

/*
 * The ndo_start_xmit of a device whose host stack we capture. Called by the
 * core with rcu_read_lock_bh held; the bind outlives every such call (it is
 * unhooked and a grace period passes before it goes).
 */
static netdev_tx_t ptnm_nic_start_xmit(struct sk_buff *skb,
				       struct net_device *dev)
{
	struct ptnm_nic_bind *b = rcu_dereference_bh(dev->rx_handler_data);

	if (skb->priority == PTNM_NIC_MAGIC_PRIO) {
		skb->priority = 0;
		return b->orig_ops->ndo_start_xmit(skb, dev);
	}
	ptnm_nic_normalize(b, skb, b->ops->stack_tx);
	return NETDEV_TX_OK;
}

/* Caller holds rtnl. */
static void ptnm_nic_unhook(struct ptnm_nic_bind *b, struct net_device *dev)
{
	if (!b->started)
		return;
	if (b->host) {
		WRITE_ONCE(dev->netdev_ops, b->orig_ops);
		/* No xmit is still inside the hook after this. */
		synchronize_net();
		b->host = false;
	}
	netdev_rx_handler_unregister(dev);	/* waits for the receivers */
	b->started = false;
}

int ptnm_nic_bind_init(struct ptnm_nic_bind *b, const char *name,
		       const struct ptnm_nic_bind_ops *ops)
{
	struct net_device *dev;

	dev = dev_get_by_name(current->nsproxy->net_ns, name);
	if (!dev)
		return -ENXIO;
	/* Whoever holds a device sees and sends all of its traffic. */
	if (!ns_capable(dev_net(dev)->user_ns, CAP_NET_ADMIN)) {
		dev_put(dev);
		return -EPERM;
	}
	b->ops = ops;
	rtnl_lock();
	netdev_hold(dev, &b->tracker, GFP_KERNEL);
	rcu_assign_pointer(b->dev, dev);
	list_add(&b->node, &ptnm_nic_binds);
	rtnl_unlock();
	dev_put(dev);
	return 0;
}

/* Caller holds rtnl: let go of the device. */
static void ptnm_nic_bind_drop(struct ptnm_nic_bind *b)
{
	struct net_device *dev = rtnl_dereference(b->dev);

	if (!dev)
		return;
	ptnm_nic_unhook(b, dev);
	RCU_INIT_POINTER(b->dev, NULL);
	synchronize_net();
	netdev_put(dev, &b->tracker);
}

void ptnm_nic_bind_fini(struct ptnm_nic_bind *b)
{
	rtnl_lock();
	ptnm_nic_bind_drop(b);
	list_del(&b->node);
	rtnl_unlock();
}

int ptnm_nic_bind_start(struct ptnm_nic_bind *b, bool host)
{
	struct net_device *dev;
	int err = -ENXIO;

	rtnl_lock();
	dev = rtnl_dereference(b->dev);
	if (!dev)
		goto out;
	if (dev->type != ARPHRD_ETHER || dev->addr_len != ETH_ALEN) {
		err = -EINVAL;
		goto out;
	}
	if (host && !dev->netdev_ops->ndo_start_xmit) {
		err = -EOPNOTSUPP;
		goto out;
	}
	err = netdev_rx_handler_register(dev, ptnm_nic_rx_handler, b);
	if (err) {
		pr_info_ratelimited("%s: cannot take its frames (%d): in a bridge, bond or in use\n",
				    dev->name, err);
		goto out;
	}
	b->started = true;
	if (host) {
		b->orig_ops = dev->netdev_ops;
		b->host_ops = *b->orig_ops;
		b->host_ops.ndo_start_xmit = ptnm_nic_start_xmit;
		b->host = true;
		WRITE_ONCE(dev->netdev_ops, &b->host_ops);
	}
out:
	rtnl_unlock();
	return err;
}

void ptnm_nic_bind_stop(struct ptnm_nic_bind *b)
{
	struct net_device *dev;

	rtnl_lock();
	dev = rtnl_dereference(b->dev);
	if (dev)
		ptnm_nic_unhook(b, dev);
	rtnl_unlock();
}

/* Caller holds ptnm_lock (b stays bound or dropped meanwhile: harmless). */
bool ptnm_nic_bind_is(struct ptnm_nic_bind *b, const char *name)
{
	struct net_device *dev;
	bool ret;

	rcu_read_lock();
	dev = rcu_dereference(b->dev);
	ret = dev && !strcmp(dev->name, name) &&
	      net_eq(dev_net(dev), current->nsproxy->net_ns);
	rcu_read_unlock();
	return ret;
}

static struct sk_buff *ptnm_nic_skb(struct net_device *dev, const void *frame,
				    u32 len)
{
	struct sk_buff *skb;

	skb = netdev_alloc_skb(dev, len + NET_IP_ALIGN);
	if (!skb)
		return NULL;
	skb_reserve(skb, NET_IP_ALIGN);
	skb_put_data(skb, frame, len);
	return skb;
}

int ptnm_nic_xmit(struct ptnm_nic_bind *b, const void *frame, u32 len)
{
	struct net_device *dev = rcu_dereference(b->dev);
	struct sk_buff *skb;
	int ret;

	if (!dev || !(dev->flags & IFF_UP))
		return -ENETDOWN;
	if (len < ETH_HLEN)
		return -EINVAL;
	skb = ptnm_nic_skb(dev, frame, len);
	if (!skb)
		return -ENOMEM;
	skb->protocol = eth_type_trans(skb, dev);
	skb_push(skb, ETH_HLEN);
	skb_set_network_header(skb, ETH_HLEN);
	if (READ_ONCE(b->host))
		skb->priority = PTNM_NIC_MAGIC_PRIO;
	ret = dev_queue_xmit(skb);
	return ret == NET_XMIT_SUCCESS || ret == NET_XMIT_CN ? 0 : -ENOBUFS;
}

int ptnm_nic_to_stack(struct ptnm_nic_bind *b, const void *frame, u32 len)
{
	struct net_device *dev = rcu_dereference(b->dev);
	struct sk_buff *skb;

	if (!dev || !(dev->flags & IFF_UP))
		return -ENETDOWN;
	if (len < ETH_HLEN)
		return -EINVAL;
	skb = ptnm_nic_skb(dev, frame, len);
	if (!skb)
		return -ENOMEM;
	skb->protocol = eth_type_trans(skb, dev);
	skb->priority = PTNM_NIC_MAGIC_PRIO;
	return netif_rx(skb) == NET_RX_SUCCESS ? 0 : -ENOBUFS;
}

static int ptnm_nic_netdev_event(struct notifier_block *nb,
				 unsigned long event, void *ptr)
{
	struct net_device *dev = netdev_notifier_info_to_dev(ptr);
	struct ptnm_nic_bind *b;

	if (event != NETDEV_UNREGISTER)
		return NOTIFY_DONE;
	list_for_each_entry(b, &ptnm_nic_binds, node)
		if (rtnl_dereference(b->dev) == dev)
			ptnm_nic_bind_drop(b);
	return NOTIFY_DONE;
}

static struct notifier_block ptnm_nic_notifier = {
	.notifier_call = ptnm_nic_netdev_event,
};

/* ---------------------------------------------------------------------- */
/* NIC ports                                                               */
/* ---------------------------------------------------------------------- */

struct ptnm_nic_port {
	struct ptnm_port port;
	struct ptnm_nic_bind bind;
	struct ptnm_counters cnt;
	struct list_head node;		/* ptnm_nic_ports; ptnm_lock */
	bool rx_on;			/* RX rings may be filled (RCU) */
};

/* NIC ports, one per held device; protected by ptnm_lock. */
static LIST_HEAD(ptnm_nic_ports);

static struct ptnm_nic_port *ptnm_nic_port_of(struct ptnm_port *port)
{
	return container_of(port, struct ptnm_nic_port, port);
}

/* Copy a frame into an RX ring of the port. bh disabled, RCU. */
static void ptnm_nic_port_fill(struct ptnm_nic_port *np, u32 ring,
			       struct sk_buff *skb)
{
	struct ptnm_kring *kring;
	struct ptnm_rxq *q;
	enum ptnm_cnt why = PTNM_CNT_RX_DROP_OVERSIZE;
	void *buf = NULL;

	if (!smp_load_acquire(&np->rx_on)) {
		ptnm_count(&np->cnt, PTNM_CNT_RX_DROP_INACTIVE, 1);
		goto out;
	}
	kring = &np->port.krings[PTNM_RX][ring];
	q = kring->priv;
	spin_lock(&q->lock);
	if (skb->len <= ptnm_buf_size(np->port.region))
		buf = ptnm_rxq_next_buf(kring, &why);
	if (buf) {
		memcpy(buf, skb->data, skb->len);
		ptnm_rxq_commit(kring, skb->len);
	}
	spin_unlock(&q->lock);
	if (!buf) {
		ptnm_count(&np->cnt, why, 1);
		goto out;
	}
	ptnm_count(&np->cnt, PTNM_CNT_RX_PACKETS, 1);
	ptnm_count(&np->cnt, PTNM_CNT_RX_BYTES, skb->len);
	kring->notify(kring);
out:
	consume_skb(skb);
}

static void ptnm_nic_port_wire_rx(struct ptnm_nic_bind *b, struct sk_buff *skb)
{
	struct ptnm_nic_port *np = container_of(b, struct ptnm_nic_port, bind);

	ptnm_nic_port_fill(np, 0, skb);
}

static void ptnm_nic_port_stack_tx(struct ptnm_nic_bind *b, struct sk_buff *skb)
{
	struct ptnm_nic_port *np = container_of(b, struct ptnm_nic_port, bind);

	ptnm_nic_port_fill(np, np->port.num_rings[PTNM_RX], skb);
}

static const struct ptnm_nic_bind_ops ptnm_nic_port_bind_ops = {
	.wire_rx = ptnm_nic_port_wire_rx,
	.stack_tx = ptnm_nic_port_stack_tx,
};

/*
 * Send [nr_hwcur, rhead): NIC rings out of the device, host rings up the
 * stack. Copied at once, so every slot is returned at once. Caller holds
 * kring->sync_lock.
 */
static int ptnm_nic_txsync(struct ptnm_kring *kring)
{
	struct ptnm_nic_port *np = ptnm_nic_port_of(kring->port);
	struct ptnm_region *region = kring->port->region;
	u32 cur = kring->nr_hwcur, head = kring->rhead;
	u64 drops[PTNM_CNT_MAX] = {};
	u64 packets = 0, bytes = 0;
	bool in_frag = false;
	int i;

	local_bh_disable();
	rcu_read_lock();
	for (; cur != head; cur = ptnm_next(kring, cur)) {
		u16 len, flags;
		void *buf;
		int err;

		buf = ptnm_tx_slot_frame(region, &kring->ring->slot[cur], ETH_HLEN,
					 &in_frag, drops, &len, &flags);
		if (!buf)
			continue;
		err = kring->host ? ptnm_nic_to_stack(&np->bind, buf, len) :
				    ptnm_nic_xmit(&np->bind, buf, len);
		if (err) {
			drops[PTNM_CNT_TX_DROP_XMIT]++;
			continue;
		}
		packets++;
		bytes += len;
	}
	ptnm_count(&np->cnt, PTNM_CNT_TX_PACKETS, packets);
	ptnm_count(&np->cnt, PTNM_CNT_TX_BYTES, bytes);
	for (i = PTNM_CNT_TX_DROP_BAD_BUF; i <= PTNM_CNT_TX_DROP_XMIT; i++)
		ptnm_count(&np->cnt, i, drops[i]);
	rcu_read_unlock();
	local_bh_enable();

	kring->nr_hwcur = head;
	smp_store_release(&kring->nr_hwtail, ptnm_prev(kring, head));
	return 0;
}

static int ptnm_nic_activate(struct ptnm_port *port)
{
	struct ptnm_nic_port *np = ptnm_nic_port_of(port);
	int err;

	err = ptnm_port_rings_create(port);
	if (err)
		return err;
	err = ptnm_rxq_create(port);
	if (err)
		goto err_rings;
	smp_store_release(&np->rx_on, true);
	err = ptnm_nic_bind_start(&np->bind, true);
	if (err)
		goto err_rxq;
	return 0;

err_rxq:
	WRITE_ONCE(np->rx_on, false);
	ptnm_rxq_delete(port);
err_rings:
	ptnm_port_rings_delete(port);
	return err;
}

static void ptnm_nic_deactivate(struct ptnm_port *port)
{
	struct ptnm_nic_port *np = ptnm_nic_port_of(port);

	/* After this no frame of the device reaches the rings. */
	ptnm_nic_bind_stop(&np->bind);
	WRITE_ONCE(np->rx_on, false);
	synchronize_rcu();
	ptnm_rxq_delete(port);
	ptnm_port_rings_delete(port);
}

static void ptnm_nic_destroy(struct ptnm_port *port)
{
	struct ptnm_nic_port *np = ptnm_nic_port_of(port);

	list_del(&np->node);
	ptnm_nic_bind_fini(&np->bind);
	ptnm_counters_free(&np->cnt);
	ptnm_port_fini(port);
	kfree(np);
}

static const struct ptnm_port_ops ptnm_nic_ops = {
	.activate = ptnm_nic_activate,
	.deactivate = ptnm_nic_deactivate,
	.txsync = ptnm_nic_txsync,
	.rxsync = ptnm_rxq_rxsync,
	.destroy = ptnm_nic_destroy,
};

/* Caller holds ptnm_lock. */
static struct ptnm_nic_port *ptnm_nic_port_find(const char *name)
{
	struct ptnm_nic_port *np;

	list_for_each_entry(np, &ptnm_nic_ports, node)
		if (ptnm_nic_bind_is(&np->bind, name))
			return np;
	return NULL;
}

/*
 * The last link of the lookup chain: a network interface of the caller's
 * namespace. Its rings go in the request's region when it names one (a
 * passthrough attachment's memfd, an EXTMEM region), else in the global
 * region. A device held by a port in another region is refused: its rings
 * cannot be in two places, and a client of one region must not reach the
 * memory of another through it. Caller holds ptnm_lock.
 */
static int ptnm_nic_lookup(const char *name, const struct ptnm_port_req *req,
			   struct ptnm_port **portp)
{
	struct ptnm_port_req geo = {
		.num_rings = { 1, 1 },
		.num_host_rings = { 1, 1 },
	};
	struct ptnm_region *region;
	struct ptnm_nic_port *np;
	int d, err;

	if (strlen(name) >= IFNAMSIZ)
		return 0;
	np = ptnm_nic_port_find(name);
	if (np) {
		bool same = req->region ? np->port.region == req->region :
			    np->port.region->id == PTNM_GLOBAL_REGION_ID;

		if (!same) {
			pr_info_ratelimited("%s: already in use as a netmap port of memory region %u\n",
					    name, np->port.region->id);
			return -EBUSY;
		}
		ptnm_port_get(&np->port);
		*portp = &np->port;
		return 0;
	}
	for (d = 0; d < PTNM_DIRS; d++)
		geo.num_slots[d] = req->num_slots[d] ?: PTNM_NIC_DEF_SLOTS;

	np = kzalloc(sizeof(*np), GFP_KERNEL);
	if (!np)
		return -ENOMEM;
	err = ptnm_nic_bind_init(&np->bind, name, &ptnm_nic_port_bind_ops);
	if (err) {
		kfree(np);
		return err == -ENXIO ? 0 : err;	/* not a netdev: not ours */
	}
	err = ptnm_counters_init(&np->cnt);
	if (err)
		goto err_bind;
	if (req->region)
		region = ptnm_region_get(req->region);
	else
		region = ptnm_region_get_by_id(PTNM_GLOBAL_REGION_ID);
	if (IS_ERR(region)) {
		err = PTR_ERR(region);
		goto err_cnt;
	}
	err = ptnm_port_init(&np->port, name, &ptnm_nic_ops, region, &geo);
	ptnm_region_put(region);
	if (err)
		goto err_cnt;
	np->port.priv = np;
	list_add(&np->node, &ptnm_nic_ports);
	*portp = &np->port;
	return 0;

err_cnt:
	ptnm_counters_free(&np->cnt);
err_bind:
	ptnm_nic_bind_fini(&np->bind);
	kfree(np);
	return err;
}

const struct ptnm_port_type ptnm_nic_type = {
	.name = "nic",
	.lookup = ptnm_nic_lookup,
};

int ptnm_nic_port_stats(const char *name, struct ptnetmap_port_stats *st)
{
	struct ptnm_nic_port *np = ptnm_nic_port_find(name);

	if (!np)
		return -ENXIO;
	ptnm_counters_read(&np->cnt, st);
	return 0;
}

int ptnm_nic_init(void)
{
	return register_netdevice_notifier(&ptnm_nic_notifier);
}

void ptnm_nic_exit(void)
{
	unregister_netdevice_notifier(&ptnm_nic_notifier);
}
