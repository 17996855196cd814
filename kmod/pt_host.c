// SPDX-License-Identifier: GPL-2.0
/*
 * ptnetmap passthrough attachments: the host side of docs/shm-layout.md.
 *
 * An attachment binds one netmap port per guest peer (a VALE port, a pipe
 * end, a network interface) to a memfd that QEMU maps as BAR2 of an ivshmem-doorbell device. It
 * owns:
 *
 *   - the memory: the memfd's pages, pinned through the creator's mapping.
 *     The first pages (ptnm_global, one port descriptor per peer, one CSB
 *     page per peer) are mapped here; the rest is the ports' netmap region,
 *     built by mem.c's EXTMEM constructor over the same pages, so the guest
 *     uses the host port's very rings and buffers;
 *   - one registration per peer on its port (exclusive, all NIC rings),
 *     whose netmap_if the guest finds through nifp_offset;
 *   - the eventfds: per vector a kick (a KVM ioeventfd: its wait-queue
 *     callback wakes the worker, as vhost_poll does) and an irq (a KVM
 *     irqfd: eventfd_signal() injects the MSI);
 *   - the worker, one kthread per attachment, woken by kicks and by the
 *     ports (kring->notify) and otherwise asleep: it answers the control
 *     mailbox and moves the rings between the CSB and the port.
 *
 * Attachments are named and live until PT_DETACH or module unload,
 * whatever happens to the process that made them: they hold references on
 * the ports, the region, the pinned pages, the memfd and the eventfds
 * (which PT_FDS hands out again to a management process that restarts).
 *
 * Trust: everything in the memfd is writable by the guest. The kernel keeps
 * its own copy of every offset, size and index; from shared memory it only
 * reads the CSB atok entries, the mailbox and the slots (through the port
 * type's sync), each once, validated before use. A violation stops that
 * peer (counted, link down) until it sends START again; nothing outside the
 * memfd is ever touched and other ports are unaffected.
 *
 * The same ring code serves netmap's own CSB mode (the CSB option,
 * CSB_ENABLE, SYNC_KLOOP_START/STOP): the application's CSB arrays are
 * pinned and mapped, and its kloop is the worker loop run in its thread.
 *
 * Locking:
 *   ptnm_lock            the attachment list, creation and destruction.
 *   the worker           owns the CSB, the mailbox and the peers' run state
 *                        (started, broken, ctrl_seq, kick shadows); it syncs
 *                        a ring under kring->sync_lock as a file would. A
 *                        kloop's direct ring is its work item's instead.
 *   eventfd wqh lock     serialises a vector's kick counter (the callback).
 *   RCU                  ptnh_krings (kring -> our ring) for kring->notify,
 *                        ptnh_csbs (file -> CSB state) for the sync path.
 *   ptnh_krings_lock, ptnh_csb_lock (spinlocks): updates of those tables,
 *                        and a file's kloop state (running, att).
 * Lock order: ptnm_lock > kring->sync_lock > port type locks.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ctype.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/eventfd.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/if_ether.h>
#include <linux/kthread.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>

#include <net/ptnetmap.h>
#include <net/ptnetmap_ctl.h>

#include "ptnetmap_kern.h"
#include "pt_host.h"

/* Geometry of ports an attachment creates, when the request leaves it to us. */
#define PTNH_DEF_SLOTS		256
#define PTNH_DEF_MTU		1500
/* A BAR smaller than this cannot hold the pages and a useful region. */
#define PTNH_MIN_SHM		(64 * 1024)
/* Registrations the region holds besides ours (host apps on a pipe). */
#define PTNH_SPARE_IFS		8
/*
 * Passes over the rings before the worker yields the CPU: bounds the time a
 * busy guest keeps it, like vhost's weight.
 */
#define PTNH_PASS_BUDGET	16
#define PTNH_WORK		0	/* bit in ptnh_att.work */
#define PTNH_MAX_RINGS		(2 * PTNM_PORT_MAX_RINGS)

struct ptnh_att;
struct ptnh_peer;

/* Counters of a peer, written by the worker only. */
struct ptnh_stats {
	u64_stats_t tx_packets, tx_bytes, rx_packets, rx_bytes;
	u64_stats_t interrupts, errors;
	struct u64_stats_sync syncp;
};

/* One vector of a peer: its kick eventfd, watched, and its irq eventfd. */
struct ptnh_vec {
	struct ptnh_att *att;
	struct file *kick;		/* a reference */
	wait_queue_entry_t wait;	/* on the kick's wait queue */
	poll_table pt;
	wait_queue_head_t *wqh;		/* where wait is queued, or NULL */
	struct file *irq_file;		/* a reference, for PT_FDS */
	struct eventfd_ctx *irq;	/* a reference (of irq_file's eventfd) */
	u64_stats_t kicks;		/* writer: the callback, under wqh->lock */
	struct u64_stats_sync syncp;
	struct ptnh_ring *direct;	/* a kloop's direct ring, or NULL */
};

/* One ring of a peer, served through CSB entry `vector - 1`. */
struct ptnh_ring {
	struct ptnh_peer *peer;
	struct ptnm_kring *kring;
	struct nm_csb_atok *atok;	/* guest-written */
	struct nm_csb_ktoa *ktoa;	/* ours */
	unsigned int vector;
	bool kick_on;			/* what we last wrote to kern_need_kick */
	bool hooked;			/* in ptnh_krings, notify is ours */
	/*
	 * The port notified news on this ring: for some port types (VALE)
	 * arrivals only show in nr_hwtail after an rxsync. Set by notify,
	 * cleared by the worker.
	 */
	bool notified;
	struct hlist_node node;		/* in ptnh_krings; RCU */
	/*
	 * A kloop's ring in a direct mode (SYNC_KLOOP_MODE) is served by this
	 * work item, queued by its kicks and notifications, and never by the
	 * loop; the work then owns what the worker owns for other rings.
	 */
	bool direct;
	struct work_struct work;
};

struct ptnh_peer {
	struct ptnh_att *att;
	u32 id;				/* 1..num_peers */
	struct ptnm_file pf;		/* our registration on the port */
	struct ptnm_port *port;		/* pf.port while registered */
	struct ptnm_port_desc *desc;	/* page `id` of the memfd; NULL: kloop */
	u8 mac[ETH_ALEN];		/* as attached (desc is guest-writable) */
	u32 nrings;			/* tx then rx */
	u32 ntx;
	struct ptnh_ring rings[PTNH_MAX_RINGS];
	u32 nvec;
	struct ptnh_vec vecs[PTNM_PORT_MAX_VECTORS];
	/* Run state: the worker's. */
	u32 ctrl_seq;			/* req_seq last answered */
	bool started;
	bool broken;
	struct ptnh_stats stats;
};

struct ptnh_att {
	struct list_head node;		/* in ptnh_atts; ptnm_lock */
	char name[NETMAP_REQ_IFNAMSIZ];
	u32 flags;			/* PTNETMAP_PT_* */
	struct task_struct *worker;
	unsigned long work;		/* PTNH_WORK: a pass is due */
	u64_stats_t wakeups;		/* writer: the worker */
	struct u64_stats_sync syncp;

	/* The memory. */
	struct file *memfd;		/* a reference */
	u64 shm_size;
	u64 region_offset;
	struct page **hdr_pages;	/* pinned [0, region_offset) */
	unsigned long hdr_npages;
	void *hdr;			/* vmap of hdr_pages */
	struct mm_struct *mm;		/* hdr pages are accounted to it */
	struct ptnm_region *region;	/* a reference */

	u32 num_peers;
	struct ptnh_peer *peers[PTNM_MAX_PEERS];

	/* netmap's SYNC_KLOOP: the loop runs in the caller's thread. */
	bool kloop;
	bool busy_wait;			/* no eventfds: poll every sleep_us */
	u32 sleep_us;
	bool stop;			/* set by SYNC_KLOOP_STOP */
};

static LIST_HEAD(ptnh_atts);

/* Our krings, for kring->notify, which only gets the kring. */
static DEFINE_HASHTABLE(ptnh_krings, 8);
static DEFINE_SPINLOCK(ptnh_krings_lock);	/* writers of ptnh_krings */

/* ---------------------------------------------------------------------- */
/* Wake-ups and interrupts                                                 */
/* ---------------------------------------------------------------------- */

/* Any context. */
static void ptnh_wake(struct ptnh_att *att)
{
	if (!test_and_set_bit(PTNH_WORK, &att->work))
		wake_up_process(att->worker);
}

