// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap null ports: rings in a memory region, and no datapath.
 *
 * A REGISTER in mode NR_REG_NULL creates a fresh port with the rings and
 * slots the request asks for, in the region named by nr_mem_id (which must
 * be given). Syncs validate the rings and move nothing: tail never changes.
 * Applications use them to lay out rings in a region they share with
 * something else; tests use them to exercise ring validation alone.
 * A null port is never found again by name: it lives as long as its
 * registration.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/err.h>
#include <linux/slab.h>

#include "ptnetmap_kern.h"

/* Slot count of a null ring when the request leaves it to us. */
#define PTNM_NULL_DEFAULT_SLOTS	1024

static int ptnm_null_sync(struct ptnm_kring *kring)
{
	return 0;
}

static void ptnm_null_destroy(struct ptnm_port *port)
{
	ptnm_port_fini(port);
	kfree(port);
}

static const struct ptnm_port_ops ptnm_null_ops = {
	.activate = ptnm_port_rings_create,
	.deactivate = ptnm_port_rings_delete,
	.txsync = ptnm_null_sync,
	.rxsync = ptnm_null_sync,
	.destroy = ptnm_null_destroy,
};

/* Caller holds ptnm_lock. */
static int ptnm_null_lookup(const char *name, const struct ptnm_port_req *req,
			    struct ptnm_port **portp)
{
	struct ptnm_port_req geometry = *req;
	struct ptnm_region *region;
	struct ptnm_port *port;
	char pname[NETMAP_REQ_IFNAMSIZ];
	int d, err;

	if (req->mode != NR_REG_NULL)
		return 0;
	if (!req->mem_id && !req->region) {
		pr_info_ratelimited("null port %s: a memory region id is required\n",
				    name);
		return -EINVAL;
	}
	if (req->region) {
		if (req->mem_id && req->mem_id != req->region->id)
			return -EINVAL;
		region = ptnm_region_get(req->region);
	} else {
		region = ptnm_region_get_by_id(req->mem_id);
		if (IS_ERR(region))
			return PTR_ERR(region) == -ENOENT ? -EINVAL :
							    PTR_ERR(region);
	}
	for (d = 0; d < PTNM_DIRS; d++)
		if (!geometry.num_slots[d])
			geometry.num_slots[d] = PTNM_NULL_DEFAULT_SLOTS;
	snprintf(pname, sizeof(pname), "null:%s", name);

	port = kzalloc(sizeof(*port), GFP_KERNEL);
	err = -ENOMEM;
	if (!port)
		goto out;
	err = ptnm_port_init(port, pname, &ptnm_null_ops, region, &geometry);
	if (err) {
		kfree(port);
		goto out;
	}
	*portp = port;
out:
	ptnm_region_put(region);
	return err;
}

const struct ptnm_port_type ptnm_null_type = {
	.name = "null",
	.lookup = ptnm_null_lookup,
};
