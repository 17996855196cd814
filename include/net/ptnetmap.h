/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ptnetmap's own shared-memory layout: what a guest finds in BAR2 of the
 * ivshmem-doorbell device that carries a passthrough port.
 *
 * The specification, with the protocol around these structures, is
 * docs/shm-layout.md; this header is its normative C form. Everything here is
 * little-endian and written by exactly one side: fields marked (H) by the host,
 * (G) by the guest. The host reads every (G) field once, validates it and
 * never trusts it; the guest does the same with (H) fields.
 */
#ifndef _NET_PTNETMAP_H_
#define _NET_PTNETMAP_H_

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#define PTNM_MAGIC		0x4d4e5450u	/* "PTNM" read as a little-endian u32 */
#define PTNM_LAYOUT_MAJOR	1		/* incompatible changes */
#define PTNM_LAYOUT_MINOR	0		/* additions a v1 reader may ignore */

/* Everything is laid out in pages of this size, whatever the guest's. */
#define PTNM_PAGE_SIZE		4096u

/* Peer ids: the host is peer 0; guests are 1..PTNM_MAX_PEERS. */
#define PTNM_HOST_PEER		0
#define PTNM_MAX_PEERS		15

/*
 * Interrupt and doorbell vectors of a port: vector 0 is the control mailbox,
 * vector 1 + i is ring i, TX rings first, then RX rings (the CSB's order).
 * A guest kicks ring i by writing (PTNM_HOST_PEER << 16) | (1 + i) to the
 * doorbell; the host interrupts it on its own vector 1 + i.
 */
#define PTNM_CTRL_VECTOR	0
#define PTNM_RING_VECTOR(i)	(1 + (i))
#define PTNM_PORT_MAX_RINGS		16	/* per direction */
#define PTNM_PORT_MAX_VECTORS	(1 + 2 * PTNM_PORT_MAX_RINGS)

/* Feature bits (ptnm_global.host_features, ptnm_port_desc.guest_features). */
#define PTNM_F_VNET_HDR		(1ull << 0)	/* slots start with a virtio-net header */
#define PTNM_F_SHARED_REGION	(1ull << 1)	/* the region is shared with other peers */

/*
 * Page 0 of BAR2: what the memory holds. (H), constant while a guest uses it.
 */
struct ptnm_global {
	uint32_t magic;			/* PTNM_MAGIC */
	uint16_t layout_major;		/* PTNM_LAYOUT_MAJOR */
	uint16_t layout_minor;		/* PTNM_LAYOUT_MINOR */
	uint64_t bar_size;		/* size of BAR2, a power of two */
	uint64_t host_features;		/* PTNM_F_* the host offers */
	uint32_t num_peers;		/* port descriptors at pages 1..num_peers */
	uint32_t pad0;
	uint64_t region_offset;		/* netmap region: offset in BAR2 */
	uint64_t region_size;		/* netmap region: size */
	uint32_t region_id;		/* host memory region id (informative) */
	uint32_t buf_size;		/* netmap buffer size */
	uint8_t reserved[4040];
};

/* Control mailbox requests (ptnm_port_desc.ctrl.request). */
enum ptnm_ctrl_request {
	PTNM_CTRL_NONE = 0,
	PTNM_CTRL_START = 1,	/* the host starts serving the rings */
	PTNM_CTRL_STOP = 2,	/* the host stops; rings are the guest's to reset */
};

/* Link state (ptnm_port_desc.link). */
#define PTNM_LINK_UP	1

/*
 * The control mailbox. The guest writes request, then (after a write barrier)
 * increments req_seq and rings vector 0. The host handles the request and
 * writes status, then (after a write barrier) resp_seq = req_seq, and
 * interrupts vector 0. One request at a time.
 */
struct ptnm_ctrl {
	uint32_t request;	/* (G) enum ptnm_ctrl_request */
	uint32_t req_seq;	/* (G) incremented for each request */
	int32_t status;		/* (H) 0 or a negative errno */
	uint32_t resp_seq;	/* (H) req_seq of the request answered */
	uint32_t pad[12];
};

/*
 * Pages 1..num_peers: one port descriptor per guest peer; a guest uses the
 * one at page IVPosition (BAR0 offset 8). Offsets are from the start of BAR2.
 */
struct ptnm_port_desc {
	/* Identity and geometry. (H), constant. */
	uint32_t peer_id;		/* == the page number; checks the choice */
	uint32_t mtu;
	uint8_t mac[6];
	uint16_t pad0;
	uint16_t num_tx_rings;
	uint16_t num_rx_rings;
	uint32_t num_tx_slots;
	uint32_t num_rx_slots;
	uint32_t pad1;
	uint64_t nifp_offset;		/* this port's struct netmap_if */
	uint64_t csb_offset;		/* nm_csb_atok[rings] then nm_csb_ktoa[rings] */
	uint64_t port_features;		/* (H) PTNM_F_* in force for this port */
	char name[32];			/* (H) the host port's name, for humans */
	uint8_t pad2[40];

	/* Runtime state, each on its own cache line. */
	struct ptnm_ctrl ctrl;		/* offset 128 */
	uint32_t link;			/* (H) PTNM_LINK_UP or 0; offset 192 */
	uint32_t pad3[15];
	uint64_t guest_features;	/* (G) PTNM_F_* the guest uses; offset 256 */
	uint8_t reserved[3832];
};

#ifdef __cplusplus
#define PTNM_ASSERT(cond) static_assert(cond, #cond)
#else
#define PTNM_ASSERT(cond) _Static_assert(cond, #cond)
#endif
PTNM_ASSERT(sizeof(struct ptnm_global) == PTNM_PAGE_SIZE);
PTNM_ASSERT(__builtin_offsetof(struct ptnm_global, region_offset) == 32);
PTNM_ASSERT(sizeof(struct ptnm_ctrl) == 64);
PTNM_ASSERT(__builtin_offsetof(struct ptnm_port_desc, nifp_offset) == 32);
PTNM_ASSERT(__builtin_offsetof(struct ptnm_port_desc, ctrl) == 128);
PTNM_ASSERT(__builtin_offsetof(struct ptnm_port_desc, link) == 192);
PTNM_ASSERT(__builtin_offsetof(struct ptnm_port_desc, guest_features) == 256);
PTNM_ASSERT(sizeof(struct ptnm_port_desc) == PTNM_PAGE_SIZE);

#endif /* _NET_PTNETMAP_H_ */
