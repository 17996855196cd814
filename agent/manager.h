// Manager: the agent's domain rules, between the gRPC service and the
// adapters (datapath, state store, ivshmem server).
//
// It owns the rules users rely on: names (names.h), uniqueness (a create
// with a taken name is ALREADY_EXISTS and changes nothing), limits, the
// trust policy of VM attachments, and the order of side effects that keeps
// the database and the kernel consistent:
//   create: validate -> datapath -> ivshmem -> database; a later failure
//           undoes the earlier steps, so an error means "nothing changed";
//   delete: database -> datapath; if the datapath refuses, the row is put
//           back. Only a committed row counts as configuration.
// A crash between the two steps leaves at most an object in the kernel that
// the database does not know; the next Start() reports it as drift.
//
// Thread-safe: one mutex serialises every operation (they are rare and
// short; the datapath contract asks for serialised calls anyway).
#ifndef PTNETMAP_AGENT_MANAGER_H_
#define PTNETMAP_AGENT_MANAGER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "agent/datapath.h"
#include "qemu/ivshmem_server.h"
#include "agent/model.h"
#include "agent/state_store.h"

namespace ptnetmap::agent {

struct ManagerLimits {
  // Our guess at a sensible bound on kernel memory; netmap itself has none.
  int max_switches = 64;
  // netmap's VALE limit: ports, NICs and VM ports together.
  int max_ports_per_switch = 254;
  int max_pipes = 256;
  // Rings per direction of a passthrough port (PTNM_MAX_RINGS; with the
  // control vector that stays well under ivshmem's 256 vectors).
  uint32_t max_rings = 16;
  uint32_t default_rings = 1;
  uint64_t min_region_bytes = uint64_t{1} << 20;
  uint64_t max_region_bytes = uint64_t{1} << 30;
  uint64_t default_region_bytes = uint64_t{4} << 20;
};

struct SwitchView {
  std::string name;
  std::vector<std::string> ports;  // each list sorted
  std::vector<std::string> nics;
  std::vector<std::string> vm_attachments;
};

struct PipeView {
  std::string name;
  std::vector<std::string> vm_attachments;
};

// A VM attachment as the API shows it.
struct VmAttachmentView {
  VmAttachmentRecord record;
  std::string netmap_name;
  std::string socket_path;
  std::string libvirt_xml;
};

// What a client asks for; zero rings/region mean "the default".
struct VmAttachmentRequest {
  std::string name;
  std::optional<Trust> trust;  // nullopt: not given
  std::string switch_name;
  std::string pipe_name;
  std::vector<std::string> peers;
  uint32_t rings = 0;
  uint64_t region_bytes = 0;
};

struct PortStatsEntry {
  std::string switch_name;
  std::string name;
  std::string kind;  // "port" or "nic"
  PortCounters counters;
};

struct VmStatsEntry {
  std::string name;
  Trust trust;
  PortCounters counters;
};

struct Stats {
  std::vector<PortStatsEntry> ports;
  std::vector<VmStatsEntry> vm_attachments;
};

struct ObjectCounts {
  int switches = 0;
  int ports = 0;
  int nics = 0;
  int pipes = 0;
  int vm_untrusted = 0;
  int vm_trusted = 0;
};

// The outcome of the last reconcile, for logs and metrics.
struct ReconcileReport {
  int adopted = 0;    // desired and found in the kernel
  int recreated = 0;  // desired, missing, created again
  int failed = 0;     // desired, missing, could not be created
  int unmanaged = 0;  // in the kernel, not desired: left alone
  std::vector<std::string> drift;  // one line per recreated/failed/unmanaged object
};

class Manager {
 public:
  // The adapters must outlive the manager.
  Manager(Datapath& datapath, StateStore& store, ivshmem::Server& ivshmem,
          ManagerLimits limits = {});

