// ptctl's libvirt side: attach and detach a <shmem> device on a domain.
#include "agent/ptctl/libvirt_domain.h"

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace ptnetmap::ptctl {
namespace {

struct ConnectionCloser {
  void operator()(virConnectPtr c) const { virConnectClose(c); }
};
struct DomainFreer {
  void operator()(virDomainPtr d) const { virDomainFree(d); }
};
using Connection = std::unique_ptr<virConnect, ConnectionCloser>;
using Domain = std::unique_ptr<virDomain, DomainFreer>;

// How often a hot-unplug looks whether the guest has let the device go.
constexpr auto kUnplugPoll = std::chrono::milliseconds(100);

// libvirt prints every error on stderr unless it is given a handler; we
// report errors ourselves, once, with what to do.
void IgnoreLibvirtError(void*, virErrorPtr) {}

int LastErrorCode() {
  virErrorPtr e = virGetLastError();
  return e ? e->code : VIR_ERR_OK;
}

std::string LastErrorMessage() {
  virErrorPtr e = virGetLastError();
  return e && e->message ? e->message : "unknown libvirt error";
}

// The last libvirt error as a status, prefixed with what we tried.
absl::Status LibvirtError(absl::string_view what) {
  const std::string message = absl::StrCat(what, ": ", LastErrorMessage());
  switch (LastErrorCode()) {
    case VIR_ERR_NO_SUPPORT:
      return absl::UnimplementedError(message);
    case VIR_ERR_NO_DOMAIN:
      return absl::NotFoundError(message);
    case VIR_ERR_OPERATION_INVALID:
    case VIR_ERR_CONFIG_UNSUPPORTED:
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
      return absl::FailedPreconditionError(message);
    case VIR_ERR_NO_CONNECT:
    case VIR_ERR_RPC:
    case VIR_ERR_AUTH_FAILED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string Where(const DomainTarget& target) {
  return target.uri.empty() ? "libvirt's default URI" : absl::StrCat("'", target.uri, "'");
}

absl::StatusOr<Connection> Connect(const DomainTarget& target) {
  virSetErrorFunc(nullptr, IgnoreLibvirtError);
  virConnectPtr c = virConnectOpen(target.uri.empty() ? nullptr : target.uri.c_str());
  if (c == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot connect to libvirt at ", Where(target), ": ", LastErrorMessage(),
        "; is libvirtd running? (--connect URI chooses another libvirt)"));
  }
  return Connection(c);
}

absl::StatusOr<Domain> Lookup(virConnectPtr c, const DomainTarget& target) {
  virDomainPtr d = virDomainLookupByName(c, target.domain.c_str());
  if (d == nullptr) {
    if (LastErrorCode() == VIR_ERR_NO_DOMAIN) {
      return absl::NotFoundError(absl::StrCat("no libvirt domain '", target.domain, "' at ",
                                              Where(target), " (virsh list --all lists them)"));
    }
    return LibvirtError(absl::StrCat("cannot look up domain '", target.domain, "'"));
  }
  return Domain(d);
}

// The definitions of the domain a scope touches, given its state now.
struct Definitions {
  bool live = false;
  bool config = false;
};

absl::StatusOr<Definitions> Resolve(virDomainPtr d, const DomainTarget& target) {
  const int active = virDomainIsActive(d);
  const int persistent = virDomainIsPersistent(d);
  if (active < 0 || persistent < 0) return LibvirtError("cannot read the domain's state");
  switch (target.scope) {
    case DeviceScope::kCurrent:
      return Definitions{.live = active == 1, .config = active != 1};
    case DeviceScope::kLive:
      if (active != 1) {
        return absl::FailedPreconditionError(
            absl::StrCat("domain '", target.domain,
                         "' is not running: --live needs a running domain (--config changes "
                         "its next boot)"));
      }
      return Definitions{.live = true};
    case DeviceScope::kConfig:
    case DeviceScope::kPersistent:
      if (persistent != 1) {
        return absl::FailedPreconditionError(absl::StrCat(
            "domain '", target.domain, "' is transient: it has no config to change (use --live)"));
      }
      return Definitions{.live = target.scope == DeviceScope::kPersistent && active == 1,
                         .config = true};
  }
  return absl::InternalError("unknown device scope");
}

absl::StatusOr<std::string> DomainXml(virDomainPtr d, bool live) {
  char* xml = virDomainGetXMLDesc(d, live ? 0 : VIR_DOMAIN_XML_INACTIVE);
  if (xml == nullptr) return LibvirtError("cannot read the domain's XML");
  std::string text(xml);
  std::free(xml);
  return text;
}

const char* Which(bool live) { return live ? "running domain" : "persistent config"; }

// Waits until the running domain no longer has the device: a PCI unplug
// completes when the guest releases the device, after libvirt returned.
absl::Status WaitUntilGone(virDomainPtr d, const DomainTarget& target, const std::string& name) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(target.timeout_seconds);
  while (true) {
    if (virDomainIsActive(d) != 1) return absl::OkStatus();  // stopped: nothing left to unplug
    absl::StatusOr<std::string> xml = DomainXml(d, true);
    if (!xml.ok()) return xml.status();
    if (!FindShmemElement(*xml, name)) return absl::OkStatus();
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the guest of domain '", target.domain, "' has not released shmem device ", name,
          " within ", target.timeout_seconds,
          " s; libvirt removes it when the guest does (a guest without PCI hot-plug support "
          "never does: detach with --config and restart the domain)"));
    }
    std::this_thread::sleep_for(kUnplugPoll);
  }
}

}  // namespace

