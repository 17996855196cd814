// Manager: start-up reconcile between the database and the kernel, and the
// read-only views used by statistics and metrics.
#include <algorithm>
#include <functional>
#include <tuple>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "agent/log.h"
#include "agent/manager.h"

namespace ptnetmap::agent {

absl::StatusOr<ReconcileReport> Manager::Start() {
  absl::StatusOr<DesiredState> desired = store_.Load();
  if (!desired.ok()) return desired.status();
  absl::StatusOr<DatapathInventory> inventory = datapath_.List();
  if (!inventory.ok()) return inventory.status();

  absl::MutexLock lock(&mu_);
  ReconcileReport report;
  Reconcile(*desired, *inventory, report);
  for (const std::string& line : report.drift) LogWarning(absl::StrCat("drift: ", line));
  LogInfo(absl::StrCat("reconcile: ", report.adopted, " adopted, ", report.recreated,
                       " recreated, ", report.failed, " failed, ", report.unmanaged,
                       " unmanaged"));
  last_reconcile_ = report;
  return report;
}

void Manager::Reconcile(const DesiredState& desired, const DatapathInventory& inventory,
                        ReconcileReport& report) {
  const std::set<std::string> kernel_switches(inventory.switches.begin(),
                                              inventory.switches.end());
  const std::set<std::pair<std::string, std::string>> kernel_ports(
      inventory.switch_ports.begin(), inventory.switch_ports.end());
  const std::set<std::string> kernel_pipes(inventory.pipes.begin(), inventory.pipes.end());
  const std::set<std::string> kernel_vms(inventory.vm_attachments.begin(),
                                         inventory.vm_attachments.end());
  const std::set<std::string> kernel_vm_pipes(inventory.vm_pipes.begin(),
                                              inventory.vm_pipes.end());

  // Records the outcome of re-creating a desired object the inventory did
  // not show. ALREADY_EXISTS means the inventory could not see it (see
  // DatapathInventory): adopted. A failure is reported but the object stays
  // configured, so that the operator can see it, fix the cause and delete or
  // re-create it.
  auto recreated = [&](const std::string& what, const absl::Status& s) {
    if (s.ok()) {
      ++report.recreated;
      report.drift.push_back(absl::StrCat(what, " was missing from the kernel; recreated"));
    } else if (absl::IsAlreadyExists(s)) {
      ++report.adopted;
    } else {
      ++report.failed;
      report.drift.push_back(absl::StrCat(what, " is missing from the kernel and could not be "
                                          "recreated: ", s.message()));
    }
  };

  switches_.clear();
  nics_.clear();
  pipes_.clear();
  vms_.clear();
  std::set<std::pair<std::string, std::string>> desired_ports;

  // A netmap switch only exists while it has ports, so an empty configured
  // switch missing from the kernel is normal, not drift.
  for (const SwitchRecord& sw : desired.switches) {
    switches_[sw.name];
    if (kernel_switches.contains(sw.name)) continue;
    if (absl::Status s = datapath_.CreateSwitch(sw.name); !s.ok() && !absl::IsAlreadyExists(s)) {
      ++report.failed;
      report.drift.push_back(absl::StrCat("switch ", sw.name, " could not be created: ",
                                          s.message()));
    }
  }
  // Likewise a netmap pipe only exists while an end is open: a datapath
  // that cannot list pipes gets them "re-created" (validated) silently.
  for (const PipeRecord& pipe : desired.pipes) {
    pipes_[pipe.name];
    if (kernel_pipes.contains(pipe.name)) {
      ++report.adopted;
    } else if (absl::Status s = datapath_.CreatePipe(pipe.name);
               !s.ok() && !absl::IsAlreadyExists(s)) {
      ++report.failed;
      report.drift.push_back(absl::StrCat("pipe ", pipe.name, " could not be created: ",
                                          s.message()));
    }
  }
  for (const PortRecord& port : desired.ports) {
    switches_[port.switch_name].ports.insert(port.name);
    desired_ports.emplace(port.switch_name, port.name);
    if (kernel_ports.contains({port.switch_name, port.name})) {
      ++report.adopted;
    } else {
      recreated("port " + SwitchPortNetmapName(port.switch_name, port.name),
                datapath_.CreatePort(port.switch_name, port.name));
    }
  }
  for (const NicRecord& nic : desired.nics) {
    switches_[nic.switch_name].nics.insert(nic.nic);
    nics_[nic.nic] = nic;
    desired_ports.emplace(nic.switch_name, nic.nic);
    if (kernel_ports.contains({nic.switch_name, nic.nic})) {
      ++report.adopted;
    } else {
      recreated("NIC " + SwitchPortNetmapName(nic.switch_name, nic.nic),
                datapath_.AttachNic(nic.switch_name, nic.nic));
    }
  }
  for (const VmAttachmentRecord& vm : desired.vm_attachments) {
    Remember(vm);
    if (vm.trust == Trust::kUntrusted) desired_ports.emplace(vm.switch_name, vm.name);
    // A trusted VM's end lives in its pipe's shared attachment.
    const bool in_kernel = vm.trust == Trust::kUntrusted ? kernel_vms.contains(vm.name)
                                                         : kernel_vm_pipes.contains(vm.pipe_name);
    if (!in_kernel) {
      recreated("VM attachment " + vm.name, BringUpVmAttachment(vm, /*adopt=*/false));
    } else if (absl::Status s = BringUpVmAttachment(vm, /*adopt=*/true); s.ok()) {
      // It kept running without us; only its ivshmem socket needed serving.
      ++report.adopted;
    } else {
      ++report.failed;
      report.drift.push_back(absl::StrCat("VM attachment ", vm.name,
                                          " exists but could not be adopted: ", s.message()));
    }
  }

  auto unmanaged = [&](const std::string& what) {
    ++report.unmanaged;
    report.drift.push_back(absl::StrCat(
        what, " exists in the kernel but not in the configuration; left alone (remove it, or "
        "create it through the agent to manage it)"));
  };
  for (const auto& [sw, port] : kernel_ports) {
    if (!desired_ports.contains({sw, port})) unmanaged("port " + SwitchPortNetmapName(sw, port));
  }
  for (const std::string& pipe : kernel_pipes) {
    if (!pipes_.contains(pipe)) unmanaged("pipe " + pipe);
  }
  for (const std::string& vm : kernel_vms) {
    auto it = vms_.find(vm);
    if (it == vms_.end() || it->second.trust != Trust::kUntrusted) {
      unmanaged("VM attachment " + vm);
    }
  }
  for (const std::string& pipe : kernel_vm_pipes) {
    auto it = pipes_.find(pipe);
    if (it == pipes_.end() || it->second.holders.empty()) {
      unmanaged("passthrough attachment of both ends of pipe " + pipe);
    }
  }
}

absl::StatusOr<Stats> Manager::GetStats() const {
  absl::ReaderMutexLock lock(&mu_);
  Stats stats;
  // NOT_FOUND means the object is missing from the kernel (reported as
  // drift at start); its counters are simply absent.
  auto read = [&](const std::string& netmap_name,
                  const std::function<void(const PortCounters&)>& add) -> absl::Status {
    absl::StatusOr<PortCounters> counters = datapath_.ReadCounters(netmap_name);
    if (counters.ok()) add(*counters);
    return counters.ok() || absl::IsNotFound(counters.status()) ? absl::OkStatus()
                                                                : counters.status();
  };
  for (const auto& entry : switches_) {
    const std::string& sw_name = entry.first;
    const SwitchState& sw = entry.second;
    for (const std::string& port : sw.ports) {
      absl::Status s = read(SwitchPortNetmapName(sw_name, port), [&](const PortCounters& c) {
        stats.ports.push_back({sw_name, port, "port", c});
      });
      if (!s.ok()) return s;
    }
    for (const std::string& nic : sw.nics) {
      absl::Status s = read(SwitchPortNetmapName(sw_name, nic), [&](const PortCounters& c) {
        stats.ports.push_back({sw_name, nic, "nic", c});
      });
      if (!s.ok()) return s;
    }
  }
  for (const auto& entry : vms_) {
    const VmAttachmentRecord& vm = entry.second;
    absl::Status s = read(VmAttachmentNetmapName(vm), [&](const PortCounters& c) {
      stats.vm_attachments.push_back({vm.name, vm.trust, c});
    });
    if (!s.ok()) return s;
  }
  std::sort(stats.ports.begin(), stats.ports.end(), [](const auto& a, const auto& b) {
    return std::tie(a.switch_name, a.name) < std::tie(b.switch_name, b.name);
  });
  return stats;
}

ObjectCounts Manager::Counts() const {
  absl::ReaderMutexLock lock(&mu_);
  ObjectCounts counts;
  counts.switches = static_cast<int>(switches_.size());
  for (const auto& [name, sw] : switches_) counts.ports += static_cast<int>(sw.ports.size());
  counts.nics = static_cast<int>(nics_.size());
  counts.pipes = static_cast<int>(pipes_.size());
  for (const auto& [name, vm] : vms_) {
    ++(vm.trust == Trust::kTrusted ? counts.vm_trusted : counts.vm_untrusted);
  }
  return counts;
}

ReconcileReport Manager::LastReconcile() const {
  absl::ReaderMutexLock lock(&mu_);
  return last_reconcile_;
}

}  // namespace ptnetmap::agent
