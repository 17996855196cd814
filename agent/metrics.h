// Prometheus metrics of ptnetd, the way prometheus-cpp's examples do it: one
// Registry for what the agent counts itself (RPCs, build info) plus one
// Collectable that reads kernel counters and object counts at scrape time,
// so a scrape always shows the kernel's current numbers and a deleted port
// simply disappears. Labels are bounded by the number of configured objects.
//
// Metric names (all counters end in _total, sizes in bytes):
//   ptnetmap_port_{rx,tx}_{packets,bytes}_total{switch,port,kind}
//   ptnetmap_port_drops_total{switch,port,kind,cause}
//   ptnetmap_attachment_{rx,tx}_{packets,bytes}_total{attachment,trust}
//   ptnetmap_attachment_drops_total{attachment,trust,cause}
//   ptnetmap_attachment_{kicks,interrupts,worker_wakeups}_total{attachment,trust}
//   ptnetmap_objects{kind,trust}           configured objects
//   ptnetmap_reconcile_objects{result}     outcome of the start-up reconcile
//   ptnetmap_datapath_up                   1 if counters could be read
//   ptnetmap_agent_rpcs_total{method,code}
//   ptnetmap_agent_rpc_duration_seconds{method}   histogram
//   ptnetmap_build_info{version,datapath}  always 1
#ifndef PTNETMAP_AGENT_METRICS_H_
#define PTNETMAP_AGENT_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "agent/manager.h"
#include "agent/service.h"

namespace ptnetmap::agent {

class AgentMetrics : public RpcObserver {
 public:
  AgentMetrics(const Manager& manager, absl::string_view version,
               absl::string_view datapath_name);

  // What an Exposer serves: the registry and the scrape-time collector.
  std::vector<std::weak_ptr<prometheus::Collectable>> Collectables() const;
  // The text exposition format of everything, as a scrape would get it.
  std::string Render() const;

  void OnRpc(absl::string_view method, grpc::StatusCode code,
             absl::Duration latency) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> kernel_;
  prometheus::Family<prometheus::Counter>& rpcs_;
  prometheus::Family<prometheus::Histogram>& rpc_duration_;
};

}  // namespace ptnetmap::agent

#endif  // PTNETMAP_AGENT_METRICS_H_
