#include "agent/fake_datapath.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ptnetmap::agent {
namespace {

absl::Status Errno(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::StatusOr<UniqueFd> MakeRegion(absl::string_view name, uint64_t bytes) {
  UniqueFd fd(::memfd_create(std::string(name).c_str(), MFD_CLOEXEC));
  if (!fd.valid()) return Errno("memfd_create");
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) return Errno("ftruncate");
  return fd;
}

absl::Status MakeEventfds(uint32_t count, std::vector<UniqueFd>& out) {
  for (uint32_t i = 0; i < count; ++i) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) return Errno("eventfd");
    out.push_back(std::move(fd));
  }
  return absl::OkStatus();
}

void Add(PortCounters& to, const PortCounters& d) {
  to.rx_packets += d.rx_packets;
  to.rx_bytes += d.rx_bytes;
  to.tx_packets += d.tx_packets;
  to.tx_bytes += d.tx_bytes;
  to.drops.ring_full += d.drops.ring_full;
  to.drops.bad_descriptor += d.drops.bad_descriptor;
  to.drops.oversize += d.drops.oversize;
  to.drops.no_destination += d.drops.no_destination;
  to.kicks += d.kicks;
  to.interrupts += d.interrupts;
  to.worker_wakeups += d.worker_wakeups;
}

}  // namespace

FakeDatapath::FakeDatapath(std::vector<std::string> host_nics)
    : host_nics_(host_nics.begin(), host_nics.end()) {}

void FakeDatapath::InjectFailure(Op op, absl::Status status, int times) {
  absl::MutexLock lock(&mu_);
  failures_[op] = {std::move(status), times};
}

void FakeDatapath::SetModuleLoaded(bool loaded) {
  absl::MutexLock lock(&mu_);
  module_loaded_ = loaded;
}

void FakeDatapath::AddTraffic(absl::string_view netmap_name, const PortCounters& delta) {
  absl::MutexLock lock(&mu_);
  auto it = counters_.find(netmap_name);
  if (it != counters_.end()) Add(it->second, delta);
}

int FakeDatapath::CallCount(Op op) const {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

absl::Status FakeDatapath::Enter(Op op) {
  ++calls_[op];
  if (!module_loaded_) {
    return absl::UnavailableError(
        "/dev/netmap does not exist: module not loaded: modprobe ptnetmap");
  }
  auto it = failures_.find(op);
  if (it == failures_.end()) return absl::OkStatus();
  absl::Status status = it->second.first;
  if (--it->second.second <= 0) failures_.erase(it);
  return status;
}

absl::Status FakeDatapath::AddSwitchPort(absl::string_view switch_name, absl::string_view port) {
  if (!switches_.contains(std::string(switch_name))) {
    return absl::NotFoundError(absl::StrCat("no switch ", switch_name, " in the datapath"));
  }
  auto [it, inserted] = switch_ports_.emplace(switch_name, port);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat(SwitchPortNetmapName(switch_name, port), " exists in the datapath"));
  }
  counters_[SwitchPortNetmapName(switch_name, port)] = {};
  return absl::OkStatus();
}

absl::Status FakeDatapath::RemoveSwitchPort(absl::string_view switch_name,
                                            absl::string_view port) {
  if (switch_ports_.erase({std::string(switch_name), std::string(port)}) == 0) {
    return absl::NotFoundError(
        absl::StrCat(SwitchPortNetmapName(switch_name, port), " is not in the datapath"));
  }
  counters_.erase(SwitchPortNetmapName(switch_name, port));
  return absl::OkStatus();
}

absl::Status FakeDatapath::CreateSwitch(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kCreateSwitch); !s.ok()) return s;
  if (!switches_.emplace(name).second) {
    return absl::AlreadyExistsError(absl::StrCat("switch ", name, " exists in the datapath"));
  }
  return absl::OkStatus();
}

absl::Status FakeDatapath::DeleteSwitch(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDeleteSwitch); !s.ok()) return s;
  for (const auto& [sw, port] : switch_ports_) {
    if (sw == name) return absl::FailedPreconditionError(absl::StrCat("switch ", name, " has ports"));
  }
  if (switches_.erase(std::string(name)) == 0) {
    return absl::NotFoundError(absl::StrCat("no switch ", name, " in the datapath"));
  }
  return absl::OkStatus();
}

