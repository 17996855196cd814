// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap memory regions: the memory that netmap applications map.
 *
 * Owns struct ptnm_region: an array of pages plus a contiguous kernel
 * mapping of them (vmap), divided into three pools (netmap_if objects,
 * netmap_ring objects, packet buffers), the region id table, and mmap of a
 * region into a process. A mapping maps exactly the region's pages (fault
 * handler, PFN map), so the same code serves pages the kernel allocated and
 * pages pinned from a process (the EXTMEM option); nothing outside the
 * region is ever reachable through it. A PHYS region (the guest side of a
 * passthrough port) is a device's memory instead: memremap()ed for the
 * kernel, its PFNs faulted into userspace until the device goes away
 * (ptnm_region_revoke: every mapping of it then gets SIGBUS).
 *
 * Every /dev/netmap file maps through one address_space, that of an inode
 * of our own (ptnm_map_inode, on a pseudo filesystem), so that revoking a
 * region can find and zap every mapping of /dev/netmap in every process,
 * whichever device node it was opened through.
 *
 * Region ids: 1 is the global region (created on first use, freed when
 * nothing uses it); private and EXTMEM regions get ids from 2 up.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitmap.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "ptnetmap_kern.h"

static unsigned int buf_size = 2048;
module_param(buf_size, uint, 0444);
MODULE_PARM_DESC(buf_size, "Packet buffer size in bytes, all regions (64..65536, multiple of 64; default 2048)");

static unsigned int buf_num = 16384;
module_param(buf_num, uint, 0444);
MODULE_PARM_DESC(buf_num, "Packet buffers in the global region (default 16384)");

static unsigned int ring_num = 128;
module_param(ring_num, uint, 0444);
MODULE_PARM_DESC(ring_num, "Rings in the global region (default 128)");

static unsigned int if_num = 64;
module_param(if_num, uint, 0444);
MODULE_PARM_DESC(if_num, "Registrations (netmap_if objects) the global region can hold (default 64)");

static unsigned int priv_buf_num = 16384;
module_param(priv_buf_num, uint, 0444);
MODULE_PARM_DESC(priv_buf_num, "Packet buffers in each private region (pipes; default 16384)");

static unsigned int priv_ring_num = 64;
module_param(priv_ring_num, uint, 0444);
MODULE_PARM_DESC(priv_ring_num, "Rings in each private region (default 64)");

static unsigned int priv_if_num = 32;
module_param(priv_if_num, uint, 0444);
MODULE_PARM_DESC(priv_if_num, "Registrations each private region can hold (default 32)");

static unsigned int max_slots = 2048;
module_param(max_slots, uint, 0444);
MODULE_PARM_DESC(max_slots, "Most slots a ring can have; sets the ring object size (default 2048)");

static unsigned int extmem_max_mb = 1024;
module_param(extmem_max_mb, uint, 0444);
MODULE_PARM_DESC(extmem_max_mb, "Largest EXTMEM region in MiB (default 1024)");

/*
 * Bounds of the tunables: buffers hold at least a minimum Ethernet frame and
 * fit a u16 length; a region stays below 4 GiB so offsets fit everywhere
 * the ABI has 32-bit fields, and the counts stay far from overflow.
 */
#define PTNM_BUF_SIZE_MIN	64
#define PTNM_BUF_SIZE_MAX	65536
#define PTNM_BUF_NUM_MAX	(1U << 20)
#define PTNM_RING_NUM_MAX	1024
#define PTNM_IF_NUM_MAX		1024
#define PTNM_MAX_SLOTS_MAX	16384
#define PTNM_EXTMEM_DEF_IFS	16
#define PTNM_EXTMEM_DEF_RINGS	32

/* The region id table; ids are u16 in the ABI. */
static DEFINE_IDR(ptnm_region_idr);

/* The address_space every /dev/netmap file maps through; see the top. */
static struct vfsmount *ptnm_mnt;
static struct inode *ptnm_map_inode;
static DEFINE_SPINLOCK(ptnm_region_lock);

struct ptnm_layout {
	u32 objtotal[PTNM_POOL_COUNT];
	u32 objsize[PTNM_POOL_COUNT];
};

static u32 ptnm_mem_ring_objsize(void)
{
	return PAGE_ALIGN(sizeof(struct netmap_ring) +
			  (u64)max_slots * sizeof(struct netmap_slot));
}

