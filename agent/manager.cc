// Manager: create/delete/get/list of switches, ports, pipes and NICs. VM
// attachments and the trust policy are in manager_vm.cc; Start(), reconcile
// and statistics in manager_reconcile.cc.
#include "agent/manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/manager_steps.h"
#include "agent/names.h"

namespace ptnetmap::agent {
namespace {

using manager_steps::CreatedOrAdopted;
using manager_steps::Restore;
using manager_steps::Undo;

template <typename Set>
std::vector<std::string> Sorted(const Set& set) {
  return std::vector<std::string>(set.begin(), set.end());
}

}  // namespace

Manager::Manager(Datapath& datapath, StateStore& store, ivshmem::Server& ivshmem,
                 ManagerLimits limits)
    : datapath_(datapath), store_(store), ivshmem_(ivshmem), limits_(limits) {}

// --- switches ---------------------------------------------------------------

absl::StatusOr<SwitchView> Manager::CreateSwitch(absl::string_view name) {
  if (absl::Status s = ValidateSwitchName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (switches_.contains(std::string(name))) {
    return absl::AlreadyExistsError(absl::StrCat("switch ", name, " already exists"));
  }
  if (static_cast<int>(switches_.size()) >= limits_.max_switches) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot create switch ", name, ": the limit of ", limits_.max_switches,
        " switches is reached; delete an unused switch first"));
  }
  absl::StatusOr<bool> created = CreatedOrAdopted(datapath_.CreateSwitch(name));
  if (!created.ok()) return created.status();
  if (absl::Status s = store_.AddSwitch({std::string(name)}); !s.ok()) {
    if (*created) Undo(datapath_.DeleteSwitch(name), absl::StrCat("switch ", name));
    return s;
  }
  SwitchState& sw = switches_[std::string(name)];
  return ViewOf(std::string(name), sw);
}

absl::Status Manager::DeleteSwitch(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = switches_.find(std::string(name));
  if (it == switches_.end()) return absl::NotFoundError(absl::StrCat("no switch ", name));
  const SwitchState& sw = it->second;
  if (sw.used() > 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "switch ", name, " is in use by ", sw.ports.size(), " port(s), ", sw.nics.size(),
        " NIC(s) and ", sw.vm_attachments.size(),
        " VM attachment(s); delete or detach them first"));
  }
  if (absl::Status s = store_.RemoveSwitch(name); !s.ok()) return s;
  if (absl::Status s = datapath_.DeleteSwitch(name); !s.ok() && !absl::IsNotFound(s)) {
    Restore(store_.AddSwitch({std::string(name)}), absl::StrCat("switch ", name));
    return s;
  }
  switches_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<SwitchView> Manager::GetSwitch(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = switches_.find(std::string(name));
  if (it == switches_.end()) return absl::NotFoundError(absl::StrCat("no switch ", name));
  return ViewOf(it->first, it->second);
}

std::vector<SwitchView> Manager::ListSwitches() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<SwitchView> views;
  for (const auto& [name, sw] : switches_) views.push_back(ViewOf(name, sw));
  return views;
}

SwitchView Manager::ViewOf(const std::string& name, const SwitchState& sw) const {
  return SwitchView{name, Sorted(sw.ports), Sorted(sw.nics), Sorted(sw.vm_attachments)};
}

absl::Status Manager::CheckSwitchSlot(absl::string_view switch_name,
                                      absl::string_view name) const {
  auto it = switches_.find(std::string(switch_name));
  if (it == switches_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no switch ", switch_name, "; create it first"));
  }
  const SwitchState& sw = it->second;
  const std::string key(name);
  if (sw.ports.contains(key) || sw.nics.contains(key) || sw.vm_attachments.contains(key)) {
    return absl::AlreadyExistsError(
        absl::StrCat(SwitchPortNetmapName(switch_name, name), " already exists"));
  }
  if (sw.used() >= limits_.max_ports_per_switch) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "switch ", switch_name, " has ", sw.used(), " ports, the most a VALE switch can have; "
        "use another switch"));
  }
  return absl::OkStatus();
}

absl::Status Manager::CheckInterfaceNameFree(absl::string_view name) const {
  const std::string key(name);
  if (pipes_.contains(key)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "pipe ", name, " already uses that name; persistent ports and pipes are host-wide "
        "netmap interfaces, so their names must differ"));
  }
  for (const auto& [sw_name, sw] : switches_) {
    if (sw.ports.contains(key)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "persistent port ", name, " exists on switch ", sw_name,
          "; persistent ports are host-wide netmap interfaces, so pick another name"));
    }
  }
  return absl::OkStatus();
}

// --- persistent ports -------------------------------------------------------

absl::StatusOr<PortRecord> Manager::CreatePort(absl::string_view switch_name,
                                               absl::string_view name) {
  if (absl::Status s = ValidatePortName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckSwitchSlot(switch_name, name); !s.ok()) return s;
  if (absl::Status s = CheckInterfaceNameFree(name); !s.ok()) return s;
  absl::StatusOr<bool> created = CreatedOrAdopted(datapath_.CreatePort(switch_name, name));
  if (!created.ok()) return created.status();
  PortRecord port{std::string(switch_name), std::string(name)};
  if (absl::Status s = store_.AddPort(port); !s.ok()) {
    if (*created) {
      Undo(datapath_.DeletePort(switch_name, name), SwitchPortNetmapName(switch_name, name));
    }
    return s;
  }
  switches_[port.switch_name].ports.insert(port.name);
  return port;
}

