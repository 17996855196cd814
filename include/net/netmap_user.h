/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/*
 * Userspace helpers of the netmap ABI: finding rings and buffers in the
 * mapping, and the ring index arithmetic. Same names and meaning as the netmap
 * helpers applications already use. Port opening lives in <libnetmap.h>.
 */
#ifndef _NET_NETMAP_USER_H_
#define _NET_NETMAP_USER_H_

#include <stdint.h>
#include <net/netmap.h>

#define NETMAP_DEVICE	"/dev/netmap"

#define _NETMAP_OFFSET(type, ptr, offset) \
	((type)(void *)((char *)(ptr) + (offset)))

/* The netmap_if of a registration: base of the mapping plus nr_offset. */
#define NETMAP_IF(base, offset)	_NETMAP_OFFSET(struct netmap_if *, base, offset)

#define NETMAP_TXRING(nifp, index) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, (nifp)->ring_ofs[index])

#define NETMAP_RXRING(nifp, index) \
	_NETMAP_OFFSET(struct netmap_ring *, nifp, \
		       (nifp)->ring_ofs[(index) + (nifp)->ni_tx_rings + \
					(nifp)->ni_host_tx_rings])

/* Address of buffer `index` of a ring's region. */
#define NETMAP_BUF(ring, index) \
	((char *)(ring) + (ring)->buf_ofs + ((size_t)(index) * (ring)->nr_buf_size))

/* Index of the buffer that starts at `buf`. */
#define NETMAP_BUF_IDX(ring, buf) \
	((uint32_t)(((char *)(buf) - ((char *)(ring) + (ring)->buf_ofs)) / \
		    (ring)->nr_buf_size))

static inline uint32_t nm_ring_next(const struct netmap_ring *r, uint32_t i)
{
	return i + 1 == r->num_slots ? 0 : i + 1;
}

/* Slots the application owns: [head, tail). */
static inline uint32_t nm_ring_space(const struct netmap_ring *r)
{
	int64_t ret = (int64_t)r->tail - (int64_t)r->cur;

	if (ret < 0)
		ret += r->num_slots;
	return (uint32_t)ret;
}

static inline int nm_ring_empty(const struct netmap_ring *r)
{
	return r->cur == r->tail;
}

/* Slots still queued for transmission on a TX ring. */
static inline uint32_t nm_tx_pending(const struct netmap_ring *r)
{
	return nm_ring_next(r, r->tail) != r->head;
}

#endif /* _NET_NETMAP_USER_H_ */