absl::Status FakeDatapath::CreatePort(absl::string_view switch_name, absl::string_view port) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kCreatePort); !s.ok()) return s;
  return AddSwitchPort(switch_name, port);
}

absl::Status FakeDatapath::DeletePort(absl::string_view switch_name, absl::string_view port) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDeletePort); !s.ok()) return s;
  return RemoveSwitchPort(switch_name, port);
}

absl::Status FakeDatapath::AttachNic(absl::string_view switch_name, absl::string_view nic) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kAttachNic); !s.ok()) return s;
  if (!host_nics_.contains(std::string(nic))) {
    return absl::NotFoundError(absl::StrCat("the host has no interface ", nic));
  }
  return AddSwitchPort(switch_name, nic);
}

absl::Status FakeDatapath::DetachNic(absl::string_view switch_name, absl::string_view nic) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDetachNic); !s.ok()) return s;
  return RemoveSwitchPort(switch_name, nic);
}

absl::Status FakeDatapath::CreatePipe(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kCreatePipe); !s.ok()) return s;
  if (!pipes_.try_emplace(std::string(name)).second) {
    return absl::AlreadyExistsError(absl::StrCat("pipe ", name, " exists in the datapath"));
  }
  return absl::OkStatus();
}

absl::Status FakeDatapath::DeletePipe(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDeletePipe); !s.ok()) return s;
  auto it = pipes_.find(std::string(name));
  if (it == pipes_.end()) return absl::NotFoundError(absl::StrCat("no pipe ", name));
  if (!it->second.held.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("pipe ", name, " has open ends"));
  }
  pipes_.erase(it);
  return absl::OkStatus();
}

namespace {

absl::StatusOr<VmAttachmentHandles> MakeHandles(UniqueFd region, uint64_t region_bytes,
                                                uint16_t peer_id, std::string netmap_name,
                                                uint32_t rings) {
  VmAttachmentHandles h;
  h.region = std::move(region);
  h.region_bytes = region_bytes;
  h.peer_id = peer_id;
  h.netmap_name = std::move(netmap_name);
  const uint32_t vectors = VectorsForRings(rings);
  if (absl::Status s = MakeEventfds(vectors, h.kick_fds); !s.ok()) return s;
  if (absl::Status s = MakeEventfds(vectors, h.irq_fds); !s.ok()) return s;
  return h;
}

}  // namespace

absl::StatusOr<VmAttachmentHandles> FakeDatapath::CreateVmAttachment(
    const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kCreateVmAttachment); !s.ok()) return s;
  if (spec.trust == Trust::kTrusted) {
    auto pipe = pipes_.find(spec.pipe_name);
    if (pipe == pipes_.end()) return absl::NotFoundError(absl::StrCat("no pipe ", spec.pipe_name));
    Pipe& p = pipe->second;
    if (p.held.contains(spec.pipe_end)) {
      return absl::AlreadyExistsError(absl::StrCat(
          PipeEndNetmapName(spec.pipe_name, spec.pipe_end), " is attached already"));
    }
    if (p.ends.empty()) {
      // Both ends at once, in one region: that is what "trusted" means.
      absl::StatusOr<UniqueFd> region = MakeRegion(spec.pipe_name, spec.region_bytes);
      if (!region.ok()) return region.status();
      for (PipeEnd end : {PipeEnd::kMaster, PipeEnd::kSlave}) {
        UniqueFd copy(::fcntl(region->get(), F_DUPFD_CLOEXEC, 0));
        absl::StatusOr<VmAttachmentHandles> h = MakeHandles(
            std::move(copy), spec.region_bytes, end == PipeEnd::kMaster ? 1 : 2,
            PipeEndNetmapName(spec.pipe_name, end), spec.rings);
        if (!h.ok()) {
          p.ends.clear();
          return h.status();
        }
        p.ends.emplace(end, *std::move(h));
      }
      for (const auto& [end, h] : p.ends) counters_[h.netmap_name] = {};
    }
    absl::StatusOr<VmAttachmentHandles> copy = DupHandles(p.ends.at(spec.pipe_end));
    if (copy.ok()) p.held.insert(spec.pipe_end);
    return copy;
  }

  if (vms_.contains(spec.name)) {
    return absl::AlreadyExistsError(absl::StrCat("VM attachment ", spec.name, " exists"));
  }
  if (switch_ports_.contains({spec.switch_name, spec.name})) {
    return absl::InvalidArgumentError(
        absl::StrCat(SwitchPortNetmapName(spec.switch_name, spec.name), " exists already"));
  }
  absl::StatusOr<UniqueFd> region = MakeRegion(spec.name, spec.region_bytes);
  if (!region.ok()) return region.status();
  absl::StatusOr<VmAttachmentHandles> h =
      MakeHandles(*std::move(region), spec.region_bytes, spec.peer_id,
                  SwitchPortNetmapName(spec.switch_name, spec.name), spec.rings);
  if (!h.ok()) return h.status();
  absl::StatusOr<VmAttachmentHandles> copy = DupHandles(*h);
  if (!copy.ok()) return copy.status();
  if (absl::Status s = AddSwitchPort(spec.switch_name, spec.name); !s.ok()) return s;
  vms_.emplace(spec.name, VmPort{.spec = spec, .handles = *std::move(h)});
  return copy;
}