/*
 * Place the pools one after the other, each starting on a page. Returns the
 * total size in bytes.
 */
static u64 ptnm_mem_place(struct ptnm_region *r, const struct ptnm_layout *l)
{
	u64 off = 0;
	int i;

	for (i = 0; i < PTNM_POOL_COUNT; i++) {
		r->pools[i].offset = off;
		r->pools[i].objtotal = l->objtotal[i];
		r->pools[i].objsize = l->objsize[i];
		off += PAGE_ALIGN((u64)l->objtotal[i] * l->objsize[i]);
	}
	return off;
}

static struct ptnm_region *ptnm_region_alloc(const struct ptnm_layout *l,
					     u32 flags)
{
	struct ptnm_region *r;
	int i;

	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return NULL;
	refcount_set(&r->refs, 1);
	spin_lock_init(&r->lock);
	r->flags = flags;
	r->size = ptnm_mem_place(r, l);
	r->nr_pages = r->size >> PAGE_SHIFT;
	for (i = 0; i < PTNM_POOL_COUNT; i++) {
		r->pools[i].used = bitmap_zalloc(l->objtotal[i], GFP_KERNEL);
		if (!r->pools[i].used)
			goto err;
		r->pools[i].nfree = l->objtotal[i];
	}
	/* Buffers 0 and 1 are reserved: never handed out, never freed. */
	bitmap_set(r->pools[PTNM_POOL_BUF].used, 0, PTNM_RESERVED_BUFS);
	r->pools[PTNM_POOL_BUF].nfree -= PTNM_RESERVED_BUFS;
	r->pages = kvcalloc(r->nr_pages, sizeof(*r->pages), GFP_KERNEL);
	if (!r->pages)
		goto err;
	return r;
err:
	for (i = 0; i < PTNM_POOL_COUNT; i++)
		bitmap_free(r->pools[i].used);
	kfree(r);
	return NULL;
}

/*
 * Pinned pages count against RLIMIT_MEMLOCK through mm->pinned_vm, which
 * needs no lock: a region may be freed from a vma close, where mmap_lock is
 * already held (account_locked_vm() would take it again).
 */
static int ptnm_extmem_charge(struct mm_struct *mm, unsigned long npages)
{
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;

	if (atomic64_add_return(npages, &mm->pinned_vm) > limit &&
	    !capable(CAP_IPC_LOCK)) {
		atomic64_sub(npages, &mm->pinned_vm);
		return -ENOMEM;
	}
	return 0;
}

static void ptnm_extmem_uncharge(struct mm_struct *mm, unsigned long npages)
{
	atomic64_sub(npages, &mm->pinned_vm);
}

static void ptnm_region_free(struct ptnm_region *r)
{
	unsigned long i;

	if (r->flags & PTNM_REGION_PHYS) {
		memunmap(r->vaddr);
	} else if (r->vaddr) {
		vunmap(r->vaddr);
	}
	if (r->flags & PTNM_REGION_EXTMEM) {
		unpin_user_pages_dirty_lock(r->pages, r->nr_pages, true);
		ptnm_extmem_uncharge(r->owner_mm, r->nr_pages);
		mmdrop(r->owner_mm);
	} else if (r->pages) {
		for (i = 0; i < r->nr_pages; i++)
			if (r->pages[i])
				__free_page(r->pages[i]);
	}
	kvfree(r->pages);
	for (i = 0; i < PTNM_POOL_COUNT; i++)
		bitmap_free(r->pools[i].used);
	kfree(r);
}

/* Give r an id in [min, max) and make it findable. */
static int ptnm_region_publish(struct ptnm_region *r, int min, int max)
{
	int id;

	idr_preload(GFP_KERNEL);
	spin_lock(&ptnm_region_lock);
	id = idr_alloc(&ptnm_region_idr, r, min, max, GFP_NOWAIT);
	if (id >= 0)
		r->id = id;
	spin_unlock(&ptnm_region_lock);
	idr_preload_end();
	return id < 0 ? id : 0;
}

static int ptnm_region_map_kernel(struct ptnm_region *r)
{
	r->vaddr = vmap(r->pages, r->nr_pages, VM_MAP, PAGE_KERNEL);
	return r->vaddr ? 0 : -ENOMEM;
}