/* kring->notify of our rings: the port has news (packets, room). */
static void ptnh_kring_notify(struct ptnm_kring *kring)
{
	struct ptnh_ring *r;

	rcu_read_lock();
	hash_for_each_possible_rcu(ptnh_krings, r, node, (unsigned long)kring) {
		if (r->kring == kring) {
			WRITE_ONCE(r->notified, true);
			if (r->direct)
				queue_work(system_highpri_wq, &r->work);
			else
				ptnh_wake(r->peer->att);
			break;
		}
	}
	rcu_read_unlock();
}

/* A kick on v: its direct ring's work, or the worker. Any context. */
static void ptnh_kicked(struct ptnh_vec *v)
{
	if (v->direct)
		queue_work(system_highpri_wq, &v->direct->work);
	else
		ptnh_wake(v->att);
}

/* The kick eventfd's wait-queue callback. Called with the wqh lock held. */
static int ptnh_kick_wakeup(wait_queue_entry_t *wait, unsigned int mode,
			    int sync, void *key)
{
	struct ptnh_vec *v = container_of(wait, struct ptnh_vec, wait);

	if (!(key_to_poll(key) & EPOLLIN))
		return 0;
	u64_stats_update_begin(&v->syncp);
	u64_stats_inc(&v->kicks);
	u64_stats_update_end(&v->syncp);
	ptnh_kicked(v);
	return 0;
}

static void ptnh_kick_queue_proc(struct file *file, wait_queue_head_t *wqh,
				 poll_table *pt)
{
	struct ptnh_vec *v = container_of(pt, struct ptnh_vec, pt);

	v->wqh = wqh;
	add_wait_queue(wqh, &v->wait);
}

/*
 * A peer's counters have one writer, its attachment's worker. A kloop has
 * no reader for them and, in the direct modes, several writers (one work
 * item per ring): it keeps none.
 */
static bool ptnh_counted(const struct ptnh_peer *peer)
{
	return !peer->att->kloop;
}

/* Interrupt the guest on `vector`. Worker context (or a direct ring's work). */
static void ptnh_irq(struct ptnh_peer *peer, unsigned int vector)
{
	if (!peer->vecs[vector].irq)
		return;		/* a kloop without eventfds */
	eventfd_signal(peer->vecs[vector].irq, 1);
	if (!ptnh_counted(peer))
		return;
	u64_stats_update_begin(&peer->stats.syncp);
	u64_stats_inc(&peer->stats.interrupts);
	u64_stats_update_end(&peer->stats.syncp);
}

static void ptnh_count(struct ptnh_peer *peer, u64_stats_t *packets,
		       u64_stats_t *bytes, u64 np, u64 nb)
{
	if (!ptnh_counted(peer))
		return;
	u64_stats_update_begin(&peer->stats.syncp);
	u64_stats_add(packets, np);
	u64_stats_add(bytes, nb);
	u64_stats_update_end(&peer->stats.syncp);
}

/* ---------------------------------------------------------------------- */
/* The rings                                                               */
/* ---------------------------------------------------------------------- */

/*
 * The peer is stopped (STOP or a violation): put in its rings the state a
 * START must find. Worker context.
 */
static void ptnh_peer_stop_rings(struct ptnh_peer *peer)
{
	u32 i;

	/* The guest restarts from these: head = cur = what we accepted. */
	for (i = 0; i < peer->nrings; i++) {
		struct ptnm_kring *kring = peer->rings[i].kring;

		mutex_lock(&kring->sync_lock);
		WRITE_ONCE(kring->ring->head, kring->rhead);
		WRITE_ONCE(kring->ring->cur, kring->rhead);
		WRITE_ONCE(kring->ring->tail, kring->rtail);
		mutex_unlock(&kring->sync_lock);
	}
}

/* The guest stopped playing by the rules: stop serving it. Worker context. */
static void ptnh_peer_fail(struct ptnh_peer *peer, const char *what)
{
	pr_info_ratelimited("attachment %s peer %u (%s): %s; peer stopped\n",
			    peer->att->name, peer->id, peer->port->name, what);
	u64_stats_update_begin(&peer->stats.syncp);
	u64_stats_inc(&peer->stats.errors);
	u64_stats_update_end(&peer->stats.syncp);
	peer->started = false;
	peer->broken = true;
	WRITE_ONCE(peer->desc->link, 0);
	ptnh_peer_stop_rings(peer);	/* where a restart begins */
	ptnh_irq(peer, PTNM_CTRL_VECTOR);	/* the link changed */
}

struct ptnh_sync {
	u32 old_hwcur, old_tail;
	u32 hwcur, tail;
};

/*
 * One sync of a ring with the guest's head and cur, read once by the
 * caller. They are checked like a file's sync prologue does: head moves
 * forward at most to the tail last published, cur lies between head and
 * that tail. Returns -EPROTO for bad indexes, or the port's error.
 */
static int ptnh_ring_sync(struct ptnh_ring *r, u32 head, u32 cur,
			  struct ptnh_sync *s)
{
	struct ptnm_kring *kring = r->kring;
	const struct ptnm_port_ops *ops = kring->port->ops;
	int err = -EPROTO;

	mutex_lock(&kring->sync_lock);
	s->old_hwcur = s->hwcur = kring->nr_hwcur;
	s->old_tail = s->tail = kring->rtail;
	if (!ptnm_rm_sync_ok(kring->num_slots, kring->rhead, kring->rtail,
			     head, cur))
		goto out;
	kring->rhead = head;
	kring->rcur = cur;
	err = kring->dir == PTNM_TX ? ops->txsync(kring) : ops->rxsync(kring);
	/* Pairs with the port type's release of nr_hwtail after the slots. */
	kring->rtail = smp_load_acquire(&kring->nr_hwtail);
	s->hwcur = kring->nr_hwcur;
	s->tail = kring->rtail;
out:
	mutex_unlock(&kring->sync_lock);
	return err;
}

/* Bytes in slots [from, to): guest-written lengths, clamped; counters only. */
static u64 ptnh_bytes(struct ptnm_kring *kring, u32 from, u32 to)
{
	u32 bufsize = ptnm_buf_size(kring->port->region);
	u64 bytes = 0;

	for (; from != to; from = ptnm_next(kring, from))
		bytes += min_t(u32, READ_ONCE(kring->ring->slot[from].len), bufsize);
	return bytes;
}

/* Publish the kernel's indexes: hwcur, then hwtail. */
static void ptnh_publish(struct ptnh_ring *r, const struct ptnh_sync *s)
{
	WRITE_ONCE(r->ktoa->hwcur, s->hwcur);
	smp_wmb();	/* readers read hwtail, then hwcur */
	WRITE_ONCE(r->ktoa->hwtail, s->tail);
}

/* Interrupt the guest if the tail moved and it asked for it. */
static void ptnh_maybe_irq(struct ptnh_ring *r, const struct ptnh_sync *s)
{
	if (s->tail == s->old_tail)
		return;
	smp_mb();	/* hwtail store before the appl_need_kick load */
	if (READ_ONCE(r->atok->appl_need_kick))
		ptnh_irq(r->peer, r->vector);
}

static void ptnh_kicks(struct ptnh_ring *r, bool on)
{
	if (r->kick_on != on) {
		WRITE_ONCE(r->ktoa->kern_need_kick, on);
		r->kick_on = on;
	}
}

/*
 * Going idle on a ring: ask for kicks, then look at head once more. A head
 * published before the guest could see the flag would otherwise wait for
 * the next kick that never comes. Returns true if there is work after all.
 */
static bool ptnh_idle(struct ptnh_ring *r)
{
	ptnh_kicks(r, true);
	smp_mb();	/* kern_need_kick store before the head load */
	if (READ_ONCE(r->atok->head) == READ_ONCE(r->kring->rhead))
		return false;
	ptnh_kicks(r, false);
	return true;
}

/*
 * TX: send what the guest published. Returns true if another pass is due,
 * or sets *err.
 */