  // Loads the desired state and reconciles the kernel with it: recreates
  // what is missing, adopts what exists (and serves its ivshmem socket
  // again), reports what the kernel has beyond it. Fails only if the
  // database cannot be read or the datapath cannot be listed (module not
  // loaded); single objects that cannot be recreated are reported.
  absl::StatusOr<ReconcileReport> Start();

  absl::StatusOr<SwitchView> CreateSwitch(absl::string_view name);
  absl::Status DeleteSwitch(absl::string_view name);
  absl::StatusOr<SwitchView> GetSwitch(absl::string_view name) const;
  std::vector<SwitchView> ListSwitches() const;

  absl::StatusOr<PortRecord> CreatePort(absl::string_view switch_name, absl::string_view name);
  absl::Status DeletePort(absl::string_view switch_name, absl::string_view name);
  // An empty `switch_name` lists all; an unknown one is NOT_FOUND.
  absl::StatusOr<std::vector<PortRecord>> ListPorts(absl::string_view switch_name) const;

  absl::StatusOr<PipeView> CreatePipe(absl::string_view name);
  absl::Status DeletePipe(absl::string_view name);
  std::vector<PipeView> ListPipes() const;

  absl::StatusOr<NicRecord> AttachNic(absl::string_view switch_name, absl::string_view nic);
  absl::Status DetachNic(absl::string_view nic);
  std::vector<NicRecord> ListNics() const;

  absl::StatusOr<VmAttachmentView> CreateVmAttachment(const VmAttachmentRequest& request);
  absl::Status DeleteVmAttachment(absl::string_view name);
  absl::StatusOr<VmAttachmentView> GetVmAttachment(absl::string_view name) const;
  std::vector<VmAttachmentView> ListVmAttachments() const;

  // Counters of every port and attachment, read from the datapath now.
  // Objects missing from the kernel (drift) are left out.
  absl::StatusOr<Stats> GetStats() const;
  ObjectCounts Counts() const;
  ReconcileReport LastReconcile() const;

 private:
  struct SwitchState {
    std::set<std::string> ports;
    std::set<std::string> nics;
    std::set<std::string> vm_attachments;
    int used() const { return static_cast<int>(ports.size() + nics.size() + vm_attachments.size()); }
  };
  struct PipeState {
    std::map<PipeEnd, std::string> holders;  // end -> VM attachment
  };

  // ALREADY_EXISTS if a persistent port or pipe anywhere is called `name`:
  // both are host-wide interfaces in netmap.
  absl::Status CheckInterfaceNameFree(absl::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // NOT_FOUND / ALREADY_EXISTS / RESOURCE_EXHAUSTED for a new port-like
  // object `name` on switch `switch_name`.
  absl::Status CheckSwitchSlot(absl::string_view switch_name, absl::string_view name) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Applies the trust policy; fills in defaults and the pipe end.
  absl::StatusOr<VmAttachmentRecord> PlanVmAttachment(const VmAttachmentRequest& request) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Datapath create (or adopt) plus ivshmem serve, undone on failure.
  absl::Status BringUpVmAttachment(const VmAttachmentRecord& vm, bool adopt)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Remember(const VmAttachmentRecord& vm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Forget(const VmAttachmentRecord& vm) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SwitchView ViewOf(const std::string& name, const SwitchState& sw) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  VmAttachmentView ViewOf(const VmAttachmentRecord& vm) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Reconcile(const DesiredState& desired, const DatapathInventory& inventory,
                 ReconcileReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Datapath& datapath_;
  StateStore& store_;
  ivshmem::Server& ivshmem_;
  const ManagerLimits limits_;

  mutable absl::Mutex mu_;
  std::map<std::string, SwitchState> switches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, NicRecord> nics_ ABSL_GUARDED_BY(mu_);  // by interface
  std::map<std::string, PipeState> pipes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, VmAttachmentRecord> vms_ ABSL_GUARDED_BY(mu_);
  ReconcileReport last_reconcile_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_MANAGER_H_
