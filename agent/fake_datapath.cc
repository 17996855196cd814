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
  if (!it->second.ends_in_use.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("pipe ", name, " has open ends"));
  }
  pipes_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<VmAttachmentHandles> FakeDatapath::CreateVmAttachment(
    const VmAttachmentSpec& spec) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kCreateVmAttachment); !s.ok()) return s;
  if (vms_.contains(spec.name)) {
    return absl::AlreadyExistsError(absl::StrCat("VM attachment ", spec.name, " exists"));
  }
  VmPort vm{.spec = spec, .handles = {}};
  vm.handles.region_bytes = spec.region_bytes;
  if (spec.trust == Trust::kTrusted) {
    auto pipe = pipes_.find(spec.pipe_name);
    if (pipe == pipes_.end()) return absl::NotFoundError(absl::StrCat("no pipe ", spec.pipe_name));
    if (pipe->second.ends_in_use.contains(spec.pipe_end)) {
      return absl::AlreadyExistsError("that pipe end is in use");
    }
    if (!pipe->second.region.valid()) {
      absl::StatusOr<UniqueFd> region = MakeRegion(spec.pipe_name, spec.region_bytes);
      if (!region.ok()) return region.status();
      pipe->second.region = *std::move(region);
      pipe->second.region_bytes = spec.region_bytes;
    }
    // Both ends share the pipe's region: that is what "trusted" means.
    vm.handles.region.reset(::fcntl(pipe->second.region.get(), F_DUPFD_CLOEXEC, 0));
    vm.handles.region_bytes = pipe->second.region_bytes;
    vm.handles.netmap_name = PipeEndNetmapName(spec.pipe_name, spec.pipe_end);
  } else {
    absl::StatusOr<UniqueFd> region = MakeRegion(spec.name, spec.region_bytes);
    if (!region.ok()) return region.status();
    vm.handles.region = *std::move(region);
    vm.handles.netmap_name = SwitchPortNetmapName(spec.switch_name, spec.name);
  }
  vm.handles.peer_id = spec.peer_id;
  const uint32_t vectors = VectorsForRings(spec.rings);
  if (absl::Status s = MakeEventfds(vectors, vm.handles.kick_fds); !s.ok()) return s;
  if (absl::Status s = MakeEventfds(vectors, vm.handles.irq_fds); !s.ok()) return s;
  absl::StatusOr<VmAttachmentHandles> copy = DupHandles(vm.handles);
  if (!copy.ok()) return copy.status();

  if (spec.trust == Trust::kUntrusted) {
    if (absl::Status s = AddSwitchPort(spec.switch_name, spec.name); !s.ok()) return s;
  } else {
    pipes_[spec.pipe_name].ends_in_use.insert(spec.pipe_end);
    counters_[vm.handles.netmap_name] = {};
  }
  vms_.emplace(spec.name, std::move(vm));
  return copy;
}

absl::StatusOr<VmAttachmentHandles> FakeDatapath::AdoptVmAttachment(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kAdoptVmAttachment); !s.ok()) return s;
  auto it = vms_.find(std::string(name));
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", name));
  return DupHandles(it->second.handles);
}

absl::Status FakeDatapath::DestroyVmAttachment(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Enter(Op::kDestroyVmAttachment); !s.ok()) return s;
  auto it = vms_.find(std::string(name));
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", name));
  const VmAttachmentSpec& spec = it->second.spec;
  if (spec.trust == Trust::kUntrusted) {
    (void)RemoveSwitchPort(spec.switch_name, spec.name);
  } else {
    Pipe& pipe = pipes_[spec.pipe_name];
    pipe.ends_in_use.erase(spec.pipe_end);
    if (pipe.ends_in_use.empty()) pipe.region.reset();
    counters_.erase(it->second.handles.netmap_name);
  }
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
