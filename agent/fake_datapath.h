// FakeDatapath: an in-memory Datapath for tests and for running ptnetd
// without the kernel module (--datapath=fake).
//
// It enforces the same existence rules as the kernel (ALREADY_EXISTS,
// NOT_FOUND, a NIC must exist on the "host"), hands out real memfds and
// eventfds for VM attachments so the ivshmem server can be exercised, and
// lets tests inject failures, unload the "module" and add traffic. Unlike
// netmap it keeps pipes that no VM uses (CreatePipe makes one).
#ifndef PTNETMAP_AGENT_FAKE_DATAPATH_H_
#define PTNETMAP_AGENT_FAKE_DATAPATH_H_

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agent/datapath.h"

namespace ptnetmap::agent {

class FakeDatapath : public Datapath {
 public:
  // Every method that can be made to fail.
  enum class Op {
    kCreateSwitch, kDeleteSwitch, kCreatePort, kDeletePort, kAttachNic, kDetachNic,
    kCreatePipe, kDeletePipe, kCreateVmAttachment, kAdoptVmAttachment,
    kDestroyVmAttachment, kList, kReadCounters,
  };

  // `host_nics` are the interfaces AttachNic accepts.
  explicit FakeDatapath(std::vector<std::string> host_nics = {"eth0", "eth1"});

  // The next `times` calls of `op` fail with `status` and change nothing.
  void InjectFailure(Op op, absl::Status status, int times = 1);
  // While unloaded every call fails as with a missing /dev/netmap.
  void SetModuleLoaded(bool loaded);
  // Adds `delta` to the counters of a port, as traffic would.
  void AddTraffic(absl::string_view netmap_name, const PortCounters& delta);
  // Number of calls of `op` so far, failed ones included.
  int CallCount(Op op) const;

  absl::string_view Name() const override { return "fake"; }
  absl::Status CreateSwitch(absl::string_view name) override;
  absl::Status DeleteSwitch(absl::string_view name) override;
  absl::Status CreatePort(absl::string_view switch_name, absl::string_view port) override;
  absl::Status DeletePort(absl::string_view switch_name, absl::string_view port) override;
  absl::Status AttachNic(absl::string_view switch_name, absl::string_view nic) override;
  absl::Status DetachNic(absl::string_view switch_name, absl::string_view nic) override;
  absl::Status CreatePipe(absl::string_view name) override;
  absl::Status DeletePipe(absl::string_view name) override;
  absl::StatusOr<VmAttachmentHandles> CreateVmAttachment(const VmAttachmentSpec& spec) override;
  absl::StatusOr<VmAttachmentHandles> AdoptVmAttachment(const VmAttachmentSpec& spec) override;
  absl::Status DestroyVmAttachment(const VmAttachmentSpec& spec) override;
  absl::StatusOr<DatapathInventory> List() override;
  absl::StatusOr<PortCounters> ReadCounters(absl::string_view netmap_name) override;

 private:
  // As in the kernel: both ends' handles (one shared region, peers 1 and
  // 2) are made when the first end is attached, and go with the last.
  struct Pipe {
    std::map<PipeEnd, VmAttachmentHandles> ends;  // empty: no attachment
    std::set<PipeEnd> held;
  };
  struct VmPort {
    VmAttachmentSpec spec;
    VmAttachmentHandles handles;  // the fake's own references
  };

  // Counts the call and returns the injected failure, if any.
  absl::Status Enter(Op op) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status AddSwitchPort(absl::string_view switch_name, absl::string_view port)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RemoveSwitchPort(absl::string_view switch_name, absl::string_view port)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::set<std::string> host_nics_ ABSL_GUARDED_BY(mu_);
  bool module_loaded_ ABSL_GUARDED_BY(mu_) = true;
  std::map<Op, std::pair<absl::Status, int>> failures_ ABSL_GUARDED_BY(mu_);
  std::map<Op, int> calls_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> switches_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<std::string, std::string>> switch_ports_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Pipe> pipes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, VmPort> vms_ ABSL_GUARDED_BY(mu_);  // untrusted
  std::map<std::string, PortCounters, std::less<>> counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_FAKE_DATAPATH_H_
