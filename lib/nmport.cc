// SPDX-License-Identifier: BSD-2-Clause
// The nmport_* API of <libnetmap.h>: turning a parsed portspec into a
// REGISTER request, registering it, mapping the memory region once per
// process, and undoing each step.
#include <fcntl.h>
#include <libnetmap.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <new>
#include <string>

#include "port_spec.h"

// Options and mappings a descriptor owns; the request header points into it.
struct nmport_priv {
  nmreq_opt_extmem extmem{};
  bool extmem_in_use = false;
  void* file_map = nullptr;  // the @extmem file (or nmport_extmem_from_file) mapping
  size_t file_size = 0;
  nmreq_opt_offsets offsets{};
  bool offsets_in_use = false;
  bool parsed = false;
};

namespace {

void DefaultError(nmctx* /*ctx*/, const char* msg) { std::fprintf(stderr, "libnetmap: %s\n", msg); }

nmctx default_ctx = {0, DefaultError, nullptr};

// Protects every nmctx's mem_descs list and the nmem_d refcounts.
std::mutex mem_lock;

// Reports an error: sets errno to `err` (after formatting, which may clobber it).
__attribute__((format(printf, 3, 4))) void Error(nmctx* ctx, int err, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (ctx->error) {
    ctx->error(ctx, msg);
  }
  errno = err;
}

void Log(nmctx* ctx, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void Log(nmctx* ctx, const char* fmt, ...) {
  if (!ctx->verbose) return;
  va_list ap;
  va_start(ap, fmt);
  std::fputs("libnetmap: ", stderr);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

// Maps a file for @extmem: the kernel builds the rings and buffers in it.
int MapFile(nmctx* ctx, const char* fname, void** map, size_t* size) {
  int fd = open(fname, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    Error(ctx, err, "extmem: cannot open %s: %s", fname, strerror(err));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0 || st.st_size <= 0) {
    int err = st.st_size <= 0 ? EINVAL : errno;
    close(fd);
    Error(ctx, err, "extmem: %s is empty or unreadable", fname);
    return -1;
  }
  void* p = mmap(nullptr, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (p == MAP_FAILED) {
    Error(ctx, err, "extmem: cannot map %s: %s", fname, strerror(err));
    return -1;
  }
  *map = p;
  *size = static_cast<size_t>(st.st_size);
  return 0;
}

// The memory region id of another port, for @share.
int SharedMemId(nmctx* ctx, const std::string& port, uint16_t* mem_id) {
  std::string error;
  auto spec = netmap::ParsePortSpec(port, &error);
  if (!spec) {
    Error(ctx, EINVAL, "@share: %s", error.c_str());
    return -1;
  }
  int fd = open(NETMAP_DEVICE, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    Error(ctx, err, "@share: cannot open %s: %s", NETMAP_DEVICE, strerror(err));
    return -1;
  }
  nmreq_header hdr{};
  nmreq_port_info_get info{};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
  spec->name.copy(hdr.nr_name, sizeof(hdr.nr_name) - 1);
  hdr.nr_body = reinterpret_cast<uintptr_t>(&info);
  int rc = ioctl(fd, NIOCCTRL, &hdr);
  int err = errno;
  close(fd);
  if (rc < 0) {
    Error(ctx, err, "@share: cannot get the memory region of %s: %s", port.c_str(), strerror(err));
    return -1;
  }
  *mem_id = info.nr_mem_id;
  return 0;
}

void ClearRings(nmport_d* d) {
  d->first_tx_ring = d->first_rx_ring = 1;
  d->last_tx_ring = d->last_rx_ring = 0;
  d->cur_tx_ring = d->cur_rx_ring = 0;
}

// Sets [first, last] to `count` rings from `first` (empty if count is 0).
void SetInterval(uint16_t* first, uint16_t* last, uint32_t from, uint32_t count) {
  if (count == 0) {
    *first = 1;
    *last = 0;
  } else {
    *first = static_cast<uint16_t>(from);
    *last = static_cast<uint16_t>(from + count - 1);
  }
}

// The rings a registration bound, from its mode and the netmap_if.
void ComputeRings(nmport_d* d) {
  const netmap_if* nifp = d->nifp;
  const nmreq_register& reg = d->reg;
  uint32_t nic_tx = nifp->ni_tx_rings, nic_rx = nifp->ni_rx_rings;
  uint32_t host_tx = nifp->ni_host_tx_rings, host_rx = nifp->ni_host_rx_rings;
  switch (reg.nr_mode) {
    case NR_REG_DEFAULT:
    case NR_REG_ALL_NIC:
      SetInterval(&d->first_tx_ring, &d->last_tx_ring, 0, nic_tx);
      SetInterval(&d->first_rx_ring, &d->last_rx_ring, 0, nic_rx);
      break;
    case NR_REG_SW:
      SetInterval(&d->first_tx_ring, &d->last_tx_ring, nic_tx, host_tx);
      SetInterval(&d->first_rx_ring, &d->last_rx_ring, nic_rx, host_rx);
      break;
    case NR_REG_NIC_SW:
      SetInterval(&d->first_tx_ring, &d->last_tx_ring, 0, nic_tx + host_tx);
      SetInterval(&d->first_rx_ring, &d->last_rx_ring, 0, nic_rx + host_rx);
      break;
    case NR_REG_ONE_NIC:
      SetInterval(&d->first_tx_ring, &d->last_tx_ring, reg.nr_ringid, 1);
      SetInterval(&d->first_rx_ring, &d->last_rx_ring, reg.nr_ringid, 1);
      break;
    case NR_REG_ONE_SW:
      SetInterval(&d->first_tx_ring, &d->last_tx_ring, nic_tx + reg.nr_ringid, 1);
      SetInterval(&d->first_rx_ring, &d->last_rx_ring, nic_rx + reg.nr_ringid, 1);
      break;
    default:  // NR_REG_NULL: memory only
      ClearRings(d);
      break;
  }
  if (reg.nr_flags & NR_RX_RINGS_ONLY) {
    SetInterval(&d->first_tx_ring, &d->last_tx_ring, 0, 0);
  }
  if (reg.nr_flags & NR_TX_RINGS_ONLY) {
    SetInterval(&d->first_rx_ring, &d->last_rx_ring, 0, 0);
  }
  d->cur_tx_ring = d->first_tx_ring;
  d->cur_rx_ring = d->first_rx_ring;
}

// Names the options the kernel refused, for the REGISTER error message.
std::string RefusedOptions(const nmreq_header& hdr) {
  std::string out;
  for (auto* opt = reinterpret_cast<const nmreq_option*>(hdr.nr_options); opt;
       opt = reinterpret_cast<const nmreq_option*>(opt->nro_next)) {
    if (opt->nro_status == 0) continue;
    const char* name = opt->nro_reqtype == NETMAP_REQ_OPT_EXTMEM    ? "extmem"
                       : opt->nro_reqtype == NETMAP_REQ_OPT_OFFSETS ? "offset"
                                                                    : "option";
    out += std::string(" (@") + name + ": " + strerror(static_cast<int>(opt->nro_status)) + ")";
  }
  return out;
}

}  // namespace

extern "C" {

struct nmctx* nmctx_get(void) {
  return &default_ctx;
}

nmctx_error_cb nmctx_set_error(struct nmctx* ctx, nmctx_error_cb cb) {
  nmctx_error_cb old = ctx->error;
  ctx->error = cb ? cb : DefaultError;
  return old;
}

void nmctx_ferror(struct nmctx* ctx, const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (ctx->error) ctx->error(ctx, msg);
}

void nmreq_push_option(struct nmreq_header* h, struct nmreq_option* opt) {
  opt->nro_next = h->nr_options;
  h->nr_options = reinterpret_cast<uintptr_t>(opt);
}

void nmreq_remove_option(struct nmreq_header* h, struct nmreq_option* opt) {
  uint64_t* link = &h->nr_options;
  while (*link) {
    auto* cur = reinterpret_cast<nmreq_option*>(*link);
    if (cur == opt) {
      *link = cur->nro_next;
      cur->nro_next = 0;
      return;
    }
    link = &cur->nro_next;
  }
}

struct nmreq_option* nmreq_find_option(struct nmreq_header* h, uint32_t reqtype) {
  for (auto* opt = reinterpret_cast<nmreq_option*>(h->nr_options); opt;
       opt = reinterpret_cast<nmreq_option*>(opt->nro_next)) {
    if (opt->nro_reqtype == reqtype) return opt;
  }
  return nullptr;
}

struct nmport_d* nmport_new(void) {
  auto* d = new (std::nothrow) nmport_d{};
  auto* priv = new (std::nothrow) nmport_priv{};
  if (!d || !priv) {
    delete d;
    delete priv;
    Error(&default_ctx, ENOMEM, "cannot allocate a port descriptor");
    return nullptr;
  }
  d->ctx = &default_ctx;
  d->fd = -1;
  d->priv = priv;
  ClearRings(d);
  return d;
}

void nmport_delete(struct nmport_d* d) {
  if (!d) return;
  delete d->priv;
  delete d;
}

int nmport_extmem(struct nmport_d* d, void* base, size_t size) {
  if (d->register_done) {
    Error(d->ctx, EBUSY, "extmem: %s is already registered", d->hdr.nr_name);
    return -1;
  }
  if (d->extmem) {
    Error(d->ctx, EINVAL, "extmem: %s already has external memory", d->hdr.nr_name);
    return -1;
  }
  nmreq_opt_extmem& e = d->priv->extmem;
  e = {};
  e.nro_opt.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
  e.nro_opt.nro_size = sizeof(e);
  e.nro_usrptr = reinterpret_cast<uintptr_t>(base);
  e.nro_info.nr_memsize = size;
  nmreq_push_option(&d->hdr, &e.nro_opt);
  d->priv->extmem_in_use = true;
  d->extmem = &e;
  return 0;
}

int nmport_extmem_from_file(struct nmport_d* d, const char* fname) {
  void* map = nullptr;
  size_t size = 0;
  if (MapFile(d->ctx, fname, &map, &size) < 0) return -1;
  if (nmport_extmem(d, map, size) < 0) {
    int err = errno;
    munmap(map, size);
    errno = err;
    return -1;
  }
  d->priv->file_map = map;
  d->priv->file_size = size;
  return 0;
}

struct nmreq_pools_info* nmport_extmem_getinfo(struct nmport_d* d) {
  return d->extmem ? &d->extmem->nro_info : nullptr;
}

int nmport_offset(struct nmport_d* d, uint64_t initial, uint64_t maxoff, uint64_t bits,
                  uint64_t mingap) {
  if (d->register_done) {
    Error(d->ctx, EBUSY, "offset: %s is already registered", d->hdr.nr_name);
    return -1;
  }
  if (d->priv->offsets_in_use) {
    Error(d->ctx, EINVAL, "offset: %s already has offsets", d->hdr.nr_name);
    return -1;
  }
  nmreq_opt_offsets& o = d->priv->offsets;
  o = {};
  o.nro_opt.nro_reqtype = NETMAP_REQ_OPT_OFFSETS;
  o.nro_opt.nro_size = sizeof(o);
  o.nro_initial_offset = initial;
  o.nro_max_offset = maxoff;
  o.nro_offset_bits = static_cast<uint32_t>(bits);
  o.nro_min_gap = mingap;
  nmreq_push_option(&d->hdr, &o.nro_opt);
  d->priv->offsets_in_use = true;
  return 0;
}

void nmport_undo_parse(struct nmport_d* d) {
  nmport_priv* priv = d->priv;
  if (priv->file_map) {
    munmap(priv->file_map, priv->file_size);
  }
  *priv = nmport_priv{};
  d->extmem = nullptr;
  d->hdr = {};
  d->reg = {};
}

int nmport_parse(struct nmport_d* d, const char* portspec) {
  if (d->register_done) {
    Error(d->ctx, EBUSY, "%s: the port is registered, close it first", portspec);
    return -1;
  }
  std::string error;
  auto spec = netmap::ParsePortSpec(portspec ? portspec : "", &error);
  if (!spec) {
    Error(d->ctx, EINVAL, "%s", error.c_str());
    return -1;
  }

  // Everything that can fail happens before d is touched.
  uint16_t mem_id = spec->mem_id.value_or(0);
  if (spec->share && SharedMemId(d->ctx, *spec->share, &mem_id) < 0) {
    return -1;
  }
  void* map = nullptr;
  size_t map_size = 0;
  if (spec->extmem && MapFile(d->ctx, spec->extmem->file.c_str(), &map, &map_size) < 0) {
    return -1;
  }

  if (d->priv->parsed) {
    nmport_undo_parse(d);
  }
  nmreq_header& hdr = d->hdr;
  hdr = {};
  hdr.nr_version = NETMAP_API;
  hdr.nr_reqtype = NETMAP_REQ_REGISTER;
  spec->name.copy(hdr.nr_name, sizeof(hdr.nr_name) - 1);
  hdr.nr_body = reinterpret_cast<uintptr_t>(&d->reg);

  nmreq_register& reg = d->reg;
  reg = {};
  reg.nr_mode = spec->mode;
  reg.nr_ringid = spec->ringid;
  reg.nr_flags = spec->flags;
  reg.nr_mem_id = mem_id;
  reg.nr_tx_rings = spec->conf.tx_rings;
  reg.nr_rx_rings = spec->conf.rx_rings;
  reg.nr_host_tx_rings = spec->conf.host_tx_rings;
  reg.nr_host_rx_rings = spec->conf.host_rx_rings;
  reg.nr_tx_slots = spec->conf.tx_slots;
  reg.nr_rx_slots = spec->conf.rx_slots;

  if (spec->extmem) {
    nmport_extmem(d, map, map_size);  // cannot fail: d is not registered, has no extmem
    d->priv->file_map = map;
    d->priv->file_size = map_size;
    nmreq_pools_info& info = d->extmem->nro_info;
    info.nr_if_pool_objtotal = spec->extmem->if_num;
    info.nr_if_pool_objsize = spec->extmem->if_size;
    info.nr_ring_pool_objtotal = spec->extmem->ring_num;
    info.nr_ring_pool_objsize = spec->extmem->ring_size;
    info.nr_buf_pool_objtotal = spec->extmem->buf_num;
    info.nr_buf_pool_objsize = spec->extmem->buf_size;
  }
  if (spec->offsets) {
    const netmap::OffsetSpec& o = *spec->offsets;
    nmport_offset(d, o.initial, o.max, o.bits, o.min_gap);
  }
  d->priv->parsed = true;
  return 0;
}

int nmport_register(struct nmport_d* d) {
  if (d->register_done) {
    Error(d->ctx, EBUSY, "%s: already registered", d->hdr.nr_name);
    return -1;
  }
  int fd = open(NETMAP_DEVICE, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    Error(d->ctx, err, "cannot open %s: %s", NETMAP_DEVICE, strerror(err));
    return -1;
  }
  // The descriptor may have been copied by value: point the body at our reg.
  d->hdr.nr_body = reinterpret_cast<uintptr_t>(&d->reg);
  if (ioctl(fd, NIOCCTRL, &d->hdr) < 0) {
    int err = errno;
    std::string refused = RefusedOptions(d->hdr);
    close(fd);
    Error(d->ctx, err, "cannot register %s: %s%s", d->hdr.nr_name, strerror(err), refused.c_str());
    return -1;
  }
  d->fd = fd;
  d->register_done = 1;
  Log(d->ctx, "registered %s: %u/%u rings, %u/%u slots, mem id %u", d->hdr.nr_name,
      d->reg.nr_tx_rings, d->reg.nr_rx_rings, d->reg.nr_tx_slots, d->reg.nr_rx_slots,
      d->reg.nr_mem_id);
  return 0;
}

void nmport_undo_register(struct nmport_d* d) {
  if (d->fd >= 0) close(d->fd);
  d->fd = -1;
  d->register_done = 0;
}

int nmport_mmap(struct nmport_d* d) {
  if (!d->register_done) {
    Error(d->ctx, EINVAL, "%s: register the port before mapping it", d->hdr.nr_name);
    return -1;
  }
  if (d->mmap_done) {
    Error(d->ctx, EBUSY, "%s: already mapped", d->hdr.nr_name);
    return -1;
  }
  nmctx* ctx = d->ctx;
  std::lock_guard<std::mutex> guard(mem_lock);
  nmem_d* mem = nullptr;
  if (!d->extmem) {
    for (nmem_d* m = ctx->mem_descs; m; m = m->next) {
      if (!m->is_extmem && m->mem_id == d->reg.nr_mem_id) {
        mem = m;
        break;
      }
    }
  }
  if (mem) {
    mem->refcount++;
  } else {
    mem = new (std::nothrow) nmem_d{};
    if (!mem) {
      Error(ctx, ENOMEM, "%s: cannot allocate a memory descriptor", d->hdr.nr_name);
      return -1;
    }
    mem->mem_id = d->reg.nr_mem_id;
    mem->refcount = 1;
    if (d->extmem) {
      mem->mem = reinterpret_cast<void*>(d->extmem->nro_usrptr);
      mem->size = d->extmem->nro_info.nr_memsize;
      mem->is_extmem = 1;
    } else {
      void* p = mmap(nullptr, d->reg.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd, 0);
      if (p == MAP_FAILED) {
        int err = errno;
        delete mem;
        Error(ctx, err, "%s: cannot map %llu bytes of memory region %u: %s", d->hdr.nr_name,
              static_cast<unsigned long long>(d->reg.nr_memsize), d->reg.nr_mem_id, strerror(err));
        return -1;
      }
      mem->mem = p;
      mem->size = d->reg.nr_memsize;
    }
    mem->next = ctx->mem_descs;
    if (mem->next) mem->next->prev = mem;
    ctx->mem_descs = mem;
  }
  d->mem = mem;
  d->nifp = NETMAP_IF(mem->mem, d->reg.nr_offset);
  ComputeRings(d);
  d->mmap_done = 1;
  return 0;
}

void nmport_undo_mmap(struct nmport_d* d) {
  if (!d->mmap_done) return;
  {
    std::lock_guard<std::mutex> guard(mem_lock);
    nmem_d* mem = d->mem;
    if (--mem->refcount == 0) {
      if (mem->prev) {
        mem->prev->next = mem->next;
      } else {
        d->ctx->mem_descs = mem->next;
      }
      if (mem->next) mem->next->prev = mem->prev;
      if (!mem->is_extmem) munmap(mem->mem, mem->size);
      delete mem;
    }
  }
  d->mem = nullptr;
  d->nifp = nullptr;
  d->mmap_done = 0;
  ClearRings(d);
}

int nmport_open_desc(struct nmport_d* d) {
  if (nmport_register(d) < 0) return -1;
  if (nmport_mmap(d) < 0) {
    int err = errno;
    nmport_undo_register(d);
    errno = err;
    return -1;
  }
  return 0;
}

void nmport_undo_open_desc(struct nmport_d* d) {
  nmport_undo_mmap(d);
  nmport_undo_register(d);
}

struct nmport_d* nmport_prepare(const char* portspec) {
  nmport_d* d = nmport_new();
  if (!d) return nullptr;
  if (nmport_parse(d, portspec) < 0) {
    int err = errno;
    nmport_delete(d);
    errno = err;
    return nullptr;
  }
  return d;
}

void nmport_undo_prepare(struct nmport_d* d) {
  if (!d) return;
  nmport_undo_parse(d);
  nmport_delete(d);
}

struct nmport_d* nmport_open(const char* portspec) {
  nmport_d* d = nmport_prepare(portspec);
  if (!d) return nullptr;
  if (nmport_open_desc(d) < 0) {
    int err = errno;
    nmport_undo_prepare(d);
    errno = err;
    return nullptr;
  }
  return d;
}

void nmport_close(struct nmport_d* d) {
  if (!d) return;
  nmport_undo_open_desc(d);
  nmport_undo_prepare(d);
}

struct nmport_d* nmport_clone(struct nmport_d* d) {
  if (d->extmem && !d->register_done) {
    Error(d->ctx, EINVAL, "%s: a port with extmem can be cloned once registered", d->hdr.nr_name);
    return nullptr;
  }
  nmport_d* c = nmport_new();
  if (!c) return nullptr;
  c->hdr = d->hdr;
  c->hdr.nr_options = 0;
  c->hdr.nr_body = reinterpret_cast<uintptr_t>(&c->reg);
  c->reg = d->reg;
  c->priv->parsed = true;
  return c;
}

int nmport_inject(struct nmport_d* d, const void* buf, size_t size) {
  if (!d->mmap_done || d->first_tx_ring > d->last_tx_ring) return 0;
  uint16_t ring_index = d->cur_tx_ring;
  if (ring_index < d->first_tx_ring || ring_index > d->last_tx_ring) {
    ring_index = d->first_tx_ring;
  }
  uint32_t rings = d->last_tx_ring - d->first_tx_ring + 1u;
  for (uint32_t tried = 0; tried < rings; ++tried) {
    netmap_ring* ring = NETMAP_TXRING(d->nifp, ring_index);
    if (!nm_ring_empty(ring) && size <= ring->nr_buf_size) {
      uint32_t i = ring->cur;
      netmap_slot* slot = &ring->slot[i];
      std::memcpy(NETMAP_BUF(ring, slot->buf_idx), buf, size);
      slot->len = static_cast<uint16_t>(size);
      ring->head = ring->cur = nm_ring_next(ring, i);
      d->cur_tx_ring = ring_index;
      return static_cast<int>(size);
    }
    ring_index = ring_index == d->last_tx_ring ? d->first_tx_ring : ring_index + 1;
  }
  return 0;
}

uint32_t nmport_pending(struct nmport_d* d) {
  if (!d->mmap_done) return 0;
  uint32_t pending = 0;
  for (uint32_t i = d->first_tx_ring; i <= d->last_tx_ring; ++i) {
    const netmap_ring* ring = NETMAP_TXRING(d->nifp, i);
    // [tail + 1, head) is with the kernel; one slot always stays empty.
    pending += (ring->head + ring->num_slots - 1 - ring->tail) % ring->num_slots;
  }
  return pending;
}

}  // extern "C"
