// Manager: VM attachments and the trust policy.
#include <algorithm>
#include <bit>

#include "absl/strings/str_cat.h"
#include "agent/manager.h"
#include "agent/manager_steps.h"
#include "agent/names.h"
#include "qemu/passthrough.h"

namespace ptnetmap::agent {

using manager_steps::Restore;
using manager_steps::Undo;

absl::StatusOr<VmAttachmentRecord> Manager::PlanVmAttachment(
    const VmAttachmentRequest& request) const {
  const std::string& name = request.name;
  if (absl::Status s = ValidateVmAttachmentName(name); !s.ok()) return s;
  if (vms_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat("VM attachment ", name, " already exists"));
  }
  if (!request.trust) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM attachment ", name, " needs a trust policy: untrusted (a private port on a "
        "switch) or trusted (a pipe end sharing memory with named peers)"));
  }
  VmAttachmentRecord vm{.name = name, .trust = *request.trust};
  vm.rings = request.rings ? request.rings : limits_.default_rings;
  if (vm.rings > limits_.max_rings) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM attachment ", name, ": ", vm.rings, " rings per direction requested; a "
        "passthrough port has 1 to ", limits_.max_rings));
  }
  // The region holds every ring's buffers: one port for an untrusted VM,
  // both ends for a pipe.
  const uint64_t needed =
      ivshmem::MinRegionBytes(vm.rings, vm.trust == Trust::kTrusted ? 2 : 1);
  vm.region_bytes = request.region_bytes
                        ? request.region_bytes
                        : std::max(limits_.default_region_bytes, needed);
  if (!std::has_single_bit(vm.region_bytes) || vm.region_bytes < limits_.min_region_bytes ||
      vm.region_bytes > limits_.max_region_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM attachment ", name, ": region of ", vm.region_bytes,
        " bytes; QEMU needs a power of two, and the agent allows ", limits_.min_region_bytes,
        " to ", limits_.max_region_bytes));
  }
  if (vm.region_bytes < needed) {
    return absl::InvalidArgumentError(absl::StrCat(
        "VM attachment ", name, ": a region of ", vm.region_bytes, " bytes cannot hold the "
        "buffers of ", vm.rings, " ring(s) per direction", vm.trust == Trust::kTrusted ?
        " of both pipe ends" : "", "; use at least ", needed, " bytes (or leave it unset)"));
  }

  if (vm.trust == Trust::kUntrusted) {
    if (request.switch_name.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "untrusted VM attachment ", name, " needs the switch for its private port"));
    }
    if (!request.pipe_name.empty() || !request.peers.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "untrusted VM attachment ", name, " cannot take a pipe or peers: untrusted VMs "
          "never share memory; use the trusted policy to share a pipe"));
    }
    if (absl::Status s = CheckSwitchSlot(request.switch_name, name); !s.ok()) return s;
    vm.switch_name = request.switch_name;
    return vm;
  }

  if (request.pipe_name.empty() || !request.switch_name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "trusted VM attachment ", name, " needs a pipe and no switch: trusted VMs share a "
        "pipe's memory with their peers"));
  }
  for (const std::string& peer : request.peers) {
    if (absl::Status s = ValidateVmAttachmentName(peer); !s.ok()) return s;
    if (peer == name) {
      return absl::InvalidArgumentError(
          absl::StrCat("VM attachment ", name, " cannot list itself as a peer"));
    }
  }
  vm.peers = request.peers;
  std::sort(vm.peers.begin(), vm.peers.end());
  vm.peers.erase(std::unique(vm.peers.begin(), vm.peers.end()), vm.peers.end());
  vm.pipe_name = request.pipe_name;

  auto pipe = pipes_.find(vm.pipe_name);
  if (pipe == pipes_.end()) {
    return absl::NotFoundError(absl::StrCat("no pipe ", vm.pipe_name, "; create it first"));
  }
  const auto& holders = pipe->second.holders;
  if (holders.size() >= 2) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "both ends of pipe ", vm.pipe_name, " are taken (by ", holders.begin()->second, " and ",
        holders.rbegin()->second, "); use another pipe"));
  }
  vm.pipe_end = holders.contains(PipeEnd::kMaster) ? PipeEnd::kSlave : PipeEnd::kMaster;
  if (holders.empty()) return vm;

  // The other end is held: sharing memory needs consent on both sides.
  const VmAttachmentRecord& other = vms_.at(holders.begin()->second);
  if (!std::binary_search(vm.peers.begin(), vm.peers.end(), other.name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trust conflict: the other end of pipe ", vm.pipe_name, " is held by ", other.name,
        ", which ", name, " does not list as a peer; add it as a peer to share memory with it"));
  }
  if (!std::binary_search(other.peers.begin(), other.peers.end(), name)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "trust conflict: ", other.name, " holds the other end of pipe ", vm.pipe_name,
        " but does not list ", name, " as a peer; re-create ", other.name,
        " with that peer, or use another pipe"));
  }
  if (request.region_bytes != 0 && request.region_bytes != other.region_bytes) {
    return absl::FailedPreconditionError(absl::StrCat(
        "both ends of pipe ", vm.pipe_name, " share one region; ", other.name, " uses ",
        other.region_bytes, " bytes, so request that size (or leave it unset)"));
  }
  if (request.rings != 0 && request.rings != other.rings) {
    return absl::FailedPreconditionError(absl::StrCat(
        "both ends of pipe ", vm.pipe_name, " are built together with the same rings; ",
        other.name, " has ", other.rings, " per direction, so request that (or leave it unset)"));
  }
  vm.region_bytes = other.region_bytes;
  vm.rings = other.rings;
  return vm;
}

