// Applying a VM attachment's <shmem> device to a libvirt domain through
// libvirt's C API (virDomainAttachDeviceFlags / virDomainDetachDeviceFlags):
// what `ptctl domain attach|detach` do. Stock libvirt 9.0 is enough: the
// device is QEMU's ivshmem-doorbell, which libvirt hot-plugs and unplugs.
//
// Errors are absl::Status codes ptctl turns into its exit codes:
//   UNAVAILABLE        libvirt not reachable at the URI
//   NOT_FOUND          no such domain; detach of a device the domain lacks
//   ALREADY_EXISTS     attach of a device (by shmem name) the domain has
//   FAILED_PRECONDITION --live on a domain that is not running, and the like
//   UNIMPLEMENTED      the libvirt driver cannot hot-plug (test:///default)
//   DEADLINE_EXCEEDED  the guest did not release a hot-unplugged device in time
//   INTERNAL           anything else libvirt or QEMU refused, with their message
#ifndef PTNETMAP_AGENT_PTCTL_LIBVIRT_DOMAIN_H_
#define PTNETMAP_AGENT_PTCTL_LIBVIRT_DOMAIN_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ptnetmap::ptctl {

// Which definition of the domain a change applies to; virsh's flags.
enum class DeviceScope {
  kCurrent,     // the running domain if it runs, else its persistent config
  kLive,        // the running domain only
  kConfig,      // the persistent config only (next boot)
  kPersistent,  // both: the running domain (if running) and the config
};

struct DomainTarget {
  std::string uri;     // empty: libvirt's default (LIBVIRT_DEFAULT_URI, qemu:///system for root)
  std::string domain;  // name of the libvirt domain
  DeviceScope scope = DeviceScope::kCurrent;
  int timeout_seconds = 10;  // how long a hot-unplug may wait for the guest
};

// Adds `device_xml`, a <shmem name='`shmem_name`'> element, to the domain.
absl::Status AttachShmem(const DomainTarget& target, const std::string& shmem_name,
                         const std::string& device_xml);

// Removes the domain's <shmem> device named `shmem_name`. The device XML is
// taken from the domain itself, so this works after the agent forgot the
// attachment. A live unplug needs the guest's consent (PCI hot-unplug): it
// waits up to target.timeout_seconds for the device to be gone.
absl::Status DetachShmem(const DomainTarget& target, const std::string& shmem_name);

// The <shmem> element named `name` in a domain's XML, as libvirt wrote it;
// nullopt if there is none. Exposed for tests.
std::optional<std::string> FindShmemElement(absl::string_view domain_xml,
                                            absl::string_view name);

}  // namespace ptnetmap::ptctl

#endif  // PTNETMAP_AGENT_PTCTL_LIBVIRT_DOMAIN_H_
