/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * ptnetmap's own NIOCCTRL requests, beside netmap's (<net/netmap.h>).
 *
 * Request numbers start at 0x100 so they can never meet a NETMAP_REQ_* of
 * netmap itself (those are numbered from 1 and will stay far below). A
 * request of ours is sent exactly like netmap's: a struct nmreq_header with
 * nr_version = NETMAP_API, nr_reqtype = PTNETMAP_REQ_*, nr_name and nr_body.
 */
#ifndef _NET_PTNETMAP_CTL_H_
#define _NET_PTNETMAP_CTL_H_

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

/*
 * PTNETMAP_REQ_PORT_STATS_GET (read-only): the counters of one port.
 *
 *   nr_name  "valeX:port" (a VALE port, an attached NIC "valeX:eth0" or its
 *            host stack "valeX:eth0^"), or a network interface "eth0" while
 *            a netmap client holds it.
 *   nr_body  struct ptnetmap_port_stats, filled by the kernel.
 *   errors   ENXIO: no such port; EINVAL: malformed request.
 *
 * "rx" is what the port received (delivered to its receive rings, or for an
 * attached NIC, transmitted through the device); "tx" is what the port sent
 * (into the switch, or out of a NIC). Counters only grow, from the port's
 * creation; a port deleted and created again starts from zero. Every drop
 * is counted exactly once, against the port whose fault or limit it was.
 */
#define PTNETMAP_REQ_PORT_STATS_GET	0x100

struct ptnetmap_port_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	/* Receive drops, by cause. */
	uint64_t rx_drop_ring_full;	/* no free slot: the receiver is slow */
	uint64_t rx_drop_inactive;	/* nobody has the port open, device down */
	uint64_t rx_drop_bad_buf;	/* a receive slot held a bad buffer index */
	uint64_t rx_drop_oversize;	/* longer than the port's buffers */
	/* Transmit drops, by cause. */
	uint64_t tx_drop_bad_buf;	/* buffer index outside the port's region */
	uint64_t tx_drop_bad_len;	/* runt, or length beyond the buffer */
	uint64_t tx_drop_frag;		/* multi-slot packet (NS_MOREFRAG) */
	uint64_t tx_drop_xmit;		/* the device or the stack refused it */
	uint64_t spare[4];		/* zero; room for more causes */
};

#ifdef __cplusplus
#define PTNETMAP_CTL_ASSERT(cond) static_assert(cond, #cond)
#else
#define PTNETMAP_CTL_ASSERT(cond) _Static_assert(cond, #cond)
#endif

PTNETMAP_CTL_ASSERT(sizeof(struct ptnetmap_port_stats) == 128);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_port_stats, rx_drop_ring_full) == 32);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_port_stats, tx_drop_bad_buf) == 64);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_port_stats, spare) == 96);

/* ---------------------------------------------------------------------- */
/* Passthrough attachments (kmod/pt_host.c, docs/passthrough.md)           */
/* ---------------------------------------------------------------------- */

/*
 * A passthrough attachment binds netmap ports to a memfd that QEMU maps as
 * the BAR2 of an ivshmem-doorbell device, laid out as docs/shm-layout.md
 * says (<net/ptnetmap.h>). The kernel writes the global and port pages,
 * places each port's CSB, and builds the ports' netmap region inside the
 * memfd's pages, so the guest uses the very rings and buffers of the host
 * port. A kernel worker serves the rings through the CSB, woken by the kick
 * eventfds (KVM ioeventfds) and by the ports, and interrupts the guest
 * through the irq eventfds (KVM irqfds).
 *
 * An attachment is named (nr_name) and outlives the file that created it:
 * it holds its own references on the ports, the memory and the eventfds
 * until PT_DETACH (or module unload).
 */
#define PTNETMAP_REQ_PT_ATTACH	0x120	/* create; body ptnetmap_pt_attach */
#define PTNETMAP_REQ_PT_DETACH	0x121	/* destroy; no body */
#define PTNETMAP_REQ_PT_INFO	0x122	/* find, list, counters; ptnetmap_pt_info */

/* The memory is shared by several peers (trusted VMs; both ends of a pipe). */
#define PTNETMAP_PT_SHARED	(1u << 0)

#define PTNETMAP_PT_MAX_PEERS	15	/* PTNM_MAX_PEERS */
#define PTNETMAP_PT_MAX_VECTORS	33	/* PTNM_PORT_MAX_VECTORS */

/*
 * One guest peer of an attachment (peer p = array index + 1): the port it
 * drives and its eventfds. Vector 0 is the control mailbox, 1 + i ring i
 * (TX rings first); num_vectors must be 1 + tx_rings + rx_rings of the port.
 */
struct ptnetmap_pt_peer {
	char port[64];		/* "valeX:p", "pipe{id", "pipe}id" */
	uint8_t mac[6];		/* the guest interface's MAC (ptnm_port.mac) */
	uint16_t pad0;
	uint32_t num_vectors;
	int32_t kick_fds[PTNETMAP_PT_MAX_VECTORS];	/* guest -> host */
	int32_t irq_fds[PTNETMAP_PT_MAX_VECTORS];	/* host -> guest */
	uint32_t pad1;
};