absl::Status Manager::BringUpVmAttachment(const VmAttachmentRecord& vm, bool adopt) {
  const VmAttachmentSpec spec = SpecOf(vm);
  bool created = false;
  absl::StatusOr<VmAttachmentHandles> handles;
  if (!adopt) {
    handles = datapath_.CreateVmAttachment(spec);
    created = handles.ok();
  }
  if (adopt || absl::IsAlreadyExists(handles.status())) {
    handles = datapath_.AdoptVmAttachment(spec);
  }
  if (!handles.ok()) return handles.status();
  if (absl::Status s = ivshmem_.Serve(vm.name, std::move(static_cast<ivshmem::PeerFds&>(*handles)));
      !s.ok()) {
    if (created) Undo(datapath_.DestroyVmAttachment(spec), "VM attachment " + vm.name);
    return s;
  }
  return absl::OkStatus();
}

void Manager::Remember(const VmAttachmentRecord& vm) {
  vms_[vm.name] = vm;
  if (vm.trust == Trust::kUntrusted) {
    switches_[vm.switch_name].vm_attachments.insert(vm.name);
  } else {
    pipes_[vm.pipe_name].holders[vm.pipe_end] = vm.name;
  }
}

void Manager::Forget(const VmAttachmentRecord& vm) {
  if (vm.trust == Trust::kUntrusted) {
    switches_[vm.switch_name].vm_attachments.erase(vm.name);
  } else {
    pipes_[vm.pipe_name].holders.erase(vm.pipe_end);
  }
  vms_.erase(vm.name);
}

absl::StatusOr<VmAttachmentView> Manager::CreateVmAttachment(
    const VmAttachmentRequest& request) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<VmAttachmentRecord> vm = PlanVmAttachment(request);
  if (!vm.ok()) return vm.status();
  if (absl::Status s = BringUpVmAttachment(*vm, /*adopt=*/false); !s.ok()) return s;
  if (absl::Status s = store_.AddVmAttachment(*vm); !s.ok()) {
    ivshmem_.Stop(vm->name);
    Undo(datapath_.DestroyVmAttachment(SpecOf(*vm)), "VM attachment " + vm->name);
    return s;
  }
  Remember(*vm);
  return ViewOf(*vm);
}

absl::Status Manager::DeleteVmAttachment(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = vms_.find(std::string(name));
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", name));
  const VmAttachmentRecord vm = it->second;
  if (absl::Status s = store_.RemoveVmAttachment(name); !s.ok()) return s;
  if (absl::Status s = datapath_.DestroyVmAttachment(SpecOf(vm)); !s.ok() && !absl::IsNotFound(s)) {
    Restore(store_.AddVmAttachment(vm), absl::StrCat("VM attachment ", name));
    return s;
  }
  ivshmem_.Stop(name);
  Forget(vm);
  return absl::OkStatus();
}

absl::StatusOr<VmAttachmentView> Manager::GetVmAttachment(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = vms_.find(std::string(name));
  if (it == vms_.end()) return absl::NotFoundError(absl::StrCat("no VM attachment ", name));
  return ViewOf(it->second);
}

std::vector<VmAttachmentView> Manager::ListVmAttachments() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<VmAttachmentView> views;
  for (const auto& [name, vm] : vms_) views.push_back(ViewOf(vm));
  return views;
}

VmAttachmentView Manager::ViewOf(const VmAttachmentRecord& vm) const {
  const std::string socket = ivshmem_.SocketPath(vm.name);
  return VmAttachmentView{vm, VmAttachmentNetmapName(vm), socket,
                          LibvirtShmemXml(vm.name, socket, VectorsForRings(vm.rings))};
}

}  // namespace ptnetmap::agent