static bool ptnh_tx(struct ptnh_ring *r, int *err)
{
	struct ptnm_kring *kring = r->kring;
	struct ptnh_sync s;
	u32 head, cur;

	head = READ_ONCE(r->atok->head);
	smp_rmb();	/* the guest wrote cur, then head */
	cur = READ_ONCE(r->atok->cur);
	/* Only the worker syncs this ring: rhead and nr_hwcur are stable. */
	if (head == kring->rhead && kring->nr_hwcur == head)
		return ptnh_idle(r);

	ptnh_kicks(r, false);	/* busy: no kicks needed while we work */
	*err = ptnh_ring_sync(r, head, cur, &s);
	if (*err)
		return false;
	if (s.hwcur != s.old_hwcur)
		ptnh_count(r->peer, &r->peer->stats.tx_packets,
			   &r->peer->stats.tx_bytes,
			   ptnm_dist(kring, s.old_hwcur, s.hwcur),
			   ptnh_bytes(kring, s.old_hwcur, s.hwcur));
	ptnh_publish(r, &s);
	ptnh_maybe_irq(r, &s);
	/* No progress: the port is full and will notify us when it drains. */
	if (s.hwcur == s.old_hwcur)
		return ptnh_idle(r);
	return true;
}

/*
 * RX: give the guest what arrived and return what it released. Kicks are
 * only wanted when the ring runs short of room: until then the port can
 * go on filling it without knowing about the guest's releases.
 */
static bool ptnh_rx(struct ptnh_ring *r, int *err)
{
	struct ptnm_kring *kring = r->kring;
	struct ptnh_sync s;
	u32 head, cur, room;

	head = READ_ONCE(r->atok->head);
	smp_rmb();
	cur = READ_ONCE(r->atok->cur);
	/* xchg orders it after the worker's test_and_clear_bit(). */
	if (xchg(&r->notified, false) || head != kring->rhead ||
	    smp_load_acquire(&kring->nr_hwtail) != kring->rtail) {
		*err = ptnh_ring_sync(r, head, cur, &s);
		if (*err)
			return false;
		if (s.tail != s.old_tail)
			ptnh_count(r->peer, &r->peer->stats.rx_packets,
				   &r->peer->stats.rx_bytes,
				   ptnm_dist(kring, s.old_tail, s.tail),
				   ptnh_bytes(kring, s.old_tail, s.tail));
		ptnh_publish(r, &s);
		ptnh_maybe_irq(r, &s);
	}
	room = ptnm_dist(kring, kring->rtail, ptnm_prev(kring, kring->nr_hwcur));
	if (room >= kring->num_slots / 2) {
		ptnh_kicks(r, false);
		return false;
	}
	return ptnh_idle(r);
}

/* Publish the kernel's view of a ring, kicks wanted. */
static void ptnh_republish(struct ptnh_ring *r)
{
	struct ptnm_kring *kring = r->kring;
	struct ptnh_sync s;

	mutex_lock(&kring->sync_lock);
	s.hwcur = kring->nr_hwcur;
	s.tail = kring->rtail;
	mutex_unlock(&kring->sync_lock);
	ptnh_publish(r, &s);
	r->kick_on = false;
	ptnh_kicks(r, true);
}

/* Publish the kernel's view of a ring again, counting an error. */
static void ptnh_ring_reset(struct ptnh_ring *r)
{
	if (ptnh_counted(r->peer)) {
		u64_stats_update_begin(&r->peer->stats.syncp);
		u64_stats_inc(&r->peer->stats.errors);
		u64_stats_update_end(&r->peer->stats.syncp);
	}
	ptnh_republish(r);
}

/*
 * One pass over a started peer's rings. Returns true if another pass is due;
 * a guest that broke the rules is stopped (peer->started goes false).
 */
static bool ptnh_peer_rings_pass(struct ptnh_peer *peer)
{
	bool again = false;
	int err = 0;
	u32 i;

	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		if (r->direct)
			continue;	/* its work item's */
		if (r->kring->dir == PTNM_TX)
			again |= ptnh_tx(r, &err);
		else
			again |= ptnh_rx(r, &err);
		if (err && !peer->desc) {
			/*
			 * An application's kloop: like a bad sync, the ring
			 * is reset to the kernel's indexes and the loop goes
			 * on (the application only hurts itself).
			 */
			ptnh_ring_reset(r);
			err = 0;
			continue;
		}
		if (err) {
			ptnh_peer_fail(peer, err == -EPROTO ?
				       "bad CSB indexes" : "bad slot");
			return false;
		}
	}
	return again;
}

/*
 * STOP: one more pass over the rings first, for what the guest published
 * since the last one (releasing RX slots needs no kick, so its last
 * releases may be news to us), then the rings as a START must find them.
 * A START thus resumes where the guest left off, never before it: that
 * would hand the guest again the frames it had already taken.
 */
static void ptnh_peer_stop(struct ptnh_peer *peer)
{
	if (peer->started) {
		ptnh_peer_rings_pass(peer);
		if (!peer->started)
			return;	/* stopped on what it found, and counted */
	}
	peer->started = false;
	WRITE_ONCE(peer->desc->link, 0);
	ptnh_peer_stop_rings(peer);
}

/* START: the rings must be as we left them (head = cur = our rhead). */
static int ptnh_peer_start(struct ptnh_peer *peer)
{
	u32 i;

	if (peer->started)
		return -EBUSY;
	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		if (READ_ONCE(r->atok->head) != r->kring->rhead ||
		    READ_ONCE(r->atok->cur) != r->kring->rhead)
			return -EINVAL;
		ptnh_republish(r);
	}
	peer->started = true;
	peer->broken = false;
	WRITE_ONCE(peer->desc->link, PTNM_LINK_UP);
	return 0;
}

/* The control mailbox: one request at a time, answered in order. */
static void ptnh_peer_ctrl(struct ptnh_peer *peer)
{
	struct ptnm_ctrl *ctrl = &peer->desc->ctrl;
	u32 seq = READ_ONCE(ctrl->req_seq);
	s32 status;

	if (seq == peer->ctrl_seq)
		return;
	smp_rmb();	/* the guest wrote request, then req_seq */
	switch (READ_ONCE(ctrl->request)) {
	case PTNM_CTRL_START:
		status = ptnh_peer_start(peer);
		break;
	case PTNM_CTRL_STOP:
		ptnh_peer_stop(peer);
		status = 0;
		break;
	default:
		status = -EINVAL;
		break;
	}
	WRITE_ONCE(ctrl->status, status);
	smp_wmb();	/* the status before the answer's sequence number */
	WRITE_ONCE(ctrl->resp_seq, seq);
	peer->ctrl_seq = seq;
	ptnh_irq(peer, PTNM_CTRL_VECTOR);
}

/* One pass over a peer. Returns true if another pass is due. */
static bool ptnh_peer_pass(struct ptnh_peer *peer)
{
	if (peer->desc)
		ptnh_peer_ctrl(peer);
	if (!peer->started)
		return false;
	return ptnh_peer_rings_pass(peer);
}

static bool ptnh_should_stop(struct ptnh_att *att, int *ret)
{
	if (!att->kloop)
		return kthread_should_stop();
	if (signal_pending(current)) {
		*ret = -EINTR;
		return true;
	}
	return READ_ONCE(att->stop);
}

/*
 * The loop of an attachment's worker, or of a SYNC_KLOOP_START caller:
 * asleep until a kick or a port wakes it (or, busy-waiting, every
 * sleep_us), then passes over the rings until there is nothing left to do.
 */
static int ptnh_run(struct ptnh_att *att)
{
	unsigned int passes = 0;
	bool again;
	int ret = 0;
	u32 p;

	for (;;) {
		set_current_state(TASK_INTERRUPTIBLE);
		if (ptnh_should_stop(att, &ret)) {
			__set_current_state(TASK_RUNNING);
			return ret;
		}
		if (!test_and_clear_bit(PTNH_WORK, &att->work)) {
			passes = 0;
			if (!att->busy_wait) {
				schedule();
				continue;
			}
			__set_current_state(TASK_RUNNING);
			if (att->sleep_us)
				usleep_range(att->sleep_us,
					     att->sleep_us + att->sleep_us / 4 + 1);
			else
				cond_resched();
			set_bit(PTNH_WORK, &att->work);
			continue;
		}
		__set_current_state(TASK_RUNNING);
		u64_stats_update_begin(&att->syncp);
		u64_stats_inc(&att->wakeups);
		u64_stats_update_end(&att->syncp);

		again = false;
		for (p = 0; p < att->num_peers; p++)
			again |= ptnh_peer_pass(att->peers[p]);
		if (again)
			set_bit(PTNH_WORK, &att->work);
		if (++passes >= PTNH_PASS_BUDGET) {
			passes = 0;
			cond_resched();
		}
	}
}

static int ptnh_worker(void *data)
{
	return ptnh_run(data);
}

/* ---------------------------------------------------------------------- */
/* Attach and detach                                                       */
/* ---------------------------------------------------------------------- */

