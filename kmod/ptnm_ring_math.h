/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pure hot-path arithmetic of the module, free of kernel dependencies so
 * that the same code also builds in userspace (the microbenchmarks in
 * tests/microbench/ include this file as it is):
 *
 *   ring indexes   next, previous and forward distance on a ring of n slots
 *   sync check     the bounds a sync applies to the head and cur that an
 *                  application or a guest wrote (pt_host.c)
 *   VALE table     the learning table's slot for a MAC, its entry format
 *                  and the lookup decision (vale.c)
 *
 * No locking, no memory access beyond the arguments: callers do the
 * READ_ONCE/WRITE_ONCE of shared values and pass plain numbers in.
 */
#ifndef PTNM_RING_MATH_H
#define PTNM_RING_MATH_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdbool.h>
#include <stdint.h>
#endif

/* The index after i on a ring of n slots. */
static inline uint32_t ptnm_rm_next(uint32_t n, uint32_t i)
{
	return i + 1 == n ? 0 : i + 1;
}

/* The index before i on a ring of n slots. */
static inline uint32_t ptnm_rm_prev(uint32_t n, uint32_t i)
{
	return i == 0 ? n - 1 : i - 1;
}

/* Distance from a to b going forward on a ring of n slots (a, b < n). */
static inline uint32_t ptnm_rm_dist(uint32_t n, uint32_t a, uint32_t b)
{
	return b >= a ? b - a : b + n - a;
}

/*
 * Whether a head and cur written by the other side are acceptable on a
 * ring of n slots whose last accepted head is rhead and whose published
 * tail is rtail: both in range, head moving forward at most to rtail, cur
 * between head and rtail.
 */
static inline bool ptnm_rm_sync_ok(uint32_t n, uint32_t rhead, uint32_t rtail,
				   uint32_t head, uint32_t cur)
{
	return head < n && cur < n &&
	       ptnm_rm_dist(n, rhead, head) <= ptnm_rm_dist(n, rhead, rtail) &&
	       ptnm_rm_dist(n, head, cur) <= ptnm_rm_dist(n, head, rtail);
}

/*
 * VALE learning table: one u64 per slot, the MAC in bits 0-47 and the port
 * index + 1 above (0 there: empty). The slot is the multiplicative hash of
 * the MAC (the same as the kernel's generic hash_64()).
 */
#define PTNM_RM_FDB_MAC		0xffffffffffffull
#define PTNM_RM_GOLDEN_RATIO_64	0x61C8864680B583EBull

/* A MAC as the u64 ether_addr_to_u64() gives (first byte highest). */
static inline uint64_t ptnm_rm_mac(const uint8_t *a)
{
	return (uint64_t)a[0] << 40 | (uint64_t)a[1] << 32 |
	       (uint64_t)a[2] << 24 | (uint64_t)a[3] << 16 |
	       (uint64_t)a[4] << 8 | a[5];
}

static inline uint32_t ptnm_rm_fdb_slot(uint64_t mac, unsigned int bits)
{
	return (uint32_t)((mac * PTNM_RM_GOLDEN_RATIO_64) >> (64 - bits));
}

static inline uint64_t ptnm_rm_fdb_entry(uint64_t mac, uint8_t idx)
{
	return mac | ((uint64_t)idx + 1) << 48;
}

/*
 * Where a frame for mac goes, given the entry of its slot: the port index,
 * `flood` when the table does not know the address, `none` when the
 * address is behind the sending port src_idx itself.
 */
static inline uint8_t ptnm_rm_fdb_dst(uint64_t entry, uint64_t mac,
				      uint8_t src_idx, uint8_t flood,
				      uint8_t none)
{
	if ((entry & PTNM_RM_FDB_MAC) != mac || !(entry >> 48))
		return flood;
	return (entry >> 48) - 1 == src_idx ? none : (uint8_t)((entry >> 48) - 1);
}

#endif /* PTNM_RING_MATH_H */
