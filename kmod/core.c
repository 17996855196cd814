// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap core: the /dev/netmap character device and NIOCCTRL dispatch.
 *
 * Owns the device's file operations and everything a NIOCCTRL request
 * carries before a port sees it: the header (version, reserved bits, name),
 * the body (present exactly when the request type has one, copied in and
 * out), and the option chain (bounded in size, each option copied once,
 * duplicates refused, every status reported back). Then it runs the
 * handlers of the request types this file owns: REGISTER, PORT_INFO_GET,
 * POOLS_INFO_GET. Ports, rings and memory are in port.c, pipe.c, null.c
 * and mem.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "ptnetmap_kern.h"
#include "pt_guest.h"
#include "pt_host.h"
#include "vale.h"

/* Every option takes at least its header, so a chain within the size limit
 * has at most this many links; a loop is caught by the size limit. */
#define PTNM_MAX_OPTIONS	(NETMAP_REQ_MAXSIZE / sizeof(struct nmreq_option))

/* One option of the chain, copied in. */
struct ptnm_opt {
	u64 uaddr;			/* where it is in userspace */
	struct nmreq_option hdr;	/* status is ours to set */
	void *body;			/* payload after the header, or NULL */
	size_t body_size;
};

/* A NIOCCTRL request as the handlers see it: all of it in kernel memory. */
struct ptnm_req {
	struct nmreq_header hdr;
	union {
		struct nmreq_register reg;
		struct nmreq_port_info_get port_info;
		struct nmreq_pools_info pools_info;
		u8 raw[64];
		struct ptnetmap_port_stats port_stats;
		struct ptnetmap_pt_attach pt_attach;	/* pt_host.c */
		struct ptnetmap_pt_info pt_info;	/* pt_host.c */
		struct ptnetmap_pt_fds pt_fds;		/* pt_host.c */
	} body;
	size_t body_size;
	struct ptnm_opt *opts;
	unsigned int nopts;
	/* The option of each known type, or NULL. */
	struct ptnm_opt *by_type[NETMAP_REQ_OPT_MAX];
};

struct ptnm_req_type {
	size_t body_size;
	/* Option types the handler consumes; others make it EOPNOTSUPP. */
	u32 opts;
	/* Unhandled options fail the request (REGISTER) or are reported only. */
	bool strict_opts;
	/* The header goes back to userspace too (VALE_LIST names a port). */
	bool hdr_out;
	/* Caller holds ptnm_lock, unless unlocked (the handler blocks). */
	int (*handler)(struct ptnm_file *pf, struct ptnm_req *req);
	bool unlocked;
};

