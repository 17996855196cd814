/* SPDX-License-Identifier: BSD-2-Clause */
/* <libnetmap.h> must compile as C, the way netmap applications use it. */
#include <stdint.h>
#include <net/if.h>
#include <libnetmap.h>

int libnetmap_c_api_compiles(void);

static void ignore_error(struct nmctx *ctx, const char *msg)
{
	(void)ctx;
	(void)msg;
}

int libnetmap_c_api_compiles(void)
{
	struct nmctx *ctx = nmctx_get();
	nmctx_error_cb old = nmctx_set_error(ctx, ignore_error);
	struct nmport_d *d = nmport_prepare("netmap:pp{1");
	int ok = d != NULL && d->fd == -1 && d->reg.nr_mode == NR_REG_ALL_NIC &&
		 d->first_tx_ring > d->last_tx_ring;

	nmport_undo_prepare(d);
	nmctx_set_error(ctx, old);
	return ok;
}