/* Caller holds ptnm_lock. */
static struct ptnh_att *ptnh_find(const char *name)
{
	struct ptnh_att *att;

	list_for_each_entry(att, &ptnh_atts, node)
		if (!strcmp(att->name, name))
			return att;
	return NULL;
}

static int ptnh_check_name(const char *name, size_t size)
{
	size_t i, len = strnlen(name, size);

	if (!len || len == size)
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!isgraph(name[i]))
			return -EINVAL;
	return 0;
}

static void ptnh_vec_release(struct ptnh_vec *v)
{
	if (v->wqh)
		remove_wait_queue(v->wqh, &v->wait);
	v->wqh = NULL;
	if (v->kick)
		fput(v->kick);
	v->kick = NULL;
	if (v->irq)
		eventfd_ctx_put(v->irq);
	v->irq = NULL;
	if (v->irq_file)
		fput(v->irq_file);
	v->irq_file = NULL;
}

static int ptnh_vec_setup(struct ptnh_att *att, struct ptnh_vec *v,
			  int kick_fd, int irq_fd)
{
	struct eventfd_ctx *ctx;
	__poll_t mask;

	v->att = att;
	u64_stats_init(&v->syncp);
	if (att->kloop && irq_fd < 0)
		goto kick;
	v->irq_file = fget(irq_fd);
	if (!v->irq_file)
		return -EBADF;
	v->irq = eventfd_ctx_fileget(v->irq_file);
	if (IS_ERR(v->irq)) {
		v->irq = NULL;
		return -EBADF;
	}
kick:
	if (att->kloop && kick_fd < 0)
		return 0;
	v->kick = fget(kick_fd);
	if (!v->kick)
		return -EBADF;
	ctx = eventfd_ctx_fileget(v->kick);
	if (IS_ERR(ctx))
		return -EBADF;
	eventfd_ctx_put(ctx);	/* only checking that it is an eventfd */
	init_waitqueue_func_entry(&v->wait, ptnh_kick_wakeup);
	init_poll_funcptr(&v->pt, ptnh_kick_queue_proc);
	mask = vfs_poll(v->kick, &v->pt);
	if (mask & EPOLLIN)
		ptnh_kicked(v);
	return 0;
}

/*
 * Undo ptnh_peer_hook(): no kick reaches the worker afterwards, and no
 * notify once a grace period has passed. The eventfds stay until
 * ptnh_peer_free(): the worker may still signal them. Caller holds ptnm_lock.
 */
static void ptnh_peer_unhook(struct ptnh_peer *peer)
{
	u32 i;

	for (i = 0; i < peer->nvec; i++) {
		struct ptnh_vec *v = &peer->vecs[i];

		if (v->wqh)
			remove_wait_queue(v->wqh, &v->wait);
		v->wqh = NULL;
	}
	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		if (!r->hooked)
			continue;
		WRITE_ONCE(r->kring->notify, ptnm_kring_notify);
		spin_lock(&ptnh_krings_lock);
		hash_del_rcu(&r->node);
		spin_unlock(&ptnh_krings_lock);
		r->hooked = false;
	}
}

/* Caller holds ptnm_lock; the worker is gone. */
static void ptnh_peer_free(struct ptnh_peer *peer)
{
	u32 i;

	for (i = 0; i < peer->nvec; i++)
		ptnh_vec_release(&peer->vecs[i]);
	if (peer->port) {
		WRITE_ONCE(peer->desc->link, 0);
		ptnm_file_unregister(&peer->pf);
	}
	kfree(peer);
}

/* Everything in the memfd that the guest reads, written before it starts. */
static void ptnh_write_layout(struct ptnh_att *att)
{
	struct ptnm_global *g = att->hdr;

	memset(g, 0, sizeof(*g));
	g->magic = PTNM_MAGIC;
	g->layout_major = PTNM_LAYOUT_MAJOR;
	g->layout_minor = PTNM_LAYOUT_MINOR;
	g->bar_size = att->shm_size;
	g->host_features = (att->flags & PTNETMAP_PT_SHARED) ?
			   PTNM_F_SHARED_REGION : 0;
	g->num_peers = att->num_peers;
	g->region_offset = att->region_offset;
	g->region_size = att->region->size;
	g->region_id = att->region->id;
	g->buf_size = ptnm_buf_size(att->region);
}

static u64 ptnh_csb_offset(const struct ptnh_att *att, u32 peer_id)
{
	return (u64)(att->num_peers + peer_id) * PTNM_PAGE_SIZE;
}

/*
 * The guest's netmap_if lists the rings it drives and no others
 * (docs/shm-layout.md). A NIC port also has host rings, where what the
 * stack sends on the device goes (and stays: nobody else can bind them
 * while the guest holds the device); they are left out, the RX rings
 * moved up behind the TX ones. Before the guest can look.
 */
static void ptnh_peer_hide_host_rings(struct ptnh_att *att,
				      struct ptnh_peer *peer)
{
	struct netmap_if *nifp = att->region->vaddr + peer->pf.if_ofs;
	struct ptnm_port *port = peer->port;
	u32 ntx = port->num_rings[PTNM_TX], nrx = port->num_rings[PTNM_RX];
	u32 all = ptnm_port_all_rings(port, PTNM_TX) +
		  ptnm_port_all_rings(port, PTNM_RX);
	u32 i;

	if (!port->num_host_rings[PTNM_TX] && !port->num_host_rings[PTNM_RX])
		return;
	for (i = 0; i < nrx; i++)
		nifp->ring_ofs[ntx + i] =
			port->krings[PTNM_RX][i].ring_ofs - peer->pf.if_ofs;
	for (i = ntx + nrx; i < all; i++)
		nifp->ring_ofs[i] = 0;
	nifp->ni_host_tx_rings = 0;
	nifp->ni_host_rx_rings = 0;
}

/*
 * Bind peer `id` to its port: look it up (creating it in our region),
 * register exclusively, describe it in its page, set its CSB. Caller holds
 * ptnm_lock.
 */
static int ptnh_peer_bind(struct ptnh_att *att, struct ptnh_peer *peer,
			  const struct ptnetmap_pt_peer *up,
			  const struct ptnetmap_pt_attach *a)
{
	struct nmreq_register reg = {
		.nr_mode = NR_REG_ALL_NIC,
		.nr_flags = NR_EXCLUSIVE,
	};
	struct ptnm_port_req preq = {
		.num_rings = { a->num_tx_rings ?: 1, a->num_rx_rings ?: 1 },
		.num_slots = { a->num_tx_slots ?: PTNH_DEF_SLOTS,
			       a->num_rx_slots ?: PTNH_DEF_SLOTS },
		.region = att->region,
		.mode = NR_REG_ALL_NIC,
	};
	struct ptnm_port_desc *desc;
	struct ptnm_port *port;
	struct nm_csb_atok *atok;
	struct nm_csb_ktoa *ktoa;
	u32 ntx, nrx, i;
	int err;

	err = ptnh_check_name(up->port, sizeof(up->port));
	if (err)
		return err;
	/* A pipe's region holds both ends: only for those who trust each other. */
	if (strpbrk(up->port, "{}") && !(att->flags & PTNETMAP_PT_SHARED))
		return -EINVAL;
	err = ptnm_port_lookup(up->port, &preq, &port);
	if (err)
		return err;
	if (port->region != att->region) {
		pr_info_ratelimited("attachment %s: port %s exists in another region\n",
				    att->name, up->port);
		ptnm_port_put(port);
		return -EINVAL;
	}
	ntx = port->num_rings[PTNM_TX];
	nrx = port->num_rings[PTNM_RX];
	if (!ntx || ntx > PTNM_PORT_MAX_RINGS || !nrx ||
	    nrx > PTNM_PORT_MAX_RINGS || up->num_vectors != 1 + ntx + nrx) {
		ptnm_port_put(port);
		return -EINVAL;
	}
	err = ptnm_file_register(&peer->pf, port, &reg);
	if (err) {
		ptnm_port_put(port);
		return err;
	}
	peer->port = port;
	peer->ntx = ntx;
	peer->nrings = ntx + nrx;
	peer->desc = att->hdr + (size_t)peer->id * PTNM_PAGE_SIZE;
	u64_stats_init(&peer->stats.syncp);
	ptnh_peer_hide_host_rings(att, peer);

	desc = peer->desc;
	memset(desc, 0, sizeof(*desc));
	desc->peer_id = peer->id;
	desc->mtu = a->mtu ?: min_t(u32, PTNH_DEF_MTU,
				    ptnm_buf_size(att->region) - 14);
	memcpy(peer->mac, up->mac, sizeof(peer->mac));
	memcpy(desc->mac, peer->mac, sizeof(desc->mac));
	desc->num_tx_rings = ntx;
	desc->num_rx_rings = nrx;
	desc->num_tx_slots = port->num_slots[PTNM_TX];
	desc->num_rx_slots = port->num_slots[PTNM_RX];
	desc->nifp_offset = att->region_offset + peer->pf.if_ofs;
	desc->csb_offset = ptnh_csb_offset(att, peer->id);
	desc->port_features = (att->flags & PTNETMAP_PT_SHARED) ?
			      PTNM_F_SHARED_REGION : 0;
	strscpy(desc->name, port->name, sizeof(desc->name));

	atok = att->hdr + desc->csb_offset;
	ktoa = (struct nm_csb_ktoa *)(atok + peer->nrings);
	memset(atok, 0, PTNM_PAGE_SIZE);
	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];
		struct ptnm_kring *kring = i < ntx ? &port->krings[PTNM_TX][i] :
					   &port->krings[PTNM_RX][i - ntx];

		r->peer = peer;
		r->kring = kring;
		r->atok = &atok[i];
		r->ktoa = &ktoa[i];
		r->vector = PTNM_RING_VECTOR(i);
		atok[i].head = atok[i].cur = kring->rhead;
		ktoa[i].hwcur = kring->nr_hwcur;
		ktoa[i].hwtail = kring->rtail;
		ktoa[i].kern_need_kick = 1;
		r->kick_on = true;
	}
	return 0;
}

