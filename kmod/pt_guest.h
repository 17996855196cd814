/* SPDX-License-Identifier: GPL-2.0 */
/* The guest driver's entry points, called from the module's init and exit. */
#ifndef _PTNETMAP_PT_GUEST_H_
#define _PTNETMAP_PT_GUEST_H_

int ptg_init(void);
void ptg_exit(void);

#endif /* _PTNETMAP_PT_GUEST_H_ */