std::optional<std::string> FindShmemElement(absl::string_view domain_xml,
                                            absl::string_view name) {
  const std::string escaped = absl::StrReplaceAll(
      name, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"'", "&apos;"}, {"\"", "&quot;"}});
  for (const char quote : {'\'', '"'}) {
    const std::string open = absl::StrCat("<shmem name=", std::string(1, quote), escaped,
                                          std::string(1, quote));
    size_t start = domain_xml.find(open);
    // The name must end the attribute and the attribute the tag's first.
    while (start != absl::string_view::npos) {
      const size_t after = start + open.size();
      if (after < domain_xml.size() &&
          (domain_xml[after] == '>' || domain_xml[after] == ' ' || domain_xml[after] == '/')) {
        break;
      }
      start = domain_xml.find(open, after);
    }
    if (start == absl::string_view::npos) continue;
    const size_t tag_end = domain_xml.find('>', start);
    if (tag_end == absl::string_view::npos) return std::nullopt;
    if (domain_xml[tag_end - 1] == '/') {
      return std::string(domain_xml.substr(start, tag_end + 1 - start));
    }
    const size_t close = domain_xml.find("</shmem>", tag_end);
    if (close == absl::string_view::npos) return std::nullopt;
    return std::string(domain_xml.substr(start, close + 8 - start));
  }
  return std::nullopt;
}

absl::Status AttachShmem(const DomainTarget& target, const std::string& shmem_name,
                         const std::string& device_xml) {
  absl::StatusOr<Connection> c = Connect(target);
  if (!c.ok()) return c.status();
  absl::StatusOr<Domain> d = Lookup(c->get(), target);
  if (!d.ok()) return d.status();
  absl::StatusOr<Definitions> defs = Resolve(d->get(), target);
  if (!defs.ok()) return defs.status();
  for (const bool live : {true, false}) {
    if (!(live ? defs->live : defs->config)) continue;
    absl::StatusOr<std::string> xml = DomainXml(d->get(), live);
    if (!xml.ok()) return xml.status();
    if (FindShmemElement(*xml, shmem_name)) {
      return absl::AlreadyExistsError(absl::StrCat(
          "the ", Which(live), " of domain '", target.domain, "' already has shmem device ",
          shmem_name, " (ptctl domain detach ", target.domain, " ", shmem_name,
          " removes it)"));
    }
  }
  const unsigned flags = (defs->live ? VIR_DOMAIN_AFFECT_LIVE : 0) |
                         (defs->config ? VIR_DOMAIN_AFFECT_CONFIG : 0);
  if (virDomainAttachDeviceFlags(d->get(), device_xml.c_str(), flags) < 0) {
    return LibvirtError(absl::StrCat("libvirt did not attach shmem device ", shmem_name,
                                     " to domain '", target.domain, "'"));
  }
  return absl::OkStatus();
}

absl::Status DetachShmem(const DomainTarget& target, const std::string& shmem_name) {
  absl::StatusOr<Connection> c = Connect(target);
  if (!c.ok()) return c.status();
  absl::StatusOr<Domain> d = Lookup(c->get(), target);
  if (!d.ok()) return d.status();
  absl::StatusOr<Definitions> defs = Resolve(d->get(), target);
  if (!defs.ok()) return defs.status();
  // Each definition's own element: the live one carries the PCI address
  // libvirt matches on, the config one may differ.
  std::optional<std::string> elements[2];  // [0] live, [1] config
  for (const bool live : {true, false}) {
    if (!(live ? defs->live : defs->config)) continue;
    absl::StatusOr<std::string> xml = DomainXml(d->get(), live);
    if (!xml.ok()) return xml.status();
    elements[live ? 0 : 1] = FindShmemElement(*xml, shmem_name);
    if (!elements[live ? 0 : 1]) {
      return absl::NotFoundError(absl::StrCat("the ", Which(live), " of domain '",
                                              target.domain, "' has no shmem device ",
                                              shmem_name));
    }
  }
  // The live unplug first: it is the part that can fail (the guest).
  if (elements[0]) {
    if (virDomainDetachDeviceFlags(d->get(), elements[0]->c_str(), VIR_DOMAIN_AFFECT_LIVE) < 0) {
      return LibvirtError(absl::StrCat("libvirt did not detach shmem device ", shmem_name,
                                       " from running domain '", target.domain, "'"));
    }
    if (absl::Status s = WaitUntilGone(d->get(), target, shmem_name); !s.ok()) return s;
  }
  if (elements[1] &&
      virDomainDetachDeviceFlags(d->get(), elements[1]->c_str(), VIR_DOMAIN_AFFECT_CONFIG) < 0) {
    return LibvirtError(absl::StrCat("libvirt did not remove shmem device ", shmem_name,
                                     " from the config of domain '", target.domain, "'"));
  }
  return absl::OkStatus();
}

}  // namespace ptnetmap::ptctl