/* Kicks, irqs and port notifications reach the worker from now on. */
static int ptnh_peer_hook(struct ptnh_att *att, struct ptnh_peer *peer,
			  const struct ptnetmap_pt_peer *up)
{
	u32 i;
	int err;

	peer->nvec = up->num_vectors;
	for (i = 0; i < peer->nvec; i++) {
		err = ptnh_vec_setup(att, &peer->vecs[i], up->kick_fds[i],
				     up->irq_fds[i]);
		if (err)
			return err;
	}
	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		spin_lock(&ptnh_krings_lock);
		hash_add_rcu(ptnh_krings, &r->node, (unsigned long)r->kring);
		spin_unlock(&ptnh_krings_lock);
		r->hooked = true;
		WRITE_ONCE(r->kring->notify, ptnh_kring_notify);
	}
	return 0;
}

static void ptnh_hdr_release(struct ptnh_att *att)
{
	if (att->hdr)
		vunmap(att->hdr);
	if (att->hdr_npages == 0)
		goto out;
	unpin_user_pages_dirty_lock(att->hdr_pages, att->hdr_npages, true);
	account_locked_vm(att->mm, att->hdr_npages, false);
out:
	kfree(att->hdr_pages);
	if (att->mm)
		mmdrop(att->mm);
}

/*
 * Destroy an attachment. Caller holds ptnm_lock; the attachment is off the
 * list (or never was on it).
 */
static void ptnh_destroy(struct ptnh_att *att)
{
	u32 p;

	for (p = 0; p < att->num_peers; p++)
		if (att->peers[p])
			ptnh_peer_unhook(att->peers[p]);
	synchronize_rcu();	/* no notify still sees our rings */
	if (att->worker)
		kthread_stop(att->worker);
	for (p = 0; p < att->num_peers; p++)
		if (att->peers[p])
			ptnh_peer_free(att->peers[p]);
	ptnm_region_put(att->region);
	ptnh_hdr_release(att);
	if (att->memfd)
		fput(att->memfd);
	if (att->worker)
		put_task_struct(att->worker);
	kfree(att);
}

/*
 * Check that [addr, addr + size) of the caller is one shared mapping of
 * the whole memfd, from its start.
 */
static int ptnh_check_mapping(struct file *memfd, u64 addr, u64 size)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	int err = -EINVAL;

	mmap_read_lock(mm);
	vma = vma_lookup(mm, addr);
	if (vma && vma->vm_file &&
	    file_inode(vma->vm_file) == file_inode(memfd) &&
	    (vma->vm_flags & VM_SHARED) && (vma->vm_flags & VM_WRITE) &&
	    vma->vm_pgoff + ((addr - vma->vm_start) >> PAGE_SHIFT) == 0 &&
	    vma->vm_end - addr >= size)
		err = 0;
	mmap_read_unlock(mm);
	return err;
}

/* Pin and map the pages before the region: global, descriptors, CSBs. */
static int ptnh_hdr_setup(struct ptnh_att *att, u64 addr)
{
	unsigned long n = att->region_offset >> PAGE_SHIFT;
	long pinned;
	int err;

	att->hdr_pages = kcalloc(n, sizeof(*att->hdr_pages), GFP_KERNEL);
	if (!att->hdr_pages)
		return -ENOMEM;
	att->mm = current->mm;
	mmgrab(att->mm);
	err = account_locked_vm(att->mm, n, true);
	if (err)
		return err;
	pinned = pin_user_pages_fast(addr, n, FOLL_WRITE | FOLL_LONGTERM,
				     att->hdr_pages);
	if (pinned != n) {
		if (pinned > 0)
			unpin_user_pages(att->hdr_pages, pinned);
		account_locked_vm(att->mm, n, false);
		return pinned < 0 ? pinned : -EFAULT;
	}
	att->hdr_npages = n;
	att->hdr = vmap(att->hdr_pages, n, VM_MAP, PAGE_KERNEL);
	return att->hdr ? 0 : -ENOMEM;
}

/* The netmap region over the rest of the memfd (mem.c's EXTMEM). */
static int ptnh_region_setup(struct ptnh_att *att, u64 addr,
			     const struct ptnetmap_pt_attach *a)
{
	u32 slots = max(a->num_tx_slots ?: PTNH_DEF_SLOTS,
			a->num_rx_slots ?: PTNH_DEF_SLOTS);
	u32 rings = (a->num_tx_rings ?: 1) + (a->num_rx_rings ?: 1);
	struct nmreq_pools_info info = {
		.nr_memsize = att->shm_size - att->region_offset,
		.nr_if_pool_objtotal = att->num_peers + PTNH_SPARE_IFS,
		/* A pipe has both ends' rings in the region. */
		.nr_ring_pool_objtotal = 2 * rings * att->num_peers,
		.nr_ring_pool_objsize = PAGE_ALIGN(sizeof(struct netmap_ring) +
						   (u64)slots *
						   sizeof(struct netmap_slot)),
	};
	struct ptnm_region *region;

	if (slots > 16384)
		return -EINVAL;
	region = ptnm_region_new_extmem(addr + att->region_offset, &info);
	if (IS_ERR(region))
		return PTR_ERR(region);
	att->region = region;
	return 0;
}