static int ptnm_req_register(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_port_info(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_pools_info(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_vale(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_csb(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_kloop_start(struct ptnm_file *pf, struct ptnm_req *req);
static int ptnm_req_kloop_stop(struct ptnm_file *pf, struct ptnm_req *req);

/*
 * Request types, by number. Types without a handler are understood (body
 * checked) but not implemented here yet: VALE, polling, CSB and kloop
 * requests arrive with vale.c and pt_host.c.
 */
static const struct ptnm_req_type ptnm_req_types[] = {
	[NETMAP_REQ_REGISTER] = {
		.body_size = sizeof(struct nmreq_register),
		.opts = BIT(NETMAP_REQ_OPT_EXTMEM) | BIT(NETMAP_REQ_OPT_CSB),
		.strict_opts = true,
		.handler = ptnm_req_register,
	},
	[NETMAP_REQ_PORT_INFO_GET] = {
		.body_size = sizeof(struct nmreq_port_info_get),
		.handler = ptnm_req_port_info,
	},
	[NETMAP_REQ_VALE_ATTACH] = {
		.body_size = sizeof(struct nmreq_vale_attach),
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_VALE_DETACH] = {
		.body_size = sizeof(struct nmreq_vale_detach),
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_VALE_LIST] = {
		.body_size = sizeof(struct nmreq_vale_list),
		.hdr_out = true,
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_PORT_HDR_SET] = {
		.body_size = sizeof(struct nmreq_port_hdr),
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_PORT_HDR_GET] = {
		.body_size = sizeof(struct nmreq_port_hdr),
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_VALE_NEWIF] = {
		.body_size = sizeof(struct nmreq_vale_newif),
		.handler = ptnm_req_vale,
	},
	[NETMAP_REQ_VALE_DELIF] = { .body_size = 0, .handler = ptnm_req_vale },
	[NETMAP_REQ_VALE_POLLING_ENABLE] = {
		.body_size = sizeof(struct nmreq_vale_polling),
	},
	[NETMAP_REQ_VALE_POLLING_DISABLE] = {
		.body_size = sizeof(struct nmreq_vale_polling),
	},
	[NETMAP_REQ_POOLS_INFO_GET] = {
		.body_size = sizeof(struct nmreq_pools_info),
		.handler = ptnm_req_pools_info,
	},
	/* CSB mode: pt_host.c. START blocks until STOP: no ptnm_lock. */
	[NETMAP_REQ_SYNC_KLOOP_START] = {
		.body_size = sizeof(struct nmreq_sync_kloop_start),
		.handler = ptnm_req_kloop_start,
		.unlocked = true,
	},
	[NETMAP_REQ_SYNC_KLOOP_STOP] = {
		.body_size = 0,
		.handler = ptnm_req_kloop_stop,
		.unlocked = true,
	},
	[NETMAP_REQ_CSB_ENABLE] = { .body_size = 0, .handler = ptnm_req_csb },
};

/*
 * ptnetmap's own requests (<net/ptnetmap_ctl.h>), numbered from 0x100. An
 * unknown number in this range is EOPNOTSUPP (a request of a newer module),
 * any other unknown one EINVAL, as in netmap.
 */
#define PTNM_REQ_OURS_FIRST	0x100
#define PTNM_REQ_OURS_LAST	0x1ff
static const struct ptnm_req_type ptnm_req_port_stats_type = {
	.body_size = sizeof(struct ptnetmap_port_stats),
	.handler = ptnm_req_vale,
};

/* Passthrough attachments: pt_host.c. */
static int ptnm_req_pt(struct ptnm_file *pf, struct ptnm_req *req)
{
	return ptnh_request(pf, &req->hdr, &req->body);
}

/* The CSB option of REGISTER, or CSB_ENABLE (which needs it): pt_host.c. */
static int ptnm_req_csb(struct ptnm_file *pf, struct ptnm_req *req)
{
	struct ptnm_opt *opt = req->by_type[NETMAP_REQ_OPT_CSB];
	const u64 *arrays;
	int err;

	if (!opt)
		return req->hdr.nr_reqtype == NETMAP_REQ_CSB_ENABLE ? -EINVAL : 0;
	arrays = opt->body;	/* csb_atok, csb_ktoa */
	err = ptnh_csb_enable(pf, arrays[0], arrays[1]);
	opt->hdr.nro_status = -err;
	return err;
}

/* SYNC_KLOOP_START with its options: pt_host.c; runs until STOP. */
static int ptnm_req_kloop_start(struct ptnm_file *pf, struct ptnm_req *req)
{
	struct ptnm_opt *efds = req->by_type[NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS];
	struct ptnm_opt *mode = req->by_type[NETMAP_REQ_OPT_SYNC_KLOOP_MODE];
	const struct nmreq_sync_kloop_start *start = (const void *)&req->body;

	if (efds)
		efds->hdr.nro_status = 0;
	if (mode)
		mode->hdr.nro_status = 0;
	return ptnh_kloop_start(pf, start->sleep_us, efds ? efds->body : NULL,
				efds ? efds->body_size : 0,
				mode ? mode->body : NULL);
}

static int ptnm_req_kloop_stop(struct ptnm_file *pf, struct ptnm_req *req)
{
	return ptnh_kloop_stop(pf);
}

static const struct ptnm_req_type ptnm_req_pt_types[] = {
	[PTNETMAP_REQ_PT_ATTACH - PTNETMAP_REQ_PT_ATTACH] = {
		.body_size = sizeof(struct ptnetmap_pt_attach),
		.handler = ptnm_req_pt,
	},
	[PTNETMAP_REQ_PT_DETACH - PTNETMAP_REQ_PT_ATTACH] = {
		.body_size = 0,
		.handler = ptnm_req_pt,
	},
	[PTNETMAP_REQ_PT_INFO - PTNETMAP_REQ_PT_ATTACH] = {
		.body_size = sizeof(struct ptnetmap_pt_info),
		.handler = ptnm_req_pt,
	},
	[PTNETMAP_REQ_PT_FDS - PTNETMAP_REQ_PT_ATTACH] = {
		.body_size = sizeof(struct ptnetmap_pt_fds),
		.handler = ptnm_req_pt,
	},
};

static const struct ptnm_req_type *ptnm_req_type_get(u16 reqtype)
{
	if (reqtype == PTNETMAP_REQ_PORT_STATS_GET)
		return &ptnm_req_port_stats_type;
	if (reqtype >= PTNETMAP_REQ_PT_ATTACH &&
	    reqtype < PTNETMAP_REQ_PT_ATTACH + ARRAY_SIZE(ptnm_req_pt_types))
		return &ptnm_req_pt_types[reqtype - PTNETMAP_REQ_PT_ATTACH];
	if (reqtype == 0 || reqtype >= ARRAY_SIZE(ptnm_req_types))
		return NULL;
	return &ptnm_req_types[reqtype];
}

/* VALE requests and port counters: vale.c. */
static int ptnm_req_vale(struct ptnm_file *pf, struct ptnm_req *req)
{
	return ptnm_vale_request(&req->hdr, &req->body);
}

/* ---------------------------------------------------------------------- */
/* Request validation                                                      */
/* ---------------------------------------------------------------------- */

/*
 * Validate the fixed header of a NIOCCTRL request. Everything here comes
 * straight from userspace, so each field is checked before anything else
 * looks at the request.
 */
static int ptnm_check_header(const struct nmreq_header *hdr)
{
	if (hdr->nr_version < NETMAP_MIN_API ||
	    hdr->nr_version > NETMAP_MAX_API) {
		pr_info_ratelimited("request version %u, supported %u..%u\n",
				    hdr->nr_version, NETMAP_MIN_API,
				    NETMAP_MAX_API);
		return -EINVAL;
	}
	if (hdr->nr_reserved) {
		pr_info_ratelimited("request reserved field is not zero\n");
		return -EINVAL;
	}
	if (strnlen(hdr->nr_name, sizeof(hdr->nr_name)) == sizeof(hdr->nr_name)) {
		pr_info_ratelimited("request name is not terminated\n");
		return -EINVAL;
	}
	return 0;
}

/* A port name: not empty, printable, no spaces. */
static int ptnm_check_name(const char *name)
{
	const char *p;

	if (!*name)
		goto bad;
	for (p = name; *p; p++)
		if (!isgraph(*p))
			goto bad;
	return 0;
bad:
	pr_info_ratelimited("bad port name\n");
	return -EINVAL;
}

/* Payload size of a known option type, or -1 if its size is wrong. */
static ssize_t ptnm_opt_body_size(u32 type, u64 size)
{
	size_t fixed;

	switch (type) {
	case NETMAP_REQ_OPT_EXTMEM:
		fixed = sizeof(struct nmreq_opt_extmem);
		break;
	case NETMAP_REQ_OPT_CSB:
		fixed = sizeof(struct nmreq_opt_csb);
		break;
	case NETMAP_REQ_OPT_SYNC_KLOOP_MODE:
		fixed = sizeof(struct nmreq_opt_sync_kloop_mode);
		break;
	case NETMAP_REQ_OPT_OFFSETS:
		fixed = sizeof(struct nmreq_opt_offsets);
		break;
	case NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS:
		/* An array of eventfd pairs; the handler checks the count. */
		if ((size - sizeof(struct nmreq_option)) %
		    sizeof(((struct nmreq_opt_sync_kloop_eventfds *)0)->eventfds[0]))
			return -1;
		return size - sizeof(struct nmreq_option);
	default:
		return 0;	/* unknown: not copied, reported unsupported */
	}
	return size == fixed ? fixed - sizeof(struct nmreq_option) : -1;
}

static void ptnm_req_free(struct ptnm_req *req)
{
	unsigned int i;

	for (i = 0; i < req->nopts; i++)
		kfree(req->opts[i].body);
	kfree(req->opts);
}

/*
 * Copy the option chain. The sizes of body and options together are
 * bounded (EMSGSIZE past NETMAP_REQ_MAXSIZE, which also ends any loop), an
 * option smaller than its header or of the wrong size for its type is
 * EINVAL, and a type seen twice is EINVAL (the duplicates say so in their
 * status). Every option starts as EOPNOTSUPP.
 */
static int ptnm_req_copy_options(struct ptnm_req *req)
{
	u64 uaddr = req->hdr.nr_options;
	size_t total = req->body_size;
	unsigned int i, j;
	int err = 0;

	if (!uaddr)
		return 0;
	req->opts = kcalloc(PTNM_MAX_OPTIONS, sizeof(*req->opts), GFP_KERNEL);
	if (!req->opts)
		return -ENOMEM;

	while (uaddr) {
		struct ptnm_opt *opt;
		ssize_t body_size;

		if (req->nopts == PTNM_MAX_OPTIONS)
			return -EMSGSIZE;
		opt = &req->opts[req->nopts];
		if (copy_from_user(&opt->hdr, u64_to_user_ptr(uaddr),
				   sizeof(opt->hdr)))
			return -EFAULT;
		opt->uaddr = uaddr;
		req->nopts++;
		opt->hdr.nro_status = EOPNOTSUPP;
		if (opt->hdr.nro_size < sizeof(opt->hdr)) {
			pr_info_ratelimited("option %u: size %llu below its header\n",
					    opt->hdr.nro_reqtype, opt->hdr.nro_size);
			opt->hdr.nro_status = EINVAL;
			return -EINVAL;
		}
		if (opt->hdr.nro_size > NETMAP_REQ_MAXSIZE - total) {
			pr_info_ratelimited("request body and options exceed %u bytes\n",
					    NETMAP_REQ_MAXSIZE);
			return -EMSGSIZE;
		}
		total += opt->hdr.nro_size;
		body_size = ptnm_opt_body_size(opt->hdr.nro_reqtype,
					       opt->hdr.nro_size);
		if (body_size < 0) {
			pr_info_ratelimited("option %u: wrong size %llu\n",
					    opt->hdr.nro_reqtype, opt->hdr.nro_size);
			opt->hdr.nro_status = EINVAL;
			return -EINVAL;
		}
		if (body_size) {
			opt->body = memdup_user(u64_to_user_ptr(uaddr + sizeof(opt->hdr)),
						body_size);
			if (IS_ERR(opt->body)) {
				err = PTR_ERR(opt->body);
				opt->body = NULL;
				return err;
			}
			opt->body_size = body_size;
		}
		uaddr = opt->hdr.nro_next;
	}

	for (i = 0; i < req->nopts; i++) {
		u32 type = req->opts[i].hdr.nro_reqtype;

		for (j = i + 1; j < req->nopts; j++) {
			if (req->opts[j].hdr.nro_reqtype == type) {
				req->opts[j].hdr.nro_status = EINVAL;
				err = -EINVAL;
			}
		}
		if (type < NETMAP_REQ_OPT_MAX && !req->by_type[type])
			req->by_type[type] = &req->opts[i];
	}
	if (err)
		pr_info_ratelimited("duplicate options\n");
	return err;
}

/*
 * Tell userspace what became of each option: its status always, its
 * payload when it was handled. Returns err, or -EFAULT if that fails.
 */
static int ptnm_req_copy_out_options(struct ptnm_req *req, int err)
{
	unsigned int i;

	for (i = 0; i < req->nopts; i++) {
		struct ptnm_opt *opt = &req->opts[i];
		u64 status_at = opt->uaddr + offsetof(struct nmreq_option, nro_status);

		if (copy_to_user(u64_to_user_ptr(status_at), &opt->hdr.nro_status,
				 sizeof(opt->hdr.nro_status)))
			return -EFAULT;
		if (!err && !opt->hdr.nro_status && opt->body &&
		    copy_to_user(u64_to_user_ptr(opt->uaddr + sizeof(opt->hdr)),
				 opt->body, opt->body_size))
			return -EFAULT;
	}
	return err;
}

/* ---------------------------------------------------------------------- */
/* Handlers                                                                */
/* ---------------------------------------------------------------------- */

#define PTNM_REG_FLAGS_KNOWN \
	(NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON | NR_EXCLUSIVE | \
	 NR_RX_RINGS_ONLY | NR_TX_RINGS_ONLY | NR_ACCEPT_VNET_HDR | \
	 NR_DO_RX_POLL | NR_NO_TX_POLL)

static int ptnm_check_register(const struct nmreq_register *reg)
{
	switch (reg->nr_mode) {
	case NR_REG_DEFAULT:
	case NR_REG_ALL_NIC:
	case NR_REG_SW:
	case NR_REG_NIC_SW:
	case NR_REG_ONE_NIC:
	case NR_REG_NULL:
	case NR_REG_ONE_SW:
		break;
	default:
		pr_info_ratelimited("register: mode %u refused\n", reg->nr_mode);
		return -EINVAL;
	}
	if (reg->nr_flags & ~(u64)PTNM_REG_FLAGS_KNOWN) {
		pr_info_ratelimited("register: unknown flags %#llx\n",
				    reg->nr_flags & ~(u64)PTNM_REG_FLAGS_KNOWN);
		return -EINVAL;
	}
	if ((reg->nr_flags & NR_RX_RINGS_ONLY) &&
	    (reg->nr_flags & NR_TX_RINGS_ONLY))
		return -EINVAL;
	if (reg->nr_flags & (NR_MONITOR_TX | NR_MONITOR_RX | NR_ZCOPY_MON))
		return -EOPNOTSUPP;	/* no monitor ports */
	return 0;
}

static void ptnm_port_req_from_register(struct ptnm_port_req *preq,
					const struct nmreq_register *reg)
{
	memset(preq, 0, sizeof(*preq));
	preq->num_rings[PTNM_TX] = reg->nr_tx_rings;
	preq->num_rings[PTNM_RX] = reg->nr_rx_rings;
	preq->num_host_rings[PTNM_TX] = reg->nr_host_tx_rings;
	preq->num_host_rings[PTNM_RX] = reg->nr_host_rx_rings;
	preq->num_slots[PTNM_TX] = reg->nr_tx_slots;
	preq->num_slots[PTNM_RX] = reg->nr_rx_slots;
	preq->mem_id = reg->nr_mem_id;
	preq->mode = reg->nr_mode;
}

/* The payload of an EXTMEM option: struct nmreq_opt_extmem after its header. */
struct ptnm_extmem_body {
	u64 usrptr;
	struct nmreq_pools_info info;
};
static_assert(sizeof(struct ptnm_extmem_body) ==
	      sizeof(struct nmreq_opt_extmem) - sizeof(struct nmreq_option));

/* The EXTMEM option: a region over the application's own memory. */
static struct ptnm_region *ptnm_req_extmem(struct ptnm_req *req)
{
	struct ptnm_opt *opt = req->by_type[NETMAP_REQ_OPT_EXTMEM];
	struct ptnm_extmem_body *e;
	struct ptnm_region *region;

	if (!opt)
		return NULL;
	e = opt->body;
	region = ptnm_region_new_extmem(e->usrptr, &e->info);
	if (IS_ERR(region)) {
		pr_info_ratelimited("extmem: %ld\n", PTR_ERR(region));
		opt->hdr.nro_status = -PTR_ERR(region);
	} else {
		opt->hdr.nro_status = 0;
	}
	return region;
}

static int ptnm_req_register(struct ptnm_file *pf, struct ptnm_req *req)
{
	struct nmreq_register *reg = &req->body.reg;
	struct ptnm_region *extmem;
	struct ptnm_port_req preq;
	struct ptnm_port *port;
	int err;

	err = ptnm_check_name(req->hdr.nr_name);
	if (err)
		return err;
	err = ptnm_check_register(reg);
	if (err)
		return err;
	if (pf->port)
		return -EBUSY;

	ptnm_port_req_from_register(&preq, reg);
	extmem = ptnm_req_extmem(req);
	if (IS_ERR(extmem))
		return PTR_ERR(extmem);
	preq.region = extmem;
	if (extmem && reg->nr_mem_id && reg->nr_mem_id != extmem->id) {
		err = -EINVAL;
		goto out;
	}

	err = ptnm_port_lookup(req->hdr.nr_name, &preq, &port);
	if (err)
		goto out;
	/* A port made earlier on another region cannot take the EXTMEM one. */
	if (extmem && port->region != extmem) {
		err = -EINVAL;
		goto out_port;
	}
	if (!extmem && reg->nr_mem_id && reg->nr_mem_id != port->region->id) {
		err = -EINVAL;
		goto out_port;
	}
	reg->nr_extra_bufs = min(reg->nr_extra_bufs,
				 port->region->pools[PTNM_POOL_BUF].objtotal / 2);
	err = ptnm_file_register(pf, port, reg);
	if (!err) {
		/* The file has the port reference now. */
		err = ptnm_req_csb(pf, req);
		if (err)
			ptnm_file_unregister(pf);
		goto out;
	}
out_port:
	ptnm_port_put(port);
out:
	ptnm_region_put(extmem);
	return err;
}

static int ptnm_req_port_info(struct ptnm_file *pf, struct ptnm_req *req)
{
	struct nmreq_port_info_get *info = &req->body.port_info;
	struct ptnm_port_req preq = { .mem_id = info->nr_mem_id };
	struct ptnm_port *port;
	int err;

	err = ptnm_check_name(req->hdr.nr_name);
	if (err)
		return err;
	err = ptnm_port_lookup(req->hdr.nr_name, &preq, &port);
	if (err)
		return err;
	memset(info, 0, sizeof(*info));
	info->nr_memsize = port->region->size;
	info->nr_tx_slots = port->num_slots[PTNM_TX];
	info->nr_rx_slots = port->num_slots[PTNM_RX];
	info->nr_tx_rings = port->num_rings[PTNM_TX];
	info->nr_rx_rings = port->num_rings[PTNM_RX];
	info->nr_host_tx_rings = port->num_host_rings[PTNM_TX];
	info->nr_host_rx_rings = port->num_host_rings[PTNM_RX];
	info->nr_mem_id = port->region->id;
	ptnm_port_put(port);
	return 0;
}

/* The region of the named port, or (empty name) of nr_mem_id (0: global). */
static int ptnm_req_pools_info(struct ptnm_file *pf, struct ptnm_req *req)
{
	struct nmreq_pools_info *info = &req->body.pools_info;
	struct ptnm_region *region;
	struct ptnm_port *port;
	int err;

	if (req->hdr.nr_name[0]) {
		struct ptnm_port_req preq = { .mem_id = info->nr_mem_id };

		err = ptnm_check_name(req->hdr.nr_name);
		if (err)
			return err;
		err = ptnm_port_lookup(req->hdr.nr_name, &preq, &port);
		if (err)
			return err;
		region = ptnm_region_get(port->region);
		ptnm_port_put(port);
	} else {
		region = ptnm_region_get_by_id(info->nr_mem_id ?:
					       PTNM_GLOBAL_REGION_ID);
		if (IS_ERR(region))
			return PTR_ERR(region) == -ENOENT ? -EINVAL :
							    PTR_ERR(region);
	}
	ptnm_region_info(region, info);
	ptnm_region_put(region);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* NIOCCTRL                                                                */
/* ---------------------------------------------------------------------- */

static long ptnm_ctrl(struct ptnm_file *pf, void __user *uarg)
{
	const struct ptnm_req_type *type;
	struct ptnm_req *req;
	unsigned int i;
	int err;

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	err = -EFAULT;
	if (copy_from_user(&req->hdr, uarg, sizeof(req->hdr)))
		goto out;
	err = ptnm_check_header(&req->hdr);
	if (err)
		goto out;

	err = -EINVAL;
	type = ptnm_req_type_get(req->hdr.nr_reqtype);
	if (!type) {
		pr_info_ratelimited("unknown request type %u\n",
				    req->hdr.nr_reqtype);
		/* One of ours from a newer ptnetmap: say so, unlike netmap's. */
		if (req->hdr.nr_reqtype >= PTNM_REQ_OURS_FIRST &&
		    req->hdr.nr_reqtype <= PTNM_REQ_OURS_LAST)
			err = -EOPNOTSUPP;
		goto out;
	}
	req->body_size = type->body_size;
	if (!!req->hdr.nr_body != !!type->body_size) {
		pr_info_ratelimited("request %u: body %s\n", req->hdr.nr_reqtype,
				    type->body_size ? "missing" : "unexpected");
		goto out;
	}
	err = -EFAULT;
	if (type->body_size &&
	    copy_from_user(&req->body, u64_to_user_ptr(req->hdr.nr_body),
			   type->body_size))
		goto out;

	err = ptnm_req_copy_options(req);
	if (err)
		goto out_options;

	if (!type->handler) {
		err = -EOPNOTSUPP;
		goto out_options;
	}
	if (type->strict_opts) {
		for (i = 0; i < req->nopts; i++) {
			u32 t = req->opts[i].hdr.nro_reqtype;

			if (t >= 32 || !(type->opts & BIT(t))) {
				pr_info_ratelimited("request %u: option %u not supported\n",
						    req->hdr.nr_reqtype, t);
				err = -EOPNOTSUPP;
				goto out_options;
			}
		}
	}

	if (type->unlocked) {
		err = type->handler(pf, req);
	} else {
		mutex_lock(&ptnm_lock);
		err = type->handler(pf, req);
		mutex_unlock(&ptnm_lock);
	}

	if (!err && type->body_size &&
	    copy_to_user(u64_to_user_ptr(req->hdr.nr_body), &req->body,
			 type->body_size))
		err = -EFAULT;
	if (!err && type->hdr_out &&
	    copy_to_user(uarg, &req->hdr, sizeof(req->hdr)))
		err = -EFAULT;
out_options:
	err = ptnm_req_copy_out_options(req, err);
out:
	ptnm_req_free(req);
	kfree(req);
	return err;
}

/* ---------------------------------------------------------------------- */
/* File operations                                                         */
/* ---------------------------------------------------------------------- */

static int ptnm_open(struct inode *inode, struct file *file)
{
	struct ptnm_file *pf;

	pf = kzalloc(sizeof(*pf), GFP_KERNEL);
	if (!pf)
		return -ENOMEM;
	file->private_data = pf;
	ptnm_mem_file_init(file);	/* mappings the module can revoke */
	return nonseekable_open(inode, file);
}

static int ptnm_release(struct inode *inode, struct file *file)
{
	struct ptnm_file *pf = file->private_data;

	ptnh_csb_release(pf);	/* CSB mode state (pt_host.c) */
	mutex_lock(&ptnm_lock);
	ptnm_file_unregister(pf);
	mutex_unlock(&ptnm_lock);
	kfree(pf);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* Legacy requests: NIOCREGIF and NIOCGINFO of applications before API 14  */
/* ---------------------------------------------------------------------- */

/* struct nmreq encodes the mode in nr_flags and ring selection in nr_ringid. */
#define PTNM_LEGACY_MIN_API	11
#define PTNM_LEGACY_REG_MASK	0xf
#define PTNM_LEGACY_RING_MASK	0x0fff
#define PTNM_LEGACY_NO_TX_POLL	0x1000
#define PTNM_LEGACY_SW_RING	0x2000
#define PTNM_LEGACY_HW_RING	0x4000
#define PTNM_LEGACY_DO_RX_POLL	0x8000

/* Translate a legacy register request into the API 14 one. */
static void ptnm_legacy_to_register(const struct nmreq *nmr,
				    struct nmreq_register *reg)
{
	u32 mode = nmr->nr_flags & PTNM_LEGACY_REG_MASK;
	u16 ringid = nmr->nr_ringid;

	reg->nr_tx_slots = nmr->nr_tx_slots;
	reg->nr_rx_slots = nmr->nr_rx_slots;
	reg->nr_tx_rings = nmr->nr_tx_rings;
	reg->nr_rx_rings = nmr->nr_rx_rings;
	reg->nr_mem_id = nmr->nr_arg2;
	reg->nr_extra_bufs = nmr->nr_arg3;
	reg->nr_flags = nmr->nr_flags & ~PTNM_LEGACY_REG_MASK;
	if (ringid & PTNM_LEGACY_NO_TX_POLL)
		reg->nr_flags |= NR_NO_TX_POLL;
	if (ringid & PTNM_LEGACY_DO_RX_POLL)
		reg->nr_flags |= NR_DO_RX_POLL;
	if (mode == NR_REG_DEFAULT) {
		/* Before NR_REG_*, the ring id said it all. */
		if (ringid & PTNM_LEGACY_SW_RING)
			mode = NR_REG_SW;
		else if (ringid & PTNM_LEGACY_HW_RING)
			mode = NR_REG_ONE_NIC;
		else
			mode = NR_REG_ALL_NIC;
	}
	reg->nr_mode = mode;
	reg->nr_ringid = ringid & PTNM_LEGACY_RING_MASK;
}

static long ptnm_legacy(struct ptnm_file *pf, unsigned int cmd,
			void __user *uarg)
{
	struct ptnm_req *req;
	struct nmreq nmr;
	int err;

	if (copy_from_user(&nmr, uarg, sizeof(nmr)))
		return -EFAULT;
	if (nmr.nr_version < PTNM_LEGACY_MIN_API ||
	    nmr.nr_version > NETMAP_MAX_API ||
	    strnlen(nmr.nr_name, sizeof(nmr.nr_name)) == sizeof(nmr.nr_name)) {
		pr_info_ratelimited("legacy request: bad version or name\n");
		return -EINVAL;
	}
	if (nmr.nr_cmd)
		return -EOPNOTSUPP;	/* legacy VALE commands */

	req = kzalloc(sizeof(*req), GFP_KERNEL);
	if (!req)
		return -ENOMEM;
	req->hdr.nr_version = NETMAP_API;
	memcpy(req->hdr.nr_name, nmr.nr_name, sizeof(nmr.nr_name));

	mutex_lock(&ptnm_lock);
	if (cmd == NIOCREGIF) {
		struct nmreq_register *reg = &req->body.reg;

		req->hdr.nr_reqtype = NETMAP_REQ_REGISTER;
		ptnm_legacy_to_register(&nmr, reg);
		err = ptnm_req_register(pf, req);
		if (!err) {
			nmr.nr_offset = reg->nr_offset;
			nmr.nr_memsize = reg->nr_memsize;
			nmr.nr_tx_slots = reg->nr_tx_slots;
			nmr.nr_rx_slots = reg->nr_rx_slots;
			nmr.nr_tx_rings = reg->nr_tx_rings;
			nmr.nr_rx_rings = reg->nr_rx_rings;
			nmr.nr_arg2 = reg->nr_mem_id;
			nmr.nr_arg3 = reg->nr_extra_bufs;
		}
	} else if (nmr.nr_name[0]) {
		struct nmreq_port_info_get *info = &req->body.port_info;

		req->hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
		info->nr_mem_id = nmr.nr_arg2;
		err = ptnm_req_port_info(pf, req);
		if (!err) {
			nmr.nr_memsize = info->nr_memsize;
			nmr.nr_tx_slots = info->nr_tx_slots;
			nmr.nr_rx_slots = info->nr_rx_slots;
			nmr.nr_tx_rings = info->nr_tx_rings;
			nmr.nr_rx_rings = info->nr_rx_rings;
			nmr.nr_arg2 = info->nr_mem_id;
		}
	} else {
		/* No name: the memory region nr_arg2 (0: the global one). */
		struct nmreq_pools_info *info = &req->body.pools_info;

		req->hdr.nr_reqtype = NETMAP_REQ_POOLS_INFO_GET;
		info->nr_mem_id = nmr.nr_arg2;
		err = ptnm_req_pools_info(pf, req);
		if (!err) {
			nmr.nr_memsize = info->nr_memsize;
			nmr.nr_arg2 = info->nr_mem_id;
		}
	}
	mutex_unlock(&ptnm_lock);
	kfree(req);
	if (!err && copy_to_user(uarg, &nmr, sizeof(nmr)))
		err = -EFAULT;
	return err;
}

static long ptnm_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct ptnm_file *pf = file->private_data;

	switch (cmd) {
	case NIOCCTRL:
		return ptnm_ctrl(pf, (void __user *)arg);
	case NIOCREGIF:
	case NIOCGINFO:
		return ptnm_legacy(pf, cmd, (void __user *)arg);
	case NIOCTXSYNC:
	case NIOCRXSYNC:
		/* In CSB mode the kloop owns the rings (pt_host.c). */
		if (ptnh_csb_mode(pf))
			return -EBUSY;
		return ptnm_file_sync(pf, cmd == NIOCTXSYNC ? PTNM_TX : PTNM_RX);
	default:
		return -ENOTTY;
	}
}

static int ptnm_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct ptnm_file *pf = file->private_data;
	struct ptnm_port *port = smp_load_acquire(&pf->port);

	if (!port)
		return -ENXIO;
	return ptnm_region_mmap(pf->region, vma);
}

static __poll_t ptnm_poll(struct file *file, poll_table *wait)
{
	if (ptnh_csb_mode(file->private_data))
		return EPOLLERR;	/* CSB mode (pt_host.c) */
	return ptnm_file_poll(file, file->private_data, wait);
}

static const struct file_operations ptnm_fops = {
	.owner = THIS_MODULE,
	.open = ptnm_open,
	.release = ptnm_release,
	.unlocked_ioctl = ptnm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = ptnm_mmap,
	.poll = ptnm_poll,
	.llseek = no_llseek,
};

static struct miscdevice ptnm_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "netmap",
	.fops = &ptnm_fops,
	.mode = 0666,
};

static int __init ptnm_init(void)
{
	int err;

	err = ptnm_mem_init();
	if (err)
		return err;
	err = ptnm_vale_init();
	if (err)
		goto err_mem;
	err = ptnm_nic_init();
	if (err)
		goto err_vale;
	err = ptnh_init();	/* passthrough attachments (pt_host.c) */
	if (err)
		goto err_nic;
	err = misc_register(&ptnm_miscdev);
	if (err) {
		pr_err("cannot register /dev/netmap: %d\n", err);
		goto err_ptnh;
	}
	/* The guest driver (pt_guest.c): binds ptnetmap ivshmem devices. */
	err = ptg_init();
	if (err) {
		pr_err("cannot register the guest driver: %d\n", err);
		goto err_misc;
	}
	pr_info("netmap API %d ready on /dev/netmap\n", NETMAP_API);
	return 0;

err_misc:
	misc_deregister(&ptnm_miscdev);
err_ptnh:
	ptnh_exit();
err_nic:
	ptnm_nic_exit();
err_vale:
	ptnm_vale_exit();
err_mem:
	ptnm_mem_exit();
	return err;
}

static void __exit ptnm_exit(void)
{
	ptg_exit();
	misc_deregister(&ptnm_miscdev);
	ptnh_exit();	/* attachments hold ports: before VALE and NICs go */
	ptnm_vale_exit();
	ptnm_nic_exit();
	ptnm_mem_exit();
}

module_init(ptnm_init);
module_exit(ptnm_exit);

MODULE_DESCRIPTION("ptnetmap: netmap ports for KVM guests over shared memory");
MODULE_LICENSE("GPL");