/* A region of zeroed kernel pages. */
static struct ptnm_region *ptnm_region_new_kernel(const struct ptnm_layout *l,
						  u32 flags, int min_id,
						  int max_id)
{
	struct ptnm_region *r;
	unsigned long i;
	int err = -ENOMEM;

	r = ptnm_region_alloc(l, flags);
	if (!r)
		return ERR_PTR(-ENOMEM);
	for (i = 0; i < r->nr_pages; i++) {
		r->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!r->pages[i])
			goto err;
	}
	err = ptnm_region_map_kernel(r);
	if (err)
		goto err;
	err = ptnm_region_publish(r, min_id, max_id);
	if (err)
		goto err;
	return r;
err:
	ptnm_region_free(r);
	return ERR_PTR(err);
}

struct ptnm_region *ptnm_region_get(struct ptnm_region *region)
{
	refcount_inc(&region->refs);
	return region;
}

void ptnm_region_put(struct ptnm_region *region)
{
	if (!region)
		return;
	/* Unpublish under the lock so lookups never see a dying region. */
	if (!refcount_dec_and_lock(&region->refs, &ptnm_region_lock))
		return;
	idr_remove(&ptnm_region_idr, region->id);
	spin_unlock(&ptnm_region_lock);
	ptnm_region_free(region);
}

/*
 * Caller holds ptnm_lock (it serialises creating the global region; a
 * dying one is already out of the table).
 */
struct ptnm_region *ptnm_region_get_by_id(u16 id)
{
	struct ptnm_layout l = {
		.objtotal = { if_num, ring_num, buf_num },
		.objsize = { PTNM_IF_OBJSIZE, ptnm_mem_ring_objsize(), buf_size },
	};
	struct ptnm_region *r;

	spin_lock(&ptnm_region_lock);
	r = idr_find(&ptnm_region_idr, id);
	if (r)
		refcount_inc(&r->refs);
	spin_unlock(&ptnm_region_lock);
	if (r)
		return r;
	if (id != PTNM_GLOBAL_REGION_ID)
		return ERR_PTR(-ENOENT);
	return ptnm_region_new_kernel(&l, 0, PTNM_GLOBAL_REGION_ID,
				      PTNM_GLOBAL_REGION_ID + 1);
}

struct ptnm_region *ptnm_region_new_private(void)
{
	struct ptnm_layout l = {
		.objtotal = { priv_if_num, priv_ring_num, priv_buf_num },
		.objsize = { PTNM_IF_OBJSIZE, ptnm_mem_ring_objsize(), buf_size },
	};

	return ptnm_region_new_kernel(&l, PTNM_REGION_PRIVATE,
				      PTNM_GLOBAL_REGION_ID + 1, U16_MAX + 1);
}

/*
 * A private region sized by its user (VALE ports: one region per port, so
 * the module-wide private size would cost too much memory per port).
 * Added for vale.c.
 */
struct ptnm_region *ptnm_region_new_private_sized(u32 nifs, u32 nrings,
						  u32 nbufs)
{
	struct ptnm_layout l = {
		.objtotal = { nifs, nrings, nbufs },
		.objsize = { PTNM_IF_OBJSIZE, ptnm_mem_ring_objsize(), buf_size },
	};

	if (!nifs || nifs > PTNM_IF_NUM_MAX || !nrings ||
	    nrings > PTNM_RING_NUM_MAX || nbufs <= PTNM_RESERVED_BUFS ||
	    nbufs > PTNM_BUF_NUM_MAX)
		return ERR_PTR(-EINVAL);
	return ptnm_region_new_kernel(&l, PTNM_REGION_PRIVATE,
				      PTNM_GLOBAL_REGION_ID + 1, U16_MAX + 1);
}

/* An existing EXTMEM region over the same memory of the same process. */
static struct ptnm_region *ptnm_region_find_extmem(unsigned long uaddr)
{
	struct ptnm_region *r;
	int id;

	spin_lock(&ptnm_region_lock);
	idr_for_each_entry(&ptnm_region_idr, r, id) {
		if ((r->flags & PTNM_REGION_EXTMEM) &&
		    r->owner_mm == current->mm && r->owner_uaddr == uaddr) {
			refcount_inc(&r->refs);
			spin_unlock(&ptnm_region_lock);
			return r;
		}
	}
	spin_unlock(&ptnm_region_lock);
	return NULL;
}

