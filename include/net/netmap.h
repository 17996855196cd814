/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * The netmap userspace ABI, API version 14, as ptnetmap implements it.
 *
 * This header is shared by the kernel module (kmod/) and by userspace
 * (installed as <net/netmap.h>). Existing netmap applications compile against
 * it unchanged, so every name, value and layout below matches the netmap ABI;
 * each layout is pinned by the compile-time checks at the end of the file.
 *
 * Userspace includes <stdint.h> and <net/if.h> before this header, as netmap
 * applications always have.
 */
#ifndef _NET_NETMAP_H_
#define _NET_NETMAP_H_

#ifdef __KERNEL__
#include <linux/types.h>
#include <linux/ioctl.h>
#include <linux/time_types.h>
typedef struct __kernel_old_timeval netmap_timeval_t;
#else
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/types.h>
typedef struct timeval netmap_timeval_t;
#endif

#define NETMAP_API		14	/* the version this header describes */
#define NETMAP_MIN_API		14	/* oldest nr_version the kernel accepts */
#define NETMAP_MAX_API		15	/* newest nr_version the kernel accepts */

/* Alignment of the shared structures; a cache line with room for prefetch. */
#define NM_CACHE_ALIGN		128

/* Longest port name, "netmap:" prefix excluded, terminator included. */
#define NETMAP_REQ_IFNAMSIZ	64

/* Fragments a packet may span with NS_MOREFRAG. */
#define NETMAP_MAX_FRAGS	64

/* ---------------------------------------------------------------------- */
/* Slots, rings and the interface descriptor: the shared memory layout.    */
/* ---------------------------------------------------------------------- */

struct netmap_slot {
	uint32_t buf_idx;	/* buffer index within the region */
	uint16_t len;		/* packet length in bytes */
	uint16_t flags;		/* NS_* below */
	uint64_t ptr;		/* buffer address (indirect buffers, offsets) */
};

#define NS_BUF_CHANGED	0x0001	/* buf_idx was changed by the owner */
#define NS_REPORT	0x0002	/* ask for a notification when sent */
#define NS_FORWARD	0x0004	/* pass to the other side (host <-> NIC) */
#define NS_NO_LEARN	0x0008	/* VALE: do not learn the source address */
#define NS_INDIRECT	0x0010	/* ptr holds the data, not buf_idx */
#define NS_MOREFRAG	0x0020	/* packet continues in the next slot */
#define NS_TXMON	0x0040	/* monitor: packet was transmitted */

/* High byte of flags: a VALE destination port chosen by the sender. */
#define NS_PORT_SHIFT	8
#define NS_PORT_MASK	(0xff << NS_PORT_SHIFT)
#define NS_RFRAGS(slot)	(((slot)->flags >> 8) & 0xff)

struct netmap_ring {
	/* Constant after the ring is set up. */
	int64_t buf_ofs;	/* buffers start at (char *)ring + buf_ofs */
	uint32_t num_slots;
	uint32_t nr_buf_size;
	uint16_t ringid;
	uint16_t dir;		/* NR_TX or NR_RX */

	uint32_t head;		/* first slot owned by the application */
	uint32_t cur;		/* wake-up point: tail passing cur wakes poll */
	uint32_t tail;		/* first slot owned by the kernel */

	uint32_t flags;		/* NR_TIMESTAMP, NR_FORWARD */

	netmap_timeval_t ts;	/* time of the last rxsync */

	/* Constant: offsets in slot->ptr (the OFFSETS option). */
	uint64_t offset_mask;
	uint64_t buf_align;

	/* Opaque room for the kernel's synchronisation, on its own line. */
	uint8_t __attribute__((__aligned__(NM_CACHE_ALIGN))) sem[128];

	struct netmap_slot slot[0] __attribute__((__aligned__(NM_CACHE_ALIGN)));
};

/* netmap_ring.dir */
#define NR_TX	0
#define NR_RX	1

/* netmap_ring.flags */
#define NR_TIMESTAMP	0x0002	/* fill ts on every rxsync */
#define NR_FORWARD	0x0004	/* honour NS_FORWARD on this ring */

struct netmap_if {
	char ni_name[16];	/* the port's name */
	uint32_t ni_version;	/* API version of the kernel that built it */
	uint32_t ni_flags;	/* NI_* below */

	uint32_t ni_tx_rings;	/* NIC TX rings */
	uint32_t ni_rx_rings;	/* NIC RX rings */

