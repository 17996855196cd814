/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * libnetmap: open netmap ports from a port specification ("portspec"), the
 * nmport_* API netmap applications link against. Same names, fields and
 * meaning as the netmap library, so applications build unchanged.
 *
 * A portspec is
 *
 *	[netmap:]NAME[{ID|}ID][MODE][/FLAGS][@MEMID][@OPTION...]
 *
 * NAME     a network interface (eth0), or a VALE port valeX:port (the switch
 *          id X may be empty). {ID and }ID select the master and slave end
 *          of a netmap pipe of NAME (created on demand).
 * MODE     -N one NIC ring pair, ^ all host rings, ^N one host ring pair,
 *          * NIC and host rings. Default: all NIC rings.
 * FLAGS    x exclusive, z zero-copy monitor, t tx monitor, r rx monitor,
 *          R rx rings only, T tx rings only.
 * MEMID    open the port in memory region MEMID.
 * OPTION   @name=value (the option's default key) or @name:key=value,...
 *          share=PORT            use the memory region of PORT
 *          conf:rings=,tx-rings=,rx-rings=,host-rings=,host-tx-rings=,
 *               host-rx-rings=,slots=,tx-slots=,rx-slots=
 *                                ring geometry of ports created by this open
 *          extmem:file=,if-num=,if-size=,ring-num=,ring-size=,buf-num=,
 *                 buf-size=      map FILE and let the kernel use it
 *          offset:initial=,bits=,max=,min-gap=
 *                                buffer offsets in slot->ptr
 *          Default keys: share, conf:rings, extmem:file, offset:initial.
 *
 * Every function reports failure by returning -1 (or NULL), setting errno
 * (EINVAL for a bad portspec) and passing a message to the error callback of
 * the context (nmctx_set_error()); the default callback prints it on stderr.
 *
 * Thread safety: descriptors are not shared between threads by the library;
 * the context's list of mapped memory regions is protected by a lock.
 */
#ifndef LIBNETMAP_H_
#define LIBNETMAP_H_

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>
#include <net/netmap_user.h>

#ifdef __cplusplus
extern "C" {
#endif

struct nmctx;
struct nmem_d;
struct nmport_d;

/* Receives every error message of the library (no trailing newline). */
typedef void (*nmctx_error_cb)(struct nmctx *ctx, const char *msg);

/* The library context: error reporting and the memory regions mapped so far. */
struct nmctx {
	int verbose;			/* non-zero: also log successful steps */
	nmctx_error_cb error;		/* see nmctx_set_error() */
	struct nmem_d *mem_descs;	/* mapped regions (internal, locked) */
};

/* One mapped memory region, shared by every port of this process that uses it. */
struct nmem_d {
	uint16_t mem_id;		/* the kernel's region id */
	int refcount;			/* ports using this mapping */
	void *mem;			/* base of the mapping */
	size_t size;			/* its length in bytes */
	int is_extmem;			/* memory supplied by the application */

	struct nmem_d *next;		/* internal */
	struct nmem_d *prev;
};

struct nmport_priv;

/* An open (or prepared) port. */
struct nmport_d {
	struct nmreq_header hdr;	/* the REGISTER request, filled by nmport_parse */
	struct nmreq_register reg;	/* its body; after registration, the result */

	/* Everything below is read-only for the application. */

	/*
	 * The mapping of the port's memory region. Two ports of one process
	 * share a region (zero-copy between them is possible) exactly when
	 * their mem pointers are equal.
	 */
	struct nmem_d *mem;
	struct nmctx *ctx;		/* the context that created the port */
	int register_done;		/* nmport_register() succeeded */
	int mmap_done;			/* nmport_mmap() succeeded */
	struct nmreq_opt_extmem *extmem; /* the EXTMEM option, if any */

	int fd;				/* /dev/netmap, -1 when not registered */
	struct netmap_if *nifp;		/* the port's netmap_if once mapped */
	/* Bound rings, inclusive intervals (empty when first > last). */
	uint16_t first_tx_ring;
	uint16_t last_tx_ring;
	uint16_t first_rx_ring;
	uint16_t last_rx_ring;
	uint16_t cur_tx_ring;		/* next ring nmport_inject() tries */
	uint16_t cur_rx_ring;

	struct nmport_priv *priv;	/* internal state of the library */
};

/* The default (and only) context, and its settings. */
struct nmctx *nmctx_get(void);
/* Installs `cb` (NULL restores the default) and returns the previous one. */
nmctx_error_cb nmctx_set_error(struct nmctx *ctx, nmctx_error_cb cb);
/* Formats a message and passes it to the context's error callback. */
void nmctx_ferror(struct nmctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * nmport_open = nmport_prepare + nmport_open_desc
 *   nmport_prepare   = nmport_new + nmport_parse
 *   nmport_open_desc = nmport_register + nmport_mmap
 * Each step has an undo; nmport_close undoes whatever was done and frees d.
 */
struct nmport_d *nmport_open(const char *portspec);
void nmport_close(struct nmport_d *d);

struct nmport_d *nmport_new(void);
void nmport_delete(struct nmport_d *d);

/*
 * Fills d->hdr and d->reg from `portspec` (and the options chain; an extmem
 * file is mapped here, @share asks the kernel for the other port's region).
 * On failure d is unchanged.
 */
int nmport_parse(struct nmport_d *d, const char *portspec);
void nmport_undo_parse(struct nmport_d *d);

/* Opens /dev/netmap and sends the REGISTER request in d->hdr. */
int nmport_register(struct nmport_d *d);
void nmport_undo_register(struct nmport_d *d);

/* Maps the region (or reuses this process's mapping of it); sets nifp and the ring intervals. */
int nmport_mmap(struct nmport_d *d);
void nmport_undo_mmap(struct nmport_d *d);

struct nmport_d *nmport_prepare(const char *portspec);
void nmport_undo_prepare(struct nmport_d *d);
int nmport_open_desc(struct nmport_d *d);
void nmport_undo_open_desc(struct nmport_d *d);

/* A prepared (not registered) copy of d: same request, no options. */
struct nmport_d *nmport_clone(struct nmport_d *d);

/* Use `size` bytes at `base` (or the mapped file `fname`) as the port's memory. */
int nmport_extmem(struct nmport_d *d, void *base, size_t size);
int nmport_extmem_from_file(struct nmport_d *d, const char *fname);
/* The pools wanted from (before registering) or given by (after) the kernel. */
struct nmreq_pools_info *nmport_extmem_getinfo(struct nmport_d *d);

/* Ask for buffer offsets in slot->ptr (the OFFSETS option). */
int nmport_offset(struct nmport_d *d, uint64_t initial, uint64_t maxoff,
		  uint64_t bits, uint64_t mingap);

/*
 * Copies one packet into the first TX ring with room, starting at
 * cur_tx_ring, and advances head/cur (the next poll or NIOCTXSYNC sends it).
 * Returns `size`, or 0 when every ring is full or size exceeds a buffer.
 */
int nmport_inject(struct nmport_d *d, const void *buf, size_t size);

/*
 * Slots of the bound TX rings that the kernel has not consumed yet (as of the
 * last sync): 0 means everything handed over has been sent.
 */
uint32_t nmport_pending(struct nmport_d *d);

/* The options chain of a request header. */
void nmreq_push_option(struct nmreq_header *h, struct nmreq_option *opt);
void nmreq_remove_option(struct nmreq_header *h, struct nmreq_option *opt);
struct nmreq_option *nmreq_find_option(struct nmreq_header *h, uint32_t reqtype);

#ifdef __cplusplus
}
#endif

#endif /* LIBNETMAP_H_ */