/*
 * The layout of an EXTMEM region: what the application asked for, with
 * zeros meaning "choose", checked against what the kernel can use. Every
 * buffer left over after the if and ring pools goes to the buffer pool.
 */
static int ptnm_extmem_layout(const struct nmreq_pools_info *info, u64 size,
			      struct ptnm_layout *l)
{
	u64 used;

	l->objsize[PTNM_POOL_IF] = info->nr_if_pool_objsize ?: PTNM_IF_OBJSIZE;
	l->objsize[PTNM_POOL_RING] = info->nr_ring_pool_objsize ?:
				     ptnm_mem_ring_objsize();
	l->objsize[PTNM_POOL_BUF] = info->nr_buf_pool_objsize ?: buf_size;
	l->objtotal[PTNM_POOL_IF] = info->nr_if_pool_objtotal ?:
				    PTNM_EXTMEM_DEF_IFS;
	l->objtotal[PTNM_POOL_RING] = info->nr_ring_pool_objtotal ?:
				      PTNM_EXTMEM_DEF_RINGS;

	if (l->objsize[PTNM_POOL_IF] < PTNM_IF_OBJSIZE ||
	    l->objsize[PTNM_POOL_IF] > PAGE_SIZE ||
	    l->objsize[PTNM_POOL_IF] % NM_CACHE_ALIGN)
		return -EINVAL;
	if (l->objsize[PTNM_POOL_RING] % PAGE_SIZE ||
	    l->objsize[PTNM_POOL_RING] < sizeof(struct netmap_ring) +
		    PTNM_MIN_SLOTS * sizeof(struct netmap_slot) ||
	    l->objsize[PTNM_POOL_RING] > ptnm_mem_ring_objsize())
		return -EINVAL;
	if (l->objsize[PTNM_POOL_BUF] < PTNM_BUF_SIZE_MIN ||
	    l->objsize[PTNM_POOL_BUF] > PTNM_BUF_SIZE_MAX ||
	    l->objsize[PTNM_POOL_BUF] % 64)
		return -EINVAL;
	if (l->objtotal[PTNM_POOL_IF] > PTNM_IF_NUM_MAX ||
	    l->objtotal[PTNM_POOL_RING] > PTNM_RING_NUM_MAX)
		return -EINVAL;

	used = PAGE_ALIGN((u64)l->objtotal[PTNM_POOL_IF] * l->objsize[PTNM_POOL_IF]) +
	       (u64)l->objtotal[PTNM_POOL_RING] * l->objsize[PTNM_POOL_RING];
	if (used >= size)
		return -EINVAL;
	l->objtotal[PTNM_POOL_BUF] = min_t(u64, (size - used) /
					   l->objsize[PTNM_POOL_BUF],
					   PTNM_BUF_NUM_MAX);
	if (info->nr_buf_pool_objtotal &&
	    info->nr_buf_pool_objtotal < l->objtotal[PTNM_POOL_BUF])
		l->objtotal[PTNM_POOL_BUF] = info->nr_buf_pool_objtotal;
	/* Round the buffer pool down so the pool ends within the memory. */
	while (l->objtotal[PTNM_POOL_BUF] &&
	       used + PAGE_ALIGN((u64)l->objtotal[PTNM_POOL_BUF] *
				 l->objsize[PTNM_POOL_BUF]) > size)
		l->objtotal[PTNM_POOL_BUF]--;
	if (l->objtotal[PTNM_POOL_BUF] <= PTNM_RESERVED_BUFS)
		return -EINVAL;
	return 0;
}

struct ptnm_region *ptnm_region_new_extmem(u64 uaddr,
					   struct nmreq_pools_info *info)
{
	u64 size = info->nr_memsize;
	struct ptnm_layout l;
	struct ptnm_region *r;
	long pinned;
	int err;

	if (!uaddr || !PAGE_ALIGNED(uaddr) || uaddr != (unsigned long)uaddr ||
	    size < PAGE_SIZE || size > (u64)extmem_max_mb << 20)
		return ERR_PTR(-EINVAL);
	size = round_down(size, PAGE_SIZE);
	if (!access_ok(u64_to_user_ptr(uaddr), size))
		return ERR_PTR(-EFAULT);

	r = ptnm_region_find_extmem(uaddr);
	if (r) {
		ptnm_region_info(r, info);
		return r;
	}