	uint32_t ni_bufs_head;	/* extra buffers, linked by their first u32 */
	uint32_t ni_host_tx_rings;
	uint32_t ni_host_rx_rings;
	uint32_t ni_spare1[3];

	/*
	 * Offsets of the rings from this structure, in the order: NIC TX,
	 * host TX, NIC RX, host RX.
	 */
	ssize_t ring_ofs[0];
};

#define NI_PRIV_MEM	0x1	/* the port has a private memory region */

/* ---------------------------------------------------------------------- */
/* NIOCCTRL: the request header, request types and their bodies.           */
/* ---------------------------------------------------------------------- */

struct nmreq_header {
	uint16_t nr_version;	/* NETMAP_API */
	uint16_t nr_reqtype;	/* NETMAP_REQ_* */
	uint32_t nr_reserved;	/* must be zero */
	char nr_name[NETMAP_REQ_IFNAMSIZ]; /* port name */
	uint64_t nr_options;	/* user pointer to the first struct nmreq_option */
	uint64_t nr_body;	/* user pointer to the request body */
};

enum {
	NETMAP_REQ_REGISTER = 1,
	NETMAP_REQ_PORT_INFO_GET,
	NETMAP_REQ_VALE_ATTACH,
	NETMAP_REQ_VALE_DETACH,
	NETMAP_REQ_VALE_LIST,
	NETMAP_REQ_PORT_HDR_SET,
	NETMAP_REQ_PORT_HDR_GET,
	NETMAP_REQ_VALE_NEWIF,
	NETMAP_REQ_VALE_DELIF,
	NETMAP_REQ_VALE_POLLING_ENABLE,
	NETMAP_REQ_VALE_POLLING_DISABLE,
	NETMAP_REQ_POOLS_INFO_GET,
	NETMAP_REQ_SYNC_KLOOP_START,
	NETMAP_REQ_SYNC_KLOOP_STOP,
	NETMAP_REQ_CSB_ENABLE,
};

/* Body plus options of one request may not exceed this many bytes. */
#define NETMAP_REQ_MAXSIZE	4096

/* Options: a chain of these, each followed by its payload. */
struct nmreq_option {
	uint64_t nro_next;	/* user pointer to the next option, or 0 */
	uint32_t nro_reqtype;	/* NETMAP_REQ_OPT_* */
	uint32_t nro_status;	/* written by the kernel: 0 or an errno */
	uint64_t nro_size;	/* size of the whole option, header included */
};

enum {
	NETMAP_REQ_OPT_EXTMEM = 1,
	NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS,
	NETMAP_REQ_OPT_CSB,
	NETMAP_REQ_OPT_SYNC_KLOOP_MODE,
	NETMAP_REQ_OPT_OFFSETS,
	NETMAP_REQ_OPT_MAX,
};

struct nmreq_register {
	uint64_t nr_offset;	/* out: netmap_if offset within the mapping */
	uint64_t nr_memsize;	/* out: size of the mapping */
	uint32_t nr_tx_slots;	/* in/out */
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;	/* in/out: memory region id */
	uint16_t nr_ringid;	/* ring index for the ONE_* modes */
	uint32_t nr_mode;	/* NR_REG_* */
	uint32_t nr_extra_bufs;	/* in: wanted, out: obtained */
	uint64_t nr_flags;	/* NR_* flags below */
};

/* nr_flags */
#define NR_MONITOR_TX		0x100
#define NR_MONITOR_RX		0x200
#define NR_ZCOPY_MON		0x400
#define NR_EXCLUSIVE		0x800
#define NR_RX_RINGS_ONLY	0x2000
#define NR_TX_RINGS_ONLY	0x4000
#define NR_ACCEPT_VNET_HDR	0x8000
#define NR_DO_RX_POLL		0x10000
#define NR_NO_TX_POLL		0x20000

/* nr_mode */
enum {
	NR_REG_DEFAULT = 0,	/* as ALL_NIC */
	NR_REG_ALL_NIC = 1,
	NR_REG_SW = 2,		/* host stack rings only */
	NR_REG_NIC_SW = 3,	/* NIC and host stack rings */
	NR_REG_ONE_NIC = 4,	/* the NIC ring pair nr_ringid */
	NR_REG_PIPE_MASTER = 5,	/* deprecated, refused */
	NR_REG_PIPE_SLAVE = 6,	/* deprecated, refused */
	NR_REG_NULL = 7,	/* no rings: memory only */
	NR_REG_ONE_SW = 8,	/* the host ring pair nr_ringid */
};