static int ptnh_attach(const char *name, struct ptnetmap_pt_attach *a)
{
	struct ptnetmap_pt_peer *up = NULL;
	struct ptnh_att *att;
	u32 p;
	int err;

	lockdep_assert_held(&ptnm_lock);
	if (ptnh_check_name(name, NETMAP_REQ_IFNAMSIZ))
		return -EINVAL;
	if (ptnh_find(name))
		return -EEXIST;
	if (!a->num_peers || a->num_peers > PTNM_MAX_PEERS ||
	    (a->num_peers > 1 && !(a->flags & PTNETMAP_PT_SHARED)) ||
	    (a->flags & ~PTNETMAP_PT_SHARED) || a->pad0 ||
	    a->num_tx_rings > PTNM_PORT_MAX_RINGS ||
	    a->num_rx_rings > PTNM_PORT_MAX_RINGS ||
	    !PAGE_ALIGNED(a->shm_addr))
		return -EINVAL;

	up = memdup_user(u64_to_user_ptr(a->peers),
			 a->num_peers * sizeof(*up));
	if (IS_ERR(up))
		return PTR_ERR(up);

	err = -ENOMEM;
	att = kzalloc(sizeof(*att), GFP_KERNEL);
	if (!att)
		goto out;
	strscpy(att->name, name, sizeof(att->name));
	att->flags = a->flags;
	att->num_peers = a->num_peers;
	u64_stats_init(&att->syncp);

	err = -EBADF;
	att->memfd = fget(a->memfd);
	if (!att->memfd)
		goto err;
	err = -EINVAL;
	att->shm_size = i_size_read(file_inode(att->memfd));
	if (!S_ISREG(file_inode(att->memfd)->i_mode) ||
	    att->shm_size < PTNH_MIN_SHM || !is_power_of_2(att->shm_size))
		goto err;
	att->region_offset = ALIGN((u64)(1 + 2 * att->num_peers) *
				   PTNM_PAGE_SIZE, PAGE_SIZE);
	err = ptnh_check_mapping(att->memfd, a->shm_addr, att->shm_size);
	if (err)
		goto err;
	err = ptnh_hdr_setup(att, a->shm_addr);
	if (err)
		goto err;
	err = ptnh_region_setup(att, a->shm_addr, a);
	if (err)
		goto err;

	att->worker = kthread_create(ptnh_worker, att, "ptnm-%s", name);
	if (IS_ERR(att->worker)) {
		err = PTR_ERR(att->worker);
		att->worker = NULL;
		goto err;
	}
	get_task_struct(att->worker);

	for (p = 0; p < att->num_peers; p++) {
		struct ptnh_peer *peer = kzalloc(sizeof(*peer), GFP_KERNEL);

		err = -ENOMEM;
		if (!peer)
			goto err;
		peer->att = att;
		peer->id = p + 1;
		att->peers[p] = peer;
		err = ptnh_peer_bind(att, peer, &up[p], a);
		if (err) {
			att->peers[p] = NULL;
			kfree(peer);
			goto err;
		}
	}
	ptnh_write_layout(att);
	for (p = 0; p < att->num_peers; p++) {
		err = ptnh_peer_hook(att, att->peers[p], &up[p]);
		if (err)
			goto err;
	}

	a->shm_size = att->shm_size;
	a->region_offset = att->region_offset;
	a->region_size = att->region->size;
	a->mem_id = att->region->id;
	list_add_tail(&att->node, &ptnh_atts);
	wake_up_process(att->worker);
	kfree(up);
	return 0;

err:
	ptnh_destroy(att);	/* kthread_stop() copes with a never-woken thread */
out:
	kfree(up);
	return err;
}

/* ---------------------------------------------------------------------- */
/* netmap's CSB mode: CSB option, CSB_ENABLE, SYNC_KLOOP_START/STOP        */
/* ---------------------------------------------------------------------- */

/*
 * An application's file in CSB mode: its atok/ktoa arrays (in its own
 * memory, pinned and mapped here so the loop shares the attachments' ring
 * code), and the state of its kloop. Protected by ptnh_csb_lock: table
 * updates, running and att; the sync path looks the table up under RCU.
 * The arrays and krings are constant.
 */
struct ptnh_csb {
	struct hlist_node node;		/* in ptnh_csbs */
	struct ptnm_file *pf;
	u32 nrings;			/* bound rings, TX first */
	struct ptnm_kring *krings[PTNH_MAX_RINGS];
	struct page **pages[2];
	unsigned long npages[2];
	void *map[2];
	struct nm_csb_atok *atok;
	struct nm_csb_ktoa *ktoa;
	bool running;
	struct ptnh_att *att;		/* the running kloop's */
	wait_queue_head_t wq;		/* woken when the kloop ends */
};

static DEFINE_HASHTABLE(ptnh_csbs, 6);
static DEFINE_SPINLOCK(ptnh_csb_lock);
/* Files in CSB mode: the sync path of all others skips the lookup. */
static atomic_t ptnh_csb_files = ATOMIC_INIT(0);

/* Caller holds ptnh_csb_lock or rcu_read_lock. */
static struct ptnh_csb *ptnh_csb_find(struct ptnm_file *pf)
{
	struct ptnh_csb *c;

	hash_for_each_possible_rcu(ptnh_csbs, c, node, (unsigned long)pf,
				   lockdep_is_held(&ptnh_csb_lock))
		if (c->pf == pf)
			return c;
	return NULL;
}

/* Called on every NIOC*SYNC and poll: no lock, no shared write. */
bool ptnh_csb_mode(struct ptnm_file *pf)
{
	bool on;

	if (!atomic_read(&ptnh_csb_files))
		return false;
	rcu_read_lock();
	on = ptnh_csb_find(pf) != NULL;
	rcu_read_unlock();
	return on;
}

static void ptnh_csb_free(struct ptnh_csb *c)
{
	int i;

	for (i = 0; i < 2; i++) {
		if (c->map[i])
			vunmap(c->map[i]);
		if (c->npages[i])
			unpin_user_pages_dirty_lock(c->pages[i], c->npages[i],
						    true);
		kfree(c->pages[i]);
	}
	kfree(c);
}

/* Pin and map [uaddr, uaddr + len) of the caller; the kernel address. */
static void *ptnh_csb_map(struct ptnh_csb *c, int i, u64 uaddr, size_t len)
{
	unsigned long first = uaddr >> PAGE_SHIFT;
	unsigned long n = ((uaddr + len - 1) >> PAGE_SHIFT) - first + 1;
	long pinned;

	if (uaddr + len < uaddr || !access_ok(u64_to_user_ptr(uaddr), len))
		return ERR_PTR(-EFAULT);
	c->pages[i] = kcalloc(n, sizeof(struct page *), GFP_KERNEL);
	if (!c->pages[i])
		return ERR_PTR(-ENOMEM);
	pinned = pin_user_pages_fast(first << PAGE_SHIFT, n,
				     FOLL_WRITE | FOLL_LONGTERM, c->pages[i]);
	if (pinned != n) {
		if (pinned > 0)
			unpin_user_pages(c->pages[i], pinned);
		return ERR_PTR(pinned < 0 ? pinned : -EFAULT);
	}
	c->npages[i] = n;
	c->map[i] = vmap(c->pages[i], n, VM_MAP, PAGE_KERNEL);
	if (!c->map[i])
		return ERR_PTR(-ENOMEM);
	return c->map[i] + offset_in_page(uaddr);
}

/*
 * The CSB option of REGISTER, or CSB_ENABLE: the file's bound rings are
 * served through the arrays at atok and ktoa from now on. Needs an
 * exclusive registration and 64-byte aligned arrays; sets the initial
 * values (the kernel's indexes, both sides asking for notifications).
 * Caller holds ptnm_lock.
 */
int ptnh_csb_enable(struct ptnm_file *pf, u64 atok_uaddr, u64 ktoa_uaddr)
{
	struct ptnm_port *port = pf->port;
	struct ptnh_csb *c, *old;
	u32 n = 0, i;
	int d;
	void *m;

	if (!port)
		return -ENXIO;
	for (d = 0; d < PTNM_DIRS; d++)
		n += pf->last[d] - pf->first[d];
	if (!n)
		return 0;
	if (!(pf->flags & NR_EXCLUSIVE)) {
		pr_info_ratelimited("CSB mode requires NR_EXCLUSIVE\n");
		return -EINVAL;
	}
	if (n > PTNH_MAX_RINGS || !atok_uaddr || !ktoa_uaddr ||
	    atok_uaddr % sizeof(struct nm_csb_atok) ||
	    ktoa_uaddr % sizeof(struct nm_csb_ktoa))
		return -EINVAL;

	c = kzalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	c->pf = pf;
	c->nrings = n;
	init_waitqueue_head(&c->wq);
	m = ptnh_csb_map(c, 0, atok_uaddr, n * sizeof(*c->atok));
	if (IS_ERR(m))
		goto err;
	c->atok = m;
	m = ptnh_csb_map(c, 1, ktoa_uaddr, n * sizeof(*c->ktoa));
	if (IS_ERR(m))
		goto err;
	c->ktoa = m;

	n = 0;
	for (d = 0; d < PTNM_DIRS; d++)
		for (i = pf->first[d]; i < pf->last[d]; i++)
			c->krings[n++] = &port->krings[d][i];
	memset(c->ktoa, 0, c->nrings * sizeof(*c->ktoa));
	for (i = 0; i < c->nrings; i++) {
		struct ptnm_kring *kring = c->krings[i];

		mutex_lock(&kring->sync_lock);
		WRITE_ONCE(c->atok[i].head, kring->rhead);
		WRITE_ONCE(c->atok[i].cur, kring->rcur);
		WRITE_ONCE(c->atok[i].appl_need_kick, 1);
		WRITE_ONCE(c->atok[i].sync_flags, 1);
		WRITE_ONCE(c->ktoa[i].hwcur, kring->nr_hwcur);
		WRITE_ONCE(c->ktoa[i].hwtail, kring->rtail);
		WRITE_ONCE(c->ktoa[i].kern_need_kick, 1);
		mutex_unlock(&kring->sync_lock);
	}

	spin_lock(&ptnh_csb_lock);
	old = ptnh_csb_find(pf);
	if (old && old->running) {
		spin_unlock(&ptnh_csb_lock);
		ptnh_csb_free(c);
		return -EBUSY;
	}
	if (old)
		hash_del_rcu(&old->node);
	else
		atomic_inc(&ptnh_csb_files);
	hash_add_rcu(ptnh_csbs, &c->node, (unsigned long)pf);
	spin_unlock(&ptnh_csb_lock);
	if (old) {
		synchronize_rcu();
		ptnh_csb_free(old);
	}
	return 0;
err:
	ptnh_csb_free(c);
	return PTR_ERR(m);
}