	err = ptnm_extmem_layout(info, size, &l);
	if (err)
		return ERR_PTR(err);
	r = ptnm_region_alloc(&l, PTNM_REGION_PRIVATE | PTNM_REGION_EXTMEM);
	if (!r)
		return ERR_PTR(-ENOMEM);
	/* Free as a kernel region until the pages are really pinned. */
	r->flags &= ~PTNM_REGION_EXTMEM;

	err = ptnm_extmem_charge(current->mm, r->nr_pages);
	if (err)
		goto err_free;
	pinned = pin_user_pages_fast(uaddr, r->nr_pages,
				     FOLL_WRITE | FOLL_LONGTERM, r->pages);
	if (pinned != r->nr_pages) {
		if (pinned > 0)
			unpin_user_pages(r->pages, pinned);
		memset(r->pages, 0, r->nr_pages * sizeof(*r->pages));
		err = pinned < 0 ? pinned : -EFAULT;
		goto err_unaccount;
	}
	r->flags |= PTNM_REGION_EXTMEM;
	r->owner_mm = current->mm;
	mmgrab(r->owner_mm);
	r->owner_uaddr = uaddr;

	err = ptnm_region_map_kernel(r);
	if (err)
		goto err_free;
	err = ptnm_region_publish(r, PTNM_GLOBAL_REGION_ID + 1, U16_MAX + 1);
	if (err)
		goto err_free;
	ptnm_region_info(r, info);
	return r;

err_unaccount:
	ptnm_extmem_uncharge(current->mm, r->nr_pages);
err_free:
	ptnm_region_free(r);
	return ERR_PTR(err);
}

/*
 * Nothing is allocated from a PHYS region: its pools have no bitmaps and
 * nothing free, so ptnm_obj_alloc() fails and ptnm_obj_free() ignores them.
 */
struct ptnm_region *ptnm_region_new_phys(phys_addr_t phys, u64 size,
					 u64 buf_offset, u32 buf_size,
					 u32 ring_objsize)
{
	struct ptnm_region *r;
	int err;

	if (!size || !PAGE_ALIGNED(size) || !PAGE_ALIGNED(phys) ||
	    size > U32_MAX || buf_offset >= size || !buf_size ||
	    buf_size > PTNM_BUF_SIZE_MAX)
		return ERR_PTR(-EINVAL);
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return ERR_PTR(-ENOMEM);
	refcount_set(&r->refs, 1);
	spin_lock_init(&r->lock);
	init_rwsem(&r->revoke_rw);
	r->flags = PTNM_REGION_PRIVATE | PTNM_REGION_PHYS;
	r->phys = phys;
	r->size = size;
	r->nr_pages = size >> PAGE_SHIFT;
	r->pools[PTNM_POOL_IF].objsize = PTNM_IF_OBJSIZE;
	r->pools[PTNM_POOL_RING].objsize = ring_objsize;
	r->pools[PTNM_POOL_BUF].offset = buf_offset;
	r->pools[PTNM_POOL_BUF].objsize = buf_size;
	r->pools[PTNM_POOL_BUF].objtotal = div_u64(size - buf_offset, buf_size);
	r->vaddr = memremap(phys, size, MEMREMAP_WB);
	if (!r->vaddr) {
		kfree(r);
		return ERR_PTR(-ENOMEM);
	}
	err = ptnm_region_publish(r, PTNM_GLOBAL_REGION_ID + 1, U16_MAX + 1);
	if (err) {
		ptnm_region_free(r);
		return ERR_PTR(err);
	}
	return r;
}

void ptnm_region_info(const struct ptnm_region *r, struct nmreq_pools_info *info)
{
	memset(info, 0, sizeof(*info));
	info->nr_memsize = r->size;
	info->nr_mem_id = r->id;
	info->nr_if_pool_offset = r->pools[PTNM_POOL_IF].offset;
	info->nr_if_pool_objtotal = r->pools[PTNM_POOL_IF].objtotal;
	info->nr_if_pool_objsize = r->pools[PTNM_POOL_IF].objsize;
	info->nr_ring_pool_offset = r->pools[PTNM_POOL_RING].offset;
	info->nr_ring_pool_objtotal = r->pools[PTNM_POOL_RING].objtotal;
	info->nr_ring_pool_objsize = r->pools[PTNM_POOL_RING].objsize;
	info->nr_buf_pool_offset = r->pools[PTNM_POOL_BUF].offset;
	info->nr_buf_pool_objtotal = r->pools[PTNM_POOL_BUF].objtotal;
	info->nr_buf_pool_objsize = r->pools[PTNM_POOL_BUF].objsize;
}