struct nmreq_port_info_get {
	uint64_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_host_tx_rings;
	uint16_t nr_host_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad[3];
};

struct nmreq_vale_attach {
	struct nmreq_register reg;
	uint32_t port_index;	/* out: the port's index in the switch */
	uint32_t pad1;
};

struct nmreq_vale_detach {
	uint32_t port_index;	/* out */
	uint32_t pad1;
};

struct nmreq_vale_list {
	uint16_t nr_bridge_idx;	/* in/out: cursor, and result */
	uint16_t pad1;
	uint32_t nr_port_idx;	/* in/out */
};

struct nmreq_port_hdr {
	uint32_t nr_hdr_len;	/* virtio-net header length: 0, 10 or 12 */
	uint32_t pad1;
};

struct nmreq_vale_newif {
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_mem_id;
	uint16_t pad1;
};

struct nmreq_vale_polling {
	uint32_t nr_mode;	/* NETMAP_POLLING_MODE_* */
	uint32_t nr_first_cpu_id;
	uint32_t nr_num_polling_cpus;
	uint32_t pad1;
};

#define NETMAP_POLLING_MODE_SINGLE_CPU	1
#define NETMAP_POLLING_MODE_MULTI_CPU	2

struct nmreq_pools_info {
	uint64_t nr_memsize;
	uint16_t nr_mem_id;
	uint16_t pad1[3];
	uint64_t nr_if_pool_offset;
	uint32_t nr_if_pool_objtotal;
	uint32_t nr_if_pool_objsize;
	uint64_t nr_ring_pool_offset;
	uint32_t nr_ring_pool_objtotal;
	uint32_t nr_ring_pool_objsize;
	uint64_t nr_buf_pool_offset;
	uint32_t nr_buf_pool_objtotal;
	uint32_t nr_buf_pool_objsize;
};

struct nmreq_sync_kloop_start {
	uint32_t sleep_us;	/* poll period when no eventfds are given */
	uint32_t pad1;
};

/* Memory supplied by the application (NETMAP_REQ_OPT_EXTMEM). */
struct nmreq_opt_extmem {
	struct nmreq_option nro_opt;
	uint64_t nro_usrptr;		/* start of the application's memory */
	struct nmreq_pools_info nro_info; /* the wanted layout; out: the real one */
};

/* One kick/interrupt eventfd pair per bound ring, TX rings first. */
struct nmreq_opt_sync_kloop_eventfds {
	struct nmreq_option nro_opt;
	struct {
		int32_t ioeventfd;	/* kicks: the loop sleeps on these */
		int32_t irqfd;		/* interrupts: the loop signals these */
	} eventfds[0];
};

struct nmreq_opt_sync_kloop_mode {
	struct nmreq_option nro_opt;
	uint32_t mode;			/* NM_OPT_SYNC_KLOOP_* */
};

#define NM_OPT_SYNC_KLOOP_DIRECT_TX	(1 << 0)
#define NM_OPT_SYNC_KLOOP_DIRECT_RX	(1 << 1)

struct nmreq_opt_csb {
	struct nmreq_option nro_opt;
	uint64_t csb_atok;	/* user pointer to struct nm_csb_atok[rings] */
	uint64_t csb_ktoa;	/* user pointer to struct nm_csb_ktoa[rings] */
};

struct nmreq_opt_offsets {
	struct nmreq_option nro_opt;
	uint64_t nro_max_offset;
	uint64_t nro_initial_offset;
	uint32_t nro_offset_bits;
	uint32_t nro_tx_align;
	uint64_t nro_min_gap;
};

/* ---------------------------------------------------------------------- */
/* The CSB: one entry per ring in each direction, TX rings first.          */
/* ---------------------------------------------------------------------- */

/* Written by the application (or guest), read by the kernel. */
struct nm_csb_atok {
	uint32_t head;
	uint32_t cur;
	uint32_t appl_need_kick;	/* the kernel must be kicked to see work */
	uint32_t sync_flags;		/* NAF_* style flags of the sync */
	uint32_t pad[12];
};

/* Written by the kernel, read by the application (or guest). */
struct nm_csb_ktoa {
	uint32_t hwcur;
	uint32_t hwtail;
	uint32_t kern_need_kick;	/* the application must be interrupted */
	uint32_t pad[13];
};