/* The file is going away (no ioctl runs on it any more). */
void ptnh_csb_release(struct ptnm_file *pf)
{
	struct ptnh_csb *c;

	if (!atomic_read(&ptnh_csb_files))
		return;
	spin_lock(&ptnh_csb_lock);
	c = ptnh_csb_find(pf);
	if (c) {
		hash_del_rcu(&c->node);
		atomic_dec(&ptnh_csb_files);
	}
	spin_unlock(&ptnh_csb_lock);
	if (c) {
		synchronize_rcu();
		ptnh_csb_free(c);
	}
}

/* One {ioeventfd, irqfd} pair of SYNC_KLOOP_EVENTFDS per ring. */
struct ptnh_efd_pair {
	s32 ioeventfd;
	s32 irqfd;
};

/*
 * A direct ring's work: what the loop would do for it, right when its kick
 * or notification arrives. Not in the waker's context itself: the kick
 * callback runs under the eventfd's wait-queue lock with interrupts off,
 * and a port notifies from softirqs and under its own locks, while a sync
 * takes kring->sync_lock (a mutex) and a NIC transmits with interrupts on.
 * A work item never runs on two CPUs at once, so it is the ring's single
 * server, as the loop is for the other rings.
 */
static void ptnh_ring_work(struct work_struct *work)
{
	struct ptnh_ring *r = container_of(work, struct ptnh_ring, work);
	unsigned int passes;
	bool again = true;
	int err;

	for (passes = 0; again && passes < PTNH_PASS_BUDGET; passes++) {
		err = 0;
		again = r->kring->dir == PTNM_TX ? ptnh_tx(r, &err) :
						  ptnh_rx(r, &err);
		if (err) {
			ptnh_ring_reset(r);	/* as the loop does */
			again = false;
		}
	}
	if (again)	/* let others have the CPU, then go on */
		queue_work(system_highpri_wq, &r->work);
}

/*
 * No kick or notification queues a direct ring's work any more (the peer
 * is unhooked and a grace period has passed): wait for the last one.
 */
static void ptnh_peer_direct_flush(struct ptnh_peer *peer)
{
	u32 i;

	for (i = 0; i < peer->nrings; i++)
		if (peer->rings[i].direct)
			cancel_work_sync(&peer->rings[i].work);
}

/*
 * The kloop's attachment-like state: one peer with the file's rings. In
 * the direct modes (mode bits, with eventfds only) the TX or RX rings are
 * served by their work items.
 */
static struct ptnh_att *ptnh_kloop_new(struct ptnh_csb *c, u32 sleep_us,
				       const struct ptnh_efd_pair *efds,
				       u32 mode)
{
	struct ptnh_peer *peer;
	struct ptnh_att *att;
	u32 i;
	int err;

	att = kzalloc(sizeof(*att), GFP_KERNEL);
	peer = kzalloc(sizeof(*peer), GFP_KERNEL);
	if (!att || !peer) {
		kfree(att);
		kfree(peer);
		return ERR_PTR(-ENOMEM);
	}
	strscpy(att->name, c->pf->port->name, sizeof(att->name));
	att->kloop = true;
	att->worker = current;
	att->sleep_us = sleep_us;
	att->busy_wait = !efds;
	att->num_peers = 1;
	att->peers[0] = peer;
	u64_stats_init(&att->syncp);
	peer->att = att;
	peer->port = c->pf->port;
	peer->nrings = c->nrings;
	peer->nvec = 1 + c->nrings;
	peer->started = true;
	u64_stats_init(&peer->stats.syncp);
	for (i = 0; i < c->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		r->peer = peer;
		r->kring = c->krings[i];
		r->atok = &c->atok[i];
		r->ktoa = &c->ktoa[i];
		r->vector = 1 + i;
		r->kick_on = true;
		if (!efds)
			continue;
		INIT_WORK(&r->work, ptnh_ring_work);
		r->direct = mode & (r->kring->dir == PTNM_TX ?
				    NM_OPT_SYNC_KLOOP_DIRECT_TX :
				    NM_OPT_SYNC_KLOOP_DIRECT_RX);
		if (r->direct)
			peer->vecs[1 + i].direct = r;
		err = ptnh_vec_setup(att, &peer->vecs[1 + i], efds[i].ioeventfd,
				     efds[i].irqfd);
		if (err) {
			ptnh_peer_unhook(peer);
			ptnh_peer_direct_flush(peer);
			peer->port = NULL;	/* the file's registration */
			ptnh_peer_free(peer);
			kfree(att);
			return ERR_PTR(err);
		}
	}
	return att;
}

/*
 * SYNC_KLOOP_START: serve the file's rings in the caller's thread until
 * SYNC_KLOOP_STOP (or a signal). With eventfds (one ioeventfd/irqfd pair
 * per bound ring, TX first) the loop sleeps until kicked and interrupts
 * the application as asked; without, it polls every sleep_us. With
 * eventfds, the direct modes of SYNC_KLOOP_MODE take the TX (RX) rings
 * away from the loop: each is synced by its own work item as soon as it
 * is kicked (notified), without waking the loop (ptnh_ring_work() says why
 * not in the waker's context itself). Without eventfds they change
 * nothing. Called without ptnm_lock.
 */
int ptnh_kloop_start(struct ptnm_file *pf, u32 sleep_us,
		     const void *efds_body, size_t efds_size, const u32 *mode)
{
	const struct ptnh_efd_pair *efds = efds_body;
	struct ptnh_peer *peer;
	struct ptnh_att *att;
	struct ptnh_csb *c;
	int err;
	u32 i;

	if (sleep_us > USEC_PER_SEC)
		return -EINVAL;
	if (!smp_load_acquire(&pf->port))
		return -ENXIO;
	if (mode && (*mode & ~(NM_OPT_SYNC_KLOOP_DIRECT_TX |
			       NM_OPT_SYNC_KLOOP_DIRECT_RX)))
		return -EINVAL;

	spin_lock(&ptnh_csb_lock);
	c = ptnh_csb_find(pf);
	err = !c ? -EINVAL : c->running ? -EBUSY : 0;
	if (!err)
		c->running = true;
	spin_unlock(&ptnh_csb_lock);
	if (err) {
		if (err == -EINVAL)
			pr_info_ratelimited("sync kloop needs the CSB option\n");
		return err;
	}
	if (efds && efds_size != c->nrings * sizeof(*efds)) {
		pr_info_ratelimited("sync kloop: %zu eventfd pairs for %u rings\n",
				    efds_size / sizeof(*efds), c->nrings);
		err = -EINVAL;
		goto out;
	}

	att = ptnh_kloop_new(c, sleep_us, efds, mode ? *mode : 0);
	if (IS_ERR(att)) {
		err = PTR_ERR(att);
		goto out;
	}
	peer = att->peers[0];
	for (i = 0; i < peer->nrings; i++) {
		struct ptnh_ring *r = &peer->rings[i];

		spin_lock(&ptnh_krings_lock);
		hash_add_rcu(ptnh_krings, &r->node, (unsigned long)r->kring);
		spin_unlock(&ptnh_krings_lock);
		r->hooked = true;
		WRITE_ONCE(r->kring->notify, ptnh_kring_notify);
	}
	spin_lock(&ptnh_csb_lock);
	c->att = att;
	spin_unlock(&ptnh_csb_lock);

	/* A first pass over every ring, by whoever serves it. */
	for (i = 0; i < peer->nrings; i++)
		if (peer->rings[i].direct)
			queue_work(system_highpri_wq, &peer->rings[i].work);
	set_bit(PTNH_WORK, &att->work);
	err = ptnh_run(att);

	spin_lock(&ptnh_csb_lock);
	c->att = NULL;
	spin_unlock(&ptnh_csb_lock);
	ptnh_peer_unhook(peer);
	synchronize_rcu();
	ptnh_peer_direct_flush(peer);
	peer->port = NULL;	/* the file's registration, not ours */
	ptnh_peer_free(peer);
	kfree(att);
out:
	spin_lock(&ptnh_csb_lock);
	c->running = false;
	spin_unlock(&ptnh_csb_lock);
	wake_up_all(&c->wq);
	return err;
}

