#include "agent/ptctl/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ptnetmap::ptctl {
namespace {

std::string JoinOrDash(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return items.empty() ? "-" : absl::StrJoin(items, ",");
}

std::string TrustName(v1::TrustPolicy trust) {
  switch (trust) {
    case v1::TRUST_POLICY_UNTRUSTED: return "untrusted";
    case v1::TRUST_POLICY_TRUSTED: return "trusted";
    default: return "?";
  }
}

uint64_t TotalDrops(const v1::DropCounters& d) {
  return d.ring_full() + d.bad_descriptor() + d.oversize() + d.no_destination();
}

}  // namespace

void Table::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (size_t r = 0; r < rows_.size(); ++r) {
    std::string line;
    for (size_t i = 0; i < rows_[r].size(); ++i) {
      std::string cell = r == 0 ? absl::AsciiStrToUpper(rows_[r][i]) : rows_[r][i];
      if (i + 1 < rows_[r].size()) cell.resize(widths[i] + 2, ' ');
      line += cell;
    }
    out << line << "\n";
  }
}

void PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  out << json;
  if (json.empty() || json.back() != '\n') out << "\n";
}

void PrintSwitches(const std::vector<const v1::Switch*>& switches, std::ostream& out) {
  Table table({"name", "ports", "nics", "vm_attachments"});
  for (const v1::Switch* sw : switches) {
    table.AddRow({sw->name(), JoinOrDash(sw->ports()), JoinOrDash(sw->nics()),
                  JoinOrDash(sw->vm_attachments())});
  }
  table.Print(out);
}

void PrintPorts(const std::vector<const v1::Port*>& ports, std::ostream& out) {
  Table table({"switch", "name", "netmap_name"});
  for (const v1::Port* p : ports) table.AddRow({p->switch_name(), p->name(), p->netmap_name()});
  table.Print(out);
}

void PrintPipes(const std::vector<const v1::Pipe*>& pipes, std::ostream& out) {
  Table table({"name", "vm_attachments"});
  for (const v1::Pipe* p : pipes) table.AddRow({p->name(), JoinOrDash(p->vm_attachments())});
  table.Print(out);
}

void PrintNics(const std::vector<const v1::NicAttachment*>& nics, std::ostream& out) {
  Table table({"nic", "switch"});
  for (const v1::NicAttachment* n : nics) table.AddRow({n->nic(), n->switch_name()});
  table.Print(out);
}

void PrintVmAttachments(const std::vector<const v1::VmAttachment*>& vms, std::ostream& out) {
  Table table({"name", "trust", "on", "peers", "rings", "vectors", "socket"});
  for (const v1::VmAttachment* vm : vms) {
    table.AddRow({vm->name(), TrustName(vm->trust()),
                  vm->trust() == v1::TRUST_POLICY_TRUSTED ? "pipe " + vm->pipe_name()
                                                          : "switch " + vm->switch_name(),
                  JoinOrDash(vm->peers()), absl::StrCat(vm->rings()),
                  absl::StrCat(vm->vectors()), vm->socket_path()});
  }
  table.Print(out);
}

void PrintVmAttachmentDetail(const v1::VmAttachment& vm, std::ostream& out) {
  Table table({"field", "value"});
  table.AddRow({"name", vm.name()});
  table.AddRow({"trust", TrustName(vm.trust())});
  if (vm.trust() == v1::TRUST_POLICY_TRUSTED) {
    table.AddRow({"pipe", vm.pipe_name()});
    table.AddRow({"peers", JoinOrDash(vm.peers())});
  } else {
    table.AddRow({"switch", vm.switch_name()});
  }
  table.AddRow({"netmap_name", vm.netmap_name()});
  table.AddRow({"rings", absl::StrCat(vm.rings())});
  table.AddRow({"vectors", absl::StrCat(vm.vectors())});
  table.AddRow({"peer_id", absl::StrCat(vm.peer_id())});
  table.AddRow({"region_bytes", absl::StrCat(vm.region_bytes())});
  table.AddRow({"socket", vm.socket_path()});
  table.Print(out);
  out << "\nlibvirt device (virsh attach-device DOMAIN FILE --config):\n"
      << vm.libvirt_xml() << "\n";
}

void PrintStats(const v1::GetStatsResponse& stats, std::ostream& out) {
  Table ports({"switch", "port", "kind", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
               "drops"});
  for (const v1::PortStats& p : stats.ports()) {
    const v1::Counters& c = p.counters();
    ports.AddRow({p.switch_name(), p.name(), p.kind(), absl::StrCat(c.rx_packets()),
                  absl::StrCat(c.rx_bytes()), absl::StrCat(c.tx_packets()),
                  absl::StrCat(c.tx_bytes()), absl::StrCat(TotalDrops(c.drops()))});
  }
  ports.Print(out);
  out << "\n";
  Table vms({"attachment", "trust", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drops",
             "kicks", "interrupts", "wakeups"});
  for (const v1::AttachmentStats& a : stats.vm_attachments()) {
    const v1::Counters& c = a.counters();
    vms.AddRow({a.name(), TrustName(a.trust()), absl::StrCat(c.rx_packets()),
                absl::StrCat(c.rx_bytes()), absl::StrCat(c.tx_packets()),
                absl::StrCat(c.tx_bytes()), absl::StrCat(TotalDrops(c.drops())),
                absl::StrCat(c.kicks()), absl::StrCat(c.interrupts()),
                absl::StrCat(c.worker_wakeups())});
  }
  vms.Print(out);
}

}  // namespace ptnetmap::ptctl
