// Output of ptctl: aligned text tables for people, JSON (the API messages,
// field names as in the .proto) for scripts.
#ifndef PTNETMAP_AGENT_PTCTL_FORMAT_H_
#define PTNETMAP_AGENT_PTCTL_FORMAT_H_

#include <google/protobuf/message.h>

#include <ostream>
#include <string>
#include <vector>

#include "ptnetmap/v1/ptnetmap.pb.h"

namespace ptnetmap::ptctl {

// Columns padded to the widest cell; the header row is upper case.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
  void AddRow(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void Print(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The message as JSON, every field present (zeros included) so scripts
// need no defaults.
void PrintJson(const google::protobuf::Message& message, std::ostream& out);

// Human-readable tables of the API messages.
void PrintSwitches(const std::vector<const v1::Switch*>& switches, std::ostream& out);
void PrintPorts(const std::vector<const v1::Port*>& ports, std::ostream& out);
void PrintPipes(const std::vector<const v1::Pipe*>& pipes, std::ostream& out);
void PrintNics(const std::vector<const v1::NicAttachment*>& nics, std::ostream& out);
void PrintVmAttachments(const std::vector<const v1::VmAttachment*>& vms, std::ostream& out);
void PrintVmAttachmentDetail(const v1::VmAttachment& vm, std::ostream& out);
void PrintStats(const v1::GetStatsResponse& stats, std::ostream& out);

// Collects pointers to a repeated field's elements, for the Print* helpers.
template <typename Repeated>
auto Pointers(const Repeated& repeated) {
  std::vector<const typename Repeated::value_type*> out;
  for (const auto& item : repeated) out.push_back(&item);
  return out;
}

}  // namespace ptnetmap::ptctl

#endif  // PTNETMAP_AGENT_PTCTL_FORMAT_H_