/* SYNC_KLOOP_STOP: ends the file's kloop and waits for it to be gone. */
int ptnh_kloop_stop(struct ptnm_file *pf)
{
	struct ptnh_csb *c;
	bool running;

	spin_lock(&ptnh_csb_lock);
	c = ptnh_csb_find(pf);
	running = c && c->running;
	if (c && c->att) {
		WRITE_ONCE(c->att->stop, true);
		ptnh_wake(c->att);
	}
	spin_unlock(&ptnh_csb_lock);
	if (!c)
		return -EINVAL;
	if (!running)
		return 0;
	/* A loop still starting sees att->stop once it publishes att. */
	while (wait_event_interruptible_timeout(c->wq, !READ_ONCE(c->running),
						msecs_to_jiffies(10)) == 0) {
		spin_lock(&ptnh_csb_lock);
		if (c->att) {
			WRITE_ONCE(c->att->stop, true);
			ptnh_wake(c->att);
		}
		spin_unlock(&ptnh_csb_lock);
	}
	return signal_pending(current) ? -EINTR : 0;
}

/* ---------------------------------------------------------------------- */
/* Requests                                                                */
/* ---------------------------------------------------------------------- */

static void ptnh_peer_info(struct ptnh_peer *peer, struct ptnetmap_pt_info *info)
{
	struct ptnh_stats *s = &peer->stats;
	u64 txp, txb, rxp, rxb, irqs, errs;
	unsigned int start;
	u32 i;

	do {
		start = u64_stats_fetch_begin(&s->syncp);
		txp = u64_stats_read(&s->tx_packets);
		txb = u64_stats_read(&s->tx_bytes);
		rxp = u64_stats_read(&s->rx_packets);
		rxb = u64_stats_read(&s->rx_bytes);
		irqs = u64_stats_read(&s->interrupts);
		errs = u64_stats_read(&s->errors);
	} while (u64_stats_fetch_retry(&s->syncp, start));
	info->tx_packets += txp;
	info->tx_bytes += txb;
	info->rx_packets += rxp;
	info->rx_bytes += rxb;
	info->interrupts += irqs;
	info->errors += errs;
	for (i = 0; i < peer->nvec; i++) {
		struct ptnh_vec *v = &peer->vecs[i];
		u64 kicks;

		do {
			start = u64_stats_fetch_begin(&v->syncp);
			kicks = u64_stats_read(&v->kicks);
		} while (u64_stats_fetch_retry(&v->syncp, start));
		info->kicks += kicks;
	}
	/* A racy snapshot of the worker's state is good enough here. */
	if (READ_ONCE(peer->started))
		info->state |= PTNETMAP_PT_STARTED;
	if (READ_ONCE(peer->broken))
		info->state |= PTNETMAP_PT_BROKEN;
}

static int ptnh_info(const char *name, struct ptnetmap_pt_info *info)
{
	u32 index = 0, want = info->index, peer = info->peer;
	struct ptnh_att *att = NULL, *it;
	u32 p;

	if (name[0]) {
		list_for_each_entry(it, &ptnh_atts, node) {
			if (!strcmp(it->name, name)) {
				att = it;
				break;
			}
			index++;
		}
	} else {
		list_for_each_entry(it, &ptnh_atts, node) {
			if (index == want) {
				att = it;
				break;
			}
			index++;
		}
	}
	if (!att)
		return -ENOENT;
	if (peer > att->num_peers)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->index = index;
	info->peer = peer;
	info->num_peers = att->num_peers;
	info->flags = att->flags;
	strscpy(info->name, att->name, sizeof(info->name));
	info->worker_pid = task_pid_nr(att->worker);
	info->shm_size = att->shm_size;
	info->region_offset = att->region_offset;
	info->region_size = att->region->size;
	info->wakeups = u64_stats_read(&att->wakeups);
	if (peer) {
		strscpy(info->port, att->peers[peer - 1]->port->name,
			sizeof(info->port));
		ptnh_peer_info(att->peers[peer - 1], info);
	} else {
		for (p = 0; p < att->num_peers; p++)
			ptnh_peer_info(att->peers[p], info);
	}
	return 0;
}

/*
 * The i-th file PT_FDS hands out for peer: the memfd, then per vector its
 * kick and its irq eventfd.
 */
static struct file *ptnh_fds_file(struct ptnh_att *att, struct ptnh_peer *peer,
				  u32 i)
{
	struct ptnh_vec *v;

	if (i == 0)
		return att->memfd;
	v = &peer->vecs[(i - 1) / 2];
	return (i - 1) % 2 ? v->irq_file : v->kick;
}

/*
 * PT_FDS: fresh descriptors in the caller for the files an attachment
 * holds. Every descriptor is reserved and the answer written to the
 * caller before any is installed, so a failure leaves the caller's table
 * as it was. Caller holds ptnm_lock, which keeps the attachment and its
 * files alive meanwhile.
 */
static int ptnh_fds(struct nmreq_header *hdr, struct ptnetmap_pt_fds *out)
{
	int fds[1 + 2 * PTNM_PORT_MAX_VECTORS];
	struct ptnh_peer *peer;
	struct ptnh_att *att;
	u32 i, n;
	int err;

	/* The memfd is the guest's memory, the eventfds its doorbells. */
	if (!capable(CAP_NET_ADMIN))
		return -EPERM;
	att = ptnh_find(hdr->nr_name);
	if (!att)
		return -ENOENT;
	if (!out->peer || out->peer > att->num_peers)
		return -EINVAL;
	peer = att->peers[out->peer - 1];
	n = 1 + 2 * peer->nvec;

	for (i = 0; i < n; i++) {
		fds[i] = get_unused_fd_flags(O_CLOEXEC);
		if (fds[i] < 0) {
			err = fds[i];
			goto unwind;
		}
	}
	out->num_vectors = peer->nvec;
	out->memfd = fds[0];
	out->flags = att->flags;
	out->shm_size = att->shm_size;
	strscpy(out->port, peer->port->name, sizeof(out->port));
	memcpy(out->mac, peer->mac, sizeof(out->mac));
	out->pad0 = 0;
	for (i = 0; i < PTNETMAP_PT_MAX_VECTORS; i++) {
		out->kick_fds[i] = i < peer->nvec ? fds[1 + 2 * i] : -1;
		out->irq_fds[i] = i < peer->nvec ? fds[2 + 2 * i] : -1;
	}
	/* Nothing may fail once a descriptor is installed. */
	i = n;
	err = -EFAULT;
	if (copy_to_user(u64_to_user_ptr(hdr->nr_body), out, sizeof(*out)))
		goto unwind;
	for (i = 0; i < n; i++)
		fd_install(fds[i], get_file(ptnh_fds_file(att, peer, i)));
	return 0;

unwind:
	while (i--)
		put_unused_fd(fds[i]);
	return err;
}

int ptnh_request(struct ptnm_file *pf, struct nmreq_header *hdr, void *body)
{
	struct ptnh_att *att;

	lockdep_assert_held(&ptnm_lock);
	switch (hdr->nr_reqtype) {
	case PTNETMAP_REQ_PT_ATTACH:
		return ptnh_attach(hdr->nr_name, body);
	case PTNETMAP_REQ_PT_DETACH:
		att = ptnh_find(hdr->nr_name);
		if (!att)
			return -ENOENT;
		list_del(&att->node);
		ptnh_destroy(att);
		return 0;
	case PTNETMAP_REQ_PT_INFO:
		return ptnh_info(hdr->nr_name, body);
	case PTNETMAP_REQ_PT_FDS:
		return ptnh_fds(hdr, body);
	default:
		return -EOPNOTSUPP;
	}
}

int ptnh_init(void)
{
	return 0;
}

void ptnh_exit(void)
{
	struct ptnh_att *att, *tmp;

	mutex_lock(&ptnm_lock);
	list_for_each_entry_safe(att, tmp, &ptnh_atts, node) {
		list_del(&att->node);
		ptnh_destroy(att);
	}
	mutex_unlock(&ptnm_lock);
}
