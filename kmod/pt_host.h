/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The host side of passthrough ports (pt_host.c): attachments of netmap
 * ports to an ivshmem memfd, and netmap's CSB mode (csb.c).
 */
#ifndef _PTNETMAP_PT_HOST_H_
#define _PTNETMAP_PT_HOST_H_

#include <net/netmap.h>

struct ptnm_file;

int ptnh_init(void);
/* Destroys every attachment; takes ptnm_lock. */
void ptnh_exit(void);

/* PTNETMAP_REQ_PT_*: body is the request's kernel copy. Caller holds ptnm_lock. */
int ptnh_request(struct ptnm_file *pf, struct nmreq_header *hdr, void *body);

/*
 * netmap's CSB mode on an open file (pt_host.c). The CSB option of
 * REGISTER and CSB_ENABLE: caller holds ptnm_lock. The kloop: called
 * without it (START blocks until STOP). efds_body is the payload of a
 * SYNC_KLOOP_EVENTFDS option (or NULL), mode that of SYNC_KLOOP_MODE.
 */
int ptnh_csb_enable(struct ptnm_file *pf, u64 atok_uaddr, u64 ktoa_uaddr);
int ptnh_kloop_start(struct ptnm_file *pf, u32 sleep_us,
		     const void *efds_body, size_t efds_size, const u32 *mode);
int ptnh_kloop_stop(struct ptnm_file *pf);
/* NIOC*SYNC and poll are refused in CSB mode. Any context but IRQ. */
bool ptnh_csb_mode(struct ptnm_file *pf);
/* The file is being released. */
void ptnh_csb_release(struct ptnm_file *pf);

#endif /* _PTNETMAP_PT_HOST_H_ */