absl::StatusOr<VmAttachmentHandles> FakeDatapath::AdoptVmAttachment(
    const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kAdoptVmAttachment); !s.ok()) return s;
  if (spec.trust == Trust::kTrusted) {
    auto pipe = pipes_.find(spec.pipe_name);
    if (pipe == pipes_.end() || pipe->second.ends.empty()) {
      return absl::NotFoundError(absl::StrCat("no attachment of pipe ", spec.pipe_name));
    }
    absl::StatusOr<VmAttachmentHandles> copy = DupHandles(pipe->second.ends.at(spec.pipe_end));
    if (copy.ok()) pipe->second.held.insert(spec.pipe_end);
    return copy;
  }
  auto it = vms_.find(spec.name);
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", spec.name));
  return DupHandles(it->second.handles);
}

absl::Status FakeDatapath::DestroyVmAttachment(const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDestroyVmAttachment); !s.ok()) return s;
  if (spec.trust == Trust::kTrusted) {
    auto pipe = pipes_.find(spec.pipe_name);
    if (pipe == pipes_.end() || pipe->second.ends.empty()) {
      return absl::NotFoundError(absl::StrCat("no attachment of pipe ", spec.pipe_name));
    }
    Pipe& p = pipe->second;
    p.held.erase(spec.pipe_end);
    if (p.held.empty()) {
      for (const auto& [end, h] : p.ends) counters_.erase(h.netmap_name);
      p.ends.clear();
    }
    return absl::OkStatus();
  }
  auto it = vms_.find(spec.name);
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", spec.name));
  (void)RemoveSwitchPort(it->second.spec.switch_name, it->second.spec.name);
  vms_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<DatapathInventory> FakeDatapath::List() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kList); !s.ok()) return s;
  DatapathInventory inventory;
  inventory.switches.assign(switches_.begin(), switches_.end());
  inventory.switch_ports.assign(switch_ports_.begin(), switch_ports_.end());
  for (const auto& [name, pipe] : pipes_) inventory.pipes.push_back(name);
  for (const auto& [name, vm] : vms_) inventory.vm_attachments.push_back(name);
  for (const auto& [name, pipe] : pipes_) {
    if (!pipe.ends.empty()) inventory.vm_pipes.push_back(name);
  }
  return inventory;
}

absl::StatusOr<PortCounters> FakeDatapath::ReadCounters(absl::string_view netmap_name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kReadCounters); !s.ok()) return s;
  auto it = counters_.find(netmap_name);
  if (it == counters_.end()) {
    return absl::NotFoundError(absl::StrCat("no port ", netmap_name, " in the datapath"));
  }
  return it->second;
}

}  // namespace ptnetmap::agent