int ptnm_obj_alloc(struct ptnm_region *region, enum ptnm_pool_id pool)
{
	struct ptnm_pool *p = &region->pools[pool];
	unsigned long idx;
	int ret = -ENOMEM;

	spin_lock(&region->lock);
	if (!p->nfree)
		goto out;
	idx = find_next_zero_bit(p->used, p->objtotal, p->hint);
	if (idx >= p->objtotal)
		idx = find_first_zero_bit(p->used, p->objtotal);
	if (WARN_ON_ONCE(idx >= p->objtotal))
		goto out;
	__set_bit(idx, p->used);
	p->nfree--;
	p->hint = idx + 1;
	ret = idx;
out:
	spin_unlock(&region->lock);
	return ret;
}

void ptnm_obj_free(struct ptnm_region *region, enum ptnm_pool_id pool, u32 idx)
{
	struct ptnm_pool *p = &region->pools[pool];

	if (idx >= p->objtotal || !p->used ||
	    (pool == PTNM_POOL_BUF && idx < PTNM_RESERVED_BUFS))
		return;
	spin_lock(&region->lock);
	/* Userspace may hand back a buffer twice: ignore the second one. */
	if (__test_and_clear_bit(idx, p->used))
		p->nfree++;
	spin_unlock(&region->lock);
}

/* ---------------------------------------------------------------------- */
/* mmap                                                                    */
/* ---------------------------------------------------------------------- */

static void ptnm_vm_open(struct vm_area_struct *vma)
{
	ptnm_region_get(vma->vm_private_data);
}

static void ptnm_vm_close(struct vm_area_struct *vma)
{
	ptnm_region_put(vma->vm_private_data);
}

static vm_fault_t ptnm_vm_fault(struct vm_fault *vmf)
{
	struct ptnm_region *r = vmf->vma->vm_private_data;

	if (vmf->pgoff >= r->nr_pages)
		return VM_FAULT_SIGBUS;
	return vmf_insert_pfn(vmf->vma, vmf->address,
			      page_to_pfn(r->pages[vmf->pgoff]));
}

static const struct vm_operations_struct ptnm_vm_ops = {
	.open = ptnm_vm_open,
	.close = ptnm_vm_close,
	.fault = ptnm_vm_fault,
};

/*
 * The device's page at the fault's offset, with the vma's protection (the
 * write-back type the kernel mapping reserved for it), unless the device has
 * gone away. revoke_rw orders a fault against ptnm_region_revoke(): a PTE
 * inserted before the revocation is zapped by it, none is inserted after.
 */
static vm_fault_t ptnm_vm_phys_fault(struct vm_fault *vmf)
{
	struct ptnm_region *r = vmf->vma->vm_private_data;
	vm_fault_t ret = VM_FAULT_SIGBUS;

	if (vmf->pgoff >= r->nr_pages)
		return VM_FAULT_SIGBUS;
	down_read(&r->revoke_rw);
	if (!r->revoked)
		ret = vmf_insert_pfn(vmf->vma, vmf->address,
				     PHYS_PFN(r->phys) + vmf->pgoff);
	up_read(&r->revoke_rw);
	return ret;
}

static const struct vm_operations_struct ptnm_vm_phys_ops = {
	.open = ptnm_vm_open,
	.close = ptnm_vm_close,
	.fault = ptnm_vm_phys_fault,
};

/*
 * The pages are mapped as raw PFNs: that works for any page (our own, or
 * someone's pinned anonymous or shmem page) and keeps the mapping out of
 * get_user_pages, so nobody can pin the region's pages through it.
 */
int ptnm_region_mmap(struct ptnm_region *r, struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_pgoff >= r->nr_pages || pages > r->nr_pages - vma->vm_pgoff)
		return -EINVAL;
	if (r->flags & PTNM_REGION_PHYS) {
		if (READ_ONCE(r->revoked))
			return -ENXIO;	/* the device is gone */
		/* Device memory: no core dumps, no access_process_vm(). */
		vma->vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
		vma->vm_ops = &ptnm_vm_phys_ops;
		vma->vm_private_data = ptnm_region_get(r);
		return 0;
	}
	vma->vm_flags |= VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
	vma->vm_ops = &ptnm_vm_ops;
	vma->vm_private_data = ptnm_region_get(r);
	return 0;
}

