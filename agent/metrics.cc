#include "agent/metrics.h"

#include <prometheus/gauge.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <functional>
#include <initializer_list>

#include "absl/strings/ascii.h"
#include "agent/log.h"

namespace ptnetmap::agent {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

// Latency buckets from 100 us (a list) to 10 s (a stuck kernel call).
const prometheus::Histogram::BucketBoundaries kRpcBuckets = {
    0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10};

// Builds metric families at scrape time, one sample at a time.
class FamilyBuilder {
 public:
  void Add(const std::string& name, const std::string& help, MetricType type,
           const Labels& labels, double value) {
    MetricFamily& family = Find(name, help, type);
    ClientMetric metric;
    metric.label = labels;
    // Sorted like the Registry's own samples, so the exposition is stable.
    std::sort(metric.label.begin(), metric.label.end());
    if (type == MetricType::Counter) metric.counter.value = value;
    else metric.gauge.value = value;
    family.metric.push_back(std::move(metric));
  }
  std::vector<MetricFamily> Take() { return std::move(families_); }

 private:
  MetricFamily& Find(const std::string& name, const std::string& help, MetricType type) {
    for (MetricFamily& f : families_) {
      if (f.name == name) return f;
    }
    families_.push_back(MetricFamily{name, help, type, {}});
    return families_.back();
  }
  std::vector<MetricFamily> families_;
};

// Adds the traffic counters shared by ports and attachments.
void AddCounters(FamilyBuilder& out, const std::string& prefix, const Labels& labels,
                 const PortCounters& c, bool passthrough) {
  auto counter = [&](const std::string& what, const std::string& help, uint64_t value) {
    out.Add(prefix + what + "_total", help, MetricType::Counter, labels,
            static_cast<double>(value));
  };
  counter("_rx_packets", "Packets received by the port's user.", c.rx_packets);
  counter("_rx_bytes", "Bytes received by the port's user.", c.rx_bytes);
  counter("_tx_packets", "Packets sent by the port's user.", c.tx_packets);
  counter("_tx_bytes", "Bytes sent by the port's user.", c.tx_bytes);
  const std::pair<const char*, uint64_t> drops[] = {
      {"ring_full", c.drops.ring_full},
      {"bad_descriptor", c.drops.bad_descriptor},
      {"oversize", c.drops.oversize},
      {"no_destination", c.drops.no_destination}};
  for (const auto& [cause, value] : drops) {
    Labels with_cause = labels;
    with_cause.push_back({"cause", cause});
    out.Add(prefix + "_drops_total", "Packets dropped, by cause.", MetricType::Counter,
            with_cause, static_cast<double>(value));
  }
  if (!passthrough) return;
  counter("_kicks", "Doorbell kicks from the guest.", c.kicks);
  counter("_interrupts", "Interrupts injected into the guest.", c.interrupts);
  counter("_worker_wakeups", "Wake-ups of the kernel worker serving the attachment.",
          c.worker_wakeups);
}

// Reads everything that belongs to the kernel or the manager at scrape time.
class ScrapeCollector : public prometheus::Collectable {
 public:
  explicit ScrapeCollector(const Manager& manager) : manager_(manager) {}

  std::vector<MetricFamily> Collect() const override {
    FamilyBuilder out;
    absl::StatusOr<Stats> stats = manager_.GetStats();
    out.Add("ptnetmap_datapath_up", "1 if the kernel counters could be read.",
            MetricType::Gauge, {}, stats.ok() ? 1 : 0);
    if (stats.ok()) {
      for (const PortStatsEntry& p : stats->ports) {
        AddCounters(out, "ptnetmap_port",
                    {{"switch", p.switch_name}, {"port", p.name}, {"kind", p.kind}},
                    p.counters, /*passthrough=*/false);
      }
      for (const VmStatsEntry& vm : stats->vm_attachments) {
        AddCounters(out, "ptnetmap_attachment",
                    {{"attachment", vm.name}, {"trust", std::string(TrustName(vm.trust))}},
                    vm.counters, /*passthrough=*/true);
      }
    } else {
      LogWarning(std::string("metrics: cannot read kernel counters: ") +
                 std::string(stats.status().message()));
    }

    const ObjectCounts counts = manager_.Counts();
    const std::string objects_help = "Objects configured in the agent.";
    const std::tuple<const char*, const char*, int> objects[] = {
        {"switch", "", counts.switches},
        {"port", "", counts.ports},
        {"nic", "", counts.nics},
        {"pipe", "", counts.pipes},
        {"vm_attachment", "untrusted", counts.vm_untrusted},
        {"vm_attachment", "trusted", counts.vm_trusted}};
    for (const auto& [kind, trust, n] : objects) {
      Labels labels{{"kind", kind}};
      if (*trust) labels.push_back({"trust", trust});
      out.Add("ptnetmap_objects", objects_help, MetricType::Gauge, labels, n);
    }

    const ReconcileReport report = manager_.LastReconcile();
    const std::pair<const char*, int> results[] = {{"adopted", report.adopted},
                                                   {"recreated", report.recreated},
                                                   {"failed", report.failed},
                                                   {"unmanaged", report.unmanaged}};
    for (const auto& [result, n] : results) {
      out.Add("ptnetmap_reconcile_objects",
              "Objects by outcome of the start-up reconcile; recreated, failed and unmanaged "
              "are drift.",
              MetricType::Gauge, {{"result", result}}, n);
    }
    return out.Take();
  }

 private:
  const Manager& manager_;
};

std::string CodeName(grpc::StatusCode code) {
  static constexpr const char* kNames[] = {
      "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
      "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
      "UNAUTHENTICATED"};
  const int index = static_cast<int>(code);
  return index >= 0 && index < 17 ? kNames[index] : "UNKNOWN";
}

}  // namespace

AgentMetrics::AgentMetrics(const Manager& manager, absl::string_view version,
                           absl::string_view datapath_name)
    : registry_(std::make_shared<prometheus::Registry>()),
      kernel_(std::make_shared<ScrapeCollector>(manager)),
      rpcs_(prometheus::BuildCounter()
                .Name("ptnetmap_agent_rpcs_total")
                .Help("gRPC calls served, by method and status code.")
                .Register(*registry_)),
      rpc_duration_(prometheus::BuildHistogram()
                        .Name("ptnetmap_agent_rpc_duration_seconds")
                        .Help("Time to serve a gRPC call, by method.")
                        .Register(*registry_)) {
  prometheus::BuildGauge()
      .Name("ptnetmap_build_info")
      .Help("Always 1; the labels say which ptnetd is running.")
      .Register(*registry_)
      .Add({{"version", std::string(version)}, {"datapath", std::string(datapath_name)}})
      .Set(1);
}

std::vector<std::weak_ptr<prometheus::Collectable>> AgentMetrics::Collectables() const {
  return {registry_, kernel_};
}

std::string AgentMetrics::Render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  for (MetricFamily& f : kernel_->Collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

void AgentMetrics::OnRpc(absl::string_view method, grpc::StatusCode code,
                         absl::Duration latency) {
  // Family::Add returns the existing child for known labels; the label
  // space is bounded by the service's methods and the status codes.
  rpcs_.Add({{"method", std::string(method)}, {"code", CodeName(code)}}).Increment();
  rpc_duration_.Add({{"method", std::string(method)}}, kRpcBuckets)
      .Observe(absl::ToDoubleSeconds(latency));
}

}  // namespace ptnetmap::agent