/* ---------------------------------------------------------------------- */
/* ioctls                                                                  */
/* ---------------------------------------------------------------------- */

/* The legacy request of API 11..13, still accepted by NIOCREGIF/NIOCGINFO. */
struct nmreq {
	char nr_name[16];
	uint32_t nr_version;
	uint32_t nr_offset;
	uint32_t nr_memsize;
	uint32_t nr_tx_slots;
	uint32_t nr_rx_slots;
	uint16_t nr_tx_rings;
	uint16_t nr_rx_rings;
	uint16_t nr_ringid;
	uint16_t nr_cmd;
	uint16_t nr_arg1;
	uint16_t nr_arg2;	/* memory region id */
	uint32_t nr_arg3;	/* extra buffers */
	uint32_t nr_flags;
	uint32_t spare2[1];
};

#define NIOCGINFO	_IOWR('i', 145, struct nmreq)
#define NIOCREGIF	_IOWR('i', 146, struct nmreq)
#define NIOCTXSYNC	_IO('i', 148)
#define NIOCRXSYNC	_IO('i', 149)
#define NIOCCTRL	_IOWR('i', 151, struct nmreq_header)

/* ---------------------------------------------------------------------- */
/* Layout checks: these pin the ABI; a failure here breaks every app.      */
/* ---------------------------------------------------------------------- */

#ifdef __cplusplus
#define NETMAP_ABI_ASSERT(cond) static_assert(cond, #cond)
#else
#define NETMAP_ABI_ASSERT(cond) _Static_assert(cond, #cond)
#endif
#define NETMAP_ABI_OFFSET(type, field) __builtin_offsetof(struct type, field)

NETMAP_ABI_ASSERT(sizeof(struct netmap_slot) == 16);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_slot, ptr) == 8);

NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, num_slots) == 8);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, ringid) == 16);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, head) == 20);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, tail) == 28);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, flags) == 32);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, ts) == 40);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, offset_mask) == 56);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, buf_align) == 64);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, sem) == 128);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_ring, slot) == 256);
NETMAP_ABI_ASSERT(sizeof(struct netmap_ring) == 256);

NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_if, ni_version) == 16);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_if, ni_bufs_head) == 32);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_if, ni_host_rx_rings) == 40);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(netmap_if, ring_ofs) == 56);

NETMAP_ABI_ASSERT(sizeof(struct nmreq_header) == 88);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_header, nr_name) == 8);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_header, nr_options) == 72);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_header, nr_body) == 80);

NETMAP_ABI_ASSERT(sizeof(struct nmreq_register) == 56);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_register, nr_mem_id) == 32);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_register, nr_mode) == 36);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_register, nr_extra_bufs) == 40);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_register, nr_flags) == 48);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_port_info_get) == 32);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_vale_attach) == 64);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_vale_detach) == 8);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_vale_list) == 8);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_port_hdr) == 8);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_vale_newif) == 16);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_vale_polling) == 16);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_pools_info) == 64);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_pools_info, nr_if_pool_offset) == 16);
NETMAP_ABI_ASSERT(NETMAP_ABI_OFFSET(nmreq_pools_info, nr_buf_pool_objsize) == 60);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_sync_kloop_start) == 8);

NETMAP_ABI_ASSERT(sizeof(struct nmreq_option) == 24);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_opt_extmem) == 96);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_opt_csb) == 40);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_opt_offsets) == 56);
NETMAP_ABI_ASSERT(sizeof(struct nmreq_opt_sync_kloop_eventfds) == 24);

NETMAP_ABI_ASSERT(sizeof(struct nm_csb_atok) == 64);
NETMAP_ABI_ASSERT(sizeof(struct nm_csb_ktoa) == 64);

NETMAP_ABI_ASSERT(sizeof(struct nmreq) == 60);
NETMAP_ABI_ASSERT(NIOCCTRL == 0xc0586997u);
NETMAP_ABI_ASSERT(NIOCTXSYNC == 0x6994u);
NETMAP_ABI_ASSERT(NIOCRXSYNC == 0x6995u);
NETMAP_ABI_ASSERT(NIOCGINFO == 0xc03c6991u);
NETMAP_ABI_ASSERT(NIOCREGIF == 0xc03c6992u);

#undef NETMAP_ABI_OFFSET

#endif /* _NET_NETMAP_H_ */