/*
 * The device behind a PHYS region is going away: from now on no process can
 * reach its memory through /dev/netmap. Existing mappings are zapped (their
 * next access faults and gets SIGBUS), new mmaps fail. Every /dev/netmap
 * mapping is zapped, not only this region's (they share one address_space
 * and their offsets are per region): the others fault their pages back in
 * on next use. Sleeps; caller holds no lock the fault path takes.
 */
void ptnm_region_revoke(struct ptnm_region *r)
{
	if (WARN_ON(!(r->flags & PTNM_REGION_PHYS)))
		return;
	down_write(&r->revoke_rw);
	WRITE_ONCE(r->revoked, true);
	up_write(&r->revoke_rw);
	unmap_mapping_range(ptnm_map_inode->i_mapping, 0, 0, 1);
}

/* A new /dev/netmap file maps through our address_space (see the top). */
void ptnm_mem_file_init(struct file *file)
{
	file->f_mapping = ptnm_map_inode->i_mapping;
}

/* ---------------------------------------------------------------------- */

#define PTNM_FS_MAGIC	0x70746e6d	/* "ptnm" */

static int ptnm_fs_init_fs_context(struct fs_context *fc)
{
	return init_pseudo(fc, PTNM_FS_MAGIC) ? 0 : -ENOMEM;
}

/*
 * Never registered: it only holds ptnm_map_inode, mounted by the kernel for
 * the module's lifetime. No .owner: the mount would pin the module for good.
 */
static struct file_system_type ptnm_fs_type = {
	.name = "ptnetmap",
	.init_fs_context = ptnm_fs_init_fs_context,
	.kill_sb = kill_anon_super,
};

static int ptnm_map_inode_init(void)
{
	ptnm_mnt = kern_mount(&ptnm_fs_type);
	if (IS_ERR(ptnm_mnt))
		return PTR_ERR(ptnm_mnt);
	ptnm_map_inode = alloc_anon_inode(ptnm_mnt->mnt_sb);
	if (IS_ERR(ptnm_map_inode)) {
		kern_unmount(ptnm_mnt);
		return PTR_ERR(ptnm_map_inode);
	}
	return 0;
}

int ptnm_mem_init(void)
{
	if (buf_size < PTNM_BUF_SIZE_MIN || buf_size > PTNM_BUF_SIZE_MAX ||
	    buf_size % 64) {
		pr_err("buf_size %u: must be 64..65536, a multiple of 64\n",
		       buf_size);
		return -EINVAL;
	}
	if (max_slots < PTNM_MIN_SLOTS || max_slots > PTNM_MAX_SLOTS_MAX) {
		pr_err("max_slots %u: must be %u..%u\n", max_slots,
		       PTNM_MIN_SLOTS, PTNM_MAX_SLOTS_MAX);
		return -EINVAL;
	}
	if (buf_num <= PTNM_RESERVED_BUFS || buf_num > PTNM_BUF_NUM_MAX ||
	    priv_buf_num <= PTNM_RESERVED_BUFS ||
	    priv_buf_num > PTNM_BUF_NUM_MAX || !ring_num ||
	    ring_num > PTNM_RING_NUM_MAX || !priv_ring_num ||
	    priv_ring_num > PTNM_RING_NUM_MAX || !if_num ||
	    if_num > PTNM_IF_NUM_MAX || !priv_if_num ||
	    priv_if_num > PTNM_IF_NUM_MAX) {
		pr_err("pool sizes out of range\n");
		return -EINVAL;
	}
	return ptnm_map_inode_init();
}

void ptnm_mem_exit(void)
{
	/* Every region is gone: the module cannot unload while files are open. */
	WARN_ON(!idr_is_empty(&ptnm_region_idr));
	idr_destroy(&ptnm_region_idr);
	iput(ptnm_map_inode);
	kern_unmount(ptnm_mnt);
}

/* The largest ring a region of this module can hold. */
u32 ptnm_mem_max_slots(const struct ptnm_region *region)
{
	return (region->pools[PTNM_POOL_RING].objsize -
		sizeof(struct netmap_ring)) / sizeof(struct netmap_slot);
}