absl::Status Manager::DeletePort(absl::string_view switch_name, absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = switches_.find(std::string(switch_name));
  if (it == switches_.end() || !it->second.ports.contains(std::string(name))) {
    return absl::NotFoundError(
        absl::StrCat("no port ", name, " on switch ", switch_name));
  }
  if (absl::Status s = store_.RemovePort(switch_name, name); !s.ok()) return s;
  if (absl::Status s = datapath_.DeletePort(switch_name, name); !s.ok() && !absl::IsNotFound(s)) {
    Restore(store_.AddPort({std::string(switch_name), std::string(name)}),
            SwitchPortNetmapName(switch_name, name));
    return s;
  }
  it->second.ports.erase(std::string(name));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<PortRecord>> Manager::ListPorts(absl::string_view switch_name) const {
  absl::ReaderMutexLock lock(&mu_);
  if (!switch_name.empty() && !switches_.contains(std::string(switch_name))) {
    return absl::NotFoundError(absl::StrCat("no switch ", switch_name));
  }
  std::vector<PortRecord> ports;
  for (const auto& [sw_name, sw] : switches_) {
    if (!switch_name.empty() && sw_name != switch_name) continue;
    for (const std::string& port : sw.ports) ports.push_back({sw_name, port});
  }
  return ports;
}

// --- pipes ------------------------------------------------------------------

absl::StatusOr<PipeView> Manager::CreatePipe(absl::string_view name) {
  if (absl::Status s = ValidatePipeName(name); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (pipes_.contains(std::string(name))) {
    return absl::AlreadyExistsError(absl::StrCat("pipe ", name, " already exists"));
  }
  if (absl::Status s = CheckInterfaceNameFree(name); !s.ok()) return s;
  if (static_cast<int>(pipes_.size()) >= limits_.max_pipes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot create pipe ", name, ": the limit of ", limits_.max_pipes,
        " pipes is reached; delete an unused pipe first"));
  }
  absl::StatusOr<bool> created = CreatedOrAdopted(datapath_.CreatePipe(name));
  if (!created.ok()) return created.status();
  if (absl::Status s = store_.AddPipe({std::string(name)}); !s.ok()) {
    if (*created) Undo(datapath_.DeletePipe(name), absl::StrCat("pipe ", name));
    return s;
  }
  pipes_[std::string(name)];
  return PipeView{std::string(name), {}};
}

absl::Status Manager::DeletePipe(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = pipes_.find(std::string(name));
  if (it == pipes_.end()) return absl::NotFoundError(absl::StrCat("no pipe ", name));
  if (!it->second.holders.empty()) {
    std::vector<std::string> users;
    for (const auto& [end, vm] : it->second.holders) users.push_back(vm);
    return absl::FailedPreconditionError(absl::StrCat(
        "pipe ", name, " is used by VM attachment(s) ", absl::StrJoin(users, ", "),
        "; delete them first"));
  }
  if (absl::Status s = store_.RemovePipe(name); !s.ok()) return s;
  if (absl::Status s = datapath_.DeletePipe(name); !s.ok() && !absl::IsNotFound(s)) {
    Restore(store_.AddPipe({std::string(name)}), absl::StrCat("pipe ", name));
    return s;
  }
  pipes_.erase(it);
  return absl::OkStatus();
}

std::vector<PipeView> Manager::ListPipes() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<PipeView> views;
  for (const auto& [name, pipe] : pipes_) {
    PipeView view{name, {}};
    for (const auto& [end, vm] : pipe.holders) view.vm_attachments.push_back(vm);
    std::sort(view.vm_attachments.begin(), view.vm_attachments.end());
    views.push_back(std::move(view));
  }
  return views;
}

// --- NICs -------------------------------------------------------------------

absl::StatusOr<NicRecord> Manager::AttachNic(absl::string_view switch_name,
                                             absl::string_view nic) {
  if (absl::Status s = ValidateNicName(nic); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  if (auto it = nics_.find(std::string(nic)); it != nics_.end()) {
    return absl::AlreadyExistsError(absl::StrCat(
        "interface ", nic, " is already attached to switch ", it->second.switch_name,
        "; detach it first to move it"));
  }
  if (absl::Status s = CheckSwitchSlot(switch_name, nic); !s.ok()) return s;
  absl::StatusOr<bool> created = CreatedOrAdopted(datapath_.AttachNic(switch_name, nic));
  if (!created.ok()) return created.status();
  NicRecord record{std::string(switch_name), std::string(nic)};
  if (absl::Status s = store_.AddNic(record); !s.ok()) {
    if (*created) {
      Undo(datapath_.DetachNic(switch_name, nic), SwitchPortNetmapName(switch_name, nic));
    }
    return s;
  }
  switches_[record.switch_name].nics.insert(record.nic);
  nics_[record.nic] = record;
  return record;
}

absl::Status Manager::DetachNic(absl::string_view nic) {
  absl::MutexLock lock(&mu_);
  auto it = nics_.find(std::string(nic));
  if (it == nics_.end()) {
    return absl::NotFoundError(absl::StrCat("interface ", nic, " is not attached to a switch"));
  }
  const NicRecord record = it->second;
  if (absl::Status s = store_.RemoveNic(nic); !s.ok()) return s;
  if (absl::Status s = datapath_.DetachNic(record.switch_name, nic);
      !s.ok() && !absl::IsNotFound(s)) {
    Restore(store_.AddNic(record), absl::StrCat("NIC ", nic));
    return s;
  }
  switches_[record.switch_name].nics.erase(record.nic);
  nics_.erase(it);
  return absl::OkStatus();
}

std::vector<NicRecord> Manager::ListNics() const {
  absl::ReaderMutexLock lock(&mu_);
  std::vector<NicRecord> nics;
  for (const auto& [name, record] : nics_) nics.push_back(record);
  return nics;
}

}  // namespace ptnetmap::agent