/*
 * PTNETMAP_REQ_PT_ATTACH: nr_name is the new attachment's name.
 *
 *   shm_addr   the caller's MAP_SHARED mapping of the whole memfd (the
 *              kernel pins its pages; the mapping may go away afterwards)
 *   memfd      the memfd QEMU gets; its size is a power of two (>= 64 KiB)
 *   peers      user pointer to num_peers struct ptnetmap_pt_peer
 *   flags      PTNETMAP_PT_SHARED: required for more than one peer and for
 *              pipe ends (the region holds both ends' rings)
 *   rings, slots, mtu: geometry of ports the attachment creates (0: 1 ring,
 *              256 slots, 1500); ports must not exist yet, since their rings
 *              must be built inside the memfd.
 *   out: shm_size, region_offset, region_size, mem_id.
 *
 * Errors: EEXIST name in use; EINVAL bad geometry, size, peers, fds, or a
 * port that exists already in another region; EBADF not an eventfd; EBUSY
 * a ring already bound exclusively; ENOMEM the memfd is too small.
 */
struct ptnetmap_pt_attach {
	uint64_t shm_addr;
	uint64_t peers;
	int32_t memfd;
	uint32_t num_peers;
	uint32_t flags;
	uint16_t num_tx_rings;
	uint16_t num_rx_rings;
	uint32_t num_tx_slots;
	uint32_t num_rx_slots;
	uint32_t mtu;
	uint32_t pad0;
	uint64_t shm_size;	/* out */
	uint64_t region_offset;	/* out */
	uint64_t region_size;	/* out */
	uint16_t mem_id;	/* out */
	uint16_t pad1[3];
};

/* ptnetmap_pt_info.state bits */
#define PTNETMAP_PT_STARTED	(1u << 0)	/* the guest sent START */
#define PTNETMAP_PT_BROKEN	(1u << 1)	/* stopped on a guest violation */

/*
 * PTNETMAP_REQ_PT_INFO: an attachment by name (nr_name), or with an empty
 * nr_name the index-th one (ENOENT past the last: that ends a listing).
 * peer 0 gives the totals of all peers; 1..num_peers that peer's counters,
 * port and state. Counters only grow. "tx" is what the guest sent, "rx"
 * what it was given. kicks: kick eventfd wake-ups received; interrupts:
 * irq eventfd signals sent; wakeups: times the worker ran; errors: guest
 * protocol violations (each stops the peer until its next START).
 */
struct ptnetmap_pt_info {
	uint32_t index;		/* in with an empty nr_name; out */
	uint32_t peer;		/* in */
	uint32_t num_peers;	/* out, and everything below */
	uint32_t flags;
	char name[64];
	char port[64];		/* the peer's port ("" for totals) */
	uint32_t state;		/* PTNETMAP_PT_* of the peer (OR of all) */
	int32_t worker_pid;	/* the kernel worker thread */
	uint64_t shm_size;
	uint64_t region_offset;
	uint64_t region_size;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t kicks;
	uint64_t interrupts;
	uint64_t wakeups;
	uint64_t errors;
	uint64_t spare[4];
};

/*
 * PTNETMAP_REQ_PT_FDS: new file descriptors (O_CLOEXEC, installed in the
 * caller) for what an existing attachment holds, so that a restarted
 * management process can serve QEMU again without disturbing traffic.
 *
 *   nr_name  the attachment's name
 *   peer     in: 1..num_peers
 *   out:     memfd, shm_size, the peer's port, mac, num_vectors and
 *            kick_fds/irq_fds [0, num_vectors) (the rest -1)
 *
 * Errors: ENOENT no such attachment; EINVAL peer out of range; EMFILE the
 * caller has no room for the descriptors (none is installed then).
 * Needs CAP_NET_ADMIN, like every request that hands out shared memory.
 */
#define PTNETMAP_REQ_PT_FDS	0x123

struct ptnetmap_pt_fds {
	uint32_t peer;		/* in */
	uint32_t num_vectors;	/* out, and everything below */
	int32_t memfd;
	uint32_t flags;		/* the attachment's PTNETMAP_PT_* flags */
	uint64_t shm_size;
	char port[64];
	uint8_t mac[6];
	uint16_t pad0;
	int32_t kick_fds[PTNETMAP_PT_MAX_VECTORS];
	int32_t irq_fds[PTNETMAP_PT_MAX_VECTORS];
};

PTNETMAP_CTL_ASSERT(sizeof(struct ptnetmap_pt_peer) == 344);
PTNETMAP_CTL_ASSERT(sizeof(struct ptnetmap_pt_attach) == 80);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_pt_attach, shm_size) == 48);
PTNETMAP_CTL_ASSERT(sizeof(struct ptnetmap_pt_info) == 272);
PTNETMAP_CTL_ASSERT(sizeof(struct ptnetmap_pt_fds) == 360);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_pt_fds, kick_fds) == 96);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_pt_info, shm_size) == 152);
PTNETMAP_CTL_ASSERT(__builtin_offsetof(struct ptnetmap_pt_info, kicks) == 208);

#endif /* _NET_PTNETMAP_CTL_H_ */
