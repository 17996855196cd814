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
 * Everything the host writes in shared memory is read once and validated:
 * a host that lies about the layout makes probe fail, never the guest crash.
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

struct ptg_dev {
	struct pci_dev *pdev;
	struct net_device *netdev;
	void __iomem *regs;		/* BAR0: IVPosition, Doorbell */
	void *shm;			/* BAR2, mapped write-back */
	resource_size_t shm_size;
	struct ptnm_port *port;		/* our descriptor inside shm */
	u32 peer_id;
	u16 num_tx_rings;
	u16 num_rx_rings;
	unsigned int nvec;

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
	if (READ_ONCE(g->port->link) == PTNM_LINK_UP)
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

static int ptg_open(struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);
	int err;

	err = ptg_ctrl(g, PTNM_CTRL_START);
	if (err)
		return err;
	ptg_update_carrier(g);
	netif_start_queue(netdev);
	return 0;
}

static int ptg_stop(struct net_device *netdev)
{
	struct ptg_dev *g = netdev_priv(netdev);

	netif_stop_queue(netdev);
	netif_carrier_off(netdev);
	/* The interface goes down whatever the host says. */
	ptg_ctrl(g, PTNM_CTRL_STOP);
	return 0;
}

/*
 * The ring datapath arrives with the passthrough host side; until then a
 * frame handed to the interface is dropped and counted, never queued.
 */
static netdev_tx_t ptg_start_xmit(struct sk_buff *skb, struct net_device *netdev)
{
	netdev->stats.tx_dropped++;
	dev_kfree_skb_any(skb);
	return NETDEV_TX_OK;
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

	ptg_setup_netdev(g);
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
